/* tp.h — the MPI side of tensor parallelism: fills the engine's ifk_tp hooks with collectives on
 * the job's communicator, counting the seconds and payload bytes they take. Collective: every
 * hook is called by every rank in the same order. */
#ifndef IFK_TP_H
#define IFK_TP_H

#include "comm.h"
#include "forward.h"

typedef struct {
    ifk_tp tp;            /* hand &t->tp to the engine */
    const ifk_comm *comm; /* must outlive this */
} ifk_tp_mpi;

void ifk_tp_mpi_init(ifk_tp_mpi *t, const ifk_comm *comm, int n_heads_total);

#endif
