/* store.c — reads a KV store: the manifest, then chunks, tokens and texts from its shards, straight
 * from the mapped file when a chunk is laid out as the writer lays it out (store.h). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "fletcher32.h"
#include "h5util.h"
#include "strmap.h"
#include "sys.h"

struct ifk_store {
    ifk_manifest m;
    /* per shard, grown to the highest shard touched: */
    int cap_shards;
    char **names;  /* file names, looked up on first use */
    hid_t *files; /* opened on first use */
    const uint8_t **maps; /* read-only mappings for the direct chunk path, on first use */
    size_t *map_len;
    int n_open;         /* shard files open now (at most IFK_STORE_MAX_OPEN while none is pinned) */
    int pinned;         /* located chunk sources not yet freed: their mappings must stay */
    ifk_strmap *cached; /* document number (decimal) -> index into recs: the records touched */
    ifk_doc_rec **recs;
    int n_recs, cap_recs;
    hid_t mtype;
    double *head_bytes; /* (Hkv) read accounting */
    /* the read-rate limit (INFOFLOW_READ_DELAY_MBPS, ifk_store_set_read_rate): bytes/s, 0 for none */
    double read_bps, next_free, last_req, throttled;
    pthread_mutex_t lock;
};

double ifk_store_head_bytes(const ifk_store *store, int h) {
    return h >= 0 && h < store->m.p.n_kv_heads ? store->head_bytes[h] : 0.0;
}

ifk_status ifk_store_open(ifk_store **out, const char *dir) {
    ifk_h5_init();
    *out = NULL;
    ifk_store *store = ifk_calloc(1, sizeof *store, "store");
    if (!store) return IFK_ERR_OOM;
    pthread_mutex_init(&store->lock, NULL);
    ifk_status st = ifk_manifest_open(&store->m, dir, 0);
    if (st != IFK_OK) {
        free(store);
        return ifk_trace_at(st, __FILE__, __LINE__, __func__);
    }
    store->mtype = ifk_h5_dtype(store->m.p.dtype);
    store->head_bytes = calloc((size_t)store->m.p.n_kv_heads, sizeof(double));
    if (!store->head_bytes || store->mtype < 0 || ifk_strmap_create(&store->cached, 64) != IFK_OK) {
        ifk_store_close(&store);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory opening %s", dir);
    }
    const char *rate = getenv("INFOFLOW_READ_DELAY_MBPS");
    if (rate && *rate) {
        char *end;
        double mbps = strtod(rate, &end);
        if (*end || !(mbps > 0 && mbps < 1e12)) {
            ifk_store_close(&store);
            return IFK_FAIL(IFK_ERR_ARG, "INFOFLOW_READ_DELAY_MBPS: '%s' is not a positive rate in MB/s", rate);
        }
        store->read_bps = mbps * 1e6;
    }
    *out = store;
    return IFK_OK;
}

const ifk_manifest *ifk_store_manifest(const ifk_store *store) { return &store->m; }

ifk_status ifk_store_refresh(ifk_store *store) { return ifk_manifest_refresh(&store->m); }

int ifk_store_find(ifk_store *store, const char *id) { return ifk_manifest_find(&store->m, id); }

const ifk_doc_rec *ifk_store_doc(ifk_store *store, int d) {
    char key[16];
    int n = snprintf(key, sizeof key, "%d", d), i;
    if (ifk_strmap_get(store->cached, key, (size_t)n, &i)) return store->recs[i];
    if (store->n_recs == store->cap_recs) {
        int cap = store->cap_recs ? 2 * store->cap_recs : 64;
        ifk_doc_rec **r = realloc(store->recs, sizeof *r * (size_t)cap);
        if (!r) return IFK_FAIL(IFK_ERR_OOM, "out of memory"), NULL;
        store->recs = r, store->cap_recs = cap;
    }
    ifk_doc_rec *r = malloc(sizeof *r);
    if (!r) return IFK_FAIL(IFK_ERR_OOM, "out of memory"), NULL;
    if (ifk_manifest_get(&store->m, d, r) != IFK_OK) return free(r), NULL;
    if (ifk_strmap_put(store->cached, key, (size_t)n, store->n_recs) != IFK_OK) return ifk_doc_rec_free(r), free(r), NULL;
    store->recs[store->n_recs++] = r;
    return r;
}

