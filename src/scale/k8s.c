/*
 * k8s.c - `study --executor k8s --emit DIR` and `study --apply|--status|--collect DIR`: the
 * prepared study as Kubernetes objects, applied through the user's kubectl (no operator, no
 * API client of our own), as llm-d-benchmark stands up one setup per experiment:
 *   DIR/manifests/00-configmap.yaml  the study file, its workload files, the prepared
 *                                    study.json and each launch index's vLLM arguments
 *   DIR/manifests/01-pvc.yaml        the results volume (every pod writes its setup's folder)
 *   DIR/manifests/02-job.yaml        an Indexed Job, one completion per launch index: vLLM as a
 *                                    native sidecar (an init container with restartPolicy
 *                                    Always) holding the GPUs, testbench as the main container
 *                                    measuring it on localhost (`study --resume --setup-index`
 *                                    with the none backend); the HF token from a Secret by name
 *   DIR/manifests/03-merge.yaml      a Job folding the fragments (`study --merge --wait`)
 *   DIR/collect/pod.yaml             a pod that mounts the volume, for --collect's kubectl cp
 *   DIR/k8s.json                     names, namespace, the study folder (for the actions)
 * --apply: kubectl apply -f DIR/manifests. --status: the Jobs' completed and failed indexes.
 * --collect: the study folder copied back (kubectl cp through the collect pod, which is then
 * deleted) over the local one, and its fragments merged.
 */
#include "scale/k8s_yaml.h"
#include "scale/scale.h"
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/fs.h"
#include "core/log.h"
#include "study/study_files.h"

#define K8S_SIDECAR_PORT 8000
#define K8S_NAME_MAX 40 /* the Job's name: its pods' hostnames add "-<index>-<5 chars>" */
#define K8S_WAIT "300s" /* the collect pod's start */

/* ==== Names ==== */

/* A DNS-1123 label from the study's name: "tb-" + lower-case [a-z0-9-]. */
static char *k8s_name(const char *study)
{
    char *n = xasprintf("tb-%s", study);
    size_t len = 0;
    for (char *p = n; *p && len < K8S_NAME_MAX; p++) {
        char c = (char)tolower((unsigned char)*p);
        n[len++] = isalnum((unsigned char)c) ? c : '-';
    }
    while (len > 0 && n[len - 1] == '-')
        len--;
    n[len] = '\0';
    return n;
}

static const char *folder_name(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return slash ? slash + 1 : dir;
}

static json_t *meta(const struct study *st, const char *name, const char *job)
{
    json_t *m = json_pack("{s:s}", "name", name);
    if (st->cfg.study.k8s.namespace_)
        json_object_set_new(m, "namespace", json_string(st->cfg.study.k8s.namespace_));
    json_object_set_new(m, "labels",
                        json_pack("{s:s, s:s}", "app.kubernetes.io/name", "testbench",
                                  "app.kubernetes.io/instance", job));
    return m;
}

/* ==== The ConfigMap ==== */

/* vLLM's arguments for a setup, one per line: what the docker backend passes its image. */
static char *server_args(const struct study *st, size_t si)
{
    struct backend_options o = st->bo;
    o.kind = BACKEND_DOCKER;
    o.docker_network = "none"; /* no -p: the sidecar listens in the pod */
    const char *image =
        st->cfg.study.backend.image ? st->cfg.study.backend.image : BACKEND_DOCKER_IMAGE;
    o.docker_image = image;
    struct server_setup ss;
    study_server_setup_from(&st->setups[si], &ss);
    char **argv = NULL;
    if (backend_argv(&o, &ss, K8S_SIDECAR_PORT, &argv))
        return NULL;
    size_t i = 0;
    while (argv[i] &&
           !(strcmp(argv[i], image) == 0 && argv[i + 1] && strcmp(argv[i + 1], "--model") == 0))
        i++;
    char *text = xstrdup("");
    for (size_t k = argv[i] ? i + 1 : i; argv[k]; k++) {
        char *next = xasprintf("%s%s\n", text, argv[k]);
        free(text);
        text = next;
    }
    backend_argv_free(argv);
    return text;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return text;
}

/* The study.json the pods start from: the none backend on the sidecar's port, the study file
 * where the ConfigMap puts it. */
