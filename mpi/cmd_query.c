/* cmd_query.c — `infoflow query`: one question over cached documents, by any method, on all ranks
 * (tensor-parallel); or many (--queries FILE --out FILE), shared by groups of --tp ranks through
 * the grid's farm (grid.h), the answers written by rank 0 in input order. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bm25.h"
#include "corpus.h"
#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "json.h"
#include "sys.h"
#include "sampler.h"
#include "query.h"
#include "comm.h"
#include "store_index.h"
#include "fault.h"
#include "tp.h"
#include "hf.h"
#include "grid.h"

/* Resolves --docs ID,ID,... (in that order) or --retrieve K (BM25 order) into manifest indices. */
static ifk_status resolve_docs_(const char *dir, const ifk_manifest *man, const char *ids, long k, const char *prompt,
                                int **docs, int *n) {
    *docs = NULL;
    *n = 0;
    if (ids) {
        char *buf = strdup(ids);
        int cap = 1;
        for (const char *c = ids; *c; c++) cap += *c == ',';
        *docs = malloc(sizeof(int) * (size_t)cap);
        if (!buf || !*docs) {
            free(buf);
            return IFK_FAIL(IFK_ERR_OOM, "out of memory");
        }
        char *rest = buf;
        for (char *t; (t = strsep(&rest, ",")) != NULL;) {
            char why[256], q[96];
            /* the rule for ids of the corpus (corpus.h): an empty element ("a,,b") is an error */
            if (!ifk_id_check(t, why, sizeof why)) {
                ifk_quote(q, sizeof q, ids);
                ifk_status st = IFK_FAIL(IFK_ERR_ARG, "--docs %s: element %d: %s", q, *n + 1, why);
                free(buf);
                return st;
            }
            int d = ifk_manifest_find(man, t);
            if (d < 0) {
                ifk_quote(q, sizeof q, t);
                ifk_status st = IFK_FAIL(IFK_ERR_ARG, "%s: no document %s in the store (infoflow inspect --store %s "
                                         "--docs lists them)", dir, q, dir);
                free(buf);
                return st;
            }
            (*docs)[(*n)++] = d;
        }
        free(buf);
        IFK_CHECK_ARG(*n > 0, "--docs lists no document");
        return IFK_OK;
    }
    ifk_bm25_disk *ix;
    IFK_CHECK(ifk_store_index_open(dir, &ix));
    const char **hits = malloc(sizeof(char *) * (size_t)k);
    double *sc = malloc(sizeof(double) * (size_t)k);
    *docs = malloc(sizeof(int) * (size_t)k);
    ifk_status st = IFK_OK;
    if (!hits || !sc || !*docs) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int nh = 0;
    if (st == IFK_OK) st = ifk_bm25_disk_search(ix, prompt, strlen(prompt), (int)k, hits, sc, &nh);
    for (int i = 0; st == IFK_OK && i < nh; i++) {
        int d = ifk_manifest_find(man, hits[i]);
        if (d < 0)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: the index lists \"%s\", which the catalog does not (`infoflow verify` "
                          "names the segment and the repair)", dir, hits[i]);
        else (*docs)[(*n)++] = d;
    }
    if (st == IFK_OK && nh == 0) st = IFK_FAIL(IFK_ERR_ARG, "--retrieve: no document shares a word with the prompt");
    free(hits), free(sc);
    ifk_bm25_disk_free(&ix);
    return st;
}

/* Parses "ID,ID,..." into token ids below vocab. */
static ifk_status parse_ids_(const char *s, int vocab, int **ids, int *n) {
    int cap = 1;
    for (const char *c = s; *c; c++) cap += *c == ',';
    *ids = malloc(sizeof(int) * (size_t)cap);
    *n = 0;
    if (!*ids) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (const char *c = s; *c;) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < 0 || v >= vocab || (*end && *end != ','))
            return IFK_FAIL(IFK_ERR_ARG, "--prompt-ids: '%s' is not a list of token ids below %d", s, vocab);
        (*ids)[(*n)++] = (int)v;
        c = *end ? end + 1 : end;
    }
    IFK_CHECK_ARG(*n > 0, "--prompt-ids is empty");
    return IFK_OK;
}

/* Every failure before the query's collectives is one all ranks see alike or can agree on: the
 * lowest failing rank prints, all exit 1. */
#define AGREE_OR_OUT(st)                                                   \
    do {                                                                   \
        if (ifk_comm_agree(&cm, (st)) != IFK_OK) goto out;                 \
    } while (0)

/* The job's communicator, for failures inside the farm's callbacks. */
static const ifk_comm *cm_current_;
static void abort_current_(void) { ifk_comm_abort(cm_current_); }

/* One question: its context (manifest indices) and prompt tokens; id names it in --out. */
typedef struct {
    char *id;
    long line; /* in --queries, 0 for the command line's */
    int *docs, nd, *ids, P;
} question_;

static void question_free_(question_ *q) {
    free(q->id), free(q->docs), free(q->ids);
    memset(q, 0, sizeof *q);
}

/* Writes one result: the answer text (and the comparison on stderr), or one JSON line (id first
 * when given). */
