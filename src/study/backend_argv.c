/*
 * backend_argv.c - the command line each backend runs: the simulator's, `docker run`'s, or one
 * built from a command template (the rules are at the top of backend.h). Nothing here runs a
 * shell: a setup's values reach the server as whole words, never as shell text.
 */
#include "study/backend_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* A growing NULL-terminated argv with a ceiling (BACKEND_MAX_ARGS). */
struct argv_list {
    char **v; /* owned, each word owned */
    size_t n;
    size_t cap;
};

static int argv_push(struct argv_list *a, const char *word)
{
    if (a->n + 2 > BACKEND_MAX_ARGS)
        return -E2BIG;
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
    }
    a->v[a->n++] = xstrdup(word);
    a->v[a->n] = NULL;
    return 0;
}

static int argv_push2(struct argv_list *a, const char *flag, const char *value)
{
    int rc = argv_push(a, flag);
    return rc ? rc : argv_push(a, value);
}

void backend_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* ---- the setup's vLLM flags ------------------------------------------------------------ */

/* vLLM's flags that carry a setup value, in the order the command lines list them. */
static const struct vllm_flag {
    const char *key; /* placeholder name */
    const char *flag;
} vllm_flags[] = {
    {"quantization", "--quantization"},   {"kv_cache_dtype", "--kv-cache-dtype"},
    {"max_model_len", "--max-model-len"}, {"gpu_memory_utilization", "--gpu-memory-utilization"},
    {"max_num_seqs", "--max-num-seqs"},   {"tensor_parallel_size", "--tensor-parallel-size"},
};

#define N_VLLM_FLAGS (sizeof(vllm_flags) / sizeof(vllm_flags[0]))

/* The setup's value for key as text into buf; false when the setup leaves it unset. */
static bool setup_value(const struct server_setup *s, const char *key, char *buf, size_t len)
{
    if (strcmp(key, "quantization") == 0) {
        const char *q = s->quantization;
        if (!q || !*q || strcmp(q, "none") == 0)
            return false;
        snprintf(buf, len, "%s", q);
        return true;
    }
    if (strcmp(key, "kv_cache_dtype") == 0) {
        const char *d = s->kv_cache_dtype;
        if (!d || !*d || strcmp(d, "auto") == 0)
            return false;
        snprintf(buf, len, "%s", d);
        return true;
    }
    if (strcmp(key, "max_model_len") == 0 && s->max_model_len > 0) {
        snprintf(buf, len, "%d", s->max_model_len);
        return true;
    }
    if (strcmp(key, "gpu_memory_utilization") == 0 && s->gpu_memory_utilization > 0) {
        snprintf(buf, len, "%g", s->gpu_memory_utilization);
        return true;
    }
    if (strcmp(key, "max_num_seqs") == 0 && s->max_num_seqs > 0) {
        snprintf(buf, len, "%d", s->max_num_seqs);
        return true;
    }
    if (strcmp(key, "tensor_parallel_size") == 0 && s->tensor_parallel_size > 1) {
        snprintf(buf, len, "%d", s->tensor_parallel_size);
        return true;
    }
    return false;
}

static const char *prefix_caching_flag(const struct server_setup *s)
{
    if (s->enable_prefix_caching > 0)
        return "--enable-prefix-caching";
    if (s->enable_prefix_caching == 0)
        return "--no-enable-prefix-caching";
    return NULL;
}

/* Every vLLM flag the setup sets, then the prefix-caching flag. */
static int push_vllm_flags(struct argv_list *a, const struct server_setup *s)
{
    char v[64];
    int rc = 0;
    for (size_t i = 0; !rc && i < N_VLLM_FLAGS; i++)
        if (setup_value(s, vllm_flags[i].key, v, sizeof(v)))
            rc = argv_push2(a, vllm_flags[i].flag, v);
    if (!rc && prefix_caching_flag(s))
        rc = argv_push(a, prefix_caching_flag(s));
    return rc;
}

static int push_extra(struct argv_list *a, const struct server_setup *s)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < s->n_extra_args; i++)
        rc = argv_push(a, s->extra_args[i]);
    return rc;
}

