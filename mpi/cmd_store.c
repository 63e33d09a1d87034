/* cmd_store.c — `infoflow inspect`, `infoflow verify` and `infoflow migrate`: looking after a store
 * from one process. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bm25.h"
#include "cli.h"
#include "drivers.h"
#include "store.h"
#include "sys.h"
#include "store_index.h"
#include "store_maint.h"
#include "atomic_file.h"
#include <unistd.h>

typedef struct {
    const char *dir;
    long long bytes;
    int missing;
} shard_bytes_;

static void shard_bytes_add_(const char *name, void *ctx) {
    shard_bytes_ *b = ctx;
    char path[2400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", b->dir, name);
    if (stat(path, &st) == 0) b->bytes += st.st_size;
    else b->missing++;
}

int ifk_cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, docs = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL},
                            {"docs", NULL, "also list every document: id, chunks, tokens, shard", NULL, &docs},
                            {"json", NULL, "one JSON object instead of text", NULL, &json},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_store *store = NULL;
    ifk_index_seg *segs = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow inspect --store DIR [--docs] [--json]", &help) != IFK_OK) goto out;
    if (help) return 0;
    if (!dir) {
        IFK_FAIL(IFK_ERR_ARG, "inspect: --store DIR is required");
        goto out;
    }
    if (ifk_store_open(&store, dir) != IFK_OK) goto out;
    const ifk_manifest *m = ifk_store_manifest(store);
    shard_bytes_ sb = {dir, 0, 0};
    int n_segs = 0, indexed = -1;
    if (ifk_manifest_each_shard(m, shard_bytes_add_, &sb) != IFK_OK || ifk_manifest_segments(m, &segs, &n_segs) != IFK_OK)
        goto out;
    for (int i = 0; i < n_segs; i++) indexed = (indexed < 0 ? 0 : indexed) + segs[i].n;
    const ifk_store_params *p = &m->p;
    if (json) {
        printf("{\"store\": \"%s\", \"documents\": %d, \"chunks\": %lld, \"tokens\": %lld, \"shards\": %d, "
               "\"missing_shards\": %d, \"bytes\": %lld, \"dtype\": \"%s\", \"chunk_tokens\": %d, \"split\": \"%s\", "
               "\"model_fingerprint\": \"%s\", \"model_source\": \"%s\", \"n_layers\": %d, \"n_kv_heads\": %d, "
               "\"head_dim\": %d, \"rope_theta\": %g, \"rope_style\": \"%s\", \"indexed_documents\": %d, "
               "\"index_segments\": %d",
               dir, m->n_docs, m->n_chunks, m->n_tokens, m->n_shards, sb.missing, sb.bytes, ifk_dtype_name(p->dtype),
               p->chunk_tokens, p->split == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens", p->fingerprint,
               p->model_source, p->n_layers, p->n_kv_heads, p->head_dim, p->rope_theta,
               p->rope_style == IFK_ROPE_HALF ? "half" : "interleaved", indexed, n_segs);
        if (docs) { /* --docs: the list, as the text form prints it */
            printf(", \"document_list\": [");
            for (int d = 0; d < m->n_docs; d++) {
                if (d % 1024 == 0) ifk_store_forget(store);
                const ifk_doc_rec *r = ifk_store_doc(store, d);
                char shard[512] = "?";
                if (!r || ifk_manifest_shard(m, r->shard, shard, sizeof shard) != IFK_OK) goto out;
                printf("%s{\"id\": ", d ? ", " : "");
                ifk_json_str(stdout, r->id, strlen(r->id));
                printf(", \"chunks\": %d, \"tokens\": %d, \"shard\": ", r->n_chunks, r->n_tokens);
                ifk_json_str(stdout, shard, strlen(shard));
                printf(", \"group\": ");
                ifk_json_str(stdout, r->group, strlen(r->group));
                printf("}");
            }
            printf("]");
        }
        printf("}\n");
    } else {
        printf("store       %s\n", dir);
        printf("documents   %d (%lld chunks, %lld tokens)\n", m->n_docs, m->n_chunks, m->n_tokens);
        printf("shards      %d, %.2f MiB%s\n", m->n_shards, sb.bytes / 1048576.0, sb.missing ? " (SOME MISSING)" : "");
        printf("layout      %s, chunks of <= %d tokens split by %s, BOS prefix %d%s\n", ifk_dtype_name(p->dtype),
               p->chunk_tokens, p->split == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens", p->prefix_len,
               p->compress ? ", deflate" : "");
        printf("model       %s (fingerprint %s)\n", p->model_source, p->fingerprint);
        printf("shape       %d layers, %d KV heads of %d; RoPE theta %g, %s pairs\n", p->n_layers, p->n_kv_heads,
               p->head_dim, p->rope_theta, p->rope_style == IFK_ROPE_HALF ? "rotate_half" : "interleaved");
        if (indexed >= 0) printf("index       BM25 over %d document%s in %d segment%s\n", indexed, IFK_S(indexed), n_segs, IFK_S(n_segs));
        else printf("index       none (rerun infoflow cache to build it)\n");
        for (int d = 0; docs && d < m->n_docs; d++) {
            if (d % 1024 == 0) ifk_store_forget(store);
            const ifk_doc_rec *r = ifk_store_doc(store, d);
            char shard[512] = "?";
            if (!r || ifk_manifest_shard(m, r->shard, shard, sizeof shard) != IFK_OK) goto out;
            printf("  %-24s %3d chunks %6d tokens  %s%s\n", r->id, r->n_chunks, r->n_tokens, shard, r->group);
        }
    }
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(segs);
    ifk_store_close(&store);
    return rc;
}

