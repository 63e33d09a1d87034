/* hftok.c — BPE from tokenizer.json, byte-level and SentencePiece kinds (hftok.h). */
#include "hftok.h"
#include "heap.h"
#include "jfield.h"
#include "json.h"
#include "strmap.h"
#include "sys.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <errno.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- vocabulary and merges: the one string map (strmap.h) ------------------------------------- */

static int smap_get_(const ifk_strmap *m, const char *k, size_t n) {
    int v;
    return ifk_strmap_get(m, k, n, &v) ? v : -1;
}

/* Frees k; the first value of a repeated key wins (the map keeps its own copy of the key). */
static ifk_status smap_put_(ifk_strmap *m, char *k, int v) {
    if (!k) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_status st = smap_get_(m, k, strlen(k)) >= 0 ? IFK_OK : ifk_strmap_put(m, k, strlen(k), v);
    free(k);
    return st;
}

/* ---- the tokenizer ------------------------------------------------------------------------- */

#define MAX_STEPS 8
#define MAX_RE 4
enum { N_PREPEND, N_REPLACE, N_NFC };                      /* normalizer steps */
enum { D_REPLACE, D_BYTEFALLBACK, D_STRIP, D_BYTELEVEL };  /* decoder steps, applied to each token */

typedef struct {
    int kind;
    char *a, *b; /* Prepend: a; Replace: a -> b; Strip: a[0], n times */
    int n;
} step_;

struct ifk_hftok {
    ifk_strmap *vocab, *merges;
    char **id2tok;  /* (n_ids) mapped strings; added tokens' contents */
    int n_ids;
    char **added;   /* added tokens' contents, longest first */
    int *added_id, n_added;
    step_ norm[MAX_STEPS], dec[MAX_STEPS];
    int n_norm, n_dec;
    pcre2_code *re[MAX_RE]; /* the pre-tokenizer's split patterns, applied in turn */
    int n_re;
    int bytelevel;          /* a ByteLevel pre-tokenizer: bytes mapped to code points before BPE */
    char *ms;               /* a Metaspace pre-tokenizer's replacement for " ", or NULL */
    int ms_prepend;         /* ... and when it is prepended: 0 never, 1 first section, 2 always */
    int ignore_merges, byte_fallback, fuse_unk, unk_id;
    int byte_id[256];       /* id of the piece <0xNN>, or -1 */
    int strip_first;        /* the decoder removes up to this many strip_c from the start of the text */
    int bos;                /* the id the post_processor puts before a single sequence, or -1 */
    char strip_c;
    uint32_t b2u[256];      /* byte -> code point */
    int16_t u2b[512];       /* code point -> byte (or -1) */
    char *path;             /* the file, for messages when encoding */
    char *buf[2];           /* decode buffers */
    size_t buf_cap[2];
};

static int utf8_put_(char *o, uint32_t c) {
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 63)), 2;
    return o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 63)), o[2] = (char)(0x80 | (c & 63)), 3;
}

/* Length of the UTF-8 character at s[0] (1 for a stray byte), within n bytes. */
static size_t u8len_(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    size_t want = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, k = 1;
    while (k < want && k < n && ((unsigned char)s[k] & 0xC0) == 0x80) k++;
    return k;
}

void ifk_hftok_free(ifk_hftok **tp) {
    ifk_hftok *t = *tp;
    if (!t) return;
    ifk_strmap_free(&t->vocab), ifk_strmap_free(&t->merges);
    if (t->id2tok)
        for (int i = 0; i < t->n_ids; i++) free(t->id2tok[i]);
    if (t->added)
        for (int i = 0; i < t->n_added; i++) free(t->added[i]);
    for (int i = 0; i < MAX_STEPS; i++) free(t->norm[i].a), free(t->norm[i].b), free(t->dec[i].a), free(t->dec[i].b);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t->id2tok), free(t->added), free(t->added_id), free(t->ms), free(t->path), free(t->buf[0]), free(t->buf[1]);
    free(t);
    *tp = NULL;
}

int ifk_hftok_vocab(const ifk_hftok *t) { return t->n_ids; }

int ifk_hftok_bos(const ifk_hftok *t) { return t->bos; }

int ifk_hftok_lookup(const ifk_hftok *t, const char *piece, size_t len) { return smap_get_(t->vocab, piece, len); }

/* ---- reading the components: each is implemented or refused by name -------------------------- */

