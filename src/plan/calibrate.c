/*
 * calibrate.c - `testbench calibrate`: reads result files measured against a real server (or the
 * simulator), replays every closed-loop point with the planner, and fits the cost model's
 * efficiencies by least squares on log(predicted / measured) of output throughput, mean TTFT and
 * mean TPOT (Nelder-Mead in log space, bounded by calibration_param_range). Means, because a
 * mean is what sums: the throughput and the TPOT mean of the same run are tied to the same step
 * durations, a percentile is not. docs/CALIBRATION.md.
 */
#include "plan/calibrate.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "config/catalog.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/stats.h"

#define CAL_MAX_POINTS 512
#define CAL_MAX_EVALS 1500
/* A parameter the predictions move by less than this (|log ratio|, for a 25 % change) is not
 * constrained by the results. */
#define CAL_SENSITIVITY 0.005

void calibrate_set_init(struct calibrate_set *s)
{
    memset(s, 0, sizeof(*s));
}

void calibrate_set_release(struct calibrate_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->pts[i].own_prompt_lens);
        free(s->pts[i].own_output_lens);
    }
    free(s->pts);
    memset(s, 0, sizeof(*s));
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static double jmean(json_t *summary, const char *key)
{
    return jnum(json_object_get(summary, key), "mean");
}

/* A GPU as NVML names it ("NVIDIA H100 80GB HBM3") or as the catalog does. */
static const struct gpu_spec *gpu_lookup(const struct catalog *cat, const char *name)
{
    const struct gpu_spec *g = catalog_find_gpu(cat, name);
    if (!g && strncasecmp(name, "NVIDIA ", 7) == 0)
        g = catalog_find_gpu(cat, name + 7);
    for (size_t i = 0; !g && i < cat->n_gpus; i++)
        if (strcasecmp(cat->gpus[i].display_name, name) == 0)
            g = &cat->gpus[i];
    return g;
}

void calibrate_point_query(const struct calibrate_point *p, struct plan_query *q)
{
    *q = p->q;
    q->gpu = p->gpu;
    q->model = p->model;
    q->quantization = p->quantization[0] ? p->quantization : NULL;
    q->kv_cache_dtype = p->kv_cache_dtype[0] ? p->kv_cache_dtype : NULL;
}

/* The completed requests' own lengths, in record order (the order a closed loop sends them),
 * so the plan replays the measured mix: a spread of lengths puts closed-loop users out of step,
 * which its mean would not. None (the means stand) when the records are missing, name no
 * length, disagree with the summary's count or exceed the window. */
static void point_lengths(json_t *pt, struct calibrate_point *p)
{
    json_t *reqs = json_object_get(pt, "requests");
    size_t n = json_array_size(reqs);
    if (n == 0 || p->q.requests < 1)
        return;
    int *pl = xcalloc(n, sizeof(*pl)), *ol = xcalloc(n, sizeof(*ol));
    size_t k = 0, i;
    json_t *r;
    bool ok = true;
    json_array_foreach(reqs, i, r)
    {
        const char *st = jstr(r, "status");
        if (!st || strcmp(st, "ok") != 0)
            continue;
        double in = jnum(r, "prompt_tokens");
        if (!(in >= 1))
            in = jnum(r, "target_prompt_tokens");
        double out = jnum(r, "output_tokens");
        if (!(in >= 1 && out >= 1 && in < 1e8 && out < 1e8) ||
            (p->q.max_model_len > 0 && in + out > p->q.max_model_len)) {
            ok = false;
            break;
        }
        pl[k] = (int)in;
        ol[k] = (int)out;
        k++;
    }
    if (!ok || k != (size_t)p->q.requests) {
        free(pl);
        free(ol);
        return;
    }
    p->own_prompt_lens = pl;
    p->own_output_lens = ol;
    p->q.prompt_lens = pl;
    p->q.output_lens = ol;
    p->q.n_lens = k;
}

