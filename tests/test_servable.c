/*
 * test_servable.c - checkpoints vLLM can load with the flags given (config/servable.h): a
 * pre-quantized checkpoint with its own format or none, never another; no 4-bit weights made
 * from a 16-bit checkpoint; online FP8 only when the 16-bit weights fit first; vLLM's own name
 * for each format. And every shipped config passes `validate` against the catalog.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/catalog.h"
#include "config/servable.h"
#include "core/xalloc.h"

static struct catalog *cat;

static int setup(void **state)
{
    (void)state;
    char err[256];
    return catalog_load(&cat, NULL, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    catalog_free(cat);
    return 0;
}

#define L70 "meta-llama/Llama-3.1-70B-Instruct"
#define L8 "meta-llama/Llama-3.1-8B-Instruct"
#define AWQ70 "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"
#define FP870 "RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8"

static void checkpoints_and_flags(void **state)
{
    (void)state;
    struct servable s;
    /* The 16-bit checkpoint as it is. */
    assert_int_equal(servable_check(cat, L70, NULL, "rtx-pro-6000", 0.95, 1, &s), 0);
    assert_string_equal(s.vllm_flag, "");
    /* 4-bit weights cannot be made at load: refused, naming the checkpoint to use. */
    assert_int_equal(servable_check(cat, L70, "awq", "rtx-pro-6000", 0.95, 1, &s), -EINVAL);
    assert_non_null(strstr(s.why, "cannot quantize it to awq at load"));
    assert_non_null(strstr(s.why, AWQ70));
    /* Online FP8 loads the 16-bit weights first: 141 GB do not fit a 96 GB card... */
    assert_int_equal(servable_check(cat, L70, "fp8", "rtx-pro-6000", 0.95, 1, &s), -EINVAL);
    assert_non_null(strstr(s.why, "16-bit weights"));
    assert_non_null(strstr(s.why, FP870));
    /* ...but fit two of them, and an 8B model fits one. */
    assert_int_equal(servable_check(cat, L70, "fp8", "rtx-pro-6000", 0.95, 2, &s), 0);
    assert_string_equal(s.vllm_flag, "fp8");
    assert_int_equal(servable_check(cat, L8, "fp8", "rtx-pro-6000", 0.9, 1, &s), 0);
    /* A pre-quantized checkpoint: its format with vLLM's name for it, or nothing. */
    assert_int_equal(servable_check(cat, AWQ70, "awq", "rtx-pro-6000", 0.95, 1, &s), 0);
    assert_string_equal(s.vllm_flag, "awq_marlin");
    assert_string_equal(s.quantization, "awq");
    assert_int_equal(servable_check(cat, AWQ70, "none", "rtx-pro-6000", 0.95, 1, &s), 0);
    assert_string_equal(s.vllm_flag, "");
    assert_string_equal(s.quantization, "awq");
    assert_int_equal(servable_check(cat, FP870, "fp8", "rtx-pro-6000", 0.95, 1, &s), 0);
    assert_string_equal(s.vllm_flag, "compressed-tensors");
    /* ...never another one. */
    assert_int_equal(servable_check(cat, AWQ70, "fp8", "rtx-pro-6000", 0.95, 1, &s), -EINVAL);
    assert_non_null(strstr(s.why, "is a awq checkpoint"));
    /* A model the catalog does not know is not judged. */
    assert_int_equal(servable_check(cat, "acme/unknown-7b", "awq", "rtx-pro-6000", 0.9, 1, &s), 0);
    assert_false(s.known);
    assert_string_equal(s.vllm_flag, "awq");
    /* The checkpoint serves its base model's architecture in the plan, in its own format. */
    assert_ptr_equal(catalog_find_model(cat, AWQ70), catalog_find_model(cat, L70));
    char name[64];
    servable_weights_name(cat, AWQ70, NULL, name, sizeof(name));
    assert_string_equal(name, "awq (checkpoint)");
    servable_weights_name(cat, L8, "none", name, sizeof(name));
    assert_string_equal(name, "bf16 (checkpoint)");
    servable_weights_name(cat, L8, "FP8", name, sizeof(name));
    assert_string_equal(name, "fp8");
}

static int validate(const char *path, char *out, size_t len)
{
    char *cmd = xasprintf("%s validate --config %s 2>&1", TB_BINARY, path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every shipped config names checkpoints vLLM can load with its flags. */
static void shipped_configs_validate(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/configs", TB_SOURCE_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    size_t n = 0;
    char out[4096];
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        int rc = validate(p, out, sizeof(out));
        if (rc != 0 || strstr(out, "model.quantization"))
            fprintf(stderr, "%s: %s\n", p, out);
        assert_int_equal(rc, 0);
        assert_null(strstr(out, "model.quantization")); /* a server that could start */
        free(p);
        n++;
    }
    closedir(d);
    assert_true(n >= 10);
    /* The flagship study launches pre-quantized checkpoints. */
    char *flag = xasprintf("%s/llama3_70b_study.yaml", dir);
    FILE *f = fopen(flag, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, sizeof(out) - 1, f);
    out[got] = '\0';
    fclose(f);
    assert_non_null(strstr(out, FP870));
    assert_non_null(strstr(out, AWQ70));
    free(flag);
    free(dir);
}

/* The study file the issue found: the BF16 checkpoint crossed with awq and fp8. */
static void a_setup_vllm_would_refuse_is_a_validate_error(void **state)
{
    (void)state;
    char path[] = "/tmp/tb_servable_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char text[] = "study: {name: x}\n"
                        "setups:\n  grid:\n    model: [meta-llama/Llama-3.1-70B-Instruct]\n"
                        "    quantization: [awq]\n"
                        "model: {name: meta-llama/Llama-3.1-70B-Instruct}\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    char out[4096];
    assert_int_equal(validate(path, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "setups: setup s01-"));
    assert_non_null(strstr(out, "cannot quantize it to awq at load"));
    unlink(path);
}

/* A checkpoint is served under its own id, as vLLM serves --model: a run against the simulator
 * of one asks for it by that name and is answered (it was refused with 404 when the simulator
 * served the base model's id). */
static void a_checkpoint_is_served_under_its_own_id(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_servable_run_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cfg = xasprintf("%s/c.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "model: {name: %s}\n"
            "requests: {num_requests: 2, concurrent_requests: 2, prompt_tokens_min: 32,\n"
            "  prompt_tokens_max: 32, completion_tokens: 4}\n"
            "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
            AWQ70);
    fclose(f);
    char *cmd =
        xasprintf("%s run --config %s --sim --output-dir %s --quiet 2>&1 && cat %s/*_summary.csv",
                  TB_BINARY, cfg, dir, dir);
    char out[8192];
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "%s\n", out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_null(strstr(out, "does not exist"));
    free(cmd);
    cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checkpoints_and_flags),
        cmocka_unit_test(shipped_configs_validate),
        cmocka_unit_test(a_setup_vllm_would_refuse_is_a_validate_error),
        cmocka_unit_test(a_checkpoint_is_served_under_its_own_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
