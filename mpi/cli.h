/* cli.h — the command-line option tables of the drivers. Local.
 * Options are `--name value` or boolean `--name`; every command gets --help. */
#ifndef IFK_CLI_H
#define IFK_CLI_H

#include "status.h"

typedef struct {
    const char *name;  /* without the leading -- */
    const char *arg;   /* metavariable, NULL for a flag */
    const char *help;
    const char **val;  /* where the value goes (options) */
    int *flag;         /* set to 1 (flags) */
} ifk_opt;

/* The most options one command's table may hold. */
#define IFK_CLI_MAX_OPTS 64

/* Parses argv[1..] (argv[0] is the command name). Returns IFK_OK, or IFK_ERR_ARG with the message
 * set (an unknown option, a missing value, an option given twice); *help is set when --help was
 * given (usage already printed). */
ifk_status ifk_cli_parse(int argc, char **argv, const ifk_opt *opts, const char *usage, int *help);
/* --weights f32|bf16|f16|auto (NULL: auto): sets the precision later model loads keep (ifk_weights_request);
 * an unknown name is an IFK_ERR_ARG naming the value. */
ifk_status ifk_cli_weights(const char *v);
void ifk_cli_usage(const char *usage, const ifk_opt *opts);
/* Nonzero: --help is recognised but prints nothing (ranks other than 0). */
void ifk_cli_set_quiet(int quiet);

/* Number options with range checks; an unset option (NULL) leaves *out untouched. */
ifk_status ifk_cli_int(const char *name, const char *s, long lo, long hi, long *out);
ifk_status ifk_cli_double(const char *name, const char *s, double lo, double hi, double *out);

/* Writes s[0..n) to f as a JSON string literal (quotes, escapes); a byte that does not start a valid
 * UTF-8 sequence (a byte token decoded alone) is written as \ufffd, so the line stays valid JSON. */
#include <stdio.h>
void ifk_json_str(FILE *f, const char *s, size_t n);

/* The plural "s" for a count in a message: "1 document", "0 documents", "2 documents". */
#define IFK_S(n) ((n) == 1 ? "" : "s")

#endif
