/* test_corpus.c — the JSONL corpus reader: good corpora in every accepted form (text, tokens,
 * both, metadata, integer ids, CRLF, blank lines, BOM, no final newline), reading documents back,
 * one "FILE:LINE: problem" error per class of bad line (also through ifk_doc_parse), skip_bad,
 * missing files, a file changed after indexing, long lines and many ids, ifk_utf8_valid, and the
 * streaming reader (hand-out order against a naive reference, skips, the on-disk duplicate check,
 * a file changed between its passes). */
#include <criterion/criterion.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"

/* Temp files of the running test (each test runs in its own process); the suite's fini removes
 * those a failed assertion left behind. */
static char *tmp_paths_[8];

static void cleanup_(void) {
    for (int i = 0; i < 8; i++)
        if (tmp_paths_[i]) unlink(tmp_paths_[i]), free(tmp_paths_[i]), tmp_paths_[i] = NULL;
}
TestSuite(corpus, .fini = cleanup_);

/* Writes n bytes to a fresh /tmp file; returns its path (owned by tmp_paths_; see drop_). */
static char *tmp_file_(const char *data, size_t n) {
    char *path = strdup("/tmp/ifk_corpus_XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp");
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        cr_assert_gt(w, 0, "write %s", path);
        off += (size_t)w;
    }
    cr_assert_eq(close(fd), 0);
    for (int i = 0; i < 8; i++)
        if (!tmp_paths_[i]) return tmp_paths_[i] = path;
    cr_assert_fail("more than 8 temp files in one test");
    return NULL;
}
static char *tmp_text_(const char *text) { return tmp_file_(text, strlen(text)); }

static void drop_(char *path) {
    for (int i = 0; i < 8; i++)
        if (tmp_paths_[i] == path) tmp_paths_[i] = NULL;
    unlink(path);
    free(path);
}

/* "PATH:LINE: " */
static char *where_(const char *path, long line) {
    static _Thread_local char buf[1200];
    snprintf(buf, sizeof buf, "%s:%ld: ", path, line);
    return buf;
}

static int starts_with_(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static void expect_read_(const ifk_corpus *c, int i, const char *id, const char *text, const int *tokens, int n_tokens) {
    ifk_doc d;
    cr_assert_eq(ifk_corpus_read(c, i, &d), IFK_OK, "read %d: %s", i, ifk_errmsg());
    cr_assert_str_eq(d.id, id, "doc %d id", i);
    if (text) {
        cr_assert_not_null(d.text, "doc %d has text", i);
        cr_assert_eq(d.text_len, strlen(text), "doc %d text_len %zu", i, d.text_len);
        cr_assert_str_eq(d.text, text, "doc %d text", i);
    } else {
        cr_assert_null(d.text, "doc %d has no text", i);
        cr_assert_eq(d.text_len, 0);
    }
    if (tokens) {
        cr_assert_not_null(d.tokens, "doc %d has tokens", i);
        cr_assert_eq(d.n_tokens, n_tokens, "doc %d: %d tokens, want %d", i, d.n_tokens, n_tokens);
        for (int k = 0; k < n_tokens; k++) cr_assert_eq(d.tokens[k], tokens[k], "doc %d token %d", i, k);
    } else {
        cr_assert_null(d.tokens, "doc %d has no tokens", i);
        cr_assert_eq(d.n_tokens, 0);
    }
    ifk_doc_free(&d);
    cr_assert_null(d.id, "ifk_doc_free clears the struct");
}

/* ---- good corpora ------------------------------------------------------------------------------ */

static const char GOOD[] =
    "{\"id\": \"alpha\", \"text\": \"Once upon a time.\"}\n"                           /* 1 */
    "\n"                                                                                /* 2 blank */
    "{\"id\": \"beta\", \"tokens\": [1, 2, 3, 2147483647]}\n"                           /* 3 */
    "   \t \n"                                                                          /* 4 blank */
    "{\"id\": \"gamma\", \"text\": \"caf\\u00e9 \\\"q\\\"\\n\"}\r\n"                  /* 5 CRLF */
    "{\"meta\": {\"src\": [1, {\"x\": null}], \"text\": 5}, \"id\": 42, \"lang\": \"en\", "
    "\"text\": \"\xe7\x8c\xab \\ud83d\\ude00\"}\r\n"                                    /* 6 int id */
    "\r\n"                                                                              /* 7 blank */
    "{\"id\": -7, \"tokens\": [0]}\n"                                                   /* 8 */
    "{\"text\": \"z\", \"id\": \"e\"}";                                                  /* 9 no \n */

Test(corpus, good_corpus_indexes_every_accepted_form) {
    char *path = tmp_text_(GOOD);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
    cr_assert_str_eq(c.path, path);
    cr_assert_eq(c.n, 6);
    cr_assert_eq(c.n_bad, 0);
    const char *ids[] = {"alpha", "beta", "gamma", "42", "-7", "e"};
    const long lines[] = {1, 3, 5, 6, 8, 9};
    /* sizes: text bytes ("café \"q\"\n" = 10, "猫 😀" = 3+1+4), else 4 x tokens */
    const size_t sizes[] = {17, 16, 10, 8, 4, 1};
    for (int i = 0; i < c.n; i++) {
        cr_assert_str_eq(c.docs[i].id, ids[i], "doc %d", i);
        cr_assert_eq(c.docs[i].line, lines[i], "doc %d line %ld", i, c.docs[i].line);
        cr_assert_eq(c.docs[i].size, sizes[i], "doc %d size %zu, want %zu", i, c.docs[i].size, sizes[i]);
        /* the byte range is the line itself, without '\n' or "\r\n" */
        const char *p = GOOD + c.docs[i].offset;
        cr_assert_eq(p[0], '{', "doc %d offset points at the line", i);
        cr_assert_eq(p[c.docs[i].length - 1], '}', "doc %d length ends at the line's last byte", i);
        cr_assert(p[c.docs[i].length] == '\n' || p[c.docs[i].length] == '\r' || p[c.docs[i].length] == '\0');
    }
    cr_assert_eq(c.docs[0].offset, 0);
    cr_assert_eq(c.docs[0].length, strlen("{\"id\": \"alpha\", \"text\": \"Once upon a time.\"}"));
    ifk_corpus_free(&c);
    cr_assert_eq(c.n, 0);
    cr_assert_null(c.docs);
    drop_(path);
}

Test(corpus, read_returns_each_documents_content) {
    char *path = tmp_text_(GOOD);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
    /* out of order, and twice, to show each read is independent */
    expect_read_(&c, 3, "42", "\xe7\x8c\xab \xf0\x9f\x98\x80", NULL, 0);
    expect_read_(&c, 0, "alpha", "Once upon a time.", NULL, 0);
    expect_read_(&c, 1, "beta", NULL, (int[]){1, 2, 3, 2147483647}, 4);
    expect_read_(&c, 2, "gamma", "caf\xc3\xa9 \"q\"\n", NULL, 0);
    expect_read_(&c, 4, "-7", NULL, (int[]){0}, 1);
    expect_read_(&c, 5, "e", "z", NULL, 0);
    expect_read_(&c, 0, "alpha", "Once upon a time.", NULL, 0);

    ifk_doc d;
    cr_assert_eq(ifk_corpus_read(&c, 6, &d), IFK_ERR_ARG, "index past the end");
    cr_assert_eq(ifk_corpus_read(&c, -1, &d), IFK_ERR_ARG, "negative index");
    ifk_corpus_free(&c);
    drop_(path);
}

Test(corpus, byte_order_mark_and_empty_files) {
    char *path = tmp_text_("\xef\xbb\xbf{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"yz\"}\n");
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.docs[0].offset, 3, "line 1 starts after the BOM");
    expect_read_(&c, 0, "a", "x", NULL, 0);
    expect_read_(&c, 1, "b", "yz", NULL, 0);
    ifk_corpus_free(&c);
    drop_(path);

    const char *empties[] = {"", "\n\n \r\n\t\n", "\r\n"};
    for (int k = 0; k < 3; k++) {
        path = tmp_text_(empties[k]);
        cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
        cr_assert_eq(c.n, 0, "case %d has no documents", k);
        cr_assert_eq(c.n_bad, 0);
        ifk_corpus_free(&c);
        drop_(path);
    }
}

