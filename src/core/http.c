#include "core/http.h"

#include <stdlib.h>

#include "core/xalloc.h"

static char *ca_bundle; /* process-wide by design: see http.h */

void http_set_ca_bundle(const char *path)
{
    free(ca_bundle);
    ca_bundle = xstrdup(path);
}

void http_apply(CURL *h)
{
    if (ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_bundle);
}
