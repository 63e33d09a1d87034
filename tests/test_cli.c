/* test_cli.c — the infoflow binary as a user runs it: help, the golden story, and bad input, which
 * must end with one clear line naming the file and the problem, a non-zero exit, and no crash. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "testutil.h"

extern char **environ;

typedef struct {
    int code;       /* exit code; -signal if killed */
    char out[8192];
    char err[8192];
} run_result;

static void slurp_(int fd, char *buf, size_t cap) {
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Runs argv (argv[0] the binary, NULL-terminated) with its stdout on out and stderr on err; its
 * exit code, or -signal if killed. */
static int spawn_(const char *const *argv, int out, int err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, err, 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* Runs IFK_BIN with args (NULL-terminated), capturing stdout and stderr in temp files. */
static run_result run_(const char *const *args) {
    run_result r;
    char o[] = "/tmp/ifk_out_XXXXXX", e[] = "/tmp/ifk_err_XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    cr_assert(fo >= 0 && fe >= 0);
    unlink(o), unlink(e);
    const char *argv[64] = {IFK_BIN};
    int n = 1;
    for (; args[n - 1]; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    r.code = spawn_(argv, fo, fe);
    slurp_(fo, r.out, sizeof r.out);
    slurp_(fe, r.err, sizeof r.err);
    return r;
}

/* A failed run: exit code 1 (not a signal), exactly one line on stderr, naming `what` and `problem`. */
static void expect_error_(run_result r, const char *what, const char *problem) {
    cr_assert_eq(r.code, 1, "exit code %d (stderr: %s)", r.code, r.err);
    size_t len = strlen(r.err);
    cr_assert(len > 0 && r.err[len - 1] == '\n' && !memchr(r.err, '\n', len - 1), "one line on stderr: '%s'", r.err);
    cr_assert(!strncmp(r.err, "infoflow: error: ", 17), "%s", r.err);
    cr_assert(strstr(r.err, what), "message names '%s': %s", what, r.err);
    cr_assert(strstr(r.err, problem), "message says '%s': %s", problem, r.err);
}

static char *copy_prefix_(const char *src, size_t keep, char *path) {
    FILE *f = fopen(src, "rb");
    cr_assert(f);
    static char buf[1 << 21];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, buf, keep < n ? keep : n), (ssize_t)(keep < n ? keep : n));
    close(fd);
    return path;
}

Test(cli, help_lists_commands_and_options) {
    run_result r = run_((const char *[]){"--help", NULL});
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "generate") && strstr(r.out, "bench"));
    r = run_((const char *[]){"generate", "--help", NULL});
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "--steps") && strstr(r.out, "--temperature") && strstr(r.out, "--topp") &&
              strstr(r.out, "--seed"));
    r = run_((const char *[]){"bench", "prefill", "--help", NULL});
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "--random-model"));
    r = run_((const char *[]){"frobnicate", NULL});
    cr_assert_eq(r.code, 1); /* an error: exit 1 (README), as bench with an unknown benchmark */
    cr_assert(strstr(r.err, "unknown command 'frobnicate'"));
}

Test(cli, generate_prints_the_golden_story) {
    run_result r = run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--prompt", "Once upon a time", "--steps",
                                         "64", "--temperature", "0", NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.out, STORIES_GOLDEN "\n");
    /* a checkpoint file with an explicit tokenizer gives the same */
    run_result r2 = run_((const char *[]){"generate", "--model", STORIES_BIN, "--tokenizer", STORIES_TOK, "--prompt",
                                          "Once upon a time", "--steps", "64", "--temperature", "0", "--quiet", NULL});
    cr_assert_str_eq(r2.out, r.out);
    cr_assert_str_eq(r2.err, "");
}

Test(cli, sampling_is_reproducible_with_a_seed) {
    const char *a[] = {"generate", "--model", IFK_MODEL_DIR, "--prompt", "Tom had a", "--steps", "80", "--temperature",
                       "1.0", "--topp", "0.9", "--seed", "7", "--quiet", NULL};
    run_result r1 = run_(a), r2 = run_(a);
    cr_assert_eq(r1.code, 0, "%s", r1.err);
    cr_assert_str_eq(r1.out, r2.out);
    cr_assert(!strncmp(r1.out, "Tom had a", 9));
    a[12] = "8";
    run_result r3 = run_(a);
    cr_assert_str_neq(r3.out, r1.out, "another seed, another story");
}

Test(cli, truncated_checkpoint_is_rejected) {
    char p[] = "/tmp/ifk_trunc_XXXXXX";
    copy_prefix_(STORIES_BIN, 500000, p);
    expect_error_(run_((const char *[]){"generate", "--model", p, "--tokenizer", STORIES_TOK, NULL}), p, "implies");
    unlink(p);
    char p2[] = "/tmp/ifk_trunc_XXXXXX";
    copy_prefix_(STORIES_BIN, 10, p2);
    expect_error_(run_((const char *[]){"generate", "--model", p2, "--tokenizer", STORIES_TOK, NULL}), p2, "header");
    unlink(p2);
}

