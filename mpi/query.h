/* query.h — one query from a store to an answer: gather the chunks of the chosen documents into a
 * KV cache at global positions, select, recompute, prefill the prompt, decode
 * (../shared/docs/algorithm.md §3–§9). Used by `infoflow query`, `infoflow bench ttft` and the
 * evaluation jobs. Local (one process) for now; the tensor-parallel version splits the same
 * steps by heads. */
#ifndef IFK_QUERY_H
#define IFK_QUERY_H

#include "infoflow.h"
#include "store.h"
#include "tokenizer.h"

typedef struct {
    ifk_method method;
    double budget;     /* R in [0, 1] */
    int reorder;
    int score_lo, score_hi; /* -1: the default band */
    int steps;         /* tokens to generate */
    uint64_t seed;     /* for random */
    int compare_full;  /* also run full in the same process and compare */
    ifk_dev_opts dev;  /* infoflow-dev's variant; all zero: the defaults (ifk_dev_opts_default) */
} ifk_query_opts;

typedef struct {
    /* what was run */
    int n_chunks, T, n_prompt, n_selected;
    int *order;        /* (n_chunks) chunk order used (original indices) */
    int *selected;     /* (n_selected) slots, ascending */
    int *answer;       /* (n_answer) generated token ids */
    int n_answer;
    float *first_logits; /* (V) at the first answer position */
    int vocab;
    /* timings, ms */
    double t_load, t_rotate, t_score, t_recompute, t_prompt, t_first, ttft;
    /* --compare-full */
    int compared;
    double kl;
    int top1_agree, leading_agree;
    int *full_answer;
    int n_full_answer;
    double full_ttft;
    /* tensor parallelism: communication per phase (this rank's payload) */
    double comm_ms[5], comm_bytes[5]; /* IFK_PHASE_* */
} ifk_query_result;

enum { IFK_PHASE_LOAD = 0, IFK_PHASE_SCORE, IFK_PHASE_RECOMPUTE, IFK_PHASE_PROMPT, IFK_PHASE_DECODE };

void ifk_query_result_free(ifk_query_result *r);

/* The context of a query: documents (indices into the store's manifest) in order. */
typedef struct {
    const int *docs;
    int n_docs;
} ifk_query_docs;

/* Runs one query. prompt: token ids without BOS. The store must be open and made for this model.
 * With tp (collective over its ranks), m is this rank's slice (ifk_model_slice): each rank reads
 * only its KV heads from the store, and rank 0's selection and tokens are the ones used; the
 * result is complete on rank 0. A failure on one rank leaves the others inside a collective:
 * the driver must end the job (ifk_comm_abort). */
ifk_status ifk_query_run(const ifk_model *m, ifk_store *st, const ifk_query_docs *qd, const int *prompt, int P,
                         const ifk_query_opts *o, ifk_tp *tp, ifk_query_result *r);

#endif
