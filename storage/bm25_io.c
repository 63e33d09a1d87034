/* bm25_io.c — the BM25 index as index.h5 (bm25.h): save and a strict load.
 *
 * index.h5, format_version 1 — everything sits in the root group; datasets are one-dimensional
 * and contiguous. N = documents, T = distinct terms, P = postings (sum of df).
 *
 *   attributes of /
 *     format          string (variable-length)   "infoflow-bm25"
 *     format_version  int32                      1
 *     k1              float64                    BM25 k1 (1.2)
 *     b               float64                    BM25 b (0.75)
 *     n_docs          int64                      N
 *     avg_len         float64                    mean of doc_len (0 when N = 0)
 *   datasets
 *     /doc_ids        (N)      variable-length UTF-8 strings, unique, in insertion order; a
 *                              document's index is its position here
 *     /doc_len        (N)      int32, number of terms in each document (= the sum of its tf)
 *     /terms          (T)      variable-length UTF-8 strings, distinct and non-empty, sorted
 *                              bytewise (strcmp order) so a reader can binary-search them
 *     /df             (T)      int32, documents containing each term (>= 1)
 *     /post_offsets   (T + 1)  int64, term t's postings are [post_offsets[t], post_offsets[t+1]);
 *                              post_offsets[0] = 0, post_offsets[T] = P, and
 *                              post_offsets[t+1] - post_offsets[t] = df[t]
 *     /post_docs      (P)      int32, document indices (into /doc_ids), strictly ascending within
 *                              a term
 *     /post_tf        (P)      int32, occurrences of the term in that document (>= 1)
 *
 * Integers are little-endian of exactly the stated width, floats IEEE little-endian 64-bit,
 * strings variable-length (UTF-8 when written): the reader accepts exactly what the writer writes and refuses
 * anything else (a fixed-length string, a narrower or big-endian integer, a chunked dataset) with
 * a one-line error naming the attribute or dataset. Everything listed above is checked on load,
 * together with: terms made only of analysed bytes ([a-z0-9] and >= 0x80), k1 >= 0,
 * 0 <= b <= 1, and avg_len equal, bit for bit, to the mean of doc_len as the writer computes it
 * ((double)sum / n_docs): a reader that searches the file on disk (bm25_disk.c) does not read all
 * of /doc_len and recovers the sum from avg_len. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "bm25_impl.h"
#include "h5util.h"

#define BM25_FORMAT "infoflow-bm25"
#define BM25_VERSION 1

/* ---- save ------------------------------------------------------------------------------------ */

static ifk_status put_attr_(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    ifk_status st = IFK_OK;
    IFK_H5_CHECK(st, ifk_h5_attr_write(loc, name, ftype, mtype, val), "%s: cannot write attribute '%s'", path, name);
fail:
    return st;
}

static ifk_status put_ds_(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype, size_t n,
                          const void *buf) {
    ifk_status st = IFK_OK;
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    IFK_H5_CHECK(st, sp = H5Screate_simple(1, dims, NULL), "%s: cannot create the dataspace of /%s", path, name);
    IFK_H5_CHECK(st, d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 "%s: cannot create dataset /%s", path, name);
    if (n > 0)
        IFK_H5_CHECK(st, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "%s: cannot write dataset /%s", path,
                     name);
    IFK_H5_CHECK(st, H5Dclose(d), "%s: cannot close dataset /%s", path, name);
    d = H5I_INVALID_HID;
fail:
    ifk_h5_close(&d);
    ifk_h5_close(&sp);
    return st;
}

