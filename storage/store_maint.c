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
#include "store_index.h"

/* Grows a verification buffer to n elements of size es. */
static int grow_(void **p, size_t *cap, size_t n, size_t es) {
    if (n <= *cap) return 1;
    void *q = realloc(*p, n * es);
    if (!q) return 0;
    *p = q, *cap = n;
    return 1;
}

ifk_status ifk_store_verify(const char *dir, void (*report)(const char *, void *), void *ctx, int *bad) {
    *bad = 0;
    ifk_store *store;
    IFK_CHECK(ifk_store_open(&store, dir));
    const ifk_manifest *m = ifk_store_manifest(store);
    const ifk_store_params *p = &m->p;
    ifk_status st = ifk_manifest_verify(m, report, ctx, bad);
    const int n_docs = m->n_docs, n_shards = m->n_shards;
    float *k = NULL, *v = NULL;
    int *tok = NULL;
    size_t cap_k = 0, cap_v = 0, cap_t = 0;
    char *shard_bad = calloc((size_t)(n_shards > 0 ? n_shards : 1), 1);
    if (!shard_bad) st = IFK_FAIL(IFK_ERR_OOM, "out of memory verifying %s", dir);
    for (int d = 0; st == IFK_OK && d < n_docs; d++) {
        if (d % 1024 == 0) ifk_store_forget(store); /* memory stays flat over the pass */
        const ifk_doc_rec *r = ifk_store_doc(store, d);
        if (!r) {
            report(ifk_errmsg(), ctx), (*bad)++;
            continue;
        }
        if (r->shard >= n_shards || shard_bad[r->shard]) {
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
            size_t n = (size_t)r->chunk_len[c], nel = (size_t)p->n_layers * p->n_kv_heads * n * p->head_dim;
            if (!grow_((void **)&k, &cap_k, nel, sizeof *k) || !grow_((void **)&v, &cap_v, nel, sizeof *v) ||
                !grow_((void **)&tok, &cap_t, n, sizeof *tok)) {
                st = IFK_FAIL(IFK_ERR_OOM, "out of memory verifying %s", dir);
                break;
            }
            if (ifk_store_read_chunk(store, d, c, 0, p->n_kv_heads, k, v, tok) != IFK_OK) {
                report(ifk_errmsg(), ctx);
                (*bad)++;
                continue;
            }
            for (int i = 0; i < r->chunk_len[c]; i++)
                if (tok[i] < 0 || tok[i] >= p->vocab_size) {
                    char msg[2600], name[512] = "?";
                    ifk_manifest_shard(m, r->shard, name, sizeof name);
                    snprintf(msg, sizeof msg, "%s/%s: document \"%s\" chunk %d: token %d out of the vocabulary",
                             m->dir, name, r->id, c, tok[i]);
                    report(msg, ctx);
                    (*bad)++;
                    break;
                }
        }
    }
    /* the index segments: each must load and the list must cover a prefix of the documents (a
     * prefix shorter than the catalog is an interrupted run's, which the next run completes) */
    int indexed;
    if (st == IFK_OK) st = ifk_store_index_verify(m, report, ctx, bad, &indexed);
    free(k), free(v), free(tok), free(shard_bad);
    ifk_store_close(&store);
    return st;
}

static int is_store_file_(const char *n) {
    size_t l = strlen(n);
    return (!strncmp(n, "shard-", 6) && ((l > 3 && !strcmp(n + l - 3, ".h5")) || (l > 7 && !strcmp(n + l - 7, ".h5.tmp")))) ||
           ifk_store_index_file(n) || !strcmp(n, IFK_MANIFEST ".tmp") || !strcmp(n, IFK_INDEX ".tmp");
}

ifk_status ifk_store_clean(const ifk_manifest *m, int *removed) {
    *removed = 0;
    ifk_index_seg *segs;
    int n_segs;
    IFK_CHECK(ifk_manifest_segments(m, &segs, &n_segs));
    DIR *d = opendir(m->dir);
    if (!d) free(segs);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", m->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name)) continue;
        int listed = 0;
        for (int i = 0; i < n_segs && !listed; i++) listed = !strcmp(segs[i].file, e->d_name);
        if (listed || ifk_manifest_has_shard(m, e->d_name)) continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", m->dir, e->d_name);
        if (unlink(path) == 0) (*removed)++;
    }
    closedir(d);
    free(segs);
    return IFK_OK;
}

ifk_status ifk_store_wipe(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name) && strcmp(e->d_name, IFK_MANIFEST) && strcmp(e->d_name, IFK_INDEX) &&
            strncmp(e->d_name, IFK_CATALOG, strlen(IFK_CATALOG)))
            continue;
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

ifk_status ifk_store_lock_probe(const char *dir) {
    int fd = -1;
    ifk_status st = ifk_store_lock(dir, &fd);
    if (st == IFK_OK) { /* free: let it go again (the holder's pid line stays informative only) */
        ifk_store_unlock(fd);
        return IFK_OK;
    }
    if (strstr(ifk_errmsg(), "does not support file locks")) return IFK_OK; /* what --no-lock is for */
    if (strstr(ifk_errmsg(), "in use by another cache job")) {
        char m[2600];
        snprintf(m, sizeof m, "%s", ifk_errmsg());
        return IFK_FAIL(IFK_ERR_IO, "%s (--no-lock does not override a lock that is held: its clean-up would delete the "
                        "running job's files)", m);
    }
    return st;
}

void ifk_store_unlock(int fd) {
    if (fd >= 0) close(fd);
}
