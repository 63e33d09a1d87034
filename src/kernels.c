/* kernels.c — fast elementwise kernels and attention. References live in kernels_ref.c. */
#include "kernels.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* kernels.c is built with -fno-trapping-math so that the clamps in exp_poly_ become selects and the
 * loops vectorize. */
#include "clones.h"

/* ---- exp ------------------------------------------------------------------------------------ */

/* exp(x) = 2^n exp(r), n = round(x log2 e), |r| <= ln2/2, Cephes' degree-6 polynomial for exp(r).
 * Written branch-free on plain floats/ints so that gcc vectorizes the loop; inputs below -87.3
 * (including -inf) give exactly 0, which the attention mask relies on. */
static inline float exp_poly_(float x) {
    const float hi = 88.3762626647949f, lo = -87.3365447504019f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding and subtracting it rounds to nearest */
    float n = (xc * 1.44269504088896341f + magic) - magic;
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int e = ((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    float y = p * scale;
    return x < lo ? 0.0f : y;
}

IFK_CLONES void ifk_vexp(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = exp_poly_(x[i]);
}

/* ---- RMSNorm, softmax, SwiGLU ---------------------------------------------------------------- */

void ifk_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * D;
        float *ot = out + (size_t)t * D;
        double ss = 0.0;
        for (int i = 0; i < D; i++) ss += (double)xt[i] * xt[i];
        float s = (float)(1.0 / sqrt(ss / D + eps));
        for (int i = 0; i < D; i++) ot[i] = w[i] * (s * xt[i]);
    }
}

static inline float sum_(const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

IFK_CLONES void ifk_softmax(float *x, int n) {
    if (n <= 0) return;
    float mx[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) mx[k] = x[i + k] > mx[k] ? x[i + k] : mx[k];
    float m = -INFINITY;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int k = 0; k < 8; k++) m = mx[k] > m ? mx[k] : m;
    if (m == -INFINITY) {
        memset(x, 0, sizeof(float) * (size_t)n);
        return;
    }
    for (i = 0; i < n; i++) x[i] = exp_poly_(x[i] - m);
    float inv = 1.0f / sum_(x, n);
    for (i = 0; i < n; i++) x[i] *= inv;
}

IFK_CLONES void ifk_swiglu(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i];
        a[i] = v / (1.0f + exp_poly_(-v)) * b[i];
    }
}

/* ---- RoPE --------------------------------------------------------------------------------- */

void ifk_rope_table(float *cos_t, float *sin_t, const int *pos, int T, long offset, const double *inv_freq,
                    int half_dim) {
    for (int t = 0; t < T; t++) {
        double p = (double)((pos ? pos[t] : 0) + offset);
        for (int i = 0; i < half_dim; i++) {
            double a = p * inv_freq[i];
            cos_t[(size_t)t * half_dim + i] = (float)cos(a);
            sin_t[(size_t)t * half_dim + i] = (float)sin(a);
        }
    }
}

