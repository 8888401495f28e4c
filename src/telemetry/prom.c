/*
 * prom.c - Prometheus text exposition parser (format 0.0.4) and vLLM extraction.
 *
 * Grammar, one line at a time:
 *   # HELP name docstring | # TYPE name counter|gauge|histogram|summary|untyped | # anything
 *   name [ "{" lname "=" "\"" escaped "\"" { "," lname "=" ... } [","] "}" ] value [ timestamp ]
 * where name is [a-zA-Z_:][a-zA-Z0-9_:]*, lname is [a-zA-Z_][a-zA-Z0-9_]*, escapes are \\ \" \n,
 * value is a float or NaN, +Inf, -Inf, and timestamp is integer milliseconds. A line that does
 * not fit is counted as malformed and skipped: one odd line from a server must not cost the
 * whole scrape. Label values are unescaped into a scratch copy of the text, never longer
 * than the input, so no line needs a length limit of its own.
 */
#include "telemetry/prom.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

struct cursor {
    const char *p;
    const char *end;
};

static bool is_name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool is_name_char(char c, bool colon)
{
    return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

static void skip_blanks(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Copies a name into *out (scratch); false if none starts here. */
static bool take_name(struct cursor *c, bool colon, char **scratch, const char **out)
{
    const char *s = c->p;
    if (c->p >= c->end || !is_name_start(*c->p, colon))
        return false;
    while (c->p < c->end && is_name_char(*c->p, colon))
        c->p++;
    size_t n = (size_t)(c->p - s);
    memcpy(*scratch, s, n);
    (*scratch)[n] = '\0';
    *out = *scratch;
    *scratch += n + 1;
    return true;
}

/* A quoted label value starting at the opening quote, unescaped into scratch. */
static bool take_quoted(struct cursor *c, char **scratch, const char **out)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    char *w = *scratch;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\\') {
            if (c->p >= c->end)
                return false;
            char e = *c->p++;
            if (e == 'n')
                ch = '\n';
            else if (e == '\\' || e == '"')
                ch = e;
            else
                return false;
        }
        *w++ = ch;
    }
    if (c->p >= c->end)
        return false; /* unterminated */
    c->p++;
    *w = '\0';
    *out = *scratch;
    *scratch = w + 1;
    return true;
}

/* The next blank-delimited token as [s, s+n). */
static bool take_token(struct cursor *c, const char **s, size_t *n)
{
    *s = c->p;
    while (c->p < c->end && *c->p != ' ' && *c->p != '\t')
        c->p++;
    *n = (size_t)(c->p - *s);
    return *n > 0;
}

