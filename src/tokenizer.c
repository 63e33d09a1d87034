/* tokenizer.c — llama2.c's tokenizer: loading, encoding (heap and naive), decoding. */
#include "tokenizer.h"

#include "heap.h"
#include "hftok.h"
#include "jfield.h"
#include "strmap.h"
#include "sys.h"
#include "spmodel.h"
#include "sys.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ifk_tokenizer {
    ifk_hftok *hf;       /* a tokenizer.json: everything below is unused */
    ifk_spm *spm;        /* or a SentencePiece tokenizer.model */
    struct { char *p; size_t cap; } *sbuf; /* its decode buffer */
    int hf_bos, hf_eos;  /* BOS/EOS of either (from the model's config; a .json's own BOS when it has
                          * one): decoding drops the leading space after hf_bos */
    int add_bos;         /* the id encoding puts first (bos=1): a .model's hf_bos; a .json's from
                          * tokenizer_config.json / tokenizer.json (check_config_), -1: none */
    int bos_set;         /* add_bos settled by tokenizer_config.json's add_bos_token (kept by set_special) */
    uint64_t identity;   /* hash of the file's bytes */
    int n;               /* pieces */
    int max_len;         /* longest piece, from the file header */
    char **piece;        /* (n) NUL-terminated */
    int *plen;           /* (n) C-string length, as llama2.c sees the piece */
    float *score;        /* (n) */
    ifk_strmap *ids;     /* piece -> its first id */
    int byte0;           /* id of <0x00>; byte b falls back to byte0 + b */
    int space;           /* id of " " or -1 */
    unsigned char bytes[512]; /* decoded byte pieces, 2 per byte: b, NUL */
};

int ifk_tokenizer_lookup(const ifk_tokenizer *t, const char *s, size_t n) {
    if (t->hf) return ifk_hftok_lookup(t->hf, s, n);
    if (t->spm) return ifk_spm_lookup(t->spm, s, n);
    int id;
    return ifk_strmap_get(t->ids, s, n, &id) ? id : -1;
}

void ifk_tokenizer_free(ifk_tokenizer **tp) {
    ifk_tokenizer *t = *tp;
    if (!t) return;
    ifk_hftok_free(&t->hf);
    ifk_spm_free(&t->spm);
    if (t->sbuf) free(t->sbuf->p);
    free(t->sbuf);
    if (t->piece)
        for (int i = 0; i < t->n; i++) free(t->piece[i]);
    free(t->piece);
    free(t->plen);
    free(t->score);
    ifk_strmap_free(&t->ids);
    free(t);
    *tp = NULL;
}

/* FNV-1a over the file's bytes (0 if it cannot be read). */
static uint64_t file_hash_(const char *path) {
    char *b;
    size_t n;
    if (ifk_read_file(path, (size_t)1 << 30, &b, &n) != IFK_OK) {
        ifk_err_clear();
        return 0;
    }
    uint64_t h = ifk_fnv1a(b, n);
    free(b);
    return h;
}

uint64_t ifk_tokenizer_identity(const ifk_tokenizer *t) { return t ? t->identity : 0; }

/* The token a tokenizer_config.json field names: a string, an AddedToken object's "content", or
 * NULL for null/absent (*bad set when it is something else). */
static const char *token_name_(const cJSON *v, int *bad) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "content") : NULL;
    if (cJSON_IsString(c)) return c->valuestring;
    *bad = v && !cJSON_IsNull(v);
    return NULL;
}

/* tokenizer_config.json beside a tokenizer.json (or a tokenizer.model): the settings that would change the ids and are
 * not implemented are refused by name, and the BOS rule is settled (docs/models.md, "tokenizer.json
 * fields"): add_bos_token, when present, decides with bos_token (transformers 5's tokenizers
 * backend rebuilds the template from them, as transformers 4's LlamaTokenizerFast always does);
 * absent, tokenizer.json's post_processor decides. A LlamaTokenizer(Fast) class without
 * add_bos_token, where transformers 4 (BOS by default) and 5 (the post_processor) would disagree, is
 * refused. Sets t->add_bos: the id encoding puts before a prompt, or -1. A .model (transformers'
 * slow LlamaTokenizer) has no post_processor: without add_bos_token it keeps the config's BOS. */