void ifk_store_forget(ifk_store *store) {
    for (int i = 0; i < store->n_recs; i++) ifk_doc_rec_free(store->recs[i]), free(store->recs[i]);
    store->n_recs = 0;
    ifk_strmap_free(&store->cached);
    if (ifk_strmap_create(&store->cached, 64) != IFK_OK) store->cached = NULL;
}

void ifk_store_close(ifk_store **pstore) {
    ifk_store *store = *pstore;
    if (!store) return;
    for (int i = 0; i < store->cap_shards; i++) {
        ifk_h5_close(&store->files[i]);
        if (store->maps[i]) munmap((void *)store->maps[i], store->map_len[i]);
        free(store->names[i]);
    }
    ifk_h5_close(&store->mtype);
    free(store->names);
    free(store->files);
    free(store->maps);
    free(store->map_len);
    free(store->head_bytes);
    for (int i = 0; i < store->n_recs; i++) ifk_doc_rec_free(store->recs[i]), free(store->recs[i]);
    free(store->recs);
    ifk_strmap_free(&store->cached);
    pthread_mutex_destroy(&store->lock);
    ifk_manifest_free(&store->m);
    free(store);
    *pstore = NULL;
}

/* Grows the per-shard arrays to cover shard i and looks its name up. */
static ifk_status shard_slot_(ifk_store *store, int i) {
    IFK_CHECK_ARG(i >= 0, "%s: no shard %d", store->m.dir, i);
    if (i >= store->cap_shards) {
        int cap = i + 1 > 2 * store->cap_shards ? i + 1 : 2 * store->cap_shards;
        char **nm = realloc(store->names, sizeof *nm * (size_t)cap);
        if (nm) store->names = nm;
        hid_t *f = realloc(store->files, sizeof *f * (size_t)cap);
        if (f) store->files = f;
        const uint8_t **mp = realloc(store->maps, sizeof *mp * (size_t)cap);
        if (mp) store->maps = mp;
        size_t *ml = realloc(store->map_len, sizeof *ml * (size_t)cap);
        if (ml) store->map_len = ml;
        if (!nm || !f || !mp || !ml) return IFK_FAIL(IFK_ERR_OOM, "out of memory opening shard %d", i);
        for (int j = store->cap_shards; j < cap; j++)
            store->names[j] = NULL, store->files[j] = H5I_INVALID_HID, store->maps[j] = NULL, store->map_len[j] = 0;
        store->cap_shards = cap;
    }
    if (!store->names[i]) {
        char name[512];
        IFK_CHECK(ifk_manifest_shard(&store->m, i, name, sizeof name));
        if (!(store->names[i] = strdup(name))) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    return IFK_OK;
}

#define IFK_STORE_MAX_OPEN 32 /* shard files kept open: a pass over every shard keeps memory flat */

/* Closes every open shard file and mapping (none is in use between calls). */
static void close_shards_(ifk_store *store) {
    for (int i = 0; i < store->cap_shards; i++) {
        ifk_h5_close(&store->files[i]);
        if (store->maps[i]) munmap((void *)store->maps[i], store->map_len[i]);
        store->maps[i] = NULL;
    }
    store->n_open = 0;
}

/* Shard i, opened on first use after checking that its attributes describe this store. */
static ifk_status shard_file_(ifk_store *store, int i, hid_t *f) {
    IFK_CHECK(shard_slot_(store, i));
    if (store->files[i] >= 0) {
        *f = store->files[i];
        return IFK_OK;
    }
    /* a located source (ifk_store_locate) reads through pointers into the mappings, perhaps from a
     * loader thread: while any is alive nothing is closed, so a query over many shards keeps them all */
    pthread_mutex_lock(&store->lock);
    if (store->n_open >= IFK_STORE_MAX_OPEN && store->pinned == 0) close_shards_(store);
    pthread_mutex_unlock(&store->lock);
    char path[2048], fp[64] = "", dt[16] = "";
    snprintf(path, sizeof path, "%s/%s", store->m.dir, store->names[i]);
    struct stat sb;
    if (stat(path, &sb) != 0) return IFK_FAIL(IFK_ERR_IO, "%s: shard is missing: %s", path, strerror(errno));
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h < 0) return IFK_H5_FAIL("%s: cannot open shard (truncated or not HDF5)", path);
    long long ver = 0, nl = 0, nh = 0, hd = 0;
    if (!ifk_h5_attr_read_int(h, "format_version", &ver) || ver != IFK_SHARD_FORMAT_VERSION ||
        !ifk_h5_attr_read_str(h, "model_fingerprint", fp, sizeof fp) || !ifk_h5_attr_read_str(h, "dtype", dt, sizeof dt) ||
        !ifk_h5_attr_read_int(h, "n_layers", &nl) || !ifk_h5_attr_read_int(h, "n_kv_heads", &nh) ||
        !ifk_h5_attr_read_int(h, "head_dim", &hd)) {
        H5Fclose(h);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: shard attributes missing or of another format version", path);
    }
    if (strcmp(fp, store->m.p.fingerprint) || strcmp(dt, ifk_dtype_name(store->m.p.dtype)) || nl != store->m.p.n_layers ||
        nh != store->m.p.n_kv_heads || hd != store->m.p.head_dim) {
        H5Fclose(h);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: shard was written for another model or layout (fingerprint %s, %s, "
                        "%lld layers, %lld KV heads of %lld) than the manifest's (%s, %s, %d, %d of %d)", path, fp, dt, nl, nh,
                        hd, store->m.p.fingerprint, ifk_dtype_name(store->m.p.dtype), store->m.p.n_layers,
                        store->m.p.n_kv_heads, store->m.p.head_dim);
    }
    store->files[i] = *f = h;
    store->n_open++;
    return IFK_OK;
}