static const cJSON *get_(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *str_(const cJSON *o, const char *k) {
    const cJSON *v = get_(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static int is_(const cJSON *o, const char *type) {
    const char *ty = str_(o, "type");
    return ty && !strcmp(ty, type);
}

/* "<path>: <field> <value as JSON> <why>" */
static ifk_status refuse_(const char *path, const char *field, const cJSON *v, const char *why) {
    char *j = v ? cJSON_PrintUnformatted(v) : NULL;
    ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s %.80s %s", path, field, j ? j : "(absent)", why);
    free(j);
    return st;
}

/* A pattern that is {kind: s} and nothing else (s non-empty), as a copy in *out: a pattern giving
 * both "String" and "Regex" is refused, not read as one of them. */
static ifk_status pattern_(const cJSON *o, const char *path, const char *field, const char *kind, char **out) {
    const cJSON *p = get_(o, "pattern");
    const char *s = str_(p, kind);
    if (!s || !s[0] || cJSON_GetArraySize(p) != 1) {
        char why[64];
        snprintf(why, sizeof why, "is not supported (only {\"%s\": ...}, not empty)", kind);
        return refuse_(path, field, p, why);
    }
    *out = strdup(s);
    return *out ? IFK_OK : IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
}

/* A Replace step (normalizer or decoder): its String pattern and its content, both required. */
static ifk_status replace_step_(const cJSON *o, const char *path, const char *what, step_ *s) {
    char field[64];
    const char *c;
    snprintf(field, sizeof field, "%s pattern", what);
    IFK_CHECK(pattern_(o, path, field, "String", &s->a));
    snprintf(field, sizeof field, "%s content", what);
    IFK_CHECK(ifk_jstr(o, "content", IFK_J_REQ, path, field, &c));
    if (!(s->b = strdup(c))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    return IFK_OK;
}

static ifk_status parse_norm_(ifk_hftok *t, const cJSON *n, const char *path, int depth) {
    if (!n || cJSON_IsNull(n)) return IFK_OK;
    if (is_(n, "Sequence") && !depth) {
        const cJSON *l = get_(n, "normalizers");
        if (!cJSON_IsArray(l)) return refuse_(path, "normalizer.normalizers", l, "is not a list");
        for (const cJSON *e = l->child; e; e = e->next) IFK_CHECK(parse_norm_(t, e, path, 1));
        return IFK_OK;
    }
    if (t->n_norm == MAX_STEPS) return IFK_FAIL(IFK_ERR_FORMAT, "%s: normalizer has more than %d steps", path, MAX_STEPS);
    step_ *s = &t->norm[t->n_norm];
    if (is_(n, "Prepend")) {
        const char *pp;
        IFK_CHECK(ifk_jstr(n, "prepend", IFK_J_REQ, path, "normalizer Prepend prepend", &pp));
        s->kind = N_PREPEND;
        if (!(s->a = strdup(pp))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    } else if (is_(n, "Replace")) {
        s->kind = N_REPLACE;
        IFK_CHECK(replace_step_(n, path, "normalizer Replace", s));
    } else if (is_(n, "NFC")) {
        s->kind = N_NFC;
    } else {
        return refuse_(path, "normalizer type", get_(n, "type"),
                       "is not supported (implemented: Sequence, Prepend, Replace with a String pattern, NFC)");
    }
    t->n_norm++;
    return IFK_OK;
}

static ifk_status add_re_(ifk_hftok *t, const char *re, const char *path) {
    if (t->n_re == MAX_RE) return IFK_FAIL(IFK_ERR_FORMAT, "%s: pre_tokenizer has more than %d split patterns", path, MAX_RE);
    int err;
    PCRE2_SIZE off;
    t->re[t->n_re] = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                   &err, &off, NULL);
    if (!t->re[t->n_re]) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: pre-tokenizer regex does not compile at %zu: %s", path, (size_t)off, msg);
    }
    t->n_re++;
    return IFK_OK;
}

/* GPT-2's split, which a ByteLevel pre-tokenizer applies itself when use_regex is true */
static const char gpt2_re_[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* A Metaspace's settings (pre-tokenizer or decoder): replacement (a string), prepend_scheme (always,
 * first or never), add_prefix_space (true or false; true when absent). */
static ifk_status metaspace_(const cJSON *o, const char *path, const char *what, const char **r, const char **ps,
                             int *ap) {
    char field[64];
    snprintf(field, sizeof field, "%s Metaspace replacement", what);
    IFK_CHECK(ifk_jstr(o, "replacement", 0, path, field, r));
    snprintf(field, sizeof field, "%s Metaspace prepend_scheme", what);
    IFK_CHECK(ifk_jstr(o, "prepend_scheme", 0, path, field, ps));
    if (*ps && strcmp(*ps, "always") && strcmp(*ps, "first") && strcmp(*ps, "never"))
        return refuse_(path, field, get_(o, "prepend_scheme"), "is not always, first or never");
    snprintf(field, sizeof field, "%s Metaspace add_prefix_space", what);
    return ifk_jbool(o, "add_prefix_space", 0, path, field, 1, ap);
}

static ifk_status parse_pre_(ifk_hftok *t, const cJSON *p, const char *path, int depth) {
    if (!p || cJSON_IsNull(p)) return IFK_OK;
    if (is_(p, "Sequence") && !depth) {
        const cJSON *l = get_(p, "pretokenizers");
        if (!cJSON_IsArray(l)) return refuse_(path, "pre_tokenizer.pretokenizers", l, "is not a list");
        for (const cJSON *e = l->child; e; e = e->next) IFK_CHECK(parse_pre_(t, e, path, 1));
        return IFK_OK;
    }
    if (is_(p, "Split")) {
        const char *beh;
        char *re = NULL;
        int inv;
        if (t->bytelevel) return refuse_(path, "pre_tokenizer Split", get_(p, "pattern"), "after a ByteLevel one is not supported");
        IFK_CHECK(pattern_(p, path, "pre_tokenizer Split pattern", "Regex", &re));
        ifk_status st = ifk_jstr(p, "behavior", IFK_J_REQ, path, "pre_tokenizer Split behavior", &beh);
        if (st == IFK_OK && strcmp(beh, "Isolated"))
            st = refuse_(path, "pre_tokenizer Split behavior", get_(p, "behavior"), "is not supported (only \"Isolated\")");
        if (st == IFK_OK) st = ifk_jbool(p, "invert", 0, path, "pre_tokenizer Split invert", 0, &inv);
        if (st == IFK_OK && inv)
            st = refuse_(path, "pre_tokenizer Split invert", get_(p, "invert"), "is not supported (only false)");
        if (st == IFK_OK) st = add_re_(t, re, path);
        free(re);
        return st;
    }
    if (is_(p, "ByteLevel")) {
        int aps, ur, trim; /* trim_offsets changes offsets only */
        IFK_CHECK(ifk_jbool(p, "add_prefix_space", 0, path, "pre_tokenizer ByteLevel add_prefix_space", 0, &aps));
        IFK_CHECK(ifk_jbool(p, "use_regex", 0, path, "pre_tokenizer ByteLevel use_regex", 1, &ur));
        IFK_CHECK(ifk_jbool(p, "trim_offsets", 0, path, "pre_tokenizer ByteLevel trim_offsets", 1, &trim));
        if (aps)
            return refuse_(path, "pre_tokenizer ByteLevel add_prefix_space", get_(p, "add_prefix_space"),
                           "is not supported (only false)");
        t->bytelevel = 1;
        return ur ? add_re_(t, gpt2_re_, path) : IFK_OK;
    }
    if (is_(p, "Metaspace")) {
        if (depth) return refuse_(path, "pre_tokenizer", get_(p, "type"), "inside a Sequence is not supported");
        const char *r, *ps;
        int ap, sp;
        IFK_CHECK(metaspace_(p, path, "pre_tokenizer", &r, &ps, &ap));
        IFK_CHECK(ifk_jbool(p, "split", 0, path, "pre_tokenizer Metaspace split", 1, &sp));
        if (sp) /* absent means true to the Rust library, and is ignored by the JavaScript one */
            return refuse_(path, "pre_tokenizer Metaspace split", get_(p, "split"), "is not supported (only false)");
        if (ps && !strcmp(ps, "always")) t->ms_prepend = 2;
        else if (ps && !strcmp(ps, "first")) t->ms_prepend = 1;
        else if (ps && !strcmp(ps, "never")) t->ms_prepend = 0;
        else t->ms_prepend = ap ? 2 : 0; /* the older layout */
        if (!(t->ms = strdup(r && r[0] ? r : "\xe2\x96\x81"))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        return IFK_OK;
    }
    return refuse_(path, "pre_tokenizer type", get_(p, "type"), "is not supported (implemented: Sequence, Split, ByteLevel, Metaspace)");
}

static ifk_status parse_dec_(ifk_hftok *t, const cJSON *d, const char *path, int depth, int *fused) {
    if (!d || cJSON_IsNull(d)) return refuse_(path, "decoder", d, "is not supported (a decoder is needed to turn ids into text)");
    if (is_(d, "Sequence") && !depth) {
        const cJSON *l = get_(d, "decoders");
        if (!cJSON_IsArray(l)) return refuse_(path, "decoder.decoders", l, "is not a list");
        for (const cJSON *e = l->child; e; e = e->next) IFK_CHECK(parse_dec_(t, e, path, 1, fused));
        return IFK_OK;
    }
    if (t->n_dec == MAX_STEPS) return IFK_FAIL(IFK_ERR_FORMAT, "%s: decoder has more than %d steps", path, MAX_STEPS);
    step_ *s = &t->dec[t->n_dec];
    if (is_(d, "Fuse")) { /* tokens are joined anyway; it only matters to a Strip after it */
        *fused = 1;
        return IFK_OK;
    }
    if (is_(d, "Replace")) {
        s->kind = D_REPLACE;
        IFK_CHECK(replace_step_(d, path, "decoder Replace", s));
    } else if (is_(d, "ByteFallback")) {
        s->kind = D_BYTEFALLBACK;
    } else if (is_(d, "ByteLevel")) {
        s->kind = D_BYTELEVEL;
    } else if (is_(d, "Strip")) {
        const char *c = str_(d, "content");
        const cJSON *a = get_(d, "start"), *b = get_(d, "stop");
        if (!c || strlen(c) != 1) return refuse_(path, "decoder Strip content", get_(d, "content"), "is not supported (only one ASCII character)");
        if (!cJSON_IsNumber(a) || a->valuedouble < 0 || a->valuedouble > 16 || a->valuedouble != (int)a->valuedouble)
            return refuse_(path, "decoder Strip start", a, "is not an integer 0..16");
        if (b && !(cJSON_IsNumber(b) && b->valuedouble == 0))
            return refuse_(path, "decoder Strip stop", b, "is not supported (only 0: tokens are decoded one at a time)");
        if (*fused) { /* after Fuse: the start of the whole text */
            t->strip_first = (int)a->valuedouble, t->strip_c = c[0];
            return IFK_OK;
        }
        s->kind = D_STRIP, s->n = (int)a->valuedouble;
        if (!(s->a = strdup(c))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    } else if (is_(d, "Metaspace")) {
        const char *r, *ps;
        int ap;
        IFK_CHECK(metaspace_(d, path, "decoder", &r, &ps, &ap));
        s->kind = D_REPLACE;
        s->a = strdup(r && r[0] ? r : "\xe2\x96\x81"), s->b = strdup(" ");
        if (!s->a || !s->b) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        int never = ps ? !strcmp(ps, "never") : !ap;
        if (!never) t->strip_first = 1, t->strip_c = ' ';
    } else {
        return refuse_(path, "decoder type", get_(d, "type"),
                       "is not supported (implemented: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace)");
    }
    t->n_dec++;
    return IFK_OK;
}

/* The BPE model's settings beyond vocab and merges. */
static ifk_status parse_model_(ifk_hftok *t, const cJSON *model, const char *path) {
    const cJSON *v = get_(model, "dropout");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return refuse_(path, "model.dropout", v, "is not supported (only null: dropout samples a random tokenization)");
    static const char *const affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = get_(model, affix[i]);
        char field[64];
        snprintf(field, sizeof field, "model.%s", affix[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return refuse_(path, field, v, "is not supported (only null or \"\")");
    }
    IFK_CHECK(ifk_jfield(model, "unk_token", IFK_J_STR | IFK_J_NULL, path, "model.unk_token", &v));
    IFK_CHECK(ifk_jbool(model, "ignore_merges", 0, path, "model.ignore_merges", 0, &t->ignore_merges));
    IFK_CHECK(ifk_jbool(model, "byte_fallback", 0, path, "model.byte_fallback", 0, &t->byte_fallback));
    return ifk_jbool(model, "fuse_unk", 0, path, "model.fuse_unk", 0, &t->fuse_unk);
}

static ifk_status parse_added_(const cJSON *a, int i, const char *path, int has_norm) {
    static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
    const char *c = str_(a, "content");
    char field[160];
    int on, special, normalized;
    snprintf(field, sizeof field, "added_tokens[%d]", i);
    if (!cJSON_IsObject(a)) return refuse_(path, field, a, "is not an object");
    for (int k = 0; k < 3; k++) {
        snprintf(field, sizeof field, "added token %d (%.40s) %s", i, c ? c : "?", flags[k]);
        IFK_CHECK(ifk_jbool(a, flags[k], 0, path, field, 0, &on));
        if (on) return refuse_(path, field, get_(a, flags[k]), "is not supported (only false)");
    }
    snprintf(field, sizeof field, "added token %d (%.40s) special", i, c ? c : "?");
    IFK_CHECK(ifk_jbool(a, "special", 0, path, field, 0, &special));
    snprintf(field, sizeof field, "added token %d (%.40s) normalized", i, c ? c : "?");
    IFK_CHECK(ifk_jbool(a, "normalized", 0, path, field, !special, &normalized));
    if (normalized && has_norm) return refuse_(path, field, get_(a, "normalized"), "is not supported with a normalizer (only false)");
    return IFK_OK;
}

/* merges: each "a b" (one space) or [a, b], a, b and ab pieces of the model's vocabulary (before
 * the added tokens join it), as the Rust library checks (BPE::from_file, BpeBuilder::build). */
static ifk_status merges_(ifk_hftok *t, const cJSON *merges, const char *path) {
    int rank = 0;
    for (const cJSON *e = merges->child; e; e = e->next, rank++) {
        char *k = NULL;
        const char *bad = "is not \"a b\" or [a, b]";
        size_t la = 0; /* the first piece's length: a piece of the [a, b] form may hold a space */
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) k = strdup(e->valuestring), la = (size_t)(sp - e->valuestring);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            size_t a = strlen(e->child->valuestring), b = strlen(e->child->next->valuestring);
            k = malloc(a + b + 2), la = a;
            if (k) memcpy(k, e->child->valuestring, a), k[a] = ' ', memcpy(k + a + 1, e->child->next->valuestring, b + 1);
        }
        size_t lk = k ? strlen(k) : 0;
        if (k && (!la || la + 1 == lk)) free(k), k = NULL;
        if (k) {
            char *ab = malloc(lk);
            if (!ab) return free(k), IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
            memcpy(ab, k, la), memcpy(ab + la, k + la + 1, lk - la);
            if (smap_get_(t->vocab, k, la) < 0 || smap_get_(t->vocab, k + la + 1, lk - la - 1) < 0 ||
                smap_get_(t->vocab, ab, lk - 1) < 0)
                bad = "names a piece that is not in model.vocab", free(k), k = NULL;
            free(ab);
        }
        if (!k) {
            char field[40];
            snprintf(field, sizeof field, "model.merges[%d]", rank);
            return refuse_(path, field, e, bad);
        }
        IFK_CHECK(smap_put_(t->merges, k, rank));
    }
    return IFK_OK;
}

/* One TemplateProcessing: its `single` template must be [$A] or [SpecialToken X, $A] (type ids do
 * not change the ids; `pair` is never used), X one id of special_tokens that names the same token
 * in the vocabulary. *bos: X's id, or -1. Anything that adds other tokens is refused. */
static ifk_status parse_template_(const ifk_hftok *t, const cJSON *p, const char *path, int *bos) {
    const cJSON *single = get_(p, "single"), *first = cJSON_GetArrayItem(single, 0), *seq = NULL;
    int n = cJSON_IsArray(single) ? cJSON_GetArraySize(single) : 0;
    *bos = -1;
    const char *x = str_(get_(first, "SpecialToken"), "id");
    if (n == 1) seq = first;
    else if (n == 2 && x) seq = cJSON_GetArrayItem(single, 1);
    const char *a = str_(get_(seq, "Sequence"), "id");
    if (!a || strcmp(a, "A"))
        return refuse_(path, "post_processor.single", single,
                       "is not supported (only [$A] or [SpecialToken, $A]: BOS before the text, nothing after it)");
    if (n == 1) return IFK_OK;
    const cJSON *sp = get_(get_(p, "special_tokens"), x), *ids = get_(sp, "ids"), *toks = get_(sp, "tokens");
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1 || !cJSON_IsNumber(ids->child) || !cJSON_IsArray(toks) ||
        cJSON_GetArraySize(toks) != 1 || !cJSON_IsString(toks->child))
        return refuse_(path, "post_processor.special_tokens", sp, "is not one token with one id");
    const char *tk = toks->child->valuestring;
    int id = smap_get_(t->vocab, tk, strlen(tk));
    if (id < 0 || id != ids->child->valuedouble)
        return refuse_(path, "post_processor.special_tokens", sp, "does not name a token of the vocabulary by its id");
    *bos = id;
    return IFK_OK;
}

/* post_processor: null or ByteLevel (adds nothing; its settings only move offsets), a
 * TemplateProcessing (parse_template_), or a Sequence of those (Llama-3: [ByteLevel, Template]).
 * t->bos: the id put before a single sequence when special tokens are added, or -1.
 * RobertaProcessing, BertProcessing (they add tokens after the text) and other types are refused. */
static ifk_status parse_post_(ifk_hftok *t, const cJSON *p, const char *path, int depth) {
    if (!p || cJSON_IsNull(p) || is_(p, "ByteLevel")) return IFK_OK;
    if (is_(p, "TemplateProcessing")) {
        int bos;
        IFK_CHECK(parse_template_(t, p, path, &bos));
        if (bos >= 0 && t->bos >= 0)
            return refuse_(path, "post_processor.processors", p, "is not supported (a second template adding BOS)");
        if (bos >= 0) t->bos = bos;
        return IFK_OK;
    }
    if (is_(p, "Sequence") && !depth) {
        const cJSON *l = get_(p, "processors");
        if (!cJSON_IsArray(l)) return refuse_(path, "post_processor.processors", l, "is not a list");
        for (const cJSON *e = l->child; e; e = e->next) IFK_CHECK(parse_post_(t, e, path, 1));
        return IFK_OK;
    }
    return refuse_(path, "post_processor", get_(p, "type"),
                   "is not supported (only null, ByteLevel, TemplateProcessing [BOS] $A, or a Sequence of them)");
}

ifk_status ifk_hftok_load(ifk_hftok **tp, const char *path) {
    *tp = NULL;
    cJSON *o;
    IFK_CHECK(ifk_json_file(path, 1u << 30, &o));
    ifk_status st = IFK_OK;
    ifk_hftok *t = calloc(1, sizeof *t);
    const cJSON *model = get_(o, "model"), *vocab = get_(model, "vocab"), *merges = get_(model, "merges"), *added;
    if (!t || !(t->path = strdup(path))) {
        st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    if (!cJSON_IsObject(model)) {
        st = refuse_(path, "model", model, "is not an object (not a tokenizer.json)");
        goto done;
    }
    IFK_CHECK_GOTO(st, ifk_jfield(o, "added_tokens", IFK_J_LIST, path, "added_tokens", &added), done);
    if (!is_(model, "BPE")) {
        st = refuse_(path, "model.type", get_(model, "type"), "is not supported (only BPE)");
        goto done;
    }
    IFK_CHECK_GOTO(st, ifk_jfield(model, "vocab", IFK_J_OBJ | IFK_J_REQ, path, "model.vocab", &vocab), done);
    IFK_CHECK_GOTO(st, ifk_jfield(model, "merges", IFK_J_LIST | IFK_J_REQ, path, "model.merges", &merges), done);
    if (!vocab->child) {
        st = refuse_(path, "model.vocab", vocab, "is empty");
        goto done;
    }
    int fused = 0;
    static const char *const per_call[] = {"truncation", "padding"}; /* tokenizers applies them to every encoding */
    for (int i = 0; i < 2; i++)
        if (get_(o, per_call[i]) && !cJSON_IsNull(get_(o, per_call[i]))) {
            st = refuse_(path, per_call[i], get_(o, per_call[i]), "is not supported (only null)");
            goto done;
        }
    IFK_CHECK_GOTO(st, parse_model_(t, model, path), done);
    IFK_CHECK_GOTO(st, parse_norm_(t, get_(o, "normalizer"), path, 0), done);
    IFK_CHECK_GOTO(st, parse_pre_(t, get_(o, "pre_tokenizer"), path, 0), done);
    IFK_CHECK_GOTO(st, parse_dec_(t, get_(o, "decoder"), path, 0, &fused), done);
    int nv = cJSON_GetArraySize(vocab), na = cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0;
    IFK_CHECK_GOTO(st, ifk_strmap_create(&t->vocab, (size_t)(nv + na)), done);
    IFK_CHECK_GOTO(st, ifk_strmap_create(&t->merges, (size_t)cJSON_GetArraySize(merges) + 1), done);
    int maxid = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > (1 << 24)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: vocab entry \"%.40s\" has no valid id", path, e->string);
            goto done;
        }
        maxid = (int)e->valuedouble > maxid ? (int)e->valuedouble : maxid;
    }
    for (int i = 0; i < na; i++) {
        const cJSON *a = cJSON_GetArrayItem(added, i), *id = get_(a, "id");
        IFK_CHECK_GOTO(st, parse_added_(a, i, path, t->n_norm > 0), done);
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
        IFK_CHECK_GOTO(st, smap_put_(t->vocab, strdup(e->string), id), done);
    }
    /* the model's own pieces: <0xNN> for byte fallback, and unk_token */
    for (int b = 0; b < 256; b++) {
        char k[8];
        snprintf(k, sizeof k, "<0x%02X>", b);
        t->byte_id[b] = smap_get_(t->vocab, k, 6);
    }
    const char *unk = str_(model, "unk_token");
    t->unk_id = unk ? smap_get_(t->vocab, unk, strlen(unk)) : -1;
    IFK_CHECK_GOTO(st, merges_(t, merges, path), done);
    for (int i = 0; i < na; i++) {
        const cJSON *a = cJSON_GetArrayItem(added, i), *c = get_(a, "content"), *id = get_(a, "id");
        if (!cJSON_IsString(c) || !cJSON_IsNumber(id) || !c->valuestring[0] || id->valuedouble < 0 ||
            id->valuedouble >= t->n_ids || id->valuedouble != (double)(int)id->valuedouble) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: added token %d has no content or no valid id", path, i);
            goto done;
        }
        t->added[t->n_added] = strdup(c->valuestring);
        t->added_id[t->n_added++] = (int)id->valuedouble;
        free(t->id2tok[(int)id->valuedouble]);
        t->id2tok[(int)id->valuedouble] = strdup(c->valuestring);
        IFK_CHECK_GOTO(st, smap_put_(t->vocab, strdup(c->valuestring), (int)id->valuedouble), done);
    }
    /* longest first, so that a token that contains another wins: keep ids aligned */
    for (int i = 1; i < t->n_added; i++)
        for (int j = i; j > 0 && strlen(t->added[j]) > strlen(t->added[j - 1]); j--) {
            char *s = t->added[j]; t->added[j] = t->added[j - 1]; t->added[j - 1] = s;
            int x = t->added_id[j]; t->added_id[j] = t->added_id[j - 1]; t->added_id[j - 1] = x;
        }
    /* GPT-2's byte <-> unicode table: printable bytes map to themselves, the rest to 256.. */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int i = 0; i < 512; i++) t->u2b[i] = -1;
    for (int b = 0; b < 256; b++) t->u2b[t->b2u[b]] = (int16_t)b;
    t->bos = -1;
    st = parse_post_(t, get_(o, "post_processor"), path, 0);
