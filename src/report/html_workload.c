/*
 * html_workload.c - a run's workload on the page, under its points table: per point the prompt
 * source and the output lengths asked for and measured (with a histogram chart); per point with
 * sessions a sessions table and a per-turn table and chart; where requests reasoned, TTFA beside
 * TTFT with reasoning and answer tokens and the phases' rates. The numbers come from the model's
 * "workload" object of each point (workload.c).
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

static void td_num(FILE *f, const json_t *o, const char *key, const char *fmt)
{
    fputs("<td>", f);
    json_num_write(f, o, key, fmt);
    fputs("</td>", f);
}

/* "tenant, ctx N, N users, R req/s" as the charts label a point. */
static void point_label(FILE *f, const json_t *p)
{
    const char *sep = "";
    if (strcmp(str(p, "tenant"), "default") != 0) {
        html_esc(f, str(p, "tenant"));
        sep = ", ";
    }
    if (!isnan(json_num(p, "context"))) {
        fprintf(f, "%sctx %.0f", sep, json_num(p, "context"));
        sep = ", ";
    }
    if (!isnan(json_num(p, "concurrency"))) {
        fprintf(f, "%s%.0f users", sep, json_num(p, "concurrency"));
        sep = ", ";
    }
    if (json_is_number(json_object_get(p, "rate")))
        fprintf(f, "%s%g req/s", sep, json_num(p, "rate"));
    else if (!*sep)
        fputs("point", f);
}

static bool any_point_has(const json_t *run, const char *what)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), i, p)
    {
        if (json_is_object(json_object_get(json_object_get(p, "workload"), what)))
            return true;
    }
    return false;
}