ifk_status ifk_store_check_shard(ifk_store *store, int i) {
    hid_t f;
    return shard_file_(store, i, &f);
}

int ifk_store_shard_threads(ifk_store *store, int i) {
    hid_t f;
    long long t = 0;
    if (shard_file_(store, i, &f) != IFK_OK || !ifk_h5_attr_read_int(f, "blas_threads", &t) || t < 0 || t > 1 << 20) return 0;
    return (int)t;
}

/* The shard mapped read-only (once), for reading chunks without HDF5's copies. */
static const uint8_t *shard_map_(ifk_store *store, int i, size_t *len) {
    if (!store->maps[i]) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", store->m.dir, store->names[i]);
        int fd = open(path, O_RDONLY);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0) {
            if (fd >= 0) close(fd);
            return NULL;
        }
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return NULL;
        store->maps[i] = p;
        store->map_len[i] = (size_t)sb.st_size;
    }
    *len = store->map_len[i];
    return store->maps[i];
}

/* Finds heads [h0, h0+nh) of every layer of a k or v dataset in the mapped file: each (layer, head)
 * is one HDF5 chunk of n*Dh elements followed by its Fletcher32 (little-endian), as the writer lays
 * it out; slab[l*nh + h] receives its address. Returns 1 if found, 0 if the dataset is not laid
 * out that way (compressed, foreign) so the caller reads it through HDF5, -1 on a bounds failure
 * (message set). Only addresses are asked of HDF5: checking and converting are ifk_store_load_slab's. */
