/*
 * trace.c - trace readers. Column names are matched case-insensitively against the names the
 * public traces use, so their files load as published:
 *   arrival: timestamp (Mooncake, numbers in trace.time_unit), TIMESTAMP (Azure, a date
 *            "YYYY-MM-DD HH:MM:SS[.frac]", read as UTC)
 *   input:   input_length, input_tokens, ContextTokens
 *   output:  output_length, output_tokens, GeneratedTokens
 *   blocks:  hash_ids (a JSON list of integers; in CSV a quoted "[1, 2]")
 * Only differences of arrival times matter: the first request is due when the point starts.
 */

#include "workload/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#define TRACE_MAX_EPOCH_S 7000000000LL

enum col { COL_T, COL_IN, COL_OUT, COL_HASH, COL__N };

static const struct {
    const char *name;
    enum col col;
} col_names[] = {
    {"timestamp", COL_T},       {"arrival_time", COL_T},      {"input_length", COL_IN},
    {"input_tokens", COL_IN},   {"contexttokens", COL_IN},    {"output_length", COL_OUT},
    {"output_tokens", COL_OUT}, {"generatedtokens", COL_OUT}, {"hash_ids", COL_HASH},
};

static int col_of(const char *name)
{
    for (size_t i = 0; i < sizeof(col_names) / sizeof(col_names[0]); i++)
        if (strcasecmp(name, col_names[i].name) == 0)
            return (int)col_names[i].col;
    return -1;
}

struct reader {
    const char *path;
    size_t line;
    double unit_ns;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int bad(struct reader *rd, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(rd->err, rd->errlen, "%s:%zu: %s", rd->path, rd->line, msg);
    return -EINVAL;
}

/* "2023-11-16 18:15:46.6805900" (or with a T) -> ns since the epoch, UTC. */
static int parse_date(const char *s, int64_t *ns)
{
    int y, mo, d, h, mi;
    double sec;
    char sep;
    if (sscanf(s, "%d-%d-%d%c%d:%d:%lf", &y, &mo, &d, &sep, &h, &mi, &sec) != 7 ||
        (sep != ' ' && sep != 'T'))
        return -EINVAL;
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    time_t t = timegm(&tm);
    /* 1970 to ~2191: ns since the epoch stay within int64 (and fields out of range, which
     * timegm would carry into far years, are refused). */
    if (t < 0 || t > TRACE_MAX_EPOCH_S || !(sec >= 0 && sec < 61))
        return -EINVAL;
    *ns = (int64_t)t * 1000000000 + (int64_t)llround(sec * 1e9);
    return 0;
}

static int parse_time(struct reader *rd, const char *s, int64_t *ns)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == '\0' && isfinite(v) && v >= 0 && v * rd->unit_ns < 9.0e18) {
        *ns = (int64_t)llround(v * rd->unit_ns);
        return 0;
    }
    if (parse_date(s, ns) == 0)
        return 0;
    return bad(rd,
               "timestamp: expected a number >= 0 or a date \"YYYY-MM-DD HH:MM:SS\", "
               "got \"%.40s\"",
               s);
}

static int parse_len(struct reader *rd, const char *key, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno || v < 1 || v > 100000000)
        return bad(rd, "%s: expected an integer >= 1, got \"%.40s\"", key, s);
    *out = (int)v;
    return 0;
}

static int parse_hashes(struct reader *rd, json_t *a, struct trace_row *row)
{
    if (!json_is_array(a) || json_array_size(a) > TRACE_MAX_HASHES)
        return bad(rd, "hash_ids: expected a list of at most %u integers", TRACE_MAX_HASHES);
    row->n_hash = json_array_size(a);
    row->hash_ids = row->n_hash ? xcalloc(row->n_hash, sizeof(uint64_t)) : NULL;
    for (size_t i = 0; i < row->n_hash; i++) {
        json_t *h = json_array_get(a, i);
        if (!json_is_integer(h) || json_integer_value(h) < 0)
            return bad(rd, "hash_ids[%zu]: expected an integer >= 0", i);
        row->hash_ids[i] = (uint64_t)json_integer_value(h);
    }
    return 0;
}

/* A JSON value as text for the shared parsers (numbers and strings). */
static const char *scalar_text(json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.17g", json_real_value(v));
    else
        snprintf(buf, len, "(not a number)");
    return buf;
}

static int jsonl_row(struct reader *rd, json_t *o, struct trace_row *row)
{
    if (!json_is_object(o))
        return bad(rd, "expected an object");
    json_t *cols[COL__N] = {0};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int c = col_of(key);
        if (c >= 0)
            cols[c] = v;
    }
    static const char *const need[] = {"timestamp", "input_length", "output_length"};
    for (int c = COL_T; c <= COL_OUT; c++)
        if (!cols[c])
            return bad(rd, "missing \"%s\"", need[c]);
    char b[64];
    int rc = parse_time(rd, scalar_text(cols[COL_T], b, sizeof(b)), &row->t_ns);
    if (!rc)
        rc = parse_len(rd, "input_length", scalar_text(cols[COL_IN], b, sizeof(b)),
                       &row->input_tokens);
    if (!rc)
        rc = parse_len(rd, "output_length", scalar_text(cols[COL_OUT], b, sizeof(b)),
                       &row->output_tokens);
    if (!rc && cols[COL_HASH])
        rc = parse_hashes(rd, cols[COL_HASH], row);
    return rc;
}