static void print_result_(FILE *f, const ifk_tokenizer *tok, ifk_store *store, const question_ *q,
                          const ifk_query_opts *o, const ifk_query_result *r, int json, int ranks, const char *settings,
                          int cold) {
    size_t alen;
    const int P = q->P, *ids = q->ids;
    char *answer = ifk_detokenize(tok, ids[P - 1], r->answer, r->n_answer, &alen);
    /* the budget a method ran at: full recomputes every token, none none (as eval records them) */
    const double budget = o->method == IFK_METHOD_FULL ? 1.0 : o->method == IFK_METHOD_NONE ? 0.0 : o->budget;
    char at[32] = "";
    if (o->method != IFK_METHOD_FULL && o->method != IFK_METHOD_NONE) snprintf(at, sizeof at, " at R=%.2f", budget);
    if (!json) {
        if (tok) fwrite(answer ? answer : "", 1, alen, f);
        else /* no tokenizer to decode with (an HF folder without one, a random model): the ids */
            for (int i = 0; i < r->n_answer; i++) fprintf(f, "%s%d", i ? "," : "", r->answer[i]);
        fprintf(f, "\n");
        fflush(f);
        if (r->compared)
            fprintf(stderr, "%s%s: KL(full||%s) %.5f, top-1 %s, %d leading tokens as full; ttft %.1f ms "
                    "(full %.1f ms), %s\n", ifk_method_name(o->method), at, ifk_method_name(o->method), r->kl,
                    r->top1_agree ? "agrees" : "differs", r->leading_agree, r->ttft, r->full_ttft,
                    cold ? "cold: this process's first run, with its one-time GEMM set-up" : "after a warm-up run");
        free(answer);
        return;
    }
    fprintf(f, "{");
    if (q->id) {
        fprintf(f, "\"id\": ");
        ifk_json_str(f, q->id, strlen(q->id));
        fprintf(f, ", ");
    }
    fprintf(f, "\"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"ranks\": %d, ",
            ifk_method_name(o->method), budget, o->reorder ? "true" : "false", ranks);
    if (settings) fprintf(f, "\"settings\": %s, ", settings);
    if (o->method == IFK_METHOD_INFOFLOW_DEV) {
        ifk_dev_opts dv = o->dev;
        char spec[160];
        if (dv.layer == 0) ifk_dev_opts_default(&dv);
        ifk_dev_opts_format(&dv, spec, sizeof spec);
        fprintf(f, "\"dev\": \"%s\", ", spec);
    }
    fprintf(f, "\"documents\": [");
    for (int i = 0; i < q->nd; i++) {
        if (i) fprintf(f, ", ");
        const ifk_doc_rec *rec = ifk_store_doc(store, q->docs[i]); /* read by the query already */
        ifk_json_str(f, rec ? rec->id : "", rec ? strlen(rec->id) : 0);
    }
    fprintf(f, "], \"chunk_order\": [");
    for (int i = 0; i < r->n_chunks; i++) fprintf(f, "%s%d", i ? ", " : "", r->order[i]);
    fprintf(f, "], \"n_context_tokens\": %d, \"n_prompt_tokens\": %d, \"n_selected\": %d, \"selected\": [", r->T,
            r->n_prompt, r->n_selected);
    for (int i = 0; i < r->n_selected; i++) fprintf(f, "%s%d", i ? ", " : "", r->selected[i]);
    fprintf(f, "], \"answer_ids\": [");
    for (int i = 0; i < r->n_answer; i++) fprintf(f, "%s%d", i ? ", " : "", r->answer[i]);
    fprintf(f, "], \"answer\": ");
    ifk_json_str(f, answer ? answer : "", alen);
    fprintf(f, ", \"first_logits_top\": [");
    {   /* the five largest next-token logits, for cross-rank comparisons */
        int best[5] = {-1, -1, -1, -1, -1};
        const int V = r->vocab;
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < V; i++) {
                int used = 0;
                for (int j = 0; j < k; j++) used |= best[j] == i;
                if (!used && (best[k] < 0 || r->first_logits[i] > r->first_logits[best[k]])) best[k] = i;
            }
            fprintf(f, "%s[%d, %.6f]", k ? ", " : "", best[k], r->first_logits[best[k]]);
        }
    }
    fprintf(f, "]");
    if (cold >= 0) fprintf(f, ", \"timings_cold\": %s", cold ? "true" : "false"); /* a single question's */
    fprintf(f, ", \"timings_ms\": {\"load\": %.3f, \"rotate\": %.3f, \"score\": %.3f, \"recompute\": %.3f, "
            "\"prompt_prefill\": %.3f, \"first_token\": %.3f, \"ttft\": %.3f}",
            r->t_load, r->t_rotate, r->t_score, r->t_recompute, r->t_prompt, r->t_first, r->ttft);
    /* the load apart (query.h): on the critical path (locate, bos, wait: within load) and on the
     * loader's thread (fill, rerotate: overlapped) */
    fprintf(f, ", \"load_detail_ms\": {\"locate\": %.3f, \"bos\": %.3f, \"wait\": %.3f, \"fill\": %.3f, "
            "\"rerotate\": %.3f}", r->t_locate, r->t_bos, r->t_wait, r->t_fill, r->t_rerotate);
    if (ranks > 1) {
        static const char *ph[5] = {"load", "score", "recompute", "prompt_prefill", "decode"};
        fprintf(f, ", \"comm\": {");
        for (int i = 0; i < 5; i++)
            fprintf(f, "%s\"%s\": {\"ms\": %.3f, \"bytes\": %.0f}", i ? ", " : "", ph[i], r->comm_ms[i], r->comm_bytes[i]);
        fprintf(f, "}");
    }
    if (r->compared) {
        size_t fl;
        char *fa = ifk_detokenize(tok, ids[P - 1], r->full_answer, r->n_full_answer, &fl);
        fprintf(f, ", \"compare_full\": {\"kl\": %.9g, \"top1_agree\": %s, \"leading_agree\": %d, \"full_ttft_ms\": %.3f, "
                "\"full_answer\": ", r->kl, r->top1_agree ? "true" : "false", r->leading_agree, r->full_ttft);
        ifk_json_str(f, fa ? fa : "", fl);
        fprintf(f, "}");
        free(fa);
    }
    fprintf(f, "}\n");
    free(answer);
}

/* ---- --queries FILE: the questions, and what --out already holds --------------------------------- */

/* The context's length against the model's positions. */
static ifk_status check_fits_(ifk_store *store, const question_ *q, const ifk_query_opts *o, int seq_len,
                              const char *where) {
    long T = 1;
    for (int i = 0; i < q->nd; i++) {
        const ifk_doc_rec *rec = ifk_store_doc(store, q->docs[i]);
        if (!rec) return IFK_ERR_FORMAT; /* the catalog's message is set */
        T += rec->n_tokens;
    }
    if (T + q->P + o->steps > seq_len)
        return IFK_FAIL(IFK_ERR_ARG, "%scontext of %ld tokens + prompt of %d + %d answer tokens exceed the model's "
                        "%d positions", where, T, q->P, o->steps, seq_len);
    return IFK_OK;
}

