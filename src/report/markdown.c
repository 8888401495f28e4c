/*
 * markdown.c - GitHub-flavoured Markdown tables; cells never contain '|' or line breaks.
 */
#include "report/markdown.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/load.h"

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Text from a result file (a model, tenant or version string, a reason) as Markdown text that
 * says only what it says: '|' would split a table cell, a line break would end the line (and
 * could start a "# heading"), '<' would open raw HTML in renderers that allow it (Jupyter,
 * many wikis), other control characters are a terminal's escape sequences. */
static void md(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '|')
            fputc('/', f);
        else if (c == '<')
            fputs("&lt;", f); /* no tag can start without it; '>' and '&' stay readable */
        else if (c == '\n' || c == '\r' || c == '\t')
            fputc(' ', f);
        else if (c < 0x20 || c == 0x7f)
            fputc('?', f);
        else
            fputc(c, f);
    }
}

/* Text inside a `code span` (a path): shown literally, so no entities; a backquote would end
 * the span and a line break the line. */
static void md_code(FILE *f, const char *s)
{
    fputc('`', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c == '`' ? '\'' : c == '|' ? '/' : c < 0x20 || c == 0x7f ? '?' : c, f);
    }
    fputc('`', f);
}

/* A table column: r's value at key, a number in fmt, or (fmt NULL) text. */
struct col {
    const char *key;
    const char *fmt;
};

/* "| a | b | ... " for one row; the caller ends the line. */
static void cells_write(FILE *f, const json_t *r, const struct col *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputs(i ? " | " : "| ", f);
        if (cols[i].fmt)
            json_num_write(f, r, cols[i].key, cols[i].fmt);
        else
            md(f, str(r, cols[i].key));
    }
}

/* Cells [from, to) as one table: the study or run each comes from, then the cell. */
/* What a table's cells were judged on (guidance_basis), or NULL. */
static const json_t *basis_of(const json_t *model, const json_t *cell)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(model, "guidance_basis"), i, b)
    {
        if (strcmp(str(b, "group"), str(cell, "group")) == 0 &&
            strcmp(str(b, "workload"), str(cell, "workload")) == 0)
            return b;
    }
    return NULL;
}

/* One cell's verdict at the target user count: one thing, said apart from "not run". */
static const char *cell_verdict(const json_t *c)
{
    const char *state = str(c, "state");
    json_t *met = json_object_get(c, "slo_met");
    if (strcmp(state, "does_not_fit") == 0)
        return strncmp(str(c, "note"), "cannot be loaded", 16) == 0 ? "cannot be loaded"
                                                                    : "does not fit";
    if (strcmp(str(c, "status"), "failed_to_start") == 0)
        return "not run: failed to start";
    if (strcmp(state, "not_run") == 0 && !json_is_boolean(met))
        return "not run";
    return json_is_true(met) ? "met" : json_is_false(met) ? "**missed**" : "–";
}

static void matrix_row(FILE *f, const json_t *c)
{
    const char *src = str(c, "source");
    const char *badge = strcmp(src, "measured") == 0    ? " [m]"
                        : strcmp(src, "predicted") == 0 ? " [p]"
                                                        : "";
    fputs("| ", f);
    md(f, str(c, "model"));
    fputs(" | ", f);
    md(f, str(c, "weights"));
    fputs(" | ", f);
    md(f, str(c, "kv_dtype"));
    fprintf(f, " | %s%s%lld | ", json_is_true(json_object_get(c, "window")) ? "window " : "",
            json_is_true(json_object_get(c, "context_upto")) ? "≤ " : "",
            (long long)json_integer_value(json_object_get(c, "context")));
    if (json_is_true(json_object_get(c, "max_users_at_least")))
        fputs("≥ ", f);
    json_num_write(f, c, "max_users", "%.0f");
    fprintf(f, "%s | ", isnan(json_num(c, "max_users")) ? "" : badge);
    json_num_write(f, c, "user_tps_p50", "%.1f");
    fputs(" | ", f);
    json_num_write(f, c, "ttft_p95_ms", "%.0f");
    fprintf(f, " | %s%s", cell_verdict(c),
            json_is_boolean(json_object_get(c, "slo_met")) ? badge : "");
    if (*str(c, "evidence")) { /* what a measured verdict rests on */
        fputs(": ", f);
        md(f, str(c, "evidence"));
    }
    fputs(" | ", f);
    md(f, str(c, "note"));
    if (*str(c, "origin")) {
        fputs(*str(c, "note") ? "; " : "", f);
        md(f, str(c, "origin"));
    }
    fputs(" |\n", f);
}

