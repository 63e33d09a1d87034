/* dtype.h — the element types a KV store holds (f16, bf16, f32) and the f32 <-> 16-bit
 * conversions. Engine floor: no HDF5 here (storage/h5util.c maps these to HDF5 types). Local,
 * allocation-free.
 *
 * IEEE binary16 and bfloat16 travel as raw little-endian bits; f32 -> 16-bit rounds to nearest
 * even, keeps inf and NaN (quieted), and flushes nothing (f16 subnormals are produced). The 16-bit
 * side may be unaligned (it can point straight into a mapped file). */
#ifndef IFK_DTYPE_H
#define IFK_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum { IFK_DT_F16 = 0, IFK_DT_BF16 = 1, IFK_DT_F32 = 2 } ifk_dtype;

/* "f16", "bf16", "f32" */
const char *ifk_dtype_name(ifk_dtype d);
/* IFK_ERR_ARG naming s when it is none of the three names. */
ifk_status ifk_dtype_parse(const char *s, ifk_dtype *d);
/* Bytes per element: 2 or 4. */
size_t ifk_dtype_size(ifk_dtype d);

/* n elements, dst and src not overlapping. */
void ifk_f32_to_f16(void *dst, const float *src, size_t n);
void ifk_f16_to_f32(float *dst, const void *src, size_t n);
void ifk_f32_to_bf16(void *dst, const float *src, size_t n);
void ifk_bf16_to_f32(float *dst, const void *src, size_t n);

/* naive references, bit by bit from the IEEE 754 definitions (no compiler half type): the truth
 * the conversions above are tested against */
uint16_t ifk_ref_f32_to_f16(float x);
float ifk_ref_f16_to_f32(uint16_t h);
uint16_t ifk_ref_f32_to_bf16(float x);

#endif
