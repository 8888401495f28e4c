/*
 * fuzz_sse.c - the SSE parser (src/runner/sse.c). Input: one byte of split seed, then the
 * stream. Property beyond "no crash": the events are the same whether the stream comes in
 * one feed or in pieces of fuzzer-chosen sizes (the parser must be blind to boundaries), and
 * each event's data is NUL-terminated at its length.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "runner/sse.h"

#define MAX_LINE 256 /* small, so that -E2BIG is reached */

struct digest {
    uint64_t h;
    size_t events;
};

static int on_event(void *ctx, const char *data, size_t len)
{
    struct digest *d = ctx;
    if (data[len] != '\0')
        abort();
    for (size_t i = 0; i < len; i++)
        d->h = (d->h ^ (unsigned char)data[i]) * 0x100000001b3ull;
    d->h = (d->h ^ 0xff) * 0x100000001b3ull ^ len;
    d->events++;
    return 0;
}

static int run(const uint8_t *data, size_t size, unsigned split, struct digest *d)
{
    struct sse_parser *p;
    if (sse_parser_new(&p, MAX_LINE, on_event, d))
        abort();
    int rc = 0;
    size_t off = 0, step = split ? split : size;
    while (!rc && off < size) {
        size_t n = size - off < step ? size - off : step;
        rc = sse_parser_feed(p, (const char *)data + off, n);
        off += n;
        step = split ? 1 + (step * 7 + off) % (split + 1) : step;
    }
    if (!rc)
        rc = sse_parser_finish(p);
    sse_parser_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned split = 1 + data[0] % 16;
    struct digest whole = {0xcbf29ce484222325ull, 0}, parts = whole;
    int a = run(data + 1, size - 1, 0, &whole);
    int b = run(data + 1, size - 1, split, &parts);
    if (a == 0 && b == 0 && (whole.h != parts.h || whole.events != parts.events))
        abort();
    return 0;
}
