/* cmd_eval.c — `infoflow eval --job FILE`: fidelity of every method against full prefill on a
 * query set, a needle-in-a-haystack grid, a scoring-layer ablation, summaries with 95% CIs and
 * gnuplot plots (docs/eval.md). Under mpirun the ranks form groups of --tp ranks (grid.h): each
 * group runs a query tensor-parallel, the groups share the runs. Rank 0 plans every run first (the
 * phases' loops with no output), hands the runs out, collects their results, then walks the same
 * loops again writing the result files from them: the files do not depend on the layout. */
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
#include "cache.h"
#include "chunk.h"
#include "cli.h"
#include "comm.h"
#include "store_index.h"
#include "drivers.h"
#include "engine.h"
#include "eval_cache.h"
#include "eval_docs.h"
#include "sys.h"
#include "decode.h"
#include "evalio.h"
#include "fault.h"
#include "metrics.h"
#include "query.h"
#include "report.h"
#include "store.h"
#include "store_maint.h"
#include "strmap.h"
#include "corpus.h"
#include "tp.h"
#include "grid.h"

/* ---- runs: one protocol for rank 0 and the workers ---------------------------------------------- */

#define MAX_IDS_ 65536 /* documents or prompt tokens of one run */

/* One query run as rank 0 plans it: kind 0 fidelity, 1 needle, 2 ablation. */
typedef struct {
    int32_t kind, item, method, reorder, lo, hi, n_docs, n_prompt;
    double budget;
} runspec_;

#define SPEC_INTS_ ((int)(sizeof(runspec_) / sizeof(int)))

typedef struct {
    const ifk_comm *cm;
    ifk_tp *tp;           /* the group's hooks, NULL at --tp 1 */
    const ifk_model *m;   /* this rank's model (a slice under tensor parallelism) */
    ifk_store *store;
    int steps;
    long seed;            /* [job] seed: --method random's */
    ifk_dev_opts dev;     /* infoflow-dev's variant ([job] dev) */
    int *docs, *prompt;   /* (MAX_IDS_) the current run's documents and prompt */
    /* rank 0 */
    const ifk_jobspec *j;
    const ifk_model *full;
    const ifk_tokenizer *tok;
    const ifk_manifest *man;
    int quiet;
    long runs;
    double t_start;
    int planning;         /* 1: the first walk, which only records runs (tasks) */
    int **tasks, *task_n, n_tasks, cap_tasks;
    ifk_query_result *results; /* (n_tasks) by task, filled by the farm */
    int next_result;      /* the second walk takes them in the same order */
} ctx_;

/* The first walk records r (with x->docs, x->prompt) as a task and gives a placeholder result of
 * zero logits; the second walk hands out the task's result in the same order. */
static void run_(ctx_ *x, runspec_ *r, ifk_query_result *res) {
    if (!x->planning) {
        if (x->next_result >= x->n_tasks) {
            IFK_FAIL(IFK_ERR_INTERNAL, "eval: the second walk asks for more runs than the first planned");
            ifk_comm_abort(x->cm);
        }
        *res = x->results[x->next_result];
        memset(&x->results[x->next_result++], 0, sizeof *res);
        return;
    }
    const int n = SPEC_INTS_ + r->n_docs + r->n_prompt;
    if (x->n_tasks == x->cap_tasks) {
        x->cap_tasks = x->cap_tasks ? 2 * x->cap_tasks : 256;
        x->tasks = realloc(x->tasks, sizeof *x->tasks * (size_t)x->cap_tasks);
        x->task_n = realloc(x->task_n, sizeof *x->task_n * (size_t)x->cap_tasks);
        IFK_ASSERT(x->tasks && x->task_n);
    }
    int *t = malloc(sizeof(int) * (size_t)n);
    IFK_ASSERT(t);
    memcpy(t, r, sizeof *r);
    memcpy(t + SPEC_INTS_, x->docs, sizeof(int) * (size_t)r->n_docs);
    memcpy(t + SPEC_INTS_ + r->n_docs, x->prompt, sizeof(int) * (size_t)r->n_prompt);
    x->tasks[x->n_tasks] = t;
    x->task_n[x->n_tasks++] = n;
    memset(res, 0, sizeof *res);
    res->vocab = x->full->cfg.vocab_size;
    res->first_logits = calloc((size_t)res->vocab, sizeof(float));
    IFK_ASSERT(res->first_logits);
}

