/* evalio.h — the inputs of `infoflow eval`: job specs (INI, parsed with Debian's inih) and query
 * sets (JSONL, parsed with cJSON). Every error names FILE:LINE. Local. */
#ifndef IFK_EVALIO_H
#define IFK_EVALIO_H

#include "status.h"

#define IFK_MAX_LIST 64

typedef struct {
    char path[1024];
    /* [job] */
    char model[1024], random_model[256], tokenizer[1024], store[1024], queries[1024], out[1024];
    char methods[IFK_MAX_LIST][16];
    int n_methods;
    double budgets[IFK_MAX_LIST];
    int n_budgets;
    int reorder;          /* 0 off, 1 on, 2 both */
    int score_lo, score_hi; /* -1: default band */
    char dev[256];          /* infoflow-dev's variant (key=value,...; query --dev); empty: the default */
    int steps;
    long seed;
    /* [needle] (enabled when the section is present) */
    int needle;
    int needle_lengths[IFK_MAX_LIST], n_needle_lengths;
    int needle_depths[IFK_MAX_LIST], n_needle_depths;
    double needle_budget;
    int haystack_docs, haystack_tokens;
    long needle_seed;
    /* [ablation] (enabled when present): InfoFlow with one scoring layer at a time */
    int ablation, ablation_lo, ablation_hi;
    double ablation_budget;
} ifk_jobspec;

/* Parses an INI job spec (format in docs/eval.md); unknown sections or keys, bad values and a
 * missing file fail with "FILE:LINE: ..." (or "FILE: ..."). */
ifk_status ifk_jobspec_load(ifk_jobspec *j, const char *path);
/* Applies one "key=value" of the [job] section (command-line overrides use it too). */
ifk_status ifk_jobspec_set(ifk_jobspec *j, const char *section, const char *key, const char *value);

/* The line of FILE where [section] key is set (the last time), 0 when the file does not set it (a
 * default or a command-line override): for FILE:LINE messages about values only the model can
 * judge. */
long ifk_jobspec_line(const ifk_jobspec *j, const char *section, const char *key);

/* Checks the spec's settings against its methods (dev needs infoflow-dev, a seed random,
 * score_layers infoflow or infoflow-dev) and its grid against the model (n_layers layers, seq_len positions): [ablation]
 * layers and [job] score_layers within 0..n_layers-1, every [needle] length plus steps within
 * seq_len. Refuses, never clamps: IFK_ERR_ARG "FILE:LINE: layers: 3-9 is outside the model's
 * layers 0-4". */
ifk_status ifk_jobspec_check_model(const ifk_jobspec *j, int n_layers, int seq_len);

typedef struct {
    char *id, *prompt;
    char **docs;    /* document ids in order; for LongBench items, the passages once cached */
    int n_docs;
    int retrieve;   /* > 0: BM25 top-k instead of docs */
    char **answers; /* gold answers, optional */
    int n_answers;
    char **passages; /* LongBench items: the context split into passages, to cache */
    int n_passages;
    long line;
} ifk_qitem;

/* Reads a query set: {"id", "prompt", "docs": [...] | "retrieve": K, "answers": [...]} or
 * LongBench's {"_id"/"id", "input", "context", "answers"}; a LongBench context is split into
 * passages ("\nPassage " markers, else blank lines, else one passage) named "<id>#p<k>". */
ifk_status ifk_queryset_read(const char *path, ifk_qitem **items, int *n);
void ifk_queryset_free(ifk_qitem *items, int n);

#endif
