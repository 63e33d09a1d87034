/* corpus.c — the JSONL corpus reader behind corpus.h.
 *
 * Indexing reads the file once with getline (no line-length limit), parses each non-blank line
 * with cJSON, checks it, and keeps only (id, line, offset, length, size); ids go into a
 * string map (strmap.h) to find duplicates. ifk_corpus_read preads the recorded byte range
 * and runs the same checks again, so both paths accept exactly the same lines.
 *
 * Line rules: a line ends at '\n'; one trailing '\r' is stripped (CRLF files), and `length`
 * excludes both. The last line needs no newline. Lines holding only spaces, tabs and '\r' are
 * blank and ignored (they still count for line numbers). A UTF-8 byte order mark at the start
 * of the file is skipped (line 1's offset then starts after it).
 *
 * Choices the interface leaves open, made here:
 * - NUL: a raw NUL byte in a line is invalid JSON; a "\u0000" escape in any string of the line
 *   is an error ("\u0000 (NUL) in a string is not supported"), because cJSON decodes it into a
 *   NUL that silently truncates the string (and would even truncate a key: "text\u0000x" would
 *   read as "text"). The check is on the whole line, metadata included, to stay simple and
 *   consistent; it guarantees that ids and texts hold no NUL.
 * - ids: a string, or a JSON number that is an integer of magnitude below 2^53 (exact in a
 *   double), written in decimal ("7", "-3"; 7.0 and 7e0 also give "7"). The integer 7 and the
 *   string "7" are the same id, hence duplicates. Any other type (null, bool, float, array,
 *   object) is an error.
 * - "text" or "tokens" present with the wrong type is an error even when the other one is fine
 *   (null is a wrong type, not an absence). An empty text "" and an empty tokens array [] are
 *   accepted (size 0). When both are present, both are checked and size is the text's bytes.
 * - A line can be both bad and a duplicate; it is reported for the first problem found, in the
 *   order: JSON, object, NUL, id, text/tokens, duplicate.
 * - Ids quoted in messages are escaped (control characters, quotes, backslashes) and shortened
 *   to about 90 bytes, so every message stays one line.
 * - `path` is stored as given and reopened as given by ifk_corpus_read; a non-regular file
 *   (a pipe, a terminal) is refused at open since it cannot be re-read by offset.
 * - ifk_corpus_read checks that the re-read line still parses and still has the indexed id;
 *   otherwise it fails with "FILE:LINE: ... (the file changed since it was indexed)". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getline, pread, O_CLOEXEC (the build defines it already) */
#endif

#include "corpus.h"
#include "json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strmap.h"

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

int ifk_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k;       /* continuation bytes */
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F, min = 0x80;      /* C0, C1: always overlong */
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07, min = 0x10000; /* F5..FF: > U+10FFFF */
        else return 0;                                                     /* stray continuation */
        if ((size_t)(e - p) <= k) return 0;                                /* truncated */
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        p += k + 1;
    }
    return 1;
}

/* ---- one line ---------------------------------------------------------------------------------- */

typedef struct {
    cJSON *root;
    const char *id;     /* borrowed from root, or numid */
    char numid[32];
    const char *text;   /* borrowed from root; NULL if absent */
    size_t text_len;
    const cJSON *tokens; /* the array; NULL if absent */
    int n_tokens;
} line_doc;

/* Writes a quoted, escaped, shortened copy of s (valid UTF-8) into out[cap], cap >= 80. */
static void quote_(char *out, size_t cap, const char *s) {
    size_t o = 0, limit = cap - 8; /* room for `..."` and the NUL */
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t k;
        if (*p == '"' || *p == '\\') k = (size_t)snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7F) k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        else if (*p < 0x80) esc[0] = (char)*p, k = 1;
        else { /* copy a whole UTF-8 sequence or stop */
            k = 1;
            while (k < 4 && (p[k] & 0xC0) == 0x80) k++;
            if (o + k > limit) goto cut;
            memcpy(out + o, p, k);
            o += k;
            p += k - 1;
            continue;
        }
        if (o + k > limit) goto cut;
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o++] = '"';
    out[o] = '\0';
    return;
cut:
    memcpy(out + o, "...\"", 5);
}

/* 1 if the (valid JSON) line has a \u0000 escape inside a string. */
static int has_nul_escape_(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"') in_str = 1;
        } else if (s[i] == '"') {
            in_str = 0;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
            i++; /* skip the escaped character (for \u, the hex digits are harmless) */
        }
    }
    return 0;
}

/* The integral value of a JSON number in [lo, hi], or 0 if it is not one. */
static int integral_(const cJSON *v, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    /* lo and hi are within +-2^53, so the cast is defined once the range check passed */
    if (!isfinite(d) || d < lo || d > hi || (double)(long long)d != d) return 0;
    *out = d;
    return 1;
}