Test(corpus, integer_ids_are_written_in_decimal) {
    char *path = tmp_text_("{\"id\":0,\"text\":\"a\"}\n"
                           "{\"id\":1e2,\"text\":\"b\"}\n"
                           "{\"id\":-3,\"text\":\"c\"}\n"
                           "{\"id\":9007199254740991,\"text\":\"d\"}\n"
                           "{\"id\":\"7\",\"text\":\"e\"}\n");
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 5);
    cr_assert_str_eq(c.docs[0].id, "0");
    cr_assert_str_eq(c.docs[1].id, "100");
    cr_assert_str_eq(c.docs[2].id, "-3");
    cr_assert_str_eq(c.docs[3].id, "9007199254740991");
    cr_assert_str_eq(c.docs[4].id, "7");
    expect_read_(&c, 1, "100", "b", NULL, 0);
    ifk_corpus_free(&c);
    drop_(path);

    /* the integer 7 and the string "7" are one id */
    path = tmp_text_("{\"id\":\"7\",\"text\":\"e\"}\n{\"id\":7,\"text\":\"f\"}\n");
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT);
    cr_assert(strstr(ifk_errmsg(), "duplicate id \"7\" (first on line 1)"), "%s", ifk_errmsg());
    drop_(path);
}

/* ---- bad lines --------------------------------------------------------------------------------- */

typedef struct {
    const char *line;
    const char *want; /* a substring of the message */
} bad_case;

