/* store_maint.h — looking after a store folder: full verification, removing what a crash left
 * behind, wiping for --force, and the lock that keeps two cache jobs off one store. Local. */
#ifndef IFK_STORE_MAINT_H
#define IFK_STORE_MAINT_H

#include "manifest.h"
#include "status.h"

/* Checks the catalog (ifk_manifest_verify: every commit record against its checksum), re-reads
 * every dataset of every document (checksums, shapes, attributes against the catalog) and loads
 * every index segment. Calls report(msg, ctx) once per problem; returns the
 * number of problems in *bad. */
ifk_status ifk_store_verify(const char *dir, void (*report)(const char *msg, void *ctx), void *ctx, int *bad);
/* Removes files a crash left behind: *.tmp, and shard and index segment files the catalog does
 * not list. O(files in the folder * log N), no list held in memory. */
ifk_status ifk_store_clean(const ifk_manifest *m, int *removed);
/* Removes the manifest, catalog, index segments and every shard (for --force); other files are
 * left alone. */
ifk_status ifk_store_wipe(const char *dir);
/* Takes an exclusive lock on dir/.lock (released by the kernel if the process dies). */
ifk_status ifk_store_lock(const char *dir, int *fd);
/* For cache --no-lock: IFK_OK when the lock is free (taken and let go at once) or the file system
 * has no locks; when another job holds it, IFK_ERR_IO naming its pid ("--no-lock does not
 * override a lock that is held"). Local. */
ifk_status ifk_store_lock_probe(const char *dir);
void ifk_store_unlock(int fd);

#endif