/* Splits a CSV line in place (double quotes, "" inside them); at most max fields. */
static size_t csv_split(char *s, char **f, size_t max)
{
    size_t n = 0;
    s[strcspn(s, "\r\n")] = '\0';
    while (n < max) {
        if (*s == '"') {
            char *w = ++s, *r = s;
            f[n++] = w;
            while (*r && !(*r == '"' && r[1] != '"')) {
                if (*r == '"')
                    r++;
                *w++ = *r++;
            }
            if (*r == '"')
                r++;
            *w = '\0';
            s = r + strcspn(r, ",");
        } else {
            f[n++] = s;
            s += strcspn(s, ",");
        }
        if (*s != ',') {
            *s = '\0';
            break;
        }
        *s++ = '\0';
    }
    return n;
}

#define CSV_MAX_COLS 64

static int csv_row(struct reader *rd, char *line, const int *map, size_t n_map,
                   struct trace_row *row)
{
    char *f[CSV_MAX_COLS];
    size_t n = csv_split(line, f, CSV_MAX_COLS);
    const char *cols[COL__N] = {0};
    for (size_t i = 0; i < n && i < n_map; i++)
        if (map[i] >= 0)
            cols[map[i]] = f[i];
    static const char *const need[] = {"timestamp", "input_length", "output_length"};
    for (int c = COL_T; c <= COL_OUT; c++)
        if (!cols[c] || !*cols[c])
            return bad(rd, "missing %s", need[c]);
    int rc = parse_time(rd, cols[COL_T], &row->t_ns);
    if (!rc)
        rc = parse_len(rd, "input_length", cols[COL_IN], &row->input_tokens);
    if (!rc)
        rc = parse_len(rd, "output_length", cols[COL_OUT], &row->output_tokens);
    if (!rc && cols[COL_HASH] && *cols[COL_HASH]) {
        json_t *a = json_loads(cols[COL_HASH], 0, NULL);
        rc = parse_hashes(rd, a, row);
        json_decref(a);
    }
    return rc;
}

static int csv_header(struct reader *rd, char *line, int *map, size_t *n_map)
{
    char *f[CSV_MAX_COLS];
    size_t n = csv_split(line, f, CSV_MAX_COLS);
    bool seen[COL__N] = {0};
    for (size_t i = 0; i < n; i++) {
        char *name = f[i] + strspn(f[i], " ");
        map[i] = col_of(name);
        if (map[i] >= 0)
            seen[map[i]] = true;
    }
    *n_map = n;
    if (!seen[COL_T] || !seen[COL_IN] || !seen[COL_OUT])
        return bad(rd, "the header needs a timestamp, an input_length (or ContextTokens) and an "
                       "output_length (or GeneratedTokens) column");
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct trace_row *x = a, *y = b;
    return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

static void row_release(struct trace_row *r)
{
    free(r->hash_ids);
}

int trace_load(struct trace **out, const struct trace_cfg *cfg, char *err, size_t errlen)
{
    struct reader rd = {.path = cfg->path,
                        .unit_ns = trace_time_unit_ns(cfg->time_unit),
                        .err = err,
                        .errlen = errlen};
    enum trace_format fmt;
    if (trace_format_parse(cfg->format, cfg->path, &fmt) || rd.unit_ns == 0) {
        snprintf(err, errlen, "%s: unknown format or time unit", cfg->path);
        return -EINVAL;
    }
    FILE *f = fopen(cfg->path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", cfg->path, strerror(e));
        return e == ENOENT ? -ENOENT : -EIO;
    }
    struct trace *t = xcalloc(1, sizeof(*t));
    size_t cap = 0, n_map = 0;
    int map[CSV_MAX_COLS];
    bool header = fmt == TRACE_CSV;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &lcap, f)) >= 0) {
        rd.line++;
        if ((size_t)n > TRACE_MAX_LINE) {
            rc = bad(&rd, "the line is longer than %u bytes", TRACE_MAX_LINE);
            break;
        }
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (header) {
            rc = csv_header(&rd, line, map, &n_map);
            header = false;
            continue;
        }
        if (t->n == TRACE_MAX_ROWS) {
            rc = bad(&rd, "more than %u rows", TRACE_MAX_ROWS);
            break;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 1024;
            t->v = xreallocarray(t->v, cap, sizeof(*t->v));
        }
        struct trace_row *row = &t->v[t->n];
        memset(row, 0, sizeof(*row));
        if (fmt == TRACE_CSV) {
            rc = csv_row(&rd, line, map, n_map, row);
        } else {
            json_error_t je;
            /* One value a line: anything after it but white space is an error. */
            json_t *o = json_loadb(line, (size_t)n, 0, &je);
            rc = o ? jsonl_row(&rd, o, row) : bad(&rd, "%d: %s", je.column, je.text);
            json_decref(o);
        }
        if (rc)
            row_release(row);
        else
            t->n++;
    }
    free(line);
    fclose(f);
    if (!rc && t->n == 0) {
        snprintf(err, errlen, "%s: the trace has no rows", cfg->path);
        rc = -EINVAL;
    }
    if (rc) {
        trace_free(t);
        return rc;
    }
    /* qsort is not stable: equal times are rare and their order does not change a schedule. */
    qsort(t->v, t->n, sizeof(*t->v), by_time);
    *out = t;
    return 0;
}

void trace_offsets(const struct trace *t, double speed, mono_ns *off, size_t n)
{
    int64_t t0 = t->n ? t->v[0].t_ns : 0;
    for (size_t i = 0; i < n && i < t->n; i++) {
        double d = (double)(t->v[i].t_ns - t0) / speed;
        off[i] = d < 9.0e18 ? (mono_ns)llround(d) : (mono_ns)9.0e18;
    }
}

void trace_free(struct trace *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        row_release(&t->v[i]);
    free(t->v);
    free(t);
}
