/*
 * prompt.c - synthetic prompts of an exact token length on the server's own tokenizer.
 *
 * Text is made of common English words that are one token each, when preceded by a space,
 * in the Llama 2/3, Mistral, Qwen and GPT tokenizers; words are joined by single spaces, so
 * every word is its own pre-token and counts add up word by word. Without a server to ask,
 * one word is taken as one token.
 *
 * With a /tokenize endpoint (vLLM and SGLang: {"model", "prompt", "add_special_tokens"} ->
 * {"count"}; llama.cpp: {"content", "add_special"} -> {"tokens": [...]}) the builder probes
 * once in prompt_builder_new to learn tokens per word and the fixed overhead (BOS), then for
 * each prompt: estimates a word count a little short of the target, asks for the count, and
 * tops up with short filler words (" the", " of", ...; one token everywhere) or trims whole
 * words, until the count is exact. That is usually two round trips; after
 * PROMPT_MAX_ROUNDS it keeps the nearest text and reports its count.
 *
 * Counts include special tokens (add_special_tokens), as usage.prompt_tokens of
 * /v1/completions does. The shared prefix is the first words of a stream drawn from the
 * builder's seed: identical bytes at the start of every prompt, so a prefix cache hits;
 * the rest comes from a stream drawn from request_seed.
 *
 * A builder is not thread-safe (one libcurl easy handle, one cache).
 */
#include "runner/prompt.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/http.h"
#include "core/log.h"
#include "core/rng.h"

#define PROMPT_TIMEOUT_MS 5000L
#define PROMPT_MAX_ROUNDS 8             /* /tokenize round trips per prompt */
#define PROMPT_PREFIX_ROUNDS 6          /* ... for the shared prefix, once per length */
#define PROMPT_MAX_RESPONSE (64u << 20) /* llama.cpp returns every token id */
#define PROMPT_MAX_TEXT (1u << 30)
#define PROMPT_MARGIN_WORDS 2 /* aim this many words short (plus 2%), then fill */
#define PROMPT_MARGIN_DIV 50
#define PROMPT_MAX_FILL 64 /* larger gaps are closed with regular words */
#define PROMPT_PROBE_SHORT 16
#define PROMPT_PROBE_LONG 528
#define PROMPT_MAX_TEMPLATE 4096 /* tokens a chat template may add to one message */

#define SALT_PROBE 0x70726f6265ull
#define SALT_TAIL 0x7461696cull
#define SALT_FILL 0x66696c6cull
#define SALT_SEGMENT 0x7365676dull

/* Common words, each one token with a leading space in the tokenizers named above. */
/* clang-format off */
static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its",
    "may", "these", "about", "some", "time", "people", "year", "way", "day", "man", "thing",
    "woman", "life", "child", "world", "school", "state", "family", "student", "group",
    "country", "problem", "hand", "part", "place", "case", "week", "company", "system",
    "program", "question", "work", "government", "number", "night", "point", "home", "water",
    "room", "mother", "area", "money", "story", "fact", "month", "lot", "right", "study",
    "book", "eye", "job", "word", "business", "issue", "side", "kind", "head", "house",
    "service", "friend", "father", "power", "hour", "game", "line", "end", "member", "law",
    "car", "city", "community", "name", "president", "team", "minute", "idea", "body",
    "information", "back", "parent", "face", "level", "office", "door", "health", "person",
    "art", "war", "history", "party", "result", "change", "morning", "reason", "research",
    "girl", "moment", "air", "teacher", "force", "education", "foot", "boy", "age", "policy",
    "music", "market", "sense", "nation", "plan", "college", "interest", "death", "experience",
    "effect", "class", "control", "care", "field", "development", "role", "effort", "rate",
    "heart", "drug", "show", "leader", "light", "voice", "wife", "police", "mind", "price",
    "report", "decision", "son", "view", "relationship", "town", "road", "arm", "difference",
    "value", "building", "action", "model", "season", "society", "tax", "director", "position",
    "player", "record", "paper", "space", "ground", "form", "event", "official", "matter",
    "center", "couple", "site", "project", "activity", "star", "table", "need", "court",
    "oil", "situation", "cost", "industry", "figure", "street", "image", "phone", "data",
    "picture", "practice", "piece", "land", "product", "doctor", "wall", "patient", "worker",
    "news", "test", "movie", "north", "love", "support", "technology", "step", "baby",
    "computer", "type", "attention", "film", "tree", "source", "organization", "hair",
    "window", "evidence", "population", "energy", "period", "course", "summer",
    "plant", "opportunity", "term", "letter", "condition", "choice", "rule", "daughter",
    "administration", "south", "husband", "floor", "campaign", "material", "bank",
    "security", "section", "glass", "answer", "blood", "cell", "stage", "network", "lake",
    "good", "new", "first", "last", "long", "great", "little", "own", "old", "big", "high",
    "small", "large", "next", "early", "young", "important", "few", "public", "bad", "same",
    "able", "make", "know", "take", "see", "come", "think", "look", "want", "give", "use",
    "find", "tell", "ask", "seem", "feel", "try", "leave", "call", "keep", "let", "begin",
    "help", "talk", "turn", "start", "hear", "play", "run", "move", "like", "live",
    "believe", "hold", "bring", "happen", "write", "provide", "sit", "stand", "lose", "pay",
    "meet", "include", "continue", "set", "learn", "lead", "understand", "watch", "follow",
    "stop", "create", "speak", "read", "allow", "add", "spend", "grow", "open", "walk", "win",
    "offer", "remember", "consider", "appear", "buy", "wait", "serve", "die", "send",
    "expect", "build", "stay", "fall", "cut", "reach", "kill", "remain",
};
/* clang-format on */
#define N_WORDS (sizeof(words) / sizeof(words[0]))