static int locate_direct_(ifk_store *store, int shard, hid_t ds, int n, int h0, int nh, const unsigned char **slab,
                          const char *where, const char *name) {
    const ifk_store_params *p = &store->m.p;
    hid_t dcpl = H5Dget_create_plist(ds);
    unsigned flags;
    size_t nelm = 0;
    unsigned cd[4];
    int only_fletcher = dcpl >= 0 && H5Pget_nfilters(dcpl) == 1 &&
                        H5Pget_filter2(dcpl, 0, &flags, &nelm, cd, 0, NULL, NULL) == H5Z_FILTER_FLETCHER32;
    if (dcpl >= 0) H5Pclose(dcpl);
    size_t mlen;
    const uint8_t *map = only_fletcher ? shard_map_(store, shard, &mlen) : NULL;
    if (!map) return 0;
    const size_t bytes = (size_t)n * p->head_dim * ifk_dtype_size(p->dtype);
    for (int i = 0; i < p->n_layers * nh; i++) {
        int l = i / nh, h = h0 + i % nh;
        hsize_t off[4] = {(hsize_t)l, (hsize_t)h, 0, 0}, size = 0;
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        if (H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF) {
            H5Eclear2(H5E_DEFAULT);
            return 0;
        }
        if (mask != 0 || size != bytes + 4) return 0;
        if (addr > mlen || size > mlen - addr) {
            IFK_FAIL(IFK_ERR_FORMAT, "%s: %s (layer %d, head %d) lies past the end of the shard (truncated?)", where,
                     name, l, h);
            return -1;
        }
        slab[i] = map + addr;
    }
    return 1;
}

void ifk_chunk_src_free(ifk_chunk_src *src) {
    if (src->store) { /* unpin: its shard may be closed again */
        pthread_mutex_lock(&src->store->lock);
        src->store->pinned--;
        pthread_mutex_unlock(&src->store->lock);
    }
    free(src->slab), free(src->own), free(src->where);
    memset(src, 0, sizeof *src);
}

