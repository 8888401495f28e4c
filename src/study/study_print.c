/*
 * study_print.c - the terminal's tables: the predicted table before anything starts and the
 * guidance matrix at the end (with --plan-only, the predicted matrix). Every table begins with
 * what it was judged on: the SLO (profile, percentile) and the workload (its population and
 * lengths); every cell says one thing per field and whether it was measured or predicted.
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

#include "core/human.h"

/* ==== What a table rests on ==== */

void study_describe_workload(const struct study *st, size_t wi, char *buf, size_t len)
{
    const struct config *wc = &st->wcfg[wi];
    const struct requests_cfg *rq = &wc->requests;
    const struct study_workload *w = &st->wl[wi];
    char prompt[96];
    if (!isnan(w->window_fill))
        snprintf(prompt, sizeof(prompt), "first prompts fill %.0f %% of the window",
                 w->window_fill * 100);
    else if (rq->dataset.path || rq->trace.path)
        snprintf(prompt, sizeof(prompt), "prompts from %s",
                 rq->dataset.path ? rq->dataset.path : rq->trace.path);
    else
        snprintf(prompt, sizeof(prompt), "%s %d-%d tokens",
                 w->sessions ? "first prompts" : "prompts", rq->prompt_tokens_min,
                 rq->prompt_tokens_max);
    if (w->sessions) {
        struct session_cfg ss = rq->session;
        if (!ss.enabled)
            session_cfg_defaults(&ss);
        snprintf(buf, len,
                 "%s: users in conversation (population sessions: %d turns, think time %s mean "
                 "%g s); %s, follow-ups %d-%d, answers %d tokens; %s API",
                 w->name, ss.turns, think_dist_name(ss.think), ss.think_time_s, prompt,
                 ss.message_tokens_min, ss.message_tokens_max, rq->completion_tokens,
                 api_kind_name(wc->server.api));
    } else {
        snprintf(buf, len,
                 "%s: closed-loop request streams (population streams: a batch job, no think "
                 "time); %s, answers %d tokens; %s API",
                 w->name, prompt, rq->completion_tokens, api_kind_name(wc->server.api));
    }
}

/* The weights as a person names them: the checkpoint's own dtype says so. */
static void weights_label(const struct study_setup *s, const struct plan_prediction *p, char *buf,
                          size_t len)
{
    bool native = !s->quantization || !*s->quantization || strcmp(s->quantization, "none") == 0;
    if (native)
        snprintf(buf, len, "%s (checkpoint)", p->weight_dtype[0] ? p->weight_dtype : "native");
    else
        snprintf(buf, len, "%s", s->quantization);
}

static void kv_label(const struct study_setup *s, const struct plan_prediction *p, char *buf,
                     size_t len)
{
    bool dflt = !s->kv_cache_dtype || strcmp(s->kv_cache_dtype, "auto") == 0;
    snprintf(buf, len, "kv %s", dflt && p->kv_dtype[0] ? p->kv_dtype : s->kv_cache_dtype);
}

/* ==== The predicted table ==== */

