/* test_kernels.c — every fast kernel against its naive reference, at ragged sizes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"
#include "dtype.h"
#include "model.h"
#include "testutil.h"

static const int Ts[] = {1, 7, 65};

/* Every GEMM test runs on each backend built in (OpenBLAS always; oneDNN with INFOFLOW_ONEDNN). */
static const ifk_gemm_backend backends[] = {IFK_GEMM_OPENBLAS, IFK_GEMM_ONEDNN};
#define FOR_EACH_BACKEND(bi)                                                                                  \
    ifk_gemm_set_small(0); /* every size to the backend under test */                                      \
    for (int bi = 0; bi < 2; bi++)                                                                             \
        if (ifk_gemm_set_backend(backends[bi]) == 0)

Test(gemm, matmul_matches_reference_at_ragged_sizes) {
    const int ins[] = {8, 33, 128, 257}, outs[] = {1, 9, 130};
    FOR_EACH_BACKEND(bi) {
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 3; c++) {
                    int T = Ts[a], in = ins[b], out = outs[c];
                    float *X = tu_randvec((size_t)T * in, 1, 1), *W = tu_randvec((size_t)out * in, 2, 1);
                    float *Y = malloc(sizeof(float) * T * out), *R = malloc(sizeof(float) * T * out);
                    ifk_matmul(Y, X, W, T, in, out);
                    ifk_ref_matmul(R, X, W, T, in, out);
                    cr_assert_leq(tu_maxrel(Y, R, (size_t)T * out, 1e-3), 1e-5, "%s T=%d in=%d out=%d",
                                  ifk_gemm_backend_name(backends[bi]), T, in, out);
                    free(X), free(W), free(Y), free(R);
                }
    }
    ifk_gemm_set_backend(IFK_GEMM_ONEDNN);
}

/* ifk_gemm's four transpose cases (and its M == 1 gemv path), with leading dimensions wider than the
 * rows (as attention uses them), beta 0 and not, against explicit loops, on both backends */
Test(gemm, all_transpose_cases) {
    const int Ms[] = {1, 5, 40, 67};
    FOR_EACH_BACKEND(bi) {
        for (int mi = 0; mi < 4; mi++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int pad = 0; pad < 4; pad += 3)
                        for (int bz = 0; bz < 2; bz++) {
                            const int M = Ms[mi], N = 13 + 4 * mi, K = 21 + mi;
                            const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                            const float beta = bz ? 2.0f : 0.0f;
                            float *A = tu_randvec((size_t)(ta ? K : M) * lda, 3, 1);
                            float *B = tu_randvec((size_t)(tb ? N : K) * ldb, 4, 1);
                            float *C = tu_randvec((size_t)M * ldc, 5, 1), *R = malloc(sizeof(float) * M * ldc);
                            memcpy(R, C, sizeof(float) * M * ldc);
                            for (int i = 0; i < M; i++)
                                for (int j = 0; j < N; j++) {
                                    double s = 0;
                                    for (int k = 0; k < K; k++)
                                        s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                                             (tb ? B[j * ldb + k] : B[k * ldb + j]);
                                    R[i * ldc + j] = (float)(0.5 * s + beta * C[i * ldc + j]);
                                }
                            ifk_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C, ldc);
                            /* the padding columns of C are never written */
                            cr_assert_leq(tu_maxrel(C, R, (size_t)M * ldc, 1e-3), 1e-5, "%s M=%d ta=%d tb=%d pad=%d beta=%g",
                                          ifk_gemm_backend_name(backends[bi]), M, ta, tb, pad, beta);
                            free(A), free(B), free(C), free(R);
                        }
    }
    ifk_gemm_set_backend(IFK_GEMM_ONEDNN);
}

/* a oneDNN primitive is created once per shape and reused: a second pass over the same shapes creates none */
Test(gemm, primitives_are_created_once_per_shape) {
    ifk_gemm_set_small(0);
    if (ifk_gemm_set_backend(IFK_GEMM_ONEDNN) != 0) {
        cr_assert_eq(ifk_gemm_primitives_created(), 0); /* OpenBLAS-only build: nothing to cache */
        return;
    }
    float *X = tu_randvec(64 * 96, 6, 1), *W = tu_randvec(96 * 80, 7, 1), *Y = malloc(sizeof(float) * 64 * 80);
    for (int T = 2; T <= 64; T += 31) ifk_matmul(Y, X, W, T, 96, 80);
    long n = ifk_gemm_primitives_created();
    for (int rep = 0; rep < 3; rep++)
        for (int T = 2; T <= 64; T += 31) ifk_matmul(Y, X, W, T, 96, 80);
    cr_assert_eq(ifk_gemm_primitives_created(), n);
    free(X), free(W), free(Y);
}

