#include "plan/plan.h"

#include "core/log.h"

int plan_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_error("not built yet");
    return 1;
}
