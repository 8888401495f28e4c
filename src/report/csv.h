/*
 * csv.h - a small RFC 4180 reader for the CSV files testbench writes (summary.csv, study.csv):
 * quoted fields with doubled quotes and line breaks, \n or \r\n line ends. Cells are looked up
 * by column name, so extra columns are ignored and missing ones read as empty.
 */
#ifndef TB_REPORT_CSV_H
#define TB_REPORT_CSV_H

#include <stddef.h>

#include "core/xalloc.h"

/* A file larger than this is not one of ours (a study of 10,000 rows is ~5 MiB). */
#define CSV_MAX_BYTES (256u * 1024 * 1024)

struct csv_table {
    char **header; /* ncols names */
    size_t ncols;
    char ***rows; /* nrows arrays of ncols strings (padded with "" or cut to the header) */
    size_t nrows;
};

/* 0, -ENOENT/-EIO (errno of the read), -ESPIPE (not a regular file: a FIFO would block the
 * read, a device may never end), -E2BIG (over CSV_MAX_BYTES) or -EINVAL (no header). A row
 * wider than the header loses its surplus cells; a shorter one reads as empty cells. */
MUST_USE int csv_table_load(struct csv_table *t, const char *path);
void csv_table_release(struct csv_table *t);
/* Index of a column, or -1. */
int csv_table_col(const struct csv_table *t, const char *name);
/* The cell of row r in the named column: "" when the column is absent. Borrowed. */
const char *csv_table_get(const struct csv_table *t, size_t r, const char *name);
/* The cell as a number: NAN when empty, absent or not a number. */
double csv_table_num(const struct csv_table *t, size_t r, const char *name);

#endif