void study_print_plan(struct study *st)
{
    printf("Predicted before any server starts (testbench plan, %s; %d users):\n",
           st->cfg.study.gpu, st->cfg.study.users.v[0]);
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        char what[320], slo[200];
        study_describe_workload(st, wi, what, sizeof(what));
        slo_describe(study_workload_slo(st, wi), slo, sizeof(slo));
        printf("  workload %s\n  SLO %s\n", what, slo);
    }
    int idw = 5, wlw = 8; /* column widths: the longest setup id and workload name */
    for (size_t si = 0; si < st->n_setups; si++)
        idw = (int)strlen(st->setups[si].id) > idw ? (int)strlen(st->setups[si].id) : idw;
    for (size_t wi = 0; wi < st->n_wl; wi++)
        wlw = (int)strlen(st->wl[wi].name) > wlw ? (int)strlen(st->wl[wi].name) : wlw;
    printf("  %-*s %-*s %10s %10s %9s %10s %9s\n", idw, "setup", wlw, "workload", "KV tokens",
           "TTFT p95", "TPOT p50", "tok/s/user", "capacity");
    double seconds = 0, fixed = 0;
    size_t launched = 0;
    for (size_t si = 0; si < st->n_setups && !study_stop_requested; si++) {
        bool any = false;
        for (size_t wi = 0; wi < st->n_wl; wi++) {
            int users = st->cfg.study.users.v[0];
            struct plan_prediction p;
            int prompt, output, context;
            int rc = study_predict(st, si, wi, users, &p, &prompt, &output, &context);
            if (rc || !p.fits) {
                /* The whole reason and its lever, on a line of its own (never cut). */
                printf("  %-*s %-*s %s:\n      %s\n", idw, st->setups[si].id, wlw, st->wl[wi].name,
                       strncmp(p.fit_msg, "cannot be loaded", 16) == 0 ? "not launched"
                                                                       : "does not fit",
                       rc ? "the plan failed (see above)" : p.fit_msg);
                continue;
            }
            any = true;
            int mx = study_predict_max_users(st, si, wi, prompt, output);
            double f = 0;
            seconds += study_expected_seconds(st, si, wi, mx, &f);
            fixed += f;
            char ttft[24], tpot[24], cap[24], tps[24];
            human_ms(p.ttft.p95 * 1e3, ttft, sizeof(ttft));
            human_ms(p.tpot.p50 * 1e3, tpot, sizeof(tpot));
            if (mx < 0)
                snprintf(cap, sizeof(cap), "%s", HUMAN_NONE);
            else
                snprintf(cap, sizeof(cap), "%s%d", mx >= st->cfg.study.max_users ? ">=" : "", mx);
            printf("  %-50s %-14.14s %10ld %10s %9s %10s %9s\n", st->setups[si].id, st->wl[wi].name,
                   p.kv_capacity_tokens, ttft, tpot, human_num(p.user_tps, 1, tps, sizeof(tps)),
                   cap);
        }
        launched += any;
    }
    char took[32], fixed_took[32];
    human_ms(seconds * 1e3, took, sizeof(took));
    human_ms(fixed * 1e3, fixed_took, sizeof(fixed_took));
    printf("  TTFT p95, TPOT p50 and tok/s/user at %d users; capacity = the most users the plan "
           "expects within the SLO (>= : the search ceiling, %d)\n",
           st->cfg.study.users.v[0], st->cfg.study.max_users);
    printf("  %zu of %zu setups to launch; measuring them takes about %s if the plan is right "
           "(plus each server's start-up), stopping each probe once its verdict is certain; "
           "every probe to its cap would take %s\n",
           launched, st->n_setups, took, fixed_took);
    if (st->args.plan_only)
        study_print_guidance(st);
    fflush(stdout);
}

/* ==== The guidance matrix ==== */

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* The target row of setup si x workload wi at users, or NULL. */
static json_t *target_row(const struct study *st, size_t si, size_t wi, int users)
{
    json_t *rows = st->doc ? json_object_get(st->doc, "rows") : NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *role = json_string_value(json_object_get(r, "role"));
        const char *setup = json_string_value(json_object_get(r, "setup"));
        const char *wl = json_string_value(json_object_get(r, "workload"));
        if (role && setup && wl && strcmp(role, "target") == 0 &&
            strcmp(setup, st->setups[si].id) == 0 && strcmp(wl, st->wl[wi].name) == 0 &&
            json_integer_value(json_object_get(r, "users")) == users)
            return r;
    }
    return NULL;
}

/* One cell: capacity | the experience at the target user count, each with its badge; or
 * why there is none. note (may be set) is printed under the matrix. */
struct cell_text {
    char text[96];
    char evidence[256]; /* the measured verdict's evidence (slo_evidence), or "" */
    char note[1024];
};

static void capacity_text(const struct study *st, long mx, bool known, const char *badge, char *buf,
                          size_t len)
{
    if (!known)
        snprintf(buf, len, "%s", HUMAN_NONE);
    else
        snprintf(buf, len, "%s%ld %s", mx >= st->cfg.study.max_users ? ">=" : "", mx, badge);
}

