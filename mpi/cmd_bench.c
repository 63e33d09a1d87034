/* cmd_bench.c — `infoflow bench prefill`: batched prefill speed against the sgemm peak measured
 * in the same run, on the same thread count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "drivers.h"
#include "engine.h"

static int bench_prefill_(int argc, char **argv) {
    const char *shape = NULL, *model = NULL, *tokens_s = NULL, *threads_s = NULL, *repeat_s = NULL, *seed_s = NULL;
    int json = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {
        {"random-model", "SHAPE", "random weights of a named shape (bench100m, bench1b, stories260K, tiny) or "
                                  "dim=..,layers=..,heads=..,kv_heads=..,hidden=..,vocab=..[,seq=..]", &shape, NULL},
        {"model", "PATH", "a real checkpoint instead (file or folder)", &model, NULL},
        {"tokens", "N", "prompt tokens (default 2048)", &tokens_s, NULL},
        {"threads", "N", "BLAS threads for both the prefill and the peak (default: OpenBLAS's)", &threads_s, NULL},
        {"repeat", "R", "timed runs after one warm-up; the best counts (default 3)", &repeat_s, NULL},
        {"seed", "S", "weights and token seed (default 1)", &seed_s, NULL},
        {"json", NULL, "print one JSON line instead of text", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: infoflow bench prefill (--random-model SHAPE | --model PATH) [--tokens N] [options]\n"
                        "Times a batched prefill and reports it against the sgemm peak measured in the same run.";
    long T = 2048, threads = 0, repeat = 3, seed = 1;
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    ifk_kvcache cache = {0};
    ifk_state s = {0};
    int *ids = NULL, *pos = NULL;
    float *logits = NULL;
    if (ifk_cli_parse(argc, argv, opts, usage, &help) != IFK_OK) goto out;
    if (help) return 0;
    if (ifk_cli_int("tokens", tokens_s, 1, 1 << 24, &T) || ifk_cli_int("threads", threads_s, 1, 1024, &threads) ||
        ifk_cli_int("repeat", repeat_s, 1, 1000, &repeat) || ifk_cli_int("seed", seed_s, 0, INT32_MAX, &seed))
        goto out;
    if (!shape == !model) {
        IFK_FAIL(IFK_ERR_ARG, "bench prefill: give exactly one of --random-model SHAPE or --model PATH");
        goto out;
    }
    ifk_blas_set_threads((int)threads);
    if (shape ? ifk_model_random(&m, shape, (uint64_t)seed) : ifk_engine_load(model, NULL, &m, &tok)) goto out;
    if (T > m.cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "bench prefill: --tokens %ld exceeds the model's %d positions", T, m.cfg.seq_len);
        goto out;
    }
    ids = malloc(sizeof(int) * T);
    pos = malloc(sizeof(int) * T);
    logits = malloc(sizeof(float) * m.cfg.vocab_size);
    if (!ids || !pos || !logits) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory for %ld tokens", T);
        goto out;
    }
    uint64_t r = (uint64_t)seed * 2654435761u + 1;
    for (long i = 0; i < T; i++) r = r * 6364136223846793005ull + 1442695040888963407ull, ids[i] = (int)((r >> 33) % m.cfg.vocab_size), pos[i] = (int)i;
    if (ifk_kvcache_init(&cache, &m.cfg, (int)T) != IFK_OK) goto out;
    double best = 1e30, sum = 0;
    for (long it = 0; it <= repeat; it++) {
        cache.len = 0;
        double t0 = ifk_now();
        if (ifk_forward(&m, &s, &cache, ids, pos, (int)T, logits, 0) != IFK_OK) goto out;
        double dt = ifk_now() - t0;
        if (it == 0) continue; /* warm-up: buffers, page faults, BLAS threads */
        best = dt < best ? dt : best;
        sum += dt;
    }
    double peak = ifk_bench_sgemm_peak(2048, 1.0);
    double flops = ifk_prefill_flops(&m.cfg, (int)T), gf = flops / best / 1e9;
    int nt = ifk_blas_threads();
    if (json)
        printf("{\"impl\": \"infoflow\", \"model\": \"%s\", \"threads\": %d, \"tokens\": %ld, \"prefill_ms\": %.1f, "
               "\"mean_ms\": %.1f, \"tokens_per_s\": %.1f, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio\": %.3f}\n",
               m.source, nt, T, best * 1e3, sum / repeat * 1e3, T / best, gf, peak, gf / peak);
    else
        printf("model %s (dim %d, layers %d, heads %d/%d, hidden %d, vocab %d)\n"
               "threads %d, tokens %ld: prefill best %.1f ms (mean of %ld: %.1f ms), %.0f tokens/s\n"
               "achieved %.1f GFLOP/s; sgemm 2048^3 peak %.1f GFLOP/s (same run, same threads); ratio %.3f\n",
               m.source, m.cfg.dim, m.cfg.n_layers, m.cfg.n_heads, m.cfg.n_kv_heads, m.cfg.hidden_dim,
               m.cfg.vocab_size, nt, T, best * 1e3, repeat, sum / repeat * 1e3, T / best, gf, peak, gf / peak);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(ids);
    free(pos);
    free(logits);
    ifk_state_free(&s);
    ifk_kvcache_free(&cache);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}

int ifk_cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: infoflow bench prefill [options]   (see infoflow bench prefill --help)\n");
        return argc < 2;
    }
    if (!strcmp(argv[1], "prefill")) return bench_prefill_(argc - 1, argv + 1);
    fprintf(stderr, "infoflow: error: bench: unknown benchmark '%s' (available: prefill)\n", argv[1]);
    return 2;
}
