/*
 * probe.c - server readiness and identity through plain libcurl easy requests.
 * Runs before the load starts, so blocking calls are fine here.
 */
#include "runner/probe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/jsonx.h"
#include "core/log.h"

#define PROBE_MAX_BODY (4 * 1024 * 1024)
#define PROBE_TIMEOUT_MS 10000L    /* /v1/models, /version */
#define PREFLIGHT_TIMEOUT_MS 5000L /* one 1-token generation; a slower answer is no verdict */

static volatile sig_atomic_t *stop_flag;

void probe_set_stop_flag(volatile sig_atomic_t *flag)
{
    stop_flag = flag;
}

static bool stopped(void)
{
    return stop_flag && *stop_flag;
}

/* libcurl's progress callback: non-zero aborts the transfer (a signal during a slow answer). */
static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)p;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stopped() ? 1 : 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userp)
{
    struct buf *b = userp;
    size_t n = size * nmemb;
    return buf_append(b, p, n) == 0 ? n : 0;
}

/* GET url, or POST post_body when it is not NULL; returns the CURLcode; *status the HTTP
 * code; body in b. */
static CURLcode http_request(const char *url, const char *post_body, const char *api_key,
                             long timeout_ms, long *status, struct buf *b)
{
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdr = NULL;
    char *auth = NULL;
    if (api_key) {
        auth = xasprintf("Authorization: Bearer %s", api_key);
        hdr = curl_slist_append(hdr, auth);
    }
    if (post_body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
    }
    buf_reset(b);
    curl_easy_setopt(h, CURLOPT_URL, url);
    http_apply(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    free(auth);
    curl_easy_cleanup(h);
    return rc;
}

static void parse_models(struct server_info *si, const char *body)
{
    json_t *root = json_loads(body, 0, NULL);
    json_t *data = json_object_get(root, "data");
    size_t i;
    json_t *card;
    json_array_foreach(data, i, card)
    {
        const char *id = json_string_value(json_object_get(card, "id"));
        if (!id)
            continue;
        si->models = xreallocarray(si->models, si->n_models + 1, sizeof(*si->models));
        si->models[si->n_models++] = xstrdup(id);
        json_t *len = json_object_get(card, "max_model_len");
        if (si->n_models == 1 && json_is_integer(len))
            si->max_model_len = (long)json_integer_value(len);
    }
    json_decref(root);
}

static void parse_version(struct server_info *si, const char *endpoint, const char *api_key,
                          struct buf *b)
{
    char *url = xasprintf("%s/version", endpoint);
    long status;
    if (http_request(url, NULL, api_key, PROBE_TIMEOUT_MS, &status, b) == CURLE_OK &&
        status == 200) {
        json_t *root = json_loads(b->data ? b->data : "", 0, NULL);
        const char *v = json_string_value(json_object_get(root, "version"));
        if (v)
            si->version = xstrdup(v);
        json_decref(root);
    }
    free(url);
}

int probe_server(const char *endpoint, const char *api_key, double wait_s, struct server_info *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->endpoint = xstrdup(endpoint);
    out->max_model_len = -1;
    char *url = xasprintf("%s/v1/models", endpoint);
    struct buf b;
    buf_init(&b, PROBE_MAX_BODY);
    /* An infinite wait has no deadline (s_to_ns would overflow): until ready or stopped. */
    bool forever = isinf(wait_s);
    mono_ns deadline = forever ? 0 : clock_now() + s_to_ns(wait_s);
    int rc;
    for (;;) {
        long status;
        CURLcode cc = http_request(url, NULL, api_key, PROBE_TIMEOUT_MS, &status, &b);
        if (stopped()) {
            snprintf(err, errlen, "interrupted while waiting for %s", url);
            rc = -EINTR;
            break;
        }
        if (cc == CURLE_OK && status == 200) {
            parse_models(out, b.data ? b.data : "");
            rc = 0;
            break;
        }
        if (cc == CURLE_OK && (status == 401 || status == 403)) {
            snprintf(err, errlen,
                     "%s answered HTTP %ld: the server wants an API key; put it in the variable "
                     "that server.api_key_env names (default OPENAI_API_KEY)",
                     url, status);
            rc = -EACCES;
            break;
        }
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_SSL_CONNECT_ERROR) {
            /* Retrying cannot fix a certificate: say so now. */
            snprintf(err, errlen,
                     "cannot reach %s: %s. If the server uses a private certificate authority, "
                     "set server.ca_bundle to its PEM file",
                     url, curl_easy_strerror(cc));
            rc = -ECONNREFUSED;
            break;
        }
        if (cc == CURLE_OK && status != 503 && status != 502) {
            /* Answers, but without the OpenAI model list (404 and friends): usable. */
            rc = 0;
            break;
        }
        if (!forever && clock_now() >= deadline) {
            if (cc != CURLE_OK) {
                snprintf(err, errlen,
                         "cannot reach %s: %s. Is the server running and listening there? "
                         "Check server.endpoint or --endpoint, and try: curl %s",
                         url, curl_easy_strerror(cc), url);
                rc = -ECONNREFUSED;
            } else {
                snprintf(err, errlen,
                         "%s answered HTTP %ld for %.0f s: the server is not ready (still loading "
                         "the model?). Check its logs, e.g. docker compose logs vllm",
                         url, status, wait_s);
                rc = -EAGAIN;
            }
            break;
        }
        /* In short steps, so that a signal ends the wait at once. */
        for (int i = 0; i < 5 && !stopped(); i++)
            clock_sleep_ns(50 * NS_PER_MS);
    }
    if (rc == 0)
        parse_version(out, endpoint, api_key, &b);
    buf_release(&b);
    free(url);
    return rc;
}

