/* query.h — one query from a store to an answer, in data-flow order:
 *   plan → gather → rotate → score → select → recompute → answer (prompt prefill, decode)
 * where gather and rotate are a loader thread's, overlapped with score and recompute layer by
 * layer (docs/engine.md)
 * (../shared/docs/algorithm.md §3–§9; docs/method.md). Used by `infoflow query`, `infoflow eval`
 * and `infoflow bench ttft`. No MPI here: under tensor parallelism the collective steps go through
 * the engine's ifk_tp hooks, which the driver fills. */
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
    int serial_load;   /* load all of the context's K/V before computing (no overlap): times the load alone */
    ifk_dev_opts dev;  /* infoflow-dev's variant; all zero: the defaults (ifk_dev_opts_default) */
} ifk_query_opts;

/* The communication phases of a query (tensor parallelism), as docs/scaling.md counts them. */
enum { IFK_PHASE_LOAD = 0, IFK_PHASE_SCORE, IFK_PHASE_RECOMPUTE, IFK_PHASE_PROMPT, IFK_PHASE_DECODE, IFK_PHASE_N };

typedef struct {
    /* what was run */
    int n_chunks, T, n_prompt, n_selected;
    int *order;        /* (n_chunks) chunk order used (original indices) */
    int *selected;     /* (n_selected) slots, ascending */
    int *answer;       /* (n_answer) generated token ids */
    int n_answer;
    float *first_logits; /* (V) at the first answer position */
    int vocab;
    /* wall time of each step, ms: plan; gather (load); rotate; score and select; recompute; prompt
     * prefill; first answer token after the prompt; the whole answer. ttft = gather to first token */
    double t_plan, t_load, t_rotate, t_score, t_recompute, t_prompt, t_first, t_decode, ttft;
    /* the load apart, ms. On the calling thread, within t_load: the HDF5 look-ups and token reads
     * (locate), the BOS forward, and the compute's waits for the loader (wait). On the loader's
     * thread, overlapped with the compute unless serial_load: checksum and conversion into the
     * cache's slots with any read-rate wait (fill), and the rotation of each chunk to its global
     * positions (rerotate; t_rotate is 0: nothing rotates on the critical path) */
    double t_locate, t_bos, t_wait, t_fill, t_rerotate;
    /* --compare-full */
    int compared;
    double kl;
    int top1_agree, leading_agree;
    int *full_answer;
    int n_full_answer;
    double full_ttft;
    /* tensor parallelism: this rank's communication per phase (IFK_PHASE_*) */
    double comm_ms[IFK_PHASE_N], comm_bytes[IFK_PHASE_N];
} ifk_query_result;

void ifk_query_result_free(ifk_query_result *r);

/* The context of a query: documents (indices into the store's manifest) in order. */
typedef struct {
    const int *docs;
    int n_docs;
} ifk_query_docs;

/* Runs one query. prompt: token ids (P) without BOS. The store must be open and made for this
 * model. With tp (collective over its ranks, every rank with the same arguments), m is this rank's
 * slice (ifk_model_slice): each rank reads only its KV heads from the store, and rank 0's selection
 * and tokens are the ones used; the result is complete on rank 0. Errors: IFK_ERR_ARG (budget,
 * scoring band, a context beyond the model's positions), IFK_ERR_OOM (refused up front with the
 * estimate), and the store's read errors. A failure on one rank leaves the others inside a
 * collective: the driver must end the job (ifk_comm_abort). */
ifk_status ifk_query_run(const ifk_model *m, ifk_store *store, const ifk_query_docs *qd, const int *prompt, int P,
                         const ifk_query_opts *o, ifk_tp *tp, ifk_query_result *r);

#endif
