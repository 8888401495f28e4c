/*
 * prompt.h - synthetic prompts that reach a target token count on the server's own
 * tokenizer: text built from common single-token words, checked and corrected with the
 * server's POST /tokenize where it has one (vLLM, SGLang, llama.cpp), else estimated.
 */
#ifndef TB_PROMPT_H
#define TB_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"

struct prompt_builder;

/* base_url NULL, or a server without /tokenize: no calibration (one token per word assumed).
 * model is sent in /tokenize requests; api_key may be NULL. */
MUST_USE int prompt_builder_new(struct prompt_builder **out, const char *base_url,
                                const char *model, const char *api_key, uint64_t seed);
/* A new prompt (caller frees) of n_tokens tokens. Its first shared_prefix_tokens tokens are the
 * same for every prompt of this builder (prefix-cache workloads); the rest is unique per
 * request_seed. With /tokenize, the text is corrected until the count is exact (*actual set);
 * otherwise *actual = -1. */
char *prompt_build(struct prompt_builder *b, int n_tokens, int shared_prefix_tokens,
                   uint64_t request_seed, int *actual);
bool prompt_builder_calibrated(const struct prompt_builder *b); /* /tokenize was used */
/* Counts prompts as one chat user message (/tokenize with "messages", so the server's chat
 * template is included, as in usage.prompt_tokens of /v1/chat/completions). Call before
 * prompt_build. llama.cpp's /tokenize has no chat form: there the count stays the raw text's. */
void prompt_builder_set_chat(struct prompt_builder *b, bool chat);
/* Where /tokenize has no chat form (llama.cpp) the template's tokens are measured once with a
 * probe request whose usage reports prompt_tokens, and added to every chat count:
 * prompt_builder_chat_overhead() gives them (-1: not measured). */
long prompt_builder_chat_overhead(const struct prompt_builder *b);

/* A run of 'tokens' tokens of text that depends only on id and the builder's seed: the same
 * id gives the same bytes in every prompt (a trace's hash block, a RAG document). */
struct prompt_segment {
    uint64_t id;
    int tokens;
};
/* A prompt of n_tokens: the segments in order, then a tail unique to request_seed that
 * brings the count to n_tokens (segments are sized by the tokens-per-word estimate; the
 * tail takes the correction). Caller frees; *actual as prompt_build. */
char *prompt_build_segments(struct prompt_builder *b, int n_tokens,
                            const struct prompt_segment *segs, size_t n_segs, uint64_t request_seed,
                            int *actual);
/* Tokens of a text as the load sends it (a prompt, or one chat user message; with
 * messages_json, that JSON array of messages in chat form). special = false counts a
 * completion's text (no BOS, no template). From /tokenize when calibrated, else about one
 * token per 4 bytes. */
int prompt_count(struct prompt_builder *b, const char *text, const char *messages_json,
                 bool special);
/* Words come from this corpus (borrowed until the builder is freed) instead of the common
 * word list: passages of real text, read on from a place each seed picks. */
void prompt_builder_set_corpus(struct prompt_builder *b, const char *const *corpus, size_t n);
void prompt_builder_free(struct prompt_builder *b); /* NULL is a no-op */

#endif