static char *pod_study_json(const struct study *st)
{
    json_t *doc = json_deep_copy(st->doc);
    json_t *inv = json_object_get(doc, "invocation");
    json_object_set_new(doc, "backend", json_string("none"));
    json_object_set_new(doc, "config_path", json_string("/study/study.yaml"));
    json_object_set_new(inv, "backend", json_string("none"));
    json_object_set_new(inv, "cwd", json_string("/study"));
    char *ep = xasprintf("http://127.0.0.1:%d", K8S_SIDECAR_PORT);
    json_object_set_new(inv, "endpoint", json_string(ep));
    free(ep);
    char *text = json_dumps(doc, JSON_INDENT(1));
    json_decref(doc);
    return text;
}

/* The ConfigMap and the items its volume lays out under /study (workload files keep their
 * place relative to the study file). -EINVAL when a workload cannot be carried. */
static int configmap(const struct study *st, const char *name, const char *job, json_t **cm,
                     json_t **items)
{
    json_t *data = json_object();
    *items = json_array();
    char *text = read_text(st->cfg.path);
    json_object_set_new(data, "study.yaml", json_string(text ? text : ""));
    free(text);
    json_array_append_new(*items,
                          json_pack("{s:s, s:s}", "key", "study.yaml", "path", "study.yaml"));
    text = pod_study_json(st);
    json_object_set_new(data, "study.json", json_string(text));
    free(text);
    json_array_append_new(*items,
                          json_pack("{s:s, s:s}", "key", "study.json", "path", "study.json"));
    for (size_t w = 0; w < st->cfg.study.n_workloads; w++) {
        const char *rel = st->cfg.study.workloads[w].config;
        if (!rel)
            continue;
        if (rel[0] == '/' || strstr(rel, "..")) {
            log_error("study: workloads[%zu].config %s: a Kubernetes study carries workload files "
                      "in a ConfigMap, placed relative to the study file; give a path below its "
                      "folder",
                      w, rel);
            json_decref(data);
            return -EINVAL;
        }
        char *key = xasprintf("workload-%zu.yaml", w);
        text = read_text(st->wl[w].path);
        json_object_set_new(data, key, json_string(text ? text : ""));
        json_array_append_new(*items, json_pack("{s:s, s:s}", "key", key, "path", rel));
        free(text);
        free(key);
    }
    const json_t *launch = json_object_get(st->doc, "launch_index");
    for (size_t k = 0; k < json_array_size(launch); k++) {
        long si = scale_index_setup(st, k);
        char *args = si >= 0 ? server_args(st, (size_t)si) : NULL;
        if (!args) {
            log_error("study: the server arguments of launch index %zu cannot be built", k);
            json_decref(data);
            return -EINVAL;
        }
        char *key = xasprintf("server-%zu.args", k);
        json_object_set_new(data, key, json_string(args));
        json_array_append_new(*items, json_pack("{s:s, s:s}", "key", key, "path", key));
        free(key);
        free(args);
    }
    *cm = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                    meta(st, name, job), "data", data);
    return 0;
}

/* ==== The Jobs ==== */

static int gpus_needed(const struct study *st)
{
    int most = 1, per = st->cfg.study.backend.gpus_per_setup;
    for (size_t k = 0; k < json_array_size(json_object_get(st->doc, "launch_index")); k++) {
        long si = scale_index_setup(st, k);
        int tp = si >= 0 ? st->setups[si].tensor_parallel_size : 1;
        int need = per > 0 ? per : tp > 0 ? tp : 1;
        most = need > most ? need : most;
    }
    return most;
}

static json_t *index_env(void)
{
    return json_pack("{s:s, s:{s:{s:s}}}", "name", "TB_INDEX", "valueFrom", "fieldRef", "fieldPath",
                     "metadata.annotations['batch.kubernetes.io/job-completion-index']");
}

