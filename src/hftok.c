/* hftok.c — byte-level BPE from tokenizer.json (hftok.h). */
#include "hftok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <errno.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a string -> int map ------------------------------------------------------------------ */

typedef struct {
    char **key;
    int *val;
    size_t mask, n;
} smap_;

static uint64_t h_(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int smap_init_(smap_ *m, size_t want) {
    size_t cap = 16;
    while (cap < 2 * want) cap <<= 1;
    m->key = calloc(cap, sizeof(char *));
    m->val = malloc(sizeof(int) * cap);
    m->mask = cap - 1;
    m->n = 0;
    return m->key && m->val;
}

static int smap_get_(const smap_ *m, const char *k, size_t n) {
    for (size_t i = h_(k, n) & m->mask;; i = (i + 1) & m->mask) {
        if (!m->key[i]) return -1;
        if (strlen(m->key[i]) == n && !memcmp(m->key[i], k, n)) return m->val[i];
    }
}

/* Takes ownership of k. The first value of a repeated key wins. */
static void smap_put_(smap_ *m, char *k, int v) {
    size_t n = strlen(k);
    for (size_t i = h_(k, n) & m->mask;; i = (i + 1) & m->mask) {
        if (!m->key[i]) {
            m->key[i] = k, m->val[i] = v, m->n++;
            return;
        }
        if (!strcmp(m->key[i], k)) {
            free(k);
            return;
        }
    }
}

static void smap_free_(smap_ *m) {
    if (m->key)
        for (size_t i = 0; i <= m->mask; i++) free(m->key[i]);
    free(m->key), free(m->val);
    memset(m, 0, sizeof *m);
}

/* ---- the tokenizer ------------------------------------------------------------------------- */

struct ifk_hftok {
    smap_ vocab, merges;
    char **id2tok;  /* (n_ids) mapped strings; added tokens' contents */
    int n_ids;
    char **added;   /* added tokens' contents, longest first */
    int *added_id, n_added;
    pcre2_code *re; /* the pre-tokenizer's split pattern; NULL: none */
    int ignore_merges;
    uint32_t b2u[256];   /* byte -> code point */
    int16_t u2b[512];    /* code point -> byte (or -1) */
    char *dec;           /* decode buffer */
    size_t dec_cap;
};

static int utf8_put_(char *o, uint32_t c) {
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 63)), 2;
    return o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 63)), o[2] = (char)(0x80 | (c & 63)), 3;
}

void ifk_hftok_free(ifk_hftok **tp) {
    ifk_hftok *t = *tp;
    if (!t) return;
    smap_free_(&t->vocab), smap_free_(&t->merges);
    if (t->id2tok)
        for (int i = 0; i < t->n_ids; i++) free(t->id2tok[i]);
    if (t->added)
        for (int i = 0; i < t->n_added; i++) free(t->added[i]);
    free(t->id2tok), free(t->added), free(t->added_id), free(t->dec);
    if (t->re) pcre2_code_free(t->re);
    free(t);
    *tp = NULL;
}

int ifk_hftok_vocab(const ifk_hftok *t) { return t->n_ids; }

int ifk_hftok_lookup(const ifk_hftok *t, const char *piece, size_t len) { return smap_get_(&t->vocab, piece, len); }

/* Finds the Split pre-tokenizer's regex in a pre_tokenizer object (or a Sequence of them). */
static const char *find_regex_(const cJSON *pt) {
    if (!pt) return NULL;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pt, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) {
        for (const cJSON *e = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers") ? cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers")->child : NULL; e; e = e->next) {
            const char *r = find_regex_(e);
            if (r) return r;
        }
        return NULL;
    }
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Split")) {
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pt, "pattern"), "Regex");
        return cJSON_IsString(re) ? re->valuestring : NULL;
    }
    return NULL;
}

static int by_len_desc_(const void *a, const void *b) {
    size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
    return x > y ? -1 : x < y;
}

