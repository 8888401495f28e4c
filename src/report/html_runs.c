/*
 * html_runs.c - the page's tables of runs: the summary that stands in for the runs' sections
 * when an input holds more runs than the page charts (REPORT_CHART_RUNS), and the provenance
 * of every run (file, start, versions, GPU, config, the client's self-check).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/html.h"
#include "report/load.h"

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A page of more runs than it charts: one row per run outside a study, its points in short. */
void html_runs_summary(FILE *f, const json_t *model)
{
    fprintf(f,
            "<p class=\"note\" id=\"summarised\">%zu runs: more than %lld, so each run is a "
            "row here instead of a section of charts (report a sub-folder, or fewer files, for "
            "its charts).</p>\n",
            json_array_size(json_object_get(model, "runs")),
            (long long)json_integer_value(json_object_get(model, "chart_runs")));
    fputs(
        "<table class=\"runs\"><thead><tr><th class=\"l\">run</th><th class=\"l\">model</th>"
        "<th class=\"l\">quantization</th><th class=\"l\">KV dtype</th><th>points</th>"
        "<th>completed</th><th>failed</th><th>points within SLO</th>"
        "<th>TTFT p95 ms (best / worst point)</th><th class=\"l\">file</th></tr></thead><tbody>\n",
        f);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(model, "runs"), i, r)
    {
        if (json_is_string(json_object_get(r, "setup")))
            continue; /* a study's runs are rows of its setup's table */
        size_t k, n = 0, met = 0, judged = 0;
        double done = 0, failed = 0, lo = NAN, hi = NAN;
        json_t *p;
        json_array_foreach(json_object_get(r, "points"), k, p)
        {
            n++;
            double c = json_num(p, "completed"), fl = json_num(p, "failed");
            double t = json_num(p, "ttft_p95");
            done += isnan(c) ? 0 : c;
            failed += isnan(fl) ? 0 : fl;
            if (!isnan(t)) {
                lo = isnan(lo) || t < lo ? t : lo;
                hi = isnan(hi) || t > hi ? t : hi;
            }
            json_t *m = json_object_get(p, "slo_met");
            if (json_is_boolean(m)) {
                judged++;
                met += json_is_true(m);
            }
        }
        fputs("<tr><td class=\"l\">", f);
        html_esc(f, str(r, "label"));
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(r, "model"));
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(r, "quantization"));
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(r, "kv_dtype"));
        fprintf(f, "</td><td>%zu</td><td>%.0f</td><td>%.0f</td><td>", n, done, failed);
        if (judged)
            fprintf(f, "%zu of %zu", met, judged);
        else
            fputs("–", f);
        fputs("</td><td>", f);
        if (isnan(lo))
            fputs("–", f);
        else
            fprintf(f, "%.1f / %.1f", lo, hi);
        fputs("</td><td class=\"l\"><code>", f);
        html_esc(f, str(r, "file"));
        fputs("</code></td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

void html_provenance(FILE *f, const json_t *model)
{
    fputs("<section id=\"provenance\"><h2>Provenance</h2><table><thead><tr><th class=\"l\">run</th>"
          "<th class=\"l\">file</th><th class=\"l\">started</th><th class=\"l\">testbench</th>"
          "<th class=\"l\">server</th><th class=\"l\">GPU</th><th class=\"l\">config</th>"
          "<th class=\"l\">client self-check</th></tr></thead><tbody>\n",
          f);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(model, "runs"), i, r)
    {
        fputs("<tr><td class=\"l\">", f);
        html_esc(f, str(r, "label"));
        fputs("</td><td class=\"l\"><code>", f);
        html_esc(f, str(r, "file"));
        fputs("</code></td><td class=\"l\">", f);
        html_esc(f, str(r, "started_at"));
        const json_t *tool = json_object_get(r, "tool");
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(tool, "version"));
        fputs(" (git ", f);
        html_esc(f, str(tool, "git"));
        fputs(")</td><td class=\"l\">", f);
        const json_t *srv = json_object_get(r, "server");
        html_esc(f, str(srv, "version"));
        fputs(" at ", f);
        html_esc(f, str(srv, "endpoint"));
        fputs("</td><td class=\"l\">", f);
        size_t k;
        json_t *g;
        bool any = false;
        json_array_foreach(json_object_get(r, "gpus"), k, g)
        {
            fputs(any ? ", " : "", f);
            html_esc(f, str(g, "name"));
            any = true;
        }
        const json_t *sim = json_object_get(r, "sim");
        if (json_is_true(json_object_get(sim, "enabled"))) {
            fputs(any ? "; " : "", f);
            fputs("simulated ", f);
            html_esc(f, str(sim, "gpu"));
        } else if (!any) {
            fputs("unknown (no NVML)", f);
        }
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(r, "benchmark"));
        fputs(" <code>", f);
        html_esc(f, str(r, "config_file"));
        fputs("</code></td><td class=\"l\">", f);
        size_t n = 0, bad = 0;
        json_t *p;
        json_array_foreach(json_object_get(r, "points"), k, p)
        {
            n++;
            if (json_is_true(json_object_get(p, "distorted")))
                bad++;
        }
        if (bad)
            fprintf(f,
                    "<span class=\"warn\">⚠ %zu of %zu points distorted</span> (the load "
                    "generator lagged; see the points table)",
                    bad, n);
        else
            fprintf(f, "ok (%zu points)", n);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table></section>\n", f);
}
