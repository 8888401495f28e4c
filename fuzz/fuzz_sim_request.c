/*
 * fuzz_sim_request.c - the simulator's request handling (src/sim/request.c) without sockets:
 * the first byte picks the route (/v1/completions, /v1/chat/completions, /tokenize,
 * /detokenize), the rest is the body, handed to the function server.c calls for that route.
 * Properties beyond "no crash": an accepted generation fits the context (prompt + max_tokens
 * <= max_model_len, 1 <= max_tokens, min_tokens <= max_tokens), a refusal carries a 4xx/5xx
 * status and a message, and its JSON error body is valid JSON.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "sim/sim_internal.h"

#define MML 4096

static struct tokenizer *tok;
static struct sim_lora lora = {"sql-lora", "/adapters/sql"};
static struct sim_models models = {"served", "meta-llama/Llama-3.1-8B-Instruct", &lora, 1, MML, 0};

static void check_error(const struct sim_error *e)
{
    if (e->status < 400 || e->status > 599 || !e->type || !e->message[0])
        abort();
    struct buf out;
    buf_init(&out, 1u << 20);
    sim_error_json(e, &out);
    json_t *j = json_loadb(out.data, out.len, 0, NULL);
    if (!j)
        abort();
    json_decref(j);
    buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok && tokenizer_new(&tok, 128256))
        abort();
    if (size < 1)
        return 0;
    unsigned route = data[0] % 4;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct sim_error e;
    memset(&e, 0, sizeof(e));
    if (route < 2) {
        struct sim_call c;
        sim_call_init(&c);
        if (sim_call_parse(&c, route == 1, body, len, tok, &models, &e) == 0) {
            if (c.max_tokens < 1 || (long long)c.prompt.n + c.max_tokens > MML ||
                c.min_tokens > c.max_tokens || c.min_tokens < 0 || !c.model)
                abort();
        } else {
            check_error(&e);
        }
        sim_call_release(&c);
        return 0;
    }
    struct buf out;
    buf_init(&out, SIM_MAX_BODY * 4);
    int rc = route == 2 ? sim_tokenize(body, len, tok, &models, &out, &e)
                        : sim_detokenize(body, len, tok, &models, &out, &e);
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        if (!j)
            abort();
        json_decref(j);
    } else {
        check_error(&e);
    }
    buf_release(&out);
    return 0;
}
