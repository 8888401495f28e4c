/*
 * fs.h - file-system steps more than one command needs.
 */
#ifndef TB_FS_H
#define TB_FS_H

#include <stdio.h>

#include "core/xalloc.h"

/* mkdir -p: creates each missing component of dir; an existing directory is fine. 0, or a
 * negative errno (-ENOTDIR when dir is there but is not a directory). */
MUST_USE int fs_mkdir_p(const char *dir);

/* Opens path for reading ("rb") when it is a regular file: a FIFO would block the open (and the
 * read) until a writer comes, a device may never end. 0; -EINVAL when it is something else
 * (*kind then says what: "a FIFO", "a directory", "a device or socket"); or -errno. */
MUST_USE int fs_open_regular(const char *path, FILE **out, const char **kind);

#endif