/* ---- the runs as tasks of the grid ------------------------------------------------------------- */

static int task_get_(int i, int **ints, void *ctx) {
    ctx_ *x = ctx;
    *ints = x->tasks[i];
    x->tasks[i] = NULL; /* the farm frees it */
    return x->task_n[i];
}

static ifk_status task_run_(const int *t, int n, char **res, size_t *len, void *ctx) {
    ctx_ *x = ctx;
    runspec_ r;
    IFK_CHECK_ARG(n >= SPEC_INTS_, "eval: a run of %d ints is malformed", n);
    memcpy(&r, t, sizeof r);
    IFK_CHECK_ARG(n == SPEC_INTS_ + r.n_docs + r.n_prompt, "eval: a run of %d ints is malformed", n);
    ifk_query_opts o = {.method = (ifk_method)r.method, .budget = r.budget, .reorder = r.reorder, .score_lo = r.lo,
                        .score_hi = r.hi, .steps = x->steps, .seed = (uint64_t)x->seed, .dev = x->dev};
    ifk_query_docs qd = {t + SPEC_INTS_, r.n_docs};
    return ifk_grid_run_query(x->m, x->store, &qd, t + SPEC_INTS_ + r.n_docs, r.n_prompt, &o, x->tp, res, len);
}

static void task_done_(int i, const char *buf, size_t len, void *ctx) {
    ctx_ *x = ctx;
    if (ifk_query_result_unpack(buf, len, &x->results[i]) != IFK_OK) ifk_comm_abort(x->cm);
    x->runs++;
    if (!x->quiet && x->runs % 25 == 0) fprintf(stderr, "eval: %ld runs, %.1f s\n", x->runs, ifk_now() - x->t_start);
}

static double softmax_at_(const float *l, int V, int i) {
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < V; k++) mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < V; k++) z += exp(l[k] - mx);
    return exp(l[i] - mx) / z;
}

static FILE *open_out_(const ctx_ *x, const char *name) {
    if (x->planning) return NULL; /* the first walk writes nothing */
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", x->j->out, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        ifk_comm_abort(x->cm);
    }
    return f;
}

/* Closes a result file of open_out_: a write that failed (a full disk) ends the job. */
static void close_out_(const ctx_ *x, FILE *f, const char *name) {
    if (!f) return;
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        IFK_FAIL(IFK_ERR_IO, "%s/%s: write failed: %s", x->j->out, name, strerror(errno ? errno : EIO));
        ifk_comm_abort(x->cm);
    }
}

/* ---- the fidelity grid -------------------------------------------------------------------------- */

/* Tokens of document d of the store (O(log N) lookup, kept by the store); a damaged record ends
 * the job. */
static int doc_tokens_(ctx_ *x, int d) {
    const ifk_doc_rec *r = ifk_store_doc(x->store, d);
    if (!r) ifk_comm_abort(x->cm);
    return r->n_tokens;
}

/* Resolves an item's documents (listed, or BM25's top k) and prompt into x->docs, x->prompt;
 * fails the job on an unknown id or a context beyond the model. Returns the document count. */
