/*
 * config_walk.c - the YAML walker of config_load.c (config_walk.h): messages with file:line:column,
 * the member -> node origins, typed scalars (numbers, booleans and null must be plain, unquoted;
 * a quoted "2.0" is a string and the message says so), and mappings checked against their
 * tables of keys, with "did you mean" for an unknown key.
 */
#include "config/config_walk.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

/* ==== Messages ==== */

__attribute__((format(printf, 4, 5))) int walk_fail(struct loader *ld, const yaml_node_t *node,
                                                    const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ld->err_node = node;
    size_t line = node ? node->start_mark.line + 1 : 1;
    size_t col = node ? node->start_mark.column + 1 : 1;
    if (path && *path)
        snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s: %s", ld->file, line, col, path, msg);
    else
        snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->file, line, col, msg);
    return -EINVAL;
}

const char *walk_scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool walk_is_null(const yaml_node_t *n)
{
    if (!is_plain(n))
        return false;
    const char *s = walk_scalar(n);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* What the user wrote, for "got ...": "fast" / a mapping / a list / null. */
const char *walk_describe(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (walk_is_null(n))
        return "null";
    const char *s = walk_scalar(n);
    size_t sl = strlen(s);
    if (sl > 40)
        snprintf(buf, len, "\"%.37s...\"", s);
    else
        snprintf(buf, len, "\"%s\"", s);
    for (char *q = buf; *q; q++) /* keep the message on one line */
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    return buf;
}

/* ", got X" plus a hint when a quoted scalar would have been fine unquoted. */
const char *walk_got(const yaml_node_t *n, bool would_parse, char *buf, size_t len)
{
    char d[64];
    const char *what = walk_describe(n, d, sizeof(d));
    if (would_parse && n->type == YAML_SCALAR_NODE && !is_plain(n))
        snprintf(buf, len, "got the string %s (remove the quotes)", what);
    else
        snprintf(buf, len, "got %s", what);
    return buf;
}

/* ==== Origins ==== */

static void origin_push(struct loader *ld, const void *addr, bool section, const yaml_node_t *node)
{
    if (ld->n_origins == ld->cap_origins) {
        ld->cap_origins = ld->cap_origins ? 2 * ld->cap_origins : 64;
        ld->origins = xreallocarray(ld->origins, ld->cap_origins, sizeof(*ld->origins));
    }
    ld->origins[ld->n_origins++] = (struct origin){addr, section, node};
}

void walk_origin_add(struct loader *ld, const void *addr, const yaml_node_t *node)
{
    origin_push(ld, addr, false, node);
}

const yaml_node_t *walk_origin_lookup(const struct loader *ld, const void *addr, bool section)
{
    if (!addr)
        return NULL;
    for (size_t i = ld->n_origins; i-- > 0;)
        if (ld->origins[i].addr == addr && ld->origins[i].section == section)
            return ld->origins[i].node;
    return NULL;
}

/* Was this member set by the file? */
const yaml_node_t *walk_origin_find(const struct loader *ld, const void *addr)
{
    return walk_origin_lookup(ld, addr, false);
}

const yaml_node_t *walk_node_at(struct loader *ld, yaml_node_item_t id)
{
    return yaml_document_get_node(&ld->doc, id);
}

/* ==== Scalars ==== */

static bool looks_integer(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* [-+]? (digits [. digits?] | . digits) ([eE] [-+]? digits)? */
static bool looks_number(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9') {
        s++;
        digits++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool looks_inf(const char *s)
{
    if (*s == '+')
        s++;
    return strcasecmp(s, "inf") == 0 || strcasecmp(s, ".inf") == 0 ||
           strcasecmp(s, "infinity") == 0;
}

int walk_get_int(struct loader *ld, const yaml_node_t *n, const char *path, long long lo,
                 long long hi, long long *out)
{
    char g[96];
    bool plain = is_plain(n);
    const char *s = n->type == YAML_SCALAR_NODE ? walk_scalar(n) : "";
    if (n->type != YAML_SCALAR_NODE || !plain || !looks_integer(s))
        return walk_fail(
            ld, n, path, "expected an integer, %s",
            walk_got(n, n->type == YAML_SCALAR_NODE && looks_integer(s), g, sizeof(g)));
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return walk_fail(ld, n, path, "%s is out of range (%lld to %lld)", s, lo, hi);
    *out = v;
    return 0;
}

int walk_get_number(struct loader *ld, const yaml_node_t *n, const char *path, bool allow_inf,
                    double *out)
{
    char g[96];
    const char *expect = allow_inf ? "a number or \"inf\"" : "a number";
    if (n->type != YAML_SCALAR_NODE)
        return walk_fail(ld, n, path, "expected %s, %s", expect, walk_got(n, false, g, sizeof(g)));
    const char *s = walk_scalar(n);
    /* "inf" is accepted quoted too: the seed documents it as a string. */
    if (allow_inf && looks_inf(s)) {
        *out = INFINITY;
        return 0;
    }
    if (!is_plain(n) || !looks_number(s))
        return walk_fail(ld, n, path, "expected %s, %s", expect,
                         walk_got(n, looks_number(s), g, sizeof(g)));
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v))
        return walk_fail(ld, n, path, "%s is out of range", s);
    *out = v;
    return 0;
}

static bool bool_word(const char *s, bool *out)
{
    static const struct {
        const char *word;
        bool v;
    } words[] = {{"true", true}, {"false", false}, {"yes", true}, {"no", false}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i].word) == 0) {
            *out = words[i].v;
            return true;
        }
    }
    return false;
}

