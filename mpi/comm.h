/* comm.h — the job's communicator and the few MPI facts every driver needs. All MPI of infoflow
 * lives in mpi/; the engine, the pipeline and storage see plain ints and the ifk_tp hooks.
 *
 * Error policy: the communicator keeps MPI's default handler, MPI_ERRORS_ARE_FATAL, so a failing
 * MPI call (a dead peer, a broken network) ends the whole job with the library's own report; the
 * return codes of MPI calls are therefore not checked. What infoflow itself detects (bad input,
 * damaged stores, a rank's failure) goes through ifk_comm_agree before collectives or
 * ifk_comm_abort inside them.
 *
 * Collective on MPI_COMM_WORLD: ifk_comm_init, ifk_comm_agree, ifk_comm_finalize.
 * Local: ifk_comm_abort (ends every rank), ifk_comm_blas_threads. */
#ifndef IFK_COMM_H
#define IFK_COMM_H

#include <mpi.h>

#include "status.h"

typedef struct {
    MPI_Comm comm;   /* a private duplicate of MPI_COMM_WORLD: our tags never meet a user's */
    int rank, size;
    int local_rank, local_size; /* among the ranks on this node */
} ifk_comm;

/* The tags of the coordinator/worker protocols. */
enum {
    IFK_TAG_DOC = 101,    /* coordinator -> worker: a document to cache, or the end */
    IFK_TAG_REQ = 102,    /* worker -> coordinator: one document finished, send another */
    IFK_TAG_COMMIT = 103, /* worker -> coordinator: a committed shard and its documents */
    IFK_TAG_DONE = 104,   /* worker -> coordinator: no more commits will come */
    IFK_TAG_TASK = 105,   /* coordinator -> a group's rank 0: a task of the farm, or the end (grid.h) */
    IFK_TAG_RESULT = 106  /* a group's rank 0 -> coordinator: a task's result */
};

ifk_status ifk_comm_init(ifk_comm *c, int *argc, char ***argv);
void ifk_comm_finalize(ifk_comm *c);
/* What every MPI driver does first: ifk_comm_init, this rank for fault injection, and --help
 * printed by rank 0 only. Prints the error itself on failure. */
ifk_status ifk_comm_start(ifk_comm *c, int *argc, char ***argv);

/* Every rank passes its status; returns IFK_OK on all ranks iff every rank passed IFK_OK.
 * Otherwise the lowest failing rank prints its message (prefixed by its rank when size > 1) and
 * every rank gets that rank's status code. Use it where ranks can fail independently (loading a
 * model), so that one message is printed and nobody waits. */
ifk_status ifk_comm_agree(const ifk_comm *c, ifk_status mine);

/* Prints this rank's error and ends the whole job with MPI_Abort on MPI_COMM_WORLD (exit code 1),
 * whichever communicator c is (a group's too, grid.h); a one-rank job finalizes and exits 1
 * instead, so a user error prints the one-line message alone. The message names the world rank. */
void ifk_comm_abort(const ifk_comm *c) __attribute__((noreturn));

/* A sane OpenBLAS thread count for this rank: the node's cores shared by its ranks (at least 1);
 * 0 when OPENBLAS_NUM_THREADS is set, to leave the user's choice alone. */
int ifk_comm_blas_threads(const ifk_comm *c, int compute_ranks_here);

#endif
