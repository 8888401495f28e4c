/*
 * prompt.h - synthetic prompts that reach a target token count on the server's own
 * tokenizer: text built from common single-token words, checked and corrected with the
 * server's POST /tokenize where it has one (vLLM, SGLang, llama.cpp), else estimated.
 */
#ifndef TB_PROMPT_H
#define TB_PROMPT_H

#include <stdatomic.h>
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
 * otherwise *actual = -1. prompt_plan + the text it composed. */
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

/* A run of words drawn from one seed: the shared prefix, a trace's hash block, a document. */
struct prompt_words {
    uint64_t seed;
    size_t words;
};

/* What a prompt is, without its text: the words it is made of (segments, a tail of words
 * unique to the request, fillers), fixed once against the server's /tokenize. The builder
 * composes the same bytes from it again at any time without asking the server
 * (prompt_recipe_text), so a runner can do every /tokenize round trip before its clock starts
 * and hold only a few dozen bytes per request instead of the text. Or a given text (a
 * dataset's prompt), borrowed, which is used as it is. */
struct prompt_recipe {
    const char *given;         /* borrowed; NULL = composed from the fields below */
    struct prompt_words *segs; /* owned */
    size_t n_segs;
    size_t tail, fill; /* words of the request's own stream, then filler words */
    uint64_t request_seed;
    int actual; /* the server's count of the text, -1 unknown */
};

/* The recipe of prompt_build's prompt (same arguments): 0 or -ENOMEM (out is then empty).
 * text_out: when not NULL, the text composed on the way, which the caller frees (saves
 * composing it again). */
MUST_USE int prompt_plan(struct prompt_builder *b, int n_tokens, int shared_prefix_tokens,
                         uint64_t request_seed, struct prompt_recipe *out, char **text_out);
/* The recipe of prompt_build_segments's prompt; as prompt_plan. */
MUST_USE int prompt_plan_segments(struct prompt_builder *b, int n_tokens,
                                  const struct prompt_segment *segs, size_t n_segs,
                                  uint64_t request_seed, struct prompt_recipe *out,
                                  char **text_out);
/* A recipe that is text (borrowed until the recipe is no longer used). */
void prompt_recipe_given(struct prompt_recipe *out, const char *text);
/* The recipe's text (caller frees; *len its length when len is not NULL), or NULL when
 * memory ran out. Asks no server and changes nothing in b: several threads may call it on one
 * builder at once, as long as nothing plans on it meanwhile. */
char *prompt_recipe_text(const struct prompt_builder *b, const struct prompt_recipe *r,
                         size_t *len);
size_t prompt_recipe_size(const struct prompt_recipe *r); /* bytes it holds */
void prompt_recipe_release(struct prompt_recipe *r);      /* frees segs; r is emptied */

/* Tokens of a text as the load sends it (a prompt, or one chat user message; with
 * messages_json, that JSON array of messages in chat form). special = false counts a
 * completion's text (no BOS, no template). From /tokenize when calibrated, else about one
 * token per 4 bytes. */
int prompt_count(struct prompt_builder *b, const char *text, const char *messages_json,
                 bool special);
/* Words come from this corpus (borrowed until the builder is freed) instead of the common
 * word list: passages of real text, read on from a place each seed picks. */
void prompt_builder_set_corpus(struct prompt_builder *b, const char *const *corpus, size_t n);
/* While *stop is true, a /tokenize call in progress is abandoned and no new one is made
 * (prompts fall back to estimates): Ctrl-C must not wait for a slow server. NULL = none. */
void prompt_builder_set_stop(struct prompt_builder *b, const atomic_bool *stop);
/* The same for every builder, from a flag a signal handler sets (the calibration in
 * prompt_builder_new included): a lock-free atomic, read from any thread. NULL = none. */
void prompt_set_stop_flag(const atomic_bool *flag);
void prompt_builder_free(struct prompt_builder *b); /* NULL is a no-op */

#endif
