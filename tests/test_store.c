/* test_store.c — the KV store: shard round trips in every dtype, head-slice reads, the manifest,
 * stored K/V against the engine's direct chunk prefill, and damage that must be reported. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chunk.h"
#include "engine.h"
#include "sys.h"
#include "store.h"
#include "dtype.h"
#include "fletcher32.h"
#include "shard_writer.h"
#include "store_maint.h"
#include "testutil.h"

extern char **environ;

static ifk_store_params params_(ifk_dtype dt) {
    ifk_store_params p = {.n_layers = 3, .n_kv_heads = 4, .head_dim = 8, .vocab_size = 100, .bos_id = 1,
                          .rope_theta = 10000, .dtype = dt, .chunk_tokens = 16, .prefix_len = 1};
    strcpy(p.fingerprint, "0123456789abcdef");
    strcpy(p.model_source, "test");
    return p;
}

static char *tmpdir_(void) {
    static _Thread_local char d[64];
    strcpy(d, "/tmp/ifk_store_XXXXXX");
    cr_assert(mkdtemp(d));
    return d;
}

static void rmdir_(const char *d) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    cr_assert_eq(system(cmd), 0);
}

/* Writes ndocs documents of chunk lengths {16, 5} into one committed shard and a manifest. */
static int compress_; /* deflate level for write_store_: 0 takes the reader's direct path */

static void write_store_(const char *dir, ifk_dtype dt, float **kk, float **vv) {
    ifk_store_params p = params_(dt);
    p.compress = compress_;
    ifk_manifest m;
    cr_assert_eq(ifk_manifest_create(&m, dir, &p), IFK_OK, "%s", ifk_errmsg());
    ifk_shard_writer *w;
    cr_assert_eq(ifk_shard_create(&w, dir, "shard-test.h5", &p, 0), IFK_OK, "%s", ifk_errmsg());
    ifk_doc_rec recs[2];
    const int lens[2] = {16, 5};
    for (int d = 0; d < 2; d++) {
        char id[16];
        snprintf(id, sizeof id, "doc%d", d);
        cr_assert_eq(ifk_shard_begin_doc(w, id, "some text", 9), IFK_OK);
        for (int c = 0; c < 2; c++) {
            int n = lens[c], tok[16];
            size_t nel = (size_t)3 * 4 * n * 8;
            for (int i = 0; i < n; i++) tok[i] = (i * 7 + d) % 100;
            float *k = tu_randvec(nel, 100 + 10 * d + c, 3), *v = tu_randvec(nel, 200 + 10 * d + c, 3);
            cr_assert_eq(ifk_shard_put_chunk(w, tok, n, k, v), IFK_OK, "%s", ifk_errmsg());
            kk[2 * d + c] = k, vv[2 * d + c] = v;
        }
        cr_assert_eq(ifk_shard_end_doc(w, &recs[d]), IFK_OK);
    }
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/shard-test.h5.tmp", dir);
    cr_assert_eq(access(tmp, F_OK), 0, "written under a temporary name");
    cr_assert_eq(ifk_shard_commit(&w), IFK_OK, "%s", ifk_errmsg());
    cr_assert_neq(access(tmp, F_OK), 0, "renamed on commit");
    cr_assert_eq(ifk_manifest_add(&m, "shard-test.h5", recs, 2), IFK_OK, "%s", ifk_errmsg());
    ifk_manifest_free(&m);
}

