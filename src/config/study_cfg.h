/*
 * study_cfg.h - the study sections of a config file (docs/STUDY.md): which server setups to
 * launch (a grid and/or a list), which workloads to run on each, how many users to test, and
 * the backend that starts servers. A file with these sections is a study file; its ordinary
 * run sections (server, model, requests, slo, ...) are the default workload.
 * Strings are owned by the config (config_release frees them).
 */
#ifndef TB_STUDY_CFG_H
#define TB_STUDY_CFG_H

#include <stdbool.h>
#include <stddef.h>

struct str_list {
    char **v;
    size_t n;
};

struct int_list {
    int *v;
    size_t n;
};

struct num_list {
    double *v;
    size_t n;
};

/* One server setup. Unset: NULL strings, 0 numbers, -1 enable_prefix_caching. */
struct setup_cfg {
    char *name; /* label; default derived from the values */
    char *model;
    char *quantization;   /* NULL/"none" = the checkpoint's dtype */
    char *kv_cache_dtype; /* NULL = "auto" */
    int max_model_len;
    double gpu_memory_utilization;
    int tensor_parallel_size;
    int max_num_seqs;
    int enable_prefix_caching;
    struct str_list extra_args; /* appended to the server's command line */
};

/* setups.grid: every combination of the lists (a missing list = the defaults' value). */
struct setup_grid {
    struct str_list model, quantization, kv_cache_dtype;
    struct int_list max_model_len;
    struct num_list gpu_memory_utilization;
    struct int_list tensor_parallel_size, max_num_seqs;
};

struct workload_cfg {
    char *name;
    char *config;       /* a run config, relative to the study file; NULL = the study file */
    double window_fill; /* NAN, or (0, 1]: the first prompt fills this share of the window
                           (max_model_len), leaving room for the answers and later turns;
                           `context_fill` is its old name */
    char *population;   /* "sessions" (default: users in conversation) or "streams" */
    char *slo_profile;  /* NULL = the workload config's slo; else a profile (slo_profile.h) */
};

struct study_backend_cfg {
    char *type;               /* sim (default), docker, command, none */
    double startup_timeout_s; /* default 1800 */
    double stop_grace_s;      /* default 30 */
    int port;                 /* host port; 0 = a free one */
    char *image;              /* docker; default the pinned vLLM image */
    char *gpus;               /* docker --gpus; default "all" */
    char *hf_cache;           /* docker; default ~/.cache/huggingface */
    char *network;            /* docker --network; NULL = publish on 127.0.0.1 */
    struct str_list docker_args;
    char *command;           /* command: the template */
    char *endpoint;          /* none: default server.endpoint */
    struct int_list gpu_ids; /* --parallel: the GPUs setups are spread over; none = no split */
    int gpus_per_setup;      /* GPUs one setup takes; 0 = its tensor_parallel_size */
};

/* slurm: `study --executor slurm` (docs/SCALE.md). */
struct study_slurm_cfg {
    char *partition, *account;  /* NULL = the cluster's default */
    char *time;                 /* a task's limit, Slurm's format ("4:00:00"); NULL = default */
    char *gres;                 /* NULL = "gpu:<the most GPUs a setup takes>" */
    int signal_s;               /* TERM this long before the limit (--signal=B:TERM@N) */
    int max_parallel;           /* tasks at once (%N); 0 = as many as Slurm runs */
    struct str_list extra_args; /* more sbatch options, one #SBATCH line each */
    char *testbench;            /* the binary on the nodes; NULL = this one's path */
};

/* kubernetes: `study --executor k8s` (docs/SCALE.md). */
struct study_k8s_cfg {
    char *namespace_;      /* NULL = kubectl's current namespace */
    char *image;           /* the testbench image */
    char *storage_class;   /* the results volume's class; NULL = the cluster's default */
    char *storage_size;    /* "20Gi" */
    char *access_mode;     /* "ReadWriteMany": pods on several nodes write to it */
    char *hf_token_secret; /* a Secret with key HF_TOKEN, by name; NULL = none */
    char *gpu_resource;    /* "nvidia.com/gpu" */
    int max_parallel;      /* pods at once; 0 = every setup at once */
};

struct study_cfg {
    bool present; /* the file has a study section */
    char *name;   /* default benchmark.name */
    char *gpu;    /* the GPU plans are made for (and the sim backend imitates) */
    char *catalog;
    struct int_list users; /* the populations the guidance is for; default [10] */
    bool capacity_search;  /* find the most users within the SLO; default true */
    int max_users;         /* search ceiling; default 256 */
    /* A probe of N users (docs/STUDY.md "Probes"): a warm-up of N x warmup_per_user requests,
     * then up to its cap, max(max_requests, N x requests_per_user, min_requests, the verdict's
     * minimum), stopping at the minimum when stop_when_decided and the verdict is certain. */
    int requests_per_user;
    int min_requests;
    int max_requests; /* 0 = 4 x the verdict's minimum (288 for p95 at 95 %) */
    int warmup_per_user;
    bool stop_when_decided;
    struct setup_cfg defaults;
    struct setup_grid grid;
    bool grid_given;
    struct setup_cfg *list;
    size_t n_list;
    struct workload_cfg *workloads;
    size_t n_workloads;
    bool slo_given; /* the file's slo replaces each workload's */
    struct study_backend_cfg backend;
    struct study_slurm_cfg slurm;
    struct study_k8s_cfg k8s;
};

void study_cfg_defaults(struct study_cfg *s);
/* Setups the study holds: the grid's combinations plus the list (the defaults alone: 1). */
size_t study_cfg_n_setups(const struct study_cfg *s);
/* The run config a workload names, relative to the study file's folder; the study file itself
 * when w is NULL or names none. New string. */
char *study_workload_path(const char *study_file, const struct workload_cfg *w);
void study_cfg_release(struct study_cfg *s);
void setup_cfg_release(struct setup_cfg *s);
void str_list_release(struct str_list *l);

#endif
