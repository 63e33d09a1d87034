/* grid.c — tensor × data groups, the coordinator's task farm, query results as bytes (grid.h). */
#include "grid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "hf.h"

#define PREFETCH 2 /* tasks in flight per group: one running, one waiting */

ifk_status ifk_grid_check(int ranks, int tp, int n_kv_heads) {
    if (tp >= 1 && ranks % tp == 0 && (n_kv_heads <= 0 || n_kv_heads % tp == 0)) return IFK_OK;
    char valid[256] = "";
    size_t n = 0;
    for (int d = 1; d <= ranks && n < sizeof valid - 16; d++)
        if (ranks % d == 0 && (n_kv_heads <= 0 || n_kv_heads % d == 0))
            n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%d", n ? ", " : "", d);
    if (ranks % tp != 0)
        return IFK_FAIL(IFK_ERR_ARG, "--tp %d: %d ranks do not split into groups of %d; valid --tp on %d ranks%s: %s",
                        tp, ranks, tp, ranks, n_kv_heads > 0 ? " for this model" : "", valid);
    return IFK_FAIL(IFK_ERR_ARG, "--tp %d does not divide the model's %d KV heads; valid --tp on %d ranks: %s", tp,
                    n_kv_heads, ranks, valid);
}

ifk_status ifk_grid_check_cfg(const ifk_config *cfg, void *ctx) {
    const int *rt = ctx;
    return ifk_grid_check(rt[0], rt[1], cfg->n_kv_heads);
}

ifk_status ifk_grid_parse_tp(const char *s, int dflt, int ranks, int *tp) {
    long v = dflt > 0 ? dflt : ranks;
    IFK_CHECK(ifk_cli_int("tp", s, 1, 1 << 20, &v));
    *tp = (int)v;
    return ifk_grid_check(ranks, *tp, 0);
}

ifk_status ifk_grid_load_model(const char *model, const char *tokp, const char *shape, int r, int tp, int want_tok,
                               ifk_status (*check)(const ifk_config *cfg, void *ctx), void *ctx, ifk_model *full,
                               ifk_model *local, ifk_tokenizer **tok) {
    *tok = NULL;
    if (tp > 1 && model && ifk_hf_is_folder(model)) {
        char cp[2048];
        snprintf(cp, sizeof cp, "%s/config.json", model);
        IFK_CHECK(ifk_hf_config(&full->cfg, cp));
        if (check) IFK_CHECK(check(&full->cfg, ctx));
        IFK_CHECK(ifk_hf_load_slice(local, model, r, tp));
        memcpy(full->fingerprint, local->fingerprint, sizeof full->fingerprint);
        snprintf(full->source, sizeof full->source, "%s", model);
        if (want_tok) {
            IFK_CHECK(ifk_engine_load_tokenizer(model, tokp, &full->cfg, tok));
            full->tok_identity = ifk_tokenizer_identity(*tok); /* the store is bound to it (fingerprint) */
        }
        return IFK_OK;
    }
    IFK_CHECK(ifk_engine_load_any(model, tokp, shape, full, tok));
    if (check) IFK_CHECK(check(&full->cfg, ctx));
    return tp > 1 ? ifk_model_slice(full, r, tp, local) : IFK_OK;
}

void ifk_grid_init(ifk_grid *g, const ifk_comm *world, int tp) {
    memset(g, 0, sizeof *g);
    g->world = world;
    g->tp = tp;
    g->n_groups = world->size / tp;
    g->group_id = world->rank / tp;
    g->group = *world;
    MPI_Comm_split(world->comm, g->group_id, world->rank, &g->group.comm);
    MPI_Comm_rank(g->group.comm, &g->group.rank);
    MPI_Comm_size(g->group.comm, &g->group.size);
}

void ifk_grid_free(ifk_grid *g) {
    if (g->world && g->group.comm != MPI_COMM_NULL && g->group.comm != g->world->comm) MPI_Comm_free(&g->group.comm);
    memset(g, 0, sizeof *g);
    g->group.comm = MPI_COMM_NULL;
}

