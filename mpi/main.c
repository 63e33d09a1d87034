/* main.c — the infoflow executable: one binary, one subcommand per job. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drivers.h"

static const struct {
    const char *name, *help;
    int (*run)(int, char **);
} cmds_[] = {
    {"generate", "generate text from a model and a prompt", ifk_cmd_generate},
    {"cache", "prefill a corpus into a KV store (under mpirun: many ranks)", ifk_cmd_cache},
    {"query", "answer a prompt over cached documents (infoflow and baselines)", ifk_cmd_query},
    {"eval", "evaluate methods against full prefill: fidelity, needles, ablation, plots", ifk_cmd_eval},
    {"inspect", "summarise a KV store", ifk_cmd_inspect},
    {"verify", "re-read every dataset of a KV store and report damage", ifk_cmd_verify},
    {"search", "BM25 retrieval over a KV store's index (what query --retrieve picks)", ifk_cmd_search},
    {"migrate", "convert a format-version-1 KV store to the current format", ifk_cmd_migrate},
    {"convert", "write a llama2.c model as a Hugging Face folder", ifk_cmd_convert},
    {"logits", "print a token sequence's logits (checks against other implementations)", ifk_cmd_logits},
    {"tokenize", "a tokenizer's ids for a text (llama2.c or tokenizer.json)", ifk_cmd_tokenize},
    {"bench", "benchmarks (prefill, store reads) against measured peaks", ifk_cmd_bench},
};

static void usage_(FILE *f) {
    fprintf(f, "usage: infoflow <command> [options]   (infoflow <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds_ / sizeof *cmds_; i++) fprintf(f, "  %-10s %s\n", cmds_[i].name, cmds_[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof cmds_ / sizeof *cmds_; i++)
        if (!strcmp(argv[1], cmds_[i].name)) {
            int rc = cmds_[i].run(argc - 1, argv + 1);
            /* what a command printed must have reached its destination (a full disk, /dev/full) */
            if (fflush(stdout) == EOF || ferror(stdout)) {
                fprintf(stderr, "infoflow: error: standard output: write failed: %s\n", strerror(errno ? errno : EIO));
                rc = 1;
            }
            return rc;
        }
    fprintf(stderr, "infoflow: error: unknown command '%s'\n", argv[1]);
    usage_(stderr);
    return 1;
}
