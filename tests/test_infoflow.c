/* test_infoflow.c — the method's steps on hand-checkable cases: the score formula, selection
 * rules, reordering, KL, and the global re-rotation of a chunk prefilled alone. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "bench.h"
#include "chunk.h"
#include "infoflow.h"
#include "testutil.h"

Test(score, uniform_attention_gives_the_documented_formula) {
    /* with wq = wk = 0 every score is 0, so each prompt row q at position T+q spreads its
     * attention evenly over the T+q+1 keys it sees: A[q][k] = 1/(T+q+1) for every head, and
     * score[k] = sqrt(sum_q A[q][k]^2), the same for every scored layer and so for their mean. */
    ifk_model m;
    cr_assert_eq(ifk_model_random(&m, "dim=32,layers=3,heads=4,kv_heads=2,hidden=48,vocab=40,seq=128", 3), IFK_OK);
    const size_t q = (size_t)m.cfg.n_heads * m.cfg.head_dim, kv = (size_t)m.cfg.n_kv_heads * m.cfg.head_dim;
    for (int l = 0; l < 3; l++) {
        memset((float *)m.layers[l].wq, 0, sizeof(float) * q * m.cfg.dim);
        memset((float *)m.layers[l].wk, 0, sizeof(float) * kv * m.cfg.dim);
    }
    const int T = 20, P = 5;
    int ids[20], pos[20], prompt[5] = {7, 8, 9, 10, 11};
    for (int i = 0; i < T; i++) ids[i] = 1 + i % 30, pos[i] = i;
    ifk_kvcache c;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, T + P), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, NULL, 0), IFK_OK);
    float score[20], psum[5 * 25];
    cr_assert_eq(ifk_score_infoflow(&m, &s, &c, T, prompt, P, 1, 2, psum, score), IFK_OK);
    double want = 0;
    for (int r = 0; r < P; r++) want += 1.0 / ((T + r + 1.0) * (T + r + 1.0));
    want = sqrt(want);
    for (int k = 0; k < T; k++) cr_assert_float_eq(score[k], want, 1e-6, "score[%d] = %g, want %g", k, score[k], want);
    cr_assert_eq(c.len, T, "the prompt only used scratch slots");
    ifk_kvcache_free(&c), ifk_state_free(&s), ifk_model_free(&m);
}

Test(score, stops_at_the_last_scored_layers_attention_with_the_bits_of_whole_layers) {
    /* ifk_score_attention skips the output projection and MLP of layer hi (nothing reads them): its
     * scores must be bit for bit those of whole layers 0..hi run by hand with the same formula */
    ifk_model m;
    cr_assert_eq(ifk_model_random(&m, "dim=32,layers=4,heads=4,kv_heads=2,hidden=48,vocab=40,seq=128", 5), IFK_OK);
    enum { T = 24, P = 4, NK = T + P, LO = 1, HI = 2 };
    int ids[T], pos[T], prompt[P] = {3, 17, 9, 30}, ppos[P];
    for (int i = 0; i < T; i++) ids[i] = 1 + (7 * i) % 37, pos[i] = i;
    for (int i = 0; i < P; i++) ppos[i] = T + i;
    ifk_kvcache c;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, NK), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, NULL, 0), IFK_OK);
    float score[T], psum[P * NK], want[T] = {0};
    cr_assert_eq(ifk_score_infoflow(&m, &s, &c, T, prompt, P, LO, HI, psum, score), IFK_OK);
    cr_assert_eq(ifk_embed(&m, &s, prompt, P), IFK_OK);
    ifk_state_rope(&m, &s, ppos, P);
    for (int l = 0; l <= HI; l++) {
        memset(psum, 0, sizeof psum);
        cr_assert_eq(ifk_layer_forward(&m, &s, &c, l, P, ppos, NULL, NK, l >= LO ? psum : NULL, NK), IFK_OK);
        if (l < LO) continue;
        for (int k = 0; k < T; k++) {
            double ss = 0.0;
            for (int q = 0; q < P; q++) {
                double a = psum[q * NK + k] * (1.0 / m.cfg.n_heads);
                ss += a * a;
            }
            want[k] += (float)(sqrt(ss) * (1.0 / (HI - LO + 1)));
        }
    }
    for (int k = 0; k < T; k++) cr_assert_eq(score[k], want[k], "score[%d] = %.9g, whole layers give %.9g", k, score[k], want[k]);
    ifk_kvcache_free(&c), ifk_state_free(&s), ifk_model_free(&m);
}

