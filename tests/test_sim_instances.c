/*
 * test_sim_instances.c - several simulated vLLM servers in one process on one GPU (`sim
 * --instance`): two memory-fraction partitions time-slice the GPU, so under load each decodes
 * at about half its rate alone, by the share.c rule `plan --tenancy` uses; the expected step
 * time comes from the engine model, not a constant. Also the layout checks and the CLI.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/clock.h"
#include "engine/engine.h"
#include "sim/sim_internal.h"

#define GPU "l40s" /* decode steps of ~25 ms for 8B in bf16: timer jitter stays small */
#define MODEL "meta-llama/Llama-3.1-8B-Instruct"
#define MML 4096
#define UTIL 0.45
#define BATCH 4   /* concurrent streams per instance */
#define TOKENS 24 /* output tokens per stream */
#define PROMPT 32 /* prompt tokens per stream */

static void options(struct sim_options *o, struct sim_gpu *gpu)
{
    sim_options_init(o);
    o->port = 0;
    o->quiet = true;
    o->engine.gpu = GPU;
    o->engine.model = MODEL;
    o->engine.max_model_len = MML;
    o->engine.gpu_memory_utilization = UTIL;
    o->gpu = gpu;
}

/* The model's decode step for BATCH requests of PROMPT tokens on one instance, alone. */
static double model_decode_step(void)
{
    struct sim_options o;
    options(&o, NULL);
    struct engine *e = NULL;
    char err[256];
    assert_int_equal(engine_new(&e, &o.engine, err, sizeof(err)), 0);
    uint32_t prompt[BATCH][PROMPT];
    for (int r = 0; r < BATCH; r++) {
        for (int i = 0; i < PROMPT; i++)
            prompt[r][i] = (uint32_t)(1000 + r * PROMPT + i);
        struct engine_request er = {
            .id = (uint64_t)r + 1, .prompt = prompt[r], .prompt_len = PROMPT, .max_tokens = TOKENS};
        assert_int_equal(engine_add(e, &er, err, sizeof(err)), 0);
    }
    double now = 0, d = engine_step_plan(e); /* the prefill (one step for 4 x 32 tokens) */
    now += d;
    engine_step_finish(e, now, NULL, NULL);
    d = engine_step_plan(e); /* the first decode step */
    assert_true(d > 0);
    engine_free(e);
    return d;
}

/* ---- a streaming client per request ---------------------------------------------------- */

struct stream {
    char body[512];
    double first, last; /* monotonic seconds of the first and last "data:" chunk */
    int events;
    char *url;
};

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct stream *s = userp;
    size_t len = size * n;
    double now = (double)clock_now() / 1e9;
    for (size_t i = 0; i + 5 <= len; i++)
        if (memcmp(p + i, "data:", 5) == 0 &&
            !(i + 12 <= len && !memcmp(p + i, "data: [DONE]", 12))) {
            if (!s->events++)
                s->first = now;
            s->last = now;
        }
    return len;
}

/* Sends BATCH streams to each port at once; returns the mean inter-token gap over every
 * stream of port i in itl[i] (seconds). */
static void load(const int *ports, size_t n_ports, double *itl)
{
    CURLM *m = curl_multi_init();
    struct stream s[4][BATCH];
    CURL *e[4][BATCH];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    memset(s, 0, sizeof(s));
    for (size_t p = 0; p < n_ports; p++)
        for (int r = 0; r < BATCH; r++) {
            char url[96];
            snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/completions", ports[p]);
            int w = snprintf(s[p][r].body, sizeof(s[p][r].body), "{\"prompt\":[");
            for (int i = 0; i < PROMPT; i++)
                w += snprintf(s[p][r].body + w, sizeof(s[p][r].body) - (size_t)w, "%s%d",
                              i ? "," : "", 1000 + r * PROMPT + i);
            snprintf(s[p][r].body + w, sizeof(s[p][r].body) - (size_t)w,
                     "],\"max_tokens\":%d,\"ignore_eos\":true,\"stream\":true}", TOKENS);
            e[p][r] = curl_easy_init();
            curl_easy_setopt(e[p][r], CURLOPT_URL, url);
            curl_easy_setopt(e[p][r], CURLOPT_POSTFIELDS, s[p][r].body);
            curl_easy_setopt(e[p][r], CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(e[p][r], CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(e[p][r], CURLOPT_WRITEDATA, &s[p][r]);
            curl_easy_setopt(e[p][r], CURLOPT_TIMEOUT, 60L);
            curl_easy_setopt(e[p][r], CURLOPT_NOSIGNAL, 1L);
            curl_multi_add_handle(m, e[p][r]);
        }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 5, NULL);
    }
    for (size_t p = 0; p < n_ports; p++) {
        itl[p] = 0;
        for (int r = 0; r < BATCH; r++) {
            assert_int_equal(s[p][r].events, TOKENS);
            itl[p] += (s[p][r].last - s[p][r].first) / (TOKENS - 1) / BATCH;
            curl_multi_remove_handle(m, e[p][r]);
            curl_easy_cleanup(e[p][r]);
        }
    }
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
}