int walk_get_bool(struct loader *ld, const yaml_node_t *n, const char *path, bool *out)
{
    char g[96];
    bool v = false;
    bool word = n->type == YAML_SCALAR_NODE && bool_word(walk_scalar(n), &v);
    if (!word || !is_plain(n))
        return walk_fail(ld, n, path, "expected true/false (or yes/no), %s",
                         walk_got(n, word, g, sizeof(g)));
    *out = v;
    return 0;
}

/* Replaces *out (freed) with the scalar's text; null -> NULL when nullable. */
static int get_string(struct loader *ld, const yaml_node_t *n, const char *path, bool nullable,
                      char **out)
{
    char g[96];
    if (n->type != YAML_SCALAR_NODE || (!nullable && walk_is_null(n)))
        return walk_fail(ld, n, path, "expected a string, %s", walk_got(n, false, g, sizeof(g)));
    free(*out);
    *out = walk_is_null(n) ? NULL : xstrdup(walk_scalar(n));
    return 0;
}

/* ==== Sections ==== */

static void child_path(char *buf, size_t len, const char *path, const char *key)
{
    int n = path && *path ? snprintf(buf, len, "%s.%s", path, key) : snprintf(buf, len, "%s", key);
    if (n < 0 || (size_t)n >= len)
        buf[len - 1] = '\0'; /* a key path cut at CFG_PATH_MAX still names the place */
}

/* A scalar or a non-empty list of scalars into a str_list / int_list / num_list. */
static int load_list(struct loader *ld, const yaml_node_t *n, const char *path, enum ftype t,
                     void *dst)
{
    char g[96];
    if (n->type == YAML_MAPPING_NODE || walk_is_null(n))
        return walk_fail(ld, n, path, "expected a value or a list of values, %s",
                         walk_got(n, false, g, sizeof(g)));
    bool seq = n->type == YAML_SEQUENCE_NODE;
    size_t count = seq ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    if (count == 0)
        return walk_fail(ld, n, path, "the list is empty");
    size_t size = t == FT_STR_LIST   ? sizeof(char *)
                  : t == FT_INT_LIST ? sizeof(int)
                                     : sizeof(double);
    void *vals = xcalloc(count, size);
    int rc = 0;
    for (size_t i = 0; i < count && !rc; i++) {
        const yaml_node_t *item = seq ? walk_node_at(ld, n->data.sequence.items.start[i]) : n;
        char ipath[CFG_PATH_MAX + 32];
        snprintf(ipath, sizeof(ipath), seq ? "%s[%zu]" : "%s", path, i);
        long long v = 0;
        if (t == FT_STR_LIST) {
            rc = get_string(ld, item, ipath, false, &((char **)vals)[i]);
        } else if (t == FT_INT_LIST) {
            rc = walk_get_int(ld, item, ipath, INT_MIN, INT_MAX, &v);
            ((int *)vals)[i] = (int)v;
        } else {
            rc = walk_get_number(ld, item, ipath, false, &((double *)vals)[i]);
        }
        if (!rc)
            walk_origin_add(ld, (char *)vals + i * size, item);
    }
    if (rc) {
        if (t == FT_STR_LIST)
            for (size_t i = 0; i < count; i++)
                free(((char **)vals)[i]);
        free(vals);
        return rc;
    }
    /* The three list structs share their layout: a pointer, then a count. */
    struct str_list *l = dst;
    if (t == FT_STR_LIST)
        str_list_release(l);
    else
        free(l->v);
    l->v = vals;
    l->n = count;
    walk_origin_add(ld, dst, n);
    return 0;
}

