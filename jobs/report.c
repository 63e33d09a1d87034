/* report.c — result collection for `infoflow eval`: summaries (markdown, CSV, printed) with 95%
 * CIs and gnuplot plots, read back from the JSONL result files so that merged array-task outputs
 * summarise the same way (report.h). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "evalio.h"
#include "metrics.h"

/* ---- results ---------------------------------------------------------------------------------- */

typedef struct {
    char method[16];
    double budget;
    int reorder, layer;
    double kl, top1, lead, f1, em, ttft;
    int has_gold;
    double t[6];
} row_;

typedef struct {
    row_ *r;
    int n, cap;
} rows_;

static void push_row_(rows_ *rs, const row_ *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->r = realloc(rs->r, sizeof *rs->r * rs->cap);
        IFK_ASSERT(rs->r);
    }
    rs->r[rs->n++] = *r;
}

/* One markdown cell: mean ± half-width with prec decimals, or "–" where the column has no value
 * (a metric the rows do not carry: leading tokens of the ablation, F1 without gold answers). */
static void cell_(FILE *md, double mean, double half, int prec) {
    if (isnan(mean)) fprintf(md, " – |");
    else fprintf(md, " %.*f ± %.*f |", prec, mean, prec, half);
}

/* Groups rows by (method, budget, reorder, layer) and writes means with 95% CIs. */
static void summarize_(const rows_ *rs, FILE *csv, FILE *md, const char *title) {
    fprintf(md, "\n### %s\n\n| method | budget | reorder | n | KL(full‖method) | top-1 | leading tokens | F1 | EM | TTFT ms |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n", title);
    char *done = calloc((size_t)rs->n + 1, 1);
    double *buf = malloc(sizeof(double) * ((size_t)rs->n + 1));
    for (int i = 0; i < rs->n; i++) {
        if (done[i]) continue;
        const row_ *a = &rs->r[i];
        int idx[4096], n = 0;
        for (int j = i; j < rs->n && n < 4096; j++) {
            const row_ *b = &rs->r[j];
            if (!done[j] && !strcmp(a->method, b->method) && a->budget == b->budget && a->reorder == b->reorder &&
                a->layer == b->layer)
                idx[n++] = j, done[j] = 1;
        }
        double mean[6], half[6];
        for (int f = 0; f < 6; f++) {
            int m = 0;
            for (int q = 0; q < n; q++) {
                const row_ *b = &rs->r[idx[q]];
                double v = f == 0 ? b->kl : f == 1 ? b->top1 : f == 2 ? b->lead : f == 3 ? b->f1 : f == 4 ? b->em : b->ttft;
                if (((f == 3 || f == 4) && !b->has_gold) || isnan(v)) continue;
                buf[m++] = v;
            }
            if (m) ifk_mean_ci95(buf, m, &mean[f], &half[f]);
            else mean[f] = NAN, half[f] = 0;
        }
        char lay[32] = "";
        if (a->layer >= 0) snprintf(lay, sizeof lay, " (layer %d)", a->layer);
        fprintf(md, "| %s%s | %.2f | %s | %d |", a->method, lay, a->budget, a->reorder ? "on" : "off", n);
        static const int prec[6] = {5, 2, 1, 3, 3, 1}; /* KL, top-1, leading, F1, EM, TTFT */
        for (int f = 0; f < 6; f++) cell_(md, mean[f], half[f], prec[f]);
        fprintf(md, "\n");
        fprintf(csv, "%s,%s,%g,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", title, a->method,
                a->budget, a->reorder, a->layer, n, mean[0], half[0], mean[1], half[1], mean[2], half[2], mean[3],
                half[3], mean[4], half[4], mean[5], half[5]);
    }
    free(done), free(buf);
}

/* ---- plots ------------------------------------------------------------------------------------- */

/* What the plots need to know, derived from the results themselves. */
typedef struct {
    char methods[IFK_MAX_LIST][16];
    int n_methods;
    double budget_lo, budget_hi, ablation_budget;
    double frontier_kl; /* the frontier table's target KL, drawn on the speed-accuracy plot; 0: none */
    int lengths[IFK_MAX_LIST], n_lengths, depths[IFK_MAX_LIST], n_depths;
} plotspec_;