int ifk_cmd_search(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *k_s = "10", *rep_s = "1";
    int help = 0, scratch = 0, full = 0, rc = 1;
    long k = 10, rep = 1;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL},
                            {"prompt", "TEXT", "the query text (required)", &prompt, NULL},
                            {"k", "K", "how many documents (default 10)", &k_s, NULL},
                            {"repeat", "R", "open (or load) and search R times, report the fastest (default 1)",
                             &rep_s, NULL},
                            {"full-load", NULL, "load the index segments whole into memory and search there (the "
                                                "reference of the on-disk search)", NULL, &full},
                            {"from-scratch", NULL, "search an index built now from every document's text instead of "
                                                   "the store's segments (to check them)", NULL, &scratch},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_bm25 *ix = NULL;
    ifk_bm25_disk *dx = NULL;
    const char **ids = NULL;
    double *sc = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow search --store DIR --prompt TEXT [--k K] [--full-load | "
                      "--from-scratch]\nThe BM25 retrieval of query --retrieve alone: rank, document id and score per "
                      "line. By default the index segments are searched on disk, reading only the query's terms.",
                      &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (!dir || !prompt) {
        IFK_FAIL(IFK_ERR_ARG, "search: --store DIR and --prompt TEXT are required");
        goto out;
    }
    if (scratch && full) {
        IFK_FAIL(IFK_ERR_ARG, "search: --full-load and --from-scratch are two different indexes: give one");
        goto out;
    }
    if (ifk_cli_int("k", k_s, 1, 1 << 24, &k) || ifk_cli_int("repeat", rep_s, 1, 100000, &rep)) goto out;
    ids = malloc(sizeof *ids * (size_t)k), sc = malloc(sizeof *sc * (size_t)k);
    if (!ids || !sc) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto out;
    }
    int n = 0;
    double open_ms = 1e30, search_ms = 1e30;
    for (long r = 0; r < rep; r++) { /* the last pass's index stays for the output */
        ifk_bm25_free(&ix), ifk_bm25_disk_free(&dx);
        double t0 = ifk_now();
        ifk_status st = scratch ? ifk_store_index_docs(dir, 0, -1, &ix)
                        : full  ? ifk_store_index_load(dir, &ix)
                                : ifk_store_index_open(dir, &dx);
        if (st != IFK_OK) goto out;
        double t1 = ifk_now();
        st = dx ? ifk_bm25_disk_search(dx, prompt, strlen(prompt), (int)k, ids, sc, &n)
                : ifk_bm25_search(ix, prompt, strlen(prompt), (int)k, ids, sc, &n);
        if (st != IFK_OK) goto out;
        double t2 = ifk_now();
        open_ms = fmin(open_ms, 1e3 * (t1 - t0)), search_ms = fmin(search_ms, 1e3 * (t2 - t1));
    }
    for (int i = 0; i < n; i++) printf("%d %s %.17g\n", i + 1, ids[i], sc[i]);
    if (dx)
        fprintf(stderr, "search: %d of %d documents; index open %.2f ms, search on disk %.2f ms (%lld postings read)\n",
                n, ifk_bm25_disk_ndocs(dx), open_ms, search_ms, ifk_bm25_disk_postings_read(dx));
    else
        fprintf(stderr, "search: %d of %d documents; index load %.2f ms, search %.2f ms\n", n, ifk_bm25_ndocs(ix),
                open_ms, search_ms);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(ids), free(sc);
    ifk_bm25_free(&ix);
    ifk_bm25_disk_free(&dx);
    return rc;
}