/* One line of --queries: {"id": ..., "prompt": TEXT | "prompt_ids": [...], "docs": [ID, ...] |
 * "retrieve": K}; id defaults to the line number. */
static ifk_status parse_question_(const char *path, long line, const char *text, size_t len, const char *dir,
                                  const ifk_manifest *man, const ifk_tokenizer *tok, const char *model, int vocab,
                                  question_ *q) {
    memset(q, 0, sizeof *q);
    q->line = line;
    char why[256];
    cJSON *js = ifk_json_record(text, len, why, sizeof why); /* the corpus's rule for a line (json.h) */
    if (!js) return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s", path, line, why);
    ifk_status st = IFK_OK;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(js, "id"), *pr = cJSON_GetObjectItemCaseSensitive(js, "prompt"),
                *pi = cJSON_GetObjectItemCaseSensitive(js, "prompt_ids"),
                *dc = cJSON_GetObjectItemCaseSensitive(js, "docs"), *rt = cJSON_GetObjectItemCaseSensitive(js, "retrieve");
    /* the keys of a question; settings (method, budget, steps, ...) come from the command line for
     * every line alike, so a line carrying one is refused rather than silently answered otherwise */
    static const char *keys[] = {"id", "prompt", "prompt_ids", "docs", "retrieve", "answers", NULL};
    for (const cJSON *e = js->child; e && st == IFK_OK; e = e->next) {
        int known = 0;
        for (int k = 0; keys[k] && !known; k++) known = !strcmp(e->string, keys[k]);
        if (!known)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: unknown key \"%.60s\" (a question has id, prompt or prompt_ids, docs "
                          "or retrieve, answers; settings such as method, budget and steps are command-line options "
                          "for every line)", path, line, e->string);
    }
    if (st != IFK_OK) {
        cJSON_Delete(js);
        return st;
    }
    char num[32];
    const char *ids = num;
    snprintf(num, sizeof num, "%ld", line);
    /* ids follow the corpus's rule (corpus.h): strings or integers, non-empty, at most IFK_ID_MAX bytes */
    if (id && !ifk_id_from_json(id, num, &ids, why, sizeof why)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s", path, line, why);
    if (st == IFK_OK) q->id = strdup(ids);
    if (st == IFK_OK && !pr == !pi)
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: give exactly one of \"prompt\" (text) or \"prompt_ids\"", path, line);
    if (st == IFK_OK && !dc == !rt)
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: give exactly one of \"docs\" (ids) or \"retrieve\" (K)", path, line);
    if (st == IFK_OK && pr && (!cJSON_IsString(pr) || !*pr->valuestring))
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"prompt\" is not a non-empty string", path, line);
    if (st == IFK_OK && pr && !tok) {
        char who[4200];
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s for a text \"prompt\": give --tokenizer FILE or \"prompt_ids\"", path,
                      line, ifk_engine_no_tokenizer(model, who, sizeof who));
    }
    if (st == IFK_OK && rt && (!cJSON_IsNumber(rt) || rt->valuedouble < 1 || rt->valuedouble > 1 << 20 ||
                               rt->valuedouble != (int)rt->valuedouble || !pr))
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"retrieve\" must be a whole count >= 1 with a text \"prompt\"", path, line);
    if (st == IFK_OK && pi) {
        int n = cJSON_IsArray(pi) ? cJSON_GetArraySize(pi) : 0, k = 0;
        q->ids = malloc(sizeof(int) * (size_t)(n ? n : 1));
        const cJSON *e;
        cJSON_ArrayForEach(e, pi) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= vocab || e->valuedouble != (int)e->valuedouble) {
                st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"prompt_ids\" holds a value that is not a token id below %d",
                              path, line, vocab);
                break;
            }
            q->ids[k++] = (int)e->valuedouble;
        }
        q->P = k;
        if (st == IFK_OK && k == 0) st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"prompt_ids\" is empty or not a list", path, line);
    }
    if (st == IFK_OK && pr) st = ifk_tokenizer_encode(tok, pr->valuestring, strlen(pr->valuestring), 0, 0, &q->ids, &q->P);
    if (st == IFK_OK && dc) {
        int n = cJSON_IsArray(dc) ? cJSON_GetArraySize(dc) : 0;
        q->docs = malloc(sizeof(int) * (size_t)(n ? n : 1));
        const cJSON *e;
        cJSON_ArrayForEach(e, dc) {
            char dnum[32], dq[96];
            const char *did;
            if (!ifk_id_from_json(e, dnum, &did, why, sizeof why)) {
                st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"docs\"[%d]: %s", path, line, q->nd, why);
                break;
            }
            int d = ifk_manifest_find(man, did);
            if (d < 0) {
                ifk_quote(dq, sizeof dq, did);
                st = IFK_FAIL(IFK_ERR_ARG, "%s:%ld: no document %s in the store %s", path, line, dq, dir);
                break;
            }
            q->docs[q->nd++] = d;
        }
        if (st == IFK_OK && q->nd == 0) st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: \"docs\" is empty or not a list", path, line);
    }
    if (st == IFK_OK && rt) {
        st = resolve_docs_(dir, man, NULL, (long)rt->valuedouble, pr->valuestring, &q->docs, &q->nd);
        if (st != IFK_OK) {
            char m[1024];
            snprintf(m, sizeof m, "%s", ifk_errmsg());
            st = IFK_FAIL(st, "%s:%ld: %s", path, line, m);
        }
    }
    cJSON_Delete(js);
    return st;
}

