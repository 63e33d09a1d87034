/* cmd_bench.c — `infoflow bench prefill|decode|store|ttft`: speeds against peaks measured in the same
 * run, on the same thread count (GEMM peaks of OpenBLAS and oneDNN, read bandwidth). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "ingest.h"
#include "sys.h"
#include "sampler.h"
#include "store.h"
#include "shard_writer.h"
#include "store_maint.h"
#include "query.h"
#include <unistd.h>

/* ---- what the benchmarks share ---------------------------------------------------------------------- */

/* n token ids in [lo, vocab) from the 64-bit LCG state *r (Knuth's MMIX constants), which advances. */
static void random_ids_(uint64_t *r, int *ids, long n, int lo, int vocab) {
    for (long i = 0; i < n; i++) {
        *r = *r * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = lo + (int)((*r >> 33) % (uint64_t)(vocab - lo));
    }
}

/* The model of prefill and decode: exactly one of --random-model SHAPE (weights from seed) or
 * --model PATH, loaded after the BLAS thread count is set (0: OpenBLAS's own). */
static ifk_status bench_model_(const char *what, const char *shape, const char *model, uint64_t seed, long threads,
                               ifk_model *m, ifk_tokenizer **tok) {
    if (!shape == !model)
        return IFK_FAIL(IFK_ERR_ARG, "bench %s: give exactly one of --random-model SHAPE or --model PATH", what);
    ifk_blas_set_threads((int)threads);
    return shape ? ifk_model_random(m, shape, seed) : ifk_engine_load(model, NULL, m, tok);
}

/* What a prefill or decode benchmark holds: the model, its cache and activations, the token
 * ids with their positions, one row of logits. */
typedef struct {
    ifk_model m;
    ifk_tokenizer *tok;
    ifk_kvcache cache;
    ifk_state s;
    int *ids, *pos; /* (T) */
    float *logits;  /* (vocab) */
} bench_run_;

static void bench_run_free_(bench_run_ *b) {
    free(b->ids), free(b->pos), free(b->logits);
    ifk_state_free(&b->s);
    ifk_kvcache_free(&b->cache);
    ifk_tokenizer_free(&b->tok);
    ifk_model_free(&b->m);
}

