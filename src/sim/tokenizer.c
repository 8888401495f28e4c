/*
 * tokenizer.c - the synthetic vocabulary and its encoder (rules in tokenizer.h).
 *
 * All words live in one arena; ids index an offset table; a power-of-two open-addressing
 * table maps words back to ids. Building 128k words takes a few milliseconds, and after
 * that the tokenizer is read-only.
 */
#include "sim/tokenizer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* First in the vocabulary, so clients that build prompts from common words get one token
 * per word. Must stay free of duplicates (tests check). */
static const char *const common_words[] = {
    "the",       "of",        "and",       "to",       "a",        "in",        "is",
    "it",        "you",       "that",      "he",       "was",      "for",       "on",
    "are",       "with",      "as",        "I",        "his",      "they",      "be",
    "at",        "one",       "have",      "this",     "from",     "or",        "had",
    "by",        "hot",       "word",      "but",      "what",     "some",      "we",
    "can",       "out",       "other",     "were",     "all",      "there",     "when",
    "up",        "use",       "your",      "how",      "said",     "an",        "each",
    "she",       "which",     "do",        "their",    "time",     "if",        "will",
    "way",       "about",     "many",      "then",     "them",     "write",     "would",
    "like",      "so",        "these",     "her",      "long",     "make",      "thing",
    "see",       "him",       "two",       "has",      "look",     "more",      "day",
    "could",     "go",        "come",      "did",      "number",   "sound",     "no",
    "most",      "people",    "my",        "over",     "know",     "water",     "than",
    "call",      "first",     "who",       "may",      "down",     "side",      "been",
    "now",       "find",      "any",       "new",      "work",     "part",      "take",
    "get",       "place",     "made",      "live",     "where",    "after",     "back",
    "little",    "only",      "round",     "man",      "year",     "came",      "show",
    "every",     "good",      "me",        "give",     "our",      "under",     "name",
    "very",      "through",   "just",      "form",     "sentence", "great",     "think",
    "say",       "help",      "low",       "line",     "differ",   "turn",      "cause",
    "much",      "mean",      "before",    "move",     "right",    "boy",       "old",
    "too",       "same",      "tell",      "does",     "set",      "three",     "want",
    "air",       "well",      "also",      "play",     "small",    "end",       "put",
    "home",      "read",      "hand",      "port",     "large",    "spell",     "add",
    "even",      "land",      "here",      "must",     "big",      "high",      "such",
    "follow",    "act",       "why",       "ask",      "men",      "change",    "went",
    "light",     "kind",      "off",       "need",     "house",    "picture",   "try",
    "us",        "again",     "animal",    "point",    "mother",   "world",     "near",
    "build",     "self",      "earth",     "father",   "head",     "stand",     "own",
    "page",      "should",    "country",   "found",    "answer",   "school",    "grow",
    "study",     "still",     "learn",     "plant",    "cover",    "food",      "sun",
    "four",      "between",   "state",     "keep",     "eye",      "never",     "last",
    "let",       "thought",   "city",      "tree",     "cross",    "farm",      "hard",
    "start",     "might",     "story",     "saw",      "far",      "sea",       "draw",
    "left",      "late",      "run",       "while",    "press",    "close",     "night",
    "real",      "life",      "few",       "north",    "open",     "seem",      "together",
    "next",      "white",     "children",  "begin",    "got",      "walk",      "example",
    "ease",      "paper",     "group",     "always",   "music",    "those",     "both",
    "mark",      "often",     "letter",    "until",    "mile",     "river",     "car",
    "feet",      "care",      "second",    "book",     "carry",    "took",      "science",
    "eat",       "room",      "friend",    "began",    "idea",     "fish",      "mountain",
    "stop",      "once",      "base",      "hear",     "horse",    "cut",       "sure",
    "watch",     "color",     "face",      "wood",     "main",     "enough",    "plain",
    "girl",      "usual",     "young",     "ready",    "above",    "ever",      "red",
    "list",      "though",    "feel",      "talk",     "bird",     "soon",      "body",
    "dog",       "family",    "direct",    "pose",     "leave",    "song",      "measure",
    "door",      "product",   "black",     "short",    "numeral",  "class",     "wind",
    "question",  "happen",    "complete",  "ship",     "area",     "half",      "rock",
    "order",     "fire",      "south",     "problem",  "piece",    "told",      "knew",
    "pass",      "since",     "top",       "whole",    "king",     "space",     "heard",
    "best",      "hour",      "better",    "true",     "during",   "hundred",   "five",
    "remember",  "step",      "early",     "hold",     "west",     "ground",    "interest",
    "reach",     "fast",      "verb",      "sing",     "listen",   "six",       "table",
    "travel",    "less",      "morning",   "ten",      "simple",   "several",   "vowel",
    "toward",    "war",       "lay",       "against",  "pattern",  "slow",      "center",
    "love",      "person",    "money",     "serve",    "appear",   "road",      "map",
    "rain",      "rule",      "govern",    "pull",     "cold",     "notice",    "voice",
    "unit",      "power",     "town",      "fine",     "certain",  "fly",       "fall",
    "lead",      "cry",       "dark",      "machine",  "note",     "wait",      "plan",
    "figure",    "star",      "box",       "noun",     "field",    "rest",      "correct",
    "able",      "pound",     "done",      "beauty",   "drive",    "stood",     "contain",
    "front",     "teach",     "week",      "final",    "gave",     "green",     "oh",
    "quick",     "develop",   "ocean",     "warm",     "free",     "minute",    "strong",
    "special",   "mind",      "behind",    "clear",    "tail",     "produce",   "fact",
    "street",    "inch",      "multiply",  "nothing",  "course",   "stay",      "wheel",
    "full",      "force",     "blue",      "object",   "decide",   "surface",   "deep",
    "moon",      "island",    "foot",      "system",   "busy",     "test",      "record",
    "boat",      "common",    "gold",      "possible", "plane",    "instead",   "dry",
    "wonder",    "laugh",     "thousand",  "ago",      "ran",      "check",     "game",
    "shape",     "equate",    "miss",      "brought",  "heat",     "snow",      "tire",
    "bring",     "yes",       "distant",   "fill",     "east",     "paint",     "language",
    "among",     "user",      "assistant", "tool",     "model",    "data",      "please",
    "explain",   "summarize", "text",      "context",  "document", "following", "below",
    "code",      "function",  "value",     "return",   "false",    "because",   "however",
    "therefore",
};