/* The attributes and the document datasets. */
static ifk_status save_docs_(const ifk_bm25 *ix, hid_t root, hid_t str, const char *path) {
    ifk_status st = IFK_OK;
    const char *fmt = BM25_FORMAT;
    const int32_t version = BM25_VERSION;
    const int64_t n_docs = ix->n_docs;
    const double avg = ix->n_docs ? (double)ix->total_len / ix->n_docs : 0.0;
    IFK_CHECK(put_attr_(root, path, "format", str, str, &fmt));
    IFK_CHECK(put_attr_(root, path, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &version));
    IFK_CHECK(put_attr_(root, path, "k1", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &ix->k1));
    IFK_CHECK(put_attr_(root, path, "b", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &ix->b));
    IFK_CHECK(put_attr_(root, path, "n_docs", H5T_STD_I64LE, H5T_NATIVE_INT64, &n_docs));
    IFK_CHECK(put_attr_(root, path, "avg_len", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &avg));
    IFK_CHECK(put_ds_(root, path, "doc_ids", str, str, (size_t)ix->n_docs, ix->doc));
    IFK_CHECK(put_ds_(root, path, "doc_len", H5T_STD_I32LE, H5T_NATIVE_INT32, (size_t)ix->n_docs, ix->doc_len));
    return st;
}

/* The terms in bytewise order with their postings. */
static ifk_status save_terms_(const ifk_bm25 *ix, hid_t root, hid_t str, const char *path) {
    ifk_status st = IFK_OK;
    const size_t T = (size_t)ix->n_terms;
    size_t P = 0;
    for (size_t t = 0; t < T; t++) P += ix->post[t].n;
    char *const **order = ifk_malloc((T ? T : 1) * sizeof *order, "the term order");
    const char **strs = ifk_malloc((T ? T : 1) * sizeof *strs, "the terms to save");
    int32_t *df = ifk_malloc((T ? T : 1) * sizeof *df, "the counts to save");
    int64_t *off = ifk_malloc((T + 1) * sizeof *off, "the postings offsets");
    int32_t *pdocs = ifk_malloc((P ? P : 1) * sizeof *pdocs, "the postings");
    int32_t *ptf = ifk_malloc((P ? P : 1) * sizeof *ptf, "the postings");
    if (!order || !strs || !df || !off || !pdocs || !ptf) {
        st = ifk_trace_at(IFK_ERR_OOM, __FILE__, __LINE__, __func__);
        goto fail;
    }
    for (size_t t = 0; t < T; t++) order[t] = &ix->term[t];
    qsort(order, T, sizeof *order, ifk_bm25_cmp_termptr);
    off[0] = 0;
    for (size_t i = 0; i < T; i++) {
        const ifk_bm25_plist *pl = &ix->post[order[i] - ix->term];
        strs[i] = *order[i];
        df[i] = (int32_t)pl->n;
        for (size_t j = 0; j < pl->n; j++) {
            pdocs[off[i] + (int64_t)j] = pl->p[j].doc;
            ptf[off[i] + (int64_t)j] = pl->p[j].tf;
        }
        off[i + 1] = off[i] + (int64_t)pl->n;
    }
    IFK_CHECK_GOTO(st, put_ds_(root, path, "terms", str, str, T, strs), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "df", H5T_STD_I32LE, H5T_NATIVE_INT32, T, df), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, T + 1, off), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_docs", H5T_STD_I32LE, H5T_NATIVE_INT32, P, pdocs), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_tf", H5T_STD_I32LE, H5T_NATIVE_INT32, P, ptf), fail);
fail:
    free(order), free(strs), free(df), free(off), free(pdocs), free(ptf);
    return st;
}

ifk_status ifk_bm25_save(const ifk_bm25 *ix, const char *path) { return ifk_bm25_save_fault(ix, path, NULL); }

ifk_status ifk_bm25_save_fault(const ifk_bm25 *ix, const char *path, const char *fault) {
    IFK_CHECK_ARG(ix && path && *path, "bm25: save needs an index and a path");
    ifk_h5_init();
    ifk_status st = IFK_OK;
    hid_t file = H5I_INVALID_HID, root = H5I_INVALID_HID, str = H5I_INVALID_HID;
    char *tmp = ifk_malloc(strlen(path) + 5, "a file name");
    if (!tmp) return IFK_ERR_OOM;
    sprintf(tmp, "%s.tmp", path);
    IFK_H5_CHECK(st, file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "%s: cannot create %s", path, tmp);
    IFK_H5_CHECK(st, root = H5Gopen2(file, "/", H5P_DEFAULT), "%s: cannot open the root group of %s", path, tmp);
    IFK_H5_CHECK(st, str = ifk_h5_vlen_str(), "%s: cannot make a string type", path);
    IFK_CHECK_GOTO(st, save_docs_(ix, root, str, path), fail);
    IFK_CHECK_GOTO(st, save_terms_(ix, root, str, path), fail);
    ifk_h5_close(&str);
    ifk_h5_close(&root);
    IFK_H5_CHECK(st, H5Fclose(file), "%s: cannot close %s", path, tmp);
    file = H5I_INVALID_HID;
    st = ifk_atomic_commit(tmp, path, fault); /* removes tmp on failure */
    free(tmp);
    return st;
fail:
    ifk_h5_close(&str);
    ifk_h5_close(&root);
    ifk_h5_close(&file);
    unlink(tmp);
    free(tmp);
    return st;
}

