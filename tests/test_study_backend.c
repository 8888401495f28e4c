/*
 * test_study_backend.c - the study's server backends through their real command lines: the
 * simulator (TB_BINARY sim), shell scripts as servers for the command backend, a stand-in
 * `docker` first on PATH that records its calls and runs the simulator, and the log reader on
 * vLLM's own lines. After every start that failed and every stop, the server's pid and process
 * group are gone and this process has no child left.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "engine/engine.h"
#include "study/backend.h"
#include "tb_proc.h"

#define MODEL_8B "meta-llama/Llama-3.1-8B-Instruct"
#define GENEROUS_S 120.0 /* readiness deadline where timing is not the point (loaded CI box) */

static char tmp[64];

/* ---- helpers --------------------------------------------------------------------------- */

static char *path_in_tmp(const char *name)
{
    return xasprintf("%s/%s", tmp, name);
}

/* Writes text to tmp/name with the given mode; returns the path (caller frees). */
static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = path_in_tmp(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* The whole file (caller frees); "" when it does not exist. */
static char *read_file(const char *path)
{
    struct buf b;
    buf_init(&b, 16 * 1024 * 1024);
    assert_int_equal(buf_append(&b, "", 0), 0);
    FILE *f = fopen(path, "r");
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    if (f)
        fclose(f);
    return b.data;
}

static long read_pid(const char *path)
{
    char *text = read_file(path);
    long pid = strtol(text, NULL, 10);
    free(text);
    return pid;
}

/* The server, its group and any unreaped child of ours are gone. */
static void assert_gone(pid_t pid)
{
    assert_true(pid > 0);
    errno = 0;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    errno = 0;
    assert_int_equal(kill(-pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    int st;
    errno = 0;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1); /* no child, running or zombie */
    assert_int_equal(errno, ECHILD);
}

static int port_of(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    assert_non_null(colon);
    return (int)strtol(colon + 1, NULL, 10);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static size_t keep_body(char *p, size_t size, size_t nmemb, void *userp)
{
    return buf_append(userp, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* GET url: the HTTP status (0 when nothing answered); the body into *body (caller frees). */
static long http_get(const char *url, char **body)
{
    struct buf b;
    buf_init(&b, 1024 * 1024);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (body)
        *body = b.data ? b.data : xstrdup("");
    else
        buf_release(&b);
    return status;
}

static struct backend_options sim_options(void)
{
    struct backend_options o = {0};
    o.kind = BACKEND_SIM;
    o.self_exe = TB_BINARY;
    o.sim_gpu = "rtx-pro-6000";
    o.seed = 1;
    o.startup_timeout_s = GENEROUS_S;
    o.stop_grace_s = 10;
    return o;
}

static struct server_setup setup_8b(const char *id, int max_model_len)
{
    struct server_setup s = {0};
    s.id = id;
    s.model = MODEL_8B;
    s.max_model_len = max_model_len;
    s.enable_prefix_caching = -1;
    return s;
}

/* ---- sim ------------------------------------------------------------------------------- */

static void sim_starts_serves_and_stops(void **state)
{
    (void)state;
    struct backend_options o = sim_options();
    struct server_setup s = setup_8b("s01-llama-3.1-8b-bf16-8k", 8192);
    char *log = path_in_tmp("s01.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    if (res.status != START_OK)
        fprintf(stderr, "reason: %s\nlog:\n%s\n", res.reason, res.log_tail);
    assert_int_equal(res.status, START_OK);
    assert_non_null(h);
    assert_non_null(strstr(res.endpoint, "http://127.0.0.1:"));
    pid_t pid = server_handle_pid(h);
    assert_true(pid > 0);
    assert_int_equal(getpgid(pid), pid); /* its own process group */

    char *url = xasprintf("%s/v1/models", res.endpoint);
    char *body = NULL;
    assert_int_equal(http_get(url, &body), 200);
    assert_non_null(strstr(body, MODEL_8B));
    free(body);
    free(url);

    /* The log's numbers are the engine's for the same setup. */
    struct engine_config c = {0};
    c.gpu = "rtx-pro-6000";
    c.model = MODEL_8B;
    c.max_model_len = 8192;
    c.enable_prefix_caching = -1;
    struct engine *e = NULL;
    char err[512];
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), 0);
    const struct engine_info *info = engine_info(e);
    assert_true(info->kv_capacity_tokens > 0);
    assert_int_equal(res.facts.kv_capacity_tokens, info->kv_capacity_tokens);
    assert_int_equal(res.facts.max_concurrency_len, 8192);
    assert_true(fabs(res.facts.max_concurrency - info->max_concurrency) < 0.006);
    engine_free(e);

    /* none: the same server, checked and left alone. */
    struct backend_options none = {0};
    none.kind = BACKEND_NONE;
    char *slash = xasprintf("%s/", res.endpoint);
    none.endpoint = slash;
    none.startup_timeout_s = GENEROUS_S;
    struct server_handle *nh = NULL;
    struct backend_start_result nres;
    assert_int_equal(backend_start(&nh, &none, &s, NULL, NULL, &nres), 0);
    assert_int_equal(nres.status, START_OK);
    assert_string_equal(nres.endpoint, res.endpoint); /* no trailing '/' */
    assert_int_equal(server_handle_pid(nh), -1);
    backend_stop(nh);
    assert_int_equal(kill(pid, 0), 0);
    assert_true(port_open(port_of(res.endpoint)));
    free(slash);

    backend_stop(h);
    assert_gone(pid);
    assert_false(port_open(port_of(res.endpoint)));

    char *text = read_file(log);
    assert_non_null(strstr(text, "+ " TB_BINARY " sim --host 127.0.0.1 --port "));
    assert_non_null(strstr(text, "--model " MODEL_8B " --gpu rtx-pro-6000 --max-model-len 8192"));
    assert_non_null(strstr(text, "GPU KV cache size:"));
    assert_non_null(strstr(text, "+ ready after "));
    assert_non_null(strstr(text, "+ stopped: "));
    assert_true(res.ready_s > 0 && res.ready_s < GENEROUS_S);
    free(text);
    free(log);
}

/* Setups the simulated GPU refuses, as vLLM would. */
static void sim_refusals_are_classified(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        const char *model;
        int max_model_len;
        double util;
        enum start_status want;
        const char *reason;
    } cases[] = {
        {"s02-llama-70b-bf16", "meta-llama/Llama-3.1-70B-Instruct", 8192, 0, START_OOM,
         "CUDA out of memory"},
        {"s03-llama-8b-128k-u25", MODEL_8B, 131072, 0.25, START_KV_TOO_SMALL,
         "larger than the maximum number of tokens that can be stored in KV cache"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct backend_options o = sim_options();
        struct server_setup s = setup_8b(cases[i].id, cases[i].max_model_len);
        s.model = cases[i].model;
        s.gpu_memory_utilization = cases[i].util;
        char *log = path_in_tmp("refused.log");
        struct server_handle *h = NULL;
        struct backend_start_result res;
        assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
        assert_null(h);
        assert_int_equal(res.status, cases[i].want);
        assert_non_null(strstr(res.reason, cases[i].reason));
        assert_null(strchr(res.reason, '\n'));
        assert_non_null(strstr(res.log_tail, cases[i].reason));
        int st;
        errno = 0;
        assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        free(log);
    }
}

/* ---- command --------------------------------------------------------------------------- */

static const char kv_line[] =
    "(EngineCore_DP0 pid=231) ERROR 11-30 06:12:01 [core.py:708] ValueError: To serve at least "
    "one request with the models's max seq len (131072), (16.00 GiB KV cache is needed, which is "
    "larger than the available KV cache memory (4.41 GiB). Based on the available memory, the "
    "estimated maximum model length is 36096. Try increasing `gpu_memory_utilization` or "
    "decreasing `max_model_len` when initializing the engine.";
static const char oom_line[] =
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total "
    "capacity of 94.97 GiB of which 1.02 GiB is free.";

/* Shell-script servers that fail in each way a server fails. */
static void command_failures_are_classified(void **state)
{
    (void)state;
    char script_kv[1024], script_oom[512];
    /* A quoted here-document: the lines hold quotes and backquotes. */
    snprintf(script_kv, sizeof(script_kv),
             "#!/bin/sh\necho $$ > \"$1\"\necho 'INFO loading weights'\ncat >&2 <<'EOF'\n%s\nEOF\n"
             "exit 1\n",
             kv_line);
    snprintf(script_oom, sizeof(script_oom),
             "#!/bin/sh\necho $$ > \"$1\"\necho 'Traceback (most recent call last):' >&2\n"
             "cat >&2 <<'EOF'\n%s\nEOF\nexit 1\n",
             oom_line);
    static const char script_crash[] = "#!/bin/sh\necho $$ > \"$1\"\necho 'starting fake server'\n"
                                       "echo 'fatal: config is broken' >&2\nexit 3\n";
    static const char script_hang[] = "#!/bin/sh\necho $$ > \"$1\"\nexec sleep 600\n";
    /* An ignored signal stays ignored across exec: sleep itself ignores SIGTERM. */
    static const char script_stubborn[] =
        "#!/bin/sh\necho $$ > \"$1\"\ntrap '' TERM\nexec sleep 600\n";
    const struct {
        const char *name;
        const char *script;
        double timeout_s;
        enum start_status want;
        const char *reason;
        const char *tail;
        double min_s, max_s; /* how long the start may take */
    } cases[] = {
        {"crash", script_crash, GENEROUS_S, START_CRASHED, "exited with status 3",
         "starting fake server", 0, 30},
        {"kv", script_kv, GENEROUS_S, START_KV_TOO_SMALL,
         "larger than the available KV cache memory", "INFO loading weights", 0, 30},
        {"oom", script_oom, GENEROUS_S, START_OOM, "torch.OutOfMemoryError: CUDA out of memory",
         "Traceback", 0, 30},
        {"hang", script_hang, 1.5, START_TIMEOUT, "not ready after 1.5 s", "+ timeout", 1.5, 30},
        {"stubborn", script_stubborn, 1.5, START_TIMEOUT, "not ready after 1.5 s",
         "SIGKILL after 0.5 s grace", 2.0, 30},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s.sh", cases[i].name);
        char *script = write_file(name, cases[i].script, 0755);
        snprintf(name, sizeof(name), "%s.pid", cases[i].name);
        char *pidfile = path_in_tmp(name);
        char *tmpl = xasprintf("%s %s --port {port} --model {model}", script, pidfile);
        struct backend_options o = {0};
        o.kind = BACKEND_COMMAND;
        o.command_template = tmpl;
        o.startup_timeout_s = cases[i].timeout_s;
        o.stop_grace_s = 0.5;
        struct server_setup s = setup_8b("s04-script", 0);
        char *log = path_in_tmp("command.log");
        struct server_handle *h = NULL;
        struct backend_start_result res;
        mono_ns t0 = clock_now();
        assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
        double took = ns_diff_s(t0, clock_now());
        if (res.status != cases[i].want)
            fprintf(stderr, "%s: %s: %s\n", cases[i].name, start_status_name(res.status),
                    res.reason);
        assert_null(h);
        assert_int_equal(res.status, cases[i].want);
        assert_non_null(strstr(res.reason, cases[i].reason));
        assert_non_null(strstr(res.log_tail, cases[i].tail));
        assert_true(took >= cases[i].min_s && took < cases[i].max_s);
        assert_true(res.ready_s > 0 && res.ready_s <= took);
        assert_gone((pid_t)read_pid(pidfile));
        free(log);
        free(tmpl);
        free(pidfile);
        free(script);
    }
}

/* The simulator started through a command template. */
static void command_template_runs_sim(void **state)
{
    (void)state;
    struct backend_options o = {0};
    o.kind = BACKEND_COMMAND;
    o.command_template = TB_BINARY " sim {model} --host {host} --port {port} "
                                   "{quantization_flag} {kv_cache_dtype_flag} {max_model_len_flag} "
                                   "{enable_prefix_caching_flag} --seed {seed}";
    o.startup_timeout_s = GENEROUS_S;
    o.stop_grace_s = 10;
    struct server_setup s = setup_8b("s05-llama-8b-fp8-kvfp8-16k", 16384);
    s.quantization = "fp8";
    s.kv_cache_dtype = "fp8";
    s.enable_prefix_caching = 0;
    char *log = path_in_tmp("s05.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    if (res.status != START_OK)
        fprintf(stderr, "reason: %s\nlog:\n%s\n", res.reason, res.log_tail);
    assert_int_equal(res.status, START_OK);
    assert_true(res.facts.kv_capacity_tokens > 0);
    assert_int_equal(res.facts.max_concurrency_len, 16384);
    pid_t pid = server_handle_pid(h);
    char *text = read_file(log);
    assert_non_null(strstr(text, "--quantization fp8 --kv-cache-dtype fp8 --max-model-len 16384 "
                                 "--no-enable-prefix-caching --seed 0\n"));
    assert_non_null(strstr(text, "weights fp8, KV fp8"));
    free(text);
    backend_stop(h);
    assert_gone(pid);
    free(log);
}

/* `vllm serve MODEL`'s form: the simulator takes the model first, and refuses two models. */
static void sim_refuses_two_models(void **state)
{
    (void)state;
    struct backend_options o = {0};
    o.kind = BACKEND_COMMAND;
    o.command_template = TB_BINARY " sim {model} --model Qwen/Qwen2.5-7B-Instruct --port {port}";
    o.startup_timeout_s = GENEROUS_S;
    struct server_setup s = setup_8b("s11-two-models", 0);
    char *log = path_in_tmp("s11.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    assert_null(h);
    assert_int_equal(res.status, START_CRASHED);
    assert_non_null(strstr(res.reason, "exited with status 2"));
    assert_non_null(strstr(res.log_tail, "model given twice: '" MODEL_8B "'"));
    free(log);
}

static void expect_argv(char **argv, const char *const *want)
{
    size_t i = 0;
    for (; want[i]; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
}

static void argv_sim_and_template(void **state)
{
    (void)state;
    static const char *const extra[] = {"--max-num-batched-tokens", "4096"};
    struct server_setup s = setup_8b("s06", 32768);
    s.quantization = "fp8";
    s.kv_cache_dtype = "fp8";
    s.gpu_memory_utilization = 0.9;
    s.max_num_seqs = 64;
    s.tensor_parallel_size = 1; /* 1 = left out */
    s.enable_prefix_caching = 1;
    s.extra_args = extra;
    s.n_extra_args = 2;
    struct backend_options o = sim_options();
    o.seed = 7;
    o.sim_catalog = "/cat";
    char **argv = NULL;
    assert_int_equal(backend_argv(&o, &s, 8123, &argv), 0);
    static const char *const want_sim[] = {TB_BINARY,
                                           "sim",
                                           "--host",
                                           "127.0.0.1",
                                           "--port",
                                           "8123",
                                           "--model",
                                           MODEL_8B,
                                           "--gpu",
                                           "rtx-pro-6000",
                                           "--quantization",
                                           "fp8",
                                           "--kv-cache-dtype",
                                           "fp8",
                                           "--max-model-len",
                                           "32768",
                                           "--gpu-memory-utilization",
                                           "0.9",
                                           "--max-num-seqs",
                                           "64",
                                           "--enable-prefix-caching",
                                           "--seed",
                                           "7",
                                           "--catalog",
                                           "/cat",
                                           "--max-num-batched-tokens",
                                           "4096",
                                           NULL};
    expect_argv(argv, want_sim);
    backend_argv_free(argv);

    /* Quotes group, placeholders work inside them, flags vanish when unset, JSON passes. */
    s.quantization = "none";
    s.kv_cache_dtype = "auto";
    s.enable_prefix_caching = 0;
    o.kind = BACKEND_COMMAND;
    o.command_template = "vllm serve '{model}' --served-model-name \"x {id}\" {quantization_flag} "
                         "{kv_cache_dtype_flag} {max_model_len_flag} {enable_prefix_caching_flag} "
                         "--kv-cache-dtype={kv_cache_dtype} -tp {tensor_parallel_size} "
                         "--cfg '{\"a\": 1}' a\\ b \"q\\\"\" '' {extra_args} --port={port}";
    assert_int_equal(backend_argv(&o, &s, 9000, &argv), 0);
    static const char *const want_cmd[] = {"vllm",
                                           "serve",
                                           MODEL_8B,
                                           "--served-model-name",
                                           "x s06",
                                           "--max-model-len",
                                           "32768",
                                           "--no-enable-prefix-caching",
                                           "--kv-cache-dtype=auto",
                                           "-tp",
                                           "1",
                                           "--cfg",
                                           "{\"a\": 1}",
                                           "a b",
                                           "q\"",
                                           "",
                                           "--max-num-batched-tokens",
                                           "4096",
                                           "--port=9000",
                                           NULL};
    expect_argv(argv, want_cmd);
    backend_argv_free(argv);

    /* Without {extra_args} they go at the end. */
    o.command_template = "serve {model}";
    assert_int_equal(backend_argv(&o, &s, 9000, &argv), 0);
    static const char *const want_end[] = {"serve", MODEL_8B, "--max-num-batched-tokens", "4096",
                                           NULL};
    expect_argv(argv, want_end);
    backend_argv_free(argv);

    /* Errors: an unknown placeholder, an unset value, an open quote. The reason names it. */
    static const struct {
        const char *tmpl;
        const char *reason;
    } bad[] = {
        {"serve {model} --x {bogus}", "{bogus}"},
        {"serve --quantization {quantization}", "{quantization} is unset"},
        {"serve 'open", "unterminated"},
        {"   ", "empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.command_template = bad[i].tmpl;
        argv = NULL;
        assert_int_equal(backend_argv(&o, &s, 9000, &argv), -EINVAL);
        assert_null(argv);
        struct server_handle *h = NULL;
        struct backend_start_result res;
        char *log = path_in_tmp("bad.log");
        assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), -EINVAL);
        assert_null(h);
        assert_int_equal(res.status, START_ERROR);
        assert_non_null(strstr(res.reason, bad[i].reason));
        free(log);
    }

    /* A program that is not there is an error, not a crash. */
    o.command_template = "/nonexistent/vllm serve {model}";
    struct server_handle *h = NULL;
    struct backend_start_result res;
    char *log = path_in_tmp("missing.log");
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    assert_null(h);
    assert_int_equal(res.status, START_ERROR);
    assert_non_null(strstr(res.reason, "/nonexistent/vllm: not found"));
    free(log);
}

static void argv_docker(void **state)
{
    (void)state;
    static const char *const dargs[] = {"--shm-size", "16g"};
    char *old_home = xstrdup(getenv("HOME"));
    setenv("HOME", "/home/u", 1);
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    struct server_setup s = setup_8b("s07-llama-8b-tp2", 0);
    s.tensor_parallel_size = 2;
    s.enable_prefix_caching = 0;
    struct backend_options o = {0};
    o.kind = BACKEND_DOCKER;
    o.docker_gpus = "device=0";
    o.hf_cache = "~/hf";
    o.docker_network = "benchnet";
    o.docker_args = dargs;
    o.n_docker_args = 2;
    char **argv = NULL;
    assert_int_equal(backend_argv(&o, &s, 0, &argv), 0);
    static const char *const want[] = {"docker",
                                       "run",
                                       "--rm",
                                       "--name",
                                       "testbench-s07-llama-8b-tp2",
                                       "--ipc=host",
                                       "--gpus",
                                       "device=0",
                                       "-v",
                                       "/home/u/hf:/root/.cache/huggingface",
                                       "--network",
                                       "benchnet",
                                       "--shm-size",
                                       "16g",
                                       "vllm/vllm-openai:v0.30.0",
                                       MODEL_8B,
                                       "--host",
                                       "0.0.0.0",
                                       "--port",
                                       "8000",
                                       "--tensor-parallel-size",
                                       "2",
                                       "--no-enable-prefix-caching",
                                       NULL};
    expect_argv(argv, want);
    backend_argv_free(argv);

    /* gpus none and the host's network: no --gpus, nothing published, the server on our
     * loopback port (a CPU image, or the stand-in the real-Docker suite runs). */
    o.docker_gpus = "none";
    o.docker_network = "host";
    o.docker_args = NULL;
    o.n_docker_args = 0;
    o.docker_image = "testbench-vllm-sim:local";
    assert_int_equal(backend_argv(&o, &s, 18123, &argv), 0);
    static const char *const want_host[] = {"docker",
                                            "run",
                                            "--rm",
                                            "--name",
                                            "testbench-s07-llama-8b-tp2",
                                            "--ipc=host",
                                            "-v",
                                            "/home/u/hf:/root/.cache/huggingface",
                                            "--network",
                                            "host",
                                            "testbench-vllm-sim:local",
                                            MODEL_8B,
                                            "--host",
                                            "127.0.0.1",
                                            "--port",
                                            "18123",
                                            "--tensor-parallel-size",
                                            "2",
                                            "--no-enable-prefix-caching",
                                            NULL};
    expect_argv(argv, want_host);
    backend_argv_free(argv);

    /* The token goes by name: docker copies its value from our environment, so it is in no
     * argument (nor in `ps`, nor in the log, which prints the argv). */
    setenv("HF_TOKEN", "hf_not_in_argv_7", 1);
    setenv("HUGGING_FACE_HUB_TOKEN", "hf_not_in_argv_7", 1);
    assert_int_equal(backend_argv(&o, &s, 18123, &argv), 0);
    size_t named = 0;
    for (size_t i = 0; argv[i]; i++) {
        assert_null(strstr(argv[i], "hf_not_in_argv_7"));
        if (strcmp(argv[i], "-e") == 0 && argv[i + 1] &&
            (strcmp(argv[i + 1], "HF_TOKEN") == 0 ||
             strcmp(argv[i + 1], "HUGGING_FACE_HUB_TOKEN") == 0))
            named++;
    }
    assert_int_equal(named, 2);
    backend_argv_free(argv);
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");

    /* An id that cannot name a container. */
    s.id = "S07 Bad";
    assert_int_equal(backend_argv(&o, &s, 0, &argv), -EINVAL);
    assert_null(argv);
    setenv("HOME", old_home, 1);
    free(old_home);
}

/* ---- docker ---------------------------------------------------------------------------- */

/* What no Docker daemon without a GPU can show, through a stand-in `docker` first on PATH that
 * records its calls and runs the simulator: the default start asks for the GPUs (`--gpus all`,
 * which NVIDIA's container runtime serves) and publishes vLLM's port on loopback only. The rest
 * of the docker path (names, `docker rm -f` after Ctrl-C and failed starts, the token, host
 * networking, the answer) runs against a real daemon in scripts/docker_test.sh. */
static void docker_default_start_asks_for_gpus(void **state)
{
    (void)state;
    char *bin = path_in_tmp("bin");
    assert_int_equal(mkdir(bin, 0755), 0);
    char *record = path_in_tmp("docker.record");
    char *docker = tb_fake_docker(bin, record, TB_BINARY);
    assert_non_null(docker);
    char *hf = path_in_tmp("hf");
    char *old_path = xstrdup(getenv("PATH"));
    char *path = xasprintf("%s:%s", bin, old_path);
    setenv("PATH", path, 1); /* ahead of any real docker */

    struct backend_options o = {0};
    o.kind = BACKEND_DOCKER;
    o.hf_cache = hf;
    o.startup_timeout_s = GENEROUS_S;
    o.stop_grace_s = 10;
    struct server_setup s = setup_8b("s08-llama-8b-fp8-4k", 4096);
    s.quantization = "fp8";
    char *log = path_in_tmp("s08.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    if (res.status != START_OK)
        fprintf(stderr, "reason: %s\nlog:\n%s\n", res.reason, res.log_tail);
    assert_int_equal(res.status, START_OK);
    assert_true(res.facts.kv_capacity_tokens > 0);
    pid_t pid = server_handle_pid(h);
    char *url = xasprintf("%s/v1/models", res.endpoint);
    assert_int_equal(http_get(url, NULL), 200);
    free(url);
    backend_stop(h);
    assert_gone(pid); /* the simulator the stand-in became */

    char *rec = read_file(record);
    char *rm1 = tb_record_call(rec, 0), *run = tb_record_call(rec, 1),
         *rm2 = tb_record_call(rec, 2);
    assert_null(tb_record_call(rec, 3));
    static const char rm_want[] = "arg rm\narg -f\narg testbench-s08-llama-8b-fp8-4k\n";
    assert_non_null(rm1);
    assert_non_null(rm2);
    assert_int_equal(strncmp(rm1, rm_want, strlen(rm_want)), 0);
    assert_int_equal(strncmp(rm2, rm_want, strlen(rm_want)), 0);
    assert_non_null(run);
    char *publish = xasprintf("arg -p\narg 127.0.0.1:%d:8000\n", port_of(res.endpoint));
    const char *const want[] = {
        "arg run\n",
        "arg --gpus\narg all\n",
        publish,
        "arg vllm/vllm-openai:v0.30.0\narg " MODEL_8B "\narg --host\narg 0.0.0.0\n",
        "arg --quantization\narg fp8\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(run, want[i]))
            fprintf(stderr, "missing in docker run:\n%s\n--- got:\n%s\n", want[i], run);
        assert_non_null(strstr(run, want[i]));
    }
    assert_null(strstr(run, "arg --network\n"));

    setenv("PATH", old_path, 1);
    free(publish);
    free(rm1);
    free(run);
    free(rm2);
    free(rec);
    free(log);
    free(path);
    free(old_path);
    free(hf);
    free(docker);
    free(record);
    free(bin);
}

/* A port something already listens on is refused before anything runs: the readiness check
 * would otherwise find that server and measure it. */
static void busy_port_is_an_error(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char *script = write_file("never.sh", "#!/bin/sh\necho ran > \"$1\"\nexec sleep 600\n", 0755);
    char *marker = path_in_tmp("never.ran");
    char *tmpl = xasprintf("%s %s", script, marker);
    struct backend_options o = {0};
    o.kind = BACKEND_COMMAND;
    o.command_template = tmpl;
    o.port = ntohs(a.sin_port);
    o.startup_timeout_s = GENEROUS_S;
    struct server_setup s = setup_8b("s10", 0);
    char *log = path_in_tmp("s10.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    assert_int_equal(backend_start(&h, &o, &s, log, NULL, &res), 0);
    assert_null(h);
    assert_int_equal(res.status, START_ERROR);
    assert_non_null(strstr(res.reason, "is in use"));
    assert_int_equal(access(marker, F_OK), -1); /* the server never ran */
    char *text = read_file(log);
    assert_non_null(strstr(text, "+ error: port "));
    free(text);
    close(fd);
    free(log);
    free(tmpl);
    free(marker);
    free(script);
}

/* ---- the stop flag --------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void stop_flag_interrupts_the_wait(void **state)
{
    (void)state;
    char *script = write_file("wait.sh", "#!/bin/sh\necho $$ > \"$1\"\nexec sleep 600\n", 0755);
    char *pidfile = path_in_tmp("wait.pid");
    char *tmpl = xasprintf("%s %s", script, pidfile);
    struct backend_options o = {0};
    o.kind = BACKEND_COMMAND;
    o.command_template = tmpl;
    o.startup_timeout_s = GENEROUS_S;
    o.stop_grace_s = 5;
    struct server_setup s = setup_8b("s09", 0);
    /* As the study's SIGINT handler would: a signal sets the flag mid-wait. */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    stop_flag = 0;
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 600000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    char *log = path_in_tmp("s09.log");
    struct server_handle *h = NULL;
    struct backend_start_result res;
    mono_ns t0 = clock_now();
    assert_int_equal(backend_start(&h, &o, &s, log, &stop_flag, &res), 0);
    double took = ns_diff_s(t0, clock_now());
    assert_null(h);
    assert_int_equal(res.status, START_INTERRUPTED);
    assert_true(took >= 0.5 && took < 10.0);
    assert_gone((pid_t)read_pid(pidfile));

    /* A flag already set: nothing is started at all. */
    char *marker = path_in_tmp("wait.ran");
    char *never = xasprintf("/bin/sh -c 'echo ran > %s'", marker);
    o.command_template = never;
    assert_int_equal(backend_start(&h, &o, &s, log, &stop_flag, &res), 0);
    assert_null(h);
    assert_int_equal(res.status, START_INTERRUPTED);
    assert_int_equal(access(marker, F_OK), -1);
    free(never);
    free(marker);

    /* The none backend hears it too; and with nothing there it times out. */
    struct backend_options none = {0};
    none.kind = BACKEND_NONE;
    none.endpoint = "http://127.0.0.1:1";
    none.startup_timeout_s = 0.6;
    assert_int_equal(backend_start(&h, &none, &s, NULL, &stop_flag, &res), 0);
    assert_int_equal(res.status, START_INTERRUPTED);
    stop_flag = 0;
    assert_int_equal(backend_start(&h, &none, &s, NULL, &stop_flag, &res), 0);
    assert_null(h);
    assert_int_equal(res.status, START_TIMEOUT);
    assert_non_null(strstr(res.reason, "not ready"));
    free(log);
    free(tmpl);
    free(pidfile);
    free(script);
}

/* ---- the log reader -------------------------------------------------------------------- */

static void log_scan_cases(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *text;
        long kv;
        double conc;
        int conc_len;
        enum start_status failure;
        const char *reason;
    } cases[] = {
        {"vllm v1 start-up",
         "INFO 11-30 06:00:01 [gpu_worker.py:298] Available KV cache memory: 5.91 GiB\n"
         "INFO 11-30 06:00:01 [kv_cache_utils.py:1087] GPU KV cache size: 48,384 tokens\n"
         "INFO 11-30 06:00:01 [kv_cache_utils.py:1091] Maximum concurrency for 32,768 tokens per "
         "request: 1.48x\n"
         "INFO:     Application startup complete.\n",
         48384, 1.48, 32768, START_OK, ""},
        {"simulator, no separators, no final newline",
         "GPU KV cache size: 562624 tokens\nMaximum concurrency for 8192 tokens per request: "
         "68.68x",
         562624, 68.68, 8192, START_OK, ""},
        {"big numbers", "GPU KV cache size: 1,234,567 tokens\n", 1234567, NAN, 0, START_OK, ""},
        {"a restarted engine: the last numbers win",
         "GPU KV cache size: 1,000 tokens\nGPU KV cache size: 2,000 tokens\n", 2000, NAN, 0,
         START_OK, ""},
        {"vllm v0 KV too small",
         "INFO loading\n  ValueError: The model's max seq len (131072) is larger than the "
         "maximum number of tokens that can be stored in KV cache (93760). Try increasing "
         "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.  \n"
         "Traceback follows\n",
         -1, NAN, 0, START_KV_TOO_SMALL,
         "ValueError: The model's max seq len (131072) is larger than the maximum number of tokens "
         "that can be stored in KV cache (93760). Try increasing `gpu_memory_utilization` or "
         "decreasing `max_model_len` when initializing the engine."},
        {"vllm v1 KV too small", kv_line, -1, NAN, 0, START_KV_TOO_SMALL, kv_line},
        {"torch OOM", oom_line, -1, NAN, 0, START_OOM, oom_line},
        {"no cache blocks",
         "ValueError: No available memory for the cache blocks. Try increasing "
         "`gpu_memory_utilization` when initializing the engine.\n",
         -1, NAN, 0, START_OOM,
         "ValueError: No available memory for the cache blocks. Try increasing "
         "`gpu_memory_utilization` when initializing the engine."},
        {"case does not matter", "RuntimeError: HIP OUT OF MEMORY\n", -1, NAN, 0, START_OOM,
         "RuntimeError: HIP OUT OF MEMORY"},
        {"the first cause wins",
         "x\r\ntorch.OutOfMemoryError: CUDA out of memory.\r\nlater: is larger than the maximum "
         "number of tokens that can be stored in KV cache (1)\n",
         -1, NAN, 0, START_OOM, "torch.OutOfMemoryError: CUDA out of memory."},
        {"the simulator's refusal",
         "error: sim: CUDA out of memory: meta-llama/Llama-3.1-70B-Instruct (bf16) needs 131.5 GiB "
         "for weights\n",
         -1, NAN, 0, START_OOM,
         "error: sim: CUDA out of memory: meta-llama/Llama-3.1-70B-Instruct (bf16) needs 131.5 GiB "
         "for weights"},
        {"a healthy log",
         "INFO: Started server process [1]\nout-of-memory errors during graph "
         "capture are unlikely\n",
         -1, NAN, 0, START_OK, ""},
        {"malformed numbers", "GPU KV cache size: many tokens\nMaximum concurrency for , tokens\n",
         -1, NAN, 0, START_OK, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_facts f;
        enum start_status failure;
        char reason[512] = "junk";
        server_log_scan(cases[i].text, &f, &failure, reason, sizeof(reason));
        if (failure != cases[i].failure || f.kv_capacity_tokens != cases[i].kv)
            fprintf(stderr, "case '%s'\n", cases[i].name);
        assert_int_equal(f.kv_capacity_tokens, cases[i].kv);
        assert_int_equal(f.max_concurrency_len, cases[i].conc_len);
        if (isnan(cases[i].conc))
            assert_true(isnan(f.max_concurrency));
        else
            assert_true(fabs(f.max_concurrency - cases[i].conc) < 1e-9);
        assert_int_equal(failure, cases[i].failure);
        assert_string_equal(reason, cases[i].reason);
    }
    /* A short reason buffer cuts the line. */
    struct server_facts f;
    enum start_status failure;
    char small[8];
    server_log_scan(oom_line, &f, &failure, small, sizeof(small));
    assert_string_equal(small, "torch.O");
    assert_string_equal(start_status_name(START_KV_TOO_SMALL), "kv_too_small");
    assert_string_equal(start_status_name(START_INTERRUPTED), "interrupted");
}

/* ---- main ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/tb_backend_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmp);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_scan_cases),
        cmocka_unit_test(argv_sim_and_template),
        cmocka_unit_test(argv_docker),
        cmocka_unit_test(sim_starts_serves_and_stops),
        cmocka_unit_test(sim_refusals_are_classified),
        cmocka_unit_test(command_failures_are_classified),
        cmocka_unit_test(command_template_runs_sim),
        cmocka_unit_test(sim_refuses_two_models),
        cmocka_unit_test(docker_default_start_asks_for_gpus),
        cmocka_unit_test(stop_flag_interrupts_the_wait),
        cmocka_unit_test(busy_port_is_an_error),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
