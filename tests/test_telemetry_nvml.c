/*
 * test_telemetry_nvml.c - the sampler with NVML doubles (tests/nvml_double.c) loaded by the
 * real dlopen loader through TESTBENCH_NVML_LIB: exact values in telemetry_json and
 * telemetry_window (energy from the counter, power mean, throttle names, nulls), the
 * trapezoid fallback, unversioned-symbol fallbacks, init failure, zero devices, a missing
 * required symbol, the thread's own timer, and the per-process and per-MIG-device readings.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "telemetry/telemetry.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

static void use_double(const char *path, const char *scenario, const char *gpus)
{
    setenv("TESTBENCH_NVML_LIB", path, 1);
    setenv("NVML_DOUBLE_SCENARIO", scenario, 1);
    setenv("NVML_DOUBLE_GPUS", gpus, 1);
    unsetenv("NVML_DOUBLE_MIG");
    unsetenv("NVML_DOUBLE_UTIL_UNSUPPORTED");
    unsetenv("NVML_DOUBLE_PROCS");
}

/* A sampler whose thread will not tick during the test: samples come from sample_now. */
static struct telemetry *start_quiet(bool host)
{
    struct telemetry_options o = {.interval_s = 60, .gpu = true, .host = host, .t0 = clock_now()};
    struct telemetry *t = NULL;
    assert_int_equal(telemetry_start(&t, &o), 0);
    return t;
}

static json_t *gpu_of(json_t *doc, size_t sample, size_t gpu)
{
    return json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "samples"), sample), "gpus"), gpu);
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void assert_reasons(json_t *gpu, const char *const *want, size_t n)
{
    json_t *r = json_object_get(gpu, "throttle_reasons");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(r, i)), want[i]);
}

static bool has_source(json_t *doc, const char *name)
{
    json_t *s = json_object_get(doc, "sources");
    for (size_t i = 0; i < json_array_size(s); i++)
        if (strcmp(json_string_value(json_array_get(s, i)), name) == 0)
            return true;
    return false;
}