static int load_value(struct loader *ld, const yaml_node_t *n, const char *path,
                      const struct field *f, void *base)
{
    void *dst = (char *)base + f->off;
    long long i = 0;
    int rc = 0;
    switch (f->type) {
    case FT_STR:
    case FT_STR_NULL:
        rc = get_string(ld, n, path, f->type == FT_STR_NULL, dst);
        break;
    case FT_INT:
        rc = walk_get_int(ld, n, path, INT_MIN, INT_MAX, &i);
        if (!rc)
            *(int *)dst = (int)i;
        break;
    case FT_U64:
        rc = walk_get_int(ld, n, path, 0, LLONG_MAX, &i);
        if (!rc)
            *(uint64_t *)dst = (uint64_t)i;
        break;
    case FT_NUM_NULL:
        if (walk_is_null(n)) {
            *(double *)dst = NAN;
            break;
        }
        /* fall through */
    case FT_NUM:
        rc = walk_get_number(ld, n, path, false, dst);
        break;
    case FT_BOOL:
        rc = walk_get_bool(ld, n, path, dst);
        break;
    case FT_BOOL_INT: {
        bool b = false;
        rc = walk_get_bool(ld, n, path, &b);
        if (!rc)
            *(int *)dst = b;
        break;
    }
    case FT_MAP:
        return walk_load_map(ld, n, path, f->sub, f->n_sub, dst);
    case FT_STR_LIST:
    case FT_INT_LIST:
    case FT_NUM_LIST:
        return load_list(ld, n, path, f->type, dst);
    case FT_CUSTOM:
        return f->custom(ld, n, path, base);
    }
    if (!rc)
        walk_origin_add(ld, dst, n);
    return rc;
}

/* Whether outer is a mapping or list whose text holds inner (by their places in the file). */
bool walk_node_holds(const yaml_node_t *outer, const yaml_node_t *inner)
{
    return outer != inner && outer->type != YAML_SCALAR_NODE &&
           outer->start_mark.index <= inner->start_mark.index &&
           inner->start_mark.index < outer->end_mark.index;
}

static bool skipped(const struct loader *ld, const yaml_node_t *n)
{
    for (size_t i = 0; i < ld->n_skip; i++)
        if (ld->skip[i] == n)
            return true;
    return false;
}

/* A key, or its value, or an item of its list value, was in error: load the file without it. */
static bool pair_skipped(const struct loader *ld, const yaml_node_t *k, const yaml_node_t *v)
{
    if (!ld->n_skip)
        return false;
    if (skipped(ld, k) || skipped(ld, v))
        return true;
    if (v->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            const yaml_node_t *item = yaml_document_get_node((yaml_document_t *)&ld->doc, *it);
            if (item && item->type == YAML_SCALAR_NODE && skipped(ld, item))
                return true;
        }
    return false;
}

/* Levenshtein distance, for "did you mean": keys are short (at most 31 bytes compared). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 31 || m > 31)
        return SIZE_MAX;
    size_t row[32];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* The allowed key closest to what was written, when it is close enough to be a typo (a third
 * of its letters at most, one for short keys); NULL otherwise. */
static const char *closest_key(const struct field *fields, size_t n, const char *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, len = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, fields[i].key);
        if (d < best_d) {
            best_d = d;
            best = fields[i].key;
        }
    }
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    return best && best_d <= limit ? best : NULL;
}

static void allowed_keys(const struct field *fields, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", fields[i].key);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Walks a mapping against a table of keys; base is the struct the offsets point into. */
int walk_load_map(struct loader *ld, const yaml_node_t *node, const char *path,
                  const struct field *fields, size_t n_fields, void *base)
{
    char g[96];
    if (node->type != YAML_MAPPING_NODE)
        return walk_fail(ld, node, path, "expected a mapping, %s",
                         walk_got(node, false, g, sizeof(g)));
    const yaml_node_t *seen[MAX_FIELDS] = {0};
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top;
         pr++) {
        const yaml_node_t *k = walk_node_at(ld, pr->key);
        const yaml_node_t *v = walk_node_at(ld, pr->value);
        if (!k || !v)
            return walk_fail(ld, node, path, "malformed mapping");
        if (pair_skipped(ld, k, v))
            continue;
        if (k->type != YAML_SCALAR_NODE)
            return walk_fail(ld, k, path, "keys must be plain words, got %s",
                             walk_describe(k, g, sizeof(g)));
        size_t f = 0;
        while (f < n_fields && strcmp(fields[f].key, walk_scalar(k)) != 0)
            f++;
        char cpath[CFG_PATH_MAX];
        child_path(cpath, sizeof(cpath), path, walk_scalar(k));
        if (f == n_fields) {
            char allowed[512];
            allowed_keys(fields, n_fields, allowed, sizeof(allowed));
            const char *close = closest_key(fields, n_fields, walk_scalar(k));
            return walk_fail(ld, k, cpath, "unknown key%s%s%s; allowed keys%s%s: %s",
                             close ? "; did you mean \"" : "", close ? close : "",
                             close ? "\"?" : "", path && *path ? " in " : "",
                             path && *path ? path : "", allowed);
        }
        if (seen[f])
            return walk_fail(ld, k, cpath, "duplicate key (first given at line %zu)",
                             seen[f]->start_mark.line + 1);
        seen[f] = k;
        int rc = load_value(ld, v, cpath, &fields[f], base);
        if (rc)
            return rc;
    }
    origin_push(ld, base, true, node);
    return 0;
}
