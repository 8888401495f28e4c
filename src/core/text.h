/*
 * text.h - making untrusted text safe for where it goes: valid UTF-8 for JSON (jansson refuses
 * anything else, which dropped keys from result files), plain characters for a terminal (a
 * server's strings may hold escape sequences), and secrets kept out of files and messages.
 */
#ifndef TB_TEXT_H
#define TB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xalloc.h"

/* Longest secret remembered, and how many: keys, URL passwords. */
#define TEXT_SECRET_MAX 4096
#define TEXT_SECRETS_MAX 16
/* What a redacted secret becomes. */
#define TEXT_REDACTED "[redacted]"

bool utf8_valid(const char *s, size_t n);
/* A copy of s[0..n) in which every byte that is not part of a valid UTF-8 sequence (and every
 * NUL) is U+FFFD. Caller frees. */
MUST_USE char *utf8_repair(const char *s, size_t n);

/* Copies s into out (cap bytes, NUL-terminated) for a terminal: control characters (C0, DEL,
 * and C1 in UTF-8) become '?', as do bytes that are not valid UTF-8. NULL copies "". */
void term_clean(char *out, size_t cap, const char *s);
/* The same for text of several lines (a message, a log's tail): newlines and tabs are kept,
 * each newline followed by indent, so that quoted text cannot start a line of its own that
 * reads like ours ("error: ...", "OK"). */
void term_clean_lines(char *out, size_t cap, const char *s, const char *indent);

/* Remembers a secret (a key's value, a URL's credentials) so that text_redact() hides it; empty
 * and over-long values are ignored, duplicates kept once. Call before threads read them. */
void secret_add(const char *s);
void secret_forget_all(void);
/* The userinfo ("user:password") of an http(s) URL as a new string, or NULL when it has none. */
MUST_USE char *url_userinfo(const char *url);
/* A copy of s with every remembered secret, and whatever looks like a token (hf_..., sk-...,
 * the value after KEY=, TOKEN=, SECRET=, PASSWORD=), replaced by TEXT_REDACTED. Caller frees;
 * NULL for NULL. */
MUST_USE char *text_redact(const char *s);
/* Same, into a fixed buffer (truncating). */
void text_redact_into(char *buf, size_t cap);

#endif