/* The first write that failed while summarizing (a full disk): reported by ifk_report_summarize. */
static int wfail_errno_;
static char wfail_path_[2048];

static void wfail_(const char *path) {
    if (wfail_path_[0]) return;
    wfail_errno_ = errno ? errno : EIO;
    snprintf(wfail_path_, sizeof wfail_path_, "%s", path);
}

static FILE *wopen_(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) wfail_(path);
    return f;
}

static void wclose_(FILE *f, const char *path) {
    if (!f) return;
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) wfail_(path);
}

static void plots_(const char *out, const plotspec_ *j, int have_fid, int have_needle, int have_abl, int quiet) {
    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        fprintf(stderr, "eval: gnuplot not found (apt-get install gnuplot-nox): plots not written\n");
        return;
    }
    char path[2048], cmd[4200];
    snprintf(path, sizeof path, "%s/plots.gp", out);
    FILE *g = wopen_(path);
    if (!g) return;
    fprintf(g, "set terminal pngcairo size 900,600 noenhanced\nset datafile separator whitespace\nset key outside right\n");
    if (have_fid) {
        fprintf(g, "set output '%s/speed_accuracy.png'\nset title 'Speed-accuracy: TTFT vs KL(full||method), budgets %.2f..%.2f'\n"
                   "set xlabel 'TTFT (ms)'\nset ylabel 'mean KL(full || method) at the first answer token'\nset logscale y\n",
                out, j->budget_lo, j->budget_hi);
        if (j->frontier_kl > 0) /* the frontier table's target: a method reaches it where its curve crosses */
            fprintf(g, "set arrow 1 from graph 0, first %.9g to graph 1, first %.9g nohead dt 2 lc 'gray'\n"
                       "set label 1 'frontier target KL %.5f' at graph 0.02, first %.9g offset 0,0.7 tc 'gray'\n",
                    j->frontier_kl, j->frontier_kl, j->frontier_kl, j->frontier_kl);
        fprintf(g, "plot for [i=0:*] '%s/speed_accuracy.dat' index i using 2:3 with linespoints pt 7 title columnheader(1)\n", out);
        fprintf(g, "unset arrow 1\nunset label 1\n");
        fprintf(g, "unset logscale y\n");
    }
    if (have_needle) {
        fprintf(g, "set output '%s/needle.png'\nset terminal pngcairo size 1200,%d noenhanced\n", out,
                300 * ((j->n_methods + 2) / 3));
        fprintf(g, "set multiplot layout %d,3 title 'Needle: p(name | method) / p(name | full), context length x depth'\n",
                (j->n_methods + 2) / 3);
        fprintf(g, "set xlabel 'context tokens (target)'\nset ylabel 'needle depth %%'\nset cbrange [0:1.2]\n"
                   "set palette defined (0 'red', 0.6 'yellow', 1 'green', 1.2 'dark-green')\nset xtics (");
        for (int i = 0; i < j->n_lengths; i++) fprintf(g, "%s%d", i ? ", " : "", j->lengths[i]);
        fprintf(g, ") rotate by 45 right\nset ytics (");
        for (int i = 0; i < j->n_depths; i++) fprintf(g, "%s%d", i ? ", " : "", j->depths[i]);
        fprintf(g, ")\n");
        for (int i = 0; i < j->n_methods; i++)
            fprintf(g, "set title '%s'\nplot '%s/needle_%s.dat' using 1:2:3 with image notitle\n", j->methods[i], out,
                    j->methods[i]);
        fprintf(g, "unset multiplot\nset terminal pngcairo size 900,600 noenhanced\n");
    }
    if (have_abl) {
        fprintf(g, "set output '%s/ablation.png'\nset title 'Scoring-layer ablation: InfoFlow with one scoring layer, R=%.2f'\n"
                   "set xlabel 'scoring layer'\nset ylabel 'mean KL(full || infoflow)'\nset xtics 1\n"
                   "plot '%s/ablation.dat' using 1:2:3 with yerrorlines pt 7 title 'mean +- 95%% CI'\n",
                out, j->ablation_budget, out);
    }
    wclose_(g, path);
    if (wfail_path_[0]) return;
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    char line[512];
    while (p && fgets(line, sizeof line, p)) fprintf(stderr, "gnuplot: %s", line);
    if (p) pclose(p);
    if (!quiet) fprintf(stderr, "eval: plots in %s (speed_accuracy.png, needle.png, ablation.png as run)\n", out);
}