/* Parses and checks one line (s[len] must be '\0'). On IFK_ERR_FORMAT, why holds the problem
 * and nothing is left to free; on IFK_OK the caller frees d->root. */
static ifk_status parse_line_(const char *s, size_t len, line_doc *d, char *why, size_t nwhy) {
    memset(d, 0, sizeof *d);
    if (memchr(s, '\0', len)) {
        snprintf(why, nwhy, "invalid JSON (a NUL byte at column %zu)", (size_t)((const char *)memchr(s, '\0', len) - s) + 1);
        return IFK_ERR_FORMAT;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, len + 1, &end, 1);
    if (!root) {
        size_t col = end && end >= s && end <= s + len ? (size_t)(end - s) + 1 : 1;
        snprintf(why, nwhy, "invalid JSON (near column %zu)", col);
        return IFK_ERR_FORMAT;
    }
    d->root = root;
    if (!cJSON_IsObject(root)) {
        snprintf(why, nwhy, "not a JSON object");
        goto bad;
    }
    if (has_nul_escape_(s, len)) {
        snprintf(why, nwhy, "\\u0000 (NUL) in a string is not supported");
        goto bad;
    }
    const char *dup = ifk_json_dup_key(root);
    if (dup) {
        snprintf(why, nwhy, "key \"%.60s\" is defined twice", dup);
        goto bad;
    }

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    double num;
    if (!id) {
        snprintf(why, nwhy, "missing \"id\"");
        goto bad;
    } else if (cJSON_IsString(id)) {
        d->id = id->valuestring;
        if (!ifk_utf8_valid(d->id, strlen(d->id))) {
            snprintf(why, nwhy, "invalid UTF-8 in \"id\"");
            goto bad;
        }
        if (!d->id[0]) {
            snprintf(why, nwhy, "empty \"id\"");
            goto bad;
        }
        if (strchr(d->id, ',')) { /* --docs A,B,... and the eval query sets name documents by id */
            snprintf(why, nwhy, "\"id\" \"%.60s\" contains a comma (ids are listed as --docs A,B,...)", d->id);
            goto bad;
        }
    } else if (integral_(id, -9007199254740991.0, 9007199254740991.0, &num)) {
        snprintf(d->numid, sizeof d->numid, "%lld", (long long)num);
        d->id = d->numid;
    } else {
        snprintf(why, nwhy, "\"id\" is not a string or an integer (below 2^53 in magnitude)");
        goto bad;
    }

    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!text && !tokens) {
        snprintf(why, nwhy, "missing \"text\" (a string) or \"tokens\" (an array of token ids)");
        goto bad;
    }
    if (text) {
        if (!cJSON_IsString(text)) {
            snprintf(why, nwhy, "\"text\" is not a string");
            goto bad;
        }
        d->text = text->valuestring;
        d->text_len = strlen(d->text);
        if (!ifk_utf8_valid(d->text, d->text_len)) {
            snprintf(why, nwhy, "invalid UTF-8 in \"text\"");
            goto bad;
        }
    }
    if (tokens) {
        if (!cJSON_IsArray(tokens)) {
            snprintf(why, nwhy, "\"tokens\" is not an array");
            goto bad;
        }
        int n = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tokens) {
            if (!integral_(t, 0.0, (double)INT32_MAX, &num)) {
                snprintf(why, nwhy, "\"tokens\"[%d] is not a token id (an integer in [0, %d])", n, INT32_MAX);
                goto bad;
            }
            if (n == INT_MAX) {
                snprintf(why, nwhy, "\"tokens\" has more than %d entries", INT_MAX);
                goto bad;
            }
            n++;
        }
        d->tokens = tokens;
        d->n_tokens = n;
    }
    return IFK_OK;
bad:
    cJSON_Delete(root);
    memset(d, 0, sizeof *d);
    return IFK_ERR_FORMAT;
}

/* ---- indexing ---------------------------------------------------------------------------------- */