ifk_status ifk_store_locate(ifk_store *store, int d, int c, int h0, int nh, ifk_chunk_src *src, int *tokens) {
    const ifk_manifest *m = &store->m;
    const ifk_store_params *p = &m->p;
    memset(src, 0, sizeof *src);
    const ifk_doc_rec *r = ifk_store_doc(store, d);
    if (!r) return IFK_ERR_ARG;
    IFK_CHECK_ARG(c >= 0 && c < r->n_chunks, "no chunk %d of document %d", c, d);
    IFK_CHECK_ARG(h0 >= 0 && nh > 0 && h0 + nh <= p->n_kv_heads, "KV heads [%d, %d) outside 0..%d", h0, h0 + nh,
                  p->n_kv_heads);
    const int n = r->chunk_len[c];
    hid_t f;
    IFK_CHECK(shard_file_(store, r->shard, &f));
    ifk_status st = IFK_OK;
    char g[48], where[2400], id[IFK_ID_MAX + 2] = "", qid[96], qa[96];
    snprintf(g, sizeof g, "%s/c%04d", r->group, c);
    ifk_quote(qid, sizeof qid, r->id);
    snprintf(where, sizeof where, "%s/%s: document %s chunk %d (%s)", m->dir, store->names[r->shard], qid, c, g);
    const size_t es = ifk_dtype_size(p->dtype), nslab = (size_t)p->n_layers * nh;
    *src = (ifk_chunk_src){.n = n, .h0 = h0, .nh = nh, .n_layers = p->n_layers, .head_dim = p->head_dim,
                           .dtype = p->dtype, .check = 1, .store = store};
    pthread_mutex_lock(&store->lock);
    store->pinned++; /* the shard stays open and mapped until ifk_chunk_src_free */
    pthread_mutex_unlock(&store->lock);
    src->slab = malloc(sizeof *src->slab * 2 * nslab);
    src->where = strdup(where);
    if (!src->slab || !src->where) {
        ifk_chunk_src_free(src);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory reading %s", where);
    }
    hid_t cg = H5I_INVALID_HID, ds = H5I_INVALID_HID, fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    cg = H5Gopen2(f, g, H5P_DEFAULT);
    IFK_H5_CHECK(st, cg, "%s: group missing", where);
    long long an = -1, ac = -1;
    if (!ifk_h5_attr_read_int(cg, "n_tokens", &an) || !ifk_h5_attr_read_int(cg, "chunk_index", &ac) ||
        !ifk_h5_attr_read_str(cg, "doc_id", id, sizeof id) || an != n || ac != c || strcmp(id, r->id)) {
        ifk_quote(qa, sizeof qa, id);
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: attributes disagree with the manifest (n_tokens %lld, chunk_index %lld, "
                      "doc_id %s)", where, an, ac, qa);
        goto fail;
    }
    if (tokens) {
        ds = H5Dopen2(cg, "tokens", H5P_DEFAULT);
        hsize_t td[1] = {(hsize_t)n};
        if (ds < 0 || !ifk_h5_shape_ok(ds, 1, td, H5T_INTEGER, 4)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokens missing or not int32[%d]", where, n);
            goto fail;
        }
        IFK_H5_CHECK(st, H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s: tokens unreadable", where);
        ifk_h5_close(&ds);
    }
    hsize_t dims[4] = {(hsize_t)p->n_layers, (hsize_t)p->n_kv_heads, (hsize_t)n, (hsize_t)p->head_dim};
    hsize_t start[4] = {0, (hsize_t)h0, 0, 0}, count[4] = {(hsize_t)p->n_layers, (hsize_t)nh, (hsize_t)n, (hsize_t)p->head_dim};
    const char *names[2] = {"K", "V"}, *dsn[2] = {"k", "v"};
    int direct[2];
    for (int i = 0; i < 2; i++) {
        ds = H5Dopen2(cg, dsn[i], H5P_DEFAULT);
        if (ds < 0 || !ifk_h5_shape_ok(ds, 4, dims, H5T_FLOAT, es)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s missing or not %s[%d][%d][%d][%d]", where, names[i],
                          ifk_dtype_name(p->dtype), p->n_layers, p->n_kv_heads, n, p->head_dim);
            goto fail;
        }
        direct[i] = locate_direct_(store, r->shard, ds, n, h0, nh, src->slab + i * nslab, where, names[i]);
        if (direct[i] < 0) {
            st = IFK_ERR_FORMAT;
            goto fail;
        }
        ifk_h5_close(&ds);
    }
    if (!direct[0] || !direct[1]) {
        /* a layout of another writer: both datasets through HDF5 (which checks any filter), as stored */
        const size_t slab_bytes = (size_t)n * p->head_dim * es;
        src->own = malloc(2 * nslab * slab_bytes);
        if (!src->own) {
            st = IFK_FAIL(IFK_ERR_OOM, "out of memory reading %s", where);
            goto fail;
        }
        src->check = 0;
        for (int i = 0; i < 2; i++) {
            unsigned char *buf = (unsigned char *)src->own + i * nslab * slab_bytes;
            ds = H5Dopen2(cg, dsn[i], H5P_DEFAULT);
            fsp = ds < 0 ? -1 : H5Dget_space(ds);
            msp = H5Screate_simple(4, count, NULL);
            IFK_H5_CHECK(st, fsp < 0 || msp < 0 ? -1 : H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL),
                         "%s: cannot select heads", where);
            IFK_H5_CHECK(st, H5Dread(ds, p->dtype == IFK_DT_F32 ? H5T_NATIVE_FLOAT : store->mtype, msp, fsp, H5P_DEFAULT, buf),
                         "%s: %s unreadable", where, names[i]);
            for (size_t j = 0; j < nslab; j++) src->slab[i * nslab + j] = buf + j * slab_bytes;
            ifk_h5_close(&msp);
            ifk_h5_close(&fsp);
            ifk_h5_close(&ds);
        }
    }
    ifk_h5_close(&cg);
    for (int h = h0; h < h0 + nh; h++) store->head_bytes[h] += 2.0 * p->n_layers * n * p->head_dim * (double)es;
    return IFK_OK;
fail:
    ifk_h5_close(&msp);
    ifk_h5_close(&fsp);
    ifk_h5_close(&ds);
    ifk_h5_close(&cg);
    ifk_chunk_src_free(src);
    return st;
}

/* The read-rate limit (fault injection: a slow file system): the slabs arrive one after another
 * at rate read_bps, with one slab of read-ahead (slab i+1 is on its way while slab i is checked
 * and converted, as a file system's read-ahead does); the caller sleeps until its slab has
 * arrived. So the reader runs at the slower of the medium and its own pace, not their sum. */