/* ---- sim ------------------------------------------------------------------------------- */

static int sim_argv(struct argv_list *a, const struct backend_options *o,
                    const struct server_setup *s, int port, char *err, size_t errlen)
{
    if (!o->self_exe || !*o->self_exe) {
        snprintf(err, errlen, "the sim backend needs the path of the testbench binary");
        return -EINVAL;
    }
    char num[32];
    snprintf(num, sizeof(num), "%d", port);
    int rc = argv_push(a, o->self_exe);
    if (!rc)
        rc = argv_push(a, "sim");
    if (!rc)
        rc = argv_push2(a, "--host", BACKEND_HOST);
    if (!rc)
        rc = argv_push2(a, "--port", num);
    if (!rc)
        rc = argv_push2(a, "--model", s->model);
    if (!rc && o->sim_gpu)
        rc = argv_push2(a, "--gpu", o->sim_gpu);
    if (!rc)
        rc = push_vllm_flags(a, s);
    snprintf(num, sizeof(num), "%" PRIu64, o->seed);
    if (!rc)
        rc = argv_push2(a, "--seed", num);
    if (!rc && o->sim_catalog)
        rc = argv_push2(a, "--catalog", o->sim_catalog);
    if (!rc && o->sim_calibration)
        rc = argv_push2(a, "--calibration", o->sim_calibration);
    if (!rc)
        rc = push_extra(a, s);
    return rc;
}

/* ---- docker ---------------------------------------------------------------------------- */