static const bad_case BAD[] = {
    {"{\"id\": \"x\", \"text\": \"unterminated}", "invalid JSON"},
    {"{\"id\": \"x\", \"text\": \"t\"} trailing", "invalid JSON"},
    {"{\"id\": \"x\", \"text\": \"a\\ud800\"}", "invalid JSON: lone surrogate \\ud800 at column 23"},
    {"{\"id\": \"x\", \"text\": \"a\\udcff b\"}", "invalid JSON: lone surrogate \\udcff"},
    {"{\"id\": \"x\", \"text\": \"a\\ud83d\\u0041\"}", "invalid JSON: lone surrogate \\ud83d"},
    {"[\"id\", \"text\"]", "not a JSON object"},
    {"\"just a string\"", "not a JSON object"},
    {"{\"text\": \"no id\"}", "missing \"id\""},
    {"{\"ID\": \"x\", \"text\": \"keys are case-sensitive\"}", "missing \"id\""},
    {"{\"id\": true, \"text\": \"t\"}", "\"id\" is not a string or an integer"},
    {"{\"id\": 1.5, \"text\": \"t\"}", "\"id\" is not a string or an integer"},
    {"{\"id\": null, \"text\": \"t\"}", "\"id\" is not a string or an integer"},
    {"{\"id\": 9007199254740992, \"text\": \"t\"}", "\"id\" is not a string or an integer"},
    {"{\"id\": \"\", \"text\": \"t\"}", "empty \"id\""},
    {"{\"id\": \"x,y\", \"text\": \"t\"}", "\"id\" \"x,y\" contains a comma"},
    {"{\"id\": \"x\\ty\", \"text\": \"t\"}", "\"id\" \"x\\u0009y\" holds a control character (U+0009)"},
    {"{\"id\": \"x\\ny\", \"text\": \"t\"}", "holds a control character (U+000A)"},
    {"{\"id\": \"x\\u001fy\", \"text\": \"t\"}", "holds a control character (U+001F)"},
    {"{\"id\": \"x\\u007fy\", \"text\": \"t\"}", "holds a control character (U+007F)"},
    {"{\"id\": \"x\", \"text\": \"Lily\", \"tokens\": [5, 6]}", "give \"text\" or \"tokens\", not both"},
    {"{\"id\": \"x\", \"text\": \"\"}", "\"text\" is empty"},
    {"{\"id\": \"x\", \"tokens\": []}", "\"tokens\" is empty"},
    {"{\"id\": \"x\"}", "missing \"text\" (a string) or \"tokens\" (an array of token ids)"},
    {"{\"id\": \"x\", \"body\": \"t\"}", "missing \"text\" (a string) or \"tokens\""},
    {"{\"id\": \"x\", \"text\": 12}", "\"text\" is not a string"},
    {"{\"id\": \"x\", \"text\": null, \"tokens\": [1]}", "\"text\" is not a string"},
    {"{\"id\": \"x\", \"tokens\": \"1 2 3\"}", "\"tokens\" is not an array"},
    {"{\"id\": \"x\", \"tokens\": [1, -2, 3]}", "\"tokens\"[1] is not a token id"},
    {"{\"id\": \"x\", \"tokens\": [2147483648]}", "\"tokens\"[0] is not a token id"},
    {"{\"id\": \"x\", \"tokens\": [1, 2, 3.5]}", "\"tokens\"[2] is not a token id"},
    {"{\"id\": \"x\", \"tokens\": [\"1\"]}", "\"tokens\"[0] is not a token id"},
    {"{\"id\": \"x\", \"text\": \"ab\xff" "cd\"}", "invalid UTF-8 in \"text\""},
    {"{\"id\": \"x\", \"text\": \"trunc \xe2\x82\"}", "invalid UTF-8 in \"text\""},
    {"{\"id\": \"x\", \"text\": \"overlong \xc0\xaf\"}", "invalid UTF-8 in \"text\""},
    {"{\"id\": \"x\", \"text\": \"overlong \xe0\x80\xaf\"}", "invalid UTF-8 in \"text\""},
    {"{\"id\": \"x\", \"text\": \"surrogate \xed\xa0\x80\"}", "invalid UTF-8 in \"text\""},
    {"{\"id\": \"x\xc3\", \"text\": \"t\"}", "invalid UTF-8 in \"id\""},
    /* every string of the line, as the query readers (json.h ifk_json_record): metadata too */
    {"{\"id\": \"x\", \"text\": \"t\", \"meta\": {\"src\": [\"ok\", \"b\xff\"]}}", "invalid UTF-8 in \"meta\".\"src\"[1]"},
    {"{\"id\": \"x\xf0\x80\x80\x80\", \"text\": \"t\"}", "invalid UTF-8 in \"id\""},
    {"{\"id\": \"x\", \"text\": \"nul \\u0000 inside\"}", "\\u0000 (NUL) in a string is not supported"},
    {"{\"id\": \"a\", \"text\": \"same id as line 1\"}", "duplicate id \"a\" (first on line 1)"},
};
#define N_BAD ((int)(sizeof BAD / sizeof BAD[0]))

/* Lines 1-3: good docs "a", blank, "b"; line 4: the bad line; line 5: good "c". */
static char *with_bad_line_(const char *bad) {
    char buf[1024];
    int k = snprintf(buf, sizeof buf,
                     "{\"id\":\"a\",\"text\":\"first\"}\n\n{\"id\":\"b\",\"tokens\":[5]}\n%s\n{\"id\":\"c\",\"text\":\"last\"}\n",
                     bad);
    cr_assert_lt(k, (int)sizeof buf);
    return tmp_file_(buf, (size_t)k);
}

Test(corpus, each_bad_line_fails_with_file_and_line) {
    for (int k = 0; k < N_BAD; k++) {
        char *path = with_bad_line_(BAD[k].line);
        ifk_corpus c;
        ifk_err_clear();
        cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT, "case %d (%s) must fail", k, BAD[k].line);
        const char *m = ifk_errmsg();
        cr_assert(starts_with_(m, where_(path, 4)), "case %d: '%s' starts with FILE:4:", k, m);
        cr_assert(strstr(m, BAD[k].want), "case %d: '%s' mentions '%s'", k, m, BAD[k].want);
        cr_assert_null(strchr(m, '\n'), "case %d: one line", k);
        cr_assert(c.n == 0 && c.docs == NULL && c.n_bad == 0 && c.bad == NULL, "case %d: nothing is left allocated", k);
        drop_(path);
    }
}

Test(corpus, raw_nul_byte_is_invalid_json) {
    static const char data[] = "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"x\0y\"}\n";
    char *path = tmp_file_(data, sizeof data - 1);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT);
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 2)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "invalid JSON"), "%s", ifk_errmsg());
    drop_(path);
}

Test(corpus, duplicate_message_escapes_and_shortens_the_id) {
    char line[400], id[200];
    memset(id, 'z', 150);
    id[150] = '\0';
    snprintf(line, sizeof line, "{\"id\":\"q\\\"\\\\%s\",\"text\":\"t\"}\n", id);
    char data[1000];
    snprintf(data, sizeof data, "%s%s", line, line);
    char *path = tmp_text_(data);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT);
    const char *m = ifk_errmsg();
    cr_assert(starts_with_(m, where_(path, 2)), "%s", m);
    cr_assert(strstr(m, "duplicate id \"q\\\"\\\\zzz"), "quote and backslash escaped: %s", m);
    cr_assert(strstr(m, "z\xE2\x80\xA6(153 bytes)\" (first on line 1)"), "cut in the middle, its length kept: %s", m);
    cr_assert_null(strchr(m, '\n'));
    cr_assert_lt(strlen(m), strlen(path) + 150, "shortened: %zu bytes", strlen(m));
    drop_(path);
}

