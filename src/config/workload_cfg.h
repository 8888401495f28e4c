/*
 * workload_cfg.h - what a request contains and when a trace says it arrives: output-length
 * distributions (requests.output_tokens), user datasets (requests.dataset), timed traces
 * (requests.trace) and the RAG shape (requests.rag). docs/CONFIG.md documents the keys.
 *
 * Names are kept as the file spells them (NULL = the default) and checked here; the
 * workload room (src/workload/) turns them into behaviour. A tenant inherits each sub-section
 * key by key, as it inherits the rest of requests.
 */
#ifndef TB_WORKLOAD_CFG_H
#define TB_WORKLOAD_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define RAG_MAX_DOCUMENTS 10000000 /* a popularity table of 80 MB */
/* Documents in one prompt: far beyond any retriever's top-k, and what one prompt can hold at
 * one token each is below RAG_MAX_PROMPT_TOKENS anyway. */
#define RAG_MAX_PER_REQUEST 100000
/* A RAG prompt's tokens (documents x their tokens + the question): 10 M, the longest context
 * window announced (Llama 4 Scout, meta-llama/Llama-4-Scout-17B-16E config.json); the run
 * also checks each prompt against the server's own window before any load. */
#define RAG_MAX_PROMPT_TOKENS 10000000.0
/* A trace replayed at speed s takes (its length / s): below 1/1000 a second of trace is more
 * than 16 minutes of run, and the due times of long traces would pass what a run's clock
 * holds. */
#define TRACE_MIN_SPEED 0.001

enum length_kind { LEN_FIXED, LEN_UNIFORM, LEN_NORMAL, LEN_LOGNORMAL, LEN_DATASET };
enum dataset_format { DS_SHAREGPT, DS_JSONL, DS_TEXT };
enum trace_format { TRACE_JSONL, TRACE_CSV };

/* requests.output_tokens: how many tokens each request asks for (max_tokens, and min_tokens
 * with ignore_eos where the server takes them, so the distribution is what is generated). */
struct length_dist {
    char *distribution; /* fixed (NULL) | uniform | normal | lognormal | dataset */
    double mean;        /* 0 = requests.completion_tokens */
    double stddev;      /* normal, lognormal: of the length itself; default 0 */
    int min;            /* uniform's lower bound, else the clip below; default 1 */
    int max;            /* uniform's upper bound, else the clip above; 0 = 4 x mean */
};

/* requests.dataset: prompts from a file the user supplies. */
struct dataset_cfg {
    char *path;            /* NULL = synthetic prompts */
    char *format;          /* NULL = from the extension: .json sharegpt, .jsonl, else text */
    char *turns;           /* first (NULL) | all: the whole conversation up to its last user turn */
    int min_prompt_tokens; /* filter; default 1 */
    int max_prompt_tokens; /* filter; 0 = none */
    bool replacement;      /* sample with replacement; default false */
};

/* requests.trace: arrival times and lengths replayed from a timestamped trace. */
struct trace_cfg {
    char *path;       /* NULL = no trace */
    char *format;     /* NULL = from the extension: .csv, else jsonl */
    double speed;     /* 1 = the trace's own timing, 2 = twice as fast; default 1 */
    int block_tokens; /* tokens per hash id (shared-prefix block); default 512 (Mooncake) */
    char *time_unit;  /* numeric timestamps: ms (NULL) | s | us */
};

/* requests.rag: a pool of long documents; each request is some of them plus a question. */
struct rag_cfg {
    int documents;             /* pool size; 0 = off */
    int document_tokens;       /* default 1000 */
    int documents_per_request; /* default 1 */
    int question_tokens;       /* default 32 */
    double skew;               /* Zipf exponent of document popularity; 0 = uniform (default) */
};

struct requests_cfg;
struct cfg_problem;

void workload_cfg_defaults(struct requests_cfg *r);
void workload_cfg_copy(struct requests_cfg *dst, const struct requests_cfg *src); /* deep */
void workload_cfg_release(struct requests_cfg *r);
/* Adds output_tokens, dataset, trace and rag to a requests JSON object. */
void workload_cfg_to_json(json_t *o, const struct requests_cfg *r);
/* The rules of the four sub-sections; prefix "requests" or "tenants[i].requests". */
int workload_cfg_find_problem(struct cfg_problem *p, const struct requests_cfg *r,
                              const char *prefix, const void *owner);
/* True when prompt lengths come from a dataset, trace or RAG pool (not context_lengths). */
bool workload_cfg_sets_prompts(const struct requests_cfg *r);

/* Name -> value; -EINVAL for an unknown name. NULL gives the default (fixed, first). */
int length_kind_parse(const char *s, enum length_kind *out);
int dataset_format_parse(const char *s, const char *path, enum dataset_format *out);
int trace_format_parse(const char *s, const char *path, enum trace_format *out);
/* Nanoseconds per unit of a numeric trace timestamp, or 0 for an unknown name. */
double trace_time_unit_ns(const char *s);

#endif
