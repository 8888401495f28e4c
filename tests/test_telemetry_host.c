/*
 * test_telemetry_host.c - /proc/stat and /proc/meminfo parsing on fixed text, and a live
 * read that must produce sane values on the machine running the tests.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "telemetry/host.h"

static void stat_text(void **state)
{
    (void)state;
    unsigned long long busy, total;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    assert_true(host_parse_stat("cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 1 2 3 4\n", &busy, &total));
    assert_true(total == 990ull);      /* the first eight; guest is inside user already */
    assert_true(busy == 990ull - 820); /* minus idle and iowait */
    assert_false(host_parse_stat("cpu0 1 2 3 4\n", &busy, &total));
    assert_false(host_parse_stat("cpu  1 2\n", &busy, &total));
}

static void meminfo_text(void **state)
{
    (void)state;
    double used;
    assert_true(host_parse_meminfo("MemTotal:       16384000 kB\nMemFree:  100 kB\n"
                                   "MemAvailable:   12288000 kB\nBuffers: 1 kB\n",
                                   &used));
    assert_true(fabs(used - 4000.0) < 1e-9); /* (16384000 - 12288000) kB / 1024 */
    assert_false(host_parse_meminfo("MemTotal: 10 kB\nMemFree: 5 kB\n", &used));
    /* "MemAvailableX" must not match "MemAvailable" */
    assert_false(host_parse_meminfo("MemTotal: 10 kB\nMemAvailableX: 5 kB\n", &used));
}

static void live_read(void **state)
{
    (void)state;
    struct host_reader r;
    host_reader_init(&r);
    volatile double spin = 0;
    for (int i = 0; i < 20000000; i++) /* burn a little CPU so both clocks move */
        spin += i * 0.5;
    struct host_sample s;
    host_read(&r, &s);
    assert_true(s.valid & (1u << HF_MEM));
    assert_true(s.mem_used_mib > 0);
    assert_true(s.valid & (1u << HF_PROC_CPU));
    assert_true(s.proc_cpu_s > 0);
    if (s.valid & (1u << HF_CPU)) /* absent only if no jiffy passed */
        assert_true(s.cpu_util_pct >= 0 && s.cpu_util_pct <= 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stat_text),
        cmocka_unit_test(meminfo_text),
        cmocka_unit_test(live_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
