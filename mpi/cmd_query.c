/* cmd_query.c — `infoflow query`: one question over cached documents, by any method. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm25.h"
#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "query.h"

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
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int d = ifk_manifest_find(man, t);
            if (d < 0) {
                ifk_status st = IFK_FAIL(IFK_ERR_ARG, "%s: no document \"%s\" in the store (infoflow inspect --store %s "
                                         "--docs lists them)", dir, t, dir);
                free(buf);
                return st;
            }
            (*docs)[(*n)++] = d;
        }
        free(buf);
        IFK_CHECK_ARG(*n > 0, "--docs lists no document");
        return IFK_OK;
    }
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, IFK_INDEX);
    ifk_bm25 *ix;
    IFK_CHECK(ifk_bm25_load(&ix, path));
    const char **hits = malloc(sizeof(char *) * (size_t)k);
    double *sc = malloc(sizeof(double) * (size_t)k);
    *docs = malloc(sizeof(int) * (size_t)k);
    ifk_status st = IFK_OK;
    if (!hits || !sc || !*docs) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int nh = 0;
    if (st == IFK_OK) st = ifk_bm25_search(ix, prompt, strlen(prompt), (int)k, hits, sc, &nh);
    for (int i = 0; st == IFK_OK && i < nh; i++) {
        int d = ifk_manifest_find(man, hits[i]);
        if (d < 0) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: indexes \"%s\", which the manifest does not list", path, hits[i]);
        else (*docs)[(*n)++] = d;
    }
    if (st == IFK_OK && nh == 0) st = IFK_FAIL(IFK_ERR_ARG, "--retrieve: no document shares a word with the prompt");
    free(hits), free(sc);
    ifk_bm25_free(&ix);
    return st;
}

static void json_str_(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* The text of generated ids (decoded after the prompt's last token). */
static char *detok_(const ifk_tokenizer *t, int prev, const int *ids, int n, size_t *len) {
    size_t cap = 64, l = 0;
    char *s = malloc(cap);
    for (int i = 0; s && i < n; i++) {
        size_t pl;
        const char *p = ifk_tokenizer_decode(t, i ? ids[i - 1] : prev, ids[i], &pl);
        if (l + pl + 1 > cap) {
            cap = 2 * (l + pl + 1);
            char *ns = realloc(s, cap);
            if (!ns) { free(s); return NULL; }
            s = ns;
        }
        memcpy(s + l, p, pl);
        l += pl;
    }
    if (s) s[l] = '\0';
    *len = l;
    return s;
}

