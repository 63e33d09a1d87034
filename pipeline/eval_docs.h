/* eval_docs.h — the documents `infoflow eval` needs in its store: every LongBench item's passages,
 * and for the needle grid haystack stories sampled from the model itself and the eight needles
 * ("Once upon a time, there was a <animal> named <name>."). Local, no MPI: the eval driver calls
 * it on rank 0 while the other ranks wait. */
#ifndef IFK_EVAL_DOCS_H
#define IFK_EVAL_DOCS_H

#include "evalio.h"
#include "model.h"
#include "tokenizer.h"

/* The needles: needle-k tells that the animal ifk_needle_animal[k] is named ifk_needle_name[k]. */
#define IFK_NEEDLES 8
extern const char *const ifk_needle_animal[IFK_NEEDLES];
extern const char *const ifk_needle_name[IFK_NEEDLES];

/* Caches the documents of job j (items: its query set) that its store lacks, in one new shard
 * through the ingest path, then rebuilds the BM25 index; a new store gets f16 K/V in chunks of 128
 * tokens. Haystack story h ("hay-%03d") is sampled from m (seed needle_seed * 1000 + h + 1, top-p
 * 0.9) after "Once upon a time"; *n_hay is their count. quiet: no progress lines on stderr.
 * Errors: the ingest path's (the store is locked meanwhile), IFK_ERR_OOM. */
ifk_status ifk_eval_docs(const ifk_jobspec *j, const ifk_qitem *items, int n_items, const ifk_model *m,
                         const ifk_tokenizer *tok, int quiet, int *n_hay);

#endif
