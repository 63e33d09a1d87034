/* comm.c — communicator set-up, agreement on failure, abort, threads per rank. */
#include "comm.h"

#include "cli.h"
#include "fault.h"
#include "store.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

ifk_status ifk_comm_init(ifk_comm *c, int *argc, char ***argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS) return IFK_FAIL(IFK_ERR_MPI, "MPI_Init failed");
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    MPI_Comm node;
    MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
    return IFK_OK;
}

ifk_status ifk_comm_start(ifk_comm *c, int *argc, char ***argv) {
    ifk_status st = ifk_comm_init(c, argc, argv);
    if (st != IFK_OK) {
        ifk_err_print();
        return st;
    }
    ifk_fault_set_rank(c->rank);
    ifk_cli_set_quiet(c->rank != 0);
    return IFK_OK;
}

/* A process whose HDF5 holds a file it cannot close exits here, without MPI_Finalize (which
 * terminates HDF5, and HDF5 1.10.8 crashes closing that file again); it only gets there after an
 * error has been reported. */
static void exit_if_hdf5_broken_(void) {
    if (!ifk_store_hdf5_broken()) return;
    fflush(NULL);
    _exit(1);
}

void ifk_comm_finalize(ifk_comm *c) {
    if (c->comm != MPI_COMM_NULL) MPI_Comm_free(&c->comm);
    c->comm = MPI_COMM_NULL;
    exit_if_hdf5_broken_();
    MPI_Finalize();
}

ifk_status ifk_comm_agree(const ifk_comm *c, ifk_status mine) {
    int key = mine == IFK_OK ? c->size : c->rank, first;
    MPI_Allreduce(&key, &first, 1, MPI_INT, MPI_MIN, c->comm);
    if (first == c->size) return IFK_OK;
    int code = mine;
    MPI_Bcast(&code, 1, MPI_INT, first, c->comm);
    if (c->rank == first) {
        if (c->size > 1) fprintf(stderr, "infoflow: error: rank %d: %s\n", c->rank, ifk_errmsg());
        else ifk_err_print();
    }
    return (ifk_status)code;
}

void ifk_comm_abort(const ifk_comm *c) {
    (void)c;
    int wrank = 0, wsize = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    if (wsize > 1) fprintf(stderr, "infoflow: error: rank %d: %s\n", wrank, ifk_errmsg());
    else ifk_err_print();
    fflush(stderr);
    if (wsize == 1) { /* nobody to stop: the one-line message and exit 1, without MPI_Abort's banner */
        exit_if_hdf5_broken_();
        MPI_Finalize();
        exit(1);
    }
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); /* not reached */
}

int ifk_comm_blas_threads(const ifk_comm *c, int compute_ranks_here) {
    const char *e = getenv("OPENBLAS_NUM_THREADS");
    if (e && *e) return 0;
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* ranks bound to a subset of cores see only those; unbound ranks share the node */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int ranks = compute_ranks_here > 0 ? compute_ranks_here : c->local_size;
    int t = cores < online ? cores : (int)(online / ranks);
    return t < 1 ? 1 : t;
}
