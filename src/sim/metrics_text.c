/*
 * metrics_text.c - /metrics in Prometheus text format with vLLM's names and labels
 * (engine="0", model_name="..."), as prometheus_client prints them: counters with _total,
 * histograms as cumulative _bucket{le=...} plus _sum and _count, values as floats.
 * Bucket bounds follow vLLM's PrometheusStatLogger (vllm/v1/metrics/loggers.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_internal.h"

static const double ttft_le[] = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                 0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                 20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
static const double itl_le[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double e2e_le[] = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

void sim_hist_init(struct sim_hist *h, const double *le, size_t n_le)
{
    h->le = le;
    h->n_le = n_le;
    h->counts = xcalloc(n_le + 1, sizeof(*h->counts));
    h->sum = 0;
    h->count = 0;
}

void sim_hist_release(struct sim_hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void sim_hist_record(struct sim_hist *h, double v)
{
    /* Linear scan: about 20 bounds, and most values land in the first few. */
    size_t i = 0;
    while (i < h->n_le && v > h->le[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void sim_metrics_init(struct sim_metrics *m)
{
    memset(m, 0, sizeof(*m));
    sim_hist_init(&m->ttft, ttft_le, N_OF(ttft_le));
    sim_hist_init(&m->itl, itl_le, N_OF(itl_le));
    sim_hist_init(&m->e2e, e2e_le, N_OF(e2e_le));
}

void sim_metrics_release(struct sim_metrics *m)
{
    sim_hist_release(&m->ttft);
    sim_hist_release(&m->itl);
    sim_hist_release(&m->e2e);
}

static int head(struct buf *out, const char *name, const char *type, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int sample(struct buf *out, const char *name, const char *labels, double v)
{
    return buf_printf(out, "%s{%s} %.15g%s\n", name, labels, v,
                      v == (double)(long long)v ? ".0" : "");
}

static int hist_text(struct buf *out, const char *name, const char *help, const struct sim_hist *h,
                     const char *labels)
{
    char metric[128];
    int rc = head(out, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; !rc && i <= h->n_le; i++) {
        cum += h->counts[i];
        snprintf(metric, sizeof(metric), "%s_bucket", name);
        char le[32];
        if (i < h->n_le)
            snprintf(le, sizeof(le), "%g", h->le[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        /* prometheus_client prints le="1.0", not le="1". */
        rc = buf_printf(out, "%s{engine=\"0\",le=\"%s%s\",%s} %llu.0\n", metric, le,
                        (i < h->n_le && h->le[i] == (double)(long long)h->le[i]) ? ".0" : "",
                        labels, (unsigned long long)cum);
    }
    snprintf(metric, sizeof(metric), "%s_count", name);
    if (!rc)
        rc = buf_printf(out, "%s{engine=\"0\",%s} %llu.0\n", metric, labels,
                        (unsigned long long)h->count);
    snprintf(metric, sizeof(metric), "%s_sum", name);
    if (!rc)
        rc = buf_printf(out, "%s{engine=\"0\",%s} %.15g\n", metric, labels, h->sum);
    return rc;
}

int sim_metrics_text(const struct sim_metrics *m, const struct engine_counters *c,
                     const struct engine_info *info, const char *model_name, struct buf *out)
{
    char labels[SIM_MAX_NAME + 64];
    char lab[SIM_MAX_NAME + 96];
    int rc = 0;
    /* Model names from flags may hold anything; Prometheus label values escape \ " \n. */
    size_t j = 0;
    j += (size_t)snprintf(labels, sizeof(labels), "model_name=\"");
    for (const char *p = model_name; *p && j + 4 < sizeof(labels); p++) {
        if (*p == '"' || *p == '\\') {
            labels[j++] = '\\';
            labels[j++] = *p;
        } else if (*p == '\n') {
            labels[j++] = '\\';
            labels[j++] = 'n';
        } else {
            labels[j++] = *p;
        }
    }
    labels[j++] = '"';
    labels[j] = '\0';
    snprintf(lab, sizeof(lab), "engine=\"0\",%s", labels);

    buf_reset(out);
    rc = rc ? rc
            : head(out, "vllm:num_requests_running", "gauge",
                   "Number of requests in model execution batches.");
    rc = rc ? rc : sample(out, "vllm:num_requests_running", lab, c->num_running);
    rc = rc ? rc
            : head(out, "vllm:num_requests_waiting", "gauge",
                   "Number of requests waiting to be processed.");
    rc = rc ? rc : sample(out, "vllm:num_requests_waiting", lab, c->num_waiting);
    rc = rc ? rc
            : head(out, "vllm:kv_cache_usage_perc", "gauge",
                   "KV-cache usage. 1 means 100 percent usage.");
    rc = rc ? rc : sample(out, "vllm:kv_cache_usage_perc", lab, c->kv_cache_usage);
    rc = rc ? rc
            : head(out, "vllm:prefix_cache_queries_total", "counter",
                   "Prefix cache queries, in terms of number of queried tokens.");
    rc = rc ? rc
            : sample(out, "vllm:prefix_cache_queries_total", lab, (double)c->prefix_cache_queries);
    rc = rc ? rc
            : head(out, "vllm:prefix_cache_hits_total", "counter",
                   "Prefix cache hits, in terms of number of cached tokens.");
    rc = rc ? rc : sample(out, "vllm:prefix_cache_hits_total", lab, (double)c->prefix_cache_hits);
    rc = rc ? rc
            : head(out, "vllm:num_preemptions_total", "counter",
                   "Cumulative number of preemption from the engine.");
    rc = rc ? rc : sample(out, "vllm:num_preemptions_total", lab, (double)c->num_preemptions);
    rc = rc ? rc
            : head(out, "vllm:prompt_tokens_total", "counter",
                   "Number of prefill tokens processed.");
    rc = rc ? rc : sample(out, "vllm:prompt_tokens_total", lab, (double)c->prompt_tokens);
    rc = rc ? rc
            : head(out, "vllm:generation_tokens_total", "counter",
                   "Number of generation tokens processed.");
    rc = rc ? rc : sample(out, "vllm:generation_tokens_total", lab, (double)c->generation_tokens);
    rc = rc ? rc
            : head(out, "vllm:request_success_total", "counter",
                   "Count of successfully processed requests.");
    static const char *const reasons[] = {"stop", "length", "abort"};
    const uint64_t counts[] = {m->finished_stop, m->finished_length, m->finished_abort};
    for (size_t i = 0; !rc && i < 3; i++) {
        char l[sizeof(lab) + 40];
        snprintf(l, sizeof(l), "engine=\"0\",finished_reason=\"%s\",%s", reasons[i], labels);
        rc = sample(out, "vllm:request_success_total", l, (double)counts[i]);
    }
    rc = rc ? rc
            : hist_text(out, "vllm:time_to_first_token_seconds",
                        "Histogram of time to first token in seconds.", &m->ttft, labels);
    rc = rc ? rc
            : hist_text(out, "vllm:inter_token_latency_seconds",
                        "Histogram of inter-token latency in seconds.", &m->itl, labels);
    rc = rc ? rc
            : hist_text(out, "vllm:e2e_request_latency_seconds",
                        "Histogram of e2e request latency in seconds.", &m->e2e, labels);
    rc = rc ? rc
            : head(out, "vllm:cache_config_info", "gauge",
                   "Information of the LLMEngine CacheConfig");
    if (!rc) {
        char l[sizeof(lab) + 256];
        snprintf(l, sizeof(l),
                 "block_size=\"%d\",cache_dtype=\"%s\",enable_prefix_caching=\"%s\","
                 "engine=\"0\",num_gpu_blocks=\"%ld\"",
                 info->block_size, info->kv_dtype ? info->kv_dtype : "auto",
                 info->prefix_caching ? "True" : "False", info->num_gpu_blocks);
        rc = sample(out, "vllm:cache_config_info", l, 1.0);
    }
    return rc;
}
