/* forward.h — the KV cache, the activation state and the transformer forward pass. Local.
 *
 * The cache is laid out (L, Hkv, capacity, Dh) for K (after RoPE) and V, with the position of each
 * slot kept apart: slots are storage, positions are what RoPE and the causal mask see. A batch of T
 * rows can therefore sit at any positions and write to any slots, which is what batched prefill,
 * one-token decode, and the later selective recompute (queries = selected slots, keys = all slots)
 * all are. */
#ifndef IFK_FORWARD_H
#define IFK_FORWARD_H

#include "model.h"
#include "status.h"

typedef struct {
    int n_layers, n_kv_heads, head_dim;
    int capacity; /* slots per (layer, head) */
    int len;      /* slots in use: 0..len-1 */
    float *k;     /* (L, Hkv, capacity, Dh) */
    float *v;     /* (L, Hkv, capacity, Dh) */
    int *pos;     /* (capacity) position of each slot */
    /* optional, for a cache being filled layer by layer by another thread: ifk_layer_forward calls
     * await_layer(await_ctx, l) before it touches layer l and fails with its error */
    ifk_status (*await_layer)(void *ctx, int l);
    void *await_ctx;
} ifk_kvcache;

ifk_status ifk_kvcache_init(ifk_kvcache *c, const ifk_config *cfg, int capacity);
void ifk_kvcache_free(ifk_kvcache *c);
static inline float *ifk_kv_k(const ifk_kvcache *c, int l, int h) {
    return c->k + ((size_t)l * c->n_kv_heads + h) * (size_t)c->capacity * c->head_dim;
}
static inline float *ifk_kv_v(const ifk_kvcache *c, int l, int h) {
    return c->v + ((size_t)l * c->n_kv_heads + h) * (size_t)c->capacity * c->head_dim;
}

/* Rotates the K of slots [s0, s0+n) of every layer by `delta` positions (one fused rotation per
 * slot) and adds delta to their recorded positions. V is position-free and stays. */
void ifk_kvcache_rerotate(ifk_kvcache *c, const double *inv_freq, ifk_rope_style style, int s0, int n, int delta);

/* Tensor parallelism as the engine sees it: hooks the driver (mpi/) fills in. A rank holds a slice
 * of the heads and of the MLP (ifk_model_slice); the layer calls allreduce on its partial sums
 * (attention output projection, MLP down projection); scoring sums per-head statistics into rank 0
 * with reduce_root; the query pipeline takes rank 0's choices (selection, next token) with
 * bcast_ints. NULL in ifk_state means one rank. */
typedef struct {
    int rank, size;
    int n_heads_total;                                       /* H over all ranks */
    ifk_status (*allreduce)(float *x, size_t n, void *ctx);   /* sum, result on every rank */
    ifk_status (*reduce_root)(float *x, size_t n, void *ctx); /* sum into rank 0 (others: unspecified) */
    ifk_status (*bcast_ints)(int *x, size_t n, void *ctx);    /* rank 0's values to every rank */
    void *ctx;
    double comm_seconds, comm_bytes; /* accumulated by the hooks: payload bytes this rank sent */
} ifk_tp;

/* Activations for up to cap_rows rows at a time and cap_keys keys. Buffers only grow. */
typedef struct {
    int cap_rows, cap_keys;
    int att_tasks;   /* attention task slots the scratch holds (ifk_attention_tasks at reserve) */
    float *x;        /* (T, D) residual stream */
    float *xb;       /* (T, D) normed input / projection output */
    float *q;        /* (T, H*Dh) */
    float *kb, *vb;  /* (T, Hkv*Dh) */
    float *att;      /* (T, H*Dh) */
    float *hb, *hb2; /* (T, F) */
    float *rcos, *rsin; /* (T, Dh/2) */
    float *scratch;  /* attention scratch */
    size_t scratch_len;
    ifk_tp *tp; /* NULL: one rank */
} ifk_state;

ifk_status ifk_state_reserve(ifk_state *s, const ifk_config *cfg, int rows, int keys);
void ifk_state_free(ifk_state *s);

/* One layer for the T rows in s->x at positions pos[T] (rope tables from ifk_state_rope): their
 * K/V go to cache slots slots[t] (slots NULL: c->len + t, contiguous) with their positions, then
 * the rows attend causally by position to cache slots [0, nk). psum, if not NULL, accumulates the
 * attention probabilities summed over heads, (T, ldp) with ldp >= nk. */
ifk_status ifk_layer_forward(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                             const int *slots, int nk, float *psum, int ldp);
/* Layer l's K/V only, for rows whose output nobody reads (the last layer of a prefill into a cache,
 * of a selective recompute): RMSNorm, k/v projections, RoPE on k, written to their slots as
 * ifk_layer_forward writes them, bit for bit; no q, attention, output projection or MLP, and s->x
 * is unchanged. Arguments as ifk_layer_forward; every tensor-parallel rank calls it alike (it makes
 * no collective call). Cost: 2 T D (2 Hkv Dh) FLOPs instead of a whole layer's. */
ifk_status ifk_layer_kv(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                        const int *slots);
/* The first half of ifk_layer_forward: RMSNorm, q/k/v, RoPE, the K/V written to their slots and
 * the attention into s->att (T, H*Dh) (and psum), without the output projection and the MLP; s->x
 * is left as it was. For a forward that stops at layer l's attention probabilities (scoring's last
 * layer, algorithm.md §4: nothing reads that layer's output). Same arguments and errors; with
 * tensor parallelism every rank of the group calls it (it makes no collective call itself). */
ifk_status ifk_layer_attend(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                            const int *slots, int nk, float *psum, int ldp);

/* The attention inputs of layer l for the T rows of s->x: RMSNorm, q/k/v projections (+ biases,
 * + Qwen3's q/k norms), RoPE at the positions of ifk_state_rope; into s->q (T, H*Dh), s->kb and
 * s->vb (T, Hkv*Dh). s->xb is overwritten. The first step of ifk_layer_forward. */
void ifk_layer_qkv(const ifk_model *m, ifk_state *s, int l, int T);
/* Embeds ids[T] into s->x. */
ifk_status ifk_embed(const ifk_model *m, ifk_state *s, const int *ids, int T);

/* Fills s->rcos/s->rsin for positions pos[T]; ifk_layer_forward reads them. */
void ifk_state_rope(const ifk_model *m, ifk_state *s, const int *pos, int T);

/* Final RMSNorm and classifier for rows [r0, r0+n) of s->x: logits (n, V). */
void ifk_logits(const ifk_model *m, ifk_state *s, int r0, int n, float *logits);

/* Runs ids[T] at positions pos[T] through all layers, appending their K/V at slots c->len.. and
 * advancing c->len. logits: NULL, the last row's (V), or every row's (T, V) when all_logits. With
 * logits NULL the last layer stops at its K/V (ifk_layer_kv): the cache gets the same bits, and
 * s->x is left holding the last layer's input, not its output. */
ifk_status ifk_forward(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *ids, const int *pos, int T,
                       float *logits, int all_logits);

#endif
