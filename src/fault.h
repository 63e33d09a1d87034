/* fault.h — fault injection for tests: named points in the code where a process can be made to
 * die (SIGKILL, like kill -9) or an operation to fail, chosen from the environment:
 *   INFOFLOW_FAULT="point:N"        the N-th time `point` is reached (1-based), act
 *   INFOFLOW_FAULT_RANK=R            only in the process whose rank (ifk_fault_set_rank) is R
 *   INFOFLOW_FAULT_ACTION=kill|fail|exit|stop  kill (default) raises SIGKILL; fail makes ifk_fault
 *                                    return 1 (the operation fails); exit leaves with _exit(3);
 *                                    stop raises SIGSTOP (a benchmark reads /proc), then goes on
 * Points: see docs/reliability.md. Costs one getenv per process when unset. Local. */
#ifndef IFK_FAULT_H
#define IFK_FAULT_H

void ifk_fault_set_rank(int rank);
/* Returns 1 when this call of `point` is chosen to fail (action fail); never returns when the
 * action is kill. */
int ifk_fault(const char *point);

#endif