done:
    cJSON_Delete(o);
    if (st != IFK_OK) ifk_hftok_free(&t);
    *tp = t;
    return st;
}

/* ---- encoding ----------------------------------------------------------------------------------- */

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

/* A merge candidate: symbols left and right (by their first character's index) with the lengths
 * they had when it was made; stale once either has changed. */
typedef struct {
    int rank, left, right, ll, rl;
} cand_;

/* the heap's order: lowest rank first, leftmost on ties */
static int better_(const void *pa, const void *pb) {
    const cand_ *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void cand_push_(const ifk_hftok *t, const char *m, const int *st, const int *ln, int i, int j, char *key,
                       ifk_heap *h) {
    memcpy(key, m + st[i], (size_t)ln[i]);
    key[ln[i]] = ' ';
    memcpy(key + ln[i] + 1, m + st[j], (size_t)ln[j]);
    int r = smap_get_(t->merges, key, (size_t)(ln[i] + 1 + ln[j]));
    if (r >= 0) ifk_heap_push(h, &(cand_){r, i, j, ln[i], ln[j]});
}

/* BPE over one pre-tokenized piece: its characters (after the byte-level mapping, if any), then
 * the lowest-ranked adjacent merge (leftmost on ties) applied until none remains, with a heap.
 * A final symbol not in the vocabulary becomes its <0xNN> byte pieces (byte_fallback), or
 * unk_token (fused with a preceding one under fuse_unk), or an error. */
static ifk_status bpe_(const ifk_hftok *t, const char *p, size_t len, int **ids, int *n, int *cap) {
    char *mm = t->bytelevel ? malloc(3 * len + 1) : NULL, *key = malloc(2 * (t->bytelevel ? 3 * len : len) + 2);
    int *st = malloc(sizeof(int) * 4 * (len + 1)), *ln = st ? st + len + 1 : NULL, *nx = st ? ln + len + 1 : NULL,
        *pv = st ? nx + len + 1 : NULL;
    cand_ *h = malloc(sizeof(cand_) * (3 * len + 2));
    ifk_status s = IFK_OK;
    if ((t->bytelevel && !mm) || !key || !st || !h) {
        s = IFK_FAIL(IFK_ERR_OOM, "out of memory tokenizing");
        goto done;
    }
    const char *m = p;
    size_t ml = len;
    int ns = 0;
    if (t->bytelevel) {
        ml = 0;
        for (size_t i = 0; i < len; i++) ml += (size_t)utf8_put_(mm + ml, t->b2u[(unsigned char)p[i]]);
        m = mm;
    }
    for (size_t i = 0; i < ml; ns++) {
        st[ns] = (int)i;
        ln[ns] = (int)u8len_(m + i, ml - i);
        i += (size_t)ln[ns];
    }
    int whole = t->ignore_merges ? smap_get_(t->vocab, m, ml) : -1;
    if (whole >= 0) {
        s = push_(ids, n, cap, whole);
        goto done;
    }
    ifk_heap hp = {h, sizeof(cand_), 0, better_};
    for (int i = 0; i < ns; i++) nx[i] = i + 1 < ns ? i + 1 : -1, pv[i] = i - 1;
    for (int i = 0; i + 1 < ns; i++) cand_push_(t, m, st, ln, i, i + 1, key, &hp);
    while (hp.n > 0) {
        cand_ c;
        ifk_heap_pop(&hp, &c);
        if (nx[c.left] != c.right || ln[c.left] != c.ll || ln[c.right] != c.rl) continue;
        ln[c.left] += ln[c.right]; /* adjacent in m: merging is extending the span */
        ln[c.right] = 0;
        nx[c.left] = nx[c.right];
        if (nx[c.left] >= 0) pv[nx[c.left]] = c.left;
        if (pv[c.left] >= 0) cand_push_(t, m, st, ln, pv[c.left], c.left, key, &hp);
        if (nx[c.left] >= 0) cand_push_(t, m, st, ln, c.left, nx[c.left], key, &hp);
    }
    for (int i = ns ? 0 : -1; s == IFK_OK && i >= 0; i = nx[i]) {
        int id = smap_get_(t->vocab, m + st[i], (size_t)ln[i]), k = 0;
        if (id >= 0) {
            s = push_(ids, n, cap, id);
            continue;
        }
        if (t->byte_fallback)
            while (k < ln[i] && t->byte_id[(unsigned char)m[st[i] + k]] >= 0) k++;
        if (t->byte_fallback && k == ln[i]) {
            for (k = 0; s == IFK_OK && k < ln[i]; k++) s = push_(ids, n, cap, t->byte_id[(unsigned char)m[st[i] + k]]);
        } else if (t->unk_id >= 0) {
            if (!t->fuse_unk || !*n || (*ids)[*n - 1] != t->unk_id) s = push_(ids, n, cap, t->unk_id);
        } else {
            s = IFK_FAIL(IFK_ERR_FORMAT, "%s: no vocabulary entry for the piece \"%.*s\" (and no byte fallback or "
                         "unk_token)", t->path, ln[i] < 40 ? ln[i] : 40, m + st[i]);
        }
    }
done:
    free(mm), free(key), free(st), free(h); /* st holds ln, nx, pv too */
    return s;
}

/* Splits text with the k-th pattern, Isolated (matches and the gaps between them), then the next
 * pattern on each part; BPE on what the last one gives. */
static ifk_status pretok_(const ifk_hftok *t, int k, const char *text, size_t len, int **ids, int *n, int *cap) {
    if (!len) return IFK_OK;
    if (k >= t->n_re || k >= MAX_RE) return bpe_(t, text, len, ids, n, cap);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re[k], NULL);
    if (!md) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    size_t pos = 0, gap = 0;
    ifk_status s = IFK_OK;
    while (s == IFK_OK && pos <= len) {
        int rc = pcre2_match(t->re[k], (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (e == b) { /* an empty match: step one character on */
            pos = b + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (b > gap) s = pretok_(t, k + 1, text + gap, b - gap, ids, n, cap);
        if (s == IFK_OK) s = pretok_(t, k + 1, text + b, e - b, ids, n, cap);
        gap = pos = e;
    }
    if (s == IFK_OK && gap < len) s = pretok_(t, k + 1, text + gap, len - gap, ids, n, cap);
    pcre2_match_data_free(md);
    return s;
}

/* s[0..*n) with every a replaced by b, prefixed by pre (NULL: none); malloc'd, *n updated. */
static char *replace_(const char *s, size_t *n, const char *a, const char *b, const char *pre) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, lp = pre ? strlen(pre) : 0, hits = 0;
    for (size_t i = 0; la && i + la <= *n; i++)
        if (!memcmp(s + i, a, la)) hits++, i += la - 1;
    char *o = malloc(lp + *n + hits * lb + 1), *w = o;
    if (!o) return NULL;
    if (lp) memcpy(w, pre, lp), w += lp;
    for (size_t i = 0; i < *n;)
        if (la && i + la <= *n && !memcmp(s + i, a, la)) memcpy(w, b, lb), w += lb, i += la;
        else *w++ = s[i++];
    *w = '\0';
    *n = (size_t)(w - o);
    return o;
}

/* One section of text between added tokens: the normalizer, the Metaspace pre-tokenizer, then the
 * split patterns and BPE. first: the section starts the text (Metaspace's prepend_scheme first). */
static ifk_status section_(const ifk_hftok *t, const char *text, size_t len, int first, int **ids, int *n, int *cap) {
    if (!len) return IFK_OK;
    char *s = replace_(text, &len, NULL, NULL, NULL);
    for (int i = 0; s && i < t->n_norm; i++) {
        const step_ *st = &t->norm[i];
        char *o = NULL;
        if (st->kind == N_PREPEND) {
            o = replace_(s, &len, NULL, NULL, st->a);
        } else if (st->kind == N_REPLACE) {
            o = replace_(s, &len, st->a, st->b, NULL);
        } else {
            utf8proc_uint8_t *u = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &u,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (r < 0) {
                free(s);
                return IFK_FAIL(IFK_ERR_ARG, "%s: normalizer NFC: the text is not valid UTF-8 (%s)", t->path,
                                utf8proc_errmsg(r));
            }
            o = (char *)u, len = (size_t)r;
        }
        free(s);
        s = o;
    }
    if (s && t->ms) {
        char *o = replace_(s, &len, " ", t->ms, NULL);
        size_t lm = strlen(t->ms);
        if (o && (len < lm || memcmp(o, t->ms, lm)) && (t->ms_prepend == 2 || (t->ms_prepend == 1 && first))) {
            char *o2 = replace_(o, &len, NULL, NULL, t->ms);
            free(o);
            o = o2;
        }
        free(s);
        s = o;
    }
    if (!s) return IFK_FAIL(IFK_ERR_OOM, "out of memory tokenizing");
    ifk_status st = pretok_(t, 0, s, len, ids, n, cap);
    free(s);
    return st;
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
        IFK_CHECK(section_(t, text + p, best - p, p == 0, ids, n, cap));
        if (bid < 0) break;
        IFK_CHECK(push_(ids, n, cap, bid));
        p = best + blen;
    }
    return IFK_OK;
}

/* ---- decoding ----------------------------------------------------------------------------------- */

/* Room for n bytes in decode buffer k. */
static char *room_(ifk_hftok *t, int k, size_t n) {
    if (n > t->buf_cap[k]) {
        char *d = realloc(t->buf[k], n);
        if (!d) return NULL;
        t->buf[k] = d, t->buf_cap[k] = n;
    }
    return t->buf[k];
}

/* The byte-level mapping undone: each code point of s back to its byte; other text kept. */
static size_t unmap_bytes_(const ifk_hftok *t, const char *s, size_t sl, char *o) {
    size_t n = 0;
    for (size_t i = 0; i < sl;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + k > sl) k = sl - i; /* a truncated sequence (vocab keys are not validated): raw */
        uint32_t cp = 0xFFFFFFFFu;
        if (k == 1 && c < 0x80) cp = c;
        else if (k == 2 && c >= 0xC0 && c < 0xE0) cp = (uint32_t)(c & 31) << 6 | ((unsigned char)s[i + 1] & 63);
        else if (k == 3 && c >= 0xE0 && c < 0xF0)
            cp = (uint32_t)(c & 15) << 12 | (uint32_t)((unsigned char)s[i + 1] & 63) << 6 | ((unsigned char)s[i + 2] & 63);
        if (cp >= 512 || t->u2b[cp] < 0) memcpy(o + n, s + i, k), n += k; /* not a byte-level symbol */
        else o[n++] = (char)t->u2b[cp];
        i += k;
    }
    return n;
}

