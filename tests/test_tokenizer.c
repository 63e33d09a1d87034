/* test_tokenizer.c — llama2.c tokenizer: known encodings derived from the merge rules, round
 * trips, the heap encoder against llama2.c's quadratic loop, and bad files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "tokenizer.h"

static ifk_tokenizer *tok;
static void setup_(void) { cr_assert_eq(ifk_tokenizer_load(&tok, STORIES_TOK, 512), IFK_OK, "%s", ifk_errmsg()); }
static void teardown_(void) { ifk_tokenizer_free(&tok); }

static int id_(const char *piece) {
    int id = ifk_tokenizer_lookup(tok, piece, strlen(piece));
    cr_assert_geq(id, 0, "piece '%s' is in tok512", piece);
    return id;
}
static int absent_(const char *piece) { return ifk_tokenizer_lookup(tok, piece, strlen(piece)) < 0; }

static void expect_(const char *text, const int *want, int nwant) {
    int *ids, n;
    cr_assert_eq(ifk_tokenizer_encode(tok, text, strlen(text), 1, 0, &ids, &n), IFK_OK);
    cr_assert_eq(n, nwant, "'%s': %d tokens, want %d", text, n, nwant);
    for (int i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "'%s' token %d: %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}

TestSuite(tokenizer, .init = setup_, .fini = teardown_);

Test(tokenizer, known_encodings_follow_the_merge_rules) {
    /* Each expectation is derived by hand: start from BOS, the dummy-prefix " ", and one piece per
     * UTF-8 character (or <0xXX> bytes); then merge the best-scoring adjacent pair while one exists.
     * The pieces that stop further merging are asserted absent, so the derivation is checked too. */
    cr_assert_eq(ifk_tokenizer_vocab(tok), 512);
    cr_assert_eq(id_("<0x00>"), 3, "byte pieces start at id 3");

    /* "Hi!": [" ","H","i","!"] -> " H" is a piece; " Hi", "Hi", "i!" and " H!"-style pairs are not */
    cr_assert(absent_(" Hi") && absent_("Hi") && absent_("i!"));
    expect_("Hi!", (int[]){1, id_(" H"), id_("i"), id_("!")}, 4);

    /* "é" is a piece of its own (two UTF-8 bytes); " é" is not, so the dummy space stays alone */
    cr_assert(absent_(" \xc3\xa9"));
    expect_("\xc3\xa9", (int[]){1, id_(" "), id_("\xc3\xa9")}, 3);

    /* "猫" (E7 8C AB) is not a piece: three byte-fallback ids 3 + byte */
    cr_assert(absent_("\xe7\x8c\xab"));
    expect_("\xe7\x8c\xab", (int[]){1, id_(" "), 3 + 0xE7, 3 + 0x8C, 3 + 0xAB}, 5);

    /* "a\nb": " a" merges; "\n" has no piece of its own, so it is the byte <0x0A> */
    cr_assert(absent_("\n") && absent_(" a\n"));
    expect_("a\nb", (int[]){1, id_(" a"), 3 + '\n', id_("b")}, 4);

    /* "the cat": " t"+"h"... ends at " the" (scores favour it); " c" + "at" stay two ("cat", " cat" absent) */
    cr_assert(absent_(" cat") && absent_("cat"));
    expect_("the cat", (int[]){1, id_(" the"), id_(" c"), id_("at")}, 4);

    /* the empty text is BOS alone: no dummy prefix */
    expect_("", (int[]){1}, 1);
}

static void roundtrip_(const char *text) {
    int *ids, n;
    cr_assert_eq(ifk_tokenizer_encode(tok, text, strlen(text), 1, 0, &ids, &n), IFK_OK);
    char buf[4096];
    size_t len = 0;
    for (int i = 1; i < n; i++) {
        size_t pl;
        const char *p = ifk_tokenizer_decode(tok, ids[i - 1], ids[i], &pl);
        memcpy(buf + len, p, pl);
        len += pl;
    }
    buf[len] = '\0';
    cr_assert_str_eq(buf, text, "round trip of '%s'", text);
    free(ids);
}