static void cell_build(const struct study *st, size_t si, size_t wi, int users, struct cell_text *c)
{
    c->note[0] = c->evidence[0] = '\0';
    json_t *r = target_row(st, si, wi, users);
    const char *status = r ? json_string_value(json_object_get(r, "status")) : NULL;
    const char *reason = r ? json_string_value(json_object_get(r, "reason")) : NULL;
    struct plan_prediction p;
    int prompt, output, context;
    int prc = study_predict(st, si, wi, users, &p, &prompt, &output, &context);
    if ((status && strcmp(status, "does_not_fit") == 0) || (!status && (prc || !p.fits))) {
        snprintf(c->text, sizeof(c->text), "does not fit [p]");
        snprintf(c->note, sizeof(c->note), "does not fit: %s",
                 reason ? reason
                 : prc  ? "the plan failed"
                        : p.fit_msg);
        return;
    }
    if (status && strcmp(status, "failed_to_start") == 0) {
        snprintf(c->text, sizeof(c->text), "not run: %.*s", (int)strcspn(reason ? reason : "", ":"),
                 reason ? reason : "failed");
        snprintf(c->note, sizeof(c->note), "failed to start: %s", reason ? reason : "");
        return;
    }
    bool measured = status && (strcmp(status, "measured") == 0);
    if (status && strcmp(status, "failed") == 0) {
        snprintf(c->text, sizeof(c->text), "not run: the run failed");
        snprintf(c->note, sizeof(c->note), "%s", reason ? reason : "the run failed");
        return;
    }
    const char *b = measured ? "[m]" : "[p]";
    const json_t *mx =
        r ? json_object_get(r, measured ? "meas_max_users" : "pred_max_users") : NULL;
    long cap = -1;
    bool cap_known = false, cap_measured = measured && json_is_integer(mx);
    if (json_is_integer(mx)) {
        cap = (long)json_integer_value(mx);
        cap_known = true;
    } else if (r && json_is_integer(json_object_get(r, "pred_max_users"))) {
        cap = (long)json_integer_value(json_object_get(r, "pred_max_users"));
        cap_known = true;
    } else if (!prc && p.fits) {
        cap = study_predict_max_users(st, si, wi, prompt, output);
        cap_known = cap >= 0;
    }
    char cap_s[32], tps_s[32];
    capacity_text(st, cap, cap_known, cap_measured ? "[m]" : "[p]", cap_s, sizeof(cap_s));
    double tps = measured ? json_number_value(json_object_get(r, "meas_user_tps")) : p.user_tps;
    if (measured && !json_is_number(json_object_get(r, "meas_user_tps")))
        tps = NAN;
    const json_t *met = r ? json_object_get(r, "slo_met") : NULL;
    const char *verdict = measured ? (json_is_true(met)    ? "met"
                                      : json_is_false(met) ? "missed"
                                                           : HUMAN_NONE)
                                   : (p.meets_slo ? "met" : "missed");
    human_num(tps, 0, tps_s, sizeof(tps_s));
    snprintf(c->text, sizeof(c->text), "%s | %s tok/s %s %s", cap_s, tps_s, verdict, b);
    const char *ev = measured ? json_string_value(json_object_get(r, "slo_evidence")) : NULL;
    if (ev)
        snprintf(c->evidence, sizeof(c->evidence), "%s", ev);
    if (status && strcmp(status, "interrupted") == 0)
        snprintf(c->note, sizeof(c->note), "interrupted before it was measured: the plan's");
    if (cap_known && cap == 0) {
        /* Nobody is served: say whether even one user alone misses it, and by how much. */
        struct plan_prediction one;
        int a, bb, cc;
        if (!study_predict(st, si, wi, 1, &one, &a, &bb, &cc) && one.simulated) {
            struct plan_floor fl;
            plan_floor_judge(study_workload_slo(st, wi), one.at_pct, &fl);
            if (fl.unreachable)
                snprintf(c->note, sizeof(c->note), "the SLO is unreachable here: %s", fl.why);
        }
    }
}

/* The distinct windows of the setups (0 = the model's own), ascending; caller frees. */
static int *setup_windows(const struct study *st, size_t *n)
{
    int *w = xcalloc(st->n_setups ? st->n_setups : 1, sizeof(*w));
    *n = 0;
    for (size_t si = 0; si < st->n_setups; si++) {
        bool seen = false;
        for (size_t k = 0; k < *n; k++)
            seen |= w[k] == st->setups[si].max_model_len;
        if (!seen)
            w[(*n)++] = st->setups[si].max_model_len;
    }
    qsort(w, *n, sizeof(int), cmp_int);
    return w;
}

static bool same_row_key(const struct study_setup *a, const struct study_setup *b)
{
    return strcmp(a->model, b->model) == 0 &&
           !strcmp(a->quantization ? a->quantization : "",
                   b->quantization ? b->quantization : "") &&
           strcmp(a->kv_cache_dtype, b->kv_cache_dtype) == 0;
}

/* The row label of setup si: model (without its organisation) / weights / KV cache. */
static void row_label(const struct study *st, size_t si, size_t wi, int users, char *buf,
                      size_t len)
{
    struct plan_prediction p;
    int a, b, c;
    study_predict(st, si, wi, users, &p, &a, &b, &c);
    char wts[48], kv[32];
    weights_label(&st->setups[si], &p, wts, sizeof(wts));
    kv_label(&st->setups[si], &p, kv, sizeof(kv));
    const char *model = strrchr(st->setups[si].model, '/');
    snprintf(buf, len, "%s / %s / %s", model ? model + 1 : st->setups[si].model, wts, kv);
}