/* Fillers close the last few tokens: shortest, most frequent words, one token everywhere. */
static const char *const fillers[] = {"the", "of", "and", "to", "in", "is", "it", "that",
                                      "for", "on", "as",  "at", "by", "we", "he", "be"};
#define N_FILLERS (sizeof(fillers) / sizeof(fillers[0]))

enum tok_format { TOK_VLLM, TOK_LLAMACPP };

struct prompt_builder {
    uint64_t seed;
    bool calibrated;
    enum tok_format format;
    char *url; /* <base>/tokenize */
    char *model;
    CURL *curl;
    struct curl_slist *headers;
    struct buf resp;
    bool chat;              /* count as a chat message (template included) */
    double tokens_per_word; /* measured at the probe */
    double overhead;        /* tokens of an empty prompt: BOS and the like */
    int prefix_for;         /* shared_prefix_tokens the cached prefix was sized for; -1 none */
    size_t prefix_words;
    int prefix_count; /* server count of the prefix alone (-1 unknown) */
    /* A text corpus (prompt_builder_set_corpus): words are read from it, borrowed. */
    const char *const *corpus;
    size_t n_corpus;
    /* Chat on a /tokenize without a chat form (llama.cpp): tokens the chat template adds
     * to one user message, learnt from a probe's usage.prompt_tokens; -1 unknown. */
    long chat_overhead;
    /* ... and for a list of messages: base + per_message x (messages - 1) over the sum of the
     * contents' own counts (no special tokens), from a second probe of three messages; -1
     * unknown (then a list is counted as its flattened text plus chat_overhead). */
    long chat_base, chat_per_message;
    char *chat_url;          /* <base>/v1/chat/completions, for that probe */
    const atomic_bool *stop; /* set: abandon /tokenize calls (prompt_builder_set_stop) */
};

/* ---- text ---- */

static int put_word(struct buf *b, const char *w)
{
    int rc = 0;
    if (b->len)
        rc = buf_puts(b, " ");
    return rc ? rc : buf_puts(b, w);
}

/* Appends 'count' words of the stream drawn from 'seed' (the same seed gives the same words,
 * so the first k words of a longer run equal a run of k). With a corpus, the stream is the
 * corpus read on from a place the seed picks (wrapping at its end): real text. */
static int put_stream(const struct prompt_builder *pb, struct buf *b, uint64_t seed, size_t count)
{
    struct rng r;
    rng_seed(&r, seed);
    size_t at = pb->n_corpus ? rng_next(&r) % pb->n_corpus : 0;
    for (size_t i = 0; i < count; i++) {
        const char *w =
            pb->n_corpus ? pb->corpus[(at + i) % pb->n_corpus] : words[rng_next(&r) % N_WORDS];
        int rc = put_word(b, w);
        if (rc)
            return rc;
    }
    return 0;
}

static uint64_t tail_seed(const struct prompt_builder *b, uint64_t request_seed)
{
    return hash64(&request_seed, sizeof(request_seed), b->seed ^ SALT_TAIL);
}

/* segment words + tail words + filler words, joined by single spaces. */
static int compose_segs(struct buf *out, const struct prompt_builder *b,
                        const struct prompt_words *segs, size_t n_segs, size_t tail, size_t fill,
                        uint64_t request_seed)
{
    buf_reset(out);
    int rc = 0;
    for (size_t i = 0; i < n_segs && !rc; i++)
        rc = put_stream(b, out, segs[i].seed, segs[i].words);
    if (!rc)
        rc = put_stream(b, out, tail_seed(b, request_seed), tail);
    struct rng r;
    rng_seed(&r, hash64(&request_seed, sizeof(request_seed), b->seed ^ SALT_FILL));
    for (size_t i = 0; i < fill && !rc; i++)
        rc = put_word(out, fillers[rng_next(&r) % N_FILLERS]);
    if (!rc && !out->data)
        rc = buf_puts(out, ""); /* an empty prompt is "", not NULL */
    return rc;
}

