/*
 * tokenizer.h - the simulator's deterministic synthetic tokenizer.
 *
 * Vocabulary (ids in this order):
 *   [0, n_common)            a fixed list of common English words (the, of, and, time, ...),
 *                            so prompts built from common words cost ~1 token per word;
 *   [n_common, first_gen)    chat-template special tokens (<|begin_of_text|>, ...);
 *   [first_gen, vocab_size)  pronounceable generated words: two, then three syllables from
 *                            64 consonant+vowel syllables ("bada", "kizoru", ...); a generated
 *                            word equal to a common word gets 'n's appended until unique, so
 *                            the vocabulary is a bijection between ids and words.
 * Encoding: text splits on ASCII whitespace into words. A word in the vocabulary is one
 * token. Any other word is cut into pieces of at most 4 bytes; a piece in the vocabulary is
 * its id, else it hashes (hash64, seed 0) onto the generated range. So every id < vocab_size
 * and the same text always gives the same ids.
 * Decoding: ids map to their words joined by single spaces (ids >= vocab_size wrap modulo).
 * A tokenizer is read-only after tokenizer_new, so threads may share it.
 */
#ifndef TB_SIM_TOKENIZER_H
#define TB_SIM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/xalloc.h"

#define TOKENIZER_MIN_VOCAB 32000

/* A growable array of token ids with a ceiling, so no input can grow it without
 * bound. */
struct tokvec {
    uint32_t *v;
    size_t n;
    size_t cap;
    size_t max;
};

void tokvec_init(struct tokvec *t, size_t max);
void tokvec_release(struct tokvec *t);
MUST_USE int tokvec_push(struct tokvec *t, uint32_t id); /* 0, -E2BIG, -ENOMEM */

struct tokenizer;

/* vocab_size: the model's vocabulary (0 = TOKENIZER_MIN_VOCAB); raised to at least
 * TOKENIZER_MIN_VOCAB and capped at what the syllables can spell. 0 or -ENOMEM. */
MUST_USE int tokenizer_new(struct tokenizer **out, uint32_t vocab_size);
void tokenizer_free(struct tokenizer *t); /* NULL is a no-op */

uint32_t tokenizer_vocab_size(const struct tokenizer *t);
uint32_t tokenizer_n_common(const struct tokenizer *t);

/* Appends the ids of text[0..len) to out. 0, or -E2BIG/-ENOMEM from out. */
MUST_USE int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len,
                              struct tokvec *out);
/* Number of tokens text would give, without storing them. */
size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len);
/* The word of an id (borrowed, NUL-terminated; lives as long as t). */
const char *tokenizer_word(const struct tokenizer *t, uint32_t id, size_t *len);
/* Words of ids joined by single spaces, appended to out. 0, -E2BIG or -ENOMEM. */
MUST_USE int tokenizer_decode(const struct tokenizer *t, const uint32_t *ids, size_t n,
                              struct buf *out);
/* Id of a vocabulary word, or -1 when the word is not in the vocabulary. */
int64_t tokenizer_lookup(const struct tokenizer *t, const char *word, size_t len);

/* The chat template's special tokens (words in the vocabulary). */
#define TOK_BOS "<|begin_of_text|>"
#define TOK_HDR_START "<|start_header_id|>"
#define TOK_HDR_END "<|end_header_id|>"
#define TOK_EOT "<|eot_id|>"
#define TOK_EOS "<|end_of_text|>"

#endif