static bool parse_value(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* strtod also takes hex floats and "infinity"; the format allows Go ParseFloat's set,
     * which is close enough that being generous here loses nothing. */
    char *e;
    errno = 0;
    double v = strtod(tmp, &e);
    if (e == tmp || *e != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_timestamp(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    if (n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *e;
    errno = 0;
    long long v = strtoll(tmp, &e, 10);
    if (e == tmp || *e != '\0' || errno == ERANGE)
        return false;
    *out = v;
    return true;
}

static bool parse_comment(struct cursor *c, char *scratch)
{
    c->p++; /* '#' */
    skip_blanks(c);
    const char *kw;
    size_t n;
    if (!take_token(c, &kw, &n))
        return true; /* a bare "#" is a comment */
    bool help = n == 4 && memcmp(kw, "HELP", 4) == 0;
    bool type = n == 4 && memcmp(kw, "TYPE", 4) == 0;
    if (!help && !type)
        return true;
    skip_blanks(c);
    const char *name;
    if (!take_name(c, true, &scratch, &name))
        return false;
    if (c->p < c->end && *c->p != ' ' && *c->p != '\t')
        return false;
    if (help)
        return true; /* the docstring may hold anything */
    skip_blanks(c);
    const char *t;
    if (!take_token(c, &t, &n))
        return false;
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == n && memcmp(types[i], t, n) == 0) {
            skip_blanks(c);
            return c->p == c->end;
        }
    return false;
}

static bool parse_sample(struct cursor *c, char *scratch, struct prom_sample *s,
                         struct prom_label *labels)
{
    memset(s, 0, sizeof(*s));
    s->labels = labels;
    if (!take_name(c, true, &scratch, &s->name))
        return false;
    skip_blanks(c);
    if (c->p < c->end && *c->p == '{') {
        c->p++;
        for (;;) {
            skip_blanks(c);
            if (c->p < c->end && *c->p == '}') {
                c->p++;
                break;
            }
            if (s->n_labels == PROM_MAX_LABELS)
                return false;
            struct prom_label *l = &labels[s->n_labels];
            if (!take_name(c, false, &scratch, &l->name))
                return false;
            skip_blanks(c);
            if (c->p >= c->end || *c->p != '=')
                return false;
            c->p++;
            skip_blanks(c);
            if (!take_quoted(c, &scratch, &l->value))
                return false;
            s->n_labels++;
            skip_blanks(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == '}') {
                c->p++;
                break;
            }
            return false;
        }
    }
    skip_blanks(c);
    const char *v;
    size_t n;
    if (!take_token(c, &v, &n) || !parse_value(v, n, &s->value))
        return false;
    skip_blanks(c);
    if (c->p < c->end) {
        if (!take_token(c, &v, &n) || !parse_timestamp(v, n, &s->timestamp_ms))
            return false;
        s->has_timestamp = true;
        skip_blanks(c);
    }
    return c->p == c->end;
}

int prom_parse(const char *text, size_t len, prom_sample_cb cb, void *ctx, struct prom_stats *st)
{
    struct prom_stats local = {0};
    struct prom_label labels[PROM_MAX_LABELS];
    /* Names and unescaped values of one line never need more than the line plus one NUL each. */
    char *scratch = malloc(len + 2 * PROM_MAX_LABELS + 4);
    if (!scratch)
        return -ENOMEM;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        struct cursor c = {p, le};
        if (c.end > c.p && c.end[-1] == '\r')
            c.end--;
        p = nl ? nl + 1 : end;
        skip_blanks(&c);
        if (c.p == c.end)
            continue;
        local.lines++;
        if (*c.p == '#') {
            local.comments++;
            if (!parse_comment(&c, scratch))
                local.malformed++;
            continue;
        }
        struct prom_sample s;
        if (!parse_sample(&c, scratch, &s, labels)) {
            local.malformed++;
            continue;
        }
        local.samples++;
        if (cb)
            cb(&s, ctx);
    }
    free(scratch);
    if (st)
        *st = local;
    return 0;
}

/* ---- histogram quantile ---------------------------------------------------------------- */

double prom_hist_quantile(const struct prom_hist *a, const struct prom_hist *b, double q)
{
    if (!b || b->n == 0 || !(q >= 0 && q <= 1))
        return NAN;
    if (a && a->n != b->n)
        return NAN;
    double cum[PROM_MAX_BUCKETS];
    for (size_t i = 0; i < b->n; i++) {
        if (a && a->le[i] != b->le[i])
            return NAN;
        cum[i] = b->cum[i] - (a ? a->cum[i] : 0);
        if (cum[i] < 0 || (i > 0 && cum[i] < cum[i - 1]))
            return NAN; /* a counter reset (server restart) or a broken exposition */
    }
    size_t n = b->n;
    if (!isinf(b->le[n - 1]))
        return NAN; /* without +Inf the total is unknown (Prometheus says the same) */
    double total = cum[n - 1];
    if (total <= 0)
        return NAN;
    double rank = q * total;
    size_t i = 0;
    while (i < n - 1 && cum[i] < rank)
        i++;
    if (i == n - 1) /* in the +Inf bucket: the highest finite bound is all we know */
        return n >= 2 ? b->le[n - 2] : NAN;
    double lo = 0, below = 0;
    if (i > 0) {
        lo = b->le[i - 1];
        below = cum[i - 1];
    } else if (b->le[0] <= 0) {
        return b->le[0];
    }
    double in = cum[i] - below;
    if (in <= 0)
        return b->le[i];
    return lo + (b->le[i] - lo) * (rank - below) / in;
}

/* ---- vLLM extraction -------------------------------------------------------------------- */

/* Index 0: today's name; 1: the older name that older vLLM versions expose. */
enum { GEN_NEW, GEN_OLD, GEN__COUNT };

struct acc {
    double sum;
    size_t n;
};

struct extract {
    struct acc kv[GEN__COUNT], running, waiting, preempt, prompt, gen;
    struct acc queries[GEN__COUNT], hits[GEN__COUNT];
    struct prom_hist ttft, itl[GEN__COUNT];
    bool hist_overflow;
};

static void acc_add(struct acc *a, double v)
{
    if (isnan(v))
        return;
    a->sum += v;
    a->n++;
}

static void hist_add(struct prom_hist *h, double le, double v, bool *overflow)
{
    size_t i = 0;
    while (i < h->n && h->le[i] < le)
        i++;
    if (i < h->n && h->le[i] == le) {
        h->cum[i] += v;
        return;
    }
    if (h->n == PROM_MAX_BUCKETS) {
        *overflow = true;
        return;
    }
    memmove(&h->le[i + 1], &h->le[i], (h->n - i) * sizeof(double));
    memmove(&h->cum[i + 1], &h->cum[i], (h->n - i) * sizeof(double));
    h->le[i] = le;
    h->cum[i] = v;
    h->n++;
}

static const char *label_get(const struct prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}

static void bucket(struct prom_hist *h, const struct prom_sample *s, bool *overflow)
{
    const char *le = label_get(s, "le");
    double bound;
    if (!le || !parse_value(le, strlen(le), &bound) || isnan(bound) || isnan(s->value))
        return;
    hist_add(h, bound, s->value, overflow);
}

static void on_sample(const struct prom_sample *s, void *ctx)
{
    struct extract *x = ctx;
    const char *n = s->name;
    if (strncmp(n, "vllm:", 5) != 0)
        return;
    n += 5;
    if (strcmp(n, "kv_cache_usage_perc") == 0)
        acc_add(&x->kv[GEN_NEW], s->value);
    else if (strcmp(n, "gpu_cache_usage_perc") == 0)
        acc_add(&x->kv[GEN_OLD], s->value);
    else if (strcmp(n, "num_requests_running") == 0)
        acc_add(&x->running, s->value);
    else if (strcmp(n, "num_requests_waiting") == 0)
        acc_add(&x->waiting, s->value);
    else if (strcmp(n, "num_preemptions_total") == 0)
        acc_add(&x->preempt, s->value);
    else if (strcmp(n, "prompt_tokens_total") == 0)
        acc_add(&x->prompt, s->value);
    else if (strcmp(n, "generation_tokens_total") == 0)
        acc_add(&x->gen, s->value);
    else if (strcmp(n, "prefix_cache_queries_total") == 0)
        acc_add(&x->queries[GEN_NEW], s->value);
    else if (strcmp(n, "prefix_cache_hits_total") == 0)
        acc_add(&x->hits[GEN_NEW], s->value);
    else if (strcmp(n, "gpu_prefix_cache_queries_total") == 0)
        acc_add(&x->queries[GEN_OLD], s->value);
    else if (strcmp(n, "gpu_prefix_cache_hits_total") == 0)
        acc_add(&x->hits[GEN_OLD], s->value);
    else if (strcmp(n, "time_to_first_token_seconds_bucket") == 0)
        bucket(&x->ttft, s, &x->hist_overflow);
    else if (strcmp(n, "inter_token_latency_seconds_bucket") == 0)
        bucket(&x->itl[GEN_NEW], s, &x->hist_overflow);
    else if (strcmp(n, "time_per_output_token_seconds_bucket") == 0)
        bucket(&x->itl[GEN_OLD], s, &x->hist_overflow);
}

static int pick(const struct acc *a, size_t n_gen)
{
    for (size_t g = 0; g < n_gen; g++)
        if (a[g].n)
            return (int)g;
    return -1;
}

static struct prom_hist *hist_dup(const struct prom_hist *h)
{
    struct prom_hist *d = xmalloc(sizeof(*d));
    *d = *h;
    return d;
}

int server_sample_parse(const char *text, size_t len, struct server_sample *out,
                        struct prom_stats *st)
{
    struct extract *x = xcalloc(1, sizeof(*x));
    memset(out, 0, sizeof(*out));
    int rc = prom_parse(text, len, on_sample, x, st);
    if (rc)
        goto out;
    int g = pick(x->kv, GEN__COUNT);
    if (g >= 0) {
        /* Each engine reports the fraction of its own cache; with equal engines the mean
         * is the fraction of the whole. */
        out->kv_usage_pct = 100.0 * x->kv[g].sum / (double)x->kv[g].n;
        out->valid |= 1u << SF_KV;
    }
    if (x->running.n) {
        out->requests_running = x->running.sum;
        out->valid |= 1u << SF_RUNNING;
    }
    if (x->waiting.n) {
        out->requests_waiting = x->waiting.sum;
        out->valid |= 1u << SF_WAITING;
    }
    if (x->preempt.n) {
        out->preemptions = x->preempt.sum;
        out->valid |= 1u << SF_PREEMPT;
    }
    if (x->prompt.n) {
        out->prompt_tokens = x->prompt.sum;
        out->valid |= 1u << SF_PROMPT_TOK;
    }
    if (x->gen.n) {
        out->generation_tokens = x->gen.sum;
        out->valid |= 1u << SF_GEN_TOK;
    }
    for (int k = 0; k < GEN__COUNT; k++)
        if (x->queries[k].n && x->hits[k].n) {
            out->prefix_queries = x->queries[k].sum;
            out->prefix_hits = x->hits[k].sum;
            out->valid |= 1u << SF_PREFIX;
            break;
        }
    if (x->ttft.n && !x->hist_overflow) {
        out->ttft = hist_dup(&x->ttft);
        out->valid |= 1u << SF_TTFT;
    }
    for (int k = 0; k < GEN__COUNT; k++)
        if (x->itl[k].n && !x->hist_overflow) {
            out->itl = hist_dup(&x->itl[k]);
            out->valid |= 1u << SF_ITL;
            break;
        }
out:
    free(x);
    return rc;
}

void server_sample_release(struct server_sample *s)
{
    if (!s)
        return;
    free(s->ttft);
    free(s->itl);
    s->ttft = s->itl = NULL;
    s->valid = 0;
}

void server_sample_copy(struct server_sample *dst, const struct server_sample *src)
{
    *dst = *src;
    dst->ttft = src->ttft ? hist_dup(src->ttft) : NULL;
    dst->itl = src->itl ? hist_dup(src->itl) : NULL;
}
