/* capacity.c - bracketing and bisection over user counts (capacity.h). */
#include "study/capacity.h"

static int ask(capacity_probe_fn probe, void *ctx, int users, bool *met,
               struct capacity_result *out)
{
    out->probes++;
    return probe(ctx, users, met);
}

int capacity_search(int start, int ceiling, capacity_probe_fn probe, void *ctx,
                    struct capacity_result *out)
{
    out->max_users = 0;
    out->probes = 0;
    out->at_ceiling = false;
    if (ceiling < 1)
        return 0;
    int n = start < 1 ? 1 : start > ceiling ? ceiling : start;
    bool met = false;
    int rc = ask(probe, ctx, n, &met, out);
    if (rc)
        return rc;
    int lo = 0, hi = 0; /* lo met (0 = none known), hi missed (0 = none known) */
    if (met)
        lo = n;
    else
        hi = n;
    /* Step outwards until a met/missed pair is known. */
    for (int step = 1; met ? hi == 0 : lo == 0 && hi > 1; step *= 2) {
        if (met) {
            if (lo == ceiling) {
                out->at_ceiling = true;
                break;
            }
            n = lo + step > ceiling ? ceiling : lo + step;
        } else {
            n = hi - step < 1 ? 1 : hi - step;
        }
        bool m = false;
        rc = ask(probe, ctx, n, &m, out);
        if (rc)
            return rc;
        if (m)
            lo = n;
        else
            hi = n;
        if (!met && hi == 1)
            break; /* one user misses: nothing meets it */
    }
    while (lo && hi && hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        bool m = false;
        rc = ask(probe, ctx, mid, &m, out);
        if (rc)
            return rc;
        if (m)
            lo = mid;
        else
            hi = mid;
    }
    out->max_users = lo;
    return 0;
}