static bool name_ok(const char *id)
{
    if (!id || !*id)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

int backend_container_name(const struct backend_options *o, const struct server_setup *s, char *buf,
                           size_t len, char *err, size_t errlen)
{
    const char *prefix = o->name_prefix ? o->name_prefix : BACKEND_DEFAULT_PREFIX;
    if (!name_ok(s->id) || !name_ok(prefix)) {
        snprintf(err, errlen, "setup id '%s' and name prefix '%s' must be [a-z0-9._-] only",
                 s->id ? s->id : "", prefix);
        return -EINVAL;
    }
    if ((size_t)snprintf(buf, len, "%s-%s", prefix, s->id) >= len) {
        snprintf(err, errlen, "container name %s-%s is too long", prefix, s->id);
        return -EINVAL;
    }
    return 0;
}

bool backend_docker_host_net(const struct backend_options *o)
{
    return o->kind == BACKEND_DOCKER && o->docker_network &&
           strcmp(o->docker_network, BACKEND_HOST_NETWORK) == 0;
}

/* The host folder for the Hugging Face cache, '~' expanded, into buf. */
static int hf_cache_dir(const struct backend_options *o, char *buf, size_t len, char *err,
                        size_t errlen)
{
    const char *dir = o->hf_cache ? o->hf_cache : "~/.cache/huggingface";
    const char *home = getenv("HOME");
    int n;
    if (dir[0] == '~' && (dir[1] == '/' || dir[1] == '\0')) {
        if (!home || !*home) {
            snprintf(err, errlen, "HOME is not set: give the Hugging Face cache folder in full");
            return -EINVAL;
        }
        n = snprintf(buf, len, "%s%s", home, dir + 1);
    } else {
        n = snprintf(buf, len, "%s", dir);
    }
    if (n < 0 || (size_t)n >= len || buf[0] != '/') {
        snprintf(err, errlen, "Hugging Face cache folder '%s' must be an absolute path", dir);
        return -EINVAL;
    }
    return 0;
}

static int docker_argv(struct argv_list *a, const struct backend_options *o,
                       const struct server_setup *s, int port, char *err, size_t errlen)
{
    char name[256], hf[4096], text[4200];
    int rc = backend_container_name(o, s, name, sizeof(name), err, errlen);
    if (!rc)
        rc = hf_cache_dir(o, hf, sizeof(hf), err, errlen);
    if (rc)
        return rc;
    rc = argv_push(a, o->docker_bin ? o->docker_bin : "docker");
    if (!rc)
        rc = argv_push(a, "run");
    /* --rm: a container that ends by itself leaves nothing behind; its output is in our log. */
    if (!rc)
        rc = argv_push(a, "--rm");
    if (!rc)
        rc = argv_push2(a, "--name", name);
    if (!rc)
        rc = argv_push(a, "--ipc=host"); /* PyTorch shares tensors through /dev/shm */
    /* "none": no GPU request at all (a CPU image, or a machine without NVIDIA's runtime, where
     * any --gpus fails the start). */
    const char *gpus = o->docker_gpus ? o->docker_gpus : "all";
    if (!rc && strcmp(gpus, "none") != 0)
        rc = argv_push2(a, "--gpus", gpus);
    snprintf(text, sizeof(text), "%s:/root/.cache/huggingface", hf);
    if (!rc)
        rc = argv_push2(a, "-v", text);
    /* "-e NAME" without a value: docker copies it from our environment, so a token never
     * appears in argv, in `ps` or in the log. */
    if (!rc && getenv("HF_TOKEN"))
        rc = argv_push2(a, "-e", "HF_TOKEN");
    if (!rc && getenv("HUGGING_FACE_HUB_TOKEN"))
        rc = argv_push2(a, "-e", "HUGGING_FACE_HUB_TOKEN");
    /* Host network: the server listens on our loopback port itself, nothing is published.
     * A named network: the study reaches it by name on vLLM's port. Neither: vLLM's port
     * published on loopback only. */
    bool host_net = backend_docker_host_net(o);
    if (o->docker_network) {
        if (!rc)
            rc = argv_push2(a, "--network", o->docker_network);
    } else {
        snprintf(text, sizeof(text), "%s:%d:%d", BACKEND_HOST, port, BACKEND_CONTAINER_PORT);
        if (!rc)
            rc = argv_push2(a, "-p", text);
    }
    for (size_t i = 0; !rc && i < o->n_docker_args; i++)
        rc = argv_push(a, o->docker_args[i]);
    /* The image's entrypoint is `vllm serve`: what follows are its arguments, the model first
     * (vLLM's argparse_utils.py warns that `--model` with `vllm serve` is to be removed). */
    if (!rc)
        rc = argv_push(a, o->docker_image ? o->docker_image : BACKEND_DOCKER_IMAGE);
    if (!rc)
        rc = argv_push(a, s->model);
    if (!rc)
        rc = argv_push2(a, "--host", host_net ? BACKEND_HOST : "0.0.0.0");
    snprintf(text, sizeof(text), "%d", host_net ? port : BACKEND_CONTAINER_PORT);
    if (!rc)
        rc = argv_push2(a, "--port", text);
    if (!rc)
        rc = push_vllm_flags(a, s);
    if (!rc)
        rc = push_extra(a, s);
    return rc;
}

/* ---- command template ------------------------------------------------------------------ */

/* Splits the template into words (quotes as in backend.h) and calls word_fn on each. */
static int template_split(const char *t, int (*word_fn)(const char *word, void *ctx), void *ctx,
                          char *err, size_t errlen)
{
    struct buf w;
    buf_init(&w, BACKEND_MAX_WORD);
    int rc = 0;
    const char *p = t;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        buf_reset(&w);
        rc = buf_append(&w, "", 0); /* an empty quoted word ('') is still a word */
        while (!rc && *p && *p != ' ' && *p != '\t' && *p != '\n') {
            char q = *p;
            if (q == '\'' || q == '"') {
                const char *close = p + 1;
                while (*close && *close != q) {
                    if (q == '"' && *close == '\\' && (close[1] == '"' || close[1] == '\\'))
                        close++;
                    close++;
                }
                if (!*close) {
                    snprintf(err, errlen, "command template: unterminated %c quote", q);
                    rc = -EINVAL;
                    break;
                }
                for (const char *c = p + 1; !rc && c < close; c++) {
                    if (q == '"' && *c == '\\' && (c[1] == '"' || c[1] == '\\'))
                        c++;
                    rc = buf_append(&w, c, 1);
                }
                p = close + 1;
            } else if (q == '\\' && p[1]) {
                rc = buf_append(&w, p + 1, 1);
                p += 2;
            } else {
                rc = buf_append(&w, p, 1);
                p++;
            }
        }
        if (rc == -E2BIG)
            snprintf(err, errlen, "command template: a word is longer than %d bytes",
                     BACKEND_MAX_WORD);
        if (!rc)
            rc = word_fn(w.data, ctx);
        if (rc)
            break;
    }
    buf_release(&w);
    return rc;
}

