/* test_query.c — the query pipeline's load (pipeline/query.c): the loader thread that fills the
 * cache layer by layer while the compute runs must give the query, bit for bit, what loading
 * everything first gives — also with the reader slowed (the read-rate limit) or the shards dropped
 * from the page cache (ifk_store_drop_cache), and the same as
 * the reference gather (whole chunks read, copied into the cache, rotated). A damaged slab fails
 * the query with the checksum message, from the loader's thread. Correctness only: timing is
 * `infoflow bench ttft --read-mbps`. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "ingest.h"
#include "query.h"
#include "store.h"
#include "store_maint.h"
#include "testutil.h"

#define NDOCS 4
#define DOC_TOKENS 70
#define CHUNK 32
#define NP 5

static ifk_model m_;
static char dir_[64];
static int prompt_[NP];

static ifk_status record_(const char *shard, ifk_doc_rec *recs, int n, void *ctx) {
    return ifk_ingest_record(ctx, shard, recs, n);
}

/* A store of NDOCS random documents (several chunks each) cached with a random stories260K-shaped model. */
static void setup_(void) {
    cr_assert_eq(ifk_engine_load_any(NULL, NULL, "stories260K", &m_, &(ifk_tokenizer *){NULL}), IFK_OK, "%s",
                 ifk_errmsg());
    strcpy(dir_, "/tmp/ifk_query_XXXXXX");
    cr_assert(mkdtemp(dir_));
    char fp[17];
    ifk_model_fingerprint(&m_, fp);
    ifk_store_params sp;
    ifk_store_params_from_model(&sp, &m_, fp);
    sp.dtype = IFK_DT_F16;
    sp.chunk_tokens = CHUNK;
    ifk_manifest *man = NULL;
    int lock = -1, removed;
    ifk_ingest g = {0};
    cr_assert_eq(ifk_ingest_open_store(dir_, &sp, 0, 0, 1, &man, &lock, &removed), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_ingest_init(&g, &m_, NULL, dir_, &sp, "shard-test", 0), IFK_OK, "%s", ifk_errmsg());
    uint64_t r = 7;
    int tok[DOC_TOKENS];
    for (int d = 0; d < NDOCS; d++) {
        for (int i = 0; i < DOC_TOKENS; i++) r = r * 6364136223846793005ull + 1442695040888963407ull, tok[i] = 3 + (int)((r >> 33) % 500);
        char id[16];
        snprintf(id, sizeof id, "d%d", d);
        ifk_ingest_doc_in in = {.id = id, .tokens = tok, .n_tokens = DOC_TOKENS};
        cr_assert_eq(ifk_ingest_doc(&g, &in, dir_, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    }
    cr_assert_eq(ifk_ingest_commit(&g, record_, man), IFK_OK, "%s", ifk_errmsg());
    ifk_ingest_free(&g);
    ifk_ingest_close_store(&man, &lock);
    for (int i = 0; i < NP; i++) prompt_[i] = 10 + 37 * i;
}

static void teardown_(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_);
    cr_assert_eq(system(cmd), 0);
    ifk_model_free(&m_);
}

TestSuite(query, .init = setup_, .fini = teardown_);

static const int docs_[NDOCS] = {2, 0, 3, 1};

static ifk_query_result run_(ifk_store *s, ifk_method method, int reorder, int serial) {
    ifk_query_docs qd = {docs_, NDOCS};
    ifk_query_opts o = {.method = method, .budget = 0.2, .reorder = reorder, .score_lo = -1, .score_hi = -1,
                        .steps = 4, .seed = 3, .serial_load = serial};
    ifk_query_result r;
    cr_assert_eq(ifk_query_run(&m_, s, &qd, prompt_, NP, &o, NULL, &r), IFK_OK, "%s", ifk_errmsg());
    return r;
}

static void same_(const ifk_query_result *a, const ifk_query_result *b, const char *what) {
    cr_assert_eq(a->T, b->T, "%s", what);
    cr_assert_eq(a->n_selected, b->n_selected, "%s", what);
    cr_assert_eq(memcmp(a->selected, b->selected, sizeof(int) * a->n_selected), 0, "%s: selections differ", what);
    cr_assert_eq(memcmp(a->order, b->order, sizeof(int) * a->n_chunks), 0, "%s: orders differ", what);
    cr_assert_eq(a->n_answer, b->n_answer, "%s", what);
    cr_assert_eq(memcmp(a->answer, b->answer, sizeof(int) * a->n_answer), 0, "%s: answers differ", what);
    cr_assert_eq(memcmp(a->first_logits, b->first_logits, sizeof(float) * a->vocab), 0, "%s: logits not bitwise equal",
                 what);
}

/* Overlapped, serial, slowed and cold loads: the same query, bit for bit, for every cached method. */
Test(query, overlapped_serial_and_slowed_loads_agree) {
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
    const ifk_method ms[] = {IFK_METHOD_INFOFLOW, IFK_METHOD_CACHEBLEND, IFK_METHOD_INFOFLOW_DEV,
                             IFK_METHOD_EPIC,     IFK_METHOD_RANDOM,     IFK_METHOD_NONE};
    for (int reorder = 0; reorder < 2; reorder++)
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
            if (reorder && ms[i] != IFK_METHOD_INFOFLOW) continue;
            char what[64];
            snprintf(what, sizeof what, "%s%s", ifk_method_name(ms[i]), reorder ? " --reorder" : "");
            cr_assert_eq(ifk_store_set_read_rate(s, 0), IFK_OK);
            ifk_query_result a = run_(s, ms[i], reorder, 1), b = run_(s, ms[i], reorder, 0);
            cr_assert_eq(ifk_store_set_read_rate(s, 1.0), IFK_OK); /* ~200 KB of K/V: some 0.2 s */
            const double th0 = ifk_store_throttled(s);
            ifk_query_result c = run_(s, ms[i], reorder, 0);
            cr_assert_gt(ifk_store_throttled(s) - th0, 0.05, "%s: the slowed reader waited", what);
            cr_assert_gt(c.t_fill, 50.0, "%s: the loader's time includes the read-rate wait (%.1f ms)", what, c.t_fill);
            cr_assert_eq(ifk_store_set_read_rate(s, 0), IFK_OK);
            cr_assert_eq(ifk_store_drop_cache(s), IFK_OK, "%s", ifk_errmsg()); /* cold: shards reopened */
            ifk_query_result d = run_(s, ms[i], reorder, 0);
            same_(&a, &b, what);
            same_(&a, &c, what);
            same_(&a, &d, what);
            ifk_query_result_free(&a), ifk_query_result_free(&b), ifk_query_result_free(&c), ifk_query_result_free(&d);
        }
    ifk_store_close(&s);
}