/* ---- load ------------------------------------------------------------------------------------ */

#define FMTFAIL(...)                                                                \
    do {                                                                            \
        st = IFK_FAIL(IFK_ERR_FORMAT, __VA_ARGS__);                                  \
        goto fail;                                                                  \
    } while (0)

/* 1 when t is the type the writer gives that kind of value: want is a predefined little-endian
 * type, or H5T_C_S1 for a variable-length string (its character set is not checked). */
static int type_is_(hid_t t, hid_t want) {
    if (want == H5T_C_S1)
        return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
    return H5Tequal(t, want) > 0;
}

static const char *type_name_(hid_t want) {
    return want == H5T_C_S1 ? "a variable-length string"
           : H5Tequal(want, H5T_STD_I32LE) > 0 ? "int32 (little-endian)"
           : H5Tequal(want, H5T_STD_I64LE) > 0 ? "int64 (little-endian)"
                                               : "float64 (little-endian)";
}

/* Reads the scalar root attribute `name` of type want (as the writer writes it) into val: a
 * string into val[0..cap), an int32/int64 into an int64_t, a float64 into a double. */
static ifk_status get_attr_(hid_t root, const char *path, const char *name, hid_t want, void *val, size_t cap) {
    ifk_status st = IFK_OK;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    char *vs = NULL;
    htri_t ex;
    IFK_H5_CHECK(st, ex = H5Aexists(root, name), "%s: cannot look for attribute '%s'", path, name);
    if (!ex) FMTFAIL("%s: not a BM25 index: attribute '%s' is missing", path, name);
    IFK_H5_CHECK(st, a = H5Aopen(root, name, H5P_DEFAULT), "%s: cannot open attribute '%s'", path, name);
    IFK_H5_CHECK(st, ft = H5Aget_type(a), "%s: cannot get the type of attribute '%s'", path, name);
    IFK_H5_CHECK(st, sp = H5Aget_space(a), "%s: cannot get the dataspace of attribute '%s'", path, name);
    if (H5Sget_simple_extent_type(sp) != H5S_SCALAR) FMTFAIL("%s: attribute '%s' is not a scalar", path, name);
    if (!type_is_(ft, want)) FMTFAIL("%s: attribute '%s' is not %s", path, name, type_name_(want));
    if (want == H5T_C_S1) {
        IFK_H5_CHECK(st, H5Aread(a, ft, &vs), "%s: cannot read attribute '%s'", path, name);
        snprintf(val, cap, "%s", vs ? vs : "");
    } else {
        hid_t mt = want == H5T_IEEE_F64LE ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
        IFK_H5_CHECK(st, H5Aread(a, mt, val), "%s: cannot read attribute '%s'", path, name);
    }
fail:
    if (vs) H5free_memory(vs);
    ifk_h5_close(&sp);
    ifk_h5_close(&ft);
    ifk_h5_close(&a);
    return st;
}