static void expect_round_trip_(ifk_dtype dt) {
    char *dir = tmpdir_();
    float *kk[4], *vv[4];
    write_store_(dir, dt, kk, vv);
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, dir), IFK_OK, "%s", ifk_errmsg());
    const ifk_manifest *m = ifk_store_manifest(s);
    cr_assert_eq(m->n_docs, 2);
    cr_assert_eq(m->n_tokens, 42);
    float k[3 * 4 * 16 * 8], v[3 * 4 * 16 * 8], ks[3 * 2 * 16 * 8], vs[3 * 2 * 16 * 8];
    int tok[16];
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 2; c++) {
            int n = ifk_store_doc(s, d)->chunk_len[c];
            size_t nel = (size_t)3 * 4 * n * 8;
            cr_assert_eq(ifk_store_read_chunk(s, d, c, 0, 4, k, v, tok), IFK_OK, "%s", ifk_errmsg());
            for (size_t i = 0; i < nel; i++) {
                float ek = kk[2 * d + c][i], ev = vv[2 * d + c][i];
                if (dt == IFK_DT_F16) {
                    uint16_t h;
                    ifk_f32_to_f16(&h, &ek, 1), ifk_f16_to_f32(&ek, &h, 1);
                    ifk_f32_to_f16(&h, &ev, 1), ifk_f16_to_f32(&ev, &h, 1);
                } else if (dt == IFK_DT_BF16) {
                    uint16_t h;
                    ifk_f32_to_bf16(&h, &ek, 1), ifk_bf16_to_f32(&ek, &h, 1);
                    ifk_f32_to_bf16(&h, &ev, 1), ifk_bf16_to_f32(&ev, &h, 1);
                }
                cr_assert(k[i] == ek && v[i] == ev, "%s doc %d chunk %d element %zu: %g/%g want %g/%g",
                          ifk_dtype_name(dt), d, c, i, k[i], v[i], ek, ev);
            }
            for (int i = 0; i < n; i++) cr_assert_eq(tok[i], (i * 7 + d) % 100);
            /* a head slice (heads 1..2) is the same numbers as the full read's slice */
            cr_assert_eq(ifk_store_read_chunk(s, d, c, 1, 2, ks, vs, NULL), IFK_OK, "%s", ifk_errmsg());
            for (int l = 0; l < 3; l++)
                for (int h = 0; h < 2; h++)
                    cr_assert_arr_eq(ks + ((size_t)l * 2 + h) * n * 8, k + ((size_t)l * 4 + 1 + h) * n * 8,
                                     sizeof(float) * n * 8, "layer %d head %d", l, 1 + h);
        }
    char *text;
    size_t tl;
    cr_assert_eq(ifk_store_read_text(s, 1, &text, &tl), IFK_OK);
    cr_assert_str_eq(text, "some text");
    free(text);
    ifk_store_close(&s);
    for (int i = 0; i < 4; i++) free(kk[i]), free(vv[i]);
    rmdir_(dir);
}

Test(store, f32_round_trip_is_bitwise) { expect_round_trip_(IFK_DT_F32); }
Test(store, f16_round_trip_equals_the_conversion) { expect_round_trip_(IFK_DT_F16); }
Test(store, bf16_round_trip_equals_the_conversion) { expect_round_trip_(IFK_DT_BF16); }
/* deflated shards go through HDF5's own read path instead of the direct one */
Test(store, compressed_round_trips_through_hdf5) {
    compress_ = 4;
    expect_round_trip_(IFK_DT_F16);
    expect_round_trip_(IFK_DT_F32);
}

Test(store, manifest_round_trip_and_commit_messages) {
    char *dir = tmpdir_();
    float *kk[4], *vv[4];
    write_store_(dir, IFK_DT_F16, kk, vv);
    ifk_manifest m;
    cr_assert_eq(ifk_manifest_load(&m, dir), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(m.n_docs, 2);
    cr_assert_eq(ifk_manifest_find(&m, "doc1"), 1);
    cr_assert_eq(ifk_manifest_find(&m, "nope"), -1);
    cr_assert_str_eq(m.p.fingerprint, "0123456789abcdef");
    cr_assert_eq(m.p.dtype, IFK_DT_F16);
    ifk_doc_rec recs[2];
    for (int d = 0; d < 2; d++) cr_assert_eq(ifk_manifest_get(&m, d, &recs[d]), IFK_OK, "%s", ifk_errmsg());
    ifk_doc_rec none;
    cr_assert_eq(ifk_manifest_get(&m, 2, &none), IFK_ERR_ARG, "no document 2");
    char *js = ifk_doc_recs_to_json(recs, 2);
    for (int d = 0; d < 2; d++) ifk_doc_rec_free(&recs[d]);
    ifk_doc_rec *back;
    int n;
    cr_assert_eq(ifk_doc_recs_from_json(js, &back, &n), IFK_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(back[1].id, "doc1");
    cr_assert_eq(back[1].n_chunks, 2);
    cr_assert_eq(back[1].chunk_len[1], 5);
    ifk_manifest mw;
    cr_assert_eq(ifk_manifest_open(&mw, dir, 1), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_manifest_add(&mw, "other.h5", back, 1), IFK_ERR_INTERNAL, "a document committed twice");
    cr_assert_eq(mw.n_docs, 2, "and nothing of the commit is recorded");
    ifk_manifest_free(&mw);
    for (int i = 0; i < n; i++) ifk_doc_rec_free(&back[i]);
    free(back), free(js);
    /* a different model or layout is refused, naming the store */
    ifk_store_params want = m.p;
    strcpy(want.fingerprint, "ffffffffffffffff");
    cr_assert_neq(ifk_store_params_check(&m.p, &want, dir, 1), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), dir) && strstr(ifk_errmsg(), "--force"), "%s", ifk_errmsg());
    want = m.p;
    want.dtype = IFK_DT_F32;
    cr_assert_neq(ifk_store_params_check(&m.p, &want, dir, 1), IFK_OK);
    cr_assert_eq(ifk_store_params_check(&m.p, &want, dir, 0), IFK_OK, "dtype is a layout choice");
    ifk_manifest_free(&m);
    for (int i = 0; i < 4; i++) free(kk[i]), free(vv[i]);
    rmdir_(dir);
}