static int item_(ctx_ *x, const ifk_qitem *it, int *P) {
    const ifk_jobspec *j = x->j;
    int nd = 0, *ids = NULL;
    if (it->retrieve) {
        ifk_bm25_disk *ix;
        const char *hits[64];
        double sc[64];
        if (ifk_store_index_open(j->store, &ix) != IFK_OK ||
            ifk_bm25_disk_search(ix, it->prompt, strlen(it->prompt), it->retrieve < 64 ? it->retrieve : 64, hits, sc,
                                 &nd) != IFK_OK)
            ifk_comm_abort(x->cm);
        for (int k = 0; k < nd; k++) {
            x->docs[k] = ifk_manifest_find(x->man, hits[k]);
            if (x->docs[k] < 0) {
                IFK_FAIL(IFK_ERR_FORMAT, "%s: the index lists \"%s\", which the catalog does not (`infoflow verify` "
                         "names the segment)", j->store, hits[k]);
                ifk_comm_abort(x->cm);
            }
        }
        ifk_bm25_disk_free(&ix);
        if (nd == 0) {
            IFK_FAIL(IFK_ERR_ARG, "%s:%ld: \"retrieve\": no document of the store shares a word with the prompt",
                     j->queries, it->line);
            ifk_comm_abort(x->cm);
        }
    } else {
        for (int k = 0; k < it->n_docs && k < MAX_IDS_; k++) {
            x->docs[nd] = ifk_manifest_find(x->man, it->docs[k]);
            if (x->docs[nd] < 0) {
                IFK_FAIL(IFK_ERR_ARG, "%s:%ld: document \"%s\" is not in the store %s", j->queries, it->line,
                         it->docs[k], j->store);
                ifk_comm_abort(x->cm);
            }
            nd++;
        }
    }
    if (ifk_tokenizer_encode(x->tok, it->prompt, strlen(it->prompt), 0, 0, &ids, P) != IFK_OK || *P < 1 ||
        *P > 4096) {
        IFK_FAIL(IFK_ERR_ARG, "%s:%ld: the prompt is empty or too long", j->queries, it->line);
        ifk_comm_abort(x->cm);
    }
    memcpy(x->prompt, ids, sizeof(int) * (size_t)*P);
    free(ids);
    long T = 1;
    for (int k = 0; k < nd; k++) T += doc_tokens_(x, x->docs[k]);
    if (T + *P + j->steps > x->full->cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "%s:%ld: context %ld + prompt %d + %d steps exceed the model's %d positions", j->queries,
                 it->line, T, *P, j->steps, x->full->cfg.seq_len);
        ifk_comm_abort(x->cm);
    }
    return nd;
}

/* One fidelity result line: the method's run against the full-prefill reference. */
static void fid_line_(FILE *f, const ctx_ *x, const ifk_qitem *it, const char *method, double budget, int reorder,
                      const ifk_query_result *res, const ifk_query_result *ref, const char *ref_text, int P) {
    if (!f) return;
    const int V = x->full->cfg.vocab_size;
    const double kl = ifk_kl_logits(ref->first_logits, res->first_logits, V);
    const int top1 = ifk_argmax(ref->first_logits, V) == ifk_argmax(res->first_logits, V);
    int lead = 0;
    while (lead < res->n_answer && lead < ref->n_answer && res->answer[lead] == ref->answer[lead]) lead++;
    char *text = ifk_detokenize(x->tok, x->prompt[P - 1], res->answer, res->n_answer, NULL);
    double f1 = 0;
    int em = 0;
    for (int a = 0; a < it->n_answers; a++) {
        double v = ifk_f1(text ? text : "", it->answers[a]);
        f1 = v > f1 ? v : f1;
        em = em || ifk_exact_match(text ? text : "", it->answers[a]);
    }
    fprintf(f, "{\"item\": ");
    ifk_json_str(f, it->id, strlen(it->id));
    fprintf(f, ", \"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"n_context_tokens\": %d, "
               "\"n_selected\": %d, \"kl\": %.9g, \"top1_agree\": %s, \"leading_agree\": %d",
            method, budget, reorder ? "true" : "false", res->T, res->n_selected, kl, top1 ? "true" : "false", lead);
    if (it->n_answers > 0) fprintf(f, ", \"f1\": %.6g, \"em\": %d", f1, em);
    fprintf(f, ", \"answer\": ");
    ifk_json_str(f, text ? text : "", strlen(text ? text : ""));
    fprintf(f, ", \"full_answer\": ");
    ifk_json_str(f, ref_text ? ref_text : "", strlen(ref_text ? ref_text : ""));
    fprintf(f, ", \"ttft_ms\": %.3f, \"load_ms\": %.3f, \"rotate_ms\": %.3f, \"score_ms\": %.3f, "
               "\"recompute_ms\": %.3f, \"prompt_ms\": %.3f, \"first_token_ms\": %.3f}\n",
            res->ttft, res->t_load, res->t_rotate, res->t_score, res->t_recompute, res->t_prompt, res->t_first);
    free(text);
}

/* Every item: the full-prefill reference, then every method × budget (× reorder) against it.
 * Keeps each item's reference logits for the ablation (ref_logits[i], V floats). */
