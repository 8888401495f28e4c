/*
 * prompt.h - synthetic prompts that reach a target token count on the server's own
 * tokenizer: text built from common single-token words, checked and corrected with the
 * server's POST /tokenize where it has one (vLLM, SGLang, llama.cpp), else estimated.
 */
#ifndef TB_PROMPT_H
#define TB_PROMPT_H

#include <stdbool.h>
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
void prompt_builder_free(struct prompt_builder *b); /* NULL is a no-op */

#endif
