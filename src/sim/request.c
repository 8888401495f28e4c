/*
 * request.c - request bodies of the OpenAI API -> validated calls, and the chat template.
 *
 * Parsing happens once per request with jansson; nothing here is on the per-token path.
 * Limits and messages follow vLLM's OpenAI server (vllm/entrypoints/openai/protocol.py and
 * serving_engine.py) so that clients see the errors they would see from vLLM.
 *
 * Chat template (documented, Llama-3 shaped; its tokens count in prompt_tokens as a real
 * template's do):
 *     <|begin_of_text|>
 *     for each message:  <|start_header_id|> ROLE <|end_header_id|> CONTENT <|eot_id|>
 *     then (add_generation_prompt, default true):  <|start_header_id|> assistant <|end_header_id|>
 * Each marker is one token; ROLE and CONTENT go through the tokenizer. So a chat of one user
 * message of W common words costs W + 8 tokens. CONTENT may be a string, null, or a list of
 * parts of which the {"type":"text","text":...} ones count.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/sim_internal.h"

void sim_error_set(struct sim_error *e, int status, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    switch (status) {
    case 400:
        e->type = "BadRequestError";
        break;
    case 404:
        e->type = "NotFoundError";
        break;
    case 405:
        e->type = "MethodNotAllowedError";
        break;
    case 503:
        e->type = "ServiceUnavailableError";
        break;
    default:
        e->type = "InternalServerError";
        break;
    }
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0. p is NUL-terminated, which no continuation byte matches. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Invalid UTF-8 (a client's bytes quoted back in an error message, jansson's "near '...'"
 * included) becomes U+FFFD: a JSON text must be UTF-8, and clients decode it strictly. */
int json_quote(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_append(out, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (!rc && *p) {
        char esc[6];
        size_t n = utf8_len(p);
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            rc = buf_append(out, esc, 2);
        } else if (*p < 0x20) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            rc = buf_append(out, esc, 6);
        } else if (n == 0) {
            rc = buf_append(out, "\\ufffd", 6);
            n = 1;
        } else {
            rc = buf_append(out, p, n);
        }
        p += n;
    }
    if (!rc)
        rc = buf_append(out, "\"", 1);
    return rc;
}

void sim_error_json(const struct sim_error *e, struct buf *out)
{
    buf_reset(out);
    struct buf msg;
    buf_init(&msg, sizeof(e->message) * 6 + 8);
    int rc = json_quote(&msg, e->message);
    if (!rc)
        rc = buf_printf(out,
                        "{\"object\":\"error\",\"error\":{\"message\":%s,\"type\":\"%s\","
                        "\"param\":null,\"code\":%d},\"message\":%s,\"type\":\"%s\","
                        "\"param\":null,\"code\":%d}",
                        msg.data, e->type, e->status, msg.data, e->type, e->status);
    if (rc) {
        buf_reset(out);
        if (buf_puts(out, "{\"object\":\"error\",\"error\":{\"message\":\"error\"}}")) {
            /* out of memory: an empty body is all we can send */
        }
    }
    buf_release(&msg);
}

const char *sim_models_resolve(const struct sim_models *m, const char *name)
{
    if (!name || !*name || strcmp(name, m->served_name) == 0)
        return m->served_name;
    for (size_t i = 0; i < m->n_lora; i++)
        if (strcmp(name, m->lora[i].name) == 0)
            return m->lora[i].name;
    return NULL;
}

void sim_call_init(struct sim_call *c)
{
    memset(c, 0, sizeof(*c));
    tokvec_init(&c->prompt, SIM_MAX_PROMPT_TOKENS);
}

void sim_call_release(struct sim_call *c)
{
    tokvec_release(&c->prompt);
}

static int load_body(json_t **out, const char *body, size_t len, struct sim_error *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        sim_error_set(e, 400, "Invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line,
                      jerr.column);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sim_error_set(e, 400, "The request body must be a JSON object");
        return -1;
    }
    *out = root;
    return 0;
}

/* Optional boolean field; null counts as absent. */
static int get_bool(json_t *obj, const char *key, bool *out, struct sim_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        sim_error_set(e, 400, "'%s' must be a boolean", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* Optional integer field; *present says whether it was given (null counts as absent). */
static int get_int(json_t *obj, const char *key, long long *out, bool *present, struct sim_error *e)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        sim_error_set(e, 400, "'%s' must be an integer", key);
        return -1;
    }
    *out = json_integer_value(v);
    *present = true;
    return 0;
}