static void write_text_(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(s, f);
    fclose(f);
}

Test(store, damaged_manifests_are_refused_with_the_path) {
    char *dir = tmpdir_();
    char path[256];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    ifk_manifest m;
    cr_assert_eq(ifk_manifest_load(&m, dir), IFK_ERR_IO, "no manifest");
    cr_assert(strstr(ifk_errmsg(), path), "%s", ifk_errmsg());
    const char *bad[] = {"", "{", "[]", "{\"format\": \"other\"}", "{\"format\": \"infoflow-kv-store\", \"format_version\": 99}",
                         "{\"format\": \"infoflow-kv-store\", \"format_version\": 1, \"model\": 3}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text_(path, bad[i]);
        cr_assert_eq(ifk_manifest_load(&m, dir), IFK_ERR_FORMAT, "case %zu", i);
        cr_assert(strstr(ifk_errmsg(), path), "%s", ifk_errmsg());
    }
    rmdir_(dir);
}

/* ---- damage --------------------------------------------------------------------------------------- */

typedef struct {
    char msgs[16][512];
    int n;
} reports_;

static void collect_(const char *msg, void *ctx) {
    reports_ *r = ctx;
    if (r->n < 16) snprintf(r->msgs[r->n], 512, "%s", msg);
    r->n++;
}

/* The file offset of the first HDF5 chunk of a dataset. */
static haddr_t chunk_addr_(const char *file, const char *ds) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, ds, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    unsigned mask;
    haddr_t addr = HADDR_UNDEF;
    hsize_t off[4], size;
    cr_assert_geq(H5Dget_chunk_info(d, sp, 0, off, &mask, &addr, &size), 0);
    H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    return addr;
}

Test(store, flipped_bytes_in_k_are_reported_by_chunk) {
    char *dir = tmpdir_();
    float *kk[4], *vv[4];
    write_store_(dir, IFK_DT_F16, kk, vv);
    char shard[256];
    snprintf(shard, sizeof shard, "%s/shard-test.h5", dir);
    haddr_t a = chunk_addr_(shard, "/d000001/c0000/k");
    int fd = open(shard, O_RDWR);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)a + 10), 1);
    b ^= 0x5A;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)a + 10), 1);
    close(fd);
    reports_ r = {0};
    int bad = 0;
    cr_assert_eq(ifk_store_verify(dir, collect_, &r, &bad), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(bad, 1, "exactly the damaged chunk: %d reports", bad);
    cr_assert(strstr(r.msgs[0], "shard-test.h5") && strstr(r.msgs[0], "\"doc1\" chunk 0") && strstr(r.msgs[0], "K"),
              "%s", r.msgs[0]);
    cr_assert(strstr(r.msgs[0], "checksum"), "the cause is named: %s", r.msgs[0]);
    /* a reader gets the same error, never numbers */
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, dir), IFK_OK);
    float k[3 * 4 * 16 * 8], v[3 * 4 * 16 * 8];
    cr_assert_neq(ifk_store_read_chunk(s, 1, 0, 0, 4, k, v, NULL), IFK_OK);
    cr_assert_eq(ifk_store_read_chunk(s, 1, 1, 0, 4, k, v, NULL), IFK_OK, "the other chunks still read");
    ifk_store_close(&s);
    for (int i = 0; i < 4; i++) free(kk[i]), free(vv[i]);
    rmdir_(dir);
}

