/* cmd_eval.c — `infoflow eval --job FILE`: fidelity of every method against full prefill on a
 * query set, a needle-in-a-haystack grid, a scoring-layer ablation, summaries with 95% CIs and
 * gnuplot plots (docs/eval.md). Under mpirun every query runs tensor-parallel over all ranks:
 * rank 0 plans each run, broadcasts it, writes the results. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bm25.h"
#include "chunk.h"
#include "cli.h"
#include "comm.h"
#include "drivers.h"
#include "engine.h"
#include "evalio.h"
#include "fault.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "tp.h"

/* ---- caching documents from rank 0 (LongBench passages, needle haystacks) ---------------------- */

typedef struct {
    char *id, *text;
} text_doc_;

/* Caches the documents the store lacks, in one new shard, then rebuilds the BM25 index.
 * Rank 0 only; the store is locked meanwhile. */
static ifk_status cache_texts_(const ifk_model *m, const ifk_tokenizer *tok, const char *dir, const text_doc_ *docs,
                               int n, int *added) {
    *added = 0;
    int fd = -1;
    ifk_status st = IFK_OK;
    ifk_manifest man = {0};
    ifk_shard_writer *w = NULL;
    ifk_state s = {0};
    ifk_kvcache c = {0};
    float *k = NULL, *v = NULL;
    ifk_doc_rec *recs = NULL;
    mkdir(dir, 0755);
    IFK_CHECK(ifk_store_lock(dir, &fd));
    char mpath[2048], fp[17];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, IFK_MANIFEST);
    ifk_model_fingerprint(m, fp);
    ifk_store_params want;
    ifk_store_params_from_model(&want, m, fp);
    want.dtype = IFK_DT_F16;
    want.chunk_tokens = 128 < m->cfg.seq_len - 1 ? 128 : m->cfg.seq_len - 1;
    struct stat sb;
    if (stat(mpath, &sb) == 0) {
        IFK_CHECK_GOTO(st, ifk_manifest_load(&man, dir), done);
        IFK_CHECK_GOTO(st, ifk_store_params_check(&man.p, &want, dir, 0), done);
    } else {
        ifk_manifest_init(&man, dir, &want);
    }
    const ifk_store_params *p = &man.p;
    const size_t nel = (size_t)m->cfg.n_layers * m->cfg.n_kv_heads * p->chunk_tokens * m->cfg.head_dim;
    k = malloc(4 * nel), v = malloc(4 * nel), recs = calloc((size_t)(n ? n : 1), sizeof *recs);
    if (!k || !v || !recs) { st = IFK_FAIL(IFK_ERR_OOM, "out of memory"); goto done; }
    IFK_CHECK_GOTO(st, ifk_kvcache_init(&c, &m->cfg, p->chunk_tokens + 1), done);
    char name[128];
    snprintf(name, sizeof name, "shard-eval-%ld-%05x.h5", (long)time(NULL), (unsigned)getpid() & 0xfffff);
    for (int i = 0; i < n; i++) {
        if (ifk_manifest_find(&man, docs[i].id) >= 0) continue;
        int dup = 0;
        for (int j = 0; j < *added; j++) dup |= !strcmp(recs[j].id, docs[i].id);
        if (dup) continue;
        if (!w) IFK_CHECK_GOTO(st, ifk_shard_create(&w, dir, name, p, 0), done);
        ifk_chunking ch;
        IFK_CHECK_GOTO(st, ifk_chunk_text(tok, docs[i].text, strlen(docs[i].text), p->chunk_tokens, p->split, &ch), done);
        st = ifk_shard_begin_doc(w, docs[i].id, docs[i].text, strlen(docs[i].text));
        for (int q = 0; st == IFK_OK && q < ch.n_chunks; q++) {
            st = ifk_prefill_chunk(m, &s, &c, ch.tokens + ch.start[q], ch.len[q], k, v);
            if (st == IFK_OK) st = ifk_shard_put_chunk(w, ch.tokens + ch.start[q], ch.len[q], k, v);
        }
        ifk_chunking_free(&ch);
        if (st == IFK_OK) st = ifk_shard_end_doc(w, &recs[*added]);
        if (st != IFK_OK) goto done;
        (*added)++;
    }
    if (w) {
        IFK_CHECK_GOTO(st, ifk_shard_commit(&w), done);
        IFK_CHECK_GOTO(st, ifk_manifest_add(&man, name, recs, *added), done);
    }
    IFK_CHECK_GOTO(st, ifk_manifest_save(&man), done);
    if (*added) {
        /* the index covers every document of the store */
        ifk_store *rs = NULL;
        ifk_bm25 *ix = NULL;
        IFK_CHECK_GOTO(st, ifk_store_open(&rs, dir), done);
        st = ifk_bm25_create(&ix);
        const ifk_manifest *rm = ifk_store_manifest(rs);
        for (int d = 0; st == IFK_OK && d < rm->n_docs; d++) {
            char *t;
            size_t tl;
            st = ifk_store_read_text(rs, d, &t, &tl);
            if (st == IFK_OK) st = ifk_bm25_add(ix, rm->docs[d].id, t, tl), free(t);
        }
        char ip[2048];
        snprintf(ip, sizeof ip, "%s/%s", dir, IFK_INDEX);
        if (st == IFK_OK) st = ifk_bm25_save(ix, ip);
        ifk_bm25_free(&ix);
        ifk_store_close(&rs);
    }
done:
    if (w) ifk_shard_abort(&w);
    for (int i = 0; recs && i < n; i++) ifk_doc_rec_free(&recs[i]);
    free(recs), free(k), free(v);
    ifk_kvcache_free(&c);
    ifk_state_free(&s);
    ifk_manifest_free(&man);
    ifk_store_unlock(fd);
    return st;
}

/* ---- runs ------------------------------------------------------------------------------------------ */

/* One query run, as rank 0 broadcasts it: kind 0 fidelity, 1 needle, 2 ablation. */
typedef struct {
    int32_t kind, item, method, reorder, lo, hi, n_docs, n_prompt, cell_len, cell_depth, name_tok;
    double budget;
} run_;

typedef struct {
    const ifk_comm *cm;
    ifk_tp_mpi *tpm;
    const ifk_model *m;   /* this rank's model (a slice under tensor parallelism) */
    ifk_store *st;
    int steps;
    ifk_dev_opts dev; /* infoflow-dev's variant ([job] dev) */
} ctx_;

/* Broadcasts a run (rank 0's docs and prompt) and runs it on every rank. */
static ifk_status do_run_(ctx_ *x, run_ *r, int *docs, int *prompt, ifk_query_result *res) {
    if (x->cm->size > 1) {
        MPI_Bcast(r, (int)sizeof *r, MPI_BYTE, 0, x->cm->comm);
        MPI_Bcast(docs, r->n_docs, MPI_INT, 0, x->cm->comm);
        MPI_Bcast(prompt, r->n_prompt, MPI_INT, 0, x->cm->comm);
    }
    ifk_query_opts o = {.method = (ifk_method)r->method, .budget = r->budget, .reorder = r->reorder,
                        .score_lo = r->lo, .score_hi = r->hi, .steps = x->steps, .seed = 0, .dev = x->dev};
    ifk_query_docs qd = {docs, r->n_docs};
    return ifk_query_run(x->m, x->st, &qd, prompt, r->n_prompt, &o, x->cm->size > 1 ? &x->tpm->tp : NULL, res);
}