/* Two 0.45 partitions of one L40S: alone, an instance decodes one token per model step d;
 * with the other equally busy, its steps alternate with the other's, one token per 2d. */
static void partitions_halve_decode_rate(void **state)
{
    (void)state;
    double d = model_decode_step();
    struct sim_gpu *gpu = sim_gpu_new();
    struct sim_server *a = NULL, *b = NULL;
    struct sim_options oa, ob;
    char err[256];
    options(&oa, gpu);
    options(&ob, gpu);
    assert_int_equal(sim_server_start(&a, &oa, err, sizeof(err)), 0);
    assert_int_equal(sim_server_start(&b, &ob, err, sizeof(err)), 0);
    int ports[2] = {sim_server_port(a), sim_server_port(b)};

    double alone[1], together[2];
    load(ports, 1, alone);
    struct sim_gpu_stats before;
    sim_gpu_stats(gpu, &before);
    assert_int_equal(before.waited_steps, 0); /* b was idle: nothing waited */
    load(ports, 2, together);
    struct sim_gpu_stats after;
    sim_gpu_stats(gpu, &after);

    fprintf(stderr, "model decode step %.1f ms; ITL alone %.1f ms, together %.1f / %.1f ms\n",
            d * 1e3, alone[0] * 1e3, together[0] * 1e3, together[1] * 1e3);
    /* Alone: the model's step (timers add a little). */
    assert_true(alone[0] > 0.9 * d && alone[0] < 1.2 * d);
    /* Together: each token waits for the other instance's step, 2d by share.c. */
    for (int i = 0; i < 2; i++) {
        assert_true(together[i] > 0.85 * 2 * d && together[i] < 1.2 * 2 * d);
        assert_true(together[i] / alone[0] > 1.7 && together[i] / alone[0] < 2.3);
    }
    /* Most steps of the together run waited for the other instance's step. */
    assert_true(after.waited_steps - before.waited_steps >= TOKENS);
    assert_true(after.wait_s > before.wait_s);
    sim_server_stop(a);
    sim_server_stop(b);
    sim_gpu_free(gpu);
}

/* Two MIG slices share nothing: each decodes as fast with the other busy as alone. */
static void mig_slices_isolated(void **state)
{
    (void)state;
    struct sim_options o[2];
    struct sim_server *s[2];
    char err[256];
    bool mig = false;
    for (int i = 0; i < 2; i++) {
        options(&o[i], NULL);
        o[i].engine.gpu = "rtx-pro-6000:mig-2g.48gb";
        o[i].engine.gpu_memory_utilization = 0.9;
    }
    assert_int_equal(sim_instances_check(o, 2, &mig, err, sizeof(err)), 0);
    assert_true(mig);
    for (int i = 0; i < 2; i++)
        assert_int_equal(sim_server_start(&s[i], &o[i], err, sizeof(err)), 0);
    int ports[2] = {sim_server_port(s[0]), sim_server_port(s[1])};
    double alone[1], together[2];
    load(ports, 1, alone);
    load(ports, 2, together);
    fprintf(stderr, "MIG 2g.48gb: ITL alone %.1f ms, together %.1f / %.1f ms\n", alone[0] * 1e3,
            together[0] * 1e3, together[1] * 1e3);
    for (int i = 0; i < 2; i++)
        assert_true(together[i] / alone[0] > 0.85 && together[i] / alone[0] < 1.2);
    for (int i = 0; i < 2; i++)
        sim_server_stop(s[i]);
}

