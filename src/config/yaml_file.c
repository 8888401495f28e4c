/* yaml_file.c - one YAML document from a user's file (yaml_file.h). */
#include "config/yaml_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Regular files only: opening a FIFO for reading waits for a writer (forever, for validate),
 * and a device or /dev/zero never ends. O_NONBLOCK lets the open of a FIFO return so that
 * fstat can say what it is. */
static int read_file(const char *path, size_t max_bytes, const char *what, char **out, size_t *len,
                     char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -EIO;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file (%s); give the path of %s", path,
                 S_ISFIFO(st.st_mode)  ? "a FIFO"
                 : S_ISDIR(st.st_mode) ? "a directory"
                                       : "a device or socket",
                 what);
        close(fd);
        return -EINVAL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return -EIO;
    }
    int rc = -EIO;
    size_t cap = 8192, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= max_bytes) {
                snprintf(err, errlen, "%s: larger than %zu bytes; not %s", path, max_bytes, what);
                rc = -EINVAL;
                goto out;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got_n = fread(buf + n, 1, cap - n - 1, f);
        n += got_n;
        if (got_n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* libyaml's own message, positioned; tabs get a plain-words hint. */
static int yaml_error(const char *file, const yaml_parser_t *ps, const char *text, size_t len,
                      char *err, size_t errlen)
{
    if (ps->error == YAML_MEMORY_ERROR) {
        snprintf(err, errlen, "%s: out of memory while parsing", file);
        return -ENOMEM;
    }
    const char *problem = ps->problem ? ps->problem : "cannot parse";
    size_t line = 1, col = 1;
    if (ps->error == YAML_READER_ERROR) {
        /* Only a byte offset: count lines up to it. */
        for (size_t i = 0; i < ps->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(err, errlen, "%s:%zu:%zu: %s", file, line, col, problem);
        return -EINVAL;
    }
    line = ps->problem_mark.line + 1;
    col = ps->problem_mark.column + 1;
    const char *hint = "";
    if (ps->problem_mark.index < len && text[ps->problem_mark.index] == '\t')
        hint = " (a tab: YAML indentation must use spaces)";
    if (ps->context)
        snprintf(err, errlen, "%s:%zu:%zu: %s%s (%s at line %zu column %zu)", file, line, col,
                 problem, hint, ps->context, ps->context_mark.line + 1,
                 ps->context_mark.column + 1);
    else
        snprintf(err, errlen, "%s:%zu:%zu: %s%s", file, line, col, problem, hint);
    return -EINVAL;
}

/* A first pass over the events, refusing nesting deeper than YAML_FILE_MAX_DEPTH at the event
 * that goes past it. Syntax errors end the pass quietly: the load that follows reports them. */
static int check_depth(const char *file, const char *what, const char *text, size_t len, char *err,
                       size_t errlen)
{
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    int depth = 0, rc = 0;
    bool end = false;
    while (!end && !rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev))
            break;
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > YAML_FILE_MAX_DEPTH) {
                snprintf(err, errlen,
                         "%s:%zu:%zu: nested deeper than %d lists and mappings; %s needs a few",
                         file, ev.start_mark.line + 1, ev.start_mark.column + 1,
                         YAML_FILE_MAX_DEPTH, what);
                rc = -EINVAL;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            end = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    return rc;
}

int yaml_file_load(struct yaml_file *yf, const char *path, size_t max_bytes, const char *what,
                   char *err, size_t errlen)
{
    yf->loaded = false;
    yaml_parser_t ps;
    bool parser_ok = false;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, max_bytes, what, &text, &len, err, errlen);
    if (!rc)
        rc = check_depth(path, what, text, len, err, errlen);
    if (rc)
        goto out;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
        goto out;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    if (!yaml_parser_load(&ps, &yf->doc)) {
        rc = yaml_error(path, &ps, text, len, err, errlen);
        goto out;
    }
    yf->loaded = true;
    /* One document per file: a second one would be silently ignored otherwise. */
    yaml_document_t next;
    if (!yaml_parser_load(&ps, &next)) {
        rc = yaml_error(path, &ps, text, len, err, errlen);
        goto out;
    }
    bool more = yaml_document_get_root_node(&next) != NULL;
    size_t more_line = next.start_mark.line + 1, more_col = next.start_mark.column + 1;
    yaml_document_delete(&next);
    if (more) {
        snprintf(err, errlen, "%s:%zu:%zu: a second YAML document; %s holds one", path, more_line,
                 more_col, what);
        rc = -EINVAL;
    }
out:
    if (rc)
        yaml_file_release(yf);
    if (parser_ok)
        yaml_parser_delete(&ps);
    if (text)
        explicit_bzero(text, len);
    free(text);
    return rc;
}

void yaml_file_release(struct yaml_file *yf)
{
    if (yf->loaded)
        yaml_document_delete(&yf->doc);
    yf->loaded = false;
}

int yaml_node_fail(char *err, size_t errlen, const char *file, const yaml_node_t *n,
                   const char *key, const char *msg)
{
    snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", file, n ? n->start_mark.line + 1 : 0,
             n ? n->start_mark.column + 1 : 0, key ? key : "", key ? ": " : "", msg);
    return -EINVAL;
}
