/* test_bm25.c — the BM25 index: analysis, exact scores against the formula computed here, ranking
 * and ties, top-k selection against a brute-force ranking, save/load round trips, and damaged,
 * foreign or missing index files. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm25.h"

#define K1 1.2
#define B 0.75

/* ---- fixture: a fresh temp directory per test ------------------------------------------------- */

/* every file-attached HDF5 id bm25.c opened (files, groups, datasets, attributes) is closed again,
 * on success and on failure; HDF5 1.10 has no public count of dataspace or transient type ids */
static void no_open_h5_(const char *after) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    cr_assert_eq(n, 0, "%zd HDF5 objects left open after %s", n, after);
}

static char dir_[64];
static char path_[256]; /* dir_/index.h5 */

static void setup_(void) {
    strcpy(dir_, "/tmp/ifk_bm25_XXXXXX");
    cr_assert_not_null(mkdtemp(dir_));
    snprintf(path_, sizeof path_, "%s/index.h5", dir_);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the tests' own HDF5 calls report through asserts */
}

static void teardown_(void) {
    DIR *d = opendir(dir_);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir_, e->d_name);
        if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
    rmdir(dir_);
}

static char *tmp_(const char *name) {
    static char p[8][256];
    static int i;
    char *s = p[i++ % 8];
    snprintf(s, 256, "%s/%s", dir_, name);
    return s;
}

static int exists_(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void add_(ifk_bm25 *ix, const char *id, const char *text) {
    cr_assert_eq(ifk_bm25_add(ix, id, text, strlen(text)), IFK_OK, "add %s: %s", id, ifk_errmsg());
}

#define MAXK 256
typedef struct {
    const char *ids[MAXK];
    double scores[MAXK];
    int n;
} hits;

static hits search_(const ifk_bm25 *ix, const char *q, int k) {
    hits h;
    for (int i = 0; i < MAXK; i++) h.ids[i] = NULL, h.scores[i] = -1.0;
    h.n = -7;
    cr_assert_leq(k, MAXK);
    cr_assert_eq(ifk_bm25_search(ix, q, strlen(q), k, h.ids, h.scores, &h.n), IFK_OK, "search '%s': %s", q,
                 ifk_errmsg());
    cr_assert(h.n >= 0 && h.n <= k, "search '%s': n = %d", q, h.n);
    for (int i = h.n; i < MAXK; i++)
        cr_assert(h.ids[i] == NULL && h.scores[i] == -1.0, "search '%s' wrote past n at %d", q, i);
    return h;
}

/* the formula of bm25.h, written out independently of bm25.c */
static double idf_(double N, double df) { return log(1.0 + (N - df + 0.5) / (df + 0.5)); }
static double w_(double N, double df, double tf, double dl, double avg) {
    return idf_(N, df) * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / avg));
}
static void near_(double got, double want, const char *what) {
    cr_assert(fabs(got - want) <= 1e-9, "%s: %.17g, want %.17g", what, got, want);
}

TestSuite(bm25, .init = setup_, .fini = teardown_);

/* ---- analysis ---------------------------------------------------------------------------------- */

/* reads the /terms strings of an index file, in file order */
static int read_terms_(const char *p, char ***out) {
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t d = H5Dopen2(f, "/terms", H5P_DEFAULT);
    cr_assert_geq(d, 0);
    hid_t sp = H5Dget_space(d);
    hsize_t n;
    cr_assert_eq(H5Sget_simple_extent_dims(sp, &n, NULL), 1);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char **s = calloc(n + 1, sizeof *s);
    if (n) cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
    char **c = calloc(n + 1, sizeof *c);
    for (hsize_t i = 0; i < n; i++) c[i] = strdup(s[i]), H5free_memory(s[i]);
    free(s);
    H5Tclose(t), H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    *out = c;
    return (int)n;
}

Test(bm25, analysis_folds_ascii_splits_on_punctuation_keeps_digits_and_utf8_words) {
    ifk_bm25 *ix;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    /* NUL inside the text separates like any other non-term byte */
    const char text[] = "Hello, WORLD! hello-world 42 abc123 ABC123 x_y 3.14 caf\xc3\xa9 na\xc3\xafve\n"
                        "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc\tCAF\xc3\x89 foo\0bar";
    cr_assert_eq(ifk_bm25_add(ix, "d", text, sizeof text - 1), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_ndocs(ix), 1);
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    char **terms;
    int n = read_terms_(path_, &terms);
    static const char *want[] = {"14",          "3",     "42",  "abc123", "bar", "caf\xc3\x89", "caf\xc3\xa9",
                                 "foo",         "hello", "na\xc3\xafve", "world", "x", "y",
                                 "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc"};
    int nw = (int)(sizeof want / sizeof *want);
    cr_assert_eq(n, nw, "%d distinct terms, want %d", n, nw);
    for (int i = 0; i < n; i++) cr_assert_str_eq(terms[i], want[i], "term %d", i);
    for (int i = 0; i < n; i++) free(terms[i]);
    free(terms);

    /* the same analysis on queries: ASCII case folds, non-ASCII does not */
    cr_assert_eq(search_(ix, "HELLO", 5).n, 1);
    cr_assert_eq(search_(ix, "hElLo!!", 5).n, 1);
    cr_assert_eq(search_(ix, "hell", 5).n, 0, "no prefix matching");
    cr_assert_eq(search_(ix, "abc", 5).n, 0, "abc123 is one term");
    cr_assert_eq(search_(ix, "xy", 5).n, 0, "x_y is two terms");
    cr_assert_eq(search_(ix, "caf", 5).n, 0, "caf\xc3\xa9 is one term");
    ifk_bm25_free(&ix);
    cr_assert_null(ix);

    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    add_(ix, "lower", "un caf\xc3\xa9 noir");
    add_(ix, "upper", "UN CAF\xc3\x89 NOIR");
    hits h = search_(ix, "Caf\xc3\xa9", 5);
    cr_assert_eq(h.n, 1);
    cr_assert_str_eq(h.ids[0], "lower");
    h = search_(ix, "CAF\xc3\x89", 5);
    cr_assert_eq(h.n, 1);
    cr_assert_str_eq(h.ids[0], "upper");
    cr_assert_eq(search_(ix, "NOIR", 5).n, 2);
    ifk_bm25_free(&ix);
}

/* ---- exact scores ------------------------------------------------------------------------------ */

