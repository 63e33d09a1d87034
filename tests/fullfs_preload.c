/* fullfs_preload.c — LD_PRELOAD shim: a file system that fills up. Writes to a file whose name
 * ends in ".h5.tmp" (a shard being written) fail with ENOSPC beyond IFK_FULL_AFTER bytes of file
 * offset (default 300000). Used by tests/fullfs.sh. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int full_(int fd, off_t end) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 7) return 0;
    path[n] = '\0';
    if (strcmp(path + n - 7, ".h5.tmp")) return 0;
    const char *e = getenv("IFK_FULL_AFTER");
    return end > (e ? atol(e) : 300000);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (full_(fd, off + (off_t)count)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) { return pwrite(fd, buf, count, off); }

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fd > 2 && full_(fd, lseek(fd, 0, SEEK_CUR) + (off_t)count)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count);
}
