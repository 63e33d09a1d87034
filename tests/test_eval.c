/* test_eval.c — evaluation metrics against hand computations, and the job-spec and query-set
 * readers' errors (FILE:LINE). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evalio.h"
#include "metrics.h"

Test(metrics, normalisation_follows_longbench) {
    char out[128];
    ifk_normalize_answer("  The Cat, sat on A mat!  ", out);
    cr_assert_str_eq(out, "cat sat on mat");
    ifk_normalize_answer("An apple-pie; THE end.", out);
    cr_assert_str_eq(out, "applepie end", "punctuation is removed, not replaced by a space");
    ifk_normalize_answer("theater another", out);
    cr_assert_str_eq(out, "theater another", "only whole-word articles go");
    ifk_normalize_answer("...", out);
    cr_assert_str_eq(out, "");
}

Test(metrics, f1_and_exact_match_by_hand) {
    /* pred "red ball big" vs gold "the big red ball": common {red, ball, big} = 3; P = 3/3, R = 3/3 */
    cr_assert_float_eq(ifk_f1("red ball big", "the big red ball"), 1.0, 1e-12);
    /* pred "a red dog" -> "red dog"; gold "red ball" : common 1; P = 1/2, R = 1/2, F1 = 0.5 */
    cr_assert_float_eq(ifk_f1("a red dog", "red ball"), 0.5, 1e-12);
    /* multiset: pred "ball ball" vs gold "ball": common 1; P = 1/2, R = 1, F1 = 2/3 */
    cr_assert_float_eq(ifk_f1("ball ball", "ball"), 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(ifk_f1("", "ball"), 0.0, 1e-12);
    cr_assert_float_eq(ifk_f1("the", "a"), 1.0, 1e-12, "both empty after normalisation");
    cr_assert(ifk_exact_match("The Ball.", "ball"));
    cr_assert(!ifk_exact_match("big ball", "ball"));
}

Test(metrics, confidence_interval_by_hand) {
    double x[4] = {1, 2, 3, 4}, mean, half;
    ifk_mean_ci95(x, 4, &mean, &half);
    /* s = sqrt(5/3), se = s / 2, t(3) = 3.182 */
    cr_assert_float_eq(mean, 2.5, 1e-12);
    cr_assert_float_eq(half, 3.182 * sqrt(5.0 / 3.0) / 2.0, 1e-9);
    ifk_mean_ci95(x, 1, &mean, &half);
    cr_assert(mean == 1 && half == 0, "one sample: no interval");
    cr_assert_float_eq(ifk_t975(1), 12.706, 1e-9);
    cr_assert_float_eq(ifk_t975(10), 2.228, 1e-9);
    cr_assert_float_eq(ifk_t975(1000), 1.960, 1e-9);
}

