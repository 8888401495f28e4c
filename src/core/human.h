/*
 * human.h - numbers for people: durations in the unit that reads best (ms below 10 s, then s,
 * then min), and "–" where there is no value, never 0.0 or nan.
 */
#ifndef TB_HUMAN_H
#define TB_HUMAN_H

#include <stddef.h>

/* The dash printed where a value is unknown or not measured. */
#define HUMAN_NONE "–"

/* A duration given in milliseconds: "8.4 ms", "472 ms", "12.3 s", "7.1 min", "5.0 h"; HUMAN_NONE
 * for NAN or a negative value, "inf" for an infinite one. Returns buf. */
const char *human_ms(double ms, char *buf, size_t len);
/* "%.*f" of x, or HUMAN_NONE for NAN. Returns buf. */
const char *human_num(double x, int decimals, char *buf, size_t len);

#endif