int calibrate_load(struct calibrate_set *s, const char *path, const struct calibrate_overrides *ov,
                   char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        jsonx_error_format(err, errlen, path, &je);
        return access(path, R_OK) ? -ENOENT : -EINVAL;
    }
    int rc = 0;
    struct catalog *cat = NULL;
    json_t *config = json_object_get(root, "config");
    json_t *server = json_object_get(root, "server");
    json_t *points = json_object_get(root, "points");
    if (!json_is_object(config) || !json_is_object(server) || !json_is_array(points)) {
        snprintf(err, errlen, "%s: not a testbench detailed.json (no config, server or points)",
                 path);
        rc = -EINVAL;
        goto out;
    }
    rc = catalog_load(&cat, ov->catalog_dir, err, errlen);
    if (rc)
        goto out;
    json_t *sim = json_object_get(json_object_get(config, "server"), "sim");
    bool is_sim = json_is_true(json_object_get(sim, "enabled"));
    json_t *model_cfg = json_object_get(config, "model");

    /* The GPU: --gpu, else what NVML reported, else the simulator's. */
    json_t *gpus = json_object_get(root, "gpus");
    const char *measured = json_array_size(gpus) > 0 ? jstr(json_array_get(gpus, 0), "name")
                           : is_sim                  ? jstr(sim, "gpu")
                                                     : NULL;
    const char *gname = ov->gpu ? ov->gpu : measured;
    const struct gpu_spec *g = gname ? gpu_lookup(cat, gname) : NULL;
    if (!g) {
        snprintf(err, errlen, "%s: %s; give --gpu NAME (a catalog GPU)", path,
                 gname ? "the GPU is not in the catalog" : "the results name no GPU");
        rc = -EINVAL;
        goto out;
    }
    /* --gpu against the files: a fit of one card's results named after another card describes
     * neither (its efficiencies would be applied to the wrong peaks). */
    const struct gpu_spec *mg = measured ? gpu_lookup(cat, measured) : NULL;
    if (ov->gpu && mg && mg != g && !ov->force) {
        snprintf(err, errlen,
                 "%s was measured on %s (%s), not %s as --gpu says; give --gpu %s, or --force to "
                 "fit %s anyway",
                 path, mg->name, json_array_size(gpus) > 0 ? "NVML" : "the simulator's GPU",
                 g->name, mg->name, g->name);
        rc = -EINVAL;
        goto out;
    }
    const char *mname = ov->model;
    if (!mname && is_sim)
        mname = jstr(sim, "model");
    if (!mname)
        mname = jstr(model_cfg, "name");
    if (!mname)
        mname = jstr(server, "model");
    if (!mname || !catalog_find_model(cat, mname)) {
        snprintf(err, errlen, "%s: model %s is not in the catalog; give --model NAME", path,
                 mname ? mname : "(none)");
        rc = -EINVAL;
        goto out;
    }
    const char *quant = ov->quantization;
    if (!quant && is_sim)
        quant = jstr(sim, "quantization");
    if (!quant)
        quant = jstr(model_cfg, "quantization");
    const char *kv = ov->kv_cache_dtype ? ov->kv_cache_dtype
                     : is_sim           ? jstr(sim, "kv_cache_dtype")
                                        : NULL;
    double util = ov->gpu_memory_utilization;
    if (util <= 0 && is_sim)
        util = jnum(sim, "gpu_memory_utilization");
    int seqs = ov->max_num_seqs, mbt = ov->max_num_batched_tokens;
    if (is_sim && !seqs)
        seqs = (int)jnum(sim, "max_num_seqs");
    if (is_sim && !mbt)
        mbt = (int)jnum(sim, "max_num_batched_tokens");
    double tp = jnum(model_cfg, "tensor_parallel_size");
    bool pc = !json_is_false(json_object_get(model_cfg, "enable_prefix_caching"));
    double mml = jnum(server, "max_model_len");
    const char *version = jstr(server, "version");

    if (s->n == 0) {
        snprintf(s->gpu, sizeof(s->gpu), "%s", g->name);
        snprintf(s->model, sizeof(s->model), "%s", mname);
        snprintf(s->engine, sizeof(s->engine), "%s",
                 version && strstr(version, "testbench-sim") ? "testbench-sim" : "vllm");
        snprintf(s->engine_version, sizeof(s->engine_version), "%s", version ? version : "");
    } else if (strcmp(s->gpu, g->name) != 0) {
        snprintf(err, errlen, "%s: results from %s mixed with %s; calibrate one GPU at a time",
                 path, g->name, s->gpu);
        rc = -EINVAL;
        goto out;
    }

    size_t i;
    json_t *pt;
    json_array_foreach(points, i, pt)
    {
        json_t *sum = json_object_get(pt, "summary");
        json_t *rate = json_object_get(pt, "rate");
        double conc = jnum(pt, "concurrency");
        double done = jnum(sum, "completed");
        /* The planner replays closed loops: a capped concurrency at an unlimited rate, without
         * sessions (their users think between turns, which the planner does not model). */
        bool sessions = json_is_object(json_object_get(sum, "sessions"));
        bool closed = json_is_string(rate) && strcmp(json_string_value(rate), "inf") == 0 &&
                      conc >= 1 && !sessions;
        if (!closed || json_is_true(json_object_get(pt, "partial")) || !(done >= 2)) {
            s->skipped++;
            continue;
        }
        if (s->n == CAL_MAX_POINTS) {
            snprintf(err, errlen, "%s: more than %d points", path, CAL_MAX_POINTS);
            rc = -EINVAL;
            goto out;
        }
        s->pts = xreallocarray(s->pts, s->n + 1, sizeof(*s->pts));
        struct calibrate_point *p = &s->pts[s->n];
        memset(p, 0, sizeof(*p));
        snprintf(p->gpu, sizeof(p->gpu), "%s", g->name);
        snprintf(p->model, sizeof(p->model), "%s", mname);
        snprintf(p->quantization, sizeof(p->quantization), "%s", quant ? quant : "");
        snprintf(p->kv_cache_dtype, sizeof(p->kv_cache_dtype), "%s", kv ? kv : "");
        p->q.max_model_len = mml > 0 ? (int)mml : 0;
        p->q.gpu_memory_utilization = util > 0 ? util : 0;
        p->q.tensor_parallel_size = tp >= 1 ? (int)tp : 1;
        p->q.max_num_seqs = seqs > 0 ? seqs : 0;
        p->q.max_num_batched_tokens = mbt > 0 ? mbt : 0;
        p->q.prefix_caching = pc;
        /* Mean lengths, for the label and where the records give none; point_lengths then
         * hands the planner each request's own (docs/CALIBRATION.md). */
        p->q.prompt_tokens = (int)lround(jnum(sum, "prompt_tokens_total") / done);
        p->q.output_tokens = (int)lround(jnum(sum, "output_tokens_total") / done);
        p->q.users = (int)conc;
        p->q.requests = (int)done;
        p->q.slo = (struct slo_cfg){.ttft_ms = NAN,
                                    .itl_ms = NAN,
                                    .tpot_ms = NAN,
                                    .e2e_ms = NAN,
                                    .percentile = 95,
                                    .confidence = 0.95};
        p->tps = jnum(sum, "output_throughput");
        p->ttft_s = jmean(sum, "ttft_ms") / 1e3;
        p->tpot_s = p->q.output_tokens > 1 ? jmean(sum, "tpot_ms") / 1e3 : NAN;
        snprintf(p->label, sizeof(p->label), "%d users, %d + %d tokens", p->q.users,
                 p->q.prompt_tokens, p->q.output_tokens);
        if (p->q.prompt_tokens < 1 || p->q.output_tokens < 1 || !(p->tps > 0) || !(p->ttft_s > 0)) {
            s->skipped++;
            continue;
        }
        point_lengths(pt, p);
        s->n++;
    }