/* ---- what an eval owns in its out directory ---------------------------------------------------- */

/* The files derived from the result files (ifk_report_summarize writes those that apply). */
static const char *derived_[] = {"summary.md", "summary.csv", "frontier.csv", "plots.gp", "speed_accuracy.dat",
                                 "ablation.dat", "speed_accuracy.png", "needle.png", "ablation.png", NULL};
static const char *results_[] = {"fidelity.jsonl", "needle.jsonl", "ablation.jsonl", NULL};

static int owned_(const char *name, int results_too) {
    for (int i = 0; derived_[i]; i++)
        if (!strcmp(name, derived_[i])) return 1;
    for (int i = 0; results_too && results_[i]; i++)
        if (!strcmp(name, results_[i])) return 1;
    const size_t n = strlen(name); /* needle_METHOD.dat */
    return n > 11 && !strncmp(name, "needle_", 7) && !strcmp(name + n - 4, ".dat");
}

/* Removes the owned files of dir (results_too: the result files as well); a missing dir is empty. */
static ifk_status clear_(const char *dir, int results_too) {
    DIR *d = opendir(dir);
    if (!d) return IFK_OK;
    ifk_status st = IFK_OK;
    for (struct dirent *e; st == IFK_OK && (e = readdir(d));) {
        if (!owned_(e->d_name, results_too)) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            st = IFK_FAIL(IFK_ERR_IO, "%s: cannot remove an earlier job's result: %s", path, strerror(errno));
    }
    closedir(d);
    return st;
}

ifk_status ifk_report_clear(const char *dir) { return clear_(dir, 1); }

/* ---- summaries from result files -------------------------------------------------------------- */

/* Reads a JSONL file line by line into cJSON objects passed to fn with "FILE:LINE" for its
 * messages; missing file: 0 lines. The first line fn refuses ends the read. */
static ifk_status each_line_(const char *path, ifk_status (*fn)(const cJSON *o, const char *where, void *ctx), void *ctx,
                             int *n) {
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return IFK_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    ifk_status st = IFK_OK;
    while (st == IFK_OK && (len = getline(&line, &cap, f)) >= 0) {
        ln++;
        if (len <= 1) continue;
        char where[2100];
        snprintf(where, sizeof where, "%s:%ld", path, ln);
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not a result line (JSON object)", where);
        else st = fn(o, where, ctx);
        cJSON_Delete(o);
        (*n)++;
    }
    free(line);
    fclose(f);
    return st;
}

/* The fields of a result line, checked: a missing field, a wrong type or a value out of its
 * range is refused naming FILE:LINE and the field, never read as 0 or NaN. */
static ifk_status num_(const cJSON *o, const char *where, const char *k, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return IFK_FAIL(IFK_ERR_FORMAT, "%s: missing \"%s\"", where, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" is not a number", where, k);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" = %g is outside [%g, %g]", where, k, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return IFK_OK;
}
static ifk_status int_(const cJSON *o, const char *where, const char *k, double lo, double hi, int *out) {
    double d = 0;
    IFK_CHECK(num_(o, where, k, lo, hi, &d));
    if (d != (int)d) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" = %g is not an integer", where, k, d);
    *out = (int)d;
    return IFK_OK;
}
static ifk_status bool_(const cJSON *o, const char *where, const char *k, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return IFK_FAIL(IFK_ERR_FORMAT, "%s: missing \"%s\"", where, k);
    if (!cJSON_IsBool(v)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" is not true or false", where, k);
    *out = cJSON_IsTrue(v);
    return IFK_OK;
}
static ifk_status str_(const cJSON *o, const char *where, const char *k, char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return IFK_FAIL(IFK_ERR_FORMAT, "%s: missing \"%s\"", where, k);
    if (!cJSON_IsString(v) || !v->valuestring[0]) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" is not a non-empty string", where, k);
    if (strlen(v->valuestring) >= cap) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" is too long", where, k);
    snprintf(out, cap, "%s", v->valuestring);
    return IFK_OK;
}
/* A method name eval writes. */
static ifk_status method_(const cJSON *o, const char *where, char *out, size_t cap) {
    IFK_CHECK(str_(o, where, "method", out, cap));
    static const char *known[] = {"full", "none", "infoflow", "infoflow-dev", "cacheblend", "epic", "random", NULL};
    for (int i = 0; known[i]; i++)
        if (!strcmp(out, known[i])) return IFK_OK;
    return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"method\" \"%s\" is not one of full, none, infoflow, infoflow-dev, cacheblend, "
                    "epic, random", where, out);
}