/* weights kept as bf16/f16: the decode GEMV (T = 1) and the GEMM paths against ifk_ref_matmul_w, which
 * rounds the input to bf16 for bf16 weights; the only difference left is f32 accumulation order */
Test(gemm, matmul_w_2byte_weights_match_reference) {
    const int Tw[] = {1, 3, 65}, ins[] = {7, 64, 300}, outs[] = {1, 17, 129};
    FOR_EACH_BACKEND(bi) {
        for (int wt = IFK_W_BF16; wt <= IFK_W_F16; wt++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    for (int c = 0; c < 3; c++) {
                        const int T = Tw[a], in = ins[b], out = outs[c];
                        float *X = tu_randvec((size_t)T * in, 11, 1), *Wf = tu_randvec((size_t)out * in, 12, 1);
                        void *W = malloc(2 * (size_t)out * in);
                        ifk_weights_from_f32(W, (ifk_wdtype)wt, Wf, (size_t)out * in);
                        float *Y = malloc(sizeof(float) * T * out), *R = malloc(sizeof(float) * T * out);
                        ifk_matmul_w(Y, X, W, (ifk_wdtype)wt, T, in, out);
                        ifk_ref_matmul_w(R, X, W, (ifk_wdtype)wt, T, in, out);
/* floor: the typical size sqrt(in)/3 of a sum of in products of uniform [-1, 1] values
                         * (a single output can cancel to near 0, where f32 accumulation order shows) */
                        cr_assert_leq(tu_maxrel(Y, R, (size_t)T * out, sqrt(in) / 3), 1e-5, "%s %s T=%d in=%d out=%d (%s) y0 %.9g ref %.9g",
                                      ifk_gemm_backend_name(backends[bi]), ifk_wdtype_name((ifk_wdtype)wt), T, in, out,
                                      ifk_matmul_w_impl((ifk_wdtype)wt, T, in, out), Y[0], R[0]);
                        free(X), free(Wf), free(W), free(Y), free(R);
                    }
    }
    ifk_gemm_set_backend(IFK_GEMM_ONEDNN);
}

/* the bf16 formula itself: the input is rounded, so a value that bf16 cannot hold changes the result */
Test(gemm, bf16_rounds_the_gemm_input) {
    const float x[2] = {1.0f + 1.0f / 512.0f, 1.0f}, w = 1.0f; /* 1 + 2^-9 rounds to 1 in bf16 (8 bits) */
    uint16_t wb;
    ifk_weights_from_f32(&wb, IFK_W_BF16, &w, 1);
    float y[2];
    ifk_matmul_w(y, x, &wb, IFK_W_BF16, 2, 1, 1);
    cr_assert_eq(y[0], 1.0f);
    ifk_ref_matmul_w(y, x, &wb, IFK_W_BF16, 1, 1, 1);
    cr_assert_eq(y[0], 1.0f);
    uint16_t wh;
    ifk_weights_from_f32(&wh, IFK_W_F16, &w, 1);
    ifk_matmul_w(y, x, &wh, IFK_W_F16, 1, 1, 1); /* f16 weights keep the f32 input */
    cr_assert_eq(y[0], x[0]);
}

Test(kernels, read_sum_adds_every_element) {
    const size_t n = 300007;
    float *x = malloc(sizeof(float) * n);
    double want = 0;
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 9), want += (double)(i % 9);
    cr_assert_leq(fabs(ifk_read_sum(x, n) - want), 1e-6 * want);
    free(x);
}