static void ramp_one_gpu(void **state)
{
    (void)state;
    use_double(NVML_DOUBLE_PATH, "ramp", "1");
    mono_ns before = clock_now();
    struct telemetry *t = start_quiet(false); /* call 0 */
    assert_int_equal(telemetry_n_gpus(t), 1);
    telemetry_sample_now(t); /* 1 */
    telemetry_sample_now(t); /* 2 */
    mono_ns mid = clock_now();
    telemetry_sample_now(t); /* 3: sw_power_cap */
    telemetry_sample_now(t); /* 4: sw_power_cap + sw_thermal_slowdown */
    mono_ns after = clock_now();
    telemetry_stop(t);

    json_t *doc = telemetry_json(t);
    NEAR(num(doc, "interval_s"), 60);
    assert_true(has_source(doc, "nvml"));
    assert_false(has_source(doc, "prometheus"));
    assert_false(has_source(doc, "host"));
    assert_int_equal(json_array_size(json_object_get(doc, "samples")), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *g = gpu_of(doc, i, 0);
        assert_int_equal(json_integer_value(json_object_get(g, "index")), 0);
        assert_string_equal(json_string_value(json_object_get(g, "name")), "NVIDIA Double GPU");
        NEAR(num(g, "power_w"), 100.0 + 10.0 * (double)i);
        NEAR(num(g, "energy_j"), 1000.0 + 500.0 * (double)i);
        NEAR(num(g, "temperature_c"), 40.0 + (double)i);
        NEAR(num(g, "memory_used_mib"), 4096);
        NEAR(num(g, "memory_total_mib"), 81920);
        NEAR(num(g, "utilization_gpu_pct"), 50);
        NEAR(num(g, "utilization_memory_pct"), 20);
        NEAR(num(g, "sm_clock_mhz"), 1980);
        NEAR(num(g, "memory_clock_mhz"), 2619);
    }
    static const char *const idle[] = {"gpu_idle"};
    static const char *const cap[] = {"sw_power_cap"};
    static const char *const both[] = {"sw_power_cap", "sw_thermal_slowdown"};
    assert_reasons(gpu_of(doc, 0, 0), idle, 1);
    assert_reasons(gpu_of(doc, 1, 0), NULL, 0);
    assert_reasons(gpu_of(doc, 3, 0), cap, 1);
    assert_reasons(gpu_of(doc, 4, 0), both, 2);
    json_t *s0 = json_array_get(json_object_get(doc, "samples"), 0);
    assert_true(json_number_value(json_object_get(s0, "t")) >= 0);
    json_decref(doc);

    struct telemetry_window w;
    telemetry_window(t, before, after, &w);
    assert_int_equal(w.n_samples, 5);
    NEAR(w.gpu_power_mean_w, 120.0); /* (100 + 110 + 120 + 130 + 140) / 5 */
    NEAR(w.gpu_power_max_w, 140.0);
    NEAR(w.gpu_energy_j, 2000.0); /* counter 3000 J - 1000 J */
    assert_true(w.gpu_energy_from_counter);
    NEAR(w.gpu_mem_used_max_mib, 4096);
    NEAR(w.gpu_temp_max_c, 44);
    assert_true(w.throttled);
    assert_string_equal(w.throttle_reasons, "gpu_idle,sw_power_cap,sw_thermal_slowdown");
    assert_true(isnan(w.kv_cache_usage_max_pct));
    assert_true(isnan(w.prefix_cache_hit_rate_pct));
    assert_true(isnan(w.server_ttft_p50_s));
    assert_true(isnan(w.host_cpu_util_mean_pct));
    assert_true(isnan(w.runner_cpu_s));
    /* energy per output token as the runner computes it: 2000 J over 4000 tokens */
    NEAR(w.gpu_energy_j / 4000.0, 0.5);

    telemetry_window(t, before, mid, &w); /* samples 0..2: only idle, not throttled */
    assert_int_equal(w.n_samples, 3);
    NEAR(w.gpu_power_mean_w, 110.0);
    NEAR(w.gpu_energy_j, 1000.0);
    assert_false(w.throttled);
    assert_string_equal(w.throttle_reasons, "gpu_idle");
    telemetry_window(t, mid, after, &w); /* samples 3..4 */
    assert_int_equal(w.n_samples, 2);
    NEAR(w.gpu_power_mean_w, 135.0);
    NEAR(w.gpu_energy_j, 500.0);
    assert_true(w.throttled);
    assert_string_equal(w.throttle_reasons, "sw_power_cap,sw_thermal_slowdown");
    telemetry_window(t, after, after + NS_PER_S, &w); /* no samples: all unknown */
    assert_int_equal(w.n_samples, 0);
    assert_true(isnan(w.gpu_power_mean_w) && isnan(w.gpu_energy_j));
    telemetry_window(t, mid - 1, mid, &w); /* one sample: no difference to take */
    assert_true(w.n_samples <= 1);
    assert_true(isnan(w.gpu_energy_j));

    json_t *gpus = telemetry_gpus_json(t);
    assert_int_equal(json_array_size(gpus), 1);
    json_t *g = json_array_get(gpus, 0);
    assert_string_equal(json_string_value(json_object_get(g, "uuid")), "GPU-double-0");
    assert_string_equal(json_string_value(json_object_get(g, "driver_version")), "570.00-double");
    NEAR(num(g, "memory_total_mib"), 81920);
    NEAR(num(g, "power_limit_w"), 700);
    assert_true(json_is_false(json_object_get(g, "mig_mode")));
    assert_null(json_object_get(g, "power_energy_scope"));
    json_decref(gpus);
    telemetry_free(t);
}