static char *write_(const char *text) {
    static _Thread_local char path[64];
    strcpy(path, "/tmp/ifk_eval_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void job_error_(const char *text, const char *line, const char *what) {
    ifk_jobspec j;
    char *p = write_(text);
    cr_assert_neq(ifk_jobspec_load(&j, p), IFK_OK, "%s", text);
    char want[128];
    snprintf(want, sizeof want, "%s%s", p, line);
    cr_assert(strstr(ifk_errmsg(), want), "names %s: %s", want, ifk_errmsg());
    cr_assert(strstr(ifk_errmsg(), what), "says '%s': %s", what, ifk_errmsg());
    unlink(p);
}

Test(jobspec, errors_name_file_and_line) {
    job_error_("[job]\nmodel = m\nstore = s\nqueries = q\ncolour = red\n", ":5:", "unknown key 'colour'");
    job_error_("[job]\nmodel = m\nbudgets = 0.1, 2\n", ":3:", "budgets");
    job_error_("[job]\nmodel = m\nmethods = full,magic\n", ":3:", "magic");
    /* Debian's inih calls the handler per key, so an unknown section is reported at its first key */
    job_error_("[job]\nmodel = m\n[extras]\nx = 1\n", ":4:", "unknown section [extras]");
    job_error_("[job]\nmodel = m\nsteps = many\n", ":3:", "steps");
    job_error_("[job]\nmodel = m\njust text\n", ":3:", "");
    job_error_("[job]\nmodel = m\nqueries = q\n", ":", "needs store");
    ifk_jobspec j;
    cr_assert_neq(ifk_jobspec_load(&j, "/no/such/job.ini"), IFK_OK);
    cr_assert(strstr(ifk_errmsg(), "/no/such/job.ini"));
}

Test(jobspec, a_full_spec_parses) {
    ifk_jobspec j;
    char *p = write_("; comment\n[job]\nmodel = models/x\nstore = s\nqueries = q.jsonl\nmethods = infoflow, epic\n"
                     "budgets = 0.05,0.5\nreorder = both\nscore_layers = 1-3\nsteps = 4\n[needle]\nlengths = 64,128\n"
                     "depths = 0,50,100\n[ablation]\nlayers = 0-2\n");
    cr_assert_eq(ifk_jobspec_load(&j, p), IFK_OK, "%s", ifk_errmsg());
    cr_assert(j.n_methods == 2 && !strcmp(j.methods[1], "epic") && j.n_budgets == 2 && j.budgets[1] == 0.5);
    cr_assert(j.reorder == 2 && j.score_lo == 1 && j.score_hi == 3 && j.steps == 4);
    cr_assert(j.needle && j.n_needle_lengths == 2 && j.n_needle_depths == 3 && j.needle_depths[2] == 100);
    cr_assert(j.ablation && j.ablation_lo == 0 && j.ablation_hi == 2);
    cr_assert_eq(ifk_jobspec_set(&j, "job", "budgets", "0.2"), IFK_OK, "overrides use the same parser");
    cr_assert(j.n_budgets == 1 && j.budgets[0] == 0.2);
    unlink(p);
}

Test(queryset, items_longbench_and_errors) {
    char *p = write_("{\"id\": \"a\", \"prompt\": \"Who?\", \"docs\": [\"d1\", \"d2\"], \"answers\": [\"Tom\"]}\n"
                     "\n{\"id\": 7, \"prompt\": \"Where?\", \"retrieve\": 3}\n"
                     "{\"_id\": \"lb\", \"input\": \"What?\", \"context\": \"Passage 1:\\nA cat.\\nPassage 2:\\nA dog.\", "
                     "\"answers\": [\"cat\"]}\n");
    ifk_qitem *it;
    int n;
    cr_assert_eq(ifk_queryset_read(p, &it, &n), IFK_OK, "%s", ifk_errmsg());
    cr_assert_eq(n, 3);
    cr_assert(it[0].n_docs == 2 && !strcmp(it[0].docs[1], "d2") && it[0].n_answers == 1);
    cr_assert(!strcmp(it[1].id, "7") && it[1].retrieve == 3 && it[1].line == 3);
    cr_assert_eq(it[2].n_passages, 2, "split at \\nPassage ");
    cr_assert_str_eq(it[2].passages[0], "Passage 1:\nA cat.");
    cr_assert_str_eq(it[2].passages[1], "Passage 2:\nA dog.");
    cr_assert_str_eq(it[2].docs[1], "lb#p1");
    cr_assert_str_eq(it[2].prompt, "What?");
    ifk_queryset_free(it, n);
    unlink(p);
    const char *bad[][2] = {{"{\"id\": \"a\", \"docs\": [\"d\"]}\n", ":1: missing \"prompt\""},
                            {"{\"id\": \"a\", \"prompt\": \"x\"}\n", ":1: give exactly one"},
                            {"\n{\"id\": \"a\", \"prompt\": \"x\", \"retrieve\": 0}\n", ":2: \"retrieve\""},
                            {"not json\n", ":1: invalid JSON (near column 1)"},
                            {"[1, 2]\n", ":1: not a JSON object"},
                            /* the corpus's rule for a line (json.h ifk_json_record), field named */
                            {"{\"id\": \"a\", \"prompt\": \"\xff\xfe Lily\", \"docs\": [\"d\"]}\n", ":1: invalid UTF-8 in \"prompt\""},
                            {"{\"id\": \"a\", \"prompt\": \"x\", \"docs\": [\"d\"], \"answers\": [\"ok\", \"\xc0\xaf\"]}\n",
                             ":1: invalid UTF-8 in \"answers\"[1]"},
                            {"{\"id\": \"a\", \"prompt\": \"Lily \\udcff\", \"docs\": [\"d\"]}\n", ":1: invalid JSON: lone surrogate \\udcff at column 29"},
                            {"{\"id\": \"a\", \"prompt\": \"\\ud83d x\", \"docs\": [\"d\"]}\n", ":1: invalid JSON: lone surrogate \\ud83d"},
                            {"{\"id\": \"a\", \"prompt\": \"x\\u0000y\", \"docs\": [\"d\"]}\n", ":1: \\u0000 (NUL) in a string is not supported"},
                            {"{\"id\": \"a\", \"prompt\": \"x\", \"docs\": []}\n", ":1: \"docs\" is empty"},
                            {"\n{\"id\": \"a\", \"prompt\": \"x\", \"docs\": [\"d1\", \"d,2\"]}\n", ":2: \"docs\"[1]: \"id\" \"d,2\" contains a comma"},
                            {"{\"id\": \"q,1\", \"input\": \"x\", \"context\": \"a\"}\n", ":1: \"id\" \"q,1\" contains a comma"},
                            /* one rule for ids everywhere (corpus.h) */
                            {"{\"id\": \"\", \"prompt\": \"x\", \"docs\": [\"d\"]}\n", ":1: empty \"id\""},
                            {"{\"id\": 1.5, \"prompt\": \"x\", \"docs\": [\"d\"]}\n", ":1: \"id\" is not a string or an integer"},
                            {"{\"id\": \"a\\tb\", \"prompt\": \"x\", \"docs\": [\"d\"]}\n", ":1: \"id\" \"a\\u0009b\" holds a control"},
                            {"{\"id\": \"a\", \"prompt\": \"x\", \"docs\": [\"d\", \"\"]}\n", ":1: \"docs\"[1]: empty \"id\""},
                            {"{\"id\": \"a\", \"prompt\": \"x\", \"retrieve\": 2.5}\n", ":1: \"retrieve\" is not a positive integer"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = write_(bad[i][0]);
        cr_assert_neq(ifk_queryset_read(p, &it, &n), IFK_OK);
        char want[160];
        snprintf(want, sizeof want, "%s%s", p, bad[i][1]);
        cr_assert(strstr(ifk_errmsg(), want), "want '%s' in: %s", want, ifk_errmsg());
        unlink(p);
    }
}