/* Opens the one-dimensional contiguous dataset /name of type want, with its length. */
static ifk_status open_ds_(hid_t file, const char *path, const char *name, hid_t want, hid_t *out, int64_t *n) {
    ifk_status st = IFK_OK;
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    htri_t ex;
    IFK_H5_CHECK(st, ex = H5Lexists(file, name, H5P_DEFAULT), "%s: cannot look for dataset /%s", path, name);
    if (!ex) FMTFAIL("%s: not a BM25 index: dataset /%s is missing", path, name);
    IFK_H5_CHECK(st, d = H5Oopen(file, name, H5P_DEFAULT), "%s: cannot open /%s", path, name);
    if (H5Iget_type(d) != H5I_DATASET) FMTFAIL("%s: /%s is not a dataset", path, name);
    IFK_H5_CHECK(st, ft = H5Dget_type(d), "%s: cannot get the type of dataset /%s", path, name);
    if (!type_is_(ft, want)) FMTFAIL("%s: dataset /%s is not of %s", path, name, type_name_(want));
    IFK_H5_CHECK(st, dcpl = H5Dget_create_plist(d), "%s: cannot get the layout of dataset /%s", path, name);
    if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0)
        FMTFAIL("%s: dataset /%s is not contiguous and unfiltered", path, name);
    IFK_H5_CHECK(st, sp = H5Dget_space(d), "%s: cannot get the dataspace of dataset /%s", path, name);
    hsize_t dims[1];
    if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) != 1)
        FMTFAIL("%s: dataset /%s is not one-dimensional", path, name);
    if (dims[0] > (hsize_t)INT64_MAX / 16) FMTFAIL("%s: dataset /%s is impossibly long", path, name);
    *n = (int64_t)dims[0];
    *out = d;
    d = H5I_INVALID_HID;
fail:
    ifk_h5_close(&dcpl);
    ifk_h5_close(&sp);
    ifk_h5_close(&ft);
    ifk_h5_close(&d);
    return st;
}

/* calloc for n file-given entries, failing with the path and the dataset */
static ifk_status lalloc_(void **p, const char *path, const char *name, int64_t n, size_t elem) {
    if ((uint64_t)n > SIZE_MAX / elem || !(*p = calloc(n ? (size_t)n : 1, elem)))
        return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading /%s (%lld entries)", path, name, (long long)n);
    return IFK_OK;
}

/* Allocates *buf and reads all n entries of dataset d into it as memtype. */
static ifk_status read_ds_(hid_t d, const char *path, const char *name, hid_t memtype, int64_t n, size_t elem,
                           void **buf) {
    ifk_status st = IFK_OK;
    IFK_CHECK(lalloc_(buf, path, name, n, elem));
    if (n > 0)
        IFK_H5_CHECK(st, H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf), "%s: cannot read dataset /%s", path,
                     name);
fail:
    return st;
}

/* Reads the variable-length strings of d into strs[0..n) (copies, owned by the caller; NULL
 * reads as ""). */
static ifk_status read_strs_(hid_t d, const char *path, const char *name, int64_t n, char ***strs) {
    ifk_status st = IFK_OK;
    hid_t mt = H5I_INVALID_HID;
    char **raw = NULL;
    IFK_CHECK(lalloc_((void **)strs, path, name, n, sizeof **strs));
    IFK_H5_CHECK(st, mt = ifk_h5_vlen_str(), "%s: cannot make a string type", path);
    IFK_CHECK_GOTO(st, read_ds_(d, path, name, mt, n, sizeof *raw, (void **)&raw), fail);
    for (int64_t i = 0; i < n; i++)
        if (!((*strs)[i] = strdup(raw[i] ? raw[i] : ""))) {
            st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading /%s", path, name);
            goto fail;
        }
fail:
    if (raw)
        for (int64_t i = 0; i < n; i++)
            if (raw[i]) H5free_memory(raw[i]);
    free(raw);
    ifk_h5_close(&mt);
    return st;
}

const char *const ifk_bm25_ds_name[IFK_BM25_N_DS] = {"doc_ids", "doc_len", "terms", "df", "post_offsets",
                                                       "post_docs", "post_tf"};

/* What load_ has read so far; every array owned here until it moves into the index. */
typedef struct {
    ifk_bm25_file f;
    const char *path;
    int64_t N, T, P, total;
    double k1, b, avg;
    int32_t *doc_len, *df, *pdocs, *ptf;
    int64_t *off;
    char **docs, **terms;
} loading_;