/* ---- the farm ---------------------------------------------------------------------------------- */

static void *xmalloc_(const ifk_grid *g, size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(g->world);
    }
    return p;
}

/* A task inside a group: its rank 0 broadcasts [n, index, ints...]; index -1 is the end. Every rank
 * runs it; returns 0 at the end. */
static int group_run_(const ifk_grid *g, const ifk_farm *f, int *msg, int n, char **res, size_t *len) {
    MPI_Bcast(&n, 1, MPI_INT, 0, g->group.comm);
    if (g->group.rank != 0) msg = xmalloc_(g, sizeof(int) * (size_t)n);
    MPI_Bcast(msg, n, MPI_INT, 0, g->group.comm);
    int go = msg[0] >= 0;
    *res = NULL, *len = 0;
    if (go && f->run(msg + 1, n - 1, res, len, f->ctx) != IFK_OK) ifk_comm_abort(g->world);
    if (g->group.rank != 0) free(msg);
    return go;
}

typedef struct {
    const ifk_grid *g;
    const ifk_farm *f;
    int n_tasks, next, received;
    char *stopped; /* per group */
    MPI_Request *reqs;
    int **bufs;
    int n_reqs, cap;
} coord_;

/* The next task (or the end) to group gid's rank 0. */
static void send_next_(coord_ *c, int gid) {
    if (c->stopped[gid]) return;
    int *ints = NULL, n = 0, idx = -1;
    if (c->next < c->n_tasks) idx = c->next++, n = c->f->get(idx, &ints, c->f->ctx);
    else c->stopped[gid] = 1;
    int *msg = xmalloc_(c->g, sizeof(int) * (size_t)(n + 1));
    msg[0] = idx;
    if (n) memcpy(msg + 1, ints, sizeof(int) * (size_t)n);
    free(ints);
    if (c->n_reqs == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->reqs = realloc(c->reqs, sizeof *c->reqs * (size_t)c->cap);
        c->bufs = realloc(c->bufs, sizeof *c->bufs * (size_t)c->cap);
        if (!c->reqs || !c->bufs) {
            IFK_FAIL(IFK_ERR_OOM, "out of memory");
            ifk_comm_abort(c->g->world);
        }
    }
    c->bufs[c->n_reqs] = msg;
    MPI_Isend(msg, n + 1, MPI_INT, gid * c->g->tp, IFK_TAG_TASK, c->g->world->comm, &c->reqs[c->n_reqs++]);
}