Test(cli, header_disagreeing_with_size_is_rejected) {
    char p[] = "/tmp/ifk_hdr_XXXXXX";
    copy_prefix_(STORIES_BIN, 1 << 21, p);
    int fd = open(p, O_WRONLY);
    int32_t dim = 128; /* the weights that follow are for dim 64 */
    cr_assert_eq(pwrite(fd, &dim, 4, 0), 4);
    close(fd);
    expect_error_(run_((const char *[]){"generate", "--model", p, "--tokenizer", STORIES_TOK, NULL}), p, "implies");
    fd = open(p, O_WRONLY);
    int32_t heads = -3;
    cr_assert_eq(pwrite(fd, &heads, 4, 12), 4);
    close(fd);
    expect_error_(run_((const char *[]){"generate", "--model", p, "--tokenizer", STORIES_TOK, NULL}), p, "n_heads");
    unlink(p);
}

Test(cli, garbage_tokenizer_is_rejected) {
    char p[] = "/tmp/ifk_tok_XXXXXX";
    copy_prefix_(STORIES_BIN, 3000, p); /* float weights are not a tokenizer */
    expect_error_(run_((const char *[]){"generate", "--model", STORIES_BIN, "--tokenizer", p, NULL}), p, "tokenizer");
    unlink(p);
}

Test(cli, prompt_longer_than_the_model_positions_is_rejected) {
    static char prompt[8000];
    prompt[0] = '\0';
    for (int i = 0; i < 600; i++) strcat(prompt, "dog ");
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--prompt", prompt, NULL}), "prompt",
                  "model has only 512 positions");
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--prompt", "a b c d e f", "--steps",
                                        "3", NULL}),
                  "--steps is 3", "prompt is");
}

Test(cli, missing_files_and_bad_options_are_rejected) {
    expect_error_(run_((const char *[]){"generate", "--model", "/no/such/model.bin", NULL}), "/no/such/model.bin",
                  "cannot open");
    expect_error_(run_((const char *[]){"generate", "--model", STORIES_BIN, "--tokenizer", "/no/such/tok.bin", NULL}),
                  "/no/such/tok.bin", "cannot open");
    expect_error_(run_((const char *[]){"generate", "--prompt", "x", NULL}), "--model", "required");
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--steps", "many", NULL}), "--steps",
                  "not an integer");
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--topp", "1.5", NULL}), "--topp",
                  "not a number in");
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--colour", "red", NULL}), "--colour",
                  "unknown option");
    expect_error_(run_((const char *[]){"bench", "prefill", "--random-model", "dim=64,layers=two", NULL}), "layers",
                  "bad value");
}

Test(cli, bench_prefill_reports_ratio_to_measured_peak) {
    run_result r = run_((const char *[]){"bench", "prefill", "--random-model", "tiny", "--tokens", "64", "--repeat",
                                         "1", "--json", NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    double gf = 0, peak = 0, ratio = -1;
    const char *g = strstr(r.out, "\"gflops\": "), *p = strstr(r.out, "\"peak_gflops\": "), *q = strstr(r.out, "\"ratio\": ");
    cr_assert(g && p && q, "%s", r.out);
    sscanf(g + 10, "%lf", &gf), sscanf(p + 15, "%lf", &peak), sscanf(q + 9, "%lf", &ratio);
    cr_assert(gf > 0 && peak > 0, "%s", r.out);
    cr_assert_float_eq(ratio, gf / peak, 2e-3, "the ratio is achieved over peak: %s", r.out);
}

Test(cli, seed_zero_is_refused) {
    /* xorshift from a zero state stays zero: every coin 0.0 (all <unk> with --topp 1) */
    expect_error_(run_((const char *[]){"generate", "--model", IFK_MODEL_DIR, "--prompt", "Once", "--steps", "8",
                                        "--seed", "0", "--topp", "1", NULL}),
                  "--seed", "[1, ");
}

Test(cli, a_failed_write_to_stdout_is_an_error) {
    /* a full disk (here /dev/full) must not pass for success: what the command printed is lost */
    int full = open("/dev/full", O_WRONLY), fe = open("/dev/null", O_WRONLY);
    cr_assert(full >= 0 && fe >= 0);
    const char *argv[] = {IFK_BIN, "generate", "--model", IFK_MODEL_DIR, "--prompt", "Once", "--steps", "8",
                          "--temperature", "0", "--quiet", NULL};
    const int code = spawn_(argv, full, fe);
    close(full), close(fe);
    cr_assert(code == 1, "exit code %d (negative: killed by that signal)", code);
}

Test(cli, tokenizer_cut_inside_a_record_is_rejected) {
    /* 3000 bytes of tok512.bin end inside piece 214's score: truncated, not a shorter vocabulary */
    char p[] = "/tmp/ifk_tok_XXXXXX";
    copy_prefix_(STORIES_TOK, 3000, p);
    expect_error_(run_((const char *[]){"tokenize", "--tokenizer", p, "--text", "Once upon a time", NULL}), p,
                  "truncated");
    unlink(p);
}

/* A byte token decoded alone is not UTF-8: the JSON writer puts U+FFFD in its place (a strict
 * parser refused eval's fidelity.jsonl holding a lone 0x96 before), keeps valid multi-byte
 * characters and escapes as before. */
Test(cli, json_strings_stay_valid_utf8) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char s[] = "a\x96" "b\xc3\xa9\"\n\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x82\xed\xa0\x80z\xc3";
    ifk_json_str(f, s, sizeof s - 1);
    fclose(f);
    cr_assert_str_eq(buf, "\"a\\ufffdb\xc3\xa9\\\"\\n\xe2\x82\xac\xf0\x9f\x98\x80\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdz\\ufffd\"");
    free(buf);
}
