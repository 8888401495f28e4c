/*
 * server_log.c - what a server's start-up log says: its KV-cache size and concurrency, and why
 * it refused to start. The wordings are vLLM's:
 *
 *   vllm/v1/core/kv_cache_utils.py, _report_kv_cache_config():
 *       "GPU KV cache size: %s tokens"  (f"{num_tokens:,}": thousands separators)
 *       "Maximum concurrency for %s tokens per request: %.2fx"
 *   vllm/v1/core/kv_cache_utils.py, _check_enough_kv_cache_memory():
 *       "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` ..."
 *       "To serve at least one request with the models's max seq len (%d), (%s GiB KV cache is
 *        needed, which is larger than the available KV cache memory (%s GiB). ..."
 *   vllm/worker/worker.py (V0), raise_if_cache_size_invalid():
 *       "The model's max seq len (%d) is larger than the maximum number of tokens that can be
 *        stored in KV cache (%d). Try increasing `gpu_memory_utilization` ..."
 *   PyTorch: "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ..."
 *
 * `testbench sim` prints the same sentences (src/engine/engine.c), so the simulator's refusals
 * are classified as vLLM's are.
 */
#include "study/backend_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct failure_pattern {
    const char *text;
    enum start_status status;
} failure_patterns[] = {
    /* KV first: more specific than any memory wording. */
    {"larger than the maximum number of tokens that can be stored in KV cache", START_KV_TOO_SMALL},
    {"KV cache is needed, which is larger than the available KV cache memory", START_KV_TOO_SMALL},
    /* The simulator's wording before it took vLLM's (binaries built earlier). */
    {"KV blocks but the KV cache holds", START_KV_TOO_SMALL},
    {"No available memory for the cache blocks", START_OOM},
    {"OutOfMemoryError", START_OOM},
    {"out of memory", START_OOM}, /* "CUDA out of memory", "HIP out of memory" */
};

#define N_PATTERNS (sizeof(failure_patterns) / sizeof(failure_patterns[0]))

/* Case-insensitive search for needle in hay[0..hlen); a pointer into hay or NULL. */
static const char *find_ci(const char *hay, size_t hlen, const char *needle)
{
    size_t nlen = strlen(needle);
    for (size_t i = 0; nlen <= hlen && i <= hlen - nlen; i++) {
        size_t k = 0;
        while (k < nlen && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == nlen)
            return hay + i;
    }
    return NULL;
}

/* A count written with thousands separators ("48,384") at p (before end); -1 if none.
 * *next is set past it. */
static long parse_count(const char *p, const char *end, const char **next)
{
    char digits[32];
    size_t n = 0;
    while (p < end && *p == ' ')
        p++;
    while (p < end && (isdigit((unsigned char)*p) || (*p == ',' && n > 0))) {
        if (*p != ',') {
            if (n + 1 >= sizeof(digits))
                return -1;
            digits[n++] = *p;
        }
        p++;
    }
    *next = p;
    if (n == 0)
        return -1;
    digits[n] = '\0';
    return strtol(digits, NULL, 10);
}

/* "Maximum concurrency for 32,768 tokens per request: 1.48x" from the text after "for ". */
static void parse_concurrency(const char *p, const char *end, struct server_facts *f)
{
    const char *q;
    long len = parse_count(p, end, &q);
    const char *colon = find_ci(q, (size_t)(end - q), "per request:");
    if (len <= 0 || len > 1L << 30 || !colon)
        return;
    char num[32];
    const char *v = colon + strlen("per request:");
    while (v < end && *v == ' ')
        v++;
    size_t n = 0;
    while (v + n < end && n + 1 < sizeof(num) && (isdigit((unsigned char)v[n]) || v[n] == '.'))
        n++;
    if (n == 0)
        return;
    memcpy(num, v, n);
    num[n] = '\0';
    double x = strtod(num, NULL);
    if (!isfinite(x))
        return;
    f->max_concurrency = x;
    f->max_concurrency_len = (int)len;
}

/* line[0..len) trimmed of blanks, into out (cut to outlen - 1 bytes). */
static void copy_trimmed(const char *line, size_t len, char *out, size_t outlen)
{
    while (len > 0 && isspace((unsigned char)line[0])) {
        line++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--;
    if (outlen == 0)
        return;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, line, len);
    out[len] = '\0';
}

void server_log_scan(const char *text, struct server_facts *f, enum start_status *failure,
                     char *reason, size_t reason_len)
{
    f->kv_capacity_tokens = -1;
    f->max_concurrency = NAN;
    f->max_concurrency_len = 0;
    *failure = START_OK;
    if (reason && reason_len)
        reason[0] = '\0';
    if (!text)
        return;
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *end = line + len;
        const char *hit = find_ci(line, len, "GPU KV cache size:");
        if (hit) {
            const char *q;
            long n = parse_count(hit + strlen("GPU KV cache size:"), end, &q);
            if (n >= 0)
                f->kv_capacity_tokens = n;
        }
        hit = find_ci(line, len, "Maximum concurrency for ");
        if (hit)
            parse_concurrency(hit + strlen("Maximum concurrency for "), end, f);
        /* The first cause in the log is the root one; what follows is its fallout. */
        for (size_t i = 0; *failure == START_OK && i < N_PATTERNS; i++) {
            if (!find_ci(line, len, failure_patterns[i].text))
                continue;
            *failure = failure_patterns[i].status;
            if (reason)
                copy_trimmed(line, len, reason, reason_len);
        }
        if (!eol)
            break;
        line = eol + 1;
    }
}

void server_log_tail(const char *text, size_t max_lines, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (!text || max_lines == 0)
        return;
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    size_t start = len;
    size_t lines = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && ++lines == max_lines)
            break;
        start--;
    }
    if (len - start >= outlen)
        start = len - (outlen - 1); /* keep the end: the last words are the telling ones */
    memcpy(out, text + start, len - start);
    out[len - start] = '\0';
}

/* Words that open a server's own account of a failure (Docker's CLI, Python, a shell). */
static const char *const error_words[] = {
    "error",     "unable to", "cannot",  "can't",  "could not", "failed", "exception",
    "traceback", "not found", "no such", "denied", "refused",   "fatal",  "segmentation fault",
};

void server_log_first_error(const char *text, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    const char *line = text, *last = NULL;
    size_t last_len = 0;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        bool ours = len >= 2 && line[0] == '+' && line[1] == ' '; /* "+ docker run ...": ours */
        bool blank = true;
        for (size_t i = 0; i < len && blank; i++)
            blank = isspace((unsigned char)line[i]) != 0;
        if (!ours && !blank) {
            for (size_t i = 0; i < sizeof(error_words) / sizeof(error_words[0]); i++) {
                if (find_ci(line, len, error_words[i])) {
                    copy_trimmed(line, len, out, outlen);
                    return;
                }
            }
            last = line;
            last_len = len;
        }
        line = eol ? eol + 1 : NULL;
    }
    if (last)
        copy_trimmed(last, last_len, out, outlen);
}