/* The root attributes, then every dataset opened with its type and length checked. */
static ifk_status file_header_(ifk_bm25_file *L) {
    ifk_status st = IFK_OK;
    const char *path = L->path;
    hid_t root = H5I_INVALID_HID;
    char format[64];
    int64_t version = 0, n_docs = 0;
    IFK_H5_CHECK(st, root = H5Gopen2(L->file, "/", H5P_DEFAULT), "%s: cannot open the root group", path);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "format", H5T_C_S1, format, sizeof format), fail);
    if (strcmp(format, BM25_FORMAT) != 0)
        FMTFAIL("%s: not a BM25 index: format is '%s', expected '%s'", path, format, BM25_FORMAT);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "format_version", H5T_STD_I32LE, &version, 0), fail);
    if (version != BM25_VERSION)
        FMTFAIL("%s: format_version %lld is not supported (this build reads %d)", path, (long long)version, BM25_VERSION);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "k1", H5T_IEEE_F64LE, &L->k1, 0), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "b", H5T_IEEE_F64LE, &L->b, 0), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "n_docs", H5T_STD_I64LE, &n_docs, 0), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "avg_len", H5T_IEEE_F64LE, &L->avg, 0), fail);
    if (!isfinite(L->k1) || L->k1 < 0) FMTFAIL("%s: k1 = %g, expected a finite value >= 0", path, L->k1);
    if (!isfinite(L->b) || L->b < 0 || L->b > 1) FMTFAIL("%s: b = %g, expected 0 <= b <= 1", path, L->b);
    if (n_docs < 0 || n_docs > INT32_MAX) FMTFAIL("%s: n_docs = %lld is out of range", path, (long long)n_docs);
    if (!isfinite(L->avg) || L->avg < 0) FMTFAIL("%s: avg_len = %g is not a length", path, L->avg);

    /* shapes, before anything sized by the file is allocated */
    for (int i = 0; i < IFK_BM25_N_DS; i++) {
        hid_t want = i == IFK_BM25_DOC_IDS || i == IFK_BM25_TERMS ? H5T_C_S1
                     : i == IFK_BM25_OFFSETS                     ? H5T_STD_I64LE
                                                                 : H5T_STD_I32LE;
        IFK_CHECK_GOTO(st, open_ds_(L->file, path, ifk_bm25_ds_name[i], want, &L->ds[i], &L->len[i]), fail);
    }
    const int64_t N = L->N = n_docs, T = L->T = L->len[IFK_BM25_TERMS], P = L->P = L->len[IFK_BM25_POST_DOCS];
    if (N == 0 && L->avg != 0) FMTFAIL("%s: avg_len = %g but n_docs = 0", path, L->avg);
    if (L->len[IFK_BM25_DOC_IDS] != N || L->len[IFK_BM25_DOC_LEN] != N)
        FMTFAIL("%s: n_docs = %lld but /doc_ids has %lld entries and /doc_len %lld", path, (long long)N,
                (long long)L->len[IFK_BM25_DOC_IDS], (long long)L->len[IFK_BM25_DOC_LEN]);
    if (T > INT32_MAX) FMTFAIL("%s: /terms has %lld entries, more than %d", path, (long long)T, INT32_MAX);
    if (L->len[IFK_BM25_DF] != T)
        FMTFAIL("%s: /df has %lld entries, /terms %lld", path, (long long)L->len[IFK_BM25_DF], (long long)T);
    if (L->len[IFK_BM25_OFFSETS] != T + 1)
        FMTFAIL("%s: /post_offsets has %lld entries, expected n_terms + 1 = %lld", path, (long long)L->len[IFK_BM25_OFFSETS],
                (long long)T + 1);
    if (L->len[IFK_BM25_POST_TF] != P)
        FMTFAIL("%s: /post_tf has %lld entries, /post_docs %lld", path, (long long)L->len[IFK_BM25_POST_TF], (long long)P);
fail:
    ifk_h5_close(&root);
    return st;
}