Test(kernels, rmsnorm_matches_reference) {
    const int Ds[] = {8, 128, 1000};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            int T = Ts[a], D = Ds[b];
            float *x = tu_randvec((size_t)T * D, 7, 3), *w = tu_randvec(D, 8, 1);
            float *y = malloc(sizeof(float) * T * D), *r = malloc(sizeof(float) * T * D);
            ifk_rmsnorm(y, x, w, T, D, 1e-5f);
            ifk_ref_rmsnorm(r, x, w, T, D, 1e-5f);
            cr_assert_leq(tu_maxrel(y, r, (size_t)T * D, 1e-6), 1e-6, "T=%d D=%d", T, D);
            ifk_rmsnorm(x, x, w, T, D, 1e-5f); /* in place */
            cr_assert_leq(tu_maxrel(x, r, (size_t)T * D, 1e-6), 1e-6);
            free(x), free(w), free(y), free(r);
        }
}

Test(kernels, exp_is_accurate_and_zero_below_range) {
    float x[4096], y[4096];
    for (int i = 0; i < 4096; i++) x[i] = -87.0f + 175.0f * i / 4095.0f;
    ifk_vexp(y, x, 4096);
    for (int i = 0; i < 4096; i++) {
        double r = exp((double)x[i]);
        cr_assert_leq(fabs(y[i] - r) / r, 3e-7, "exp(%g) = %g, want %g", x[i], y[i], r);
    }
    float lo[3] = {-88.0f, -1000.0f, -INFINITY}, out[3];
    ifk_vexp(out, lo, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(out[i], 0.0f);
}

Test(kernels, softmax_matches_reference_with_masks) {
    const int ns[] = {1, 7, 65, 1000};
    for (int a = 0; a < 4; a++) {
        int n = ns[a];
        float *x = tu_randvec(n, 11 + n, 30), *r = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i += 3) x[i] = -INFINITY; /* masked keys */
        memcpy(r, x, sizeof(float) * n);
        ifk_softmax(x, n);
        ifk_ref_softmax(r, n);
        cr_assert_leq(tu_maxrel(x, r, n, 1e-3), 2e-6, "n=%d", n);
        double s = 0;
        for (int i = 0; i < n; i++) s += x[i];
        if (n > 1) cr_assert_float_eq(s, 1.0, 1e-5);
        free(x), free(r);
    }
    float all[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    ifk_softmax(all, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(all[i], 0.0f, "a fully masked row is zeros");
}

Test(kernels, swiglu_matches_reference) {
    const size_t ns[] = {1, 7, 65, 3000};
    for (int a = 0; a < 4; a++) {
        size_t n = ns[a];
        float *g = tu_randvec(n, 21, 12), *u = tu_randvec(n, 22, 2), *r = malloc(sizeof(float) * n);
        memcpy(r, g, sizeof(float) * n);
        ifk_swiglu(g, u, n);
        ifk_ref_swiglu(r, u, n);
        cr_assert_leq(tu_maxrel(g, r, n, 1e-3), 1e-6, "n=%zu", n);
        free(g), free(u), free(r);
    }
}

static double *freqs_(int Dh, double theta) {
    double *f = malloc(sizeof(double) * Dh / 2);
    ifk_config c = {.head_dim = Dh, .rope_theta = theta};
    ifk_rope_inv_freq(&c, f);
    return f;
}

Test(rope, both_conventions_match_reference) {
    const int Dhs[] = {8, 128};
    for (int style = 0; style < 2; style++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 2; b++) {
                int T = Ts[a], Dh = Dhs[b], nh = 3, ld = nh * Dh + 5; /* a padded row: strides honoured */
                double *f = freqs_(Dh, style ? 500000.0 : 10000.0);
                int *pos = malloc(sizeof(int) * T);
                for (int t = 0; t < T; t++) pos[t] = (t * 7919) % 100003;
                float *x = tu_randvec((size_t)T * ld, 31, 1), *r = malloc(sizeof(float) * T * ld);
                float *cs = malloc(sizeof(float) * T * Dh / 2), *sn = malloc(sizeof(float) * T * Dh / 2);
                memcpy(r, x, sizeof(float) * T * ld);
                ifk_rope_table(cs, sn, pos, T, 0, f, Dh / 2);
                ifk_rope_apply(x, ld, T, nh, Dh, (ifk_rope_style)style, cs, sn);
                ifk_ref_rope(r, ld, T, nh, Dh, (ifk_rope_style)style, pos, 0, f);
                cr_assert_leq(tu_maxrel(x, r, (size_t)T * ld, 1e-3), 1e-6, "style=%d T=%d Dh=%d", style, T, Dh);
                free(f), free(pos), free(x), free(r), free(cs), free(sn);
            }
}

/* The two conventions differ only by which elements pair up: permuting interleaved pairs into
 * halves must commute with the rotation (the converter of a later issue relies on it). */
Test(rope, conventions_are_a_permutation_of_each_other) {
    int Dh = 16, half = 8;
    double *f = freqs_(Dh, 10000.0);
    float *x = tu_randvec(Dh, 41, 1), y[16], cs[8], sn[8];
    for (int i = 0; i < half; i++) y[i] = x[2 * i], y[i + half] = x[2 * i + 1];
    ifk_rope_table(cs, sn, NULL, 1, 1234, f, half);
    ifk_rope_apply(x, Dh, 1, 1, Dh, IFK_ROPE_INTERLEAVED, cs, sn);
    ifk_rope_apply(y, Dh, 1, 1, Dh, IFK_ROPE_HALF, cs, sn);
    for (int i = 0; i < half; i++) {
        cr_assert_float_eq(y[i], x[2 * i], 1e-6);
        cr_assert_float_eq(y[i + half], x[2 * i + 1], 1e-6);
    }
    free(f), free(x);
}

Test(rope, llama3_scaling_keeps_high_and_divides_low_frequencies) {
    ifk_config c = {.head_dim = 128, .rope_theta = 500000.0};
    double plain[64], scaled[64];
    ifk_rope_inv_freq(&c, plain);
    c.rope_scaling = (ifk_rope_scaling){IFK_ROPE_SCALING_LLAMA3, 8.0, 1.0, 4.0, 8192};
    ifk_rope_inv_freq(&c, scaled);
    /* wavelength 2 pi / f: below 8192/4 kept, above 8192/1 divided by 8, smooth in between */
    for (int i = 0; i < 64; i++) {
        double wl = 2 * M_PI / plain[i];
        if (wl < 2048) cr_assert_eq(scaled[i], plain[i]);
        else if (wl > 8192) cr_assert_float_eq(scaled[i], plain[i] / 8, 1e-15);
        else cr_assert(scaled[i] <= plain[i] && scaled[i] >= plain[i] / 8);
    }
}

/* ---- attention ---------------------------------------------------------------------------------- */

typedef struct {
    int n, nk, H, Hkv, Dh, shuffled_keys, subset_queries, window;
} att_case;

static void check_attention_(att_case c) {
    const int ld = c.H * c.Dh + 3, kstride = c.nk + 4;
    float *q = tu_randvec((size_t)c.n * ld, 51, 1.5f);
    float *k = tu_randvec((size_t)c.Hkv * kstride * c.Dh, 52, 1.5f), *v = tu_randvec((size_t)c.Hkv * kstride * c.Dh, 53, 1);
    int *qpos = malloc(sizeof(int) * c.n), *kpos = malloc(sizeof(int) * c.nk);
    for (int j = 0; j < c.nk; j++) kpos[j] = c.shuffled_keys ? (j * 37 + 11) % c.nk : j;
    for (int i = 0; i < c.n; i++)
        qpos[i] = c.subset_queries ? (int)((long)(i + 1) * c.nk / (c.n + 1)) : c.nk - c.n + i; /* sorted subset or tail */
    float *out = calloc((size_t)c.n * ld, sizeof(float)), *ref = calloc((size_t)c.n * ld, sizeof(float));
    float *ps = calloc((size_t)c.n * c.nk, sizeof(float)), *pr = calloc((size_t)c.n * c.nk, sizeof(float));
    ifk_attn_args a = {.out = out, .ldo = ld, .q = q, .ldq = ld, .qpos = qpos, .n = c.n, .k = k, .v = v,
                       .kstride = (size_t)kstride, .kpos = c.shuffled_keys ? kpos : NULL, .nk = c.nk, .H = c.H,
                       .Hkv = c.Hkv, .Dh = c.Dh, .window = c.window, .psum = ps, .ldp = c.nk};
    float *scratch = malloc(sizeof(float) * ifk_attention_scratch(c.n, c.nk, c.H, c.Hkv, c.Dh));
    ifk_attention(&a, scratch);
    a.out = ref;
    a.psum = pr;
    ifk_ref_attention(&a);
    cr_assert_leq(tu_maxrel(out, ref, (size_t)c.n * ld, 1e-2), 2e-5, "n=%d nk=%d H=%d/%d Dh=%d shuf=%d sub=%d w=%d", c.n,
                  c.nk, c.H, c.Hkv, c.Dh, c.shuffled_keys, c.subset_queries, c.window);
    cr_assert_leq(tu_maxrel(ps, pr, (size_t)c.n * c.nk, 1e-2), 2e-5, "probability sums");
    /* each query row's probabilities sum to H (one per head) when it sees any key */
    for (int i = 0; i < c.n; i++) {
        double s = 0;
        for (int j = 0; j < c.nk; j++) s += ps[(size_t)i * c.nk + j];
        cr_assert_float_eq(s, (double)c.H, 1e-3 * c.H);
    }
    free(q), free(k), free(v), free(qpos), free(kpos), free(out), free(ref), free(ps), free(pr), free(scratch);
}

Test(attention, prefill_shapes_with_gqa_match_reference) {
    const int ns[] = {1, 7, 65}, Dhs[] = {8, 128}, heads[][2] = {{8, 4}, {4, 1}, {2, 2}};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < 3; h++)
                check_attention_((att_case){ns[a], ns[a] + 40, heads[h][0], heads[h][1], Dhs[b], 0, 0, 0});
}

Test(attention, query_subset_over_all_keys_matches_reference) {
    /* the recompute shape: n selected rows at scattered positions, all cached keys, and keys whose
     * positions are not their slot order */
    const int Dhs[] = {8, 128};
    for (int b = 0; b < 2; b++) {
        check_attention_((att_case){7, 300, 8, 4, Dhs[b], 0, 1, 0});
        check_attention_((att_case){65, 300, 8, 2, Dhs[b], 1, 1, 0});
        check_attention_((att_case){1, 65, 4, 4, Dhs[b], 1, 0, 0});
    }
}

Test(attention, sliding_window_matches_reference) {
    const int ws[] = {1, 5, 33, 1000};
    for (int i = 0; i < 4; i++) {
        check_attention_((att_case){65, 105, 8, 4, 16, 0, 0, ws[i]});       /* prefill */
        check_attention_((att_case){7, 300, 8, 2, 8, 0, 1, ws[i]});         /* recompute rows */
        check_attention_((att_case){65, 300, 4, 2, 128, 1, 1, ws[i]});      /* keys out of slot order */
        check_attention_((att_case){1, 300, 4, 4, 8, 1, 0, ws[i]});         /* decode */
    }
}

/* The window's meaning, from outside the kernel: query i under window w equals full causal
 * attention over only the keys at positions (qpos - w, qpos], copied out; positions < w see every
 * key, so they equal full attention exactly; keys out of the window get probability 0. */
Test(attention, sliding_window_is_full_attention_over_the_window) {
    const int T = 40, H = 4, Hkv = 2, Dh = 8, w = 9, ld = H * Dh;
    float *q = tu_randvec((size_t)T * ld, 61, 1.5f), *k = tu_randvec((size_t)Hkv * T * Dh, 62, 1.5f),
          *v = tu_randvec((size_t)Hkv * T * Dh, 63, 1.0f);
    int pos[40];
    for (int i = 0; i < T; i++) pos[i] = i;
    float out[40 * 32], full[40 * 32], one[32], ps[40 * 40] = {0}, scratch[16384];
    float ks[2 * 9 * 8], vs[2 * 9 * 8];
    ifk_attn_args a = {.out = out, .ldo = ld, .q = q, .ldq = ld, .qpos = pos, .n = T, .k = k, .v = v, .kstride = T,
                       .nk = T, .H = H, .Hkv = Hkv, .Dh = Dh, .window = w, .psum = ps, .ldp = T};
    cr_assert_leq(ifk_attention_scratch(T, T, H, Hkv, Dh), 16384);
    ifk_attention(&a, scratch);
    ifk_attn_args f = a;
    f.out = full, f.window = 0, f.psum = NULL;
    ifk_ref_attention(&f);
    for (int i = 0; i < T; i++) {
        const int lo = i - w + 1 > 0 ? i - w + 1 : 0, n = i - lo + 1;
        for (int g = 0; g < Hkv; g++) { /* the visible keys, compacted */
            memcpy(ks + (size_t)g * w * Dh, k + ((size_t)g * T + lo) * Dh, sizeof(float) * n * Dh);
            memcpy(vs + (size_t)g * w * Dh, v + ((size_t)g * T + lo) * Dh, sizeof(float) * n * Dh);
        }
        int qp = n - 1;
        ifk_attn_args c = {.out = one, .ldo = ld, .q = q + (size_t)i * ld, .ldq = ld, .qpos = &qp, .n = 1, .k = ks,
                           .v = vs, .kstride = w, .nk = n, .H = H, .Hkv = Hkv, .Dh = Dh};
        ifk_ref_attention(&c);
        cr_assert_leq(tu_maxrel(out + (size_t)i * ld, one, ld, 1e-2), 2e-5, "query %d", i);
        if (i < w) cr_assert_leq(tu_maxrel(out + (size_t)i * ld, full + (size_t)i * ld, ld, 1e-2), 2e-5, "query %d", i);
        else cr_assert_gt(tu_maxrel(out + (size_t)i * ld, full + (size_t)i * ld, ld, 1e-2), 1e-3, "query %d", i);
        for (int j = 0; j < T; j++)
            if (j < lo || j > i) cr_assert_eq(ps[(size_t)i * T + j], 0.0f, "query %d key %d", i, j);
    }
    free(q), free(k), free(v);
}

/* Tasks on OpenMP threads (each GEMM single-threaded) give the bits of one task after another on one
 * thread, whatever their number: prefill, recompute rows over shuffled keys, and scoring with psum.
 * (OpenBLAS's own sgemm rounds differently with 1 and 2 threads: its thread count is not used.) */
Test(attention, task_threads_do_not_change_a_bit) {
    const att_case cs[] = {{300, 300, 8, 2, 16, 0, 0, 0}, {130, 700, 16, 4, 64, 1, 1, 0}, {16, 900, 16, 4, 64, 0, 0, 0},
                           {70, 400, 4, 4, 16, 0, 1, 33}};
    for (int ci = 0; ci < 4; ci++) {
        const att_case c = cs[ci];
        const int ld = c.H * c.Dh, kstride = c.nk;
        float *q = tu_randvec((size_t)c.n * ld, 71, 1.5f), *k = tu_randvec((size_t)c.Hkv * kstride * c.Dh, 72, 1.5f),
              *v = tu_randvec((size_t)c.Hkv * kstride * c.Dh, 73, 1);
        int *qpos = malloc(sizeof(int) * c.n), *kpos = malloc(sizeof(int) * c.nk);
        for (int j = 0; j < c.nk; j++) kpos[j] = c.shuffled_keys ? (j * 37 + 11) % c.nk : j;
        for (int i = 0; i < c.n; i++) qpos[i] = c.subset_queries ? (int)((long)(i + 1) * c.nk / (c.n + 1)) : c.nk - c.n + i;
        const size_t per = ifk_attention_scratch(c.n, c.nk, c.H, c.Hkv, c.Dh);
        float *scratch = malloc(sizeof(float) * per * 3), *out[4], *ps[4];
        for (int t = 1; t <= 3; t++) {
            ifk_blas_set_threads(t == 1 ? 1 : 2); /* 2 tasks: 2 threads; 3 tasks: more slots than threads */
            out[t] = calloc((size_t)c.n * ld, sizeof(float)), ps[t] = calloc((size_t)c.n * c.nk, sizeof(float));
            ifk_attn_args a = {.out = out[t], .ldo = ld, .q = q, .ldq = ld, .qpos = qpos, .n = c.n, .k = k, .v = v,
                               .kstride = (size_t)kstride, .kpos = c.shuffled_keys ? kpos : NULL, .nk = c.nk, .H = c.H,
                               .Hkv = c.Hkv, .Dh = c.Dh, .window = c.window, .psum = ps[t], .ldp = c.nk, .tasks = t};
            ifk_attention(&a, scratch);
            cr_assert_eq(ifk_blas_threads(), t == 1 ? 1 : 2, "the BLAS thread budget is restored");
            if (t > 1) {
                cr_assert(!memcmp(out[t], out[1], sizeof(float) * c.n * ld), "case %d, %d tasks: output", ci, t);
                cr_assert(!memcmp(ps[t], ps[1], sizeof(float) * c.n * c.nk), "case %d, %d tasks: psum", ci, t);
            }
        }
        for (int t = 1; t <= 3; t++) free(out[t]), free(ps[t]);
        free(q), free(k), free(v), free(qpos), free(kpos), free(scratch);
    }
}

Test(attention, query_before_every_key_gets_zeros) {
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, k[16], v[16], out[8], scratch[256];
    for (int i = 0; i < 16; i++) k[i] = v[i] = 1.0f;
    int qpos = 0, kpos[2] = {5, 9};
    for (int i = 0; i < 8; i++) out[i] = 42.0f;
    ifk_attn_args a = {.out = out, .ldo = 8, .q = q, .ldq = 8, .qpos = &qpos, .n = 1, .k = k, .v = v, .kstride = 2,
                       .kpos = kpos, .nk = 2, .H = 1, .Hkv = 1, .Dh = 8};
    cr_assert_leq(ifk_attention_scratch(1, 2, 1, 1, 8), 256);
    ifk_attention(&a, scratch);
    for (int i = 0; i < 8; i++) cr_assert_eq(out[i], 0.0f);
}

/* ---- storage dtypes ------------------------------------------------------------------------------ */

Test(convert, f16_both_ways_match_the_bit_level_reference) {
    /* every half value decodes exactly; decode then encode is the identity (NaNs stay NaN) */
    static uint16_t all[65536], back[65536];
    static float f[65536];
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    ifk_f16_to_f32(f, all, 65536);
    for (int i = 0; i < 65536; i++) {
        float r = ifk_ref_f16_to_f32((uint16_t)i);
        if (isnan(r)) cr_assert(isnan(f[i]));
        else cr_assert_eq(f[i], r, "half 0x%04x -> %g, want %g", i, f[i], r);
    }
    ifk_f32_to_f16(back, f, 65536);
    for (int i = 0; i < 65536; i++)
        if (!isnan(f[i])) cr_assert_eq(back[i], i, "round trip of half 0x%04x", i);
    /* floats between halves, ties, overflow, underflow, subnormals */
    float xs[] = {0.0f, -0.0f, 1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65520.0f, 65519.99f, 1e6f,
                  -1e6f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-10f, 6.1e-5f, 3.0e-5f, INFINITY, -INFINITY, 0.1f, -3.14159f};
    int nx = sizeof xs / sizeof *xs;
    uint16_t h[32];
    ifk_f32_to_f16(h, xs, nx);
    for (int i = 0; i < nx; i++) cr_assert_eq(h[i], ifk_ref_f32_to_f16(xs[i]), "f16(%g)", xs[i]);
    float *r = tu_randvec(100000, 61, 70000.0f);
    uint16_t *hr = malloc(2 * 100000);
    ifk_f32_to_f16(hr, r, 100000);
    for (int i = 0; i < 100000; i++) cr_assert_eq(hr[i], ifk_ref_f32_to_f16(r[i]), "f16(%.9g)", r[i]);
    free(r), free(hr);
}

Test(convert, bf16_rounds_to_nearest_even) {
    float xs[] = {0.0f, -0.0f, 1.0f, 1.00390625f, 1.01171875f, 3.3e38f, -2.5e-39f, INFINITY, -INFINITY, NAN, 0.1f};
    int nx = sizeof xs / sizeof *xs;
    uint16_t h[16];
    float back[16];
    ifk_f32_to_bf16(h, xs, nx);
    ifk_bf16_to_f32(back, h, nx);
    for (int i = 0; i < nx; i++) {
        cr_assert_eq(h[i], ifk_ref_f32_to_bf16(xs[i]), "bf16(%g)", xs[i]);
        if (isnan(xs[i])) cr_assert(isnan(back[i]));
        else if (isinf(xs[i])) cr_assert_eq(back[i], xs[i]);
        else cr_assert_leq(fabs(back[i] - xs[i]), fabs(xs[i]) / 256.0 + 1e-40, "bf16 keeps 8 significant bits");
    }
    float big = 3.4e38f;
    ifk_f32_to_bf16(h, &big, 1);
    cr_assert_eq(h[0], 0x7F80, "beyond bf16's largest finite value rounds to inf");
    float *r = tu_randvec(100000, 62, 1e6f);
    uint16_t *hr = malloc(2 * 100000);
    ifk_f32_to_bf16(hr, r, 100000);
    for (int i = 0; i < 100000; i++) cr_assert_eq(hr[i], ifk_ref_f32_to_bf16(r[i]));
    free(r), free(hr);
}
