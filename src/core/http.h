/*
 * http.h - what every libcurl handle in the process shares: the TLS trust store. Set once
 * from the config before any thread starts, read-only afterwards, so handles made on the
 * sampler thread and the load loop see the same value without locking.
 */
#ifndef TB_HTTP_H
#define TB_HTTP_H

#include <curl/curl.h>

/* A PEM file of certificate authorities to trust for https:// (copied); NULL = the system's. */
void http_set_ca_bundle(const char *path);
/* Applies the shared settings to a new easy handle. */
void http_apply(CURL *h);

#endif
