/*
 * log.h - messages to stderr. Errors always print; info is silenced by --quiet.
 */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdbool.h>

void log_set_quiet(bool quiet);
bool log_is_quiet(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