/* Layouts the GPU or vLLM would refuse are refused before any server starts. */
static void layout_checks(void **state)
{
    (void)state;
    static const struct {
        const char *gpu[3];
        double util[3];
        int rc;
        const char *msg;
    } cases[] = {
        {{"l40s", "l40s"}, {0.45, 0.45}, 0, ""},
        {{"l40s", "l40s"}, {0.6, 0.5}, -ENOSPC, "add up to 1.10"},
        {{NULL, "l40s"}, {0.45, 0.45}, -EINVAL, "one sim process"}, /* NULL: rtx-pro-6000 */
        {{"h100", "l40s"}, {0.4, 0.4}, -EINVAL, "one sim process simulates one GPU"},
        {{"rtx-pro-6000", "rtx-pro-6000:mig-2g.48gb"}, {0.4, 0.9}, -EINVAL, "mixes"},
        {{"rtx-pro-6000:mig-2g.48gb", "rtx-pro-6000:mig-2g.48gb", "rtx-pro-6000:mig-1g.24gb"},
         {0.9, 0.9, 0.9},
         -ENOSPC,
         "1.25 of the GPU's memory"},
        {{"h100:mig-3g.40gb", "h100:mig-3g.40gb", "h100:mig-3g.40gb"},
         {0.9, 0.9, 0.9},
         -ENOSPC,
         "at most 2"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct sim_options o[3];
        size_t n = cases[c].gpu[2] ? 3 : 2;
        for (size_t i = 0; i < n; i++) {
            options(&o[i], NULL);
            o[i].engine.gpu = cases[c].gpu[i];
            o[i].engine.gpu_memory_utilization = cases[c].util[i];
        }
        char err[512] = "";
        bool mig;
        int rc = sim_instances_check(o, n, &mig, err, sizeof(err));
        if (rc != cases[c].rc || !strstr(err, cases[c].msg))
            fail_msg("case %zu: rc %d (want %d), err '%s'", c, rc, cases[c].rc, err);
    }
}

/* The HTTP status of a llama.cpp-shaped POST /tokenize ({"content": ...}) on a local port. */
static long tokenize_content_status(int port)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tokenize", port);
    CURL *c = curl_easy_init();
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"content\": \"hello world\"}");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
    long code = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    fclose(null);
    return code;
}

/* `testbench sim --instance ... --instance ...` serves both ports and stops on SIGTERM; bad
 * instance keys are usage errors. */
static void cli_instances(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(TB_BINARY, TB_BINARY, "sim", "--quiet", "--gpu", GPU, "--max-model-len", "2048",
              "--port", "18931", "--instance", "gpu-memory-utilization=0.45", "--instance",
              "gpu-memory-utilization=0.45,port=18937,served-model-name=second,tokenize-llamacpp",
              (char *)NULL);
        _exit(127);
    }
    static const int ports[2] = {18931, 18937};
    for (int p = 0; p < 2; p++) {
        char url[96];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/models", ports[p]);
        CURLcode rc = CURLE_COULDNT_CONNECT;
        for (int tries = 0; tries < 100 && rc != CURLE_OK; tries++) {
            CURL *c = curl_easy_init();
            FILE *null = fopen("/dev/null", "w");
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
            rc = curl_easy_perform(c);
            curl_easy_cleanup(c);
            fclose(null);
            if (rc != CURLE_OK)
                usleep(50000);
        }
        assert_int_equal(rc, CURLE_OK);
    }
    /* A switch given to one instance is that instance's alone: only the second answers
     * llama.cpp's /tokenize shape. */
    assert_int_equal(tokenize_content_status(18937), 200);
    assert_int_equal(tokenize_content_status(18931), 400);
    kill(pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        execl(TB_BINARY, TB_BINARY, "sim", "--instance", "lora-modules=a=b", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(WEXITSTATUS(st), 2);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_checks),
        cmocka_unit_test(partitions_halve_decode_rate),
        cmocka_unit_test(mig_slices_isolated),
        cmocka_unit_test(cli_instances),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
