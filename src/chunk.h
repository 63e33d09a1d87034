/* chunk.h — cutting a document into chunks and prefilling each chunk on its own, as the offline
 * phase of the method does (../shared/docs/algorithm.md §2). Local.
 *
 * A chunk is prefilled as [BOS] + its tokens at local positions 0..n, with nothing of the
 * document before it in view; the BOS prefix's K/V are dropped, so the stored K of chunk token j
 * was rotated at local position IFK_CHUNK_PREFIX + j. */
#ifndef IFK_CHUNK_H
#define IFK_CHUNK_H

#include "forward.h"
#include "tokenizer.h"

#define IFK_CHUNK_PREFIX 1 /* prefix tokens (BOS) before every chunk; also its RoPE start position */

typedef enum { IFK_SPLIT_TOKENS = 0, IFK_SPLIT_PARAGRAPHS = 1 } ifk_split;

typedef struct {
    int *tokens;   /* (n_tokens) the document's tokens, chunks back to back */
    int n_tokens;
    int *start;    /* (n_chunks) first token of each chunk */
    int *len;      /* (n_chunks) its length, 1..max */
    int n_chunks;
} ifk_chunking;

/* Tokenizes text (llama2.c encoding, no BOS) and cuts it: IFK_SPLIT_TOKENS cuts the document's
 * tokens every max_tokens; IFK_SPLIT_PARAGRAPHS tokenizes each paragraph (text between blank
 * lines, the blank lines dropped) on its own and packs whole paragraphs into chunks of at most
 * max_tokens, cutting only a paragraph longer than that. An empty text gives no chunk. */
ifk_status ifk_chunk_text(const ifk_tokenizer *t, const char *text, size_t len, int max_tokens, ifk_split split,
                          ifk_chunking *out);
/* 1 if the split leaves no text to tokenize, so ifk_chunk_text gives no chunk whatever the
 * tokenizer: an empty text; under IFK_SPLIT_PARAGRAPHS also a text of only blank lines (e.g.
 * "\n\n\n": no paragraph). The corpus check (storage/corpus.h) refuses such a document before
 * anything is cached. */
int ifk_chunk_text_empty(const char *text, size_t len, ifk_split split);
/* Cuts pre-tokenized ids every max_tokens (they are copied). */
ifk_status ifk_chunk_ids(const int *ids, int n, int max_tokens, ifk_chunking *out);
void ifk_chunking_free(ifk_chunking *c);

/* Prefills [BOS] + tokens[0..n) at positions 0..n through every layer and copies the n chunk
 * tokens' K (after RoPE) and V to k, v, each (L, Hkv, n, Dh). cache must hold n + 1 slots; it is
 * reset. */
ifk_status ifk_prefill_chunk(const ifk_model *m, ifk_state *s, ifk_kvcache *cache, const int *tokens, int n,
                             float *k, float *v);

#endif