/* ---- results ---------------------------------------------------------------------------------- */

typedef struct {
    char method[16];
    double budget;
    int reorder, layer;
    double kl, top1, lead, f1, em, ttft;
    int has_gold;
    double t[6];
} row_;

typedef struct {
    row_ *r;
    int n, cap;
} rows_;

static void push_row_(rows_ *rs, const row_ *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->r = realloc(rs->r, sizeof *rs->r * rs->cap);
        IFK_ASSERT(rs->r);
    }
    rs->r[rs->n++] = *r;
}

static double softmax_at_(const float *l, int V, int i) {
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < V; k++) mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < V; k++) z += exp(l[k] - mx);
    return exp(l[i] - mx) / z;
}

/* Groups rows by (method, budget, reorder, layer) and writes means with 95% CIs. */
static void summarize_(const rows_ *rs, FILE *csv, FILE *md, const char *title) {
    fprintf(md, "\n### %s\n\n| method | budget | reorder | n | KL(full‖method) | top-1 | leading tokens | F1 | EM | TTFT ms |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n", title);
    char *done = calloc((size_t)rs->n + 1, 1);
    double *buf = malloc(sizeof(double) * ((size_t)rs->n + 1));
    for (int i = 0; i < rs->n; i++) {
        if (done[i]) continue;
        const row_ *a = &rs->r[i];
        int idx[4096], n = 0;
        for (int j = i; j < rs->n && n < 4096; j++) {
            const row_ *b = &rs->r[j];
            if (!done[j] && !strcmp(a->method, b->method) && a->budget == b->budget && a->reorder == b->reorder &&
                a->layer == b->layer)
                idx[n++] = j, done[j] = 1;
        }
        double mean[6], half[6];
        for (int f = 0; f < 6; f++) {
            int m = 0;
            for (int q = 0; q < n; q++) {
                const row_ *b = &rs->r[idx[q]];
                double v = f == 0 ? b->kl : f == 1 ? b->top1 : f == 2 ? b->lead : f == 3 ? b->f1 : f == 4 ? b->em : b->ttft;
                if ((f == 3 || f == 4) && !b->has_gold) continue;
                buf[m++] = v;
            }
            if (m) ifk_mean_ci95(buf, m, &mean[f], &half[f]);
            else mean[f] = NAN, half[f] = 0;
        }
        char lay[32] = "";
        if (a->layer >= 0) snprintf(lay, sizeof lay, " (layer %d)", a->layer);
        fprintf(md, "| %s%s | %.2f | %s | %d | %.5f ± %.5f | %.2f ± %.2f | ", a->method, lay, a->budget,
                a->reorder ? "on" : "off", n, mean[0], half[0], mean[1], half[1]);
        if (isnan(mean[2])) fprintf(md, "– | ");
        else fprintf(md, "%.1f ± %.1f | ", mean[2], half[2]);
        if (isnan(mean[3])) fprintf(md, "– | – | ");
        else fprintf(md, "%.3f ± %.3f | %.3f ± %.3f | ", mean[3], half[3], mean[4], half[4]);
        fprintf(md, "%.1f ± %.1f |\n", mean[5], half[5]);
        fprintf(csv, "%s,%s,%g,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", title, a->method,
                a->budget, a->reorder, a->layer, n, mean[0], half[0], mean[1], half[1], mean[2], half[2], mean[3],
                half[3], mean[4], half[4], mean[5], half[5]);
    }
    free(done), free(buf);
}

/* ---- plots ------------------------------------------------------------------------------------- */

/* What the plots need to know, derived from the results themselves. */
typedef struct {
    char methods[IFK_MAX_LIST][16];
    int n_methods;
    double budget_lo, budget_hi, ablation_budget;
    int lengths[IFK_MAX_LIST], n_lengths, depths[IFK_MAX_LIST], n_depths;
} plotspec_;

static void plots_(const char *out, const plotspec_ *j, int have_fid, int have_needle, int have_abl, int quiet) {
    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        fprintf(stderr, "eval: gnuplot not found (apt-get install gnuplot-nox): plots not written\n");
        return;
    }
    char path[2048], cmd[4200];
    snprintf(path, sizeof path, "%s/plots.gp", out);
    FILE *g = fopen(path, "w");
    if (!g) return;
    fprintf(g, "set terminal pngcairo size 900,600 noenhanced\nset datafile separator whitespace\nset key outside right\n");
    if (have_fid) {
        fprintf(g, "set output '%s/speed_accuracy.png'\nset title 'Speed-accuracy: TTFT vs KL(full||method), budgets %.2f..%.2f'\n"
                   "set xlabel 'TTFT (ms)'\nset ylabel 'mean KL(full || method) at the first answer token'\nset logscale y\n",
                out, j->budget_lo, j->budget_hi);
        fprintf(g, "plot for [i=0:*] '%s/speed_accuracy.dat' index i using 2:3 with linespoints pt 7 title columnheader(1)\n", out);
        fprintf(g, "unset logscale y\n");
    }
    if (have_needle) {
        fprintf(g, "set output '%s/needle.png'\nset terminal pngcairo size 1200,%d noenhanced\n", out,
                300 * ((j->n_methods + 2) / 3));
        fprintf(g, "set multiplot layout %d,3 title 'Needle: p(name | method) / p(name | full), context length x depth'\n",
                (j->n_methods + 2) / 3);
        fprintf(g, "set xlabel 'context tokens (target)'\nset ylabel 'needle depth %%'\nset cbrange [0:1.2]\n"
                   "set palette defined (0 'red', 0.6 'yellow', 1 'green', 1.2 'dark-green')\nset xtics (");
        for (int i = 0; i < j->n_lengths; i++) fprintf(g, "%s%d", i ? ", " : "", j->lengths[i]);
        fprintf(g, ") rotate by 45 right\nset ytics (");
        for (int i = 0; i < j->n_depths; i++) fprintf(g, "%s%d", i ? ", " : "", j->depths[i]);
        fprintf(g, ")\n");
        for (int i = 0; i < j->n_methods; i++)
            fprintf(g, "set title '%s'\nplot '%s/needle_%s.dat' using 1:2:3 with image notitle\n", j->methods[i], out,
                    j->methods[i]);
        fprintf(g, "unset multiplot\nset terminal pngcairo size 900,600 noenhanced\n");
    }
    if (have_abl) {
        fprintf(g, "set output '%s/ablation.png'\nset title 'Scoring-layer ablation: InfoFlow with one scoring layer, R=%.2f'\n"
                   "set xlabel 'scoring layer'\nset ylabel 'mean KL(full || infoflow)'\nset xtics 1\n"
                   "plot '%s/ablation.dat' using 1:2:3 with yerrorlines pt 7 title 'mean +- 95%% CI'\n",
                out, j->ablation_budget, out);
    }
    fclose(g);
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    char line[512];
    while (p && fgets(line, sizeof line, p)) fprintf(stderr, "gnuplot: %s", line);
    if (p) pclose(p);
    if (!quiet) fprintf(stderr, "eval: plots in %s (speed_accuracy.png, needle.png, ablation.png as run)\n", out);
}


