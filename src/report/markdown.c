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

/* Text for a cell: '|' would split it. */
static void md(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '|' ? '/' : *s == '\n' ? ' ' : *s, f);
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

/* What a workload's cells were judged on (guidance_basis), or NULL. */
static const json_t *basis_of(const json_t *model, const char *workload)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(model, "guidance_basis"), i, b)
    {
        if (strcmp(str(b, "workload"), workload) == 0)
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
    fprintf(f, " | %s%s | ", cell_verdict(c),
            json_is_boolean(json_object_get(c, "slo_met")) ? badge : "");
    md(f, str(c, "note"));
    if (*str(c, "origin")) {
        fputs(*str(c, "note") ? "; " : "", f);
        md(f, str(c, "origin"));
    }
    fputs(" |\n", f);
}

/* One table per workload, each under what it was judged on: the SLO and the workload. */
static void matrix(FILE *f, const json_t *model)
{
    const json_t *cells = json_object_get(model, "guidance");
    long long users = json_integer_value(json_object_get(model, "users"));
    fprintf(f, "## What %lld users can get\n\n", users);
    if (!json_array_size(cells)) {
        fputs("No point in these results has a concurrency cap.\n\n", f);
        return;
    }
    size_t i = 0, n = json_array_size(cells);
    while (i < n) {
        const char *wl = str(json_array_get(cells, i), "workload");
        const json_t *b = basis_of(model, wl);
        if (*wl) {
            fputs("### Workload ", f);
            md(f, wl);
            fputs("\n\n", f);
        }
        fputs("- **SLO** ", f);
        md(f, b ? str(b, "slo") : "not recorded");
        fputs("\n- **Workload** ", f);
        md(f, b ? str(b, "what") : "not recorded");
        fprintf(f,
                "\n- **Cells** capacity = the most users within the SLO; at %lld users: tokens/s "
                "per user (p50), TTFT p95 and the verdict; [m] measured, [p] predicted by "
                "`testbench plan`; – no value\n\n",
                users);
        fprintf(f,
                "| model | weights | KV cache | window or request tokens | capacity (users) | "
                "tok/s per user at %lld | TTFT p95 ms at %lld | SLO at %lld | note |\n"
                "|---|---|---|---:|---:|---:|---:|---|---|\n",
                users, users, users);
        for (; i < n && strcmp(str(json_array_get(cells, i), "workload"), wl) == 0; i++)
            matrix_row(f, json_array_get(cells, i));
        fputs("\n", f);
    }
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
        if (*str(g, "reason") && strcmp(str(g, "status"), "measured") != 0) {
            md(f, str(g, "status"));
            fputs(": ", f);
            md(f, str(g, "reason"));
            if (*str(g, "server_log")) {
                fputs(" (server log `", f);
                md(f, str(g, "server_log"));
                fputs("`)", f);
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
            fprintf(f, " | %s |\n",
                    json_is_true(met)    ? "met"
                    : json_is_false(met) ? "**missed**"
                                         : "–");
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
        fputs("\n\n`", f);
        md(f, str(r, "file"));
        fputs("` — ", f);
        md(f, str(r, "model"));
        fprintf(f, ", testbench %s, server %s\n\n", str(json_object_get(r, "tool"), "version"),
                str(json_object_get(r, "server"), "version"));
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
    fputs("## Comparison\n\nA: `", f);
    md(f, str(cmp, "a"));
    fputs("`  \nB: `", f);
    md(f, str(cmp, "b"));
    fputs("`  \n", f);
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
