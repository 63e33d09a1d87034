/* evalio.c — job spec and query set readers (evalio.h). */
#include "evalio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "json.h"

/* ---- job specs ------------------------------------------------------------------------------------ */

static ifk_status list_d_(const char *key, const char *v, double *out, int *n, double lo, double hi) {
    *n = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char *end;
        double x = strtod(t, &end);
        if (*end || end == t || !(x >= lo && x <= hi) || *n >= IFK_MAX_LIST)
            return IFK_FAIL(IFK_ERR_ARG, "%s: '%s' is not a list of numbers in [%g, %g]", key, v, lo, hi);
        for (int i = 0; i < *n; i++) /* each value is a run (or a grid line): twice would run it twice */
            if (out[i] == x) return IFK_FAIL(IFK_ERR_ARG, "%s: '%s' gives %g twice", key, v, x);
        out[(*n)++] = x;
    }
    if (!*n) return IFK_FAIL(IFK_ERR_ARG, "%s: empty list", key);
    return IFK_OK;
}

static ifk_status list_i_(const char *key, const char *v, int *out, int *n, long lo, long hi) {
    double d[IFK_MAX_LIST];
    IFK_CHECK(list_d_(key, v, d, n, (double)lo, (double)hi));
    for (int i = 0; i < *n; i++) {
        if (d[i] != (double)(long)d[i]) return IFK_FAIL(IFK_ERR_ARG, "%s: '%s' is not a list of integers", key, v);
        out[i] = (int)d[i];
    }
    return IFK_OK;
}

static ifk_status int_(const char *key, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return IFK_FAIL(IFK_ERR_ARG, "%s: '%s' is not an integer in [%ld, %ld]", key, v, lo, hi);
    *out = x;
    return IFK_OK;
}

static ifk_status range_(const char *key, const char *v, int *lo, int *hi) {
    if (!strcmp(v, "default")) {
        *lo = *hi = -1;
        return IFK_OK;
    }
    int a, b, n = 0;
    if (sscanf(v, "%d-%d%n", &a, &b, &n) == 2 && !v[n] && a >= 0 && b >= a) {
        *lo = a, *hi = b;
        return IFK_OK;
    }
    return IFK_FAIL(IFK_ERR_ARG, "%s: '%s' is not 'default' or A-B", key, v);
}

static ifk_status str_(const char *key, const char *v, char *dst, size_t cap) {
    if (strlen(v) >= cap) return IFK_FAIL(IFK_ERR_ARG, "%s: value too long", key);
    strcpy(dst, v);
    return IFK_OK;
}

