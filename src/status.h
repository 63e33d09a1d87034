/* status.h — status codes, the error message buffer and the file:line CHECK macros.
 *
 * Library code never exits: it returns an ifk_status and leaves a one-line, user-facing message
 * (naming the file and the problem) in a per-thread buffer. Only the drivers decide to exit or
 * MPI_Abort. IFK_CHECK propagates a failure and records file:line in a traceback printed when
 * INFOFLOW_TRACE is set. Local, not collective. */
#ifndef IFK_STATUS_H
#define IFK_STATUS_H

#include <stddef.h>

typedef enum {
    IFK_OK = 0,
    IFK_ERR_ARG,    /* bad user input: option, prompt, shape */
    IFK_ERR_IO,     /* missing file, short read, write failure */
    IFK_ERR_FORMAT, /* a file whose contents are malformed */
    IFK_ERR_OOM,    /* allocation failed or would exceed a limit */
    IFK_ERR_MPI,
    IFK_ERR_H5,
    IFK_ERR_INTERNAL
} ifk_status;

/* Sets the message (printf-style) and returns code; records where it was raised. */
ifk_status ifk_fail_at(ifk_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends "file:line func" to the traceback; returns code unchanged. */
ifk_status ifk_trace_at(ifk_status code, const char *file, int line, const char *func);

const char *ifk_errmsg(void);         /* the last message, "" if none */
const char *ifk_status_name(ifk_status s);
void ifk_err_clear(void);
/* Prints "infoflow: error: <msg>" (and the traceback when INFOFLOW_TRACE is set) to stderr. */
void ifk_err_print(void);

#define IFK_FAIL(code, ...) ifk_fail_at((code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failed status to the caller, adding this frame to the traceback. */
#define IFK_CHECK(expr)                                                                  \
    do {                                                                                 \
        ifk_status ifk_s_ = (expr);                                                      \
        if (ifk_s_ != IFK_OK) return ifk_trace_at(ifk_s_, __FILE__, __LINE__, __func__); \
    } while (0)

/* Same, but jump to a cleanup label with the status in `st`. */
#define IFK_CHECK_GOTO(st, expr, label)                                 \
    do {                                                                \
        (st) = (expr);                                                  \
        if ((st) != IFK_OK) {                                           \
            ifk_trace_at((st), __FILE__, __LINE__, __func__);           \
            goto label;                                                 \
        }                                                               \
    } while (0)

/* A usage check that stays on in every build. */
#define IFK_CHECK_ARG(cond, ...)                                        \
    do {                                                                \
        if (!(cond)) return IFK_FAIL(IFK_ERR_ARG, __VA_ARGS__);         \
    } while (0)

/* An internal invariant: a bug if it fails. Aborts with file:line in every build. */
#define IFK_ASSERT(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) ifk_assert_fail(#cond, __FILE__, __LINE__);                         \
    } while (0)
void ifk_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

/* Checked allocation: returns NULL and sets IFK_ERR_OOM with the size on failure. */
void *ifk_malloc_at(size_t n, const char *what, const char *file, int line);
void *ifk_calloc_at(size_t count, size_t size, const char *what, const char *file, int line);
#define ifk_malloc(n, what) ifk_malloc_at((n), (what), __FILE__, __LINE__)
#define ifk_calloc(c, s, what) ifk_calloc_at((c), (s), (what), __FILE__, __LINE__)

#endif
