/* cmd_query.c — `infoflow query`: one question over cached documents, by any method. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bm25.h"
#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "sys.h"
#include "sampler.h"
#include "query.h"
#include "comm.h"
#include "fault.h"
#include "tp.h"
#include "hf.h"

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

static void print_result_(const ifk_tokenizer *tok, const ifk_manifest *man, const int *docs, int nd, const int *ids,
                          int P, const ifk_query_opts *o, const ifk_query_result *r, int json, int ranks) {
    size_t alen;
    char *answer = ifk_detokenize(tok, ids[P - 1], r->answer, r->n_answer, &alen);
    if (!json) {
        fwrite(answer ? answer : "", 1, alen, stdout);
        printf("\n");
        fflush(stdout);
        if (r->compared)
            fprintf(stderr, "%s at R=%.2f: KL(full||%s) %.5f, top-1 %s, %d leading tokens as full; ttft %.1f ms "
                    "(full %.1f ms)\n", ifk_method_name(o->method), o->budget, ifk_method_name(o->method), r->kl,
                    r->top1_agree ? "agrees" : "differs", r->leading_agree, r->ttft, r->full_ttft);
        free(answer);
        return;
    }
    printf("{\"method\": \"%s\", \"budget\": %g, \"reorder\": %s, \"ranks\": %d, ",
           ifk_method_name(o->method), o->budget, o->reorder ? "true" : "false", ranks);
    if (o->method == IFK_METHOD_INFOFLOW_DEV) {
        ifk_dev_opts dv = o->dev;
        char spec[160];
        if (dv.layer == 0) ifk_dev_opts_default(&dv);
        ifk_dev_opts_format(&dv, spec, sizeof spec);
        printf("\"dev\": \"%s\", ", spec);
    }
    printf("\"documents\": [");
    for (int i = 0; i < nd; i++) {
        if (i) printf(", ");
        ifk_json_str(stdout, man->docs[docs[i]].id, strlen(man->docs[docs[i]].id));
    }
    printf("], \"chunk_order\": [");
    for (int i = 0; i < r->n_chunks; i++) printf("%s%d", i ? ", " : "", r->order[i]);
    printf("], \"n_context_tokens\": %d, \"n_prompt_tokens\": %d, \"n_selected\": %d, \"selected\": [", r->T,
           r->n_prompt, r->n_selected);
    for (int i = 0; i < r->n_selected; i++) printf("%s%d", i ? ", " : "", r->selected[i]);
    printf("], \"answer_ids\": [");
    for (int i = 0; i < r->n_answer; i++) printf("%s%d", i ? ", " : "", r->answer[i]);
    printf("], \"answer\": ");
    ifk_json_str(stdout, answer ? answer : "", alen);
    printf(", \"first_logits_top\": [");
    {   /* the five largest next-token logits, for cross-rank comparisons */
        int best[5] = {-1, -1, -1, -1, -1};
        const int V = r->vocab;
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < V; i++) {
                int used = 0;
                for (int j = 0; j < k; j++) used |= best[j] == i;
                if (!used && (best[k] < 0 || r->first_logits[i] > r->first_logits[best[k]])) best[k] = i;
            }
            printf("%s[%d, %.6f]", k ? ", " : "", best[k], r->first_logits[best[k]]);
        }
    }
    printf("], \"timings_ms\": {\"load\": %.3f, \"rotate\": %.3f, \"score\": %.3f, \"recompute\": %.3f, "
           "\"prompt_prefill\": %.3f, \"first_token\": %.3f, \"ttft\": %.3f}",
           r->t_load, r->t_rotate, r->t_score, r->t_recompute, r->t_prompt, r->t_first, r->ttft);
    /* the load apart (query.h): on the critical path (locate, bos, wait: within load) and on the
     * loader's thread (fill, rerotate: overlapped) */
    printf(", \"load_detail_ms\": {\"locate\": %.3f, \"bos\": %.3f, \"wait\": %.3f, \"fill\": %.3f, \"rerotate\": %.3f}",
           r->t_locate, r->t_bos, r->t_wait, r->t_fill, r->t_rerotate);
    if (ranks > 1) {
        static const char *ph[5] = {"load", "score", "recompute", "prompt_prefill", "decode"};
        printf(", \"comm\": {");
        for (int i = 0; i < 5; i++)
            printf("%s\"%s\": {\"ms\": %.3f, \"bytes\": %.0f}", i ? ", " : "", ph[i], r->comm_ms[i], r->comm_bytes[i]);
        printf("}");
    }
    if (r->compared) {
        size_t fl;
        char *fa = ifk_detokenize(tok, ids[P - 1], r->full_answer, r->n_full_answer, &fl);
        printf(", \"compare_full\": {\"kl\": %.9g, \"top1_agree\": %s, \"leading_agree\": %d, \"full_ttft_ms\": %.3f, "
               "\"full_answer\": ", r->kl, r->top1_agree ? "true" : "false", r->leading_agree, r->full_ttft);
        ifk_json_str(stdout, fa ? fa : "", fl);
        printf("}");
        free(fa);
    }
    printf("}\n");
    free(answer);
}

