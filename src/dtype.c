/* dtype.c — the store's element types: names, and f32 <-> f16/bf16 conversions with their
 * bit-level references (dtype.h). Built with -fno-trapping-math like kernels.c. */
#include "dtype.h"

#include <math.h>
#include <string.h>

#include "clones.h"

const char *ifk_dtype_name(ifk_dtype d) { return d == IFK_DT_F16 ? "f16" : d == IFK_DT_BF16 ? "bf16" : "f32"; }
size_t ifk_dtype_size(ifk_dtype d) { return d == IFK_DT_F32 ? 4 : 2; }

ifk_status ifk_dtype_parse(const char *s, ifk_dtype *d) {
    if (!strcmp(s, "f16")) *d = IFK_DT_F16;
    else if (!strcmp(s, "bf16")) *d = IFK_DT_BF16;
    else if (!strcmp(s, "f32")) *d = IFK_DT_F32;
    else return IFK_FAIL(IFK_ERR_ARG, "dtype '%s' is not one of f16, bf16, f32", s);
    return IFK_OK;
}

/* ---- conversions ----------------------------------------------------------------------------- */

#if defined(__clang__) && __clang_major__ < 15
/* clang 14 has no _Float16 on x86: the bit-level conversions (the fuzzing build uses clang) */
void ifk_f32_to_f16(void *dst, const float *src, size_t n) {
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = ifk_ref_f32_to_f16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

void ifk_f16_to_f32(float *dst, const void *src, size_t n) {
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = ifk_ref_f16_to_f32(h);
    }
}
#else
/* _Float16 casts round to nearest even (F16C's vcvtps2ph in the v3/v4 clones, libgcc otherwise). */
IFK_CLONES void ifk_f32_to_f16(void *dst, const float *src, size_t n) {
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) {
        _Float16 h = (_Float16)src[i];
        memcpy(d + 2 * i, &h, 2);
    }
}

IFK_CLONES static void f16_to_f32_(float *dst, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        _Float16 h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = (float)h;
    }
}

#if defined(__x86_64__) && !defined(IFK_NO_CLONES)
#include <immintrin.h>
/* gcc 12 does not vectorize the _Float16 casts above (one scalar vcvtph2ps per element): F16C's
 * eight at a time. vcvtph2ps is exact, and quiets NaNs as the cast does: the same bits. */
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c_(float *dst, const unsigned char *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
    f16_to_f32_(dst + i, s + 2 * i, n - i);
}
#endif

void ifk_f16_to_f32(float *dst, const void *src, size_t n) {
#if defined(__x86_64__) && !defined(IFK_NO_CLONES)
    static int f16c = -1; /* a benign race: every thread computes the same value */
    if (f16c < 0) f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    if (f16c) {
        f16_to_f32_f16c_(dst, src, n);
        return;
    }
#endif
    f16_to_f32_(dst, src, n);
}
#endif

IFK_CLONES void ifk_f32_to_bf16(void *dst, const float *src, size_t n) {
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
        int nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
        uint16_t h = (uint16_t)(nan ? (u >> 16) | 0x40u : r);
        memcpy(d + 2 * i, &h, 2);
    }
}

IFK_CLONES void ifk_bf16_to_f32(float *dst, const void *src, size_t n) {
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        memcpy(dst + i, &u, 4);
    }
}

/* ---- naive references: from the IEEE 754 definitions, no compiler half type ------------------- */

/* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits */
uint16_t ifk_ref_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t ex = (u >> 23) & 0xFFu, man = u & 0x7FFFFFu;
    if (ex == 0xFF) return sign | 0x7C00u | (man ? 0x200u | (uint16_t)(man >> 13) : 0); /* inf, quiet NaN */
    int e = (int)ex - 127 + 15;
    if (e >= 31) return sign | 0x7C00u; /* overflow to inf */
    if (e <= 0) {
        /* subnormal half: value = m * 2^-24; shift the full 24-bit significand, round to nearest even */
        if (e < -10) return sign; /* below half the smallest subnormal */
        uint32_t m = man | 0x800000u;
        int shift = 14 - e; /* 13 + (1 - e) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++; /* may carry into the exponent: still right */
    return sign | (uint16_t)q;
}

float ifk_ref_f16_to_f32(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024 + m, e - 25);
    return (float)(sign ? -v : v);
}

uint16_t ifk_ref_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (isnan(x)) return (uint16_t)((u >> 16) | 0x40u);
    uint32_t q = u >> 16, rem = u & 0xFFFFu;
    if (rem > 0x8000u || (rem == 0x8000u && (q & 1))) q++;
    return (uint16_t)q;
}
