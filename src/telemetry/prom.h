/*
 * prom.h - a Prometheus text exposition (format 0.0.4) parser, and the vLLM view of it.
 * The parser is blind to which metrics exist: it hands each sample line to a callback;
 * malformed lines are skipped and counted, never fatal. Private to the telemetry module.
 */
#ifndef TB_TELEMETRY_PROM_H
#define TB_TELEMETRY_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_MAX_LABELS 32  /* more on one line: the line is malformed for us */
#define PROM_MAX_BUCKETS 64 /* vLLM's TTFT histogram has ~20 */

struct prom_label {
    const char *name;  /* NUL-terminated; valid during the callback only */
    const char *value; /* unescaped (\\, \", \n) */
};

struct prom_sample {
    const char *name;
    const struct prom_label *labels;
    size_t n_labels;
    double value; /* NaN and +-Inf as parsed */
    bool has_timestamp;
    int64_t timestamp_ms;
};

struct prom_stats {
    size_t lines;     /* non-empty lines seen */
    size_t samples;   /* sample lines handed to the callback */
    size_t comments;  /* # HELP / # TYPE / other comments */
    size_t malformed; /* lines skipped */
};

/* Called once per sample line; the sample and its strings are borrowed for the call. */
typedef void (*prom_sample_cb)(const struct prom_sample *s, void *ctx);

/* Parses text[0..len) (need not be NUL-terminated). Fills st (may be NULL). 0 or -ENOMEM. */
int prom_parse(const char *text, size_t len, prom_sample_cb cb, void *ctx, struct prom_stats *st);

/* A cumulative histogram summed over series (engines) by bucket bound. */
struct prom_hist {
    size_t n;
    double le[PROM_MAX_BUCKETS];  /* ascending upper bounds; the last is +Inf when present */
    double cum[PROM_MAX_BUCKETS]; /* cumulative counts */
};

/*
 * q-quantile of the observations between two cumulative snapshots (b - a; a may be NULL),
 * interpolated linearly inside the bucket as Prometheus histogram_quantile does. NAN when
 * there is nothing to rank or the bounds of a and b differ, or a counter went backwards.
 */
double prom_hist_quantile(const struct prom_hist *a, const struct prom_hist *b, double q);

/* What the sampler keeps from one vLLM scrape. */
enum server_field {
    SF_KV,
    SF_RUNNING,
    SF_WAITING,
    SF_PREFIX, /* both queries and hits */
    SF_PREEMPT,
    SF_PROMPT_TOK,
    SF_GEN_TOK,
    SF_TTFT,
    SF_ITL,
    SF__COUNT
};

struct server_sample {
    double kv_usage_pct;     /* mean over engines of the 0-1 gauge, x100 */
    double requests_running; /* summed over engines */
    double requests_waiting;
    double prefix_queries; /* counters, summed over engines */
    double prefix_hits;
    double preemptions;
    double prompt_tokens;
    double generation_tokens;
    struct prom_hist *ttft; /* owned; NULL unless SF_TTFT */
    struct prom_hist *itl;  /* owned; NULL unless SF_ITL */
    uint32_t valid;         /* 1u << enum server_field */
};

/*
 * Extracts vLLM's metrics from a scrape, either generation of names (vLLM's
 * vllm/v1/metrics/loggers.py and docs/design/metrics.md): the new
 * name wins when a server exposes both. 0 or -ENOMEM; st as prom_parse.
 */
int server_sample_parse(const char *text, size_t len, struct server_sample *out,
                        struct prom_stats *st);
void server_sample_release(struct server_sample *s);
/* Deep copy (histograms duplicated). */
void server_sample_copy(struct server_sample *dst, const struct server_sample *src);

#endif