Test(score, flop_counts_agree) {
    /* the scoring forward's count up to the last layer, plus that layer's output projection and
     * MLP, is the count of the same rows through every layer; a prefill is rows 0..T-1 plus the
     * classifier */
    ifk_model m;
    cr_assert_eq(ifk_model_random(&m, "dim=32,layers=4,heads=4,kv_heads=2,hidden=48,vocab=40,seq=128", 5), IFK_OK);
    const ifk_config *cf = &m.cfg;
    const int T = 50, P = 6, q = cf->n_heads * cf->head_dim;
    int ppos[6];
    for (int i = 0; i < P; i++) ppos[i] = T + i;
    const double tail = 2.0 * P * ((double)q * cf->dim + 3.0 * cf->dim * cf->hidden_dim);
    const double a = ifk_score_flops(cf, T, P, cf->n_layers - 1) + tail, b = ifk_rows_flops(cf, ppos, P);
    cr_assert(fabs(a - b) <= 1e-9 * b, "%.17g vs %.17g", a, b);
    cr_assert(ifk_score_flops(cf, T, P, 0) < ifk_score_flops(cf, T, P, 1));
    /* K/V-only last layer: the whole count less that layer's q, output projection, MLP and attention */
    const double kvl = ifk_rows_flops(cf, ppos, P) - ifk_kv_rows_flops(cf, ppos, P), keys = P * (T + (P + 1) / 2.0);
    cr_assert(fabs(kvl - (tail + 2.0 * P * (double)cf->dim * q + 4.0 * q * keys)) <= 1e-9 * kvl, "%.17g", kvl);
    const double pf = ifk_prefill_flops(cf, T), rf = ifk_rows_flops(cf, NULL, T) + 2.0 * cf->dim * cf->vocab_size;
    /* the prefill counts T^2/2 products, the rows T(T+1)/2: they differ by 4 L q T / 2 */
    cr_assert(fabs(rf - pf - 2.0 * cf->n_layers * q * T) <= 1e-9 * pf, "%.17g vs %.17g", rf, pf);
    ifk_model_free(&m);
}

Test(score, default_band) {
    int lo, hi;
    ifk_default_score_layers(5, &lo, &hi);
    cr_assert(lo == 2 && hi == 3, "stories260K: %d-%d (the reference's 2-3)", lo, hi);
    ifk_default_score_layers(32, &lo, &hi);
    cr_assert(lo == 17 && hi == 25);
    ifk_default_score_layers(40, &lo, &hi);
    cr_assert(lo == 22 && hi == 31);
    ifk_default_score_layers(1, &lo, &hi);
    cr_assert(lo == 0 && hi == 0);
}

Test(select, top_n_breaks_ties_by_position_and_respects_the_exclusion) {
    float score[8] = {9, 9, 1, 5, 5, 0, 5, 7};
    int sel[8];
    cr_assert_eq(ifk_select_top(score, 8, 2, 3, sel), IFK_OK);
    /* from slot 2 on: 7 (slot 7), then the 5s at 3, 4, 6 -> the lower slots 3, 4 */
    cr_assert(sel[0] == 3 && sel[1] == 4 && sel[2] == 7, "%d %d %d", sel[0], sel[1], sel[2]);
    cr_assert_eq(ifk_select_top(score, 8, 6, 5, sel), IFK_OK); /* more than there is: all of [6, 8) */
    cr_assert(sel[0] == 6 && sel[1] == 7);
    cr_assert_eq(ifk_budget(0.15, 100), 15);
    cr_assert_eq(ifk_budget(0.15, 99), 14);
    cr_assert_eq(ifk_budget(1.0, 37), 37);
    cr_assert_eq(ifk_budget(0.0, 37), 0);
}