static void throttle_(ifk_store *store, size_t bytes) {
    pthread_mutex_lock(&store->lock);
    const double now = ifk_now(), start = store->next_free > store->last_req ? store->next_free : store->last_req;
    store->last_req = now;
    const double until = store->next_free = start + (double)bytes / store->read_bps;
    store->throttled += until > now ? until - now : 0;
    pthread_mutex_unlock(&store->lock);
    for (double left = until - ifk_now(); left > 0; left = until - ifk_now()) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

ifk_status ifk_store_load_slab(const ifk_chunk_src *src, int kv, int l, int h, float *dst) {
    const size_t row = (size_t)src->n * src->head_dim, bytes = row * ifk_dtype_size(src->dtype);
    const unsigned char *s = src->slab[((size_t)kv * src->n_layers + l) * src->nh + h];
    if (src->store->read_bps > 0) throttle_(src->store, bytes);
    if (!src->check) {
        if (src->dtype == IFK_DT_F16) ifk_f16_to_f32(dst, s, row);
        else if (src->dtype == IFK_DT_BF16) ifk_bf16_to_f32(dst, s, row);
        else memcpy(dst, s, bytes);
        return IFK_OK;
    }
    const uint32_t stored = (uint32_t)s[bytes] | (uint32_t)s[bytes + 1] << 8 | (uint32_t)s[bytes + 2] << 16 |
                            (uint32_t)s[bytes + 3] << 24;
    if (ifk_fletcher32_to_f32(s, bytes, src->dtype, dst) != stored)
        return IFK_FAIL(IFK_ERR_H5, "%s: %s (layer %d, head %d) fails its Fletcher32 checksum", src->where,
                        kv ? "V" : "K", l, src->h0 + h);
    return IFK_OK;
}

ifk_status ifk_store_read_chunk(ifk_store *store, int d, int c, int h0, int nh, float *k, float *v, int *tokens) {
    ifk_chunk_src src;
    IFK_CHECK(ifk_store_locate(store, d, c, h0, nh, &src, tokens));
    const int nslab = src.n_layers * nh;
    const size_t row = (size_t)src.n * src.head_dim;
    int bad = -1;
    /* the slabs in parallel; a failure is found again on this thread for its message */
#pragma omp parallel for schedule(static) if (nslab > 1 && row * nslab > (1u << 17))
    for (int i = 0; i < 2 * nslab; i++) {
        const int kv = i / nslab, j = i % nslab;
        if (ifk_store_load_slab(&src, kv, j / nh, j % nh, (kv ? v : k) + (size_t)j * row) != IFK_OK) {
#pragma omp critical
            bad = bad < 0 || i < bad ? i : bad;
        }
    }
    ifk_status st = IFK_OK;
    if (bad >= 0) {
        const int kv = bad / nslab, j = bad % nslab;
        st = ifk_store_load_slab(&src, kv, j / nh, j % nh, (kv ? v : k) + (size_t)j * row);
        if (st == IFK_OK) st = IFK_FAIL(IFK_ERR_INTERNAL, "%s: a slab failed once and then read", src.where);
    }
    ifk_chunk_src_free(&src);
    return st;
}

ifk_status ifk_store_set_read_rate(ifk_store *store, double mb_per_s) {
    IFK_CHECK_ARG(mb_per_s >= 0 && mb_per_s < 1e12, "read rate %g MB/s is not a non-negative number", mb_per_s);
    store->read_bps = mb_per_s * 1e6;
    store->next_free = store->last_req = 0;
    return IFK_OK;
}

double ifk_store_throttled(const ifk_store *store) { return store->throttled; }

ifk_status ifk_store_drop_cache(ifk_store *store) {
    IFK_CHECK_ARG(store->pinned == 0, "ifk_store_drop_cache: %d located chunks still read the shards", store->pinned);
    for (int i = 0; i < store->cap_shards; i++) {
        if (!store->names[i]) continue; /* never touched */
        ifk_h5_close(&store->files[i]);
        if (store->maps[i]) munmap((void *)store->maps[i], store->map_len[i]);
        store->maps[i] = NULL;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", store->m.dir, store->names[i]);
        int fd = open(path, O_RDONLY);
        if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
        if (e) return IFK_FAIL(IFK_ERR_IO, "%s: posix_fadvise: %s", path, strerror(e));
    }
    store->n_open = 0;
    return IFK_OK;
}

ifk_status ifk_store_read_tokens(ifk_store *store, int d, int c, int *tokens) {
    const ifk_manifest *m = &store->m;
    const ifk_doc_rec *r = ifk_store_doc(store, d);
    if (!r) return IFK_ERR_ARG;
    IFK_CHECK_ARG(c >= 0 && c < r->n_chunks, "no chunk %d of document %d", c, d);
    hid_t f;
    IFK_CHECK(shard_file_(store, r->shard, &f));
    ifk_status st = IFK_OK;
    char g[48];
    snprintf(g, sizeof g, "%s/c%04d/tokens", r->group, c);
    hid_t ds = H5Dopen2(f, g, H5P_DEFAULT);
    hsize_t td[1] = {(hsize_t)r->chunk_len[c]};
    char qid[96];
    ifk_quote(qid, sizeof qid, r->id);
    if (ds < 0 || !ifk_h5_shape_ok(ds, 1, td, H5T_INTEGER, 4)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: document %s chunk %d: tokens missing or not int32[%d]", m->dir,
                      store->names[r->shard], qid, c, r->chunk_len[c]);
        goto fail;
    }
    IFK_H5_CHECK(st, H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s/%s: document %s chunk %d: "
          "tokens unreadable", m->dir, store->names[r->shard], qid, c);
fail:
    ifk_h5_close(&ds);
    return st;
}