#define N_COMMON (sizeof(common_words) / sizeof(common_words[0]))

static const char *const special_words[] = {TOK_BOS, TOK_HDR_START, TOK_HDR_END, TOK_EOT, TOK_EOS};

#define N_SPECIAL (sizeof(special_words) / sizeof(special_words[0]))

/* 16 onsets x 4 vowels = 64 syllables of two letters. */
static const char onsets[] = "bdfghjklmnprstvz";
static const char vowels[] = "aeio";
#define N_SYL 64u
#define N_GEN2 (N_SYL * N_SYL)
#define N_GEN3 (N_SYL * N_SYL * N_SYL)
#define MAX_VOCAB ((uint32_t)(N_COMMON + N_SPECIAL + N_GEN2 + N_GEN3))
#define PIECE_BYTES 4

struct tokenizer {
    uint32_t vocab_size;
    uint32_t first_gen;
    uint32_t *offset; /* vocab_size + 1 offsets into arena; word i = arena[offset[i]..] */
    char *arena;      /* NUL-terminated words back to back */
    size_t arena_len;
    uint32_t *slots; /* hash table of id + 1 (0 = empty) */
    uint32_t mask;
};

void tokvec_init(struct tokvec *t, size_t max)
{
    t->v = NULL;
    t->n = 0;
    t->cap = 0;
    t->max = max;
}