struct template_ctx {
    struct argv_list *a;
    const struct backend_options *o;
    const struct server_setup *s;
    int port;
    bool extra_done; /* {extra_args} appeared */
    char *err;
    size_t errlen;
};

/* The text of placeholder name (len bytes) into buf; 0, -ENOENT (unknown) or -ENODATA
 * (the setup leaves it unset). */
static int placeholder_value(const struct template_ctx *c, const char *name, size_t len, char *buf,
                             size_t buflen)
{
    char key[64];
    if (len >= sizeof(key))
        return -ENOENT;
    memcpy(key, name, len);
    key[len] = '\0';
    if (strcmp(key, "model") == 0)
        snprintf(buf, buflen, "%s", c->s->model);
    else if (strcmp(key, "port") == 0)
        snprintf(buf, buflen, "%d", c->port);
    else if (strcmp(key, "host") == 0)
        snprintf(buf, buflen, "%s", BACKEND_HOST);
    else if (strcmp(key, "seed") == 0)
        snprintf(buf, buflen, "%" PRIu64, c->o->seed);
    else if (strcmp(key, "id") == 0) {
        if (!c->s->id)
            return -ENODATA;
        snprintf(buf, buflen, "%s", c->s->id);
    } else {
        size_t i = 0;
        while (i < N_VLLM_FLAGS && strcmp(key, vllm_flags[i].key) != 0)
            i++;
        if (i == N_VLLM_FLAGS)
            return -ENOENT;
        if (!setup_value(c->s, key, buf, buflen)) {
            /* vLLM's own defaults have a spelling; the others have none. */
            if (strcmp(key, "kv_cache_dtype") == 0)
                snprintf(buf, buflen, "auto");
            else if (strcmp(key, "tensor_parallel_size") == 0)
                snprintf(buf, buflen, "1");
            else
                return -ENODATA;
        }
    }
    return 0;
}

/* A word that is exactly "{..._flag}" or "{extra_args}": 1 when handled, 0 when not such a
 * word, negative on error. */
static int expand_whole_word(struct template_ctx *c, const char *word)
{
    size_t n = strlen(word);
    if (n < 3 || word[0] != '{' || word[n - 1] != '}')
        return 0;
    const char *name = word + 1;
    size_t len = n - 2;
    if (len == strlen("extra_args") && memcmp(name, "extra_args", len) == 0) {
        c->extra_done = true;
        int rc = push_extra(c->a, c->s);
        return rc ? rc : 1;
    }
    if (len == strlen("enable_prefix_caching_flag") &&
        memcmp(name, "enable_prefix_caching_flag", len) == 0) {
        const char *f = prefix_caching_flag(c->s);
        int rc = f ? argv_push(c->a, f) : 0;
        return rc ? rc : 1;
    }
    for (size_t i = 0; i < N_VLLM_FLAGS; i++) {
        size_t kl = strlen(vllm_flags[i].key);
        if (len != kl + strlen("_flag") || memcmp(name, vllm_flags[i].key, kl) != 0 ||
            strncmp(name + kl, "_flag", 5) != 0)
            continue;
        char v[64];
        int rc = 0;
        if (setup_value(c->s, vllm_flags[i].key, v, sizeof(v)))
            rc = argv_push2(c->a, vllm_flags[i].flag, v);
        return rc ? rc : 1;
    }
    return 0;
}

