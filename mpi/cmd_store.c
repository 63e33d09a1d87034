/* cmd_store.c — `infoflow inspect` and `infoflow verify`: looking at a store from one process. */
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
#include "store_maint.h"

int ifk_cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, docs = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL},
                            {"docs", NULL, "also list every document: id, chunks, tokens, shard", NULL, &docs},
                            {"json", NULL, "one JSON object instead of text", NULL, &json},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_manifest m = {0};
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow inspect --store DIR [--docs] [--json]", &help) != IFK_OK) goto out;
    if (help) return 0;
    if (!dir) {
        IFK_FAIL(IFK_ERR_ARG, "inspect: --store DIR is required");
        goto out;
    }
    if (ifk_manifest_load(&m, dir) != IFK_OK) goto out;
    long long bytes = 0;
    int missing = 0;
    for (int i = 0; i < m.n_shards; i++) {
        char path[2400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, m.shards[i]);
        if (stat(path, &st) == 0) bytes += st.st_size;
        else missing++;
    }
    char ipath[2048];
    snprintf(ipath, sizeof ipath, "%s/%s", dir, IFK_INDEX);
    ifk_bm25 *ix = NULL;
    int indexed = ifk_bm25_load(&ix, ipath) == IFK_OK ? ifk_bm25_ndocs(ix) : -1;
    ifk_bm25_free(&ix);
    const ifk_store_params *p = &m.p;
    if (json) {
        printf("{\"store\": \"%s\", \"documents\": %d, \"chunks\": %lld, \"tokens\": %lld, \"shards\": %d, "
               "\"missing_shards\": %d, \"bytes\": %lld, \"dtype\": \"%s\", \"chunk_tokens\": %d, \"split\": \"%s\", "
               "\"model_fingerprint\": \"%s\", \"model_source\": \"%s\", \"n_layers\": %d, \"n_kv_heads\": %d, "
               "\"head_dim\": %d, \"rope_theta\": %g, \"rope_style\": \"%s\", \"indexed_documents\": %d}\n",
               dir, m.n_docs, m.n_chunks, m.n_tokens, m.n_shards, missing, bytes, ifk_dtype_name(p->dtype),
               p->chunk_tokens, p->split == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens", p->fingerprint,
               p->model_source, p->n_layers, p->n_kv_heads, p->head_dim, p->rope_theta,
               p->rope_style == IFK_ROPE_HALF ? "half" : "interleaved", indexed);
    } else {
        printf("store       %s\n", dir);
        printf("documents   %d (%lld chunks, %lld tokens)\n", m.n_docs, m.n_chunks, m.n_tokens);
        printf("shards      %d, %.2f MiB%s\n", m.n_shards, bytes / 1048576.0, missing ? " (SOME MISSING)" : "");
        printf("layout      %s, chunks of <= %d tokens split by %s, BOS prefix %d%s\n", ifk_dtype_name(p->dtype),
               p->chunk_tokens, p->split == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens", p->prefix_len,
               p->compress ? ", deflate" : "");
        printf("model       %s (fingerprint %s)\n", p->model_source, p->fingerprint);
        printf("shape       %d layers, %d KV heads of %d; RoPE theta %g, %s pairs\n", p->n_layers, p->n_kv_heads,
               p->head_dim, p->rope_theta, p->rope_style == IFK_ROPE_HALF ? "rotate_half" : "interleaved");
        if (indexed >= 0) printf("index       BM25 over %d documents\n", indexed);
        else printf("index       none (rerun infoflow cache to build it)\n");
        if (docs)
            for (int d = 0; d < m.n_docs; d++)
                printf("  %-24s %3d chunks %6d tokens  %s%s\n", m.docs[d].id, m.docs[d].n_chunks, m.docs[d].n_tokens,
                       m.shards[m.docs[d].shard], m.docs[d].group);
    }
    rc = 0;
out:
    if (rc) ifk_err_print();
    ifk_manifest_free(&m);
    return rc;
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
        const ifk_doc_rec *ra = &ma->docs[d];
        int e = ifk_manifest_find(mb, ra->id);
        if (e < 0) {
            printf("DIFFERENT: document \"%s\" is not in %s\n", ra->id, b), (*diffs)++;
            continue;
        }
        const ifk_doc_rec *rb = &mb->docs[e];
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
    if (ifk_manifest_load(&m, dir) == IFK_OK) {
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
        printf("verify: %s: %d documents, %lld chunks: every dataset reads back with valid checksums; K/V within %g "
               "of the other store (largest |a - b| / (1 + |b|): %.3g), tokens identical\n", dir, nd, nc, tol, worst);
    else
        printf("verify: %s: %d documents, %lld chunks: every dataset reads back with valid checksums%s\n", dir, nd, nc,
               against ? "; identical to the other store" : "");
    return 0;
}
