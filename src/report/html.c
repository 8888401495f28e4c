/*
 * html.c - the report page. The tables (the guidance matrix first, points, provenance) are
 * written here as plain HTML, so they read without JavaScript and a test can compare them
 * with the CSV; the charts are <canvas data-kind=...> elements that the inlined report.js
 * fills with Chart.js from the embedded data. Order: the answer (or, on a comparison page, the
 * comparison), then the evidence per setup, tenants, predicted vs measured, provenance.
 */
#include "report/html.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "report/load.h"

extern const char report_asset_js[];
extern const char report_asset_css[];

const char *html_chartjs_path(void)
{
    const char *p = getenv("TESTBENCH_CHARTJS");
    return p && *p ? p : TB_CHARTJS_PATH;
}

static int library_read(char **out, char *err, size_t errlen)
{
    const char *path = html_chartjs_path();
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen,
                 "chart library %s: %s (install Debian's libjs-chart.js, e.g. scripts/setup.sh "
                 "runtime, or point TESTBENCH_CHARTJS at chart.min.js of Chart.js 3)",
                 path, strerror(e));
        return -e;
    }
    struct buf b;
    buf_init(&b, HTML_MAX_LIBRARY);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&b, chunk, n);
    fclose(f);
    /* The library is inlined in a <script> element, which ends at the first "</script". */
    if (!rc && (!b.data || strstr(b.data, "</script") || !strstr(b.data, "Chart"))) {
        snprintf(err, errlen, "chart library %s: not a Chart.js build that can be inlined", path);
        rc = -EINVAL;
    }
    if (rc) {
        if (rc == -E2BIG)
            snprintf(err, errlen, "chart library %s: larger than %u bytes", path, HTML_MAX_LIBRARY);
        buf_release(&b);
        return rc;
    }
    *out = buf_take(&b, NULL);
    return 0;
}

void html_esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A table column: r's value at key, a number in fmt, or (fmt NULL) text, left-aligned. */
struct col {
    const char *key;
    const char *fmt;
};

static void cells_write(FILE *f, const json_t *r, const struct col *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputs(cols[i].fmt ? "<td>" : "<td class=\"l\">", f);
        if (cols[i].fmt)
            json_num_write(f, r, cols[i].key, cols[i].fmt);
        else
            html_esc(f, str(r, cols[i].key));
        fputs("</td>", f);
    }
}

void html_figure(FILE *f, const char *caption, const char *attrs, bool zoom)
{
    fputs("<figure><figcaption>", f);
    if (zoom)
        fputs("<button class=\"reset\" type=\"button\">reset zoom</button>", f);
    html_esc(f, caption);
    fprintf(f, "</figcaption><div class=\"chart\"><canvas %s></canvas></div></figure>\n", attrs);
}

/* A cell's class and its verdict line: met, missed, or why there is no verdict (a setup that
 * does not fit or cannot be loaded, one that was not run), each styled apart from a miss. */
static void cell_state(const json_t *c, const char **cls, const char **verdict)
{
    const char *state = str(c, "state");
    json_t *met = json_object_get(c, "slo_met");
    if (strcmp(state, "does_not_fit") == 0) {
        *cls = "nofit";
        *verdict = strncmp(str(c, "note"), "cannot be loaded", 16) == 0 ? "cannot be loaded"
                                                                        : "does not fit";
    } else if (json_is_true(met)) {
        *cls = "met";
        *verdict = "✔ meets SLO";
    } else if (json_is_false(met)) {
        *cls = "miss";
        *verdict = "✘ misses SLO";
    } else if (strcmp(state, "not_run") == 0) {
        *cls = "notrun";
        *verdict = strcmp(str(c, "status"), "failed_to_start") == 0 ? "not run: failed to start"
                                                                    : "not run";
    } else {
        *cls = "unknown";
        *verdict = "not judged";
    }
}