/* d0: the cat sat on the mat       (6 terms)   the 2, cat 1, mat 1
 * d1: The dog chased the cat!      (5 terms)   the 2, dog 1, cat 1
 * d2: Dogs and cats: a story ...   (7 terms)   dogs 2 (no "cat", no "dog")
 * d3: cat CAT cat                  (3 terms)   cat 3
 * N = 4, avg = 21 / 4; df: cat 3, dog 1, the 2, mat 1, dogs 1 */
static ifk_bm25 *toy_(void) {
    ifk_bm25 *ix;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    add_(ix, "d0", "the cat sat on the mat");
    add_(ix, "d1", "The dog chased the cat!");
    add_(ix, "d2", "Dogs and cats: a story about dogs.");
    add_(ix, "d3", "cat CAT cat");
    cr_assert_eq(ifk_bm25_ndocs(ix), 4);
    return ix;
}

typedef struct {
    const char *id;
    double score;
} exp_hit;

static int cmp_exp_(const void *a, const void *b) {
    const exp_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return strcmp(x->id, y->id); /* toy ids sort in insertion order */
}

static void expect_hits_(const ifk_bm25 *ix, const char *q, exp_hit *want, int nwant) {
    qsort(want, (size_t)nwant, sizeof *want, cmp_exp_);
    hits h = search_(ix, q, 10);
    cr_assert_eq(h.n, nwant, "'%s': %d hits, want %d", q, h.n, nwant);
    for (int i = 0; i < nwant; i++) {
        cr_assert_str_eq(h.ids[i], want[i].id, "'%s' rank %d", q, i);
        near_(h.scores[i], want[i].score, want[i].id);
    }
}

Test(bm25, scores_equal_the_okapi_formula) {
    ifk_bm25 *ix = toy_();
    const double N = 4, avg = 21.0 / 4;
    expect_hits_(ix, "cat",
                 (exp_hit[]){{"d0", w_(N, 3, 1, 6, avg)}, {"d1", w_(N, 3, 1, 5, avg)}, {"d3", w_(N, 3, 3, 3, avg)}}, 3);
    expect_hits_(ix, "cat dog",
                 (exp_hit[]){{"d0", w_(N, 3, 1, 6, avg)},
                             {"d1", w_(N, 3, 1, 5, avg) + w_(N, 1, 1, 5, avg)},
                             {"d3", w_(N, 3, 3, 3, avg)}},
                 3);
    expect_hits_(ix, "the mat",
                 (exp_hit[]){{"d0", w_(N, 2, 2, 6, avg) + w_(N, 1, 1, 6, avg)}, {"d1", w_(N, 2, 2, 5, avg)}}, 2);
    expect_hits_(ix, "DOGS", (exp_hit[]){{"d2", w_(N, 1, 2, 7, avg)}}, 1);
    /* a repeated query term counts once */
    expect_hits_(ix, "cat CAT Cat, cat",
                 (exp_hit[]){{"d0", w_(N, 3, 1, 6, avg)}, {"d1", w_(N, 3, 1, 5, avg)}, {"d3", w_(N, 3, 3, 3, avg)}}, 3);
    /* the expected order itself: d3 (tf 3) > d1 (shorter) > d0 for "cat" */
    hits h = search_(ix, "cat", 3);
    cr_assert(h.n == 3 && !strcmp(h.ids[0], "d3") && !strcmp(h.ids[1], "d1") && !strcmp(h.ids[2], "d0"));
    cr_assert(h.scores[0] > h.scores[1] && h.scores[1] > h.scores[2]);
    ifk_bm25_free(&ix);
}

/* ---- ranking, ties, k ------------------------------------------------------------------------- */

Test(bm25, equal_scores_are_ordered_by_id_not_by_insertion) {
    ifk_bm25 *ix;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    add_(ix, "t3", "Banana, APPLE.");
    add_(ix, "other", "apple apple banana");
    add_(ix, "t2", "banana apple");
    add_(ix, "none", "cherry");
    add_(ix, "t1", "apple banana");
    hits h = search_(ix, "apple", 10);
    cr_assert_eq(h.n, 4);
    const char *want[] = {"other", "t1", "t2", "t3"};
    for (int i = 0; i < 4; i++) cr_assert_str_eq(h.ids[i], want[i], "rank %d", i);
    cr_assert(h.scores[0] > h.scores[1]);
    cr_assert(h.scores[1] == h.scores[2] && h.scores[2] == h.scores[3], "same terms, same length: same score");
    for (int k = 1; k <= 4; k++) {
        hits p = search_(ix, "apple", k);
        cr_assert_eq(p.n, k);
        for (int i = 0; i < k; i++) cr_assert_str_eq(p.ids[i], want[i], "k = %d rank %d", k, i);
    }
    /* the tied documents are the best ones: k = 2 keeps the two smallest ids, not the first added */
    hits p = search_(ix, "banana", 2);
    cr_assert_eq(p.n, 2);
    cr_assert_str_eq(p.ids[0], "t1");
    cr_assert_str_eq(p.ids[1], "t2");
    ifk_bm25_free(&ix);
}

Test(bm25, k_larger_than_the_corpus_returns_every_match) {
    ifk_bm25 *ix = toy_();
    hits h = search_(ix, "cat", 200);
    cr_assert_eq(h.n, 3, "three documents contain cat");
    h = search_(ix, "the cats", 200);
    cr_assert_eq(h.n, 3);
    h = search_(ix, "a the cat cats dog", 5);
    cr_assert_eq(h.n, 4, "every document matches");
    int n = -1;
    cr_assert_eq(ifk_bm25_search(ix, "cat", 3, 0, NULL, NULL, &n), IFK_OK);
    cr_assert_eq(n, 0, "k = 0");
    cr_assert_eq(ifk_bm25_search(ix, "cat", 3, -1, NULL, NULL, &n), IFK_ERR_ARG);
    ifk_bm25_free(&ix);
}