Test(store, truncated_and_missing_shards_are_reported) {
    char *dir = tmpdir_();
    float *kk[4], *vv[4];
    write_store_(dir, IFK_DT_F16, kk, vv);
    char shard[256];
    snprintf(shard, sizeof shard, "%s/shard-test.h5", dir);
    struct stat st;
    stat(shard, &st);
    cr_assert_eq(truncate(shard, st.st_size / 2), 0);
    reports_ r = {0};
    int bad = 0;
    cr_assert_eq(ifk_store_verify(dir, collect_, &r, &bad), IFK_OK);
    cr_assert_geq(bad, 1);
    cr_assert(strstr(r.msgs[0], "shard-test.h5"), "%s", r.msgs[0]);
    unlink(shard);
    r.n = 0;
    cr_assert_eq(ifk_store_verify(dir, collect_, &r, &bad), IFK_OK);
    cr_assert_eq(bad, 2, "both documents of the lost shard count");
    cr_assert(strstr(r.msgs[0], "missing"), "%s", r.msgs[0]);
    for (int i = 0; i < 4; i++) free(kk[i]), free(vv[i]);
    rmdir_(dir);
}

Test(store, crash_leftovers_are_cleaned_and_listed_shards_kept) {
    char *dir = tmpdir_();
    float *kk[4], *vv[4];
    write_store_(dir, IFK_DT_F16, kk, vv);
    char p[256];
    const char *junk[] = {"shard-x-r0001-000000.h5.tmp", "shard-x-r0001-000001.h5", "manifest.json.tmp", "notes.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        write_text_(p, "partial");
    }
    ifk_manifest m;
    cr_assert_eq(ifk_manifest_load(&m, dir), IFK_OK);
    int removed;
    cr_assert_eq(ifk_store_clean(&m, &removed), IFK_OK);
    cr_assert_eq(removed, 3);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    cr_assert_eq(access(p, F_OK), 0, "files that are not the store's stay");
    snprintf(p, sizeof p, "%s/shard-test.h5", dir);
    cr_assert_eq(access(p, F_OK), 0, "listed shards stay");
    ifk_manifest_free(&m);
    for (int i = 0; i < 4; i++) free(kk[i]), free(vv[i]);
    rmdir_(dir);
}

Test(store, a_second_lock_is_refused) {
    char *dir = tmpdir_();
    int fd1, fd2;
    cr_assert_eq(ifk_store_lock(dir, &fd1), IFK_OK);
    pid_t pid = fork();
    if (pid == 0) _exit(ifk_store_lock(dir, &fd2) == IFK_OK ? 0 : strstr(ifk_errmsg(), "in use") ? 3 : 4);
    int st;
    waitpid(pid, &st, 0);
    cr_assert_eq(WEXITSTATUS(st), 3, "another process is refused with 'in use'");
    ifk_store_unlock(fd1);
    pid = fork();
    if (pid == 0) _exit(ifk_store_lock(dir, &fd2) == IFK_OK ? 0 : 4);
    waitpid(pid, &st, 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "free again once released");
    rmdir_(dir);
}

/* ---- the cache job's output against the engine ------------------------------------------------ */