typedef struct {
    rows_ rows;
    char (*keys)[1200];
    int nkeys, capkeys;
    int layer_rows; /* ablation file: layer from score_layer */
} collect_;

/* Keeps the first line of each (item, method, budget, reorder, layer): merged array-task outputs
 * repeat the full-prefill reference. */
static int seen_(collect_ *c, const char *key) {
    for (int i = 0; i < c->nkeys; i++)
        if (!strcmp(c->keys[i], key)) return 1;
    if (c->nkeys == c->capkeys) {
        c->capkeys = c->capkeys ? 2 * c->capkeys : 256;
        c->keys = realloc(c->keys, sizeof *c->keys * c->capkeys);
        IFK_ASSERT(c->keys);
    }
    snprintf(c->keys[c->nkeys++], 1200, "%s", key);
    return 0;
}

static ifk_status fid_line_(const cJSON *o, const char *where, void *ctx) {
    collect_ *c = ctx;
    row_ r = {.layer = -1};
    char item[1024];
    IFK_CHECK(str_(o, where, "item", item, sizeof item));
    if (c->layer_rows) {
        snprintf(r.method, sizeof r.method, "infoflow");
        IFK_CHECK(int_(o, where, "score_layer", 0, 1023, &r.layer));
    } else {
        IFK_CHECK(method_(o, where, r.method, sizeof r.method));
        IFK_CHECK(bool_(o, where, "reorder", &r.reorder));
    }
    IFK_CHECK(num_(o, where, "budget", 0, 1, &r.budget));
    IFK_CHECK(num_(o, where, "kl", 0, INFINITY, &r.kl)); /* KL(full || method) >= 0 */
    int top1 = 0, lead = 0;
    IFK_CHECK(bool_(o, where, "top1_agree", &top1));
    r.top1 = top1;
    r.lead = NAN, r.ttft = NAN; /* the ablation records neither: "–" */
    if (!c->layer_rows) {
        IFK_CHECK(int_(o, where, "leading_agree", 0, 1 << 30, &lead));
        r.lead = lead;
        IFK_CHECK(num_(o, where, "ttft_ms", 0, INFINITY, &r.ttft));
    }
    r.has_gold = cJSON_GetObjectItemCaseSensitive(o, "f1") != NULL;
    if (r.has_gold) {
        int em;
        IFK_CHECK(num_(o, where, "f1", 0, 1, &r.f1));
        IFK_CHECK(int_(o, where, "em", 0, 1, &em));
        r.em = em;
    }
    char key[1200];
    snprintf(key, sizeof key, "%s|%s|%g|%d|%d", item, r.method, r.budget, r.reorder, r.layer);
    if (!seen_(c, key)) push_row_(&c->rows, &r);
    return IFK_OK;
}

typedef struct {
    char method[16];
    int target, depth, hit, full_hit;
    double ratio, kl, budget;
} needle_row_;

typedef struct {
    needle_row_ *r;
    int n, cap;
    collect_ keys;
} needles_;

static ifk_status needle_line_(const cJSON *o, const char *where, void *ctx) {
    needles_ *c = ctx;
    needle_row_ r = {0};
    int ctx_tokens;
    IFK_CHECK(method_(o, where, r.method, sizeof r.method));
    IFK_CHECK(int_(o, where, "target_tokens", 1, 1 << 30, &r.target));
    IFK_CHECK(int_(o, where, "context_tokens", 1, 1 << 30, &ctx_tokens));
    IFK_CHECK(int_(o, where, "depth", 0, 100, &r.depth));
    IFK_CHECK(num_(o, where, "ratio", 0, INFINITY, &r.ratio));
    IFK_CHECK(num_(o, where, "kl", 0, INFINITY, &r.kl));
    IFK_CHECK(num_(o, where, "budget", 0, 1, &r.budget));
    IFK_CHECK(bool_(o, where, "greedy_hit", &r.hit));
    IFK_CHECK(bool_(o, where, "full_hit", &r.full_hit));
    char key[160];
    snprintf(key, sizeof key, "%s|%d|%d", r.method, r.target, r.depth);
    if (seen_(&c->keys, key)) return IFK_OK;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->r = realloc(c->r, sizeof *c->r * c->cap);
        IFK_ASSERT(c->r);
    }
    c->r[c->n++] = r;
    return IFK_OK;
}