/* The process's resident set (VmRSS) or its peak (VmHWM) in KiB, from /proc; -1 when unknown. */
static long proc_kib_(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') v = strtol(line + fl + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

/* The smallest sizes that measure what the benchmark names (each usage text says why). */
#define MIN_PREFILL_TOKENS 16 /* bench prefill --tokens: fewer rows make the GEMMs matrix-vector products */
#define MIN_CHUNK_TOKENS 16   /* bench ttft: tokens per cached chunk, (--context - 1) / --chunks */
#define IFK_STR_(x) #x
#define IFK_STR(x) IFK_STR_(x)

/* ---- the benchmarks ---------------------------------------------------------------------------------- */

static int bench_prefill_(int argc, char **argv) {
    const char *shape = NULL, *model = NULL, *tokens_s = NULL, *threads_s = NULL, *repeat_s = NULL, *seed_s = NULL,
               *weights_s = NULL;
    int json = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {
        {"random-model", "SHAPE", "random weights of a named shape (bench100m, bench1b, stories260K, tiny) or "
                                  "dim=..,layers=..,heads=..,kv_heads=..,hidden=..,vocab=..[,seq=..]", &shape, NULL},
        {"model", "PATH", "a real checkpoint instead (file or folder)", &model, NULL},
        {"tokens", "N", "prompt tokens (default 2048)", &tokens_s, NULL},
        {"threads", "N", "BLAS threads for both the prefill and the peak (default: OpenBLAS's)", &threads_s, NULL},
        {"repeat", "R", "timed runs after one warm-up; the best counts (default 3)", &repeat_s, NULL},
        {"seed", "S", "weights and token seed (default 1)", &seed_s, NULL},
        {"weights", "T", "weight precision: f32, bf16, f16 or auto (as stored; random models: f32)", &weights_s, NULL},
        {"json", NULL, "print one JSON line instead of text", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage = "usage: infoflow bench prefill (--random-model SHAPE | --model PATH) [--tokens N] [options]\n"
                        "Times a batched prefill and reports it against the sgemm peak measured in the same run.\n"
                        "--tokens is at least " IFK_STR(MIN_PREFILL_TOKENS) ": with fewer rows the projections are "
                        "matrix-vector products, bound by memory, not the GEMMs whose peak this compares against "
                        "(bench decode measures that regime).";
    long T = 2048, threads = 0, repeat = 3, seed = 1;
    bench_run_ b = {0};
    ifk_model *const m = &b.m;
    if (ifk_cli_parse(argc, argv, opts, usage, &help) != IFK_OK) goto out;
    if (help) return 0;
    if (ifk_cli_int("tokens", tokens_s, MIN_PREFILL_TOKENS, 1 << 24, &T) || ifk_cli_int("threads", threads_s, 1, 1024, &threads) ||
        ifk_cli_int("repeat", repeat_s, 1, 1000, &repeat) || ifk_cli_int("seed", seed_s, 0, INT32_MAX, &seed) ||
        ifk_cli_weights(weights_s))
        goto out;
    if (bench_model_("prefill", shape, model, (uint64_t)seed, threads, m, &b.tok)) goto out;
    if (T > m->cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "bench prefill: --tokens %ld exceeds the model's %d positions", T, m->cfg.seq_len);
        goto out;
    }
    b.ids = malloc(sizeof(int) * T);
    b.pos = malloc(sizeof(int) * T);
    b.logits = malloc(sizeof(float) * m->cfg.vocab_size);
    if (!b.ids || !b.pos || !b.logits) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory for %ld tokens", T);
        goto out;
    }
    uint64_t r = (uint64_t)seed * 2654435761u + 1;
    random_ids_(&r, b.ids, T, 0, m->cfg.vocab_size);
    for (long i = 0; i < T; i++) b.pos[i] = (int)i;
    if (ifk_kvcache_init(&b.cache, &m->cfg, (int)T) != IFK_OK) goto out;
    double best = 1e30, sum = 0;
    for (long it = 0; it <= repeat; it++) {
        b.cache.len = 0;
        double t0 = ifk_now();
        if (ifk_forward(m, &b.s, &b.cache, b.ids, b.pos, (int)T, b.logits, 0) != IFK_OK) goto out;
        double dt = ifk_now() - t0;
        if (it == 0) continue; /* warm-up: buffers, page faults, BLAS threads */
        best = dt < best ? dt : best;
        sum += dt;
    }
    /* the peaks, same run, same threads: the model's largest GEMM at T rows, best library */
    int gout = 0, gin = 0;
    ifk_largest_gemm(&m->cfg, &gout, &gin);
    const char *impl_b = NULL, *impl_d = NULL, *impl_h = NULL;
    const int pm = (int)T;
    double pk_blas = ifk_bench_gemm_peak(IFK_GEMM_OPENBLAS, IFK_W_F32, pm, gout, gin, 1.0, &impl_b);
    double pk_dnnl = ifk_bench_gemm_peak(IFK_GEMM_ONEDNN, IFK_W_F32, pm, gout, gin, 1.0, &impl_d);
    double pk_bf16 = ifk_bench_gemm_peak(IFK_GEMM_ONEDNN, IFK_W_BF16, pm, gout, gin, 1.0, &impl_h);
    double peak = pk_blas > pk_dnnl ? pk_blas : pk_dnnl;
    double flops = ifk_prefill_flops(&m->cfg, (int)T), gf = flops / best / 1e9;
    int nt = ifk_blas_threads();
    const char *wname = ifk_wdtype_name(m->wdtype), *gname = ifk_gemm_backend_name(ifk_gemm_get_backend());
    char bf16_ratio[32] = "n/a (no bf16 peak measured)"; /* a ratio over a zero peak means nothing */
    if (pk_bf16 > 0) snprintf(bf16_ratio, sizeof bf16_ratio, "%.3f", gf / pk_bf16);
    if (json)
        printf("{\"impl\": \"infoflow\", \"model\": \"%s\", \"weights\": \"%s\", \"gemm\": \"%s\", \"threads\": %d, "
               "\"tokens\": %ld, \"prefill_ms\": %.1f, \"mean_ms\": %.1f, \"tokens_per_s\": %.1f, \"gflops\": %.5g, "
               "\"peak_shape\": [%d, %d, %d], \"peak_openblas_f32\": %.5g, \"peak_onednn_f32\": %.5g, "
               "\"peak_onednn_bf16\": %.5g, \"peak_gflops\": %.5g, \"ratio\": %.4f, \"ratio_bf16_peak\": %.4f}\n",
               m->source, wname, gname, nt, T, best * 1e3, sum / repeat * 1e3, T / best, gf, pm, gout, gin, pk_blas,
               pk_dnnl, pk_bf16, peak, gf / peak, pk_bf16 > 0 ? gf / pk_bf16 : 0.0);
    else
        printf("model %s (dim %d, layers %d, heads %d/%d, hidden %d, vocab %d), weights %s, GEMM backend %s\n"
               "threads %d, tokens %ld: prefill best %.1f ms (mean of %ld: %.1f ms), %.0f tokens/s\n"
               "peaks at the largest GEMM %dx%dx%d (same run, same threads): OpenBLAS f32 %.1f (%s), oneDNN f32 %.1f (%s), "
               "oneDNN bf16 %.1f GFLOP/s (%s)\n"
               "achieved %.1f GFLOP/s; f32 peak %.1f GFLOP/s; ratio %.3f; against the bf16 peak %s\n",
               m->source, m->cfg.dim, m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.hidden_dim,
               m->cfg.vocab_size, wname, gname, nt, T, best * 1e3, repeat, sum / repeat * 1e3, T / best, pm, gout, gin,
               pk_blas, impl_b ? impl_b : "-", pk_dnnl, impl_d ? impl_d : "not built", pk_bf16,
               impl_h ? impl_h : "not built", gf, peak, gf / peak, bf16_ratio);
    rc = 0;
out:
    if (rc) ifk_err_print();
    bench_run_free_(&b);
    return rc;
}

/* Reads every chunk of every document (all heads) through the store reader, page cache warm, and
 * the shard files themselves with plain read(); reports both rates over the same bytes. */
static int bench_store_(int argc, char **argv) {
    const char *dir = NULL, *repeat_s = NULL;
    int json = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {{"store", "DIR", "the store to read (required)", &dir, NULL},
                            {"repeat", "R", "timed passes after one warm-up; the best counts (default 3)", &repeat_s, NULL},
                            {"json", NULL, "print one JSON line", NULL, &json},
                            {NULL, NULL, NULL, NULL, NULL}};
    long repeat = 3;
    ifk_store *store = NULL;
    float *k = NULL, *v = NULL;
    char *raw = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow bench store --store DIR [--repeat R] [--json]\n"
                      "KV read rate of the store reader against a raw read of the shard files, same run.", &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (!dir) {
        IFK_FAIL(IFK_ERR_ARG, "bench store: --store DIR is required");
        goto out;
    }
    if (ifk_cli_int("repeat", repeat_s, 1, 1000, &repeat) || ifk_store_open(&store, dir) != IFK_OK) goto out;
    const ifk_manifest *m = ifk_store_manifest(store);
    const ifk_store_params *p = &m->p;
    size_t nel = (size_t)p->n_layers * p->n_kv_heads * p->chunk_tokens * p->head_dim;
    k = malloc(4 * nel), v = malloc(4 * nel);
    const size_t rawcap = 64u << 20;
    raw = malloc(rawcap);
    if (!k || !v || !raw) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto out;
    }
    double kv_bytes = 0, file_bytes = 0, best_kv = 1e30, best_raw = 1e30;
    for (long it = 0; it <= repeat; it++) {
        double t0 = ifk_now();
        for (int d = 0; d < m->n_docs; d++) {
            const ifk_doc_rec *rec = ifk_store_doc(store, d);
            if (!rec) goto out;
            for (int c = 0; c < rec->n_chunks; c++) {
                if (ifk_store_read_chunk(store, d, c, 0, p->n_kv_heads, k, v, NULL) != IFK_OK) goto out;
                if (it == 0) kv_bytes += 2.0 * p->n_layers * p->n_kv_heads * rec->chunk_len[c] * p->head_dim *
                                         (double)ifk_dtype_size(p->dtype);
            }
        }
        double t1 = ifk_now();
        for (int i = 0; i < m->n_shards; i++) {
            char path[2400], name[512];
            if (ifk_manifest_shard(m, i, name, sizeof name) != IFK_OK) goto out;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            FILE *f = fopen(path, "rb");
            if (!f) {
                IFK_FAIL(IFK_ERR_IO, "%s: cannot open", path);
                goto out;
            }
            size_t r;
            while ((r = fread(raw, 1, rawcap, f)) > 0)
                if (it == 0) file_bytes += (double)r;
            fclose(f);
        }
        double t2 = ifk_now();
        if (it == 0) continue; /* warm-up: page cache, shard handles */
        best_kv = t1 - t0 < best_kv ? t1 - t0 : best_kv;
        best_raw = t2 - t1 < best_raw ? t2 - t1 : best_raw;
    }
    /* the raw pass reads the whole files, a little more than the datasets: scale it to the same bytes */
    double kv_rate = kv_bytes / best_kv / 1e9, raw_rate = file_bytes / best_raw / 1e9;
    if (json)
        printf("{\"store\": \"%s\", \"dtype\": \"%s\", \"chunks\": %lld, \"kv_bytes\": %.0f, \"file_bytes\": %.0f, "
               "\"kv_read_gbs\": %.3f, \"raw_read_gbs\": %.3f, \"ratio\": %.3f}\n",
               dir, ifk_dtype_name(p->dtype), m->n_chunks, kv_bytes, file_bytes, kv_rate, raw_rate, kv_rate / raw_rate);
    else
        printf("store %s: %lld chunks, %.1f MB of K/V (%s) in %.1f MB of shards\n"
               "store reader %.2f GB/s (checksums verified, converted to f32); raw read of the shard files %.2f GB/s; "
               "ratio %.3f\n",
               dir, m->n_chunks, kv_bytes / 1e6, ifk_dtype_name(p->dtype), file_bytes / 1e6, kv_rate, raw_rate,
               kv_rate / raw_rate);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(k), free(v), free(raw);
    ifk_store_close(&store);
    return rc;
}