/* The builder's shared prefix (prefix words), then tail and filler words. */
static int compose(struct buf *out, const struct prompt_builder *b, size_t prefix, size_t tail,
                   size_t fill, uint64_t request_seed)
{
    struct prompt_words one = {b->seed, prefix};
    return compose_segs(out, b, &one, 1, tail, fill, request_seed);
}

/* ---- /tokenize ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct buf *resp = userp;
    size_t n = size * nmemb;
    return buf_append(resp, ptr, n) == 0 ? n : 0;
}

/* What to count: a text as a prompt (chat: as one user message), a message list (a JSON
 * array), or a text without special tokens (a completion's length). */
struct tok_ask {
    const char *text;
    const char *messages; /* JSON array; counted in chat form when the server has one */
    bool chat;            /* count the chat template too */
    bool special;         /* add_special_tokens (BOS); false for a completion's text */
};

static json_t *tok_body(const struct tok_ask *a, enum tok_format fmt, const char *model)
{
    json_t *req = NULL;
    if (fmt == TOK_VLLM && a->chat) { /* vLLM applies the chat template, as the chat API does */
        json_t *msgs = a->messages ? json_loads(a->messages, 0, NULL) : NULL;
        if (!msgs)
            msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", a->text ? a->text : "");
        req = json_pack("{s:o}", "messages", msgs);
    } else if (fmt == TOK_VLLM) {
        req = json_pack("{s:s, s:b}", "prompt", a->text ? a->text : "", "add_special_tokens",
                        a->special);
    } else {
        req = json_pack("{s:s, s:b}", "content", a->text ? a->text : "", "add_special", a->special);
    }
    if (req && fmt == TOK_VLLM && model)
        json_object_set_new(req, "model", json_string(model));
    return req;
}

static const atomic_bool *_Atomic stop_flag; /* prompt_set_stop_flag */

void prompt_set_stop_flag(const atomic_bool *flag)
{
    atomic_store(&stop_flag, flag);
}

static bool stopped(const struct prompt_builder *b)
{
    const atomic_bool *all = atomic_load(&stop_flag);
    return (b->stop && atomic_load(b->stop)) || (all && atomic_load(all));
}

/* POSTs body to url with the builder's handle; the parsed 200 answer in *resp, or -errno. */
/* POSTs body to url with the builder's handle; the 200 answer's bytes are in b->resp. 0 or
 * -errno. */
static int post_raw(struct prompt_builder *b, const char *url, json_t *body_json)
{
    if (stopped(b))
        return -ECANCELED;
    char *body = json_dumps(body_json, JSON_COMPACT);
    if (!body)
        return -ENOMEM;
    int rc = 0;
    buf_reset(&b->resp);
    curl_easy_setopt(b->curl, CURLOPT_URL, url);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    CURLcode cc = curl_easy_perform(b->curl);
    curl_easy_setopt(b->curl, CURLOPT_URL, b->url); /* /tokenize stays the default */
    long status = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        rc = -ECANCELED;
    else if (cc != CURLE_OK)
        rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
    else if (status != 200)
        rc = status == 404 ? -ENOENT : -EPROTO;
    free(body);
    return rc;
}

/* POSTs body to url; the parsed 200 answer in *resp, or -errno. */
static int post_json(struct prompt_builder *b, const char *url, json_t *body_json, json_t **resp)
{
    int rc = post_raw(b, url, body_json);
    if (rc)
        return rc;
    *resp = json_loadb(b->resp.data ? b->resp.data : "", b->resp.len, 0, NULL);
    return *resp ? 0 : -EPROTO;
}

/* vLLM's (and SGLang's, and the simulator's) /tokenize answer begins {"count": N, ...} and
 * goes on with every token id: reading the count from its head saves parsing thousands of
 * ids per call (most of a prompt's planning time for long prompts). True when the answer
 * begins that way; anything else is parsed in full. */
static bool count_from_head(const struct buf *resp, long *count)
{
    const char *p = resp->data, *end = p ? p + resp->len : NULL;
    static const char key[] = "\"count\"";
    while (p && p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (!p || p == end || *p++ != '{')
        return false;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if ((size_t)(end - p) < sizeof(key) - 1 || memcmp(p, key, sizeof(key) - 1) != 0)
        return false;
    p += sizeof(key) - 1;
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    long n = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && n < INT32_MAX)
        n = n * 10 + (*p++ - '0');
    if (p == digits || p == end || (*p != ',' && *p != '}' && *p != ' '))
        return false;
    *count = n;
    return true;
}

static int tokenize_ask(struct prompt_builder *b, const struct tok_ask *a, enum tok_format fmt,
                        long *count);