/* doc_len, df and the offsets, checked against each other before the postings are read. */
static ifk_status load_counts_(loading_ *L) {
    ifk_status st = IFK_OK;
    const char *path = L->path;
    const int64_t N = L->N, T = L->T;
    IFK_CHECK(read_ds_(L->f.ds[IFK_BM25_DOC_LEN], path, "doc_len", H5T_NATIVE_INT32, N, sizeof *L->doc_len, (void **)&L->doc_len));
    IFK_CHECK(read_ds_(L->f.ds[IFK_BM25_DF], path, "df", H5T_NATIVE_INT32, T, sizeof *L->df, (void **)&L->df));
    IFK_CHECK(read_ds_(L->f.ds[IFK_BM25_OFFSETS], path, "post_offsets", H5T_NATIVE_INT64, T + 1, sizeof *L->off,
                       (void **)&L->off));
    const int32_t *doc_len = L->doc_len, *df = L->df;
    const int64_t *off = L->off;
    for (int64_t d = 0; d < N; d++) {
        if (doc_len[d] < 0) FMTFAIL("%s: /doc_len[%lld] = %d is negative", path, (long long)d, doc_len[d]);
        L->total += doc_len[d];
    }
    if (off[0] != 0) FMTFAIL("%s: /post_offsets[0] = %lld, expected 0", path, (long long)off[0]);
    for (int64_t t = 0; t < T; t++) {
        if (off[t + 1] < off[t])
            FMTFAIL("%s: /post_offsets is not monotonic at %lld (%lld then %lld)", path, (long long)t,
                    (long long)off[t], (long long)off[t + 1]);
        if (df[t] < 1 || df[t] > N) FMTFAIL("%s: /df[%lld] = %d is out of range", path, (long long)t, df[t]);
        if (off[t + 1] - off[t] != df[t])
            FMTFAIL("%s: /post_offsets gives term %lld %lld postings but /df says %d", path, (long long)t,
                    (long long)(off[t + 1] - off[t]), df[t]);
    }
    if (off[T] != L->P)
        FMTFAIL("%s: /post_offsets ends at %lld but /post_docs has %lld entries", path, (long long)off[T],
                (long long)L->P);
fail:
    return st;
}

/* The postings: document indices in range and ascending, tf >= 1, summing to doc_len. */
static ifk_status load_postings_(loading_ *L) {
    ifk_status st = IFK_OK;
    const char *path = L->path;
    const int64_t N = L->N, T = L->T, *off = L->off;
    int64_t *sums = NULL;
    IFK_CHECK(read_ds_(L->f.ds[IFK_BM25_POST_DOCS], path, "post_docs", H5T_NATIVE_INT32, L->P, sizeof *L->pdocs,
                       (void **)&L->pdocs));
    IFK_CHECK(read_ds_(L->f.ds[IFK_BM25_POST_TF], path, "post_tf", H5T_NATIVE_INT32, L->P, sizeof *L->ptf, (void **)&L->ptf));
    IFK_CHECK(lalloc_((void **)&sums, path, "doc_len", N, sizeof *sums));
    const int32_t *pdocs = L->pdocs, *ptf = L->ptf;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = off[t]; i < off[t + 1]; i++) {
            if (pdocs[i] < 0 || pdocs[i] >= N)
                FMTFAIL("%s: /post_docs[%lld] = %d is not a document index (n_docs = %lld)", path, (long long)i,
                        pdocs[i], (long long)N);
            if (i > off[t] && pdocs[i] <= pdocs[i - 1])
                FMTFAIL("%s: /post_docs is not strictly ascending within term %lld (at %lld)", path, (long long)t,
                        (long long)i);
            if (ptf[i] < 1) FMTFAIL("%s: /post_tf[%lld] = %d, expected >= 1", path, (long long)i, ptf[i]);
            sums[pdocs[i]] += ptf[i];
        }
    for (int64_t d = 0; d < N; d++)
        if (sums[d] != L->doc_len[d])
            FMTFAIL("%s: /doc_len[%lld] = %d but its postings hold %lld terms", path, (long long)d, L->doc_len[d],
                    (long long)sums[d]);
    const double want_avg = N ? (double)L->total / (double)N : 0.0; /* as the writer computes it */
    if (L->avg != want_avg)
        FMTFAIL("%s: avg_len = %.17g but the mean of /doc_len is %.17g", path, L->avg, want_avg);
fail:
    free(sums);
    return st;
}

