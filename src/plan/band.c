/*
 * band.c - a prediction's uncertainty band from the held-out rows like it (band.h; the rule is in
 * docs/ENGINE.md, "Uncertainty").
 */
#include "plan/band.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/stats.h"
#include "core/xalloc.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "plan/validation.h"

/* With fewer than BAND_MIN_ROWS rows like it, the band is the worst of them (or the overall
 * median, if larger) times this: a handful of rows says little about the median. */
#define BAND_THIN_WIDEN 1.5
/* Extrapolated: the overall median doubles per dimension in which the nearest rows differ, at
 * most twice (x4), and is never below those rows' worst error. */
#define BAND_WIDEN 2.0
#define BAND_MAX_WIDENINGS 2

enum band_metric { BM_TPS, BM_TTFT, BM_TPOT };

static const char *const dim_names[BD_N] = {
    "GPU", "weights", "KV", "model", "prompt", "parallelism",
};

const char *band_dim_name(enum band_dim d)
{
    return d < BD_N ? dim_names[d] : "?";
}

/* The weights as the engine runs them: the kernel class its cost model uses (engine/cost.c). */
static const char *weight_class(const struct cost_model *m)
{
    if (m->fp4_upcast)
        return "fp4-upcast"; /* MXFP4/NVFP4 dequantised on a GPU without FP4 tensor cores */
    if (m->weight_only_int4)
        return "int4-weight-only"; /* AWQ/GPTQ (Marlin) */
    if (strcmp(m->compute_dtype, "fp4") == 0)
        return "fp4";
    if (strcmp(m->compute_dtype, "fp8") == 0)
        return "fp8";
    if (strcmp(m->compute_dtype, "int8") == 0)
        return "int8";
    /* 16-bit compute: 16-bit weights, or 8-bit ones on a GPU without that tensor format. */
    if (strstr(m->weight_dtype, "fp8"))
        return "fp8-weight-only";
    if (strstr(m->weight_dtype, "int8") || strstr(m->weight_dtype, "w8a8"))
        return "int8-weight-only";
    return "16-bit";
}

void band_key_of(const struct cost_model *m, int prompt_tokens, struct band_key *k)
{
    memset(k, 0, sizeof(*k));
    /* The family is the compute capability: it decides which kernels vLLM runs. A GPU the
     * catalog gives none for is a family of its own, which no row shares. */
    double cc = m->gpu->compute_capability;
    if (cc > 0)
        snprintf(k->dim[BD_GPU], sizeof(k->dim[BD_GPU]), "sm_%d", (int)lround(cc * 10));
    else
        snprintf(k->dim[BD_GPU], sizeof(k->dim[BD_GPU]), "unknown family");
    snprintf(k->dim[BD_WEIGHTS], sizeof(k->dim[BD_WEIGHTS]), "%s", weight_class(m));
    snprintf(k->dim[BD_KV], sizeof(k->dim[BD_KV]), "%s", m->kv_dtype_bytes < 2 ? "fp8" : "16-bit");
    snprintf(k->dim[BD_MODEL], sizeof(k->dim[BD_MODEL]), "%s",
             m->model->experts > 0 ? "moe" : "dense");
    snprintf(k->dim[BD_PROMPT], sizeof(k->dim[BD_PROMPT]), "%s",
             prompt_tokens <= 2048    ? "<=2k"
             : prompt_tokens <= 8192  ? "2k-8k"
             : prompt_tokens <= 32768 ? "8k-32k"
                                      : ">32k");
    /* The all-reduce's path (docs/ENGINE.md, "Multi-GPU"). */
    static const char *const parallel[] = {
        [AR_NONE] = "1 GPU",
        [AR_NVLINK] = "TP over NVLink",
        [AR_PCIE] = "TP over PCIe",
        [AR_PCIE_NUMA] = "TP over PCIe across sockets",
        [AR_HOST] = "TP through host memory",
    };
    snprintf(k->dim[BD_PARALLEL], sizeof(k->dim[BD_PARALLEL]), "%s", parallel[m->ar_path]);
}

int band_key_of_query(const struct plan_query *q, const struct catalog *cat, struct band_key *k,
                      char *err, size_t errlen)
{
    struct engine_config c;
    plan_query_engine_config(q, &c);
    struct cost_model m;
    int rc = cost_model_init(&m, cat, &c, err, errlen);
    if (!rc)
        band_key_of(&m, q->prompt_tokens, k);
    return rc;
}

/* |ratio - 1| in percent, or -1 when not scored. */
static double err_pct(double ratio)
{
    return isfinite(ratio) ? fabs(ratio - 1.0) * 100.0 : -1.0;
}

