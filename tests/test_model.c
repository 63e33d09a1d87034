/* test_model.c — the forward pass end to end: the golden story, batched prefill against one-token
 * decode, the query-subset entry point against a full prefill, and K re-rotation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "sys.h"
#include "decode.h"
#include "infoflow.h"
#include "testutil.h"

Test(model, stories260k_config_is_read_from_the_header) {
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK, "%s", ifk_errmsg());
    ifk_config c = m.cfg;
    cr_assert(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4);
    cr_assert(c.vocab_size == 512 && c.seq_len == 512 && c.head_dim == 8 && c.shared_classifier);
    cr_assert_eq(c.rope_style, IFK_ROPE_INTERLEAVED);
    cr_assert_eq(m.wcls, m.tok_emb);
    ifk_model_free(&m);
}

/* A checkpoint with its own classifier (negative vocab in the header, classifier after the RoPE
 * tables): a copy of stories260K whose classifier is the embedding must give the same logits. */
Test(model, separate_classifier_checkpoint_loads) {
    FILE *f = fopen(STORIES_BIN, "rb");
    cr_assert(f);
    static char buf[1 << 21];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char path[] = "/tmp/ifk_cls_XXXXXX";
    int fd = mkstemp(path);
    int32_t v = -512;
    memcpy(buf + 20, &v, 4);
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    cr_assert_eq(write(fd, buf + 28, 512 * 64 * sizeof(float)), (ssize_t)(512 * 64 * sizeof(float)));
    close(fd);
    ifk_model a, b;
    cr_assert_eq(ifk_model_load_llama2c(&a, STORIES_BIN), IFK_OK);
    cr_assert_eq(ifk_model_load_llama2c(&b, path), IFK_OK, "%s", ifk_errmsg());
    cr_assert(!b.cfg.shared_classifier && b.wcls != b.tok_emb && b.cfg.vocab_size == 512);
    cr_assert_arr_eq(b.wcls, a.tok_emb, 512 * 64 * sizeof(float));
    ifk_model_free(&b);
    /* the same file cut short of its classifier no longer matches its header */
    cr_assert_eq(truncate(path, (off_t)n), 0);
    cr_assert_neq(ifk_model_load_llama2c(&b, path), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "implies"), "%s", ifk_errmsg());
    ifk_model_free(&a);
    unlink(path);
}

/* export.py --version 1 of stories260K, written here in its order (header of 256 bytes: magic,
 * version, 7 ints, shared flag; the norms, the embedding, then each weight kind over the layers):
 * it loads as the same model (bit-identical logits); a version 2 header is refused by name. */
