/* fletcher32.c — HDF5's Fletcher32 checksum, fast and reference (fletcher32.h). Built with
 * -fno-trapping-math like kernels.c. */
#include "fletcher32.h"

#include <string.h>

#include "clones.h"

/* HDF5 folds its sums with x = (x & 0xffff) + (x >> 16) every 360 words, which keeps each sum's
 * residue mod 65535 and never turns a positive sum into 0 (and it never overflows 32 bits).
 * So its result is fixed by S1 = sum(w_i) and S2 = sum((N - i) w_i) mod 65535 alone: a sum is 0
 * if every word is 0, and otherwise the representative of its residue in 1..65535. That lets us
 * sum in any order: blocks of 512 words, 16 lanes of 32 bits (no overflow: 32 terms of < 2^25
 * per lane), folded into 64-bit residues per block. */
typedef uint16_t v16h_ __attribute__((vector_size(32)));
typedef uint32_t v16w_ __attribute__((vector_size(64)));

IFK_CLONES static void block_sums_(const uint8_t *d, uint32_t t, uint64_t *a, uint64_t *b) {
    v16w_ sw = {0}, siw = {0}, idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const v16w_ step = idx * 0 + 16;
    uint32_t j = 0;
    for (; j + 16 <= t; j += 16) {
        v16h_ w;
        memcpy(&w, d + 2 * j, sizeof w);
        v16w_ x = __builtin_convertvector((v16h_)(w << 8 | w >> 8), v16w_);
        sw += x;
        siw += idx * x;
        idx += step;
    }
    uint64_t sa = 0, si = 0;
    for (; j < t; j++) {
        uint64_t x = ((uint32_t)d[2 * j] << 8) | d[2 * j + 1];
        sa += x;
        si += j * x;
    }
    for (int k = 0; k < 16; k++) sa += sw[k], si += siw[k];
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