/* Calls fn on each line of f (its newline kept, lines numbered from 1) until fn fails or the file ends. */
static ifk_status each_line_(FILE *f, ifk_status (*fn)(char *buf, size_t len, long line, void *ctx), void *ctx) {
    char *buf = NULL;
    size_t cap = 0;
    long line = 0;
    ifk_status st = IFK_OK;
    ssize_t len;
    while (st == IFK_OK && (len = getline(&buf, &cap, f)) >= 0) st = fn(buf, (size_t)len, ++line, ctx);
    free(buf);
    return st;
}

/* Room for one more element in *arr (n held, capacity *cap, doubling from 64). */
static ifk_status grow_(void **arr, int *cap, int n, size_t elem) {
    if (n < *cap) return IFK_OK;
    const int c = *cap ? 2 * *cap : 64;
    void *p = realloc(*arr, elem * (size_t)c);
    if (!p) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    *arr = p, *cap = c;
    return IFK_OK;
}

/* --queries as it is read: the inputs, the questions kept so far and those --out answered already. */
typedef struct {
    const char *path, *dir;
    ifk_store *store;
    const ifk_tokenizer *tok;
    const char *model; /* its path (messages), NULL for a random model */
    const ifk_query_opts *o;
    const ifk_config *cfg;
    char **done_ids;
    int n_done_ids;
    question_ *qs;
    int n, cap, n_done;
} qfile_;

static ifk_status question_line_(char *buf, size_t len, long line, void *ctx) {
    qfile_ *r = ctx;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = '\0';
    if (len == 0) return IFK_OK;
    question_ q;
    ifk_status st = parse_question_(r->path, line, buf, len, r->dir, ifk_store_manifest(r->store), r->tok,
                                    r->model, r->cfg->vocab_size, &q);
    char where[1100];
    snprintf(where, sizeof where, "%s:%ld: ", r->path, line);
    if (st == IFK_OK) st = check_fits_(r->store, &q, r->o, r->cfg->seq_len, where);
    for (int i = 0; st == IFK_OK && i < r->n; i++)
        if (!strcmp(r->qs[i].id, q.id))
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: id \"%s\" repeats line %ld (ids name the answers in --out)", r->path,
                          line, q.id, r->qs[i].line);
    int skip = 0;
    for (int i = 0; st == IFK_OK && i < r->n_done_ids && !skip; i++) skip = !strcmp(r->done_ids[i], q.id);
    if (st == IFK_OK && !skip) st = grow_((void **)&r->qs, &r->cap, r->n, sizeof *r->qs);
    if (st != IFK_OK || skip) {
        r->n_done += skip;
        question_free_(&q);
        return st;
    }
    r->qs[r->n++] = q;
    return IFK_OK;
}

/* Reads --queries; skips questions whose id --out already holds (*n_done). */
static ifk_status read_questions_(const char *path, const char *dir, ifk_store *store, const ifk_tokenizer *tok,
                                  const char *model, const ifk_query_opts *o, const ifk_config *cfg, char **done_ids, int n_done_ids,
                                  question_ **qs, int *n, int *n_done) {
    *qs = NULL, *n = 0, *n_done = 0;
    FILE *f = fopen(path, "r");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    qfile_ r = {path, dir, store, tok, model, o, cfg, done_ids, n_done_ids, NULL, 0, 0, 0};
    ifk_status st = each_line_(f, question_line_, &r);
    fclose(f);
    *qs = r.qs, *n = r.n, *n_done = r.n_done;
    return st;
}

/* --out as it is read: the ids of its complete lines, and the bytes those lines take. */
typedef struct {
    const char *path;
    const cJSON *settings; /* this run's (settings_) */
    char **ids;
    int n, cap;
    off_t good;
} outfile_;

/* The settings that shape an answer, as one JSON object recorded in every --out line: a resume
 * under other settings would mix answers of two configurations in one file. */
static void settings_(const ifk_query_opts *o, const ifk_model *m, const char *fp, char *buf, size_t cap) {
    int lo = o->score_lo, hi = o->score_hi;
    if (lo < 0) ifk_default_score_layers(m->cfg.n_layers, &lo, &hi);
    const int sel = o->method != IFK_METHOD_FULL && o->method != IFK_METHOD_NONE;
    const int scores = o->method == IFK_METHOD_INFOFLOW || o->method == IFK_METHOD_INFOFLOW_DEV;
    char dev[160] = "";
    if (o->method == IFK_METHOD_INFOFLOW_DEV) {
        ifk_dev_opts dv = o->dev;
        if (dv.layer == 0) ifk_dev_opts_default(&dv);
        ifk_dev_opts_format(&dv, dev, sizeof dev);
    }
    char layers[32] = "";
    if (scores) snprintf(layers, sizeof layers, "%d-%d", lo, hi);
    snprintf(buf, cap, "{\"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"score_layers\": \"%s\", "
             "\"steps\": %d, \"seed\": %llu, \"dev\": \"%s\", \"compare_full\": %s, \"model\": \"%s\", "
             "\"weights\": \"%s\"}", ifk_method_name(o->method),
             o->method == IFK_METHOD_FULL ? 1.0 : sel ? o->budget : 0.0, o->reorder ? "true" : "false", layers, o->steps,
             (unsigned long long)(o->method == IFK_METHOD_RANDOM ? o->seed : 0), dev, o->compare_full ? "true" : "false",
             fp, ifk_wdtype_name(m->wdtype));
}