static ifk_status check_config_(ifk_tokenizer *t, const char *tok_path) {
    char p[4096];
    const char *slash = strrchr(tok_path, '/');
    int dl = slash ? (int)(slash - tok_path) : 1;
    snprintf(p, sizeof p, "%.*s/tokenizer_config.json", dl, slash ? tok_path : ".");
    if (t->hf) t->add_bos = ifk_hftok_bos(t->hf);
    if (access(p, F_OK) != 0) return IFK_OK;
    cJSON *o;
    IFK_CHECK(ifk_json_file(p, 64u << 20, &o));
    static const char *const refused[][2] = {
        {"add_eos_token", "EOS is added only where a command needs it"},
        {"split_special_tokens", "special tokens in the text are always kept whole"},
        {"add_prefix_space", "the tokenizer.json's own pre-tokenizer decides"},
        {"do_lower_case", "no lowercasing is done"},
    };
    ifk_status st = IFK_OK;
    for (size_t i = 0; st == IFK_OK && i < sizeof refused / sizeof *refused; i++) {
        int on; /* null is Python's None: not set */
        st = ifk_jbool(o, refused[i][0], IFK_J_NULL, p, NULL, 0, &on);
        if (st == IFK_OK && on)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s true is not supported (%s)", p, refused[i][0], refused[i][1]);
    }
    const cJSON *ab = NULL, *cls = NULL, *bt = cJSON_GetObjectItemCaseSensitive(o, "bos_token");
    if (st == IFK_OK) st = ifk_jfield(o, "add_bos_token", IFK_J_BOOL, p, NULL, &ab);
    if (st == IFK_OK) st = ifk_jfield(o, "tokenizer_class", IFK_J_STR | IFK_J_NULL, p, NULL, &cls);
    int bad = 0;
    const char *bos = token_name_(bt, &bad);
    int bos_id = bos ? ifk_tokenizer_lookup(t, bos, strlen(bos)) : -1;
    char *js = bt ? cJSON_PrintUnformatted(bt) : NULL;
    if (st != IFK_OK) {
    } else if (bad || (bos && bos_id < 0)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bos_token %.80s is not a token of %s", p, js ? js : "?", tok_path);
    } else if (cJSON_IsTrue(ab) && !bos) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: add_bos_token true but bos_token is %s (transformers 4 refuses it, 5 adds "
                      "nothing)", p, js ? js : "absent");
    } else if (ab) {
        t->add_bos = cJSON_IsTrue(ab) ? bos_id : -1;
        t->bos_set = 1;
    } else if (t->hf && cJSON_IsString(cls) && !strncmp(cls->valuestring, "LlamaTokenizer", 14) &&
               t->add_bos != (bos ? bos_id : ifk_hftok_lookup(t->hf, "<s>", 3))) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: add_bos_token absent with tokenizer_class \"%s\": transformers 4 adds "
                      "bos_token, 5 follows %s's post_processor, and they differ here (set add_bos_token)", p,
                      cls->valuestring, tok_path);
    }
    free(js);
    cJSON_Delete(o);
    return st;
}

static int ends_(const char *p, const char *suffix) {
    size_t n = strlen(p), k = strlen(suffix);
    return n >= k && !strcmp(p + n - k, suffix);
}