/* libcurl's progress callback: a non-zero return abandons the transfer. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return stopped(userp);
}

/* The sum of the messages' contents counted alone, without special tokens; -errno. */
static int contents_count(struct prompt_builder *b, json_t *msgs, long *sum)
{
    size_t i;
    json_t *m;
    *sum = 0;
    json_array_foreach(msgs, i, m)
    {
        const char *s = json_string_value(json_object_get(m, "content"));
        struct tok_ask a = {.text = s ? s : ""};
        long c;
        int rc = tokenize_ask(b, &a, b->format, &c);
        if (rc)
            return rc;
        *sum += c;
    }
    return 0;
}

/* A message list on a /tokenize without a chat form, from the two probes' template model. */
static int messages_count(struct prompt_builder *b, const char *messages, long *count)
{
    json_t *msgs = json_loads(messages, 0, NULL);
    long sum = 0;
    int rc = json_is_array(msgs) && json_array_size(msgs) ? contents_count(b, msgs, &sum) : -EINVAL;
    if (!rc)
        *count = sum + b->chat_base + b->chat_per_message * (long)(json_array_size(msgs) - 1);
    json_decref(msgs);
    return rc;
}

/* The server's token count, or -errno. */
static int tokenize_ask(struct prompt_builder *b, const struct tok_ask *a, enum tok_format fmt,
                        long *count)
{
    if (fmt == TOK_LLAMACPP && a->chat && a->messages && b->chat_per_message >= 0)
        return messages_count(b, a->messages, count);
    json_t *req = tok_body(a, fmt, b->model);
    if (!req)
        return -EINVAL;
    json_t *resp = NULL;
    int rc = post_raw(b, b->url, req);
    json_decref(req);
    if (rc)
        return rc;
    if (!count_from_head(&b->resp, count)) {
        resp = json_loadb(b->resp.data ? b->resp.data : "", b->resp.len, 0, NULL);
        json_t *c = json_object_get(resp, "count");
        json_t *toks = json_object_get(resp, "tokens");
        if (json_is_integer(c))
            *count = (long)json_integer_value(c);
        else if (json_is_array(toks))
            *count = (long)json_array_size(toks);
        else
            rc = -EPROTO;
    }
    /* llama.cpp's /tokenize has no chat form: its count is the raw text's, plus what the
     * template adds as the probe measured it (prompt_builder_set_chat). */
    if (!rc && a->chat && fmt == TOK_LLAMACPP && b->chat_overhead > 0)
        *count += b->chat_overhead;
    json_decref(resp);
    return rc;
}

/* The count of text as the load sends it (a prompt, or one chat user message). */
static int tokenize_count(struct prompt_builder *b, const char *text, enum tok_format fmt,
                          long *count)
{
    struct tok_ask a = {.text = text, .chat = b->chat, .special = true};
    return tokenize_ask(b, &a, fmt, count);
}

/* Counts one composed text; on failure the builder stops calibrating (a server that went
 * away must not cost 5 s per prompt). */
static int count_text(struct prompt_builder *b, const struct buf *text, long *count)
{
    int rc = tokenize_count(b, text->data, b->format, count);
    if (rc && rc != -ECANCELED) {
        log_warn("prompt: /tokenize failed (%s); prompt lengths are estimates from now on",
                 strerror(-rc));
        b->calibrated = false;
    }
    return rc;
}

/* Learns the request format, tokens per word and the fixed overhead. 0 or -errno. */
static int probe(struct prompt_builder *b)
{
    struct buf t;
    buf_init(&t, PROMPT_MAX_TEXT);
    long c1 = 0, c2 = 0;
    int rc = put_stream(b, &t, b->seed ^ SALT_PROBE, PROMPT_PROBE_SHORT);
    if (rc)
        goto out;
    b->format = TOK_VLLM;
    rc = tokenize_count(b, t.data, TOK_VLLM, &c1);
    /* llama.cpp answers a body without "content" with 200 and no tokens. */
    if ((rc && rc != -ETIMEDOUT && rc != -ECONNREFUSED) || (!rc && c1 < PROMPT_PROBE_SHORT / 2)) {
        b->format = TOK_LLAMACPP;
        rc = tokenize_count(b, t.data, TOK_LLAMACPP, &c1);
    }
    if (rc)
        goto out;
    buf_reset(&t);
    rc = put_stream(b, &t, b->seed ^ SALT_PROBE, PROMPT_PROBE_LONG);
    if (!rc)
        rc = tokenize_count(b, t.data, b->format, &c2);
    if (rc)
        goto out;
    double tpw = (double)(c2 - c1) / (double)(PROMPT_PROBE_LONG - PROMPT_PROBE_SHORT);
    if (!(tpw >= 0.5 && tpw <= 8)) {
        rc = -EPROTO; /* not a tokenizer we can reason about */
        goto out;
    }
    b->tokens_per_word = tpw;
    b->overhead = fmax(0, (double)c1 - tpw * PROMPT_PROBE_SHORT);
out:
    buf_release(&t);
    return rc;
}

