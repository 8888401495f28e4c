/*
 * compare.h - matches the points of two inputs and tests each metric's change.
 */
#ifndef TB_REPORT_COMPARE_H
#define TB_REPORT_COMPARE_H

#include <stdint.h>

#include <jansson.h>

#include "report/load.h"

struct compare_options {
    double min_change_pct; /* smaller changes are not called, however certain */
    uint64_t seed;         /* of the bootstrap */
};

/* {a, b, method, rows: [{point, metric, a, b, change_pct, ci_low, ci_high, significant,
 * verdict}]}; rows is empty when no point matches. New reference. */
json_t *compare_build(const struct report_input *a, const char *a_name,
                      const struct report_input *b, const char *b_name,
                      const struct compare_options *o);

#endif