static int template_word(const char *word, void *ctx)
{
    struct template_ctx *c = ctx;
    int rc = expand_whole_word(c, word);
    if (rc)
        return rc < 0 ? rc : 0;
    struct buf out;
    buf_init(&out, BACKEND_MAX_WORD);
    rc = buf_append(&out, "", 0);
    for (const char *p = word; !rc && *p;) {
        size_t len = 0;
        if (*p == '{')
            while ((p[1 + len] >= 'a' && p[1 + len] <= 'z') || p[1 + len] == '_')
                len++;
        if (*p != '{' || len == 0 || p[1 + len] != '}') {
            rc = buf_append(&out, p, 1); /* an ordinary '{' (JSON) or character */
            p++;
            continue;
        }
        char v[4096];
        rc = placeholder_value(c, p + 1, len, v, sizeof(v));
        if (rc == -ENOENT)
            snprintf(c->err, c->errlen, "command template: unknown placeholder {%.*s}", (int)len,
                     p + 1);
        else if (rc == -ENODATA)
            snprintf(c->err, c->errlen,
                     "command template: {%.*s} is unset in setup '%s' (use {%.*s_flag}, which "
                     "drops the flag when unset)",
                     (int)len, p + 1, c->s->id ? c->s->id : "", (int)len, p + 1);
        if (!rc)
            rc = buf_puts(&out, v);
        p += len + 2;
    }
    if (rc == -ENOENT || rc == -ENODATA)
        rc = -EINVAL;
    else if (rc == -E2BIG)
        snprintf(c->err, c->errlen, "command template: a word is longer than %d bytes",
                 BACKEND_MAX_WORD);
    if (!rc)
        rc = argv_push(c->a, out.data);
    buf_release(&out);
    return rc;
}

static int command_argv(struct argv_list *a, const struct backend_options *o,
                        const struct server_setup *s, int port, char *err, size_t errlen)
{
    if (!o->command_template) {
        snprintf(err, errlen, "the command backend needs a command template");
        return -EINVAL;
    }
    struct template_ctx c = {a, o, s, port, false, err, errlen};
    int rc = template_split(o->command_template, template_word, &c, err, errlen);
    if (!rc && a->n == 0) {
        snprintf(err, errlen, "command template is empty");
        rc = -EINVAL;
    }
    if (!rc && !c.extra_done)
        rc = push_extra(a, s);
    return rc;
}

/* ---- public ---------------------------------------------------------------------------- */

int backend_argv_err(const struct backend_options *o, const struct server_setup *s, int port,
                     char ***argv_out, char *err, size_t errlen)
{
    struct argv_list a = {0};
    int rc = -EINVAL;
    *argv_out = NULL;
    if (!o || !s || !s->model || !*s->model) {
        snprintf(err, errlen, "a setup needs a model");
        goto fail;
    }
    if (s->n_extra_args && !s->extra_args) {
        snprintf(err, errlen, "setup has %zu extra args but no array", s->n_extra_args);
        goto fail;
    }
    switch (o->kind) {
    case BACKEND_SIM:
        rc = sim_argv(&a, o, s, port, err, errlen);
        break;
    case BACKEND_DOCKER:
        rc = docker_argv(&a, o, s, port, err, errlen);
        break;
    case BACKEND_COMMAND:
        rc = command_argv(&a, o, s, port, err, errlen);
        break;
    case BACKEND_NONE:
        snprintf(err, errlen, "the none backend runs no command");
        rc = -ENOENT;
        break;
    default:
        snprintf(err, errlen, "unknown backend kind %d", (int)o->kind);
        rc = -EINVAL;
        break;
    }
    if (rc == -E2BIG) {
        snprintf(err, errlen, "command line longer than %d words", BACKEND_MAX_ARGS);
        rc = -EINVAL;
    }
    if (rc)
        goto fail;
    *argv_out = a.v;
    return 0;
fail:
    backend_argv_free(a.v);
    return rc;
}

int backend_argv(const struct backend_options *o, const struct server_setup *s, int port,
                 char ***argv_out)
{
    char err[512];
    return backend_argv_err(o, s, port, argv_out, err, sizeof(err));
}