Test(model, llama2c_version1_checkpoint_loads_and_version2_is_refused) {
    ifk_model a, b;
    cr_assert_eq(ifk_model_load_llama2c(&a, STORIES_BIN), IFK_OK);
    const ifk_config *c = &a.cfg;
    char path[] = "/tmp/ifk_v1_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    unsigned char hdr[256] = {0};
    int32_t head[9] = {0x616b3432, 1, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
                       c->seq_len};
    memcpy(hdr, head, sizeof head);
    hdr[36] = 1;
    fwrite(hdr, 1, 256, f);
    const size_t D = c->dim, F = c->hidden_dim, q = D, kv = (size_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].rms_att, 4, D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].rms_ffn, 4, D, f);
    fwrite(a.rms_final, 4, D, f);
    fwrite(a.tok_emb, 4, (size_t)c->vocab_size * D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].wq, 4, q * D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].wk, 4, kv * D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].wv, 4, kv * D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].wo, 4, D * q, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].w1, 4, F * D, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].w2, 4, D * F, f);
    for (int l = 0; l < c->n_layers; l++) fwrite(a.layers[l].w3, 4, F * D, f);
    fclose(f);
    cr_assert_eq(ifk_model_load_llama2c(&b, path), IFK_OK, "%s", ifk_errmsg());
    cr_assert(b.cfg.dim == 64 && b.cfg.n_layers == 5 && b.cfg.shared_classifier && b.wcls == b.tok_emb);
    int ids[12], pos[12];
    for (int i = 0; i < 12; i++) ids[i] = 1 + i * 41 % 500, pos[i] = i;
    float la[12 * 512], lb[12 * 512];
    ifk_kvcache ca, cb;
    ifk_state sa = {0}, sb = {0};
    cr_assert_eq(ifk_kvcache_init(&ca, &a.cfg, 12), IFK_OK);
    cr_assert_eq(ifk_kvcache_init(&cb, &b.cfg, 12), IFK_OK);
    cr_assert_eq(ifk_forward(&a, &sa, &ca, ids, pos, 12, la, 1), IFK_OK);
    cr_assert_eq(ifk_forward(&b, &sb, &cb, ids, pos, 12, lb, 1), IFK_OK);
    cr_assert_arr_eq(la, lb, sizeof la);
    ifk_model_free(&b);
    /* version 2 (int8 groups) is refused naming the version, not read as an absurd dim */
    f = fopen(path, "r+b");
    int32_t two = 2;
    fseek(f, 4, SEEK_SET);
    fwrite(&two, 4, 1, f);
    fclose(f);
    cr_assert_neq(ifk_model_load_llama2c(&b, path), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "version 2") && strstr(ifk_errmsg(), "int8"), "%s", ifk_errmsg());
    ifk_kvcache_free(&ca), ifk_kvcache_free(&cb), ifk_state_free(&sa), ifk_state_free(&sb);
    ifk_model_free(&a);
    unlink(path);
}

typedef struct {
    char buf[4096];
    size_t len;
    const ifk_tokenizer *tok;
} collect_;

