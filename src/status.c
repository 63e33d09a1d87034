/* status.c — the per-thread error message and traceback behind status.h. */
#include "status.h"

#include "fault.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the longest message: two paths of PATH_MAX-ish 1024 bytes, an id of IFK_ID_MAX bytes
 * quoted, and the reason; a message that still does not fit ends in "…" (never silently cut). */
static _Thread_local char msg_[4096];
static _Thread_local char trace_[2048];

ifk_status ifk_fail_at(ifk_status code, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg_, sizeof msg_, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof msg_) memcpy(msg_ + sizeof msg_ - 4, "\xE2\x80\xA6", 4);
    snprintf(trace_, sizeof trace_, "  raised at %s:%d (%s)\n", file, line, ifk_status_name(code));
    return code;
}

ifk_status ifk_trace_at(ifk_status code, const char *file, int line, const char *func) {
    size_t n = strlen(trace_);
    if (n < sizeof trace_ - 1) snprintf(trace_ + n, sizeof trace_ - n, "  from %s:%d %s\n", file, line, func);
    return code;
}

const char *ifk_errmsg(void) { return msg_; }

void ifk_err_clear(void) { msg_[0] = trace_[0] = '\0'; }

const char *ifk_status_name(ifk_status s) {
    switch (s) {
    case IFK_OK: return "ok";
    case IFK_ERR_ARG: return "bad argument";
    case IFK_ERR_IO: return "i/o error";
    case IFK_ERR_FORMAT: return "bad format";
    case IFK_ERR_OOM: return "out of memory";
    case IFK_ERR_MPI: return "MPI error";
    case IFK_ERR_H5: return "HDF5 error";
    case IFK_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void ifk_err_print(void) {
    fprintf(stderr, "infoflow: error: %s\n", msg_[0] ? msg_ : "unknown failure");
    const char *t = getenv("INFOFLOW_TRACE");
    if (t && *t && *t != '0') fputs(trace_, stderr);
}

void ifk_assert_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "infoflow: internal error: assertion '%s' failed at %s:%d\n", what, file, line);
    abort();
}

void *ifk_malloc_at(size_t n, const char *what, const char *file, int line) {
    void *p = ifk_fault("alloc") ? NULL : malloc(n ? n : 1);
    if (!p) ifk_fail_at(IFK_ERR_OOM, file, line, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *ifk_calloc_at(size_t count, size_t size, const char *what, const char *file, int line) {
    void *p = ifk_fault("alloc") ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p) ifk_fail_at(IFK_ERR_OOM, file, line, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}