static void two_gpus_mig_util_unsupported(void **state)
{
    (void)state;
    use_double(NVML_DOUBLE_PATH, "ramp", "2");
    setenv("NVML_DOUBLE_MIG", "1", 1);
    setenv("NVML_DOUBLE_UTIL_UNSUPPORTED", "1", 1);
    mono_ns before = clock_now();
    struct telemetry *t = start_quiet(false);
    telemetry_sample_now(t);
    telemetry_sample_now(t);
    mono_ns after = clock_now();
    json_t *doc = telemetry_json(t);
    for (size_t i = 0; i < 3; i++)
        for (size_t d = 0; d < 2; d++) {
            json_t *g = gpu_of(doc, i, d);
            assert_int_equal(json_integer_value(json_object_get(g, "index")), (int)d);
            NEAR(num(g, "power_w"), 100.0 + 10.0 * (double)i + 50.0 * (double)d);
            NEAR(num(g, "memory_used_mib"), 4096.0 + 1024.0 * (double)d);
            assert_true(json_is_null(json_object_get(g, "utilization_gpu_pct")));
            assert_true(json_is_null(json_object_get(g, "utilization_memory_pct")));
        }
    json_decref(doc);
    struct telemetry_window w;
    telemetry_window(t, before, after, &w);
    NEAR(w.gpu_power_mean_w, 110.0 + 160.0); /* summed over GPUs: 250, 270, 290 */
    NEAR(w.gpu_power_max_w, 290.0);
    NEAR(w.gpu_energy_j, 2 * 1000.0); /* each GPU's counter moved 2 x 500 J */
    assert_true(w.gpu_energy_from_counter);
    NEAR(w.gpu_mem_used_max_mib, 5120); /* the fullest single GPU */
    json_t *gpus = telemetry_gpus_json(t);
    assert_int_equal(json_array_size(gpus), 2);
    json_t *g = json_array_get(gpus, 1);
    assert_string_equal(json_string_value(json_object_get(g, "uuid")), "GPU-double-1");
    assert_true(json_is_true(json_object_get(g, "mig_mode")));
    assert_string_equal(json_string_value(json_object_get(g, "power_energy_scope")),
                        "physical_gpu");
    json_decref(gpus);
    telemetry_free(t);
}

/* The processes of sample 'i', GPU d: pid, MiB, GPU instance (-1 = null) each. */
static void assert_procs(json_t *doc, size_t i, size_t d, size_t n, const int *gi)
{
    json_t *p = json_object_get(gpu_of(doc, i, d), "processes");
    assert_true(json_is_array(p));
    assert_int_equal(json_array_size(p), n);
    for (size_t k = 0; k < n; k++) {
        json_t *x = json_array_get(p, k);
        assert_int_equal(json_integer_value(json_object_get(x, "pid")), 1000 + 10 * d + k);
        NEAR(num(x, "used_mib"), 1024.0 + 512.0 * (double)k);
        json_t *g = json_object_get(x, "gpu_instance_id");
        if (gi[k] < 0) {
            assert_true(json_is_null(g));
            assert_true(json_is_null(json_object_get(x, "compute_instance_id")));
        } else {
            assert_int_equal(json_integer_value(g), gi[k]);
            assert_int_equal(json_integer_value(json_object_get(x, "compute_instance_id")), 0);
        }
    }
}

/* nvmlDeviceGetComputeRunningProcesses: each process's memory (v3 layout, or v1 from the old
 * library, which has no instance ids); an idle GPU lists none ([] rather than null); in MIG
 * mode each process's GPU instance and each MIG device's own memory. */
