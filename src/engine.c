/* engine.c — from a model path (or a random shape) to a model and its tokenizer (engine.h). */
#include "engine.h"

#include "hf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* An HF folder's tokenizer: tokenizer.json, else tokenizer.model (SentencePiece), else a single
 * llama2.c tok*.bin. 0 if it has none. */
static int folder_tokenizer_(const char *dir, char *out, size_t n) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
    struct stat sb;
    for (int i = 0; i < 2; i++) {
        snprintf(out, n, "%s/%s", dir, names[i]);
        if (stat(out, &sb) == 0) return 1;
    }
    if (find_bin_(dir, 1, out, n) == IFK_OK) return 1;
    ifk_err_clear();
    return 0;
}

ifk_status ifk_engine_load(const char *path, const char *tok_path, ifk_model *m, ifk_tokenizer **tok) {
    char ckpt[4096], tokf[4096];
    struct stat st;
    *tok = NULL;
    if (stat(path, &st) != 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open model: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode) && ifk_hf_is_folder(path)) {
        /* a Hugging Face folder; its tokenizer is --tokenizer, else the folder's (folder_tokenizer_) */
        IFK_CHECK(ifk_hf_load(m, path));
        if (!tok_path && !folder_tokenizer_(path, tokf, sizeof tokf)) return IFK_OK; /* token-id interfaces only */
        ifk_status s = ifk_tokenizer_load(tok, tok_path ? tok_path : tokf, m->cfg.vocab_size);
        if (s != IFK_OK) ifk_model_free(m);
        else ifk_tokenizer_set_special(*tok, m->cfg.bos_id, m->cfg.eos_id), m->tok_identity = ifk_tokenizer_identity(*tok);
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
    m->tok_identity = ifk_tokenizer_identity(*tok);
    return IFK_OK;
}

ifk_status ifk_engine_load_tokenizer(const char *path, const char *tok_path, const ifk_config *cfg, ifk_tokenizer **tok) {
    char tokf[4096];
    *tok = NULL;
    if (!tok_path) {
        if (!folder_tokenizer_(path, tokf, sizeof tokf)) return IFK_OK;
    }
    IFK_CHECK(ifk_tokenizer_load(tok, tok_path ? tok_path : tokf, cfg->vocab_size));
    ifk_tokenizer_set_special(*tok, cfg->bos_id, cfg->eos_id);
    return IFK_OK;
}

const char *ifk_engine_no_tokenizer(const char *path, char *buf, size_t n) {
    if (path) snprintf(buf, n, "%s has no tokenizer (tokenizer.json, tokenizer.model or tok*.bin)", path);
    else snprintf(buf, n, "a random model has no tokenizer");
    return buf;
}

ifk_status ifk_engine_load_any(const char *path, const char *tok_path, const char *shape, ifk_model *m,
                               ifk_tokenizer **tok) {
    *tok = NULL;
    if (path) return ifk_engine_load(path, tok_path, m, tok);
    IFK_CHECK_ARG(shape, "give a model path or a random shape");
    return ifk_model_random(m, shape, IFK_RANDOM_SEED);
}
