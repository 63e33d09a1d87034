/* fuzz_shard.c — the shard reader's validation on mutated copies of a small real store. Each
 * input is a list of 8-byte mutations applied with the HDF5 API to a fresh copy of a shard
 * (attributes rewritten, datasets deleted or replaced by other shapes and types, chunk bytes
 * flipped, the file truncated); then the store is verified and every chunk read. The reader must
 * report or read, never crash; and a chunk that reads must have the manifest's shape (checked by
 * the reader itself, and its values finite where nothing was flipped is not assumed). */
#include <hdf5.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "store.h"
#include "shard_writer.h"
#include "store_maint.h"

static char dir_[256], pristine_[300], shard_[300];
static const char *ints_[] = {"n_tokens", "chunk_index", "rope_start", "prefix_len", "n_chunks", "format_version",
                              "n_layers", "n_kv_heads", "head_dim"};
static const char *strs_[] = {"doc_id", "id", "dtype", "model_fingerprint", "format"};
static const char *objs_[] = {"/d000000/c0000/k", "/d000000/c0000/v", "/d000000/c0000/tokens", "/d000001/c0001/k",
                              "/d000001/text", "/d000000/c0001", "/d000001", "/d000000/c0000/v"};

static void report_(const char *m, void *c) { (void)m, (void)c; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(dir_, sizeof dir_, "/tmp/ifk-fuzz-shard-%d", (int)getpid());
    mkdir(dir_, 0755);
    ifk_store_params p = {.n_layers = 2, .n_kv_heads = 2, .head_dim = 4, .vocab_size = 50, .bos_id = 1,
                          .rope_theta = 10000, .dtype = IFK_DT_F16, .chunk_tokens = 8, .prefix_len = 1};
    strcpy(p.fingerprint, "00112233445566aa");
    strcpy(p.model_source, "fuzz");
    ifk_manifest m;
    if (ifk_manifest_create(&m, dir_, &p) != IFK_OK) abort();
    ifk_shard_writer *w;
    if (ifk_shard_create(&w, dir_, "shard-f.h5", &p, 0) != IFK_OK) abort();
    ifk_doc_rec r[2];
    float k[2 * 2 * 8 * 4], v[2 * 2 * 8 * 4];
    int tok[8];
    for (int i = 0; i < 2 * 2 * 8 * 4; i++) k[i] = (float)i * 0.01f, v[i] = -(float)i * 0.02f;
    for (int i = 0; i < 8; i++) tok[i] = 3 + i;
    for (int d = 0; d < 2; d++) {
        char id[8];
        snprintf(id, sizeof id, "doc%d", d);
        ifk_shard_begin_doc(w, id, "some text", 9);
        ifk_shard_put_chunk(w, tok, 8, k, v);
        ifk_shard_put_chunk(w, tok, 5, k, v);
        if (ifk_shard_end_doc(w, &r[d]) != IFK_OK) abort();
    }
    if (ifk_shard_commit(&w) != IFK_OK || ifk_manifest_add(&m, "shard-f.h5", r, 2) != IFK_OK) abort();
    ifk_manifest_free(&m);
    snprintf(shard_, sizeof shard_, "%s/shard-f.h5", dir_);
    snprintf(pristine_, sizeof pristine_, "%s/pristine.bin", dir_);
    rename(shard_, pristine_);
    return 0;
}