Test(bm25, queries_without_a_known_term_return_nothing) {
    ifk_bm25 *ix = toy_();
    cr_assert_eq(search_(ix, "unicorn", 5).n, 0);
    cr_assert_eq(search_(ix, "", 5).n, 0);
    cr_assert_eq(search_(ix, "!!! ,,, --", 5).n, 0);
    cr_assert_eq(search_(ix, "ca t", 5).n, 0);
    const char *ids[2];
    double sc[2];
    int n = -1;
    cr_assert_eq(ifk_bm25_search(ix, NULL, 0, 2, ids, sc, &n), IFK_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(search_(ix, "unicorn CAT", 5).n, 3, "one known term is enough");
    ifk_bm25_free(&ix);

    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    cr_assert_eq(search_(ix, "cat", 5).n, 0, "empty index");
    add_(ix, "blank", " ... ");
    cr_assert_eq(search_(ix, "cat", 5).n, 0, "index of termless documents");
    ifk_bm25_free(&ix);
}

Test(bm25, duplicate_ids_are_rejected_and_leave_the_index_unchanged) {
    ifk_bm25 *ix;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    add_(ix, "a", "hello world");
    const char *t = "unique zebra";
    cr_assert_eq(ifk_bm25_add(ix, "a", t, strlen(t)), IFK_ERR_ARG);
    cr_assert(strstr(ifk_errmsg(), "duplicate") && strstr(ifk_errmsg(), "'a'"), "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_ndocs(ix), 1);
    cr_assert_eq(search_(ix, "zebra", 5).n, 0, "the rejected text was not indexed");
    add_(ix, "A", "zebra"); /* ids are case-sensitive */
    cr_assert_eq(ifk_bm25_ndocs(ix), 2);
    hits h = search_(ix, "hello zebra", 5);
    cr_assert_eq(h.n, 2);
    cr_assert_eq(ifk_bm25_add(ix, NULL, t, strlen(t)), IFK_ERR_ARG);
    ifk_bm25_free(&ix);
}

/* ---- top-k selection against a brute-force ranking ---------------------------------------------- */

#define RV 8
#define RDOCS 90
static const char *rvocab_[RV] = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"};

static uint64_t rng_;
static unsigned rnd_(unsigned n) {
    rng_ ^= rng_ << 13, rng_ ^= rng_ >> 7, rng_ ^= rng_ << 17;
    return (unsigned)((rng_ >> 33) % n);
}

typedef struct {
    char id[16];
    int tf[RV], dl;
} rdoc;

/* documents of 0..10 vocabulary words with random case and separators; counts kept here */
static ifk_bm25 *random_corpus_(rdoc *docs, uint64_t seed) {
    static const char *seps[] = {" ", ", ", ".", "-", "\n", "\t", "!? ", " (", ") "};
    rng_ = seed;
    ifk_bm25 *ix;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    for (int d = 0; d < RDOCS; d++) {
        rdoc *r = &docs[d];
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "r%03d", d);
        char text[512] = "";
        int nw = (int)rnd_(11);
        for (int i = 0; i < nw; i++) {
            int w = (int)rnd_(d % 3 ? 4 : RV); /* a small vocabulary for most documents: many ties */
            char word[16];
            strcpy(word, rvocab_[w]);
            if (rnd_(3) == 0) word[0] = (char)(word[0] - 32);
            if (rnd_(5) == 0)
                for (char *c = word; *c; c++) *c = (char)(*c >= 'a' ? *c - 32 : *c);
            strcat(text, seps[rnd_(9)]);
            strcat(text, word);
            r->tf[w]++, r->dl++;
        }
        add_(ix, r->id, text);
    }
    return ix;
}

Test(bm25, top_k_selection_matches_a_brute_force_ranking) {
    rdoc docs[RDOCS];
    ifk_bm25 *ix = random_corpus_(docs, 424242);
    double avg = 0, df[RV] = {0};
    for (int d = 0; d < RDOCS; d++) {
        avg += docs[d].dl;
        for (int w = 0; w < RV; w++) df[w] += docs[d].tf[w] > 0;
    }
    avg /= RDOCS;
    int ties_seen = 0;
    for (int trial = 0; trial < 60; trial++) {
        char q[128] = "";
        int in_q[RV] = {0}, nq = 1 + (int)rnd_(3);
        for (int i = 0; i < nq; i++) {
            int w = (int)rnd_(RV);
            in_q[w] = 1; /* a repeated word counts once */
            strcat(q, i ? " " : "");
            strcat(q, rvocab_[w]);
        }
        double want[RDOCS];
        int positive = 0;
        for (int d = 0; d < RDOCS; d++) {
            want[d] = 0;
            for (int w = 0; w < RV; w++)
                if (in_q[w] && docs[d].tf[w]) want[d] += w_(RDOCS, df[w], docs[d].tf[w], docs[d].dl, avg);
            positive += want[d] > 0;
        }
        hits all = search_(ix, q, RDOCS + 10);
        cr_assert_eq(all.n, positive, "'%s': %d hits, %d documents contain a query term", q, all.n, positive);
        static const int ks[] = {1, 2, 3, 5, 10, 40, RDOCS, RDOCS + 10};
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            int k = ks[ki];
            hits h = search_(ix, q, k);
            cr_assert_eq(h.n, k < positive ? k : positive, "'%s' k = %d", q, k);
            for (int i = 0; i < h.n; i++) {
                int d = atoi(h.ids[i] + 1);
                cr_assert_str_eq(h.ids[i], docs[d].id);
                near_(h.scores[i], want[d], h.ids[i]);
                /* the same prefix as the full ranking, bit for bit */
                cr_assert_str_eq(h.ids[i], all.ids[i], "'%s' k = %d rank %d", q, k, i);
                cr_assert(h.scores[i] == all.scores[i]);
                if (i > 0) {
                    cr_assert(h.scores[i - 1] > h.scores[i] ||
                                  (h.scores[i - 1] == h.scores[i] && strcmp(h.ids[i - 1], h.ids[i]) < 0),
                              "'%s' k = %d: ranks %d and %d out of order", q, k, i - 1, i);
                    ties_seen += h.scores[i - 1] == h.scores[i];
                }
            }
            /* nothing left out scores above the last one returned */
            if (h.n > 0)
                for (int d = 0; d < RDOCS; d++) {
                    int in = 0;
                    for (int i = 0; i < h.n; i++) in |= !strcmp(h.ids[i], docs[d].id);
                    if (!in) cr_assert_leq(want[d], h.scores[h.n - 1] + 1e-9, "'%s' k = %d misses %s", q, k, docs[d].id);
                }
        }
    }
    cr_assert_gt(ties_seen, 20, "the corpus exercises ties (%d seen)", ties_seen);
    ifk_bm25_free(&ix);
}

/* ---- persistence ----------------------------------------------------------------------------- */

static void same_results_(const ifk_bm25 *a, const ifk_bm25 *b, const char *q) {
    hits x = search_(a, q, MAXK), y = search_(b, q, MAXK);
    cr_assert_eq(x.n, y.n, "'%s'", q);
    for (int i = 0; i < x.n; i++) {
        cr_assert_str_eq(x.ids[i], y.ids[i], "'%s' rank %d", q, i);
        cr_assert(x.scores[i] == y.scores[i], "'%s' rank %d: %.17g vs %.17g", q, i, x.scores[i], y.scores[i]);
    }
}

