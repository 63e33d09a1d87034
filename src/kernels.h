/* kernels.h — the numeric kernels of the forward pass, each with a naive reference (kernels_ref.c).
 *
 * Dimension legend used in every shape comment of the engine:
 *   T   rows in a batch (tokens)          D   model dim          F   MLP hidden dim
 *   H   query heads    Hkv KV heads       Dh  head dim            V   vocab size
 *   L   layers         Nk  keys (cache slots) visible to a batch
 * Matrices are row-major. Weights are stored (out, in), so a projection is Y(T,out) = X(T,in) W^T.
 * All matrix work goes through ifk_gemm (gemm.c), the only file that includes cblas.h.
 * All kernels are Local (no MPI) and allocation-free; scratch comes from the caller. */
#ifndef IFK_KERNELS_H
#define IFK_KERNELS_H

#include <stddef.h>

/* ---- GEMM wrapper (gemm.c) ---------------------------------------------------------------- */

/* C(M,N) = alpha * op(A) op(B) + beta * C, row-major, op = transpose when ta/tb is nonzero.
 * M == 1 goes to cblas_sgemv, which OpenBLAS 0.3.21 does not do by itself (4-10x faster). */
void ifk_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
/* Y(T,out) = X(T,in) W(out,in)^T: the projection every layer makes. */
void ifk_matmul(float *Y, const float *X, const float *W, int T, int in, int out);
void ifk_blas_set_threads(int n);   /* 0 leaves OpenBLAS's default */
int ifk_blas_threads(void);
const char *ifk_blas_config(void);

/* ---- elementwise kernels (kernels.c) ------------------------------------------------------- */

/* out(T,D) = x / rms(x) * w, per row; out may alias x. */
void ifk_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps);
/* In-place softmax of x[n]. A row that is all -inf becomes all zeros. */
void ifk_softmax(float *x, int n);
/* a[i] = silu(a[i]) * b[i]: the SwiGLU gate. */
void ifk_swiglu(float *a, const float *b, size_t n);
/* y[i] = exp(x[i]) with a vectorizable polynomial; max relative error ~2e-7 (tested against expf). */
void ifk_vexp(float *y, const float *x, size_t n);

/* ---- RoPE ---------------------------------------------------------------------------------- */

typedef enum {
    IFK_ROPE_INTERLEAVED = 0, /* pairs (x[2i], x[2i+1]): llama2.c / Meta checkpoints */
    IFK_ROPE_HALF = 1         /* pairs (x[i], x[i+Dh/2]): HF "rotate_half" */
} ifk_rope_style;

/* cos/sin tables (T, Dh/2) for positions pos[t] + offset (pos may be NULL: all zero);
 * angles are computed in double, so large positions keep their precision. */
void ifk_rope_table(float *cos_t, float *sin_t, const int *pos, int T, long offset, const double *inv_freq,
                    int half_dim);
/* Rotates x(T, nh*Dh) (row stride ld) in place with the tables of ifk_rope_table. */
void ifk_rope_apply(float *x, int ld, int T, int nh, int Dh, ifk_rope_style style, const float *cos_t,
                    const float *sin_t);

/* ---- attention ----------------------------------------------------------------------------- */

/* Causal grouped-query attention of a query set over a key set that need not be the same rows:
 * query row i sits at position qpos[i]; key slot j at kpos[j] (kpos NULL: position j); key j is
 * visible to query i iff kpos[j] <= qpos[i], and, with a sliding window w > 0, also
 * kpos[j] > qpos[i] - w (the w newest positions, transformers' sliding_window_overlay). Prefill, decode, selective recompute and scoring are
 * all this one call. Query head h reads KV head h / (H/Hkv). */
typedef struct {
    float *out;         /* (n, H*Dh), row stride ldo */
    int ldo;
    const float *q;     /* (n, H*Dh), row stride ldq; already rotated */
    int ldq;
    const int *qpos;    /* (n) */
    int n;
    const float *k;     /* (Hkv, kstride, Dh): one layer of the cache, rotated */
    const float *v;     /* (Hkv, kstride, Dh) */
    size_t kstride;     /* slots per head in k and v (the cache capacity) */
    const int *kpos;    /* (nk) or NULL */
    int nk;
    int H, Hkv, Dh;
    int window;         /* 0: full causal attention; w > 0: sliding window of w positions */
    float *psum;        /* optional (n, ldp): += softmax probabilities summed over the H heads */
    int ldp;
} ifk_attn_args;

/* Scratch floats ifk_attention needs for these arguments. */
size_t ifk_attention_scratch(int n, int nk, int H, int Hkv, int Dh);
void ifk_attention(const ifk_attn_args *a, float *scratch);

/* ---- naive references (kernels_ref.c): the truth the fast kernels are tested against ------- */

void ifk_ref_matmul(float *Y, const float *X, const float *W, int T, int in, int out);
void ifk_ref_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps);
void ifk_ref_softmax(float *x, int n);
void ifk_ref_swiglu(float *a, const float *b, size_t n);
/* rotates x(T, nh*Dh) at positions pos[t] (+offset) straight from the definition, in double */
void ifk_ref_rope(float *x, int ld, int T, int nh, int Dh, ifk_rope_style style, const int *pos, long offset,
                  const double *inv_freq);
void ifk_ref_attention(const ifk_attn_args *a);

#endif