Test(select, epic_takes_the_head_of_every_chunk) {
    int start[3] = {0, 11, 31}, len[3] = {11, 20, 9}, sel[40];
    int n = ifk_select_epic(3, start, len, 0.25, sel);
    /* floor(0.25 * 11) = 2, floor(0.25 * 20) = 5, floor(0.25 * 9) = 2 */
    int want[9] = {0, 1, 11, 12, 13, 14, 15, 31, 32};
    cr_assert_eq(n, 9);
    cr_assert_arr_eq(sel, want, sizeof want);
}

Test(select, random_is_seeded_uniform_and_outside_the_first_chunk) {
    int a[50], b[50], hist[100] = {0};
    ifk_select_random(100, 10, 50, 7, a);
    ifk_select_random(100, 10, 50, 7, b);
    cr_assert_arr_eq(a, b, sizeof a, "same seed, same choice");
    for (int i = 0; i < 50; i++) {
        cr_assert(a[i] >= 10 && a[i] < 100 && (i == 0 || a[i] > a[i - 1]), "in range, ascending, distinct");
        hist[a[i]]++;
    }
    ifk_select_random(100, 10, 50, 8, b);
    cr_assert(memcmp(a, b, sizeof a), "another seed, another choice");
    for (int seed = 0; seed < 2000; seed++) {
        ifk_select_random(100, 10, 9, (uint64_t)seed, b);
        for (int i = 0; i < 9; i++) hist[b[i]]++;
    }
    for (int s = 10; s < 100; s++) cr_assert(hist[s] > 120 && hist[s] < 300, "slot %d drawn %d times", s, hist[s]);
}

Test(reorder, richest_chunk_goes_last_ties_keep_their_order) {
    /* chunks: [0,10) [10,30) [30,40) [40,50); selected hits 1, 10, 0, 5 -> rates .1 .5 0 .5 */
    int start[4] = {0, 10, 30, 40}, len[4] = {10, 20, 10, 10}, order[4];
    int sel[16] = {3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 40, 41, 42, 43, 44};
    ifk_reorder(4, start, len, sel, 16, order);
    int want[4] = {2, 0, 1, 3};
    cr_assert_arr_eq(order, want, sizeof want, "%d %d %d %d", order[0], order[1], order[2], order[3]);
    int one[1];
    ifk_reorder(1, start, len, sel, 16, one);
    cr_assert_eq(one[0], 0);
}

Test(kl, matches_a_hand_computation) {
    float p[3] = {0.0f, 1.0f, 2.0f}, q[3] = {2.0f, 1.0f, 0.0f};
    /* softmax of (0,1,2) = e^i / (1 + e + e^2); KL = sum p_i (log p_i - log q_i), q the reverse */
    double z = 1 + exp(1) + exp(2), want = 0;
    for (int i = 0; i < 3; i++) want += exp(i) / z * ((i - log(z)) - ((2 - i) - log(z)));
    cr_assert_float_eq(ifk_kl_logits(p, q, 3), want, 1e-12);
    cr_assert_eq(ifk_kl_logits(p, p, 3), 0.0);
    float shifted[3] = {5.0f, 6.0f, 7.0f}; /* logits up to a constant are the same distribution */
    cr_assert_float_eq(ifk_kl_logits(p, shifted, 3), 0.0, 1e-12);
    cr_assert_gt(ifk_kl_logits(q, p, 3), 0.0);
}

/* A chunk prefilled alone (BOS + chunk at 0..n) then rotated by (global start - 1) has the layer-0
 * K of a prefill of the whole context at global positions (within float rounding: 1e-5 of scale). */
