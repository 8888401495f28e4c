#include "config/config.h"

#include "core/log.h"

int validate_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_error("not built yet");
    return 1;
}