Test(bm25, save_and_load_give_identical_results) {
    rdoc docs[RDOCS];
    ifk_bm25 *ix = random_corpus_(docs, 99);
    add_(ix, "the cat", "the cat sat on the mat");
    add_(ix, "", "an empty id zzz");
    add_(ix, "empty text", "");
    add_(ix, "caf\xc3\xa9", "caf\xc3\xa9 cr\xc3\xa8me CR\xc3\x88ME 42");
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    cr_assert(exists_(path_));
    cr_assert(!exists_(tmp_("index.h5.tmp")), "the temporary file was renamed");
    no_open_h5_("save");
    ifk_bm25 *lx = NULL;
    cr_assert_eq(ifk_bm25_load(&lx, path_), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_ndocs(lx), RDOCS + 4);
    no_open_h5_("load");
    static const char *qs[] = {"alpha",       "beta gamma",       "theta eta zeta eps", "ALPHA alpha delta",
                               "cat mat",     "zzz",              "42",                 "caf\xc3\xa9",
                               "cr\xc3\xa8me", "unknown",          "alpha beta gamma delta eps zeta eta theta the"};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) same_results_(ix, lx, qs[i]);
    hits h = search_(lx, "zzz", 3);
    cr_assert_eq(h.n, 1);
    cr_assert_str_eq(h.ids[0], "", "the empty id survives");
    h = search_(lx, "cr\xc3\xa8me", 3);
    cr_assert_eq(h.n, 1);
    cr_assert_str_eq(h.ids[0], "caf\xc3\xa9");

    /* a loaded index can grow, still rejects known ids, and saves over the old file */
    const char *t = "alpha omega";
    cr_assert_eq(ifk_bm25_add(lx, "r005", t, strlen(t)), IFK_ERR_ARG);
    add_(lx, "new", t);
    add_(ix, "new", t);
    same_results_(ix, lx, "alpha omega");
    cr_assert_eq(ifk_bm25_save(lx, path_), IFK_OK, "%s", ifk_errmsg());
    ifk_bm25 *l2 = NULL;
    cr_assert_eq(ifk_bm25_load(&l2, path_), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_ndocs(l2), RDOCS + 5);
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) same_results_(ix, l2, qs[i]);
    same_results_(ix, l2, "omega alpha");
    ifk_bm25_free(&ix), ifk_bm25_free(&lx), ifk_bm25_free(&l2);
}

Test(bm25, an_empty_index_round_trips) {
    ifk_bm25 *ix, *lx = NULL;
    cr_assert_eq(ifk_bm25_create(&ix), IFK_OK);
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_load(&lx, path_), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_bm25_ndocs(lx), 0);
    cr_assert_eq(search_(lx, "anything", 4).n, 0);
    add_(lx, "x", "now something");
    cr_assert_eq(search_(lx, "SOMETHING", 4).n, 1);
    ifk_bm25_free(&ix), ifk_bm25_free(&lx);
}

Test(bm25, save_into_a_missing_directory_fails_naming_the_path) {
    ifk_bm25 *ix = toy_();
    const char *p = tmp_("no/such/dir/index.h5");
    ifk_status st = ifk_bm25_save(ix, p);
    cr_assert_neq(st, IFK_OK);
    cr_assert_eq(st, IFK_ERR_H5, "%s", ifk_status_name(st));
    cr_assert(strstr(ifk_errmsg(), p), "%s", ifk_errmsg());
    no_open_h5_("a failed save");
    cr_assert(!exists_(tmp_("no")), "nothing was created");
    ifk_bm25_free(&ix);
}

/* ---- damaged, foreign and missing files --------------------------------------------------------- */