ifk_status ifk_jobspec_set(ifk_jobspec *j, const char *sec, const char *k, const char *v) {
    long x = 0;
    if (!strcmp(sec, "job")) {
        if (!strcmp(k, "model")) return str_(k, v, j->model, sizeof j->model);
        if (!strcmp(k, "random_model")) return str_(k, v, j->random_model, sizeof j->random_model);
        if (!strcmp(k, "tokenizer")) return str_(k, v, j->tokenizer, sizeof j->tokenizer);
        if (!strcmp(k, "store")) return str_(k, v, j->store, sizeof j->store);
        if (!strcmp(k, "queries")) return str_(k, v, j->queries, sizeof j->queries);
        if (!strcmp(k, "out")) return str_(k, v, j->out, sizeof j->out);
        if (!strcmp(k, "methods")) {
            static const char *known[] = {"full", "none", "infoflow", "cacheblend", "epic", "random", "infoflow-dev"};
            char buf[1024];
            snprintf(buf, sizeof buf, "%s", v);
            j->n_methods = 0;
            for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
                int ok = 0;
                for (int i = 0; i < 7; i++) ok |= !strcmp(t, known[i]);
                if (!ok || j->n_methods >= IFK_MAX_LIST)
                    return IFK_FAIL(IFK_ERR_ARG, "methods: '%s' is not one of full, none, infoflow, infoflow-dev, "
                                    "cacheblend, epic, random", t);
                for (int i = 0; i < j->n_methods; i++)
                    if (!strcmp(j->methods[i], t)) return IFK_FAIL(IFK_ERR_ARG, "methods: '%s' gives %s twice", v, t);
                snprintf(j->methods[j->n_methods++], sizeof j->methods[0], "%s", t);
            }
            if (!j->n_methods) return IFK_FAIL(IFK_ERR_ARG, "methods: empty list");
            return IFK_OK;
        }
        if (!strcmp(k, "budgets")) return list_d_(k, v, j->budgets, &j->n_budgets, 0, 1);
        if (!strcmp(k, "reorder")) {
            if (!strcmp(v, "off") || !strcmp(v, "false")) j->reorder = 0;
            else if (!strcmp(v, "on") || !strcmp(v, "true")) j->reorder = 1;
            else if (!strcmp(v, "both")) j->reorder = 2;
            else return IFK_FAIL(IFK_ERR_ARG, "reorder: '%s' is not off, on or both", v);
            return IFK_OK;
        }
        if (!strcmp(k, "score_layers")) return range_(k, v, &j->score_lo, &j->score_hi);
        if (!strcmp(k, "dev")) return str_(k, v, j->dev, sizeof j->dev); /* checked against the model by eval */
        if (!strcmp(k, "steps")) return int_(k, v, 1, 4096, &x) == IFK_OK ? (j->steps = (int)x, IFK_OK) : IFK_ERR_ARG;
        if (!strcmp(k, "seed")) return int_(k, v, 0, 1L << 40, &j->seed);
    } else if (!strcmp(sec, "needle")) {
        j->needle = 1;
        if (!strcmp(k, "lengths")) return list_i_(k, v, j->needle_lengths, &j->n_needle_lengths, 16, 1 << 24);
        if (!strcmp(k, "depths")) return list_i_(k, v, j->needle_depths, &j->n_needle_depths, 0, 100);
        if (!strcmp(k, "budget")) {
            double d[IFK_MAX_LIST];
            int n;
            IFK_CHECK(list_d_(k, v, d, &n, 0, 1));
            j->needle_budget = d[0];
            return IFK_OK;
        }
        if (!strcmp(k, "haystack_docs")) return int_(k, v, 1, 100000, &x) == IFK_OK ? (j->haystack_docs = (int)x, IFK_OK) : IFK_ERR_ARG;
        if (!strcmp(k, "haystack_tokens")) return int_(k, v, 8, 1 << 20, &x) == IFK_OK ? (j->haystack_tokens = (int)x, IFK_OK) : IFK_ERR_ARG;
        if (!strcmp(k, "seed")) return int_(k, v, 0, 1L << 40, &j->needle_seed);
    } else if (!strcmp(sec, "ablation")) {
        j->ablation = 1;
        if (!strcmp(k, "layers")) return range_(k, v, &j->ablation_lo, &j->ablation_hi);
        if (!strcmp(k, "budget")) {
            double d[IFK_MAX_LIST];
            int n;
            IFK_CHECK(list_d_(k, v, d, &n, 0, 1));
            j->ablation_budget = d[0];
            return IFK_OK;
        }
    } else {
        return IFK_FAIL(IFK_ERR_ARG, "unknown section [%s] (job, needle, ablation)", sec);
    }
    return IFK_FAIL(IFK_ERR_ARG, "unknown key '%s' in [%s]", k, sec);
}

/* The spec as it is read: the keys seen so far, so that one given twice is refused (inih would let
 * the last one win). */
typedef struct {
    ifk_jobspec *j;
    char seen[64][80]; /* "section.key" */
    int n_seen;
} spec_read_;

static int handler_(void *user, const char *section, const char *name, const char *value) {
    spec_read_ *r = user;
    ifk_jobspec *j = r->j;
    if (name) {
        char sk[80];
        snprintf(sk, sizeof sk, "%s.%s", section, name);
        for (int i = 0; i < r->n_seen; i++)
            if (!strcmp(r->seen[i], sk)) {
                IFK_FAIL(IFK_ERR_ARG, "key '%s' in [%s] given twice", name, section);
                return 0;
            }
        if (r->n_seen < 64) snprintf(r->seen[r->n_seen++], sizeof r->seen[0], "%s", sk);
    }
    if (!name) { /* a section header alone (inih >= 52 reports it with name == NULL) */
        if (strcmp(section, "job") && strcmp(section, "needle") && strcmp(section, "ablation")) {
            IFK_FAIL(IFK_ERR_ARG, "unknown section [%s] (job, needle, ablation)", section);
            return 0;
        }
        if (!strcmp(section, "needle")) j->needle = 1;
        if (!strcmp(section, "ablation")) j->ablation = 1;
        return 1;
    }
    return ifk_jobspec_set(j, section, name, value) == IFK_OK;
}