static json_t *sidecar(const struct study *st)
{
    const struct study_k8s_cfg *k = &st->cfg.study.k8s;
    const char *image =
        st->cfg.study.backend.image ? st->cfg.study.backend.image : BACKEND_DOCKER_IMAGE;
    /* One line per argument, no word splitting or globbing beyond that. */
    const char *script =
        "IFS='\n'\nset -f\nexec vllm serve $(cat \"/study/server-$TB_INDEX.args\")\n";
    json_t *env = json_array();
    json_array_append_new(env, index_env());
    if (k->hf_token_secret)
        /* optional: a public model needs no token, and a missing Secret must not hold the
         * pod in CreateContainerConfigError. */
        json_array_append_new(env, json_pack("{s:s, s:{s:{s:s, s:s, s:b}}}", "name", "HF_TOKEN",
                                             "valueFrom", "secretKeyRef", "name",
                                             k->hf_token_secret, "key", "HF_TOKEN", "optional", 1));
    json_t *limits = json_object();
    json_object_set_new(limits, k->gpu_resource, json_integer(gpus_needed(st)));
    return json_pack(
        "{s:s, s:s, s:s, s:[s, s], s:[s], s:[{s:s, s:i}], s:o, s:{s:o}, s:{s:{s:i}, s:i, "
        "s:i}, s:[{s:s, s:s, s:b}, {s:s, s:s}, {s:s, s:s}]}",
        "name", "vllm", "image", image, "restartPolicy", "Always", "command", "/bin/sh", "-c",
        "args", script, "ports", "name", "http", "containerPort", K8S_SIDECAR_PORT, "env", env,
        "resources", "limits", limits, "startupProbe", "tcpSocket", "port", K8S_SIDECAR_PORT,
        "periodSeconds", 10, "failureThreshold",
        (int)(st->cfg.study.backend.startup_timeout_s / 10) + 1, "volumeMounts", "name", "study",
        "mountPath", "/study", "readOnly", 1, "name", "shm", "mountPath", "/dev/shm", "name",
        "hf-cache", "mountPath", "/root/.cache/huggingface");
}

/* The main container's script: the study folder seeded once on the volume (a hard link is
 * created or not, so two pods never both seed it), then this index's setup measured. */
static char *measure_script(const char *folder)
{
    return xasprintf("set -eu\n"
                     "d=/results/%s\n"
                     "mkdir -p \"$d\"\n"
                     "if [ ! -e \"$d/study.json\" ]; then\n"
                     "  cp /study/study.json \"$d/.seed.$HOSTNAME\"\n"
                     "  ln \"$d/.seed.$HOSTNAME\" \"$d/study.json\" 2>/dev/null || true\n"
                     "  rm -f \"$d/.seed.$HOSTNAME\"\n"
                     "fi\n"
                     "[ -e \"$d/study.yaml\" ] || cp /study/study.yaml \"$d/study.yaml\"\n"
                     "exec testbench study --resume \"$d\" --config /study/study.yaml "
                     "--setup-index \"$TB_INDEX\"\n",
                     folder);
}

static json_t *results_volume(const char *pvc)
{
    return json_pack("{s:s, s:{s:s}}", "name", "results", "persistentVolumeClaim", "claimName",
                     pvc);
}

static json_t *indexed_job(const struct study *st, const char *job, const char *cm, const char *pvc,
                           json_t *items)
{
    const struct study_k8s_cfg *k = &st->cfg.study.k8s;
    size_t n = json_array_size(json_object_get(st->doc, "launch_index"));
    char *script = measure_script(folder_name(st->dir));
    json_t *main_c = json_pack(
        "{s:s, s:s, s:[s, s], s:[s], s:[o], s:{s:{s:s, s:s}}, s:[{s:s, s:s, s:b}, {s:s, s:s}]}",
        "name", "testbench", "image", k->image, "command", "/bin/sh", "-c", "args", script, "env",
        index_env(), "resources", "requests", "cpu", "1", "memory", "1Gi", "volumeMounts", "name",
        "study", "mountPath", "/study", "readOnly", 1, "name", "results", "mountPath", "/results");
    free(script);
    json_t *volumes =
        json_pack("[{s:s, s:{s:s, s:o}}, o, {s:s, s:{s:s}}, {s:s, s:{}}]", "name", "study",
                  "configMap", "name", cm, "items", items, results_volume(pvc), "name", "shm",
                  "emptyDir", "medium", "Memory", "name", "hf-cache", "emptyDir");
    int parallel = k->max_parallel > 0 && (size_t)k->max_parallel < n ? k->max_parallel : (int)n;
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:i, s:i, s:i, s:{s:o, s:{s:s, s:[o], s:[o], s:o}}}}",
                     "apiVersion", "batch/v1", "kind", "Job", "metadata", meta(st, job, job),
                     "spec", "completionMode", "Indexed", "completions", (int)n, "parallelism",
                     parallel, "backoffLimitPerIndex", 1, "template", "metadata",
                     json_pack("{s:{s:s, s:s}}", "labels", "app.kubernetes.io/name", "testbench",
                               "app.kubernetes.io/instance", job),
                     "spec", "restartPolicy", "Never", "initContainers", sidecar(st), "containers",
                     main_c, "volumes", volumes);
}

