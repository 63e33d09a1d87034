/* fletcher32.h — HDF5's Fletcher32 (H5_checksum_fletcher32: big-endian 16-bit words, sums reduced
 * every 360 words), bit-identical: the store reader checks chunks with it without going through
 * HDF5. Local, allocation-free. */
#ifndef IFK_FLETCHER32_H
#define IFK_FLETCHER32_H

#include <stddef.h>
#include <stdint.h>

/* Computed block-wise so that it vectorizes. */
uint32_t ifk_fletcher32(const void *data, size_t len);
/* The word-at-a-time loop as HDF5 writes it: the truth ifk_fletcher32 is tested against. */
uint32_t ifk_ref_fletcher32(const void *data, size_t len);

#endif