static void copy_file_(const char *from, const char *to, long keep /* -1: all */) {
    FILE *f = fopen(from, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    FILE *g = fopen(to, "wb");
    cr_assert_not_null(g);
    size_t m = (size_t)(keep < 0 ? n : keep);
    cr_assert_eq(fwrite(buf, 1, m, g), m);
    fclose(g);
    free(buf);
}

static void expect_load_fails_(const char *p, ifk_status code, const char *what) {
    ifk_bm25 *ix = (ifk_bm25 *)&ix; /* load must set it to NULL */
    ifk_err_clear();
    ifk_status st = ifk_bm25_load(&ix, p);
    cr_assert_neq(st, IFK_OK, "%s: loaded", p);
    cr_assert_null(ix);
    if (code != IFK_OK) cr_assert_eq(st, code, "%s: %s, want %s (%s)", p, ifk_status_name(st), ifk_status_name(code), ifk_errmsg());
    cr_assert(!strncmp(ifk_errmsg(), p, strlen(p)) && ifk_errmsg()[strlen(p)] == ':', "message starts with the path: %s",
              ifk_errmsg());
    if (what) cr_assert(strstr(ifk_errmsg(), what), "message mentions '%s': %s", what, ifk_errmsg());
    no_open_h5_(p);
}

Test(bm25, missing_non_hdf5_and_truncated_files_fail_with_the_path) {
    expect_load_fails_(tmp_("nope.h5"), IFK_ERR_IO, "No such file");
    expect_load_fails_(dir_, IFK_ERR_IO, "not a regular file");
    const char *txt = tmp_("text.h5");
    FILE *f = fopen(txt, "w");
    fputs("{\"id\": 1, \"text\": \"this is JSON, not HDF5\"}\n", f);
    fclose(f);
    expect_load_fails_(txt, IFK_ERR_FORMAT, "not an HDF5 file");
    const char *empty = tmp_("empty.h5");
    fclose(fopen(empty, "w"));
    expect_load_fails_(empty, IFK_ERR_FORMAT, "not an HDF5 file");

    ifk_bm25 *ix = toy_();
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    ifk_bm25_free(&ix);
    struct stat sb;
    cr_assert_eq(stat(path_, &sb), 0);
    const char *cut = tmp_("cut.h5");
    for (long keep = 16; keep < sb.st_size; keep += sb.st_size / 7) {
        copy_file_(path_, cut, keep);
        expect_load_fails_(cut, IFK_OK, NULL);
    }
}

Test(bm25, a_foreign_hdf5_file_is_not_an_index) {
    const char *p = tmp_("foreign.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "/data", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, (int[]){1, 2, 3}), 0);
    H5Dclose(d), H5Sclose(sp), H5Fclose(f);
    expect_load_fails_(p, IFK_ERR_FORMAT, "'format' is missing");
}

/* tampering: each function changes one thing in a fresh copy of a good index */
static void rw_ds_(hid_t f, const char *name, hid_t type, size_t elem, void (*edit)(void *buf, hsize_t n)) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "%s", name);
    hid_t sp = H5Dget_space(d);
    hsize_t n;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    void *buf = calloc(n + 1, elem);
    cr_assert_geq(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    edit(buf, n);
    cr_assert_geq(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0, "%s", name);
    free(buf);
    H5Sclose(sp), H5Dclose(d);
}

static void off_swap_(void *b, hsize_t n) {
    int64_t *o = b;
    cr_assert_geq(n, 4);
    int64_t t = o[1];
    o[1] = o[2], o[2] = t;
}
static void off_end_(void *b, hsize_t n) { ((int64_t *)b)[n - 1] += 5; }
static void off_start_(void *b, hsize_t n) {
    (void)n;
    ((int64_t *)b)[0] = 1;
}
static void off_wild_(void *b, hsize_t n) { ((int64_t *)b)[n / 2] = -4000000000000ll; }
static void docs_range_(void *b, hsize_t n) { ((int32_t *)b)[n - 1] = 4; }
static void docs_neg_(void *b, hsize_t n) {
    (void)n;
    ((int32_t *)b)[0] = -1;
}
static void tf_zero_(void *b, hsize_t n) { ((int32_t *)b)[n / 2] = 0; }
static void len_plus_(void *b, hsize_t n) {
    (void)n;
    ((int32_t *)b)[1] += 1;
}

static void off_drop_(void *b, hsize_t n) {
    (void)n;
    ((int64_t *)b)[2] = 0; /* 0, 1, 0, ...: term 0 is right, term 1 runs backwards */
}
static void df_last_plus_(void *b, hsize_t n) { ((int32_t *)b)[n - 1] += 1; }
static void off_last_plus_(void *b, hsize_t n) { ((int64_t *)b)[n - 1] += 1; }
/* df and offsets agree with each other but point past the end of /post_docs */
static void t_off_past_end(hid_t f) {
    rw_ds_(f, "/df", H5T_NATIVE_INT32, 4, df_last_plus_);
    rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_last_plus_);
}
static void t_off_drop(hid_t f) { rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_drop_); }
static void t_off_swap(hid_t f) { rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_swap_); }
static void t_off_end(hid_t f) { rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_end_); }
static void t_off_start(hid_t f) { rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_start_); }
static void t_off_wild(hid_t f) { rw_ds_(f, "/post_offsets", H5T_NATIVE_INT64, 8, off_wild_); }
static void t_docs_range(hid_t f) { rw_ds_(f, "/post_docs", H5T_NATIVE_INT32, 4, docs_range_); }
static void t_docs_neg(hid_t f) { rw_ds_(f, "/post_docs", H5T_NATIVE_INT32, 4, docs_neg_); }
static void t_tf_zero(hid_t f) { rw_ds_(f, "/post_tf", H5T_NATIVE_INT32, 4, tf_zero_); }
static void t_len_plus(hid_t f) { rw_ds_(f, "/doc_len", H5T_NATIVE_INT32, 4, len_plus_); }

