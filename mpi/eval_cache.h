/* eval_cache.h — the documents `infoflow eval` needs in its store, cached through the groups. */
#ifndef IFK_EVAL_CACHE_H
#define IFK_EVAL_CACHE_H

#include "comm.h"
#include "evalio.h"
#include "grid.h"
#include "model.h"
#include "tokenizer.h"
#include "tp.h"

/* What the caching step needs of eval's state. m: this rank's model (its slice under tensor
 * parallelism, with tp the group's hooks; tp NULL at --tp 1); full: the whole model's config and
 * fingerprint; tok: the tokenizer (a group's rank 0 at least); j: the job spec. */
typedef struct {
    const ifk_comm *cm;
    ifk_tp *tp;
    const ifk_model *m, *full;
    const ifk_jobspec *j;
    const ifk_tokenizer *tok;
    int quiet;
} ifk_eval_env;

/* The documents the job needs in its store: every LongBench item's passages, and for the needle
 * grid haystack stories "hay-%03d" sampled from the model itself (seed needle_seed * 1000 + h + 1,
 * top-p 0.9, after "Once upon a time") and the eight needles (eval_docs.h). Collective on the
 * world of grid: the groups sample the stories the store lacks (tensor-parallel within a group),
 * then every rank caches what the store lacks as `infoflow cache` would (a temporary corpus
 * OUT/.eval-cache-corpus.jsonl, read by rank 0 and removed after); a new store gets f16 K/V in
 * chunks of 128 tokens, an existing one keeps its layout. Returns the agreed status (the failing
 * rank has printed its message). */
ifk_status ifk_eval_cache_docs(const ifk_eval_env *x, const ifk_grid *grid, const ifk_qitem *items, int n_items);

#endif
