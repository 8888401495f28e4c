/*
 * test_report_inputs.c - `report` and `compare` on inputs that are odd, hostile or large, each
 * made here from one short `run --sim` (two tenants, one asking for a LoRA adapter): a study.csv
 * row wider than its header, FIFOs where files should be, result strings holding HTML, line
 * breaks and terminal escape sequences, a run with no points, an empty file, a file too big for
 * the memory allowed, study folders naming runs that are gone, hundreds of runs, and a folder
 * that mixes a study with runs outside it. None may crash, hang or give up on what it can read;
 * each says what it skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "report/csv.h"
#include "tb_proc.h"

static char dir[256];
static char *base_path; /* the run's detailed.json */
static json_t *base;    /* and its contents */

/* Runs a shell command with stdout and stderr to out (when given); its exit status. */
static int sh(const char *cmd, const char *out)
{
    char *full = out ? xasprintf("%s >%s 2>&1", cmd, out) : xstrdup(cmd);
    int st = system(full);
    free(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    char *s = tb_read(path);
    return s ? s : xstrdup("");
}

/* dir/name as a new folder (and its parents). */
static char *folder(const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    char *cmd = xasprintf("mkdir -p '%s'", p);
    assert_int_equal(sh(cmd, NULL), 0);
    free(cmd);
    return p;
}

/* Writes doc as path. */
static void doc_write(const json_t *doc, const char *path)
{
    assert_int_equal(json_dump_file(doc, path, JSON_COMPACT), 0);
}

/* `testbench ARGS` with its output in dir/NAME.out; the exit status, the output in *text. */
static int tb(const char *name, const char *args, char **text)
{
    char *out = xasprintf("%s/%s.out", dir, name);
    char *cmd = xasprintf("timeout 120 %s %s", TB_BINARY, args);
    int rc = sh(cmd, out);
    *text = slurp(out);
    if (getenv("TB_TEST_VERBOSE"))
        fprintf(stderr, "$ %s -> %d\n%s\n", cmd, rc, *text);
    free(cmd);
    free(out);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_report_inputs_XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* Two tenants on one simulated engine; the first asks for a LoRA adapter by its name. */
    char *cfg = tb_write(dir, "base.yaml",
                         "benchmark: {name: base, output_prefix: base, seed: 2}\n"
                         "server: {api: chat, sim: {gpu: h200, model: gpt-oss-20b}}\n"
                         "model: {name: openai/gpt-oss-20b}\n"
                         "requests: {num_requests: 4, concurrent_requests: 2,\n"
                         "           rate_per_second: inf, prompt_tokens_min: 40,\n"
                         "           prompt_tokens_max: 80, completion_tokens: 4}\n"
                         "slo: {ttft_ms: 2000, tpot_ms: 200}\n"
                         "tenants:\n"
                         "  - {name: helpdesk, model: helpdesk-lora}\n"
                         "  - {name: plain}\n"
                         "telemetry: {sample_interval_sec: 0.2, collect_gpu_stats: false}\n");
    assert_non_null(cfg);
    char *out = xasprintf("%s/base", dir);
    const char *args[] = {"testbench",    "run", "--config", cfg, "--sim",
                          "--output-dir", out,   "--quiet",  NULL};
    assert_int_equal(tb_run(TB_BINARY, args, NULL, 0, 0), 0);
    base_path = tb_find(out, "_detailed.json");
    assert_non_null(base_path);
    json_error_t je;
    base = json_load_file(base_path, 0, &je);
    assert_non_null(base);
    free(out);
    free(cfg);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf(getenv("TB_TEST_KEEP") ? "echo kept %s" : "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    json_decref(base);
    free(base_path);
    return 0;
}

/* Probe 2026-12 #2: a study.csv row wider than its header (a spreadsheet's trailing comma)
 * freed pointers past the end of the row: ASan reported a heap overflow, Release crashed. */
static void csv_row_wider_than_its_header_is_cut(void **state)
{
    (void)state;
    char *d = folder("csv_wide");
    char *csv = tb_write(d, "study.csv",
                         "setup,status\n"
                         "s01,done,e1,e2,e3,e4,e5,e6,e7,e8,e9,e10,e11,e12,e13,e14,e15,e16,e17\n"
                         "s02,done\n");
    struct csv_table t;
    assert_int_equal(csv_table_load(&t, csv), 0);
    assert_int_equal(t.ncols, 2);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(csv_table_get(&t, 0, "status"), "done");
    assert_string_equal(csv_table_get(&t, 1, "setup"), "s02");
    csv_table_release(&t);
    char *text;
    char *args = xasprintf("report %s --output %s/wide.html --no-predict --quiet", d, dir);
    assert_int_equal(tb("csv_wide", args, &text), 0);
    char *a2 = xasprintf("compare %s %s", d, d);
    free(text);
    int rc = tb("csv_wide_cmp", a2, &text);
    assert_true(rc == 0 || rc == 2); /* nothing in common is a usage error, never a crash */
    free(text);
    free(a2);
    free(args);
    free(csv);
    free(d);
}

/* Probe #24: a FIFO where a result file should be blocked `report` and `compare` forever. */
static void fifos_are_refused_not_waited_on(void **state)
{
    (void)state;
    char *d = folder("fifo");
    char *ff = xasprintf("%s/ff_detailed.json", d);
    assert_int_equal(mkfifo(ff, 0600), 0);
    char *text;
    char *args = xasprintf("report %s --output %s/ff.html --no-predict", ff, dir);
    assert_int_equal(tb("fifo_report", args, &text), 2);
    assert_non_null(strstr(text, "not a regular file (a FIFO)"));
    assert_non_null(strstr(text, ff));
    free(text);
    free(args);
    args = xasprintf("compare %s %s", ff, base_path);
    assert_int_equal(tb("fifo_compare", args, &text), 2);
    assert_non_null(strstr(text, "not a regular file"));
    free(text);
    free(args);
    /* A FIFO as the telemetry beside a run: the run is reported without it, with a warning. */
    char *runs = folder("fifo_tel");
    char *copy = xasprintf("%s/x_detailed.json", runs);
    char *tel = xasprintf("%s/x_telemetry.json", runs);
    doc_write(base, copy);
    assert_int_equal(mkfifo(tel, 0600), 0);
    args = xasprintf("report %s --output %s/tel.html --no-predict", runs, dir);
    assert_int_equal(tb("fifo_tel", args, &text), 0);
    assert_non_null(strstr(text, "without its telemetry"));
    free(text);
    free(args);
    /* A FIFO as a study's study.csv: refused, named. */
    char *st = folder("fifo_study");
    char *csv = xasprintf("%s/study.csv", st);
    assert_int_equal(mkfifo(csv, 0600), 0);
    args = xasprintf("report %s --output %s/st.html --no-predict", st, dir);
    assert_int_equal(tb("fifo_study", args, &text), 2);
    assert_non_null(strstr(text, "not a regular file"));
    free(text);
    free(args);
    free(csv);
    free(st);
    free(tel);
    free(copy);
    free(runs);
    free(ff);
    free(d);
}

/* A copy of the base run whose strings say what str says (model, server version, tenant). */
static json_t *hostile_copy(const char *str)
{
    json_t *d = json_deep_copy(base);
    json_t *server = json_object_get(d, "server");
    json_object_set_new(server, "model", json_string(str));
    json_object_set_new(server, "version", json_string(str));
    json_t *model = json_object_get(json_object_get(d, "config"), "model");
    json_object_set_new(model, "name", json_string(str));
    json_t *sim = json_object_get(json_object_get(json_object_get(d, "config"), "server"), "sim");
    json_object_set_new(sim, "model", json_string(str));
    json_object_set_new(json_object_get(json_object_get(d, "config"), "benchmark"), "name",
                        json_string(str));
    return d;
}

/* Probe #25: report.md copied model, tenant and version strings verbatim: raw HTML for
 * renderers that allow it, and a line break that started a "# heading". */
static void markdown_carries_no_html_or_line_breaks_from_results(void **state)
{
    (void)state;
    char *d = folder("md_html");
    json_t *h = hostile_copy("<img src=x onerror=alert(1)>\n# Injected heading <script>x</script>");
    char *p = xasprintf("%s/h_detailed.json", d);
    doc_write(h, p);
    char *text;
    char *args = xasprintf("report %s --output %s/h.html --no-predict --quiet", d, dir);
    assert_int_equal(tb("md_html", args, &text), 0);
    char *mdp = xasprintf("%s/h.md", dir);
    char *md = slurp(mdp);
    assert_null(strstr(md, "<img"));
    assert_null(strstr(md, "<script"));
    assert_null(strstr(md, "\n# Injected"));
    assert_non_null(strstr(md, "&lt;img src=x onerror=alert(1)> # Injected heading"));
    free(md);
    free(mdp);
    free(text);
    free(args);
    free(p);
    json_decref(h);
    free(d);
}

/* Probe #22: a model name holding ESC ] 0 ; ... BEL, ESC [ 2 J and CR LF reached the terminal
 * raw through report's warnings; a server's start-up error did the same through the study. */
static void terminal_never_gets_escape_sequences(void **state)
{
    (void)state;
    static const char evil[] = "m\x1b]0;PWNTITLE\x07\x1b[2J\x1b[31mRED\r\nFAKE: report OK";
    char *d = folder("esc");
    json_t *h = hostile_copy(evil);
    char *p = xasprintf("%s/e_detailed.json", d);
    doc_write(h, p);
    /* With predictions: plan does not know the model, and the warning quotes it. */
    char *text;
    char *args = xasprintf("report %s --output %s/e.html", d, dir);
    assert_int_equal(tb("esc_report", args, &text), 0);
    assert_non_null(strstr(text, "PWNTITLE"));
    assert_null(strchr(text, '\x1b'));
    assert_null(strchr(text, '\x07'));
    assert_null(strchr(text, '\r'));
    assert_null(strstr(text, "\nFAKE"));
    free(text);
    free(args);

    /* A server that prints an escape sequence and exits before it is ready. */
    char *script = tb_write(dir, "evil_server.sh",
                            "#!/bin/sh\n"
                            "printf 'CUDA out of memory \\033]0;PWNED-TITLE\\007\\033[2J\\r\\n'\n"
                            "exit 1\n");
    assert_non_null(script);
    assert_int_equal(chmod(script, 0755), 0);
    char *yaml = xasprintf("study: {name: esc, gpu: h200, users: [2], capacity_search: false,\n"
                           "        requests_per_user: 1, min_requests: 2}\n"
                           "backend: {type: command, command: \"%s {port}\",\n"
                           "          startup_timeout_s: 20, stop_grace_s: 2}\n"
                           "setups:\n  grid:\n    model: [openai/gpt-oss-20b]\n"
                           "    max_model_len: [4096]\n"
                           "workloads:\n  - name: chat\n"
                           "benchmark: {name: esc, output_dir: \"%s/esc_study\", seed: 1}\n"
                           "server: {api: completions}\n"
                           "model: {name: openai/gpt-oss-20b}\n"
                           "requests: {completion_tokens: 8, prompt_tokens_min: 32,\n"
                           "           prompt_tokens_max: 64,\n"
                           "  session: {turns: 2, think_time_s: 0.2, message_tokens_min: 16, "
                           "message_tokens_max: 32}}\n"
                           "slo: {ttft_ms: 500, tpot_ms: 50}\n",
                           script, dir);
    char *cfg = tb_write(dir, "esc_study.yaml", yaml);
    args = xasprintf("study --config %s", cfg);
    int rc = tb("esc_study", args, &text);
    assert_true(rc == 0 || rc == 1);
    assert_non_null(strstr(text, "PWNED-TITLE"));
    assert_null(strchr(text, '\x1b'));
    assert_null(strchr(text, '\x07'));
    free(text);
    char *cmd = xasprintf("cat %s/esc_study/*/study.csv > %s/esc_study.csv", dir, dir);
    assert_int_equal(sh(cmd, NULL), 0);
    char *csvp = xasprintf("%s/esc_study.csv", dir);
    char *csv = slurp(csvp);
    assert_non_null(strstr(csv, "PWNED-TITLE"));
    assert_null(strchr(csv, '\x1b'));
    free(csv);
    free(csvp);
    free(cmd);
    free(args);
    free(cfg);
    free(yaml);
    free(script);
    free(p);
    json_decref(h);
    free(d);
}

/* Probe #36: a run with "points": [] sorted no cells with qsort(NULL, 0, ...), undefined (UBSan
 * stops the ASan build there). */
static void run_with_no_points_is_reported(void **state)
{
    (void)state;
    char *d = folder("nopoints");
    json_t *e = json_deep_copy(base);
    json_object_set_new(e, "points", json_array());
    char *p = xasprintf("%s/e_detailed.json", d);
    doc_write(e, p);
    char *text;
    char *args = xasprintf("report %s --output %s/np.html --no-predict --quiet", d, dir);
    assert_int_equal(tb("nopoints", args, &text), 0);
    free(text);
    free(args);
    free(p);
    json_decref(e);
    free(d);
}

/* Probe #38: messages said "(line -1)" for errors that have no line: an empty file, a study
 * folder that is not there. */
static void errors_never_say_line_minus_one(void **state)
{
    (void)state;
    char *d = folder("empty");
    char *p = tb_write(d, "e_detailed.json", "");
    char *text;
    char *args = xasprintf("report %s --output %s/em.html --no-predict", p, dir);
    assert_int_equal(tb("empty", args, &text), 2);
    assert_non_null(strstr(text, "not a testbench result"));
    assert_null(strstr(text, "line -1"));
    assert_null(strstr(text, "line 0"));
    free(text);
    free(args);
    args = xasprintf("study --resume %s/no_such_study", dir);
    assert_int_not_equal(tb("resume_missing", args, &text), 0);
    assert_non_null(strstr(text, "no_such_study"));
    assert_null(strstr(text, "line -1"));
    free(text);
    free(args);
    free(p);
    free(d);
}

/* Probe #20: a result file too big for the memory allowed read as "not JSON: line -1". Now it is
 * refused before parsing, saying how much it needs; the same limit still reads a small run. */
static void too_big_for_memory_says_so(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* a sanitizer's shadow memory does not run under ulimit -v */
#endif
    char *d = folder("big");
    json_t *big = json_deep_copy(base);
    json_t *p0 = json_array_get(json_object_get(big, "points"), 0);
    json_t *reqs = json_object_get(p0, "requests");
    json_t *one = json_deep_copy(json_array_get(reqs, 0));
    json_array_clear(reqs);
    for (int i = 0; i < 120000; i++)
        json_array_append(reqs, one);
    json_decref(one);
    char *p = xasprintf("%s/big_detailed.json", d);
    doc_write(big, p);
    json_decref(big);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    fprintf(stderr, "big file: %.1f MB\n", (double)st.st_size / 1e6);
    assert_true(st.st_size > 40 * 1000 * 1000);
    /* An address space of 300 MB: the binary and its libraries take about 100, the file's tree
     * would take 6.5 times its size. */
    char *sp = tb_write(dir, "limited.sh", "#!/bin/sh\nulimit -v 300000\nexec \"$@\"\n");
    assert_int_equal(chmod(sp, 0755), 0);
    char *outp = xasprintf("%s/big.out", dir);
    char *cmd = xasprintf("%s %s report %s --output %s/big.html --no-predict > %s 2>&1", sp,
                          TB_BINARY, p, dir, outp);
    int rc = sh(cmd, NULL);
    char *text = slurp(outp);
    fprintf(stderr, "%s", text);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(text, "out of memory reading"));
    assert_non_null(strstr(text, "needs about"));
    assert_non_null(strstr(text, p));
    assert_null(strstr(text, "not JSON"));
    free(text);
    free(cmd);
    /* The same limit reads an ordinary run. */
    cmd = xasprintf("%s %s report %s --output %s/small.html --no-predict > %s 2>&1", sp, TB_BINARY,
                    base_path, dir, outp);
    assert_int_equal(sh(cmd, NULL), 0);
    free(cmd);
    free(outp);
    free(sp);
    free(p);
    free(d);
}

/* A study folder by hand: s01 measured at 10 users (its run a copy of the base run, inside the
 * folder), s02 does not fit, and (gone) s03 names a run file that is not there. */
static char *study_make(const char *name, bool gone)
{
    char *st = folder(name);
    char *sub = xasprintf("%s/s01", st);
    char *mk = xasprintf("mkdir -p %s", sub);
    assert_int_equal(sh(mk, NULL), 0);
    char *run = xasprintf("%s/chat_u10_detailed.json", sub);
    doc_write(base, run);
    char *csv = tb_write(st, "study.csv",
                         "study,setup,model,quantization,kv_cache_dtype,max_model_len,workload,"
                         "role,users,status,reason,slo_met,meas_user_tps,meas_ttft_p95_ms,"
                         "meas_max_users,run_detailed\n"
                         "mix,s01,openai/gpt-oss-20b,,auto,4096,chat,target,10,measured,,true,"
                         "55.5,120.5,12,s01/chat_u10_detailed.json\n"
                         "mix,s02,openai/gpt-oss-120b,,auto,131072,chat,target,10,does_not_fit,"
                         "\"needs 80.0 GiB of weights, 70.1 GiB usable\",,,,,\n");
    assert_non_null(csv);
    if (gone) {
        FILE *f = fopen(csv, "a");
        assert_non_null(f);
        fputs("mix,s03,openai/gpt-oss-20b,,auto,8192,chat,target,10,measured,,true,"
              "50.1,130.2,11,s03/chat_u10_detailed.json\n",
              f);
        fclose(f);
    }
    free(csv);
    free(run);
    free(mk);
    free(sub);
    return st;
}

/* Probe #18: one run file that a study names being gone gave exit 2 and no page, although
 * study.csv holds every figure; a corrupt file in a folder of good ones did the same. */
static void unreadable_runs_are_skipped_with_a_warning(void **state)
{
    (void)state;
    char *st = study_make("missing/study", true);
    char *parent = xasprintf("%s/missing", dir);
    char *good = xasprintf("%s/good_detailed.json", parent);
    doc_write(base, good);
    char *bad = tb_write(parent, "bad_detailed.json", "{\"tool\": {\"name\": \"testbench\"}, ");
    char *text;
    char *args = xasprintf("report %s --output %s/miss.html --no-predict", parent, dir);
    assert_int_equal(tb("missing", args, &text), 0);
    assert_non_null(strstr(text, "s03/chat_u10_detailed.json"));
    assert_non_null(strstr(text, "its row is shown from study.csv"));
    assert_non_null(strstr(text, "bad_detailed.json"));
    assert_non_null(strstr(text, "skipped"));
    char *mdp = xasprintf("%s/miss.md", dir);
    char *md = slurp(mdp);
    assert_non_null(strstr(md, "### s03 · chat"));
    assert_non_null(strstr(md, "| 130 |")); /* s03's TTFT p95 from study.csv, rounded */
    assert_non_null(strstr(md, "### good"));
    free(md);
    free(mdp);
    free(text);
    free(args);
    free(bad);
    free(good);
    free(parent);
    free(st);
}

/* Probe #18: more than REPORT_CHART_RUNS (200) runs: a page of a row per run, no charts and no
 * run's data in the page, instead of "more than 4096 runs" or a page Chromium cannot draw. */
static void hundreds_of_runs_are_summarised(void **state)
{
    (void)state;
    char *d = folder("many");
    for (int i = 0; i < 230; i++) {
        char *p = xasprintf("%s/run%04d_detailed.json", d, i);
        assert_int_equal(link(base_path, p), 0); /* links: the report reads each by its path */
        free(p);
    }
    char *text;
    char *args = xasprintf("report %s --output %s/many.html --no-predict", d, dir);
    assert_int_equal(tb("many", args, &text), 0);
    assert_non_null(strstr(text, "230 runs"));
    free(text);
    char *hp = xasprintf("%s/many.html", dir);
    char *html = slurp(hp);
    assert_non_null(strstr(html, "id=\"summarised\""));
    assert_non_null(strstr(html, "run0229"));
    assert_null(strstr(html, "data-kind=\"latency\""));
    assert_null(strstr(html, "data-kind=\"cdf\""));
    struct stat st;
    assert_int_equal(stat(hp, &st), 0);
    fprintf(stderr, "230 runs: page %.1f MB\n", (double)st.st_size / 1e6);
    assert_true(st.st_size < 3 * 1000 * 1000);
    free(html);
    free(hp);
    free(args);
    free(d);
}

/* Item 14: a folder holding a study and runs outside it. The study's matrix holds only its
 * setups; each run has its own table in a section of its own; a setup that does not fit is not
 * drawn as missing the SLO; the LoRA adapter a tenant asked for is no model row; no path has a
 * double slash. */
static void mixed_folder_keeps_runs_apart(void **state)
{
    (void)state;
    char *st = study_make("mixed/study_mix", false);
    char *parent = xasprintf("%s/mixed", dir);
    char *r1 = xasprintf("%s/alone_detailed.json", parent);
    doc_write(base, r1);
    char *text;
    char *args = xasprintf("report %s/ --no-predict", parent);
    assert_int_equal(tb("mixed", args, &text), 0);
    free(text);
    char *mdp = xasprintf("%s/report.md", parent);
    char *md = slurp(mdp);
    char *study_part = strstr(md, "## What 10 users can get");
    char *runs_part = strstr(md, "## What 10 users got in runs outside a study");
    char *setups = strstr(md, "## Study setups");
    assert_non_null(study_part);
    assert_non_null(runs_part);
    assert_non_null(setups);
    assert_true(study_part < runs_part && runs_part < setups);
    *setups = '\0';
    /* The study's three setups above, the run's own rows below, never the other way. */
    assert_null(strstr(runs_part, "### Study study_mix"));
    *runs_part = '\0';
    char *study_table = strstr(study_part, "### Study study_mix · workload chat");
    assert_non_null(study_table);
    assert_non_null(strstr(study_table, "| openai/gpt-oss-120b |"));
    assert_null(strstr(study_part, "alone"));
    assert_non_null(strstr(study_part, "| does not fit |"));
    assert_null(strstr(study_part, "**missed**"));
    /* The run's rows name the base model; the adapter only in a note. */
    free(md);
    md = slurp(mdp);
    runs_part = strstr(md, "## What 10 users got in runs outside a study");
    setups = strstr(md, "## Study setups");
    *setups = '\0';
    assert_non_null(strstr(runs_part, "### Run alone"));
    assert_non_null(strstr(strstr(runs_part, "### Run alone"), "| gpt-oss-20b |"));
    assert_null(strstr(runs_part, "| helpdesk-lora |"));
    *setups = '#';
    /* No "//" in any path the report writes. */
    char *hp = xasprintf("%s/report.html", parent);
    char *html = slurp(hp);
    char *needle = xasprintf("%s//", parent);
    assert_null(strstr(html, needle));
    assert_null(strstr(md, needle));
    /* The page's matrix: the does-not-fit cell says so and is not judged. */
    assert_non_null(strstr(html, "data-status=\"does_not_fit\" data-slo-met=\"\""));
    assert_non_null(strstr(html, "<span class=\"verdict\">does not fit</span>"));
    assert_non_null(strstr(html, "id=\"answer-runs\""));
    free(needle);
    free(html);
    free(hp);
    free(md);
    free(mdp);
    free(args);
    free(r1);
    free(parent);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_row_wider_than_its_header_is_cut),
        cmocka_unit_test(fifos_are_refused_not_waited_on),
        cmocka_unit_test(markdown_carries_no_html_or_line_breaks_from_results),
        cmocka_unit_test(terminal_never_gets_escape_sequences),
        cmocka_unit_test(run_with_no_points_is_reported),
        cmocka_unit_test(errors_never_say_line_minus_one),
        cmocka_unit_test(too_big_for_memory_says_so),
        cmocka_unit_test(unreadable_runs_are_skipped_with_a_warning),
        cmocka_unit_test(hundreds_of_runs_are_summarised),
        cmocka_unit_test(mixed_folder_keeps_runs_apart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