void tokvec_release(struct tokvec *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

int tokvec_push(struct tokvec *t, uint32_t id)
{
    if (t->n >= t->max)
        return -E2BIG;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        if (cap > t->max)
            cap = t->max;
        uint32_t *p = realloc(t->v, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        t->v = p;
        t->cap = cap;
    }
    t->v[t->n++] = id;
    return 0;
}

static uint64_t word_hash(const char *w, size_t len)
{
    return hash64(w, len, 0x746f6b656e697a65ull);
}

static const char *word_at(const struct tokenizer *t, uint32_t id, size_t *len)
{
    const char *w = t->arena + t->offset[id];
    if (len)
        *len = t->offset[id + 1] - t->offset[id] - 1;
    return w;
}

int64_t tokenizer_lookup(const struct tokenizer *t, const char *word, size_t len)
{
    uint32_t i = (uint32_t)word_hash(word, len) & t->mask;
    for (;;) {
        uint32_t s = t->slots[i];
        if (s == 0)
            return -1;
        size_t wl;
        const char *w = word_at(t, s - 1, &wl);
        if (wl == len && memcmp(w, word, len) == 0)
            return s - 1;
        i = (i + 1) & t->mask;
    }
}

static void table_insert(struct tokenizer *t, uint32_t id)
{
    size_t len;
    const char *w = word_at(t, id, &len);
    uint32_t i = (uint32_t)word_hash(w, len) & t->mask;
    while (t->slots[i] != 0)
        i = (i + 1) & t->mask;
    t->slots[i] = id + 1;
}

/* Spells generated word number g (0-based) into out (>= 16 bytes); returns its length. */
static size_t spell_generated(uint32_t g, char *out)
{
    int nsyl = 2;
    if (g >= N_GEN2) {
        g -= N_GEN2;
        nsyl = 3;
    }
    size_t n = 0;
    for (int k = 0; k < nsyl; k++) {
        uint32_t syl = g % N_SYL;
        g /= N_SYL;
        out[n++] = onsets[syl / 4];
        out[n++] = vowels[syl % 4];
    }
    out[n] = '\0';
    return n;
}

/* Appends a word to the arena (which has room: sized for the worst case up front). */
static void arena_add(struct tokenizer *t, uint32_t id, const char *w, size_t len)
{
    t->offset[id] = (uint32_t)t->arena_len;
    memcpy(t->arena + t->arena_len, w, len);
    t->arena_len += len;
    t->arena[t->arena_len++] = '\0';
    t->offset[id + 1] = (uint32_t)t->arena_len;
}

int tokenizer_new(struct tokenizer **out, uint32_t vocab_size)
{
    int rc = -ENOMEM;
    struct tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    if (vocab_size < TOKENIZER_MIN_VOCAB)
        vocab_size = TOKENIZER_MIN_VOCAB;
    if (vocab_size > MAX_VOCAB)
        vocab_size = MAX_VOCAB;
    t->vocab_size = vocab_size;
    t->first_gen = (uint32_t)(N_COMMON + N_SPECIAL);

    /* Generated words are <= 6 letters plus a few collision 'n's; common words are short. */
    size_t arena_cap = 32 * 1024 + (size_t)vocab_size * 12;
    t->arena = malloc(arena_cap);
    t->offset = malloc(((size_t)vocab_size + 1) * sizeof(*t->offset));
    uint32_t cap = 1;
    while (cap < vocab_size * 2u)
        cap <<= 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (!t->arena || !t->offset || !t->slots)
        goto fail;
    t->mask = cap - 1;

    uint32_t id = 0;
    for (size_t i = 0; i < N_COMMON; i++, id++) {
        arena_add(t, id, common_words[i], strlen(common_words[i]));
        table_insert(t, id);
    }
    for (size_t i = 0; i < N_SPECIAL; i++, id++) {
        arena_add(t, id, special_words[i], strlen(special_words[i]));
        table_insert(t, id);
    }
    for (uint32_t g = 0; id < vocab_size; g++, id++) {
        char w[32];
        size_t len = spell_generated(g, w);
        /* A generated word that spells a common word ("time") gets 'n's until unique. */
        while (tokenizer_lookup(t, w, len) >= 0 && len < sizeof(w) - 1) {
            w[len++] = 'n';
            w[len] = '\0';
        }
        arena_add(t, id, w, len);
        table_insert(t, id);
    }
    *out = t;
    return 0;
fail:
    tokenizer_free(t);
    return rc;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->offset);
    free(t->slots);
    free(t);
}

uint32_t tokenizer_vocab_size(const struct tokenizer *t)
{
    return t->vocab_size;
}

uint32_t tokenizer_n_common(const struct tokenizer *t)
{
    (void)t;
    return (uint32_t)N_COMMON;
}

const char *tokenizer_word(const struct tokenizer *t, uint32_t id, size_t *len)
{
    return word_at(t, id % t->vocab_size, len);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static uint32_t piece_id(const struct tokenizer *t, const char *p, size_t len)
{
    int64_t id = tokenizer_lookup(t, p, len);
    if (id >= 0)
        return (uint32_t)id;
    uint32_t n_gen = t->vocab_size - t->first_gen;
    return t->first_gen + (uint32_t)(hash64(p, len, 0) % n_gen);
}

/* Calls emit(id) for every token of text; stops at the first nonzero return. */
static int encode_each(const struct tokenizer *t, const char *text, size_t len,
                       int (*emit)(void *ctx, uint32_t id), void *ctx)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(text[i]))
            i++;
        size_t start = i;
        while (i < len && !is_space(text[i]))
            i++;
        if (i == start)
            break;
        const char *w = text + start;
        size_t wl = i - start;
        int64_t id = tokenizer_lookup(t, w, wl);
        if (id >= 0) {
            int rc = emit(ctx, (uint32_t)id);
            if (rc)
                return rc;
            continue;
        }
        for (size_t off = 0; off < wl; off += PIECE_BYTES) {
            size_t pl = wl - off < PIECE_BYTES ? wl - off : PIECE_BYTES;
            int rc = emit(ctx, piece_id(t, w + off, pl));
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int emit_push(void *ctx, uint32_t id)
{
    return tokvec_push(ctx, id);
}

static int emit_count(void *ctx, uint32_t id)
{
    (void)id;
    (*(size_t *)ctx)++;
    return 0;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, struct tokvec *out)
{
    return encode_each(t, text, len, emit_push, out);
}

size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len)
{
    size_t n = 0;
    (void)encode_each(t, text, len, emit_count, &n);
    return n;
}

int tokenizer_decode(const struct tokenizer *t, const uint32_t *ids, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t wl;
        const char *w = tokenizer_word(t, ids[i], &wl);
        if (i > 0) {
            int rc = buf_append(out, " ", 1);
            if (rc)
                return rc;
        }
        int rc = buf_append(out, w, wl);
        if (rc)
            return rc;
    }
    return 0;
}
