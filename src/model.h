/* model.h — a Llama-family model: its config, its weights (borrowed views into one mapping or one
 * owned block), and the loaders. Local; no MPI, no HDF5.
 *
 * Ownership: ifk_model_load / ifk_model_random fill a model that owns its storage; every weight
 * pointer is a view into it and dies with ifk_model_free. */
#ifndef IFK_MODEL_H
#define IFK_MODEL_H

#include <stdint.h>
#include <stddef.h>

#include "kernels.h"
#include "status.h"

#define IFK_MAX_LAYERS 1024
#define IFK_MAX_EOS 16
#define IFK_MAX_SEQ (1 << 24) /* positions: the longest sequence a config may declare */

typedef enum { IFK_ROPE_SCALING_NONE = 0, IFK_ROPE_SCALING_LLAMA3 = 1 } ifk_rope_scaling_type;

typedef struct {
    ifk_rope_scaling_type type;
    double factor, low_freq_factor, high_freq_factor; /* llama3 */
    int original_max_positions;                        /* llama3 */
} ifk_rope_scaling;

/* generate's defaults from an HF folder's generation_config.json (transformers' GenerationConfig
 * defaults where the file is silent); unused for llama2.c checkpoints (hf == 0). */
typedef struct {
    int hf;                    /* 1: an HF folder set these */
    int do_sample;             /* 0: greedy */
    double temperature, top_p; /* 1.0, 1.0 */
    int top_k;                 /* 50 */
    double repetition_penalty; /* 1.0 */
    int max_length;            /* positions incl. the prompt; 0: not given */
    int max_new_tokens;        /* 0: not given */
} ifk_gen_config;

typedef struct {
    int dim;          /* D */
    int hidden_dim;   /* F */
    int n_layers;     /* L */
    int n_heads;      /* H */
    int n_kv_heads;   /* Hkv; H % Hkv == 0 */
    int head_dim;     /* Dh; dim / H for llama2.c, explicit in some HF configs */
    int vocab_size;   /* V */
    int seq_len;      /* max positions */
    float norm_eps;
    double rope_theta;
    ifk_rope_style rope_style;
    ifk_rope_scaling rope_scaling;
    int shared_classifier; /* 1 when the classifier is the token embedding */
    int bos_id, eos_id;    /* eos_id == eos_ids[0] */
    int eos_ids[IFK_MAX_EOS], n_eos; /* every id that ends generation (eos_token_id may be a list) */
    int qkv_bias;          /* biases on the q/k/v projections (Qwen2; Llama/Qwen3 attention_bias) */
    int o_bias;            /* bias on the output projection (Llama/Qwen3 attention_bias) */
    int mlp_bias;          /* biases on gate/up/down projections (Llama mlp_bias) */
    int qk_norm;           /* Qwen3: per-head RMSNorm of q and k before RoPE */
    int sliding_window;    /* w > 0: in the layers of window_layers, key position kp is visible to query
                            * position qp iff qp - w < kp <= qp (transformers' sliding_window_overlay) */
    uint64_t window_layers[IFK_MAX_LAYERS / 64]; /* bit l: layer l attends through the window */
    ifk_gen_config gen;
} ifk_config;

/* A weight matrix in the model's wdtype (f32, bf16 or f16): opaque, so that indexing it as floats does
 * not compile; ifk_wat gives element offsets, ifk_matmul_w multiplies by it. */
typedef struct ifk_wbuf_ ifk_wbuf;
static inline const ifk_wbuf *ifk_wat(const ifk_wbuf *p, ifk_wdtype t, size_t i) {
    return (const ifk_wbuf *)((const char *)p + i * ifk_wdtype_size(t));
}
/* The attention window of layer l: 0 (full causal attention) or w. */
static inline int ifk_layer_window(const ifk_config *c, int l) {
    return c->sliding_window > 0 && (c->window_layers[l / 64] >> (l % 64) & 1) ? c->sliding_window : 0;
}
/* 1 if token id ends generation under c: BOS (llama2.c's habit) or any of the EOS ids. */
int ifk_config_is_stop(const ifk_config *c, int id);

