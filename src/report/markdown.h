/*
 * markdown.h - the report's summary as Markdown (terminals, issues, wikis): the guidance
 * matrix, each run's points, predicted vs measured and the comparison, from the same model
 * the page is drawn from.
 */
#ifndef TB_REPORT_MARKDOWN_H
#define TB_REPORT_MARKDOWN_H

#include <stdio.h>

#include <jansson.h>

#include "core/xalloc.h"

void markdown_write(FILE *f, const json_t *model);
/* The comparison table alone (what `compare` prints). */
void markdown_compare(FILE *f, const json_t *cmp);
/* Writes the summary to path through a temporary file: 0 or -errno. */
MUST_USE int markdown_write_file(const char *path, const json_t *model);

#endif