Test(corpus, skip_bad_keeps_good_lines_and_lists_bad_ones) {
    /* good "g0", then every bad case each followed by a good line: bad case k is on line 2k+2 */
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap);
    cr_assert_not_null(data);
    len += (size_t)snprintf(data + len, cap - len, "{\"id\":\"a\",\"text\":\"first\"}\n");
    for (int k = 0; k < N_BAD; k++)
        len += (size_t)snprintf(data + len, cap - len, "%s\n{\"id\":\"g%d\",\"tokens\":[%d]}\n", BAD[k].line, k, k);
    cr_assert_lt(len, cap);
    char *path = tmp_file_(data, len);
    free(data);

    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 1), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, N_BAD + 1, "%d docs", c.n);
    cr_assert_eq(c.n_bad, N_BAD, "%d bad", c.n_bad);
    cr_assert_str_eq(c.docs[0].id, "a");
    cr_assert_eq(c.docs[0].line, 1);
    for (int k = 0; k < N_BAD; k++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", k);
        cr_assert_str_eq(c.docs[k + 1].id, id);
        cr_assert_eq(c.docs[k + 1].line, 2 * k + 3);
        cr_assert(starts_with_(c.bad[k], where_(path, 2 * k + 2)), "bad %d: '%s' names line %d", k, c.bad[k], 2 * k + 2);
        cr_assert(strstr(c.bad[k], BAD[k].want), "bad %d: '%s' mentions '%s'", k, c.bad[k], BAD[k].want);
    }
    /* the duplicate "a" kept its first line, whose content reads back */
    expect_read_(&c, 0, "a", "first", NULL, 0);
    char last[16];
    snprintf(last, sizeof last, "g%d", N_BAD - 1);
    expect_read_(&c, N_BAD, last, NULL, (int[]){N_BAD - 1}, 1);
    ifk_corpus_free(&c);
    cr_assert(c.bad == NULL && c.n_bad == 0);
    drop_(path);
}

Test(corpus, skip_bad_duplicates_keep_the_first) {
    char *path = tmp_text_("{\"id\":\"d\",\"text\":\"one\"}\n{\"id\":\"e\",\"text\":\"two\"}\n"
                           "{\"id\":\"d\",\"text\":\"three\"}\n{\"id\":\"d\",\"tokens\":[4]}\n");
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 1), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.n_bad, 2);
    cr_assert_str_eq(c.docs[0].id, "d");
    cr_assert_eq(c.docs[0].line, 1);
    expect_read_(&c, 0, "d", "one", NULL, 0);
    cr_assert(starts_with_(c.bad[0], where_(path, 3)), "%s", c.bad[0]);
    cr_assert(strstr(c.bad[0], "duplicate id \"d\" (first on line 1)"), "%s", c.bad[0]);
    cr_assert(starts_with_(c.bad[1], where_(path, 4)), "%s", c.bad[1]);
    cr_assert(strstr(c.bad[1], "(first on line 1)"), "%s", c.bad[1]);
    ifk_corpus_free(&c);
    drop_(path);
}

Test(corpus, doc_parse_checks_one_line_like_the_indexer) {
    /* a line as a worker receives it: a slice of a larger buffer, not NUL-terminated, CRLF kept */
    const char buf[] = "{\"id\": 5, \"text\": \"h\\u00e9\"}\r\nGARBAGE";
    size_t len = (size_t)(strstr(buf, "GARBAGE") - buf);
    ifk_doc d;
    cr_assert_eq(ifk_doc_parse(buf, len, "c.jsonl:17", &d), IFK_OK, "%s", ifk_errmsg());
    cr_assert_str_eq(d.id, "5");
    cr_assert_str_eq(d.text, "h\xc3\xa9");
    cr_assert_eq(d.text_len, 3);
    cr_assert_eq(d.n_tokens, 0);
    cr_assert_null(d.tokens);
    ifk_doc_free(&d);

    for (int k = 0; k < N_BAD; k++) {
        if (strstr(BAD[k].want, "duplicate")) continue; /* a single line has nothing to repeat */
        cr_assert_eq(ifk_doc_parse(BAD[k].line, strlen(BAD[k].line), "c.jsonl:17", &d), IFK_ERR_FORMAT, "case %d", k);
        cr_assert(starts_with_(ifk_errmsg(), "c.jsonl:17: "), "case %d: %s", k, ifk_errmsg());
        cr_assert(strstr(ifk_errmsg(), BAD[k].want), "case %d: '%s' mentions '%s'", k, ifk_errmsg(), BAD[k].want);
        cr_assert_null(d.id, "case %d leaves the doc empty", k);
    }
}

/* ---- files ------------------------------------------------------------------------------------- */

Test(corpus, missing_file_and_directory_are_named) {
    ifk_corpus c;
    const char *missing = "/tmp/ifk_corpus_does_not_exist.jsonl";
    unlink(missing);
    cr_assert_eq(ifk_corpus_index(&c, missing, 1), IFK_ERR_IO);
    char want[256];
    snprintf(want, sizeof want, "%s: cannot open", missing);
    cr_assert(starts_with_(ifk_errmsg(), want), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "No such file"), "%s", ifk_errmsg());
    cr_assert(c.n == 0 && c.docs == NULL);

    cr_assert_eq(ifk_corpus_index(&c, "/tmp", 0), IFK_ERR_IO);
    cr_assert(starts_with_(ifk_errmsg(), "/tmp: cannot open"), "%s", ifk_errmsg());
}

