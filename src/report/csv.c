/*
 * csv.c - reads a whole CSV file into memory and splits it in one pass (a state machine over
 * the bytes, so quoted commas and line breaks need no second look).
 */
#include "report/csv.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/fs.h"

static int file_read_all(const char *path, char **out, size_t *len)
{
    FILE *f = NULL;
    int orc = fs_open_regular(path, &f, NULL);
    if (orc)
        return orc == -EINVAL ? -ESPIPE : orc;
    struct buf b;
    buf_init(&b, CSV_MAX_BYTES);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = -EIO;
    fclose(f);
    if (!rc && !b.data)
        rc = buf_append(&b, "", 0);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    *out = buf_take(&b, len);
    return 0;
}

/* Appends one field to a growing row. */
static void row_push(char ***row, size_t *n, size_t *cap, char *field)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *row = xreallocarray(*row, *cap, sizeof(**row));
    }
    (*row)[(*n)++] = field;
}

static void rows_push(struct csv_table *t, size_t *cap, char **row)
{
    if (t->nrows == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        t->rows = xreallocarray(t->rows, *cap, sizeof(*t->rows));
    }
    t->rows[t->nrows++] = row;
}

int csv_table_load(struct csv_table *t, const char *path)
{
    memset(t, 0, sizeof(*t));
    char *text = NULL;
    size_t len = 0;
    int rc = file_read_all(path, &text, &len);
    if (rc)
        return rc;
    char **row = NULL;
    size_t nrow = 0, caprow = 0, caprows = 0;
    struct buf field;
    buf_init(&field, CSV_MAX_BYTES);
    bool quoted = false, any = false;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? text[i] : '\n';
        if (quoted) {
            if (c == '"' && i + 1 < len && text[i + 1] == '"') {
                rc = buf_append(&field, "\"", 1);
                i++;
            } else if (c == '"') {
                quoted = false;
            } else if (i < len) {
                rc = buf_append(&field, &c, 1);
            }
        } else if (c == '"') {
            quoted = true;
            any = true;
        } else if (c == ',') {
            row_push(&row, &nrow, &caprow, xstrdup(field.data ? field.data : ""));
            buf_reset(&field);
            any = true;
        } else if (c == '\r') {
            continue;
        } else if (c == '\n') {
            if (any || field.len) {
                row_push(&row, &nrow, &caprow, xstrdup(field.data ? field.data : ""));
                if (!t->header) {
                    t->header = row;
                    t->ncols = nrow;
                } else {
                    /* Pad or cut to the header's width: a short row reads as empty cells,
                     * the surplus cells of a long one (a trailing comma from a spreadsheet)
                     * are dropped, freed before the array shrinks past them. */
                    for (size_t k = t->ncols; k < nrow; k++)
                        free(row[k]);
                    row = xreallocarray(row, t->ncols ? t->ncols : 1, sizeof(*row));
                    for (size_t k = nrow; k < t->ncols; k++)
                        row[k] = xstrdup("");
                    rows_push(t, &caprows, row);
                }
                row = NULL;
                nrow = caprow = 0;
            }
            buf_reset(&field);
            any = false;
        } else {
            rc = buf_append(&field, &c, 1);
        }
        if (rc)
            break;
    }
    for (size_t k = 0; k < nrow; k++)
        free(row[k]);
    free(row);
    buf_release(&field);
    free(text);
    if (!rc && !t->header)
        rc = -EINVAL;
    if (rc)
        csv_table_release(t);
    return rc;
}

void csv_table_release(struct csv_table *t)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(t->rows);
    for (size_t c = 0; t->header && c < t->ncols; c++)
        free(t->header[c]);
    free(t->header);
    memset(t, 0, sizeof(*t));
}

int csv_table_col(const struct csv_table *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->header[c], name) == 0)
            return (int)c;
    return -1;
}

const char *csv_table_get(const struct csv_table *t, size_t r, const char *name)
{
    int c = csv_table_col(t, name);
    if (c < 0 || r >= t->nrows)
        return "";
    return t->rows[r][c];
}

double csv_table_num(const struct csv_table *t, size_t r, const char *name)
{
    const char *s = csv_table_get(t, r, name);
    if (!*s)
        return NAN;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end)
        return NAN;
    return v;
}
