/* metrics.h — evaluation metrics. Local, pure functions.
 * (KL of two logit vectors is ifk_kl_logits in infoflow.h.) */
#ifndef IFK_METRICS_H
#define IFK_METRICS_H

#include <stddef.h>

/* LongBench normalisation: lower-case, punctuation removed, the articles a/an/the removed,
 * whitespace collapsed to single spaces, trimmed. out must hold strlen(s) + 1 bytes. */
void ifk_normalize_answer(const char *s, char *out);
/* Token-level F1 between normalised prediction and gold (whitespace tokens, multiset overlap);
 * 0 when either is empty after normalisation, unless both are (then 1). */
double ifk_f1(const char *pred, const char *gold);
/* 1 if the normalised strings are equal. */
int ifk_exact_match(const char *pred, const char *gold);

/* Mean and the half-width of its 95% confidence interval (Student t, n - 1 degrees of freedom;
 * 0 for n < 2). */
void ifk_mean_ci95(const double *x, int n, double *mean, double *half);
/* The two-sided 97.5% quantile of Student's t with df degrees of freedom. */
double ifk_t975(int df);

#endif
