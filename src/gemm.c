/* gemm.c — the one place that calls BLAS and oneDNN. Every matrix product of the engine comes through here.
 *
 * Two backends: OpenBLAS (always built; the portable path) and, when configured with
 * -DINFOFLOW_ONEDNN=ON, oneDNN's matmul primitive. A oneDNN primitive is created once per call shape
 * (transposes, sizes, leading dimensions, alpha, beta, weight dtype) and kept in a small cache; its
 * memory objects are reused with new data handles each call. A shape oneDNN refuses falls back to
 * OpenBLAS (f32), so no call is ever dropped. Not thread-safe: call from one thread (the engine does). */
#include "kernels.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef IFK_HAVE_ONEDNN
#include <dnnl.h>
#endif

#ifdef IFK_HAVE_ONEDNN
static ifk_gemm_backend backend_ = IFK_GEMM_ONEDNN;
#else
static ifk_gemm_backend backend_ = IFK_GEMM_OPENBLAS;
#endif

static void blas_gemm_(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc) {
    if (M == 1) {
        /* row vector a(K) times op(B): y(N) = op(B)^T a. With B row-major (K,N) that is B^T a
         * (CblasTrans); with B stored (N,K) and tb set it is B a (CblasNoTrans). */
        if (tb)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

/* products with M N K below this go to OpenBLAS on every backend (tests set 0 to reach oneDNN) */
static double small_mnk_ = 32768.0;
void ifk_gemm_set_small(double mnk) { small_mnk_ = mnk; }

#ifdef IFK_HAVE_ONEDNN
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, wdt, adt;
    float alpha, beta;
    int ok;                 /* 0: oneDNN refused this shape, the caller falls back */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    char impl[48];
} prim_entry_;

enum { CACHE_N_ = 256 };
static prim_entry_ cache_[CACHE_N_];
static int cache_len_, cache_next_;
static dnnl_engine_t eng_;
static dnnl_stream_t stream_;
static int dnnl_broken_; /* engine creation failed: OpenBLAS only */
static long dnnl_creates_;

static void entry_free_(prim_entry_ *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

static void dnnl_release_(void) {
    for (int i = 0; i < cache_len_; i++) entry_free_(&cache_[i]);
    cache_len_ = cache_next_ = 0;
    if (stream_) dnnl_stream_destroy(stream_);
    if (eng_) dnnl_engine_destroy(eng_);
    stream_ = NULL, eng_ = NULL;
}

static int dnnl_init_(void) {
    if (eng_) return 1;
    if (dnnl_broken_) return 0;
    if (dnnl_engine_create(&eng_, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream_, eng_, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_broken_ = 1;
        return 0;
    }
    atexit(dnnl_release_);
    return 1;
}

/* A row-major (rows, cols) matrix with leading dimension ld, or its transpose when t is set. */
static void md_(dnnl_memory_desc_t *md, int rows, int cols, int ld, int t, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols}, strides = {t ? 1 : ld, t ? ld : 1};
    dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

static void entry_build_(prim_entry_ *e) {
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_creates_++;
    md_(&amd, e->M, e->K, e->lda, e->ta, e->adt ? dnnl_bf16 : dnnl_f32);
    md_(&bmd, e->K, e->N, e->ldb, e->tb, e->wdt == 1 ? dnnl_bf16 : e->wdt == 2 ? dnnl_f16 : dnnl_f32);
    md_(&cmd, e->M, e->N, e->ldc, 0, dnnl_f32);
    if (dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd) != dnnl_success) return;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return;
    int fail = 0;
    if (e->alpha != 1.0f) fail |= dnnl_primitive_attr_set_output_scales(attr, 1, 0, &e->alpha) != dnnl_success;
    if (e->beta != 0.0f) {
        fail |= dnnl_post_ops_create(&po) != dnnl_success;
        if (!fail) fail |= dnnl_post_ops_append_sum(po, e->beta) != dnnl_success;
        if (!fail) fail |= dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    }
    if (!fail && dnnl_primitive_desc_create(&pd, &desc, attr, eng_, NULL) == dnnl_success) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
        /* oneDNN's reference matmul is a scalar loop (bf16 on a CPU without AVX-512): OpenBLAS is faster */
        if (strncmp(e->impl, "ref", 3) && dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
            dnnl_memory_create(&e->a, &amd, eng_, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&e->b, &bmd, eng_, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&e->c, &cmd, eng_, DNNL_MEMORY_NONE) == dnnl_success)
            e->ok = 1;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
}

/* The cached primitive of this shape, built on first use; NULL when oneDNN cannot run it. */
static prim_entry_ *entry_get_(int ta, int tb, int M, int N, int K, float alpha, int lda, int ldb, float beta, int ldc,
                               int wdt, int adt) {
    if (!dnnl_init_()) return NULL;
    for (int i = 0; i < cache_len_; i++) {
        prim_entry_ *e = &cache_[i];
        if (e->M == M && e->N == N && e->K == K && e->ta == ta && e->tb == tb && e->lda == lda && e->ldb == ldb &&
            e->ldc == ldc && e->alpha == alpha && e->beta == beta && e->wdt == wdt && e->adt == adt)
            return e->ok ? e : NULL;
    }
    prim_entry_ *e;
    if (cache_len_ < CACHE_N_) {
        e = &cache_[cache_len_++];
    } else { /* full: replace round-robin */
        e = &cache_[cache_next_];
        cache_next_ = (cache_next_ + 1) % CACHE_N_;
        entry_free_(e);
    }
    *e = (prim_entry_){.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
                       .alpha = alpha, .beta = beta, .wdt = wdt, .adt = adt};
    entry_build_(e);
    return e->ok ? e : NULL;
}

static int dnnl_run_(prim_entry_ *e, const void *A, const void *B, float *C) {
    dnnl_memory_set_data_handle_v2(e->a, (void *)A, stream_);
    dnnl_memory_set_data_handle_v2(e->b, (void *)B, stream_);
    dnnl_memory_set_data_handle_v2(e->c, C, stream_);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    if (dnnl_primitive_execute(e->prim, stream_, 3, args) != dnnl_success) return 0;
    return dnnl_stream_wait(stream_) == dnnl_success;
}
#endif

void ifk_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef IFK_HAVE_ONEDNN
    /* M == 1 is a memory-bound GEMV: OpenBLAS's sgemv reads the weights at the machine's bandwidth;
     * tiny products cost less than oneDNN's OpenMP fork-join: OpenBLAS too */
    if (backend_ == IFK_GEMM_ONEDNN && M > 1 && K > 0 && (double)M * N * K >= small_mnk_) {
        prim_entry_ *e = entry_get_(ta, tb, M, N, K, alpha, lda, ldb, beta, ldc, 0, 0);
        if (e && dnnl_run_(e, A, B, C)) return;
    }
#endif
    blas_gemm_(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ifk_gemm_once(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    blas_gemm_(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ifk_matmul(float *Y, const float *X, const float *W, int T, int in, int out) {
    ifk_gemm(0, 1, T, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
}

/* ---- weights in their stored dtype ------------------------------------------------------------ */

size_t ifk_wdtype_size(ifk_wdtype t) { return t == IFK_W_F32 ? 4 : 2; }
const char *ifk_wdtype_name(ifk_wdtype t) { return t == IFK_W_BF16 ? "bf16" : t == IFK_W_F16 ? "f16" : "f32"; }
int ifk_wdtype_parse(const char *s, ifk_wdtype *t) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, ifk_wdtype_name((ifk_wdtype)i))) {
            *t = (ifk_wdtype)i;
            return 0;
        }
    return -1;
}
void ifk_weights_from_f32(void *dst, ifk_wdtype t, const float *src, size_t n) {
    if (t == IFK_W_BF16) ifk_f32_to_bf16(dst, src, n);
    else if (t == IFK_W_F16) ifk_f32_to_f16(dst, src, n);
    else memcpy(dst, src, sizeof(float) * n);
}
void ifk_weights_to_f32(float *dst, ifk_wdtype t, const void *src, size_t n) {
    if (t == IFK_W_BF16) ifk_bf16_to_f32(dst, src, n);
    else if (t == IFK_W_F16) ifk_f16_to_f32(dst, src, n);
    else memcpy(dst, src, sizeof(float) * n);
}

/* "exponent all ones" on the raw bits: f32 0x7f800000, bf16 0x7f80, f16 0x7c00 */
#define NONFINITE_BLOCK_(type, mask)                                                       \
    do {                                                                                   \
        type w[1];                                                                         \
        unsigned bad = 0;                                                                  \
        for (size_t i = 0; i < len; i++) {                                                 \
            memcpy(w, (const char *)src + (j + i) * sizeof w[0], sizeof w[0]);             \
            bad |= (w[0] & (mask)) == (mask);                                              \
        }                                                                                  \
        if (!bad) break;                                                                   \
        for (size_t i = 0; i < len; i++) {                                                 \
            memcpy(w, (const char *)src + (j + i) * sizeof w[0], sizeof w[0]);             \
            if ((w[0] & (mask)) == (mask)) return j + i;                                   \
        }                                                                                  \
    } while (0)

size_t ifk_weights_nonfinite(const void *src, ifk_wdtype t, size_t n) {
    for (size_t j = 0; j < n; j += 4096) {
        const size_t len = n - j < 4096 ? n - j : 4096;
        if (t == IFK_W_F32) NONFINITE_BLOCK_(uint32_t, 0x7f800000u);
        else if (t == IFK_W_BF16) NONFINITE_BLOCK_(uint16_t, 0x7f80u);
        else NONFINITE_BLOCK_(uint16_t, 0x7c00u);
    }
    return n;
}
#undef NONFINITE_BLOCK_

/* Growing scratch of ifk_matmul_w: [0] the rounded activations, [1] widened weights / bf16 activations. */
static void *scratch_[2];
static size_t scratch_cap_[2];
static void scratch_release_(void) {
    for (int i = 0; i < 2; i++) free(scratch_[i]), scratch_[i] = NULL, scratch_cap_[i] = 0;
}
static void *scratch_get_(int i, size_t bytes) {
    if (bytes <= scratch_cap_[i]) return scratch_[i];
    void *p = realloc(scratch_[i], bytes);
    if (!p) return NULL;
    if (!scratch_[0] && !scratch_[1]) atexit(scratch_release_);
    scratch_[i] = p, scratch_cap_[i] = bytes;
    return p;
}

enum { WBLOCK_ = 128 }; /* weight rows widened at a time on the fallback path */

void ifk_matmul_w(float *Y, const float *X, const void *W, ifk_wdtype t, int T, int in, int out) {
    if (t == IFK_W_F32) {
        ifk_matmul(Y, X, W, T, in, out);
        return;
    }
    if (T <= 0 || out <= 0) return;
    const size_t nx = (size_t)T * in;
#ifdef IFK_HAVE_ONEDNN
    if (t == IFK_W_BF16 && T > 1 && backend_ == IFK_GEMM_ONEDNN && (double)T * in * out >= small_mnk_) {
        prim_entry_ *e = entry_get_(0, 1, T, out, in, 1.0f, in, in, 0.0f, out, 1, 1);
        void *xb = e ? scratch_get_(1, 2 * nx) : NULL;
        if (xb) {
            ifk_f32_to_bf16(xb, X, nx);
            if (dnnl_run_(e, xb, W, Y)) return;
        }
    }
#endif
    const float *Xr = X;
    if (t == IFK_W_BF16) { /* round the GEMM input to bf16, as the bf16 primitive does */
        float *xr = scratch_get_(0, sizeof(float) * nx);
        if (!xr) goto oom;
        for (size_t i = 0; i < nx; i += 1024) { /* f32 -> bf16 -> f32, 1024 at a time */
            const size_t m = nx - i < 1024 ? nx - i : 1024;
            uint16_t tmp[1024];
            ifk_f32_to_bf16(tmp, X + i, m);
            ifk_bf16_to_f32(xr + i, tmp, m);
        }
        Xr = xr;
    }
    if (T == 1) {
        ifk_gemv_w(Y, Xr, W, t, in, out);
        return;
    }
    float *wb = scratch_get_(1, sizeof(float) * (size_t)WBLOCK_ * in);
    if (!wb) goto oom;
    for (int o0 = 0; o0 < out; o0 += WBLOCK_) {
        const int n = out - o0 < WBLOCK_ ? out - o0 : WBLOCK_;
        ifk_weights_to_f32(wb, t, (const unsigned char *)W + 2 * (size_t)o0 * in, (size_t)n * in);
        ifk_gemm(0, 1, T, n, in, 1.0f, Xr, in, wb, in, 0.0f, Y + o0, out);
    }
    return;
oom: /* no scratch: the reference loop still gives the right numbers */
    ifk_ref_matmul_w(Y, X, W, t, T, in, out);
}

const char *ifk_matmul_w_impl(ifk_wdtype t, int T, int in, int out) {
    if (t == IFK_W_F32) return ifk_gemm_impl(0, 1, T, out, in);
    if (T == 1) return t == IFK_W_BF16 ? "gemv:bf16" : "gemv:f16";
#ifdef IFK_HAVE_ONEDNN
    if (t == IFK_W_BF16 && backend_ == IFK_GEMM_ONEDNN && (double)T * in * out >= small_mnk_) {
        prim_entry_ *e = entry_get_(0, 1, T, out, in, 1.0f, in, in, 0.0f, out, 1, 1);
        if (e) return e->impl;
    }
#endif
    return t == IFK_W_BF16 ? "widen-bf16+sgemm" : "widen-f16+sgemm";
}

int ifk_gemm_set_backend(ifk_gemm_backend b) {
#ifdef IFK_HAVE_ONEDNN
    if (b == IFK_GEMM_ONEDNN || b == IFK_GEMM_OPENBLAS) {
        backend_ = b;
        return 0;
    }
#else
    if (b == IFK_GEMM_OPENBLAS) {
        backend_ = b;
        return 0;
    }
#endif
    return -1;
}
ifk_gemm_backend ifk_gemm_get_backend(void) { return backend_; }
const char *ifk_gemm_backend_name(ifk_gemm_backend b) { return b == IFK_GEMM_ONEDNN ? "onednn" : "openblas"; }

const char *ifk_gemm_impl(int ta, int tb, int M, int N, int K) {
#ifdef IFK_HAVE_ONEDNN
    if (backend_ == IFK_GEMM_ONEDNN && M > 1 && (double)M * N * K >= small_mnk_) {
        prim_entry_ *e = entry_get_(ta, tb, M, N, K, 1.0f, ta ? M : K, tb ? K : N, 0.0f, N, 0, 0);
        if (e) return e->impl;
    }
#else
    (void)ta, (void)tb, (void)N, (void)K;
#endif
    return M == 1 ? "openblas:sgemv" : "openblas:sgemm";
}

long ifk_gemm_primitives_created(void) {
#ifdef IFK_HAVE_ONEDNN
    return dnnl_creates_;
#else
    return 0;
#endif
}

/* OpenBLAS extensions, declared in its cblas.h */
void ifk_blas_set_threads(int n) {
    /* 0: OpenBLAS's own count (OPENBLAS_NUM_THREADS or the cores), which OpenMP then follows: left
     * alone, libgomp takes the cores of the process's affinity mask, so an unbound single process
     * and a bound rank ran oneDNN on other thread counts than the one recorded in the shards */
    if (n <= 0) n = openblas_get_num_threads();
    if (n <= 0) return;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n); /* the store reader's parallel loops and oneDNN follow the same budget */
#endif
}
int ifk_blas_threads(void) { return openblas_get_num_threads(); }
int ifk_gemm_serial_begin(void) {
    const int n = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    return n;
}
void ifk_gemm_serial_end(int saved) {
    if (saved > 1) openblas_set_num_threads(saved);
}
const char *ifk_blas_config(void) { return openblas_get_config(); }
