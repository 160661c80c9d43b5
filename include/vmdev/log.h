/* SPDX-License-Identifier: MIT */
/*
 * Logging. Messages go to a sink the embedder may replace (stderr by
 * default). VMDEV_LOG_GUEST is the level for errors a guest caused: it is
 * rate-limited per call site so a hostile guest cannot flood the host log.
 */
#ifndef VMDEV_LOG_H
#define VMDEV_LOG_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vmdev_log_level {
    VMDEV_LOG_ERROR,
    VMDEV_LOG_WARN,
    VMDEV_LOG_GUEST, /* a guest did something invalid; rate-limited */
    VMDEV_LOG_INFO,
    VMDEV_LOG_DEBUG,
};

typedef void (*vmdev_log_fn)(void *opaque, enum vmdev_log_level level,
                             const char *message);

/* Replace the sink (NULL restores stderr) and the most verbose level kept. */
void vmdev_log_set_sink(vmdev_log_fn fn, void *opaque);
void vmdev_log_set_level(enum vmdev_log_level max_level);

__attribute__((format(printf, 2, 3)))
void vmdev_log(enum vmdev_log_level level, const char *fmt, ...);

/* Per-call-site state for rate limiting; zero-initialised. */
struct vmdev_ratelimit {
    uint64_t window_start_ns;
    unsigned emitted;
    unsigned suppressed;
};

__attribute__((format(printf, 2, 3)))
void vmdev_log_guest_at(struct vmdev_ratelimit *rl, const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
void vmdev_log_ratelimited_at(struct vmdev_ratelimit *rl,
                              enum vmdev_log_level level, const char *fmt, ...);

/* At most a burst of guest-error lines per call site per second. */
#define vmdev_log_guest(...)                                                   \
    do {                                                                       \
        static struct vmdev_ratelimit vmdev_rl_;                               \
        vmdev_log_guest_at(&vmdev_rl_, __VA_ARGS__);                           \
    } while (0)

/* The same limit for host-side trouble that can repeat per request (a
 * failing disk). */
#define vmdev_log_ratelimited(level, ...)                                      \
    do {                                                                       \
        static struct vmdev_ratelimit vmdev_rl_;                               \
        vmdev_log_ratelimited_at(&vmdev_rl_, (level), __VA_ARGS__);            \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