/* The reference gather, as the pipeline did before the loader: whole chunks read into buffers,
 * copied into the cache at local positions, rotated per chunk; then the engine's score, select,
 * recompute and prompt. The pipeline's InfoFlow answer must be this one bit for bit. */
Test(query, loader_matches_reference_gather) {
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
    ifk_query_result r = run_(s, IFK_METHOD_INFOFLOW, 0, 0);
    const ifk_config *cfg = &m_.cfg;
    const ifk_manifest *man = ifk_store_manifest(s);
    const int L = cfg->n_layers, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim, pre = man->p.prefix_len;
    ifk_kvcache c;
    ifk_state st = {0};
    cr_assert_eq(ifk_kvcache_init(&c, cfg, r.T + NP + 4), IFK_OK);
    int *ids = malloc(sizeof(int) * r.T), bos = cfg->bos_id, zero = 0, slot = 1;
    float *kb = malloc(sizeof(float) * L * Hkv * CHUNK * Dh), *vb = malloc(sizeof(float) * L * Hkv * CHUNK * Dh);
    cr_assert_eq(ifk_forward(&m_, &st, &c, &bos, &zero, 1, NULL, 0), IFK_OK);
    ids[0] = bos;
    for (int i = 0; i < NDOCS; i++)
        for (int ch = 0; ch < ifk_store_doc(s, docs_[i])->n_chunks; ch++) {
            const int n = ifk_store_doc(s, docs_[i])->chunk_len[ch];
            cr_assert_eq(ifk_store_read_chunk(s, docs_[i], ch, 0, Hkv, kb, vb, ids + slot), IFK_OK, "%s", ifk_errmsg());
            for (int l = 0; l < L; l++)
                for (int h = 0; h < Hkv; h++) {
                    memcpy(ifk_kv_k(&c, l, h) + (size_t)slot * Dh, kb + ((size_t)l * Hkv + h) * n * Dh, sizeof(float) * n * Dh);
                    memcpy(ifk_kv_v(&c, l, h) + (size_t)slot * Dh, vb + ((size_t)l * Hkv + h) * n * Dh, sizeof(float) * n * Dh);
                }
            for (int j = 0; j < n; j++) c.pos[slot + j] = pre + j;
            ifk_kvcache_rerotate(&c, m_.inv_freq, cfg->rope_style, slot, n, slot - pre);
            slot += n;
        }
    cr_assert_eq(slot, r.T);
    c.len = r.T;
    int lo, hi, first = 1 + ifk_store_doc(s, docs_[0])->chunk_len[0];
    ifk_default_score_layers(L, &lo, &hi);
    float *psum = malloc(sizeof(float) * NP * (r.T + NP)), *score = malloc(sizeof(float) * r.T);
    int *sel = malloc(sizeof(int) * r.T), n = ifk_budget(0.2, r.T);
    cr_assert_eq(ifk_score_infoflow(&m_, &st, &c, r.T, prompt_, NP, lo, hi, psum, score), IFK_OK);
    cr_assert_eq(ifk_select_top(score, r.T, first, n, sel), IFK_OK);
    cr_assert_eq(r.n_selected, n);
    cr_assert_eq(memcmp(sel, r.selected, sizeof(int) * n), 0, "selections differ from the reference gather's");
    cr_assert_eq(ifk_recompute(&m_, &st, &c, r.T, ids, sel, n), IFK_OK);
    int pos[NP];
    for (int i = 0; i < NP; i++) pos[i] = r.T + i;
    float *logits = malloc(sizeof(float) * cfg->vocab_size);
    cr_assert_eq(ifk_forward(&m_, &st, &c, prompt_, pos, NP, logits, 0), IFK_OK);
    cr_assert_eq(memcmp(logits, r.first_logits, sizeof(float) * cfg->vocab_size), 0,
                 "first logits not bitwise those of the reference gather");
    free(ids), free(kb), free(vb), free(psum), free(score), free(sel), free(logits);
    ifk_state_free(&st);
    ifk_kvcache_free(&c);
    ifk_query_result_free(&r);
    ifk_store_close(&s);
}

