/* store_index.c — the BM25 index as segments listed in the catalog (store_index.h). */
#include "store_index.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "store.h"

int ifk_store_index_file(const char *n) {
    size_t l = strlen(n);
    return !strncmp(n, "index-", 6) && ((l > 3 && !strcmp(n + l - 3, ".h5")) || (l > 7 && !strcmp(n + l - 7, ".h5.tmp")));
}

static void seg_path_(char *path, size_t cap, const char *dir, const char *file) { snprintf(path, cap, "%s/%s", dir, file); }

/* Loads segs[0..n) appended into *ix; IFK_ERR_IO with *vanished set when a file is missing. */
static ifk_status load_list_(const char *dir, const ifk_index_seg *segs, int n, ifk_bm25 **ix, int *vanished) {
    *vanished = 0;
    ifk_status st = ifk_bm25_create(ix);
    for (int i = 0; st == IFK_OK && i < n; i++) {
        char path[2048];
        seg_path_(path, sizeof path, dir, segs[i].file);
        struct stat sb;
        if (stat(path, &sb) != 0 && errno == ENOENT) {
            *vanished = 1;
            st = IFK_FAIL(IFK_ERR_IO, "%s: index segment is missing", path);
            break;
        }
        ifk_bm25 *s = NULL;
        st = ifk_bm25_load(&s, path);
        if (st == IFK_OK && ifk_bm25_ndocs(s) != segs[i].n)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: index segment holds %d documents, the catalog says %d", path,
                          ifk_bm25_ndocs(s), segs[i].n);
        if (st == IFK_OK) st = i == 0 ? (ifk_bm25_free(ix), *ix = s, s = NULL, IFK_OK) : ifk_bm25_append(*ix, s);
        ifk_bm25_free(&s);
    }
    if (st != IFK_OK) ifk_bm25_free(ix);
    return st;
}

/* Opens segs[0..n) for searching on disk into *dx; IFK_ERR_IO with *vanished set when a file is
 * missing. Once opened a file stays readable, even if a merge removes it meanwhile. */
static ifk_status open_list_(const char *dir, const ifk_index_seg *segs, int n, ifk_bm25_disk **dx, int *vanished) {
    *vanished = 0;
    ifk_status st = ifk_bm25_disk_create(dx);
    for (int i = 0; st == IFK_OK && i < n; i++) {
        char path[2048];
        seg_path_(path, sizeof path, dir, segs[i].file);
        st = ifk_bm25_disk_add(*dx, path);
        struct stat sb;
        if (st != IFK_OK && stat(path, &sb) != 0 && errno == ENOENT) {
            *vanished = 1;
            st = IFK_FAIL(IFK_ERR_IO, "%s: index segment is missing", path);
        }
        if (st == IFK_OK && ifk_bm25_disk_file_ndocs(*dx, i) != segs[i].n)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: index segment holds %d documents, the catalog says %d", path,
                          ifk_bm25_disk_file_ndocs(*dx, i), segs[i].n);
        if (st != IFK_OK && st != IFK_ERR_OOM) { /* what the writer's repair_ finds and rebuilds */
            char why[2400];
            snprintf(why, sizeof why, "%s", ifk_errmsg());
            ifk_err_clear();
            st = IFK_FAIL(st, "%s (rerun `infoflow cache` on this store, with its corpus, to rebuild the segment; if that "
                          "run cannot replace it, remove it first)", why);
        }
    }
    if (st != IFK_OK) ifk_bm25_disk_free(dx);
    return st;
}

/* Reads the catalog's segment list and calls open (load_list_ or open_list_) on it, again while
 * a listed file vanished (a running job merged it), at most 5 times. */
static ifk_status with_segments_(const char *dir, ifk_status (*open)(const char *, const ifk_index_seg *, int, void *, int *),
                                 void *out) {
    for (int attempt = 0;; attempt++) {
        ifk_manifest m;
        IFK_CHECK(ifk_manifest_open(&m, dir, 0));
        ifk_index_seg *segs;
        int n, vanished;
        ifk_status st = ifk_manifest_segments(&m, &segs, &n);
        ifk_manifest_free(&m);
        IFK_CHECK(st);
        if (n == 0) {
            free(segs);
            return IFK_FAIL(IFK_ERR_IO, "%s: the store has no retrieval index yet (infoflow cache writes it)", dir);
        }
        st = open(dir, segs, n, out, &vanished);
        free(segs);
        if (st == IFK_OK || !vanished || attempt == 4) return st;
    }
}

