/*
 * fs.h - file-system steps more than one command needs.
 */
#ifndef TB_FS_H
#define TB_FS_H

#include "core/xalloc.h"

/* mkdir -p: creates each missing component of dir; an existing directory is fine. 0, or a
 * negative errno (-ENOTDIR when dir is there but is not a directory). */
MUST_USE int fs_mkdir_p(const char *dir);

#endif
