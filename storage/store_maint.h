/* store_maint.h — looking after a store folder: full verification, removing what a crash left
 * behind, wiping for --force, and the lock that keeps two cache jobs off one store. Local. */
#ifndef IFK_STORE_MAINT_H
#define IFK_STORE_MAINT_H

#include "manifest.h"
#include "status.h"

/* Re-reads every dataset of every document (checksums, shapes, attributes against the manifest)
 * and loads the index when there is one. Calls report(msg, ctx) once per problem; returns the
 * number of problems in *bad. */
ifk_status ifk_store_verify(const char *dir, void (*report)(const char *msg, void *ctx), void *ctx, int *bad);
/* Removes files a crash left behind: *.tmp and shard files the manifest does not list. */
ifk_status ifk_store_clean(const ifk_manifest *m, int *removed);
/* Removes the manifest, index and every shard (for --force); other files are left alone. */
ifk_status ifk_store_wipe(const char *dir);
/* Takes an exclusive lock on dir/.lock (released by the kernel if the process dies). */
ifk_status ifk_store_lock(const char *dir, int *fd);
void ifk_store_unlock(int fd);

#endif
