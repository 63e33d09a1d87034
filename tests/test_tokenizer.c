/* test_tokenizer.c — llama2.c tokenizer: known encodings derived from the merge rules, round
 * trips, the heap encoder against llama2.c's quadratic loop, and bad files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "engine.h"
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

/* ---- tokenizer.json: the SentencePiece kind, and refusals --------------------------------------- */

/* A tokenizer.json of the SentencePiece kind around a tiny vocabulary; the parts given replace the
 * defaults (Llama-2's layout). */
#define SP_VOCAB "{\"<unk>\":0,\"\\u2581\":1,\"a\":2,\"b\":3,\"\\u2581a\":4,\"ab\":5,\"<0xC3>\":6,\"<0xA9>\":7,\"<s>\":8}"
#define SP_NORM "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]}"
#define SP_DEC "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"
#define SP_ADDED "[{\"id\":8,\"content\":\"<s>\",\"special\":true,\"normalized\":false}]"
#define SP_MODEL(extra) "{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true" extra ",\"vocab\":" SP_VOCAB ",\"merges\":[[\"\\u2581\",\"a\"],[\"a\",\"b\"]]}"

static char sp_path_[64];
static const char *sp_config_; /* a tokenizer_config.json to put beside it, or NULL */

static ifk_status sp_load_(ifk_tokenizer **t, const char *norm, const char *pre, const char *dec, const char *model,
                           const char *added) {
    char buf[4096], dir[] = "/tmp/ifk_sp_XXXXXX", cfg[64];
    cr_assert(mkdtemp(dir));
    int n = snprintf(buf, sizeof buf, "{\"added_tokens\":%s,\"normalizer\":%s,\"pre_tokenizer\":%s,\"decoder\":%s,\"model\":%s}",
                     added, norm, pre, dec, model);
    snprintf(sp_path_, sizeof sp_path_, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    write_file_(sp_path_, buf, (size_t)n);
    if (sp_config_) write_file_(cfg, sp_config_, strlen(sp_config_));
    ifk_status st = ifk_tokenizer_load(t, sp_path_, 0);
    unlink(sp_path_), unlink(cfg), rmdir(dir);
    return st;
}

static void sp_expect_(ifk_tokenizer *t, const char *text, const int *want, int nwant, const char *back) {
    int *ids, n;
    cr_assert_eq(ifk_tokenizer_encode(t, text, strlen(text), 0, 0, &ids, &n), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(n, nwant, "'%s': %d ids, want %d", text, n, nwant);
    for (int i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "'%s' id %d: %d, want %d", text, i, ids[i], want[i]);
    if (back) {
        char *s = ifk_detokenize(t, -1, ids, n, NULL);
        cr_assert_str_eq(s, back);
        free(s);
    }
    free(ids);
}

Test(tokenizer_json, sentencepiece_kind_merges_characters_and_falls_back_to_bytes) {
    ifk_tokenizer *t;
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), SP_ADDED), IFK_OK, "%s", ifk_errmsg());
    /* "▁a▁ab▁é": (▁,a) ranks first, at 0 and 2 (leftmost first); then "▁a"+"b" is no merge, "é" is
     * no piece: its bytes C3 A9. Decoding: "▁" is a space, the text's first space is dropped. */
    sp_expect_(t, "a ab \xc3\xa9", (int[]){4, 4, 3, 1, 6, 7}, 6, "a ab \xc3\xa9");
    /* an added token is kept whole; the normalizer's "▁" is prepended to each section */
    sp_expect_(t, "ab<s>b", (int[]){4, 3, 8, 1, 3}, 5, NULL);
    ifk_tokenizer_free(&t);
    /* the newer layout: a Metaspace pre-tokenizer, prepend_scheme first (not after an added token) */
    cr_assert_eq(sp_load_(&t, "null", "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":false}",
                          SP_DEC, SP_MODEL(""), SP_ADDED), IFK_OK, "%s", ifk_errmsg());
    sp_expect_(t, "ab<s>b", (int[]){4, 3, 8, 3}, 4, NULL);
    sp_expect_(t, " a", (int[]){4}, 1, "a"); /* already starts with "▁": nothing prepended */
    ifk_tokenizer_free(&t);
}