ifk_status ifk_store_read_text(ifk_store *store, int d, char **text, size_t *len) {
    const ifk_manifest *m = &store->m;
    const ifk_doc_rec *r = ifk_store_doc(store, d);
    if (!r) return IFK_ERR_ARG;
    hid_t f;
    IFK_CHECK(shard_file_(store, r->shard, &f));
    ifk_status st = IFK_OK;
    char where[2400], id[IFK_ID_MAX + 2] = "", qid[96], qa[96];
    ifk_quote(qid, sizeof qid, r->id);
    snprintf(where, sizeof where, "%s/%s: document %s (%s)", m->dir, store->names[r->shard], qid, r->group);
    hid_t g = H5I_INVALID_HID, ds = H5I_INVALID_HID, space = H5I_INVALID_HID;
    *text = NULL;
    g = H5Gopen2(f, r->group, H5P_DEFAULT);
    IFK_H5_CHECK(st, g, "%s: group missing", where);
    if (!ifk_h5_attr_read_str(g, "id", id, sizeof id) || strcmp(id, r->id)) {
        ifk_quote(qa, sizeof qa, id);
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: its id attribute is %s", where, qa);
        goto fail;
    }
    ds = H5Dopen2(g, "text", H5P_DEFAULT);
    IFK_H5_CHECK(st, ds, "%s: text missing", where);
    space = H5Dget_space(ds);
    hsize_t n = 0;
    if (space < 0 || H5Sget_simple_extent_ndims(space) != 1 || H5Sget_simple_extent_dims(space, &n, NULL) != 1) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: text is not one-dimensional", where);
        goto fail;
    }
    *text = malloc(n + 1);
    if (!*text) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory reading %s", where);
        goto fail;
    }
    if (n) IFK_H5_CHECK(st, H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, *text), "%s: text unreadable", where);
    (*text)[n] = '\0';
    *len = n;
    ifk_h5_close(&space);
    ifk_h5_close(&ds);
    ifk_h5_close(&g);
    return IFK_OK;
fail:
    free(*text);
    *text = NULL;
    ifk_h5_close(&space);
    ifk_h5_close(&ds);
    ifk_h5_close(&g);
    return st;
}