static ifk_status answer_line_(char *buf, size_t len, long line, void *ctx) {
    outfile_ *r = ctx;
    if (buf[len - 1] != '\n') return IFK_OK; /* incomplete: only the last line can be, and it is cut off */
    cJSON *js = cJSON_Parse(buf);
    const cJSON *id = js ? cJSON_GetObjectItemCaseSensitive(js, "id") : NULL;
    ifk_status st = IFK_OK;
    const cJSON *set = js ? cJSON_GetObjectItemCaseSensitive(js, "settings") : NULL;
    if (!cJSON_IsString(id))
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: not an answer line with an \"id\" (is --out another file?)", r->path, line);
    else if (!cJSON_IsObject(set))
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: the answer records no \"settings\" (written by an older infoflow?): "
                      "give another --out", r->path, line);
    for (const cJSON *e = r->settings->child; st == IFK_OK && e; e = e->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(set, e->string);
        char *a = cJSON_PrintUnformatted(e), *b = v ? cJSON_PrintUnformatted(v) : strdup("(none)");
        if (a && b && strcmp(a, b))
            st = IFK_FAIL(IFK_ERR_ARG, "%s:%ld: answered with %s %s, this run has %s %s: resume with the same settings, "
                          "or give another --out", r->path, line, e->string, b, e->string, a);
        free(a), free(b);
    }
    if (st != IFK_OK)
        ;
    else if ((st = grow_((void **)&r->ids, &r->cap, r->n, sizeof *r->ids)) == IFK_OK)
        r->ids[r->n++] = strdup(id->valuestring);
    cJSON_Delete(js);
    r->good += (off_t)len;
    return st;
}

/* Opens --out for appending: the ids of its complete lines are answered already; a last line
 * without its newline (a job killed while writing it) is cut off. */