static void fidelity_(ctx_ *x, const ifk_qitem *items, int n_items, float **ref_logits) {
    const ifk_jobspec *j = x->j;
    const int V = x->full->cfg.vocab_size;
    FILE *f = open_out_(x, "fidelity.jsonl");
    for (int i = 0; i < n_items; i++) {
        const ifk_qitem *it = &items[i];
        int P;
        const int nd = item_(x, it, &P);
        runspec_ r = {.kind = 0, .item = i, .method = IFK_METHOD_FULL, .lo = j->score_lo, .hi = j->score_hi,
                  .n_docs = nd, .n_prompt = P};
        ifk_query_result ref;
        run_(x, &r, &ref);
        free(ref_logits[i]);
        ref_logits[i] = malloc(sizeof(float) * V);
        IFK_ASSERT(ref_logits[i]);
        memcpy(ref_logits[i], ref.first_logits, sizeof(float) * V);
        char *ref_text = ifk_detokenize(x->tok, x->prompt[P - 1], ref.answer, ref.n_answer, NULL);
        for (int mi = 0; mi < j->n_methods; mi++) {
            ifk_method meth;
            ifk_method_parse(j->methods[mi], &meth);
            const int nb = meth == IFK_METHOD_FULL || meth == IFK_METHOD_NONE ? 1 : j->n_budgets;
            for (int b = 0; b < nb; b++)
                for (int ro = 0; ro < 2; ro++) {
                    if (ro && (meth != IFK_METHOD_INFOFLOW || j->reorder == 0)) continue;
                    if (!ro && meth == IFK_METHOD_INFOFLOW && j->reorder == 1) continue;
                    if (meth == IFK_METHOD_FULL) {
                        fid_line_(f, x, it, j->methods[mi], 1.0, ro, &ref, &ref, ref_text, P);
                        continue;
                    }
                    r.method = meth;
                    r.budget = meth == IFK_METHOD_NONE ? 0 : j->budgets[b];
                    r.reorder = ro;
                    ifk_query_result res;
                    run_(x, &r, &res);
                    fid_line_(f, x, it, j->methods[mi], r.budget, ro, &res, &ref, ref_text, P);
                    ifk_query_result_free(&res);
                }
        }
        free(ref_text);
        ifk_query_result_free(&ref);
    }
    close_out_(x, f, "fidelity.jsonl");
}

/* ---- the scoring-layer ablation: InfoFlow with one scoring layer at a time ------------------------ */

static void ablation_(ctx_ *x, const ifk_qitem *items, int n_items, float *const *ref_logits) {
    const ifk_jobspec *j = x->j;
    const int V = x->full->cfg.vocab_size, L = x->full->cfg.n_layers;
    FILE *f = open_out_(x, "ablation.jsonl");
    int lo = j->ablation_lo, hi = j->ablation_hi;
    if (lo < 0) lo = 0, hi = L - 1; /* a range beyond the model was refused (ifk_jobspec_check_model) */
    for (int l = lo; l <= hi; l++)
        for (int i = 0; i < n_items; i++) {
            const ifk_qitem *it = &items[i];
            int nd = 0, P = 0, *ids = NULL;
            for (int k = 0; k < it->n_docs && k < MAX_IDS_; k++) x->docs[nd++] = ifk_manifest_find(x->man, it->docs[k]);
            if (it->retrieve || nd == 0) continue;
            if (ifk_tokenizer_encode(x->tok, it->prompt, strlen(it->prompt), 0, 0, &ids, &P) != IFK_OK)
                ifk_comm_abort(x->cm);
            memcpy(x->prompt, ids, sizeof(int) * (size_t)P);
            free(ids);
            runspec_ r = {.kind = 2, .item = i, .method = IFK_METHOD_INFOFLOW, .lo = l, .hi = l, .n_docs = nd,
                      .n_prompt = P, .budget = j->ablation_budget};
            ifk_query_result res;
            run_(x, &r, &res);
            const double kl = ifk_kl_logits(ref_logits[i], res.first_logits, V);
            const int top1 = ifk_argmax(ref_logits[i], V) == ifk_argmax(res.first_logits, V);
            if (f) {
                fprintf(f, "{\"item\": ");
                ifk_json_str(f, it->id, strlen(it->id));
                fprintf(f, ", \"score_layer\": %d, \"budget\": %g, \"kl\": %.9g, \"top1_agree\": %s}\n", l, r.budget,
                        kl, top1 ? "true" : "false");
            }
            ifk_query_result_free(&res);
        }
    close_out_(x, f, "ablation.jsonl");
}

