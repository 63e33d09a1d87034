/* fullfs_preload.c — LD_PRELOAD shim: a file system that fills up. Writes to a file whose name
 * ends in IFK_FULL_SUFFIX (default ".h5.tmp": a shard being written) fail with ENOSPC beyond
 * IFK_FULL_AFTER bytes of file offset (default 300000). Used by tests/fullfs.sh. */
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
    const char *suf = getenv("IFK_FULL_SUFFIX");
    if (!suf || !*suf) suf = ".h5.tmp";
    const size_t ls = strlen(suf);
    if (n < (ssize_t)ls) return 0;
    path[n] = '\0';
    if (strcmp(path + n - ls, suf)) return 0;
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

/* stdio writes go through libc's internal write, which the interposer above does not see: a file
 * opened for writing under the IFK_FULL_SUFFIX name is opened on /dev/full instead, where every
 * write that reaches the device fails with ENOSPC (at a flush or fclose). */
static FILE *full_fopen_(const char *path, const char *mode, FILE *(*real)(const char *, const char *)) {
    const char *suf = getenv("IFK_FULL_SUFFIX");
    const size_t lp = strlen(path), ls = suf ? strlen(suf) : 0;
    if (ls && lp >= ls && !strcmp(path + lp - ls, suf) && (mode[0] == 'w' || mode[0] == 'a')) return real("/dev/full", mode);
    return real(path, mode);
}

FILE *fopen(const char *path, const char *mode) {
    static FILE *(*real)(const char *, const char *);
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return full_fopen_(path, mode, real);
}

FILE *fopen64(const char *path, const char *mode) {
    static FILE *(*real)(const char *, const char *);
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen64");
    return full_fopen_(path, mode, real);
}