/* ---- bench ttft: a temporary store of `chunks` random documents with a model, then full and a
 * method timed on the same context and prompt in one run ---------------------------------------------- */

static ifk_status record_(const char *shard, ifk_doc_rec *recs, int n, void *ctx) {
    return ifk_ingest_record(ctx, shard, recs, n);
}

/* Writes the store into dir (made empty): `chunks` documents "doc0000", ... of clen random ids
 * (from *r, which advances), each prefilled alone as the cache job does, committed in order. */
static ifk_status ttft_store_(const char *dir, const ifk_model *m, ifk_dtype dtype, int clen, long chunks, uint64_t *r) {
    char fp[17];
    ifk_model_fingerprint(m, fp);
    ifk_store_params sp;
    ifk_store_params_from_model(&sp, m, fp);
    sp.dtype = dtype;
    sp.chunk_tokens = clen;
    ifk_manifest *man = NULL;
    ifk_ingest g = {0};
    int lock_fd = -1, removed;
    int *tokens = malloc(sizeof(int) * clen);
    ifk_status st = tokens ? IFK_OK : IFK_FAIL(IFK_ERR_OOM, "out of memory");
    if (st == IFK_OK) st = ifk_ingest_open_store(dir, &sp, 0, 0, 1, &man, &lock_fd, &removed);
    if (st == IFK_OK) st = ifk_ingest_init(&g, m, NULL, dir, &sp, "shard-bench", 0);
    for (long d = 0; st == IFK_OK && d < chunks; d++) {
        random_ids_(r, tokens, clen, 3, m->cfg.vocab_size);
        char id[32];
        snprintf(id, sizeof id, "doc%04ld", d);
        ifk_ingest_doc_in in = {.id = id, .tokens = tokens, .n_tokens = clen};
        st = ifk_ingest_doc(&g, &in, dir, NULL, NULL);
    }
    if (st == IFK_OK) st = ifk_ingest_commit(&g, record_, man);
    ifk_ingest_free(&g);
    ifk_ingest_close_store(&man, &lock_fd);
    free(tokens);
    return st;
}