int band_row_measure(const struct validation_row *r, const struct catalog *cat, struct band_key *k,
                     double *tps_err, double *ttft_err, double *tpot_err, char *err, size_t errlen)
{
    struct plan_query q;
    validation_query(r, NULL, &q);
    struct plan_prediction p;
    int rc = band_key_of_query(&q, cat, k, err, errlen);
    if (!rc)
        rc = validation_predict(r, NULL, &p, err, errlen);
    if (rc)
        return rc;
    struct validation_ratio vr;
    validation_compare(r, &p, &vr);
    bool ttft_scored = !r->ttft_queue_dominated && !r->ttft_implausible;
    *tps_err = p.fits ? err_pct(vr.tps) : -1;
    *ttft_err = p.fits && ttft_scored ? err_pct(vr.ttft) : -1;
    *tpot_err = p.fits ? err_pct(vr.tpot) : -1;
    return 0;
}

/* A row whose every figure is unscored (the planner found the setup does not fit, or it
 * publishes nothing scored) supports no band: it is neither like nor near any combination. */
static bool row_scored(const struct band_row *r)
{
    return r->tps_err >= 0 || r->ttft_err >= 0 || r->tpot_err >= 0;
}

static int dims_differing(const struct band_key *k, const struct band_row *r)
{
    int d = 0;
    for (int i = 0; i < BD_N; i++)
        d += strcmp(k->dim[i], r->dim[i]) != 0;
    return d;
}

static void append(char *buf, size_t len, const char *sep, const char *s)
{
    size_t n = strlen(buf);
    if (n + strlen(sep) + strlen(s) + 1 < len)
        snprintf(buf + n, len - n, "%s%s", n ? sep : "", s);
}

static double row_err(const struct band_row *r, enum band_metric metric)
{
    return metric == BM_TPS ? r->tps_err : metric == BM_TTFT ? r->ttft_err : r->tpot_err;
}

/* Median of the non-negative errors among rows[i] with sel[i]; NAN when none. */
static double median_err(const struct band_row *rows, const bool *sel, size_t n,
                         enum band_metric metric, double *worst, int *count)
{
    double *v = xcalloc(n ? n : 1, sizeof(*v)); /* owned here */
    size_t k = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = row_err(&rows[i], metric);
        if (!sel[i] || !(e >= 0))
            continue;
        v[k++] = e;
        if (e > *worst)
            *worst = e;
    }
    double med = median_in_place(v, k);
    free(v);
    *count = (int)k;
    return med;
}

/* The band for one metric: the rows like it (like) against the overall median (all); with none
 * like it that publish the metric, the overall median widened per differing dimension. */
static double metric_band(const struct band_row *rows, const bool *like, const bool *all,
                          const bool *near, size_t n, enum band_metric metric, int widenings)
{
    double worst, w_all, w_near;
    int c_all, c_near, c_like;
    double overall = median_err(rows, all, n, metric, &w_all, &c_all);
    if (!isfinite(overall))
        overall = 100; /* no row publishes this metric at all */
    double local = median_err(rows, like, n, metric, &worst, &c_like);
    if (c_like >= BAND_MIN_ROWS)
        return fmax(local, overall);
    if (c_like > 0)
        return fmax(worst, overall) * BAND_THIN_WIDEN;
    /* No row like it publishes this metric: widen at least once. */
    if (widenings < 1)
        widenings = 1;
    double f = pow(BAND_WIDEN, widenings < BAND_MAX_WIDENINGS ? widenings : BAND_MAX_WIDENINGS);
    median_err(rows, near, n, metric, &w_near, &c_near);
    return fmax(overall * f, c_near ? w_near : 0);
}

static void describe_key(const struct band_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "GPU %s, weights %s, KV %s, %s, prompt %s, %s", k->dim[BD_GPU],
             k->dim[BD_WEIGHTS], k->dim[BD_KV], k->dim[BD_MODEL], k->dim[BD_PROMPT],
             k->dim[BD_PARALLEL]);
}

/* Names the dimensions in which the first of the nearest rows differs from k. */
static void describe_outside(const struct band_key *k, const struct band_row *r, char *buf,
                             size_t len)
{
    for (int d = 0; d < BD_N; d++) {
        if (strcmp(k->dim[d], r->dim[d]) == 0)
            continue;
        char what[96];
        snprintf(what, sizeof(what), "%s %s (nearest rows: %s)", band_dim_name((enum band_dim)d),
                 k->dim[d], r->dim[d]);
        append(buf, len, "; ", what);
    }
}