static void processes_and_mig_devices(void **state)
{
    (void)state;
    static const int none[3] = {-1, -1, -1}, two_gi[2] = {1, 2};
    use_double(NVML_DOUBLE_PATH, "ramp", "1");
    setenv("NVML_DOUBLE_PROCS", "3", 1);
    struct telemetry *t = start_quiet(false);
    json_t *doc = telemetry_json(t);
    assert_procs(doc, 0, 0, 3, none);
    assert_true(json_is_null(json_object_get(gpu_of(doc, 0, 0), "mig_devices")));
    json_decref(doc);
    telemetry_free(t);

    use_double(NVML_DOUBLE_OLD_PATH, "ramp", "1");
    t = start_quiet(false);
    doc = telemetry_json(t);
    assert_procs(doc, 0, 0, 2, none);
    json_decref(doc);
    telemetry_free(t);

    use_double(NVML_DOUBLE_PATH, "ramp", "1");
    setenv("NVML_DOUBLE_PROCS", "0", 1);
    t = start_quiet(false);
    doc = telemetry_json(t);
    assert_procs(doc, 0, 0, 0, none);
    json_decref(doc);
    telemetry_free(t);

    use_double(NVML_DOUBLE_PATH, "ramp", "2");
    setenv("NVML_DOUBLE_MIG", "1", 1);
    t = start_quiet(false);
    telemetry_sample_now(t);
    doc = telemetry_json(t);
    for (size_t i = 0; i < 2; i++)
        for (size_t d = 0; d < 2; d++) {
            assert_procs(doc, i, d, 2, two_gi);
            json_t *m = json_object_get(gpu_of(doc, i, d), "mig_devices");
            assert_int_equal(json_array_size(m), 2);
            for (size_t k = 0; k < 2; k++) {
                json_t *x = json_array_get(m, k);
                char uuid[32];
                snprintf(uuid, sizeof(uuid), "MIG-double-%zu-%zu", d, k);
                assert_string_equal(json_string_value(json_object_get(x, "uuid")), uuid);
                assert_int_equal(json_integer_value(json_object_get(x, "gpu_instance_id")), k + 1);
                NEAR(num(x, "memory_used_mib"), 2048.0 + 1024.0 * (double)k);
                NEAR(num(x, "memory_total_mib"), 40960.0);
            }
        }
    json_decref(doc);
    telemetry_free(t);
}

/* Unversioned symbols, the older throttle-reasons name, and no energy counter: energy is
 * the trapezoid of power over the samples' own times. */
static void old_library_trapezoid(void **state)
{
    (void)state;
    use_double(NVML_DOUBLE_OLD_PATH, "ramp", "1");
    mono_ns before = clock_now();
    struct telemetry *t = start_quiet(false);
    assert_int_equal(telemetry_n_gpus(t), 1);
    for (int i = 0; i < 3; i++) {
        clock_sleep_ns(20 * NS_PER_MS);
        telemetry_sample_now(t);
    }
    mono_ns after = clock_now();
    json_t *doc = telemetry_json(t);
    json_t *samples = json_object_get(doc, "samples");
    double expect = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *g = gpu_of(doc, i, 0);
        assert_true(json_is_null(json_object_get(g, "energy_j")));
        NEAR(num(g, "power_w"), 100.0 + 10.0 * (double)i);
        if (i > 0) {
            double dt =
                num(json_array_get(samples, i), "t") - num(json_array_get(samples, i - 1), "t");
            assert_true(dt >= 0.019);
            expect += (100.0 + 10.0 * (double)(i - 1) + 100.0 + 10.0 * (double)i) / 2.0 * dt;
        }
    }
    static const char *const idle[] = {"gpu_idle"};
    static const char *const cap[] = {"sw_power_cap"};
    assert_reasons(gpu_of(doc, 0, 0), idle, 1);
    assert_reasons(gpu_of(doc, 3, 0), cap, 1);
    json_decref(doc);
    struct telemetry_window w;
    telemetry_window(t, before, after, &w);
    assert_false(w.gpu_energy_from_counter);
    assert_true(fabs(w.gpu_energy_j - expect) < 1e-6 * expect);
    assert_true(w.gpu_energy_j > 115.0 * 0.06 * 0.99); /* at least 60 ms at >= 105 W mean */
    telemetry_free(t);
}