/* Cells [from, to): one table per study and workload, or per run, each under what it was judged
 * on (the SLO and the workload). */
static void matrix_rows(FILE *f, const json_t *model, size_t from, size_t to)
{
    const json_t *cells = json_object_get(model, "guidance");
    long long users = json_integer_value(json_object_get(model, "users"));
    size_t i = from;
    while (i < to) {
        const json_t *c0 = json_array_get(cells, i);
        bool study = json_is_true(json_object_get(c0, "from_study"));
        fputs(study ? "### Study " : "### Run ", f);
        md(f, str(c0, "group"));
        if (*str(c0, "workload")) {
            fputs(" · workload ", f);
            md(f, str(c0, "workload"));
        }
        const json_t *b = basis_of(model, c0);
        fputs("\n\n- **SLO** ", f);
        md(f, b ? str(b, "slo") : "not recorded");
        fputs("\n- **Workload** ", f);
        md(f, b ? str(b, "what") : "not recorded");
        fprintf(f,
                "\n- **Cells** capacity = the most users within the SLO; at %lld users: tokens/s "
                "per user (p50), TTFT p95 and the verdict (a measured study verdict with the "
                "percentile it was judged by, its confidence interval and the requests judged); "
                "[m] measured, [p] predicted by `testbench plan`; – no value\n\n",
                users);
        fprintf(f,
                "| model | weights | KV cache | window or request tokens | capacity (users) | "
                "tok/s per user at %lld | TTFT p95 ms at %lld | SLO at %lld | note |\n"
                "|---|---|---|---:|---:|---:|---:|---|---|\n",
                users, users, users);
        for (; i < to; i++) {
            const json_t *c = json_array_get(cells, i);
            if (strcmp(str(c, "group"), str(c0, "group")) != 0 ||
                strcmp(str(c, "workload"), str(c0, "workload")) != 0 ||
                json_is_true(json_object_get(c, "from_study")) != study)
                break;
            matrix_row(f, c);
        }
        fputs("\n", f);
    }
}

static void matrix(FILE *f, const json_t *model)
{
    const json_t *cells = json_object_get(model, "guidance");
    long long users = json_integer_value(json_object_get(model, "users"));
    fprintf(f, "## What %lld users can get\n\n", users);
    if (!json_array_size(cells)) {
        fputs("No point in these results has a concurrency cap.\n\n", f);
        return;
    }
    size_t n = json_array_size(cells), k = 0;
    while (k < n && json_is_true(json_object_get(json_array_get(cells, k), "from_study")))
        k++;
    matrix_rows(f, model, 0, k ? k : n);
    if (!k || k == n)
        return;
    fprintf(f, "## What %lld users got in runs outside a study\n\n", users);
    matrix_rows(f, model, k, n);
}

