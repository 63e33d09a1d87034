/* shard_writer.c — writes one HDF5 shard of the KV store (shard_writer.h). */
#include "shard_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "fault.h"
#include "h5util.h"
#include "kernels.h"

struct ifk_shard_writer {
    char dir[1024], name[256], tmp[1400];
    ifk_store_params p;
    hid_t file, ftype, doc;
    int seq, n_docs;
    /* the open document */
    char *id;
    int n_chunks, cap_chunks, n_tokens;
    int *chunk_len;
    uint16_t *conv; /* grow-only conversion buffer */
    size_t conv_cap;
};

static herr_t write_root_attrs_(hid_t f, const ifk_store_params *p, int rank) {
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    herr_t r = 0;
    r |= ifk_h5_attr_str(f, "format", "infoflow-kv-shard");
    r |= ifk_h5_attr_int(f, "format_version", IFK_SHARD_FORMAT_VERSION);
    r |= ifk_h5_attr_str(f, "model_fingerprint", p->fingerprint);
    r |= ifk_h5_attr_str(f, "model_source", p->model_source);
    r |= ifk_h5_attr_int(f, "n_layers", p->n_layers);
    r |= ifk_h5_attr_int(f, "n_kv_heads", p->n_kv_heads);
    r |= ifk_h5_attr_int(f, "head_dim", p->head_dim);
    r |= ifk_h5_attr_int(f, "vocab_size", p->vocab_size);
    r |= ifk_h5_attr_dbl(f, "rope_theta", p->rope_theta);
    r |= ifk_h5_attr_str(f, "rope_style", ifk_rope_style_name(p->rope_style));
    r |= ifk_h5_attr_str(f, "rope_scaling", p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3 ? "llama3" : "none");
    if (p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        r |= ifk_h5_attr_dbl(f, "rope_scaling_factor", p->rope_scaling.factor);
        r |= ifk_h5_attr_dbl(f, "rope_scaling_low_freq_factor", p->rope_scaling.low_freq_factor);
        r |= ifk_h5_attr_dbl(f, "rope_scaling_high_freq_factor", p->rope_scaling.high_freq_factor);
        r |= ifk_h5_attr_int(f, "rope_scaling_original_max_positions", p->rope_scaling.original_max_positions);
    }
    r |= ifk_h5_attr_str(f, "dtype", ifk_dtype_name(p->dtype));
    r |= ifk_h5_attr_int(f, "chunk_tokens", p->chunk_tokens);
    r |= ifk_h5_attr_str(f, "split", ifk_split_name(p->split));
    r |= ifk_h5_attr_int(f, "prefix_len", p->prefix_len);
    r |= ifk_h5_attr_int(f, "rank", rank);
    /* K/V bits depend on the GEMM libraries' thread count (docs/storage.md): recorded for verify */
    r |= ifk_h5_attr_int(f, "blas_threads", ifk_blas_threads());
    r |= ifk_h5_attr_str(f, "created", when);
    return r < 0 ? -1 : 0;
}

ifk_status ifk_shard_create(ifk_shard_writer **wp, const char *dir, const char *name, const ifk_store_params *p,
                            int rank) {
    ifk_h5_init();
    *wp = NULL;
    ifk_status st = IFK_OK;
    ifk_shard_writer *w = ifk_calloc(1, sizeof *w, "shard writer");
    if (!w) return IFK_ERR_OOM;
    w->file = w->ftype = w->doc = H5I_INVALID_HID;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->tmp, sizeof w->tmp, "%s/%s.tmp", dir, name);
    w->p = *p;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* the 1.8 format's compact groups suit many small per-chunk groups; 1.10 tools read it */
    if (fapl >= 0) H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    ifk_h5_close(&fapl);
    IFK_H5_CHECK(st, w->file, "%s: cannot create shard", w->tmp);
    IFK_H5_CHECK(st, write_root_attrs_(w->file, p, rank), "%s: cannot write shard attributes", w->tmp);
    w->ftype = ifk_h5_dtype(p->dtype);
    IFK_H5_CHECK(st, w->ftype, "%s: cannot make the %s type", w->tmp, ifk_dtype_name(p->dtype));
    *wp = w;
    return IFK_OK;