void ifk_rope_apply(float *x, int ld, int T, int nh, int Dh, ifk_rope_style style, const float *cos_t,
                    const float *sin_t) {
    const int half = Dh / 2;
    for (int t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
        for (int h = 0; h < nh; h++) {
            float *xh = x + (size_t)t * ld + (size_t)h * Dh;
            if (style == IFK_ROPE_INTERLEAVED) {
                for (int i = 0; i < half; i++) {
                    float a = xh[2 * i], b = xh[2 * i + 1];
                    xh[2 * i] = a * c[i] - b * s[i];
                    xh[2 * i + 1] = a * s[i] + b * c[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float a = xh[i], b = xh[i + half];
                    xh[i] = a * c[i] - b * s[i];
                    xh[i + half] = b * c[i] + a * s[i];
                }
            }
        }
    }
}

/* ---- attention -------------------------------------------------------------------------- */

/* Query rows per block; a block stacks the H/Hkv query heads of one KV head, so that each
 * (block, KV head) is one GEMM for the scores and one for the output. */
#define ATT_ROWS 256

static int block_rows_(int n, int G) {
    int qb = ATT_ROWS / G;
    if (qb < 1) qb = 1;
    return qb < n ? qb : n;
}

size_t ifk_attention_scratch(int n, int nk, int H, int Hkv, int Dh) {
    int G = H / Hkv;
    size_t rows = (size_t)G * block_rows_(n > 0 ? n : 1, G);
    return rows * (2 * (size_t)Dh + (size_t)(nk > 0 ? nk : 1));
}

/* The keys block [i0, i0+tq) must look at: those up to the last one visible to any of its queries. */
static int block_keys_(const ifk_attn_args *a, int i0, int tq) {
    int maxq = a->qpos[i0];
    for (int r = 1; r < tq; r++) maxq = a->qpos[i0 + r] > maxq ? a->qpos[i0 + r] : maxq;
    if (!a->kpos) return maxq + 1 < a->nk ? maxq + 1 : a->nk;
    int nke = a->nk;
    while (nke > 0 && a->kpos[nke - 1] > maxq) nke--;
    return nke;
}

/* Scores, mask and softmax of one (query block, KV head) task into S (G*tq, nke), Q staged in Qg. */
static void task_scores_(const ifk_attn_args *a, int i0, int tq, int nke, int g, float *Qg, float *S) {
    const int G = a->H / a->Hkv, Dh = a->Dh;
    const float scale = 1.0f / sqrtf((float)Dh);
    const float *Kg = a->k + (size_t)g * a->kstride * Dh;
    for (int hh = 0; hh < G; hh++)
        for (int r = 0; r < tq; r++)
            memcpy(Qg + ((size_t)hh * tq + r) * Dh, a->q + (size_t)(i0 + r) * a->ldq + (size_t)(g * G + hh) * Dh,
                   sizeof(float) * Dh);
    ifk_gemm_once(0, 1, G * tq, nke, Dh, scale, Qg, Dh, Kg, Dh, 0.0f, S, nke);
    for (int hh = 0; hh < G; hh++)
        for (int r = 0; r < tq; r++) {
            float *row = S + ((size_t)hh * tq + r) * nke;
            const int qp = a->qpos[i0 + r];
            if (!a->kpos) { /* visible: slots [lo, vis) */
                int vis = qp + 1 < nke ? (qp + 1 > 0 ? qp + 1 : 0) : nke;
                int lo = a->window > 0 && qp - a->window + 1 > 0 ? qp - a->window + 1 : 0;
                if (lo > vis) lo = vis;
                memset(row, 0, sizeof(float) * (size_t)lo);
                ifk_softmax(row + lo, vis - lo);
                if (vis < nke) memset(row + vis, 0, sizeof(float) * (size_t)(nke - vis));
            } else {
                const int far = a->window > 0 ? qp - a->window : INT_MIN; /* kpos <= far: out of the window */
                for (int j = 0; j < nke; j++)
                    if (a->kpos[j] > qp || a->kpos[j] <= far) row[j] = -INFINITY;
                ifk_softmax(row, nke);
            }
        }
}

/* psum rows of the block += the task's probabilities, head by head in order */
static void task_psum_(const ifk_attn_args *a, int i0, int tq, int nke, const float *S) {
    const int G = a->H / a->Hkv;
    for (int hh = 0; hh < G; hh++)
        for (int r = 0; r < tq; r++) {
            const float *row = S + ((size_t)hh * tq + r) * nke;
            float *ps = a->psum + (size_t)(i0 + r) * a->ldp;
            for (int j = 0; j < nke; j++) ps[j] += row[j];
        }
}

/* out's G head columns of KV head g for the block = S V (nke <= 0: no key visible, zeros) */
static void task_output_(const ifk_attn_args *a, int i0, int tq, int nke, int g, const float *S, float *Og) {
    const int G = a->H / a->Hkv, Dh = a->Dh;
    if (nke <= 0) {
        for (int r = 0; r < tq; r++) memset(a->out + (size_t)(i0 + r) * a->ldo + (size_t)g * G * Dh, 0, sizeof(float) * G * Dh);
        return;
    }
    ifk_gemm_once(0, 0, G * tq, Dh, nke, 1.0f, S, nke, a->v + (size_t)g * a->kstride * Dh, Dh, 0.0f, Og, Dh);
    for (int hh = 0; hh < G; hh++)
        for (int r = 0; r < tq; r++)
            memcpy(a->out + (size_t)(i0 + r) * a->ldo + (size_t)(g * G + hh) * Dh, Og + ((size_t)hh * tq + r) * Dh,
                   sizeof(float) * Dh);
}

/* One task: (block b, KV head g) of the flattened index t = b*Hkv + g, in scratch slot `slot`. With
 * psum under `ordered`, the probabilities are added in task order, so the sums do not depend on
 * the thread count. */
static void task_(const ifk_attn_args *a, int t, float *scratch, size_t per, int slot, int ordered) {
    const int G = a->H / a->Hkv, Dh = a->Dh, qb = block_rows_(a->n > 0 ? a->n : 1, G);
    const int i0 = (t / a->Hkv) * qb, g = t % a->Hkv, tq = a->n - i0 < qb ? a->n - i0 : qb;
    float *Qg = scratch + (size_t)slot * per, *Og = Qg + (size_t)G * qb * Dh, *S = Og + (size_t)G * qb * Dh;
    const int nke = block_keys_(a, i0, tq);
    if (nke > 0) task_scores_(a, i0, tq, nke, g, Qg, S);
    task_output_(a, i0, tq, nke, g, S, Og);
    /* the ordered region last: libgomp lets the next task into it only when this iteration ends
     * (GOMP_ordered_end does nothing), so anything after it would run one task at a time */
    if (a->psum && nke > 0) {
        if (ordered) {
#pragma omp ordered
            task_psum_(a, i0, tq, nke, S);
        } else {
            task_psum_(a, i0, tq, nke, S);
        }
    }
}

int ifk_attention_tasks(void) {
#ifdef _OPENMP
    const int b = ifk_blas_threads(), o = omp_get_max_threads();
    return b < o ? (b > 0 ? b : 1) : (o > 0 ? o : 1);
#else
    return 1;
#endif
}

/* Below this many flops a task costs less than waking a thread (a decode step over a few keys, the
 * BOS forward beside the KV loader): the tasks then run one after another on the caller's thread. */
#define ATT_TASK_MIN_FLOPS (1 << 20)

void ifk_attention(const ifk_attn_args *a, float *scratch) {
    const int G = a->H / a->Hkv, qb = block_rows_(a->n > 0 ? a->n : 1, G);
    const int ntask = (a->n + qb - 1) / qb * a->Hkv;
    const size_t per = (size_t)G * qb * (2 * (size_t)a->Dh + (size_t)(a->nk > 0 ? a->nk : 1));
    /* the slots reserved bound the threads, and so does the budget now (it may have dropped since
     * the state was reserved: num_threads() would override it) */
    int nth = a->tasks < ntask ? a->tasks : ntask;
    if (ifk_attention_tasks() < nth) nth = ifk_attention_tasks();
    if (4.0 * G * (a->n < qb ? a->n : qb) * a->nk * a->Dh < ATT_TASK_MIN_FLOPS) nth = 1;
    /* every GEMM single-threaded, in parallel tasks or not: the bits do not depend on the thread
     * count (OpenBLAS's sgemm rounds differently with 1 and 2 threads) */
    const int saved = ifk_gemm_serial_begin();
#ifdef _OPENMP
    /* the tasks run on OpenMP's threads, oneDNN's too: one thread pool, not two spinning against
     * each other */
    if (nth > 1 && a->psum) {
#pragma omp parallel for num_threads(nth) schedule(static, 1) ordered
        for (int t = 0; t < ntask; t++) task_(a, t, scratch, per, omp_get_thread_num(), 1);
    } else if (nth > 1) {
#pragma omp parallel for num_threads(nth) schedule(static, 1)
        for (int t = 0; t < ntask; t++) task_(a, t, scratch, per, omp_get_thread_num(), 0);
    } else
#endif
    {
        for (int t = 0; t < ntask; t++) task_(a, t, scratch, per, 0, 0);
    }
    ifk_gemm_serial_end(saved);
}

/* ---- weights in 2-byte dtypes: the decode GEMV and the bandwidth probe ------------------------- */

/* dot of x[n] with n bf16 weights: the widening (a 16-bit shift) is inlined so that the loop becomes
 * load-widen-FMA over 16 lanes */
IFK_CLONES static float dot_bf16_(const float *x, const unsigned char *w, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            uint16_t h;
            memcpy(&h, w + 2 * (size_t)(i + j), 2);
            uint32_t u = (uint32_t)h << 16;
            float f;
            memcpy(&f, &u, 4);
            acc[j] += x[i + j] * f;
        }
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * (size_t)i, 2);
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        s += x[i] * f;
    }
    return s;
}