/* Each study setup x workload: what study.csv says, the capacity, and its rows by users. */
static void study_setups(FILE *f, const json_t *model)
{
    const json_t *groups = json_object_get(model, "study_setups");
    if (!json_array_size(groups))
        return;
    fputs("## Study setups\n\n", f);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        fputs("### ", f);
        md(f, str(g, "setup"));
        fputs(" · ", f);
        md(f, str(g, "workload"));
        fputs("\n\n", f);
        md(f, str(g, "model"));
        fputs(", quantization ", f);
        md(f, *str(g, "quantization") ? str(g, "quantization") : "default");
        fputs(", KV ", f);
        md(f, *str(g, "kv_cache_dtype") ? str(g, "kv_cache_dtype") : "auto");
        fputs(", max_model_len ", f);
        json_num_write(f, g, "max_model_len", "%.0f");
        fputs(", status **", f);
        md(f, str(g, "status"));
        fputs("**; most users within the SLO: measured ", f);
        json_num_write(f, g, "meas_max_users", "%.0f");
        fputs(", predicted ", f);
        json_num_write(f, g, "pred_max_users", "%.0f");
        fputs("\n\n", f);
        if (*str(g, "side_by_side")) {
            fputs("Measured side by side with `", f);
            md(f, str(g, "side_by_side"));
            fputs("` on the same host: its figures may include their interference.\n\n", f);
        }
        if (*str(g, "reason") && strcmp(str(g, "status"), "measured") != 0) {
            md(f, str(g, "status"));
            fputs(": ", f);
            md(f, str(g, "reason"));
            if (*str(g, "server_log")) {
                fputs(" (server log ", f);
                md_code(f, str(g, "server_log"));
                fputs(")", f);
            }
            fputs("\n\n", f);
        }
        if (!json_array_size(json_object_get(g, "runs")))
            continue;
        fputs("| users | role | status | TTFT p50 ms pred / meas | TTFT p95 ms pred / meas | "
              "TPOT p50 ms pred / meas | TPOT p95 ms pred / meas | SLO |\n"
              "|---:|---|---|---:|---:|---:|---:|---|\n",
              f);
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(g, "rows"), k, r)
        {
            fputs("| ", f);
            json_num_write(f, r, "users", "%.0f");
            fputs(" | ", f);
            md(f, str(r, "role"));
            fputs(" | ", f);
            md(f, str(r, "status"));
            const char *m[] = {"ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms"};
            for (size_t j = 0; j < 4; j++) {
                char key[64];
                fputs(" | ", f);
                snprintf(key, sizeof(key), "pred_%s", m[j]);
                json_num_write(f, r, key, "%.1f");
                fputs(" / ", f);
                snprintf(key, sizeof(key), "meas_%s", m[j]);
                json_num_write(f, r, key, "%.1f");
            }
            json_t *met = json_object_get(r, "slo_met");
            fputs(" | ", f);
            if (*str(r, "slo_line")) /* the verdict with its confidence interval */
                md(f, str(r, "slo_line"));
            else
                fputs(json_is_true(met) ? "met" : json_is_false(met) ? "**missed**" : "–", f);
            fputs(" |\n", f);
        }
        fputs("\n", f);
    }
}

/* The point's label for a table: tenant, context, users, rate. */
static void point_name(FILE *f, const json_t *p)
{
    md(f, str(p, "tenant"));
    if (!isnan(json_num(p, "context")))
        fprintf(f, ", ctx %.0f", json_num(p, "context"));
    if (!isnan(json_num(p, "concurrency")))
        fprintf(f, ", %.0f users", json_num(p, "concurrency"));
    if (json_is_number(json_object_get(p, "rate")))
        fprintf(f, ", %g req/s", json_num(p, "rate"));
}

