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

#include "config/servable.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "workload/workload.h"

/* ==== Predictions ==== */

const struct slo_cfg *study_workload_slo(const struct study *st, size_t wi)
{
    return st->cfg.study.slo_given ? &st->cfg.slo : &st->wcfg[wi].slo;
}

void study_workload_apply(const struct study *st, size_t wi, struct config *cfg)
{
    if (st->cfg.study.slo_given)
        cfg->slo = st->cfg.slo;
    else if (st->wl[wi].slo_profile)
        slo_from_profile(&cfg->slo, slo_profile_find(st->wl[wi].slo_profile));
}

/* Prompt and output lengths the workload sends on this setup (a session's first turn); context
 * > 0 when prompts fill a share of the window (window_fill). */
static void cell_lengths(const struct study *st, size_t si, size_t wi, int model_max_len,
                         int *prompt, int *output, int *context)
{
    const struct requests_cfg *rq = &st->wcfg[wi].requests;
    int window = st->setups[si].max_model_len ? st->setups[si].max_model_len : model_max_len;
    *output = rq->completion_tokens;
    *context = 0;
    if (!isnan(st->wl[wi].window_fill) && window > 0) {
        *context = (int)lround(st->wl[wi].window_fill * window);
        *prompt = st->wl[wi].sessions ? (int)session_first_prompt(&rq->session, *context, *output)
                                      : *context - *output;
    } else {
        *prompt = (rq->prompt_tokens_min + rq->prompt_tokens_max) / 2;
    }
}

/* The catalog the study plans with, loaded once (the study is one process and its catalog
 * folder does not change while it runs); NULL when it cannot be loaded (plan says why). */
static const struct catalog *study_catalog(const struct study *st)
{
    static struct catalog *cat;
    static bool tried;
    if (!tried) {
        char err[256];
        tried = true;
        if (catalog_load(&cat, st->cfg.study.catalog, err, sizeof(err)))
            cat = NULL;
    }
    return cat;
}

int study_servable(const struct study *st, size_t si, struct servable *sv)
{
    const struct study_setup *s = &st->setups[si];
    const struct catalog *cat = study_catalog(st);
    if (!cat) {
        memset(sv, 0, sizeof(*sv));
        return 0;
    }
    return servable_check(cat, s->model, s->quantization, st->cfg.study.gpu,
                          s->gpu_memory_utilization, s->tensor_parallel_size, sv);
}

/* The session keys a probe runs with: the workload's own, or the defaults when it has none. */
static struct session_cfg probe_session(const struct study *st, size_t wi)
{
    struct session_cfg ss = st->wcfg[wi].requests.session;
    if (!ss.enabled) {
        session_cfg_defaults(&ss);
        ss.enabled = true;
    }
    return ss;
}

static void plan_query_fill(const struct study *st, size_t si, size_t wi, int prompt, int output,
                            int users, struct plan_query *q)
{
    const struct study_setup *s = &st->setups[si];
    const struct config *wc = &st->wcfg[wi];
    memset(q, 0, sizeof(*q));
    q->population = st->wl[wi].sessions ? VD_SESSIONS : VD_STREAMS;
    q->session = probe_session(st, wi);
    /* The probe's think times: the seed its run draws them from (run.c, point 0, tenant 0). */
    q->think_seed = run_point_seed(study_probe_seed(wc->benchmark.seed, wi, users), 0, 0, "think");
    q->turn_tokens = wc->server.api == API_CHAT ? STUDY_CHAT_TURN_TOKENS : 0;
    q->shared_prefix = wc->requests.shared_prefix_tokens;
    q->gpu = st->cfg.study.gpu;
    q->model = s->model;
    /* A pre-quantized checkpoint with no quantization asked serves its own format. */
    const struct checkpoint_spec *ck = catalog_find_checkpoint(study_catalog(st), s->model);
    q->quantization =
        ck && servable_is_native(s->quantization) ? ck->quantization : s->quantization;
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
    struct probe_size ps;
    study_probe_size(st, wi, users, &ps);
    q->requests = ps.total;
    q->warmup_requests = ps.warmup; /* measured without it, so judged without it */
    q->requests_per_user = st->cfg.study.requests_per_user;
    q->min_requests = st->cfg.study.min_requests;
    q->slo = *study_workload_slo(st, wi);
    q->calibration = st->args.calibration;
}

int study_turns(const struct study *st, size_t wi)
{
    return st->wl[wi].sessions ? probe_session(st, wi).turns : 0;
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
    struct requests_cfg rq = wc->requests;
    rq.session = probe_session(st, wi);
    rq.session.enabled = st->wl[wi].sessions;
    struct workload *w = NULL;
    char err[256];
    if (workload_new(&w, &rq, wc->server.api, err, sizeof(err)))
        return 0; /* the probe will say why */
    size_t n = (size_t)study_requests_for(st, wi, users);
    struct req_record *recs = xcalloc(n, sizeof(*recs));
    uint64_t seed = study_probe_seed(wc->benchmark.seed, wi, users);
    workload_plan(w, run_point_seed(seed, 0, 0, "lengths"), context, recs, n);
    workload_free(w);
    if (rq.session.enabled) /* each later turn: its new message (the conversation on top) */
        workload_plan_turns(&rq, run_point_seed(seed, 0, 0, "turns"), context, recs, n);
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
    struct servable sv;
    if (study_servable(st, si, &sv)) {
        /* vLLM would refuse to load it: not launched, said as the plan's answer. */
        memset(p, 0, sizeof(*p));
        snprintf(p->fit_msg, sizeof(p->fit_msg), "cannot be loaded: %s", sv.why);
        *prompt = *output = *context = 0;
        return 0;
    }
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

/* Doubling, then bisection, as plan_max_users, but every count is planned with the lengths and
 * think times its own probe will draw (study_predict), so the answer is about what will be
 * measured: a probe whose longest conversations outgrow the window misses here as there. */
int study_predict_max_users(const struct study *st, size_t si, size_t wi, int prompt, int output)
{
    (void)prompt;
    (void)output;
    int ok = 0, bad = 0, ceiling = st->cfg.study.max_users;
    struct plan_prediction p;
    int pr, out, ctx;
    for (int n = 1; n <= ceiling;) {
        if (study_predict(st, si, wi, n, &p, &pr, &out, &ctx) || !p.fits)
            return ok ? ok : (p.fits ? -1 : 0);
        if (!p.meets_slo) {
            bad = n;
            break;
        }
        ok = n;
        if (n == ceiling)
            break;
        n = n * 2 > ceiling ? ceiling : n * 2;
    }
    while (bad && bad - ok > 1) {
        int mid = ok + (bad - ok) / 2;
        if (study_predict(st, si, wi, mid, &p, &pr, &out, &ctx))
            return -1;
        if (p.meets_slo)
            ok = mid;
        else
            bad = mid;
    }
    return ok;
}
