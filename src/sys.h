/* sys.h — the few operating-system facts the engine needs: a monotonic clock, the memory still
 * available, and whole-file reads. Local; no MPI, no HDF5. */
#ifndef IFK_SYS_H
#define IFK_SYS_H

#include <stddef.h>

#include "status.h"

/* Monotonic seconds. */
double ifk_now(void);

/* Bytes of memory this process may still use: MemAvailable from /proc/meminfo, or the
 * INFOFLOW_MEM_LIMIT environment variable (bytes) when set (tests). 0 if unknown. */
double ifk_mem_available(void);
/* Asks the kernel to fault in the pages of p[0..n) writable now (madvise MADV_POPULATE_WRITE,
 * whole pages inside the range); a hint: nothing happens where the kernel lacks it. */
void ifk_prefault(void *p, size_t n);

/* Hands back to the OS the whole pages inside [a, b) of a mapping (madvise MADV_DONTNEED): a private
 * file mapping reads them from the file again if touched, anonymous memory as zeros. Advice: where it
 * fails the pages stay. */
void ifk_drop_pages(const void *a, const void *b);

/* Reads the whole file at path into a malloc'd buffer with a NUL after the last byte (so text
 * parsers can take it as a string; *len excludes the NUL). Files above max_len bytes are refused.
 * Errors: IFK_ERR_IO (cannot open or read, naming the path), IFK_ERR_FORMAT (larger than
 * max_len), IFK_ERR_OOM. On failure *buf is NULL. */
ifk_status ifk_read_file(const char *path, size_t max_len, char **buf, size_t *len);

#endif