static void workload_table(FILE *f, const json_t *run)
{
    fputs("<table class=\"workload\"><thead><tr><th class=\"l\">point</th>"
          "<th class=\"l\">prompts</th><th class=\"l\">output lengths asked</th>"
          "<th>asked p50</th><th>asked p95</th><th>output min</th><th>output p50</th>"
          "<th>output p95</th><th>output max</th><th>cached prompt %</th></tr></thead><tbody>\n",
          f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), i, p)
    {
        const json_t *w = json_object_get(p, "workload");
        const json_t *asked = json_object_get(w, "output_target");
        const json_t *got = json_object_get(w, "output_measured");
        fputs("<tr><td class=\"l\">", f);
        point_label(f, p);
        fprintf(f, "</td><td class=\"l\" data-source=\"%s\"><b>", str(w, "source"));
        html_esc(f, str(w, "source"));
        fputs("</b>: ", f);
        html_esc(f, str(w, "source_detail"));
        fputs("</td><td class=\"l\">", f);
        html_esc(f, str(w, "output_dist"));
        fputs("</td>", f);
        td_num(f, asked, "p50", "%.0f");
        td_num(f, asked, "p95", "%.0f");
        td_num(f, got, "min", "%.0f");
        td_num(f, got, "p50", "%.0f");
        td_num(f, got, "p95", "%.0f");
        td_num(f, got, "max", "%.0f");
        td_num(f, w, "cached_prompt_pct", "%.1f");
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void sessions_block(FILE *f, const json_t *p, size_t run_idx, size_t k)
{
    const json_t *s = json_object_get(json_object_get(p, "workload"), "sessions");
    fputs("<h4>Sessions: ", f);
    point_label(f, p);
    fputs("</h4>\n<table class=\"sessions\"><thead><tr><th>sessions</th><th>turns</th>"
          "<th>users</th><th class=\"l\">think time</th><th>think p50 s</th><th>think p95 s</th>"
          "<th>turns skipped</th><th>TTFT p50 first turn</th><th>TTFT p50 later turns</th>"
          "</tr></thead><tbody><tr>",
          f);
    td_num(f, s, "count", "%.0f");
    td_num(f, s, "turns", "%.0f");
    td_num(f, s, "users", "%.0f");
    fputs("<td class=\"l\">", f);
    html_esc(f, str(s, "think_distribution"));
    fprintf(f, ", mean %g s</td>", json_num(s, "think_mean_cfg_s"));
    td_num(f, s, "think_p50_s", "%.2f");
    td_num(f, s, "think_p95_s", "%.2f");
    td_num(f, s, "turns_skipped", "%.0f");
    td_num(f, s, "ttft_first_p50", "%.1f ms");
    td_num(f, s, "ttft_later_p50", "%.1f ms");
    fprintf(f,
            "</tr></tbody></table>\n<table class=\"turns\" data-run=\"%zu\" data-point=\"%zu\">"
            "<thead><tr><th>turn</th><th>completed</th><th>failed</th><th>prompt tokens mean</th>"
            "<th>cached prompt %%</th><th>TTFT p50 ms</th><th>TTFT p95 ms</th>"
            "<th>TTFT p95 from due ms</th><th>E2E p50 ms</th></tr></thead><tbody>\n",
            run_idx, k);
    static const char *const cols[][2] = {
        {"turn", "%.0f"},       {"completed", "%.0f"},
        {"failed", "%.0f"},     {"prompt_tokens_mean", "%.1f"},
        {"cached_pct", "%.1f"}, {"ttft_p50", "%.1f"},
        {"ttft_p95", "%.1f"},   {"ttft_sched_p95", "%.1f"},
        {"e2e_p50", "%.1f"},
    };
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(s, "by_turn"), i, t)
    {
        fputs("<tr>", f);
        for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++)
            td_num(f, t, cols[c][0], cols[c][1]);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void reasoning_table(FILE *f, const json_t *run)
{
    fputs("<table class=\"reasoning\"><thead><tr><th class=\"l\">point</th>"
          "<th>requests that reasoned</th><th>TTFT p50 ms</th><th>TTFA p50 ms</th>"
          "<th>TTFT p95 ms</th><th>TTFA p95 ms</th><th>reasoning tokens / request</th>"
          "<th>answer tokens / request</th><th>reasoning tok/s p50</th>"
          "<th>answer tok/s p50</th></tr></thead><tbody>\n",
          f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), i, p)
    {
        const json_t *r = json_object_get(json_object_get(p, "workload"), "reasoning");
        if (!json_is_object(r))
            continue;
        fputs("<tr><td class=\"l\">", f);
        point_label(f, p);
        fputs("</td>", f);
        td_num(f, r, "requests", "%.0f");
        td_num(f, json_object_get(r, "ttft"), "p50", "%.1f");
        td_num(f, json_object_get(r, "ttfa"), "p50", "%.1f");
        td_num(f, json_object_get(r, "ttft"), "p95", "%.1f");
        td_num(f, json_object_get(r, "ttfa"), "p95", "%.1f");
        td_num(f, r, "reasoning_tokens_mean", "%.1f");
        td_num(f, r, "answer_tokens_mean", "%.1f");
        td_num(f, json_object_get(r, "reasoning_rate"), "p50", "%.1f");
        td_num(f, json_object_get(r, "answer_rate"), "p50", "%.1f");
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

void html_workload_write(FILE *f, const json_t *run, size_t idx)
{
    char attrs[160];
    fputs("<h4>Workload</h4>\n", f);
    workload_table(f, run);
    fputs("<div class=\"grid\">\n", f);
    snprintf(attrs, sizeof(attrs), "data-kind=\"outlen\" data-run=\"%zu\"", idx);
    html_figure(f, "Output tokens per request (completed), measured: histogram per point", attrs,
                false);
    if (any_point_has(run, "reasoning")) {
        snprintf(attrs, sizeof(attrs), "data-kind=\"reasoning\" data-run=\"%zu\"", idx);
        html_figure(f, "Reasoning: time to first answer token (TTFA) beside TTFT, p50 and p95",
                    attrs, false);
    }
    fputs("</div>\n", f);
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), k, p)
    {
        if (!json_is_object(json_object_get(json_object_get(p, "workload"), "sessions")))
            continue;
        sessions_block(f, p, idx, k);
        snprintf(attrs, sizeof(attrs), "data-kind=\"turns\" data-run=\"%zu\" data-point=\"%zu\"",
                 idx, k);
        fputs("<div class=\"grid\">\n", f);
        html_figure(f,
                    "By turn: TTFT p50/p95 (ms), mean prompt tokens and cached-prompt % as the "
                    "conversations grow",
                    attrs, false);
        fputs("</div>\n", f);
    }
    if (any_point_has(run, "reasoning")) {
        fputs("<h4>Reasoning</h4>\n", f);
        reasoning_table(f, run);
    }
}