void probe_extensions(const char *endpoint, bool chat, const char *model, const char *api_key,
                      bool *accepted)
{
    *accepted = true;
    json_t *req = chat ? json_pack("{s:s, s:[{s:s, s:s}]}", "model", model, "messages", "role",
                                   "user", "content", "Hello")
                       : json_pack("{s:s, s:s}", "model", model, "prompt", "Hello");
    json_object_set_new(req, "max_tokens", json_integer(1));
    json_object_set_new(req, "ignore_eos", json_true());
    json_object_set_new(req, "min_tokens", json_integer(1));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char *url = xasprintf("%s/v1/%s", endpoint, chat ? "chat/completions" : "completions");
    struct buf b;
    buf_init(&b, PROBE_MAX_BODY);
    long status;
    if (body && http_request(url, body, api_key, PREFLIGHT_TIMEOUT_MS, &status, &b) == CURLE_OK &&
        status == 400 && b.data && (strstr(b.data, "ignore_eos") || strstr(b.data, "min_tokens")))
        *accepted = false;
    buf_release(&b);
    free(url);
    free(body);
}

json_t *server_info_json(const struct server_info *si, const char *model)
{
    /* Member by member: json_pack would give NULL for a string that is not UTF-8 (a server's
     * model list, --model) and the whole "server" object would be lost. */
    json_t *models = json_array();
    for (size_t i = 0; i < si->n_models; i++)
        json_array_append_new(models, json_string_or_null(si->models[i]));
    json_t *o = json_object();
    json_object_set_new(o, "endpoint", json_string_or_null(si->endpoint));
    json_object_set_new(o, "model", json_string_or_null(model));
    json_object_set_new(o, "models", models);
    json_object_set_new(o, "version", json_string_or_null(si->version));
    json_object_set_new(o, "max_model_len",
                        si->max_model_len >= 0 ? json_integer(si->max_model_len) : json_null());
    return o;
}

void server_info_release(struct server_info *si)
{
    free(si->endpoint);
    for (size_t i = 0; i < si->n_models; i++)
        free(si->models[i]);
    free(si->models);
    free(si->version);
    memset(si, 0, sizeof(*si));
}

static char *cpu_model(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    char *model = NULL;
    while (f && !model && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += 2;
                colon[strcspn(colon, "\n")] = '\0';
                model = xstrdup(colon);
            }
        }
    }
    if (f)
        fclose(f);
    return model;
}

json_t *host_info_json(void)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    struct utsname u;
    memset(&u, 0, sizeof(u));
    uname(&u);
    char *cpu = cpu_model();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s?, s:i, s:f, s:s}", "hostname", host, "kernel", u.release,
                  "arch", u.machine, "cpu", cpu, "cores", (int)sysconf(_SC_NPROCESSORS_ONLN),
                  "memory_mib", (double)pages * (double)page / (1024.0 * 1024.0), "curl",
                  curl_version_info(CURLVERSION_NOW)->version);
    free(cpu);
    return j;
}