static void collect_cb_(int prev, int t, void *ctx) {
    collect_ *c = ctx;
    size_t n;
    const char *p = ifk_tokenizer_decode(c->tok, prev, t, &n);
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

Test(model, greedy_generation_reproduces_the_golden_story) {
    ifk_model m;
    ifk_tokenizer *tok;
    cr_assert_eq(ifk_engine_load(IFK_MODEL_DIR, NULL, &m, &tok), IFK_OK, "%s", ifk_errmsg());
    int *ids, n;
    cr_assert_eq(ifk_tokenizer_encode(tok, "Once upon a time", 16, 1, 0, &ids, &n), IFK_OK);
    ifk_sampler smp;
    cr_assert_eq(ifk_sampler_init(&smp, 512, 0.0f, 0.9f, 1), IFK_OK);
    collect_ c = {.tok = tok};
    ifk_gen_stats st;
    cr_assert_eq(ifk_generate(&m, &smp, ids, n, 64, collect_cb_, &c, &st), IFK_OK, "%s", ifk_errmsg());
    c.buf[c.len] = '\0';
    cr_assert_str_eq(c.buf, STORIES_GOLDEN);
    cr_assert_eq(st.n_prompt + st.n_generated, 65, "64 positions forwarded, the last token sampled from them");
    free(ids);
    ifk_sampler_free(&smp);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
}

/* Logits of a batched prefill of T tokens versus feeding the same tokens one at a time: the same
 * function down different paths (GEMM vs GEMV, blocked vs single-row attention). Tolerance: 1e-4
 * of the logits' scale, float reassociation only. */
static void prefill_equals_decode_(ifk_model *m, int T) {
    const int V = m->cfg.vocab_size;
    int *ids = malloc(sizeof(int) * T), *pos = malloc(sizeof(int) * T);
    uint64_t s = 99;
    for (int t = 0; t < T; t++) ids[t] = (int)((tu_rand(&s) + 1) * 0.5f * (V - 1)), pos[t] = t;
    float *batch = malloc(sizeof(float) * T * V), *step = malloc(sizeof(float) * T * V);
    ifk_kvcache c1, c2;
    ifk_state s1 = {0}, s2 = {0};
    cr_assert_eq(ifk_kvcache_init(&c1, &m->cfg, T), IFK_OK);
    cr_assert_eq(ifk_kvcache_init(&c2, &m->cfg, T), IFK_OK);
    cr_assert_eq(ifk_forward(m, &s1, &c1, ids, pos, T, batch, 1), IFK_OK, "%s", ifk_errmsg());
    for (int t = 0; t < T; t++) cr_assert_eq(ifk_forward(m, &s2, &c2, ids + t, pos + t, 1, step + (size_t)t * V, 0), IFK_OK);
    double e = tu_maxrel(batch, step, (size_t)T * V, 1e-3);
    cr_assert_leq(e, 1e-4, "%s T=%d: batched vs one-at-a-time logits differ by %g of scale", m->source, T, e);
    size_t kvn = (size_t)m->cfg.n_layers * m->cfg.n_kv_heads * T * m->cfg.head_dim;
    cr_assert_leq(tu_maxrel(c1.k, c2.k, kvn, 1e-3), 1e-4, "cached K");
    cr_assert_leq(tu_maxrel(c1.v, c2.v, kvn, 1e-3), 1e-4, "cached V");
    free(ids), free(pos), free(batch), free(step);
    ifk_kvcache_free(&c1), ifk_kvcache_free(&c2), ifk_state_free(&s1), ifk_state_free(&s2);
}

Test(forward, batched_prefill_equals_token_by_token_decode) {
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    prefill_equals_decode_(&m, 65);
    prefill_equals_decode_(&m, 7);
    ifk_model_free(&m);
    /* wider heads (Dh 128), GQA 4:1, and rotate_half */
    cr_assert_eq(ifk_model_random(&m, "dim=256,layers=2,heads=2,kv_heads=1,hidden=96,vocab=97,seq=300", 5), IFK_OK);
    m.cfg.rope_style = IFK_ROPE_HALF;
    prefill_equals_decode_(&m, 300);
    ifk_model_free(&m);
    cr_assert_eq(ifk_model_random(&m, "dim=64,layers=3,heads=8,kv_heads=2,hidden=64,vocab=50", 6), IFK_OK);
    prefill_equals_decode_(&m, 1);
    ifk_model_free(&m);
}

/* The recompute entry point: with an exact cache, re-running a subset of rows through every layer
 * (queries = the subset, keys = all slots, new K/V written at the rows' own slots) must reproduce
 * those rows' final hidden states from the full prefill. */
Test(forward, query_subset_over_full_cache_reproduces_prefill_rows) {
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    const int T = 90, D = m.cfg.dim, V = m.cfg.vocab_size;
    int ids[90], pos[90];
    uint64_t s = 3;
    for (int t = 0; t < T; t++) ids[t] = 3 + (int)((tu_rand(&s) + 1) * 200), pos[t] = t;
    ifk_kvcache c;
    ifk_state st = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, T), IFK_OK);
    float *full = malloc(sizeof(float) * T * V);
    cr_assert_eq(ifk_forward(&m, &st, &c, ids, pos, T, full, 1), IFK_OK);
    const int sel[] = {0, 5, 6, 33, 60, 89}, n = 6;
    int sel_ids[6];
    for (int i = 0; i < n; i++) sel_ids[i] = ids[sel[i]];
    cr_assert_eq(ifk_embed(&m, &st, sel_ids, n), IFK_OK);
    ifk_state_rope(&m, &st, sel, n);
    for (int l = 0; l < m.cfg.n_layers; l++)
        cr_assert_eq(ifk_layer_forward(&m, &st, &c, l, n, sel, sel, T, NULL, 0), IFK_OK);
    float sub[6 * 512];
    ifk_logits(&m, &st, 0, n, sub);
    for (int i = 0; i < n; i++)
        cr_assert_leq(tu_maxrel(sub + (size_t)i * V, full + (size_t)sel[i] * V, V, 1e-3), 1e-4, "row %d", sel[i]);
    (void)D;
    free(full);
    ifk_kvcache_free(&c), ifk_state_free(&st), ifk_model_free(&m);
}