ifk_status ifk_jobspec_load(ifk_jobspec *j, const char *path) {
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s", path);
    strcpy(j->methods[0], "full"), strcpy(j->methods[1], "none"), strcpy(j->methods[2], "infoflow");
    j->n_methods = 3;
    j->budgets[0] = 0.15;
    j->n_budgets = 1;
    j->score_lo = j->score_hi = -1;
    j->steps = 16;
    j->needle_budget = 0.15;
    j->haystack_docs = 16;
    j->haystack_tokens = 96;
    j->needle_seed = 1;
    j->ablation_lo = j->ablation_hi = -1;
    j->ablation_budget = 0.15;
    strcpy(j->out, "out/eval");
    FILE *f = fopen(path, "r");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open job spec: %s", path, strerror(errno));
    ifk_err_clear();
    spec_read_ *r = calloc(1, sizeof *r);
    if (!r) {
        fclose(f);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    r->j = j;
    int line = ini_parse_file(f, handler_, r);
    free(r);
    fclose(f);
    if (line < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot read job spec", path);
    if (line > 0) {
        char m[512]; /* the handler's message, copied: IFK_FAIL rewrites the buffer it lives in */
        snprintf(m, sizeof m, "%s", ifk_errmsg()[0] ? ifk_errmsg() : "not 'key = value' or '[section]'");
        return IFK_FAIL(IFK_ERR_ARG, "%s:%d: %s", path, line, m);
    }
    if (!j->model[0] == !j->random_model[0])
        return IFK_FAIL(IFK_ERR_ARG, "%s: [job] needs exactly one of model or random_model", path);
    if (!j->store[0]) return IFK_FAIL(IFK_ERR_ARG, "%s: [job] needs store", path);
    if (!j->queries[0] && !j->needle) return IFK_FAIL(IFK_ERR_ARG, "%s: [job] needs queries (or a [needle] section)", path);
    if (j->needle && (!j->n_needle_lengths || !j->n_needle_depths))
        return IFK_FAIL(IFK_ERR_ARG, "%s: [needle] needs lengths and depths", path);
    return IFK_OK;
}

long ifk_jobspec_line(const ifk_jobspec *j, const char *section, const char *key) {
    FILE *f = fopen(j->path, "r");
    if (!f) return 0;
    char line[2048], sec[256] = "";
    long ln = 0, at = 0;
    const size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '[') {
            char *e = strchr(p, ']');
            if (e) snprintf(sec, sizeof sec, "%.*s", (int)(e - p - 1), p + 1);
            continue;
        }
        if (strcmp(sec, section) || strncmp(p, key, kl)) continue;
        p += kl;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '=' || *p == ':') at = ln;
    }
    fclose(f);
    return at;
}

/* "FILE:LINE: " (or "FILE: " when the file does not set the key) into buf. */
static const char *where_(const ifk_jobspec *j, const char *section, const char *key, char *buf, size_t cap) {
    const long ln = ifk_jobspec_line(j, section, key);
    if (ln > 0) snprintf(buf, cap, "%s:%ld", j->path, ln);
    else snprintf(buf, cap, "%s", j->path);
    return buf;
}

static int has_method_(const ifk_jobspec *j, const char *m) {
    for (int i = 0; i < j->n_methods; i++)
        if (!strcmp(j->methods[i], m)) return 1;
    return 0;
}

