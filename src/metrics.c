/* metrics.c — answer normalisation, F1/EM, confidence intervals. */
#include "metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ifk_normalize_answer(const char *s, char *out) {
    /* lower-case and drop punctuation (ASCII punctuation, as Python's string.punctuation) */
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 128 && ispunct(*p)) continue;
        out[n++] = (char)(*p < 128 ? tolower(*p) : *p);
    }
    out[n] = '\0';
    /* drop the words a, an, the and collapse whitespace */
    char *w = out, *r = out;
    int first = 1;
    while (*r) {
        while (*r && isspace((unsigned char)*r)) r++;
        if (!*r) break;
        char *b = r;
        while (*r && !isspace((unsigned char)*r)) r++;
        size_t len = (size_t)(r - b);
        if ((len == 1 && b[0] == 'a') || (len == 2 && !strncmp(b, "an", 2)) || (len == 3 && !strncmp(b, "the", 3)))
            continue;
        if (!first) *w++ = ' ';
        memmove(w, b, len);
        w += len;
        first = 0;
    }
    *w = '\0';
}

/* Splits a normalised string into words (pointers into buf, which is modified). */
static int words_(char *buf, char **w, int cap) {
    int n = 0;
    for (char *t = strtok(buf, " "); t && n < cap; t = strtok(NULL, " ")) w[n++] = t;
    return n;
}

double ifk_f1(const char *pred, const char *gold) {
    size_t lp = strlen(pred), lg = strlen(gold);
    char *a = malloc(lp + 1), *b = malloc(lg + 1);
    char **wa = malloc(sizeof(char *) * (lp / 2 + 2)), **wb = malloc(sizeof(char *) * (lg / 2 + 2));
    double f = 0.0;
    if (!a || !b || !wa || !wb) goto done;
    ifk_normalize_answer(pred, a);
    ifk_normalize_answer(gold, b);
    int na = words_(a, wa, (int)(lp / 2 + 2)), nb = words_(b, wb, (int)(lg / 2 + 2));
    if (na == 0 || nb == 0) {
        f = na == nb ? 1.0 : 0.0;
        goto done;
    }
    int common = 0;
    char *used = calloc((size_t)nb, 1);
    if (!used) goto done;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (!used[j] && !strcmp(wa[i], wb[j])) {
                used[j] = 1;
                common++;
                break;
            }
    free(used);
    if (common) {
        double p = (double)common / na, r = (double)common / nb;
        f = 2 * p * r / (p + r);
    }
done:
    free(a), free(b), free(wa), free(wb);
    return f;
}

int ifk_exact_match(const char *pred, const char *gold) {
    char *a = malloc(strlen(pred) + 1), *b = malloc(strlen(gold) + 1);
    int eq = 0;
    if (a && b) {
        ifk_normalize_answer(pred, a);
        ifk_normalize_answer(gold, b);
        eq = !strcmp(a, b);
    }
    free(a), free(b);
    return eq;
}

double ifk_t975(int df) {
    static const double t[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < 1) return NAN;
    if (df <= 30) return t[df];
    if (df <= 60) return 2.042 - (df - 30) * (2.042 - 2.000) / 30.0;
    if (df <= 120) return 2.000 - (df - 60) * (2.000 - 1.980) / 60.0;
    return 1.960;
}

void ifk_mean_ci95(const double *x, int n, double *mean, double *half) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = n ? s / n : NAN;
    *half = 0.0;
    if (n < 2) return;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *half = ifk_t975(n - 1) * sqrt(ss / (n - 1) / n);
}