/* INFOFLOW_READ_DELAY_MBPS: a bad value is refused naming it; a good one slows the reads. */
Test(query, read_delay_env) {
    ifk_store *s = NULL;
    setenv("INFOFLOW_READ_DELAY_MBPS", "fast", 1);
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_ERR_ARG);
    cr_assert(strstr(ifk_errmsg(), "INFOFLOW_READ_DELAY_MBPS") && strstr(ifk_errmsg(), "fast"), "%s", ifk_errmsg());
    setenv("INFOFLOW_READ_DELAY_MBPS", "2", 1);
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
    unsetenv("INFOFLOW_READ_DELAY_MBPS");
    ifk_query_result r = run_(s, IFK_METHOD_INFOFLOW, 0, 0);
    cr_assert_gt(ifk_store_throttled(s), 0.02, "throttled %g s", ifk_store_throttled(s));
    ifk_query_result_free(&r);
    ifk_store_close(&s);
}

/* A slab damaged on disk: the loader's checksum failure fails the query (no hang, no wrong
 * answer), with the message naming the slab, whether overlapped or serial. */
Test(query, damaged_slab_fails_from_the_loader) {
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
    ifk_chunk_src src;
    cr_assert_eq(ifk_store_locate(s, docs_[2], 1, 0, m_.cfg.n_kv_heads, &src, NULL), IFK_OK, "%s", ifk_errmsg());
    /* where layer 3, head 1 of V lies in the file: find its first bytes */
    const int l = 3, h = 1;
    const size_t bytes = (size_t)src.n * src.head_dim * 2;
    unsigned char head[64];
    memcpy(head, src.slab[((size_t)1 * src.n_layers + l) * src.nh + h], sizeof head);
    ifk_chunk_src_free(&src);
    const ifk_manifest *man = ifk_store_manifest(s);
    char path[512], shard[256];
    cr_assert_eq(ifk_manifest_shard(man, ifk_store_doc(s, docs_[2])->shard, shard, sizeof shard), IFK_OK);
    snprintf(path, sizeof path, "%s/%s", dir_, shard);
    ifk_store_close(&s);
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    unsigned char *map = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert(map != MAP_FAILED);
    unsigned char *at = memmem(map, (size_t)sb.st_size, head, sizeof head);
    cr_assert(at, "slab found in the shard");
    at[bytes / 2] ^= 0x40;
    munmap(map, (size_t)sb.st_size);
    close(fd);
    for (int serial = 0; serial < 2; serial++) {
        cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
        ifk_query_docs qd = {docs_, NDOCS};
        ifk_query_opts o = {.method = IFK_METHOD_INFOFLOW, .budget = 0.2, .score_lo = -1, .score_hi = -1, .steps = 2,
                            .serial_load = serial};
        ifk_query_result r;
        cr_assert_eq(ifk_query_run(&m_, s, &qd, prompt_, NP, &o, NULL, &r), IFK_ERR_H5);
        cr_assert(strstr(ifk_errmsg(), "V (layer 3, head 1) fails its Fletcher32 checksum"), "%s", ifk_errmsg());
        ifk_store_close(&s);
    }
}

/* A model without a prefix token (config.json bos_token_id null): the query refuses it in one
 * message naming the field, before any load (the store's fingerprint refuses it first from the
 * CLI; this is the library's own guard). */
Test(query, refuses_a_model_without_prefix_token) {
    ifk_store *s = NULL;
    cr_assert_eq(ifk_store_open(&s, dir_), IFK_OK, "%s", ifk_errmsg());
    ifk_query_docs qd = {docs_, NDOCS};
    ifk_query_opts o = {.method = IFK_METHOD_INFOFLOW, .budget = 0.2, .score_lo = -1, .score_hi = -1, .steps = 4};
    ifk_query_result r;
    const int bos = m_.cfg.bos_id;
    m_.cfg.bos_id = -1;
    ifk_status st = ifk_query_run(&m_, s, &qd, prompt_, NP, &o, NULL, &r);
    m_.cfg.bos_id = bos;
    cr_assert_eq(st, IFK_ERR_ARG);
    cr_assert(strstr(ifk_errmsg(), "bos_token_id is null or absent"), "%s", ifk_errmsg());
    ifk_err_clear();
    ifk_store_close(&s);
}