static void add_unique_i_(int *v, int *n, int x) {
    for (int i = 0; i < *n; i++)
        if (v[i] == x) return;
    if (*n < IFK_MAX_LIST) v[(*n)++] = x;
    for (int i = *n - 1; i > 0 && v[i] < v[i - 1]; i--) { int t = v[i]; v[i] = v[i - 1]; v[i - 1] = t; }
}

static void add_method_(plotspec_ *ps, const char *m) {
    for (int i = 0; i < ps->n_methods; i++)
        if (!strcmp(ps->methods[i], m)) return;
    if (ps->n_methods < IFK_MAX_LIST) snprintf(ps->methods[ps->n_methods++], 16, "%s", m);
}

/* ---- the speed-accuracy frontier ------------------------------------------------------------ */

/* One method's curve: mean TTFT and mean KL per budget (no reordering), ascending budgets. */
typedef struct {
    int n;
    double budget[IFK_MAX_LIST], ttft[IFK_MAX_LIST], kl[IFK_MAX_LIST];
} curve_;

static void curve_of_(const rows_ *rs, const char *method, curve_ *c) {
    c->n = 0;
    for (int q = 0; q < rs->n; q++) {
        const row_ *r = &rs->r[q];
        if (strcmp(r->method, method) || r->reorder) continue;
        int k = 0;
        while (k < c->n && c->budget[k] != r->budget) k++;
        if (k == c->n) {
            if (c->n == IFK_MAX_LIST) continue;
            c->budget[c->n] = r->budget, c->ttft[c->n] = c->kl[c->n] = 0, c->n++;
        }
    }
    for (int a = 1; a < c->n; a++)
        for (int k = a; k > 0 && c->budget[k] < c->budget[k - 1]; k--) {
            double t = c->budget[k];
            c->budget[k] = c->budget[k - 1], c->budget[k - 1] = t;
        }
    for (int k = 0; k < c->n; k++) {
        int n = 0;
        for (int q = 0; q < rs->n; q++) {
            const row_ *r = &rs->r[q];
            if (!strcmp(r->method, method) && !r->reorder && r->budget == c->budget[k])
                c->ttft[k] += r->ttft, c->kl[k] += r->kl, n++;
        }
        c->ttft[k] /= n, c->kl[k] /= n;
    }
}

/* The TTFT a method needs to reach KL <= target along its curve: at the first budget (ascending)
 * whose mean KL reaches it, interpolated linearly in log KL from the previous budget's point (the
 * curve between measured budgets is not known; the interpolation is stated in the table). Returns
 * the index of that budget, -1 when no budget reaches it. */
static int frontier_ttft_(const curve_ *c, double target, double *ttft) {
    for (int k = 0; k < c->n; k++) {
        if (c->kl[k] > target) continue;
        *ttft = c->ttft[k];
        if (k > 0 && c->kl[k - 1] > target && c->kl[k] > 0) {
            const double a = log(c->kl[k - 1]), b = log(c->kl[k]), w = (a - log(target)) / (a - b);
            *ttft = c->ttft[k - 1] + w * (c->ttft[k] - c->ttft[k - 1]);
        }
        return k;
    }
    return -1;
}

/* The frontier table: for every method the TTFT it needs to reach the KL InfoFlow reaches at the
 * budget nearest 0.15 (without InfoFlow in the results: the first selective method's). Writes
 * markdown to md and frontier.csv in dir; the target goes to ps->frontier_kl for the plot. */