static void assert_gpu_off(const char *path, const char *scenario)
{
    use_double(path, scenario, "1");
    mono_ns before = clock_now();
    struct telemetry *t = start_quiet(false);
    telemetry_sample_now(t);
    mono_ns after = clock_now();
    assert_int_equal(telemetry_n_gpus(t), 0);
    json_t *doc = telemetry_json(t);
    assert_false(has_source(doc, "nvml"));
    assert_int_equal(json_array_size(json_object_get(doc, "samples")), 2);
    assert_int_equal(json_array_size(gpu_of(doc, 0, 0)), 0);
    assert_true(
        json_is_array(json_object_get(json_array_get(json_object_get(doc, "samples"), 0), "gpus")));
    json_decref(doc);
    json_t *gpus = telemetry_gpus_json(t);
    assert_int_equal(json_array_size(gpus), 0);
    json_decref(gpus);
    struct telemetry_window w;
    telemetry_window(t, before, after, &w);
    assert_int_equal(w.n_samples, 2);
    assert_true(isnan(w.gpu_power_mean_w) && isnan(w.gpu_energy_j) && isnan(w.gpu_temp_max_c));
    assert_false(w.throttled);
    assert_string_equal(w.throttle_reasons, "");
    telemetry_free(t);
}

static void init_fail(void **state)
{
    (void)state;
    assert_gpu_off(NVML_DOUBLE_PATH, "init_fail");
}

static void zero_devices(void **state)
{
    (void)state;
    assert_gpu_off(NVML_DOUBLE_PATH, "zero_devices");
}

static void missing_required_symbol(void **state)
{
    (void)state;
    assert_gpu_off(NVML_DOUBLE_BROKEN_PATH, "ramp");
}

static void missing_library(void **state)
{
    (void)state;
    assert_gpu_off("/nonexistent/libnvidia-ml.so.1", "ramp");
}

/* The thread's own timer: ticks about every interval, times increase, stop joins, and
 * nothing is added after stop. Host fields come along. */
static void thread_ticks_and_stops(void **state)
{
    (void)state;
    use_double(NVML_DOUBLE_PATH, "ramp", "1");
    struct telemetry_options o = {.interval_s = 0.05, .gpu = true, .host = true, .t0 = clock_now()};
    struct telemetry *t = NULL;
    assert_int_equal(telemetry_start(&t, &o), 0);
    clock_sleep_ns(330 * NS_PER_MS);
    mono_ns s0 = clock_now();
    telemetry_stop(t);
    assert_true(clock_now() - s0 < 200 * NS_PER_MS); /* stop does not wait out a tick */
    size_t n = telemetry_n_samples(t);
    assert_true(n >= 4 && n <= 9); /* 1 + ~6 ticks; slack for a loaded machine */
    clock_sleep_ns(120 * NS_PER_MS);
    assert_int_equal(telemetry_n_samples(t), n);
    json_t *doc = telemetry_json(t);
    assert_true(has_source(doc, "host"));
    json_t *samples = json_object_get(doc, "samples");
    double prev = -1;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(samples, i);
        double ts = num(s, "t");
        assert_true(ts > prev);
        prev = ts;
        NEAR(num(json_array_get(json_object_get(s, "gpus"), 0), "power_w"),
             100.0 + 10.0 * (double)i);
        assert_true(num(json_object_get(s, "host"), "mem_used_mib") > 0);
    }
    /* Ticks sit on distinct deadlines start + k * 0.05 s (late, never early), so n samples
     * span at least (n - 1) intervals; a relative or spinning timer could come in under. */
    double first = num(json_array_get(samples, 0), "t");
    assert_true(prev - first >= 0.05 * (double)(n - 1) - 0.005);
    json_decref(doc);
    struct telemetry_window w;
    telemetry_window(t, 0, clock_now(), &w);
    assert_int_equal(w.n_samples, n);
    assert_true(w.runner_cpu_s >= 0);
    telemetry_free(t);
    telemetry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ramp_one_gpu),
        cmocka_unit_test(two_gpus_mig_util_unsupported),
        cmocka_unit_test(old_library_trapezoid),
        cmocka_unit_test(init_fail),
        cmocka_unit_test(zero_devices),
        cmocka_unit_test(missing_required_symbol),
        cmocka_unit_test(missing_library),
        cmocka_unit_test(thread_ticks_and_stops),
        cmocka_unit_test(processes_and_mig_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
