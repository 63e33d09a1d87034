/* kernels.h — the numeric kernels of the forward pass, each with a naive reference (kernels_ref.c).
 *
 * Dimension legend used in every shape comment of the engine:
 *   T   rows in a batch (tokens)          D   model dim          F   MLP hidden dim
 *   H   query heads    Hkv KV heads       Dh  head dim            V   vocab size
 *   L   layers         Nk  keys (cache slots) visible to a batch
 * Matrices are row-major. Weights are stored (out, in), so a projection is Y(T,out) = X(T,in) W^T.
 * All matrix work goes through ifk_gemm (gemm.c), the only file that includes cblas.h or dnnl.h.
 * All kernels are Local (no MPI) and allocation-free; scratch comes from the caller. */
#ifndef IFK_KERNELS_H
#define IFK_KERNELS_H

#include <stddef.h>

#include "dtype.h"

/* ---- GEMM wrapper (gemm.c) ---------------------------------------------------------------- */

/* C(M,N) = alpha * op(A) op(B) + beta * C, row-major, op = transpose when ta/tb is nonzero.
 * Backend: oneDNN matmul (one primitive per call shape, cached) when built with INFOFLOW_ONEDNN,
 * else OpenBLAS. M == 1 always goes to cblas_sgemv, which OpenBLAS 0.3.21 does not do by itself
 * (4-10x faster than its sgemm). Not thread-safe (the primitive cache): call from one thread. */
void ifk_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
/* ifk_gemm for a product whose shape rarely repeats (attention over a key count that grows every
 * decode step): OpenBLAS on every backend, so that no oneDNN primitive is built for one call. */
void ifk_gemm_once(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);
/* Y(T,out) = X(T,in) W(out,in)^T: the projection every layer makes. */
void ifk_matmul(float *Y, const float *X, const float *W, int T, int in, int out);
typedef enum { IFK_GEMM_OPENBLAS = 0, IFK_GEMM_ONEDNN = 1 } ifk_gemm_backend;
/* Selects the backend of every later ifk_gemm; -1 when it was not built in (the default is oneDNN
 * when built in). Tests and `bench` switch it to measure both in one run. */
int ifk_gemm_set_backend(ifk_gemm_backend b);
ifk_gemm_backend ifk_gemm_get_backend(void);
const char *ifk_gemm_backend_name(ifk_gemm_backend b);
/* The implementation a dense call of this shape runs ("brg:avx512_core", "openblas:sgemm"...). */
const char *ifk_gemm_impl(int ta, int tb, int M, int N, int K);
/* Products with M*N*K below mnk (default 32768, e.g. 32x32x32) run on OpenBLAS whatever the backend:
 * for them oneDNN's thread fork-join costs more than the product. Tests set 0. */
void ifk_gemm_set_small(double mnk);
/* oneDNN primitives created so far (each is created once per shape, then reused); 0 without oneDNN. */
long ifk_gemm_primitives_created(void);

/* ---- weights in their stored precision ------------------------------------------------------- */

/* Weight matrices may be kept in f32, bf16 or f16 (2 bytes per parameter: as HF checkpoints store them). */
typedef enum { IFK_W_F32 = 0, IFK_W_BF16 = 1, IFK_W_F16 = 2 } ifk_wdtype;
size_t ifk_wdtype_size(ifk_wdtype t);         /* bytes per element: 4 or 2 */
const char *ifk_wdtype_name(ifk_wdtype t);    /* "f32", "bf16", "f16" */
int ifk_wdtype_parse(const char *s, ifk_wdtype *t); /* 0, or -1 for an unknown name */
/* dst (n elements of t) = src rounded to nearest even; and back (exact). */
void ifk_weights_from_f32(void *dst, ifk_wdtype t, const float *src, size_t n);
void ifk_weights_to_f32(float *dst, ifk_wdtype t, const void *src, size_t n);
/* The index of the first NaN or infinity among src[0..n) (elements of t, any alignment), or n when
 * all are finite. One read of src: blocks of 4096 are tested with a branch-free OR of "exponent all
 * ones" (vectorizable); only a block that holds one is scanned for its index. */
