/*
 * fuzz_chunk.c - the per-event chunk scanner (client_chunk_parse in src/runner/client.c),
 * which reads untrusted server JSON without building a document. Properties beyond "no
 * crash": a chunk it accepts is JSON jansson accepts too; bad_at lies inside the input; id
 * points into the input.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "runner/client.h"

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
        if (ascii) {
            json_error_t e;
            json_t *j = json_loadb(buf, size, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &e);
            if (!j || !json_is_object(j))
                abort();
            json_decref(j);
        }
    } else if (bad_at > size) {
        abort();
    }
    free(buf);
    return 0;
}
