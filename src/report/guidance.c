/*
 * guidance.c - the guidance matrix. Plain runs: points are grouped by the run's model,
 * quantization and KV dtype and the point's context length; the cell for N users is the point
 * whose concurrency cap is N (N closed-loop users), and "max users" is the largest cap that met
 * the SLO. Studies: the row for N users of each setup and workload, as study.csv gives it.
 * A cell nothing measured is predicted by running this binary's `plan --json` (the planner has
 * no in-process API), on the GPU the simulator modelled or the one --gpu names.
 */
#include "report/guidance.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "config/catalog.h"
#include "config/config.h"
#include "config/servable.h"
#include "config/slo_profile.h"
#include "core/log.h"
#include "report/judge.h"
#include "report/predict.h"

/* The user counts plan tries for "max users", besides N itself. */
static const int plan_users[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_PLAN_USERS (sizeof(plan_users) / sizeof(plan_users[0]))

/* What a cell needs besides its values to ask the planner. */
struct cell_ctx {
    char *gpu; /* NULL: no prediction possible */
    double output_tokens;
    double slo_ttft_ms, slo_tpot_ms;
    double max_tried;
    int max_tried_met;
};

int point_judge(const json_t *run, const json_t *point, const struct report_slo *slo, char *why,
                size_t whylen)
{
    /* The rule run and study use (report/judge.c): failures count, warm-up does not. */
    struct slo_verdict v;
    int met = report_point_verdict(run, point, slo, &v);
    if (why && whylen)
        slo_verdict_line(&v, why, whylen);
    return met;
}

/* Where a cell belongs: a study (by its folder's name) or one run outside a study. */
struct cell_group {
    const char *name;
    bool study;
};

static struct guidance_cell *cell_find(struct guidance *g, struct cell_ctx **ctx,
                                       const struct cell_group *grp, const char *workload,
                                       const char *model, const char *quant, const char *kv,
                                       long context)
{
    for (size_t i = 0; i < g->n; i++) {
        struct guidance_cell *c = &g->cells[i];
        if (c->context == context && c->from_study == grp->study &&
            strcmp(c->group, grp->name) == 0 && strcmp(c->workload, workload) == 0 &&
            strcmp(c->model, model) == 0 && strcmp(c->quantization, quant) == 0 &&
            strcmp(c->kv_dtype, kv) == 0)
            return c;
    }
    g->cells = xreallocarray(g->cells, g->n + 1, sizeof(*g->cells));
    *ctx = xreallocarray(*ctx, g->n + 1, sizeof(**ctx));
    struct guidance_cell *c = &g->cells[g->n];
    memset(c, 0, sizeof(*c));
    memset(&(*ctx)[g->n], 0, sizeof(**ctx));
    (*ctx)[g->n].output_tokens = NAN;
    (*ctx)[g->n].slo_ttft_ms = NAN;
    (*ctx)[g->n].slo_tpot_ms = NAN;
    g->n++;
    c->group = xstrdup(grp->name);
    c->from_study = grp->study;
    c->status = "";
    c->workload = xstrdup(workload);
    c->model = xstrdup(model);
    c->quantization = xstrdup(quant);
    c->kv_dtype = xstrdup(kv);
    c->context = context;
    c->slo_met = -1;
    c->user_tps_p50 = c->ttft_p95_ms = c->max_users = c->min_tried = NAN;
    c->note = xstrdup("");
    c->evidence = xstrdup("");
    c->origin = xstrdup("");
    return c;
}

static void set_str(char **dst, char *src)
{
    free(*dst);
    *dst = src;
}

static void runs_add(struct guidance *g, struct cell_ctx **ctx, const struct report_input *in,
                     const struct report_slo *slo, const char *gpu)
{
    for (size_t ri = 0; ri < in->n_runs; ri++) {
        const struct report_run *r = &in->runs[ri];
        if (r->study_setup)
            continue; /* a study's own rows say what its runs measured */
        size_t pi;
        json_t *p;
        json_array_foreach(json_object_get(r->detailed, "points"), pi, p)
        {
            const char *tenant = json_string_value(json_object_get(p, "tenant"));
            const json_t *req = report_tenant_section(r->detailed, tenant, "requests");
            double ctxlen = json_num(p, "context_length");
            bool upto = isnan(ctxlen);
            if (upto)
                ctxlen = json_num(req, "prompt_tokens_max") + json_num(req, "completion_tokens");
            if (isnan(ctxlen))
                ctxlen = 0;
            struct cell_group grp = {r->label, false};
            struct guidance_cell *c =
                cell_find(g, ctx, &grp, "", r->model, r->quantization, r->kv_dtype, (long)ctxlen);
            struct cell_ctx *x = &(*ctx)[c - g->cells];
            c->context_upto = upto;
            if (!x->gpu && (gpu || r->gpu))
                x->gpu = xstrdup(gpu ? gpu : r->gpu);
            x->output_tokens = json_num(req, "completion_tokens");
            const json_t *scfg = report_tenant_section(r->detailed, tenant, "slo");
            x->slo_ttft_ms = isnan(slo->ttft_ms) ? json_num(scfg, "ttft_ms") : slo->ttft_ms;
            x->slo_tpot_ms = isnan(slo->tpot_ms) ? json_num(scfg, "tpot_ms") : slo->tpot_ms;
            double users = json_num(p, "concurrency");
            if (isnan(users))
                continue; /* no cap: open loop, not a user count */
            struct slo_verdict v;
            int met = report_point_verdict(r->detailed, p, slo, &v);
            if (isnan(c->min_tried) || users < c->min_tried)
                c->min_tried = users;
            if (users >= x->max_tried) {
                x->max_tried_met = x->max_tried == users ? x->max_tried_met && met == 1 : met == 1;
                x->max_tried = users;
            }
            if (met == 1 && (isnan(c->max_users) || users > c->max_users))
                c->max_users = users;
            else if (met == 0 && isnan(c->max_users))
                c->max_users = 0;
            if ((int)users != g->users)
                continue;
            const json_t *s = json_object_get(p, "summary");
            c->source = CELL_MEASURED;
            c->slo_met = met;
            /* What the verdict rests on, as a study's cell says it (slo_evidence): the
             * percentile, its interval and the requests judged, by the report's rule. */
            char evidence[256] = "";
            if (met >= 0)
                slo_verdict_evidence(&v, evidence, sizeof(evidence));
            set_str(&c->evidence, xstrdup(evidence));
            c->user_tps_p50 = json_num(json_object_get(s, "user_token_rate"), "p50");
            c->ttft_p95_ms = summary_dist(s, "ttft_ms", "p95");
            set_str(&c->origin, xstrdup(r->label));
            bool named = tenant && strcmp(tenant, "default") != 0;
            /* A tenant asking for a LoRA adapter: the row is the base model's, the note says
             * which adapter. */
            const char *pm = json_string_value(json_object_get(p, "model"));
            bool adapter = pm && strcmp(pm, r->model) != 0;
            set_str(&c->note, named ? xasprintf("tenant %s%s%s", tenant,
                                                adapter ? ", LoRA adapter " : "", adapter ? pm : "")
                                    : xstrdup(""));
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        struct guidance_cell *c = &g->cells[i];
        c->max_users_at_least = !isnan(c->max_users) && c->max_users > 0 &&
                                c->max_users == (*ctx)[i].max_tried && (*ctx)[i].max_tried_met;
    }
}

static double row_num(const struct csv_table *t, size_t r, const char *meas, const char *pred,
                      bool measured)
{
    return csv_table_num(t, r, measured ? meas : pred);
}

static void studies_add(struct guidance *g, struct cell_ctx **ctx, const struct report_input *in)
{
    for (size_t si = 0; si < in->n_studies; si++) {
        const struct report_study *st = &in->studies[si];
        const struct csv_table *t = &st->csv;
        for (size_t r = 0; r < t->nrows; r++) {
            const char *quant = csv_table_get(t, r, "quantization");
            const char *kv = csv_table_get(t, r, "kv_cache_dtype");
            double ctxlen = csv_table_num(t, r, "max_model_len");
            struct cell_group grp = {st->name, true};
            struct guidance_cell *c = cell_find(
                g, ctx, &grp, csv_table_get(t, r, "workload"), csv_table_get(t, r, "model"),
                *quant ? quant : "default", *kv ? kv : "auto", isnan(ctxlen) ? 0 : (long)ctxlen);
            c->window = true; /* a study's column is its setup's max_model_len */
            const char *status = csv_table_get(t, r, "status");
            bool measured = strcmp(status, "measured") == 0 || strcmp(status, "interrupted") == 0;
            double mu = csv_table_num(t, r, measured ? "meas_max_users" : "pred_max_users");
            if (!isnan(mu) && (c->source != CELL_MEASURED || measured))
                c->max_users = mu;
            double users = csv_table_num(t, r, "users");
            if (isnan(users) || (int)users != g->users)
                continue;
            /* A measured row wins over a predicted one for the same cell. */
            if (c->source == CELL_MEASURED && !measured)
                continue;
            set_str(&c->origin, xasprintf("%s/%s", st->name, csv_table_get(t, r, "setup")));
            const char *reason = csv_table_get(t, r, "reason");
            const char *met = csv_table_get(t, r, "slo_met");
            c->slo_met = strcmp(met, "true") == 0 ? 1 : strcmp(met, "false") == 0 ? 0 : -1;
            set_str(&c->evidence, xstrdup(measured && strcmp(status, "measured") == 0
                                              ? csv_table_get(t, r, "slo_evidence")
                                              : ""));
            if (strcmp(status, "does_not_fit") == 0 || strcmp(status, "failed_to_start") == 0) {
                /* Not a miss: no server ran, so nothing was judged (said apart from "missed"). */
                bool nofit = strcmp(status, "does_not_fit") == 0;
                c->source = CELL_NONE;
                c->state = nofit ? CELL_NO_FIT : CELL_NOT_RUN;
                c->slo_met = -1;
                c->status = nofit ? "does_not_fit" : "failed_to_start";
                bool load = strncmp(reason, "cannot be loaded", 16) == 0;
                set_str(&c->note, xasprintf("%s%s%s",
                                            load    ? ""
                                            : nofit ? "does not fit"
                                                    : "failed to start",
                                            *reason && !load ? ": " : "", reason));
                continue;
            }
            c->state = strcmp(status, "interrupted") == 0 ? CELL_NOT_RUN : CELL_JUDGED;
            c->source = measured ? CELL_MEASURED : CELL_PREDICTED;
            c->status = "";
            c->user_tps_p50 = row_num(t, r, "meas_user_tps", "pred_user_tps", measured);
            c->ttft_p95_ms = row_num(t, r, "meas_ttft_p95_ms", "pred_ttft_p95_ms", measured);
            set_str(&c->note, strcmp(status, "interrupted") == 0 ? xstrdup("interrupted")
                              : *reason                          ? xstrdup(reason)
                                                                 : xstrdup(""));
        }
    }
}

static void cell_predict(struct guidance *g, struct guidance_cell *c, const struct cell_ctx *x,
                         const char *self)
{
    char users[256];
    size_t used = (size_t)snprintf(users, sizeof(users), "%d", g->users);
    for (size_t i = 0; i < N_PLAN_USERS; i++)
        if (plan_users[i] != g->users)
            used += (size_t)snprintf(users + used, sizeof(users) - used, ",%d", plan_users[i]);
    struct predict_query q = {
        .gpu = x->gpu,
        .model = c->model,
        .quantization = c->quantization,
        .kv_dtype = c->kv_dtype,
        .context = c->context,
        .output_tokens = x->output_tokens,
        .users = users,
        .slo_ttft_ms = x->slo_ttft_ms,
        .slo_tpot_ms = x->slo_tpot_ms,
    };
    json_t *rows = predict_rows(self, &q);
    if (!rows) {
        log_warn("report: plan could not predict %s at %ld tokens on %s", c->model, c->context,
                 x->gpu);
        return;
    }
    size_t i;
    json_t *row;
    double best = 0, largest = 0;
    bool largest_met = false;
    json_array_foreach(rows, i, row)
    {
        double u = json_num(row, "users");
        bool met = json_is_true(json_object_get(row, "meets_slo"));
        if (met && u > best)
            best = u;
        if (u >= largest) {
            largest = u;
            largest_met = met;
        }
        if ((int)u != g->users)
            continue;
        c->source = CELL_PREDICTED;
        bool fits = !json_is_false(json_object_get(row, "fits"));
        c->state = fits ? CELL_JUDGED : CELL_NO_FIT;
        c->slo_met = !fits ? -1 : met ? 1 : 0;
        c->user_tps_p50 = json_num(row, "user_tokens_per_s");
        c->ttft_p95_ms = json_num(row, "ttft_p95_ms");
        char *note = xasprintf("%s%splan on %s", c->note, *c->note ? "; " : "", x->gpu);
        set_str(&c->note, note);
    }
    if (c->source == CELL_PREDICTED && isnan(c->max_users)) {
        c->max_users = best;
        c->max_users_at_least = largest_met && best == largest;
    }
    json_decref(rows);
}

static int cell_cmp(const void *a, const void *b)
{
    const struct guidance_cell *x = a, *y = b;
    int d = (int)y->from_study - (int)x->from_study; /* studies first */
    if (!d)
        d = strcmp(x->group, y->group);
    if (!d)
        d = strcmp(x->workload, y->workload);
    if (!d)
        d = strcmp(x->model, y->model);
    if (!d)
        d = strcmp(x->quantization, y->quantization);
    if (!d)
        d = strcmp(x->kv_dtype, y->kv_dtype);
    if (!d)
        d = (x->context > y->context) - (x->context < y->context);
    return d;
}

/* ==== What the cells were judged on ==== */

static struct slo_cfg slo_from_json(const json_t *j)
{
    struct slo_cfg s;
    slo_from_profile(&s, slo_profile_default());
    if (!json_is_object(j))
        return s;
    s.ttft_ms = json_num(j, "ttft_ms");
    s.itl_ms = json_num(j, "itl_ms");
    s.tpot_ms = json_num(j, "tpot_ms");
    s.e2e_ms = json_num(j, "e2e_ms");
    double p = json_num(j, "percentile");
    s.percentile = isnan(p) ? 95 : p;
    const char *prof = json_string_value(json_object_get(j, "profile"));
    snprintf(s.profile, sizeof(s.profile), "%s", prof ? prof : "");
    return s;
}

/* The report's --slo-* overrides replace what the files say. */
static void slo_override(struct slo_cfg *s, const struct report_slo *o)
{
    const double v[] = {o->ttft_ms, o->tpot_ms, o->itl_ms, o->e2e_ms, o->percentile};
    double *d[] = {&s->ttft_ms, &s->tpot_ms, &s->itl_ms, &s->e2e_ms, &s->percentile};
    for (size_t i = 0; i < 5; i++)
        if (!isnan(v[i]))
            *d[i] = v[i];
}

/* A workload's population and lengths, from its resolved requests section. */
static char *describe_requests(const json_t *rq, bool sessions, double window_fill)
{
    const json_t *ss = json_object_get(rq, "session");
    char prompt[96];
    if (!isnan(window_fill))
        snprintf(prompt, sizeof(prompt), "first prompts fill %.0f %% of the window",
                 window_fill * 100);
    else
        snprintf(prompt, sizeof(prompt), "%s %.0f-%.0f tokens",
                 sessions ? "first prompts" : "prompts", json_num(rq, "prompt_tokens_min"),
                 json_num(rq, "prompt_tokens_max"));
    if (sessions)
        return xasprintf("users in conversation (population sessions: %.0f turns, think time %s "
                         "mean %g s); %s, follow-ups %.0f-%.0f, answers %.0f tokens",
                         json_num(ss, "turns"),
                         json_string_value(json_object_get(ss, "think_time_distribution"))
                             ? json_string_value(json_object_get(ss, "think_time_distribution"))
                             : "exponential",
                         json_num(ss, "think_time_s"), prompt, json_num(ss, "message_tokens_min"),
                         json_num(ss, "message_tokens_max"), json_num(rq, "completion_tokens"));
    return xasprintf("closed-loop request streams (population streams: no think time); %s, "
                     "answers %.0f tokens",
                     prompt, json_num(rq, "completion_tokens"));
}

static void basis_add(struct guidance *g, const char *group, const char *workload,
                      const struct slo_cfg *slo, char *what)
{
    for (size_t i = 0; i < g->n_bases; i++) {
        if (strcmp(g->bases[i].group, group) == 0 && strcmp(g->bases[i].workload, workload) == 0) {
            free(what);
            return;
        }
    }
    char s[200];
    slo_describe(slo, s, sizeof(s));
    g->bases = xreallocarray(g->bases, g->n_bases + 1, sizeof(*g->bases));
    g->bases[g->n_bases++] =
        (struct guidance_basis){xstrdup(group), xstrdup(workload), xstrdup(s), what};
}

/* One basis per workload of the cells: a study's from its definition, plain runs' from the
 * first run's own config; the default profile where a file says nothing. */
static void bases_build(struct guidance *g, const struct report_input *in,
                        const struct report_slo *o)
{
    for (size_t si = 0; si < in->n_studies; si++) {
        const json_t *def = in->studies[si].definition;
        const json_t *study_slo = json_object_get(def, "slo");
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(def, "workloads"), i, w)
        {
            struct slo_cfg s = slo_from_json(study_slo ? study_slo : json_object_get(w, "slo"));
            slo_override(&s, o);
            const char *pop = json_string_value(json_object_get(w, "population"));
            bool sessions =
                pop ? strcmp(pop, "sessions") == 0
                    : json_is_true(json_object_get(
                          json_object_get(json_object_get(w, "requests"), "session"), "enabled"));
            const char *name = json_string_value(json_object_get(w, "name"));
            basis_add(g, in->studies[si].name, name ? name : "", &s,
                      describe_requests(json_object_get(w, "requests"), sessions,
                                        json_num(w, "window_fill")));
        }
    }
    for (size_t ri = 0; ri < in->n_runs; ri++) {
        const struct report_run *r = &in->runs[ri];
        if (r->study_setup)
            continue;
        const json_t *cfg = json_object_get(r->detailed, "config");
        const json_t *rq = json_object_get(cfg, "requests");
        struct slo_cfg s = slo_from_json(json_object_get(cfg, "slo"));
        slo_override(&s, o);
        basis_add(
            g, r->label, "", &s,
            describe_requests(
                rq, json_is_true(json_object_get(json_object_get(rq, "session"), "enabled")), NAN));
    }
    /* A workload with cells but no basis (an old study.json): the default profile, said so. */
    for (size_t i = 0; i < g->n; i++) {
        struct slo_cfg s;
        slo_from_profile(&s, slo_profile_default());
        slo_override(&s, o);
        basis_add(g, g->cells[i].group, g->cells[i].workload, &s,
                  xstrdup("not recorded in these results (a study written before workloads "
                          "were recorded)"));
    }
}

/* One name per dtype: the weights as the catalog knows them. */
static void cells_name_weights(struct guidance *g)
{
    struct catalog *cat = NULL;
    char err[256];
    if (catalog_load(&cat, NULL, err, sizeof(err)))
        cat = NULL;
    for (size_t i = 0; i < g->n; i++) {
        struct guidance_cell *c = &g->cells[i];
        char w[64];
        servable_weights_name(cat, c->model,
                              strcmp(c->quantization, "default") == 0 ? NULL : c->quantization, w,
                              sizeof(w));
        set_str(&c->weights, xstrdup(w));
        /* "auto" is the model's dtype, or the checkpoint format's KV convention. */
        const struct model_spec *md = cat ? catalog_find_model(cat, c->model) : NULL;
        if (md && strcmp(c->kv_dtype, "auto") == 0) {
            const struct checkpoint_spec *ck = catalog_find_checkpoint(cat, c->model);
            const struct quant_spec *q = catalog_find_quant(
                cat, strcmp(c->quantization, "default") && strcmp(c->quantization, "none")
                         ? c->quantization
                     : ck ? ck->quantization
                          : NULL);
            set_str(&c->kv_dtype,
                    xstrdup(q && q->kv_cache_dtype && strcmp(q->kv_cache_dtype, "auto") != 0
                                ? q->kv_cache_dtype
                                : md->dtype));
        }
    }
    catalog_free(cat);
}

void guidance_build(struct guidance *g, const struct report_input *in, int users,
                    const struct report_slo *slo, const char *self_exe, const char *gpu)
{
    memset(g, 0, sizeof(*g));
    g->users = users;
    struct cell_ctx *ctx = NULL;
    runs_add(g, &ctx, in, slo, gpu);
    studies_add(g, &ctx, in);
    for (size_t i = 0; i < g->n; i++) {
        struct guidance_cell *c = &g->cells[i];
        if (c->source != CELL_NONE)
            continue;
        bool study_status = *c->status != '\0'; /* does not fit, failed to start */
        if (!study_status) {
            set_str(&c->note, xasprintf("no point at %d users measured", users));
            c->state = CELL_NOT_RUN;
        }
        if (!study_status && self_exe && ctx[i].gpu && c->context > 0)
            cell_predict(g, c, &ctx[i], self_exe);
    }
    for (size_t i = 0; i < g->n; i++)
        free(ctx[i].gpu);
    free(ctx);
    if (g->n > 1) /* qsort(NULL, 0, ...) is undefined: a run with no points has no cells */
        qsort(g->cells, g->n, sizeof(*g->cells), cell_cmp);
    cells_name_weights(g);
    bases_build(g, in, slo);
}

void guidance_release(struct guidance *g)
{
    for (size_t i = 0; i < g->n; i++) {
        struct guidance_cell *c = &g->cells[i];
        free(c->group);
        free(c->workload);
        free(c->model);
        free(c->quantization);
        free(c->kv_dtype);
        free(c->note);
        free(c->evidence);
        free(c->origin);
        free(c->weights);
    }
    for (size_t i = 0; i < g->n_bases; i++) {
        free(g->bases[i].group);
        free(g->bases[i].workload);
        free(g->bases[i].slo);
        free(g->bases[i].what);
    }
    free(g->bases);
    free(g->cells);
    memset(g, 0, sizeof(*g));
}

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *guidance_json(const struct guidance *g)
{
    static const char *const sources[] = {"none", "measured", "predicted"};
    static const char *const states[] = {"judged", "does_not_fit", "not_run"};
    json_t *a = json_array();
    for (size_t i = 0; i < g->n; i++) {
        const struct guidance_cell *c = &g->cells[i];
        json_t *o = json_object();
        json_object_set_new(o, "group", json_string(c->group));
        json_object_set_new(o, "from_study", json_boolean(c->from_study));
        json_object_set_new(o, "status", json_string(c->status));
        json_object_set_new(o, "workload", json_string(c->workload));
        json_object_set_new(o, "model", json_string(c->model));
        json_object_set_new(o, "quantization", json_string(c->quantization));
        json_object_set_new(o, "kv_dtype", json_string(c->kv_dtype));
        json_object_set_new(o, "context", json_integer(c->context));
        json_object_set_new(o, "context_upto", json_boolean(c->context_upto));
        json_object_set_new(o, "window", json_boolean(c->window));
        json_object_set_new(o, "state", json_string(states[c->state]));
        json_object_set_new(o, "weights", json_string(c->weights ? c->weights : c->quantization));
        json_object_set_new(o, "source", json_string(sources[c->source]));
        json_object_set_new(o, "slo_met", c->slo_met < 0 ? json_null() : json_boolean(c->slo_met));
        json_object_set_new(o, "user_tps_p50", num(c->user_tps_p50));
        json_object_set_new(o, "ttft_p95_ms", num(c->ttft_p95_ms));
        json_object_set_new(o, "max_users", num(c->max_users));
        json_object_set_new(o, "max_users_at_least", json_boolean(c->max_users_at_least));
        json_object_set_new(o, "evidence", json_string(c->evidence));
        json_object_set_new(o, "note", json_string(c->note));
        json_object_set_new(o, "origin", json_string(c->origin));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *guidance_bases_json(const struct guidance *g)
{
    json_t *a = json_array();
    for (size_t i = 0; i < g->n_bases; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "group", json_string(g->bases[i].group));
        json_object_set_new(o, "workload", json_string(g->bases[i].workload));
        json_object_set_new(o, "slo", json_string(g->bases[i].slo));
        json_object_set_new(o, "what", json_string(g->bases[i].what));
        json_array_append_new(a, o);
    }
    return a;
}
