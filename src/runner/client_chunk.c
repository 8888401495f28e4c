/*
 * client_chunk.c - one stream chunk's JSON read without building a document, and a JSON
 * string's raw text decoded (client_chunk.h).
 */
#include "runner/client_chunk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * One vLLM chunk is ~250 bytes; jansson builds a document of hash tables for it (~6 us on
 * the build machine), which at 100k events/s would be most of a core. This scanner walks
 * the text once, validates the syntax (RFC 8259 grammar, nesting bounded) and picks out the
 * few members we need, allocating nothing. "Non-empty string" is decided on the raw token:
 * any escape decodes to at least one character. UTF-8 is not validated (a server that sends
 * broken UTF-8 still produced a token). Rare paths (error messages) use jansson.
 */

#define JS_MAX_DEPTH 64

struct jscan {
    const char *p, *end, *start;
    int depth;
};

typedef int (*js_member_fn)(struct jscan *s, const char *key, size_t klen, void *ctx);

static int js_value(struct jscan *s);

static void js_ws(struct jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static bool js_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A string token; body and blen give its raw contents between the quotes. */
static int js_string(struct jscan *s, const char **body, size_t *blen)
{
    if (s->p >= s->end || *s->p != '"')
        return -1;
    const char *b = ++s->p;
    while (s->p < s->end) {
        unsigned char ch = (unsigned char)*s->p;
        if (ch == '"') {
            *body = b;
            *blen = (size_t)(s->p - b);
            s->p++;
            return 0;
        }
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            s->p++;
            continue;
        }
        if (++s->p >= s->end)
            return -1;
        switch (*s->p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            s->p++;
            break;
        case 'u':
            if (s->end - s->p < 5 || !js_hex(s->p[1]) || !js_hex(s->p[2]) || !js_hex(s->p[3]) ||
                !js_hex(s->p[4]))
                return -1;
            s->p += 5;
            break;
        default:
            return -1;
        }
    }
    return -1;
}

static bool js_digit(const struct jscan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* A number; *ival is set (and true returned through is_int) for a plain integer. */
static int js_number(struct jscan *s, long long *ival, bool *is_int)
{
    bool neg = false, integer = true;
    long long v = 0;
    if (s->p < s->end && *s->p == '-') {
        neg = true;
        s->p++;
    }
    if (!js_digit(s))
        return -1;
    if (*s->p == '0') {
        s->p++;
    } else {
        while (js_digit(s)) {
            if (v < 1000000000000000LL)
                v = v * 10 + (*s->p - '0');
            s->p++;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        integer = false;
        s->p++;
        if (!js_digit(s))
            return -1;
        while (js_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integer = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!js_digit(s))
            return -1;
        while (js_digit(s))
            s->p++;
    }
    if (ival)
        *ival = neg ? -v : v;
    if (is_int)
        *is_int = integer;
    return 0;
}

static int js_literal(struct jscan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static bool js_at_null(const struct jscan *s)
{
    return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0;
}

/* An object; fn (may be NULL) is called at each member's value and must consume it. */
static int js_object(struct jscan *s, js_member_fn fn, void *ctx)
{
    if (s->p >= s->end || *s->p != '{' || ++s->depth > JS_MAX_DEPTH)
        return -1;
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t klen;
        if (js_string(s, &key, &klen))
            return -1;
        js_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        js_ws(s);
        if (fn ? fn(s, key, klen, ctx) : js_value(s))
            return -1;
        js_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == '}') {
            s->p++;
            s->depth--;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        js_ws(s);
    }
}

/* An array; fn (may be NULL) is called for the first element (index 0) only. */
static int js_array(struct jscan *s, int (*first)(struct jscan *s, void *ctx), void *ctx)
{
    if (s->p >= s->end || *s->p != '[' || ++s->depth > JS_MAX_DEPTH)
        return -1;
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (size_t i = 0;; i++) {
        if ((i == 0 && first) ? first(s, ctx) : js_value(s))
            return -1;
        js_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ']') {
            s->p++;
            s->depth--;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        js_ws(s);
    }
}

static int js_value(struct jscan *s)
{
    if (s->p >= s->end)
        return -1;
    const char *b;
    size_t n;
    switch (*s->p) {
    case '{':
        return js_object(s, NULL, NULL);
    case '[':
        return js_array(s, NULL, NULL);
    case '"':
        return js_string(s, &b, &n);
    case 't':
        return js_literal(s, "true", 4);
    case 'f':
        return js_literal(s, "false", 5);
    case 'n':
        return js_literal(s, "null", 4);
    default:
        return js_number(s, NULL, NULL);
    }
}

static bool key_is(const char *key, size_t klen, const char *lit)
{
    size_t n = strlen(lit);
    return klen == n && memcmp(key, lit, n) == 0;
}

/* A value that counts as text when it is a non-empty string; answer text (not reasoning)
 * also keeps its raw bytes. */
static int js_text_value(struct jscan *s, struct client_chunk *out, bool answer)
{
    if (s->p < s->end && *s->p == '"') {
        const char *b;
        size_t n;
        if (js_string(s, &b, &n))
            return -1;
        if (n > 0) {
            out->text = true;
            if (answer) {
                out->answer = true;
                out->content = b;
                out->content_len = n;
            }
        }
        return 0;
    }
    return js_value(s);
}

static int on_delta_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    if (key_is(key, klen, "content"))
        return js_text_value(s, ctx, true);
    if (key_is(key, klen, "reasoning_content") || key_is(key, klen, "reasoning"))
        return js_text_value(s, ctx, false);
    return js_value(s);
}

static int on_choice_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    if (key_is(key, klen, "text"))
        return js_text_value(s, out, true);
    if (key_is(key, klen, "delta") && s->p < s->end && *s->p == '{')
        return js_object(s, on_delta_member, out);
    if (key_is(key, klen, "finish_reason") && !js_at_null(s))
        out->finish = true;
    return js_value(s);
}

