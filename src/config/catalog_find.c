/*
 * catalog_find.c - finds a catalog entry by the name a user typed (catalog.h): case and
 * punctuation do not matter, a model may be named without its "org/" prefix or its
 * -instruct/-it/-chat tail, any alias matches, a MIG slice is "GPU:mig-PROFILE"; and, for a
 * name that matches nothing, the nearest names to suggest ("did you mean").
 */
#include "config/catalog.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Lowercase copy into buf; for models also drops an "org/" prefix and an -instruct/-it tail. */
static void normalize(const char *s, bool model, char *buf, size_t len)
{
    if (model) {
        const char *slash = strrchr(s, '/');
        if (slash)
            s = slash + 1;
    }
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        buf[n++] = (char)tolower((unsigned char)*s);
    buf[n] = '\0';
    if (!model)
        return;
    static const char *const tails[] = {"-instruct", "-it", "-chat"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        size_t tl = strlen(tails[i]);
        if (n > tl && strcmp(buf + n - tl, tails[i]) == 0) {
            buf[n - tl] = '\0';
            break;
        }
    }
}

static bool name_matches(const char *query, const char *name, char *const *aliases, size_t n,
                         bool model)
{
    if (!name)
        return false;
    if (strcasecmp(query, name) == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(query, aliases[i]) == 0)
            return true;
    if (!model)
        return false;
    char q[256], c[256];
    normalize(query, true, q, sizeof(q));
    normalize(name, true, c, sizeof(c));
    if (strcmp(q, c) == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        normalize(aliases[i], true, c, sizeof(c));
        if (strcmp(q, c) == 0)
            return true;
    }
    return false;
}

/* "PARENT:PROFILE": the parent by any of its names, then its slice entry by profile name,
 * with or without a "mig-" prefix ("rtx-pro-6000:mig-2g.48gb", "RTX PRO 6000:2g.48gb"). */
static const struct gpu_spec *find_mig_slice(const struct catalog *c, const char *name,
                                             const char *colon)
{
    char base[256];
    size_t n = (size_t)(colon - name);
    if (n >= sizeof(base))
        return NULL;
    memcpy(base, name, n);
    base[n] = '\0';
    const struct gpu_spec *parent = catalog_find_gpu(c, base);
    if (!parent || parent->mig_parent)
        return NULL;
    const char *prof = colon + 1;
    if (strncasecmp(prof, "mig-", 4) == 0)
        prof += 4;
    for (size_t i = 0; i < c->n_gpus; i++) {
        const struct gpu_spec *g = &c->gpus[i];
        if (g->mig_parent && strcmp(g->mig_parent, parent->name) == 0 &&
            strcasecmp(g->mig_slice.name, prof) == 0)
            return g;
    }
    return NULL;
}

const struct gpu_spec *catalog_find_gpu(const struct catalog *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->n_gpus; i++) {
        const struct gpu_spec *g = &c->gpus[i];
        if (name_matches(name, g->name, g->aliases, g->n_aliases, false) ||
            (g->display_name && strcasecmp(name, g->display_name) == 0))
            return g;
    }
    const char *colon = strchr(name, ':');
    return colon ? find_mig_slice(c, name, colon) : NULL;
}

const struct checkpoint_spec *catalog_find_checkpoint(const struct catalog *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_checkpoints; i++)
        if (strcasecmp(name, c->checkpoints[i].name) == 0)
            return &c->checkpoints[i];
    return NULL;
}

const struct model_spec *catalog_find_model(const struct catalog *c, const char *name)
{
    if (!c || !name)
        return NULL;
    /* A pre-quantized checkpoint serves its base model's architecture. */
    const struct checkpoint_spec *ck = catalog_find_checkpoint(c, name);
    if (ck)
        name = ck->model;
    /* Exact names first, so that an alias of one model cannot shadow another's id. */
    for (size_t i = 0; i < c->n_models; i++)
        if (strcasecmp(name, c->models[i].name) == 0)
            return &c->models[i];
    for (size_t i = 0; i < c->n_models; i++) {
        const struct model_spec *m = &c->models[i];
        if (name_matches(name, m->name, m->aliases, m->n_aliases, true))
            return m;
    }
    return NULL;
}

const struct quant_spec *catalog_find_quant(const struct catalog *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->n_quants; i++) {
        const struct quant_spec *q = &c->quants[i];
        if (name_matches(name, q->name, q->aliases, q->n_aliases, false))
            return q;
    }
    return NULL;
}

/* Edit distance (bounded strings), for "did you mean" lists. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63)
        la = 63;
    if (lb > 63)
        lb = 63;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

void catalog_suggest(const struct catalog *c, const char *kind, const char *name, char *buf,
                     size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (!c || !name)
        return;
    bool model = strcmp(kind, "model") == 0;
    size_t n = model ? c->n_models : strcmp(kind, "gpu") == 0 ? c->n_gpus : c->n_quants;
    int best[3] = {1 << 30, 1 << 30, 1 << 30};
    size_t idx[3] = {0, 0, 0};
    char q[256], cand[256];
    normalize(name, model, q, sizeof(q));
    for (size_t i = 0; i < n; i++) {
        if (!model && strcmp(kind, "gpu") == 0 && c->gpus[i].mig_parent)
            continue; /* slices are named through their parent */
        const char *cn = model                      ? c->models[i].name
                         : strcmp(kind, "gpu") == 0 ? c->gpus[i].name
                                                    : c->quants[i].name;
        normalize(cn, model, cand, sizeof(cand));
        int d = edit_distance(q, cand);
        if (strstr(cand, q) || strstr(q, cand))
            d /= 4; /* a substring is a strong hint */
        for (int k = 0; k < 3; k++) {
            if (d < best[k]) {
                for (int m = 2; m > k; m--) {
                    best[m] = best[m - 1];
                    idx[m] = idx[m - 1];
                }
                best[k] = d;
                idx[k] = i;
                break;
            }
        }
    }
    size_t used = 0;
    for (int k = 0; k < 3 && (size_t)k < n; k++) {
        const char *cn = model                      ? c->models[idx[k]].name
                         : strcmp(kind, "gpu") == 0 ? c->gpus[idx[k]].name
                                                    : c->quants[idx[k]].name;
        int w = snprintf(buf + used, len - used, "%s%s", k ? ", " : "", cn);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}