/* ---- summaries from result files -------------------------------------------------------------- */

/* Reads a JSONL file line by line into cJSON objects passed to fn; missing file: 0 lines. */
static ifk_status each_line_(const char *path, void (*fn)(const cJSON *o, void *ctx), void *ctx, int *n) {
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return IFK_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    ifk_status st = IFK_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        ln++;
        if (len <= 1) continue;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: not a result line (JSON object)", path, ln);
            break;
        }
        fn(o, ctx);
        cJSON_Delete(o);
        (*n)++;
    }
    free(line);
    fclose(f);
    return st;
}

static double num_(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}
static const char *str0_(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

typedef struct {
    rows_ rows;
    char (*keys)[160];
    int nkeys, capkeys;
    int layer_rows; /* ablation file: layer from score_layer */
} collect_;

/* Keeps the first line of each (item, method, budget, reorder, layer): merged array-task outputs
 * repeat the full-prefill reference. */
static int seen_(collect_ *c, const char *key) {
    for (int i = 0; i < c->nkeys; i++)
        if (!strcmp(c->keys[i], key)) return 1;
    if (c->nkeys == c->capkeys) {
        c->capkeys = c->capkeys ? 2 * c->capkeys : 256;
        c->keys = realloc(c->keys, sizeof *c->keys * c->capkeys);
        IFK_ASSERT(c->keys);
    }
    snprintf(c->keys[c->nkeys++], 160, "%s", key);
    return 0;
}

static void fid_line_(const cJSON *o, void *ctx) {
    collect_ *c = ctx;
    row_ r = {.layer = c->layer_rows ? (int)num_(o, "score_layer", -1) : -1};
    snprintf(r.method, sizeof r.method, "%s", c->layer_rows ? "infoflow" : str0_(o, "method"));
    r.budget = num_(o, "budget", 0);
    r.reorder = (int)num_(o, "reorder", 0);
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%g|%d|%d", str0_(o, "item"), r.method, r.budget, r.reorder, r.layer);
    if (seen_(c, key)) return;
    r.kl = num_(o, "kl", NAN);
    r.top1 = num_(o, "top1_agree", NAN);
    r.lead = num_(o, "leading_agree", NAN);
    r.has_gold = cJSON_GetObjectItemCaseSensitive(o, "f1") != NULL;
    r.f1 = num_(o, "f1", 0);
    r.em = num_(o, "em", 0);
    r.ttft = num_(o, "ttft_ms", NAN);
    push_row_(&c->rows, &r);
}

typedef struct {
    char method[16];
    int target, depth, hit, full_hit;
    double ratio, kl, budget;
} needle_row_;

typedef struct {
    needle_row_ *r;
    int n, cap;
    collect_ keys;
} needles_;

static void needle_line_(const cJSON *o, void *ctx) {
    needles_ *c = ctx;
    needle_row_ r = {0};
    snprintf(r.method, sizeof r.method, "%s", str0_(o, "method"));
    r.target = (int)num_(o, "target_tokens", num_(o, "context_tokens", 0));
    r.depth = (int)num_(o, "depth", 0);
    char key[160];
    snprintf(key, sizeof key, "%s|%d|%d", r.method, r.target, r.depth);
    if (seen_(&c->keys, key)) return;
    r.ratio = num_(o, "ratio", 0);
    r.kl = num_(o, "kl", 0);
    r.budget = num_(o, "budget", 0);
    r.hit = (int)num_(o, "greedy_hit", 0);
    r.full_hit = (int)num_(o, "full_hit", 0);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->r = realloc(c->r, sizeof *c->r * c->cap);
        IFK_ASSERT(c->r);
    }
    c->r[c->n++] = r;
}

static void add_unique_i_(int *v, int *n, int x) {
    for (int i = 0; i < *n; i++)
        if (v[i] == x) return;
    if (*n < IFK_MAX_LIST) v[(*n)++] = x;
    for (int i = *n - 1; i > 0 && v[i] < v[i - 1]; i--) { int t = v[i]; v[i] = v[i - 1]; v[i - 1] = t; }
}

static void add_method_(plotspec_ *ps, const char *m) {
    for (int i = 0; i < ps->n_methods; i++)
        if (!strcmp(ps->methods[i], m)) return;
    if (ps->n_methods < IFK_MAX_LIST) snprintf(ps->methods[ps->n_methods++], 16, "%s", m);
}

/* ---- the speed-accuracy frontier ------------------------------------------------------------ */

/* One method's curve: mean TTFT and mean KL per budget (no reordering), ascending budgets. */
typedef struct {
    int n;
    double budget[IFK_MAX_LIST], ttft[IFK_MAX_LIST], kl[IFK_MAX_LIST];
} curve_;

static void curve_of_(const rows_ *rs, const char *method, curve_ *c) {
    c->n = 0;
    for (int q = 0; q < rs->n; q++) {
        const row_ *r = &rs->r[q];
        if (strcmp(r->method, method) || r->reorder) continue;
        int k = 0;
        while (k < c->n && c->budget[k] != r->budget) k++;
        if (k == c->n) {
            if (c->n == IFK_MAX_LIST) continue;
            c->budget[c->n] = r->budget, c->ttft[c->n] = c->kl[c->n] = 0, c->n++;
        }
    }
    for (int a = 1; a < c->n; a++)
        for (int k = a; k > 0 && c->budget[k] < c->budget[k - 1]; k--) {
            double t = c->budget[k];
            c->budget[k] = c->budget[k - 1], c->budget[k - 1] = t;
        }
    for (int k = 0; k < c->n; k++) {
        int n = 0;
        for (int q = 0; q < rs->n; q++) {
            const row_ *r = &rs->r[q];
            if (!strcmp(r->method, method) && !r->reorder && r->budget == c->budget[k])
                c->ttft[k] += r->ttft, c->kl[k] += r->kl, n++;
        }
        c->ttft[k] /= n, c->kl[k] /= n;
    }
}

/* The TTFT a method needs to reach KL <= target along its curve: at the first budget (ascending)
 * whose mean KL reaches it, interpolated linearly in log KL from the previous budget's point (the
 * curve between measured budgets is not known; the interpolation is stated in the table). Returns
 * the index of that budget, -1 when no budget reaches it. */
static int frontier_ttft_(const curve_ *c, double target, double *ttft) {
    for (int k = 0; k < c->n; k++) {
        if (c->kl[k] > target) continue;
        *ttft = c->ttft[k];
        if (k > 0 && c->kl[k - 1] > target && c->kl[k] > 0) {
            const double a = log(c->kl[k - 1]), b = log(c->kl[k]), w = (a - log(target)) / (a - b);
            *ttft = c->ttft[k - 1] + w * (c->ttft[k] - c->ttft[k - 1]);
        }
        return k;
    }
    return -1;
}

/* The frontier table: for every method the TTFT it needs to reach the KL InfoFlow reaches at the
 * budget nearest 0.15 (without InfoFlow in the results: the median method's KL there). Writes
 * markdown to md and frontier.csv in dir. */