int prompt_builder_new(struct prompt_builder **out, const char *base_url, const char *model,
                       const char *api_key, uint64_t seed)
{
    struct prompt_builder *b = xcalloc(1, sizeof(*b));
    b->seed = seed;
    b->tokens_per_word = 1.0;
    b->prefix_for = -1;
    b->prefix_count = -1;
    b->chat_overhead = -1;
    b->chat_base = -1;
    b->chat_per_message = -1;
    buf_init(&b->resp, PROMPT_MAX_RESPONSE);
    if (!base_url || !*base_url)
        goto done;

    size_t len = strlen(base_url);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    char *base = xstrndup(base_url, len);
    b->url = xasprintf("%s/tokenize", base);
    free(base);
    b->model = xstrdup(model);
    b->curl = curl_easy_init();
    if (!b->curl) {
        prompt_builder_free(b);
        return -ENOMEM;
    }
    b->headers = curl_slist_append(b->headers, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip for long prompts (a second lost per call on
     * servers that do not answer it). */
    b->headers = curl_slist_append(b->headers, "Expect:");
    if (api_key && *api_key) {
        char *auth = xasprintf("Authorization: Bearer %s", api_key);
        b->headers = curl_slist_append(b->headers, auth);
        free(auth);
    }
    curl_easy_setopt(b->curl, CURLOPT_URL, b->url);
    http_apply(b->curl);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, b->headers);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, PROMPT_TIMEOUT_MS);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS, PROMPT_TIMEOUT_MS);
    curl_easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(b->curl, CURLOPT_XFERINFODATA, b);
    curl_easy_setopt(b->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, &b->resp);

    int rc = probe(b);
    if (rc) {
        log_info("prompt: no usable %s (%s); prompt lengths are estimates", b->url, strerror(-rc));
    } else {
        b->calibrated = true;
        log_info("prompt: calibrated on %s: %.3f tokens/word, %.0f extra tokens", b->url,
                 b->tokens_per_word, b->overhead);
    }
done:
    *out = b;
    return 0;
}

bool prompt_builder_calibrated(const struct prompt_builder *b)
{
    return b->calibrated;
}

/* Words to aim for so that words * tokens_per_word + already == target. */
static size_t words_for(const struct prompt_builder *b, double tokens)
{
    if (tokens <= 0)
        return 0;
    return (size_t)floor(tokens / b->tokens_per_word);
}

/* Words to aim short of a token gap: enough that the estimate's error rarely overshoots. */
static size_t margin_words(double tokens)
{
    return PROMPT_MARGIN_WORDS + (size_t)(tokens / PROMPT_MARGIN_DIV);
}

/* Words that should come a little short of 'tokens' at tpw tokens per word. */
static size_t aim_words(double tpw, double tokens)
{
    if (tokens <= 0)
        return 0;
    double w = floor(tokens / tpw) - (double)margin_words(tokens);
    return w > 0 ? (size_t)w : 0;
}

/* Sizes the shared prefix: the most words whose count stays within target, found with a
 * few round trips and cached per target. Uncalibrated: one word per token. */
static void prefix_size(struct prompt_builder *b, int target, struct buf *scratch)
{
    if (b->prefix_for == target)
        return;
    b->prefix_for = target;
    b->prefix_count = -1;
    b->prefix_words = target > 0 ? (size_t)target : 0;
    if (!b->calibrated || target <= 0)
        return;
    size_t p = words_for(b, target - b->overhead), tried[PROMPT_PREFIX_ROUNDS];
    size_t best = 0;
    long best_c = -1;
    for (int round = 0; round < PROMPT_PREFIX_ROUNDS; round++) {
        for (int i = 0; i < round; i++)
            if (tried[i] == p)
                goto done; /* oscillating around the target: whole words cannot do better */
        tried[round] = p;
        long c;
        if (compose(scratch, b, p, 0, 0, 0) || count_text(b, scratch, &c)) {
            b->prefix_words = (size_t)target; /* calibration is off for good */
            return;
        }
        if (c <= target && c > best_c) {
            best = p;
            best_c = c;
        }
        if (c == target)
            break;
        if (c < target) {
            size_t more = words_for(b, (double)(target - c));
            p += more ? more : 1;
        } else {
            size_t less = (size_t)ceil((double)(c - target) / b->tokens_per_word);
            less = less ? less : 1;
            p = less < p ? p - less : 0;
        }
    }
done:
    b->prefix_words = best;
    b->prefix_count = (int)best_c;
}