Test(global_rope, rerotated_chunk_k_equals_the_prefill_at_global_positions) {
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    const int n0 = 13, n1 = 17, T = 1 + n0 + n1;
    int ctx[31], pos[31];
    uint64_t r = 5;
    ctx[0] = 1;
    for (int i = 1; i < T; i++) ctx[i] = 3 + (int)((tu_rand(&r) + 1) * 200), pos[i] = i;
    pos[0] = 0;
    ifk_kvcache full, one;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&full, &m.cfg, T), IFK_OK);
    cr_assert_eq(ifk_kvcache_init(&one, &m.cfg, n1 + 1), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &full, ctx, pos, T, NULL, 0), IFK_OK);
    size_t nel = (size_t)5 * 4 * n1 * 8;
    float *k = malloc(4 * nel), *v = malloc(4 * nel);
    cr_assert_eq(ifk_prefill_chunk(&m, &s, &one, ctx + 1 + n0, n1, k, v), IFK_OK);
    /* put chunk 1 in a cache at its global slots, positions local (1..n1), then rotate */
    ifk_kvcache g;
    cr_assert_eq(ifk_kvcache_init(&g, &m.cfg, T), IFK_OK);
    for (int l = 0; l < 5; l++)
        for (int h = 0; h < 4; h++)
            memcpy(ifk_kv_k(&g, l, h) + (size_t)(1 + n0) * 8, k + ((size_t)l * 4 + h) * n1 * 8, 4 * (size_t)n1 * 8);
    for (int j = 0; j < n1; j++) g.pos[1 + n0 + j] = IFK_CHUNK_PREFIX + j;
    ifk_kvcache_rerotate(&g, m.inv_freq, m.cfg.rope_style, 1 + n0, n1, 1 + n0 - IFK_CHUNK_PREFIX);
    for (int h = 0; h < 4; h++) {
        const float *a = ifk_kv_k(&g, 0, h) + (size_t)(1 + n0) * 8, *b = ifk_kv_k(&full, 0, h) + (size_t)(1 + n0) * 8;
        cr_assert_leq(tu_maxrel(a, b, (size_t)n1 * 8, 1e-3), 1e-5, "head %d", h);
    }
    for (int j = 0; j < n1; j++) cr_assert_eq(g.pos[1 + n0 + j], 1 + n0 + j);
    /* deeper layers differ: the chunk did not see its document's start (why recompute exists) */
    cr_assert_gt(tu_maxrel(ifk_kv_k(&g, 4, 0) + (size_t)(1 + n0) * 8, ifk_kv_k(&full, 4, 0) + (size_t)(1 + n0) * 8,
                           (size_t)n1 * 8, 1e-3), 1e-3);
    free(k), free(v);
    ifk_kvcache_free(&full), ifk_kvcache_free(&one), ifk_kvcache_free(&g), ifk_state_free(&s), ifk_model_free(&m);
}

/* A model whose every layer attends through a sliding window of w positions. */
static void windowed_(ifk_model *m, int w) {
    m->cfg.sliding_window = w;
    for (int l = 0; l < m->cfg.n_layers; l++) m->cfg.window_layers[l / 64] |= 1ull << (l % 64);
}

Test(score, uniform_attention_under_a_window_sums_only_visible_keys) {
    /* as above, but prompt row r at position T+r sees only the w keys at (T+r-w, T+r]: A = 1/w
     * there and 0 elsewhere, so score[k] = sqrt(#{r : k > T+r-w}) / w; keys left of every
     * prompt row's window score 0 */
    ifk_model m;
    cr_assert_eq(ifk_model_random(&m, "dim=32,layers=3,heads=4,kv_heads=2,hidden=48,vocab=40,seq=128", 3), IFK_OK);
    const size_t q = (size_t)m.cfg.n_heads * m.cfg.head_dim, kv = (size_t)m.cfg.n_kv_heads * m.cfg.head_dim;
    for (int l = 0; l < 3; l++) {
        memset((float *)m.layers[l].wq, 0, sizeof(float) * q * m.cfg.dim);
        memset((float *)m.layers[l].wk, 0, sizeof(float) * kv * m.cfg.dim);
    }
    const int T = 20, P = 5, w = 8;
    windowed_(&m, w);
    int ids[20], pos[20], prompt[5] = {7, 8, 9, 10, 11};
    for (int i = 0; i < T; i++) ids[i] = 1 + i % 30, pos[i] = i;
    ifk_kvcache c;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, T + P), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, NULL, 0), IFK_OK);
    float score[20], psum[5 * 25];
    cr_assert_eq(ifk_score_infoflow(&m, &s, &c, T, prompt, P, 1, 2, psum, score), IFK_OK);
    for (int k = 0; k < T; k++) {
        int seen = 0;
        for (int r = 0; r < P; r++) seen += k > T + r - w;
        double want = sqrt((double)seen) / w;
        cr_assert_float_eq(score[k], want, 1e-6, "score[%d] = %g, want %g", k, score[k], want);
    }
    cr_assert_eq(score[0], 0.0f);
    ifk_kvcache_free(&c), ifk_state_free(&s), ifk_model_free(&m);
}

