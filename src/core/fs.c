/*
 * fs.c - file-system steps more than one command needs.
 */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *dir)
{
    if (!*dir)
        return -ENOENT; /* as mkdir("") says */
    char *p = xstrdup(dir);
    int rc = 0;
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (!rc) {
        struct stat st;
        if (stat(p, &st) != 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    free(p);
    return rc;
}

int fs_open_regular(const char *path, FILE **out, const char **kind)
{
    /* O_NONBLOCK: the open of a FIFO returns at once, so that fstat can say what it is. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        if (kind)
            *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                    : S_ISDIR(st.st_mode) ? "a directory"
                                          : "a device or socket";
        close(fd);
        return -EINVAL;
    }
    /* Reads of a regular file never block; the flag is dropped all the same. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return -e;
    }
    *out = f;
    return 0;
}