/* ---- the needle grid ------------------------------------------------------------------------------ */

/* One cell: the needle at depth % of haystack documents filling up to target tokens. */
static void needle_cell_(ctx_ *x, FILE *f, const int *hay, int nh, int li, int di) {
    const ifk_jobspec *j = x->j;
    const ifk_manifest *man = x->man;
    const int V = x->full->cfg.vocab_size, cell = li * j->n_needle_depths + di, k = cell % 8;
    char nid[32], cue[128], full_s[160];
    snprintf(nid, sizeof nid, "needle-%d", k);
    snprintf(cue, sizeof cue, "The %s was named", ifk_needle_animal[k]);
    snprintf(full_s, sizeof full_s, "%s %s", cue, ifk_needle_name[k]);
    const int needle = ifk_manifest_find(man, nid);
    int *ci, cn, *fi, fnn;
    if (needle < 0) {
        IFK_FAIL(IFK_ERR_FORMAT, "%s: the store lacks the needle document %s", j->store, nid);
        ifk_comm_abort(x->cm);
    }
    if (ifk_tokenizer_encode(x->tok, cue, strlen(cue), 0, 0, &ci, &cn) != IFK_OK) ifk_comm_abort(x->cm);
    if (ifk_tokenizer_encode(x->tok, full_s, strlen(full_s), 0, 0, &fi, &fnn) != IFK_OK) ifk_comm_abort(x->cm);
    const int name_tok = fnn > cn ? fi[cn] : fi[fnn - 1];
    memcpy(x->prompt, ci, sizeof(int) * (size_t)cn);
    free(ci), free(fi);
    /* haystack documents up to the length, the needle at the depth */
    const int target = j->needle_lengths[li], nlen = doc_tokens_(x, needle);
    int hs[1024], nhs = 0, tot = 1 + nlen, nd = 0;
    for (int q = 0; q < nh && tot + doc_tokens_(x, hay[(cell + q) % nh]) <= target; q++)
        hs[nhs++] = hay[(cell + q) % nh], tot += doc_tokens_(x, hs[nhs - 1]);
    const int at = (int)lround(j->needle_depths[di] / 100.0 * nhs);
    for (int q = 0; q <= nhs; q++) {
        if (q == at) x->docs[nd++] = needle;
        if (q < nhs) x->docs[nd++] = hs[q];
    }
    long cap = 1 + nlen; /* every haystack document and the needle */
    for (int q = 0; q < nh; q++) cap += doc_tokens_(x, hay[q]);
    if (target > cap || tot + cn + j->steps > x->full->cfg.seq_len) { /* refused, never run at another length */
        const long ln = ifk_jobspec_line(j, "needle", "lengths");
        char w[1100];
        snprintf(w, sizeof w, ln > 0 ? "%s:%ld" : "%s", j->path, ln);
        if (target > cap)
            IFK_FAIL(IFK_ERR_ARG, "%s: [needle] lengths: %d exceeds the haystack's capacity of %ld tokens (%d stories; "
                     "raise haystack_docs or haystack_tokens)", w, target, cap, nh);
        else
            IFK_FAIL(IFK_ERR_ARG, "%s: [needle] lengths: %d context + %d cue tokens + %d steps exceed the model's %d "
                     "positions", w, tot, cn, j->steps, x->full->cfg.seq_len);
        ifk_comm_abort(x->cm);
    }
    runspec_ r = {.kind = 1, .method = IFK_METHOD_FULL, .lo = j->score_lo, .hi = j->score_hi, .n_docs = nd,
              .n_prompt = cn};
    ifk_query_result ref;
    run_(x, &r, &ref);
    const double pf = softmax_at_(ref.first_logits, V, name_tok);
    const int full_hit = ifk_argmax(ref.first_logits, V) == name_tok;
    for (int mi = 0; mi < j->n_methods; mi++) {
        ifk_method meth;
        ifk_method_parse(j->methods[mi], &meth);
        ifk_query_result res;
        if (meth == IFK_METHOD_FULL) {
            res = ref;
        } else {
            r.method = meth;
            r.budget = meth == IFK_METHOD_NONE ? 0 : j->needle_budget;
            run_(x, &r, &res);
        }
        const double pm = softmax_at_(res.first_logits, V, name_tok);
        const int hit = ifk_argmax(res.first_logits, V) == name_tok;
        if (f)
            fprintf(f, "{\"method\": \"%s\", \"budget\": %g, \"target_tokens\": %d, \"context_tokens\": %d, "
                       "\"depth\": %d, \"needle\": \"%s named %s\", \"p_name\": %.6g, \"p_name_full\": %.6g, "
                       "\"ratio\": %.6g, \"greedy_hit\": %s, \"full_hit\": %s, \"kl\": %.9g}\n",
                    j->methods[mi], meth == IFK_METHOD_FULL ? 1.0 : r.budget, target, res.T, j->needle_depths[di],
                    ifk_needle_animal[k], ifk_needle_name[k], pm, pf, pf > 0 ? pm / pf : 0, hit ? "true" : "false",
                    full_hit ? "true" : "false", ifk_kl_logits(ref.first_logits, res.first_logits, V));
        if (meth != IFK_METHOD_FULL) ifk_query_result_free(&res);
    }
    ifk_query_result_free(&ref);
}

