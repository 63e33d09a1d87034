/* fletcher32.h — HDF5's Fletcher32 (H5_checksum_fletcher32: big-endian 16-bit words, sums reduced
 * every 360 words), bit-identical: the store reader checks chunks with it without going through
 * HDF5. Local, allocation-free. */
#ifndef IFK_FLETCHER32_H
#define IFK_FLETCHER32_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* Computed block-wise so that it vectorizes. */
uint32_t ifk_fletcher32(const void *data, size_t len);
/* The same checksum of data[0..len), and in the same pass its len / size(dt) elements of type dt
 * converted to f32 into dst (ifk_f16_to_f32 / ifk_bf16_to_f32 / a copy: bit-identical to them);
 * len must be a whole number of elements. One read of the source instead of two. */
uint32_t ifk_fletcher32_to_f32(const void *data, size_t len, ifk_dtype dt, float *dst);
/* The word-at-a-time loop as HDF5 writes it: the truth ifk_fletcher32 is tested against. */
uint32_t ifk_ref_fletcher32(const void *data, size_t len);

#endif