typedef struct {
    const float *rms_att; /* (D) */
    const ifk_wbuf *wq;   /* (H*Dh, D) */
    const ifk_wbuf *wk;   /* (Hkv*Dh, D) */
    const ifk_wbuf *wv;   /* (Hkv*Dh, D) */
    const ifk_wbuf *wo;   /* (D, H*Dh) */
    const float *rms_ffn; /* (D) */
    const ifk_wbuf *w1;   /* (F, D) gate */
    const ifk_wbuf *w2;   /* (D, F) down */
    const ifk_wbuf *w3;   /* (F, D) up */
    const float *bq, *bk, *bv; /* (H*Dh), (Hkv*Dh), (Hkv*Dh) when cfg.qkv_bias, else NULL */
    const float *bo;           /* (D) when cfg.o_bias, else NULL */
    const float *b1, *b2, *b3; /* (F), (D), (F) when cfg.mlp_bias, else NULL */
    const float *q_norm, *k_norm; /* (Dh) each when cfg.qk_norm, else NULL */
} ifk_layer_weights;

typedef struct {
    ifk_config cfg;
    ifk_wdtype wdtype;         /* of tok_emb, wcls and every layer matrix; norms and biases are f32 */
    const ifk_wbuf *tok_emb;   /* (V, D) */
    const float *rms_final;    /* (D) */
    const ifk_wbuf *wcls;      /* (V, D); == tok_emb when shared */
    ifk_layer_weights *layers; /* (L) */
    double *inv_freq;          /* (Dh/2) RoPE frequencies, scaling applied */
    char source[512];          /* file path, or "random:<shape>" */
    char fingerprint[17];      /* set by loaders that fingerprint from the files (HF); else computed */
    uint64_t tok_identity;     /* the tokenizer loaded with it (ifk_tokenizer_identity); 0: none */
    /* storage */
    void *map;      /* a checkpoint file mapped read-only (llama2.c), or NULL */
    size_t map_len;
    int map_fd;     /* the mapped file, open while map is: the weights are read from it with pread
                     * (fingerprint, finite check, slices), so a page becomes resident only where
                     * the forward pass reads the mapping itself */
    void *owned;
} ifk_model;

/* OK when the model has a prefix token for cached chunks: config.json's bos_token_id (>= 0), put
 * before every chunk as it is cached (chunk.h IFK_CHUNK_PREFIX) and at slot 0 of a query's context,
 * whatever BOS rule the tokenizer has (docs/models.md). Else IFK_ERR_ARG naming m->source. */
ifk_status ifk_model_check_prefix(const ifk_model *m);

/* Loads a llama2.c checkpoint: legacy version 0 (7 int32 header, float32 tensors, RoPE tables) or
 * export.py --version 1 (256-byte header: magic "ak42", version, 7 int32, shared-classifier byte;
 * float32 tensors, norms first). Version 2 (int8 groups) and others are refused naming the version.
 * The file is mapped once, read-only, and kept open (map_fd); its size must equal what the header
 * implies. Loading touches no page of the mapping (the finite check reads with pread): a page
 * becomes resident when the forward pass uses it, so a tensor-parallel rank that uses only its
 * slice (ifk_model_slice) and the replicated tensors holds only those. --weights other than f32
 * converts the whole model here (every rank, before slicing). */
ifk_status ifk_model_load_llama2c(ifk_model *m, const char *path);

/* Builds a model of a named shape ("bench100m", "tiny", "stories260K") or an explicit one
 * ("dim=1024,layers=8,heads=16,kv_heads=4,hidden=2816,vocab=32000[,seq=4096][,head_dim=64]")
 * with deterministic random weights (uniform, std 0.02; norm weights 1). */
ifk_status ifk_model_random(ifk_model *m, const char *shape, uint64_t seed);