/* A SentencePiece .model through libsentencepiece; BOS/EOS default to the model's own. */
static ifk_status load_spm_(ifk_tokenizer **tp, const char *path, int expect_vocab) {
    ifk_tokenizer *t = ifk_calloc(1, sizeof *t, "tokenizer");
    if (!t || !(t->sbuf = ifk_calloc(1, sizeof *t->sbuf, "decode buffer"))) {
        ifk_tokenizer_free(&t);
        return IFK_ERR_OOM;
    }
    ifk_status st = ifk_spm_load(&t->spm, path);
    if (st == IFK_OK && expect_vocab > 0 && ifk_spm_vocab(t->spm) > expect_vocab)
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokenizer has %d pieces but the model's vocabulary is %d", path,
                      ifk_spm_vocab(t->spm), expect_vocab);
    if (st != IFK_OK) {
        ifk_tokenizer_free(&t);
        return st;
    }
    t->hf_bos = t->add_bos = ifk_spm_bos(t->spm), t->hf_eos = ifk_spm_eos(t->spm);
    if ((st = check_config_(t, path)) != IFK_OK) {
        ifk_tokenizer_free(&t);
        return st;
    }
    for (int b = 0; b < 256; b++) t->bytes[2 * b] = (unsigned char)b, t->bytes[2 * b + 1] = 0;
    t->identity = file_hash_(path);
    *tp = t;
    return IFK_OK;
}

ifk_status ifk_tokenizer_load(ifk_tokenizer **tp, const char *path, int expect_vocab) {
    *tp = NULL;
    if (ends_(path, ".model")) return load_spm_(tp, path, expect_vocab);
    if (ends_(path, ".json")) {
        ifk_tokenizer *t = ifk_calloc(1, sizeof *t, "tokenizer");
        if (!t) return IFK_ERR_OOM;
        t->hf_bos = 1, t->hf_eos = 2;
        ifk_status st = ifk_hftok_load(&t->hf, path);
        if (st == IFK_OK) st = check_config_(t, path);
        if (st == IFK_OK && t->add_bos >= 0) t->hf_bos = t->add_bos;
        if (st == IFK_OK && expect_vocab > 0 && ifk_hftok_vocab(t->hf) > expect_vocab)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokenizer has %d ids but the model's vocabulary is %d", path,
                          ifk_hftok_vocab(t->hf), expect_vocab);
        if (st != IFK_OK) {
            ifk_tokenizer_free(&t);
            return st;
        }
        t->identity = file_hash_(path);
        *tp = t;
        return IFK_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open tokenizer: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return IFK_FAIL(IFK_ERR_IO, "%s: is a directory, not a tokenizer file", path);
    }
    ifk_status st = IFK_OK;
    ifk_tokenizer *t = ifk_calloc(1, sizeof *t, "tokenizer");
    if (!t) { fclose(f); return IFK_ERR_OOM; }
    int32_t maxlen;
    if (fread(&maxlen, 4, 1, f) != 1) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: empty or truncated (no header)", path);
        goto fail;
    }
    if (maxlen <= 0 || maxlen > 65536) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: max_token_length %d is out of range (1..65536)",
                      path, maxlen);
        goto fail;
    }
    t->max_len = maxlen;
    int cap = 0;
    for (;;) {
        float sc;
        int32_t len;
        size_t r = fread(&sc, 1, 4, f); /* bytes: a file cut inside a score is truncated, not ended */
        if (r == 0 && feof(f)) break;
        if (r != 4 || fread(&len, 4, 1, f) != 1) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: piece %d: truncated entry header", path, t->n);
            goto fail;
        }
        if (len < 0 || len > maxlen || !isfinite(sc)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: piece %d: length %d (max %d) or score %g is invalid", path, t->n, len,
                          maxlen, sc);
            goto fail;
        }
        if (expect_vocab > 0 && t->n >= expect_vocab) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokenizer holds more than the model's %d pieces", path, expect_vocab);
            goto fail;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **np = realloc(t->piece, sizeof(char *) * cap);
            if (np) t->piece = np;
            float *ns = realloc(t->score, sizeof(float) * cap);
            if (ns) t->score = ns;
            int *nl = realloc(t->plen, sizeof(int) * cap);
            if (nl) t->plen = nl;
            if (!np || !ns || !nl) { st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path); goto fail; }
        }
        char *p = malloc((size_t)len + 1);
        if (!p) { st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path); goto fail; }
        t->piece[t->n++] = p;
        if (len && fread(p, 1, (size_t)len, f) != (size_t)len) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: piece %d: truncated bytes", path, t->n - 1);
            goto fail;
        }
        p[len] = '\0';
        t->score[t->n - 1] = sc;
        t->plen[t->n - 1] = (int)strlen(p); /* llama2.c handles pieces as C strings */
    }
    if (t->n == 0) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: bad tokenizer file: no pieces", path); goto fail; }
    if (expect_vocab > 0 && t->n != expect_vocab) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokenizer holds %d pieces but the model's vocabulary is %d", path, t->n, expect_vocab);
        goto fail;
    }
    IFK_CHECK_GOTO(st, ifk_strmap_create(&t->ids, (size_t)t->n), fail);
    for (int id = 0; id < t->n; id++) {
        if (ifk_tokenizer_lookup(t, t->piece[id], t->plen[id]) >= 0) continue; /* first id of a duplicate wins */
        IFK_CHECK_GOTO(st, ifk_strmap_put(t->ids, t->piece[id], (size_t)t->plen[id], id), fail);
    }
    t->byte0 = ifk_tokenizer_lookup(t, "<0x00>", 6);
    if (t->byte0 < 0 || t->byte0 + 255 >= t->n) t->byte0 = 3; /* llama2.c's fixed offset */
    t->space = ifk_tokenizer_lookup(t, " ", 1);
    for (int b = 0; b < 256; b++) t->bytes[2 * b] = (unsigned char)b, t->bytes[2 * b + 1] = 0;
    fclose(f);
    t->identity = file_hash_(path);
    *tp = t;
    return IFK_OK;