Test(corpus, read_detects_a_file_changed_after_indexing) {
    const char *before = "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"y\"}\n";
    char *path = tmp_text_(before);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 2);

    /* same length, another id on line 2 */
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"c\",\"text\":\"y\"}\n", f);
    fclose(f);
    ifk_doc d;
    cr_assert_eq(ifk_corpus_read(&c, 1, &d), IFK_ERR_FORMAT);
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 2)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "changed since it was indexed"), "%s", ifk_errmsg());
    cr_assert_null(d.id, "a failed read leaves the doc empty");
    expect_read_(&c, 0, "a", "x", NULL, 0);

    /* truncated */
    cr_assert_eq(truncate(path, 10), 0);
    cr_assert_eq(ifk_corpus_read(&c, 1, &d), IFK_ERR_IO);
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 2)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "ends early"), "%s", ifk_errmsg());
    cr_assert_eq(ifk_corpus_read(&c, 0, &d), IFK_ERR_IO, "line 1 is cut in the middle");
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 1)), "%s", ifk_errmsg());

    /* removed */
    drop_(path);
    cr_assert_eq(ifk_corpus_read(&c, 0, &d), IFK_ERR_IO);
    cr_assert(strstr(ifk_errmsg(), "cannot open"), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), c.path), "names the file: %s", ifk_errmsg());
    ifk_corpus_free(&c);
}

Test(corpus, long_lines_and_many_ids) {
    /* 5000 short docs (the id set grows several times), one 3 MB text, then a late duplicate */
    const size_t big = 3u << 20;
    size_t cap = big + 5000 * 64 + 1024, len = 0;
    char *data = malloc(cap);
    cr_assert_not_null(data);
    for (int i = 0; i < 5000; i++) len += (size_t)snprintf(data + len, cap - len, "{\"id\":%d,\"tokens\":[%d,%d]}\n", i, i, i + 1);
    len += (size_t)snprintf(data + len, cap - len, "{\"id\":\"big\",\"text\":\"");
    for (size_t k = 0; k < big; k++) data[len + k] = (char)('a' + k % 26);
    len += big;
    len += (size_t)snprintf(data + len, cap - len, "\"}\n{\"id\":\"1234\",\"text\":\"again\"}\n");
    char *path = tmp_file_(data, len);

    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT);
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 5002)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "duplicate id \"1234\" (first on line 1235)"), "%s", ifk_errmsg());

    cr_assert_eq(ifk_corpus_index(&c, path, 1), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 5001);
    cr_assert_eq(c.n_bad, 1);
    cr_assert_eq(c.docs[5000].size, big);
    cr_assert_eq(c.docs[4999].size, 8);
    expect_read_(&c, 1234, "1234", NULL, (int[]){1234, 1235}, 2);
    ifk_doc d;
    cr_assert_eq(ifk_corpus_read(&c, 5000, &d), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(d.text_len, big);
    cr_assert_eq(memcmp(d.text, data + len - big - strlen("\"}\n{\"id\":\"1234\",\"text\":\"again\"}\n"), big), 0);
    ifk_doc_free(&d);
    ifk_corpus_free(&c);
    free(data);
    drop_(path);
}

/* ---- UTF-8 ------------------------------------------------------------------------------------- */

static int v_(const char *s) { return ifk_utf8_valid(s, strlen(s)); }

Test(corpus, utf8_valid_accepts_well_formed_text) {
    cr_assert(ifk_utf8_valid(NULL, 0));
    cr_assert(v_(""));
    cr_assert(v_("plain ASCII ~\x7f"));
    cr_assert(v_("\xc2\x80"));                 /* U+0080, smallest 2-byte */
    cr_assert(v_("caf\xc3\xa9"));              /* é */
    cr_assert(v_("\xdf\xbf"));                 /* U+07FF */
    cr_assert(v_("\xe0\xa0\x80"));             /* U+0800, smallest 3-byte */
    cr_assert(v_("\xed\x9f\xbf"));             /* U+D7FF, just below the surrogates */
    cr_assert(v_("\xee\x80\x80"));             /* U+E000, just above */
    cr_assert(v_("\xef\xbf\xbf"));             /* U+FFFF */
    cr_assert(v_("\xf0\x90\x80\x80"));         /* U+10000, smallest 4-byte */
    cr_assert(v_("\xf0\x9f\x98\x80 \xe7\x8c\xab")); /* 😀 猫 */
    cr_assert(v_("\xf4\x8f\xbf\xbf"));         /* U+10FFFF, the largest */
    cr_assert(ifk_utf8_valid("a\0b", 3), "NUL is a valid code point; n, not strlen, bounds the check");
}

Test(corpus, utf8_valid_rejects_malformed_text) {
    cr_assert_not(v_("\x80"), "lone continuation byte");
    cr_assert_not(v_("a\xbf"), "lone continuation byte after ASCII");
    cr_assert_not(v_("\xc0\x80"), "overlong NUL");
    cr_assert_not(v_("\xc1\xbf"), "overlong U+007F");
    cr_assert_not(v_("\xe0\x80\x80"), "overlong 3-byte NUL");
    cr_assert_not(v_("\xe0\x9f\xbf"), "overlong U+07FF");
    cr_assert_not(v_("\xf0\x80\x80\x80"), "overlong 4-byte NUL");
    cr_assert_not(v_("\xf0\x8f\xbf\xbf"), "overlong U+FFFF");
    cr_assert_not(v_("\xed\xa0\x80"), "U+D800 surrogate");
    cr_assert_not(v_("\xed\xbf\xbf"), "U+DFFF surrogate");
    cr_assert_not(v_("\xed\xa0\xbd\xed\xb8\x80"), "CESU-8 surrogate pair");
    cr_assert_not(v_("\xf4\x90\x80\x80"), "U+110000");
    cr_assert_not(v_("\xf5\x80\x80\x80"), "F5 lead byte");
    cr_assert_not(v_("\xf8\x88\x80\x80\x80"), "5-byte form");
    cr_assert_not(v_("\xfe"), "FE");
    cr_assert_not(v_("\xff"), "FF");
    cr_assert_not(v_("\xc3"), "truncated 2-byte at the end");
    cr_assert_not(v_("\xe2\x82"), "truncated 3-byte at the end");
    cr_assert_not(v_("\xf0\x9f\x98"), "truncated 4-byte at the end");
    cr_assert_not(v_("\xc3("), "bad continuation");
    cr_assert_not(v_("\xe2\x28\xa1"), "bad second byte of 3");
    cr_assert_not(v_("\xf0\x9f\x28\x80"), "bad third byte of 4");
    cr_assert_not(ifk_utf8_valid("caf\xc3\xa9", 4), "n cuts the sequence");
}

