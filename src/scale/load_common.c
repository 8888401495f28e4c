/*
 * load_common.c - what the coordinator and the workers both need: the blocking JSON calls a
 * worker makes, the config fingerprint they compare, the concurrency split they both check.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/http.h"
#include "core/rng.h"
#include "scale/load_internal.h"

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return buf_append(arg, p, size * n) ? 0 : size * n; /* over LOAD_BODY_MAX: abort */
}

bool load_url_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    return strncmp(h, "localhost", 9) == 0 || strncmp(h, "127.", 4) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

int load_http(CURL *h, const char *method, const char *url, const char *body, size_t len,
              double timeout_s, long *status, json_t **reply, char *err, size_t errlen)
{
    struct buf b;
    buf_init(&b, LOAD_BODY_MAX);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    *status = 0;
    *reply = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    http_apply(h);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, load_url_is_loopback(url) ? "*" : NULL);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1e3));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cc = curl_easy_perform(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        *reply = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    buf_release(&b);
    return rc;
}

void load_config_fingerprint(const struct config *c, char out[17])
{
    json_t *j = config_to_json(c);
    json_object_del(j, "path");
    json_object_del(json_object_get(j, "benchmark"), "output_dir");
    json_object_del(json_object_get(j, "server"), "endpoint");
    json_object_del(json_object_get(j, "server"), "sim");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "tenants"), i, t)
    {
        json_object_del(t, "endpoint");
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = hash64(text, (unsigned long)strlen(text), LOAD_PROTOCOL);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    free(text);
    json_decref(j);
}

static int check_caps(const struct requests_cfg *rq, const char *where, int n, char *err,
                      size_t errlen)
{
    for (size_t k = 0; k < rq->n_concurrency; k++) {
        if (rq->concurrency[k] > 0 && rq->concurrency[k] < n) {
            snprintf(err, errlen,
                     "%s.concurrency %d cannot be split over %d workers (each needs at least "
                     "one request in flight): use at most %d worker(s), or no cap",
                     where, rq->concurrency[k], n, rq->concurrency[k]);
            return -EINVAL;
        }
    }
    return 0;
}

/* Each worker sends at least one arrival of every point (a trace's rows are counted only when
 * read: not checked). */
static int check_arrivals(const struct requests_cfg *rq, const char *where, int n, char *err,
                          size_t errlen)
{
    if (rq->trace.path)
        return 0;
    int turns = rq->session.enabled && rq->session.turns > 0 ? rq->session.turns : 1;
    int arrivals = (rq->num_requests + turns - 1) / turns;
    if (arrivals >= n)
        return 0;
    snprintf(err, errlen,
             "%s: %d %s cannot be shared by %d workers (each sends whole %s): use at most %d "
             "worker(s), or raise num_requests",
             where, arrivals, turns > 1 ? "sessions" : "requests", n,
             turns > 1 ? "sessions" : "requests", arrivals);
    return -EINVAL;
}

int load_check_split(const struct config *c, int n, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t t = 0; t < c->n_tenants && rc == 0; t++) {
        char where[160];
        if (c->tenants_given)
            snprintf(where, sizeof(where), "tenants[%zu].requests", t);
        else
            snprintf(where, sizeof(where), "requests");
        rc = check_caps(&c->tenants[t].requests, where, n, err, errlen);
        if (rc == 0)
            rc = check_arrivals(&c->tenants[t].requests, where, n, err, errlen);
    }
    return rc;
}

double load_timeout_s(void)
{
    const char *env = getenv("TESTBENCH_LOAD_TIMEOUT_S");
    char *end;
    double s = env ? strtod(env, &end) : 0;
    return env && *end == '\0' && s > 0 && isfinite(s) ? s : LOAD_TIMEOUT_S;
}

void load_hostname(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "unknown");
    buf[len - 1] = '\0';
}