static ifk_status load_any_(const char *dir, const ifk_index_seg *segs, int n, void *out, int *vanished) {
    return load_list_(dir, segs, n, out, vanished);
}
static ifk_status open_any_(const char *dir, const ifk_index_seg *segs, int n, void *out, int *vanished) {
    return open_list_(dir, segs, n, out, vanished);
}

ifk_status ifk_store_index_load(const char *dir, ifk_bm25 **ix) {
    *ix = NULL;
    return with_segments_(dir, load_any_, ix);
}

ifk_status ifk_store_index_open(const char *dir, ifk_bm25_disk **dx) {
    *dx = NULL;
    return with_segments_(dir, open_any_, dx);
}

/* Writes ix as the segment covering [first, first + n) and names it in *seg. */
static ifk_status save_seg_(const char *dir, const ifk_bm25 *ix, int first, int n, const char *fault, ifk_index_seg *seg) {
    snprintf(seg->file, sizeof seg->file, "index-%09d-%09d.h5", first, first + n);
    seg->first = first, seg->n = n;
    char path[2048];
    seg_path_(path, sizeof path, dir, seg->file);
    return ifk_bm25_save_fault(ix, path, fault);
}

ifk_status ifk_store_index_docs(const char *dir, int first, int end, ifk_bm25 **ix) {
    ifk_store *s = NULL;
    *ix = NULL;
    IFK_CHECK(ifk_store_open(&s, dir));
    if (end < 0) end = ifk_store_manifest(s)->n_docs;
    ifk_status st = ifk_bm25_create(ix);
    for (int d = first; st == IFK_OK && d < end; d++) {
        const ifk_doc_rec *r = ifk_store_doc(s, d);
        char *text = NULL;
        size_t len;
        st = r ? ifk_store_read_text(s, d, &text, &len) : IFK_ERR_FORMAT;
        if (st == IFK_OK) st = ifk_bm25_add(*ix, r->id, text, len);
        free(text);
        if ((d - first) % 1024 == 1023) ifk_store_forget(s);
    }
    ifk_store_close(&s);
    if (st != IFK_OK) ifk_bm25_free(ix);
    return st;
}