int ifk_cmd_migrate(int argc, char **argv) {
    const char *dir = NULL;
    int help = 0, n = 0;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL}, {NULL, NULL, NULL, NULL, NULL}};
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow migrate --store DIR\n"
                      "Converts a format-version-1 store (manifest.json listing every document) to version 2 "
                      "(catalog.sqlite) in place, then writes its retrieval index. The shards are kept as they are.",
                      &help) != IFK_OK) {
        ifk_err_print();
        return 1;
    }
    if (help) return 0;
    if (!dir) {
        IFK_FAIL(IFK_ERR_ARG, "migrate: --store DIR is required");
        ifk_err_print();
        return 1;
    }
    ifk_manifest *man = NULL;
    int fd = -1;
    /* the version-1 manifest.json, put back if anything after the conversion fails: a failed
     * migrate leaves a version-1 store (docs/storage.md) */
    char mpath[2048], *v1 = NULL;
    size_t v1_len = 0;
    snprintf(mpath, sizeof mpath, "%s/%s", dir, IFK_MANIFEST);
    if (ifk_store_lock(dir, &fd) != IFK_OK || ifk_read_file(mpath, (size_t)1 << 34, &v1, &v1_len) != IFK_OK ||
        ifk_manifest_migrate(dir, &n) != IFK_OK) {
        ifk_store_unlock(fd);
        ifk_err_print();
        free(v1);
        return 1;
    }
    ifk_store_unlock(fd);
    /* the version-1 index.h5 is replaced by segments written from the shards' texts */
    int removed = 0, added = 0, merged = 0;
    char old[2048];
    snprintf(old, sizeof old, "%s/%s", dir, IFK_INDEX);
    man = calloc(1, sizeof *man);
    if (!man || ifk_store_lock(dir, &fd) != IFK_OK || ifk_manifest_open(man, dir, 1) != IFK_OK ||
        ifk_store_index_update(man, &added, &merged, NULL, NULL) != IFK_OK || ifk_store_clean(man, &removed) != IFK_OK) {
        char why[4096];
        snprintf(why, sizeof why, "%s", ifk_errmsg());
        if (man) ifk_manifest_free(man), free(man);
        if (ifk_write_atomic(dir, IFK_MANIFEST, v1, v1_len, "manifest") == IFK_OK)
            IFK_FAIL(IFK_ERR_FORMAT, "%s (migrate undone: %s is format version 1 again)", why, mpath);
        else
            IFK_FAIL(IFK_ERR_IO, "%s; putting back the version-1 %s failed too: %s", why, mpath, ifk_errmsg());
        ifk_err_print();
        ifk_store_unlock(fd);
        free(v1);
        return 1;
    }
    free(v1);
    unlink(old);
    ifk_manifest_free(man), free(man);
    ifk_store_unlock(fd);
    printf("migrate: %s: %d documents now in catalog.sqlite (format version %d), %d indexed\n", dir, n,
           IFK_STORE_FORMAT_VERSION, added);
    return 0;
}

static void report_(const char *msg, void *ctx) {
    (void)ctx;
    printf("DAMAGED: %s\n", msg);
}