static void set_attr_(hid_t f, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    cr_assert_geq(H5Adelete(f, name), 0, "%s", name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(a, 0);
    cr_assert_geq(H5Awrite(a, mtype, v), 0);
    H5Aclose(a), H5Sclose(sp);
}
static void t_format(hid_t f) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *s = "some-other-format";
    set_attr_(f, "format", t, t, &s);
    H5Tclose(t);
}
static void t_none(hid_t f) { (void)f; }
static void t_format_fixed(hid_t f) { /* the right value in a type the writer never writes */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 13);
    set_attr_(f, "format", t, t, "infoflow-bm25");
    H5Tclose(t);
}
static void t_version_i16(hid_t f) { set_attr_(f, "format_version", H5T_STD_I16LE, H5T_NATIVE_INT16, (int16_t[]){1}); }
static void t_version_be(hid_t f) { set_attr_(f, "format_version", H5T_STD_I32BE, H5T_NATIVE_INT32, (int32_t[]){1}); }
/* /doc_len rewritten with the same values as int16 */
static void t_doc_len_i16(hid_t f) {
    hid_t d = H5Dopen2(f, "/doc_len", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t n;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    int16_t v[64];
    cr_assert_leq(n, 64);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    cr_assert_geq(H5Ldelete(f, "/doc_len", H5P_DEFAULT), 0);
    d = H5Dcreate2(f, "/doc_len", H5T_STD_I16LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d), H5Sclose(sp);
}
static void t_version(hid_t f) { set_attr_(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, (int32_t[]){2}); }
static void t_version_float(hid_t f) { set_attr_(f, "format_version", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (double[]){1}); }
static void t_n_docs(hid_t f) { set_attr_(f, "n_docs", H5T_STD_I64LE, H5T_NATIVE_INT64, (int64_t[]){999}); }
static void t_avg(hid_t f) { set_attr_(f, "avg_len", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (double[]){5.0}); }
static void t_b(hid_t f) { set_attr_(f, "b", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (double[]){1.5}); }
static void t_no_df(hid_t f) { cr_assert_geq(H5Ldelete(f, "/df", H5P_DEFAULT), 0); }
static void t_no_k1(hid_t f) { cr_assert_geq(H5Adelete(f, "k1"), 0); }
static void t_terms_order(hid_t f) {
    hid_t d = H5Dopen2(f, "/terms", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *s[64] = {0};
    cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
    char *x = s[0];
    s[0] = s[1], s[1] = x;
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
    for (int i = 0; i < 64; i++)
        if (s[i]) H5free_memory(s[i]);
    H5Tclose(t), H5Dclose(d);
}
static void t_doc_ids_dup(hid_t f) {
    hid_t d = H5Dopen2(f, "/doc_ids", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const char *s[4] = {"d0", "d1", "d2", "d1"};
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
    H5Tclose(t), H5Dclose(d);
}

static void tamper_(const char *good, const char *name, void (*fn)(hid_t), ifk_status code, const char *what) {
    const char *p = tmp_(name);
    copy_file_(good, p, -1);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    fn(f);
    cr_assert_geq(H5Fclose(f), 0);
    if (code == IFK_OK) {
        ifk_bm25 *ix = NULL;
        cr_assert_eq(ifk_bm25_load(&ix, p), IFK_OK, "%s: %s", name, ifk_errmsg());
        cr_assert_eq(search_(ix, "cat", 5).n, 3);
        ifk_bm25_free(&ix);
    } else {
        expect_load_fails_(p, code, what);
    }
    unlink(p);
}

Test(bm25, damaged_indexes_fail_with_the_path_and_the_problem) {
    ifk_bm25 *ix = toy_();
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    ifk_bm25_free(&ix);
    /* the untouched copy loads: the failures below come from the tampering */
    tamper_(path_, "none.h5", t_none, IFK_OK, NULL);
    /* only the layout the writer writes is read: the right values in other types are refused */
    tamper_(path_, "fixed.h5", t_format_fixed, IFK_ERR_FORMAT, "'format' is not a variable-length string");
    tamper_(path_, "version_i16.h5", t_version_i16, IFK_ERR_FORMAT, "'format_version' is not int32");
    tamper_(path_, "version_be.h5", t_version_be, IFK_ERR_FORMAT, "'format_version' is not int32");
    tamper_(path_, "doc_len_i16.h5", t_doc_len_i16, IFK_ERR_FORMAT, "/doc_len is not of int32");

    tamper_(path_, "off_swap.h5", t_off_swap, IFK_ERR_FORMAT, "/post_offsets");
    tamper_(path_, "off_end.h5", t_off_end, IFK_ERR_FORMAT, "/post_offsets");
    tamper_(path_, "off_past_end.h5", t_off_past_end, IFK_ERR_FORMAT, "/post_offsets ends at 17 but /post_docs has 16");
    tamper_(path_, "off_drop.h5", t_off_drop, IFK_ERR_FORMAT, "/post_offsets is not monotonic at 1");
    tamper_(path_, "off_start.h5", t_off_start, IFK_ERR_FORMAT, "/post_offsets[0] = 1");
    tamper_(path_, "off_wild.h5", t_off_wild, IFK_ERR_FORMAT, "/post_offsets");
    tamper_(path_, "docs_range.h5", t_docs_range, IFK_ERR_FORMAT, "/post_docs");
    tamper_(path_, "docs_neg.h5", t_docs_neg, IFK_ERR_FORMAT, "/post_docs[0] = -1");
    tamper_(path_, "tf_zero.h5", t_tf_zero, IFK_ERR_FORMAT, "/post_tf");
    tamper_(path_, "len_plus.h5", t_len_plus, IFK_ERR_FORMAT, "/doc_len[1]");
    tamper_(path_, "format.h5", t_format, IFK_ERR_FORMAT, "some-other-format");
    tamper_(path_, "version.h5", t_version, IFK_ERR_FORMAT, "format_version 2");
    tamper_(path_, "version_float.h5", t_version_float, IFK_ERR_FORMAT, "format_version");
    tamper_(path_, "n_docs.h5", t_n_docs, IFK_ERR_FORMAT, "n_docs = 999");
    tamper_(path_, "avg.h5", t_avg, IFK_ERR_FORMAT, "avg_len");
    tamper_(path_, "b.h5", t_b, IFK_ERR_FORMAT, "b = 1.5");
    tamper_(path_, "no_df.h5", t_no_df, IFK_ERR_FORMAT, "/df is missing");
    tamper_(path_, "no_k1.h5", t_no_k1, IFK_ERR_FORMAT, "'k1' is missing");
    tamper_(path_, "terms.h5", t_terms_order, IFK_ERR_FORMAT, "/terms is not sorted");
    tamper_(path_, "ids.h5", t_doc_ids_dup, IFK_ERR_FORMAT, "repeats");

    ix = NULL;
    cr_assert_eq(ifk_bm25_load(&ix, path_), IFK_OK, "the original is untouched: %s", ifk_errmsg());
    ifk_bm25_free(&ix);
}

/* ---- searching index files on disk (ifk_bm25_disk) ------------------------------------------- */

/* A disk reader over the files paths[0..n). */
static ifk_bm25_disk *disk_(const char *const *paths, int n) {
    ifk_bm25_disk *dx;
    cr_assert_eq(ifk_bm25_disk_create(&dx), IFK_OK);
    for (int i = 0; i < n; i++) cr_assert_eq(ifk_bm25_disk_add(dx, paths[i]), IFK_OK, "%s: %s", paths[i], ifk_errmsg());
    return dx;
}

/* ix and dx give the same ids in the same order with bit-identical scores for q, top k. */
static void same_on_disk_(const ifk_bm25 *ix, ifk_bm25_disk *dx, const char *q, int k) {
    hits x = search_(ix, q, k), y;
    y.n = -1;
    cr_assert_eq(ifk_bm25_disk_search(dx, q, strlen(q), k, y.ids, y.scores, &y.n), IFK_OK, "'%s': %s", q, ifk_errmsg());
    cr_assert_eq(x.n, y.n, "'%s' k = %d: %d hits in memory, %d on disk", q, k, x.n, y.n);
    for (int i = 0; i < x.n; i++) {
        cr_assert_str_eq(x.ids[i], y.ids[i], "'%s' k = %d rank %d", q, k, i);
        cr_assert(x.scores[i] == y.scores[i], "'%s' k = %d rank %d: %.17g vs %.17g", q, k, i, x.scores[i], y.scores[i]);
    }
}

/* 500 documents over ~1,000 distinct terms (more than one block of the term look-up), some rare
 * (in 1-3 documents, far apart: the document lengths are read point by point) and some common. */
#define BIG 500
static void big_text_(int i, char *buf, size_t cap) {
    snprintf(buf, cap, "W%04d w%04d, %s w%04d %s-%s w%04d.", i, (i * 7) % 997, rvocab_[rnd_(RV)], (i * 13) % 211,
             rvocab_[rnd_(3)], rvocab_[rnd_(RV)], (i % 5) * 1000);
}

Test(bm25, searching_files_on_disk_equals_searching_the_index_in_memory) {
    ifk_bm25 *whole, *part = NULL;
    cr_assert_eq(ifk_bm25_create(&whole), IFK_OK);
    const int cuts[] = {0, 1, 130, BIG};
    const char *parts[3] = {tmp_("p0.h5"), tmp_("p1.h5"), tmp_("p2.h5")};
    rng_ = 77;
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(ifk_bm25_create(&part), IFK_OK);
        for (int i = cuts[c]; i < cuts[c + 1]; i++) {
            char id[16], text[256];
            snprintf(id, sizeof id, "b%03d", i);
            big_text_(i, text, sizeof text);
            add_(whole, id, text), add_(part, id, text);
        }
        cr_assert_eq(ifk_bm25_save(part, parts[c]), IFK_OK, "%s", ifk_errmsg());
        ifk_bm25_free(&part);
    }
    cr_assert_eq(ifk_bm25_save(whole, path_), IFK_OK, "%s", ifk_errmsg());
    ifk_bm25_disk *one = disk_((const char *[]){path_}, 1), *three = disk_(parts, 3);
    cr_assert_eq(ifk_bm25_disk_ndocs(three), BIG);
    cr_assert_eq(ifk_bm25_disk_file_ndocs(three, 1), 129);
    static const int ks[] = {1, 2, 5, 50, MAXK};
    for (int trial = 0; trial < 80; trial++) {
        char q[160] = "";
        int nw = 1 + (int)rnd_(4);
        for (int j = 0; j < nw; j++) {
            char w[16];
            if (rnd_(3) == 0) snprintf(w, sizeof w, "%s", rvocab_[rnd_(RV)]);
            else snprintf(w, sizeof w, "%c%04d", rnd_(2) ? 'w' : 'W', (int)rnd_(1100)); /* some in no document */
            strcat(q, j ? " " : ""), strcat(q, w);
        }
        for (size_t k = 0; k < sizeof ks / sizeof *ks; k++) {
            same_on_disk_(whole, one, q, ks[k]);
            same_on_disk_(whole, three, q, ks[k]);
        }
    }
    same_on_disk_(whole, three, "", 5);
    same_on_disk_(whole, three, "w9999 nothing", 5);
    same_on_disk_(whole, three, "alpha ALPHA alpha beta", MAXK);
    /* a rare term: only its own postings are read */
    const char *ids[4];
    double sc[4];
    int n;
    cr_assert_eq(ifk_bm25_disk_search(three, "w0499", 5, 4, ids, sc, &n), IFK_OK);
    cr_assert(n >= 1 && n <= 3, "w0499 is in 1-3 documents (%d)", n);
    cr_assert_eq(ifk_bm25_disk_postings_read(three), n, "only the term's own postings were read");
    cr_assert_eq(ifk_bm25_disk_search(three, "w0499", 5, 0, ids, sc, &n), IFK_OK);
    cr_assert_eq(n, 0, "k = 0");
    cr_assert_eq(ifk_bm25_disk_search(three, "x", 1, -1, ids, sc, &n), IFK_ERR_ARG);
    ifk_bm25_disk_free(&one), ifk_bm25_disk_free(&three);
    no_open_h5_("the disk readers");
    ifk_bm25_free(&whole);
    /* a damaged term met by the binary search (the middle entry: the first one read) */
    const char *bad = tmp_("bad_term.h5");
    copy_file_(path_, bad, -1);
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, "/terms", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t nt, mid, one1 = 1;
    H5Sget_simple_extent_dims(sp, &nt, NULL);
    cr_assert_gt(nt, 256, "more terms than the last block");
    mid = nt / 2;
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, &mid, NULL, &one1, NULL);
    hid_t ms = H5Screate_simple(1, &one1, NULL);
    const char *upper[1] = {"Upper"};
    cr_assert_geq(H5Dwrite(d, t, ms, sp, H5P_DEFAULT, upper), 0);
    H5Sclose(ms), H5Tclose(t), H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    ifk_bm25_disk *dbad = disk_((const char *[]){bad}, 1);
    cr_assert_eq(ifk_bm25_disk_search(dbad, "w0001", 5, 4, ids, sc, &n), IFK_ERR_FORMAT);
    cr_assert(strstr(ifk_errmsg(), bad) && strstr(ifk_errmsg(), "'Upper' is not an analysed term"), "%s", ifk_errmsg());
    ifk_bm25_disk_free(&dbad);
    no_open_h5_("a failed disk search");
}

/* ---- ties do not depend on the order documents were added in, nor on segments ---------------- */

/* TIE documents "d<n>" whose bytewise id order is not their numeric order (d10 < d2): most are
 * "lily" alone (all tied), some "lily lily" (better), "lily tom" (worse), "tom" (no match). */
#define TIE 40
static const char *tie_text_(int i) {
    return i % 7 == 3 ? "lily lily" : i % 5 == 1 ? "Lily, Tom." : i % 11 == 4 ? "tom" : "LILY";
}

/* The TIE documents added in the order perm[] and cut into segments at cuts[0..nc): each segment
 * saved as file name<i>.h5 (opened on disk in *dx) and appended in memory into the result. */
static ifk_bm25 *tie_index_(const int *perm, const int *cuts, int nc, const char *name, ifk_bm25_disk **dx) {
    ifk_bm25 *all;
    cr_assert_eq(ifk_bm25_create(&all), IFK_OK);
    cr_assert_eq(ifk_bm25_disk_create(dx), IFK_OK);
    for (int c = 0, at = 0; c <= nc; c++) {
        const int end = c < nc ? cuts[c] : TIE;
        ifk_bm25 *seg;
        cr_assert_eq(ifk_bm25_create(&seg), IFK_OK);
        for (; at < end; at++) {
            char id[16];
            snprintf(id, sizeof id, "d%d", perm[at]);
            add_(seg, id, tie_text_(perm[at]));
        }
        char file[64];
        snprintf(file, sizeof file, "%s%d.h5", name, c);
        const char *p = tmp_(file);
        cr_assert_eq(ifk_bm25_save(seg, p), IFK_OK, "%s", ifk_errmsg());
        cr_assert_eq(ifk_bm25_disk_add(*dx, p), IFK_OK, "%s: %s", p, ifk_errmsg());
        cr_assert_eq(ifk_bm25_append(all, seg), IFK_OK, "%s", ifk_errmsg());
        ifk_bm25_free(&seg);
    }
    return all;
}

Test(bm25, equal_scores_rank_the_same_whatever_the_insertion_order_and_segments) {
    int perm[4][TIE];
    for (int i = 0; i < TIE; i++) perm[0][i] = i, perm[1][i] = TIE - 1 - i, perm[2][i] = perm[3][i] = i;
    rng_ = 2024;
    for (int v = 2; v < 4; v++) /* two shuffles */
        for (int i = TIE - 1; i > 0; i--) {
            int j = (int)rnd_((unsigned)i + 1), t = perm[v][i];
            perm[v][i] = perm[v][j], perm[v][j] = t;
        }
    static const int cuts[4][3] = {{TIE, TIE, TIE}, {1, 17, 30}, {9, 10, 38}, {20, 21, 22}};
    static const int ncut[4] = {0, 3, 3, 3};
    ifk_bm25 *mem[4];
    ifk_bm25_disk *dsk[4];
    char name[4][8];
    for (int v = 0; v < 4; v++) {
        snprintf(name[v], sizeof name[v], "tie%d_", v);
        mem[v] = tie_index_(perm[v], cuts[v], ncut[v], name[v], &dsk[v]);
    }
    /* the reference ranking, from variant 0: scores descending, ties by id ascending (bytewise) */
    hits ref = search_(mem[0], "lily", MAXK);
    int match = 0;
    for (int i = 0; i < TIE; i++) match += strcmp(tie_text_(i), "tom") != 0;
    cr_assert_eq(ref.n, match, "every document but the 'tom' ones matches");
    int ties = 0;
    for (int i = 1; i < ref.n; i++) {
        cr_assert(ref.scores[i - 1] > ref.scores[i] ||
                      (ref.scores[i - 1] == ref.scores[i] && strcmp(ref.ids[i - 1], ref.ids[i]) < 0),
                  "ranks %d (%s) and %d (%s) out of order", i - 1, ref.ids[i - 1], i, ref.ids[i]);
        ties += ref.scores[i - 1] == ref.scores[i];
    }
    cr_assert_gt(ties, 15, "most documents tie (%d ties)", ties);
    static const int ks[] = {1, 2, 3, 5, 6, 7, 12, 20, 33, MAXK};
    for (int v = 0; v < 4; v++)
        for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) {
            const int k = ks[j], want = k < ref.n ? k : ref.n;
            hits x = search_(mem[v], "lily", k), y;
            y.n = -1;
            cr_assert_eq(ifk_bm25_disk_search(dsk[v], "lily", 4, k, y.ids, y.scores, &y.n), IFK_OK, "%s",
                         ifk_errmsg());
            cr_assert(x.n == want && y.n == want, "variant %d k = %d: %d in memory, %d on disk, want %d", v, k, x.n,
                      y.n, want);
            for (int i = 0; i < want; i++) {
                cr_assert_str_eq(x.ids[i], ref.ids[i], "variant %d k = %d rank %d (in memory)", v, k, i);
                cr_assert_str_eq(y.ids[i], ref.ids[i], "variant %d k = %d rank %d (on disk)", v, k, i);
                cr_assert(x.scores[i] == ref.scores[i] && y.scores[i] == ref.scores[i], "variant %d k = %d rank %d", v,
                          k, i);
            }
        }
    for (int v = 0; v < 4; v++) ifk_bm25_free(&mem[v]), ifk_bm25_disk_free(&dsk[v]);
    no_open_h5_("the tie readers");
}