static void reap_(coord_ *c, int all) {
    for (int i = 0; i < c->n_reqs;) {
        int done = 0;
        if (all) MPI_Wait(&c->reqs[i], MPI_STATUS_IGNORE), done = 1;
        else MPI_Test(&c->reqs[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            free(c->bufs[i]);
            c->reqs[i] = c->reqs[--c->n_reqs];
            c->bufs[i] = c->bufs[c->n_reqs];
        } else {
            i++;
        }
    }
}

/* Receives one result [int32 index][bytes] and answers with the next task. */
static void handle_(coord_ *c, MPI_Status *s) {
    int n;
    MPI_Get_count(s, MPI_CHAR, &n);
    char *buf = xmalloc_(c->g, (size_t)n);
    MPI_Recv(buf, n, MPI_CHAR, s->MPI_SOURCE, IFK_TAG_RESULT, c->g->world->comm, MPI_STATUS_IGNORE);
    int32_t idx;
    memcpy(&idx, buf, sizeof idx);
    c->f->done(idx, buf + sizeof idx, (size_t)n - sizeof idx, c->f->ctx);
    c->received++;
    free(buf);
    send_next_(c, s->MPI_SOURCE / c->g->tp);
}

static void coordinate_(const ifk_grid *g, int n_tasks, const ifk_farm *f) {
    coord_ c = {.g = g, .f = f, .n_tasks = n_tasks};
    c.stopped = calloc((size_t)g->n_groups, 1);
    if (!c.stopped) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(g->world);
    }
    for (int gid = 1; gid < g->n_groups; gid++)
        for (int k = 0; k < PREFETCH; k++) send_next_(&c, gid);
    for (;;) {
        for (;;) { /* results that arrived meanwhile */
            int flag = 0;
            MPI_Status s;
            MPI_Iprobe(MPI_ANY_SOURCE, IFK_TAG_RESULT, g->world->comm, &flag, &s);
            if (!flag) break;
            handle_(&c, &s);
        }
        reap_(&c, 0);
        if (c.next < n_tasks) { /* our own group takes the next task */
            int *ints = NULL, idx = c.next++;
            int n = f->get(idx, &ints, f->ctx);
            int *msg = xmalloc_(g, sizeof(int) * (size_t)(n + 1));
            msg[0] = idx;
            if (n) memcpy(msg + 1, ints, sizeof(int) * (size_t)n);
            free(ints);
            char *res;
            size_t len;
            group_run_(g, f, msg, n + 1, &res, &len);
            free(msg);
            f->done(idx, res, len, f->ctx);
            free(res);
            c.received++;
            continue;
        }
        if (c.received >= n_tasks) break;
        MPI_Status s;
        MPI_Probe(MPI_ANY_SOURCE, IFK_TAG_RESULT, g->world->comm, &s);
        handle_(&c, &s);
    }
    for (int gid = 1; gid < g->n_groups; gid++) send_next_(&c, gid); /* the end, where not yet sent */
    int end = -1;
    char *res;
    size_t len;
    group_run_(g, f, &end, 1, &res, &len);
    reap_(&c, 1);
    free(c.reqs), free(c.bufs), free(c.stopped);
}

/* A group's rank 0 outside the coordinator's group: tasks from the coordinator, results back. */
static void lead_(const ifk_grid *g, const ifk_farm *f) {
    MPI_Request prev = MPI_REQUEST_NULL;
    char *prev_buf = NULL;
    for (;;) {
        MPI_Status s;
        MPI_Probe(0, IFK_TAG_TASK, g->world->comm, &s);
        int n;
        MPI_Get_count(&s, MPI_INT, &n);
        int *msg = xmalloc_(g, sizeof(int) * (size_t)n);
        MPI_Recv(msg, n, MPI_INT, 0, IFK_TAG_TASK, g->world->comm, MPI_STATUS_IGNORE);
        char *res;
        size_t len;
        const int32_t idx = msg[0];
        const int go = group_run_(g, f, msg, n, &res, &len);
        free(msg);
        if (!go) break;
        char *out = xmalloc_(g, sizeof idx + len);
        memcpy(out, &idx, sizeof idx);
        if (len) memcpy(out + sizeof idx, res, len);
        free(res);
        MPI_Wait(&prev, MPI_STATUS_IGNORE);
        free(prev_buf);
        prev_buf = out;
        MPI_Isend(out, (int)(sizeof idx + len), MPI_CHAR, 0, IFK_TAG_RESULT, g->world->comm, &prev);
    }
    MPI_Wait(&prev, MPI_STATUS_IGNORE);
    free(prev_buf);
}

void ifk_grid_farm(const ifk_grid *g, int n_tasks, const ifk_farm *f) {
    if (g->world->rank == 0) {
        coordinate_(g, n_tasks, f);
    } else if (g->group.rank == 0) {
        lead_(g, f);
    } else {
        char *res;
        size_t len;
        while (group_run_(g, f, NULL, 0, &res, &len)) free(res);
    }
}

/* ---- memory per rank ----------------------------------------------------------------------------- */

static double status_mib_(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    const size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') kb = atof(line + kl + 1);
    if (f) fclose(f);
    return kb / 1024;
}