fail:
    ifk_shard_abort(&w);
    return st;
}

int ifk_shard_ndocs(const ifk_shard_writer *w) { return w->n_docs; }
const char *ifk_shard_name(const ifk_shard_writer *w) { return w->name; }

/* A chunked dataset of shape dims with Fletcher32 (and shuffle + deflate when compress). */
static hid_t create_ds_(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims, const hsize_t *chunk,
                        const hsize_t *maxdims, int compress) {
    hid_t sp = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = H5I_INVALID_HID;
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        (!compress || (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)compress) >= 0)) &&
        H5Pset_fletcher32(dcpl) >= 0)
        ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ifk_h5_close(&dcpl);
    ifk_h5_close(&sp);
    return ds;
}

ifk_status ifk_shard_begin_doc(ifk_shard_writer *w, const char *id, const char *text, size_t text_len) {
    ifk_status st = IFK_OK;
    char g[24];
    snprintf(g, sizeof g, "/d%06d", w->seq);
    hid_t ds = H5I_INVALID_HID;
    w->doc = H5Gcreate2(w->file, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    IFK_H5_CHECK(st, w->doc, "%s: cannot create group %s", w->tmp, g);
    IFK_H5_CHECK(st, ifk_h5_attr_str(w->doc, "id", id), "%s: %s: cannot write the id", w->tmp, g);
    hsize_t dims[1] = {text_len}, chunk[1] = {text_len < 1 ? 1 : text_len > (1 << 20) ? (1 << 20) : text_len},
            maxd[1] = {H5S_UNLIMITED};
    ds = create_ds_(w->doc, "text", H5T_STD_U8LE, 1, dims, chunk, maxd, w->p.compress);
    IFK_H5_CHECK(st, ds, "%s: %s: cannot create the text dataset", w->tmp, g);
    if (text_len) IFK_H5_CHECK(st, H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), "%s: %s: cannot write the text", w->tmp, g);
    ifk_h5_close(&ds);
    free(w->id);
    w->id = strdup(id);
    w->n_chunks = w->n_tokens = 0;
    if (!w->id) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    return IFK_OK;
fail:
    ifk_h5_close(&ds);
    return st;
}