static void write_basis(struct plan_band *out, int n_like, int best)
{
    if (out->extrapolated) {
        int w = best < 1 ? 1 : best < BAND_MAX_WIDENINGS ? best : BAND_MAX_WIDENINGS;
        snprintf(out->basis, sizeof(out->basis),
                 "extrapolated: no held-out row like this one (%s); the overall held-out median "
                 "error widened x%.0f for %d differing dimension%s (bench_validation %s)",
                 out->combination, pow(BAND_WIDEN, w), best, best == 1 ? "" : "s",
                 validation_band_date);
    } else if (n_like < BAND_MIN_ROWS) {
        snprintf(out->basis, sizeof(out->basis),
                 "based on %d held-out row%s like this one (%s), fewer than %d: their worst error "
                 "widened x%.1f (bench_validation %s)",
                 n_like, n_like == 1 ? "" : "s", out->combination, BAND_MIN_ROWS, BAND_THIN_WIDEN,
                 validation_band_date);
    } else {
        snprintf(out->basis, sizeof(out->basis),
                 "based on %d held-out rows like this one (%s): their median error, at least the "
                 "overall held-out median (bench_validation %s)",
                 n_like, out->combination, validation_band_date);
    }
}

void band_from_rows(const struct band_key *k, const struct band_row *rows, size_t n,
                    struct plan_band *out)
{
    memset(out, 0, sizeof(*out));
    describe_key(k, out->combination, sizeof(out->combination));
    bool *like = xcalloc(n ? n : 1, sizeof(*like)), *all = xcalloc(n ? n : 1, sizeof(*all));
    bool *near = xcalloc(n ? n : 1, sizeof(*near));
    /* The nearest rows: those differing from k in the fewest dimensions. */
    int best = BD_N;
    int n_like = 0;
    for (size_t i = 0; i < n; i++) {
        all[i] = true;
        if (!row_scored(&rows[i]))
            continue;
        int d = dims_differing(k, &rows[i]);
        like[i] = d == 0;
        n_like += like[i];
        if (d < best)
            best = d;
    }
    for (size_t i = 0; i < n; i++)
        near[i] = row_scored(&rows[i]) && dims_differing(k, &rows[i]) == best;
    out->tps_pct = metric_band(rows, like, all, near, n, BM_TPS, best);
    out->ttft_pct = metric_band(rows, like, all, near, n, BM_TTFT, best);
    out->tpot_pct = metric_band(rows, like, all, near, n, BM_TPOT, best);
    out->rows_like = n_like;
    out->extrapolated = n_like == 0;
    for (size_t i = 0; i < n; i++) {
        if (!(n_like ? like[i] : near[i]))
            continue;
        if (out->n_row_ids < PLAN_BAND_MAX_IDS)
            out->row_id[out->n_row_ids++] = rows[i].id;
        else
            out->row_ids_more++;
    }
    for (size_t i = 0; out->extrapolated && i < n; i++) {
        if (near[i]) {
            describe_outside(k, &rows[i], out->outside, sizeof(out->outside));
            break;
        }
    }
    write_basis(out, n_like, best);
    free(like);
    free(all);
    free(near);
}

void plan_band_for(const struct cost_model *m, int prompt_tokens,
                   const struct cost_calibration *cal, struct plan_band *out)
{
    struct band_key k;
    band_key_of(m, prompt_tokens, &k);
    band_from_rows(&k, validation_band_rows, validation_band_n_rows, out);
    bool same_gpu =
        cal && cal->gpu[0] && !cost_calibration_other_gpu(cal, m->gpu->name, m->gpu->display_name);
    if (same_gpu && cal->err_after_pct > 0 && cost_calibration_fit_error_holds(cal)) {
        /* Fitted to this GPU: the error left after the fit is the best estimate we have, but a
         * fit's residual on its own points understates the error on setups it did not measure,
         * hence the floor. The combination and its published rows stay, for the record. */
        double e = fmax(cal->err_after_pct, CALIBRATED_BAND_FLOOR_PCT);
        out->tps_pct = out->tpot_pct = out->ttft_pct = e;
        out->extrapolated = false;
        out->outside[0] = '\0';
        snprintf(out->basis, sizeof(out->basis),
                 "median error after the fit of your calibration profile, %d points (published "
                 "held-out rows like this one: %d)",
                 cal->points, out->rows_like);
    } else if (same_gpu && cal->err_after_pct > 0) {
        /* A fit on fewer points than parameters passes through its points: its residual is no
         * error estimate, so the published rows' band stands and says why. */
        char why[96];
        snprintf(why, sizeof(why), "; not your profile's fit: %d points, %d parameters",
                 cal->points, cal->parameters);
        append(out->basis, sizeof(out->basis), "", why);
    }
}
