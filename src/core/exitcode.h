/* exitcode.h - the exit codes documented in README.md and docs/CONFIG.md "Exit codes". */
#ifndef TB_EXITCODE_H
#define TB_EXITCODE_H

enum tb_exit {
    TB_EXIT_OK = 0,           /* done */
    TB_EXIT_RUNTIME = 1,      /* nothing usable measured, or files could not be written */
    TB_EXIT_USAGE = 2,        /* usage or config error */
    TB_EXIT_UNREACHABLE = 3,  /* server unreachable or not ready */
    TB_EXIT_INTERRUPTED = 130 /* interrupted; partial files written */
};

#endif
