/*
 * yaml_file.h - one YAML document from a file, read the way every file testbench takes from a
 * user is read (configs, calibration profiles, validation sets): regular files only (a FIFO
 * would block forever), a size ceiling, nesting at most YAML_FILE_MAX_DEPTH levels (libyaml's
 * scanner is quadratic in the depth, so a small file of nested brackets could take minutes),
 * one document per file, and libyaml's errors with file:line:column.
 */
#ifndef TB_YAML_FILE_H
#define TB_YAML_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "core/xalloc.h"

/* Mappings and lists inside each other; a config uses about five. libyaml's scanner keeps a
 * stack of possible simple keys and rescans it for every token, so nesting costs quadratic
 * time (200k '[' took 96 s): the depth is bounded while the events stream by, before any
 * document is composed. */
#define YAML_FILE_MAX_DEPTH 64

struct yaml_file {
    yaml_document_t doc; /* valid after a successful yaml_file_load */
    bool loaded;
};

/* Loads path (at most max_bytes) into yf->doc. `what` names the kind of file in messages ("a
 * config"). 0, or -ENOENT / -EIO (cannot read) / -EINVAL (not YAML, too large, too deep, a
 * second document) / -ENOMEM with the message in err. The text read is wiped before it is
 * freed: a file given by mistake may hold secrets. */
MUST_USE int yaml_file_load(struct yaml_file *yf, const char *path, size_t max_bytes,
                            const char *what, char *err, size_t errlen);
/* Frees the document; safe on a file that failed to load. */
void yaml_file_release(struct yaml_file *yf);

/* Writes "file:line:column: key: msg" for node n (line and column 0 when n is NULL, no "key: "
 * when key is NULL) into err; returns -EINVAL. */
int yaml_node_fail(char *err, size_t errlen, const char *file, const yaml_node_t *n,
                   const char *key, const char *msg);

#endif