ifk_status ifk_hftok_load(ifk_hftok **tp, const char *path) {
    *tp = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open tokenizer: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len > 0 ? malloc((size_t)len + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot read", path);
    }
    fclose(f);
    buf[len] = '\0';
    cJSON *o = cJSON_Parse(buf);
    free(buf);
    ifk_status st = IFK_OK;
    ifk_hftok *t = calloc(1, sizeof *t);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model"), *mt = cJSON_GetObjectItemCaseSensitive(model, "type"),
                *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"),
                *added = cJSON_GetObjectItemCaseSensitive(o, "added_tokens");
    if (!t || !cJSON_IsObject(o) || !cJSON_IsString(mt) || strcmp(mt->valuestring, "BPE") || !cJSON_IsObject(vocab) ||
        !cJSON_IsArray(merges)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not a tokenizer.json with a BPE model (vocab, merges)", path);
        goto done;
    }
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
    int nv = cJSON_GetArraySize(vocab), na = cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0;
    if (!smap_init_(&t->vocab, (size_t)(nv + na)) || !smap_init_(&t->merges, (size_t)cJSON_GetArraySize(merges) + 1)) {
        st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    int maxid = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > (1 << 24)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: vocab entry \"%.40s\" has no valid id", path, e->string);
            goto done;
        }
        maxid = (int)e->valuedouble > maxid ? (int)e->valuedouble : maxid;
    }
    for (int i = 0; i < na; i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(added, i), "id");
        if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble <= (1 << 24))
            maxid = (int)id->valuedouble > maxid ? (int)id->valuedouble : maxid;
    }
    /* ids are dense in real tokenizers; a sparse one would make us allocate for ids nobody uses */
    if (maxid >= 2 * (nv + na) + 256) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: token ids are sparse (largest %d for %d entries)", path, maxid, nv + na);
        goto done;
    }
    t->n_ids = maxid + 1;
    t->id2tok = calloc((size_t)t->n_ids, sizeof(char *));
    t->added = calloc((size_t)(na ? na : 1), sizeof(char *));
    t->added_id = calloc((size_t)(na ? na : 1), sizeof(int));
    if (!t->id2tok || !t->added || !t->added_id) {
        st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id = (int)e->valuedouble;
        if (!t->id2tok[id]) t->id2tok[id] = strdup(e->string);
        smap_put_(&t->vocab, strdup(e->string), id);
    }
    for (int i = 0; i < na; i++) {
        const cJSON *a = cJSON_GetArrayItem(added, i), *c = cJSON_GetObjectItemCaseSensitive(a, "content"),
                    *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(c) || !cJSON_IsNumber(id) || !c->valuestring[0] || id->valuedouble < 0 ||
            id->valuedouble >= t->n_ids || id->valuedouble != (double)(int)id->valuedouble) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: added token %d has no content or no valid id", path, i);
            goto done;
        }
        t->added[t->n_added] = strdup(c->valuestring);
        t->added_id[t->n_added++] = (int)id->valuedouble;
        free(t->id2tok[(int)id->valuedouble]);
        t->id2tok[(int)id->valuedouble] = strdup(c->valuestring);
        smap_put_(&t->vocab, strdup(c->valuestring), (int)id->valuedouble);
    }
    /* longest first, so that a token that contains another wins: keep ids aligned */
    for (int i = 1; i < t->n_added; i++)
        for (int j = i; j > 0 && strlen(t->added[j]) > strlen(t->added[j - 1]); j--) {
            char *s = t->added[j]; t->added[j] = t->added[j - 1]; t->added[j - 1] = s;
            int x = t->added_id[j]; t->added_id[j] = t->added_id[j - 1]; t->added_id[j - 1] = x;
        }
    (void)by_len_desc_;
    int rank = 0;
    for (const cJSON *e = merges->child; e; e = e->next, rank++) {
        char *k = NULL;
        if (cJSON_IsString(e)) k = strdup(e->valuestring);
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
            size_t a = strlen(e->child->valuestring), b = strlen(e->child->next->valuestring);
            k = malloc(a + b + 2);
            if (k) memcpy(k, e->child->valuestring, a), k[a] = ' ', memcpy(k + a + 1, e->child->next->valuestring, b + 1);
        }
        if (!k || !strchr(k, ' ')) {
            free(k);
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: merge %d is not \"a b\" or [a, b]", path, rank);
            goto done;
        }
        smap_put_(&t->merges, k, rank);
    }
    const char *re = find_regex_(cJSON_GetObjectItemCaseSensitive(o, "pre_tokenizer"));
    if (re) {
        int err;
        PCRE2_SIZE off;
        t->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                              &off, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: pre-tokenizer regex does not compile at %zu: %s", path, (size_t)off, msg);
            goto done;
        }
    }
    /* GPT-2's byte <-> unicode table: printable bytes map to themselves, the rest to 256.. */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int i = 0; i < 512; i++) t->u2b[i] = -1;
    for (int b = 0; b < 256; b++) t->u2b[t->b2u[b]] = (int16_t)b;
done:
    cJSON_Delete(o);
    if (st != IFK_OK) ifk_hftok_free(&t);
    *tp = t;
    return st;
}

static ifk_status push_(int **ids, int *n, int *cap, int id) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        int *p = realloc(*ids, sizeof(int) * (size_t)*cap);
        if (!p) return IFK_FAIL(IFK_ERR_OOM, "out of memory tokenizing");
        *ids = p;
    }
    (*ids)[(*n)++] = id;
    return IFK_OK;
}

/* BPE over one pre-tokenized piece: bytes mapped to code points, then the lowest-ranked
 * adjacent merge (leftmost on ties) applied until none remains. */
