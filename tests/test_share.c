/* test_share.c - one GPU shared by engine instances: MIG slices in the catalog, the
 * time-slicing rule, and what each does to two instances' decode rates. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/catalog.h"
#include "engine/engine.h"
#include "engine/share.h"
#include "tenancy/tenancy.h"
#include "plan/vdriver.h"

static void mig_slices_in_catalog(void **state)
{
    (void)state;
    struct catalog *cat = NULL;
    char err[256];
    assert_int_equal(catalog_load(&cat, NULL, err, sizeof(err)), 0);
    const struct gpu_spec *p = catalog_find_gpu(cat, "rtx-pro-6000");
    const struct gpu_spec *s = catalog_find_gpu(cat, "rtx-pro-6000:mig-2g.48gb");
    assert_non_null(p);
    assert_non_null(s);
    assert_string_equal(s->mig_parent, "rtx-pro-6000");
    assert_true(fabs(s->memory_mib - p->memory_mib * s->mig_slice.memory_fraction) < 1e-6);
    assert_true(fabs(s->bandwidth_gbs - p->bandwidth_gbs / 2) < 1e-6);
    assert_true(fabs(s->fp16_tflops - p->fp16_tflops / 2) < 1e-6);
    assert_int_equal(s->mig_slice.max_instances, 2);
    /* Any name of the parent, with or without "mig-". */
    assert_ptr_equal(catalog_find_gpu(cat, "RTX PRO 6000:2g.48gb"), s);
    assert_null(catalog_find_gpu(cat, "rtx-pro-6000:mig-3g.72gb"));
    assert_null(catalog_find_gpu(cat, "l40s:mig-1g.12gb")); /* no MIG on L40S */
    const struct gpu_spec *h = catalog_find_gpu(cat, "h100:mig-3g.40gb");
    const struct gpu_spec *hp = catalog_find_gpu(cat, "h100-sxm");
    assert_non_null(h);
    assert_true(fabs(h->fp16_tflops - hp->fp16_tflops * 3.0 / 7.0) < 1e-6);
    assert_true(fabs(h->bandwidth_gbs - hp->bandwidth_gbs * 4.0 / 8.0) < 1e-6);
    catalog_free(cat);
}

static void share_serialises_steps(void **state)
{
    (void)state;
    struct gpu_share s;
    gpu_share_init(&s);
    /* A's step at 0 for 10 ms; B ready at 2 ms waits until 10, ends at 25. */
    assert_true(fabs(gpu_share_run(&s, 0.0, 0.010) - 0.010) < 1e-12);
    assert_true(fabs(gpu_share_run(&s, 0.002, 0.015) - 0.025) < 1e-12);
    assert_true(fabs(s.wait_s - 0.008) < 1e-12);
    /* An idle GPU: no wait. */
    assert_true(fabs(gpu_share_run(&s, 1.0, 0.005) - 1.005) < 1e-12);
    assert_int_equal(s.steps, 3);
    assert_int_equal(s.waited_steps, 1);
    assert_true(fabs(s.busy_s - 0.030) < 1e-12);
}

static struct engine *engine_on(const char *gpu, double util)
{
    struct engine_config c;
    memset(&c, 0, sizeof(c));
    c.gpu = gpu;
    c.model = "meta-llama/Llama-3.1-8B-Instruct";
    c.gpu_memory_utilization = util;
    c.max_model_len = 4096;
    c.enable_prefix_caching = 1;
    struct engine *e = NULL;
    char err[512];
    int rc = engine_new(&e, &c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "engine_new: %s\n", err);
    assert_int_equal(rc, 0);
    return e;
}

static struct vd_tenant decode_tenant(int instance)
{
    struct vd_tenant t;
    memset(&t, 0, sizeof(t));
    t.instance = instance;
    t.population = VD_STREAMS;
    t.users = 16;
    t.prompt = 128;
    t.output = 512;
    t.requests = 32;
    t.slo.percentile = 95;
    return t;
}

/* Output tokens/s of each tenant: tenants 0..n-1 on instances 0..n-1 of 'gpu' at 'util',
 * with 'gpu_index' (-1: isolated). */
static void run_pair(const char *gpu, double util, int gpu_index, size_t n, double *tps)
{
    struct vd_instance inst[2];
    struct vd_tenant ten[2];
    struct vd_result res[2];
    for (size_t i = 0; i < 2; i++) {
        inst[i].e = engine_on(gpu, util);
        inst[i].gpu = gpu_index;
        ten[i] = decode_tenant((int)i);
    }
    char err[256];
    struct vd_out out = {.tenants = res};
    assert_int_equal(vd_run(inst, 2, ten, n, 1, &out, err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(res[i].completed, 32);
        tps[i] = res[i].output_tps;
    }
    for (size_t i = 0; i < 2; i++)
        engine_free(inst[i].e);
}

/* Two instances at 0.45 time-slicing one GPU: the instances are identical, so their steps
 * are as long, each gets the GPU half the time and runs at half the decode rate it has
 * alone; the work adds up (both together make what one makes alone). */
static void partitions_halve_decode_rate(void **state)
{
    (void)state;
    double alone[2], both[2];
    run_pair("rtx-pro-6000", 0.45, 0, 1, alone);
    run_pair("rtx-pro-6000", 0.45, 0, 2, both);
    double expect = 1.0 / 2.0; /* equal step times: each instance's share of the GPU */
    for (int i = 0; i < 2; i++) {
        double ratio = both[i] / alone[0];
        assert_true(ratio > expect * 0.85 && ratio < expect * 1.15);
    }
    fprintf(stderr, "alone %.1f, together %.1f + %.1f tokens/s\n", alone[0], both[0], both[1]);
    double conserved = (both[0] + both[1]) / alone[0];
    assert_true(conserved > 0.9 && conserved < 1.1);
}

/* Two MIG 2g.48gb slices: nothing shared, each tenant's rate together equals its rate alone;
 * a half slice is slower than the whole GPU but not below its half share. */
static void mig_slices_are_isolated(void **state)
{
    (void)state;
    double alone[2], both[2], whole[2];
    run_pair("rtx-pro-6000:mig-2g.48gb", 0.9, -1, 1, alone);
    run_pair("rtx-pro-6000:mig-2g.48gb", 0.9, -1, 2, both);
    run_pair("rtx-pro-6000", 0.9, -1, 1, whole);
    fprintf(stderr, "MIG 2g.48gb alone %.1f, together %.1f + %.1f, whole GPU %.1f tokens/s\n",
            alone[0], both[0], both[1], whole[0]);
    assert_true(fabs(both[0] - alone[0]) < 1e-9 * alone[0]);
    assert_true(fabs(both[1] - alone[0]) < 1e-9 * alone[0]);
    assert_true(alone[0] < whole[0]);
    assert_true(alone[0] > whole[0] * 0.45);
}

static void jain_index(void **state)
{
    (void)state;
    const double even[3] = {2, 2, 2}, one[4] = {1, 0, 0, 0}, two[2] = {1, 3};
    assert_true(fabs(tenancy_jain(even, 3) - 1.0) < 1e-12);
    assert_true(fabs(tenancy_jain(one, 4) - 0.25) < 1e-12); /* 1/n: one tenant gets it all */
    assert_true(fabs(tenancy_jain(two, 2) - 16.0 / 20.0) < 1e-12);
    assert_true(isnan(tenancy_jain(one, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mig_slices_in_catalog),
        cmocka_unit_test(share_serialises_steps),
        cmocka_unit_test(partitions_halve_decode_rate),
        cmocka_unit_test(mig_slices_are_isolated),
        cmocka_unit_test(jain_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
