/*
 * dataset.c - the dataset readers. Conversations are normalised to OpenAI chat messages:
 * ShareGPT's "from" human/user -> user, system -> system, anything else (gpt, chatgpt, bard,
 * ...) -> assistant; "value" or "content" is the text. A record without a user turn is
 * skipped and counted (ShareGPT has some), one that is not the expected shape is an error
 * naming the file, its line (JSON lines) or its index (ShareGPT), and the key.
 */
#include "workload/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/text.h"

/* ---- one conversation ---------------------------------------------------------------- */

static const char *role_of(const char *from)
{
    if (strcmp(from, "human") == 0 || strcmp(from, "user") == 0)
        return "user";
    if (strcmp(from, "system") == 0)
        return "system";
    return "assistant";
}

/* Turn i's role and text, or -EINVAL with why. */
static int turn_at(json_t *turns, size_t i, const char **role, const char **text, char *why,
                   size_t len)
{
    json_t *t = json_array_get(turns, i);
    json_t *from = json_object_get(t, "from");
    if (!from)
        from = json_object_get(t, "role");
    json_t *val = json_object_get(t, "value");
    if (!val)
        val = json_object_get(t, "content");
    if (!json_is_string(from) || !json_is_string(val)) {
        snprintf(why, len,
                 "turn %zu: expected {\"from\" (or \"role\"), \"value\" (or \"content\")} "
                 "with strings",
                 i);
        return -EINVAL;
    }
    *role = role_of(json_string_value(from));
    *text = json_string_value(val);
    return 0;
}

static char *flatten(json_t *msgs)
{
    struct buf b;
    buf_init(&b, DATASET_MAX_BYTES);
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *label = strcmp(role, "user") == 0     ? "User"
                            : strcmp(role, "system") == 0 ? "System"
                                                          : "Assistant";
        rc |= buf_printf(&b, "%s%s: %s", i ? "\n\n" : "", label,
                         json_string_value(json_object_get(m, "content")));
    }
    rc |= buf_puts(&b, "\n\nAssistant:");
    if (rc) {
        buf_release(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* Fills e from a list of turns. 1 = no user turn (skip), 0 = kept, -EINVAL (why). */
static int conversation(json_t *turns, bool all, struct ds_entry *e, char *why, size_t len)
{
    size_t n = json_array_size(turns), first = n, last = n;
    for (size_t i = 0; i < n; i++) {
        const char *role, *text;
        if (turn_at(turns, i, &role, &text, why, len))
            return -EINVAL;
        if (strcmp(role, "user") == 0) {
            if (first == n)
                first = i;
            last = i;
        }
    }
    if (first == n)
        return 1;
    size_t ask = all ? last : first;
    const char *role, *text;
    (void)turn_at(turns, ask, &role, &text, why, len);
    if (!*text)
        return 1; /* an empty question: nothing to send */
    if (ask + 1 < n && turn_at(turns, ask + 1, &role, &text, why, len) == 0 &&
        strcmp(role, "assistant") == 0)
        e->reply = xstrdup(text);
    (void)turn_at(turns, ask, &role, &text, why, len);
    if (!all) {
        e->prompt = xstrdup(text);
        return 0;
    }
    json_t *msgs = json_array();
    for (size_t i = 0; i <= last; i++) {
        (void)turn_at(turns, i, &role, &text, why, len);
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", role, "content", text));
    }
    e->messages = json_dumps(msgs, JSON_COMPACT);
    e->prompt = flatten(msgs);
    json_decref(msgs);
    return e->messages && e->prompt ? 0 : -ENOMEM;
}

static void entry_release(struct ds_entry *e)
{
    free(e->prompt);
    free(e->messages);
    free(e->reply);
}

static void push(struct dataset *d, size_t *cap, const struct ds_entry *e)
{
    if (d->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        d->v = xreallocarray(d->v, *cap, sizeof(*d->v));
    }
    d->v[d->n++] = *e;
}

/* One record (a ShareGPT item or a JSON line). 0 kept or skipped, -EINVAL (why). */
static int record(struct dataset *d, size_t *cap, json_t *rec, bool all, bool jsonl, char *why,
                  size_t len)
{
    struct ds_entry e = {.output_tokens = -1};
    if (!json_is_object(rec)) {
        snprintf(why, len, "expected an object");
        return -EINVAL;
    }
    json_t *turns = json_object_get(rec, "conversations");
    if (!turns)
        turns = json_object_get(rec, "messages");
    json_t *prompt = jsonl ? json_object_get(rec, "prompt") : NULL;
    int rc = 0;
    if (json_is_string(prompt) && !*json_string_value(prompt)) {
        rc = 1; /* an empty prompt: nothing to send */
    } else if (json_is_string(prompt)) {
        e.prompt = xstrdup(json_string_value(prompt));
        if (all) {
            json_t *msgs =
                json_pack("[{s:s, s:s}]", "role", "user", "content", json_string_value(prompt));
            e.messages = json_dumps(msgs, JSON_COMPACT);
            json_decref(msgs);
        }
    } else if (json_is_array(turns)) {
        rc = conversation(turns, all, &e, why, len);
    } else {
        snprintf(why, len,
                 jsonl ? "needs \"prompt\" (a string) or \"messages\" (a list)"
                       : "needs \"conversations\" (a list of turns)");
        return -EINVAL;
    }
    json_t *ot = jsonl ? json_object_get(rec, "output_tokens") : NULL;
    if (rc == 0 && ot) {
        if (!json_is_integer(ot) || json_integer_value(ot) < 1 ||
            json_integer_value(ot) > 100000000) {
            snprintf(why, len, "output_tokens: expected an integer >= 1");
            rc = -EINVAL;
        } else {
            e.output_tokens = (int)json_integer_value(ot);
        }
    }
    if (rc == 0)
        push(d, cap, &e);
    else
        entry_release(&e);
    if (rc == 1)
        d->skipped++;
    return rc == 1 ? 0 : rc;
}

/* ---- files --------------------------------------------------------------------------- */

/* The whole file, NUL-terminated; -ENOENT/-EIO/-EFBIG with the message. */
static int slurp(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = f ? EINVAL : errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, f ? "not a regular file" : strerror(e));
        if (f)
            fclose(f);
        return e == ENOENT ? -ENOENT : -EIO;
    }
    if ((unsigned long long)st.st_size > DATASET_MAX_BYTES) {
        snprintf(err, errlen, "%s: %lld bytes is more than the %llu a dataset may have", path,
                 (long long)st.st_size, DATASET_MAX_BYTES);
        fclose(f);
        return -EFBIG;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: cannot read", path);
        return -EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_sharegpt(struct dataset *d, const char *path, bool all, char *err, size_t errlen)
{
    char *text;
    size_t len, cap = 0;
    int rc = slurp(path, &text, &len, err, errlen);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -EINVAL;
    }
    if (!json_is_array(root)) {
        snprintf(err, errlen, "%s: expected a list of conversations (ShareGPT format)", path);
        json_decref(root);
        return -EINVAL;
    }
    size_t i;
    json_t *item;
    char why[256];
    json_array_foreach(root, i, item)
    {
        rc = record(d, &cap, item, all, false, why, sizeof(why));
        if (rc) {
            snprintf(err, errlen, "%s: item %zu: %s", path, i, why);
            break;
        }
    }
    json_decref(root);
    return rc;
}

static int load_jsonl(struct dataset *d, const char *path, bool all, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -EIO;
    }
    char *line = NULL, why[256];
    size_t lcap = 0, cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if ((size_t)n > DATASET_MAX_LINE) {
            snprintf(err, errlen, "%s:%zu: the line is longer than %u bytes", path, lineno,
                     DATASET_MAX_LINE);
            rc = -EFBIG;
            break;
        }
        size_t k = strspn(line, " \t\r\n");
        if (line[k] == '\0')
            continue; /* blank lines are allowed */
        json_error_t je;
        /* One value a line: anything after it but white space is an error, not ignored. */
        json_t *rec = json_loadb(line, (size_t)n, 0, &je);
        if (!rec) {
            snprintf(err, errlen, "%s:%zu:%d: %s", path, lineno, je.column, je.text);
            rc = -EINVAL;
            break;
        }
        rc = record(d, &cap, rec, all, true, why, sizeof(why));
        if (rc)
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return rc;
}

