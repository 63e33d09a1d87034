/* corpus.c — the JSONL corpus reader behind corpus.h.
 *
 * The check (ifk_corpus_check) reads the file once with getline (no line-length limit), parses
 * each non-blank line with cJSON and checks it; ids go into a temporary SQLite table (an on-disk
 * B-tree, its page cache capped) to find duplicates, so nothing is held per line. The stream
 * (ifk_corpus_stream_*) reads the file a second time, skipping the lines the check found bad, and
 * keeps a heap of at most `window` entries; ifk_corpus_index keeps every entry and id instead.
 * ifk_corpus_read / ifk_corpus_read_entry pread the recorded byte range and run the same checks
 * again, so every path accepts exactly the same lines.
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
 * - "text" or "tokens" present with the wrong type is an error (null is a wrong type, not an
 *   absence). Both present is an error (the K/V would come from one, the BM25 index from the
 *   other). An empty text "" and an empty tokens array [] are errors: a document of no tokens
 *   has nothing to cache. With a vocabulary size (ifk_corpus_index_vocab), a token id outside
 *   it is an error found when the corpus is read, before anything is cached.
 * - A line can be both bad and a duplicate; it is reported for the first problem found, in the
 *   order: JSON, object, NUL, id, text/tokens, duplicate.
 * - ids follow ifk_id_check (corpus.h): at most IFK_ID_MAX bytes, no commas, no control
 *   characters. Ids quoted in messages are escaped and cut in the middle (ifk_quote), so every
 *   message stays one line and keeps its reason.
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

#include <sqlite3.h>

#include "heap.h"

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

/* The escaped form of the character at p (its whole UTF-8 sequence) into esc[8]; its length. */
static size_t escape_char_(const unsigned char *p, char esc[8], size_t *used) {
    *used = 1;
    if (*p == '"' || *p == '\\') return (size_t)snprintf(esc, 8, "\\%c", *p);
    if (*p < 0x20 || *p == 0x7F) return (size_t)snprintf(esc, 8, "\\u%04x", *p);
    size_t k = 1;
    if (*p >= 0x80)
        while (k < 4 && (p[k] & 0xC0) == 0x80) k++;
    memcpy(esc, p, k);
    *used = k;
    return k;
}

void ifk_quote(char *out, size_t cap, const char *s) {
    const size_t n = strlen(s);
    size_t need = 2; /* the quotes */
    char esc[8];
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t used;
        need += escape_char_(p, esc, &used);
        p += used;
    }
    char tail[48] = "\"";
    if (need >= cap) snprintf(tail, sizeof tail, "\xE2\x80\xA6(%zu bytes)\"", n);
    /* the whole value, or its first 40 bytes (fewer if cap is small) */
    const size_t head = need < cap ? need : (cap - strlen(tail) - 2 < 40 ? cap - strlen(tail) - 2 : 40);
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t used, k = escape_char_(p, esc, &used);
        if (o + k > head) break;
        memcpy(out + o, esc, k);
        o += k;
        p += used;
    }
    snprintf(out + o, cap - o, "%s", tail);
}

int ifk_id_check(const char *id, char *why, size_t nwhy) {
    const size_t n = strlen(id);
    char q[96];
    if (!n) return snprintf(why, nwhy, "empty \"id\""), 0;
    if (n > IFK_ID_MAX) return snprintf(why, nwhy, "\"id\" is longer than %d bytes (%zu)", IFK_ID_MAX, n), 0;
    if (!ifk_utf8_valid(id, n)) return snprintf(why, nwhy, "invalid UTF-8 in \"id\""), 0;
    ifk_quote(q, sizeof q, id);
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return snprintf(why, nwhy, "\"id\" %s holds a control character (U+%04X)", q, *p), 0;
    if (strchr(id, ',')) /* --docs A,B,... and the eval query sets name documents by id */
        return snprintf(why, nwhy, "\"id\" %s contains a comma (ids are listed as --docs A,B,...)", q), 0;
    return 1;
}

/* The integral value of a JSON number in [lo, hi], or 0 if it is not one. */
static int integral_(const cJSON *v, double lo, double hi, double *out);