out:
    catalog_free(cat);
    json_decref(root);
    return rc;
}

/* ---- the fit ------------------------------------------------------------------------------ */

struct fit_ctx {
    const struct calibrate_set *s;
    const struct catalog *cat;
    struct cost_calibration base;
    int idx[CAL_N_PARAMS]; /* free parameters */
    int nfree;
    int evals;
    char err[512];
    int rc;
};

/* Residuals log(predicted / measured), three per point (NAN where not measured). */
static int predict_all(struct fit_ctx *f, const struct cost_calibration *cal, double *res)
{
    for (size_t i = 0; i < f->s->n; i++) {
        const struct calibrate_point *p = &f->s->pts[i];
        struct plan_query q = p->q;
        calibrate_point_query(p, &q);
        struct plan_prediction pr;
        int rc = plan_predict_with(&q, f->cat, cal, &pr, f->err, sizeof(f->err));
        if (rc)
            return rc;
        bool ok = pr.fits && pr.simulated;
        res[3 * i] = ok ? log(pr.output_tps / p->tps) : NAN;
        res[3 * i + 1] = ok ? log(pr.ttft.mean / p->ttft_s) : NAN;
        res[3 * i + 2] = ok && isfinite(p->tpot_s) ? log(pr.tpot.mean / p->tpot_s) : NAN;
    }
    f->evals++;
    return 0;
}

