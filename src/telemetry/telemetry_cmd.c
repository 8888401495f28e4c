/*
 * telemetry_cmd.c - `testbench telemetry`: the sampler alone, printing each sample as it
 * lands, one line per GPU like `nvidia-smi dmon` (or one JSON object per sample with --json).
 * Runs until --duration or SIGINT/SIGTERM; missing NVML or /metrics is said once on stderr
 * and the other columns still print.
 */
#include "telemetry/telemetry.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"
#include "core/log.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct cmd_opts {
    double interval_s;
    double duration_s; /* 0 = until interrupted */
    bool json;
    bool gpu;
    bool host;
    const char *metrics_url;
};

static const char usage[] =
    "usage: testbench telemetry [--interval S] [--duration S] [--json] [--metrics-url URL]\n"
    "                           [--no-gpu] [--no-host]\n";

static bool parse_seconds(const char *s, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e != '\0' || errno == ERANGE || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct cmd_opts *o)
{
    *o = (struct cmd_opts){.interval_s = 1.0, .gpu = true, .host = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--no-gpu") == 0) {
            o->gpu = false;
        } else if (strcmp(a, "--no-host") == 0) {
            o->host = false;
        } else if (strcmp(a, "--interval") == 0 || strcmp(a, "--duration") == 0) {
            double *dst = a[2] == 'i' ? &o->interval_s : &o->duration_s;
            if (!val || !parse_seconds(val, dst)) {
                fprintf(stderr, "testbench telemetry: %s needs seconds (a number >= 0)\n", a);
                return TB_EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--metrics-url") == 0) {
            if (!val) {
                fprintf(stderr, "testbench telemetry: --metrics-url needs a URL\n");
                return TB_EXIT_USAGE;
            }
            o->metrics_url = val;
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -1;
        } else {
            fprintf(stderr, "testbench telemetry: unknown option '%s'\n%s", a, usage);
            return TB_EXIT_USAGE;
        }
    }
    if (o->interval_s < 0.05 || o->interval_s > TELEMETRY_INTERVAL_MAX_S) {
        fprintf(stderr, "testbench telemetry: --interval must be between 0.05 and %.0f s\n",
                TELEMETRY_INTERVAL_MAX_S);
        return TB_EXIT_USAGE;
    }
    return 0;
}

/* A JSON number formatted into buf, or "-" for null/absent. */
static const char *col(json_t *v, int prec, char *buf, size_t len)
{
    if (!json_is_number(v))
        return "-";
    snprintf(buf, len, "%.*f", prec, json_number_value(v));
    return buf;
}

static void print_header(const struct cmd_opts *o)
{
    printf("#%9s %3s %7s %12s %4s %6s %6s %9s %4s %-32s", "t_s", "gpu", "pwr_W", "energy_J", "C",
           "sm_MHz", "mem_MHz", "mem_MiB", "util", "throttle");
    if (o->metrics_url)
        printf(" %6s %4s %4s", "kv%", "run", "wait");
    if (o->host)
        printf(" %5s %9s", "cpu%", "host_MiB");
    printf("\n");
}

static void print_tail(const struct cmd_opts *o, json_t *s)
{
    char b[5][32];
    if (o->metrics_url) {
        json_t *sv = json_object_get(s, "server");
        printf(" %6s %4s %4s", col(json_object_get(sv, "kv_cache_usage_pct"), 1, b[0], 32),
               col(json_object_get(sv, "num_requests_running"), 0, b[1], 32),
               col(json_object_get(sv, "num_requests_waiting"), 0, b[2], 32));
    }
    if (o->host) {
        json_t *h = json_object_get(s, "host");
        printf(" %5s %9s", col(json_object_get(h, "cpu_util_pct"), 1, b[3], 32),
               col(json_object_get(h, "mem_used_mib"), 0, b[4], 32));
    }
    printf("\n");
}

static void print_text(const struct cmd_opts *o, json_t *s)
{
    double t = json_number_value(json_object_get(s, "t"));
    json_t *gpus = json_object_get(s, "gpus");
    size_t n = json_array_size(gpus);
    char b[9][32];
    if (n == 0) {
        printf("%10.2f %3s %7s %12s %4s %6s %6s %9s %4s %-32s", t, "-", "-", "-", "-", "-", "-",
               "-", "-", "-");
        print_tail(o, s);
    }
    for (size_t g = 0; g < n; g++) {
        json_t *x = json_array_get(gpus, g);
        char reasons[128] = "-";
        json_t *r = json_object_get(x, "throttle_reasons");
        if (json_array_size(r)) {
            size_t used = 0;
            for (size_t k = 0; k < json_array_size(r) && used < sizeof(reasons); k++) {
                int w = snprintf(reasons + used, sizeof(reasons) - used, "%s%s", k ? "," : "",
                                 json_string_value(json_array_get(r, k)));
                if (w < 0)
                    break;
                used += (size_t)w;
            }
        } else if (json_is_array(r)) {
            snprintf(reasons, sizeof(reasons), "none");
        }
        printf("%10.2f %3d %7s %12s %4s %6s %6s %9s %4s %-32s", t,
               (int)json_integer_value(json_object_get(x, "index")),
               col(json_object_get(x, "power_w"), 1, b[0], 32),
               col(json_object_get(x, "energy_j"), 1, b[1], 32),
               col(json_object_get(x, "temperature_c"), 0, b[2], 32),
               col(json_object_get(x, "sm_clock_mhz"), 0, b[3], 32),
               col(json_object_get(x, "memory_clock_mhz"), 0, b[4], 32),
               col(json_object_get(x, "memory_used_mib"), 0, b[5], 32),
               col(json_object_get(x, "utilization_gpu_pct"), 0, b[6], 32), reasons);
        print_tail(o, s);
    }
}

static size_t print_new(struct telemetry *t, const struct cmd_opts *o, size_t from)
{
    size_t n = telemetry_n_samples(t);
    for (size_t i = from; i < n; i++) {
        json_t *s = telemetry_sample_json(t, i);
        if (!s)
            break;
        if (o->json) {
            char *line = json_dumps(s, JSON_COMPACT | JSON_REAL_PRECISION(10));
            if (line)
                printf("%s\n", line);
            free(line);
        } else {
            print_text(o, s);
        }
        json_decref(s);
    }
    fflush(stdout);
    return n;
}

int telemetry_main(int argc, char **argv)
{
    struct cmd_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? TB_EXIT_OK : rc;

    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;

    mono_ns start = clock_now();
    struct telemetry_options to = {
        .interval_s = o.interval_s,
        .gpu = o.gpu,
        .metrics_url = o.metrics_url,
        .host = o.host,
        .t0 = start,
    };
    struct telemetry *t = NULL;
    if (!o.json)
        print_header(&o);
    rc = telemetry_start(&t, &to);
    if (rc) {
        log_error("telemetry could not start: %s", strerror(-rc));
        rc = TB_EXIT_RUNTIME;
        goto out;
    }
    mono_ns end = o.duration_s > 0 ? start + s_to_ns(o.duration_s) : 0;
    size_t shown = 0;
    while (!interrupted) {
        shown = print_new(t, &o, shown);
        mono_ns now = clock_now();
        if (end && now >= end)
            break;
        mono_ns nap = 50 * NS_PER_MS;
        if (end && end - now < nap)
            nap = end - now;
        clock_sleep_ns(nap); /* short naps: a signal is seen within 50 ms */
    }
    telemetry_stop(t);
    print_new(t, &o, shown);
    rc = TB_EXIT_OK;
out:
    telemetry_free(t);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