Test(forward, without_logits_the_cache_gets_the_bits_of_a_whole_last_layer) {
    /* ifk_forward(logits NULL) and ifk_recompute stop the last layer at its K/V (ifk_layer_kv): the
     * cache must hold exactly what whole layers write, every layer, every slot */
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    const int T = 37, V = m.cfg.vocab_size;
    int ids[37], pos[37];
    for (int t = 0; t < T; t++) ids[t] = 1 + (t * 53) % (V - 1), pos[t] = t;
    ifk_kvcache a, b;
    ifk_state st = {0};
    cr_assert_eq(ifk_kvcache_init(&a, &m.cfg, T), IFK_OK);
    cr_assert_eq(ifk_kvcache_init(&b, &m.cfg, T), IFK_OK);
    float *lg = malloc(sizeof(float) * V);
    cr_assert_eq(ifk_forward(&m, &st, &a, ids, pos, T, lg, 0), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &st, &b, ids, pos, T, NULL, 0), IFK_OK);
    const size_t n = (size_t)m.cfg.n_layers * m.cfg.n_kv_heads * T * m.cfg.head_dim;
    cr_assert_arr_eq(b.k, a.k, n * sizeof(float), "K after a forward without logits");
    cr_assert_arr_eq(b.v, a.v, n * sizeof(float), "V after a forward without logits");
    /* a recompute of some slots over b: their K/V as whole layers run by hand write them into a */
    const int sel[] = {2, 3, 11, 20, 36}, ns = 5;
    int sid[5];
    for (int i = 0; i < ns; i++) sid[i] = ids[sel[i]];
    cr_assert_eq(ifk_recompute(&m, &st, &b, T, ids, sel, ns), IFK_OK);
    cr_assert_eq(ifk_embed(&m, &st, sid, ns), IFK_OK);
    ifk_state_rope(&m, &st, sel, ns);
    for (int l = 0; l < m.cfg.n_layers; l++)
        cr_assert_eq(ifk_layer_forward(&m, &st, &a, l, ns, sel, sel, T, NULL, 0), IFK_OK);
    cr_assert_arr_eq(b.k, a.k, n * sizeof(float), "K after a recompute");
    cr_assert_arr_eq(b.v, a.v, n * sizeof(float), "V after a recompute");
    free(lg);
    ifk_kvcache_free(&a), ifk_kvcache_free(&b), ifk_state_free(&st), ifk_model_free(&m);
}

/* Prefill at p0..p0+T-1, then rotate K by -p0: layer-0 K equals a prefill at 0..T-1 (layer 0's K
 * depends only on the token and its position). Tolerance 1e-5 of scale: two float rotations. */
static void rerotation_(ifk_model *m, int T, int p0) {
    int *ids = malloc(sizeof(int) * T), *pa = malloc(sizeof(int) * T), *pb = malloc(sizeof(int) * T);
    uint64_t s = 17;
    for (int t = 0; t < T; t++) ids[t] = (int)((tu_rand(&s) + 1) * 0.5f * (m->cfg.vocab_size - 1)), pa[t] = t, pb[t] = p0 + t;
    ifk_kvcache a, b;
    ifk_state st = {0};
    cr_assert_eq(ifk_kvcache_init(&a, &m->cfg, T), IFK_OK);
    cr_assert_eq(ifk_kvcache_init(&b, &m->cfg, T), IFK_OK);
    cr_assert_eq(ifk_forward(m, &st, &a, ids, pa, T, NULL, 0), IFK_OK);
    cr_assert_eq(ifk_forward(m, &st, &b, ids, pb, T, NULL, 0), IFK_OK);
    size_t n = (size_t)m->cfg.n_kv_heads * T * m->cfg.head_dim; /* layer 0 */
    cr_assert_gt(tu_maxrel(b.k, a.k, n, 1e-3), 1e-2, "positions matter before the re-rotation");
    ifk_kvcache_rerotate(&b, m->inv_freq, m->cfg.rope_style, 0, T, -p0);
    double e = tu_maxrel(b.k, a.k, n, 1e-3);
    cr_assert_leq(e, 1e-5, "%s style %d p0 %d: re-rotated layer-0 K differs by %g", m->source, m->cfg.rope_style, p0, e);
    cr_assert_arr_eq(b.v, a.v, n * sizeof(float), "layer-0 V does not depend on position");
    for (int t = 0; t < T; t++) cr_assert_eq(b.pos[t], t);
    free(ids), free(pa), free(pb);
    ifk_kvcache_free(&a), ifk_kvcache_free(&b), ifk_state_free(&st);
}