int ifk_id_from_json(const cJSON *v, char numid[32], const char **id, char *why, size_t nwhy) {
    double num;
    *id = NULL;
    if (cJSON_IsString(v)) {
        *id = v->valuestring;
    } else if (integral_(v, -9007199254740991.0, 9007199254740991.0, &num)) {
        snprintf(numid, 32, "%lld", (long long)num);
        *id = numid;
    } else {
        snprintf(why, nwhy, "\"id\" is not a string or an integer (below 2^53 in magnitude)");
        return 0;
    }
    return ifk_id_check(*id, why, nwhy);
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
static ifk_status parse_line_(const char *s, size_t len, int vocab, line_doc *d, char *why, size_t nwhy) {
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
    }
    if (!ifk_id_from_json(id, d->numid, &d->id, why, nwhy)) goto bad;

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
        if (!d->text_len) { /* a document of no tokens: nothing to cache or to query */
            snprintf(why, nwhy, "\"text\" is empty");
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
            if (vocab > 0 && num >= vocab) {
                snprintf(why, nwhy, "\"tokens\"[%d] = %.0f is outside the model's vocabulary (0..%d)", n, num, vocab - 1);
                goto bad;
            }
            if (n == INT_MAX) {
                snprintf(why, nwhy, "\"tokens\" has more than %d entries", INT_MAX);
                goto bad;
            }
            n++;
        }
        if (!n) {
            snprintf(why, nwhy, "\"tokens\" is empty");
            goto bad;
        }
        d->tokens = tokens;
        d->n_tokens = n;
    }
    if (text && tokens) { /* the K/V would come from one and the retrieval index from the other */
        snprintf(why, nwhy, "give \"text\" or \"tokens\", not both");
        goto bad;
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

/* A bad line: fail, or under skip_bad record "FILE:LINE: why" and its line number, and go on (IFK_OK). */
static ifk_status bad_line_(ifk_corpus_stream *s, long line, const char *why) {
    if (!s->skip_bad) return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s", s->path, line, why);
    if (s->n_bad == INT_MAX) return IFK_FAIL(IFK_ERR_OOM, "%s: more than %d bad lines", s->path, INT_MAX);
    int k = snprintf(NULL, 0, "%s:%ld: %s", s->path, line, why);
    char *m = ifk_malloc((size_t)k + 1, "a corpus message");
    if (!m) return IFK_ERR_OOM;
    snprintf(m, (size_t)k + 1, "%s:%ld: %s", s->path, line, why);
    if ((s->n_bad & (s->n_bad - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to double */
        size_t cap = s->n_bad ? 2 * (size_t)s->n_bad : 1;
        char **nb = realloc(s->bad, cap * sizeof *nb);
        if (nb) s->bad = nb;
        long *nl = nb ? realloc(s->bad_lines, cap * sizeof *nl) : NULL;
        if (nl) s->bad_lines = nl;
        if (!nb || !nl) {
            free(m);
            return IFK_FAIL(IFK_ERR_OOM, "out of memory listing the bad lines of %s", s->path);
        }
    }
    s->bad_lines[s->n_bad] = line;
    s->bad[s->n_bad++] = m;
    return IFK_OK;
}

/* Opens path for reading a regular file; "PATH: cannot open: why" otherwise. *st_out (may be
 * NULL): its stat. */
static ifk_status open_(const char *path, int *fd_out, struct stat *st_out) {
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
    if (st_out) *st_out = st;
    *fd_out = fd;
    return IFK_OK;
}

/* Opens s->path as s->f for reading line by line, from the start; *st its stat. */
static ifk_status open_lines_(ifk_corpus_stream *s, struct stat *st) {
    int fd = -1;
    IFK_CHECK(open_(s->path, &fd, st));
    s->f = fdopen(fd, "rb");
    if (!s->f) {
        int e = errno;
        close(fd);
        return IFK_FAIL(e == ENOMEM ? IFK_ERR_OOM : IFK_ERR_IO, "%s: cannot open: %s", s->path, strerror(e));
    }
    s->pos = 0, s->line = 0, s->eof = 0;
    return IFK_OK;
}

static void close_lines_(ifk_corpus_stream *s) {
    if (s->f) fclose(s->f);
    s->f = NULL;
    free(s->buf);
    s->buf = NULL, s->bufcap = 0;
}

/* The next non-blank line of s->f: 1 with *out (NUL-terminated, in s->buf; the newline, one '\r'
 * and line 1's byte order mark cut) of *len bytes at byte *off; 0 at the end of the file; -1 on
 * a read error (*st set). s->line counts every line, blank ones too. */
static int next_line_(ifk_corpus_stream *s, char **out, size_t *len, off_t *off, ifk_status *st) {
    FILE *f = s->f;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&s->buf, &s->bufcap, f);
        if (got < 0) {
            if (feof(f) && !ferror(f)) return 0;
            int e = errno;
            *st = e == ENOMEM ? IFK_FAIL(IFK_ERR_OOM, "%s:%ld: out of memory reading a line", s->path, s->line + 1)
                              : IFK_FAIL(IFK_ERR_IO, "%s:%ld: read error: %s", s->path, s->line + 1, strerror(e ? e : EIO));
            return -1;
        }
        s->line++;
        *off = s->pos;
        s->pos += got;
        size_t n = (size_t)got;
        char *p = s->buf;
        if (n && p[n - 1] == '\n') n--;
        if (n && p[n - 1] == '\r') n--;
        if (s->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3, n -= 3, *off += 3;
        if (blank_(p, n)) continue;
        p[n] = '\0';
        *out = p, *len = n;
        return 1;
    }
}

static unsigned long long fnv1a_(const char *p, size_t n) {
    unsigned long long h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

static ifk_corpus_entry entry_(const line_doc *ld, long ordinal, long line, off_t off, const char *p, size_t len) {
    return (ifk_corpus_entry){.ordinal = ordinal, .line = line, .offset = off, .length = len,
                              .size = ld->text ? ld->text_len : 4 * (size_t)ld->n_tokens, .hash = fnv1a_(p, len)};
}

/* ---- the duplicate check: a temporary SQLite table of (id, first line) ---------------------------- */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *ins, *get;
} dupset_;

static ifk_status dup_fail_(const dupset_ *d, const char *path, const char *what) {
    return IFK_FAIL(IFK_ERR_IO, "%s: duplicate-id check: %s: %s (its temporary file goes to SQLITE_TMPDIR, TMPDIR or "
                    "/var/tmp)", path, what, d->db ? sqlite3_errmsg(d->db) : "out of memory");
}

/* "" is a private temporary database: its pages spill to a file SQLite deletes when it is closed. */
static ifk_status dup_open_(dupset_ *d, const char *path) {
    memset(d, 0, sizeof *d);
    char sql[320];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
             "CREATE TABLE ids(id TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID; BEGIN;",
             IFK_CORPUS_DUP_CACHE_KIB);
    if (sqlite3_open_v2("", &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, "INSERT INTO ids VALUES (?1, ?2)", -1, &d->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, "SELECT line FROM ids WHERE id = ?1", -1, &d->get, NULL) != SQLITE_OK)
        return dup_fail_(d, path, "cannot create its table");
    return IFK_OK;
}

static void dup_close_(dupset_ *d) {
    sqlite3_finalize(d->ins);
    sqlite3_finalize(d->get);
    sqlite3_close(d->db);
    memset(d, 0, sizeof *d);
}

/* Records id first seen on `line`: 0 if it is new, else the line it was first on (-1: error, *st set). */
static long dup_put_(dupset_ *d, const char *path, const char *id, long line, ifk_status *st) {
    sqlite3_bind_text(d->ins, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(d->ins, 2, line);
    int rc = sqlite3_step(d->ins);
    sqlite3_reset(d->ins);
    if (rc == SQLITE_DONE) return 0;
    long first = -1;
    if (rc == SQLITE_CONSTRAINT) {
        sqlite3_bind_text(d->get, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(d->get) == SQLITE_ROW) first = (long)sqlite3_column_int64(d->get, 0);
        sqlite3_reset(d->get);
    }
    if (first <= 0) *st = dup_fail_(d, path, "cannot record an id");
    return first <= 0 ? -1 : first;
}

/* ---- pass 1: the check ----------------------------------------------------------------------------- */

ifk_status ifk_corpus_check(ifk_corpus_stream *s, const char *path, int skip_bad, int vocab,
                            ifk_status (*each)(const ifk_corpus_entry *e, const char *id, void *ctx), void *ctx) {
    IFK_CHECK_ARG(s && path, "ifk_corpus_check: NULL argument");
    memset(s, 0, sizeof *s);
    IFK_CHECK_ARG(vocab >= 0, "ifk_corpus_check: vocabulary size %d", vocab);
    s->vocab = vocab, s->skip_bad = skip_bad;
    size_t pl = strlen(path);
    IFK_CHECK_ARG(pl > 0, "corpus: empty path");
    IFK_CHECK_ARG(pl < sizeof s->path, "%.64s...: path too long (at most %zu bytes)", path, sizeof s->path - 1);
    memcpy(s->path, path, pl + 1);

    struct stat fst;
    IFK_CHECK(open_lines_(s, &fst));
    s->file_size = (long long)fst.st_size;
    s->mtime_ns = (long long)fst.st_mtim.tv_sec * 1000000000LL + fst.st_mtim.tv_nsec;
    dupset_ d;
    ifk_status st = dup_open_(&d, path);
    char why[256], qa[96];
    while (st == IFK_OK) {
        char *p;
        size_t len;
        off_t off;
        if (next_line_(s, &p, &len, &off, &st) <= 0) break;
        line_doc ld;
        st = parse_line_(p, len, vocab, &ld, why, sizeof why);
        if (st == IFK_ERR_FORMAT) {
            st = bad_line_(s, s->line, why);
            continue;
        }
        if (st != IFK_OK) break;
        long first = dup_put_(&d, path, ld.id, s->line, &st);
        if (first > 0) {
            ifk_quote(qa, sizeof qa, ld.id);
            snprintf(why, sizeof why, "duplicate id %s (first on line %ld)", qa, first);
            st = bad_line_(s, s->line, why);
        } else if (first == 0) {
            const ifk_corpus_entry e = entry_(&ld, s->n++, s->line, off, p, len);
            if (each) st = each(&e, ld.id, ctx);
        }
        cJSON_Delete(ld.root);
    }
    dup_close_(&d);
    close_lines_(s);
    if (st != IFK_OK) ifk_trace_at(st, __FILE__, __LINE__, __func__);
    return st;
}

/* ---- pass 2: the stream ----------------------------------------------------------------------------- */

/* The window's order: longest first, then file order (a strict order: ordinals are distinct). */
static int win_before_(const void *a, const void *b) {
    const ifk_corpus_entry *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size;
    return x->ordinal < y->ordinal;
}

static ifk_status changed_(const ifk_corpus_stream *s, const char *why) {
    return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: %s (the file changed since it was checked)", s->path, s->line, why);
}

/* Reads lines until one more document is in the window, or to the end of the file. After each
 * line the file's size and modification time must still be pass 1's: an edit in place (same size)
 * to a line not read yet would otherwise go unseen — an id turned into another's duplicate was
 * cached as a silent overwrite. An edit to a line already read is caught by its hash on re-read. */
static ifk_status read_one_(ifk_corpus_stream *s) {
    char why[256];
    while (!s->eof) {
        char *p;
        size_t len;
        off_t off;
        ifk_status st = IFK_OK;
        int r = next_line_(s, &p, &len, &off, &st);
        if (r < 0) return st;
        struct stat fst;
        if (fstat(fileno(s->f), &fst) != 0) return changed_(s, "it can no longer be stat()ed");
        if ((long long)fst.st_size != s->file_size ||
            (long long)fst.st_mtim.tv_sec * 1000000000LL + fst.st_mtim.tv_nsec != s->mtime_ns)
            return changed_(s, "its size or modification time changed");
        if (r == 0) {
            s->eof = 1;
            if (s->ordinal != s->n) {
                snprintf(why, sizeof why, "%ld documents, %ld when it was checked", s->ordinal, s->n);
                return changed_(s, why);
            }
            break;
        }
        if (s->next_bad < s->n_bad && s->bad_lines[s->next_bad] == s->line) { /* skipped by the check */
            s->next_bad++;
            continue;
        }
        line_doc ld;
        st = parse_line_(p, len, s->vocab, &ld, why, sizeof why);
        if (st == IFK_ERR_FORMAT) return changed_(s, why);
        if (st != IFK_OK) return st;
        if (s->ordinal == s->n) {
            cJSON_Delete(ld.root);
            return changed_(s, "more documents than when it was checked");
        }
        const ifk_corpus_entry e = entry_(&ld, s->ordinal++, s->line, off, p, len);
        const int keep = !s->keep || s->keep(ld.id, s->keep_ctx);
        cJSON_Delete(ld.root);
        if (!keep) continue;
        ifk_heap h = {.base = s->win, .size = sizeof *s->win, .n = s->n_win, .before = win_before_};
        ifk_heap_push(&h, &e);
        s->n_win = h.n;
        return IFK_OK;
    }
    return IFK_OK;
}

ifk_status ifk_corpus_stream_start(ifk_corpus_stream *s, int window, int (*keep)(const char *id, void *ctx),
                                   void *ctx) {
    IFK_CHECK_ARG(s && s->path[0] && !s->f, "ifk_corpus_stream_start: a checked corpus, not started");
    s->window = window > 0 ? window : IFK_CORPUS_WINDOW;
    if (s->window > s->n) s->window = s->n > 0 ? (int)s->n : 1; /* never more than pass 1 found */
    s->keep = keep, s->keep_ctx = ctx;
    s->win = ifk_malloc(sizeof *s->win * (size_t)s->window, "the corpus look-ahead");
    if (!s->win) return IFK_ERR_OOM;
    s->n_win = 0, s->ordinal = 0, s->next_bad = 0;
    struct stat fst;
    IFK_CHECK(open_lines_(s, &fst));
    if ((long long)fst.st_size != s->file_size ||
        (long long)fst.st_mtim.tv_sec * 1000000000LL + fst.st_mtim.tv_nsec != s->mtime_ns)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: changed since it was checked (size or modification time); rerun", s->path);
    while (s->n_win < s->window && !s->eof) IFK_CHECK(read_one_(s));
    return IFK_OK;
}

ifk_status ifk_corpus_stream_next(ifk_corpus_stream *s, ifk_corpus_entry *e, int *got) {
    IFK_CHECK_ARG(s && e && got && s->win, "ifk_corpus_stream_next: a started stream");
    *got = 0;
    if (!s->n_win) return IFK_OK;
    ifk_heap h = {.base = s->win, .size = sizeof *s->win, .n = s->n_win, .before = win_before_};
    ifk_heap_pop(&h, e);
    s->n_win = h.n;
    *got = 1;
    return read_one_(s);
}

void ifk_corpus_stream_free(ifk_corpus_stream *s) {
    if (!s) return;
    close_lines_(s);
    for (int i = 0; i < s->n_bad; i++) free(s->bad[i]);
    free(s->bad);
    free(s->bad_lines);
    free(s->win);
    memset(s, 0, sizeof *s);
}

/* ---- the in-memory index ---------------------------------------------------------------------- */

typedef struct {
    ifk_corpus *c;
    size_t cap;
} index_ctx_;

static ifk_status index_each_(const ifk_corpus_entry *e, const char *id, void *ctx) {
    index_ctx_ *x = ctx;
    ifk_corpus *c = x->c;
    if (c->n == INT_MAX)
        return IFK_FAIL(IFK_ERR_OOM, "%s:%ld: more than %d documents", c->path, e->line, INT_MAX);
    if ((size_t)c->n == x->cap) {
        size_t nc = x->cap ? 2 * x->cap : 1024;
        ifk_corpus_doc *nd = realloc(c->docs, nc * sizeof *nd);
        if (!nd) return IFK_FAIL(IFK_ERR_OOM, "out of memory indexing %s (%d documents)", c->path, c->n);
        c->docs = nd;
        x->cap = nc;
    }
    char *dup = strdup(id);
    if (!dup) return IFK_FAIL(IFK_ERR_OOM, "out of memory indexing %s (%d documents)", c->path, c->n);
    c->docs[c->n++] = (ifk_corpus_doc){.id = dup, .line = e->line, .offset = e->offset, .length = e->length,
                                       .size = e->size};
    return IFK_OK;
}

ifk_status ifk_corpus_index(ifk_corpus *c, const char *path, int skip_bad) {
    return ifk_corpus_index_vocab(c, path, skip_bad, 0);
}

ifk_status ifk_corpus_index_vocab(ifk_corpus *c, const char *path, int skip_bad, int vocab) {
    IFK_CHECK_ARG(c && path, "ifk_corpus_index: NULL argument");
    memset(c, 0, sizeof *c);
    c->vocab = vocab;
    if (strlen(path) < sizeof c->path) memcpy(c->path, path, strlen(path) + 1); /* else the check refuses it */
    ifk_corpus_stream s;
    index_ctx_ x = {.c = c};
    ifk_status st = ifk_corpus_check(&s, path, skip_bad, vocab, index_each_, &x);
    if (st == IFK_OK) { /* the bad lines' messages move over */
        c->bad = s.bad, c->n_bad = s.n_bad;
        s.bad = NULL, s.n_bad = 0;
    }
    ifk_corpus_stream_free(&s);
    if (st != IFK_OK) {
        ifk_corpus_free(c);
        return st;
    }
    if (x.cap > (size_t)c->n && c->n > 0) { /* give back the doubling slack */
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

/* Reads `length` bytes at `offset` of path (the line `line`) into *out, NUL-terminated. */
static ifk_status pread_line_(const char *path, long line, off_t offset, size_t length, char **out) {
    *out = NULL;
    int fd = -1;
    IFK_CHECK(open_(path, &fd, NULL));
    char *buf = ifk_malloc(length + 1, "a corpus line");
    if (!buf) {
        close(fd);
        return IFK_ERR_OOM;
    }
    ifk_status st = IFK_OK;
    size_t got = 0;
    while (got < length) {
        ssize_t r = pread(fd, buf + got, length - got, offset + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = IFK_FAIL(IFK_ERR_IO, "%s:%ld: read error: %s", path, line, strerror(errno));
            break;
        }
        if (r == 0) {
            st = IFK_FAIL(IFK_ERR_IO, "%s:%ld: the file ends early (it changed since it was indexed)", path, line);
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (st != IFK_OK) {
        free(buf);
        return st;
    }
    buf[length] = '\0';
    *out = buf;
    return IFK_OK;
}

ifk_status ifk_corpus_read(const ifk_corpus *c, int i, ifk_doc *d) {
    IFK_CHECK_ARG(c && d, "ifk_corpus_read: NULL argument");
    memset(d, 0, sizeof *d);
    IFK_CHECK_ARG(i >= 0 && i < c->n, "%s: document %d out of range (the corpus has %d)", c->path, i, c->n);
    const ifk_corpus_doc *doc = &c->docs[i];
    char *buf;
    IFK_CHECK(pread_line_(c->path, doc->line, doc->offset, doc->length, &buf));

    line_doc ld;
    char why[256];
    ifk_status st = parse_line_(buf, doc->length, c->vocab, &ld, why, sizeof why);
    free(buf);
    if (st == IFK_ERR_FORMAT)
        return IFK_FAIL(st, "%s:%ld: %s (the file changed since it was indexed)", c->path, doc->line, why);
    if (st != IFK_OK) return st;
    if (strcmp(ld.id, doc->id) != 0) {
        char qa[96], qb[96];
        ifk_quote(qa, sizeof qa, ld.id);
        ifk_quote(qb, sizeof qb, doc->id);
        cJSON_Delete(ld.root);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: id %s, indexed as %s (the file changed since it was indexed)",
                        c->path, doc->line, qa, qb);
    }

    if (!fill_doc_(&ld, d))
        return IFK_FAIL(IFK_ERR_OOM, "%s:%ld: out of memory reading the document", c->path, doc->line);
    return IFK_OK;
}

ifk_status ifk_corpus_read_line(const ifk_corpus_stream *s, const ifk_corpus_entry *e, char **line) {
    IFK_CHECK_ARG(s && e && line, "ifk_corpus_read_line: NULL argument");
    IFK_CHECK(pread_line_(s->path, e->line, e->offset, e->length, line));
    if (fnv1a_(*line, e->length) != e->hash) {
        free(*line);
        *line = NULL;
        return IFK_FAIL(IFK_ERR_FORMAT, "%s:%ld: the line's bytes differ (the file changed since it was checked)",
                        s->path, e->line);
    }
    return IFK_OK;
}

ifk_status ifk_corpus_read_entry(const ifk_corpus_stream *s, const ifk_corpus_entry *e, ifk_doc *d) {
    IFK_CHECK_ARG(d, "ifk_corpus_read_entry: NULL argument");
    memset(d, 0, sizeof *d);
    char *buf;
    IFK_CHECK(ifk_corpus_read_line(s, e, &buf));
    line_doc ld;
    char why[256];
    ifk_status st = parse_line_(buf, e->length, s->vocab, &ld, why, sizeof why);
    free(buf);
    if (st == IFK_ERR_FORMAT) /* the same bytes parsed when checked: only a changed check could get here */
        return IFK_FAIL(st, "%s:%ld: %s", s->path, e->line, why);
    if (st != IFK_OK) return st;
    if (!fill_doc_(&ld, d))
        return IFK_FAIL(IFK_ERR_OOM, "%s:%ld: out of memory reading the document", s->path, e->line);
    return IFK_OK;
}

size_t ifk_doc_size(const ifk_doc *d) { return d->text ? d->text_len : 4 * (size_t)d->n_tokens; }

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
    ifk_status st = parse_line_(buf, len, 0, &ld, why, sizeof why);
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