Test(tokenizer_json, unknown_pieces_become_unk_fused_or_are_an_error) {
    ifk_tokenizer *t;
    /* no byte fallback: "é" is unk_token, two in a row fuse into one */
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC,
                          "{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"vocab\":" SP_VOCAB ",\"merges\":[]}", "[]"),
                 IFK_OK, "%s", ifk_errmsg());
    sp_expect_(t, "\xc3\xa9\xc3\xa9" "a", (int[]){1, 0, 2}, 3, NULL);
    ifk_tokenizer_free(&t);
    /* neither: encoding fails, naming the piece */
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, "{\"type\":\"BPE\",\"vocab\":" SP_VOCAB ",\"merges\":[]}", "[]"), IFK_OK);
    int *ids, n;
    cr_assert_neq(ifk_tokenizer_encode(t, "\xc3\xa9", 2, 0, 0, &ids, &n), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "\xc3\xa9"), "%s", ifk_errmsg());
    ifk_tokenizer_free(&t);
}

/* Loading fails with the file, the field and the value in the message. */
static void refused_(const char *norm, const char *pre, const char *dec, const char *model, const char *added,
                     const char *field, const char *value) {
    ifk_tokenizer *t = NULL;
    cr_assert_eq(sp_load_(&t, norm, pre, dec, model, added), IFK_ERR_FORMAT, "%s %s is refused", field, value);
    cr_assert_null(t);
    const char *m = ifk_errmsg();
    cr_assert(strstr(m, sp_path_) && strstr(m, field) && strstr(m, value), "message names file, %s, %s: %s", field, value, m);
}

Test(tokenizer_json, other_kinds_and_unknown_components_are_refused_by_name) {
    const char *M = SP_MODEL(""), *A = SP_ADDED;
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}", A, "model.type", "\"WordPiece\"");
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"Unigram\",\"vocab\":[[\"a\",0]]}", A, "model.type", "\"Unigram\"");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(",\"dropout\":0.1"), A, "model.dropout", "0.1");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(",\"continuing_subword_prefix\":\"##\""), A, "model.continuing_subword_prefix", "\"##\"");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(",\"end_of_word_suffix\":\"</w>\""), A, "model.end_of_word_suffix", "\"</w>\"");
    refused_("{\"type\":\"Lowercase\"}", "null", SP_DEC, M, A, "normalizer type", "\"Lowercase\"");
    refused_("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"}]}", "null", SP_DEC, M, A, "normalizer type", "\"NFKC\"");
    refused_("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\" \"}", "null", SP_DEC, M, A,
             "normalizer Replace pattern", "{\"Regex\":\" +\"}");
    refused_("null", "{\"type\":\"Whitespace\"}", SP_DEC, M, A, "pre_tokenizer type", "\"Whitespace\"");
    refused_("null", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true}]}", SP_DEC, M, A,
             "pre_tokenizer type", "\"Digits\"");
    refused_("null", "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"always\",\"split\":true}", SP_DEC, M, A,
             "pre_tokenizer Metaspace split", "true");
    refused_("null", "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":true}", SP_DEC, M, A,
             "pre_tokenizer Metaspace split", "(absent)");
    refused_("null", "{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "{\"type\":\"ByteLevel\"}", M, A,
             "pre_tokenizer ByteLevel add_prefix_space", "true");
    refused_("null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Removed\",\"invert\":false}", SP_DEC, M, A,
             "pre_tokenizer Split behavior", "\"Removed\"");
    refused_("null", "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Isolated\"}", SP_DEC, M, A,
             "pre_tokenizer Split pattern", "{\"String\":\" \"}");
    refused_("null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Isolated\",\"invert\":true}", SP_DEC, M, A,
             "pre_tokenizer Split invert", "true");
    refused_("null", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\",\"use_regex\":false},"
             "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Isolated\"}]}", SP_DEC, M, A,
             "pre_tokenizer Split", "after a ByteLevel");
    refused_("null", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Metaspace\",\"split\":false}]}", SP_DEC, M, A,
             "pre_tokenizer", "inside a Sequence");
    refused_(SP_NORM, "null", "{\"type\":\"WordPiece\",\"prefix\":\"##\"}", M, A, "decoder type", "\"WordPiece\"");
    refused_(SP_NORM, "null", "null", M, A, "decoder", "null");
    refused_(SP_NORM, "null", "{\"type\":\"Strip\",\"content\":\" \",\"start\":0,\"stop\":1}", M, A, "decoder Strip stop", "1");
    refused_(SP_NORM, "null", SP_DEC, M, "[{\"id\":8,\"content\":\"<s>\",\"special\":true,\"normalized\":false,\"lstrip\":true}]",
             "added token 0 (<s>) lstrip", "true");
    refused_(SP_NORM, "null", SP_DEC, M, "[{\"id\":8,\"content\":\"<s>\",\"special\":false}]", "added token 0 (<s>) normalized",
             "(absent)");
}

