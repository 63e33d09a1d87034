/* fletcher32.c — HDF5's Fletcher32 checksum, fast and reference (fletcher32.h). Built with
 * -fno-trapping-math like kernels.c. */
#include "fletcher32.h"

#include <string.h>

#include "clones.h"

/* HDF5 folds its sums with x = (x & 0xffff) + (x >> 16) every 360 words, which keeps each sum's
 * residue mod 65535 and never turns a positive sum into 0 (and it never overflows 32 bits).
 * So its result is fixed by S1 = sum(w_i) and S2 = sum((N - i) w_i) mod 65535 alone: a sum is 0
 * if every word is 0, and otherwise the representative of its residue in 1..65535. That lets us
 * sum in any order: blocks of 512 words, 16 lanes of 32 bits, folded into 64-bit residues per
 * block. */
typedef uint16_t v8h_ __attribute__((vector_size(16)));
typedef uint32_t v8w_ __attribute__((vector_size(32)));

IFK_CLONES static void block_sums_(const uint8_t *d, uint32_t t, uint64_t *a, uint64_t *b) {
    /* sum(j w_j) without a multiply in the loop: with lane k's words x_u (u-th step of 16) and its
     * inclusive prefix sums P_u, sum_u u x_u = U sum_u x_u - sum_u P_u (U steps), so each step only
     * adds x to sw and sw to sp; j = 16 u + k then gives 16 (U sw - sp) + k sw per lane. No
     * overflow: sp <= 32 * 32 * 65535 < 2^32. Two 8-lane halves (lanes 0-7 and 8-15): vectors
     * of 256 bits stay in registers under AVX2, where gcc spills 512-bit ones. */
    v8w_ sw0 = {0}, sw1 = {0}, sp0 = {0}, sp1 = {0};
    uint32_t j = 0, U = 0;
    for (; j + 16 <= t; j += 16, U++) {
        v8h_ w0, w1;
        memcpy(&w0, d + 2 * j, sizeof w0);
        memcpy(&w1, d + 2 * j + 16, sizeof w1);
        sw0 += __builtin_convertvector((v8h_)(w0 << 8 | w0 >> 8), v8w_);
        sw1 += __builtin_convertvector((v8h_)(w1 << 8 | w1 >> 8), v8w_);
        sp0 += sw0;
        sp1 += sw1;
    }
    uint64_t sa = 0, si = 0;
    for (int k = 0; k < 8; k++) {
        sa += (uint64_t)sw0[k] + sw1[k];
        si += 16 * ((uint64_t)U * sw0[k] - sp0[k]) + (uint64_t)k * sw0[k];
        si += 16 * ((uint64_t)U * sw1[k] - sp1[k]) + (uint64_t)(k + 8) * sw1[k];
    }
    for (; j < t; j++) {
        uint64_t x = ((uint32_t)d[2 * j] << 8) | d[2 * j + 1];
        sa += x;
        si += j * x;
    }
    *a = sa;
    *b = si;
}

/* The sums block by block; when dst is set, each block is converted to f32 right after it is
 * summed, while it is still in L1 (one pass over the source). */
static uint32_t fletcher32_(const void *data, size_t len, ifk_dtype dt, float *dst) {
    const uint8_t *d = data;
    const uint64_t M = 65535;
    const size_t es = ifk_dtype_size(dt);
    size_t words = len / 2, N = words + (len % 2);
    uint64_t s1 = 0, s2 = 0, any = 0;
    for (size_t o = 0; o < words; o += 512) {
        uint32_t t = words - o > 512 ? 512 : (uint32_t)(words - o);
        uint64_t a, b;
        block_sums_(d + 2 * o, t, &a, &b);
        if (dst) { /* 2t bytes from byte 2o: whole elements, as 1024 is a multiple of es */
            float *out = dst + 2 * o / es;
            const size_t ne = 2 * (size_t)t / es;
            if (dt == IFK_DT_F16) ifk_f16_to_f32(out, d + 2 * o, ne);
            else if (dt == IFK_DT_BF16) ifk_bf16_to_f32(out, d + 2 * o, ne);
            else memcpy(out, d + 2 * o, 2 * (size_t)t);
        }
        any |= a;
        /* this block's share of sum((N - i) w_i) is (N - o) a - sum(j w_j) */
        s1 = (s1 + a) % M;
        s2 = (s2 + ((N - o) % M) * (a % M) + M * M - b % M) % M;
    }
    if (len % 2) {
        uint64_t x = (uint64_t)d[len - 1] << 8;
        any |= x;
        s1 = (s1 + x) % M;
        s2 = (s2 + x) % M; /* the last word has weight N - (N - 1) = 1 */
    }
    if (!any) return 0;
    if (s1 == 0) s1 = M;
    if (s2 == 0) s2 = M;
    return (uint32_t)(s2 << 16 | s1);
}

uint32_t ifk_fletcher32(const void *data, size_t len) { return fletcher32_(data, len, IFK_DT_F16, NULL); }

uint32_t ifk_fletcher32_to_f32(const void *data, size_t len, ifk_dtype dt, float *dst) {
    return fletcher32_(data, len, dt, dst);
}

/* ---- naive reference ------------------------------------------------------------------------- */

/* the word-at-a-time loop as HDF5 writes it */
uint32_t ifk_ref_fletcher32(const void *data, size_t len) {
    const uint8_t *d = data;
    size_t words = len / 2;
    uint32_t s1 = 0, s2 = 0;
    while (words) {
        size_t t = words > 360 ? 360 : words;
        words -= t;
        do {
            s1 += ((uint32_t)d[0] << 8) | d[1];
            d += 2;
            s2 += s1;
        } while (--t);
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if (len % 2) {
        s1 += (uint32_t)*d << 8;
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    return (s2 << 16) | s1;
}
