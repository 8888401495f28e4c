#include "sim/sim.h"

#include "core/log.h"

int sim_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_error("not built yet");
    return 1;
}