/* A run's workload in short: prompts and output lengths per point, sessions by turn, TTFA. */
static void workload(FILE *f, const json_t *run)
{
    fputs("Workload:\n\n| point | prompts | output lengths asked | output tokens p50 / p95 / max "
          "| cached prompt % |\n|---|---|---|---|---:|\n",
          f);
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(run, "points"), k, p)
    {
        const json_t *w = json_object_get(p, "workload");
        const json_t *got = json_object_get(w, "output_measured");
        fputs("| ", f);
        point_name(f, p);
        fputs(" | ", f);
        md(f, str(w, "source"));
        fputs(": ", f);
        md(f, str(w, "source_detail"));
        fputs(" | ", f);
        md(f, str(w, "output_dist"));
        fputs(" | ", f);
        json_num_write(f, got, "p50", "%.0f / ");
        json_num_write(f, got, "p95", "%.0f / ");
        json_num_write(f, got, "max", "%.0f");
        fputs(" | ", f);
        json_num_write(f, w, "cached_prompt_pct", "%.1f");
        fputs(" |\n", f);
    }
    fputs("\n", f);
    json_array_foreach(json_object_get(run, "points"), k, p)
    {
        const json_t *s = json_object_get(json_object_get(p, "workload"), "sessions");
        if (!json_is_object(s))
            continue;
        fputs("Sessions (", f);
        point_name(f, p);
        fputs("): ", f);
        json_num_write(f, s, "count", "%.0f sessions of ");
        json_num_write(f, s, "turns", "%.0f turns, ");
        json_num_write(f, s, "users", "%.0f users, think time ");
        md(f, str(s, "think_distribution"));
        json_num_write(f, s, "think_mean_cfg_s", " mean %g s (measured p50 ");
        json_num_write(f, s, "think_p50_s", "%.2f s), ");
        json_num_write(f, s, "turns_skipped", "%.0f turns skipped.\n\n");
        fputs("| turn | completed | failed | prompt tokens mean | cached prompt % | TTFT p50 ms "
              "| TTFT p95 ms |\n|---:|---:|---:|---:|---:|---:|---:|\n",
              f);
        static const struct col cols[] = {
            {"turn", "%.0f"},       {"completed", "%.0f"},
            {"failed", "%.0f"},     {"prompt_tokens_mean", "%.1f"},
            {"cached_pct", "%.1f"}, {"ttft_p50", "%.1f"},
            {"ttft_p95", "%.1f"},
        };
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(s, "by_turn"), i, t)
        {
            cells_write(f, t, cols, sizeof(cols) / sizeof(cols[0]));
            fputs(" |\n", f);
        }
        fputs("\n", f);
    }
    json_array_foreach(json_object_get(run, "points"), k, p)
    {
        const json_t *r = json_object_get(json_object_get(p, "workload"), "reasoning");
        if (!json_is_object(r))
            continue;
        fputs("Reasoning (", f);
        point_name(f, p);
        fputs("): ", f);
        json_num_write(f, r, "requests", "%.0f requests reasoned; TTFT p50 ");
        json_num_write(f, json_object_get(r, "ttft"), "p50", "%.1f ms, TTFA p50 ");
        json_num_write(f, json_object_get(r, "ttfa"), "p50", "%.1f ms (p95 ");
        json_num_write(f, json_object_get(r, "ttft"), "p95", "%.1f / ");
        json_num_write(f, json_object_get(r, "ttfa"), "p95", "%.1f ms); per request ");
        json_num_write(f, r, "reasoning_tokens_mean", "%.1f reasoning and ");
        json_num_write(f, r, "answer_tokens_mean", "%.1f answer tokens; ");
        json_num_write(f, json_object_get(r, "reasoning_rate"), "p50", "reasoning %.1f tok/s, ");
        json_num_write(f, json_object_get(r, "answer_rate"), "p50", "answer %.1f tok/s (p50).\n\n");
    }
}