static void needle_(ctx_ *x, int n_hay) {
    const ifk_jobspec *j = x->j;
    FILE *f = open_out_(x, "needle.jsonl");
    int hay[1024], nh = 0;
    for (int h = 0; h < n_hay && nh < 1024; h++) {
        char id[32];
        snprintf(id, sizeof id, "hay-%03d", h);
        int d = ifk_manifest_find(x->man, id);
        if (d >= 0) hay[nh++] = d;
    }
    for (int li = 0; li < j->n_needle_lengths; li++)
        for (int di = 0; di < j->n_needle_depths; di++) needle_cell_(x, f, hay, nh, li, di);
    close_out_(x, f, "needle.jsonl");
}

/* ---- the driver -------------------------------------------------------------------------------- */

static void mkdirs_(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') *s = '\0', mkdir(p, 0755), *s = '/';
    mkdir(p, 0755);
}

/* The job spec with the command line's overrides; every rank parses the same argv. */
static ifk_status parse_(int argc, char **argv, ifk_jobspec *j, const char **summ, long *threads, const char **tp_s,
                         int *quiet, int *help) {
    const char *job_s = NULL, *out_s = NULL, *store_s = NULL, *queries_s = NULL, *methods_s = NULL, *budgets_s = NULL,
               *steps_s = NULL, *threads_s = NULL;
    const ifk_opt opts[] = {{"job", "FILE", "job spec (INI; see docs/eval.md) (required)", &job_s, NULL},
                            {"out", "DIR", "override [job] out", &out_s, NULL},
                            {"store", "DIR", "override [job] store", &store_s, NULL},
                            {"queries", "FILE", "override [job] queries", &queries_s, NULL},
                            {"methods", "LIST", "override [job] methods", &methods_s, NULL},
                            {"budgets", "LIST", "override [job] budgets", &budgets_s, NULL},
                            {"steps", "N", "override [job] steps", &steps_s, NULL},
                            {"threads", "N", "BLAS threads per rank", &threads_s, NULL},
                            {"tp", "N", "ranks per tensor-parallel group (default 1); the groups share the runs",
                             tp_s, NULL},
                            {"summarize", "DIR", "only summarise and plot the result files in DIR (merged array "
                                                  "tasks, see slurm/collect.sh)", summ, NULL},
                            {"quiet", NULL, "no progress lines", NULL, quiet},
                            {NULL, NULL, NULL, NULL, NULL}};
    IFK_CHECK(ifk_cli_parse(argc, argv, opts,
                            "usage: [mpirun -n P] infoflow eval --job FILE [overrides]\n"
                            "Runs a job spec's fidelity grid, needle grid and ablation; writes results, a summary "
                            "and plots.", help));
    if (*help || *summ) return IFK_OK;
    IFK_CHECK_ARG(job_s, "eval: --job FILE (or --summarize DIR) is required");
    IFK_CHECK(ifk_jobspec_load(j, job_s));
    const char *ov[][2] = {{"out", out_s}, {"store", store_s}, {"queries", queries_s}, {"methods", methods_s},
                           {"budgets", budgets_s}, {"steps", steps_s}};
    for (int i = 0; i < 6; i++)
        if (ov[i][1] && ifk_jobspec_set(j, "job", ov[i][0], ov[i][1]) != IFK_OK) {
            char m[512];
            snprintf(m, sizeof m, "%s", ifk_errmsg());
            return IFK_FAIL(IFK_ERR_ARG, "--%s: %s", ov[i][0], m);
        }
    return ifk_cli_int("threads", threads_s, 1, 1024, threads);
}