static void params_from_x(const struct fit_ctx *f, const double *x, struct cost_calibration *c)
{
    *c = f->base;
    for (int k = 0; k < f->nfree; k++) {
        double lo, hi;
        calibration_param_range((enum calibration_param)f->idx[k], &lo, &hi);
        double v = exp(x[k]);
        c->p[f->idx[k]] = v < lo ? lo : v > hi ? hi : v;
    }
}

/* Sum of squared residuals; a point the setup cannot run counts as a large miss. */
static double objective(struct fit_ctx *f, const double *x)
{
    struct cost_calibration c;
    params_from_x(f, x, &c);
    double *res = xcalloc(3 * f->s->n, sizeof(*res));
    double sum = 0;
    if (f->rc || (f->rc = predict_all(f, &c, res)) != 0) {
        free(res);
        return INFINITY;
    }
    for (size_t i = 0; i < 3 * f->s->n; i++)
        sum += isfinite(res[i]) ? res[i] * res[i] : (i % 3 == 2 ? 0 : 4.0);
    free(res);
    return sum;
}

/* Nelder-Mead on n dimensions from x (in place); the textbook coefficients. */
static void nelder_mead(struct fit_ctx *f, double *x, int n, double step)
{
    int m = n + 1;
    double *pts = xcalloc((size_t)(m * n), sizeof(double));
    double *val = xcalloc((size_t)m, sizeof(double));
    double *cen = xcalloc((size_t)n, sizeof(double));
    double *xr = xcalloc((size_t)n, sizeof(double));
    double *xe = xcalloc((size_t)n, sizeof(double));
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++)
            pts[i * n + j] = x[j] + (i == j + 1 ? step : 0);
        val[i] = objective(f, &pts[i * n]);
    }
    for (int iter = 0; iter < CAL_MAX_EVALS && !f->rc; iter++) {
        /* Order: best first. */
        for (int i = 1; i < m; i++)
            for (int k = i; k > 0 && val[k] < val[k - 1]; k--) {
                double t = val[k];
                val[k] = val[k - 1];
                val[k - 1] = t;
                for (int j = 0; j < n; j++) {
                    t = pts[k * n + j];
                    pts[k * n + j] = pts[(k - 1) * n + j];
                    pts[(k - 1) * n + j] = t;
                }
            }
        double spread = 0;
        for (int i = 1; i < m; i++)
            for (int j = 0; j < n; j++)
                spread = fmax(spread, fabs(pts[i * n + j] - pts[j]));
        if (spread < 1e-4 && fabs(val[m - 1] - val[0]) < 1e-10)
            break;
        for (int j = 0; j < n; j++) {
            cen[j] = 0;
            for (int i = 0; i < n; i++)
                cen[j] += pts[i * n + j] / n;
        }
        double *worst = &pts[(m - 1) * n];
        for (int j = 0; j < n; j++)
            xr[j] = cen[j] + (cen[j] - worst[j]);
        double fr = objective(f, xr);
        if (fr < val[0]) {
            for (int j = 0; j < n; j++)
                xe[j] = cen[j] + 2.0 * (cen[j] - worst[j]);
            double fe = objective(f, xe);
            memcpy(worst, fe < fr ? xe : xr, (size_t)n * sizeof(double));
            val[m - 1] = fe < fr ? fe : fr;
        } else if (fr < val[m - 2]) {
            memcpy(worst, xr, (size_t)n * sizeof(double));
            val[m - 1] = fr;
        } else {
            for (int j = 0; j < n; j++)
                xe[j] = cen[j] + 0.5 * (worst[j] - cen[j]);
            double fc = objective(f, xe);
            if (fc < val[m - 1]) {
                memcpy(worst, xe, (size_t)n * sizeof(double));
                val[m - 1] = fc;
            } else {
                for (int i = 1; i < m; i++) {
                    for (int j = 0; j < n; j++)
                        pts[i * n + j] = pts[j] + 0.5 * (pts[i * n + j] - pts[j]);
                    val[i] = objective(f, &pts[i * n]);
                }
            }
        }
    }
    int best = 0;
    for (int i = 1; i < m; i++)
        if (val[i] < val[best])
            best = i;
    memcpy(x, &pts[best * n], (size_t)n * sizeof(double));
    free(pts);
    free(val);
    free(cen);
    free(xr);
    free(xe);
}

