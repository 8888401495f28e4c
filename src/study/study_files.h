/*
 * study_files.h - a study folder's files (docs/STUDY.md): study.json (everything: setups,
 * server facts, one row per setup x workload x load), study.csv (the rows, one flat line each)
 * and manifest.json (which setups are done, failed or remaining). All three are rewritten
 * through a temporary file and rename() after every setup, so an interrupted study leaves
 * valid files.
 */
#ifndef TB_STUDY_FILES_H
#define TB_STUDY_FILES_H

#include <stddef.h>

#include <jansson.h>

#include "core/xalloc.h"

/* study.csv's columns, in order; a row object has these keys (null = empty cell). */
extern const char *const study_csv_columns[];
extern const size_t study_csv_n_columns;

/* Writes the three files into dir from the study object ({..., "setups": [...], "rows":
 * [...]}); 0 or -errno with the file named in err. */
MUST_USE int study_files_write(const char *dir, const json_t *study, char *err, size_t errlen);
/* Writes j to dir/name through a temporary file, fsync and rename() (a study's other files:
 * fragments, job records); 0 or -errno with the file named in err. */
MUST_USE int study_files_write_json(const char *dir, const char *name, const json_t *j, char *err,
                                    size_t errlen);
/* Reads dir/study.json (new reference in *out); 0 or -errno with a message. */
MUST_USE int study_files_read(const char *dir, json_t **out, char *err, size_t errlen);

#endif
