/* SPDX-License-Identifier: MIT */
#include "vmdev/log.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define BURST 10 /* lines per call site per second when rate-limited */
#define NSEC_PER_SEC 1000000000ull

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static vmdev_log_fn log_fn;
static void *log_opaque;
static enum vmdev_log_level log_max_level = VMDEV_LOG_GUEST;

static const char *const level_names[] = {
    [VMDEV_LOG_ERROR] = "error", [VMDEV_LOG_WARN] = "warning",
    [VMDEV_LOG_GUEST] = "guest error", [VMDEV_LOG_INFO] = "info",
    [VMDEV_LOG_DEBUG] = "debug",
};

void vmdev_log_set_sink(vmdev_log_fn fn, void *opaque)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_opaque = opaque;
    pthread_mutex_unlock(&log_lock);
}

void vmdev_log_set_level(enum vmdev_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    log_max_level = max_level;
    pthread_mutex_unlock(&log_lock);
}

/* Caller holds log_lock. */
__attribute__((format(printf, 2, 0)))
static void emit(enum vmdev_log_level level, const char *fmt, va_list ap)
{
    char message[512];
    vsnprintf(message, sizeof(message), fmt, ap);
    if (log_fn)
        log_fn(log_opaque, level, message);
    else
        fprintf(stderr, "vmdev %s: %s\n", level_names[level], message);
}

void vmdev_log(enum vmdev_log_level level, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&log_lock);
    if (level <= log_max_level) {
        va_start(ap, fmt);
        emit(level, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&log_lock);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 3, 0)))
static void log_ratelimited(struct vmdev_ratelimit *rl,
                            enum vmdev_log_level level, const char *fmt,
                            va_list ap)
{
    uint64_t now = monotonic_ns();
    pthread_mutex_lock(&log_lock);
    if (now - rl->window_start_ns >= NSEC_PER_SEC) {
        if (rl->suppressed && level <= log_max_level) {
            char note[64];
            snprintf(note, sizeof(note), "%u similar messages suppressed",
                     rl->suppressed);
            if (log_fn)
                log_fn(log_opaque, level, note);
            else
                fprintf(stderr, "vmdev %s: %s\n", level_names[level], note);
        }
        rl->window_start_ns = now;
        rl->emitted = 0;
        rl->suppressed = 0;
    }
    if (rl->emitted < BURST) {
        rl->emitted++;
        if (level <= log_max_level)
            emit(level, fmt, ap);
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&log_lock);
}

void vmdev_log_ratelimited_at(struct vmdev_ratelimit *rl,
                              enum vmdev_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_ratelimited(rl, level, fmt, ap);
    va_end(ap);
}

void vmdev_log_guest_at(struct vmdev_ratelimit *rl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_ratelimited(rl, VMDEV_LOG_GUEST, fmt, ap);
    va_end(ap);
}