static ifk_status bpe_(const ifk_hftok *t, const char *p, size_t len, int **ids, int *n, int *cap) {
    char *m = malloc(3 * len + 1);
    int *st = malloc(sizeof(int) * (len + 1)), *ln = malloc(sizeof(int) * (len + 1));
    char *key = malloc(6 * len + 2);
    ifk_status s = IFK_OK;
    if (!m || !st || !ln || !key) { s = IFK_FAIL(IFK_ERR_OOM, "out of memory tokenizing"); goto done; }
    size_t ml = 0;
    int ns = 0;
    for (size_t i = 0; i < len; i++) {
        st[ns] = (int)ml;
        ln[ns] = utf8_put_(m + ml, t->b2u[(unsigned char)p[i]]);
        ml += (size_t)ln[ns++];
    }
    int whole = t->ignore_merges ? smap_get_(&t->vocab, m, ml) : -1;
    if (whole >= 0) { s = push_(ids, n, cap, whole); goto done; }
    for (;;) {
        int best = -1, bi = -1;
        for (int i = 0; i + 1 < ns; i++) {
            memcpy(key, m + st[i], (size_t)ln[i]);
            key[ln[i]] = ' ';
            memcpy(key + ln[i] + 1, m + st[i + 1], (size_t)ln[i + 1]);
            int r = smap_get_(&t->merges, key, (size_t)(ln[i] + 1 + ln[i + 1]));
            if (r >= 0 && (best < 0 || r < best)) best = r, bi = i;
        }
        if (bi < 0) break;
        ln[bi] += ln[bi + 1]; /* adjacent in m: merging is extending the span */
        memmove(st + bi + 1, st + bi + 2, sizeof(int) * (size_t)(ns - bi - 2));
        memmove(ln + bi + 1, ln + bi + 2, sizeof(int) * (size_t)(ns - bi - 2));
        ns--;
    }
    for (int i = 0; s == IFK_OK && i < ns; i++) {
        int id = smap_get_(&t->vocab, m + st[i], (size_t)ln[i]);
        if (id < 0) s = IFK_FAIL(IFK_ERR_FORMAT, "tokenizer.json: no vocabulary entry for a byte-level piece");
        else s = push_(ids, n, cap, id);
    }
done:
    free(m), free(st), free(ln), free(key);
    return s;
}

/* Splits text (no added tokens in it) with the regex, Isolated: matches and the gaps between them. */
static ifk_status pretok_(const ifk_hftok *t, const char *text, size_t len, int **ids, int *n, int *cap) {
    if (!len) return IFK_OK;
    if (!t->re) return bpe_(t, text, len, ids, n, cap);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    size_t pos = 0, gap = 0;
    ifk_status s = IFK_OK;
    while (s == IFK_OK && pos <= len) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (e == b) { /* an empty match: step one character on */
            pos = b + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (b > gap) s = bpe_(t, text + gap, b - gap, ids, n, cap);
        if (s == IFK_OK) s = bpe_(t, text + b, e - b, ids, n, cap);
        gap = pos = e;
    }
    if (s == IFK_OK && gap < len) s = bpe_(t, text + gap, len - gap, ids, n, cap);
    pcre2_match_data_free(md);
    return s;
}

ifk_status ifk_hftok_encode(const ifk_hftok *t, const char *text, size_t len, int **ids, int *n, int *cap) {
    size_t p = 0;
    while (p < len) {
        /* the earliest added token from p (the longest at that place) */
        size_t best = len, blen = 0;
        int bid = -1;
        for (int i = 0; i < t->n_added; i++) {
            size_t al = strlen(t->added[i]);
            const char *hit = NULL;
            for (const char *q = text + p; q + al <= text + len; q++) {
                q = memchr(q, t->added[i][0], (size_t)(text + len - q));
                if (!q || q + al > text + len) break;
                if (!memcmp(q, t->added[i], al)) { hit = q; break; }
            }
            if (hit && ((size_t)(hit - text) < best || ((size_t)(hit - text) == best && al > blen)))
                best = (size_t)(hit - text), blen = al, bid = t->added_id[i];
        }
        IFK_CHECK(pretok_(t, text + p, best - p, ids, n, cap));
        if (bid < 0) break;
        IFK_CHECK(push_(ids, n, cap, bid));
        p = best + blen;
    }
    return IFK_OK;
}

const char *ifk_hftok_decode(ifk_hftok *t, int id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_ids || !t->id2tok[id]) return "";
    const char *s = t->id2tok[id];
    for (int i = 0; i < t->n_added; i++)
        if (t->added_id[i] == id) return *len = strlen(s), s;
    size_t sl = strlen(s);
    if (sl + 1 > t->dec_cap) {
        char *d = realloc(t->dec, sl + 1);
        if (!d) return "";
        t->dec = d, t->dec_cap = sl + 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < sl;) { /* each code point back to its byte */
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + k > sl) k = sl - i; /* a truncated sequence (vocab keys are not validated): raw */
        uint32_t cp = 0xFFFFFFFFu;
        if (k == 1 && c < 0x80) cp = c;
        else if (k == 2 && c >= 0xC0 && c < 0xE0) cp = (uint32_t)(c & 31) << 6 | ((unsigned char)s[i + 1] & 63);
        else if (k == 3 && c >= 0xE0 && c < 0xF0)
            cp = (uint32_t)(c & 15) << 12 | (uint32_t)((unsigned char)s[i + 1] & 63) << 6 | ((unsigned char)s[i + 2] & 63);
        if (cp >= 512 || t->u2b[cp] < 0) { /* not a byte-level symbol: keep as is */
            memcpy(t->dec + o, s + i, k);
            o += k;
        } else {
            t->dec[o++] = (char)t->u2b[cp];
        }
        i += k;
    }
    *len = o;
    return t->dec;
}