Test(forward, rerotating_k_by_minus_p0_gives_the_prefill_at_zero) {
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    rerotation_(&m, 40, 300);
    rerotation_(&m, 7, 17);
    ifk_model_free(&m);
    cr_assert_eq(ifk_model_random(&m, "dim=256,layers=1,heads=2,kv_heads=2,hidden=64,vocab=64,seq=8192", 2), IFK_OK);
    m.cfg.rope_style = IFK_ROPE_HALF;
    rerotation_(&m, 65, 5000);
    ifk_model_free(&m);
}

Test(model, random_shapes_parse_and_reject) {
    ifk_config c;
    cr_assert_eq(ifk_config_parse_shape(&c, "bench100m"), IFK_OK);
    cr_assert(c.dim == 1024 && c.n_layers == 8 && c.n_heads == 16 && c.n_kv_heads == 4 && c.hidden_dim == 2816 &&
              c.vocab_size == 32000 && c.head_dim == 64);
    cr_assert_eq(ifk_config_parse_shape(&c, "dim=128,layers=2,heads=4,kv_heads=2,hidden=256,vocab=100,seq=64"), IFK_OK);
    cr_assert(c.seq_len == 64 && c.head_dim == 32);
    cr_assert_neq(ifk_config_parse_shape(&c, "dim=128,layers=2,heads=4,kv_heads=3,hidden=256,vocab=100"), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "n_kv_heads"), "%s", ifk_errmsg());
    cr_assert_neq(ifk_config_parse_shape(&c, "dim=128,layers=x"), IFK_OK);
    cr_assert_neq(ifk_config_parse_shape(&c, "nonsense"), IFK_OK);
    cr_assert_neq(ifk_config_parse_shape(&c, "dim=128,layers=2,heads=4,colour=2,hidden=8,vocab=9"), IFK_OK);
}

/* A tensor-parallel rank hands back the pages of the weights its slice does not use: the slice's
 * own rows and columns are untouched, the others read back as zeros (released anonymous pages),
 * and the fingerprint is the one computed before. */