static json_t *merge_job(const struct study *st, const char *name, const char *job, const char *pvc)
{
    char *dir = xasprintf("/results/%s", folder_name(st->dir));
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:{s:i, s:{s:{s:s, s:[{s:s, s:s, s:[s, s, s, s, s], s:[{s:s, s:s}]}], "
        "s:[o]}}}}",
        "apiVersion", "batch/v1", "kind", "Job", "metadata", meta(st, name, job), "spec",
        "backoffLimit", 3, "template", "spec", "restartPolicy", "OnFailure", "containers", "name",
        "merge", "image", st->cfg.study.k8s.image, "command", "testbench", "study", "--merge", dir,
        "--wait", "volumeMounts", "name", "results", "mountPath", "/results", "volumes",
        results_volume(pvc));
    free(dir);
    return j;
}

static json_t *pvc_object(const struct study *st, const char *name, const char *job)
{
    const struct study_k8s_cfg *k = &st->cfg.study.k8s;
    json_t *spec = json_pack("{s:[s], s:{s:{s:s}}}", "accessModes", k->access_mode, "resources",
                             "requests", "storage", k->storage_size);
    if (k->storage_class)
        json_object_set_new(spec, "storageClassName", json_string(k->storage_class));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "PersistentVolumeClaim",
                     "metadata", meta(st, name, job), "spec", spec);
}

static json_t *collect_pod(const struct study *st, const char *name, const char *job,
                           const char *pvc)
{
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:[{s:s, s:s, s:[s, s], s:[{s:s, s:s}]}], s:[o]}}",
                     "apiVersion", "v1", "kind", "Pod", "metadata", meta(st, name, job), "spec",
                     "restartPolicy", "Never", "containers", "name", "collect", "image",
                     st->cfg.study.k8s.image, "command", "sleep", "3600", "volumeMounts", "name",
                     "results", "mountPath", "/results", "volumes", results_volume(pvc));
}

static int write_yaml(const char *dir, const char *file, const json_t *obj)
{
    char *text = k8s_yaml_text(obj);
    char *path = xasprintf("%s/%s", dir, file);
    FILE *f = text ? fopen(path, "w") : NULL;
    int rc = f && fputs(text, f) >= 0 ? 0 : -EIO;
    if (f && fclose(f))
        rc = -EIO;
    if (rc)
        log_error("study: cannot write %s", path);
    free(path);
    free(text);
    return rc;
}