static void matrix_cell(FILE *f, const json_t *c, long long users)
{
    const char *src = str(c, "source");
    json_t *met = json_object_get(c, "slo_met");
    const char *cls, *verdict;
    cell_state(c, &cls, &verdict);
    fprintf(f,
            "<td class=\"cell %s\" data-source=\"%s\" data-state=\"%s\" data-context=\"%lld\" "
            "data-model=\"",
            cls, src, str(c, "state"),
            (long long)json_integer_value(json_object_get(c, "context")));
    html_esc(f, str(c, "model"));
    fputs("\" data-quantization=\"", f);
    html_esc(f, str(c, "quantization"));
    fputs("\" data-kv-dtype=\"", f);
    html_esc(f, str(c, "kv_dtype"));
    fputs("\" data-workload=\"", f);
    html_esc(f, str(c, "workload"));
    fputs("\" data-group=\"", f);
    html_esc(f, str(c, "group"));
    fprintf(f, "\" data-status=\"%s\"", str(c, "status"));
    fprintf(f, " data-slo-met=\"%s\"",
            json_is_true(met)    ? "true"
            : json_is_false(met) ? "false"
                                 : "");
    const char *keys[][2] = {{"user_tps_p50", "data-user-tps"},
                             {"ttft_p95_ms", "data-ttft-p95-ms"},
                             {"max_users", "data-max-users"}};
    for (size_t i = 0; i < 3; i++) {
        double v = json_num(c, keys[i][0]);
        if (isnan(v))
            fprintf(f, " %s=\"\"", keys[i][1]);
        else
            fprintf(f, " %s=\"%.10g\"", keys[i][1], v);
    }
    fputs(">", f);
    /* A setup that was not run has no verdict on the SLO: it says why instead. */
    fprintf(f, "<span class=\"verdict\">%s</span>", verdict);
    fprintf(f, "<span class=\"tag %s\">%s</span><br>", src,
            strcmp(src, "none") == 0 ? "not measured" : src);
    if (*str(c, "evidence")) { /* what a measured verdict rests on: percentile, interval, n */
        fputs("<span class=\"evidence\">", f);
        html_esc(f, str(c, "evidence"));
        fputs("</span><br>", f);
    }
    fputs("capacity: ", f);
    double mu = json_num(c, "max_users");
    if (isnan(mu))
        fputs("–", f);
    else
        fprintf(f, "%s%.0f users",
                json_is_true(json_object_get(c, "max_users_at_least")) ? "≥ " : "", mu);
    fprintf(f, "<br>at %lld users: ", users);
    json_num_write(f, c, "user_tps_p50", "%.1f tok/s");
    fputs(" · TTFT p95 ", f);
    json_num_write(f, c, "ttft_p95_ms", "%.0f ms");
    if (*str(c, "note") || *str(c, "origin")) {
        fputs("<br><span class=\"note\">", f);
        html_esc(f, str(c, "note"));
        if (*str(c, "origin")) {
            fputs(*str(c, "note") ? " · " : "", f);
            html_esc(f, str(c, "origin"));
        }
        fputs("</span>", f);
    }
    fputs("</td>", f);
}

/* Cells [i, end) that share a group and workload: one table, rows model / quantization / KV
 * dtype, columns context length, headed by the study and workload or by the run. */
/* What a table was judged on, above it: the SLO (profile, percentile, thresholds) and the
 * workload (population, lengths). */
static void basis_write(FILE *f, const json_t *model, const json_t *cell)
{
    const json_t *b = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(model, "guidance_basis"), i, x)
    {
        if (strcmp(str(x, "group"), str(cell, "group")) == 0 &&
            strcmp(str(x, "workload"), str(cell, "workload")) == 0)
            b = x;
    }
    fputs("<p class=\"basis\" data-workload=\"", f);
    html_esc(f, str(cell, "workload"));
    fputs("\"><b>SLO</b> ", f);
    html_esc(f, b ? str(b, "slo") : "not recorded");
    fputs("<br><b>Workload</b> ", f);
    html_esc(f, b ? str(b, "what") : "not recorded");
    fputs("</p>\n", f);
}

static void matrix_table(FILE *f, const json_t *model, const json_t *cells, size_t i, size_t end)
{
    long long users = json_integer_value(json_object_get(model, "users"));
    const json_t *first = json_array_get(cells, i);
    const char *wl = str(first, "workload");
    /* Distinct contexts of this table, ascending (cells are sorted by row, then context). */
    long long ctx[256];
    bool upto[256];
    size_t nctx = 0;
    for (size_t k = i; k < end; k++) {
        const json_t *c = json_array_get(cells, k);
        long long v = json_integer_value(json_object_get(c, "context"));
        size_t j = 0;
        while (j < nctx && ctx[j] != v)
            j++;
        if (j == nctx && nctx < 256) {
            size_t at = nctx;
            while (at > 0 && ctx[at - 1] > v) {
                ctx[at] = ctx[at - 1];
                upto[at] = upto[at - 1];
                at--;
            }
            ctx[at] = v;
            upto[at] = json_is_true(json_object_get(c, "context_upto"));
            nctx++;
        }
    }
    bool study = json_is_true(json_object_get(first, "from_study"));
    fputs(study ? "<h3 class=\"matrix\">Study " : "<h3 class=\"matrix\">Run ", f);
    html_esc(f, str(first, "group"));
    if (*wl) {
        fputs(" · workload ", f);
        html_esc(f, wl);
    }
    fputs("</h3>\n", f);
    basis_write(f, model, first);
    /* A study's columns are its setups' windows; a run's, its requests' prompt + output. */
    bool window = json_is_true(json_object_get(first, "window"));
    fputs("<table class=\"matrix\"><thead><tr><th class=\"l\">model</th><th>weights</th>"
          "<th>KV cache</th>",
          f);
    for (size_t j = 0; j < nctx; j++)
        fprintf(f, "<th>%s%s%lld</th>", window ? "window " : "prompt + output ",
                upto[j] ? "≤ " : "", ctx[j]);
    fputs("</tr></thead><tbody>\n", f);
    size_t r = i;
    while (r < end) {
        const json_t *c0 = json_array_get(cells, r);
        size_t rend = r;
        while (rend < end &&
               strcmp(str(json_array_get(cells, rend), "model"), str(c0, "model")) == 0 &&
               strcmp(str(json_array_get(cells, rend), "quantization"), str(c0, "quantization")) ==
                   0 &&
               strcmp(str(json_array_get(cells, rend), "kv_dtype"), str(c0, "kv_dtype")) == 0)
            rend++;
        fputs("<tr><td class=\"l\">", f);
        html_esc(f, str(c0, "model"));
        fputs("</td><td>", f);
        html_esc(f, str(c0, "weights"));
        fputs("</td><td>", f);
        html_esc(f, str(c0, "kv_dtype"));
        fputs("</td>", f);
        for (size_t j = 0; j < nctx; j++) {
            const json_t *hit = NULL;
            for (size_t k = r; k < rend; k++)
                if (json_integer_value(json_object_get(json_array_get(cells, k), "context")) ==
                    ctx[j])
                    hit = json_array_get(cells, k);
            if (hit)
                matrix_cell(f, hit, users);
            else
                fputs("<td class=\"unknown\">–</td>", f);
        }
        fputs("</tr>\n", f);
        r = rend;
    }
    fputs("</tbody></table>\n", f);
}