ifk_status ifk_jobspec_check_model(const ifk_jobspec *j, int n_layers, int seq_len) {
    char w[1100];
    /* a setting no listed method uses is refused, never ignored (query refuses the same flags) */
    if (j->dev[0] && !has_method_(j, "infoflow-dev"))
        return IFK_FAIL(IFK_ERR_ARG, "%s: dev goes with infoflow-dev in methods", where_(j, "job", "dev", w, sizeof w));
    if (ifk_jobspec_line(j, "job", "seed") > 0 && !has_method_(j, "random"))
        return IFK_FAIL(IFK_ERR_ARG, "%s: seed goes with random in methods (the seed of its choice)",
                        where_(j, "job", "seed", w, sizeof w));
    if (j->score_lo >= 0 && !has_method_(j, "infoflow") && !has_method_(j, "infoflow-dev"))
        return IFK_FAIL(IFK_ERR_ARG, "%s: score_layers goes with infoflow or infoflow-dev in methods",
                        where_(j, "job", "score_layers", w, sizeof w));
    if (j->ablation && j->ablation_lo >= 0 && j->ablation_hi >= n_layers)
        return IFK_FAIL(IFK_ERR_ARG, "%s: [ablation] layers: %d-%d is outside the model's layers 0-%d",
                        where_(j, "ablation", "layers", w, sizeof w), j->ablation_lo, j->ablation_hi, n_layers - 1);
    if (j->score_lo >= 0 && j->score_hi >= n_layers)
        return IFK_FAIL(IFK_ERR_ARG, "%s: score_layers: %d-%d is outside the model's layers 0-%d",
                        where_(j, "job", "score_layers", w, sizeof w), j->score_lo, j->score_hi, n_layers - 1);
    for (int i = 0; j->needle && i < j->n_needle_lengths; i++)
        if ((long)j->needle_lengths[i] + j->steps > seq_len)
            return IFK_FAIL(IFK_ERR_ARG, "%s: [needle] lengths: %d context tokens + %d answer steps exceed the model's %d "
                            "positions", where_(j, "needle", "lengths", w, sizeof w), j->needle_lengths[i], j->steps,
                            seq_len);
    return IFK_OK;
}

/* ---- query sets ---------------------------------------------------------------------------------- */

static char *dupn_(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = '\0';
    return d;
}

static ifk_status strings_(const cJSON *a, char ***out, int *n, const char *where, const char *key) {
    *out = NULL;
    *n = 0;
    if (!a) return IFK_OK;
    if (!cJSON_IsArray(a)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" is not an array of strings", where, key);
    int cnt = cJSON_GetArraySize(a);
    *out = calloc((size_t)(cnt ? cnt : 1), sizeof(char *));
    if (!*out) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (int i = 0; i < cnt; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        char num[32], why[256];
        const char *id;
        if (!strcmp(key, "docs")) { /* document ids: the corpus's rule (corpus.h), integers included */
            if (!ifk_id_from_json(e, num, &id, why, sizeof why))
                return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"docs\"[%d]: %s", where, i, why);
            (*out)[(*n)++] = strdup(id);
            continue;
        }
        if (!cJSON_IsString(e)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\"[%d] is not a string", where, key, i);
        (*out)[(*n)++] = strdup(e->valuestring);
    }
    return IFK_OK;
}

/* algorithm.md §2's passage split: on "\nPassage " (each later piece keeps "Passage "), else on
 * blank lines, else the whole context; pieces are trimmed and empty ones dropped. */