ifk_status ifk_shard_put_chunk(ifk_shard_writer *w, const int *tokens, int n, const float *k, const float *v) {
    ifk_status st = IFK_OK;
    const ifk_store_params *p = &w->p;
    char g[16];
    snprintf(g, sizeof g, "c%04d", w->n_chunks);
    hid_t cg = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    const size_t nel = (size_t)p->n_layers * p->n_kv_heads * n * p->head_dim;
    if (p->dtype != IFK_DT_F32 && nel > w->conv_cap) {
        uint16_t *c = realloc(w->conv, nel * sizeof(uint16_t));
        if (!c) return IFK_FAIL(IFK_ERR_OOM, "out of memory converting a chunk");
        w->conv = c;
        w->conv_cap = nel;
    }
    cg = H5Gcreate2(w->doc, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    IFK_H5_CHECK(st, cg, "%s: cannot create chunk group %s", w->tmp, g);
    IFK_H5_CHECK(st, ifk_h5_attr_str(cg, "doc_id", w->id) | ifk_h5_attr_int(cg, "chunk_index", w->n_chunks) | ifk_h5_attr_int(cg, "n_tokens", n) |
              ifk_h5_attr_int(cg, "rope_start", p->prefix_len) | ifk_h5_attr_int(cg, "prefix_len", p->prefix_len),
          "%s: %s: cannot write chunk attributes", w->tmp, g);
    hsize_t td[1] = {(hsize_t)n};
    ds = create_ds_(cg, "tokens", H5T_STD_I32LE, 1, td, td, NULL, 0);
    IFK_H5_CHECK(st, ds, "%s: %s: cannot create tokens", w->tmp, g);
    IFK_H5_CHECK(st, H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s: %s: cannot write tokens",
          w->tmp, g);
    ifk_h5_close(&ds);
    hsize_t dims[4] = {(hsize_t)p->n_layers, (hsize_t)p->n_kv_heads, (hsize_t)n, (hsize_t)p->head_dim};
    hsize_t chunk[4] = {1, 1, (hsize_t)n, (hsize_t)p->head_dim}; /* one (layer, KV head): a hyperslab per rank */
    const float *src[2] = {k, v};
    const char *names[2] = {"k", "v"};
    for (int i = 0; i < 2; i++) {
        const void *buf = src[i];
        if (p->dtype == IFK_DT_F16) ifk_f32_to_f16(w->conv, src[i], nel), buf = w->conv;
        else if (p->dtype == IFK_DT_BF16) ifk_f32_to_bf16(w->conv, src[i], nel), buf = w->conv;
        ds = create_ds_(cg, names[i], w->ftype, 4, dims, chunk, NULL, p->compress);
        IFK_H5_CHECK(st, ds, "%s: %s: cannot create %s", w->tmp, g, names[i]);
        if (ifk_fault("shard.write")) IFK_H5_CHECK(st, -1, "%s: %s: writing %s failed (injected fault)", w->tmp, g, names[i]);
        IFK_H5_CHECK(st, H5Dwrite(ds, p->dtype == IFK_DT_F32 ? H5T_NATIVE_FLOAT : w->ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf),
              "%s: %s: cannot write %s", w->tmp, g, names[i]);
        ifk_h5_close(&ds);
        if (i == 0) ifk_fault("shard.chunk"); /* a crash with K written and V not */
    }
    ifk_h5_close(&cg);
    if (w->n_chunks == w->cap_chunks) {
        w->cap_chunks = w->cap_chunks ? 2 * w->cap_chunks : 16;
        int *cl = realloc(w->chunk_len, sizeof(int) * w->cap_chunks);
        if (!cl) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
        w->chunk_len = cl;
    }
    w->chunk_len[w->n_chunks++] = n;
    w->n_tokens += n;
    return IFK_OK;
fail:
    ifk_h5_close(&ds);
    ifk_h5_close(&cg);
    return st;
}

ifk_status ifk_shard_end_doc(ifk_shard_writer *w, ifk_doc_rec *rec) {
    ifk_status st = IFK_OK;
    memset(rec, 0, sizeof *rec);
    IFK_H5_CHECK(st, ifk_h5_attr_int(w->doc, "n_chunks", w->n_chunks) | ifk_h5_attr_int(w->doc, "n_tokens", w->n_tokens),
          "%s: cannot write document attributes", w->tmp);
    ifk_h5_close(&w->doc);
    rec->id = w->id;
    w->id = NULL;
    rec->n_chunks = w->n_chunks;
    rec->n_tokens = w->n_tokens;
    rec->chunk_len = malloc(sizeof(int) * (size_t)(w->n_chunks > 0 ? w->n_chunks : 1));
    if (!rec->chunk_len) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    memcpy(rec->chunk_len, w->chunk_len, sizeof(int) * (size_t)w->n_chunks);
    snprintf(rec->group, sizeof rec->group, "/d%06d", w->seq++);
    w->n_docs++;
    return IFK_OK;
fail:
    return st;
}

static void writer_free_(ifk_shard_writer *w) {
    free(w->id);
    free(w->chunk_len);
    free(w->conv);
    free(w);
}

ifk_status ifk_shard_commit(ifk_shard_writer **wp) {
    ifk_shard_writer *w = *wp;
    *wp = NULL;
    ifk_status st = IFK_OK;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", w->dir, w->name);
    ifk_h5_close(&w->doc);
    ifk_h5_close(&w->ftype);
    herr_t r = H5Fclose(w->file);
    if (r < 0) {
        st = IFK_H5_FAIL("%s: closing the shard failed", w->tmp);
        unlink(w->tmp);
        if (H5Iis_valid(w->file) > 0) ifk_h5_set_broken(); /* half-closed: see h5util.h */
    }
    w->file = H5I_INVALID_HID;
    if (r >= 0) st = ifk_atomic_commit(w->tmp, path, "shard");
    writer_free_(w);
    return st;
}

void ifk_shard_abort(ifk_shard_writer **wp) {
    ifk_shard_writer *w = *wp;
    if (!w) return;
    ifk_h5_close(&w->doc);
    ifk_h5_close(&w->ftype);
    ifk_h5_close(&w->file);
    unlink(w->tmp);
    writer_free_(w);
    *wp = NULL;
}