ifk_status ifk_bm25_check_term(const char *path, int64_t t, const char *term) {
    if (!term || !term[0]) return IFK_FAIL(IFK_ERR_FORMAT, "%s: /terms[%lld] is empty", path, (long long)t);
    for (const char *c = term; *c; c++)
        if (!ifk_bm25_term_byte((unsigned char)*c) || ifk_bm25_fold((unsigned char)*c) != (unsigned char)*c)
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: /terms[%lld] = '%s' is not an analysed term", path, (long long)t, term);
    return IFK_OK;
}

/* The document ids and the terms (analysed, sorted, distinct). */
static ifk_status load_strings_(loading_ *L) {
    ifk_status st = IFK_OK;
    const char *path = L->path;
    IFK_CHECK(read_strs_(L->f.ds[IFK_BM25_DOC_IDS], path, "doc_ids", L->N, &L->docs));
    IFK_CHECK(read_strs_(L->f.ds[IFK_BM25_TERMS], path, "terms", L->T, &L->terms));
    char *const *terms = L->terms;
    for (int64_t t = 0; t < L->T; t++) {
        IFK_CHECK(ifk_bm25_check_term(path, t, terms[t]));
        if (t > 0 && strcmp(terms[t - 1], terms[t]) >= 0)
            FMTFAIL("%s: /terms is not sorted and distinct at %lld ('%s' then '%s')", path, (long long)t, terms[t - 1],
                    terms[t]);
    }
fail:
    return st;
}

/* Moves what L holds into a new index, checking that the document ids are unique. */
static ifk_status build_(loading_ *L, ifk_bm25 **out) {
    ifk_status st = IFK_OK;
    const char *path = L->path;
    const int64_t N = L->N, T = L->T;
    ifk_bm25 *ix = NULL;
    IFK_CHECK(ifk_bm25_create(&ix));
    ix->k1 = L->k1, ix->b = L->b;
    IFK_CHECK_GOTO(st, ifk_strmap_reserve(ix->doc_map, (size_t)N), fail);
    IFK_CHECK_GOTO(st, ifk_strmap_reserve(ix->term_map, (size_t)T), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&ix->post, path, "post_docs", T, sizeof *ix->post), fail);
    ix->doc = L->docs, ix->doc_len = L->doc_len, ix->cap_doc = (size_t)N, ix->n_docs = (int)N;
    ix->term = L->terms, ix->cap_term = (size_t)T, ix->n_terms = (int)T;
    L->docs = L->terms = NULL, L->doc_len = NULL; /* ix owns them now; the postings lists are empty */
    ix->total_len = L->total;
    for (int64_t d = 0; d < N; d++) {
        int first;
        if (ifk_strmap_get(ix->doc_map, ix->doc[d], strlen(ix->doc[d]), &first))
            FMTFAIL("%s: /doc_ids[%lld] = '%s' repeats /doc_ids[%d]", path, (long long)d, ix->doc[d], first);
        IFK_CHECK_GOTO(st, ifk_strmap_put(ix->doc_map, ix->doc[d], strlen(ix->doc[d]), (int)d), fail);
    }
    for (int64_t t = 0; t < T; t++) {
        IFK_CHECK_GOTO(st, ifk_strmap_put(ix->term_map, ix->term[t], strlen(ix->term[t]), (int)t), fail);
        ifk_bm25_plist *pl = &ix->post[t];
        pl->n = pl->cap = (size_t)(L->off[t + 1] - L->off[t]);
        if (!(pl->p = malloc((pl->n ? pl->n : 1) * sizeof *pl->p))) {
            st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory building the postings", path);
            goto fail;
        }
        for (size_t i = 0; i < pl->n; i++)
            pl->p[i] = (ifk_bm25_posting){L->pdocs[L->off[t] + (int64_t)i], L->ptf[L->off[t] + (int64_t)i]};
    }
    *out = ix;
    return IFK_OK;
fail:
    ifk_bm25_free(&ix);
    return st;
}