/* A text corpus: NUL-free text, made valid UTF-8, split into words at white space. */
static int load_text(struct dataset *d, const char *path, char *err, size_t errlen)
{
    size_t len, cap = 0;
    int rc = slurp(path, &d->text, &len, err, errlen);
    if (rc)
        return rc;
    const char *nul = memchr(d->text, '\0', len);
    if (nul) {
        snprintf(err, errlen,
                 "%s: byte %zu is NUL: a text corpus must be text (is it a binary file?)", path,
                 (size_t)(nul - d->text));
        return -EINVAL;
    }
    if (!utf8_valid(d->text, len)) {
        char *fixed = utf8_repair(d->text, len);
        log_warn("dataset %s: bytes that are not valid UTF-8 became U+FFFD (a prompt is sent as "
                 "a JSON string, which must be UTF-8)",
                 path);
        free(d->text);
        d->text = fixed;
    }
    for (char *p = d->text; *p;) {
        p += strspn(p, " \t\r\n\f\v");
        if (!*p)
            break;
        size_t w = strcspn(p, " \t\r\n\f\v");
        if (d->n_words == cap) {
            cap = cap ? 2 * cap : 4096;
            d->words = xreallocarray(d->words, cap, sizeof(*d->words));
        }
        d->words[d->n_words++] = p;
        p += w;
        if (*p)
            *p++ = '\0';
    }
    return 0;
}

int dataset_load(struct dataset **out, const struct dataset_cfg *cfg, char *err, size_t errlen)
{
    struct dataset *d = xcalloc(1, sizeof(*d));
    bool all = cfg->turns && strcmp(cfg->turns, "all") == 0;
    int rc = dataset_format_parse(cfg->format, cfg->path, &d->format);
    if (rc) {
        snprintf(err, errlen, "%s: unknown format", cfg->path);
    } else if (d->format == DS_SHAREGPT) {
        rc = load_sharegpt(d, cfg->path, all, err, errlen);
    } else if (d->format == DS_JSONL) {
        rc = load_jsonl(d, cfg->path, all, err, errlen);
    } else {
        rc = load_text(d, cfg->path, err, errlen);
    }
    if (!rc && d->n == 0 && d->n_words == 0) {
        snprintf(err, errlen,
                 "%s: no usable %s (%zu records without a user turn or with an empty one)",
                 cfg->path, d->format == DS_TEXT ? "words" : "prompts", d->skipped);
        rc = -EINVAL;
    }
    if (rc) {
        dataset_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void dataset_free(struct dataset *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        entry_release(&d->v[i]);
    free(d->v);
    free(d->text);
    free(d->words);
    free(d);
}