/* ---- ids: one length limit, checked when the corpus is read ----------------------------------- */

Test(corpus, ids_up_to_the_limit_are_read_longer_ones_refused_with_the_reason) {
    char id[IFK_ID_MAX + 2], data[2 * IFK_ID_MAX + 200];
    memset(id, 'x', IFK_ID_MAX);
    id[IFK_ID_MAX] = '\0';
    snprintf(data, sizeof data, "{\"id\":\"%s\",\"text\":\"hi\"}\n", id);
    char *path = tmp_text_(data);
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_OK, "%d bytes is within the limit: %s", IFK_ID_MAX, ifk_errmsg());
    expect_read_(&c, 0, id, "hi", NULL, 0);
    ifk_corpus_free(&c);
    drop_(path);

    const int lens[] = {IFK_ID_MAX + 1, 512, 600, 100000};
    for (int k = 0; k < 4; k++) {
        char *big = malloc((size_t)lens[k] + 64);
        cr_assert_not_null(big);
        int n = sprintf(big, "{\"id\":\"");
        memset(big + n, 'y', (size_t)lens[k]);
        n += lens[k];
        n += sprintf(big + n, "\",\"text\":\"hi\"}\n");
        path = tmp_file_(big, (size_t)n);
        free(big);
        cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT, "%d bytes", lens[k]);
        char want[96];
        snprintf(want, sizeof want, ":1: \"id\" is longer than %d bytes (%d)", IFK_ID_MAX, lens[k]);
        cr_assert(strstr(ifk_errmsg(), want), "'%s' has '%s'", ifk_errmsg(), want);
        drop_(path);
    }
}

Test(corpus, quote_cuts_a_long_value_in_the_middle) {
    char q[96], s[700];
    ifk_quote(q, sizeof q, "lily");
    cr_assert_str_eq(q, "\"lily\"");
    ifk_quote(q, sizeof q, "a\"b\\c\td");
    cr_assert_str_eq(q, "\"a\\\"b\\\\c\\u0009d\"");
    memset(s, 'x', 600);
    s[600] = '\0';
    ifk_quote(q, sizeof q, s);
    cr_assert_str_eq(q, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\xE2\x80\xA6(600 bytes)\"");
    /* a multi-byte character is never split */
    for (int i = 0; i < 600; i += 3) memcpy(s + i, "\xE7\x8C\xAB", 3);
    ifk_quote(q, sizeof q, s);
    cr_assert(ifk_utf8_valid(q, strlen(q)), "%s", q);
    cr_assert(strstr(q, "\xE2\x80\xA6(600 bytes)\""), "%s", q);
}

Test(corpus, token_ids_are_checked_against_the_vocabulary_when_read) {
    char *path = tmp_text_("{\"id\":\"a\",\"text\":\"x\"}\nbroken\n{\"id\":\"c\",\"tokens\":[1,999]}\n"
                           "{\"id\":\"d\",\"tokens\":[511]}\n");
    ifk_corpus c;
    cr_assert_eq(ifk_corpus_index(&c, path, 0), IFK_ERR_FORMAT); /* the JSON error on line 2 first */
    cr_assert_eq(ifk_corpus_index(&c, path, 1), IFK_OK, "%s", ifk_errmsg()); /* no vocabulary: 999 passes */
    cr_assert_eq(c.n, 3);
    ifk_corpus_free(&c);
    cr_assert_eq(ifk_corpus_index_vocab(&c, path, 1, 512), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(c.n, 2, "a and d kept, c skipped");
    cr_assert_str_eq(c.docs[1].id, "d");
    cr_assert_eq(c.n_bad, 2);
    cr_assert(strstr(c.bad[1], ":3: \"tokens\"[1] = 999 is outside the model's vocabulary (0..511)"), "%s", c.bad[1]);
    ifk_corpus_free(&c);
    drop_(path);
}

/* ---- streaming (the cache coordinator's reading) ------------------------------------------------- */

/* A corpus of n documents whose sizes follow a small LCG (with repeats, so ties occur); sizes[i]
 * receives document i's size. Line i+1 is document i. */
static char *stream_corpus_(int n, size_t *sizes) {
    size_t cap = (size_t)n * 64 + 1, len = 0;
    char *data = malloc(cap);
    cr_assert_not_null(data);
    unsigned s = 11;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        int k = 1 + (int)((s >> 16) % 9);
        char text[16];
        memset(text, 'x', (size_t)k);
        text[k] = '\0';
        sizes[i] = (size_t)k;
        len += (size_t)snprintf(data + len, cap - len, "{\"id\":\"s%d\",\"text\":\"%s\"}\n", i, text);
    }
    char *path = tmp_file_(data, len);
    free(data);
    return path;
}

/* The naive reference of the hand-out order: hold the next `window` documents in file order, hand
 * out the longest held (ties: the earliest), read one more in; out[] gets the ordinals. */
static void naive_order_(const size_t *sizes, int n, int window, int *out) {
    int *held = malloc(sizeof(int) * (size_t)n);
    cr_assert_not_null(held);
    int n_held = 0, next = 0;
    while (next < n && n_held < window) held[n_held++] = next++;
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int j = 1; j < n_held; j++)
            if (sizes[held[j]] > sizes[held[best]] || (sizes[held[j]] == sizes[held[best]] && held[j] < held[best]))
                best = j;
        out[k] = held[best];
        held[best] = held[--n_held];
        if (next < n) held[n_held++] = next++;
    }
    free(held);
}

