/* cli.c — option parsing shared by every subcommand. */
#include "cli.h"
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int quiet_;
void ifk_cli_set_quiet(int quiet) { quiet_ = quiet; }

void ifk_cli_usage(const char *usage, const ifk_opt *opts) {
    if (quiet_) return;
    printf("%s\n\noptions:\n", usage);
    for (const ifk_opt *o = opts; o->name; o++) {
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-24s %s\n", head, o->help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

ifk_status ifk_cli_parse(int argc, char **argv, const ifk_opt *opts, const char *usage, int *help) {
    unsigned char given[IFK_CLI_MAX_OPTS] = {0}; /* an option given twice is refused, not overwritten */
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            ifk_cli_usage(usage, opts);
            *help = 1;
            return IFK_OK;
        }
        if (strncmp(a, "--", 2))
            return IFK_FAIL(IFK_ERR_ARG, "%s: unexpected argument '%s' (options start with --; see --help)", argv[0], a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const ifk_opt *o = opts;
        for (; o->name; o++)
            if (strlen(o->name) == nlen && !strncmp(o->name, name, nlen)) break;
        if (!o->name) return IFK_FAIL(IFK_ERR_ARG, "%s: unknown option '%s' (see --help)", argv[0], a);
        if (o - opts >= IFK_CLI_MAX_OPTS) return IFK_FAIL(IFK_ERR_ARG, "%s: too many options in the table", argv[0]);
        if (given[o - opts]++) return IFK_FAIL(IFK_ERR_ARG, "%s: --%s given twice", argv[0], o->name);
        if (!o->arg) {
            if (eq) return IFK_FAIL(IFK_ERR_ARG, "%s: option --%s takes no value", argv[0], o->name);
            *o->flag = 1;
        } else if (eq) {
            *o->val = eq + 1;
        } else {
            if (i + 1 >= argc) return IFK_FAIL(IFK_ERR_ARG, "%s: option --%s needs a value %s", argv[0], o->name, o->arg);
            *o->val = argv[++i];
        }
    }
    return IFK_OK;
}

ifk_status ifk_cli_int(const char *name, const char *s, long lo, long hi, long *out) {
    if (!s) return IFK_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return IFK_FAIL(IFK_ERR_ARG, "--%s '%s' is not an integer in [%ld, %ld]", name, s, lo, hi);
    *out = v;
    return IFK_OK;
}

ifk_status ifk_cli_double(const char *name, const char *s, double lo, double hi, double *out) {
    if (!s) return IFK_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return IFK_FAIL(IFK_ERR_ARG, "--%s '%s' is not a number in [%g, %g]", name, s, lo, hi);
    *out = v;
    return IFK_OK;
}

void ifk_json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) { /* a decoded answer may hold a byte token alone: JSON text must be UTF-8 */
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k > 0) fwrite(s + i, 1, (size_t)k, f), i += (size_t)k;
            else fputs("\\ufffd", f), i++;
            continue;
        }
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
        i++;
    }
    fputc('"', f);
}

ifk_status ifk_cli_weights(const char *v) {
    ifk_wdtype t;
    if (!v || !strcmp(v, "auto")) {
        ifk_weights_request(-1);
        return IFK_OK;
    }
    if (ifk_wdtype_parse(v, &t) != 0) return IFK_FAIL(IFK_ERR_ARG, "--weights: '%s' is not one of f32, bf16, f16, auto", v);
    ifk_weights_request((int)t);
    return IFK_OK;
}