static void frontier_summary_(const rows_ *rs, const plotspec_ *ps, const char *dir, FILE *md) {
    curve_ ref = {0};
    const char *ref_m = NULL;
    for (int mi = 0; mi < ps->n_methods && !ref_m; mi++)
        if (!strcmp(ps->methods[mi], "infoflow")) ref_m = ps->methods[mi];
    for (int mi = 0; mi < ps->n_methods && !ref_m; mi++)
        if (strcmp(ps->methods[mi], "full") && strcmp(ps->methods[mi], "none")) ref_m = ps->methods[mi];
    if (!ref_m) return;
    curve_of_(rs, ref_m, &ref);
    int at = -1;
    for (int k = 0; k < ref.n; k++)
        if (at < 0 || fabs(ref.budget[k] - 0.15) < fabs(ref.budget[at] - 0.15)) at = k;
    if (at < 0) return;
    const double target = ref.kl[at];
    char path[2048];
    snprintf(path, sizeof path, "%s/frontier.csv", dir);
    FILE *csv = fopen(path, "w");
    if (csv) fprintf(csv, "method,target_kl,reached,budget,ttft_ms,ttft_at_budget_ms\n");
    fprintf(md, "\n### speed-accuracy frontier: the TTFT each method needs to reach KL ≤ %.5f (%s at R = %.2f)\n\n"
                "Mean TTFT and mean KL per budget (no reordering). TTFT needed: at the first budget whose mean KL "
                "reaches the target, interpolated in log KL from the budget before it.\n\n"
                "| method | first budget reaching it | its mean KL | TTFT needed ms | TTFT at that budget ms |\n"
                "|---|---|---|---|---|\n", target, ref_m, ref.budget[at]);
    for (int mi = 0; mi < ps->n_methods; mi++) {
        curve_ c;
        curve_of_(rs, ps->methods[mi], &c);
        double t = 0;
        const int k = frontier_ttft_(&c, target, &t);
        if (k < 0) {
            double best = INFINITY;
            for (int q = 0; q < c.n; q++) best = c.kl[q] < best ? c.kl[q] : best;
            fprintf(md, "| %s | not reached (best %.5f) | – | – | – |\n", ps->methods[mi], best);
            if (csv) fprintf(csv, "%s,%.9g,0,,,\n", ps->methods[mi], target);
            continue;
        }
        fprintf(md, "| %s | %.2f | %.5f | %.1f | %.1f |\n", ps->methods[mi], c.budget[k], c.kl[k], t, c.ttft[k]);
        if (csv) fprintf(csv, "%s,%.9g,1,%g,%.4f,%.4f\n", ps->methods[mi], target, c.budget[k], t, c.ttft[k]);
    }
    if (csv) fclose(csv);
}

/* Summaries (markdown, CSV, printed) and plots of the result files in dir. Local (rank 0). */
static ifk_status summarize_dir_(const char *dir, const char *title, int quiet) {
    char path[2048];
    collect_ fid = {0}, abl = {.layer_rows = 1};
    needles_ nd = {0};
    int nf, na, nn;
    snprintf(path, sizeof path, "%s/fidelity.jsonl", dir);
    IFK_CHECK(each_line_(path, fid_line_, &fid, &nf));
    snprintf(path, sizeof path, "%s/ablation.jsonl", dir);
    IFK_CHECK(each_line_(path, fid_line_, &abl, &na));
    snprintf(path, sizeof path, "%s/needle.jsonl", dir);
    IFK_CHECK(each_line_(path, needle_line_, &nd, &nn));
    if (!fid.rows.n && !abl.rows.n && !nd.n) return IFK_FAIL(IFK_ERR_IO, "%s: no result files (fidelity.jsonl, needle.jsonl, ablation.jsonl)", dir);
    plotspec_ ps = {.budget_lo = 1, .budget_hi = 0, .ablation_budget = 0.15};
    for (int i = 0; i < fid.rows.n; i++) {
        const row_ *r = &fid.rows.r[i];
        add_method_(&ps, r->method);
        if (strcmp(r->method, "full") && strcmp(r->method, "none")) {
            ps.budget_lo = r->budget < ps.budget_lo ? r->budget : ps.budget_lo;
            ps.budget_hi = r->budget > ps.budget_hi ? r->budget : ps.budget_hi;
        }
    }
    if (abl.rows.n) ps.ablation_budget = abl.rows.r[0].budget;
    plotspec_ pn = ps; /* the needle plot has its own method list */
    pn.n_methods = 0;
    for (int i = 0; i < nd.n; i++) {
        add_method_(&pn, nd.r[i].method);
        add_unique_i_(pn.lengths, &pn.n_lengths, nd.r[i].target);
        add_unique_i_(pn.depths, &pn.n_depths, nd.r[i].depth);
    }
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/summary.md", dir);
    FILE *md = fopen(path, "w");
    if (!csv || !md) {
        if (csv) fclose(csv);
        if (md) fclose(md);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot write the summary: %s", dir, strerror(errno));
    }
    fprintf(csv, "table,method,budget,reorder,score_layer,n,kl,kl_ci,top1,top1_ci,leading,leading_ci,f1,f1_ci,em,em_ci,"
                 "ttft_ms,ttft_ci\n");
    fprintf(md, "# infoflow eval\n\n%s. Means ± 95%% CI (Student t) over items; KL in nats at the first answer token; "
                "leading = answer tokens equal to full's.\n", title);
    if (fid.rows.n) summarize_(&fid.rows, csv, md, "fidelity");
    if (fid.rows.n) frontier_summary_(&fid.rows, &ps, dir, md);
    if (abl.rows.n) summarize_(&abl.rows, csv, md, "scoring-layer ablation");
    if (nd.n) {
        fprintf(md, "\n### needle: p(name | method) / p(name | full), KL, and greedy recall\n\n"
                    "| method | budget | cells | mean ratio | mean KL | greedy hits | full's hits |\n|---|---|---|---|---|---|---|\n");
        for (int mi = 0; mi < pn.n_methods; mi++) {
            double s = 0, kl = 0, b = 0;
            int h = 0, fh = 0, c = 0;
            for (int i = 0; i < nd.n; i++)
                if (!strcmp(nd.r[i].method, pn.methods[mi]))
                    s += nd.r[i].ratio, kl += nd.r[i].kl, h += nd.r[i].hit, fh += nd.r[i].full_hit, b = nd.r[i].budget, c++;
            fprintf(md, "| %s | %.2f | %d | %.3f | %.5f | %d | %d |\n", pn.methods[mi], b, c, s / c, kl / c, h, fh);
            snprintf(path, sizeof path, "%s/needle_%s.dat", dir, pn.methods[mi]);
            FILE *d = fopen(path, "w");
            for (int li = 0; d && li < pn.n_lengths; li++) {
                for (int di = 0; di < pn.n_depths; di++)
                    for (int i = 0; i < nd.n; i++)
                        if (!strcmp(nd.r[i].method, pn.methods[mi]) && nd.r[i].target == pn.lengths[li] &&
                            nd.r[i].depth == pn.depths[di])
                            fprintf(d, "%d %d %.6g\n", pn.lengths[li], pn.depths[di], nd.r[i].ratio);
                fprintf(d, "\n");
            }
            if (d) fclose(d);
        }
    }
    fclose(csv);
    fclose(md);
    if (fid.rows.n) { /* speed-accuracy: per method, (budget, mean TTFT, mean KL) without reordering */
        snprintf(path, sizeof path, "%s/speed_accuracy.dat", dir);
        FILE *d = fopen(path, "w");
        for (int mi = 0; d && mi < ps.n_methods; mi++) {
            fprintf(d, "\"%s\"\n", ps.methods[mi]);
            double bs[IFK_MAX_LIST];
            int nb = 0;
            for (int q = 0; q < fid.rows.n; q++) {
                const row_ *r = &fid.rows.r[q];
                int have = 0;
                for (int k = 0; k < nb; k++) have |= bs[k] == r->budget;
                if (!strcmp(r->method, ps.methods[mi]) && !r->reorder && !have && nb < IFK_MAX_LIST) bs[nb++] = r->budget;
            }
            for (int a = 1; a < nb; a++)
                for (int k = a; k > 0 && bs[k] < bs[k - 1]; k--) { double t = bs[k]; bs[k] = bs[k - 1]; bs[k - 1] = t; }
            for (int k = 0; k < nb; k++) {
                double tt = 0, kl = 0;
                int n = 0;
                for (int q = 0; q < fid.rows.n; q++) {
                    const row_ *r = &fid.rows.r[q];
                    if (!strcmp(r->method, ps.methods[mi]) && !r->reorder && r->budget == bs[k]) tt += r->ttft, kl += r->kl, n++;
                }
                if (n) fprintf(d, "%g %.4f %.9g\n", bs[k], tt / n, kl / n > 1e-9 ? kl / n : 1e-9);
            }
            fprintf(d, "\n\n");
        }
        if (d) fclose(d);
    }
    if (abl.rows.n) {
        snprintf(path, sizeof path, "%s/ablation.dat", dir);
        FILE *d = fopen(path, "w");
        double *v = malloc(sizeof(double) * (size_t)abl.rows.n);
        for (int l = 0; d && v && l < 1024; l++) {
            int n = 0;
            for (int q = 0; q < abl.rows.n; q++)
                if (abl.rows.r[q].layer == l) v[n++] = abl.rows.r[q].kl;
            double mean, half;
            if (n) ifk_mean_ci95(v, n, &mean, &half), fprintf(d, "%d %.9g %.9g\n", l, mean, half);
        }
        free(v);
        if (d) fclose(d);
    }
    plotspec_ all = ps;
    memcpy(all.lengths, pn.lengths, sizeof all.lengths), all.n_lengths = pn.n_lengths;
    memcpy(all.depths, pn.depths, sizeof all.depths), all.n_depths = pn.n_depths;
    if (nd.n) memcpy(all.methods, pn.methods, sizeof all.methods), all.n_methods = pn.n_methods;
    plots_(dir, &all, fid.rows.n > 0, nd.n > 0, abl.rows.n > 0, quiet);
    snprintf(path, sizeof path, "%s/summary.md", dir);
    FILE *in = fopen(path, "r");
    char line[1024];
    while (in && fgets(line, sizeof line, in)) fputs(line, stdout);
    if (in) fclose(in);
    free(fid.rows.r), free(fid.keys), free(abl.rows.r), free(abl.keys), free(nd.r), free(nd.keys.keys);
    return IFK_OK;
}