/* Rank r of P's slice for tensor parallelism (Megatron-style): KV heads [r Hkv/P, (r+1) Hkv/P)
 * with their query heads, MLP columns [r F/P, (r+1) F/P). The local config counts the slice's
 * heads and hidden size. wo's and w2's columns are strided, so their slices are copied; so are
 * wq/wk/wv/w1/w3's rows when full is a mapped checkpoint (read with pread: none of full's layer
 * pages becomes resident), else those are views into full. Embedding, norms and classifier are
 * shared (replicated views; full must outlive the slice). P must divide Hkv: otherwise an error
 * listing the valid P. Errors: IFK_ERR_ARG, IFK_ERR_OOM. */
ifk_status ifk_model_slice(const ifk_model *full, int rank, int P, ifk_model *out);
/* Hands back to the OS the pages of full's layer weights that slice (ifk_model_slice(full, rank,
 * P)) does not use: the other ranks' rows of wq/wk/wv/w1/w3 and all of wo/w2 (the slice copied its
 * columns). Remembers full's fingerprint first. Afterwards full serves only its config,
 * fingerprint, embedding, norms and classifier: its released layer pages read back as zeros
 * (random weights) or from the file again (a mapped checkpoint). This is what makes a random
 * model's resident weights shrink with P (a mapped checkpoint's layer pages were never made
 * resident: nothing to hand back). No-op for a config-only full (HF slices are read directly). */
void ifk_model_release_unsliced(ifk_model *full, const ifk_model *slice, int rank, int P);
/* IFK_OK if P ranks can split n_kv_heads KV heads; otherwise the error listing the valid P. */
ifk_status ifk_check_ranks(int n_kv_heads, int P);

/* Keeps the model's matrices in dtype t (rounded to nearest even from f32; exact towards f32): builds a
 * new owned block and releases the old storage (a mapping or a block). No-op when already in t. Errors:
 * IFK_ERR_OOM. A slice (ifk_model_slice) is converted by converting its full model first. */
ifk_status ifk_model_convert(ifk_model *m, ifk_wdtype t);
/* Bytes the model's weights take in memory (matrices in wdtype, vectors in f32). */
size_t ifk_model_bytes(const ifk_model *m);
/* IFK_ERR_FORMAT "PATH: tensor NAME holds NaN or infinity (element I of N)" for the first weight of m
 * (matrices in m->wdtype, vectors f32) that is not finite; IFK_OK when all are. One read of the
 * weights (ifk_weights_nonfinite), a mapped checkpoint's streamed with pread like the fingerprint.
 * Loads of llama2.c files call it; HF loads test as they copy. */
ifk_status ifk_model_check_finite(const ifk_model *m, const char *path);
/* The process-wide --weights request that ifk_engine_load and the HF loader follow: -1 keeps every
 * checkpoint as stored (auto, the default), else an ifk_wdtype. */
void ifk_weights_request(int t);
int ifk_weights_requested(void);

/* Parses a shape as above into cfg without allocating weights. */
ifk_status ifk_config_parse_shape(ifk_config *cfg, const char *shape);
/* In a "key=value,key=value" spec (a shape, --dev), the first key given twice, copied into dup[n]:
 * returns 1; 0 when every key is given once. Parsers refuse such a spec rather than let one win. */
int ifk_spec_dup_key(const char *spec, char *dup, size_t n);

/* Checks a config for consistency (dims positive, heads divide, head_dim even, sizes bounded). */
ifk_status ifk_config_validate(const ifk_config *cfg, const char *what);

/* Fills inv_freq[Dh/2] from theta, style-independent, with the config's frequency scaling. */
void ifk_rope_inv_freq(const ifk_config *cfg, double *inv_freq);

/* Number of parameters (floats), classifier counted once when shared. */
size_t ifk_model_params(const ifk_config *cfg);

/* A 64-bit hash of the config (dims, RoPE theta, style and scaling, norm eps, ids) and every
 * weight, as 16 hex digits: a store built with one model is never reused with another. Reads all
 * weights once (about 1 GB/s); a mapped checkpoint's through a 32 KiB buffer (pread), so hashing
 * leaves no page of it resident. When m->tok_identity is set (a tokenizer was loaded with the
 * model), it is mixed in: a store is bound to its tokenizer as well. */
void ifk_model_fingerprint(const ifk_model *m, char out[17]);

void ifk_model_free(ifk_model *m);

#endif