int scale_k8s_run(struct study *st)
{
    char *job = k8s_name(st->name);
    char *cm_name = xasprintf("%s-study", job), *pvc = xasprintf("%s-results", job);
    char *merge = xasprintf("%s-merge", job), *collector = xasprintf("%s-collect", job);
    char *mdir = xasprintf("%s/manifests", st->args.emit);
    char *cdir = xasprintf("%s/collect", st->args.emit);
    json_t *cm = NULL, *items = NULL;
    int rc = fs_mkdir_p(mdir) || fs_mkdir_p(cdir) ? -EIO : 0;
    if (!rc)
        rc = configmap(st, cm_name, job, &cm, &items);
    size_t n = json_array_size(json_object_get(st->doc, "launch_index"));
    if (!rc && n == 0) {
        log_error("study: no setup of %s fits: nothing to run on Kubernetes", st->cfg.path);
        rc = -EINVAL;
    }
    json_t *objs[5] = {NULL};
    if (!rc) {
        objs[0] = cm;
        objs[1] = pvc_object(st, pvc, job);
        objs[2] = indexed_job(st, job, cm_name, pvc, items);
        objs[3] = merge_job(st, merge, job, pvc);
        objs[4] = collect_pod(st, collector, job, pvc);
        cm = items = NULL;
        static const char *const files[] = {"00-configmap.yaml", "01-pvc.yaml", "02-job.yaml",
                                            "03-merge.yaml"};
        for (size_t i = 0; i < 4 && !rc; i++)
            rc = write_yaml(mdir, files[i], objs[i]);
        if (!rc)
            rc = write_yaml(cdir, "pod.yaml", objs[4]);
    }
    if (!rc) {
        char *abs = realpath(st->dir, NULL);
        json_t *rec = json_pack("{s:s?, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "namespace",
                                st->cfg.study.k8s.namespace_, "job", job, "merge_job", merge, "pvc",
                                pvc, "collect_pod", collector, "folder", folder_name(st->dir),
                                "local_dir", abs ? abs : st->dir, "setups", (json_int_t)n);
        char err[512];
        rc = study_files_write_json(st->args.emit, "k8s.json", rec, err, sizeof(err));
        if (rc)
            log_error("study: %s", err);
        json_decref(rec);
        free(abs);
    }
    if (!rc && !st->args.quiet)
        printf("\nKubernetes manifests for %zu setup%s in %s/manifests:\n"
               "  testbench study --apply %s     # kubectl apply -f %s/manifests\n"
               "  testbench study --status %s    # the Jobs' completed and failed indexes\n"
               "  testbench study --collect %s   # the results back into %s\n",
               n, n == 1 ? "" : "s", st->args.emit, st->args.emit, st->args.emit, st->args.emit,
               st->args.emit, st->dir);
    for (size_t i = 0; i < 5; i++)
        json_decref(objs[i]);
    json_decref(cm);
    json_decref(items);
    free(cdir);
    free(mdir);
    free(collector);
    free(merge);
    free(pvc);
    free(cm_name);
    free(job);
    return rc == -EINVAL ? TB_EXIT_USAGE : rc ? TB_EXIT_RUNTIME : TB_EXIT_OK;
}

/* ==== --apply, --status, --collect ==== */

/* kubectl ARGS [-n NAMESPACE]: its exit status; out as scale_run. */
static int kubectl(const json_t *rec, const char *const *args, char **out)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = getenv("KUBECTL") ? getenv("KUBECTL") : "kubectl";
    for (size_t i = 0; args[i] && n < 12; i++)
        argv[n++] = args[i];
    const char *ns = json_string_value(json_object_get(rec, "namespace"));
    if (ns) {
        argv[n++] = "-n";
        argv[n++] = ns;
    }
    argv[n] = NULL;
    int rc = scale_run(argv, out);
    if (rc) {
        char *line = scale_argv_line(argv);
        log_error("study: %s failed (exit %d)", line, rc);
        free(line);
    }
    return rc;
}

static const char *rec_str(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return v ? v : "";
}

/* One Job's progress as its status says it. */
static void print_job(const json_t *item, size_t setups)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
    const json_t *s = json_object_get(item, "status");
    const char *done = "running";
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(s, "conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (json_is_string(json_object_get(c, "status")) &&
            strcmp(json_string_value(json_object_get(c, "status")), "True") == 0 && type &&
            (strcmp(type, "Complete") == 0 || strcmp(type, "Failed") == 0))
            done = strcmp(type, "Complete") == 0 ? "complete" : "failed";
    }
    const char *completed = json_string_value(json_object_get(s, "completedIndexes"));
    const char *failed = json_string_value(json_object_get(s, "failedIndexes"));
    printf("%s: %s; %lld succeeded, %lld failed, %lld running", name ? name : "?", done,
           (long long)json_integer_value(json_object_get(s, "succeeded")),
           (long long)json_integer_value(json_object_get(s, "failed")),
           (long long)json_integer_value(json_object_get(s, "active")));
    if (json_object_get(json_object_get(item, "spec"), "completionMode"))
        printf(" of %zu setups; completed indexes %s, failed %s", setups,
               completed ? completed : "none", failed ? failed : "none");
    printf("\n");
}