fail:
    fclose(f);
    ifk_tokenizer_free(&t);
    return st;
}

int ifk_tokenizer_vocab(const ifk_tokenizer *t) { return t->hf ? ifk_hftok_vocab(t->hf) : t->spm ? ifk_spm_vocab(t->spm) : t->n; }

void ifk_tokenizer_set_special(ifk_tokenizer *t, int bos, int eos) {
    if (t->spm && !t->bos_set) t->add_bos = bos; /* a tokenizer.json settles what it adds itself (check_config_) */
    if (!t->hf || t->add_bos < 0) t->hf_bos = bos;
    t->hf_eos = eos;
}

int ifk_tokenizer_bos(const ifk_tokenizer *t) { return t->hf || t->spm ? t->add_bos : 1; }

const char *ifk_tokenizer_piece(const ifk_tokenizer *t, int tok) {
    if (t->hf || t->spm) return "";
    return tok >= 0 && tok < t->n ? t->piece[tok] : "";
}

/* ---- encoding ----------------------------------------------------------------------------------- */

/* BOS, dummy prefix and UTF-8 characters (or their bytes) before any merge, as llama2.c does:
 * a character is a lead byte plus at most 3 continuation bytes. Returns the count in ids. */
static int initial_pieces_(const ifk_tokenizer *t, const char *text, size_t len, int bos, int *ids) {
    int n = 0;
    if (bos) ids[n++] = 1;
    if (len && text[0] != '\0' && t->space >= 0) ids[n++] = t->space;
    size_t i = 0;
    while (i < len && text[i] != '\0') {
        size_t j = i + 1;
        while (j < len && ((unsigned char)text[j] & 0xC0) == 0x80 && j - i < 4) j++;
        int id = ifk_tokenizer_lookup(t, text + i, j - i);
        if (id >= 0) {
            ids[n++] = id;
        } else {
            for (size_t k = i; k < j; k++) {
                int b = t->byte0 + (unsigned char)text[k];
                ids[n++] = b < t->n ? b : 0;
            }
        }
        i = j;
    }
    return n;
}

/* Id of the piece left+right, or -1; its score must beat llama2.c's floor of -1e10. */
static int pair_(const ifk_tokenizer *t, int a, int b, char *buf) {
    size_t la = t->plen[a], lb = t->plen[b];
    if (la + lb > (size_t)t->max_len) return -1;
    memcpy(buf, t->piece[a], la);
    memcpy(buf + la, t->piece[b], lb);
    int id = ifk_tokenizer_lookup(t, buf, la + lb);
    return id >= 0 && t->score[id] > -1e10f ? id : -1;
}

