/*
 * client_chunk.h - what one stream chunk says, read on the hot path (one call per event)
 * without building a JSON document, and a JSON string's raw text decoded. Used by the client
 * (client.h includes it), its benches and its fuzz harness.
 */
#ifndef TB_CLIENT_CHUNK_H
#define TB_CLIENT_CHUNK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/xalloc.h"

/* What one stream chunk (the JSON of an SSE data event) says, as the client reads it. */
struct client_chunk {
    bool text;             /* choices[0].text, or choices[0].delta.content / reasoning_content /
                            * reasoning, is a non-empty string */
    bool finish;           /* choices[0].finish_reason is present and not null */
    bool error;            /* an "error" member that is not null */
    int prompt_tokens;     /* usage.prompt_tokens, -1 when absent */
    int completion_tokens; /* usage.completion_tokens, -1 when absent */
    const char *id;        /* the top-level "id" string's raw bytes (points into data), or NULL */
    size_t id_len;
    /* Reasoning models and sessions. answer: text or delta.content is a non-empty string (the
     * event is not only reasoning); content, content_len: its raw (still escaped) bytes in
     * data, or NULL. reasoning_tokens: usage.completion_tokens_details.reasoning_tokens;
     * cached_tokens: usage.prompt_tokens_details.cached_tokens; -1 when absent. */
    bool answer;
    const char *content;
    size_t content_len;
    int reasoning_tokens;
    int cached_tokens;
};

/* Reads one chunk without building a document (the hot path: one call per event). Validates
 * the JSON syntax fully; strings are not checked for valid UTF-8. 0, or -EINVAL when data is
 * not exactly one JSON object (*bad_at: byte offset of the problem; may be NULL). */
MUST_USE int client_chunk_parse(const char *data, size_t len, struct client_chunk *out,
                                size_t *bad_at);

/* Appends the text of a JSON string's raw body (as client_chunk.content: validated, every
 * escape complete) to b, decoded to UTF-8; a lone surrogate becomes U+FFFD. 0, or -E2BIG at
 * b's ceiling (what fit before stays). */
MUST_USE int client_text_append(struct buf *b, const char *raw, size_t n);

#endif
