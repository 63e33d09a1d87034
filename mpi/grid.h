/* grid.h — the ranks as a grid (Megatron-LM's tensor × data groups): the world is cut into
 * groups of tp consecutive ranks; each group holds one replica of the model sharded by heads
 * (tensor parallelism through the ifk_tp hooks on the group's communicator), and the groups share
 * a job's work data-parallel, handed out by the coordinator (world rank 0, which also leads group
 * 0). Consecutive ranks: under the usual block mapping (mpirun --map-by core, SLURM's block
 * distribution) a group sits on one node, so its all-reduces never cross the network.
 *
 * Collective on the world: ifk_grid_init, ifk_grid_farm. Local: ifk_grid_check, the packing. */
#ifndef IFK_GRID_H
#define IFK_GRID_H

#include <stddef.h>

#include "comm.h"
#include "query.h"

typedef struct {
    const ifk_comm *world;
    ifk_comm group;   /* this rank's group: rank and size within it; abort still ends the world */
    int tp, n_groups, group_id;
} ifk_grid;

/* IFK_OK when `ranks` ranks split into groups of tp ranks that each split n_kv_heads KV heads
 * (tp divides both); otherwise IFK_ERR_ARG naming the valid --tp values. n_kv_heads 0: only the
 * rank count is checked. */
ifk_status ifk_grid_check(int ranks, int tp, int n_kv_heads);

/* Splits world into groups of tp consecutive ranks (MPI_Comm_split; world->size % tp == 0, checked
 * before with ifk_grid_check). world must outlive g. */
void ifk_grid_init(ifk_grid *g, const ifk_comm *world, int tp);
void ifk_grid_free(ifk_grid *g);

/* This rank's model as rank r of a group of tp: *full, the whole model, and at tp > 1 *local, its
 * slice (ifk_model_slice). An HF folder at tp > 1 is read slice by slice (ifk_hf_load_slice): *full
 * then holds only its config, fingerprint and source. check(cfg, ctx), if set, runs on the config
 * before any slicing (the layout's refusals). The tokenizer: as ifk_engine_load_any for files and
 * random shapes; for a sliced HF folder only when want_tok. Local. */
ifk_status ifk_grid_load_model(const char *model, const char *tokp, const char *shape, int r, int tp, int want_tok,
                               ifk_status (*check)(const ifk_config *cfg, void *ctx), void *ctx, ifk_model *full,
                               ifk_model *local, ifk_tokenizer **tok);

/* ifk_grid_load_model's check with ctx = (int[2]){ranks, tp}: ifk_grid_check on the config. */
ifk_status ifk_grid_check_cfg(const ifk_config *cfg, void *ctx);

/* The --tp option's value: s (NULL: dflt, where dflt 0 means all ranks) checked as a number. */
ifk_status ifk_grid_parse_tp(const char *s, int dflt, int ranks, int *tp);

/* A job's tasks handed out to the groups. The coordinator knows the tasks; every rank of the
 * group that gets task i runs it together; the group's rank 0 returns a result, which the
 * coordinator receives. Tasks go out in index order, at most two in flight per group; which
 * group runs which task depends on timing, so a task must not depend on the group that runs it. */
typedef struct {
    /* coordinator: task i as ints (malloc'd *ints, returns the count, at least 0) */
    int (*get)(int i, int **ints, void *ctx);
    /* every rank of a group: runs a task; on the group's rank 0 sets *res (malloc'd, *len bytes).
     * A failure ends the whole job (ifk_comm_abort) with this rank's message. */
    ifk_status (*run)(const int *task, int n, char **res, size_t *len, void *ctx);
    /* coordinator: task i's result, in the order results arrive */
    void (*done)(int i, const char *res, size_t len, void *ctx);
    void *ctx;
} ifk_farm;

/* Runs tasks 0..n_tasks-1 (n_tasks read on the coordinator only) over the groups; returns when
 * every result is in (coordinator) or the coordinator said the end (everyone else). */
void ifk_grid_farm(const ifk_grid *g, int n_tasks, const ifk_farm *f);

/* The run step of a farm whose tasks are questions: ifk_query_run on this rank's model (a slice
 * when tp is set, NULL alone), then on the group's rank 0 *res, *len = the packed result
 * (ifk_query_result_pack). Collective on the group (through tp's hooks). Errors: ifk_query_run's,
 * IFK_ERR_OOM. */
ifk_status ifk_grid_run_query(const ifk_model *m, ifk_store *store, const ifk_query_docs *qd, const int *prompt, int P,
                              const ifk_query_opts *o, ifk_tp *tp, char **res, size_t *len);

/* Collective on world: rank 0 prints every rank's resident memory now and at its peak (VmRSS,
 * VmHWM of /proc/self/status, MiB) on one line after `what` (the measurements of docs/scaling.md). */
void ifk_grid_report_memory(const ifk_comm *world, const char *what);

/* A query result as bytes (same binary on every rank) and back; unpack allocates the arrays.
 * Errors: IFK_ERR_OOM, IFK_ERR_INTERNAL (a truncated buffer). */
ifk_status ifk_query_result_pack(const ifk_query_result *r, char **buf, size_t *len);
ifk_status ifk_query_result_unpack(const char *buf, size_t len, ifk_query_result *r);

#endif