Test(tokenizer, decode_inverts_encode) {
    roundtrip_("Once upon a time, there was a little girl.");
    roundtrip_("Punctuation: (a) [b] {c} <d> ... !?;:'\"-_=+*/\\|@#$%^&~`");
    roundtrip_("line one\nline two\n\n\ttabbed\r\n");
    roundtrip_("caf\xc3\xa9 na\xc3\xafve \xe7\x8c\xab \xf0\x9f\x98\x80 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    roundtrip_("   leading spaces and trailing   ");
}

Test(tokenizer, heap_encoder_equals_llama2c_loop) {
    static const char *words[] = {"the", " ", "cat", "Lily", "\n", "\xc3\xa9", "ball", "!", "ing", "\xe7\x8c\xab",
                                  "a", "  ", "play", "ed", ",", "\xff", "\x80", "0x", "<0x41>", "lll"};
    uint64_t s = 12345;
    for (int trial = 0; trial < 300; trial++) {
        char text[2048] = "";
        int nw = (int)((tu_rand(&s) + 1) * 40);
        for (int w = 0; w < nw; w++) strcat(text, words[(int)((tu_rand(&s) + 1) * 10) % 20]);
        int *a, na, *b, nb;
        cr_assert_eq(ifk_tokenizer_encode(tok, text, strlen(text), trial & 1, trial & 2, &a, &na), IFK_OK);
        cr_assert_eq(ifk_tokenizer_encode_naive(tok, text, strlen(text), trial & 1, trial & 2, &b, &nb), IFK_OK);
        cr_assert_eq(na, nb, "trial %d: %d vs %d tokens", trial, na, nb);
        cr_assert_arr_eq(a, b, sizeof(int) * na, "trial %d", trial);
        free(a), free(b);
    }
}

/* equal scores: "oo" can merge at either of two overlapping places in "ooo"; llama2.c takes the
 * leftmost, so "Hooo" -> " H" + "oo" + "o" (not "o" + "oo"); likewise "tlll" -> " t" + "ll" + "l" */
Test(tokenizer, ties_merge_leftmost_first) {
    cr_assert(absent_("Ho") && absent_(" Ho") && absent_("Hoo") && absent_("ooo"));
    expect_("Hooo", (int[]){1, id_(" H"), id_("oo"), id_("o")}, 4);
    cr_assert(absent_("tl") && absent_(" tl") && absent_("lll"));
    expect_("tlll", (int[]){1, id_(" t"), id_("ll"), id_("l")}, 4);
}

Test(tokenizer, arbitrary_bytes_encode_and_decode_back) {
    uint64_t s = 777;
    for (int trial = 0; trial < 50; trial++) {
        unsigned char text[301];
        for (int i = 0; i < 300; i++) {
            text[i] = (unsigned char)((tu_rand(&s) + 1) * 128);
            if (!text[i]) text[i] = 'x';
        }
        text[300] = 0;
        int *a, na, *b, nb;
        cr_assert_eq(ifk_tokenizer_encode(tok, (char *)text, 300, 1, 0, &a, &na), IFK_OK);
        cr_assert_eq(ifk_tokenizer_encode_naive(tok, (char *)text, 300, 1, 0, &b, &nb), IFK_OK);
        cr_assert_eq(na, nb);
        cr_assert_arr_eq(a, b, sizeof(int) * na);
        size_t len = 0;
        char buf[1024];
        for (int i = 1; i < na; i++) {
            size_t pl;
            const char *p = ifk_tokenizer_decode(tok, a[i - 1], a[i], &pl);
            memcpy(buf + len, p, pl);
            len += pl;
        }
        cr_assert_eq(len, 300);
        cr_assert_arr_eq(buf, text, 300);
        free(a), free(b);
    }
}

/* ---- bad files --------------------------------------------------------------------------------- */

static void write_file_(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(data, 1, n, f);
    fclose(f);
}

Test(tokenizer_files, garbage_and_truncated_files_are_rejected_with_the_path) {
    char path[] = "/tmp/ifk_tok_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    ifk_tokenizer *t = NULL;
    const char garbage[] = "this is not a tokenizer file at all, just text";
    write_file_(path, garbage, sizeof garbage);
    cr_assert_neq(ifk_tokenizer_load(&t, path, 512), IFK_OK);
    cr_assert_null(t);
    cr_assert(strstr(ifk_errmsg(), path), "message names the file: %s", ifk_errmsg());

    FILE *f = fopen(STORIES_TOK, "rb");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file_(path, buf, n / 2);
    cr_assert_neq(ifk_tokenizer_load(&t, path, 512), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), path));

    write_file_(path, buf, n);
    cr_assert_neq(ifk_tokenizer_load(&t, path, 1000), IFK_OK, "vocab size disagreeing with the model");
    cr_assert(strstr(ifk_errmsg(), "512"), "%s", ifk_errmsg());
    cr_assert_eq(ifk_tokenizer_load(&t, path, 512), IFK_OK);
    ifk_tokenizer_free(&t);

    cr_assert_neq(ifk_tokenizer_load(&t, "/nonexistent/tok.bin", 512), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "/nonexistent/tok.bin"));
    close(fd);
    unlink(path);
}
