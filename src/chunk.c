/* chunk.c — document chunking and the independent per-chunk prefill. */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>

void ifk_chunking_free(ifk_chunking *c) {
    free(c->tokens);
    free(c->start);
    free(c->len);
    memset(c, 0, sizeof *c);
}

/* Appends a chunk [start, start+len). cap grows by doubling. */
static ifk_status push_chunk_(ifk_chunking *c, int *cap, int start, int len) {
    if (c->n_chunks == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        int *s = realloc(c->start, sizeof(int) * *cap), *l = s ? realloc(c->len, sizeof(int) * *cap) : NULL;
        if (s) c->start = s;
        if (l) c->len = l;
        if (!s || !l) return IFK_FAIL(IFK_ERR_OOM, "out of memory chunking a document");
    }
    c->start[c->n_chunks] = start;
    c->len[c->n_chunks++] = len;
    return IFK_OK;
}

static ifk_status cut_(ifk_chunking *c, int *cap, int from, int n, int max) {
    for (int s = 0; s < n; s += max) IFK_CHECK(push_chunk_(c, cap, from + s, n - s < max ? n - s : max));
    return IFK_OK;
}

ifk_status ifk_chunk_ids(const int *ids, int n, int max_tokens, ifk_chunking *out) {
    memset(out, 0, sizeof *out);
    IFK_CHECK_ARG(max_tokens > 0, "chunk size %d is not positive", max_tokens);
    out->tokens = ifk_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1), "document tokens");
    if (!out->tokens) return IFK_ERR_OOM;
    memcpy(out->tokens, ids, sizeof(int) * (size_t)n);
    out->n_tokens = n;
    int cap = 0;
    ifk_status st = cut_(out, &cap, 0, n, max_tokens);
    if (st != IFK_OK) ifk_chunking_free(out);
    return st;
}

/* Paragraph i is text[b, e): the text between runs of two or more newlines (a line holding only
 * spaces, tabs or \r counts as blank). */
static const char *next_break_(const char *p, const char *end, const char **resume) {
    for (const char *q = p; q < end; q++) {
        if (*q != '\n') continue;
        const char *r = q + 1;
        int blank = 0;
        for (;;) {
            const char *t = r;
            while (t < end && (*t == ' ' || *t == '\t' || *t == '\r')) t++;
            if (t < end && *t == '\n') { blank = 1; r = t + 1; continue; }
            break;
        }
        if (blank) { *resume = r; return q; }
    }
    *resume = end;
    return end;
}

int ifk_chunk_text_empty(const char *text, size_t len, ifk_split split) {
    if (split == IFK_SPLIT_TOKENS) return len == 0;
    for (const char *p = text, *end = text + len; p < end;) { /* the loop of ifk_chunk_text, without tokenizing */
        const char *resume, *e = next_break_(p, end, &resume);
        if (e != p) return 0;
        p = resume;
    }
    return 1;
}

ifk_status ifk_chunk_text(const ifk_tokenizer *t, const char *text, size_t len, int max_tokens, ifk_split split,
                          ifk_chunking *out) {
    memset(out, 0, sizeof *out);
    IFK_CHECK_ARG(max_tokens > 0, "chunk size %d is not positive", max_tokens);
    if (split == IFK_SPLIT_TOKENS) {
        int *ids, n;
        IFK_CHECK(ifk_tokenizer_encode(t, text, len, 0, 0, &ids, &n));
        ifk_status st = ifk_chunk_ids(ids, n, max_tokens, out);
        free(ids);
        return st;
    }
    int cap = 0, tcap = 0, cur_start = 0, cur_len = 0;
    ifk_status st = IFK_OK;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *resume, *e = next_break_(p, end, &resume);
        const char *b = p;
        p = resume;
        if (e == b) continue;
        int *ids, n;
        IFK_CHECK_GOTO(st, ifk_tokenizer_encode(t, b, (size_t)(e - b), 0, 0, &ids, &n), fail);
        if (out->n_tokens + n > tcap) {
            tcap = 2 * (out->n_tokens + n) + 64;
            int *nt = realloc(out->tokens, sizeof(int) * (size_t)tcap);
            if (!nt) { free(ids); st = IFK_FAIL(IFK_ERR_OOM, "out of memory chunking a document"); goto fail; }
            out->tokens = nt;
        }
        memcpy(out->tokens + out->n_tokens, ids, sizeof(int) * (size_t)n);
        free(ids);
        if (cur_len + n > max_tokens && cur_len > 0) { /* close the open chunk before this paragraph */
            IFK_CHECK_GOTO(st, push_chunk_(out, &cap, cur_start, cur_len), fail);
            cur_len = 0;
        }
        if (cur_len == 0) cur_start = out->n_tokens;
        out->n_tokens += n;
        cur_len += n;
        if (cur_len > max_tokens) { /* one paragraph longer than a chunk: cut it, keep the tail open */
            int full = (cur_len / max_tokens) * max_tokens;
            if (full == cur_len) full -= max_tokens;
            IFK_CHECK_GOTO(st, cut_(out, &cap, cur_start, full, max_tokens), fail);
            cur_start += full;
            cur_len -= full;
        }
    }
    if (cur_len > 0) IFK_CHECK_GOTO(st, push_chunk_(out, &cap, cur_start, cur_len), fail);
    if (!out->tokens) out->tokens = ifk_malloc(sizeof(int), "document tokens");
    return IFK_OK;
fail:
    ifk_chunking_free(out);
    return st;
}

ifk_status ifk_prefill_chunk(const ifk_model *m, ifk_state *s, ifk_kvcache *cache, const int *tokens, int n,
                             float *k, float *v) {
    const ifk_config *c = &m->cfg;
    IFK_CHECK(ifk_model_check_prefix(m));
    IFK_CHECK_ARG(n > 0 && n + IFK_CHUNK_PREFIX <= cache->capacity, "chunk of %d tokens does not fit a cache of %d",
                  n, cache->capacity);
    IFK_CHECK_ARG(n + IFK_CHUNK_PREFIX <= c->seq_len, "chunk of %d tokens exceeds the model's %d positions", n,
                  c->seq_len);
    int ids[4096], pos[4096], *idp = ids, *posp = pos;
    if (n + 1 > 4096) {
        idp = malloc(sizeof(int) * (size_t)(n + 1));
        posp = malloc(sizeof(int) * (size_t)(n + 1));
        if (!idp || !posp) { free(idp == ids ? NULL : idp); free(posp == pos ? NULL : posp); return IFK_FAIL(IFK_ERR_OOM, "out of memory"); }
    }
    idp[0] = c->bos_id;
    memcpy(idp + 1, tokens, sizeof(int) * (size_t)n);
    for (int i = 0; i <= n; i++) posp[i] = i;
    cache->len = 0;
    ifk_status st = ifk_forward(m, s, cache, idp, posp, n + 1, NULL, 0);
    if (idp != ids) free(idp), free(posp);
    IFK_CHECK(st);
    const size_t row = (size_t)n * c->head_dim;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++) {
            size_t o = ((size_t)l * c->n_kv_heads + h) * row;
            memcpy(k + o, ifk_kv_k(cache, l, h) + (size_t)IFK_CHUNK_PREFIX * c->head_dim, sizeof(float) * row);
            memcpy(v + o, ifk_kv_v(cache, l, h) + (size_t)IFK_CHUNK_PREFIX * c->head_dim, sizeof(float) * row);
        }
    return IFK_OK;
}