static void frontier_summary_(const rows_ *rs, plotspec_ *ps, const char *dir, FILE *md) {
    curve_ ref = {0};
    const char *ref_m = NULL;
    for (int mi = 0; mi < ps->n_methods && !ref_m; mi++)
        if (!strcmp(ps->methods[mi], "infoflow")) ref_m = ps->methods[mi];
    for (int mi = 0; mi < ps->n_methods && !ref_m; mi++)
        if (strcmp(ps->methods[mi], "full") && strcmp(ps->methods[mi], "none")) ref_m = ps->methods[mi];
    if (!ref_m) return;
    curve_of_(rs, ref_m, &ref);
    int at = -1;
    for (int k = 0; k < ref.n; k++)
        if (at < 0 || fabs(ref.budget[k] - 0.15) < fabs(ref.budget[at] - 0.15)) at = k;
    if (at < 0) return;
    const double target = ref.kl[at];
    ps->frontier_kl = target;
    char path[2048];
    snprintf(path, sizeof path, "%s/frontier.csv", dir);
    FILE *csv = wopen_(path);
    if (csv) fprintf(csv, "method,target_kl,reached,budget,ttft_ms,ttft_at_budget_ms\n");
    fprintf(md, "\n### speed-accuracy frontier: the TTFT each method needs to reach KL ≤ %.5f (%s at R = %.2f)\n\n"
                "Mean TTFT and mean KL per budget (no reordering). TTFT needed: at the first budget whose mean KL "
                "reaches the target, interpolated in log KL from the budget before it.\n\n"
                "| method | first budget reaching it | its mean KL | TTFT needed ms | TTFT at that budget ms |\n"
                "|---|---|---|---|---|\n", target, ref_m, ref.budget[at]);
    for (int mi = 0; mi < ps->n_methods; mi++) {
        curve_ c;
        curve_of_(rs, ps->methods[mi], &c);
        double t = 0;
        const int k = frontier_ttft_(&c, target, &t);
        if (c.n == 0) { /* only reordered runs: no curve */
            fprintf(md, "| %s | – | – | – | – |\n", ps->methods[mi]);
            continue;
        }
        if (k < 0) {
            double best = INFINITY;
            for (int q = 0; q < c.n; q++) best = c.kl[q] < best ? c.kl[q] : best;
            fprintf(md, "| %s | not reached (best %.5f) | – | – | – |\n", ps->methods[mi], best);
            if (csv) fprintf(csv, "%s,%.9g,0,,,\n", ps->methods[mi], target);
            continue;
        }
        fprintf(md, "| %s | %.2f | %.5f | %.1f | %.1f |\n", ps->methods[mi], c.budget[k], c.kl[k], t, c.ttft[k]);
        if (csv) fprintf(csv, "%s,%.9g,1,%g,%.4f,%.4f\n", ps->methods[mi], target, c.budget[k], t, c.ttft[k]);
    }
    wclose_(csv, path);
}

/* The needle table (markdown) and each method's heat-map data (needle_METHOD.dat). */
static void needle_summary_(const needles_ *nd, const plotspec_ *pn, const char *dir, FILE *md) {
    char path[2048];
    fprintf(md, "\n### needle: p(name | method) / p(name | full), KL, and greedy recall\n\n"
                "| method | budget | cells | mean ratio | mean KL | greedy hits | full's hits |\n|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < pn->n_methods; mi++) {
        double s = 0, kl = 0, b = 0;
        int h = 0, fh = 0, c = 0;
        for (int i = 0; i < nd->n; i++)
            if (!strcmp(nd->r[i].method, pn->methods[mi]))
                s += nd->r[i].ratio, kl += nd->r[i].kl, h += nd->r[i].hit, fh += nd->r[i].full_hit, b = nd->r[i].budget, c++;
        fprintf(md, "| %s | %.2f | %d | %.3f | %.5f | %d | %d |\n", pn->methods[mi], b, c, s / c, kl / c, h, fh);
        snprintf(path, sizeof path, "%s/needle_%s.dat", dir, pn->methods[mi]);
        FILE *d = wopen_(path);
        for (int li = 0; d && li < pn->n_lengths; li++) {
            for (int di = 0; di < pn->n_depths; di++)
                for (int i = 0; i < nd->n; i++)
                    if (!strcmp(nd->r[i].method, pn->methods[mi]) && nd->r[i].target == pn->lengths[li] &&
                        nd->r[i].depth == pn->depths[di])
                        fprintf(d, "%d %d %.6g\n", pn->lengths[li], pn->depths[di], nd->r[i].ratio);
            fprintf(d, "\n");
        }
        wclose_(d, path);
    }
}

