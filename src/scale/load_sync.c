/*
 * load_sync.c - a worker's clock against the coordinator's, NTP-style.
 *
 * Each ping is one HTTP round trip: the worker stamps when it sends (sent) and when the
 * answer is in (recv), the coordinator stamps its own clock when it answers (coord). Since
 * the answer was made between sent and recv, worker - coordinator lies in
 * [sent - coord, recv - coord], an interval as wide as the round trip. A slow round trip
 * (a busy loop, a retransmission) only widens its own interval, so the pings' intersection is
 * as tight as the fastest one's or tighter; its half width is the uncertainty recorded, a
 * bound, not a standard deviation. CLOCK_MONOTONIC is never stepped; it may be slewed (NTP)
 * and crystals drift (tens of ppm), which is why each point is measured at its start and its
 * end and the merge interpolates between the two.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scale/load_internal.h"

int load_sync_estimate(const struct load_ping *p, size_t n, struct load_sync *out)
{
    if (n == 0)
        return -EINVAL;
    int64_t lo = INT64_MIN, hi = INT64_MAX, rtt_min = INT64_MAX;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t a = (int64_t)(p[i].sent - p[i].coord), b = (int64_t)(p[i].recv - p[i].coord);
        lo = a > lo ? a : lo;
        hi = b < hi ? b : hi;
        int64_t rtt = (int64_t)(p[i].recv - p[i].sent);
        if (rtt < rtt_min) {
            rtt_min = rtt;
            best = i;
        }
    }
    if (lo > hi) { /* the intervals do not meet: trust the fastest ping alone */
        lo = (int64_t)(p[best].sent - p[best].coord);
        hi = (int64_t)(p[best].recv - p[best].coord);
    }
    out->offset_ns = lo + (hi - lo) / 2;
    out->uncertainty_ns = hi - out->offset_ns; /* rounds up: the bound stays a bound */
    out->rtt_min_ns = rtt_min;
    out->t_ns = p[best].sent + (p[best].recv - p[best].sent) / 2;
    out->samples = (int)n;
    return 0;
}

int load_sync_measure(CURL *h, const char *base, int n, struct load_sync *out)
{
    struct load_ping *p = xcalloc((size_t)n, sizeof(*p));
    char *url = xasprintf("%s/v1/clock", base);
    char err[256];
    int rc = 0, got = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        long status = 0;
        json_t *reply = NULL;
        mono_ns sent = clock_now();
        rc = load_http(h, "GET", url, NULL, 0, 10.0, &status, &reply, err, sizeof(err));
        mono_ns recv = clock_now();
        json_t *t = json_object_get(reply, "t_ns");
        if (rc == 0 && (status != 200 || !json_is_integer(t)))
            rc = -EPROTO;
        if (rc == 0)
            p[got++] = (struct load_ping){sent, (mono_ns)json_integer_value(t), recv};
        json_decref(reply);
    }
    if (rc == 0)
        rc = load_sync_estimate(p, (size_t)got, out);
    free(url);
    free(p);
    return rc;
}

json_t *load_sync_json(const struct load_sync *s)
{
    return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:i}", "point", (json_int_t)s->point, "at",
                     s->end ? "end" : "start", "t_ns", (json_int_t)s->t_ns, "offset_ns",
                     (json_int_t)s->offset_ns, "uncertainty_ns", (json_int_t)s->uncertainty_ns,
                     "rtt_min_ns", (json_int_t)s->rtt_min_ns, "samples", s->samples);
}

int load_sync_from_json(const json_t *j, struct load_sync *out)
{
    json_int_t point, t, off, unc, rtt;
    int samples;
    const char *at;
    if (json_unpack((json_t *)j, "{s:I, s:s, s:I, s:I, s:I, s:I, s:i}", "point", &point, "at", &at,
                    "t_ns", &t, "offset_ns", &off, "uncertainty_ns", &unc, "rtt_min_ns", &rtt,
                    "samples", &samples) != 0 ||
        point < 0 || unc < 0)
        return -EINVAL;
    *out = (struct load_sync){(size_t)point, strcmp(at, "end") == 0, (mono_ns)t, off, unc, rtt,
                              samples};
    return 0;
}