static void note_(ifk_index_note note, void *ctx, int repair, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note_(ifk_index_note note, void *ctx, int repair, const char *fmt, ...) {
    if (!note) return;
    char msg[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    note(repair, msg, ctx);
}

/* Rewrites every listed segment of segs[0..n) that does not open (missing, truncated, not an index
 * file, a header that does not check, another document count than listed) from the store's texts,
 * under its listed name: the list is unchanged. A header check per segment, no data read; damage
 * inside a segment's data is verify's to find (it loads every segment whole). */
static ifk_status repair_(ifk_manifest *man, const ifk_index_seg *segs, int n, ifk_index_note note, void *ctx) {
    for (int i = 0; i < n; i++) {
        char path[2048], why[2400];
        seg_path_(path, sizeof path, man->dir, segs[i].file);
        ifk_bm25_disk *dx = NULL;
        ifk_status st = ifk_bm25_disk_create(&dx);
        IFK_CHECK(st);
        st = ifk_bm25_disk_add(dx, path);
        if (st == IFK_OK && ifk_bm25_disk_file_ndocs(dx, 0) != segs[i].n)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: holds %d documents, the catalog says %d", path,
                          ifk_bm25_disk_file_ndocs(dx, 0), segs[i].n);
        ifk_bm25_disk_free(&dx);
        if (st == IFK_OK) continue;
        if (st == IFK_ERR_OOM) return st;
        snprintf(why, sizeof why, "%s", ifk_errmsg());
        ifk_err_clear();
        ifk_bm25 *ix = NULL;
        IFK_CHECK(ifk_store_index_docs(man->dir, segs[i].first, segs[i].first + segs[i].n, &ix));
        st = ifk_bm25_save_fault(ix, path, "index.repair");
        ifk_bm25_free(&ix);
        IFK_CHECK(st);
        note_(note, ctx, 1, "index segment %s could not be read (%s); rebuilt it from the store's documents [%d, %d)",
              segs[i].file, why, segs[i].first, segs[i].first + segs[i].n);
    }
    return IFK_OK;
}

/* Merges the two newest segments of segs[0..*n) into one (listed before the old files go). */
static ifk_status merge_last_(ifk_manifest *man, ifk_index_seg *segs, int *n) {
    ifk_index_seg *a = &segs[*n - 2], *b = &segs[*n - 1], out;
    int vanished;
    ifk_bm25 *ix = NULL;
    IFK_CHECK(load_list_(man->dir, a, 2, &ix, &vanished));
    ifk_status st = save_seg_(man->dir, ix, a->first, a->n + b->n, "index.merge", &out);
    ifk_bm25_free(&ix);
    IFK_CHECK(st);
    IFK_CHECK(ifk_manifest_set_segments(man, a, 2, &out));
    ifk_fault("index.merge.unlink");
    for (int i = 0; i < 2; i++) {
        char path[2048];
        seg_path_(path, sizeof path, man->dir, segs[*n - 2 + i].file);
        if (strcmp(segs[*n - 2 + i].file, out.file)) unlink(path);
    }
    segs[*n - 2] = out;
    (*n)--;
    return IFK_OK;
}

ifk_status ifk_store_index_update(ifk_manifest *man, int *added, int *merged, ifk_index_note note, void *ctx) {
    *added = *merged = 0;
    ifk_index_seg *segs;
    int n;
    IFK_CHECK(ifk_manifest_segments(man, &segs, &n));
    ifk_status st = IFK_OK;
    int covered = 0;
    for (int i = 0; i < n; i++) {
        if (segs[i].first != covered) break; /* not contiguous (damaged): rebuilt below */
        covered += segs[i].n;
    }
    if (covered > man->n_docs || (n && segs[n - 1].first + segs[n - 1].n != covered)) {
        IFK_CHECK_GOTO(st, ifk_manifest_set_segments(man, segs, n, NULL), done);
        n = covered = 0;
    }
    IFK_CHECK_GOTO(st, repair_(man, segs, n, note, ctx), done);
    ifk_index_seg *grown = realloc(segs, sizeof *segs * (size_t)(n + 1));
    if (!grown) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    segs = grown;
    if (covered < man->n_docs) {
        ifk_bm25 *ix = NULL;
        note_(note, ctx, 0, "building the BM25 index over %d document%s...", man->n_docs - covered,
              man->n_docs - covered > 1 ? "s" : "");
        IFK_CHECK_GOTO(st, ifk_store_index_docs(man->dir, covered, man->n_docs, &ix), done);
        st = save_seg_(man->dir, ix, covered, man->n_docs - covered, "index.segment", &segs[n]);
        ifk_bm25_free(&ix);
        IFK_CHECK_GOTO(st, st, done);
        IFK_CHECK_GOTO(st, ifk_manifest_set_segments(man, NULL, 0, &segs[n]), done);
        *added = man->n_docs - covered;
        n++;
    }
    while (n >= 2 && (4 * segs[n - 1].n >= segs[n - 2].n || n > IFK_INDEX_MAX_SEGMENTS)) {
        IFK_CHECK_GOTO(st, merge_last_(man, segs, &n), done);
        (*merged)++;
    }
done:
    free(segs);
    return st;
}

/* One pass of ifk_store_index_verify over a fresh read of the catalog; *vanished when a listed
 * file disappeared (a merge by a running job), and then nothing is reported. */
/* One pass; a listed segment that is not there ends it with *vanished set and its path in gone. */
static ifk_status verify_pass_(const char *dir, void (*report)(const char *, void *), void *ctx, int *bad, int *indexed,
                               int *vanished, char gone[2048]) {
    *indexed = 0, *vanished = 0;
    ifk_manifest m;
    IFK_CHECK(ifk_manifest_open(&m, dir, 0));
    ifk_index_seg *segs;
    int n;
    ifk_status st = ifk_manifest_segments(&m, &segs, &n);
    if (st != IFK_OK) {
        ifk_manifest_free(&m);
        return st;
    }
    char (*msgs)[2600] = calloc((size_t)(2 * n + 1), sizeof *msgs);
    int nmsg = 0, covered = 0;
    for (int i = 0; msgs && i < n && !*vanished; i++) {
        char path[2048];
        seg_path_(path, sizeof path, dir, segs[i].file);
        if (segs[i].first != covered || segs[i].first + segs[i].n > m.n_docs)
            snprintf(msgs[nmsg++], sizeof *msgs, "%s: index segment covers documents [%d, %d), expected from %d within %d",
                     path, segs[i].first, segs[i].first + segs[i].n, covered, m.n_docs);
        covered = segs[i].first + segs[i].n;
        struct stat sb;
        if (stat(path, &sb) != 0 && errno == ENOENT) {
            *vanished = 1;
            snprintf(gone, 2048, "%s", path);
            break;
        }
        ifk_bm25 *ix = NULL;
        const int nm0 = nmsg;
        if (ifk_bm25_load(&ix, path) != IFK_OK)
            snprintf(msgs[nmsg++], sizeof *msgs, "index segment %s: %s", segs[i].file, ifk_errmsg());
        else if (ifk_bm25_ndocs(ix) != segs[i].n)
            snprintf(msgs[nmsg++], sizeof *msgs, "%s: index segment holds %d documents, the catalog says %d", path,
                     ifk_bm25_ndocs(ix), segs[i].n);
        else /* its documents must be the catalog's: a segment copied from another store reads fine */
            for (int d = 0; d < segs[i].n; d++) {
                ifk_doc_rec r;
                if (ifk_manifest_get(&m, segs[i].first + d, &r) != IFK_OK) {
                    snprintf(msgs[nmsg++], sizeof *msgs, "%s: %s", path, ifk_errmsg());
                    break;
                }
                const int same = !strcmp(r.id, ifk_bm25_doc_id(ix, d));
                if (!same)
                    snprintf(msgs[nmsg++], sizeof *msgs, "%s: index segment lists \"%.200s\" as document %d, the "
                             "catalog \"%.200s\"", path, ifk_bm25_doc_id(ix, d), segs[i].first + d, r.id);
                ifk_doc_rec_free(&r);
                if (!same) break;
            }
        if (nmsg == nm0) *indexed += segs[i].n;
        else { /* the way out: cache rebuilds a listed segment that is missing */
            const size_t k = strlen(msgs[nmsg - 1]);
            snprintf(msgs[nmsg - 1] + k, sizeof *msgs - k, " (remove %s and rerun `infoflow cache` on this store to "
                     "rebuild it)", segs[i].file);
        }
        ifk_bm25_free(&ix);
    }
    if (!msgs) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (int i = 0; !*vanished && i < nmsg; i++) report(msgs[i], ctx), (*bad)++;
    free(msgs);
    free(segs);
    ifk_manifest_free(&m);
    return st;
}

ifk_status ifk_store_index_verify(const ifk_manifest *man, void (*report)(const char *, void *), void *ctx, int *bad,
                                  int *indexed) {
    int vanished = 0;
    char gone[2048] = "", prev[2048] = "";
    /* a running cache job may merge segments under us (the catalog then lists new ones): read again;
     * the same listed segment missing twice in a row is missing, not being replaced */
    for (int attempt = 0; attempt < 5; attempt++) {
        IFK_CHECK(verify_pass_(man->dir, report, ctx, bad, indexed, &vanished, gone));
        if (!vanished) return IFK_OK;
        if (!strcmp(gone, prev)) break;
        memcpy(prev, gone, sizeof prev);
    }
    char msg[2200];
    if (!strcmp(gone, prev))
        snprintf(msg, sizeof msg, "%s: index segment is missing (the catalog lists it)", gone);
    else
        snprintf(msg, sizeof msg, "%s: index segments kept disappearing while being read (5 attempts)", man->dir);
    report(msg, ctx), (*bad)++;
    return IFK_OK;
}