Test(corpus, stream_hands_out_longest_first_within_the_window) {
    enum { N = 300 };
    size_t sizes[N];
    char *path = stream_corpus_(N, sizes);
    const int windows[] = {1, 2, 3, 7, 64, N, 4 * N};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        ifk_corpus_stream s;
        cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
        cr_assert_eq(s.n, N);
        cr_assert_eq(ifk_corpus_stream_start(&s, windows[w], NULL, NULL), IFK_OK, "%s", ifk_errmsg());
        cr_assert_leq(s.n_win, windows[w], "window %d holds %d", windows[w], s.n_win);
        int want[N];
        naive_order_(sizes, N, windows[w], want);
        for (int k = 0; k < N; k++) {
            ifk_corpus_entry e;
            int got = 0;
            cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK, "%s", ifk_errmsg());
            cr_assert(got, "window %d: document %d of %d", windows[w], k, N);
            cr_assert_eq(e.ordinal, want[k], "window %d, hand-out %d: ordinal %ld, want %d", windows[w], k, e.ordinal,
                         want[k]);
            cr_assert_eq(e.line, e.ordinal + 1);
            cr_assert_eq(e.size, sizes[e.ordinal]);
            if (k % 37 == 0) { /* the entry reads back as its document */
                ifk_doc d;
                cr_assert_eq(ifk_corpus_read_entry(&s, &e, &d), IFK_OK, "%s", ifk_errmsg());
                char id[16];
                snprintf(id, sizeof id, "s%ld", e.ordinal);
                cr_assert_str_eq(d.id, id);
                cr_assert_eq(ifk_doc_size(&d), sizes[e.ordinal]);
                ifk_doc_free(&d);
            }
        }
        ifk_corpus_entry e;
        int got = 1;
        cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK);
        cr_assert_eq(got, 0, "window %d: the end after %d documents", windows[w], N);
        ifk_corpus_stream_free(&s);
        cr_assert_null(s.win);
    }
    drop_(path);
}

/* A text that --split paragraphs leaves nothing of is a bad line of the check under that split
 * (refused naming FILE:LINE, or skipped and listed), not an abort when it is cached (breaker s3 #2). */
Test(corpus, check_refuses_a_text_of_no_paragraph_under_split_paragraphs) {
    char *path = tmp_text_("{\"id\":\"a\",\"text\":\"Lily.\"}\n{\"id\":\"ws\",\"text\":\"\\n\\n\\n\"}\n"
                           "{\"id\":\"b\",\"text\":\"\\n\\nTom.\"}\n");
    ifk_corpus_stream s;
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "split tokens: \"\\n\\n\\n\" "
                 "gives tokens: %s", ifk_errmsg());
    cr_assert_eq(s.n, 3);
    ifk_corpus_stream_free(&s);
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_PARAGRAPHS, NULL, NULL), IFK_ERR_FORMAT);
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 2)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "no paragraph"), "%s", ifk_errmsg());
    ifk_corpus_stream_free(&s);
    cr_assert_eq(ifk_corpus_check(&s, path, 1, 0, IFK_SPLIT_PARAGRAPHS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.n_bad, 1);
    cr_assert_eq(s.bad_lines[0], 2);
    cr_assert_eq(ifk_corpus_stream_start(&s, 0, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    for (int k = 0; k < 2; k++) {
        ifk_corpus_entry e;
        int got = 0;
        cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK, "%s", ifk_errmsg());
        cr_assert(got && e.line != 2, "line %ld handed out", e.line);
    }
    ifk_corpus_stream_free(&s);
    drop_(path);
}

/* Keeps ids whose number is odd (a stand-in for "not in the store yet"). */
static int keep_odd_(const char *id, void *ctx) {
    (*(int *)ctx)++;
    return atoi(id + 1) % 2 == 1;
}

Test(corpus, stream_skips_bad_lines_and_documents_not_kept) {
    /* lines: 1 g0, 2 bad JSON, 3 g1, 4 dup of g0, 5 blank, 6 g2, 7 missing text, 8 g3 */
    char *path = tmp_text_("{\"id\":\"g0\",\"text\":\"a\"}\n{oops\n{\"id\":\"g1\",\"text\":\"bb\"}\n"
                           "{\"id\":\"g0\",\"text\":\"again\"}\n\n{\"id\":\"g2\",\"text\":\"ccc\"}\n"
                           "{\"id\":\"zz\"}\n{\"id\":\"g3\",\"tokens\":[1,2]}\n");
    ifk_corpus_stream s;
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_ERR_FORMAT, "without skip_bad the first bad "
                 "line fails");
    cr_assert(starts_with_(ifk_errmsg(), where_(path, 2)), "%s", ifk_errmsg());
    ifk_corpus_stream_free(&s);

    cr_assert_eq(ifk_corpus_check(&s, path, 1, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(s.n, 4);
    cr_assert_eq(s.n_bad, 3);
    const long bad_lines[] = {2, 4, 7};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s.bad_lines[i], bad_lines[i]);
        cr_assert(starts_with_(s.bad[i], where_(path, bad_lines[i])), "%s", s.bad[i]);
    }
    cr_assert(strstr(s.bad[1], "duplicate id \"g0\" (first on line 1)"), "%s", s.bad[1]);
    int asked = 0;
    cr_assert_eq(ifk_corpus_stream_start(&s, 2, keep_odd_, &asked), IFK_OK, "%s", ifk_errmsg());
    /* kept: g1 (size 2, line 3) and g3 (size 8, line 8): g3 first */
    const long want_lines[] = {8, 3}, want_ord[] = {3, 1};
    for (int k = 0; k < 2; k++) {
        ifk_corpus_entry e;
        int got = 0;
        cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK, "%s", ifk_errmsg());
        cr_assert(got);
        cr_assert_eq(e.line, want_lines[k], "hand-out %d: line %ld", k, e.line);
        cr_assert_eq(e.ordinal, want_ord[k]);
    }
    ifk_corpus_entry e;
    int got = 1;
    cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK);
    cr_assert_eq(got, 0);
    cr_assert_eq(asked, 4, "keep asked once per good document (%d)", asked);
    ifk_corpus_stream_free(&s);
    drop_(path);
}

