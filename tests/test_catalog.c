/* test_catalog.c - the embedded catalog, lookups by HF id / short name / alias, user folders. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "config/catalog.h"

static void embedded_has_everything(void **state)
{
    (void)state;
    struct catalog *c = NULL;
    char err[512];
    assert_int_equal(catalog_load(&c, NULL, err, sizeof(err)), 0);
    static const char *const gpus[] = {"rtx-pro-6000", "rtx-pro-6000-maxq", "rtx-pro-6000-server",
                                       "h100-sxm",     "h100-pcie",         "h200",
                                       "l40s",         "rtx-5090"};
    for (size_t i = 0; i < sizeof(gpus) / sizeof(gpus[0]); i++) {
        const struct gpu_spec *g = catalog_find_gpu(c, gpus[i]);
        assert_non_null(g);
        assert_true(g->memory_mib > 0 && g->bandwidth_gbs > 0 && g->fp16_tflops > 0);
        assert_true(g->fp8_tflops > 0 && g->tdp_w > 0);
        assert_non_null(g->source);
        assert_true(strlen(g->source) > 10);
    }
    static const char *const models[] = {"meta-llama/Llama-3.1-8B-Instruct",
                                         "meta-llama/Llama-3.1-70B-Instruct",
                                         "meta-llama/Llama-3.3-70B-Instruct",
                                         "Qwen/Qwen2.5-7B-Instruct",
                                         "Qwen/Qwen2.5-32B-Instruct",
                                         "Qwen/Qwen2.5-72B-Instruct",
                                         "Qwen/Qwen3-32B",
                                         "Qwen/Qwen3-30B-A3B",
                                         "mistralai/Mistral-7B-Instruct-v0.3",
                                         "mistralai/Mistral-Small-24B-Instruct-2501",
                                         "openai/gpt-oss-20b",
                                         "openai/gpt-oss-120b",
                                         "google/gemma-3-27b-it"};
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        const struct model_spec *m = catalog_find_model(c, models[i]);
        assert_non_null(m);
        assert_string_equal(m->name, models[i]);
        assert_true(m->layers > 0 && m->kv_heads > 0 && m->head_dim > 0 && m->max_model_len > 0);
        assert_non_null(m->source);
    }
    /* The figures the issue pins down. */
    assert_int_equal((int)catalog_find_gpu(c, "rtx-pro-6000")->memory_mib, 97887);
    const struct model_spec *q = catalog_find_model(c, "Qwen/Qwen3-30B-A3B");
    assert_int_equal(q->layers, 48);
    assert_int_equal(q->experts, 128);
    assert_int_equal(q->experts_per_token, 8);
    assert_int_equal(q->moe_intermediate, 768);
    assert_int_equal(q->max_model_len, 40960);
    assert_non_null(strstr(q->source, "config.json"));
    const struct model_spec *oss = catalog_find_model(c, "openai/gpt-oss-120b");
    assert_int_equal(oss->sliding_window, 128);
    assert_int_equal(oss->sliding_layers * 2, oss->layers);
    const struct quant_spec *fp8 = catalog_find_quant(c, "fp8");
    assert_non_null(fp8);
    assert_true(fp8->bytes_per_weight >= 1.0 && fp8->bytes_per_weight < 1.05);
    assert_string_equal(fp8->compute, "fp8");
    const struct quant_spec *awq = catalog_find_quant(c, "AWQ");
    assert_non_null(awq);
    assert_true(awq->bytes_per_weight > 0.52 && awq->bytes_per_weight < 0.57);
    assert_string_equal(awq->compute, "fp16");
    assert_true(catalog_find_quant(c, "nvfp4")->bytes_per_weight == 0.5625);
    /* Tensor-parallel topology (docs/ENGINE.md, "Multi-GPU"): NVLink on the SXM boards, PCIe
     * peer-to-peer elsewhere but on GeForce boards, whose driver disables it. */
    assert_true(catalog_find_gpu(c, "h200")->nvlink);
    assert_false(catalog_find_gpu(c, "rtx-pro-6000")->nvlink);
    assert_true(catalog_find_gpu(c, "rtx-pro-6000")->p2p);
    assert_false(catalog_find_gpu(c, "rtx-5090")->p2p);
    assert_false(catalog_find_gpu(c, "rtx-4090")->p2p);
    const struct gpu_spec *pro = catalog_find_gpu(c, "rtx-pro-6000");
    assert_true(fabs(pro->numa_p2p_bandwidth_gbs - 55.0 * 39 / 54) < 1e-9);
    assert_true(pro->host_bandwidth_gbs == 27.5);
    /* GLM-4.5-Air's first layer has a dense MLP (first_k_dense_replace 1). */
    assert_int_equal(catalog_find_model(c, "glm-4.5-air")->dense_layers, 1);
    assert_int_equal(catalog_find_model(c, "glm-4.6")->dense_layers, 3);
    assert_string_equal(catalog_find_quant(c, "fp8-block")->compute, "fp8");
    catalog_free(c);
}