static ifk_status split_passages_(const char *ctx, char ***out, int *n) {
    size_t len = strlen(ctx), cap = 16;
    *out = malloc(sizeof(char *) * cap);
    *n = 0;
    if (!*out) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    const char *marker = strstr(ctx, "\nPassage ") ? "\nPassage " : strstr(ctx, "\n\n") ? "\n\n" : NULL;
    const char *p = ctx;
    while (p < ctx + len) {
        const char *e = marker ? strstr(p, marker) : NULL;
        if (!e) e = ctx + len;
        const char *b = p, *q = e;
        while (b < q && (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r')) b++;
        while (q > b && (q[-1] == ' ' || q[-1] == '\n' || q[-1] == '\t' || q[-1] == '\r')) q--;
        if (q > b) {
            if ((size_t)*n == cap) {
                cap *= 2;
                char **np = realloc(*out, sizeof(char *) * cap);
                if (!np) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
                *out = np;
            }
            (*out)[(*n)++] = dupn_(b, (size_t)(q - b));
        }
        if (e >= ctx + len) break;
        p = e + (strcmp(marker, "\nPassage ") ? strlen(marker) : 1); /* keep "Passage " on the next piece */
    }
    return IFK_OK;
}

void ifk_queryset_free(ifk_qitem *it, int n) {
    for (int i = 0; it && i < n; i++) {
        free(it[i].id), free(it[i].prompt);
        for (int k = 0; k < it[i].n_docs; k++) free(it[i].docs[k]);
        for (int k = 0; k < it[i].n_answers; k++) free(it[i].answers[k]);
        for (int k = 0; k < it[i].n_passages; k++) free(it[i].passages[k]);
        free(it[i].docs), free(it[i].answers), free(it[i].passages);
    }
    free(it);
}

ifk_status ifk_queryset_read(const char *path, ifk_qitem **items, int *n) {
    *items = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open query set: %s", path, strerror(errno));
    ifk_status st = IFK_OK;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long ln = 0;
    int cap = 0;
    while (st == IFK_OK && (len = getline(&line, &lcap, f)) >= 0) {
        ln++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == (size_t)len) continue;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", path, ln);
        char why[256];
        cJSON *o = ifk_json_record(line, (size_t)len, why, sizeof why); /* the corpus's rule for a line (json.h) */
        if (!o) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s", where, why);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            ifk_qitem *ni = realloc(*items, sizeof *ni * cap);
            if (!ni) { cJSON_Delete(o); st = IFK_FAIL(IFK_ERR_OOM, "out of memory"); break; }
            *items = ni;
        }
        ifk_qitem *it = &(*items)[(*n)++];
        memset(it, 0, sizeof *it);
        it->line = ln;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!id) id = cJSON_GetObjectItemCaseSensitive(o, "_id");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt"), *in = cJSON_GetObjectItemCaseSensitive(o, "input"),
                    *ctx = cJSON_GetObjectItemCaseSensitive(o, "context"), *docs = cJSON_GetObjectItemCaseSensitive(o, "docs"),
                    *ret = cJSON_GetObjectItemCaseSensitive(o, "retrieve");
        char idbuf[32];
        const char *ids = NULL;
        /* the corpus's rule for ids (corpus.h): a context's passages are cached as documents ID#pN */
        if (!id) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: missing \"id\"", where);
        else if (!ifk_id_from_json(id, idbuf, &ids, why, sizeof why)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s", where, why);
        else if (!cJSON_IsString(pr ? pr : in)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: missing \"prompt\" (or LongBench \"input\")", where);
        else if (!!ctx + !!docs + !!ret != 1)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: give exactly one of \"docs\", \"retrieve\" or a LongBench \"context\"", where);
        else if (ret && (!cJSON_IsNumber(ret) || ret->valuedouble < 1 || ret->valuedouble != (int)ret->valuedouble))
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"retrieve\" is not a positive integer", where);
        else if (ctx && !cJSON_IsString(ctx)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"context\" is not a string", where);
        if (st == IFK_OK) {
            it->id = strdup(ids);
            it->prompt = strdup((pr ? pr : in)->valuestring); /* valid UTF-8, as every string of the line */
        }
        if (st == IFK_OK) st = strings_(cJSON_GetObjectItemCaseSensitive(o, "answers"), &it->answers, &it->n_answers, where, "answers");
        if (st == IFK_OK && docs) {
            st = strings_(docs, &it->docs, &it->n_docs, where, "docs");
            if (st == IFK_OK && !it->n_docs) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"docs\" is empty", where);
        }
        if (st == IFK_OK && ret) it->retrieve = (int)ret->valuedouble;
        if (st == IFK_OK && ctx) {
            st = split_passages_(ctx->valuestring, &it->passages, &it->n_passages);
            if (st == IFK_OK && !it->n_passages) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: empty \"context\"", where);
            it->docs = calloc((size_t)it->n_passages, sizeof(char *));
            for (int p = 0; st == IFK_OK && p < it->n_passages; p++) {
                char pid[IFK_ID_MAX + 40];
                snprintf(pid, sizeof pid, "%s#p%d", it->id, p);
                if (!ifk_id_check(pid, why, sizeof why)) {
                    st = IFK_FAIL(IFK_ERR_FORMAT, "%s: passage %d's document id: %s", where, p, why);
                    break;
                }
                it->docs[it->n_docs++] = strdup(pid);
            }
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (st == IFK_OK && *n == 0) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: no query", path);
    if (st != IFK_OK) {
        ifk_queryset_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return st;
}