/* Opening path or searching it for every term of the toy index fails naming path and what. */
static void expect_disk_fails_(const char *p, const char *what) {
    ifk_bm25_disk *dx;
    cr_assert_eq(ifk_bm25_disk_create(&dx), IFK_OK);
    ifk_err_clear();
    ifk_status st = ifk_bm25_disk_add(dx, p);
    if (st == IFK_OK) {
        const char *q = "a about and cat cats chased dog dogs mat on sat story the", *ids[4];
        double sc[4];
        int n;
        st = ifk_bm25_disk_search(dx, q, strlen(q), 4, ids, sc, &n);
    }
    cr_assert_neq(st, IFK_OK, "%s: searched", p);
    cr_assert(!strncmp(ifk_errmsg(), p, strlen(p)) && ifk_errmsg()[strlen(p)] == ':', "message starts with the path: %s",
              ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), what), "message mentions '%s': %s", what, ifk_errmsg());
    ifk_bm25_disk_free(&dx);
    no_open_h5_(p);
}

static void tamper_disk_(const char *good, const char *name, void (*fn)(hid_t), const char *what) {
    const char *p = tmp_(name);
    copy_file_(good, p, -1);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    fn(f);
    cr_assert_geq(H5Fclose(f), 0);
    expect_disk_fails_(p, what);
    unlink(p);
}

