/* engine.c — path resolution and the generation loop. */
#include "engine.h"

#include "hf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double ifk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int ends_with_(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Finds in dir the single *.bin whose name starts (tok) or does not start (!tok) with "tok". */
static ifk_status find_bin_(const char *dir, int tok, char *out, size_t outlen) {
    DIR *d = opendir(dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open model folder: %s", dir, strerror(errno));
    int found = 0;
    char first[256] = "", second[256] = "";
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with_(e->d_name, ".bin") || (!strncmp(e->d_name, "tok", 3)) != tok) continue;
        if (found == 0) snprintf(first, sizeof first, "%s", e->d_name);
        else if (found == 1) snprintf(second, sizeof second, "%s", e->d_name);
        found++;
    }
    closedir(d);
    const char *kind = tok ? "tokenizer tok*.bin" : "checkpoint *.bin";
    if (found == 0) return IFK_FAIL(IFK_ERR_IO, "%s: no %s in the model folder", dir, kind);
    if (found > 1)
        return IFK_FAIL(IFK_ERR_ARG, "%s: %d candidates for the %s (%s, %s, ...): name the file instead", dir, found,
                        kind, first, second);
    if ((size_t)snprintf(out, outlen, "%s/%s", dir, first) >= outlen)
        return IFK_FAIL(IFK_ERR_ARG, "%s: path too long", dir);
    return IFK_OK;
}

ifk_status ifk_engine_load(const char *path, const char *tok_path, ifk_model *m, ifk_tokenizer **tok) {
    char ckpt[4096], tokf[4096];
    struct stat st;
    *tok = NULL;
    if (stat(path, &st) != 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open model: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode) && ifk_hf_is_folder(path)) {
        /* a Hugging Face folder; its tokenizer is a llama2.c tok*.bin beside config.json (or
         * --tokenizer): tokenizer.json is not read yet (docs/models.md) */
        IFK_CHECK(ifk_hf_load(m, path));
        snprintf(tokf, sizeof tokf, "%s/tokenizer.json", path);
        if (!tok_path && stat(tokf, &st) != 0 && find_bin_(path, 1, tokf, sizeof tokf) != IFK_OK) {
            ifk_err_clear();
            return IFK_OK; /* no tokenizer: token-id interfaces only */
        }
        ifk_status s = ifk_tokenizer_load(tok, tok_path ? tok_path : tokf, m->cfg.vocab_size);
        if (s != IFK_OK) ifk_model_free(m);
        else ifk_tokenizer_set_special(*tok, m->cfg.bos_id, m->cfg.eos_id);
        return s;
    }
    if (S_ISDIR(st.st_mode)) {
        IFK_CHECK(find_bin_(path, 0, ckpt, sizeof ckpt));
        if (!tok_path) IFK_CHECK(find_bin_(path, 1, tokf, sizeof tokf));
    } else {
        snprintf(ckpt, sizeof ckpt, "%s", path);
        if (!tok_path) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", path);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            else strcpy(dir, ".");
            if (find_bin_(dir, 1, tokf, sizeof tokf) != IFK_OK)
                return IFK_FAIL(IFK_ERR_ARG, "%s: no tokenizer given (--tokenizer FILE) and no single tok*.bin beside it",
                                path);
        }
    }
    if (tok_path) snprintf(tokf, sizeof tokf, "%s", tok_path);
    IFK_CHECK(ifk_model_load_llama2c(m, ckpt));
    ifk_status s = ifk_tokenizer_load(tok, tokf, m->cfg.vocab_size);
    if (s != IFK_OK) {
        ifk_model_free(m);
        return ifk_trace_at(s, __FILE__, __LINE__, __func__);
    }
    return IFK_OK;
}

