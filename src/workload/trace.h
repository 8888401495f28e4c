/*
 * trace.h - timestamped request traces to replay: JSON lines or CSV with an arrival time, the
 * input and output lengths and optional hash ids of shared prefix blocks, in the shapes of
 * the public Mooncake traces (timestamp in ms, input_length, output_length, hash_ids) and
 * Azure LLM inference traces (TIMESTAMP as a date, ContextTokens, GeneratedTokens).
 */
#ifndef TB_TRACE_H
#define TB_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "config/workload_cfg.h"
#include "core/clock.h"
#include "core/xalloc.h"

#define TRACE_MAX_LINE (1u << 20)
#define TRACE_MAX_ROWS (10u << 20)
#define TRACE_MAX_HASHES 65536 /* per row: 32 M tokens at 512 a block */

struct trace_row {
    int64_t t_ns;       /* arrival, ns on the trace's own clock (integer: dates in ns
                         * since 1970 need more than a double's 53 bits) */
    int input_tokens;   /* prompt length */
    int output_tokens;  /* output length */
    uint64_t *hash_ids; /* shared-prefix blocks in order; NULL when none */
    size_t n_hash;
};

struct trace {
    struct trace_row *v; /* sorted by arrival (ties keep file order) */
    size_t n;
};

/* Reads cfg->path. 0, or -EINVAL / -ENOENT / -EIO / -EFBIG with "path:line: key: why". */
MUST_USE int trace_load(struct trace **out, const struct trace_cfg *cfg, char *err, size_t errlen);
/* Due offsets for the first n rows: (t_i - t_0) / speed, nondecreasing, the first at 0. */
void trace_offsets(const struct trace *t, double speed, mono_ns *off, size_t n);
void trace_free(struct trace *t); /* NULL is a no-op */

#endif
