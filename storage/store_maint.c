/* store_maint.c — verification, crash clean-up, wipe and lock of a store folder (store_maint.h). */
#include "store_maint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm25.h"
#include "store.h"

ifk_status ifk_store_verify(const char *dir, void (*report)(const char *, void *), void *ctx, int *bad) {
    *bad = 0;
    ifk_store *store;
    IFK_CHECK(ifk_store_open(&store, dir));
    const ifk_manifest *m = ifk_store_manifest(store);
    const ifk_store_params *p = &m->p;
    int maxn = 1;
    for (int d = 0; d < m->n_docs; d++)
        for (int c = 0; c < m->docs[d].n_chunks; c++) maxn = m->docs[d].chunk_len[c] > maxn ? m->docs[d].chunk_len[c] : maxn;
    size_t nel = (size_t)p->n_layers * p->n_kv_heads * maxn * p->head_dim;
    float *k = malloc(sizeof(float) * nel), *v = malloc(sizeof(float) * nel);
    int *tok = malloc(sizeof(int) * (size_t)maxn);
    char *shard_bad = calloc((size_t)(m->n_shards > 0 ? m->n_shards : 1), 1);
    if (!k || !v || !tok || !shard_bad) {
        free(k), free(v), free(tok), free(shard_bad);
        ifk_store_close(&store);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory verifying %s", dir);
    }
    for (int d = 0; d < m->n_docs; d++) {
        const ifk_doc_rec *r = &m->docs[d];
        if (shard_bad[r->shard]) {
            (*bad)++;
            continue;
        }
        if (ifk_store_check_shard(store, r->shard) != IFK_OK) {
            shard_bad[r->shard] = 1;
            report(ifk_errmsg(), ctx);
            (*bad)++;
            continue;
        }
        char *text;
        size_t tl;
        if (ifk_store_read_text(store, d, &text, &tl) != IFK_OK) report(ifk_errmsg(), ctx), (*bad)++;
        free(text);
        for (int c = 0; c < r->n_chunks; c++) {
            if (ifk_store_read_chunk(store, d, c, 0, p->n_kv_heads, k, v, tok) != IFK_OK) {
                report(ifk_errmsg(), ctx);
                (*bad)++;
                continue;
            }
            for (int i = 0; i < r->chunk_len[c]; i++)
                if (tok[i] < 0 || tok[i] >= p->vocab_size) {
                    char msg[2600];
                    snprintf(msg, sizeof msg, "%s/%s: document \"%s\" chunk %d: token %d out of the vocabulary",
                             m->dir, m->shards[r->shard], r->id, c, tok[i]);
                    report(msg, ctx);
                    (*bad)++;
                    break;
                }
        }
    }
    /* the index, when present, must load and cover the manifest's documents */
    char ipath[2048];
    snprintf(ipath, sizeof ipath, "%s/%s", dir, IFK_INDEX);
    struct stat sb;
    if (stat(ipath, &sb) == 0) {
        ifk_bm25 *ix = NULL;
        if (ifk_bm25_load(&ix, ipath) != IFK_OK) {
            report(ifk_errmsg(), ctx);
            (*bad)++;
        }
        /* an index that covers fewer documents than the manifest is stale (an interrupted run; the
         * next cache run rebuilds it) and one that covers more was written by a running job after
         * we read the manifest: neither is damage (infoflow inspect shows the count) */
        ifk_bm25_free(&ix);
    }
    free(k), free(v), free(tok), free(shard_bad);
    ifk_store_close(&store);
    return IFK_OK;
}

static int is_store_file_(const char *n) {
    size_t l = strlen(n);
    return (!strncmp(n, "shard-", 6) && ((l > 3 && !strcmp(n + l - 3, ".h5")) || (l > 7 && !strcmp(n + l - 7, ".h5.tmp")))) ||
           !strcmp(n, IFK_MANIFEST ".tmp") || !strcmp(n, IFK_INDEX ".tmp");
}

ifk_status ifk_store_clean(const ifk_manifest *m, int *removed) {
    *removed = 0;
    DIR *d = opendir(m->dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", m->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name)) continue;
        int listed = 0;
        for (int i = 0; i < m->n_shards && !listed; i++) listed = !strcmp(m->shards[i], e->d_name);
        if (listed) continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", m->dir, e->d_name);
        if (unlink(path) == 0) (*removed)++;
    }
    closedir(d);
    return IFK_OK;
}

ifk_status ifk_store_wipe(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name) && strcmp(e->d_name, IFK_MANIFEST) && strcmp(e->d_name, IFK_INDEX)) continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return IFK_OK;
}

ifk_status ifk_store_lock(const char *dir, int *fdp) {
    char path[2048];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create the store lock: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
            close(fd);
            return IFK_FAIL(IFK_ERR_IO, "%s: the file system does not support file locks (flock: %s); run `cache` with "
                            "--no-lock if no other job uses this store meanwhile", dir, strerror(e));
        }
        char who[64] = "";
        ssize_t n = pread(fd, who, sizeof who - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        char *nl = strchr(who, '\n');
        if (nl) *nl = '\0';
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: store is in use by another cache job (%s); wait for it or stop it", dir,
                        who[0] ? who : "pid unknown");
    }
    char who[64];
    int n = snprintf(who, sizeof who, "pid %d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, who, (size_t)n, 0) < 0) { /* informative only */ }
    *fdp = fd;
    return IFK_OK;
}

void ifk_store_unlock(int fd) {
    if (fd >= 0) close(fd);
}