static ifk_status encode_hf_(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos, int **out, int *nout);

static ifk_status finish_(int *ids, int n, int eos, int **out, int *nout) {
    if (eos) ids[n++] = 2;
    *out = ids;
    *nout = n;
    return IFK_OK;
}

ifk_status ifk_tokenizer_encode_naive(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                      int **out, int *nout) {
    if (t->hf || t->spm) return encode_hf_(t, text, len, bos, eos, out, nout);
    int *ids = ifk_malloc(sizeof(int) * (len + 3), "token ids");
    char *buf = ifk_malloc(2 * (size_t)t->max_len + 2, "merge buffer");
    if (!ids || !buf) { free(ids); free(buf); return IFK_ERR_OOM; }
    int n = initial_pieces_(t, text, len, bos, ids);
    for (;;) {
        float best = -1e10f;
        int bi = -1, bid = -1;
        for (int i = 0; i + 1 < n; i++) {
            int id = pair_(t, ids[i], ids[i + 1], buf);
            if (id >= 0 && t->score[id] > best) best = t->score[id], bi = i, bid = id;
        }
        if (bi < 0) break;
        ids[bi] = bid;
        memmove(ids + bi + 1, ids + bi + 2, sizeof(int) * (size_t)(n - bi - 2));
        n--;
    }
    free(buf);
    return finish_(ids, n, eos, out, nout);
}

/* Heap merge: symbols form a linked list in text order; the heap holds candidate pairs ordered
 * by (score desc, left index asc), which is the naive loop's choice (highest score, leftmost).
 * Stale entries (a side already merged away) are skipped when popped. */
typedef struct {
    float score;
    int left, right, lid, rid, merged;
} cand_;