/* Whether n floats agree: bitwise (tol 0), or every |x - y| <= tol (1 + |y|); the largest
 * |x - y| / (1 + |y|) seen goes to *worst. */
static int close_(const float *x, const float *y, size_t n, double tol, double *worst) {
    if (tol <= 0) return !memcmp(x, y, 4 * n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)x[i] - y[i]) / (1 + fabs((double)y[i]));
        if (!(e <= tol)) ok = 0; /* NaN fails too */
        if (e > *worst || e != e) *worst = e;
    }
    return ok;
}

/* "N BLAS threads per rank" (or "1 to 4 ...", or "an unrecorded number of BLAS threads") over the
 * store's shards, into out[64]. */
static void threads_(ifk_store *s, char *out) {
    const int n = ifk_store_manifest(s)->n_shards;
    int lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        const int t = ifk_store_shard_threads(s, i);
        if (t <= 0) {
            lo = hi = 0;
            break;
        }
        lo = lo && lo < t ? lo : t, hi = hi > t ? hi : t;
    }
    if (!lo) snprintf(out, 64, "an unrecorded number of BLAS threads per rank");
    else if (lo == hi) snprintf(out, 64, "%d BLAS thread%s per rank", lo, lo == 1 ? "" : "s");
    else snprintf(out, 64, "%d to %d BLAS threads per rank", lo, hi);
}

/* Compares K/V of every document of a with b's (same ids): bitwise, or within tol (close_). */
static ifk_status compare_(const char *a, const char *b, int subset, double tol, double *worst, int *diffs) {
    ifk_store *sa = NULL, *sb = NULL;
    *diffs = 0;
    IFK_CHECK(ifk_store_open(&sa, a));
    ifk_status st = ifk_store_open(&sb, b);
    float *k1 = NULL, *v1 = NULL, *k2 = NULL, *v2 = NULL;
    int *t1 = NULL, *t2 = NULL;
    if (st != IFK_OK) goto done;
    const ifk_manifest *ma = ifk_store_manifest(sa), *mb = ifk_store_manifest(sb);
    const ifk_store_params *p = &ma->p;
    if (!subset && ma->n_docs != mb->n_docs) printf("DIFFERENT: %s holds %d documents, %s %d\n", a, ma->n_docs, b, mb->n_docs), (*diffs)++;
    size_t nel = (size_t)p->n_layers * p->n_kv_heads * p->chunk_tokens * p->head_dim;
    k1 = malloc(4 * nel), v1 = malloc(4 * nel), k2 = malloc(4 * nel), v2 = malloc(4 * nel);
    t1 = malloc(4 * (size_t)p->chunk_tokens), t2 = malloc(4 * (size_t)p->chunk_tokens);
    if (!k1 || !v1 || !k2 || !v2 || !t1 || !t2) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    for (int d = 0; d < ma->n_docs; d++) {
        if (d % 1024 == 0) ifk_store_forget(sa), ifk_store_forget(sb); /* memory stays flat */
        const ifk_doc_rec *ra = ifk_store_doc(sa, d);
        if (!ra) {
            st = IFK_ERR_FORMAT;
            goto done;
        }
        int e = ifk_store_find(sb, ra->id);
        if (e < 0) {
            printf("DIFFERENT: document \"%s\" is not in %s\n", ra->id, b), (*diffs)++;
            continue;
        }
        const ifk_doc_rec *rb = ifk_store_doc(sb, e);
        if (!rb) {
            st = IFK_ERR_FORMAT;
            goto done;
        }
        if (ra->n_chunks != rb->n_chunks || memcmp(ra->chunk_len, rb->chunk_len, sizeof(int) * ra->n_chunks)) {
            printf("DIFFERENT: document \"%s\" is chunked differently\n", ra->id), (*diffs)++;
            continue;
        }
        for (int c = 0; c < ra->n_chunks; c++) {
            IFK_CHECK_GOTO(st, ifk_store_read_chunk(sa, d, c, 0, p->n_kv_heads, k1, v1, t1), done);
            IFK_CHECK_GOTO(st, ifk_store_read_chunk(sb, e, c, 0, p->n_kv_heads, k2, v2, t2), done);
            size_t n = (size_t)p->n_layers * p->n_kv_heads * ra->chunk_len[c] * p->head_dim;
            const int kc = close_(k1, k2, n, tol, worst), vc = close_(v1, v2, n, tol, worst);
            if (!kc || !vc || memcmp(t1, t2, 4 * (size_t)ra->chunk_len[c]))
                printf("DIFFERENT: document \"%s\" chunk %d\n", ra->id, c), (*diffs)++;
        }
    }
    if (st == IFK_OK && *diffs && tol == 0) { /* K/V bits depend on the writers' threads and --tp (docs/storage.md) */
        char ta[64], tb[64];
        threads_(sa, ta), threads_(sb, tb);
        printf("NOTE: K/V bits depend on the BLAS threads per rank and the --tp layout that cached them (docs/storage.md): "
               "%s was written with %s, %s with %s; if only those differ, compare with --tolerance 1e-4 (f32) or "
               "2e-3 (f16, bf16 8e-3)\n", a, ta, b, tb);
    }
done:
    free(k1), free(v1), free(k2), free(v2), free(t1), free(t2);
    ifk_store_close(&sa);
    ifk_store_close(&sb);
    return st;
}