Test(window, prefill_decode_and_recompute_agree_and_differ_from_full_attention_past_w) {
    /* stories260K with a window of 6: one prefill of 24 tokens, 24 one-token decode steps, and a
     * recompute of every slot all give the same logits; positions < 6 equal full attention,
     * later ones do not */
    ifk_model m;
    cr_assert_eq(ifk_model_load_llama2c(&m, STORIES_BIN), IFK_OK);
    const int T = 24, V = m.cfg.vocab_size, w = 6;
    int ids[24], pos[24];
    for (int i = 0; i < T; i++) ids[i] = 1 + (i * 37) % (V - 1), pos[i] = i;
    float *full = malloc(sizeof(float) * T * V), *pre = malloc(sizeof(float) * T * V), *dec = malloc(sizeof(float) * V);
    ifk_kvcache c;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, T), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, full, 1), IFK_OK);
    windowed_(&m, w);
    c.len = 0;
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, pre, 1), IFK_OK);
    for (int i = 0; i < T; i++) {
        double d = tu_maxrel(pre + (size_t)i * V, full + (size_t)i * V, (size_t)V, 1e-3);
        if (i < w) cr_assert_leq(d, 1e-5, "position %d", i);
        else cr_assert_gt(d, 1e-3, "position %d", i);
    }
    c.len = 0;
    for (int i = 0; i < T; i++) {
        cr_assert_eq(ifk_forward(&m, &s, &c, ids + i, pos + i, 1, dec, 0), IFK_OK);
        cr_assert_leq(tu_maxrel(dec, pre + (size_t)i * V, (size_t)V, 1e-3), 1e-4, "decode at %d", i);
    }
    int sel[24];
    for (int i = 0; i < T; i++) sel[i] = i;
    cr_assert_eq(ifk_recompute(&m, &s, &c, T, ids, sel, T), IFK_OK);
    /* the recompute stops at the last layer's K/V, its input left in s.x: finish that layer here */
    cr_assert_eq(ifk_layer_forward(&m, &s, &c, m.cfg.n_layers - 1, T, sel, sel, T, NULL, 0), IFK_OK);
    ifk_logits(&m, &s, 0, T, full);
    cr_assert_leq(tu_maxrel(full, pre, (size_t)T * V, 1e-3), 1e-4, "recompute");
    free(full), free(pre), free(dec);
    ifk_kvcache_free(&c), ifk_state_free(&s), ifk_model_free(&m);
}

/* infoflow-dev on a hand-built case: a cache holding a plain prefill's exact K/V has deviation 0
 * everywhere; adding a known offset e to one slot's layer-1 V (or K) gives dev2 = |e|^2 there and
 * 0 elsewhere; with uniform attention (wq = wk = 0, the formula of the test above) the score is
 * that attention times |e|, so the perturbed slot ranks first. */