/* speed_accuracy.dat: per method, (budget, mean TTFT, mean KL) without reordering (curve_of_). */
static void speed_accuracy_dat_(const rows_ *rs, const plotspec_ *ps, const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/speed_accuracy.dat", dir);
    FILE *d = wopen_(path);
    for (int mi = 0; d && mi < ps->n_methods; mi++) {
        curve_ c;
        curve_of_(rs, ps->methods[mi], &c);
        fprintf(d, "\"%s\"\n", ps->methods[mi]);
        for (int k = 0; k < c.n; k++) fprintf(d, "%g %.4f %.9g\n", c.budget[k], c.ttft[k], c.kl[k] > 1e-9 ? c.kl[k] : 1e-9);
        fprintf(d, "\n\n");
    }
    wclose_(d, path);
}

/* Whether the speed-accuracy plot has two points of distinct TTFT and distinct KL (curve_of_). */
static int drawable_fid_(const rows_ *rs, const plotspec_ *ps) {
    double t0 = NAN, k0 = NAN;
    int dt = 0, dk = 0;
    for (int mi = 0; mi < ps->n_methods; mi++) {
        curve_ c;
        curve_of_(rs, ps->methods[mi], &c);
        for (int k = 0; k < c.n; k++) {
            const double kl = c.kl[k] > 1e-9 ? c.kl[k] : 1e-9; /* as speed_accuracy.dat draws it */
            if (isnan(t0)) t0 = c.ttft[k], k0 = kl;
            dt |= c.ttft[k] != t0, dk |= kl != k0;
        }
    }
    return dt && dk;
}

/* ablation.dat: per scoring layer, the mean KL and its 95% CI half-width. */
static void ablation_dat_(const rows_ *rs, const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/ablation.dat", dir);
    FILE *d = wopen_(path);
    double *v = malloc(sizeof(double) * (size_t)rs->n);
    for (int l = 0; d && v && l < 1024; l++) {
        int n = 0;
        for (int q = 0; q < rs->n; q++)
            if (rs->r[q].layer == l) v[n++] = rs->r[q].kl;
        double mean, half;
        if (n) ifk_mean_ci95(v, n, &mean, &half), fprintf(d, "%d %.9g %.9g\n", l, mean, half);
    }
    free(v);
    wclose_(d, path);
}