/* The tables of cells [i, n), one per study and workload or per run. */
static void matrix_tables(FILE *f, const json_t *model, const json_t *cells, size_t i, size_t n)
{
    while (i < n) {
        const json_t *c0 = json_array_get(cells, i);
        size_t end = i;
        while (end < n && strcmp(str(json_array_get(cells, end), "group"), str(c0, "group")) == 0 &&
               json_equal(json_object_get(json_array_get(cells, end), "from_study"),
                          json_object_get(c0, "from_study")) &&
               strcmp(str(json_array_get(cells, end), "workload"), str(c0, "workload")) == 0)
            end++;
        matrix_table(f, model, cells, i, end);
        i = end;
    }
}

/* The answer: studies' tables; runs outside a study in a section of their own (their own
 * section only, when no study was given). */
static void matrix_write(FILE *f, const json_t *model)
{
    const json_t *cells = json_object_get(model, "guidance");
    long long users = json_integer_value(json_object_get(model, "users"));
    fprintf(f, "<section id=\"answer\"><h2>What %lld users can get</h2>\n", users);
    if (!json_array_size(cells)) {
        fputs("<p>No point in these results has a concurrency cap, so none says what a number of "
              "users gets.</p></section>\n",
              f);
        return;
    }
    fprintf(f,
            "<p class=\"sub\">Each cell: whether %lld users meet the SLO (under a measured study "
            "verdict, the percentile it was judged by, its confidence interval and the requests "
            "judged), its capacity (the most users within the SLO), and what one of %lld users "
            "gets (output tokens/s p50, TTFT p95). <span class=\"tag measured\">measured</span> "
            "comes from a run, "
            "<span class=\"tag predicted\">predicted</span> from <code>testbench plan</code>; "
            "hatched: the setup does not fit (or vLLM cannot load it), dashed: not run, "
            "– no value.</p>\n",
            users, users);
    size_t n = json_array_size(cells), k = 0;
    while (k < n && json_is_true(json_object_get(json_array_get(cells, k), "from_study")))
        k++;
    matrix_tables(f, model, cells, 0, k ? k : n);
    fputs("</section>\n", f);
    if (!k || k == n)
        return;
    fprintf(f,
            "<section id=\"answer-runs\"><h2>What %lld users got in runs outside a study</h2>\n"
            "<p class=\"sub\">Each run on its own: runs are not pooled with each other or with "
            "the studies above.</p>\n",
            users);
    matrix_tables(f, model, cells, k, n);
    fputs("</section>\n", f);
}

static bool any_num(const json_t *points, const char *key)
{
    size_t i;
    json_t *p;
    json_array_foreach(points, i, p) if (!isnan(json_num(p, key))) return true;
    return false;
}

static size_t distinct_contexts(const json_t *points)
{
    double seen[64];
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(points, i, p)
    {
        double c = json_num(p, "context");
        if (isnan(c))
            continue;
        size_t k = 0;
        while (k < n && seen[k] != c)
            k++;
        if (k == n && n < 64)
            seen[n++] = c;
    }
    return n;
}