Test(dev, deviation_and_score_on_a_hand_built_cache) {
    ifk_model m;
    cr_assert_eq(ifk_model_random(&m, "dim=32,layers=3,heads=4,kv_heads=2,hidden=48,vocab=40,seq=128", 3), IFK_OK);
    const size_t q = (size_t)m.cfg.n_heads * m.cfg.head_dim, kv = (size_t)m.cfg.n_kv_heads * m.cfg.head_dim;
    for (int l = 0; l < 3; l++) {
        memset((float *)m.layers[l].wq, 0, sizeof(float) * q * m.cfg.dim);
        memset((float *)m.layers[l].wk, 0, sizeof(float) * kv * m.cfg.dim);
    }
    const int T = 20, P = 5, Dh = m.cfg.head_dim;
    int ids[20], pos[20], prompt[5] = {7, 8, 9, 10, 11};
    for (int i = 0; i < T; i++) ids[i] = 1 + i % 30, pos[i] = i;
    ifk_kvcache c;
    ifk_state s = {0};
    cr_assert_eq(ifk_kvcache_init(&c, &m.cfg, T + P), IFK_OK);
    cr_assert_eq(ifk_forward(&m, &s, &c, ids, pos, T, NULL, 0), IFK_OK);
    float dev2[20], score[20], psum[5 * 25];
    for (int src = IFK_DEV_V; src <= IFK_DEV_KV; src++) {
        cr_assert_eq(ifk_score_deviation(&m, &s, &c, ids, T, 1, (ifk_dev_source)src, dev2), IFK_OK);
        for (int t = 0; t < T; t++) cr_assert_lt(dev2[t], 1e-8, "exact cache, source %d: dev2[%d] = %g", src, t, dev2[t]);
    }
    /* slot 13: V of KV head 1 at layer 1 off by 0.5 in 3 dims, K of head 0 by 2 in one dim */
    for (int d = 0; d < 3; d++) ifk_kv_v(&c, 1, 1)[13 * Dh + d] += 0.5f;
    ifk_kv_k(&c, 1, 0)[13 * Dh + 4] -= 2.0f;
    const double want[3] = {0.75, 4.0, 4.75}; /* V: 3 * 0.25; K: 4; both */
    for (int src = IFK_DEV_V; src <= IFK_DEV_KV; src++) {
        cr_assert_eq(ifk_score_deviation(&m, &s, &c, ids, T, 1, (ifk_dev_source)src, dev2), IFK_OK);
        for (int t = 0; t < T; t++)
            cr_assert_float_eq(dev2[t], t == 13 ? want[src] : 0.0, 1e-5, "source %d: dev2[%d] = %g", src, t, dev2[t]);
    }
    /* the deviation at layer 2 runs layers 0-1 exactly: the perturbed cache does not enter it */
    cr_assert_eq(ifk_score_deviation(&m, &s, &c, ids, T, 2, IFK_DEV_V, dev2), IFK_OK);
    for (int t = 0; t < T; t++) cr_assert_lt(dev2[t], 1e-8);
    cr_assert_neq(ifk_score_deviation(&m, &s, &c, ids, T, 3, IFK_DEV_V, dev2), IFK_OK, "layer 3 of 3 refused");
    ifk_dev_opts o;
    ifk_dev_opts_default(&o);
    o.alpha = 1; /* the oracle's plain product */
    int start[2] = {0, 8}, len[2] = {8, 12};
    cr_assert_eq(ifk_score_infoflow_dev(&m, &s, &c, ids, T, prompt, P, 1, 2, &o, 2, start, len, psum, score), IFK_OK);
    double att = 0;
    for (int r = 0; r < P; r++) att += 1.0 / ((T + r + 1.0) * (T + r + 1.0));
    att = sqrt(att);
    for (int t = 0; t < T; t++)
        cr_assert_float_eq(score[t], t == 13 ? att * sqrt(0.75) : 0.0, 1e-6, "score[%d] = %g", t, score[t]);
    int sel[1];
    cr_assert_eq(ifk_select_top(score, T, 0, 1, sel), IFK_OK);
    cr_assert_eq(sel[0], 13);
    /* attn=sum: the column sum sum_q 1/(T+q+1) times |e| */
    o.attn = IFK_DEV_ATTN_SUM;
    cr_assert_eq(ifk_score_infoflow_dev(&m, &s, &c, ids, T, prompt, P, 1, 2, &o, 2, start, len, psum, score), IFK_OK);
    double col = 0;
    for (int r = 0; r < P; r++) col += 1.0 / (T + r + 1.0);
    cr_assert_float_eq(score[13], col * sqrt(0.75), 1e-6);
    ifk_dev_opts_default(&o); /* the default squares the deviation: attention * 0.75 */
    cr_assert_eq(ifk_score_infoflow_dev(&m, &s, &c, ids, T, prompt, P, 1, 2, &o, 2, start, len, psum, score), IFK_OK);
    cr_assert_float_eq(score[13], att * 0.75, 1e-6);
    ifk_kvcache_free(&c), ifk_state_free(&s), ifk_model_free(&m);
}

