/* SPDX-License-Identifier: MIT */
#include "vmdev/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BURST 10 /* lines a second through one limit */
#define NSEC_PER_SEC 1000000000ull
#define DEFAULT_MAX_LEVEL VMDEV_LOG_GUEST /* a NULL log's */

struct vmdev_log {
    vmdev_log_fn fn;
    void *opaque;
    enum vmdev_log_level max_level;
    pthread_mutex_t lock; /* one line at a time through fn */
};

static const char *const level_names[] = {
    [VMDEV_LOG_ERROR] = "error", [VMDEV_LOG_WARN] = "warning",
    [VMDEV_LOG_GUEST] = "guest error", [VMDEV_LOG_INFO] = "info",
    [VMDEV_LOG_DEBUG] = "debug",
};

struct vmdev_log *vmdev_log_new(vmdev_log_fn fn, void *opaque,
                                enum vmdev_log_level max_level)
{
    if ((unsigned)max_level > VMDEV_LOG_DEBUG) {
        errno = EINVAL;
        return NULL;
    }
    struct vmdev_log *log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    log->fn = fn;
    log->opaque = opaque;
    log->max_level = max_level;
    pthread_mutex_init(&log->lock, NULL);
    return log;
}

void vmdev_log_free(struct vmdev_log *log)
{
    if (!log)
        return;
    pthread_mutex_destroy(&log->lock);
    free(log);
}

static bool keeps(const struct vmdev_log *log, enum vmdev_log_level level)
{
    return level <= (log ? log->max_level : DEFAULT_MAX_LEVEL);
}

/* One line to the sink; stderr's own lock keeps a NULL log's lines whole. */
__attribute__((format(printf, 3, 0)))
static void emit(struct vmdev_log *log, enum vmdev_log_level level,
                 const char *fmt, va_list ap)
{
    char message[512];
    vsnprintf(message, sizeof(message), fmt, ap);
    if (log && log->fn) {
        pthread_mutex_lock(&log->lock);
        log->fn(log->opaque, level, message);
        pthread_mutex_unlock(&log->lock);
    } else {
        fprintf(stderr, "vmdev %s: %s\n", level_names[level], message);
    }
}

__attribute__((format(printf, 3, 4)))
static void emit_line(struct vmdev_log *log, enum vmdev_log_level level,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(log, level, fmt, ap);
    va_end(ap);
}

void vmdev_log(struct vmdev_log *log, enum vmdev_log_level level,
               const char *fmt, ...)
{
    if (!keeps(log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(log, level, fmt, ap);
    va_end(ap);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Whether a line may pass `limit` now. Lock-free: the thread that moves
 * the window on reports what the last one held back; a line racing with
 * that may be counted in either window.
 */
static bool limit_admits(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                         enum vmdev_log_level level)
{
    uint64_t now = monotonic_ns();
    uint64_t start = __atomic_load_n(&limit->window_start_ns, __ATOMIC_RELAXED);
    /* now read before another thread moved the window past it is not a
     * window later: the unsigned difference would wrap. */
    if (now > start && now - start >= NSEC_PER_SEC &&
        __atomic_compare_exchange_n(&limit->window_start_ns, &start, now, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        unsigned held = __atomic_exchange_n(&limit->suppressed, 0,
                                            __ATOMIC_RELAXED);
        __atomic_store_n(&limit->emitted, 0, __ATOMIC_RELAXED);
        if (held)
            emit_line(log, level, "%u similar messages suppressed", held);
    }
    if (__atomic_fetch_add(&limit->emitted, 1, __ATOMIC_RELAXED) < BURST)
        return true;
    __atomic_fetch_add(&limit->suppressed, 1, __ATOMIC_RELAXED);
    return false;
}

__attribute__((format(printf, 4, 0)))
static void log_limited(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                        enum vmdev_log_level level, const char *fmt,
                        va_list ap)
{
    if (keeps(log, level) && limit_admits(log, limit, level))
        emit(log, level, fmt, ap);
}

void vmdev_log_limited(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                       enum vmdev_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited(log, limit, level, fmt, ap);
    va_end(ap);
}

void vmdev_log_guest(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited(log, limit, VMDEV_LOG_GUEST, fmt, ap);
    va_end(ap);
}
