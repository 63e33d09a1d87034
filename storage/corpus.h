/* corpus.h — the corpus reader: JSONL, one document per line, {"id": ..., "text": ...} and/or
 * {"tokens": [ids...]}; other fields are metadata and ignored. Parsed with cJSON. Local.
 * Every problem is reported as "FILE:LINE: what is wrong".
 *
 * Two ways to read a corpus:
 * - streaming (the cache coordinator), memory independent of the file's length: ifk_corpus_check
 *   validates every line in one pass (duplicate ids found with a temporary on-disk SQLite table,
 *   not in memory), so a bad corpus is refused before anything is cached; ifk_corpus_stream_start
 *   and ifk_corpus_stream_next then read the file a second time and hand its documents out longest
 *   first within a look-ahead window of W documents (an entry of 48 bytes each, no id held), and
 *   ifk_corpus_read_line/_entry re-read one line by its byte range when it is handed out. Held: the
 *   window, SQLite's page cache (IFK_CORPUS_DUP_CACHE_KIB), one line's buffer, and under skip_bad
 *   the messages of the bad lines (to print at the end) — O(W + bad lines), not O(lines).
 *   The temporary table lives in SQLite's temporary directory (SQLITE_TMPDIR, else TMPDIR, else
 *   /var/tmp or /tmp), ~20 bytes plus the id per line, and is removed when the check ends.
 *   Measured (jobs/bench_corpus_mem.sh, docs/benchmarks.md): flat from 2,000 to 1,000,000 lines.
 * - in memory (ifk_corpus_index, the tests and small tools): the same check, keeping an
 *   ifk_corpus_doc (40 bytes) and the id string per line — O(lines). */
#ifndef IFK_CORPUS_H
#define IFK_CORPUS_H

#include <stddef.h>
#include <sys/types.h>

#include "chunk.h"
#include "json.h" /* ifk_utf8_valid, ifk_json_record */
#include "status.h"

typedef struct {
    char *id;           /* owned; a string id, or an integer id written in decimal */
    long line;          /* 1-based line number in the file */
    off_t offset;       /* byte offset of the line */
    size_t length;      /* bytes of the line, without the newline */
    size_t size;        /* text bytes, or 4 x tokens when there is no text: the "longest first" key */
} ifk_corpus_doc;

typedef struct {
    char path[1024];
    ifk_corpus_doc *docs; /* (n) in file order */
    int n;
    char **bad;           /* (n_bad) "FILE:LINE: problem" for lines skipped under skip_bad */
    int n_bad;
    int vocab;            /* token ids must be below it (0: not checked) */
} ifk_corpus;

/* One document's content, as read back by ifk_corpus_read. */
typedef struct {
    char *id;      /* owned */
    char *text;    /* owned, NUL-terminated (text_len bytes, may hold no NUL inside); NULL if absent */
    size_t text_len;
    int *tokens;   /* owned; NULL if the line has no "tokens" */
    int n_tokens;
} ifk_doc;

/* Indexes a corpus (ifk_corpus_check, every entry and its id kept in c->docs). Each bad line — invalid JSON, not an object, missing or non-string "id"
 * (integers are accepted), an id breaking ifk_id_check, duplicate id, neither or both of "text"
 * (a non-empty string) and "tokens" (a non-empty array of non-negative integers, below vocab when
 * vocab > 0), invalid UTF-8 in text — fails with "FILE:LINE: ..." unless skip_bad, which records
 * the message in c->bad and goes on. Blank lines are ignored. A missing or unreadable file fails
 * with "FILE: cannot open ...". ifk_corpus_index checks no vocabulary. */
ifk_status ifk_corpus_index_vocab(ifk_corpus *c, const char *path, int skip_bad, int vocab);
ifk_status ifk_corpus_index(ifk_corpus *c, const char *path, int skip_bad);

/* Reads document i (0 <= i < c->n) again from the file. */
ifk_status ifk_corpus_read(const ifk_corpus *c, int i, ifk_doc *d);

/* Parses one corpus line (the bytes of a line, as a worker receives it) with the same checks as
 * ifk_corpus_index; messages start with `where` (e.g. "corpus.jsonl:17"). */
ifk_status ifk_doc_parse(const char *line, size_t len, const char *where, ifk_doc *d);

void ifk_doc_free(ifk_doc *d);
void ifk_corpus_free(ifk_corpus *c);

/* ---- streaming ---------------------------------------------------------------------------------- */

#define IFK_CORPUS_WINDOW 16384      /* default look-ahead of ifk_corpus_stream_start, documents */
#define IFK_CORPUS_DUP_CACHE_KIB 2048 /* the duplicate check's SQLite page cache */

/* A good document's place in the file. */
typedef struct {
    long ordinal;       /* 0, 1, ...: the good documents in file order */
    long line;          /* 1-based line number */
    off_t offset;       /* byte offset of the line */
    size_t length;      /* bytes of the line, without the newline */
    size_t size;        /* text bytes, or 4 x tokens: the "longest first" key (ifk_doc_size) */
    unsigned long long hash; /* FNV-1a of the line's bytes: a re-read checks the file did not change */
} ifk_corpus_entry;

