/*
 * fuzz_config.c - the YAML config loader (config_load in src/config/config_load.c), through
 * its real entry point: the input is written to a memfd (a regular file, as the loader
 * requires) and loaded by its /proc/self/fd path. Property beyond "no crash": a failure
 * always says why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[1024];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct config c;
    int rc = config_load(&c, path, err, sizeof(err));
    if (rc != 0 && err[0] == '\0')
        abort();
    config_release(&c); /* safe after a failure too (config.h) */
    close(fd);
    return 0;
}