static bool row_first(const struct study *st, size_t si)
{
    for (size_t sj = 0; sj < si; sj++)
        if (same_row_key(&st->setups[sj], &st->setups[si]))
            return false;
    return true;
}

static void print_matrix(const struct study *st, size_t wi, int users, const int *win, size_t nwin)
{
    char what[320], slo[200];
    study_describe_workload(st, wi, what, sizeof(what));
    slo_describe(study_workload_slo(st, wi), slo, sizeof(slo));
    printf("\nWhat %d users get on %s, workload %s\nSLO %s\n", users, st->cfg.study.gpu, what, slo);
    printf("  cell: capacity (the most users within the SLO) | at %d users: tokens/s per user, "
           "SLO met or missed; under a measured one, the percentile it was judged by, its "
           "confidence interval and the requests judged\n",
           users);
    int lw = 26; /* the longest row label */
    for (size_t si = 0; si < st->n_setups; si++) {
        char label[200];
        row_label(st, si, wi, users, label, sizeof(label));
        lw = (int)strlen(label) > lw ? (int)strlen(label) : lw;
    }
    /* Every cell first: the columns are as wide as the widest cell or evidence. */
    struct cell_text *cells = xcalloc(st->n_setups * (nwin ? nwin : 1), sizeof(*cells));
    int cw = 32;
    for (size_t si = 0; si < st->n_setups; si++) {
        if (!row_first(st, si)) /* a line per distinct row key, at its first setup */
            continue;
        for (size_t k = 0; k < nwin; k++) {
            struct cell_text *ct = &cells[si * nwin + k];
            snprintf(ct->text, sizeof(ct->text), "%s", HUMAN_NONE);
            for (size_t sj = si; sj < st->n_setups; sj++) {
                if (same_row_key(&st->setups[sj], &st->setups[si]) &&
                    st->setups[sj].max_model_len == win[k]) {
                    cell_build(st, sj, wi, users, ct);
                    break;
                }
            }
            int w = (int)strlen(ct->evidence) + 1, wt = (int)strlen(ct->text) + 6; /* " (n)" */
            w = wt > w ? wt : w;
            cw = w > cw ? w : cw;
        }
    }
    printf("  %-*s", lw, "model / weights / KV cache");
    for (size_t k = 0; k < nwin; k++) {
        char h[32];
        if (win[k])
            snprintf(h, sizeof(h), "window %d", win[k]);
        else
            snprintf(h, sizeof(h), "window (model's own)");
        printf("  %-*s", cw, h);
    }
    printf("\n");
    char **notes = NULL;
    size_t n_notes = 0;
    for (size_t si = 0; si < st->n_setups; si++) {
        if (!row_first(st, si))
            continue;
        char label[200];
        row_label(st, si, wi, users, label, sizeof(label));
        printf("  %-*s", lw, label);
        bool evidence = false;
        for (size_t k = 0; k < nwin; k++) {
            struct cell_text *ct = &cells[si * nwin + k];
            evidence |= ct->evidence[0] != '\0';
            if (ct->note[0]) {
                notes = xreallocarray(notes, n_notes + 1, sizeof(*notes));
                notes[n_notes++] = xasprintf("%s, window %d: %s", label, win[k], ct->note);
                char mark[24];
                snprintf(mark, sizeof(mark), " (%zu)", n_notes);
                strncat(ct->text, mark, sizeof(ct->text) - strlen(ct->text) - 1);
            }
            printf("  %-*s", cw, ct->text);
        }
        printf("\n");
        if (!evidence)
            continue;
        /* Under each measured verdict, what it rests on: the judged percentile, its
         * confidence interval and the requests judged. */
        printf("  %-*s", lw, "");
        for (size_t k = 0; k < nwin; k++)
            printf("  %-*s", cw, cells[si * nwin + k].evidence);
        printf("\n");
    }
    free(cells);
    printf("  [m] measured, [p] predicted by the plan (not measured); %s no value; >= at the "
           "search ceiling (%d)\n",
           HUMAN_NONE, st->cfg.study.max_users);
    for (size_t k = 0; k < n_notes; k++) {
        printf("  (%zu) %s\n", k + 1, notes[k]);
        free(notes[k]);
    }
    free(notes);
}

void study_print_guidance(struct study *st)
{
    int users = st->cfg.study.users.v[0];
    size_t nwin = 0;
    int *win = setup_windows(st, &nwin);
    for (size_t wi = 0; wi < st->n_wl; wi++)
        print_matrix(st, wi, users, win, nwin);
    free(win);
}