Test(tokenizer_json, tokenizer_config_settings_that_change_ids_are_refused) {
    const char *M = SP_MODEL(""), *A = SP_ADDED;
    ifk_tokenizer *t;
    sp_config_ = "{\"add_bos_token\": true, \"bos_token\": \"<s>\", \"add_eos_token\": false, \"clean_up_tokenization_spaces\": false, \"legacy\": true}";
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, M, A), IFK_OK, "%s", ifk_errmsg());
    ifk_tokenizer_free(&t);
    static const char *const flags[] = {"add_eos_token", "split_special_tokens", "add_prefix_space", "do_lower_case"};
    for (int i = 0; i < 4; i++) {
        char cfg[128];
        snprintf(cfg, sizeof cfg, "{\"%s\": true}", flags[i]);
        sp_config_ = cfg;
        cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, M, A), IFK_ERR_FORMAT, "%s true is refused", flags[i]);
        cr_assert(strstr(ifk_errmsg(), "tokenizer_config.json") && strstr(ifk_errmsg(), flags[i]), "%s", ifk_errmsg());
    }
    sp_config_ = NULL;
}

/* BOS as transformers adds it: tokenizer_config.json's add_bos_token / bos_token when present, else
 * the post_processor; the tokenizer's own id even when the model's config names another. */
#define TMPL(first, after, special) "{\"type\":\"TemplateProcessing\",\"single\":[" first "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}" after "],\"pair\":[],\"special_tokens\":{" special "}}"
#define BOS_S "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
#define ST_S "\"<s>\":{\"id\":\"<s>\",\"ids\":[8],\"tokens\":[\"<s>\"]}"

static int bos_first_(const char *post, const char *config) {
    char added[1024];
    snprintf(added, sizeof added, "%s,\"post_processor\":%s", SP_ADDED, post);
    ifk_tokenizer *t;
    sp_config_ = config;
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), added), IFK_OK, "%s: %s", post, ifk_errmsg());
    sp_config_ = NULL;
    ifk_tokenizer_set_special(t, 1, 2); /* a config whose bos_token_id is another id */
    int *ids, n, bos = ifk_tokenizer_bos(t);
    cr_assert_eq(ifk_tokenizer_encode(t, "ab", 2, 1, 0, &ids, &n), IFK_OK);
    cr_assert_eq(n, bos >= 0 ? 3 : 2, "%s: %d ids", post, n);
    cr_assert_eq(ids[0], bos >= 0 ? bos : 4, "%s", post);
    char *back = ifk_detokenize(t, bos >= 0 ? ids[0] : -1, ids + (bos >= 0), n - (bos >= 0), NULL);
    cr_assert_str_eq(back, "ab", "%s: the text after BOS decodes back", post);
    free(back), free(ids);
    ifk_tokenizer_free(&t);
    return bos;
}