static int on_first_choice(struct jscan *s, void *ctx)
{
    if (s->p < s->end && *s->p == '{')
        return js_object(s, on_choice_member, ctx);
    return js_value(s);
}

/* A count into *slot when the value is a plain integer in int range; else just skipped. */
static int js_count_value(struct jscan *s, int *slot)
{
    if (!slot || s->p >= s->end || !(*s->p == '-' || (*s->p >= '0' && *s->p <= '9')))
        return js_value(s);
    long long v;
    bool is_int;
    if (js_number(s, &v, &is_int))
        return -1;
    if (is_int && v >= 0 && v <= INT32_MAX)
        *slot = (int)v;
    return 0;
}

static int on_completion_details(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    return js_count_value(s, key_is(key, klen, "reasoning_tokens") ? &out->reasoning_tokens : NULL);
}

static int on_prompt_details(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    return js_count_value(s, key_is(key, klen, "cached_tokens") ? &out->cached_tokens : NULL);
}

static int on_usage_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    bool obj = s->p < s->end && *s->p == '{';
    if (obj && key_is(key, klen, "completion_tokens_details"))
        return js_object(s, on_completion_details, out);
    if (obj && key_is(key, klen, "prompt_tokens_details"))
        return js_object(s, on_prompt_details, out);
    int *slot = key_is(key, klen, "prompt_tokens")       ? &out->prompt_tokens
                : key_is(key, klen, "completion_tokens") ? &out->completion_tokens
                                                         : NULL;
    return js_count_value(s, slot);
}

static int on_top_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    if (key_is(key, klen, "choices") && s->p < s->end && *s->p == '[')
        return js_array(s, on_first_choice, out);
    if (key_is(key, klen, "usage") && s->p < s->end && *s->p == '{')
        return js_object(s, on_usage_member, out);
    if (key_is(key, klen, "error") && !js_at_null(s))
        out->error = true;
    if (key_is(key, klen, "id") && s->p < s->end && *s->p == '"')
        return js_string(s, &out->id, &out->id_len);
    return js_value(s);
}

int client_chunk_parse(const char *data, size_t len, struct client_chunk *out, size_t *bad_at)
{
    struct jscan s = {.p = data, .end = data + len, .start = data};
    memset(out, 0, sizeof(*out));
    out->prompt_tokens = out->completion_tokens = -1;
    out->reasoning_tokens = out->cached_tokens = -1;
    js_ws(&s);
    int rc = js_object(&s, on_top_member, out);
    if (!rc) {
        js_ws(&s);
        if (s.p != s.end)
            rc = -1;
    }
    if (rc) {
        if (bad_at)
            *bad_at = (size_t)(s.p - s.start);
        return -EINVAL;
    }
    return 0;
}

/* ===== Stream content ===== */

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    return v;
}

static int append_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Only sessions keep answers, so this is off the common path. */
int client_text_append(struct buf *b, const char *raw, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && raw[run] != '\\')
            run++;
        if (run > i) {
            int rc = buf_append(b, raw + i, run - i);
            if (rc)
                return rc;
            i = run;
            continue;
        }
        char e = raw[i + 1];
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            char ch = k ? to[k - from] : e;
            int rc = buf_append(b, &ch, 1);
            if (rc)
                return rc;
            i += 2;
            continue;
        }
        unsigned cp = hex4(raw + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n && raw[i] == '\\' && raw[i + 1] == 'u' &&
            hex4(raw + i + 2) >= 0xdc00 && hex4(raw + i + 2) < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(raw + i + 2) - 0xdc00);
            i += 6;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
        }
        int rc = append_utf8(b, cp);
        if (rc)
            return rc;
    }
    return 0;
}