int ifk_cmd_query(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL, *dir = NULL, *docs_s = NULL, *retr_s = NULL, *prompt = NULL,
               *method_s = "infoflow", *budget_s = NULL, *layers_s = NULL, *steps_s = NULL, *seed_s = NULL,
               *threads_s = NULL;
    int reorder = 0, compare = 0, json = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {
        {"model", "PATH", "checkpoint file or folder (required; must be the store's model)", &model, NULL},
        {"tokenizer", "FILE", "tokenizer.bin (default: beside the checkpoint)", &tokp, NULL},
        {"store", "DIR", "the KV store (required)", &dir, NULL},
        {"docs", "ID,ID,...", "the context: these documents, in this order", &docs_s, NULL},
        {"retrieve", "K", "the context: the BM25 top K documents for the prompt, best first", &retr_s, NULL},
        {"prompt", "TEXT", "the question (required)", &prompt, NULL},
        {"method", "M", "infoflow (default), full, none, cacheblend, epic, random", &method_s, NULL},
        {"budget", "R", "fraction of context tokens to recompute, in [0, 1] (default 0.15)", &budget_s, NULL},
        {"reorder", NULL, "put the chunk with the most selected tokens next to the prompt (infoflow)", NULL, &reorder},
        {"score-layers", "A-B", "InfoFlow's scoring layers, 0-based (default: floor(0.55 L) to ceil(0.8 L) - 1)",
         &layers_s, NULL},
        {"steps", "N", "answer tokens to generate, greedily (default 32)", &steps_s, NULL},
        {"seed", "S", "seed of --method random (default 0)", &seed_s, NULL},
        {"threads", "N", "BLAS threads (default: OpenBLAS's)", &threads_s, NULL},
        {"compare-full", NULL, "also run the full prefill and report KL, top-1 and answer agreement", NULL, &compare},
        {"json", NULL, "print one JSON object instead of the answer text", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: infoflow query --model M --store DIR (--docs ID,... | --retrieve K) --prompt TEXT "
                        "[--method M] [--budget R] [options]\n"
                        "Answers a prompt over cached documents, recomputing a fraction of the context's tokens.";
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *st = NULL;
    int *docs = NULL, nd = 0, *ids = NULL, P = 0;
    ifk_query_result r = {0};
    ifk_query_opts o = {.method = IFK_METHOD_INFOFLOW, .budget = 0.15, .score_lo = -1, .score_hi = -1, .steps = 32};
    long retrieve = 0, steps = 32, seed = 0, threads = 0;
    if (ifk_cli_parse(argc, argv, opts, usage, &help) != IFK_OK) goto out;
    if (help) return 0;
    if (!model || !dir || !prompt) {
        IFK_FAIL(IFK_ERR_ARG, "query: --model, --store and --prompt are required (see --help)");
        goto out;
    }
    if (!docs_s == !retr_s) {
        IFK_FAIL(IFK_ERR_ARG, "query: give exactly one of --docs ID,... or --retrieve K");
        goto out;
    }
    if (ifk_method_parse(method_s, &o.method) || ifk_cli_double("budget", budget_s, 0, 1, &o.budget) ||
        ifk_cli_int("retrieve", retr_s, 1, 1 << 20, &retrieve) || ifk_cli_int("steps", steps_s, 1, 1 << 20, &steps) ||
        ifk_cli_int("seed", seed_s, 0, INT64_MAX, &seed) || ifk_cli_int("threads", threads_s, 1, 1024, &threads))
        goto out;
    o.steps = (int)steps;
    o.seed = (uint64_t)seed;
    o.reorder = reorder;
    o.compare_full = compare;
    if (layers_s) {
        int a, b, nc = 0;
        if (sscanf(layers_s, "%d-%d%n", &a, &b, &nc) != 2 || layers_s[nc]) {
            IFK_FAIL(IFK_ERR_ARG, "--score-layers '%s' is not A-B", layers_s);
            goto out;
        }
        o.score_lo = a, o.score_hi = b;
    }
    ifk_blas_set_threads((int)threads);
    if (ifk_engine_load(model, tokp, &m, &tok) != IFK_OK || ifk_store_open(&st, dir) != IFK_OK) goto out;
    if (layers_s && (o.score_lo < 0 || o.score_hi < o.score_lo || o.score_hi >= m.cfg.n_layers)) {
        IFK_FAIL(IFK_ERR_ARG, "--score-layers %s is outside the model's layers 0-%d", layers_s, m.cfg.n_layers - 1);
        goto out;
    }
    {
        char fp[17];
        ifk_model_fingerprint(&m, fp);
        ifk_store_params want;
        ifk_store_params_from_model(&want, &m, fp);
        if (ifk_store_params_check(&ifk_store_manifest(st)->p, &want, dir, 0) != IFK_OK) goto out;
    }
    if (!*prompt) {
        IFK_FAIL(IFK_ERR_ARG, "query: the prompt is empty");
        goto out;
    }
    if (resolve_docs_(dir, ifk_store_manifest(st), docs_s, retrieve, prompt, &docs, &nd) != IFK_OK) goto out;
    if (ifk_tokenizer_encode(tok, prompt, strlen(prompt), 0, 0, &ids, &P) != IFK_OK) goto out;
    ifk_query_docs qd = {docs, nd};
    if (ifk_query_run(&m, st, &qd, ids, P, &o, &r) != IFK_OK) goto out;
    size_t alen;
    char *answer = detok_(tok, ids[P - 1], r.answer, r.n_answer, &alen);
    const ifk_manifest *man = ifk_store_manifest(st);
    if (!json) {
        fwrite(answer ? answer : "", 1, alen, stdout);
        printf("\n");
        if (r.compared)
            fprintf(stderr, "%s at R=%.2f: KL(full||%s) %.5f, top-1 %s, %d leading tokens as full; ttft %.1f ms "
                    "(full %.1f ms)\n", ifk_method_name(o.method), o.budget, ifk_method_name(o.method), r.kl,
                    r.top1_agree ? "agrees" : "differs", r.leading_agree, r.ttft, r.full_ttft);
    } else {
        printf("{\"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"documents\": [", ifk_method_name(o.method),
               o.budget, o.reorder ? "true" : "false");
        for (int i = 0; i < nd; i++) {
            if (i) printf(", ");
            json_str_(stdout, man->docs[docs[i]].id, strlen(man->docs[docs[i]].id));
        }
        printf("], \"chunk_order\": [");
        for (int i = 0; i < r.n_chunks; i++) printf("%s%d", i ? ", " : "", r.order[i]);
        printf("], \"n_context_tokens\": %d, \"n_prompt_tokens\": %d, \"n_selected\": %d, \"selected\": [", r.T,
               r.n_prompt, r.n_selected);
        for (int i = 0; i < r.n_selected; i++) printf("%s%d", i ? ", " : "", r.selected[i]);
        printf("], \"answer_ids\": [");
        for (int i = 0; i < r.n_answer; i++) printf("%s%d", i ? ", " : "", r.answer[i]);
        printf("], \"answer\": ");
        json_str_(stdout, answer ? answer : "", alen);
        printf(", \"timings_ms\": {\"load\": %.3f, \"rotate\": %.3f, \"score\": %.3f, \"recompute\": %.3f, "
               "\"prompt_prefill\": %.3f, \"first_token\": %.3f, \"ttft\": %.3f}",
               r.t_load, r.t_rotate, r.t_score, r.t_recompute, r.t_prompt, r.t_first, r.ttft);
        if (r.compared) {
            size_t fl;
            char *fa = detok_(tok, ids[P - 1], r.full_answer, r.n_full_answer, &fl);
            printf(", \"compare_full\": {\"kl\": %.9g, \"top1_agree\": %s, \"leading_agree\": %d, \"full_ttft_ms\": %.3f, "
                   "\"full_answer\": ", r.kl, r.top1_agree ? "true" : "false", r.leading_agree, r.full_ttft);
            json_str_(stdout, fa ? fa : "", fl);
            printf("}");
            free(fa);
        }
        printf("}\n");
    }
    free(answer);
    rc = 0;
out:
    if (rc) ifk_err_print();
    ifk_query_result_free(&r);
    free(docs), free(ids);
    ifk_store_close(&st);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}