static void points_table(FILE *f, const json_t *run)
{
    fputs(
        "<table class=\"points\"><thead><tr><th class=\"l\">tenant</th><th>context</th>"
        "<th>users</th><th>rate</th><th>req/s</th><th>out tok/s</th><th>TTFT p50</th>"
        "<th>TTFT p95</th><th>TTFT p99</th><th>ITL p99</th><th>TPOT p50</th>"
        "<th>tok/s per user p50</th><th>goodput</th><th>SLO %</th><th>J/token</th>"
        "<th class=\"l\">verdict</th><th class=\"l\">client self-check</th></tr></thead><tbody>\n",
        f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), i, p)
    {
        bool distorted = json_is_true(json_object_get(p, "distorted"));
        fprintf(f, "<tr%s><td class=\"l\">", distorted ? " class=\"distorted\"" : "");
        html_esc(f, str(p, "tenant"));
        fputs("</td><td>", f);
        json_num_write(f, p, "context", "%.0f");
        fputs("</td><td>", f);
        json_num_write(f, p, "concurrency", "%.0f");
        fputs("</td><td>", f);
        if (json_is_number(json_object_get(p, "rate")))
            json_num_write(f, p, "rate", "%g");
        else
            fputs("inf", f);
        static const struct col cols[] = {
            {"req_tps", "%.2f"},    {"out_tps", "%.0f"},         {"ttft_p50", "%.1f"},
            {"ttft_p95", "%.1f"},   {"ttft_p99", "%.1f"},        {"itl_p99", "%.1f"},
            {"tpot_p50", "%.1f"},   {"user_tps_p50", "%.1f"},    {"goodput", "%.2f"},
            {"attainment", "%.0f"}, {"energy_j_per_tok", "%.3g"}};
        fputs("</td>", f);
        cells_write(f, p, cols, sizeof(cols) / sizeof(cols[0]));
        fputs("<td class=\"l\">", f);
        html_esc(f, str(p, "verdict"));
        if (json_is_true(json_object_get(p, "partial")))
            fputs(" <span class=\"warn\">(partial)</span>", f);
        fputs("</td><td class=\"l\">", f);
        if (distorted)
            fputs("<span class=\"warn\">⚠ distorted</span>: ", f);
        else
            fputs("ok: ", f);
        fputs("dispatch lag p99 ", f);
        json_num_write(f, p, "dispatch_lag_p99_ms", "%.2f ms");
        fputs(", loop lag p99 ", f);
        json_num_write(f, p, "loop_lag_p99_ms", "%.2f ms");
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static const char *const slo_keys[][2] = {{"ttft_ms", " TTFT ≤ %g ms"},
                                          {"tpot_ms", " TPOT ≤ %g ms"},
                                          {"itl_ms", " ITL ≤ %g ms"},
                                          {"e2e_ms", " E2E ≤ %g ms"},
                                          {"percentile", " at p%g"}};

/* " TTFT ≤ 500 ms TPOT ≤ 50 ms at p95": the objectives an slo object sets. */
static void slo_write(FILE *f, const json_t *slo)
{
    for (size_t k = 0; k < 5; k++)
        if (!isnan(json_num(slo, slo_keys[k][0])))
            fprintf(f, slo_keys[k][1], json_num(slo, slo_keys[k][0]));
}

static bool slo_same(const json_t *a, const json_t *b)
{
    for (size_t k = 0; k < 5; k++) {
        double x = json_num(a, slo_keys[k][0]), y = json_num(b, slo_keys[k][0]);
        if (!(x == y || (isnan(x) && isnan(y))))
            return false;
    }
    return true;
}

static void run_section(FILE *f, const json_t *run, size_t idx)
{
    const json_t *pts = json_object_get(run, "points");
    fprintf(f, "<h3 id=\"run%zu\">", idx);
    html_esc(f, str(run, "label"));
    fputs("</h3><p class=\"sub\">", f);
    html_esc(f, str(run, "model"));
    fputs(" · quantization ", f);
    html_esc(f, str(run, "quantization"));
    fputs(" · KV ", f);
    html_esc(f, str(run, "kv_dtype"));
    /* Each tenant is judged by its own objectives: one list when they are all the same. */
    const json_t *slos = json_object_get(run, "slos");
    size_t ns = json_array_size(slos);
    bool differ = false;
    for (size_t k = 1; k < ns; k++)
        differ = differ || !slo_same(json_array_get(slos, 0), json_array_get(slos, k));
    if (differ) {
        fputs(" · SLO per tenant:", f);
        for (size_t k = 0; k < ns; k++) {
            fputs(k ? "; <b>" : " <b>", f);
            html_esc(f, str(json_array_get(slos, k), "tenant"));
            fputs("</b>", f);
            slo_write(f, json_array_get(slos, k));
        }
    } else {
        fputs(" · SLO:", f);
        slo_write(f, ns ? json_array_get(slos, 0) : json_object_get(run, "slo"));
    }
    fputs("</p>\n<div class=\"grid\">\n", f);
    char attrs[160];
    snprintf(attrs, sizeof(attrs), "data-kind=\"latency\" data-run=\"%zu\"", idx);
    html_figure(f,
                "Latency against load: TTFT p50/p95/p99 and ITL p99 (ms) vs achieved requests/s, "
                "dashed lines = SLO",
                attrs, false);
    if (distinct_contexts(pts) > 1) {
        snprintf(attrs, sizeof(attrs), "data-kind=\"context\" data-run=\"%zu\"", idx);
        html_figure(f, "Per-user tokens/s and TTFT p95 against context length", attrs, false);
    }
    snprintf(attrs, sizeof(attrs), "data-kind=\"cdf\" data-metric=\"ttft\" data-run=\"%zu\"", idx);
    html_figure(f, "TTFT distribution (CDF, completed requests)", attrs, false);
    snprintf(attrs, sizeof(attrs), "data-kind=\"cdf\" data-metric=\"itl\" data-run=\"%zu\"", idx);
    html_figure(f, "ITL distribution (CDF, every gap between tokens)", attrs, false);
    snprintf(attrs, sizeof(attrs), "data-kind=\"goodput\" data-run=\"%zu\"", idx);
    html_figure(f, "Goodput, throughput and SLO attainment per point", attrs, false);
    if (any_num(pts, "energy_j_per_tok")) {
        snprintf(attrs, sizeof(attrs), "data-kind=\"energy\" data-run=\"%zu\"", idx);
        html_figure(f, "GPU energy per output token per point", attrs, false);
    }
    const json_t *tl = json_object_get(run, "telemetry");
    if (json_is_object(tl)) {
        struct {
            const char *series, *caption;
        } tls[] = {
            {"power_w,temp_c,sm_mhz,throttled",
             "GPU power, temperature, SM clock and throttling over the run (points shaded; drag "
             "to zoom)"},
            {"vram_gib,kv_pct", "VRAM used and the server's KV-cache use over the run"},
            {"running,waiting,prefix_hit_pct",
             "Requests running and waiting on the server, prefix-cache hit rate"},
        };
        for (size_t k = 0; k < 3; k++) {
            char series[64];
            snprintf(series, sizeof(series), "%s", tls[k].series);
            bool any = false;
            char *save = NULL;
            for (char *t = strtok_r(series, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (json_object_get(tl, t) && strcmp(t, "throttled") != 0)
                    any = true;
            if (!any)
                continue;
            snprintf(attrs, sizeof(attrs),
                     "data-kind=\"timeline\" data-series=\"%s\" data-run=\"%zu\"", tls[k].series,
                     idx);
            html_figure(f, tls[k].caption, attrs, true);
        }
        double bin = json_num(tl, "bin_s");
        if (bin > 0)
            fprintf(f, "<p class=\"note\">%lld telemetry samples averaged into %.2f s bins.</p>\n",
                    (long long)json_integer_value(json_object_get(tl, "n_samples")), bin);
    }
    fputs("</div>\n", f);
    points_table(f, run);
    html_workload_write(f, run, idx);
}

/* "pred / meas (err %)" of a study row's metric, "–" for what is unknown. */
static void pvm_cell(FILE *f, const json_t *row, const char *metric, const char *err_key)
{
    char k[64];
    snprintf(k, sizeof(k), "pred_%s", metric);
    json_num_write(f, row, k, "%.1f");
    fputs(" / ", f);
    snprintf(k, sizeof(k), "meas_%s", metric);
    json_num_write(f, row, k, "%.1f");
    if (!isnan(json_num(row, err_key)))
        fprintf(f, " <span class=\"err\">(%+.1f%%)</span>", json_num(row, err_key));
}

/* The telemetry of a setup's runs, for its captions: whether any run has it, and how much. */
static bool setup_has(const json_t *model, const json_t *g, const char *what)
{
    const json_t *runs = json_object_get(model, "runs");
    size_t i;
    json_t *ri;
    json_array_foreach(json_object_get(g, "runs"), i, ri)
    {
        const json_t *run = json_array_get(runs, (size_t)json_integer_value(ri));
        if (strcmp(what, "energy") == 0) {
            if (any_num(json_object_get(run, "points"), "energy_j_per_tok"))
                return true;
        } else {
            const json_t *tl = json_object_get(run, "telemetry");
            if (json_is_object(tl) && json_object_get(tl, what))
                return true;
        }
    }
    return false;
}

/* A setup's charts: its curves against users, its runs' latency, CDFs, goodput, energy and
 * telemetry one run after another. */
static void setup_charts(FILE *f, const json_t *model, const json_t *g, size_t idx, size_t nruns)
{
    fputs("<div class=\"grid\">\n", f);
    char attrs[256];
    const char *kinds[][2] = {
        {"setup_ttft",
         "TTFT against users: measured p50/p95/p99 (solid) and the plan's p50/p95 (dotted), "
         "dashed line = SLO"},
        {"setup_tpot", "TPOT p50/p95 and ITL p99 against users: measured (solid) and the plan's "
                       "TPOT p50/p95 (dotted), dashed lines = SLO"},
        {"setup_tps", "Tokens/s against users: per user p50 (left) and the server's output "
                      "(right), measured (solid) and the plan's (dotted)"},
        {"latency", "Latency against load: TTFT p50/p95/p99 and ITL p99 (ms) vs achieved "
                    "requests/s, one point per user count"},
        {"cdf ttft", "TTFT distribution per user count (CDF, completed requests)"},
        {"cdf itl", "ITL distribution per user count (CDF, every gap between tokens)"},
        {"goodput", "Goodput, throughput and SLO attainment per user count"},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const char *sp = strchr(kinds[k][0], ' ');
        if (sp)
            snprintf(attrs, sizeof(attrs), "data-kind=\"%.*s\" data-metric=\"%s\"",
                     (int)(sp - kinds[k][0]), kinds[k][0], sp + 1);
        else
            snprintf(attrs, sizeof(attrs), "data-kind=\"%s\"", kinds[k][0]);
        size_t used = strlen(attrs);
        snprintf(attrs + used, sizeof(attrs) - used, " data-setup=\"%zu\"", idx);
        html_figure(f, kinds[k][1], attrs, false);
    }
    if (setup_has(model, g, "energy")) {
        snprintf(attrs, sizeof(attrs), "data-kind=\"energy\" data-setup=\"%zu\"", idx);
        html_figure(f, "GPU energy per output token per user count", attrs, false);
    }
    struct {
        const char *series, *caption;
    } tls[] = {
        {"power_w,temp_c,sm_mhz,throttled", "GPU power, temperature, SM clock and throttling"},
        {"vram_gib,kv_pct", "VRAM used and the server's KV-cache use"},
        {"running,waiting,prefix_hit_pct", "Requests running and waiting, prefix-cache hit rate"},
    };
    for (size_t k = 0; k < 3; k++) {
        char series[64];
        snprintf(series, sizeof(series), "%s", tls[k].series);
        bool any = false;
        char *save = NULL;
        for (char *t = strtok_r(series, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (strcmp(t, "throttled") != 0 && setup_has(model, g, t))
                any = true;
        if (!any)
            continue;
        char caption[256];
        snprintf(caption, sizeof(caption),
                 "%s: the setup's %zu run(s) one after another, in the order they ran (each "
                 "user count shaded; drag to zoom)",
                 tls[k].caption, nruns);
        snprintf(attrs, sizeof(attrs),
                 "data-kind=\"timeline\" data-series=\"%s\" data-setup=\"%zu\"", tls[k].series,
                 idx);
        html_figure(f, caption, attrs, true);
    }
    fputs("</div>\n", f);
}

/*
 * One study setup x workload: its curves over every user count it measured (the plan's
 * prediction on the same axes), what study.csv says of it, and the capacity found. A setup
 * that was not measured (does not fit, failed to start) gets its reason and server log.
 */
static void setup_section(FILE *f, const json_t *model, const json_t *g, size_t idx)
{
    fprintf(f, "<h3 id=\"setup%zu\" class=\"setup\" data-setup-name=\"", idx);
    html_esc(f, str(g, "setup"));
    fputs("\">", f);
    html_esc(f, str(g, "setup"));
    if (*str(g, "workload")) {
        fputs(" · ", f);
        html_esc(f, str(g, "workload"));
    }
    fputs("</h3><p class=\"sub\">", f);
    html_esc(f, str(g, "model"));
    fputs(" · quantization ", f);
    html_esc(f, *str(g, "quantization") ? str(g, "quantization") : "default");
    fputs(" · KV ", f);
    html_esc(f, *str(g, "kv_cache_dtype") ? str(g, "kv_cache_dtype") : "auto");
    fputs(" · max_model_len ", f);
    json_num_write(f, g, "max_model_len", "%.0f");
    fputs(" · status <b>", f);
    html_esc(f, str(g, "status"));
    fputs("</b>", f);
    const json_t *slo = json_object_get(g, "slo");
    if (json_is_object(slo)) {
        fputs(" · SLO:", f);
        const char *sk[][2] = {{"ttft_ms", " TTFT ≤ %g ms"},
                               {"tpot_ms", " TPOT ≤ %g ms"},
                               {"itl_ms", " ITL ≤ %g ms"},
                               {"percentile", " at p%g"}};
        for (size_t k = 0; k < 4; k++)
            if (!isnan(json_num(slo, sk[k][0])))
                fprintf(f, sk[k][1], json_num(slo, sk[k][0]));
    }
    fputs("</p>\n", f);
    size_t nruns = json_array_size(json_object_get(g, "runs"));
    if (*str(g, "side_by_side")) {
        fputs("<p class=\"side-by-side\">Measured side by side with <code>", f);
        html_esc(f, str(g, "side_by_side"));
        fputs("</code> on the same host: its figures may include their interference.</p>\n", f);
    }
    if (*str(g, "reason") && strcmp(str(g, "status"), "measured") != 0) {
        fputs("<p class=\"reason\">", f);
        html_esc(f, str(g, "status"));
        fputs(": ", f);
        html_esc(f, str(g, "reason"));
        if (*str(g, "server_log")) {
            fputs(" — server log: <code>", f);
            html_esc(f, str(g, "server_log"));
            fputs("</code>", f);
        }
        fputs("</p>\n", f);
    }
    if (nruns == 0 && isnan(json_num(g, "meas_max_users")) && isnan(json_num(g, "pred_max_users")))
        return;
    fputs("<p class=\"capacity\">Capacity (most users within the SLO): measured <b>", f);
    json_num_write(f, g, "meas_max_users", "%.0f");
    fputs("</b>, predicted <b>", f);
    json_num_write(f, g, "pred_max_users", "%.0f");
    fputs("</b>", f);
    if (!isnan(json_num(g, "err_max_users_pct")))
        fprintf(f, " (error %+.0f%%)", json_num(g, "err_max_users_pct"));
    fputs(".</p>\n", f);
    if (nruns == 0)
        return;
    if (!json_is_true(json_object_get(model, "summarised")))
        setup_charts(f, model, g, idx, nruns); /* none on a page of hundreds of runs */
    fputs("<table class=\"points\"><thead><tr><th>users</th><th class=\"l\">role</th>"
          "<th class=\"l\">status</th><th>TTFT p50 pred / meas</th><th>TTFT p95 pred / meas</th>"
          "<th>TPOT p50 pred / meas</th><th>TPOT p95 pred / meas</th>"
          "<th>tok/s per user pred / meas</th><th class=\"l\">SLO</th><th class=\"l\">run</th>"
          "</tr></thead><tbody>\n",
          f);
    const json_t *runs = json_object_get(model, "runs");
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(g, "rows"), i, row)
    {
        fputs("<tr><td>", f);
        json_num_write(f, row, "users", "%.0f");
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(row, "role"));
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(row, "status"));
        const char *m[][2] = {{"ttft_p50_ms", "err_ttft_p50_pct"},
                              {"ttft_p95_ms", "err_ttft_p95_pct"},
                              {"tpot_p50_ms", "err_tpot_p50_pct"},
                              {"tpot_p95_ms", "err_tpot_p95_pct"},
                              {"user_tps", "err_user_tps_pct"}};
        for (size_t k = 0; k < 5; k++) {
            fputs("</td><td>", f);
            pvm_cell(f, row, m[k][0], m[k][1]);
        }
        json_t *met = json_object_get(row, "slo_met");
        fputs("</td><td class=\"l\">", f);
        /* The verdict with its confidence interval; an older study's reason says the verdict
         * itself ("missed: ttft p95 ..."). */
        if (*str(row, "slo_line"))
            html_esc(f, str(row, "slo_line"));
        else if (*str(row, "reason"))
            html_esc(f, str(row, "reason"));
        else
            fputs(json_is_true(met) ? "met" : json_is_false(met) ? "missed" : "–", f);
        fputs("</td><td class=\"l\">", f);
        json_t *ri = json_object_get(row, "run");
        if (json_is_integer(ri)) {
            const char *file = str(json_array_get(runs, (size_t)json_integer_value(ri)), "file");
            const char *base = strrchr(file, '/');
            html_esc(f, base ? base + 1 : file);
            if (json_equal(ri, json_object_get(g, "target_run")))
                fputs(" (target)", f);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void tenants_section(FILE *f, const json_t *model)
{
    const json_t *rows = json_object_get(model, "tenants");
    if (!json_array_size(rows))
        return;
    fputs("<section id=\"tenants\"><h2>Tenants side by side</h2><div class=\"grid\">\n", f);
    html_figure(f, "TTFT p95 per tenant (ms)", "data-kind=\"tenants\" data-metric=\"ttft_p95\"",
                false);
    html_figure(f, "TPOT p95 per tenant (ms)", "data-kind=\"tenants\" data-metric=\"tpot_p95\"",
                false);
    html_figure(f, "SLO attainment per tenant (%)",
                "data-kind=\"tenants\" data-metric=\"attainment\"", false);
    fputs("</div></section>\n", f);
}

static void pvm_section(FILE *f, const json_t *model)
{
    const json_t *rows = json_object_get(model, "predicted_vs_measured");
    if (!json_array_size(rows))
        return;
    fputs("<section id=\"predicted\"><h2>Predicted vs measured</h2><div class=\"grid\">\n", f);
    const char *done[16];
    size_t nd = 0, i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *m = str(r, "metric");
        size_t k = 0;
        while (k < nd && strcmp(done[k], m) != 0)
            k++;
        if (k < nd || nd == 16)
            continue;
        done[nd++] = m;
        char attrs[128], cap[128];
        snprintf(attrs, sizeof(attrs), "data-kind=\"pvm\" data-metric=\"%s\"", m);
        snprintf(cap, sizeof(cap), "%s: predicted (plan) and measured", m);
        html_figure(f, cap, attrs, false);
    }
    fputs("</div><table><thead><tr><th class=\"l\">setup</th><th class=\"l\">workload</th>"
          "<th>users</th><th class=\"l\">metric</th><th>predicted</th><th>measured</th>"
          "<th>error %</th></tr></thead><tbody>\n",
          f);
    static const struct col cols[] = {
        {"setup", NULL},       {"workload", NULL},   {"users", "%.0f"},      {"metric", NULL},
        {"predicted", "%.4g"}, {"measured", "%.4g"}, {"error_pct", "%+.1f"},
    };
    json_array_foreach(rows, i, r)
    {
        fputs("<tr>", f);
        cells_write(f, r, cols, sizeof(cols) / sizeof(cols[0]));
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></section>\n", f);
}

static void compare_section(FILE *f, const json_t *model)
{
    const json_t *cmp = json_object_get(model, "compare");
    if (!cmp)
        return;
    fputs("<section id=\"compare\"><h2>Comparison</h2><p class=\"sub\">A: ", f);
    html_esc(f, str(cmp, "a"));
    fputs("<br>B: ", f);
    html_esc(f, str(cmp, "b"));
    fputs("<br>", f);
    html_esc(f, str(cmp, "method"));
    fputs("</p><div class=\"grid\">\n", f);
    html_figure(f, "Change of B against A per point and metric", "data-kind=\"compare\"", false);
    fputs("</div><table><thead><tr><th class=\"l\">point</th><th class=\"l\">metric</th>"
          "<th>A</th><th>B</th><th>change %</th><th>95% CI of B − A</th>"
          "<th class=\"l\">beyond noise</th></tr></thead><tbody>\n",
          f);
    size_t i;
    json_t *r;
    static const struct col cols[] = {
        {"point", NULL}, {"metric", NULL}, {"a", "%.4g"}, {"b", "%.4g"}, {"change_pct", "%+.1f"},
    };
    json_array_foreach(json_object_get(cmp, "rows"), i, r)
    {
        fputs("<tr>", f);
        cells_write(f, r, cols, sizeof(cols) / sizeof(cols[0]));
        fputs("<td>", f);
        if (isnan(json_num(r, "ci_low"))) {
            fputs("–", f);
        } else {
            json_num_write(f, r, "ci_low", "[%.4g, ");
            json_num_write(f, r, "ci_high", "%.4g]");
        }
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(r, "verdict"));
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table></section>\n", f);
}

static int page_write(FILE *f, const json_t *model, const char *library)
{
    const char *title = str(model, "title");
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          /* The page may load nothing: everything it needs is inside it. */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n<title>",
          f);
    html_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head><body>\n<header><h1>", report_asset_css);
    html_esc(f, title);
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(f,
            "</h1><p class=\"sub\">testbench %s report, written %s from %zu run(s) and %zu "
            "study folder(s).</p></header>\n",
            TB_VERSION, when, json_array_size(json_object_get(model, "runs")),
            json_array_size(json_object_get(model, "studies")));
    /* A comparison page answers "what changed" first. */
    compare_section(f, model);
    matrix_write(f, model);
    fputs("<section id=\"setups\"><h2>Per setup: the evidence</h2>\n", f);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(model, "study_setups"), i, r) setup_section(f, model, r, i);
    /* Runs a study measured are drawn in their setup's section above. */
    bool summarised = json_is_true(json_object_get(model, "summarised"));
    if (summarised)
        html_runs_summary(f, model);
    json_array_foreach(json_object_get(model, "runs"), i, r)
    {
        if (!summarised && !json_is_string(json_object_get(r, "setup")))
            run_section(f, r, i);
    }
    fputs("</section>\n", f);
    tenants_section(f, model);
    pvm_section(f, model);
    html_provenance(f, model);
    /* "</" escaped as "<\/" (JSON_ESCAPE_SLASH): no string in the data can end the element. */
    fputs("<script type=\"application/json\" id=\"tb-data\">", f);
    /* A summarised page draws no run's chart: its runs stay out of the data (the tables above
     * hold what it shows), which keeps a page of thousands of runs small. */
    json_t *data = json_copy((json_t *)model);
    if (summarised)
        json_object_set_new(data, "runs", json_array());
    int drc = json_dumpf(data, f, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_REAL_PRECISION(7));
    json_decref(data);
    if (drc != 0)
        return -EIO;
    fputs("</script>\n<script>\n", f);
    fputs(library, f);
    fputs("\n</script>\n<script>\n", f);
    fputs(report_asset_js, f);
    fputs("</script>\n</body></html>\n", f);
    return ferror(f) ? -EIO : 0;
}

int html_write(const char *path, const json_t *model, char *err, size_t errlen)
{
    char *library = NULL;
    int rc = library_read(&library, err, errlen);
    if (rc)
        return rc;
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
        goto out;
    }
    rc = page_write(f, model, library);
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        unlink(tmp);
    }
out:
    free(tmp);
    free(library);
    return rc;
}