typedef struct {
    char path[1024];
    int vocab, skip_bad;
    ifk_split split;      /* the store's split: a text it leaves nothing of is a bad line */
    long n;               /* good documents (ifk_corpus_check) */
    char **bad;           /* (n_bad) "FILE:LINE: problem" of the lines skipped under skip_bad */
    long *bad_lines;      /* (n_bad) their line numbers, ascending */
    int n_bad;
    long long file_size;  /* the file as checked: the second pass refuses a file changed since */
    long long mtime_ns;
    /* the second pass (ifk_corpus_stream_start) */
    void *f;              /* FILE * */
    char *buf;
    size_t bufcap;
    off_t pos;
    long line, ordinal;
    int next_bad, eof;
    ifk_corpus_entry *win; /* (window) the look-ahead, a heap: longest first, then file order */
    int window, n_win;
    int (*keep)(const char *id, void *ctx);
    void *keep_ctx;
} ifk_corpus_stream;

/* Pass 1: checks every line of path (the rules of ifk_corpus_index_vocab, duplicate ids included,
 * message "FILE:LINE: duplicate id "x" (first on line K)"; and a text that `split` leaves nothing
 * of (ifk_chunk_text_empty: under IFK_SPLIT_PARAGRAPHS a text of only blank lines, which would
 * give no tokens when cached: "FILE:LINE: "text" holds no paragraph ...") in one streaming pass, and calls
 * each(e, id, ctx) for every good document in file order (each may be NULL; a non-OK return stops
 * the check and is returned). A bad line fails unless skip_bad, which records it in s->bad and
 * goes on. Memory: O(1) in the lines, plus the bad lines' messages (corpus.h's head). s is zeroed
 * first; free it with ifk_corpus_stream_free, also on failure. */
ifk_status ifk_corpus_check(ifk_corpus_stream *s, const char *path, int skip_bad, int vocab, ifk_split split,
                            ifk_status (*each)(const ifk_corpus_entry *e, const char *id, void *ctx), void *ctx);

/* Pass 2, after a successful ifk_corpus_check: reads the file again, holding at most `window`
 * documents (<= 0: IFK_CORPUS_WINDOW) that keep(id, ctx) accepts (keep NULL: all); the look-ahead
 * is filled before it returns. Skips the lines the check found bad. A file whose size or
 * modification time changed since the check is refused ("FILE: changed since it was checked"). */
ifk_status ifk_corpus_stream_start(ifk_corpus_stream *s, int window, int (*keep)(const char *id, void *ctx),
                                   void *ctx);
/* The next document to hand out: the longest held (ties: file order), then one more is read in.
 * *got = 0 once every document was handed out. With a window at least the number of documents,
 * the order is exactly longest first over the whole corpus. A line that no longer parses, or more
 * documents than the check counted, is "FILE:LINE: ... (the file changed since it was checked)". */
ifk_status ifk_corpus_stream_next(ifk_corpus_stream *s, ifk_corpus_entry *e, int *got);

/* Re-reads entry e's line: *line malloc'd, e->length bytes plus a NUL (the caller frees). Fails
 * with "FILE:LINE: ... (the file changed since it was checked)" if its bytes differ. */
ifk_status ifk_corpus_read_line(const ifk_corpus_stream *s, const ifk_corpus_entry *e, char **line);
/* Re-reads and parses entry e's document. */
ifk_status ifk_corpus_read_entry(const ifk_corpus_stream *s, const ifk_corpus_entry *e, ifk_doc *d);
void ifk_corpus_stream_free(ifk_corpus_stream *s);

/* The "longest first" key of a parsed document: text bytes, or 4 x tokens. */
size_t ifk_doc_size(const ifk_doc *d);

/* ---- document ids: one rule everywhere (corpus, query sets, --docs, migrate) ----
 * An id is a non-empty string of at most IFK_ID_MAX bytes of valid UTF-8 without commas (--docs
 * lists ids as A,B,...) and without control characters (C0 U+0000..U+001F and DEL: line output
 * such as `inspect --docs` and `search` prints one id per line, fields separated by spaces);
 * a JSON integer of magnitude below 2^53 is the id written in decimal ("7"). */
#define IFK_ID_MAX 255

/* 1 if id is a valid id; otherwise 0 and why[nwhy] holds the problem, e.g. `"id" is longer than
 * 255 bytes (600)` or `"id" "a,b" contains a comma ...`. */
int ifk_id_check(const char *id, char *why, size_t nwhy);
/* The id of a JSON value (a string, or an integer below 2^53 in magnitude, written into
 * numid[32]) checked with ifk_id_check; *id points into v or numid. 0 with why set otherwise. */
int ifk_id_from_json(const struct cJSON *v, char numid[32], const char **id, char *why, size_t nwhy);
/* Writes s quoted and escaped (quotes, backslashes, control characters) into out[cap] (cap >= 80)
 * for a message: a value longer than fits is cut in the middle, its first bytes then `…(N bytes)`,
 * so a message holding it is never cut before its reason. */
void ifk_quote(char *out, size_t cap, const char *s);

#endif