/* Closes the gap between segs (whose count is about seg_tokens, BOS included) and n_tokens
 * with tail words and fillers, correcting with /tokenize; the best is *k tail words and *fill
 * fillers, and its text is left in 'text'. *got: the server's count of it, -1 unknown.
 * 0 or -ENOMEM. */
static int fit(struct prompt_builder *b, struct buf *text, const struct prompt_words *segs,
               size_t n_segs, double seg_tokens, int n_tokens, uint64_t request_seed, size_t *k_out,
               size_t *fill_out, int *got)
{
    size_t k = aim_words(b->tokens_per_word, (double)n_tokens - seg_tokens), fill = 0;
    size_t best_k = k, best_fill = 0;
    long best_err = -1;
    *got = -1;
    for (int round = 0; round < PROMPT_MAX_ROUNDS && b->calibrated; round++) {
        long c;
        if (compose_segs(text, b, segs, n_segs, k, fill, request_seed))
            return -ENOMEM;
        if (count_text(b, text, &c))
            break;
        long err = labs(c - n_tokens);
        if (best_err < 0 || err < best_err) {
            best_err = err;
            best_k = k;
            best_fill = fill;
            *got = (int)c;
        }
        if (c == n_tokens)
            break;
        /* This text's own tokens per word beats the probe's for the next step. */
        double tail_tokens = (double)c - seg_tokens - (double)fill;
        double tpw = k >= 64 && tail_tokens > 0 ? tail_tokens / (double)k : b->tokens_per_word;
        long d = labs(c - n_tokens);
        if (c < n_tokens) {
            size_t more = aim_words(tpw, (double)d);
            if (d <= PROMPT_MAX_FILL || more == 0)
                fill += (size_t)d; /* fillers are one token each */
            else
                k += more;
        } else if (fill > 0) {
            /* Overshot with fillers: a filler was not one token here. */
            fill = (size_t)d < fill ? fill - (size_t)d : 0;
        } else {
            if (k == 0)
                break; /* the segments alone are too long */
            /* Trim a little too much and let fillers close the gap. */
            size_t less = (size_t)ceil((double)d / tpw) + margin_words((double)d);
            k = less < k ? k - less : 0;
        }
    }
    if (best_err < 0) {
        /* /tokenize failed on the first try: fall back to the estimate. */
        *got = -1;
        best_k = k;
        best_fill = 0;
    }
    *k_out = best_k;
    *fill_out = best_fill;
    return compose_segs(text, b, segs, n_segs, best_k, best_fill, request_seed) ? -ENOMEM : 0;
}

/* The recipe of segs (copied), k tail words and fill fillers; the text composed last is
 * handed over when text_out is given. */
static void recipe_set(struct prompt_recipe *out, const struct prompt_words *segs, size_t n_segs,
                       size_t k, size_t fill, int got, struct buf *text, char **text_out)
{
    out->segs = n_segs ? xcalloc(n_segs, sizeof(*out->segs)) : NULL;
    if (n_segs)
        memcpy(out->segs, segs, n_segs * sizeof(*segs));
    out->n_segs = n_segs;
    out->tail = k;
    out->fill = fill;
    out->actual = got;
    if (text_out)
        *text_out = buf_take(text, NULL);
}

static void recipe_begin(struct prompt_recipe *out, uint64_t request_seed, char **text_out)
{
    memset(out, 0, sizeof(*out));
    out->request_seed = request_seed;
    out->actual = -1;
    if (text_out)
        *text_out = NULL;
}

int prompt_plan(struct prompt_builder *b, int n_tokens, int shared_prefix_tokens,
                uint64_t request_seed, struct prompt_recipe *out, char **text_out)
{
    struct buf text;
    buf_init(&text, PROMPT_MAX_TEXT);
    recipe_begin(out, request_seed, text_out);
    if (n_tokens < 0)
        n_tokens = 0;
    if (shared_prefix_tokens < 0)
        shared_prefix_tokens = 0;
    if (shared_prefix_tokens > n_tokens)
        shared_prefix_tokens = n_tokens;
    int got = -1, rc = -ENOMEM;
    size_t k, fill = 0;

    prefix_size(b, shared_prefix_tokens, &text);
    size_t p = b->prefix_words;
    if (!b->calibrated) {
        /* One word per token, BOS not counted: a close estimate for common words. */
        size_t total = (size_t)n_tokens;
        if (p > total)
            p = total;
        k = total - p;
        if (text_out && compose(&text, b, p, k, 0, request_seed))
            goto out;
    } else {
        /* No prefix fitted (target below one word plus BOS): none at all. */
        if (b->prefix_count < 0)
            p = 0;
        double prefix_tokens = p ? (double)b->prefix_count : b->overhead;
        struct prompt_words one = {b->seed, p};
        if (fit(b, &text, &one, 1, prefix_tokens, n_tokens, request_seed, &k, &fill, &got))
            goto out;
    }
    struct prompt_words one = {b->seed, p};
    recipe_set(out, &one, 1, k, fill, got, &text, text_out);
    rc = 0;
out:
    buf_release(&text);
    return rc;
}