Test(model, releasing_the_unsliced_weights_keeps_the_slice) {
    ifk_model full, slice;
    const int P = 2, rank = 1;
    cr_assert_eq(ifk_model_random(&full, "dim=256,layers=2,heads=4,kv_heads=2,hidden=1024,vocab=64,seq=32", 5), IFK_OK);
    cr_assert_eq(ifk_model_slice(&full, rank, P, &slice), IFK_OK);
    char fp[17], fp2[17];
    ifk_model_fingerprint(&full, fp);
    const ifk_config *c = &full.cfg;
    const size_t D = c->dim, ql = (size_t)c->n_heads * c->head_dim / P, Fl = (size_t)c->hidden_dim / P;
    float *wq = malloc(sizeof(float) * ql * D), *w1 = malloc(sizeof(float) * Fl * D),
          *wo = malloc(sizeof(float) * D * ql);
    cr_assert(wq && w1 && wo);
    memcpy(wq, slice.layers[1].wq, sizeof(float) * ql * D);
    memcpy(w1, slice.layers[1].w1, sizeof(float) * Fl * D);
    memcpy(wo, slice.layers[1].wo, sizeof(float) * D * ql);
    ifk_model_release_unsliced(&full, &slice, rank, P);
    cr_assert(!memcmp(wq, slice.layers[1].wq, sizeof(float) * ql * D), "the slice's wq rows changed");
    cr_assert(!memcmp(w1, slice.layers[1].w1, sizeof(float) * Fl * D), "the slice's w1 rows changed");
    cr_assert(!memcmp(wo, slice.layers[1].wo, sizeof(float) * D * ql), "the slice's copied wo changed");
    /* the middle of rank 0's wq rows (a 128 KiB block; its edges may share a page with kept data)
     * and the middle of wo were handed back */
    double other = 0, wo_mid = 0;
    const float *fwq = (const float *)full.layers[1].wq, *fwo = (const float *)full.layers[1].wo; /* f32 weights */
    for (size_t i = ql * D / 2; i < ql * D / 2 + 1024; i++) other += fabsf(fwq[i]);
    for (size_t i = D * ql / 2; i < D * ql / 2 + 1024; i++) wo_mid += fabsf(fwo[i]);
    cr_assert(other == 0 && wo_mid == 0, "the other rank's rows were kept (%g, %g)", other, wo_mid);
    ifk_model_fingerprint(&full, fp2);
    cr_assert_str_eq(fp, fp2);
    free(wq), free(w1), free(wo);
    ifk_model_free(&slice);
    ifk_model_free(&full);
}

/* A random model written as a legacy llama2.c file (header, the weights in carve order, the two RoPE
 * tables), with element bad set to NaN when bad >= 0. */
static void write_v0_(const char *path, const ifk_model *m, long bad) {
    const ifk_config *c = &m->cfg;
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    const int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    cr_assert_eq(fwrite(h, sizeof h, 1, f), 1u);
    const size_t n = ifk_model_params(c), tables = (size_t)c->seq_len * c->head_dim;
    float *w = calloc(n + tables, sizeof(float));
    cr_assert(w);
    memcpy(w, m->owned, sizeof(float) * n);
    if (bad >= 0) w[bad] = NAN;
    cr_assert_eq(fwrite(w, sizeof(float), n + tables, f), n + tables);
    free(w);
    fclose(f);
}

/* A mapped checkpoint is read with pread, never through its mapping: its fingerprint (streamed in
 * pieces; the embedding here is 2.4 pieces long, with an odd number of float pairs) is the one of
 * the same weights in memory, a tensor-parallel slice holds the same rows and columns in its own
 * block, and a NaN past the first piece is found with its tensor and element. */
