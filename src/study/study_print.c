/*
 * study_print.c - the terminal's tables: the predicted table before anything starts and the
 * guidance matrix at the end.
 */
#include "study/study_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void study_print_plan(struct study *st)
{
    printf("Predicted before any server starts (testbench plan, %s):\n", st->cfg.study.gpu);
    printf("  %-50s %-16s %5s %10s %10s %8s %9s %6s\n", "setup", "workload", "users", "KV tokens",
           "TTFT p95", "TPOT p50", "tok/s/user", "max");
    double seconds = 0;
    size_t launched = 0;
    for (size_t si = 0; si < st->n_setups && !study_stop_requested; si++) {
        bool any = false;
        for (size_t wi = 0; wi < st->n_wl; wi++) {
            int users = st->cfg.study.users.v[0];
            struct plan_prediction p;
            int prompt, output, context;
            int rc = study_predict(st, si, wi, users, &p, &prompt, &output, &context);
            if (rc || !p.fits) {
                printf("  %-50.50s %-16.16s %5d %10s  does not fit: %.100s\n", st->setups[si].id,
                       st->wl[wi].name, users, "-", rc ? "plan failed" : p.fit_msg);
                continue;
            }
            any = true;
            int mx = study_predict_max_users(st, si, wi, prompt, output);
            seconds += study_expected_seconds(st, si, wi, mx);
            printf("  %-50.50s %-16.16s %5d %10ld %8.0f ms %5.1f ms %9.1f %6d\n", st->setups[si].id,
                   st->wl[wi].name, users, p.kv_capacity_tokens, p.ttft.p95 * 1e3, p.tpot.p50 * 1e3,
                   p.user_tps, mx);
        }
        launched += any;
    }
    char took[32];
    if (seconds < 120)
        snprintf(took, sizeof(took), "%.0f s", seconds);
    else if (seconds < 7200)
        snprintf(took, sizeof(took), "%.0f min", seconds / 60);
    else
        snprintf(took, sizeof(took), "%.1f h", seconds / 3600);
    printf("  %zu of %zu setups to launch; measuring them takes about %s if the plan is right "
           "(plus each server's start-up)\n",
           launched, st->n_setups, took);
    fflush(stdout);
}

/* The guidance matrix for one workload: rows model / quantization / KV dtype, columns context
 * (max_model_len); a cell is the most users served within the SLO and the per-user token rate
 * at the study's first user count, measured where a server ran and predicted (*) where not. */
static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void guidance_cell(const json_t *r, char *cell, size_t len)
{
    const char *status = json_string_value(json_object_get(r, "status"));
    bool measured = strcmp(status, "measured") == 0;
    if (strcmp(status, "does_not_fit") == 0) {
        snprintf(cell, len, "does not fit");
        return;
    }
    if (strcmp(status, "failed_to_start") == 0) {
        const char *why = json_string_value(json_object_get(r, "reason"));
        snprintf(cell, len, "failed: %.*s", (int)strcspn(why ? why : "", ":"), why ? why : "");
        return;
    }
    const json_t *mx = json_object_get(r, measured ? "meas_max_users" : "pred_max_users");
    const json_t *tps = json_object_get(r, measured ? "meas_user_tps" : "pred_user_tps");
    char users[24] = "?";
    if (json_is_integer(mx))
        snprintf(users, sizeof(users), "%lld", (long long)json_integer_value(mx));
    snprintf(cell, len, "%s%s / %.0f tok/s", measured ? "" : "*", users, json_number_value(tps));
}

void study_print_guidance(struct study *st)
{
    json_t *rows = json_object_get(st->doc, "rows");
    int users = st->cfg.study.users.v[0];
    int ctx[64];
    size_t nctx = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        int c = (int)json_integer_value(json_object_get(r, "max_model_len"));
        bool seen = false;
        for (size_t k = 0; k < nctx; k++)
            seen |= ctx[k] == c;
        if (!seen && nctx < 64)
            ctx[nctx++] = c;
    }
    qsort(ctx, nctx, sizeof(int), cmp_int);
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        printf("\nGuidance for %d users, workload %s (cell: most users within the SLO / tokens/s "
               "per user at %d users; * = predicted, not measured):\n  %-48s",
               users, st->wl[wi].name, users, "model / quantization / KV cache");
        for (size_t k = 0; k < nctx; k++) {
            char h[24];
            snprintf(h, sizeof(h), ctx[k] ? "ctx %d" : "ctx default", ctx[k]);
            printf(" %-22s", h);
        }
        printf("\n");
        for (size_t si = 0; si < st->n_setups; si++) {
            const struct study_setup *s = &st->setups[si];
            bool first = true; /* a line per distinct row key, at its first setup */
            for (size_t sj = 0; sj < si; sj++)
                first &= !(strcmp(st->setups[sj].model, s->model) == 0 &&
                           !strcmp(st->setups[sj].quantization ? st->setups[sj].quantization : "",
                                   s->quantization ? s->quantization : "") &&
                           strcmp(st->setups[sj].kv_cache_dtype, s->kv_cache_dtype) == 0);
            if (!first)
                continue;
            char label[160];
            snprintf(label, sizeof(label), "%s / %s / %s", s->model,
                     s->quantization ? s->quantization : "none", s->kv_cache_dtype);
            printf("  %-48.48s", label);
            for (size_t k = 0; k < nctx; k++) {
                char cell[64] = "-";
                json_array_foreach(rows, i, r)
                {
                    if (json_integer_value(json_object_get(r, "users")) != users ||
                        strcmp(json_string_value(json_object_get(r, "role")), "target") != 0 ||
                        strcmp(json_string_value(json_object_get(r, "workload")),
                               st->wl[wi].name) != 0 ||
                        json_integer_value(json_object_get(r, "max_model_len")) != ctx[k] ||
                        strcmp(json_string_value(json_object_get(r, "model")), s->model) != 0 ||
                        strcmp(json_string_value(json_object_get(r, "quantization")),
                               s->quantization ? s->quantization : "none") != 0 ||
                        strcmp(json_string_value(json_object_get(r, "kv_cache_dtype")),
                               s->kv_cache_dtype) != 0)
                        continue;
                    guidance_cell(r, cell, sizeof(cell));
                }
                printf(" %-22.22s", cell);
            }
            printf("\n");
        }
    }
}
