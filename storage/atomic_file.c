/* atomic_file.c — temp + fsync + rename + folder fsync (atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

static int fault_(const char *prefix, const char *step) {
    if (!prefix) return 0;
    char point[64];
    snprintf(point, sizeof point, "%s.%s", prefix, step);
    return ifk_fault(point);
}

ifk_status ifk_atomic_commit(const char *tmp, const char *path, const char *fault) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot open to sync it: %s", tmp, strerror(e));
    }
    if (fault_(fault, "fsync") || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: fsync failed: %s", tmp, strerror(e));
    }
    close(fd);
    /* a crash (or a failed rename) between the complete temp file and the rename */
    if (fault_(fault, "rename") || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    /* some file systems cannot sync a folder (EINVAL); the rename has happened either way */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)) {
        int e = errno;
        if (fd >= 0) close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot sync the folder after renaming %s: %s", dir, path, strerror(e));
    }
    close(fd);
    return IFK_OK;
}

ifk_status ifk_write_atomic(const char *dir, const char *name, const void *data, size_t len, const char *fault) {
    char path[2048], tmp[2100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return IFK_FAIL(IFK_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
    }
    return ifk_atomic_commit(tmp, path, fault);
}