size_t ifk_weights_nonfinite(const void *src, ifk_wdtype t, size_t n);
/* Y(T,out) = X(T,in) W(out,in)^T with W in dtype t, f32 accumulation. Formula (ifk_ref_matmul_w):
 * for bf16 weights X is rounded to bf16 first (the GEMM input, as oneDNN's bf16 matmul and PyTorch
 * bf16 do); for f16 weights X stays f32. Paths: f32 -> ifk_matmul; T == 1 -> ifk_gemv_w (reads 2
 * bytes per weight); bf16 with oneDNN -> its bf16 matmul (cached primitive); otherwise the weights are
 * widened block by block into scratch and go through ifk_gemm. Not thread-safe (scratch, cache). */
void ifk_matmul_w(float *Y, const float *X, const void *W, ifk_wdtype t, int T, int in, int out);
/* The implementation ifk_matmul_w runs for this shape (for the benchmarks' reports). */
const char *ifk_matmul_w_impl(ifk_wdtype t, int T, int in, int out);
/* y(out) = W(out,in) x(in), W in dtype t read once (memory bound), rows split over the OpenMP
 * threads; x used as given (ifk_matmul_w rounds it first for bf16). */
void ifk_gemv_w(float *y, const float *x, const void *W, ifk_wdtype t, int in, int out);
/* Sum of x[n] over the OpenMP threads: the STREAM-like read of the decode benchmark. */
double ifk_read_sum(const float *x, size_t n);

void ifk_blas_set_threads(int n);   /* 0: OpenBLAS's own count; OpenMP's (oneDNN's) is set to the same */
int ifk_blas_threads(void);
/* OpenBLAS single-threaded until ifk_gemm_serial_end(the returned count): for GEMMs issued from
 * inside an OpenMP parallel region (ifk_attention's tasks). Call both from one thread, outside the
 * region. The count is the process's: no other thread may run an OpenBLAS GEMM meanwhile (the
 * query's KV loader thread runs none). */
int ifk_gemm_serial_begin(void);
void ifk_gemm_serial_end(int saved);
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
    int tasks;          /* scratch holds this many task slots: up to that many (query block, KV head)
                         * tasks run at once on OpenMP threads (tiny tasks: one after another); 0 or
                         * 1: one after another. Each GEMM is single-threaded, so the result is
                         * bitwise the same for every value and every BLAS thread count */
} ifk_attn_args;

/* Scratch floats ifk_attention needs for these arguments, per task slot (args.tasks slots need
 * that many times this). */
size_t ifk_attention_scratch(int n, int nk, int H, int Hkv, int Dh);
/* The task slots worth giving ifk_attention now: the BLAS thread budget (ifk_blas_threads), at
 * most OpenMP's. */
int ifk_attention_tasks(void);
void ifk_attention(const ifk_attn_args *a, float *scratch);

/* ---- naive references (kernels_ref.c): the truth the fast kernels are tested against ------- */

void ifk_ref_matmul(float *Y, const float *X, const float *W, int T, int in, int out);
/* ifk_matmul_w's formula in double, from the bit-level conversions */
void ifk_ref_matmul_w(float *Y, const float *X, const void *W, ifk_wdtype t, int T, int in, int out);
void ifk_ref_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps);
void ifk_ref_softmax(float *x, int n);
void ifk_ref_swiglu(float *a, const float *b, size_t n);
/* rotates x(T, nh*Dh) at positions pos[t] (+offset) straight from the definition, in double */
void ifk_ref_rope(float *x, int ld, int T, int nh, int Dh, ifk_rope_style style, const int *pos, long offset,
                  const double *inv_freq);
void ifk_ref_attention(const ifk_attn_args *a);

#endif