static int resolve_model(json_t *root, const struct sim_models *models, const char **out,
                         struct sim_error *e)
{
    json_t *v = json_object_get(root, "model");
    const char *name = NULL;
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            sim_error_set(e, 400, "'model' must be a string");
            return -1;
        }
        name = json_string_value(v);
    }
    const char *m = sim_models_resolve(models, name);
    if (!m) {
        sim_error_set(e, 404, "The model `%.*s` does not exist.", SIM_MAX_NAME, name);
        return -1;
    }
    *out = m;
    return 0;
}

static int push_ids(const json_t *arr, const struct tokenizer *tok, struct tokvec *out,
                    struct sim_error *e)
{
    size_t i;
    json_t *v;
    uint32_t vocab = tokenizer_vocab_size(tok);
    json_array_foreach(arr, i, v)
    {
        if (!json_is_integer(v)) {
            sim_error_set(e, 400, "Token ids must be integers (item %zu)", i);
            return -1;
        }
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= (json_int_t)vocab) {
            sim_error_set(e, 400, "Token id %lld is out of vocabulary (size %u)", (long long)id,
                          vocab);
            return -1;
        }
        if (tokvec_push(out, (uint32_t)id)) {
            sim_error_set(e, 400, "The prompt is too long");
            return -1;
        }
    }
    return 0;
}

static int encode_text(const char *s, size_t len, const struct tokenizer *tok, struct tokvec *out,
                       struct sim_error *e)
{
    if (tokenizer_encode(tok, s, len, out)) {
        sim_error_set(e, 400, "The prompt is too long");
        return -1;
    }
    return 0;
}

/* prompt: a string, a list of token ids, or a list holding one string or one id list. */
static int parse_prompt(json_t *p, const struct tokenizer *tok, struct tokvec *out,
                        struct sim_error *e)
{
    if (!p || json_is_null(p)) {
        sim_error_set(e, 400, "'prompt' is required");
        return -1;
    }
    if (json_is_string(p))
        return encode_text(json_string_value(p), json_string_length(p), tok, out, e);
    if (!json_is_array(p)) {
        sim_error_set(e, 400, "'prompt' must be a string or a list");
        return -1;
    }
    if (json_array_size(p) == 0) {
        sim_error_set(e, 400, "'prompt' must not be empty");
        return -1;
    }
    json_t *first = json_array_get(p, 0);
    if (json_is_integer(first))
        return push_ids(p, tok, out, e);
    if (json_array_size(p) > 1) {
        sim_error_set(e, 400, "Batched prompts are not supported: send one prompt per request");
        return -1;
    }
    if (json_is_string(first))
        return encode_text(json_string_value(first), json_string_length(first), tok, out, e);
    if (json_is_array(first))
        return push_ids(first, tok, out, e);
    sim_error_set(e, 400, "'prompt' must be a string, a list of token ids or a list of strings");
    return -1;
}

static int push_word(const struct tokenizer *tok, const char *w, struct tokvec *out,
                     struct sim_error *e)
{
    return encode_text(w, strlen(w), tok, out, e);
}

int sim_render_chat(const void *messages_v, const struct tokenizer *tok, struct tokvec *out,
                    struct sim_error *e)
{
    const json_t *messages = messages_v;
    if (!messages || !json_is_array(messages)) {
        sim_error_set(e, 400, "'messages' is required and must be a list");
        return -1;
    }
    if (json_array_size(messages) == 0) {
        sim_error_set(e, 400, "'messages' must not be empty");
        return -1;
    }
    if (push_word(tok, TOK_BOS, out, e))
        return -1;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role)) {
            sim_error_set(e, 400, "messages[%zu] needs a string 'role'", i);
            return -1;
        }
        if (push_word(tok, TOK_HDR_START, out, e) ||
            encode_text(json_string_value(role), json_string_length(role), tok, out, e) ||
            push_word(tok, TOK_HDR_END, out, e))
            return -1;
        json_t *content = json_object_get(m, "content");
        if (json_is_string(content)) {
            if (encode_text(json_string_value(content), json_string_length(content), tok, out, e))
                return -1;
        } else if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part)
            {
                json_t *text = json_object_get(part, "text");
                if (json_is_string(text) &&
                    encode_text(json_string_value(text), json_string_length(text), tok, out, e))
                    return -1;
            }
        } else if (content && !json_is_null(content)) {
            sim_error_set(e, 400, "messages[%zu].content must be a string or a list of parts", i);
            return -1;
        }
        if (push_word(tok, TOK_EOT, out, e))
            return -1;
    }
    return 0;
}