/* The best runs of bench ttft: TTFTs in seconds, and the results of the best overlapped and serial
 * runs of the method (their phase times). */
typedef struct {
    double full, method, serial;
    ifk_query_result keep, keep_s;
} ttft_best_;

/* Each of repeat + 1 rounds (the first warms up): full (unless no_full); the method with its load
 * first and alone (serial: the load's and the compute's times apart); the method with the load
 * overlapped, as queries run. cold: the shards leave the page cache before each cached run. */
static ifk_status ttft_measure_(const ifk_model *m, ifk_store *store, const ifk_query_docs *qd, const int *prompt, int P,
                                ifk_query_opts qo, ifk_method method, long repeat, int cold, int no_full, ttft_best_ *b) {
    *b = (ttft_best_){1e30, 1e30, 1e30, {0}, {0}};
    ifk_query_result res;
    ifk_status st = IFK_OK;
    for (long it = 0; st == IFK_OK && it <= repeat; it++) {
        qo.method = IFK_METHOD_FULL;
        if (!no_full) {
            if ((st = ifk_query_run(m, store, qd, prompt, P, &qo, NULL, &res)) != IFK_OK) break;
            if (it) b->full = res.ttft < b->full ? res.ttft : b->full;
            ifk_query_result_free(&res);
        }
        qo.method = method;
        for (int serial = 1; st == IFK_OK && serial >= 0; serial--) {
            qo.serial_load = serial;
            if (cold && (st = ifk_store_drop_cache(store)) != IFK_OK) break;
            if ((st = ifk_query_run(m, store, qd, prompt, P, &qo, NULL, &res)) != IFK_OK) break;
            double *best = serial ? &b->serial : &b->method;
            ifk_query_result *kp = serial ? &b->keep_s : &b->keep;
            if (it && res.ttft < *best) {
                *best = res.ttft;
                ifk_query_result_free(kp);
                *kp = res;
            } else {
                ifk_query_result_free(&res);
            }
        }
    }
    if (st != IFK_OK) ifk_query_result_free(&b->keep), ifk_query_result_free(&b->keep_s);
    return st;
}

/* One memory pass over n bytes: the best of 3 memcpys, in ms; -1 when out of memory (message set). */
static double memory_pass_ms_(size_t n) {
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a), free(b);
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        return -1;
    }
    double pass = 1e30;
    memset(a, 1, n), memset(b, 2, n);
    for (int i = 0; i < 3; i++) {
        const double t0 = ifk_now();
        memcpy(b, a, n);
        __asm__ volatile("" : : "r"(b) : "memory"); /* the copy is not dead */
        pass = ifk_now() - t0 < pass ? ifk_now() - t0 : pass;
    }
    free(a), free(b);
    return pass * 1e3;
}

