/*
 * study_predict.c - the plan for each setup x workload (plan/plan.h): the lengths a probe will
 * send, the prediction at a user count, the most users within the SLO, and the measuring time
 * the plan expects.
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

#include "core/log.h"
#include "core/xalloc.h"
#include "workload/workload.h"

/* ==== Predictions ==== */

const struct slo_cfg *study_workload_slo(const struct study *st, size_t wi)
{
    return st->cfg.study.slo_given ? &st->cfg.slo : &st->wcfg[wi].slo;
}

/* Prompt and output lengths the workload sends on this setup; context > 0 when prompts fill
 * a share of the window. */
static void cell_lengths(const struct study *st, size_t si, size_t wi, int model_max_len,
                         int *prompt, int *output, int *context)
{
    const struct requests_cfg *rq = &st->wcfg[wi].requests;
    int window = st->setups[si].max_model_len ? st->setups[si].max_model_len : model_max_len;
    *output = rq->completion_tokens;
    *context = 0;
    if (!isnan(st->wl[wi].context_fill) && window > 0) {
        *context = (int)lround(st->wl[wi].context_fill * window);
        *prompt = *context - *output;
    } else {
        *prompt = (rq->prompt_tokens_min + rq->prompt_tokens_max) / 2;
    }
}

static void plan_query_fill(const struct study *st, size_t si, size_t wi, int prompt, int output,
                            int users, struct plan_query *q)
{
    const struct study_setup *s = &st->setups[si];
    memset(q, 0, sizeof(*q));
    q->gpu = st->cfg.study.gpu;
    q->model = s->model;
    q->quantization = s->quantization;
    q->kv_cache_dtype = s->kv_cache_dtype;
    q->catalog_dir = st->cfg.study.catalog;
    q->max_model_len = s->max_model_len;
    q->gpu_memory_utilization = s->gpu_memory_utilization;
    q->tensor_parallel_size = s->tensor_parallel_size;
    q->max_num_seqs = s->max_num_seqs;
    q->prefix_caching = s->enable_prefix_caching;
    q->prompt_tokens = prompt;
    q->output_tokens = output;
    q->users = users;
    /* The probe's request count (its warm-up and cap: probe.c), so that the plan judges what
     * will be measured; plan_max_users sizes each count by the policy below instead. */
    q->requests = study_requests_for(st, wi, users);
    q->requests_per_user = st->cfg.study.requests_per_user;
    q->min_requests = st->cfg.study.min_requests;
    q->slo = *study_workload_slo(st, wi);
    q->calibration = st->args.calibration;
}

int study_check_plannable(const struct study *st)
{
    for (size_t si = 0; si < st->n_setups; si++) {
        for (size_t wi = 0; wi < st->n_wl; wi++) {
            struct plan_query q;
            struct plan_prediction p;
            char err[512];
            plan_query_fill(st, si, wi, 1, 1, 1, &q);
            q.requests = 1;
            if (plan_predict(&q, &p, err, sizeof(err)) == 0)
                continue;
            /* An unknown model, KV dtype or TP the engine refuses is a mistake in the study
             * file, never a setup that "does not fit". */
            log_error("study: %s: setup %s cannot be planned: %s", st->cfg.path, st->setups[si].id,
                      err);
            return -EINVAL;
        }
    }
    return 0;
}

/* A probe's benchmark.seed: fresh prompts for every probe (the server stays up between probes,
 * and prompts it has seen would hit its prefix cache and flatter the later ones). */
uint64_t study_probe_seed(uint64_t seed, size_t wi, int users)
{
    return (seed ^ ((uint64_t)wi << 32)) + (uint64_t)users * 7919;
}

/* The probe's own request lengths, drawn as its run draws them (workload_plan with the seed of
 * its only point), so the plan replays what will be measured: varied prompts and outputs put
 * closed-loop users out of step, as they are in the run. *prompt and *output are the caller's
 * to free; 0 (none) when the prompts come from a dataset or trace (a dataset prompt's length is
 * known only once built), or when a drawn pair does not fit the window (the means stand). */
static size_t probe_lengths(const struct study *st, size_t wi, int users, int context, int window,
                            int **prompt, int **output)
{
    const struct config *wc = &st->wcfg[wi];
    *prompt = *output = NULL;
    if (wc->requests.dataset.path || wc->requests.trace.path)
        return 0;
    struct workload *w = NULL;
    char err[256];
    if (workload_new(&w, &wc->requests, wc->server.api, err, sizeof(err)))
        return 0; /* the probe will say why */
    size_t n = (size_t)study_requests_for(st, wi, users);
    struct req_record *recs = xcalloc(n, sizeof(*recs));
    uint64_t seed =
        run_point_seed(study_probe_seed(wc->benchmark.seed, wi, users), 0, 0, "lengths");
    workload_plan(w, seed, context, recs, n);
    workload_free(w);
    int *p = xcalloc(n, sizeof(*p)), *o = xcalloc(n, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        p[i] = recs[i].target_prompt_tokens;
        o[i] = recs[i].target_output_tokens;
        if (p[i] < 1 || o[i] < 1 || (window > 0 && p[i] + o[i] > window)) {
            free(p);
            free(o);
            free(recs);
            return 0;
        }
    }
    free(recs);
    *prompt = p;
    *output = o;
    return n;
}

/* Predicts the setup x workload at `users`; the plan runs the same number of requests as the
 * measured probe, so both see the same ramp-up and drain. */
int study_predict(const struct study *st, size_t si, size_t wi, int users,
                  struct plan_prediction *p, int *prompt, int *output, int *context)
{
    char err[512];
    struct plan_query q;
    plan_query_fill(st, si, wi, 1, 1, 1, &q);
    q.output_tokens = 1;
    q.prompt_tokens = 1;
    int rc = plan_predict(&q, p, err, sizeof(err)); /* the window the engine resolves */
    if (rc) {
        snprintf(p->fit_msg, sizeof(p->fit_msg), "%s", err);
        return rc;
    }
    cell_lengths(st, si, wi, p->max_model_len, prompt, output, context);
    if (!p->fits)
        return 0;
    if (*prompt < 1 || *prompt + *output > p->max_model_len) {
        p->fits = false;
        snprintf(p->fit_msg, sizeof(p->fit_msg),
                 "the workload's prompt %d + output %d tokens exceed max_model_len %d", *prompt,
                 *output, p->max_model_len);
        return 0;
    }
    plan_query_fill(st, si, wi, *prompt, *output, users, &q);
    int *pl = NULL, *ol = NULL;
    q.n_lens = probe_lengths(st, wi, users, *context, p->max_model_len, &pl, &ol);
    q.prompt_lens = pl;
    q.output_lens = ol;
    rc = plan_predict(&q, p, err, sizeof(err));
    free(pl);
    free(ol);
    if (rc)
        snprintf(p->fit_msg, sizeof(p->fit_msg), "%s", err);
    return rc;
}

int study_predict_max_users(const struct study *st, size_t si, size_t wi, int prompt, int output)
{
    struct plan_query q;
    plan_query_fill(st, si, wi, prompt, output, 1, &q);
    char err[512];
    int n = 0;
    if (plan_max_users(&q, st->cfg.study.max_users, &n, err, sizeof(err)))
        return -1;
    return n;
}
