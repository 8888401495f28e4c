#include "core/text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one (overlongs,
 * surrogates and values past U+10FFFF are not valid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return c ? 1 : 0;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

char *utf8_repair(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* At most 3 bytes out per byte in. */
    char *out = xmalloc(n * 3 + 1);
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(out + j, s + i, k);
            j += k;
            i += k;
        } else {
            memcpy(out + j, "\xef\xbf\xbd", 3);
            j += 3;
            i++;
        }
    }
    out[j] = '\0';
    return out;
}

/* term_clean and term_clean_lines: lines (NULL: a newline is a control character like the
 * others) is what follows each kept newline. */
static void clean(char *out, size_t cap, const char *s, const char *lines)
{
    if (!cap)
        return;
    size_t j = 0, n = s ? strlen(s) : 0;
    size_t lines_len = lines ? strlen(lines) : 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && j + 1 < cap;) {
        size_t k = utf8_seq(u + i, n - i);
        if (lines && u[i] == '\n') {
            if (j + 1 + lines_len >= cap)
                break;
            out[j++] = '\n';
            memcpy(out + j, lines, lines_len);
            j += lines_len;
            i++;
            continue;
        }
        bool control = k == 1 && (u[i] < 0x20 || u[i] == 0x7f) && !(lines && u[i] == '\t');
        bool c1 = k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0;
        if (!k || control || c1) {
            out[j++] = '?';
            i += k ? k : 1;
            continue;
        }
        if (j + k >= cap)
            break;
        memcpy(out + j, s + i, k);
        j += k;
        i += k;
    }
    out[j] = '\0';
}

void term_clean(char *out, size_t cap, const char *s)
{
    clean(out, cap, s, NULL);
}

void term_clean_lines(char *out, size_t cap, const char *s, const char *indent)
{
    clean(out, cap, s, indent ? indent : "");
}

static char *secrets[TEXT_SECRETS_MAX];
static size_t n_secrets;

void secret_add(const char *s)
{
    /* Very short values would redact ordinary words. */
    if (!s || strlen(s) < 4 || strlen(s) > TEXT_SECRET_MAX)
        return;
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], s) == 0)
            return;
    if (n_secrets < TEXT_SECRETS_MAX)
        secrets[n_secrets++] = xstrdup(s);
}

void secret_forget_all(void)
{
    for (size_t i = 0; i < n_secrets; i++) {
        explicit_bzero(secrets[i], strlen(secrets[i]));
        free(secrets[i]);
    }
    n_secrets = 0;
}

char *url_userinfo(const char *url)
{
    if (!url)
        return NULL;
    const char *p = strstr(url, "://");
    if (!p)
        return NULL;
    p += 3;
    size_t host_end = strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < p + host_end; q++)
        if (*q == '@')
            at = q;
    if (!at || at == p)
        return NULL;
    return xstrndup(p, (size_t)(at - p));
}

static bool token_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Length of a token-looking run at s (hf_ or sk- and at least 2 more token characters), or
 * of the value after a NAME= whose name ends in KEY, TOKEN, SECRET or PASSWORD; 0 if none.
 * *skip is how many leading bytes stay (the "NAME="). */
static size_t token_at(const char *s, const char *start, size_t *skip)
{
    *skip = 0;
    if ((strncmp(s, "hf_", 3) == 0 || strncmp(s, "sk-", 3) == 0) &&
        (s == start || !token_char(s[-1]))) {
        size_t n = 3;
        while (token_char(s[n]))
            n++;
        return n >= 5 ? n : 0;
    }
    if (*s != '=' || s == start)
        return 0;
    static const char *const names[] = {"KEY", "TOKEN", "SECRET", "PASSWORD"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t l = strlen(names[i]);
        if ((size_t)(s - start) >= l && strncasecmp(s - l, names[i], l) == 0) {
            size_t n = 1;
            while (s[n] && !isspace((unsigned char)s[n]) && s[n] != '"' && s[n] != '\'')
                n++;
            *skip = 1;
            return n > 1 ? n : 0;
        }
    }
    return 0;
}

char *text_redact(const char *s)
{
    if (!s)
        return NULL;
    struct buf b;
    buf_init(&b, (size_t)-1);
    const char *p = s;
    while (*p) {
        size_t hit = 0, skip = 0;
        for (size_t i = 0; i < n_secrets && !hit; i++)
            if (strncmp(p, secrets[i], strlen(secrets[i])) == 0)
                hit = strlen(secrets[i]);
        if (!hit)
            hit = token_at(p, s, &skip);
        if (hit) {
            if (buf_append(&b, p, skip) || buf_puts(&b, TEXT_REDACTED))
                abort(); /* unbounded buffer: only OOM, which xmalloc aborts on too */
            p += hit;
        } else {
            if (buf_append(&b, p, 1))
                abort();
            p++;
        }
    }
    char *out = xstrdup(b.data ? b.data : "");
    buf_release(&b);
    return out;
}

void text_redact_into(char *buf, size_t cap)
{
    if (!buf || !cap)
        return;
    char *r = text_redact(buf);
    snprintf(buf, cap, "%s", r);
    free(r);
}