void ifk_grid_report_memory(const ifk_comm *world, const char *what) {
    double mine[2] = {status_mib_("VmRSS"), status_mib_("VmHWM")}, *all = NULL;
    if (world->rank == 0) all = xmalloc_(&(ifk_grid){.world = world}, sizeof(double) * 2 * (size_t)world->size);
    MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, world->comm);
    if (world->rank != 0) return;
    fprintf(stderr, "%s: resident MiB per rank (now/peak):", what);
    for (int r = 0; r < world->size; r++) fprintf(stderr, " %.0f/%.0f", all[2 * r], all[2 * r + 1]);
    fprintf(stderr, "\n");
    free(all);
}

/* ---- query results as bytes ---------------------------------------------------------------------- */

/* The struct itself (its pointers meaningless), then order, selected, answer, full_answer, logits. */
ifk_status ifk_grid_run_query(const ifk_model *m, ifk_store *store, const ifk_query_docs *qd, const int *prompt, int P,
                              const ifk_query_opts *o, ifk_tp *tp, char **res, size_t *len) {
    ifk_query_result r;
    IFK_CHECK(ifk_query_run(m, store, qd, prompt, P, o, tp, &r));
    ifk_status st = IFK_OK;
    if (!tp || tp->rank == 0) st = ifk_query_result_pack(&r, res, len);
    ifk_query_result_free(&r);
    return st;
}

ifk_status ifk_query_result_pack(const ifk_query_result *r, char **buf, size_t *len) {
    const size_t ni = (size_t)r->n_chunks + r->n_selected + r->n_answer + r->n_full_answer;
    const size_t nf = r->first_logits ? (size_t)r->vocab : 0;
    *len = sizeof *r + sizeof(int) * ni + sizeof(float) * nf;
    char *p = *buf = malloc(*len);
    if (!p) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    memcpy(p, r, sizeof *r), p += sizeof *r;
    const int *arr[4] = {r->order, r->selected, r->answer, r->full_answer};
    const int cnt[4] = {r->n_chunks, r->n_selected, r->n_answer, r->n_full_answer};
    for (int i = 0; i < 4; i++)
        if (cnt[i]) memcpy(p, arr[i], sizeof(int) * (size_t)cnt[i]), p += sizeof(int) * (size_t)cnt[i];
    if (nf) memcpy(p, r->first_logits, sizeof(float) * nf);
    return IFK_OK;
}

ifk_status ifk_query_result_unpack(const char *buf, size_t len, ifk_query_result *r) {
    IFK_CHECK_ARG(len >= sizeof *r, "a query result of %zu bytes is truncated", len);
    memcpy(r, buf, sizeof *r);
    const int has_logits = r->first_logits != NULL;
    const size_t nf = has_logits ? (size_t)r->vocab : 0;
    int **arr[4] = {&r->order, &r->selected, &r->answer, &r->full_answer};
    const int cnt[4] = {r->n_chunks, r->n_selected, r->n_answer, r->n_full_answer};
    size_t need = sizeof *r + sizeof(float) * nf;
    for (int i = 0; i < 4; i++) need += sizeof(int) * (size_t)cnt[i], *arr[i] = NULL;
    r->first_logits = NULL;
    if (len != need) return IFK_FAIL(IFK_ERR_INTERNAL, "a query result of %zu bytes, %zu expected", len, need);
    const char *p = buf + sizeof *r;
    for (int i = 0; i < 4; i++) {
        if (!cnt[i]) continue;
        *arr[i] = malloc(sizeof(int) * (size_t)cnt[i]);
        if (!*arr[i]) goto oom;
        memcpy(*arr[i], p, sizeof(int) * (size_t)cnt[i]), p += sizeof(int) * (size_t)cnt[i];
    }
    if (nf) {
        r->first_logits = malloc(sizeof(float) * nf);
        if (!r->first_logits) goto oom;
        memcpy(r->first_logits, p, sizeof(float) * nf);
    }
    return IFK_OK;
oom:
    ifk_query_result_free(r);
    return IFK_FAIL(IFK_ERR_OOM, "out of memory");
}