int ifk_cmd_eval(int argc, char **argv) {
    ifk_comm cm;
    if (ifk_comm_start(&cm, &argc, &argv) != IFK_OK) return 1;
    const char *summ = NULL, *tp_s = NULL;
    int quiet = 0, help = 0, rc = 1, n_items = 0, n_hay = 0, tp = 1;
    long threads = 0;
    ifk_jobspec j;
    ifk_model full = {0}, local = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *store = NULL;
    ifk_qitem *items = NULL;
    ifk_tp_mpi tpm;
    ifk_grid grid = {0};
    grid.group.comm = MPI_COMM_NULL;
    ctx_ x = {.cm = &cm, .j = &j, .quiet = quiet};
    ifk_status s_ = parse_(argc, argv, &j, &summ, &threads, &tp_s, &quiet, &help);
    if (s_ == IFK_OK && help) {
        rc = 0;
        goto out;
    }
    if (s_ == IFK_OK && summ) {
        if (cm.rank == 0) s_ = ifk_report_summarize(summ, summ, quiet);
        if (ifk_comm_agree(&cm, s_) == IFK_OK) rc = 0;
        goto out;
    }
    if (s_ == IFK_OK) s_ = ifk_grid_parse_tp(tp_s, 1, cm.size, &tp);
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    ifk_blas_set_threads(threads ? (int)threads : ifk_comm_blas_threads(&cm, 0));
    /* every rank loads its model: at --tp > 1 its slice, the rest of the whole model's pages handed
     * back (an HF folder: only the slice is read); a group's rank 0 has the tokenizer */
    const int r = cm.rank % tp;
    s_ = ifk_grid_load_model(j.model[0] ? j.model : NULL, j.tokenizer[0] ? j.tokenizer : NULL, j.random_model, r, tp,
                             r == 0, ifk_grid_check_cfg, (int[2]){cm.size, tp}, &full, &local, &tok);
    if (s_ == IFK_OK && cm.rank == 0 && !tok && (j.needle || j.queries[0])) {
        char who[4200];
        s_ = IFK_FAIL(IFK_ERR_ARG, "%s: %s for the job's text prompts%s", j.path,
                      ifk_engine_no_tokenizer(j.model[0] ? j.model : NULL, who, sizeof who),
                      j.model[0] ? ": give tokenizer = FILE" : "");
    }
    if (s_ == IFK_OK && tp > 1) ifk_model_release_unsliced(&full, &local, r, tp); /* no-op for an HF slice */
    if (s_ == IFK_OK) s_ = ifk_jobspec_check_model(&j, full.cfg.n_layers, full.cfg.seq_len);
    ifk_dev_opts_default(&x.dev);
    if (s_ == IFK_OK && j.dev[0] && ifk_dev_opts_parse(j.dev, full.cfg.n_layers, &x.dev) != IFK_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ifk_errmsg());
        s_ = IFK_FAIL(IFK_ERR_ARG, "%s: [job] dev: %s", j.path, msg);
    }
    /* rank 0: the query set; the output folder (eval_docs_'s corpus goes there) */
    if (s_ == IFK_OK && cm.rank == 0 && j.queries[0]) s_ = ifk_queryset_read(j.queries, &items, &n_items);
    if (s_ == IFK_OK && cm.rank == 0) mkdirs_(j.out);
    x.docs = malloc(sizeof(int) * MAX_IDS_), x.prompt = malloc(sizeof(int) * MAX_IDS_);
    if (s_ == IFK_OK && (!x.docs || !x.prompt)) s_ = IFK_FAIL(IFK_ERR_OOM, "out of memory");
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    ifk_grid_init(&grid, &cm, tp);
    if (tp > 1) ifk_tp_mpi_init(&tpm, &grid.group, full.cfg.n_heads);
    x.tp = tp > 1 ? &tpm.tp : NULL;
    x.m = tp > 1 ? &local : &full;
    x.steps = j.steps;
    x.seed = j.seed;
    x.full = &full;
    x.tok = tok;
    x.quiet = quiet;

    /* what the store lacks: sampled and cached by the groups */
    const ifk_eval_env env = {.cm = &cm, .tp = x.tp, .m = x.m, .full = &full, .j = &j, .tok = tok, .quiet = quiet};
    if (ifk_eval_cache_docs(&env, &grid, items, n_items) != IFK_OK) goto out;
    n_hay = j.needle ? j.haystack_docs : 0;
    s_ = ifk_store_open(&store, j.store);
    if (s_ == IFK_OK && cm.rank == 0) { /* as query: rank 0 holds the whole fingerprint (the tokenizer's part) */
        char fp[17];
        ifk_store_params want;
        ifk_model_fingerprint(&full, fp);
        ifk_store_params_from_model(&want, &full, fp);
        s_ = ifk_store_params_check(&ifk_store_manifest(store)->p, &want, j.store, 0);
    }
    if (ifk_comm_agree(&cm, s_) != IFK_OK) goto out;
    x.store = store;
    x.man = ifk_store_manifest(store);
    const ifk_farm farm = {task_get_, task_run_, task_done_, &x};
    if (cm.rank != 0) {
        ifk_grid_farm(&grid, 0, &farm);
        ifk_grid_report_memory(&cm, "eval");
        rc = 0;
        goto out;
    }

    /* ---- rank 0: plan every run, have the groups run them, write the results in plan order; then
     * summaries and plots from the result files ---- */
    x.t_start = ifk_now();
    float **ref_logits = calloc((size_t)(n_items ? n_items : 1), sizeof(float *));
    IFK_ASSERT(ref_logits);
    for (x.planning = 1;; x.planning = 0) {
        if (n_items) fidelity_(&x, items, n_items, ref_logits);
        if (j.ablation && n_items) ablation_(&x, items, n_items, ref_logits);
        if (j.needle) needle_(&x, n_hay);
        if (!x.planning) break;
        if (ifk_report_clear(j.out) != IFK_OK) ifk_comm_abort(&cm); /* planned: only this job's results */
        x.results = calloc((size_t)x.n_tasks + 1, sizeof *x.results);
        IFK_ASSERT(x.results);
        if (!quiet)
            fprintf(stderr, "eval: %d runs on %d group%s of %d rank%s\n", x.n_tasks, grid.n_groups,
                    grid.n_groups > 1 ? "s" : "", tp, tp > 1 ? "s" : "");
        ifk_grid_farm(&grid, x.n_tasks, &farm);
        ifk_grid_report_memory(&cm, "eval"); /* docs/benchmarks.md: memory per rank at --tp 1 and 2 */
    }
    char title[4400];
    snprintf(title, sizeof title, "%s: model %s, store %s, %d ranks (%d group%s of %d), %ld runs in %.1f s", j.path,
             full.source, j.store, cm.size, grid.n_groups, grid.n_groups > 1 ? "s" : "", tp, x.runs, ifk_now() - x.t_start);
    if (ifk_report_summarize(j.out, title, quiet) != IFK_OK) ifk_comm_abort(&cm);
    for (int i = 0; i < n_items; i++) free(ref_logits[i]);
    free(ref_logits);
    rc = 0;
out:
    free(x.docs), free(x.prompt);
    for (int i = 0; i < x.n_tasks; i++) {
        if (x.tasks) free(x.tasks[i]);
        if (x.results) ifk_query_result_free(&x.results[i]);
    }
    free(x.tasks), free(x.task_n), free(x.results);
    ifk_grid_free(&grid);
    ifk_queryset_free(items, n_items);
    ifk_store_close(&store);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&local);
    ifk_model_free(&full);
    ifk_comm_finalize(&cm);
    return rc;
}
