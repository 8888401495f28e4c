/*
 * fuzz_chunk.c - the per-event chunk scanner (client_chunk_parse in src/runner/client.c),
 * which reads untrusted server JSON without building a document. Properties beyond "no
 * crash": a chunk it accepts is a JSON object jansson accepts too (numbers out of jansson's
 * range aside); bad_at lies inside the input; id points into the input.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "runner/client.h"

/* A \uD800-\uDFFF escape: JSON's grammar allows a lone one, jansson refuses it, and the
 * scanner, which decodes no strings, rightly does not care. */
static bool has_surrogate_escape(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] | 0x20) == 'd' &&
            strchr("89abcdefABCDEF", p[i + 3]) && p[i + 3])
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct client_chunk c;
    size_t bad_at = (size_t)-1;
    int rc = client_chunk_parse(buf, size, &c, &bad_at);
    if (rc == 0) {
        if (c.id && (c.id < buf || c.id + c.id_len > buf + size))
            abort();
        /* The scanner does not check UTF-8 (client.h) and jansson does: only ASCII inputs
         * without NUL are compared. */
        bool ascii = true;
        for (size_t i = 0; ascii && i < size; i++)
            ascii = data[i] > 0 && data[i] < 0x80;
        if (ascii && !has_surrogate_escape(data, size)) {
            json_error_t e;
            json_t *j = json_loadb(buf, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
            /* JSON that jansson refuses: numbers past a double's or an int64's range, and
             * \u0000 in an object key. */
            if (!j && json_error_code(&e) != json_error_numeric_overflow &&
                json_error_code(&e) != json_error_null_byte_in_key)
                abort();
            if (j && !json_is_object(j))
                abort();
            json_decref(j);
        }
    } else if (bad_at > size) {
        abort();
    }
    free(buf);
    return 0;
}
