/* kernels_ref.c — naive references, straight from the definitions, in double where it matters.
 * Slow on purpose: the tests hold every fast kernel to these. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ifk_ref_matmul(float *Y, const float *X, const float *W, int T, int in, int out) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < in; i++) s += (double)X[(size_t)t * in + i] * W[(size_t)o * in + i];
            Y[(size_t)t * out + o] = (float)s;
        }
}

static double ref_weight_(const void *W, ifk_wdtype t, size_t i) {
    uint16_t h;
    if (t == IFK_W_F32) return ((const float *)W)[i];
    memcpy(&h, (const unsigned char *)W + 2 * i, 2);
    if (t == IFK_W_F16) return ifk_ref_f16_to_f32(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void ifk_ref_matmul_w(float *Y, const float *X, const void *W, ifk_wdtype t, int T, int in, int out) {
    for (int r = 0; r < T; r++)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < in; i++) {
                double x = X[(size_t)r * in + i];
                if (t == IFK_W_BF16) { /* the GEMM input rounded to bf16 */
                    uint32_t u = (uint32_t)ifk_ref_f32_to_bf16((float)x) << 16;
                    float f;
                    memcpy(&f, &u, 4);
                    x = f;
                }
                s += x * ref_weight_(W, t, (size_t)o * in + i);
            }
            Y[(size_t)r * out + o] = (float)s;
        }
}

void ifk_ref_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps) {
    for (int t = 0; t < T; t++) {
        double ss = 0.0;
        for (int i = 0; i < D; i++) ss += (double)x[(size_t)t * D + i] * x[(size_t)t * D + i];
        double s = 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++) out[(size_t)t * D + i] = (float)(w[i] * (x[(size_t)t * D + i] * s));
    }
}

void ifk_ref_softmax(float *x, int n) {
    double m = -INFINITY, z = 0.0;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) {
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    for (int i = 0; i < n; i++) z += exp((double)x[i] - m);
    for (int i = 0; i < n; i++) x[i] = (float)(exp((double)x[i] - m) / z);
}

void ifk_ref_swiglu(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (float)((double)a[i] / (1.0 + exp(-(double)a[i])) * b[i]);
}

void ifk_ref_rope(float *x, int ld, int T, int nh, int Dh, ifk_rope_style style, const int *pos, long offset,
                  const double *inv_freq) {
    int half = Dh / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < nh; h++) {
            float *xh = x + (size_t)t * ld + (size_t)h * Dh;
            for (int i = 0; i < half; i++) {
                double ang = (double)((pos ? pos[t] : 0) + offset) * inv_freq[i];
                int ia = style == IFK_ROPE_INTERLEAVED ? 2 * i : i;
                int ib = style == IFK_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                double a = xh[ia], b = xh[ib];
                xh[ia] = (float)(a * cos(ang) - b * sin(ang));
                xh[ib] = (float)(b * cos(ang) + a * sin(ang));
            }
        }
}

void ifk_ref_attention(const ifk_attn_args *a) {
    const int G = a->H / a->Hkv, Dh = a->Dh;
    double *p = malloc(sizeof(double) * (size_t)(a->nk > 0 ? a->nk : 1));
    if (!p) abort();
    for (int i = 0; i < a->n; i++)
        for (int h = 0; h < a->H; h++) {
            const float *q = a->q + (size_t)i * a->ldq + (size_t)h * Dh;
            const float *K = a->k + (size_t)(h / G) * a->kstride * Dh, *V = a->v + (size_t)(h / G) * a->kstride * Dh;
            double m = -INFINITY, z = 0.0;
            for (int j = 0; j < a->nk; j++) {
                int kp = a->kpos ? a->kpos[j] : j;
                if (kp > a->qpos[i] || (a->window > 0 && kp <= a->qpos[i] - a->window)) { p[j] = -INFINITY; continue; }
                double s = 0.0;
                for (int d = 0; d < Dh; d++) s += (double)q[d] * K[(size_t)j * Dh + d];
                p[j] = s / sqrt((double)Dh);
                m = p[j] > m ? p[j] : m;
            }
            for (int j = 0; j < a->nk; j++) {
                p[j] = m == -INFINITY || p[j] == -INFINITY ? 0.0 : exp(p[j] - m);
                z += p[j];
            }
            float *o = a->out + (size_t)i * a->ldo + (size_t)h * Dh;
            for (int d = 0; d < Dh; d++) {
                double s = 0.0;
                for (int j = 0; j < a->nk; j++) s += p[j] * V[(size_t)j * Dh + d];
                o[d] = z > 0 ? (float)(s / z) : 0.0f;
            }
            if (a->psum)
                for (int j = 0; j < a->nk; j++) a->psum[(size_t)i * a->ldp + j] += z > 0 ? (float)(p[j] / z) : 0.0f;
        }
    free(p);
}
