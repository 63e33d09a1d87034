/* corpus.h — the corpus reader: JSONL, one document per line, {"id": ..., "text": ...} and/or
 * {"tokens": [ids...]}; other fields are metadata and ignored. Parsed with cJSON. Local.
 *
 * ifk_corpus_index makes one pass over the file and keeps only an index (id, line, byte range,
 * size); ifk_corpus_read re-reads one line when its document is handed out, so the coordinator
 * never holds the corpus text. Every problem is reported as "FILE:LINE: what is wrong".
 *
 * Memory is O(lines), not bounded: an ifk_corpus_doc (40 bytes) and its id string per line, and,
 * while indexing, a hash set of every id (2 to 4 slots of 32 bytes per line, the table doubling,
 * plus a copy of the id) for the duplicate check, freed at the end. Measured with
 * 8-character ids (jobs/bench_corpus_mem.sh, docs/benchmarks.md): ~103 bytes a line after
 * indexing, ~161 at the peak — 0.10 / 0.16 GB per million lines. */
#ifndef IFK_CORPUS_H
#define IFK_CORPUS_H

#include <stddef.h>
#include <sys/types.h>

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

/* Indexes a corpus. Each bad line — invalid JSON, not an object, missing or non-string "id"
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
struct cJSON;
int ifk_id_from_json(const struct cJSON *v, char numid[32], const char **id, char *why, size_t nwhy);
/* Writes s quoted and escaped (quotes, backslashes, control characters) into out[cap] (cap >= 80)
 * for a message: a value longer than fits is cut in the middle, its first bytes then `…(N bytes)`,
 * so a message holding it is never cut before its reason. */
void ifk_quote(char *out, size_t cap, const char *s);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int ifk_utf8_valid(const char *s, size_t n);

#endif