Test(model, a_mapped_checkpoint_reads_like_the_weights_in_memory) {
    ifk_model a, b, sa, sb;
    cr_assert_eq(ifk_model_random(&a, "dim=66,layers=2,heads=3,kv_heads=3,hidden=101,vocab=301,seq=16", 7), IFK_OK);
    char path[] = "/tmp/ifk_v0_XXXXXX";
    close(mkstemp(path));
    write_v0_(path, &a, -1);
    cr_assert_eq(ifk_model_load_llama2c(&b, path), IFK_OK, "%s", ifk_errmsg());
    char fa[17], fb[17];
    ifk_model_fingerprint(&a, fa);
    ifk_model_fingerprint(&b, fb);
    cr_assert_str_eq(fa, fb);
    const ifk_config *c = &a.cfg;
    const size_t D = c->dim, ql = (size_t)c->head_dim, kvl = ql, Fl = 34; /* rank 1 of 3: heads 1, columns 33..66 */
    cr_assert_eq(ifk_model_slice(&a, 1, 3, &sa), IFK_OK);
    cr_assert_eq(ifk_model_slice(&b, 1, 3, &sb), IFK_OK);
    cr_assert_eq(sb.cfg.hidden_dim, (int)Fl);
    const char *lo = b.map, *hi = lo + b.map_len;
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *x = &sa.layers[l], *y = &sb.layers[l];
        const ifk_wbuf *const xs[] = {x->wq, x->wk, x->wv, x->wo, x->w1, x->w2, x->w3},
                           *const ys[] = {y->wq, y->wk, y->wv, y->wo, y->w1, y->w2, y->w3};
        const size_t n[] = {ql * D, kvl * D, kvl * D, D * ql, Fl * D, D * Fl, Fl * D};
        for (int k = 0; k < 7; k++) {
            cr_assert(!memcmp(xs[k], ys[k], sizeof(float) * n[k]), "layer %d matrix %d differs", l, k);
            cr_assert((const char *)ys[k] < lo || (const char *)ys[k] >= hi, "layer %d matrix %d is a view into the file", l, k);
        }
    }
    ifk_model_free(&sb);
    ifk_model_free(&b);
    write_v0_(path, &a, 10000); /* tok_emb, 19866 elements */
    cr_assert_neq(ifk_model_load_llama2c(&b, path), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "tensor tok_emb holds NaN or infinity (element 10000 of 19866)"), "%s", ifk_errmsg());
    const long w2_1 = 19866 + 2 * 66 + 2 * (2 * 66 * 66 + 2 * 66 * 66) + 2 * 66 + 2 * 101 * 66 + 101 * 66; /* layers.1.w2 */
    write_v0_(path, &a, w2_1 + 6000);
    cr_assert_neq(ifk_model_load_llama2c(&b, path), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "tensor layers.1.w2 holds NaN or infinity (element 6000 of 6666)"), "%s", ifk_errmsg());
    unlink(path);
    ifk_model_free(&sa);
    ifk_model_free(&a);
}

/* ---- chunking --------------------------------------------------------------------------------- */

#include "chunk.h"

Test(chunk, token_split_cuts_the_documents_tokens) {
    ifk_tokenizer *tok;
    cr_assert_eq(ifk_tokenizer_load(&tok, STORIES_TOK, 512), IFK_OK);
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
    int *ids, n;
    cr_assert_eq(ifk_tokenizer_encode(tok, text, strlen(text), 0, 0, &ids, &n), IFK_OK);
    ifk_chunking ch;
    cr_assert_eq(ifk_chunk_text(tok, text, strlen(text), 7, IFK_SPLIT_TOKENS, &ch), IFK_OK);
    cr_assert_eq(ch.n_tokens, n, "chunks hold the document's tokens, no BOS");
    cr_assert_arr_eq(ch.tokens, ids, sizeof(int) * n);
    cr_assert_eq(ch.n_chunks, (n + 6) / 7);
    for (int c = 0; c < ch.n_chunks; c++) {
        cr_assert_eq(ch.start[c], 7 * c);
        cr_assert_eq(ch.len[c], n - 7 * c < 7 ? n - 7 * c : 7);
    }
    ifk_chunking_free(&ch);
    cr_assert_eq(ifk_chunk_text(tok, "", 0, 7, IFK_SPLIT_TOKENS, &ch), IFK_OK);
    cr_assert_eq(ch.n_chunks, 0, "an empty text has no chunk");
    ifk_chunking_free(&ch);
    free(ids);
    ifk_tokenizer_free(&tok);
}