ifk_status ifk_bm25_file_open(ifk_bm25_file *f, const char *path) {
    *f = (ifk_bm25_file){.path = path, .file = H5I_INVALID_HID, .xfer = H5I_INVALID_HID};
    for (int i = 0; i < IFK_BM25_N_DS; i++) f->ds[i] = H5I_INVALID_HID;
    ifk_h5_init();
    int fd = open(path, O_RDONLY);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int isreg = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    close(fd);
    if (!isreg) return IFK_FAIL(IFK_ERR_IO, "%s: not a regular file", path);
    ifk_status st = IFK_OK;
    htri_t is5;
    IFK_H5_CHECK(st, is5 = H5Fis_hdf5(path), "%s: cannot read the file", path);
    if (!is5) FMTFAIL("%s: not an HDF5 file", path);
    IFK_H5_CHECK(st, f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), "%s: cannot open the HDF5 file", path);
    IFK_CHECK_GOTO(st, file_header_(f), fail);
    IFK_H5_CHECK(st, f->xfer = H5Pcreate(H5P_DATASET_XFER), "%s: cannot make a transfer property list", path);
    IFK_H5_CHECK(st, H5Pset_buffer(f->xfer, 16384, NULL, NULL), "%s: cannot set a conversion buffer", path);
    return IFK_OK;
fail:
    ifk_bm25_file_close(f);
    return st;
}

void ifk_bm25_file_close(ifk_bm25_file *f) {
    for (int i = 0; i < IFK_BM25_N_DS; i++) ifk_h5_close(&f->ds[i]);
    ifk_h5_close(&f->xfer);
    ifk_h5_close(&f->file);
}

ifk_status ifk_bm25_file_read(const ifk_bm25_file *f, int ds, hid_t memtype, int64_t start, int64_t n, void *buf) {
    ifk_status st = IFK_OK;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    const char *name = ifk_bm25_ds_name[ds];
    if (start < 0 || n < 0 || start + n > f->len[ds])
        FMTFAIL("%s: /%s: entries [%lld, %lld) are outside its %lld", f->path, name, (long long)start,
                (long long)(start + n), (long long)f->len[ds]);
    if (n == 0) return IFK_OK;
    hsize_t off[1] = {(hsize_t)start}, cnt[1] = {(hsize_t)n};
    IFK_H5_CHECK(st, fs = H5Dget_space(f->ds[ds]), "%s: cannot get the dataspace of /%s", f->path, name);
    IFK_H5_CHECK(st, H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "%s: cannot select in /%s",
                 f->path, name);
    IFK_H5_CHECK(st, ms = H5Screate_simple(1, cnt, NULL), "%s: cannot make a dataspace", f->path);
    IFK_H5_CHECK(st, H5Dread(f->ds[ds], memtype, ms, fs, f->xfer, buf), "%s: cannot read /%s [%lld, %lld)",
                 f->path, name, (long long)start, (long long)(start + n));
fail:
    ifk_h5_close(&ms);
    ifk_h5_close(&fs);
    return st;
}

ifk_status ifk_bm25_load(ifk_bm25 **ix, const char *path) {
    IFK_CHECK_ARG(ix && path, "bm25: load needs somewhere to put the index and a path");
    *ix = NULL;
    ifk_status st = IFK_OK;
    loading_ L = {.path = path};
    IFK_CHECK(ifk_bm25_file_open(&L.f, path));
    L.N = L.f.N, L.T = L.f.T, L.P = L.f.P, L.k1 = L.f.k1, L.b = L.f.b, L.avg = L.f.avg;
    IFK_CHECK_GOTO(st, load_counts_(&L), fail);
    IFK_CHECK_GOTO(st, load_postings_(&L), fail);
    IFK_CHECK_GOTO(st, load_strings_(&L), fail);
    for (int i = 0; i < IFK_BM25_N_DS; i++) ifk_h5_close(&L.f.ds[i]);
    IFK_H5_CHECK(st, H5Fclose(L.f.file), "%s: cannot close the file", path);
    L.f.file = H5I_INVALID_HID;
    IFK_CHECK_GOTO(st, build_(&L, ix), fail);
fail:
    ifk_bm25_file_close(&L.f);
    if (L.docs)
        for (int64_t i = 0; i < L.N; i++) free(L.docs[i]);
    if (L.terms)
        for (int64_t i = 0; i < L.T; i++) free(L.terms[i]);
    free(L.docs), free(L.terms), free(L.doc_len), free(L.df), free(L.pdocs), free(L.ptf), free(L.off);
    return st;
}