int prompt_plan_segments(struct prompt_builder *b, int n_tokens, const struct prompt_segment *segs,
                         size_t n_segs, uint64_t request_seed, struct prompt_recipe *out,
                         char **text_out)
{
    struct buf text;
    buf_init(&text, PROMPT_MAX_TEXT);
    recipe_begin(out, request_seed, text_out);
    struct prompt_words *ws = xcalloc(n_segs ? n_segs : 1, sizeof(*ws));
    double seg_tokens = b->calibrated ? b->overhead : 0;
    size_t seg_words = 0;
    for (size_t i = 0; i < n_segs; i++) {
        ws[i].seed = hash64(&segs[i].id, sizeof(segs[i].id), b->seed ^ SALT_SEGMENT);
        ws[i].words = words_for(b, segs[i].tokens > 0 ? segs[i].tokens : 0);
        seg_tokens += (double)ws[i].words * b->tokens_per_word;
        seg_words += ws[i].words;
    }
    int got = -1, rc = -ENOMEM;
    size_t k, fill = 0;
    if (n_tokens < 0)
        n_tokens = 0;
    if (!b->calibrated) {
        k = (size_t)n_tokens > seg_words ? (size_t)n_tokens - seg_words : 0;
        if (text_out && compose_segs(&text, b, ws, n_segs, k, 0, request_seed))
            goto out;
    } else if (fit(b, &text, ws, n_segs, seg_tokens, n_tokens, request_seed, &k, &fill, &got)) {
        goto out;
    }
    recipe_set(out, ws, n_segs, k, fill, got, &text, text_out);
    rc = 0;
out:
    free(ws);
    buf_release(&text);
    return rc;
}

void prompt_recipe_given(struct prompt_recipe *out, const char *text)
{
    recipe_begin(out, 0, NULL);
    out->given = text;
}

char *prompt_recipe_text(const struct prompt_builder *b, const struct prompt_recipe *r, size_t *len)
{
    if (r->given) {
        size_t n = strlen(r->given);
        char *t = malloc(n + 1);
        if (t)
            memcpy(t, r->given, n + 1);
        if (len)
            *len = n;
        return t;
    }
    struct buf text;
    buf_init(&text, PROMPT_MAX_TEXT);
    char *t = NULL;
    if (compose_segs(&text, b, r->segs, r->n_segs, r->tail, r->fill, r->request_seed) == 0)
        t = buf_take(&text, len);
    buf_release(&text);
    return t;
}

size_t prompt_recipe_size(const struct prompt_recipe *r)
{
    return sizeof(*r) + r->n_segs * sizeof(*r->segs);
}

void prompt_recipe_release(struct prompt_recipe *r)
{
    free(r->segs);
    memset(r, 0, sizeof(*r));
}

char *prompt_build(struct prompt_builder *b, int n_tokens, int shared_prefix_tokens,
                   uint64_t request_seed, int *actual)
{
    struct prompt_recipe r;
    char *text = NULL;
    if (prompt_plan(b, n_tokens, shared_prefix_tokens, request_seed, &r, &text) == 0 && actual)
        *actual = r.actual;
    prompt_recipe_release(&r);
    return text;
}

char *prompt_build_segments(struct prompt_builder *b, int n_tokens,
                            const struct prompt_segment *segs, size_t n_segs, uint64_t request_seed,
                            int *actual)
{
    struct prompt_recipe r;
    char *text = NULL;
    if (prompt_plan_segments(b, n_tokens, segs, n_segs, request_seed, &r, &text) == 0 && actual)
        *actual = r.actual;
    prompt_recipe_release(&r);
    return text;
}

int prompt_count(struct prompt_builder *b, const char *text, const char *messages_json,
                 bool special)
{
    if (b->calibrated) {
        struct tok_ask a = {.text = text,
                            .messages = messages_json,
                            .chat = b->chat && special,
                            .special = special};
        long c;
        if (tokenize_ask(b, &a, b->format, &c) == 0)
            return c > INT32_MAX ? INT32_MAX : (int)c;
    }
    /* No tokenizer to ask: about four bytes a token (English text, BPE vocabularies). */
    size_t n = text ? strlen(text) : 0;
    return (int)(n / 4 > INT32_MAX ? INT32_MAX : (n + 3) / 4);
}

void prompt_builder_set_corpus(struct prompt_builder *b, const char *const *corpus, size_t n)
{
    b->corpus = corpus;
    b->n_corpus = n;
    b->prefix_for = -1; /* a prefix sized on other words */
    b->prefix_count = -1;
}

void prompt_builder_set_stop(struct prompt_builder *b, const atomic_bool *stop)
{
    b->stop = stop;
}