static void runs(FILE *f, const json_t *model)
{
    fputs("## Runs\n\n", f);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(model, "runs"), i, r)
    {
        fputs("### ", f);
        md(f, str(r, "label"));
        fputs("\n\n", f);
        md_code(f, str(r, "file"));
        fputs(" — ", f);
        md(f, str(r, "model"));
        fputs(", testbench ", f);
        md(f, str(json_object_get(r, "tool"), "version"));
        fputs(", server ", f);
        md(f, str(json_object_get(r, "server"), "version"));
        fputs("\n\n", f);
        fputs("| tenant | context | users | req/s | TTFT p95 ms | ITL p99 ms | tok/s per user p50 "
              "| SLO % | J/token | verdict | client |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
              f);
        size_t k;
        json_t *p;
        static const struct col cols[] = {
            {"tenant", NULL},         {"context", "%.0f"},    {"concurrency", "%.0f"},
            {"req_tps", "%.2f"},      {"ttft_p95", "%.1f"},   {"itl_p99", "%.1f"},
            {"user_tps_p50", "%.1f"}, {"attainment", "%.0f"}, {"energy_j_per_tok", "%.3g"},
            {"verdict", NULL},
        };
        json_array_foreach(json_object_get(r, "points"), k, p)
        {
            cells_write(f, p, cols, sizeof(cols) / sizeof(cols[0]));
            fputs(json_is_true(json_object_get(p, "distorted")) ? " | ⚠ distorted |\n"
                                                                : " | ok |\n",
                  f);
        }
        fputs("\n", f);
        workload(f, r);
    }
}

static void pvm(FILE *f, const json_t *model)
{
    const json_t *rows = json_object_get(model, "predicted_vs_measured");
    if (!json_array_size(rows))
        return;
    fputs("## Predicted vs measured\n\n| setup | workload | users | metric | predicted | measured "
          "| error % |\n|---|---|---:|---|---:|---:|---:|\n",
          f);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        fputs("| ", f);
        md(f, str(r, "setup"));
        fputs(" | ", f);
        md(f, str(r, "workload"));
        fputs(" | ", f);
        json_num_write(f, r, "users", "%.0f");
        fprintf(f, " | %s | ", str(r, "metric"));
        json_num_write(f, r, "predicted", "%.4g");
        fputs(" | ", f);
        json_num_write(f, r, "measured", "%.4g");
        fputs(" | ", f);
        json_num_write(f, r, "error_pct", "%+.1f");
        fputs(" |\n", f);
    }
    fputs("\n", f);
}

void markdown_compare(FILE *f, const json_t *cmp)
{
    fputs("## Comparison\n\nA: ", f);
    md_code(f, str(cmp, "a"));
    fputs("  \nB: ", f);
    md_code(f, str(cmp, "b"));
    fputs("  \n", f);
    md(f, str(cmp, "method"));
    fputs("\n\n| point | metric | A | B | change % | 95% CI of B − A | verdict |\n"
          "|---|---|---:|---:|---:|---|---|\n",
          f);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(cmp, "rows"), i, r)
    {
        fputs("| ", f);
        md(f, str(r, "point"));
        fprintf(f, " | %s | ", str(r, "metric"));
        json_num_write(f, r, "a", "%.4g");
        fputs(" | ", f);
        json_num_write(f, r, "b", "%.4g");
        fputs(" | ", f);
        json_num_write(f, r, "change_pct", "%+.1f");
        fputs(" | ", f);
        if (isnan(json_num(r, "ci_low"))) {
            fputs("–", f);
        } else {
            json_num_write(f, r, "ci_low", "[%.4g, ");
            json_num_write(f, r, "ci_high", "%.4g]");
        }
        fprintf(f, " | %s%s%s |\n", json_is_true(json_object_get(r, "significant")) ? "**" : "",
                str(r, "verdict"), json_is_true(json_object_get(r, "significant")) ? "**" : "");
    }
    fputs("\n", f);
}

void markdown_write(FILE *f, const json_t *model)
{
    fputs("# ", f);
    md(f, str(model, "title"));
    fputs("\n\n", f);
    matrix(f, model);
    study_setups(f, model);
    runs(f, model);
    pvm(f, model);
    const json_t *cmp = json_object_get(model, "compare");
    if (cmp)
        markdown_compare(f, cmp);
}

int markdown_write_file(const char *path, const json_t *model)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = -errno;
        free(tmp);
        return rc;
    }
    markdown_write(f, model);
    if (ferror(f))
        rc = -EIO;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}
