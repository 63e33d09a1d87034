/* tp.c — allreduce / reduce / broadcast hooks for the tensor-parallel engine. */
#include "tp.h"

/* MPI errors are fatal on the job's communicator (comm.h), so the hooks always return IFK_OK. */

static ifk_status allreduce_(float *x, size_t n, void *ctx) {
    ifk_tp_mpi *t = ctx;
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, t->comm->comm);
    t->tp.comm_seconds += MPI_Wtime() - t0;
    t->tp.comm_bytes += 4.0 * n;
    return IFK_OK;
}

static ifk_status reduce_root_(float *x, size_t n, void *ctx) {
    ifk_tp_mpi *t = ctx;
    double t0 = MPI_Wtime();
    if (t->comm->rank == 0) MPI_Reduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, 0, t->comm->comm);
    else MPI_Reduce(x, NULL, (int)n, MPI_FLOAT, MPI_SUM, 0, t->comm->comm);
    t->tp.comm_seconds += MPI_Wtime() - t0;
    t->tp.comm_bytes += 4.0 * n;
    return IFK_OK;
}

static ifk_status bcast_ints_(int *x, size_t n, void *ctx) {
    ifk_tp_mpi *t = ctx;
    double t0 = MPI_Wtime();
    MPI_Bcast(x, (int)n, MPI_INT, 0, t->comm->comm);
    t->tp.comm_seconds += MPI_Wtime() - t0;
    t->tp.comm_bytes += 4.0 * n;
    return IFK_OK;
}

void ifk_tp_mpi_init(ifk_tp_mpi *t, const ifk_comm *comm, int n_heads_total) {
    t->comm = comm;
    t->tp = (ifk_tp){.rank = comm->rank, .size = comm->size, .n_heads_total = n_heads_total, .allreduce = allreduce_,
                     .reduce_root = reduce_root_, .bcast_ints = bcast_ints_, .ctx = t};
}