static int bench_ttft_(int argc, char **argv) {
    const char *shape = NULL, *model = NULL, *ctx_s = NULL, *chunks_s = NULL, *prompt_s = NULL, *budget_s = NULL,
               *threads_s = NULL, *repeat_s = NULL, *method_s = "infoflow", *dtype_s = "f16", *mbps_s = NULL,
               *weights_s = NULL;
    int json = 0, help = 0, rc = 1, cold = 0, no_full = 0;
    const ifk_opt opts[] = {
        {"random-model", "SHAPE", "random weights of this shape (default bench100m)", &shape, NULL},
        {"model", "PATH", "a real checkpoint instead", &model, NULL},
        {"context", "N", "context tokens (default 4096)", &ctx_s, NULL},
        {"chunks", "K", "cached chunks the context is made of (default 8)", &chunks_s, NULL},
        {"prompt-tokens", "P", "prompt length (default 16)", &prompt_s, NULL},
        {"budget", "R", "recompute budget (default 0.15)", &budget_s, NULL},
        {"method", "M", "the method timed against full (default infoflow)", &method_s, NULL},
        {"dtype", "T", "store dtype (default f16)", &dtype_s, NULL},
        {"weights", "T", "weight precision: f32, bf16, f16 or auto (default: as stored)", &weights_s, NULL},
        {"threads", "N", "BLAS threads (default: OpenBLAS's)", &threads_s, NULL},
        {"repeat", "R", "timed runs of each after a warm-up; the best counts (default 2)", &repeat_s, NULL},
        {"read-mbps", "X", "slow the store reader to X MB/s (fault injection: a slow file system)", &mbps_s, NULL},
        {"cold", NULL, "drop the shards from the page cache before each cached run (posix_fadvise)", NULL, &cold},
        {"no-full", NULL, "skip the full prefill (the method's phases and overlap only; full's figures print as 0)", NULL, &no_full},
        {"json", NULL, "one JSON line", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    long ctx = 4096, chunks = 8, P = 16, threads = 0, repeat = 2;
    double budget = 0.15, mbps = 0;
    ifk_method method;
    ifk_dtype dtype;
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    ifk_store *store = NULL;
    int *prompt = NULL, *docs = NULL;
    char dir[] = "/tmp/infoflow-ttft-XXXXXX";
    int made_dir = 0;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow bench ttft [--random-model SHAPE] [--context N] [--chunks K] "
                      "[options]\nTTFT of full prefill against a cached method on the same context, same run.\n"
                      "Sizes: chunks of at least " IFK_STR(MIN_CHUNK_TOKENS) " tokens (--context >= "
                      IFK_STR(MIN_CHUNK_TOKENS) " x --chunks + 1 for BOS: a shorter chunk's load, rotation and "
                      "scoring time per-call overhead, not the method), and a --budget above 0 that recomputes at "
                      "least one token (--budget x (--context - 1) >= 1), else the recompute times nothing.",
                      &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (ifk_cli_int("context", ctx_s, 2, 1 << 24, &ctx) || ifk_cli_int("chunks", chunks_s, 1, 1 << 20, &chunks) ||
        ifk_cli_int("prompt-tokens", prompt_s, 1, 1 << 20, &P) || ifk_cli_double("budget", budget_s, 0, 1, &budget) ||
        ifk_cli_int("threads", threads_s, 1, 1024, &threads) || ifk_cli_int("repeat", repeat_s, 1, 100, &repeat) ||
        ifk_cli_double("read-mbps", mbps_s, 0, 1e9, &mbps) || ifk_method_parse(method_s, &method) ||
        ifk_dtype_parse(dtype_s, &dtype) || ifk_cli_weights(weights_s))
        goto out;
    if (shape && model) {
        IFK_FAIL(IFK_ERR_ARG, "bench ttft: give one of --random-model SHAPE or --model PATH, not both");
        goto out;
    }
    if (!model && !shape) shape = "bench100m";
    if (budget_s && (method == IFK_METHOD_NONE || method == IFK_METHOD_FULL)) {
        IFK_FAIL(IFK_ERR_ARG, "bench ttft: --budget does not apply to --method %s (it recomputes %s)",
                 ifk_method_name(method), method == IFK_METHOD_NONE ? "nothing" : "everything");
        goto out;
    }
    if (method == IFK_METHOD_NONE || method == IFK_METHOD_FULL) budget = 0;
    ifk_blas_set_threads((int)threads);
    if (ifk_engine_load_any(model, NULL, shape, &m, &tok)) goto out;
    const int clen = (int)((ctx - 1) / chunks);
    if (clen < MIN_CHUNK_TOKENS) {
        IFK_FAIL(IFK_ERR_ARG, "bench ttft: --context %ld leaves %ld tokens after BOS for --chunks %ld, fewer than %d "
                 "per chunk: --context is at least %ld here (--help says why)", ctx, ctx - 1, chunks, MIN_CHUNK_TOKENS,
                 MIN_CHUNK_TOKENS * chunks + 1);
        goto out;
    }
    if (budget > 0 && ifk_budget(budget, (int)(ctx - 1)) < 1) {
        IFK_FAIL(IFK_ERR_ARG, "bench ttft: --budget %g of --context %ld recomputes no token: --context is at least "
                 "%ld for this budget, or give --budget 0 to time reuse alone", budget, ctx, (long)ceil(1 / budget) + 1);
        goto out;
    }
    if (ctx + P + 1 > m.cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "bench ttft: %ld context + %ld prompt tokens do not fit the model's %d positions in %ld "
                 "chunks", ctx, P, m.cfg.seq_len, chunks);
        goto out;
    }
    if (!mkdtemp(dir)) {
        IFK_FAIL(IFK_ERR_IO, "%s: cannot create a temporary store", dir);
        goto out;
    }
    made_dir = 1;
    prompt = malloc(sizeof(int) * P), docs = malloc(sizeof(int) * chunks);
    if (!prompt || !docs) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto out;
    }
    uint64_t r = 12345;
    if (ttft_store_(dir, &m, dtype, clen, chunks, &r) != IFK_OK || ifk_store_open(&store, dir) != IFK_OK) goto out;
    random_ids_(&r, prompt, P, 3, m.cfg.vocab_size);
    for (long d = 0; d < chunks; d++) docs[d] = (int)d; /* documents are numbered in commit order */
    ifk_query_docs qd = {docs, (int)chunks};
    ifk_query_opts qo = {.method = IFK_METHOD_FULL, .budget = budget, .score_lo = -1, .score_hi = -1, .steps = 1};
    if (mbps > 0 && ifk_store_set_read_rate(store, mbps) != IFK_OK) goto out;
    ttft_best_ b;
    if (ttft_measure_(&m, store, &qd, prompt, (int)P, qo, method, repeat, cold, no_full, &b) != IFK_OK) goto out;
    double best_full = b.full;
    const double best_m = b.method, best_s = b.serial;
    const ifk_query_result keep = b.keep, keep_s = b.keep_s;
    /* the recompute's rate against the full prefill's, same FLOP count (selected slots are their
     * positions: the context sits at positions 0..T-1 once rotated). Both stop the context's last
     * layer at its K/V; full's prompt rows, at positions T.., run whole. */
    int *ppos = malloc(sizeof(int) * (size_t)P);
    if (!ppos) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_query_result_free(&b.keep_s), ifk_query_result_free(&b.keep);
        goto out;
    }
    for (int i = 0; i < (int)P; i++) ppos[i] = keep.T + i;
    const double fl_prompt = ifk_rows_flops(&m.cfg, ppos, (int)P);
    free(ppos);
    const double fl_full = ifk_kv_rows_flops(&m.cfg, NULL, keep.T) + fl_prompt,
                 fl_rec = ifk_kv_rows_flops(&m.cfg, keep.selected, keep.n_selected);
    /* the speed-up at equal FLOP rates: full prefill's FLOPs over InfoFlow's (BOS forward, scoring,
     * recompute, prompt; the classifier once each), from this run's selection. The 1/R of a
     * back-of-envelope ignores that the selected tokens sit after the first chunk (more keys
     * each) and the two prompt forwards. Other methods score differently: not counted (0). */
    double ceiling = 0;
    if (method == IFK_METHOD_INFOFLOW) {
        int lo, hi;
        ifk_default_score_layers(m.cfg.n_layers, &lo, &hi);
        const double cls = 2.0 * m.cfg.dim * m.cfg.vocab_size;
        ceiling = (fl_full + cls) / (ifk_kv_rows_flops(&m.cfg, NULL, 1) + ifk_score_flops(&m.cfg, keep.T, (int)P, hi) +
                                     fl_rec + fl_prompt + cls);
    }
    /* what the speed-up compares with: 1/R where a budget applies, and the FLOP-count ceiling */
    char ceil_s[128] = "", inv_r[32] = "";
    if (budget > 0) snprintf(inv_r, sizeof inv_r, "1/R = %.1fx", 1.0 / budget);
    if (ceiling > 0) snprintf(ceil_s, sizeof ceil_s, "%sat equal FLOP rates, from this run's FLOP counts: %.2fx",
                              inv_r[0] ? "; " : "", ceiling);
    if (no_full) best_full = 0; /* printed as 0: not run */
    const double gf_full = best_full > 0 ? fl_full / best_full / 1e6 : 0, gf_rec = keep.t_recompute > 0 ? fl_rec / keep.t_recompute / 1e6 : 0;
    /* one memory pass over the bytes the load writes (the context's f32 K and V, this run's cache
     * size), best of 3 memcpys: the unit the load is counted in */
    const size_t kvb = 2 * (size_t)m.cfg.n_layers * m.cfg.n_kv_heads * keep.T * m.cfg.head_dim * sizeof(float);
    const double pass = memory_pass_ms_(kvb);
    if (pass < 0) {
        ifk_query_result_free(&b.keep_s), ifk_query_result_free(&b.keep);
        goto out;
    }
    /* load alone and compute alone, from the serial run */
    const double load_s = keep_s.t_load, compute_s = keep_s.ttft - keep_s.t_load,
                 bound = load_s > compute_s ? load_s : compute_s;
    char slow[64] = "";
    if (mbps > 0) snprintf(slow, sizeof slow, ", reader slowed to %g MB/s", mbps);
    if (json)
        printf("{\"model\": \"%s\", \"weights\": \"%s\", \"context\": %d, \"chunks\": %ld, \"prompt\": %ld, \"budget\": %g, \"method\": \"%s\", "
               "\"n_selected\": %d, \"read_mbps\": %g, \"cold\": %d, \"full_ttft_ms\": %.1f, \"method_ttft_ms\": %.1f, "
               "\"load_ms\": %.1f, \"rotate_ms\": %.1f, \"score_ms\": %.1f, \"recompute_ms\": %.1f, \"prompt_ms\": %.1f, "
               "\"speedup\": %.2f, \"load_detail_ms\": {\"locate\": %.1f, \"bos\": %.1f, \"wait\": %.1f, \"fill\": %.1f, "
               "\"rerotate\": %.1f}, \"serial\": {\"ttft_ms\": %.1f, \"load_ms\": %.1f, \"compute_ms\": %.1f, "
               "\"locate_ms\": %.1f, \"bos_ms\": %.1f, \"fill_ms\": %.1f, \"rerotate_ms\": %.1f}, "
               "\"overlap_ratio\": %.3f, \"full_gflops\": %.1f, \"recompute_gflops\": %.1f, \"full_ms_per_token\": %.3f, "
               "\"recompute_ms_per_token\": %.3f, \"memory_pass_ms\": %.2f, \"flop_ceiling\": %.3f}\n",
               m.source, ifk_wdtype_name(m.wdtype), keep.T, chunks, P, budget, ifk_method_name(method), keep.n_selected, mbps, cold, best_full, best_m,
               keep.t_load, keep.t_rotate, keep.t_score, keep.t_recompute, keep.t_prompt + keep.t_first, best_full / best_m,
               keep.t_locate, keep.t_bos, keep.t_wait, keep.t_fill, keep.t_rerotate, best_s, load_s, compute_s,
               keep_s.t_locate, keep_s.t_bos, keep_s.t_fill, keep_s.t_rerotate, best_m / bound, gf_full, gf_rec,
               best_full / (keep.T + P), keep.n_selected ? keep.t_recompute / keep.n_selected : 0.0, pass, ceiling);
    else
        printf("model %s (weights %s), context %d tokens in %ld cached chunks, prompt %ld tokens, threads %d%s%s\n"
               "full prefill TTFT %.1f ms\n"
               "%s at R=%.2f TTFT %.1f ms (%d tokens recomputed): load %.1f, rotate %.1f, score %.1f, recompute %.1f, "
               "prompt %.1f ms\n"
               "  load on the critical path: locate (HDF5) %.1f, BOS forward %.1f, waiting for the loader %.1f ms; "
               "loader thread (overlapped): checksum+convert %.1f, rotate %.1f ms\n"
               "  load first, alone (serial): TTFT %.1f ms = load %.1f (locate %.1f, BOS %.1f, checksum+convert %.1f, "
               "rotate %.1f) + compute %.1f; overlapped / max(load, compute) = %.3f\n"
               "  a memory pass over the %.1f MB of f32 K/V (memcpy, same run): %.2f ms; the serial load's checksum+convert"
               "+rotate = %.2f passes\n"
               "  recompute %.3f ms/token at %.1f GFLOP/s; full prefill %.3f ms/token at %.1f GFLOP/s (same FLOP count): "
               "ratio %.3f\n"
               "speed-up full / %s: %.2fx%s%s%s%s\n",
               m.source, ifk_wdtype_name(m.wdtype), keep.T, chunks, P, ifk_blas_threads(), cold ? ", cold page cache" : "", slow, best_full, ifk_method_name(method), budget, best_m, keep.n_selected,
               keep.t_load, keep.t_rotate, keep.t_score, keep.t_recompute, keep.t_prompt + keep.t_first, keep.t_locate,
               keep.t_bos, keep.t_wait, keep.t_fill, keep.t_rerotate, best_s, load_s, keep_s.t_locate, keep_s.t_bos,
               keep_s.t_fill, keep_s.t_rerotate, compute_s, best_m / bound, kvb / 1e6, pass,
               (keep_s.t_fill + keep_s.t_rerotate) / pass,
               keep.n_selected ? keep.t_recompute / keep.n_selected : 0.0, gf_rec, best_full / (keep.T + P), gf_full,
               gf_full > 0 ? gf_rec / gf_full : 0.0, ifk_method_name(method), best_full / best_m,
               inv_r[0] || ceil_s[0] ? " (" : "", inv_r, ceil_s, inv_r[0] || ceil_s[0] ? ")" : "");
    ifk_query_result_free(&b.keep_s);
    ifk_query_result_free(&b.keep);
    rc = 0;
