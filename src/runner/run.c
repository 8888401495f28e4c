#include "runner/run.h"

#include "core/log.h"

int run_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_error("run: not built yet");
    return 1;
}