static ifk_status open_out_(const char *path, const char *queries, const char *settings, int *fd, char ***ids,
                            int *n) {
    *ids = NULL, *n = 0;
    struct stat so, sq;
    if (stat(path, &so) == 0 && stat(queries, &sq) == 0 && so.st_dev == sq.st_dev && so.st_ino == sq.st_ino)
        return IFK_FAIL(IFK_ERR_ARG, "--out %s is the --queries file %s: give the answers their own file", path, queries);
    *fd = open(path, O_RDWR | O_CREAT, 0644);
    if (*fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    FILE *f = fdopen(dup(*fd), "r");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    cJSON *set = cJSON_Parse(settings);
    if (!set) {
        fclose(f);
        return IFK_FAIL(IFK_ERR_INTERNAL, "query: the run's settings are not JSON: %s", settings);
    }
    outfile_ r = {path, set, NULL, 0, 0, 0};
    ifk_status st = each_line_(f, answer_line_, &r);
    cJSON_Delete(set);
    fclose(f);
    *ids = r.ids, *n = r.n;
    if (st == IFK_OK && ftruncate(*fd, r.good) != 0) st = IFK_FAIL(IFK_ERR_IO, "%s: cannot truncate: %s", path, strerror(errno));
    if (st == IFK_OK && lseek(*fd, 0, SEEK_END) < 0) st = IFK_FAIL(IFK_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    return st;
}

/* ---- the questions as tasks of the grid ----------------------------------------------------------- */

typedef struct {
    /* every rank */
    const ifk_model *m; /* this rank's model: the slice under tensor parallelism */
    ifk_store *store;
    ifk_query_opts o;
    ifk_tp *tp;
    /* the coordinator */
    const question_ *qs;
    int n_qs;
    const ifk_tokenizer *tok;
    int json, ranks, out_fd;
    const char *out_path;
    const char *settings; /* --out lines: what shaped the answers (settings_) */
    ifk_query_result *res; /* (n_qs) results waiting for their turn */
    char *have;
    int next_out;
    long answered;
    int discard; /* the warm-up run: results dropped, nothing printed */
    int cold;    /* the printed timings are a cold run's (--cold) */
} batch_;

static int get_(int i, int **ints, void *ctx) {
    const question_ *q = &((batch_ *)ctx)->qs[i];
    int n = 2 + q->nd + q->P;
    *ints = malloc(sizeof(int) * (size_t)n);
    if (!*ints) return 0; /* run_ refuses the empty task */
    (*ints)[0] = q->nd, (*ints)[1] = q->P;
    memcpy(*ints + 2, q->docs, sizeof(int) * (size_t)q->nd);
    memcpy(*ints + 2 + q->nd, q->ids, sizeof(int) * (size_t)q->P);
    return n;
}

static ifk_status run_(const int *t, int n, char **res, size_t *len, void *ctx) {
    batch_ *b = ctx;
    IFK_CHECK_ARG(n >= 2 && n == 2 + t[0] + t[1], "a question of %d ints is malformed (out of memory?)", n);
    ifk_query_docs qd = {t + 2, t[0]};
    return ifk_grid_run_query(b->m, b->store, &qd, t + 2 + t[0], t[1], &b->o, b->tp, res, len);
}

/* The coordinator: results go out in input order, each --out line with one write(2), so the
 * file only ever holds complete lines. */
static void done_(int i, const char *buf, size_t len, void *ctx) {
    batch_ *b = ctx;
    if (ifk_query_result_unpack(buf, len, &b->res[i]) != IFK_OK) abort_current_();
    if (b->discard) {
        ifk_query_result_free(&b->res[i]);
        return;
    }
    b->have[i] = 1;
    while (b->next_out < b->n_qs && b->have[b->next_out]) {
        const int k = b->next_out++;
        if (b->out_fd < 0) {
            print_result_(stdout, b->tok, b->store, &b->qs[k], &b->o, &b->res[k], b->json, b->ranks, NULL, b->cold);
        } else {
            char *line = NULL;
            size_t ll = 0;
            FILE *mf = open_memstream(&line, &ll);
            if (!mf) {
                IFK_FAIL(IFK_ERR_OOM, "out of memory");
                abort_current_();
            }
            print_result_(mf, b->tok, b->store, &b->qs[k], &b->o, &b->res[k], 1, b->ranks, b->settings, -1);
            fclose(mf);
            if (write(b->out_fd, line, ll) != (ssize_t)ll) {
                IFK_FAIL(IFK_ERR_IO, "%s: cannot write: %s", b->out_path, strerror(errno));
                abort_current_();
            }
            free(line);
        }
        ifk_query_result_free(&b->res[k]);
        b->answered++;
    }
}

/* One question runs on every rank: the rank count must split the KV heads; otherwise the groups'. */
typedef struct {
    int one, ranks, tp;
} layout_;

static ifk_status check_layout_(const ifk_config *cfg, void *ctx) {
    const layout_ *l = ctx;
    return l->one ? ifk_check_ranks(cfg->n_kv_heads, l->ranks) : ifk_grid_check(l->ranks, l->tp, cfg->n_kv_heads);
}

/* ---- the command -------------------------------------------------------------------------------- */

/* The options as given: strings (NULL: not given) and flags. */
typedef struct {
    const char *model, *tokp, *dir, *docs, *retrieve, *prompt, *method, *budget, *layers, *steps, *seed, *threads,
        *shape, *prompt_ids, *tp, *queries, *out, *dev, *weights;
    int reorder, compare, json, serial, cold;
} qargs_;

/* Checks the options against each other and parses them into *o, *retrieve, *threads and *tp
 * (ranks: the world's size). Local; every rank finds the same. The checks that need the model
 * come after it is loaded. */
static ifk_status parse_args_(const qargs_ *a, int ranks, ifk_query_opts *o, long *retrieve, long *threads, int *tp) {
    const int one = !a->queries;
    long steps = 32, seed = 0;
    if (!a->model == !a->shape || !a->dir)
        return IFK_FAIL(IFK_ERR_ARG, "query: --model (or --random-model) and --store are required (see --help)");
    if (one && !a->prompt == !a->prompt_ids)
        return IFK_FAIL(IFK_ERR_ARG, "query: --prompt (or --prompt-ids, or --queries FILE) is required (see --help)");
    if (!one && (a->prompt || a->prompt_ids || a->docs || a->retrieve))
        return IFK_FAIL(IFK_ERR_ARG, "query: --queries takes the prompts and documents from its lines: drop --prompt, "
                        "--prompt-ids, --docs and --retrieve");
    if (!a->queries != !a->out) return IFK_FAIL(IFK_ERR_ARG, "query: --queries and --out go together");
    if (!one && a->json) return IFK_FAIL(IFK_ERR_ARG, "query: --out is always JSON lines: drop --json");
    if (one && !a->prompt_ids && a->shape) return IFK_FAIL(IFK_ERR_ARG, "query: a random model has no tokenizer: use --prompt-ids");
    if (a->retrieve && !a->prompt) return IFK_FAIL(IFK_ERR_ARG, "query: --retrieve needs a text --prompt");
    if (one && !a->docs == !a->retrieve) return IFK_FAIL(IFK_ERR_ARG, "query: give exactly one of --docs ID,... or --retrieve K");
    if (ifk_method_parse(a->method, &o->method) || ifk_cli_double("budget", a->budget, 0, 1, &o->budget) ||
        ifk_cli_int("retrieve", a->retrieve, 1, 1 << 20, retrieve) || ifk_cli_int("steps", a->steps, 1, 1 << 20, &steps) ||
        ifk_cli_int("seed", a->seed, 0, INT64_MAX, &seed) || ifk_cli_int("threads", a->threads, 1, 1024, threads) ||
        ifk_cli_weights(a->weights))
        return IFK_ERR_ARG;
    IFK_CHECK(ifk_grid_parse_tp(a->tp, one ? 0 : 1, ranks, tp));
    if (one && *tp != ranks)
        return IFK_FAIL(IFK_ERR_ARG, "query: one question runs on all %d ranks (--tp %d would leave groups idle): give "
                        "--queries FILE for many, or drop --tp", ranks, *tp);
    if (a->layers) {
        int lo, hi, nc = 0;
        if (sscanf(a->layers, "%d-%d%n", &lo, &hi, &nc) != 2 || a->layers[nc])
            return IFK_FAIL(IFK_ERR_ARG, "--score-layers '%s' is not A-B", a->layers);
        if (hi < lo)
            return IFK_FAIL(IFK_ERR_ARG, "--score-layers %s is reversed: give the lower layer first (%d-%d)", a->layers,
                            hi, lo);
        o->score_lo = lo, o->score_hi = hi;
    }
    if (a->reorder && o->method != IFK_METHOD_INFOFLOW) return IFK_FAIL(IFK_ERR_ARG, "--reorder goes with --method infoflow");
    if (a->dev && o->method != IFK_METHOD_INFOFLOW_DEV)
        return IFK_FAIL(IFK_ERR_ARG, "--dev goes with --method infoflow-dev");
    /* a setting the method does not use is refused, never ignored */
    const int scores = o->method == IFK_METHOD_INFOFLOW || o->method == IFK_METHOD_INFOFLOW_DEV;
    if (a->budget && (o->method == IFK_METHOD_FULL || o->method == IFK_METHOD_NONE))
        return IFK_FAIL(IFK_ERR_ARG, "--budget does not apply to --method %s (it recomputes %s of the context)", a->method,
                        o->method == IFK_METHOD_FULL ? "all" : "none");
    if (a->layers && !scores)
        return IFK_FAIL(IFK_ERR_ARG, "--score-layers goes with --method infoflow or infoflow-dev (%s scores no layers)",
                        a->method);
    if (a->seed && o->method != IFK_METHOD_RANDOM) return IFK_FAIL(IFK_ERR_ARG, "--seed goes with --method random");
    if (a->cold && !one) return IFK_FAIL(IFK_ERR_ARG, "query: --cold is for a single question");
    if (a->prompt && !*a->prompt) return IFK_FAIL(IFK_ERR_ARG, "query: the prompt is empty");
    o->steps = (int)steps;
    o->seed = (uint64_t)seed;
    o->reorder = a->reorder;
    o->compare_full = a->compare;
    o->serial_load = a->serial;
    return IFK_OK;
}

/* The coordinator's part of the set-up: the store must be the model's; then the one question
 * (its documents and prompt resolved) or --queries' questions not yet in --out (opened for
 * appending, *out_fd). */
static ifk_status coordinator_questions_(const qargs_ *a, const ifk_model *full, const ifk_tokenizer *tok,
                                         ifk_store *store, const ifk_query_opts *o, long retrieve, question_ **qs,
                                         int *nq, int *n_done, int *out_fd, char ***done_ids, int *n_done_ids,
                                         char *settings, size_t settings_cap) {
    char fp[17];
    ifk_model_fingerprint(full, fp);
    ifk_store_params want;
    ifk_store_params_from_model(&want, full, fp);
    const ifk_manifest *man = ifk_store_manifest(store);
    IFK_CHECK(ifk_store_params_check(&man->p, &want, a->dir, 0));
    if (a->queries) {
        settings_(o, full, fp, settings, settings_cap);
        IFK_CHECK(open_out_(a->out, a->queries, settings, out_fd, done_ids, n_done_ids));
        return read_questions_(a->queries, a->dir, store, tok, a->model, o, &full->cfg, *done_ids, *n_done_ids, qs, nq,
                               n_done);
    }
    question_ *q = *qs = calloc(1, sizeof *q);
    if (!q) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    *nq = 1;
    IFK_CHECK(resolve_docs_(a->dir, man, a->docs, retrieve, a->prompt ? a->prompt : "", &q->docs, &q->nd));
    if (a->prompt && !tok) {
        char who[4200];
        return IFK_FAIL(IFK_ERR_ARG, "query: %s for a text prompt: give --tokenizer FILE or --prompt-ids",
                        ifk_engine_no_tokenizer(a->model, who, sizeof who));
    }
    if (a->prompt) IFK_CHECK(ifk_tokenizer_encode(tok, a->prompt, strlen(a->prompt), 0, 0, &q->ids, &q->P));
    if (a->prompt_ids) IFK_CHECK(parse_ids_(a->prompt_ids, full->cfg.vocab_size, &q->ids, &q->P));
    return check_fits_(store, q, o, full->cfg.seq_len, "");
}

/* INFOFLOW_READ_STATS: the bytes of each KV head this rank read from the store, one line on
 * stderr (tests check that a rank reads only its heads). */
static void print_read_stats_(const ifk_store *store, int rank) {
    const ifk_manifest *man = ifk_store_manifest(store);
    char line[4096];
    int n = snprintf(line, sizeof line, "read-stats rank %d:", rank);
    for (int h = 0; h < man->p.n_kv_heads && n < (int)sizeof line - 32; h++)
        n += snprintf(line + n, sizeof line - n, " %.0f", ifk_store_head_bytes(store, h));
    line[n++] = '\n';
    if (write(2, line, (size_t)n) < 0) { /* one write: lines of several ranks do not interleave */ }
}

int ifk_cmd_query(int argc, char **argv) {
    ifk_comm cm;
    if (ifk_comm_start(&cm, &argc, &argv) != IFK_OK) return 1;
    cm_current_ = &cm;
    qargs_ a = {.method = "infoflow"};
    int help = 0, rc = 1;
    const ifk_opt opts[] = {
        {"model", "PATH", "checkpoint file or folder (required; must be the store's model)", &a.model, NULL},
        {"random-model", "SHAPE", "the random-weight model a store was cached with (tests, benchmarks)", &a.shape, NULL},
        {"tokenizer", "FILE", "tokenizer.bin (default: beside the checkpoint)", &a.tokp, NULL},
        {"store", "DIR", "the KV store (required)", &a.dir, NULL},
        {"docs", "ID,ID,...", "the context: these documents, in this order", &a.docs, NULL},
        {"retrieve", "K", "the context: the BM25 top K documents for the prompt, best first", &a.retrieve, NULL},
        {"prompt", "TEXT", "the question (required, or --prompt-ids, or --queries)", &a.prompt, NULL},
        {"prompt-ids", "ID,ID,...", "the question as token ids (no tokenizer needed)", &a.prompt_ids, NULL},
        {"queries", "FILE", "many questions, one JSON line each: {\"id\", \"prompt\" | \"prompt_ids\", \"docs\" | "
                            "\"retrieve\"} (needs --out)", &a.queries, NULL},
        {"out", "FILE", "--queries' answers, one --json line per question in input order; a rerun skips the ids it "
                        "holds (under the settings its lines record; others are refused)", &a.out, NULL},
        {"tp", "N", "ranks per tensor-parallel group (default: all ranks for one question, 1 for --queries); the "
                    "groups share the questions", &a.tp, NULL},
        {"method", "M", "infoflow (default), infoflow-dev, full, none, cacheblend, epic, random", &a.method, NULL},
        {"dev", "SPEC", "infoflow-dev's variant, key=value,...: source=v|k|kv layer=N combine=product|ranksum "
                        "alpha=X attn=norm|sum estimate=exact|position (default: docs/method.md)", &a.dev, NULL},
        {"budget", "R", "fraction of context tokens to recompute, in [0, 1] (default 0.15)", &a.budget, NULL},
        {"reorder", NULL, "put the chunk with the most selected tokens next to the prompt (infoflow)", NULL, &a.reorder},
        {"score-layers", "A-B", "InfoFlow's scoring layers, 0-based (default: floor(0.55 L) to ceil(0.8 L) - 1)",
         &a.layers, NULL},
        {"steps", "N", "answer tokens to generate, greedily (default 32)", &a.steps, NULL},
        {"seed", "S", "seed of --method random (default 0)", &a.seed, NULL},
        {"threads", "N", "BLAS threads per rank (default: the node's cores shared by its ranks)", &a.threads, NULL},
        {"weights", "T", "weight precision kept in memory: f32, bf16, f16 or auto (as stored, default)", &a.weights, NULL},
        {"compare-full", NULL, "also run the full prefill and report KL, top-1 and answer agreement", NULL, &a.compare},
        {"cold", NULL, "a single question: time this process's first run (with its one-time GEMM set-up) instead "
                       "of running the question once untimed first", NULL, &a.cold},
        {"serial-load", NULL, "load all K/V before computing (times the load alone; default: overlapped)", NULL, &a.serial},
        {"json", NULL, "print one JSON object instead of the answer text", NULL, &a.json},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: [mpirun -n P] infoflow query --model M --store DIR (--docs ID,... | --retrieve K) "
                        "--prompt TEXT [--method M] [--budget R] [options]\n"
                        "       [mpirun -n P] infoflow query --model M --store DIR --queries FILE.jsonl --out "
                        "FILE.jsonl [--tp N] [options]\n"
                        "Answers prompts over cached documents, recomputing a fraction of the context's tokens.\n"
                        "Under mpirun the ranks form groups of --tp ranks; each group splits the model's KV heads "
                        "(tensor parallelism) and the groups share the questions.";
    ifk_model full = {0}, local = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *store = NULL;
    question_ *qs = NULL;
    int nq = 0, n_done = 0, out_fd = -1, n_done_ids = 0, tp = 0;
    char **done_ids = NULL, settings[1024] = "";
    ifk_grid grid = {0};
    grid.group.comm = MPI_COMM_NULL;
    batch_ b = {0};
    ifk_query_opts o = {.method = IFK_METHOD_INFOFLOW, .budget = 0.15, .score_lo = -1, .score_hi = -1, .steps = 32};
    long retrieve = 0, threads = 0;
    ifk_tp_mpi tpm;
    ifk_status s_ = ifk_cli_parse(argc, argv, opts, usage, &help);
    if (s_ == IFK_OK && help) {
        rc = 0;
        goto out;
    }
    const int one = !a.queries;
    if (s_ == IFK_OK) s_ = parse_args_(&a, cm.size, &o, &retrieve, &threads, &tp);
    AGREE_OR_OUT(s_);
    ifk_blas_set_threads(threads ? (int)threads : ifk_comm_blas_threads(&cm, 0));

    /* every rank maps the checkpoint; in a group of tp ranks each keeps its slice of heads and MLP
     * (an HF folder: each rank reads only its slice from the files) */
    layout_ lay = {one, cm.size, tp};
    s_ = ifk_grid_load_model(a.model, a.tokp, a.shape, cm.rank % tp, tp, cm.rank == 0, check_layout_, &lay, &full, &local,
                             &tok);
    AGREE_OR_OUT(s_);
    if (a.layers && (o.score_lo < 0 || o.score_hi < o.score_lo || o.score_hi >= full.cfg.n_layers))
        s_ = IFK_FAIL(IFK_ERR_ARG, "--score-layers %s is outside the model's layers 0-%d", a.layers, full.cfg.n_layers - 1);
    if (s_ == IFK_OK && a.dev) s_ = ifk_dev_opts_parse(a.dev, full.cfg.n_layers, &o.dev);
    if (s_ == IFK_OK && tp > 1) ifk_model_release_unsliced(&full, &local, cm.rank % tp, tp);
    if (s_ == IFK_OK) s_ = ifk_store_open(&store, a.dir);
    AGREE_OR_OUT(s_);
    if (cm.rank == 0)
        s_ = coordinator_questions_(&a, &full, tok, store, &o, retrieve, &qs, &nq, &n_done, &out_fd, &done_ids,
                                    &n_done_ids, settings, sizeof settings);
    AGREE_OR_OUT(s_);
    ifk_grid_init(&grid, &cm, tp);
    if (tp > 1) ifk_tp_mpi_init(&tpm, &grid.group, full.cfg.n_heads);
    b = (batch_){.m = tp > 1 ? &local : &full, .store = store, .o = o, .tp = tp > 1 ? &tpm.tp : NULL, .qs = qs, .n_qs = nq,
                 .tok = tok, .json = a.json, .ranks = tp, .out_fd = out_fd, .out_path = a.out,
                 .settings = settings};
    if (cm.rank == 0) {
        b.res = calloc((size_t)nq + 1, sizeof *b.res);
        b.have = calloc((size_t)nq + 1, 1);
        if (!b.res || !b.have) {
            IFK_FAIL(IFK_ERR_OOM, "out of memory");
            ifk_comm_abort(&cm);
        }
        if (!one)
            fprintf(stderr, "query: %d question%s to answer, %d already in %s; %d group%s of %d rank%s\n", nq, IFK_S(nq), n_done,
                    a.out, grid.n_groups, grid.n_groups > 1 ? "s" : "", tp, tp > 1 ? "s" : "");
    }
    b.cold = a.cold;
    ifk_farm farm = {get_, run_, done_, &b};
    if (one && !a.cold) { /* the same question once, untimed: the first run of a process pays one-time costs (GEMM
                         * set-up, first touches) that eval's many runs do not; the printed run is the second */
        b.discard = 1;
        ifk_grid_farm(&grid, nq, &farm);
        b.discard = 0;
    }
    const double t0 = ifk_now();
    ifk_grid_farm(&grid, nq, &farm);
    if (cm.rank == 0 && !one) {
        const double el = ifk_now() - t0;
        if (out_fd >= 0 && fsync(out_fd) != 0) {
            IFK_FAIL(IFK_ERR_IO, "%s: cannot fsync: %s", a.out, strerror(errno));
            ifk_comm_abort(&cm);
        }
        fprintf(stderr, "query: answered %ld question%s in %.2f s, %.2f questions/s (%d group%s of %d)\n", b.answered,
                IFK_S(b.answered), el, el > 0 ? b.answered / el : 0.0, grid.n_groups, grid.n_groups > 1 ? "s" : "", tp);
    }
    if (!one) ifk_grid_report_memory(&cm, "query");
    if (getenv("INFOFLOW_READ_STATS")) print_read_stats_(store, cm.rank);
    rc = 0;
out:
    free(b.res), free(b.have);
    for (int i = 0; i < nq; i++) question_free_(&qs[i]);
    free(qs);
    for (int i = 0; i < n_done_ids; i++) free(done_ids[i]);
    free(done_ids);
    if (out_fd >= 0) close(out_fd);
    ifk_grid_free(&grid);
    ifk_store_close(&store);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&local);
    ifk_model_free(&full);
    ifk_comm_finalize(&cm);
    return rc;
}