/* Every failure before the query's collectives is one all ranks see alike or can agree on: the
 * lowest failing rank prints, all exit 1. */
#define AGREE_OR_OUT(st)                                                   \
    do {                                                                   \
        if (ifk_comm_agree(&cm, (st)) != IFK_OK) goto out;                 \
    } while (0)

int ifk_cmd_query(int argc, char **argv) {
    ifk_comm cm;
    if (ifk_comm_start(&cm, &argc, &argv) != IFK_OK) return 1;
    const char *model = NULL, *tokp = NULL, *dir = NULL, *docs_s = NULL, *retr_s = NULL, *prompt = NULL,
               *method_s = "infoflow", *budget_s = NULL, *layers_s = NULL, *steps_s = NULL, *seed_s = NULL,
               *threads_s = NULL, *shape = NULL, *prompt_ids = NULL, *dev_s = NULL, *weights_s = NULL;
    int reorder = 0, compare = 0, json = 0, help = 0, rc = 1, serial = 0;
    const ifk_opt opts[] = {
        {"model", "PATH", "checkpoint file or folder (required; must be the store's model)", &model, NULL},
        {"random-model", "SHAPE", "the random-weight model a store was cached with (tests, benchmarks)", &shape, NULL},
        {"tokenizer", "FILE", "tokenizer.bin (default: beside the checkpoint)", &tokp, NULL},
        {"store", "DIR", "the KV store (required)", &dir, NULL},
        {"docs", "ID,ID,...", "the context: these documents, in this order (ids never hold a comma: the corpus refuses one)", &docs_s, NULL},
        {"retrieve", "K", "the context: the BM25 top K documents for the prompt, best first", &retr_s, NULL},
        {"prompt", "TEXT", "the question (required, or --prompt-ids)", &prompt, NULL},
        {"prompt-ids", "ID,ID,...", "the question as token ids (no tokenizer needed)", &prompt_ids, NULL},
        {"method", "M", "infoflow (default), infoflow-dev, full, none, cacheblend, epic, random", &method_s, NULL},
        {"dev", "SPEC", "infoflow-dev's variant, key=value,...: source=v|k|kv layer=N combine=product|ranksum "
                        "alpha=X attn=norm|sum estimate=exact|position (default: docs/method.md)", &dev_s, NULL},
        {"budget", "R", "fraction of context tokens to recompute, in [0, 1] (default 0.15)", &budget_s, NULL},
        {"reorder", NULL, "put the chunk with the most selected tokens next to the prompt (infoflow)", NULL, &reorder},
        {"score-layers", "A-B", "InfoFlow's scoring layers, 0-based (default: floor(0.55 L) to ceil(0.8 L) - 1)",
         &layers_s, NULL},
        {"steps", "N", "answer tokens to generate, greedily (default 32)", &steps_s, NULL},
        {"seed", "S", "seed of --method random (default 0)", &seed_s, NULL},
        {"threads", "N", "BLAS threads per rank (default: the node's cores shared by its ranks)", &threads_s, NULL},
        {"weights", "T", "weight precision kept in memory: f32, bf16, f16 or auto (as stored, default)", &weights_s, NULL},
        {"compare-full", NULL, "also run the full prefill and report KL, top-1 and answer agreement", NULL, &compare},
        {"serial-load", NULL, "load all K/V before computing (times the load alone; default: overlapped)", NULL, &serial},
        {"json", NULL, "print one JSON object instead of the answer text", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: [mpirun -n P] infoflow query --model M --store DIR (--docs ID,... | --retrieve K) "
                        "--prompt TEXT [--method M] [--budget R] [options]\n"
                        "Answers a prompt over cached documents, recomputing a fraction of the context's tokens.\n"
                        "Under mpirun the model's KV heads are split over the ranks (tensor parallelism).";
    ifk_model full = {0}, local = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *store = NULL;
    int *docs = NULL, nd = 0, *ids = NULL, P = 0;
    ifk_query_result r = {0};
    ifk_query_opts o = {.method = IFK_METHOD_INFOFLOW, .budget = 0.15, .score_lo = -1, .score_hi = -1, .steps = 32};
    long retrieve = 0, steps = 32, seed = 0, threads = 0;
    ifk_tp_mpi tpm;
    ifk_status s_ = ifk_cli_parse(argc, argv, opts, usage, &help);
    if (s_ == IFK_OK && help) {
        rc = 0;
        goto out;
    }
    if (s_ == IFK_OK && (!model == !shape || !dir || !prompt == !prompt_ids))
        s_ = IFK_FAIL(IFK_ERR_ARG, "query: --model (or --random-model), --store and --prompt (or --prompt-ids) are "
                      "required (see --help)");
    if (s_ == IFK_OK && !prompt_ids && shape) s_ = IFK_FAIL(IFK_ERR_ARG, "query: a random model has no tokenizer: use --prompt-ids");
    if (s_ == IFK_OK && retr_s && !prompt) s_ = IFK_FAIL(IFK_ERR_ARG, "query: --retrieve needs a text --prompt");
    if (s_ == IFK_OK && !docs_s == !retr_s) s_ = IFK_FAIL(IFK_ERR_ARG, "query: give exactly one of --docs ID,... or --retrieve K");
    if (s_ == IFK_OK)
        s_ = ifk_method_parse(method_s, &o.method) ? IFK_ERR_ARG
             : ifk_cli_double("budget", budget_s, 0, 1, &o.budget) ? IFK_ERR_ARG
             : ifk_cli_int("retrieve", retr_s, 1, 1 << 20, &retrieve) ? IFK_ERR_ARG
             : ifk_cli_int("steps", steps_s, 1, 1 << 20, &steps) ? IFK_ERR_ARG
             : ifk_cli_int("seed", seed_s, 0, INT64_MAX, &seed) ? IFK_ERR_ARG
             : ifk_cli_int("threads", threads_s, 1, 1024, &threads) ? IFK_ERR_ARG : ifk_cli_weights(weights_s);
    if (s_ == IFK_OK && layers_s) {
        int a, b, nc = 0;
        if (sscanf(layers_s, "%d-%d%n", &a, &b, &nc) != 2 || layers_s[nc])
            s_ = IFK_FAIL(IFK_ERR_ARG, "--score-layers '%s' is not A-B", layers_s);
        o.score_lo = a, o.score_hi = b;
    }
    if (s_ == IFK_OK && reorder && o.method != IFK_METHOD_INFOFLOW)
        s_ = IFK_FAIL(IFK_ERR_ARG, "--reorder goes with --method infoflow");
    if (s_ == IFK_OK && dev_s && o.method != IFK_METHOD_INFOFLOW_DEV)
        s_ = IFK_FAIL(IFK_ERR_ARG, "--dev goes with --method infoflow-dev");
    if (s_ == IFK_OK && prompt && !*prompt) s_ = IFK_FAIL(IFK_ERR_ARG, "query: the prompt is empty");
    AGREE_OR_OUT(s_);
    o.steps = (int)steps;
    o.seed = (uint64_t)seed;
    o.reorder = reorder;
    o.compare_full = compare;
    o.serial_load = serial;
    ifk_blas_set_threads(threads ? (int)threads : ifk_comm_blas_threads(&cm, 0));

    /* every rank maps the checkpoint; with P ranks each keeps its slice of heads and MLP */
    const int hf_slices = cm.size > 1 && model && ifk_hf_is_folder(model);
    if (hf_slices) {
        /* an HF folder under tensor parallelism: each rank reads only its slice from the files;
         * `full` keeps just the config and the file-based fingerprint */
        char cp[2048];
        snprintf(cp, sizeof cp, "%s/config.json", model);
        s_ = ifk_hf_config(&full.cfg, cp);
        if (s_ == IFK_OK) s_ = ifk_hf_load_slice(&local, model, cm.rank, cm.size);
        if (s_ == IFK_OK) {
            memcpy(full.fingerprint, local.fingerprint, sizeof full.fingerprint);
            snprintf(full.source, sizeof full.source, "%s", model);
            if (cm.rank == 0) s_ = ifk_engine_load_tokenizer(model, tokp, &full.cfg, &tok);
            full.tok_identity = ifk_tokenizer_identity(tok); /* rank 0 alone checks the store */
        }
    } else {
        s_ = ifk_engine_load_any(model, tokp, shape, &full, &tok);
    }
    AGREE_OR_OUT(s_);
    if (layers_s && (o.score_lo < 0 || o.score_hi < o.score_lo || o.score_hi >= full.cfg.n_layers))
        s_ = IFK_FAIL(IFK_ERR_ARG, "--score-layers %s is outside the model's layers 0-%d", layers_s, full.cfg.n_layers - 1);
    if (s_ == IFK_OK && dev_s) s_ = ifk_dev_opts_parse(dev_s, full.cfg.n_layers, &o.dev);
    if (s_ == IFK_OK && cm.size > 1 && !hf_slices) s_ = ifk_model_slice(&full, cm.rank, cm.size, &local);
    if (s_ == IFK_OK) s_ = ifk_store_open(&store, dir);
    AGREE_OR_OUT(s_);
    if (cm.rank == 0) {
        /* the coordinator checks the store against the model, resolves the documents and the prompt */
        char fp[17];
        ifk_model_fingerprint(&full, fp);
        ifk_store_params want;
        ifk_store_params_from_model(&want, &full, fp);
        const ifk_manifest *man = ifk_store_manifest(store);
        s_ = ifk_store_params_check(&man->p, &want, dir, 0);
        if (s_ == IFK_OK) s_ = resolve_docs_(dir, man, docs_s, retrieve, prompt ? prompt : "", &docs, &nd);
        if (s_ == IFK_OK && prompt) s_ = ifk_tokenizer_encode(tok, prompt, strlen(prompt), 0, 0, &ids, &P);
        if (s_ == IFK_OK && prompt_ids) s_ = parse_ids_(prompt_ids, full.cfg.vocab_size, &ids, &P);
        if (s_ == IFK_OK) {
            long T = 1;
            for (int i = 0; i < nd; i++) T += man->docs[docs[i]].n_tokens;
            if (T + P + o.steps > full.cfg.seq_len)
                s_ = IFK_FAIL(IFK_ERR_ARG, "context of %ld tokens + prompt of %d + %d answer tokens exceed the model's "
                              "%d positions", T, P, o.steps, full.cfg.seq_len);
        }
    }
    AGREE_OR_OUT(s_);
    if (cm.size > 1) {
        int hdr[2] = {nd, P};
        MPI_Bcast(hdr, 2, MPI_INT, 0, cm.comm);
        if (cm.rank != 0) {
            nd = hdr[0], P = hdr[1];
            docs = malloc(sizeof(int) * (size_t)nd), ids = malloc(sizeof(int) * (size_t)P);
            if (!docs || !ids) {
                IFK_FAIL(IFK_ERR_OOM, "out of memory");
                ifk_comm_abort(&cm);
            }
        }
        MPI_Bcast(docs, nd, MPI_INT, 0, cm.comm);
        MPI_Bcast(ids, P, MPI_INT, 0, cm.comm);
        ifk_tp_mpi_init(&tpm, &cm, full.cfg.n_heads);
    }
    ifk_query_docs qd = {docs, nd};
    if (ifk_query_run(cm.size > 1 ? &local : &full, store, &qd, ids, P, &o, cm.size > 1 ? &tpm.tp : NULL, &r) != IFK_OK) {
        if (cm.size > 1) ifk_comm_abort(&cm); /* the others may wait in a collective */
        ifk_err_print();
        goto out;
    }
    if (cm.rank == 0) print_result_(tok, ifk_store_manifest(store), docs, nd, ids, P, &o, &r, json, cm.size);
    if (getenv("INFOFLOW_READ_STATS")) { /* which KV heads this rank read from the store: tests use it */
        const ifk_manifest *man = ifk_store_manifest(store);
        char line[4096];
        int n = snprintf(line, sizeof line, "read-stats rank %d:", cm.rank);
        for (int h = 0; h < man->p.n_kv_heads && n < (int)sizeof line - 32; h++)
            n += snprintf(line + n, sizeof line - n, " %.0f", ifk_store_head_bytes(store, h));
        line[n++] = '\n';
        if (write(2, line, (size_t)n) < 0) { /* one write: lines of several ranks do not interleave */ }
    }
    rc = 0;
out:
    ifk_query_result_free(&r);
    free(docs), free(ids);
    ifk_store_close(&store);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&local);
    ifk_model_free(&full);
    ifk_comm_finalize(&cm);
    return rc;
}