out:
    if (rc) ifk_err_print();
    ifk_store_close(&store);
    if (made_dir) {
        ifk_store_wipe(dir);
        char lock[64];
        snprintf(lock, sizeof lock, "%s/.lock", dir);
        unlink(lock);
        rmdir(dir);
    }
    free(prompt), free(docs);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}

/* Decode after a prompt: tokens/s, the weight bytes each token reads, and the read bandwidth measured in
 * the same run (a vectorized sum over a buffer far larger than the caches, same threads). */
static int bench_decode_(int argc, char **argv) {
    const char *shape = NULL, *model = NULL, *prompt_s = NULL, *steps_s = NULL, *threads_s = NULL, *weights_s = NULL,
               *repeat_s = NULL;
    int json = 0, help = 0, rc = 1;
    const ifk_opt opts[] = {
        {"random-model", "SHAPE", "random weights of a named shape (bench100m, bench1b, ...)", &shape, NULL},
        {"model", "PATH", "a real checkpoint instead", &model, NULL},
        {"prompt-tokens", "P", "prompt prefilled before decoding (default 512)", &prompt_s, NULL},
        {"steps", "N", "tokens decoded one at a time (default 64)", &steps_s, NULL},
        {"repeat", "R", "timed decode runs after one warm-up; the best counts (default 2)", &repeat_s, NULL},
        {"threads", "N", "threads for decode and the bandwidth probe (default: OpenBLAS's)", &threads_s, NULL},
        {"weights", "T", "weight precision: f32, bf16, f16 or auto (as stored; random models: f32)", &weights_s, NULL},
        {"json", NULL, "print one JSON line", NULL, &json},
        {NULL, NULL, NULL, NULL, NULL}};
    long P = 512, N = 64, threads = 0, repeat = 2;
    bench_run_ b = {0};
    ifk_model *const m = &b.m;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow bench decode (--random-model SHAPE | --model PATH) [options]\n"
                      "Decode tokens/s after a prompt against the memory bandwidth measured in the same run.", &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (ifk_cli_int("prompt-tokens", prompt_s, 1, 1 << 24, &P) || ifk_cli_int("steps", steps_s, 1, 1 << 20, &N) ||
        ifk_cli_int("repeat", repeat_s, 1, 100, &repeat) || ifk_cli_int("threads", threads_s, 1, 1024, &threads) ||
        ifk_cli_weights(weights_s))
        goto out;
    if (bench_model_("decode", shape, model, 1, threads, m, &b.tok)) goto out;
    const long rss_kib = proc_kib_("VmRSS"); /* after load, before the cache: the weights' footprint */
    const double rss = rss_kib > 0 ? rss_kib / 1024.0 : 0;
    if (P + N > m->cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "bench decode: %ld prompt + %ld steps exceed the model's %d positions", P, N, m->cfg.seq_len);
        goto out;
    }
    b.ids = malloc(sizeof(int) * (P + N)), b.pos = malloc(sizeof(int) * (P + N)), b.logits = malloc(sizeof(float) * m->cfg.vocab_size);
    if (!b.ids || !b.pos || !b.logits) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto out;
    }
    uint64_t r = 7;
    random_ids_(&r, b.ids, P + N, 0, m->cfg.vocab_size);
    for (long i = 0; i < P + N; i++) b.pos[i] = (int)i;
    if (ifk_kvcache_init(&b.cache, &m->cfg, (int)(P + N)) != IFK_OK) goto out;
    double best = 1e30;
    for (long it = 0; it <= repeat; it++) {
        b.cache.len = 0;
        if (ifk_forward(m, &b.s, &b.cache, b.ids, b.pos, (int)P, b.logits, 0) != IFK_OK) goto out;
        double t0 = ifk_now();
        for (long i = P; i < P + N; i++) /* fixed ids: the work per token does not depend on the sampled token */
            if (ifk_forward(m, &b.s, &b.cache, b.ids + i, b.pos + i, 1, b.logits, 0) != IFK_OK) goto out;
        double dt = ifk_now() - t0;
        if (it && dt < best) best = dt;
    }
    const size_t es = ifk_wdtype_size(m->wdtype), emb = (size_t)m->cfg.vocab_size * m->cfg.dim * es;
    /* every matrix is read once per token; the embedding table only for one row unless it is the classifier */
    const double bytes = (double)(ifk_model_bytes(m) - (m->cfg.shared_classifier ? 0 : emb));
    const double tps = N / best, bw = ifk_bench_read_bandwidth((size_t)1 << 30, 1.0);
    const double got = bytes * tps / 1e9;
    if (json)
        printf("{\"model\": \"%s\", \"weights\": \"%s\", \"threads\": %d, \"prompt\": %ld, \"steps\": %ld, "
               "\"tokens_per_s\": %.2f, \"weight_bytes_per_token\": %.0f, \"weight_gbs\": %.2f, \"read_bw_gbs\": %.2f, "
               "\"ratio\": %.3f, \"resident_mb_after_load\": %.0f}\n",
               m->source, ifk_wdtype_name(m->wdtype), ifk_blas_threads(), P, N, tps, bytes, got, bw, got / bw, rss);
    else
        printf("model %s, weights %s, threads %d: %ld tokens decoded after a %ld-token prompt\n"
               "decode %.2f tokens/s (best of %ld), %.1f MB of weights per token = %.2f GB/s\n"
               "read bandwidth (1 GiB vectorized sum, same run, same threads) %.2f GB/s; ratio %.3f\n"
               "resident after loading the model %.0f MB\n",
               m->source, ifk_wdtype_name(m->wdtype), ifk_blas_threads(), N, P, tps, repeat, bytes / 1e6, got, bw, got / bw, rss);
    rc = 0;
