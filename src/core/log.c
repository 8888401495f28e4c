#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/text.h"

static bool quiet_flag;

void log_set_quiet(bool quiet)
{
    quiet_flag = quiet;
}

bool log_is_quiet(void)
{
    return quiet_flag;
}

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
    /* One fprintf per line so threads do not interleave mid-line. */
    char line[4096];
    vsnprintf(line, sizeof(line), fmt, ap);
    /* No message shows a secret, whatever it quotes (a URL with credentials, a server's
     * echo of the key, a line of a .env file). */
    char *safe = text_redact(line);
    /* Nor does it pass on a terminal's escape sequences: messages quote files and servers
     * (a model name, a log line), and ESC, BEL or CR from there would retitle the window,
     * clear the screen or overwrite the line. */
    char shown[sizeof(line) + 512];
    term_clean_lines(shown, sizeof(shown), safe, "  ");
    fprintf(stderr, "%s%s\n", prefix, shown);
    free(safe);
}

void log_info(const char *fmt, ...)
{
    if (quiet_flag)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error: ", fmt, ap);
    va_end(ap);
}