Test(chunk, paragraph_split_packs_whole_paragraphs) {
    ifk_tokenizer *tok;
    cr_assert_eq(ifk_tokenizer_load(&tok, STORIES_TOK, 512), IFK_OK);
    const char *par[] = {"Tom had a dog.", "The dog was big and brown and liked to run in the park every day.",
                         "It was fun.", "The end."};
    int n[4];
    for (int i = 0; i < 4; i++) {
        int *ids;
        cr_assert_eq(ifk_tokenizer_encode(tok, par[i], strlen(par[i]), 0, 0, &ids, &n[i]), IFK_OK);
        free(ids);
    }
    char text[512];
    snprintf(text, sizeof text, "%s\n\n%s\n \n\n%s\n\n%s", par[0], par[1], par[2], par[3]);
    int max = n[1] > n[2] + n[3] ? n[1] : n[2] + n[3]; /* paragraph 1 alone fills a chunk */
    cr_assert(n[0] + n[1] > max && n[2] + n[3] <= max, "the test's premise: p0 + p1 do not fit, p2 + p3 do");
    ifk_chunking ch;
    cr_assert_eq(ifk_chunk_text(tok, text, strlen(text), max, IFK_SPLIT_PARAGRAPHS, &ch), IFK_OK);
    cr_assert_eq(ch.n_tokens, n[0] + n[1] + n[2] + n[3], "each paragraph tokenized alone, blank lines dropped");
    /* [p0] [p1] [p2 p3]: p0 + p1 exceeds max, p2 + p3 fits */
    cr_assert_eq(ch.n_chunks, 3);
    cr_assert(ch.len[0] == n[0] && ch.len[1] == n[1] && ch.len[2] == n[2] + n[3], "%d %d %d", ch.len[0], ch.len[1],
              ch.len[2]);
    ifk_chunking_free(&ch);
    /* a paragraph longer than a chunk is cut */
    cr_assert_eq(ifk_chunk_text(tok, par[1], strlen(par[1]), 5, IFK_SPLIT_PARAGRAPHS, &ch), IFK_OK);
    cr_assert_eq(ch.n_chunks, (n[1] + 4) / 5);
    for (int c = 0; c < ch.n_chunks; c++) cr_assert_leq(ch.len[c], 5);
    ifk_chunking_free(&ch);
    ifk_tokenizer_free(&tok);
}

/* transformers' TopKLogitsWarper: only the k most probable tokens are ever drawn, each of them is;
 * RepetitionPenaltyLogitsProcessor: a seen token's logit l becomes l/p (l > 0) or l*p, by hand. */
Test(sampler, top_k_and_repetition_penalty) {
    float base[8] = {0.1f, 2.0f, -1.0f, 1.5f, 0.3f, 1.9f, -0.5f, 0.0f}, lg[8];
    ifk_sampler smp;
    cr_assert_eq(ifk_sampler_init(&smp, 8, 1.0f, 1.0f, 5), IFK_OK);
    cr_assert_eq(ifk_sampler_set_hf(&smp, 3, 1.0f), IFK_OK);
    int hits[8] = {0};
    for (int i = 0; i < 3000; i++) {
        memcpy(lg, base, sizeof lg);
        hits[ifk_sample(&smp, lg)]++;
    }
    for (int t = 0; t < 8; t++) {
        if (t == 1 || t == 5 || t == 3) cr_assert_gt(hits[t], 300, "token %d drawn %d times", t, hits[t]);
        else cr_assert_eq(hits[t], 0, "token %d outside the top 3 drawn %d times", t, hits[t]);
    }
    ifk_sampler_free(&smp);
    cr_assert_eq(ifk_sampler_init(&smp, 8, 0.0f, 1.0f, 5), IFK_OK);
    cr_assert_eq(ifk_sampler_set_hf(&smp, 0, 2.0f), IFK_OK);
    ifk_sampler_seen(&smp, 1);
    ifk_sampler_seen(&smp, 2);
    memcpy(lg, base, sizeof lg);
    cr_assert_eq(ifk_sample(&smp, lg), 5, "2.0/2 = 1.0 falls below 1.9");
    cr_assert_float_eq(lg[1], 1.0f, 0.0f);
    cr_assert_float_eq(lg[2], -2.0f, 0.0f);
    cr_assert_float_eq(lg[5], 1.9f, 0.0f);
    cr_assert_neq(ifk_sampler_set_hf(&smp, -1, 1.0f), IFK_OK);
    ifk_sampler_free(&smp);
}