/* ---- the driver -------------------------------------------------------------------------------- */

static const char *animals_[] = {"cat", "dog", "bird", "fish", "frog", "bunny", "bear", "duck"};
static const char *names_[] = {"Tim", "Sam", "Anna", "Bob", "Mia", "Lucy", "Jack", "Sara"};

/* Collects generated text. */
typedef struct {
    char *b;
    size_t n, cap;
    const ifk_tokenizer *t;
} acc_;

static void acc_cb_(int prev, int t, void *c) {
    acc_ *x = c;
    size_t pl;
    const char *p = ifk_tokenizer_decode(x->t, prev, t, &pl);
    if (x->b && x->n + pl + 1 < x->cap) memcpy(x->b + x->n, p, pl), x->n += pl;
}

static void mkdirs_(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') *s = '\0', mkdir(p, 0755), *s = '/';
    mkdir(p, 0755);
}

int ifk_cmd_eval(int argc, char **argv) {
    ifk_comm cm;
    if (ifk_comm_start(&cm, &argc, &argv) != IFK_OK) return 1;
    const char *job_s = NULL, *out_s = NULL, *store_s = NULL, *queries_s = NULL, *methods_s = NULL, *budgets_s = NULL,
               *steps_s = NULL, *threads_s = NULL, *summ_s = NULL;
    int quiet = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {{"job", "FILE", "job spec (INI; see docs/eval.md) (required)", &job_s, NULL},
                            {"out", "DIR", "override [job] out", &out_s, NULL},
                            {"store", "DIR", "override [job] store", &store_s, NULL},
                            {"queries", "FILE", "override [job] queries", &queries_s, NULL},
                            {"methods", "LIST", "override [job] methods", &methods_s, NULL},
                            {"budgets", "LIST", "override [job] budgets", &budgets_s, NULL},
                            {"steps", "N", "override [job] steps", &steps_s, NULL},
                            {"threads", "N", "BLAS threads per rank", &threads_s, NULL},
                            {"summarize", "DIR", "only summarise and plot the result files in DIR (merged array "
                                                  "tasks, see slurm/collect.sh)", &summ_s, NULL},
                            {"quiet", NULL, "no progress lines", NULL, &quiet},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_jobspec j;
    ifk_model full = {0}, local = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *st = NULL;
    ifk_qitem *items = NULL;
    int n_items = 0;
    text_doc_ *tdocs = NULL;
    int n_tdocs = 0;
    FILE *ff = NULL, *fn = NULL, *fa = NULL;
    ifk_tp_mpi tpm;
    long threads = 0;
    ifk_status s_ = ifk_cli_parse(argc, argv, opts,
                                  "usage: [mpirun -n P] infoflow eval --job FILE [overrides]\n"
                                  "Runs a job spec's fidelity grid, needle grid and ablation; writes results, a summary "
                                  "and plots.", &help);
    if (s_ == IFK_OK && help) { rc = 0; goto out; }
    if (s_ == IFK_OK && summ_s) {
        if (cm.rank == 0) s_ = summarize_dir_(summ_s, summ_s, quiet);
        if (ifk_comm_agree(&cm, s_) == IFK_OK) rc = 0;
        goto out;
    }
    if (s_ == IFK_OK && !job_s) s_ = IFK_FAIL(IFK_ERR_ARG, "eval: --job FILE (or --summarize DIR) is required");
    if (s_ == IFK_OK) s_ = ifk_jobspec_load(&j, job_s);
    const char *ov[][2] = {{"out", out_s}, {"store", store_s}, {"queries", queries_s}, {"methods", methods_s},
                           {"budgets", budgets_s}, {"steps", steps_s}};
    for (int i = 0; s_ == IFK_OK && i < 6; i++)
        if (ov[i][1] && ifk_jobspec_set(&j, "job", ov[i][0], ov[i][1]) != IFK_OK) {
            char m[512];
            snprintf(m, sizeof m, "%s", ifk_errmsg());
            s_ = IFK_FAIL(IFK_ERR_ARG, "--%s: %s", ov[i][0], m);
        }
    if (s_ == IFK_OK) s_ = ifk_cli_int("threads", threads_s, 1, 1024, &threads);
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    ifk_blas_set_threads(threads ? (int)threads : ifk_comm_blas_threads(&cm, 0));
    s_ = j.model[0] ? ifk_engine_load(j.model, j.tokenizer[0] ? j.tokenizer : NULL, &full, &tok)
                    : ifk_model_random(&full, j.random_model, 1);
    if (s_ == IFK_OK && !tok && (j.needle || j.queries[0]))
        s_ = IFK_FAIL(IFK_ERR_ARG, "%s: a random model has no tokenizer for text prompts", j.path);
    if (s_ == IFK_OK && cm.size > 1) s_ = ifk_model_slice(&full, cm.rank, cm.size, &local);
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    const ifk_config *cfg = &full.cfg;

    /* rank 0: the query set, the needle haystack, and caching what the store lacks */
    int n_hay = 0;
    if (cm.rank == 0) {
        if (j.queries[0]) s_ = ifk_queryset_read(j.queries, &items, &n_items);
        int cap = 0;
        for (int i = 0; s_ == IFK_OK && i < n_items; i++) cap += items[i].n_passages;
        if (j.needle) cap += j.haystack_docs + 8;
        tdocs = calloc((size_t)cap + 1, sizeof *tdocs);
        for (int i = 0; s_ == IFK_OK && i < n_items; i++)
            for (int p = 0; p < items[i].n_passages; p++)
                tdocs[n_tdocs].id = strdup(items[i].docs[p]), tdocs[n_tdocs++].text = strdup(items[i].passages[p]);
        if (s_ == IFK_OK && j.needle) {
            /* haystack: stories sampled from the model itself, one seed each */
            if (!quiet) fprintf(stderr, "eval: sampling %d haystack stories of %d tokens from the model\n", j.haystack_docs,
                                j.haystack_tokens);
            const char *start = "Once upon a time";
            int *sids, sn;
            s_ = ifk_tokenizer_encode(tok, start, strlen(start), 1, 0, &sids, &sn);
            for (int h = 0; s_ == IFK_OK && h < j.haystack_docs; h++) {
                ifk_sampler smp;
                s_ = ifk_sampler_init(&smp, cfg->vocab_size, 1.0f, 0.9f, (uint64_t)(j.needle_seed * 1000 + h + 1));
                if (s_ != IFK_OK) break;
                acc_ a = {malloc(8192), 0, 8192, tok};
                ifk_gen_stats gs;
                int steps = j.haystack_tokens + sn < cfg->seq_len ? j.haystack_tokens + sn : cfg->seq_len;
                s_ = ifk_generate(&full, &smp, sids, sn, steps, acc_cb_, &a, &gs);
                a.b[a.n] = '\0';
                ifk_sampler_free(&smp);
                char id[32];
                snprintf(id, sizeof id, "hay-%03d", h);
                tdocs[n_tdocs].id = strdup(id);
                tdocs[n_tdocs++].text = a.b;
            }
            free(sids);
            n_hay = j.haystack_docs;
            for (int k = 0; s_ == IFK_OK && k < 8; k++) {
                char id[32], text[128];
                snprintf(id, sizeof id, "needle-%d", k);
                snprintf(text, sizeof text, "Once upon a time, there was a %s named %s.", animals_[k], names_[k]);
                tdocs[n_tdocs].id = strdup(id);
                tdocs[n_tdocs++].text = strdup(text);
            }
        }
        int added = 0;
        if (s_ == IFK_OK && n_tdocs) s_ = cache_texts_(&full, tok, j.store, tdocs, n_tdocs, &added);
        if (s_ == IFK_OK && added && !quiet) fprintf(stderr, "eval: cached %d documents into %s\n", added, j.store);
    }
    MPI_Bcast(&n_hay, 1, MPI_INT, 0, cm.comm);
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    s_ = ifk_store_open(&st, j.store);
    if (s_ == IFK_OK) {
        char fp[17];
        ifk_store_params want;
        ifk_model_fingerprint(&full, fp);
        ifk_store_params_from_model(&want, &full, fp);
        s_ = ifk_store_params_check(&ifk_store_manifest(st)->p, &want, j.store, 0);
    }
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    const ifk_manifest *man = ifk_store_manifest(st);
    if (cm.size > 1) ifk_tp_mpi_init(&tpm, &cm, cfg->n_heads);
    ctx_ x = {.cm = &cm, .tpm = &tpm, .m = cm.size > 1 ? &local : &full, .st = st, .steps = j.steps};
    ifk_dev_opts_default(&x.dev);
    if (j.dev[0] && ifk_dev_opts_parse(j.dev, cfg->n_layers, &x.dev) != IFK_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ifk_errmsg());
        s_ = IFK_FAIL(IFK_ERR_ARG, "%s: [job] dev: %s", j.path, msg);
    }
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    const int V = cfg->vocab_size;

    if (cm.rank != 0) { /* workers: run what rank 0 broadcasts until it says stop */
        int *docs = malloc(sizeof(int) * 65536), *prompt = malloc(sizeof(int) * 65536);
        for (;;) {
            run_ r;
            MPI_Bcast(&r, (int)sizeof r, MPI_BYTE, 0, cm.comm);
            if (r.kind < 0) break;
            /* the broadcast inside do_run_ repeats the header: take it the same way rank 0 sends it */
            MPI_Bcast(docs, r.n_docs, MPI_INT, 0, cm.comm);
            MPI_Bcast(prompt, r.n_prompt, MPI_INT, 0, cm.comm);
            ifk_query_opts o = {.method = (ifk_method)r.method, .budget = r.budget, .reorder = r.reorder,
                                .score_lo = r.lo, .score_hi = r.hi, .steps = j.steps, .dev = x.dev};
            ifk_query_docs qd = {docs, r.n_docs};
            ifk_query_result res;
            if (ifk_query_run(x.m, st, &qd, prompt, r.n_prompt, &o, &tpm.tp, &res) != IFK_OK) ifk_comm_abort(&cm);
            ifk_query_result_free(&res);
        }
        free(docs), free(prompt);
        rc = 0;
        goto out;
    }

    /* ---- rank 0: plan, run, record ---- */
    mkdirs_(j.out);
    char path[2048];
    snprintf(path, sizeof path, "%s/fidelity.jsonl", j.out);
    if (n_items && !(ff = fopen(path, "w"))) { IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno)); ifk_comm_abort(&cm); }
    double t_start = ifk_now();
    long runs = 0;
    int docs[4096], prompt[4096];
    /* resolves an item's documents and prompt; fails the job on an unknown id */
    #define RUN(rr, res_)                                                                                   \
        do {                                                                                                \
            if (do_run_(&x, &(rr), docs, prompt, &(res_)) != IFK_OK) ifk_comm_abort(&cm);                   \
            runs++;                                                                                         \
            if (!quiet && runs % 25 == 0)                                                                   \
                fprintf(stderr, "eval: %ld runs, %.1f s\n", runs, ifk_now() - t_start);                     \
        } while (0)
    float **ref_logits = calloc((size_t)(n_items ? n_items : 1), sizeof(float *));
    for (int i = 0; i < n_items; i++) {
        ifk_qitem *it = &items[i];
        int nd = 0, P = 0, *ids = NULL;
        if (it->retrieve) {
            ifk_bm25 *ix;
            char ip[2048];
            snprintf(ip, sizeof ip, "%s/%s", j.store, IFK_INDEX);
            const char *hits[64];
            double sc[64];
            if (ifk_bm25_load(&ix, ip) != IFK_OK ||
                ifk_bm25_search(ix, it->prompt, strlen(it->prompt), it->retrieve < 64 ? it->retrieve : 64, hits, sc, &nd) != IFK_OK)
                ifk_comm_abort(&cm);
            for (int k = 0; k < nd; k++) docs[k] = ifk_manifest_find(man, hits[k]);
            ifk_bm25_free(&ix);
        } else {
            for (int k = 0; k < it->n_docs && k < 4096; k++) {
                docs[nd] = ifk_manifest_find(man, it->docs[k]);
                if (docs[nd] < 0) {
                    IFK_FAIL(IFK_ERR_ARG, "%s:%ld: document \"%s\" is not in the store %s", j.queries, it->line,
                             it->docs[k], j.store);
                    ifk_comm_abort(&cm);
                }
                nd++;
            }
        }
        if (ifk_tokenizer_encode(tok, it->prompt, strlen(it->prompt), 0, 0, &ids, &P) != IFK_OK || P < 1 || P > 4096) {
            IFK_FAIL(IFK_ERR_ARG, "%s:%ld: the prompt is empty or too long", j.queries, it->line);
            ifk_comm_abort(&cm);
        }
        memcpy(prompt, ids, sizeof(int) * (size_t)P);
        long T = 1;
        for (int k = 0; k < nd; k++) T += man->docs[docs[k]].n_tokens;
        if (T + P + j.steps > cfg->seq_len) {
            IFK_FAIL(IFK_ERR_ARG, "%s:%ld: context %ld + prompt %d + %d steps exceed the model's %d positions",
                     j.queries, it->line, T, P, j.steps, cfg->seq_len);
            ifk_comm_abort(&cm);
        }
        run_ r = {.kind = 0, .item = i, .method = IFK_METHOD_FULL, .lo = j.score_lo, .hi = j.score_hi, .n_docs = nd,
                  .n_prompt = P};
        ifk_query_result ref;
        RUN(r, ref);
        ref_logits[i] = malloc(sizeof(float) * V);
        memcpy(ref_logits[i], ref.first_logits, sizeof(float) * V);
        char *ref_text = ifk_detokenize(tok, prompt[P - 1], ref.answer, ref.n_answer, NULL);
        for (int mi = 0; mi < j.n_methods; mi++) {
            ifk_method meth;
            ifk_method_parse(j.methods[mi], &meth);
            int nb = meth == IFK_METHOD_FULL || meth == IFK_METHOD_NONE ? 1 : j.n_budgets;
            for (int b = 0; b < nb; b++)
                for (int ro = 0; ro < 2; ro++) {
                    if (ro && (meth != IFK_METHOD_INFOFLOW || j.reorder == 0)) continue;
                    if (!ro && meth == IFK_METHOD_INFOFLOW && j.reorder == 1) continue;
                    ifk_query_result res;
                    if (meth == IFK_METHOD_FULL) {
                        res = ref;
                    } else {
                        r.method = meth;
                        r.budget = meth == IFK_METHOD_NONE ? 0 : j.budgets[b];
                        r.reorder = ro;
                        RUN(r, res);
                    }
                    row_ row = {.budget = meth == IFK_METHOD_FULL ? 1.0 : r.budget, .reorder = ro, .layer = -1};
                    snprintf(row.method, sizeof row.method, "%s", j.methods[mi]);
                    row.kl = ifk_kl_logits(ref.first_logits, res.first_logits, V);
                    row.top1 = ifk_argmax(ref.first_logits, V) == ifk_argmax(res.first_logits, V);
                    int lead = 0;
                    while (lead < res.n_answer && lead < ref.n_answer && res.answer[lead] == ref.answer[lead]) lead++;
                    row.lead = lead;
                    row.ttft = meth == IFK_METHOD_FULL ? ref.ttft : res.ttft;
                    char *text = ifk_detokenize(tok, prompt[P - 1], res.answer, res.n_answer, NULL);
                    row.has_gold = it->n_answers > 0;
                    for (int a = 0; a < it->n_answers; a++) {
                        double f1 = ifk_f1(text ? text : "", it->answers[a]);
                        row.f1 = f1 > row.f1 ? f1 : row.f1;
                        row.em = row.em || ifk_exact_match(text ? text : "", it->answers[a]);
                    }
                    fprintf(ff, "{\"item\": ");
                    ifk_json_str(ff, it->id, strlen(it->id));
                    fprintf(ff, ", \"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"n_context_tokens\": %d, "
                                "\"n_selected\": %d, \"kl\": %.9g, \"top1_agree\": %s, \"leading_agree\": %d",
                            row.method, row.budget, ro ? "true" : "false", res.T, res.n_selected, row.kl,
                            row.top1 ? "true" : "false", lead);
                    if (row.has_gold) fprintf(ff, ", \"f1\": %.6g, \"em\": %d", row.f1, (int)row.em);
                    fprintf(ff, ", \"answer\": ");
                    ifk_json_str(ff, text ? text : "", strlen(text ? text : ""));
                    fprintf(ff, ", \"full_answer\": ");
                    ifk_json_str(ff, ref_text ? ref_text : "", strlen(ref_text ? ref_text : ""));
                    fprintf(ff, ", \"ttft_ms\": %.3f, \"load_ms\": %.3f, \"rotate_ms\": %.3f, \"score_ms\": %.3f, "
                                "\"recompute_ms\": %.3f, \"prompt_ms\": %.3f, \"first_token_ms\": %.3f}\n",
                            row.ttft, res.t_load, res.t_rotate, res.t_score, res.t_recompute, res.t_prompt, res.t_first);
                    free(text);
                    if (meth != IFK_METHOD_FULL) ifk_query_result_free(&res);
                }
        }
        free(ref_text);
        ifk_query_result_free(&ref);
        free(ids);
    }
    if (ff) fclose(ff), ff = NULL;

    /* ---- the scoring-layer ablation over the same items ---- */
    if (j.ablation && n_items) {
        snprintf(path, sizeof path, "%s/ablation.jsonl", j.out);
        fa = fopen(path, "w");
        int lo = j.ablation_lo, hi = j.ablation_hi;
        if (lo < 0) lo = 0, hi = cfg->n_layers - 1;
        if (hi >= cfg->n_layers) hi = cfg->n_layers - 1;
        for (int l = lo; l <= hi; l++)
            for (int i = 0; i < n_items; i++) {
                ifk_qitem *it = &items[i];
                int nd = 0, P = 0, *ids = NULL;
                for (int k = 0; k < it->n_docs; k++) docs[nd++] = ifk_manifest_find(man, it->docs[k]);
                if (it->retrieve || nd == 0) continue;
                ifk_tokenizer_encode(tok, it->prompt, strlen(it->prompt), 0, 0, &ids, &P);
                memcpy(prompt, ids, sizeof(int) * (size_t)P);
                free(ids);
                run_ r = {.kind = 2, .item = i, .method = IFK_METHOD_INFOFLOW, .lo = l, .hi = l, .n_docs = nd,
                          .n_prompt = P, .budget = j.ablation_budget};
                ifk_query_result res;
                RUN(r, res);
                row_ row = {.budget = r.budget, .layer = l};
                strcpy(row.method, "infoflow");
                row.kl = ifk_kl_logits(ref_logits[i], res.first_logits, V);
                row.top1 = ifk_argmax(ref_logits[i], V) == ifk_argmax(res.first_logits, V);
                row.ttft = res.ttft;
                row.lead = NAN; /* the ablation compares first-token distributions only */
                if (fa) {
                    fprintf(fa, "{\"item\": ");
                    ifk_json_str(fa, it->id, strlen(it->id));
                    fprintf(fa, ", \"score_layer\": %d, \"budget\": %g, \"kl\": %.9g, \"top1_agree\": %s}\n", l, r.budget,
                            row.kl, row.top1 ? "true" : "false");
                }
                ifk_query_result_free(&res);
            }
        if (fa) fclose(fa), fa = NULL;
    }

    /* ---- the needle grid ---- */
    double *needle_val = NULL; /* (methods, lengths, depths) p(name|method) / p(name|full) */
    int *needle_hit = NULL, *needle_full_hit = NULL;
    if (j.needle) {
        snprintf(path, sizeof path, "%s/needle.jsonl", j.out);
        fn = fopen(path, "w");
        const int NL = j.n_needle_lengths, ND = j.n_needle_depths, NM = j.n_methods;
        needle_val = calloc((size_t)NM * NL * ND, sizeof(double));
        needle_hit = calloc((size_t)NM * NL * ND, sizeof(int));
        needle_full_hit = calloc((size_t)NL * ND, sizeof(int));
        int hay[1024], nh = 0;
        for (int h = 0; h < n_hay && nh < 1024; h++) {
            char id[32];
            snprintf(id, sizeof id, "hay-%03d", h);
            int d = ifk_manifest_find(man, id);
            if (d >= 0) hay[nh++] = d;
        }
        for (int li = 0; li < NL; li++)
            for (int di = 0; di < ND; di++) {
                const int cell = li * ND + di, k = cell % 8;
                char nid[32], cue[128], full_s[160];
                snprintf(nid, sizeof nid, "needle-%d", k);
                snprintf(cue, sizeof cue, "The %s was named", animals_[k]);
                snprintf(full_s, sizeof full_s, "%s %s", cue, names_[k]);
                int needle = ifk_manifest_find(man, nid);
                int *ci, cn, *fi, fnn;
                ifk_tokenizer_encode(tok, cue, strlen(cue), 0, 0, &ci, &cn);
                ifk_tokenizer_encode(tok, full_s, strlen(full_s), 0, 0, &fi, &fnn);
                int name_tok = fnn > cn ? fi[cn] : fi[fnn - 1];
                memcpy(prompt, ci, sizeof(int) * (size_t)cn);
                free(ci), free(fi);
                /* haystack documents up to the length, the needle at the depth */
                const int target = j.needle_lengths[li], nlen = man->docs[needle].n_tokens;
                int hs[1024], nhs = 0, tot = 1 + nlen;
                for (int q = 0; q < nh && tot + man->docs[hay[(cell + q) % nh]].n_tokens <= target; q++)
                    hs[nhs++] = hay[(cell + q) % nh], tot += man->docs[hs[nhs - 1]].n_tokens;
                int at = (int)lround(j.needle_depths[di] / 100.0 * nhs), nd = 0;
                for (int q = 0; q <= nhs; q++) {
                    if (q == at) docs[nd++] = needle;
                    if (q < nhs) docs[nd++] = hs[q];
                }
                if (tot + cn + j.steps > cfg->seq_len) continue;
                run_ r = {.kind = 1, .method = IFK_METHOD_FULL, .lo = j.score_lo, .hi = j.score_hi, .n_docs = nd,
                          .n_prompt = cn, .cell_len = target, .cell_depth = j.needle_depths[di], .name_tok = name_tok};
                ifk_query_result ref;
                RUN(r, ref);
                const double pf = softmax_at_(ref.first_logits, V, name_tok);
                needle_full_hit[cell] = ifk_argmax(ref.first_logits, V) == name_tok;
                for (int mi = 0; mi < NM; mi++) {
                    ifk_method meth;
                    ifk_method_parse(j.methods[mi], &meth);
                    ifk_query_result res;
                    if (meth == IFK_METHOD_FULL) res = ref;
                    else {
                        r.method = meth;
                        r.budget = meth == IFK_METHOD_NONE ? 0 : j.needle_budget;
                        RUN(r, res);
                    }
                    const double pm = softmax_at_(res.first_logits, V, name_tok);
                    const int hit = ifk_argmax(res.first_logits, V) == name_tok;
                    needle_val[((size_t)mi * NL + li) * ND + di] = pf > 0 ? pm / pf : 0;
                    needle_hit[((size_t)mi * NL + li) * ND + di] = hit;
                    if (fn)
                        fprintf(fn, "{\"method\": \"%s\", \"budget\": %g, \"target_tokens\": %d, \"context_tokens\": %d, \"depth\": %d, \"needle\": "
                                    "\"%s named %s\", \"p_name\": %.6g, \"p_name_full\": %.6g, \"ratio\": %.6g, \"greedy_hit\": %s, "
                                    "\"full_hit\": %s, \"kl\": %.9g}\n",
                                j.methods[mi], meth == IFK_METHOD_FULL ? 1.0 : r.budget, target, res.T, j.needle_depths[di],
                                animals_[k], names_[k], pm, pf, pf > 0 ? pm / pf : 0, hit ? "true" : "false",
                                needle_full_hit[cell] ? "true" : "false", ifk_kl_logits(ref.first_logits, res.first_logits, V));
                    if (meth != IFK_METHOD_FULL) ifk_query_result_free(&res);
                }
                ifk_query_result_free(&ref);
            }
        if (fn) fclose(fn), fn = NULL;
    }
    run_ stop = {.kind = -1};
    if (cm.size > 1) MPI_Bcast(&stop, (int)sizeof stop, MPI_BYTE, 0, cm.comm);

    /* ---- summaries and plots, from the result files (the same path as --summarize) ---- */
    char title[4400];
    char devs[200];
    ifk_dev_opts_format(&x.dev, devs, sizeof devs);
    snprintf(title, sizeof title, "%s: model %s, store %s, %d ranks, %ld runs in %.1f s, infoflow-dev %s", j.path,
             full.source, j.store, cm.size, runs, ifk_now() - t_start, devs);
    if (summarize_dir_(j.out, title, quiet) != IFK_OK) ifk_comm_abort(&cm);
    for (int i = 0; i < n_items; i++) free(ref_logits[i]);
    free(ref_logits);
    free(needle_val), free(needle_hit), free(needle_full_hit);
    rc = 0;
out:
    if (ff) fclose(ff);
    for (int i = 0; i < n_tdocs; i++) free(tdocs[i].id), free(tdocs[i].text);
    free(tdocs);
    ifk_queryset_free(items, n_items);
    ifk_store_close(&st);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&local);
    ifk_model_free(&full);
    ifk_comm_finalize(&cm);
    return rc;
}