out:
    if (rc) ifk_err_print();
    bench_run_free_(&b);
    return rc;
}

/* Opening a store and resolving a few ids to their first chunk's tokens, as a query's first step. */
static int bench_open_(int argc, char **argv) {
    const char *dir = NULL, *ids_s = NULL, *repeat_s = "20";
    int help = 0, json = 0, rc = 1;
    long repeat = 20;
    const ifk_opt opts[] = {{"store", "DIR", "the store (required)", &dir, NULL},
                            {"ids", "ID,ID,...", "the document ids to resolve (required)", &ids_s, NULL},
                            {"repeat", "R", "timed repetitions, the best is reported (default 20)", &repeat_s, NULL},
                            {"json", NULL, "one JSON line", NULL, &json},
                            {NULL, NULL, NULL, NULL, NULL}};
    char *ids = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow bench open --store DIR --ids ID,ID,... [--repeat R]\n"
                      "Time to open a store and resolve ids to records and their first chunk's tokens (best of R, "
                      "warm page cache), and the reader's memory.", &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (!dir || !ids_s) {
        IFK_FAIL(IFK_ERR_ARG, "bench open: --store DIR and --ids are required");
        goto out;
    }
    if (ifk_cli_int("repeat", repeat_s, 1, 100000, &repeat)) goto out;
    long rss0 = proc_kib_("VmRSS");
    double best = 1e30;
    int n_ids = 0, n_docs = 0;
    for (long it = 0; it <= repeat; it++) {
        double t0 = ifk_now();
        ifk_store *s = NULL;
        if (ifk_store_open(&s, dir) != IFK_OK) goto out;
        n_docs = ifk_store_manifest(s)->n_docs;
        free(ids);
        if (!(ids = strdup(ids_s))) goto out;
        n_ids = 0;
        for (char *save = NULL, *t = strtok_r(ids, ",", &save); t; t = strtok_r(NULL, ",", &save), n_ids++) {
            int d = ifk_store_find(s, t), tok[4096];
            const ifk_doc_rec *r = d >= 0 ? ifk_store_doc(s, d) : NULL;
            if (!r) {
                if (d < 0) IFK_FAIL(IFK_ERR_ARG, "%s: no document \"%s\"", dir, t);
                ifk_store_close(&s);
                goto out;
            }
            if (r->chunk_len[0] > 4096 || ifk_store_read_tokens(s, d, 0, tok) != IFK_OK) {
                ifk_store_close(&s);
                goto out;
            }
        }
        ifk_store_close(&s);
        double t1 = ifk_now();
        if (it) best = t1 - t0 < best ? t1 - t0 : best; /* the first pass warms the page cache */
    }
    long hwm = proc_kib_("VmHWM");
    if (json)
        printf("{\"store\": \"%s\", \"documents\": %d, \"ids\": %d, \"open_resolve_ms\": %.3f, \"rss_before_kib\": %ld, "
               "\"peak_rss_kib\": %ld}\n", dir, n_docs, n_ids, 1e3 * best, rss0, hwm);
    else
        printf("open %s (%d documents) and resolve %d ids to their first chunk: %.3f ms (best of %ld); process RSS "
               "%ld KiB before, peak %ld KiB\n", dir, n_docs, n_ids, 1e3 * best, repeat, rss0, hwm);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(ids);
    return rc;
}

int ifk_cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: infoflow bench prefill|decode|store|ttft|open [options]   (see infoflow bench prefill --help)\n");
        return argc < 2;
    }
    if (!strcmp(argv[1], "prefill")) return bench_prefill_(argc - 1, argv + 1);
    if (!strcmp(argv[1], "decode")) return bench_decode_(argc - 1, argv + 1);
    if (!strcmp(argv[1], "store")) return bench_store_(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ttft")) return bench_ttft_(argc - 1, argv + 1);
    if (!strcmp(argv[1], "open")) return bench_open_(argc - 1, argv + 1);
    fprintf(stderr, "infoflow: error: bench: unknown benchmark '%s' (available: prefill, decode, store, ttft, open)\n", argv[1]);
    return 1;
}