static double median_abs_pct(const double *res, size_t n)
{
    double *v = xcalloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(res[i]))
            v[k++] = fabs(exp(res[i]) - 1.0) * 100.0;
    double m = median_in_place(v, k);
    free(v);
    return m;
}

int calibrate_fit(const struct calibrate_set *s, const char *catalog_dir, const bool *which,
                  struct cost_calibration *cal, struct calibrate_report *rep, char *err,
                  size_t errlen)
{
    memset(rep, 0, sizeof(*rep));
    if (s->n == 0) {
        snprintf(err, errlen, "no closed-loop points to fit (%zu skipped)", s->skipped);
        return -EINVAL;
    }
    struct catalog *cat = NULL;
    int rc = catalog_load(&cat, catalog_dir, err, errlen);
    if (rc)
        return rc;
    struct fit_ctx f = {.s = s, .cat = cat, .base = *cal};
    size_t nres = 3 * s->n;
    double *r0 = xcalloc(nres, sizeof(double));
    double *r1 = xcalloc(nres, sizeof(double));
    rc = predict_all(&f, cal, r0);
    if (rc)
        goto out;
    rep->err_before_pct = median_abs_pct(r0, nres);
    /* Which parameters the points constrain: those a 25 % change moves some figure by more than
     * CAL_SENSITIVITY. */
    for (int i = 0; i < CAL_N_PARAMS; i++) {
        /* The fixed costs but request_s only when asked: at a fixed batch size step_s and
         * sequence_s trade off against the bandwidth efficiencies, and a calibration run on one
         * GPU says nothing of the all-reduce or of other servers (docs/CALIBRATION.md). */
        bool want =
            which ? which[i] : calibration_param_fitted_by_default((enum calibration_param)i);
        if (!want)
            continue;
        struct cost_calibration c = *cal;
        double lo, hi;
        calibration_param_range((enum calibration_param)i, &lo, &hi);
        c.p[i] = c.p[i] > 0 ? c.p[i] * 1.25 : 0.01;
        if (c.p[i] > hi)
            c.p[i] = cal->p[i] / 1.25;
        rc = predict_all(&f, &c, r1);
        if (rc)
            goto out;
        double moved = 0;
        for (size_t k = 0; k < nres; k++)
            if (isfinite(r0[k]) && isfinite(r1[k]))
                moved = fmax(moved, fabs(r1[k] - r0[k]));
        if (moved > CAL_SENSITIVITY) {
            rep->fitted[i] = true;
            f.idx[f.nfree++] = i;
        }
    }
    if (f.nfree > 0) {
        double x[CAL_N_PARAMS];
        for (int k = 0; k < f.nfree; k++) {
            double v = cal->p[f.idx[k]];
            x[k] = log(v > 0 ? v : 1e-3);
        }
        /* Two passes: the second restarts the simplex around the first's answer, which gets
         * Nelder-Mead out of the occasional collapsed simplex. */
        nelder_mead(&f, x, f.nfree, 0.3);
        nelder_mead(&f, x, f.nfree, 0.05);
        if (f.rc) {
            snprintf(err, errlen, "%s", f.err);
            rc = f.rc;
            goto out;
        }
        params_from_x(&f, x, cal);
    }
    rc = predict_all(&f, cal, r1);
    if (rc)
        goto out;
    rep->err_after_pct = median_abs_pct(r1, nres);
    rep->evaluations = f.evals;
out:
    if (rc && f.err[0])
        snprintf(err, errlen, "%s", f.err);
    free(r0);
    free(r1);
    catalog_free(cat);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------- */

static void calibrate_usage(void)
{
    fprintf(stderr,
            "usage: testbench calibrate RESULTS_detailed.json... [--output FILE] [--gpu NAME]\n"
            "    [--model NAME] [--quantization Q] [--kv-cache-dtype D]\n"
            "    [--gpu-memory-utilization F] [--max-num-seqs N] [--max-num-batched-tokens N]\n"
            "    [--catalog DIR] [--fit P[,P...]] [--from FILE] [--force]\n"
            "Fits the cost model's efficiencies to results measured on your GPU and writes a\n"
            "calibration profile (default: calibration-GPU-ENGINE-VERSION.yaml).\n"
            "Parameters: gemm, gemm_int4, gemm_fp4_upcast, moe, attention, weight_bandwidth,\n"
            "kv_bandwidth, request_s (default: every one of these the results constrain), and\n"
            "the fixed costs fitted only when --fit names them: step_s, sequence_s,\n"
            "allreduce_nvlink_s, allreduce_hop_pcie_s, allreduce_hop_host_s,\n"
            "host_contention, moe_layer_s. --gpu names the GPU the results came\n"
            "from when they do not say; one that contradicts them needs --force.\n");
}

static int parse_fit_list(char *s, bool *which)
{
    memset(which, 0, CAL_N_PARAMS * sizeof(*which));
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < CAL_N_PARAMS && strcmp(tok, calibration_param_name((enum calibration_param)k)))
            k++;
        if (k == CAL_N_PARAMS)
            return -EINVAL;
        which[k] = true;
    }
    return 0;
}

