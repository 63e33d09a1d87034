/* fault.c — environment-driven fault points (fault.h). */
#include "fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank_ = -1;
enum { ACT_KILL, ACT_FAIL, ACT_EXIT, ACT_STOP };

void ifk_fault_set_rank(int rank) { rank_ = rank; }

int ifk_fault(const char *point) {
    static int init = 0, hits = 0, target = 0, action = ACT_KILL;
    static char name[128];
    if (!init) {
        init = 1;
        const char *f = getenv("INFOFLOW_FAULT"), *r = getenv("INFOFLOW_FAULT_RANK"), *a = getenv("INFOFLOW_FAULT_ACTION");
        if (!f || !*f) return 0;
        const char *colon = strrchr(f, ':');
        size_t n = colon ? (size_t)(colon - f) : strlen(f);
        if (n >= sizeof name) return 0;
        memcpy(name, f, n);
        name[n] = '\0';
        target = colon ? atoi(colon + 1) : 1;
        if (r && *r && atoi(r) != rank_) target = 0;
        action = a && !strcmp(a, "fail")   ? ACT_FAIL
                 : a && !strcmp(a, "exit") ? ACT_EXIT
                 : a && !strcmp(a, "stop") ? ACT_STOP
                                           : ACT_KILL;
    }
    if (target <= 0 || strcmp(point, name)) return 0;
    if (++hits != target) return 0;
    if (action == ACT_KILL) {
        raise(SIGKILL);
        _exit(137);
    }
    if (action == ACT_EXIT) _exit(3); /* a rank that just leaves, without MPI_Finalize */
    if (action == ACT_STOP) {         /* hold still for a look from outside (benchmarks: /proc), go on after SIGCONT */
        raise(SIGSTOP);
        return 0;
    }
    return 1;
}