static int render_generation_prompt(const struct tokenizer *tok, struct tokvec *out,
                                    struct sim_error *e)
{
    if (push_word(tok, TOK_HDR_START, out, e) || push_word(tok, "assistant", out, e) ||
        push_word(tok, TOK_HDR_END, out, e))
        return -1;
    return 0;
}

static int parse_limits(struct sim_call *c, json_t *root, const struct sim_models *models,
                        struct sim_error *e)
{
    long long v;
    bool present;
    long long mml = models->max_model_len;
    long long plen = (long long)c->prompt.n;

    if (get_int(root, "n", &v, &present, e))
        return -1;
    if (present && v != 1) {
        sim_error_set(e, 400, "n must be 1 (testbench sim generates one choice), got %lld", v);
        return -1;
    }
    if (get_bool(root, "ignore_eos", &c->ignore_eos, e))
        return -1;
    if (get_int(root, "min_tokens", &v, &present, e))
        return -1;
    if (present && v < 0) {
        sim_error_set(e, 400, "min_tokens must be greater than or equal to 0, got %lld.", v);
        return -1;
    }
    c->min_tokens = present ? (int)(v > mml ? mml : v) : 0;
    if (get_int(root, "seed", &v, &c->has_seed, e))
        return -1;
    if (c->has_seed)
        c->seed = (uint64_t)v;

    long long max_tokens = -1;
    if (c->chat) {
        if (get_int(root, "max_completion_tokens", &v, &present, e))
            return -1;
        if (!present && get_int(root, "max_tokens", &v, &present, e))
            return -1;
        if (present)
            max_tokens = v;
    } else {
        if (get_int(root, "max_tokens", &v, &present, e))
            return -1;
        max_tokens = present ? v : 16;
    }
    if (plen >= mml) {
        sim_error_set(e, 400,
                      "This model's maximum context length is %lld tokens. However, your "
                      "request has %lld input tokens. Please reduce the length of the input "
                      "messages.",
                      mml, plen);
        return -1;
    }
    if (max_tokens < 0 && c->chat)
        max_tokens = mml - plen;
    if (max_tokens < 1) {
        sim_error_set(e, 400, "max_tokens must be at least 1, got %lld.", max_tokens);
        return -1;
    }
    /* Compared as max_tokens > mml - plen, never as a sum: a client may send any int64
     * (max_tokens: 9223372036854775807), and plen + max_tokens would overflow. plen < mml
     * here, so the subtraction cannot. */
    if (max_tokens > mml - plen) {
        if (max_tokens > LLONG_MAX - plen)
            sim_error_set(e, 400,
                          "This model's maximum context length is %lld tokens. However, you "
                          "requested %lld tokens in the completion (%lld in the messages). "
                          "Please reduce the length of the messages or completion.",
                          mml, max_tokens, plen);
        else
            sim_error_set(e, 400,
                          "This model's maximum context length is %lld tokens. However, you "
                          "requested %lld tokens (%lld in the messages, %lld in the "
                          "completion). Please reduce the length of the messages or "
                          "completion.",
                          mml, plen + max_tokens, plen, max_tokens);
        return -1;
    }
    if (c->min_tokens > max_tokens) {
        sim_error_set(e, 400, "min_tokens must be less than or equal to max_tokens=%lld, got %d.",
                      max_tokens, c->min_tokens);
        return -1;
    }
    c->max_tokens = (int)max_tokens;
    return 0;
}

int sim_call_parse(struct sim_call *c, bool chat, const char *body, size_t len,
                   const struct tokenizer *tok, const struct sim_models *models,
                   struct sim_error *e)
{
    json_t *root = NULL;
    int rc = -1;
    c->chat = chat;
    if (load_body(&root, body, len, e))
        goto out;
    if (resolve_model(root, models, &c->model, e))
        goto out;
    if (chat) {
        if (sim_render_chat(json_object_get(root, "messages"), tok, &c->prompt, e))
            goto out;
        bool gen = true;
        if (get_bool(root, "add_generation_prompt", &gen, e))
            goto out;
        if (gen && render_generation_prompt(tok, &c->prompt, e))
            goto out;
    } else {
        if (parse_prompt(json_object_get(root, "prompt"), tok, &c->prompt, e))
            goto out;
        if (c->prompt.n == 0) {
            sim_error_set(e, 400, "The prompt must contain at least one token");
            goto out;
        }
    }
    if (get_bool(root, "stream", &c->stream, e))
        goto out;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            sim_error_set(e, 400, "'stream_options' must be an object");
            goto out;
        }
        if (!c->stream) {
            sim_error_set(e, 400, "Stream options can only be defined when `stream=True`.");
            goto out;
        }
        if (get_bool(so, "include_usage", &c->include_usage, e) ||
            get_bool(so, "continuous_usage_stats", &c->continuous_usage, e))
            goto out;
        /* vLLM sends per-chunk usage only when the final usage is asked for too. */
        c->continuous_usage = c->continuous_usage && c->include_usage;
    }
    if (parse_limits(c, root, models, e))
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int append_ids(struct buf *out, const uint32_t *ids, size_t n)
{
    int rc = buf_append(out, "[", 1);
    for (size_t i = 0; !rc && i < n; i++)
        rc = buf_printf(out, i ? ",%u" : "%u", ids[i]);
    if (!rc)
        rc = buf_append(out, "]", 1);
    return rc;
}