static void lookups(void **state)
{
    (void)state;
    struct catalog *c = NULL;
    char err[512];
    assert_int_equal(catalog_load(&c, NULL, err, sizeof(err)), 0);
    const struct model_spec *m = catalog_find_model(c, "meta-llama/Llama-3.1-70B-Instruct");
    assert_non_null(m);
    assert_ptr_equal(catalog_find_model(c, "meta-llama/Llama-3.1-70B"), m);
    assert_ptr_equal(catalog_find_model(c, "llama-3.1-70b"), m);
    assert_ptr_equal(catalog_find_model(c, "META-LLAMA/LLAMA-3.1-70B-INSTRUCT"), m);
    assert_ptr_equal(catalog_find_model(c, "Llama-3.1-70B-Instruct"), m);
    assert_ptr_not_equal(catalog_find_model(c, "llama-3.3-70b"), m);
    assert_null(catalog_find_model(c, "llama-9-1t"));
    const struct gpu_spec *g = catalog_find_gpu(c, "rtx-pro-6000");
    assert_ptr_equal(catalog_find_gpu(c, "RTX PRO 6000 Blackwell"), g);
    assert_ptr_equal(catalog_find_gpu(c, "rtx-pro-6000-ws"), g);
    assert_string_equal(catalog_find_gpu(c, "h100")->name, "h100-sxm");
    assert_null(catalog_find_gpu(c, "tpu-v5"));
    char buf[256];
    catalog_suggest(c, "gpu", "h10", buf, sizeof(buf));
    assert_non_null(strstr(buf, "h100"));
    catalog_suggest(c, "model", "llama-3.1-7b", buf, sizeof(buf));
    assert_non_null(strstr(buf, "Llama-3.1"));
    catalog_free(c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void user_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_catalog_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof(p), "%s/models", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    /* Override one field of an embedded model... */
    snprintf(p, sizeof(p), "%s/models/llama8.yaml", dir);
    write_file(p, "name: meta-llama/Llama-3.1-8B-Instruct\nmax_model_len: 8192\n");
    /* ...and add a new model and a new GPU (kind: at the top level). */
    snprintf(p, sizeof(p), "%s/models/tiny.yaml", dir);
    write_file(p, "hf_id: acme/Tiny-1B-Instruct\naliases: [tiny-1b]\nparams_b: 1.1\nlayers: 16\n"
                  "hidden: 2048\nheads: 16\nkv_heads: 4\nvocab: 32000\nmax_model_len: 4096\n"
                  "source: test fixture\n");
    snprintf(p, sizeof(p), "%s/mygpu.yaml", dir);
    write_file(p, "kind: gpu\nname: test-gpu\nmemory_mib: 24576\nbandwidth_gbs: 1000\n"
                  "fp16_tflops: 100\nsource: test fixture\n");

    struct catalog *c = NULL;
    char err[512];
    assert_int_equal(catalog_load(&c, dir, err, sizeof(err)), 0);
    const struct model_spec *m = catalog_find_model(c, "llama-3.1-8b");
    assert_non_null(m);
    assert_int_equal(m->max_model_len, 8192);
    assert_int_equal(m->layers, 32); /* the rest kept */
    const struct model_spec *t = catalog_find_model(c, "tiny-1b");
    assert_non_null(t);
    assert_string_equal(t->name, "acme/Tiny-1B-Instruct");
    assert_int_equal(t->head_dim, 128); /* hidden / heads */
    assert_ptr_equal(catalog_find_model(c, "acme/Tiny-1B"), t);
    const struct gpu_spec *tg = catalog_find_gpu(c, "test-gpu");
    assert_non_null(tg);
    assert_true(tg->p2p && !tg->nvlink); /* a user GPU: PCIe peer-to-peer unless it says not */
    assert_true(tg->host_bandwidth_gbs == tg->p2p_bandwidth_gbs / 2);
    catalog_free(c);

    /* A bad file names file:line:column and the key. */
    snprintf(p, sizeof(p), "%s/models/bad.yaml", dir);
    write_file(p, "name: x/y\nparams_b: 1\nlayers: many\n");
    c = NULL;
    assert_int_equal(catalog_load(&c, dir, err, sizeof(err)), -EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "bad.yaml:3:"));
    assert_non_null(strstr(err, "layers"));
    unlink(p);
    snprintf(p, sizeof(p), "%s/models/dense.yaml", dir);
    write_file(p, "name: x/dense\nparams_b: 1\nlayers: 4\nhidden: 64\nheads: 4\nvocab: 100\n"
                  "dense_layers: 1\n");
    assert_int_equal(catalog_load(&c, dir, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "dense_layers needs experts"));
    assert_non_null(strstr(err, "dense.yaml:1:"));
    unlink(p);
    snprintf(p, sizeof(p), "%s/models/typo.yaml", dir);
    write_file(p, "name: x/y\nparams_b: 1\nlayerz: 3\n");
    assert_int_equal(catalog_load(&c, dir, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unknown key"));
    unlink(p);

    snprintf(p, sizeof(p), "%s/models/llama8.yaml", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/models/tiny.yaml", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/mygpu.yaml", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/models", dir);
    rmdir(p);
    rmdir(dir);
    assert_int_equal(catalog_load(&c, "/nonexistent/tb", err, sizeof(err)), -ENOENT);
}

/* `testbench ARGS` with stdout and stderr in out; its exit status. */
static int tb(const char *args, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", TB_BINARY, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Issue 23 item 9: `testbench catalog` lists every entry by the name the commands take. */
static void catalog_command_lists_every_entry(void **state)
{
    (void)state;
    static char out[1 << 20];
    struct catalog *c = NULL;
    char err[512];
    assert_int_equal(catalog_load(&c, NULL, err, sizeof(err)), 0);
    assert_int_equal(tb("catalog", out, sizeof(out)), 0);
    for (size_t i = 0; i < c->n_gpus; i++) {
        char line[256];
        /* A whole GPU starts a line; a MIG slice is listed under its GPU. */
        snprintf(line, sizeof(line), c->gpus[i].mig_parent ? "%s" : "\n  %s ", c->gpus[i].name);
        assert_non_null(strstr(out, line));
    }
    for (size_t i = 0; i < c->n_models; i++)
        assert_non_null(strstr(out, c->models[i].name));
    for (size_t i = 0; i < c->n_quants; i++)
        assert_non_null(strstr(out, c->quants[i].name));
    /* The RTX PRO 6000's three editions, each with the name nvidia-smi gives it. */
    assert_non_null(strstr(out, "rtx-pro-6000 "));
    assert_non_null(strstr(out, "NVIDIA RTX PRO 6000 Blackwell Workstation Edition"));
    assert_non_null(strstr(out, "rtx-pro-6000-maxq"));
    assert_non_null(strstr(out, "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"));
    assert_non_null(strstr(out, "rtx-pro-6000-server"));
    assert_non_null(strstr(out, "NVIDIA RTX PRO 6000 Blackwell Server Edition"));
    /* One kind only, as JSON: every model, nothing else. */
    assert_int_equal(tb("catalog models --json", out, sizeof(out)), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "models")), c->n_models);
    assert_null(json_object_get(j, "gpus"));
    json_decref(j);
    assert_int_equal(tb("catalog gpus", out, sizeof(out)), 0);
    assert_null(strstr(out, "Models ("));
    assert_int_equal(tb("catalog quantizations", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "nvfp4"));
    assert_null(strstr(out, "GPUs ("));
    /* A folder of one's own adds its entries. */
    char dir[] = "/tmp/tb_catalog_cmd_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof(p), "%s/mygpu.yaml", dir);
    write_file(p, "kind: gpu\nname: test-gpu-9\nmemory_mib: 24576\nbandwidth_gbs: 1000\n"
                  "fp16_tflops: 100\nsource: test fixture\n");
    char args[600];
    snprintf(args, sizeof(args), "catalog gpus --catalog %s", dir);
    assert_int_equal(tb(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "test-gpu-9"));
    unlink(p);
    rmdir(dir);
    /* Anything else is a usage error that says what is allowed. */
    assert_int_equal(tb("catalog bogus", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "gpus, models, quantizations"));
    catalog_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedded_has_everything),
        cmocka_unit_test(lookups),
        cmocka_unit_test(user_dir),
        cmocka_unit_test(catalog_command_lists_every_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