Test(tokenizer_json, bos_follows_the_template_and_add_bos_token) {
    const char *seq = "{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                      "\"trim_offsets\":false,\"use_regex\":false}," TMPL(BOS_S, "", ST_S) "]}";
    cr_assert_eq(bos_first_(TMPL(BOS_S, "", ST_S), NULL), 8);                 /* Llama-2: [<s>, $A] */
    cr_assert_eq(bos_first_(seq, NULL), 8);                                   /* Llama-3: Sequence */
    cr_assert_eq(bos_first_(TMPL("", "", ""), NULL), -1);                     /* [$A] */
    cr_assert_eq(bos_first_("null", NULL), -1);                               /* Qwen2/3 */
    cr_assert_eq(bos_first_("{\"type\":\"ByteLevel\"}", NULL), -1);
    cr_assert_eq(bos_first_(TMPL(BOS_S, "", ST_S), "{\"add_bos_token\": false}"), -1); /* the config wins */
    cr_assert_eq(bos_first_("null", "{\"add_bos_token\": true, \"bos_token\": {\"content\": \"<s>\"}}"), 8);
    cr_assert_eq(bos_first_("null", "{\"add_bos_token\": false, \"bos_token\": null}"), -1);
    /* a llama2.c tokenizer always adds BOS 1 */
    ifk_tokenizer *b;
    cr_assert_eq(ifk_tokenizer_load(&b, STORIES_TOK, 512), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(ifk_tokenizer_bos(b), 1);
    ifk_tokenizer_free(&b);
}

static void post_refused_(const char *post, const char *config, const char *file, const char *field) {
    char added[1024];
    snprintf(added, sizeof added, "%s,\"post_processor\":%s", SP_ADDED, post);
    ifk_tokenizer *t = NULL;
    sp_config_ = config;
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), added), IFK_ERR_FORMAT, "%s / %s is refused", post,
                 config ? config : "");
    sp_config_ = NULL;
    cr_assert(strstr(ifk_errmsg(), file) && strstr(ifk_errmsg(), field), "%s", ifk_errmsg());
    cr_assert_null(strchr(ifk_errmsg(), '\n'), "one line: %s", ifk_errmsg());
    ifk_err_clear();
}

Test(tokenizer_json, other_post_processors_and_bos_settings_are_refused) {
    post_refused_(TMPL(BOS_S, ",{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}", ST_S), NULL, "tokenizer.json",
                  "post_processor.single");
    post_refused_(TMPL(BOS_S, "", "\"<s>\":{\"id\":\"<s>\",\"ids\":[3],\"tokens\":[\"<s>\"]}"), NULL, "tokenizer.json",
                  "post_processor.special_tokens");
    post_refused_("{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",8]}", NULL, "tokenizer.json",
                  "post_processor \"RobertaProcessing\"");
    post_refused_("null", "{\"add_bos_token\": true}", "tokenizer_config.json", "add_bos_token true but bos_token");
    post_refused_("null", "{\"add_bos_token\": 1, \"bos_token\": \"<s>\"}", "tokenizer_config.json", "add_bos_token");
    post_refused_("null", "{\"bos_token\": \"<bos>\"}", "tokenizer_config.json", "bos_token");
    post_refused_("null", "{\"tokenizer_class\": \"LlamaTokenizerFast\"}", "tokenizer_config.json", "tokenizer_class");
}

Test(tokenizer_files, a_bad_sentencepiece_model_is_refused_with_the_path) {
    char dir[] = "/tmp/ifk_spm_XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    const char garbage[] = "not a protobuf at all";
    write_file_(path, garbage, sizeof garbage);
    ifk_tokenizer *t = NULL;
    cr_assert_eq(ifk_tokenizer_load(&t, path, 0), IFK_ERR_FORMAT);
    cr_assert_null(t);
    cr_assert(strstr(ifk_errmsg(), path) && strstr(ifk_errmsg(), "not a SentencePiece model"), "%s", ifk_errmsg());
    unlink(path), rmdir(dir);
}

/* Finding 15: wrong types are refused by name, never read as absent or false (the table's rows in
 * docs/models.md cover each field with the bundled tokenizer; these are the C-level edges). */
