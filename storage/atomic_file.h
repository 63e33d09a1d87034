/* atomic_file.h — the one way storage/ replaces a file: write NAME.tmp, fsync it, rename it over
 * NAME, fsync the folder. A crash leaves either the old file or the new one (and perhaps a stale
 * NAME.tmp, which ifk_store_clean removes). Used by the manifest, the shards and the index. Local. */
#ifndef IFK_ATOMIC_FILE_H
#define IFK_ATOMIC_FILE_H

#include <stddef.h>

#include "status.h"

/* Makes the complete file tmp the file path: fsync tmp, rename it to path, fsync path's folder.
 * On failure tmp is removed and IFK_ERR_IO names the step. fault, when not NULL, names the
 * fault-injection points "<fault>.fsync" and "<fault>.rename" (fault.h). */
ifk_status ifk_atomic_commit(const char *tmp, const char *path, const char *fault);
/* Writes data[0..len) to dir/name atomically: dir/name.tmp, then ifk_atomic_commit (fault as there). */
ifk_status ifk_write_atomic(const char *dir, const char *name, const void *data, size_t len, const char *fault);

#endif