void prompt_builder_free(struct prompt_builder *b)
{
    if (!b)
        return;
    if (b->curl)
        curl_easy_cleanup(b->curl);
    curl_slist_free_all(b->headers);
    buf_release(&b->resp);
    free(b->url);
    free(b->chat_url);
    free(b->model);
    free(b);
}

/* usage.prompt_tokens of a chat request of these messages (max_tokens 1), or -errno. */
static int usage_prompt_tokens(struct prompt_builder *b, json_t *msgs, long *out)
{
    json_t *req = json_pack("{s:O, s:i, s:b}", "messages", msgs, "max_tokens", 1, "stream", 0);
    json_t *resp = NULL;
    if (!req)
        return -ENOMEM;
    if (b->model)
        json_object_set_new(req, "model", json_string(b->model));
    int rc = post_json(b, b->chat_url, req, &resp);
    json_t *pt = json_object_get(json_object_get(resp, "usage"), "prompt_tokens");
    if (!rc && !json_is_integer(pt))
        rc = -EPROTO;
    if (!rc)
        *out = (long)json_integer_value(pt);
    json_decref(req);
    json_decref(resp);
    return rc;
}

/* llama.cpp's /tokenize takes no messages, so a chat prompt's count misses the template.
 * Probes measure what the template adds: the raw count of a text, and the prompt_tokens the
 * chat API reports in its usage for that text as one user message (max_tokens 1); then for
 * three messages, which gives the cost of each further message. Any server with usage
 * answers them, so lengths are exact there too. 0 or -errno (the one-message probe). */
static int calibrate_chat(struct prompt_builder *b)
{
    struct buf t[3];
    json_t *one = NULL, *three = NULL;
    long raw = 0, with = 0;
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        buf_init(&t[i], PROMPT_MAX_TEXT);
        rc |= put_stream(b, &t[i], b->seed ^ (SALT_PROBE + (uint64_t)i), PROMPT_PROBE_SHORT * 4);
    }
    struct tok_ask a = {.text = t[0].data, .special = true};
    if (!rc)
        rc = tokenize_ask(b, &a, b->format, &raw);
    one = json_pack("[{s:s, s:s}]", "role", "user", "content", t[0].data);
    three =
        json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "user", "content", t[0].data,
                  "role", "assistant", "content", t[1].data, "role", "user", "content", t[2].data);
    if (!rc && (!one || !three))
        rc = -ENOMEM;
    if (!rc)
        rc = usage_prompt_tokens(b, one, &with);
    if (!rc && (with < raw || with - raw > PROMPT_MAX_TEMPLATE))
        rc = -EPROTO; /* not a count of this text */
    if (rc)
        goto out;
    b->chat_overhead = with - raw;
    /* The per-message model is a refinement: without it lists are estimates, as before. */
    long sum1 = 0, sum3 = 0, with3 = 0;
    if (contents_count(b, one, &sum1) || contents_count(b, three, &sum3) ||
        usage_prompt_tokens(b, three, &with3))
        goto out;
    long base = with - sum1, per2 = with3 - sum3 - base;
    /* Two more messages, a user's and an assistant's: roles that cost differently round. */
    if (base >= 0 && per2 >= 0 && per2 / 2 <= PROMPT_MAX_TEMPLATE) {
        b->chat_base = base;
        b->chat_per_message = (per2 + 1) / 2;
    }
out:
    json_decref(one);
    json_decref(three);
    for (int i = 0; i < 3; i++)
        buf_release(&t[i]);
    return rc;
}

void prompt_builder_set_chat(struct prompt_builder *b, bool chat)
{
    b->chat = chat;
    b->prefix_for = -1; /* the cached prefix size was counted the other way */
    b->prefix_count = -1;
    if (!chat || !b->calibrated || b->format != TOK_LLAMACPP || b->chat_overhead >= 0)
        return;
    size_t n = strlen(b->url) - strlen("/tokenize");
    free(b->chat_url);
    b->chat_url = xasprintf("%.*s/v1/chat/completions", (int)n, b->url);
    int rc = calibrate_chat(b);
    const char *why = rc == -ENOENT   ? "404 from /v1/chat/completions"
                      : rc == -EPROTO ? "no usable usage.prompt_tokens in its answer"
                                      : strerror(-rc);
    if (rc)
        log_warn("prompt: %s cannot count chat messages and the chat-template probe failed "
                 "(%s): chat prompts will be short of their targets by the template's tokens",
                 b->url, why);
    else
        log_info("prompt: %s has no chat form; the chat template adds %ld tokens to one "
                 "message and %ld per further message (probes of usage.prompt_tokens), counted "
                 "in every target",
                 b->url, b->chat_overhead, b->chat_per_message);
}

long prompt_builder_chat_overhead(const struct prompt_builder *b)
{
    return b->chat_overhead;
}