int ifk_cmd_verify(int argc, char **argv) {
    const char *dir = NULL, *against = NULL, *tol_s = NULL;
    int help = 0, subset = 0;
    double tol = 0, worst = 0;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL},
                            {"against", "DIR", "also compare every chunk's K/V and tokens bitwise with another store",
                             &against, NULL},
                            {"subset", NULL, "with --against: this store may hold fewer documents; those it holds "
                                             "must be identical", NULL, &subset},
                            {"tolerance", "T", "with --against: K/V may differ by |a - b| <= T (1 + |b|) (stores of "
                                               "other --tp layouts; default 0: bitwise)", &tol_s, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow verify --store DIR [--against DIR]\n"
                      "Re-reads every dataset (checksums, shapes, attributes); exit 1 if anything is damaged.", &help) != IFK_OK) {
        ifk_err_print();
        return 1;
    }
    if (help) return 0;
    if (ifk_cli_double("tolerance", tol_s, 0, 1, &tol) != IFK_OK) {
        ifk_err_print();
        return 1;
    }
    if (!against && (tol_s || subset)) { /* settings of the comparison: without one they would do nothing */
        IFK_FAIL(IFK_ERR_ARG, "verify: --%s goes with --against DIR", tol_s ? "tolerance" : "subset");
        ifk_err_print();
        return 1;
    }
    if (!dir) {
        IFK_FAIL(IFK_ERR_ARG, "verify: --store DIR is required");
        ifk_err_print();
        return 1;
    }
    int bad = 0, diffs = 0;
    if (ifk_store_verify(dir, report_, NULL, &bad) != IFK_OK) {
        ifk_err_print();
        return 1;
    }
    if (against && compare_(dir, against, subset, tol, &worst, &diffs) != IFK_OK) {
        ifk_err_print();
        return 1;
    }
    ifk_manifest m;
    int nd = 0;
    long long nc = 0;
    if (ifk_manifest_open(&m, dir, 0) == IFK_OK) {
        nd = m.n_docs;
        nc = m.n_chunks;
        ifk_manifest_free(&m);
    }
    if (bad || diffs) {
        fprintf(stderr, "infoflow: error: %s: %d damaged dataset%s%s\n", dir, bad, bad == 1 ? "" : "s",
                diffs ? ", and differences from the other store" : "");
        return 1;
    }
    if (against && tol > 0)
        printf("verify: %s: %d document%s, %lld chunk%s: every dataset reads back with valid checksums; K/V within %g "
               "of the other store (largest |a - b| / (1 + |b|): %.3g), tokens identical\n", dir, nd, IFK_S(nd), nc,
               IFK_S(nc), tol, worst);
    else
        printf("verify: %s: %d document%s, %lld chunk%s: every dataset reads back with valid checksums%s\n", dir, nd,
               IFK_S(nd), nc, IFK_S(nc), against ? "; identical to the other store" : "");
    return 0;
}