/* out = head, ids as a JSON list, tail: the /tokenize replies of both shapes. */
static int reply_with_ids(struct buf *out, const char *head, const struct tokvec *ids,
                          const char *tail, struct sim_error *e)
{
    buf_reset(out);
    if (buf_puts(out, head) || append_ids(out, ids->v, ids->n) || buf_puts(out, tail)) {
        sim_error_set(e, 500, "response too large");
        return -1;
    }
    return 0;
}

int sim_tokenize(const char *body, size_t len, const struct tokenizer *tok,
                 const struct sim_models *models, struct buf *out, struct sim_error *e)
{
    json_t *root = NULL;
    struct tokvec ids;
    const char *model;
    int rc = -1;
    tokvec_init(&ids, SIM_MAX_PROMPT_TOKENS);
    if (load_body(&root, body, len, e) || resolve_model(root, models, &model, e))
        goto out;
    json_t *messages = json_object_get(root, "messages");
    if (messages) {
        bool gen = true;
        if (sim_render_chat(messages, tok, &ids, e) ||
            get_bool(root, "add_generation_prompt", &gen, e))
            goto out;
        if (gen && render_generation_prompt(tok, &ids, e))
            goto out;
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (!json_is_string(p)) {
            sim_error_set(e, 400, "'prompt' (a string) or 'messages' is required");
            goto out;
        }
        if (encode_text(json_string_value(p), json_string_length(p), tok, &ids, e))
            goto out;
    }
    char head[96];
    snprintf(head, sizeof(head), "{\"count\":%zu,\"max_model_len\":%d,\"tokens\":", ids.n,
             models->max_model_len);
    rc = reply_with_ids(out, head, &ids, ",\"token_strs\":null}", e);
out:
    tokvec_release(&ids);
    json_decref(root);
    return rc;
}

int sim_tokenize_llamacpp(const char *body, size_t len, const struct tokenizer *tok,
                          struct buf *out, struct sim_error *e)
{
    json_t *root = NULL;
    struct tokvec ids;
    int rc = -1;
    tokvec_init(&ids, SIM_MAX_PROMPT_TOKENS);
    if (load_body(&root, body, len, e))
        goto out;
    json_t *c = json_object_get(root, "content");
    if (json_is_string(c) && encode_text(json_string_value(c), json_string_length(c), tok, &ids, e))
        goto out;
    rc = reply_with_ids(out, "{\"tokens\":", &ids, "}", e);
out:
    tokvec_release(&ids);
    json_decref(root);
    return rc;
}

int sim_detokenize(const char *body, size_t len, const struct tokenizer *tok,
                   const struct sim_models *models, struct buf *out, struct sim_error *e)
{
    json_t *root = NULL;
    struct tokvec ids;
    struct buf text;
    const char *model;
    int rc = -1;
    tokvec_init(&ids, SIM_MAX_PROMPT_TOKENS);
    buf_init(&text, SIM_MAX_BODY);
    if (load_body(&root, body, len, e) || resolve_model(root, models, &model, e))
        goto out;
    json_t *tokens = json_object_get(root, "tokens");
    if (!json_is_array(tokens)) {
        sim_error_set(e, 400, "'tokens' (a list of token ids) is required");
        goto out;
    }
    if (push_ids(tokens, tok, &ids, e))
        goto out;
    buf_reset(out);
    if (tokenizer_decode(tok, ids.v, ids.n, &text) || buf_puts(out, "{\"prompt\":") ||
        json_quote(out, text.data ? text.data : "") || buf_puts(out, "}")) {
        sim_error_set(e, 500, "response too large");
        goto out;
    }
    rc = 0;
out:
    buf_release(&text);
    tokvec_release(&ids);
    json_decref(root);
    return rc;
}