ifk_status ifk_engine_load_tokenizer(const char *path, const char *tok_path, const ifk_config *cfg, ifk_tokenizer **tok) {
    char tokf[4096];
    struct stat st;
    *tok = NULL;
    if (!tok_path) {
        snprintf(tokf, sizeof tokf, "%s/tokenizer.json", path);
        if (stat(tokf, &st) != 0 && find_bin_(path, 1, tokf, sizeof tokf) != IFK_OK) {
            ifk_err_clear();
            return IFK_OK;
        }
    }
    IFK_CHECK(ifk_tokenizer_load(tok, tok_path ? tok_path : tokf, cfg->vocab_size));
    ifk_tokenizer_set_special(*tok, cfg->bos_id, cfg->eos_id);
    return IFK_OK;
}

void ifk_print_token(FILE *f, const ifk_tokenizer *t, int prev, int tok) {
    size_t n;
    const char *p = ifk_tokenizer_decode(t, prev, tok, &n);
    if (n == 1 && !isprint((unsigned char)p[0]) && !isspace((unsigned char)p[0])) return;
    fwrite(p, 1, n, f);
}

ifk_status ifk_generate(const ifk_model *m, ifk_sampler *smp, const int *ids, int n, int steps, ifk_token_fn fn,
                        void *ctx, ifk_gen_stats *stats) {
    const ifk_config *c = &m->cfg;
    if (steps <= 0 || steps > c->seq_len) steps = c->seq_len;
    IFK_CHECK_ARG(n >= 1, "empty prompt (no tokens, not even BOS)");
    IFK_CHECK_ARG(n <= c->seq_len, "prompt is %d tokens but the model has only %d positions", n, c->seq_len);
    IFK_CHECK_ARG(n <= steps, "prompt is %d tokens but --steps is %d (steps count the prompt)", n, steps);
    memset(stats, 0, sizeof *stats);
    stats->n_prompt = n;
    ifk_kvcache cache;
    ifk_state s = {0};
    IFK_CHECK(ifk_kvcache_init(&cache, c, steps));
    int *pos = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)c->vocab_size);
    ifk_status st = IFK_OK;
    if (!pos || !logits) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory for the prompt");
        goto done;
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    double t0 = ifk_now();
    IFK_CHECK_GOTO(st, ifk_forward(m, &s, &cache, ids, pos, n, logits, 0), done);
    for (int i = 0; i < n; i++) ifk_sampler_seen(smp, ids[i]); /* the repetition penalty's history */
    if (fn)
        for (int i = 1; i < n; i++) fn(ids[i - 1], ids[i], ctx);
    int prev = ids[n - 1];
    double t1 = 0;
    for (int q = n - 1;;) {
        int next = ifk_sample(smp, logits);
        if (stats->n_generated == 0) t1 = ifk_now(), stats->prefill_s = t1 - t0;
        if (ifk_config_is_stop(c, next)) break;
        stats->n_generated++;
        ifk_sampler_seen(smp, next);
        if (fn) fn(prev, next, ctx);
        prev = next;
        if (++q >= steps) break;
        IFK_CHECK_GOTO(st, ifk_forward(m, &s, &cache, &next, &q, 1, logits, 0), done);
    }
    if (t1 == 0) t1 = ifk_now(), stats->prefill_s = t1 - t0;
    stats->decode_s = ifk_now() - t1;
done:
    free(pos);
    free(logits);
    ifk_state_free(&s);
    ifk_kvcache_free(&cache);
    return st;
}

char *ifk_detokenize(const ifk_tokenizer *t, int prev, const int *ids, int n, size_t *len) {
    size_t cap = 64, l = 0;
    char *s = malloc(cap);
    for (int i = 0; s && t && i < n; i++) {
        size_t pl;
        const char *p = ifk_tokenizer_decode(t, i ? ids[i - 1] : prev, ids[i], &pl);
        if (l + pl + 1 > cap) {
            cap = 2 * (l + pl + 1);
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        memcpy(s + l, p, pl);
        l += pl;
    }
    if (s) s[l] = '\0';
    if (len) *len = l;
    return s;
}

double ifk_mem_available(void) {
    const char *e = getenv("INFOFLOW_MEM_LIMIT");
    if (e && *e) return strtod(e, NULL);
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024.0;
}
