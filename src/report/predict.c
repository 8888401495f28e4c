/*
 * predict.c - `plan --json` in a child process: argv built here (no shell), stdout read through
 * a pipe up to PREDICT_MAX_OUTPUT, stderr discarded (a failed prediction is the caller's
 * warning, not plan's).
 */
#include "report/predict.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"

static json_t *plan_run(const char *self, char *const argv[])
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        execv(self, argv);
        _exit(127);
    }
    close(fds[1]);
    struct buf b;
    buf_init(&b, PREDICT_MAX_OUTPUT);
    char chunk[8192];
    ssize_t n;
    int rc = 0;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 && !rc)
        rc = buf_append(&b, chunk, (size_t)n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    json_t *j = NULL;
    if (!rc && b.data && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        j = json_loads(b.data, 0, NULL);
    buf_release(&b);
    return j;
}

json_t *predict_rows(const char *self_exe, const struct predict_query *q)
{
    char ctx[32], out[32], prompt[32], ttft[32], tpot[32];
    /* The cell's context is its requests' prompt + output: the plan's window, and its prompt
     * the rest after the output (docs/CONFIG.md, "Window and prompt"). */
    double output = isnan(q->output_tokens) ? 256 : q->output_tokens;
    if (output >= (double)q->context)
        output = q->context > 1 ? (double)q->context / 2 : 1;
    snprintf(ctx, sizeof(ctx), "%ld", q->context);
    snprintf(out, sizeof(out), "%.0f", output);
    snprintf(prompt, sizeof(prompt), "%.0f", (double)q->context - output);
    char *argv[32];
    size_t n = 0;
    argv[n++] = "testbench";
    argv[n++] = "plan";
    argv[n++] = "--json";
    argv[n++] = "--gpu";
    argv[n++] = (char *)q->gpu;
    argv[n++] = "--model";
    argv[n++] = (char *)q->model;
    argv[n++] = "--max-model-len";
    argv[n++] = ctx;
    argv[n++] = "--prompt-tokens";
    argv[n++] = prompt;
    argv[n++] = "--output-tokens";
    argv[n++] = out;
    argv[n++] = "--population";
    argv[n++] = q->sessions ? "sessions" : "streams";
    argv[n++] = "--users";
    argv[n++] = (char *)q->users;
    if (q->quantization && strcmp(q->quantization, "default") != 0) {
        argv[n++] = "--quantization";
        argv[n++] = (char *)q->quantization;
    }
    if (q->kv_dtype && strcmp(q->kv_dtype, "auto") != 0 && strcmp(q->kv_dtype, "unknown") != 0) {
        argv[n++] = "--kv-cache-dtype";
        argv[n++] = (char *)q->kv_dtype;
    }
    if (!isnan(q->slo_ttft_ms)) {
        snprintf(ttft, sizeof(ttft), "%g", q->slo_ttft_ms);
        argv[n++] = "--slo-ttft-ms";
        argv[n++] = ttft;
    }
    if (!isnan(q->slo_tpot_ms)) {
        snprintf(tpot, sizeof(tpot), "%g", q->slo_tpot_ms);
        argv[n++] = "--slo-tpot-ms";
        argv[n++] = tpot;
    }
    argv[n] = NULL;
    json_t *j = plan_run(self_exe, argv);
    if (!j)
        return NULL;
    /* One user count prints one object, several print {"rows": [...]}. */
    json_t *rows = json_object_get(j, "rows");
    json_t *out_rows;
    if (json_is_array(rows)) {
        out_rows = json_incref(rows);
    } else {
        out_rows = json_array();
        json_array_append(out_rows, j);
    }
    json_decref(j);
    return out_rows;
}
