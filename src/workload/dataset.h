/*
 * dataset.h - prompts from files the user supplies (nothing is downloaded): ShareGPT-format
 * JSON (a list of {"conversations": [{"from", "value"}, ...]}), JSON lines (one prompt or
 * message list per line, optional output length) and plain text used as a corpus.
 * docs/CONFIG.md ("requests.dataset") describes the shapes.
 */
#ifndef TB_DATASET_H
#define TB_DATASET_H

#include <stdbool.h>
#include <stddef.h>

#include "config/workload_cfg.h"
#include "core/xalloc.h"

/* Ceilings: a file is read whole (ShareGPT's V3 file is ~670 MB); a JSON line is one record. */
#define DATASET_MAX_BYTES (2ull << 30)
#define DATASET_MAX_LINE (64u << 20)

struct ds_entry {
    char *prompt;      /* the first user turn, or (turns: all) the conversation flattened as
                          "User: ...\n\nAssistant: ...\n\nUser: ...\n\nAssistant:" */
    char *messages;    /* turns: all: the JSON array of messages up to the last user turn */
    char *reply;       /* the assistant's answer to it in the file, NULL when none */
    int output_tokens; /* "output_tokens" given in the file (JSON lines), -1 none */
};

struct dataset {
    enum dataset_format format;
    struct ds_entry *v; /* prompts (sharegpt, jsonl) */
    size_t n;
    size_t skipped;     /* records without a user turn */
    char *text;         /* text: the file, cut into words in place */
    const char **words; /* text: the corpus, in order */
    size_t n_words;
};

/* Reads cfg->path. 0, or -EINVAL / -ENOENT / -EIO / -EFBIG with "path[:line[:column]]: why"
 * in err. all_turns: keep whole conversations (turns: all). */
MUST_USE int dataset_load(struct dataset **out, const struct dataset_cfg *cfg, char *err,
                          size_t errlen);
void dataset_free(struct dataset *d); /* NULL is a no-op */

#endif