ifk_status ifk_report_summarize(const char *dir, const char *title, int quiet) {
    char path[2048];
    collect_ fid = {0}, abl = {.layer_rows = 1};
    needles_ nd = {0};
    int nf, na, nn;
    snprintf(path, sizeof path, "%s/fidelity.jsonl", dir);
    IFK_CHECK(each_line_(path, fid_line_, &fid, &nf));
    snprintf(path, sizeof path, "%s/ablation.jsonl", dir);
    IFK_CHECK(each_line_(path, fid_line_, &abl, &na));
    snprintf(path, sizeof path, "%s/needle.jsonl", dir);
    IFK_CHECK(each_line_(path, needle_line_, &nd, &nn));
    if (!fid.rows.n && !abl.rows.n && !nd.n) return IFK_FAIL(IFK_ERR_IO, "%s: no result files (fidelity.jsonl, needle.jsonl, ablation.jsonl)", dir);
    IFK_CHECK(clear_(dir, 0)); /* no plot or table of an earlier summary outlives this one */
    plotspec_ ps = {.budget_lo = 1, .budget_hi = 0, .ablation_budget = 0.15};
    for (int i = 0; i < fid.rows.n; i++) {
        const row_ *r = &fid.rows.r[i];
        add_method_(&ps, r->method);
        if (strcmp(r->method, "full") && strcmp(r->method, "none")) {
            ps.budget_lo = r->budget < ps.budget_lo ? r->budget : ps.budget_lo;
            ps.budget_hi = r->budget > ps.budget_hi ? r->budget : ps.budget_hi;
        }
    }
    if (abl.rows.n) ps.ablation_budget = abl.rows.r[0].budget;
    plotspec_ pn = ps; /* the needle plot has its own method list */
    pn.n_methods = 0;
    for (int i = 0; i < nd.n; i++) {
        add_method_(&pn, nd.r[i].method);
        add_unique_i_(pn.lengths, &pn.n_lengths, nd.r[i].target);
        add_unique_i_(pn.depths, &pn.n_depths, nd.r[i].depth);
    }
    char csv_path[2048], md_path[2048];
    snprintf(csv_path, sizeof csv_path, "%s/summary.csv", dir);
    snprintf(md_path, sizeof md_path, "%s/summary.md", dir);
    wfail_path_[0] = '\0';
    FILE *csv = fopen(csv_path, "w");
    FILE *md = fopen(md_path, "w");
    if (!csv || !md) {
        if (csv) fclose(csv);
        if (md) fclose(md);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot write the summary: %s", dir, strerror(errno));
    }
    fprintf(csv, "table,method,budget,reorder,score_layer,n,kl,kl_ci,top1,top1_ci,leading,leading_ci,f1,f1_ci,em,em_ci,"
                 "ttft_ms,ttft_ci\n");
    fprintf(md, "# infoflow eval\n\n%s. Means ± 95%% CI (Student t) over items; KL in nats at the first answer token; "
                "leading = answer tokens equal to full's.\n", title);
    if (fid.rows.n) summarize_(&fid.rows, csv, md, "fidelity");
    if (fid.rows.n) frontier_summary_(&fid.rows, &ps, dir, md);
    if (abl.rows.n) summarize_(&abl.rows, csv, md, "scoring-layer ablation");
    if (nd.n) needle_summary_(&nd, &pn, dir, md);
    wclose_(csv, csv_path);
    wclose_(md, md_path);
    if (fid.rows.n) speed_accuracy_dat_(&fid.rows, &ps, dir);
    if (abl.rows.n) ablation_dat_(&abl.rows, dir);
    plotspec_ all = ps;
    memcpy(all.lengths, pn.lengths, sizeof all.lengths), all.n_lengths = pn.n_lengths;
    memcpy(all.depths, pn.depths, sizeof all.depths), all.n_depths = pn.n_depths;
    if (nd.n) memcpy(all.methods, pn.methods, sizeof all.methods), all.n_methods = pn.n_methods;
    /* a plot gnuplot cannot draw (one point: an empty axis range; an image of fewer than 2 x 2
     * cells) is skipped with one line instead of gnuplot's warnings */
    const int draw_fid = fid.rows.n && drawable_fid_(&fid.rows, &ps), draw_nd = nd.n && pn.n_lengths > 1 && pn.n_depths > 1;
    int abl_layers = 0;
    for (int i = 0; i < abl.rows.n; i++) abl_layers += abl.rows.r[i].layer != abl.rows.r[0].layer;
    const int draw_abl = abl.rows.n && abl_layers > 0;
    if (fid.rows.n && !draw_fid)
        fprintf(stderr, "eval: speed_accuracy.png not drawn: the results give one (TTFT, KL) point (more methods or budgets "
                        "draw it)\n");
    if (nd.n && !draw_nd)
        fprintf(stderr, "eval: needle.png not drawn: the grid has %d length%s and %d depth%s (it needs 2 of each)\n",
                pn.n_lengths, pn.n_lengths > 1 ? "s" : "", pn.n_depths, pn.n_depths > 1 ? "s" : "");
    if (abl.rows.n && !draw_abl) fprintf(stderr, "eval: ablation.png not drawn: the ablation has one layer\n");
    if (draw_fid || draw_nd || draw_abl) plots_(dir, &all, draw_fid, draw_nd, draw_abl, quiet);
    if (wfail_path_[0]) {
        free(fid.rows.r), free(fid.keys), free(abl.rows.r), free(abl.keys), free(nd.r), free(nd.keys.keys);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot write: %s", wfail_path_, strerror(wfail_errno_));
    }
    snprintf(path, sizeof path, "%s/summary.md", dir);
    FILE *in = fopen(path, "r");
    char line[1024];
    while (in && fgets(line, sizeof line, in)) fputs(line, stdout);
    if (in) fclose(in);
    free(fid.rows.r), free(fid.keys), free(abl.rows.r), free(abl.keys), free(nd.r), free(nd.keys.keys);
    return IFK_OK;
}