static int blank_(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* A bad line: fail, or under skip_bad record "FILE:LINE: why" and go on (IFK_OK). */
static ifk_status bad_line_(ifk_corpus *c, int skip_bad, long line, const char *why) {
    if (!skip_bad) return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s", c->path, line, why);
    if (c->n_bad == INT_MAX) return IFK_FAIL(IFK_ERR_OOM, "%s: more than %d bad lines", c->path, INT_MAX);
    int k = snprintf(NULL, 0, "%s:%ld: %s", c->path, line, why);
    char *m = ifk_malloc((size_t)k + 1, "a corpus message");
    if (!m) return IFK_ERR_OOM;
    snprintf(m, (size_t)k + 1, "%s:%ld: %s", c->path, line, why);
    if ((c->n_bad & (c->n_bad - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to double */
        size_t cap = c->n_bad ? 2 * (size_t)c->n_bad : 1;
        char **nb = realloc(c->bad, cap * sizeof *nb);
        if (!nb) {
            free(m);
            return IFK_FAIL(IFK_ERR_OOM, "out of memory listing the bad lines of %s", c->path);
        }
        c->bad = nb;
    }
    c->bad[c->n_bad++] = m;
    return IFK_OK;
}

static ifk_status add_doc_(ifk_corpus *c, size_t *cap, const line_doc *ld, long line, off_t off, size_t len) {
    if (c->n == INT_MAX)
        return IFK_FAIL(IFK_ERR_OOM, "%s:%ld: more than %d documents", c->path, line, INT_MAX);
    if ((size_t)c->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 1024;
        ifk_corpus_doc *nd = realloc(c->docs, nc * sizeof *nd);
        if (!nd) return IFK_FAIL(IFK_ERR_OOM, "out of memory indexing %s (%d documents)", c->path, c->n);
        c->docs = nd;
        *cap = nc;
    }
    char *id = strdup(ld->id);
    if (!id) return IFK_FAIL(IFK_ERR_OOM, "out of memory indexing %s (%d documents)", c->path, c->n);
    c->docs[c->n++] = (ifk_corpus_doc){
        .id = id,
        .line = line,
        .offset = off,
        .length = len,
        .size = ld->text ? ld->text_len : 4 * (size_t)ld->n_tokens,
    };
    return IFK_OK;
}

/* Opens path for reading a regular file; "PATH: cannot open: why" otherwise. */
static ifk_status open_(const char *path, int *fd_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path,
                        S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file (the corpus is re-read by offset)");
    }
    *fd_out = fd;
    return IFK_OK;
}

ifk_status ifk_corpus_index(ifk_corpus *c, const char *path, int skip_bad) {
    IFK_CHECK_ARG(c && path, "ifk_corpus_index: NULL argument");
    memset(c, 0, sizeof *c);
    size_t pl = strlen(path);
    IFK_CHECK_ARG(pl > 0, "corpus: empty path");
    IFK_CHECK_ARG(pl < sizeof c->path, "%.64s...: path too long (at most %zu bytes)", path, sizeof c->path - 1);
    memcpy(c->path, path, pl + 1);

    int fd;
    IFK_CHECK(open_(path, &fd));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return IFK_FAIL(e == ENOMEM ? IFK_ERR_OOM : IFK_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }

    char *buf = NULL;
    size_t bufcap = 0, docs_cap = 0;
    ifk_strmap *ids = NULL;
    ifk_status st = ifk_strmap_create(&ids, 1024);
    off_t pos = 0;
    long line = 0;
    char why[256], qa[96];
    while (st == IFK_OK) {
        errno = 0;
        ssize_t got = getline(&buf, &bufcap, f);
        if (got < 0) {
            if (!feof(f) || ferror(f)) {
                int e = errno;
                st = e == ENOMEM ? IFK_FAIL(IFK_ERR_OOM, "%s:%ld: out of memory reading a line", path, line + 1)
                                 : IFK_FAIL(IFK_ERR_IO, "%s:%ld: read error: %s", path, line + 1, strerror(e ? e : EIO));
            }
            break;
        }
        line++;
        off_t off = pos;
        pos += got;
        size_t len = (size_t)got;
        char *s = buf;
        if (len && s[len - 1] == '\n') len--;
        if (len && s[len - 1] == '\r') len--;
        if (line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, len -= 3, off += 3;
        if (blank_(s, len)) continue;
        s[len] = '\0';

        line_doc ld;
        st = parse_line_(s, len, &ld, why, sizeof why);
        if (st == IFK_ERR_FORMAT) {
            st = bad_line_(c, skip_bad, line, why);
            if (st != IFK_OK) break;
            continue;
        }
        if (st != IFK_OK) break;

        const size_t idlen = strlen(ld.id);
        int first;
        if (ifk_strmap_get(ids, ld.id, idlen, &first)) {
            quote_(qa, sizeof qa, ld.id);
            snprintf(why, sizeof why, "duplicate id %s (first on line %ld)", qa, c->docs[first].line);
            cJSON_Delete(ld.root);
            st = bad_line_(c, skip_bad, line, why);
            if (st != IFK_OK) break;
            continue;
        }
        st = add_doc_(c, &docs_cap, &ld, line, off, len);
        if (st == IFK_OK) st = ifk_strmap_put(ids, ld.id, idlen, c->n - 1);
        cJSON_Delete(ld.root);
        if (st != IFK_OK) break;
    }
    free(buf);
    fclose(f);
    ifk_strmap_free(&ids);
    if (st != IFK_OK) {
        ifk_trace_at(st, __FILE__, __LINE__, __func__);
        ifk_corpus_free(c);
        return st;
    }
    if (docs_cap > (size_t)c->n && c->n > 0) { /* give back the doubling slack */
        ifk_corpus_doc *nd = realloc(c->docs, (size_t)c->n * sizeof *nd);
        if (nd) c->docs = nd;
    }
    return IFK_OK;
}

/* Copies a parsed line into d and frees ld->root; 0 (d left empty) if out of memory. */
static int fill_doc_(line_doc *ld, ifk_doc *d) {
    memset(d, 0, sizeof *d);
    int ok = 0;
    d->id = strdup(ld->id);
    if (!d->id) goto done;
    if (ld->text) {
        d->text = malloc(ld->text_len + 1);
        if (!d->text) goto done;
        memcpy(d->text, ld->text, ld->text_len + 1);
        d->text_len = ld->text_len;
    }
    if (ld->tokens) {
        d->tokens = malloc(sizeof *d->tokens * (ld->n_tokens ? (size_t)ld->n_tokens : 1));
        if (!d->tokens) goto done;
        int k = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, ld->tokens) d->tokens[k++] = (int)t->valuedouble;
        d->n_tokens = ld->n_tokens;
    }
    ok = 1;
done:
    cJSON_Delete(ld->root);
    ld->root = NULL;
    if (!ok) ifk_doc_free(d);
    return ok;
}

/* ---- reading one document back ---------------------------------------------------------------- */

ifk_status ifk_corpus_read(const ifk_corpus *c, int i, ifk_doc *d) {
    IFK_CHECK_ARG(c && d, "ifk_corpus_read: NULL argument");
    memset(d, 0, sizeof *d);
    IFK_CHECK_ARG(i >= 0 && i < c->n, "%s: document %d out of range (the corpus has %d)", c->path, i, c->n);
    const ifk_corpus_doc *doc = &c->docs[i];

    int fd;
    IFK_CHECK(open_(c->path, &fd));
    char *buf = ifk_malloc(doc->length + 1, "a corpus line");
    if (!buf) {
        close(fd);
        return IFK_ERR_OOM;
    }
    ifk_status st = IFK_OK;
    size_t got = 0;
    while (got < doc->length) {
        ssize_t r = pread(fd, buf + got, doc->length - got, doc->offset + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = IFK_FAIL(IFK_ERR_IO, "%s:%ld: read error: %s", c->path, doc->line, strerror(errno));
            break;
        }
        if (r == 0) {
            st = IFK_FAIL(IFK_ERR_IO, "%s:%ld: the file ends early (it changed since it was indexed)", c->path,
                          doc->line);
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (st != IFK_OK) {
        free(buf);
        return st;
    }
    buf[doc->length] = '\0';

    line_doc ld;
    char why[256];
    st = parse_line_(buf, doc->length, &ld, why, sizeof why);
    free(buf);
    if (st == IFK_ERR_FORMAT)
        return IFK_FAIL(st, "%s:%ld: %s (the file changed since it was indexed)", c->path, doc->line, why);
    if (st != IFK_OK) return st;
    if (strcmp(ld.id, doc->id) != 0) {
        char qa[96], qb[96];
        quote_(qa, sizeof qa, ld.id);
        quote_(qb, sizeof qb, doc->id);
        cJSON_Delete(ld.root);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: id %s, indexed as %s (the file changed since it was indexed)",
                        c->path, doc->line, qa, qb);
    }

    if (!fill_doc_(&ld, d))
        return IFK_FAIL(IFK_ERR_OOM, "%s:%ld: out of memory reading the document", c->path, doc->line);
    return IFK_OK;
}

ifk_status ifk_doc_parse(const char *line, size_t len, const char *where, ifk_doc *d) {
    IFK_CHECK_ARG(d && (line || !len), "ifk_doc_parse: NULL argument");
    memset(d, 0, sizeof *d);
    if (!where) where = "corpus line";
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    char *buf = ifk_malloc(len + 1, "a corpus line");
    if (!buf) return IFK_ERR_OOM;
    if (len) memcpy(buf, line, len);
    buf[len] = '\0';
    line_doc ld;
    char why[256];
    ifk_status st = parse_line_(buf, len, &ld, why, sizeof why);
    free(buf);
    if (st == IFK_ERR_FORMAT) return IFK_FAIL(st, "%s: %s", where, why);
    if (st != IFK_OK) return st;
    if (!fill_doc_(&ld, d)) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading the document", where);
    return IFK_OK;
}

void ifk_doc_free(ifk_doc *d) {
    if (!d) return;
    free(d->id);
    free(d->text);
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

void ifk_corpus_free(ifk_corpus *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->docs[i].id);
    free(c->docs);
    for (int i = 0; i < c->n_bad; i++) free(c->bad[i]);
    free(c->bad);
    memset(c, 0, sizeof *c);
}
