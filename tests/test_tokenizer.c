/* test_tokenizer.c - the simulator's synthetic tokenizer (src/sim/tokenizer.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/tokenizer.h"

static int setup(void **state)
{
    struct tokenizer *t = NULL;
    if (tokenizer_new(&t, 128256))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tokenizer_free(*state);
    return 0;
}

static void common_words_are_single_tokens(void **state)
{
    const struct tokenizer *t = *state;
    static const char *const words[] = {"the",   "of",       "and",    "time", "people",
                                        "water", "question", "answer", "user", "assistant"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        int64_t id = tokenizer_lookup(t, words[i], strlen(words[i]));
        assert_true(id >= 0);
        assert_true(id < (int64_t)tokenizer_n_common(t));
    }
    const char *text = "the time of the people and the water";
    assert_int_equal(tokenizer_count(t, text, strlen(text)), 8);
    assert_true(tokenizer_n_common(t) >= 300);
}

static void vocabulary_is_a_bijection(void **state)
{
    const struct tokenizer *t = *state;
    uint32_t n = tokenizer_vocab_size(t);
    assert_int_equal(n, 128256);
    for (uint32_t id = 0; id < n; id++) {
        size_t len;
        const char *w = tokenizer_word(t, id, &len);
        assert_int_equal(len, strlen(w));
        assert_true(len > 0);
        if (tokenizer_lookup(t, w, len) != (int64_t)id)
            fail_msg("id %u (%s) does not map back", id, w);
    }
}

static void unknown_words_split_into_pieces(void **state)
{
    const struct tokenizer *t = *state;
    struct tokvec v;
    tokvec_init(&v, 1000);
    /* 11 bytes, not in the vocabulary: 3 pieces of <= 4 bytes. */
    const char *text = "Xyzzyplughs";
    assert_int_equal(tokenizer_encode(t, text, strlen(text), &v), 0);
    assert_int_equal(v.n, 3);
    for (size_t i = 0; i < v.n; i++)
        assert_true(v.v[i] < tokenizer_vocab_size(t));
    /* Deterministic: the same text gives the same ids. */
    struct tokvec w;
    tokvec_init(&w, 1000);
    assert_int_equal(tokenizer_encode(t, text, strlen(text), &w), 0);
    assert_int_equal(w.n, v.n);
    assert_memory_equal(w.v, v.v, v.n * sizeof(uint32_t));
    tokvec_release(&v);
    tokvec_release(&w);
    assert_int_equal(tokenizer_count(t, "  \n\t ", 5), 0);
}

static void decode_round_trips_vocabulary_words(void **state)
{
    const struct tokenizer *t = *state;
    uint32_t ids[] = {0, 1, 2, 500, 600, 1000, 70000, 128255};
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(tokenizer_decode(t, ids, 8, &b), 0);
    struct tokvec v;
    tokvec_init(&v, 100);
    assert_int_equal(tokenizer_encode(t, b.data, b.len, &v), 0);
    assert_int_equal(v.n, 8);
    assert_memory_equal(v.v, ids, sizeof(ids));
    tokvec_release(&v);
    buf_release(&b);
}

static void tokvec_has_a_ceiling(void **state)
{
    const struct tokenizer *t = *state;
    struct tokvec v;
    tokvec_init(&v, 3);
    const char *text = "the of and time";
    assert_int_equal(tokenizer_encode(t, text, strlen(text), &v), -E2BIG);
    assert_int_equal(v.n, 3);
    tokvec_release(&v);
}

static void small_vocab_is_raised_to_minimum(void **state)
{
    (void)state;
    struct tokenizer *t = NULL;
    assert_int_equal(tokenizer_new(&t, 100), 0);
    assert_int_equal(tokenizer_vocab_size(t), TOKENIZER_MIN_VOCAB);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_words_are_single_tokens),
        cmocka_unit_test(vocabulary_is_a_bijection),
        cmocka_unit_test(unknown_words_split_into_pieces),
        cmocka_unit_test(decode_round_trips_vocabulary_words),
        cmocka_unit_test(tokvec_has_a_ceiling),
        cmocka_unit_test(small_vocab_is_raised_to_minimum),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