static int status(const char *dir, const json_t *rec)
{
    char *out = NULL;
    const char *args[] = {"get",  "job", rec_str(rec, "job"), rec_str(rec, "merge_job"), "-o",
                          "json", NULL};
    int rc = kubectl(rec, args, &out);
    json_error_t je;
    json_t *list = rc ? NULL : json_loads(out, 0, &je);
    if (!rc && !list) {
        log_error("study: kubectl get job printed no JSON: %s", je.text);
        rc = 1;
    }
    json_t *items = json_object_get(list, "items");
    if (!json_is_array(items) && list) { /* one object when one name matched */
        items = json_array();
        json_array_append(items, list);
        json_object_set_new(list, "items", items);
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
        print_job(it, (size_t)json_integer_value(json_object_get(rec, "setups")));
    (void)dir;
    json_decref(list);
    free(out);
    return rc ? TB_EXIT_RUNTIME : TB_EXIT_OK;
}

static int remove_tree(const char *path)
{
    const char *argv[] = {"rm", "-rf", "--", path, NULL};
    return scale_run(argv, NULL);
}

/* The study folder copied from the volume over the local one, then its fragments merged. */
static int collect(const char *dir, const json_t *rec, const struct study_args *a)
{
    char *pod_yaml = xasprintf("%s/collect/pod.yaml", dir);
    char *pod = xasprintf("pod/%s", rec_str(rec, "collect_pod"));
    char *src = xasprintf("%s:/results/%s", rec_str(rec, "collect_pod"), rec_str(rec, "folder"));
    const char *local = rec_str(rec, "local_dir");
    char *tmp = xasprintf("%s.collecting", local), *old = xasprintf("%s.before-collect", local);
    int rc = kubectl(rec, (const char *[]){"apply", "-f", pod_yaml, NULL}, NULL);
    if (!rc)
        rc = kubectl(
            rec,
            (const char *[]){"wait", "--for=condition=Ready", pod, "--timeout=" K8S_WAIT, NULL},
            NULL);
    if (!rc) {
        remove_tree(tmp);
        rc = kubectl(rec, (const char *[]){"cp", src, tmp, NULL}, NULL);
    }
    /* The pod is ours: deleted whatever happened, without waiting for it to go. */
    (void)kubectl(rec, (const char *[]){"delete", pod, "--wait=false", NULL}, NULL);
    struct stat sb;
    char *json = xasprintf("%s/study.json", tmp);
    if (!rc && stat(json, &sb) != 0) {
        log_error("study: %s holds no study.json: no pod has started the study yet", src);
        rc = 1;
    }
    if (!rc) {
        remove_tree(old);
        if ((access(local, F_OK) == 0 && rename(local, old)) || rename(tmp, local)) {
            log_error("study: cannot put the collected study in %s: %s", local, strerror(errno));
            rc = 1;
        }
        remove_tree(old);
    }
    if (!rc) {
        struct study_args m = *a;
        m.merge = local;
        m.wait = false;
        rc = scale_merge_main(&m);
        if (!rc && !a->quiet)
            printf("study folder: %s\n  testbench report %s\n", local, local);
    }
    free(json);
    free(old);
    free(tmp);
    free(src);
    free(pod);
    free(pod_yaml);
    return rc ? (rc == TB_EXIT_USAGE ? rc : TB_EXIT_RUNTIME) : TB_EXIT_OK;
}

int scale_k8s_action(const struct study_args *a)
{
    const char *dir = a->k8s_dir;
    char *path = xasprintf("%s/k8s.json", dir);
    json_error_t je;
    json_t *rec = json_load_file(path, 0, &je);
    int rc = TB_EXIT_OK;
    if (!json_is_object(rec)) {
        log_error("study: --%s %s: %s is not there or not ours (%s); write it with --executor k8s "
                  "--emit %s",
                  a->k8s_action, dir, path, je.text, dir);
        rc = TB_EXIT_USAGE;
    } else if (strcmp(a->k8s_action, "apply") == 0) {
        char *m = xasprintf("%s/manifests", dir);
        char *out = NULL;
        rc = kubectl(rec, (const char *[]){"apply", "-f", m, NULL}, &out) ? TB_EXIT_RUNTIME : 0;
        if (!a->quiet && out)
            fputs(out, stdout);
        if (!rc && !a->quiet)
            printf("follow: testbench study --status %s\n", dir);
        free(out);
        free(m);
    } else if (strcmp(a->k8s_action, "status") == 0) {
        rc = status(dir, rec);
    } else {
        rc = collect(dir, rec, a);
    }
    json_decref(rec);
    free(path);
    return rc;
}