/* "calibration-rtx-pro-6000-vllm-0.11.0.yaml", with anything but [A-Za-z0-9._-] as '-'. */
static void default_name(const struct calibrate_set *s, char *buf, size_t len)
{
    snprintf(buf, len, "calibration-%s-%s-%s.yaml", s->gpu, s->engine,
             s->engine_version[0] ? s->engine_version : "unknown");
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '-';
}

int calibrate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"gpu", required_argument, NULL, 'g'},
        {"model", required_argument, NULL, 'm'},
        {"quantization", required_argument, NULL, 'q'},
        {"kv-cache-dtype", required_argument, NULL, 'k'},
        {"gpu-memory-utilization", required_argument, NULL, 'u'},
        {"max-num-seqs", required_argument, NULL, 's'},
        {"max-num-batched-tokens", required_argument, NULL, 'b'},
        {"catalog", required_argument, NULL, 'c'},
        {"fit", required_argument, NULL, 'f'},
        {"from", required_argument, NULL, 'F'},
        {"force", no_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct calibrate_overrides ov = {0};
    const char *output = NULL, *from = NULL;
    bool which[CAL_N_PARAMS];
    bool have_which = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'g':
            ov.gpu = optarg;
            break;
        case 'm':
            ov.model = optarg;
            break;
        case 'q':
            ov.quantization = optarg;
            break;
        case 'k':
            ov.kv_cache_dtype = optarg;
            break;
        case 'u':
            ov.gpu_memory_utilization = strtod(optarg, &end);
            if (*end || !(ov.gpu_memory_utilization > 0 && ov.gpu_memory_utilization <= 1)) {
                log_error("calibrate: bad --gpu-memory-utilization '%s'", optarg);
                return TB_EXIT_USAGE;
            }
            break;
        case 's':
        case 'b': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 10000000) {
                log_error("calibrate: bad value '%s'", optarg);
                return TB_EXIT_USAGE;
            }
            *(c == 's' ? &ov.max_num_seqs : &ov.max_num_batched_tokens) = (int)v;
            break;
        }
        case 'c':
            ov.catalog_dir = optarg;
            break;
        case 'f':
            if (parse_fit_list(optarg, which)) {
                log_error(
                    "calibrate: unknown parameter in --fit (gemm, gemm_int4, gemm_fp4_upcast, moe, "
                    "attention, weight_bandwidth, kv_bandwidth, step_s, request_s, sequence_s, "
                    "allreduce_nvlink_s, allreduce_hop_pcie_s, allreduce_hop_host_s, "
                    "host_contention, moe_layer_s)");
                return TB_EXIT_USAGE;
            }
            have_which = true;
            break;
        case 'F':
            from = optarg;
            break;
        case 'x':
            ov.force = true;
            break;
        case 'h':
            calibrate_usage();
            return TB_EXIT_OK;
        default:
            log_error("calibrate: unknown or incomplete option '%s'", argv[optind - 1]);
            calibrate_usage();
            return TB_EXIT_USAGE;
        }
    }
    if (optind == argc) {
        log_error("calibrate: give one or more result files (*_detailed.json)");
        calibrate_usage();
        return TB_EXIT_USAGE;
    }
    char err[1024];
    struct cost_calibration cal;
    cost_calibration_default(&cal);
    if (from && cost_calibration_load(&cal, from, err, sizeof(err))) {
        log_error("calibrate: %s", err);
        return TB_EXIT_USAGE;
    }
    struct calibrate_set set;
    calibrate_set_init(&set);
    int code = TB_EXIT_OK;
    for (int i = optind; i < argc; i++)
        if (calibrate_load(&set, argv[i], &ov, err, sizeof(err))) {
            log_error("calibrate: %s", err);
            code = TB_EXIT_USAGE;
            goto out;
        }
    struct calibrate_report rep;
    struct cost_calibration before = cal;
    if (calibrate_fit(&set, ov.catalog_dir, have_which ? which : NULL, &cal, &rep, err,
                      sizeof(err))) {
        log_error("calibrate: %s", err);
        code = TB_EXIT_USAGE;
        goto out;
    }
    snprintf(cal.gpu, sizeof(cal.gpu), "%s", set.gpu);
    snprintf(cal.engine, sizeof(cal.engine), "%s", set.engine);
    snprintf(cal.engine_version, sizeof(cal.engine_version), "%s", set.engine_version);
    snprintf(cal.model, sizeof(cal.model), "%s", set.model);
    cal.points = (int)set.n;
    cal.parameters = 0;
    for (int i = 0; i < CAL_N_PARAMS; i++)
        cal.parameters += rep.fitted[i];
    cal.err_before_pct = rep.err_before_pct;
    cal.err_after_pct = rep.err_after_pct;
    char name[256];
    if (!output) {
        default_name(&set, name, sizeof(name));
        output = name;
    }
    FILE *f = fopen(output, "w");
    if (!f || cost_calibration_write(&cal, f) || fclose(f)) {
        if (f)
            fclose(f);
        log_error("calibrate: cannot write %s: %s", output, strerror(errno));
        code = TB_EXIT_RUNTIME;
        goto out;
    }
    printf("testbench calibrate: %s, %s %s, %zu points (%zu skipped: not a closed loop or "
           "cut short)\n\n",
           set.gpu, set.engine, set.engine_version, set.n, set.skipped);
    printf("%-18s %9s %9s\n", "parameter", "before", "after");
    for (int i = 0; i < CAL_N_PARAMS; i++)
        printf("%-18s %9.4g %9.4g%s\n", calibration_param_name((enum calibration_param)i),
               before.p[i], cal.p[i], rep.fitted[i] ? "" : "  (not constrained: kept)");
    printf("\nmedian |predicted / measured - 1| over throughput, mean TTFT, mean TPOT: "
           "%.1f %% before, %.1f %% after (%d evaluations)\n",
           rep.err_before_pct, rep.err_after_pct, rep.evaluations);
    if (!cost_calibration_fit_error_holds(&cal))
        printf("%d points for %d parameters: the fit can pass through every point, so its error "
               "after the fit is no estimate of its error elsewhere; plan keeps the "
               "uncalibrated uncertainty band (measure more points)\n",
               cal.points, cal.parameters);
    printf("wrote %s; use it with testbench plan|sim|study --calibration %s\n", output, output);
out:
    calibrate_set_release(&set);
    return code;
}