/* The duplicate check holds ids on disk, not in memory: many ids (past SQLite's page cache of
 * IFK_CORPUS_DUP_CACHE_KIB), the duplicate far from its first line, both line numbers named. */
Test(corpus, stream_check_refuses_a_duplicate_naming_both_lines) {
    enum { N = 120000 };
    size_t cap = (size_t)N * 48, len = 0;
    char *data = malloc(cap);
    cr_assert_not_null(data);
    for (int i = 0; i < N; i++) /* ids in no sorted order */
        len += (size_t)snprintf(data + len, cap - len, "{\"id\":\"id-%08x-%d\",\"text\":\"t\"}\n",
                                (unsigned)i * 2654435761u, i);
    len += (size_t)snprintf(data + len, cap - len, "{\"id\":\"id-%08x-%d\",\"text\":\"again\"}\n",
                            7u * 2654435761u, 7);
    char *path = tmp_file_(data, len);
    free(data);
    ifk_corpus_stream s;
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_ERR_FORMAT);
    const char *m = ifk_errmsg();
    cr_assert(starts_with_(m, where_(path, N + 1)), "names the duplicate's line: %s", m);
    cr_assert(strstr(m, "duplicate id \"id-") && strstr(m, "-7\" (first on line 8)"), "names the first line: %s", m);
    ifk_corpus_stream_free(&s);
    drop_(path);
}

/* A line not read yet, rewritten in place into a duplicate of a handed-out id while pass 2 runs (the
 * breaker's repro: same size, so only the modification time tells): refused at its read, never
 * handed out. The window cap: a window larger than the corpus allocates only what pass 1 found. */
Test(corpus, stream_refuses_an_in_place_edit_ahead_of_the_window) {
    char *path = tmp_text_("{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n"
                           "{\"id\":\"c\",\"text\":\"six\"}\n");
    ifk_corpus_stream s;
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_corpus_stream_start(&s, 1, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    ifk_corpus_entry e;
    int got = 0;
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 2 * (long)strlen("{\"id\":\"a\",\"text\":\"one\"}\n"), SEEK_SET), 0);
    fputs("{\"id\":\"a\",\"text\":\"six\"}\n", f); /* line 3: c becomes a second a, same size */
    fclose(f);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {0}}; /* the clock moved on since the check */
    clock_gettime(CLOCK_REALTIME, &ts[1]);
    ts[1].tv_sec += 2;
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    ifk_status st = ifk_corpus_stream_next(&s, &e, &got); /* hands out a, reads the next line */
    while (st == IFK_OK && got) st = ifk_corpus_stream_next(&s, &e, &got);
    cr_assert_eq(st, IFK_ERR_FORMAT, "the edit is refused, not cached");
    cr_assert(strstr(ifk_errmsg(), "changed since it was checked"), "%s", ifk_errmsg());
    ifk_corpus_stream_free(&s);
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_ERR_FORMAT, "a rerun's check sees the duplicate");
    ifk_corpus_stream_free(&s);
    char *p2 = tmp_text_("{\"id\":\"a\",\"text\":\"one\"}\n");
    cr_assert_eq(ifk_corpus_check(&s, p2, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_corpus_stream_start(&s, 1 << 30, NULL, NULL), IFK_OK, "a huge window: %s", ifk_errmsg());
    cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK);
    cr_assert(got);
    ifk_corpus_stream_free(&s);
    drop_(p2);
    drop_(path);
}

Test(corpus, stream_refuses_a_file_changed_after_the_check) {
    char *path = tmp_text_("{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n");
    ifk_corpus_stream s;
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    FILE *f = fopen(path, "ab");
    cr_assert_not_null(f);
    fputs("{\"id\":\"a\",\"text\":\"dup added later\"}\n", f);
    fclose(f);
    cr_assert_eq(ifk_corpus_stream_start(&s, 0, NULL, NULL), IFK_ERR_FORMAT);
    cr_assert(strstr(ifk_errmsg(), "changed since it was checked"), "%s", ifk_errmsg());
    ifk_corpus_stream_free(&s);

    /* a line rewritten in place (same size) after it entered the window: its re-read is refused */
    cr_assert_eq(ifk_corpus_check(&s, path, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_ERR_FORMAT, "the appended duplicate");
    ifk_corpus_stream_free(&s);
    char *p2 = tmp_text_("{\"id\":\"a\",\"text\":\"one\"}\n");
    cr_assert_eq(ifk_corpus_check(&s, p2, 0, 0, IFK_SPLIT_TOKENS, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_corpus_stream_start(&s, 0, NULL, NULL), IFK_OK, "%s", ifk_errmsg());
    ifk_corpus_entry e;
    int got = 0;
    cr_assert_eq(ifk_corpus_stream_next(&s, &e, &got), IFK_OK);
    cr_assert(got);
    f = fopen(p2, "r+b");
    cr_assert_not_null(f);
    fputs("{\"id\":\"a\",\"text\":\"ONE\"}\n", f);
    fclose(f);
    char *line = NULL;
    cr_assert_eq(ifk_corpus_read_line(&s, &e, &line), IFK_ERR_FORMAT);
    cr_assert_null(line);
    cr_assert(starts_with_(ifk_errmsg(), where_(p2, 1)), "%s", ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), "changed since it was checked"), "%s", ifk_errmsg());
    ifk_corpus_stream_free(&s);
    drop_(p2);
    drop_(path);
}