static int better_(const void *pa, const void *pb) {
    const cand_ *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

/* tokenizer.json or .model: optional BOS, the file's own ids (its dummy prefix included), optional EOS */
static ifk_status encode_hf_(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos, int **out, int *nout) {
    int *ids = NULL, n = 0, cap = 0;
    ifk_status st = IFK_OK;
    if (bos && t->add_bos >= 0) {
        cap = 64;
        ids = malloc(sizeof(int) * (size_t)cap);
        if (!ids) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ids[n++] = t->add_bos;
    }
    st = t->hf ? ifk_hftok_encode(t->hf, text, len, &ids, &n, &cap) : ifk_spm_encode(t->spm, text, len, &ids, &n, &cap);
    if (st == IFK_OK && eos) {
        int *p = realloc(ids, sizeof(int) * (size_t)(n + 1));
        if (!p) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        else ids = p, ids[n++] = t->hf_eos;
    }
    if (st == IFK_OK && !ids) ids = malloc(sizeof(int));
    if (st != IFK_OK) { free(ids); return st; }
    *out = ids;
    *nout = n;
    return IFK_OK;
}

ifk_status ifk_tokenizer_encode(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos, int **out,
                                int *nout) {
    if (t->hf || t->spm) return encode_hf_(t, text, len, bos, eos, out, nout);
    int *ids = ifk_malloc(sizeof(int) * (len + 3), "token ids");
    int *nx = ifk_malloc(sizeof(int) * (len + 3), "merge links");
    int *pv = ifk_malloc(sizeof(int) * (len + 3), "merge links");
    cand_ *h = ifk_malloc(sizeof(cand_) * (3 * len + 10), "merge heap"); /* n-1 pairs + 2 per merge */
    char *buf = ifk_malloc(2 * (size_t)t->max_len + 2, "merge buffer");
    if (!ids || !nx || !pv || !h || !buf) {
        free(ids); free(nx); free(pv); free(h); free(buf);
        return IFK_ERR_OOM;
    }
    int n = initial_pieces_(t, text, len, bos, ids);
    ifk_heap hp = {h, sizeof(cand_), 0, better_};
    for (int i = 0; i < n; i++) nx[i] = i + 1 < n ? i + 1 : -1, pv[i] = i - 1;
    for (int i = 0; i + 1 < n; i++) {
        int id = pair_(t, ids[i], ids[i + 1], buf);
        if (id >= 0) ifk_heap_push(&hp, &(cand_){t->score[id], i, i + 1, ids[i], ids[i + 1], id});
    }
    while (hp.n > 0) {
        cand_ c;
        ifk_heap_pop(&hp, &c);
        if (ids[c.left] != c.lid || nx[c.left] != c.right || ids[c.right] != c.rid) continue;
        ids[c.left] = c.merged;
        ids[c.right] = -1;
        nx[c.left] = nx[c.right];
        if (nx[c.right] >= 0) pv[nx[c.right]] = c.left;
        int p = pv[c.left], q = nx[c.left], id;
        if (p >= 0 && (id = pair_(t, ids[p], ids[c.left], buf)) >= 0)
            ifk_heap_push(&hp, &(cand_){t->score[id], p, c.left, ids[p], ids[c.left], id});
        if (q >= 0 && (id = pair_(t, ids[c.left], ids[q], buf)) >= 0)
            ifk_heap_push(&hp, &(cand_){t->score[id], c.left, q, ids[c.left], ids[q], id});
    }
    int m = 0;
    for (int i = 0; i >= 0 && i < n; i = nx[i]) ids[m++] = ids[i];
    free(nx); free(pv); free(h); free(buf);
    return finish_(ids, m, eos, out, nout);
}

/* ---- decoding ----------------------------------------------------------------------------------- */

/* A .model's piece: control pieces are nothing, the unknown piece is SentencePiece's " ⁇ ", a byte
 * piece its byte, "▁" a space; the text's first space is dropped (its dummy prefix). */
static const char *decode_spm_(const ifk_tokenizer *t, int prev, int tok, size_t *len) {
    int kind;
    const char *p = ifk_spm_piece(t->spm, tok, &kind);
    unsigned int b;
    char close;
    *len = 0;
    if (kind == 2) return "";
    if (kind == 3) return *len = 5, " \xe2\x81\x87 ";
    if (kind == 1 && sscanf(p, "<0x%02X%c", &b, &close) == 2 && close == '>' && b < 256)
        return *len = 1, (const char *)t->bytes + 2 * b;
    size_t n = strlen(p);
    if (n + 1 > t->sbuf->cap) {
        char *q = realloc(t->sbuf->p, n + 1);
        if (!q) return "";
        t->sbuf->p = q, t->sbuf->cap = n + 1;
    }
    char *o = t->sbuf->p;
    for (size_t i = 0; i < n;)
        if (!strncmp(p + i, "\xe2\x96\x81", 3)) o[(*len)++] = ' ', i += 3;
        else o[(*len)++] = p[i++];
    if ((prev < 0 || prev == t->hf_bos) && *len && o[0] == ' ') return (*len)--, o + 1;
    return o;
}

const char *ifk_tokenizer_decode(const ifk_tokenizer *t, int prev, int tok, size_t *len) {
    if (t->hf) return ifk_hftok_decode(t->hf, tok, prev < 0 || prev == t->hf_bos, len);
    if (t->spm) return decode_spm_(t, prev, tok, len);
    if (tok < 0 || tok >= t->n) { *len = 0; return ""; }
    const char *p = t->piece[tok];
    size_t n = t->plen[tok];
    if (prev == 1 && p[0] == ' ') p++, n--;
    unsigned int b;
    char close;
    if (n == 6 && sscanf(p, "<0x%02X%c", &b, &close) == 2 && close == '>' && b < 256) {
        *len = 1;
        return (const char *)t->bytes + 2 * b;
    }
    *len = n;
    return p;
}

void ifk_print_token(FILE *f, const ifk_tokenizer *t, int prev, int tok) {
    size_t n;
    const char *p = ifk_tokenizer_decode(t, prev, tok, &n);
    if (n == 1 && !isprint((unsigned char)p[0]) && !isspace((unsigned char)p[0])) return;
    fwrite(p, 1, n, f);
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
