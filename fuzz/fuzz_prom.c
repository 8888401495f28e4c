/*
 * fuzz_prom.c - the Prometheus text parser (src/telemetry/prom.c): prom_parse over the raw
 * text, then server_sample_parse, the vLLM view the sampler takes, and a quantile of any
 * histogram it found. Property beyond "no crash": the counts agree with the callbacks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "telemetry/prom.h"

static void on_sample(const struct prom_sample *s, void *ctx)
{
    size_t *n = ctx;
    if (!s->name || s->n_labels > PROM_MAX_LABELS)
        abort();
    for (size_t i = 0; i < s->n_labels; i++)
        if (!s->labels[i].name || !s->labels[i].value)
            abort();
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    struct prom_stats st = {0};
    size_t seen = 0;
    prom_parse(text, size, on_sample, &seen, &st);
    /* A malformed comment counts as a comment and as malformed. */
    if (seen != st.samples || st.samples + st.comments > st.lines || st.malformed > st.lines)
        abort();
    struct server_sample s;
    memset(&s, 0, sizeof(s));
    struct prom_stats st2 = {0};
    if (server_sample_parse(text, size, &s, &st2) == 0) {
        if (s.ttft)
            (void)prom_hist_quantile(NULL, s.ttft, 0.5);
        if (s.ttft && s.itl)
            (void)prom_hist_quantile(s.itl, s.ttft, 0.99);
    }
    server_sample_release(&s);
    free(text);
    return 0;
}