Test(tokenizer_json, wrong_types_are_refused_not_read_as_absent) {
    const char *A = SP_ADDED;
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(",\"fuse_unk\":1"), A, "model.fuse_unk", "1 is not true or false");
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"BPE\",\"byte_fallback\":null,\"vocab\":" SP_VOCAB ",\"merges\":[]}", A,
             "model.byte_fallback", "null is not true or false");
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"BPE\",\"vocab\":" SP_VOCAB ",\"merges\":[\"a b c\"]}", A, "model.merges[0]",
             "\"a b c\"");
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"BPE\",\"vocab\":" SP_VOCAB ",\"merges\":[[\"b\",\"a\"]]}", A,
             "model.merges[0]", "not in model.vocab"); /* "ba" is no piece */
    ifk_tokenizer *sp_ok; /* the [a, b] form: a piece may hold a space, and "x y"+"z" is a merge of the vocabulary */
    cr_assert_eq(sp_load_(&sp_ok, "null", "null", SP_DEC, "{\"type\":\"BPE\",\"vocab\":{\"x y\":0,\"z\":1,\"x yz\":2},"
                          "\"merges\":[[\"x y\",\"z\"]]}", "[]"), IFK_OK, "%s", ifk_errmsg());
    ifk_tokenizer_free(&sp_ok);
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(""), "{}", "added_tokens", "{} is not a list");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(""), "[{\"id\":8,\"content\":\"<s>\",\"special\":true,\"normalized\":null}]",
             "added token 0 (<s>) normalized", "null");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(""), "[{\"id\":8,\"content\":\"<s>\",\"special\":1,\"normalized\":false}]",
             "added token 0 (<s>) special", "1");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(""), "[5]", "added_tokens[0]", "5 is not an object");
    refused_("{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":null}", "null", SP_DEC, SP_MODEL(""), A,
             "normalizer Replace content", "null");
    refused_("{\"type\":\"Replace\",\"pattern\":{\"String\":\" \",\"Regex\":\" \"},\"content\":\"x\"}", "null", SP_DEC,
             SP_MODEL(""), A, "normalizer Replace pattern", "\"Regex\"");
    static const char *const flags[] = {"add_eos_token", "split_special_tokens", "add_prefix_space", "do_lower_case"};
    ifk_tokenizer *t;
    for (int i = 0; i < 4; i++) {
        char cfg[128];
        snprintf(cfg, sizeof cfg, "{\"%s\": \"true\"}", flags[i]);
        sp_config_ = cfg;
        cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), A), IFK_ERR_FORMAT, "%s \"true\" is refused", flags[i]);
        cr_assert(strstr(ifk_errmsg(), "tokenizer_config.json") && strstr(ifk_errmsg(), flags[i]) &&
                  strstr(ifk_errmsg(), "\"true\" is not"), "%s", ifk_errmsg());
    }
    sp_config_ = "{\"add_eos_token\": null, \"add_prefix_space\": false}"; /* None and false: as absent */
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), A), IFK_OK, "%s", ifk_errmsg());
    ifk_tokenizer_free(&t);
    sp_config_ = NULL;
}

/* Finding 14 of the breaker report: a key twice in tokenizer.json or tokenizer_config.json is
 * refused, naming the key (config.json's rule, ifk_json_dup_key), not resolved to the first one. */
Test(tokenizer_json, duplicate_keys_are_refused) {
    const char *M2 = "{\"type\":\"BPE\",\"type\":\"Unigram\",\"vocab\":" SP_VOCAB ",\"merges\":[]}";
    refused_(SP_NORM, "null", SP_DEC, M2, SP_ADDED, "key \"type\"", "defined twice");
    refused_(SP_NORM, "null", SP_DEC, SP_MODEL(""), "[{\"id\":8,\"content\":\"<s>\",\"special\":true,\"special\":false,"
             "\"normalized\":false}]", "key \"special\"", "defined twice");
    ifk_tokenizer *t;
    sp_config_ = "{\"add_eos_token\": false, \"add_eos_token\": true}";
    cr_assert_eq(sp_load_(&t, SP_NORM, "null", SP_DEC, SP_MODEL(""), SP_ADDED), IFK_ERR_FORMAT);
    cr_assert(strstr(ifk_errmsg(), "tokenizer_config.json: key \"add_eos_token\" is defined twice"), "%s", ifk_errmsg());
    sp_config_ = NULL;
}

/* Finding 22: the messages name the real problem. A cut-off file is invalid JSON (where), not a file
 * without a "model"; Prepend with a number names its value; an empty vocab is refused at load with
 * the file's path, not at the first encoding as "tokenizer.json: ...". */
Test(tokenizer_json, messages_name_the_problem_and_the_file) {
    char dir[] = "/tmp/ifk_tt_XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    const char *cut = "{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0, \"b";
    write_file_(path, cut, strlen(cut));
    ifk_tokenizer *t = NULL;
    cr_assert_eq(ifk_tokenizer_load(&t, path, 0), IFK_ERR_FORMAT);
    cr_assert(strstr(ifk_errmsg(), path) && strstr(ifk_errmsg(), "invalid JSON at line 2"), "%s", ifk_errmsg());
    unlink(path), rmdir(dir);
    refused_("{\"type\":\"Prepend\",\"prepend\":5}", "null", SP_DEC, SP_MODEL(""), SP_ADDED,
             "normalizer Prepend prepend", "5 is not a string");
    refused_(SP_NORM, "null", SP_DEC, "{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}", "[]", "model.vocab", "is empty");
}
