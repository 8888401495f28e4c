/*
 * scale_internal.h - what src/scale's files share: folding fragments into a study document,
 * running the tools the executors drive (proc.c), and the launch index.
 */
#ifndef TB_SCALE_INTERNAL_H
#define TB_SCALE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "scale/scale.h"

#define SCALE_FRAGMENT "fragment.json" /* DIR/<setup id>/fragment.json */

/* Folds every fragment under dir newer than doc's state of its setup into doc (the setup's
 * state and rows replaced by the fragment's), then marks setups measured at the same time on
 * the same host. Returns how many were folded; a fragment that cannot be read is skipped with
 * a warning (it is rewritten whole or not at all, so this is a hand-made file). */
size_t scale_fold(const char *dir, json_t *doc);
/* Setups measured at the same time on the same host (their "run" intervals overlap): each
 * such setup's state gets "side_by_side_with" and its rows "side_by_side" (the other ids,
 * ';'-separated); others get neither. */
void scale_mark_side_by_side(json_t *doc);
/* Is this setup state final (done, does_not_fit, crashed while measured, or a failed start
 * that is the server's answer)? As study_setup_final without --retry-failed. */
bool scale_state_final(const json_t *state);

/* ---- proc.c: the tools the executors drive (sbatch, squeue, scancel, kubectl) ---- */
/* Runs argv (argv[0] looked up on PATH) with stdin from /dev/null; its stdout into *out (owned,
 * NUL-terminated, at most 1 MiB; may be NULL), stderr to ours. Returns the exit status, 128 +
 * signal, or a negative errno when it cannot start (said on stderr with the program's name). */
int scale_run(const char *const *argv, char **out);
/* Starts argv in the background (its own process group, PR_SET_PDEATHSIG) with stdout and
 * stderr appended to log and `env` (NULL-terminated "K=V" strings, may be NULL) added to the
 * environment; its pid, or a negative errno. */
pid_t scale_spawn(const char *const *argv, const char *log, const char *const *env);
/* `a b c`, shell-quoted where needed, into a new string (for the lines we print). */
char *scale_argv_line(const char *const *argv);
/* 'text' quoted for a POSIX shell (new string). */
char *scale_shell_quote(const char *text);

#endif