const char *ifk_hftok_decode(ifk_hftok *t, int id, int first, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_ids || !t->id2tok[id]) return "";
    const char *s = t->id2tok[id];
    for (int i = 0; i < t->n_added; i++)
        if (t->added_id[i] == id) return *len = strlen(s), s;
    size_t sl = strlen(s);
    for (int i = 0, k = 0; i < t->n_dec; i++, k ^= 1) {
        const step_ *d = &t->dec[i];
        unsigned int b;
        char close;
        if (d->kind == D_REPLACE) {
            char *o = replace_(s, &sl, d->a, d->b, NULL); /* sl updated */
            if (!o || !room_(t, k, sl + 1)) return free(o), *len = 0, "";
            memcpy(t->buf[k], o, sl + 1);
            free(o);
        } else if (d->kind == D_BYTEFALLBACK && sl == 6 && sscanf(s, "<0x%02X%c", &b, &close) == 2 && close == '>') {
            if (!room_(t, k, 2)) return "";
            t->buf[k][0] = (char)b, t->buf[k][1] = '\0', sl = 1;
        } else if (d->kind == D_BYTELEVEL) {
            if (!room_(t, k, sl + 1)) return "";
            sl = unmap_bytes_(t, s, sl, t->buf[k]);
            t->buf[k][sl] = '\0';
        } else {
            size_t c = 0;
            while (d->kind == D_STRIP && (int)c < d->n && c < sl && s[c] == d->a[0]) c++;
            if (!room_(t, k, sl - c + 1)) return "";
            memmove(t->buf[k], s + c, sl - c), sl -= c;
            t->buf[k][sl] = '\0';
        }
        s = t->buf[k];
    }
    for (int c = 0; first && c < t->strip_first && sl && s[0] == t->strip_c; c++) s++, sl--;
    *len = sl;
    return s;
}