/* f16: widened 256 at a time into a buffer that stays in L1 (F16C in the v3/v4 clones) */
IFK_CLONES static float dot_f16_(const float *x, const unsigned char *w, int n) {
    float buf[256], acc[16] = {0};
    for (int i0 = 0; i0 < n; i0 += 256) {
        const int m = n - i0 < 256 ? n - i0 : 256;
        ifk_f16_to_f32(buf, w + 2 * (size_t)i0, (size_t)m);
        int i = 0;
        for (; i + 16 <= m; i += 16)
            for (int j = 0; j < 16; j++) acc[j] += x[i0 + i + j] * buf[i + j];
        for (; i < m; i++) acc[i & 15] += x[i0 + i] * buf[i];
    }
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

void ifk_gemv_w(float *y, const float *x, const void *W, ifk_wdtype t, int in, int out) {
    const unsigned char *w = W;
    if (t == IFK_W_F32) {
        ifk_matmul(y, x, W, 1, in, out);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++)
        y[o] = t == IFK_W_BF16 ? dot_bf16_(x, w + 2 * (size_t)o * in, in) : dot_f16_(x, w + 2 * (size_t)o * in, in);
}

IFK_CLONES static double sum_block_(const float *x, size_t n) {
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    for (; i < n; i++) acc[i & 15] += x[i];
    double s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

double ifk_read_sum(const float *x, size_t n) {
    double s = 0;
    const size_t blk = 1 << 16;
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t b = 0; b < (n + blk - 1) / blk; b++) s += sum_block_(x + b * blk, n - b * blk < blk ? n - b * blk : blk);
    return s;
}