Test(dev, combinations_position_prior_and_options) {
    float att[5] = {0.5f, 0.1f, 0.4f, 0.0f, 0.2f}, dev2[5] = {0.0f, 4.0f, 1.0f, 9.0f, 0.25f}, sc[5];
    ifk_dev_opts o;
    ifk_dev_opts_default(&o);
    o.alpha = 1;
    cr_assert_eq(ifk_dev_combine_scores(att, dev2, 5, &o, sc), IFK_OK);
    const float prod[5] = {0.0f, 0.2f, 0.4f, 0.0f, 0.1f}; /* att * sqrt(dev2) */
    for (int i = 0; i < 5; i++) cr_assert_float_eq(sc[i], prod[i], 1e-7, "product %d: %g", i, sc[i]);
    o.alpha = 2; /* att * dev2 */
    cr_assert_eq(ifk_dev_combine_scores(att, dev2, 5, &o, sc), IFK_OK);
    const float sq[5] = {0.0f, 0.4f, 0.4f, 0.0f, 0.05f};
    for (int i = 0; i < 5; i++) cr_assert_float_eq(sc[i], sq[i], 1e-7, "alpha 2, %d: %g", i, sc[i]);
    o.alpha = 1, o.combine = IFK_DEV_RANKSUM;
    /* att ranks: 0,3,1,4,2; dev ranks (9,4,1,.25,0 -> slots 3,1,2,4,0): 4,1,2,0,3 */
    cr_assert_eq(ifk_dev_combine_scores(att, dev2, 5, &o, sc), IFK_OK);
    const float rs[5] = {-4, -4, -3, -4, -5};
    for (int i = 0; i < 5; i++) cr_assert_float_eq(sc[i], rs[i], 0, "ranksum %d: %g", i, sc[i]);
    int start[3] = {0, 4, 7}, len[3] = {4, 3, 2};
    float pr[9];
    ifk_dev_position_prior(3, start, len, 9, pr);
    const float want[9] = {0, 0, 0, 0, 1, 0.5f, 1.0f / 3, 1, 0.5f};
    for (int i = 0; i < 9; i++) cr_assert_float_eq(pr[i], want[i], 1e-7, "prior %d: %g", i, pr[i]);
    /* options: parse, format, refuse what does not apply */
    char buf[160];
    cr_assert_eq(ifk_dev_opts_parse("source=kv,layer=2,alpha=0.5,attn=sum", 5, &o), IFK_OK);
    ifk_dev_opts_format(&o, buf, sizeof buf);
    cr_assert_str_eq(buf, "source=kv,layer=2,combine=product,alpha=0.5,attn=sum,estimate=exact");
    cr_assert_eq(ifk_dev_opts_parse("", 5, &o), IFK_OK);
    cr_assert(o.source == IFK_DEV_V && o.layer == 1 && o.alpha == 2.0 && o.combine == IFK_DEV_PRODUCT);
    cr_assert_eq(ifk_dev_opts_parse("combine=ranksum", 5, &o), IFK_OK, "ranksum with the default alpha");
    const char *bad[] = {"layer=5", "layer=0", "source=q", "alpha=0", "alpha=x", "combine=ranksum,alpha=2", "nope=1",
                         "layer", "estimate=position,source=k"};
    for (int i = 0; i < 9; i++) cr_assert_neq(ifk_dev_opts_parse(bad[i], 5, &o), IFK_OK, "'%s' refused", bad[i]);
    ifk_method meth;
    cr_assert_eq(ifk_method_parse("infoflow-dev", &meth), IFK_OK);
    cr_assert_eq(meth, IFK_METHOD_INFOFLOW_DEV);
    cr_assert_str_eq(ifk_method_name(meth), "infoflow-dev");
}
