/*
 * args.c - the study command's flags for work beyond one process (scale.h): parsed here, and
 * checked against each other, so study.c only hands them on.
 */
#include "scale/scale.h"
#include "study/study_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int scale_parse_shard(const char *spec, int *i, int *n)
{
    char *end;
    errno = 0;
    long a = strtol(spec, &end, 10);
    if (errno || end == spec || *end != '/')
        return -EINVAL;
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (errno || end == p || *end || b < 1 || b > 100000 || a < 0 || a >= b)
        return -EINVAL;
    *i = (int)a;
    *n = (int)b;
    return 0;
}

int scale_parse_arg(int c, const char *value, struct study_args *a)
{
    char *end = NULL;
    long v = 0;
    switch (c) {
    case 'P':
        a->prepare = true;
        return 0;
    case 'K':
    case 'N':
        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < (c == 'K' ? 0 : 1) || v > 100000) {
            log_error("study: --%s %s: expected a whole number%s",
                      c == 'K' ? "setup-index" : "parallel", value, c == 'K' ? "" : " >= 1");
            return -EINVAL;
        }
        *(c == 'K' ? &a->setup_index : &a->parallel) = (int)v;
        return 0;
    case 'S':
        if (scale_parse_shard(value, &a->shard_i, &a->shard_n)) {
            log_error("study: --shard %s: expected i/n with 0 <= i < n, e.g. 0/4", value);
            return -EINVAL;
        }
        return 0;
    case 'M':
        a->merge = value;
        return 0;
    case 'W':
        a->wait = true;
        return 0;
    case 'G':
        a->gpus = value;
        return 0;
    case 'E':
        a->executor = value;
        return 0;
    case 'e':
        a->emit = value;
        return 0;
    case 'X':
        a->cancel = true;
        return 0;
    case 1:
    case 2:
    case 3:
        a->k8s_action = c == 1 ? "apply" : c == 2 ? "status" : "collect";
        a->k8s_dir = value;
        return 0;
    case 4:
        a->endpoint = value;
        return 0;
    default:
        return 1;
    }
}

int scale_check_args(const struct study_args *a)
{
    bool shard = a->setup_index >= 0 || a->shard_n > 0;
    const char *why = NULL;
    if (a->setup_index >= 0 && a->shard_n > 0)
        why = "--setup-index and --shard are two ways to pick a shard's setups: give one";
    else if (shard && !a->resume)
        why = "--setup-index and --shard go with --resume DIR (a prepared study folder)";
    else if (shard && (a->parallel || a->executor || a->prepare))
        why = "a shard (--setup-index, --shard) measures its setups itself: no --parallel, "
              "--executor or --prepare";
    else if (a->gpus && !shard)
        why = "--gpus LIST is a shard's (with --setup-index or --shard); a study spreads "
              "setups over backend.gpu_ids with --parallel";
    else if (a->merge && (a->config || a->resume || a->executor || a->parallel || a->prepare))
        why = "--merge DIR folds a folder's fragments; it goes alone (with --wait, --quiet)";
    else if (a->wait && !a->merge && !(a->executor && strcmp(a->executor, "slurm") == 0))
        why = "--wait goes with --merge DIR or --executor slurm";
    else if (a->executor && strcmp(a->executor, "slurm") != 0 && strcmp(a->executor, "k8s") != 0)
        why = "--executor: slurm or k8s (several GPUs of this box: --parallel N)";
    else if (a->executor && a->parallel)
        why = "--parallel N runs setups on this box; Slurm and Kubernetes take their "
              "concurrency from slurm.max_parallel and kubernetes.max_parallel";
    else if (a->executor && a->prepare)
        why = "--executor prepares the study itself: leave out --prepare";
    else if (a->executor && strcmp(a->executor, "k8s") == 0 && !a->emit)
        why = "--executor k8s writes manifests: give --emit DIR (then --apply DIR)";
    else if (a->emit && !a->executor)
        why = "--emit DIR goes with --executor slurm or k8s";
    else if (a->cancel && !a->wait)
        why = "--cancel-on-interrupt goes with --executor slurm --wait";
    else if (a->k8s_action && (a->config || a->resume || a->executor || a->merge))
        why = "--apply, --status and --collect act on an emitted folder alone";
    else if (a->plan_only && (a->executor || a->parallel || a->prepare || shard))
        why = "--plan-only prints the plan; it launches, prepares and submits nothing";
    if (why)
        log_error("study: %s", why);
    return why ? -EINVAL : 0;
}