static void copy_(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

static void mutate_(hid_t f, const uint8_t *m) {
    const char *obj = objs_[m[1] % 8];
    int32_t val;
    memcpy(&val, m + 4, 4);
    switch (m[0] % 6) {
    case 0: { /* an integer attribute rewritten */
        const char *root = m[2] & 1 ? "/" : m[2] & 2 ? "/d000000" : "/d000000/c0000";
        hid_t o = H5Oopen(f, root, H5P_DEFAULT);
        const char *name = ints_[m[3] % 9];
        if (o >= 0) {
            H5Adelete(o, name);
            hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(o, name, m[2] & 4 ? H5T_STD_I8LE : H5T_STD_I64LE, sp,
                                                              H5P_DEFAULT, H5P_DEFAULT);
            long long x = val;
            if (a >= 0) H5Awrite(a, H5T_NATIVE_LLONG, &x), H5Aclose(a);
            H5Sclose(sp);
            H5Oclose(o);
        }
        break;
    }
    case 1: { /* a string attribute rewritten (or given an integer type) */
        const char *root = m[2] & 1 ? "/" : m[2] & 2 ? "/d000001" : "/d000001/c0001";
        hid_t o = H5Oopen(f, root, H5P_DEFAULT);
        const char *name = strs_[m[3] % 5];
        if (o >= 0) {
            H5Adelete(o, name);
            hid_t sp = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, 1 + (m[4] % 20));
            char s[32];
            for (int i = 0; i < 31; i++) s[i] = (char)('a' + (m[5 + i % 3] + i) % 26);
            s[31] = 0;
            hid_t a = H5Acreate2(o, name, m[2] & 4 ? H5T_STD_I32LE : t, sp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) H5Awrite(a, m[2] & 4 ? H5T_NATIVE_INT : t, m[2] & 4 ? (void *)&val : (void *)s), H5Aclose(a);
            H5Tclose(t), H5Sclose(sp), H5Oclose(o);
        }
        break;
    }
    case 2: /* an object deleted */
        H5Ldelete(f, obj, H5P_DEFAULT);
        break;
    case 3: { /* a dataset replaced by another shape and type */
        H5Ldelete(f, obj, H5P_DEFAULT);
        int rank = 1 + m[2] % 4;
        hsize_t dims[4] = {1 + m[3] % 3, 1 + m[4] % 3, 1 + m[5] % 9, 1 + m[6] % 5};
        hid_t types[4] = {H5T_IEEE_F32LE, H5T_STD_I32LE, H5T_IEEE_F64LE, H5T_STD_U8LE};
        hid_t sp = H5Screate_simple(rank, dims, NULL), d = H5Dcreate2(f, obj, types[m[7] % 4], sp, H5P_DEFAULT,
                                                                       H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) H5Dclose(d);
        H5Sclose(sp);
        break;
    }
    case 4: { /* bytes of a chunk flipped (the checksum must catch it) */
        hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
        if (d < 0) break;
        hid_t sp = H5Dget_space(d);
        hsize_t off[4], size = 0;
        unsigned mask;
        haddr_t addr = HADDR_UNDEF;
        if (H5Dget_chunk_info(d, sp, 0, off, &mask, &addr, &size) >= 0 && size > 0) {
            H5Sclose(sp), H5Dclose(d);
            H5Fflush(f, H5F_SCOPE_GLOBAL);
            FILE *fp = fopen(shard_, "r+b");
            if (fp) {
                fseek(fp, (long)(addr + (uint32_t)val % size), SEEK_SET);
                int c = fgetc(fp);
                fseek(fp, (long)(addr + (uint32_t)val % size), SEEK_SET);
                fputc((c ^ (1 + m[2])) & 0xff, fp);
                fclose(fp);
            }
            break;
        }
        H5Sclose(sp), H5Dclose(d);
        break;
    }
    default: break; /* truncation is applied after closing */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    copy_(pristine_, shard_);
    int truncate_to = -1;
    hid_t f = H5Fopen(shard_, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) abort();
    for (size_t i = 0; i + 8 <= size && i < 8 * 16; i += 8) {
        if (data[i] % 6 == 5) truncate_to = data[i + 1];
        else mutate_(f, data + i);
    }
    H5Fclose(f);
    if (truncate_to >= 0) {
        struct stat st;
        if (stat(shard_, &st) == 0 && truncate(shard_, st.st_size * truncate_to / 256) != 0) abort();
    }
    int bad = 0;
    ifk_store_verify(dir_, report_, NULL, &bad);
    ifk_store *s;
    if (ifk_store_open(&s, dir_) == IFK_OK) {
        float k[2 * 2 * 8 * 4], v[2 * 2 * 8 * 4];
        int tok[8];
        for (int d = 0; d < 2; d++)
            for (int c = 0; c < 2; c++) {
                ifk_store_read_chunk(s, d, c, 0, 2, k, v, tok);
                ifk_store_read_chunk(s, d, c, 1, 1, k, v, NULL);
            }
        ifk_store_close(&s);
    }
    return 0;
}
