/* cmd_generate.c — `infoflow generate`: text from a model and a prompt, on one process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "sys.h"
#include "decode.h"

typedef struct {
    const ifk_tokenizer *tok;
} print_ctx_;

static void print_cb_(int prev, int tok, void *ctx) {
    ifk_print_token(stdout, ((print_ctx_ *)ctx)->tok, prev, tok);
    fflush(stdout);
}

int ifk_cmd_generate(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL, *prompt = "", *steps_s = NULL, *temp_s = NULL, *topp_s = NULL,
               *seed_s = NULL, *threads_s = NULL, *weights_s = NULL;
    int quiet = 0, help = 0;
    const ifk_opt opts[] = {
        {"model", "PATH", "checkpoint file, or a folder with one *.bin and one tok*.bin (required)", &model, NULL},
        {"tokenizer", "FILE", "tokenizer.bin (default: the tok*.bin beside the checkpoint)", &tokp, NULL},
        {"prompt", "TEXT", "prompt text (default: empty)", &prompt, NULL},
        {"steps", "N", "positions to fill, prompt included, as llama2.c (default 256, or an HF folder's max_length "
         "/ prompt + max_new_tokens; at most the model's)",
         &steps_s, NULL},
        {"temperature", "T", "0 = greedy (default 1.0; an HF folder: its generation config)", &temp_s, NULL},
        {"topp", "P", "nucleus sampling mass in (0,1); 0 or 1 = off (default 0.9; an HF folder: its generation "
         "config)", &topp_s, NULL},
        {"seed", "S", "random seed >= 1 (default: the time; printed with the statistics)", &seed_s, NULL},
        {"threads", "N", "BLAS threads (default: OpenBLAS's own choice)", &threads_s, NULL},
        {"weights", "T", "weight precision kept in memory: f32, bf16, f16 or auto (as stored, default)", &weights_s, NULL},
        {"quiet", NULL, "no statistics on stderr", NULL, &quiet},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: infoflow generate --model PATH --prompt TEXT [options]\n"
                        "Generates text the way llama2.c's run.c does; the prompt is prefilled in one batch.";
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    ifk_sampler smp = {0};
    int *ids = NULL, n = 0, rc = 1;
    long steps = 256, seed = (long)time(NULL), threads = 0;
    double temp = 1.0, topp = 0.9;
    if (ifk_cli_parse(argc, argv, opts, usage, &help) != IFK_OK) goto out;
    if (help) return 0;
    if (!model) {
        IFK_FAIL(IFK_ERR_ARG, "generate: --model PATH is required (see --help)");
        goto out;
    }
    if (ifk_cli_int("steps", steps_s, 1, 1L << 30, &steps) || ifk_cli_double("temperature", temp_s, 0, 1e6, &temp) ||
        ifk_cli_double("topp", topp_s, 0, 1, &topp) || ifk_cli_int("seed", seed_s, 1, INT64_MAX, &seed) ||
        ifk_cli_int("threads", threads_s, 1, 1024, &threads) || ifk_cli_weights(weights_s))
        goto out;
    ifk_blas_set_threads((int)threads);
    if (ifk_engine_load(model, tokp, &m, &tok) != IFK_OK) goto out;
    if (!tok) { /* an HF folder without one: generate encodes the prompt and prints text */
        char who[4200];
        IFK_FAIL(IFK_ERR_ARG, "generate: %s to encode the prompt and print the text: give --tokenizer FILE",
                 ifk_engine_no_tokenizer(model, who, sizeof who));
        goto out;
    }
    if (ifk_tokenizer_encode(tok, prompt, strlen(prompt), 1, 0, &ids, &n) != IFK_OK) goto out;
    const ifk_gen_config *g = &m.cfg.gen;
    int top_k = 0;
    if (g->hf && !temp_s && !topp_s) { /* transformers' generate() with the folder's generation config */
        temp = g->do_sample ? g->temperature : 0.0;
        topp = g->do_sample ? g->top_p : 1.0;
        top_k = g->do_sample ? g->top_k : 0;
        /* top_p 0: transformers' TopPLogitsWarper keeps min_tokens_to_keep = 1 token, the most likely
         * (greedy); our sampler reads 0 as "off" */
        if (g->do_sample && g->top_p == 0) temp = 0.0;
    }
    if (g->hf && !steps_s && (g->max_length || g->max_new_tokens))
        steps = g->max_new_tokens ? n + g->max_new_tokens : g->max_length;
    if (ifk_sampler_init(&smp, m.cfg.vocab_size, (float)temp, (float)topp, (uint64_t)seed) != IFK_OK ||
        ifk_sampler_set_hf(&smp, top_k, g->hf ? (float)g->repetition_penalty : 1.0f) != IFK_OK)
        goto out;
    print_ctx_ ctx = {tok};
    ifk_gen_stats st;
    if (n && ids[0] != ifk_tokenizer_bos(tok)) print_cb_(-1, ids[0], &ctx); /* no BOS: ifk_generate shows ids[1..] */
    if (ifk_generate(&m, &smp, ids, n, (int)steps, print_cb_, &ctx, &st) != IFK_OK) {
        printf("\n");
        goto out;
    }
    printf("\n");
    fflush(stdout);
    if (!quiet)
        fprintf(stderr, "prompt %d tokens, prefill %.2f ms; generated %d tokens in %.2f ms, %.1f tok/s; seed %ld\n",
                st.n_prompt, st.prefill_s * 1e3, st.n_generated, st.decode_s * 1e3,
                st.decode_s > 0 ? (st.n_generated - 1) / st.decode_s : 0.0, seed);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(ids);
    ifk_sampler_free(&smp);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}
