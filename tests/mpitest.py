"""mpitest.py — what the Python job tests under mpirun share (mpi_grid.py, mpi_query.py): their
environment, the pass/fail count with its closing line and exit status, and a job under mpirun."""
import os, subprocess, sys

# mpirun as root (containers), more ranks than cores (2-core CI machines), one BLAS thread a rank
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
_counts = {"passed": 0, "failed": 0}


def check(cond, what):
    """Counts one check; a failed one prints "FAIL: what"."""
    if cond:
        _counts["passed"] += 1
    else:
        _counts["failed"] += 1
        print("FAIL:", what, flush=True)


def finish():
    """Prints "N passed, M failed" and exits 1 if any check failed."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)


def mpirun(binary, n, args, extra_env=None, timeout=300, ours_only=False):
    """binary args... under mpirun -n n (ENV plus extra_env); the CompletedProcess, text output.
    ours_only: stderr keeps infoflow's lines, without Open MPI's banners."""
    r = subprocess.run(["mpirun", "-n", str(n), binary] + args, capture_output=True, text=True,
                       env=dict(ENV, **(extra_env or {})), timeout=timeout)
    if ours_only:
        r.stderr = "\n".join(l for l in r.stderr.splitlines()
                             if not l.startswith(("---", "  ", "mpirun", "Primary", "a non-zero", "the job", "Per user")))
    return r
