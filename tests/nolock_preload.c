/* nolock_preload.c — LD_PRELOAD shim: a file system without working locks, as NFS without a lock
 * daemon: every flock() fails with ENOLCK (ours and HDF5's). Used by tests/nolock.sh. */
#include <errno.h>
#include <sys/file.h>

int flock(int fd, int op) {
    (void)fd;
    (void)op;
    errno = ENOLCK;
    return -1;
}