static void t_avg_frac(hid_t f) { set_attr_(f, "avg_len", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (double[]){5.1}); }

Test(bm25, damaged_files_fail_on_disk_with_the_path_and_the_dataset) {
    ifk_bm25 *ix = toy_();
    cr_assert_eq(ifk_bm25_save(ix, path_), IFK_OK, "%s", ifk_errmsg());
    ifk_bm25_disk *dx = disk_((const char *[]){path_}, 1);
    same_on_disk_(ix, dx, "a about and cat cats chased dog dogs mat on sat story the", 4);
    ifk_bm25_disk_free(&dx);
    ifk_bm25_free(&ix);
    expect_disk_fails_(tmp_("nope.h5"), "No such file");
    tamper_disk_(path_, "fixed.h5", t_format_fixed, "'format' is not a variable-length string");
    tamper_disk_(path_, "doc_len_i16.h5", t_doc_len_i16, "/doc_len is not of int32");
    tamper_disk_(path_, "format.h5", t_format, "some-other-format");
    tamper_disk_(path_, "version.h5", t_version, "format_version 2");
    tamper_disk_(path_, "n_docs.h5", t_n_docs, "n_docs = 999");
    tamper_disk_(path_, "b.h5", t_b, "b = 1.5");
    tamper_disk_(path_, "no_df.h5", t_no_df, "/df is missing");
    tamper_disk_(path_, "avg_frac.h5", t_avg_frac, "avg_len = 5.0999");
    /* what the query reads */
    tamper_disk_(path_, "off_swap.h5", t_off_swap, "/post_offsets");
    tamper_disk_(path_, "off_end.h5", t_off_end, "/post_offsets");
    tamper_disk_(path_, "off_past_end.h5", t_off_past_end, "/post_offsets");
    tamper_disk_(path_, "off_start.h5", t_off_start, "/post_offsets");
    tamper_disk_(path_, "off_wild.h5", t_off_wild, "/post_offsets");
    tamper_disk_(path_, "docs_range.h5", t_docs_range, "/post_docs");
    tamper_disk_(path_, "docs_neg.h5", t_docs_neg, "/post_docs[0] = -1");
    tamper_disk_(path_, "tf_zero.h5", t_tf_zero, "/post_tf");
    tamper_disk_(path_, "terms.h5", t_terms_order, "/terms is not sorted");
}
