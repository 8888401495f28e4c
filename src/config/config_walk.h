/*
 * config_walk.h - the YAML walker behind config_load.c: a section is a table of keys (struct
 * field); the walker checks each value's type, fills the struct member and remembers which node
 * filled it (struct origin), so that a problem found later still has a file:line:column.
 * Internal to src/config.
 */
#ifndef TB_CONFIG_WALK_H
#define TB_CONFIG_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "config/config.h"
#include "config/config_internal.h"

#define MAX_FIELDS 32 /* the most keys one section table holds (requests: 19) */

/* A member filled from a node, or (section) a struct filled from a mapping: a struct and its
 * first member share an address. */
struct origin {
    const void *addr;
    bool section;
    const yaml_node_t *node;
};

/* Errors reported for one file, at most; the rest would be consequences or noise. */
#define CONFIG_MAX_ERRORS 20

struct loader {
    const char *file;
    yaml_document_t doc;
    struct config *c;
    char *err;
    size_t errlen;
    struct origin *origins; /* member address -> node that set it */
    size_t n_origins;
    size_t cap_origins;
    const yaml_node_t *tenants_node;
    /* Every error in the file: after one, the file is loaded again without the key at fault
     * (skip: its key or value nodes), so that the next one shows (config_load). */
    const yaml_node_t **skip;
    size_t n_skip;
    const yaml_node_t *err_node;                /* where the last error is, or NULL */
    const yaml_node_t *err_also[CFG_WHERE_MAX]; /* other members the same problem names */
    size_t n_err_also;
};

enum ftype {
    FT_STR,      /* any scalar; null is an error */
    FT_STR_NULL, /* any scalar; null -> NULL */
    FT_INT,      /* int */
    FT_U64,      /* uint64_t */
    FT_NUM,      /* double, finite */
    FT_NUM_NULL, /* double; null -> NAN */
    FT_BOOL,     /* bool */
    FT_BOOL_INT, /* int 0/1 */
    FT_MAP,      /* a nested mapping: its own table of keys (sub), at off */
    FT_STR_LIST, /* struct str_list: a scalar or a list of scalars */
    FT_INT_LIST, /* struct int_list */
    FT_NUM_LIST, /* struct num_list */
    FT_CUSTOM,
};

struct field;
typedef int (*field_fn)(struct loader *ld, const yaml_node_t *node, const char *path, void *base);

struct field {
    const char *key;
    enum ftype type;
    size_t off;
    field_fn custom;
    const struct field *sub; /* FT_MAP */
    size_t n_sub;
};

/* Messages: "file:line:col: path: message", the node remembered as the error's place; returns
 * -EINVAL. */
__attribute__((format(printf, 4, 5))) int walk_fail(struct loader *ld, const yaml_node_t *node,
                                                    const char *path, const char *fmt, ...);

/* Scalars and nodes */
const char *walk_scalar(const yaml_node_t *n);
bool walk_is_null(const yaml_node_t *n);
const char *walk_describe(const yaml_node_t *n, char *buf, size_t len);
const char *walk_got(const yaml_node_t *n, bool would_parse, char *buf, size_t len);
const yaml_node_t *walk_node_at(struct loader *ld, yaml_node_item_t id);

/* Origins: which node set a member (section: which mapping filled a struct) */
void walk_origin_add(struct loader *ld, const void *addr, const yaml_node_t *node);
const yaml_node_t *walk_origin_lookup(const struct loader *ld, const void *addr, bool section);
const yaml_node_t *walk_origin_find(const struct loader *ld, const void *addr);

/* Typed values, with the allowed range in the message */
int walk_get_int(struct loader *ld, const yaml_node_t *n, const char *path, long long lo,
                 long long hi, long long *out);
int walk_get_number(struct loader *ld, const yaml_node_t *n, const char *path, bool allow_inf,
                    double *out);
int walk_get_bool(struct loader *ld, const yaml_node_t *n, const char *path, bool *out);

/* A mapping against its table of keys: unknown keys ("did you mean"), duplicates, types. */
int walk_load_map(struct loader *ld, const yaml_node_t *node, const char *path,
                  const struct field *fields, size_t n_fields, void *base);
/* Whether outer is a mapping or list whose text holds inner (by their places in the file). */
bool walk_node_holds(const yaml_node_t *outer, const yaml_node_t *inner);

#endif