static int run_(const char *const *argv) {
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(store, cached_kv_equals_the_direct_chunk_prefill, .timeout = 120) {
    char *dir = tmpdir_();
    char corpus[256], store[256];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    write_text_(corpus, "{\"id\": \"a\", \"text\": \"Once upon a time, there was a little girl named Lily. She loved "
                        "to play outside in the park with her red ball and her dog Max, every day.\"}\n"
                        "{\"id\": \"b\", \"text\": \"Tom had a big boat.\"}\n");
    const char *argv[] = {IFK_BIN, "cache", "--model", IFK_MODEL_DIR, "--corpus", corpus, "--store", store,
                          "--dtype", "f32", "--chunk-tokens", "16", "--quiet", NULL};
    cr_assert_eq(run_(argv), 0);
    ifk_blas_set_threads(0); /* as the binary: OpenMP (oneDNN) on OpenBLAS's thread count */
    ifk_model m;
    ifk_tokenizer *tok;
    cr_assert_eq(ifk_engine_load(IFK_MODEL_DIR, NULL, &m, &tok), IFK_OK);
    ifk_store *s;
    cr_assert_eq(ifk_store_open(&s, store), IFK_OK, "%s", ifk_errmsg());
    const ifk_manifest *man = ifk_store_manifest(s);
    cr_assert_eq(man->n_docs, 2);
    ifk_state st = {0};
    ifk_kvcache cache;
    cr_assert_eq(ifk_kvcache_init(&cache, &m.cfg, 17), IFK_OK);
    size_t nel = (size_t)5 * 4 * 16 * 8;
    float *k = malloc(4 * nel), *v = malloc(4 * nel), *ek = malloc(4 * nel), *ev = malloc(4 * nel);
    const char *texts[2] = {"Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                            "park with her red ball and her dog Max, every day.", "Tom had a big boat."};
    for (int d = 0; d < 2; d++) {
        int di = ifk_manifest_find(man, d ? "b" : "a");
        int *ids, n;
        cr_assert_eq(ifk_tokenizer_encode(tok, texts[d], strlen(texts[d]), 0, 0, &ids, &n), IFK_OK);
        const ifk_doc_rec *rec = ifk_store_doc(s, di);
        cr_assert(rec, "%s", ifk_errmsg());
        cr_assert_eq(rec->n_tokens, n, "the document's tokens, without BOS");
        cr_assert_eq(rec->n_chunks, (n + 15) / 16);
        for (int c = 0; c < rec->n_chunks; c++) {
            int len = rec->chunk_len[c], t[16];
            cr_assert_eq(len, n - 16 * c < 16 ? n - 16 * c : 16);
            cr_assert_eq(ifk_store_read_chunk(s, di, c, 0, 4, k, v, t), IFK_OK, "%s", ifk_errmsg());
            cr_assert_arr_eq(t, ids + 16 * c, sizeof(int) * len);
            cr_assert_eq(ifk_prefill_chunk(&m, &st, &cache, ids + 16 * c, len, ek, ev), IFK_OK);
            size_t cnt = (size_t)5 * 4 * len * 8;
            cr_assert_arr_eq(k, ek, 4 * cnt, "doc %d chunk %d: K bitwise", d, c);
            cr_assert_arr_eq(v, ev, 4 * cnt, "doc %d chunk %d: V bitwise", d, c);
        }
        free(ids);
    }
    /* the chunk is prefilled alone: a prefill of [BOS] + chunk at 0.. is what the engine computes,
     * and the stored K of chunk token j sits at local position 1 + j */
    cr_assert_eq(IFK_CHUNK_PREFIX, 1);
    free(k), free(v), free(ek), free(ev);
    ifk_kvcache_free(&cache), ifk_state_free(&st);
    ifk_store_close(&s);
    ifk_tokenizer_free(&tok), ifk_model_free(&m);
    rmdir_(dir);
}

/* HDF5's own checksum routine, exported by libhdf5 (declared in its private headers) */
uint32_t H5_checksum_fletcher32(const void *data, size_t len);

Test(checksum, fletcher32_matches_hdf5_bit_for_bit) {
    const size_t lens[] = {0, 1, 2, 3, 719, 720, 721, 722, 1439, 4096, 65536 + 7, 1 << 20};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        unsigned char *b = malloc(lens[i] + 1);
        uint64_t s = 1234 + i;
        for (size_t j = 0; j < lens[i]; j++) b[j] = (unsigned char)((tu_rand(&s) + 1) * 128);
        uint32_t h = H5_checksum_fletcher32(b, lens[i]);
        cr_assert_eq(ifk_fletcher32(b, lens[i]), h, "len %zu", lens[i]);
        cr_assert_eq(ifk_ref_fletcher32(b, lens[i]), h, "reference, len %zu", lens[i]);
        /* the fused check-and-convert: the same checksum, the same bits as the plain conversions */
        for (int dt = 0; dt < 3; dt++) {
            const size_t es = ifk_dtype_size((ifk_dtype)dt), ne = lens[i] / es;
            float *f = malloc(sizeof(float) * (ne + 1)), *g = malloc(sizeof(float) * (ne + 1));
            cr_assert_eq(ifk_fletcher32_to_f32(b, ne * es, (ifk_dtype)dt, f), ifk_fletcher32(b, ne * es), "len %zu", lens[i]);
            if (dt == IFK_DT_F16) ifk_f16_to_f32(g, b, ne);
            else if (dt == IFK_DT_BF16) ifk_bf16_to_f32(g, b, ne);
            else memcpy(g, b, ne * es);
            cr_assert_eq(memcmp(f, g, sizeof(float) * ne), 0, "%s conversion, len %zu", ifk_dtype_name((ifk_dtype)dt), lens[i]);
            free(f), free(g);
        }
        memset(b, 0xff, lens[i]); /* all-ones words exercise the 0xffff vs 0 reduction edge */
        cr_assert_eq(ifk_fletcher32(b, lens[i]), H5_checksum_fletcher32(b, lens[i]), "0xff.. len %zu", lens[i]);
        free(b);
    }
}
