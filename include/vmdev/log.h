/* SPDX-License-Identifier: MIT */
/*
 * Logging, per context. A vmdev_log is a sink and the most verbose level
 * it keeps; the embedder makes one per VM (or per device) and hands it to
 * the devices in their configurations, so two VMs in one process log
 * apart. A device given none (NULL) logs to stderr, up to
 * VMDEV_LOG_GUEST.
 *
 * VMDEV_LOG_GUEST is the level for errors a guest caused. Such lines, and
 * host trouble that can repeat per request (a failing disk), go through a
 * rate limit that the device keeps itself, so that a hostile guest can
 * neither flood the host's log nor silence another device's lines.
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

/* Called with one line (no newline), from whichever thread logs; lines
 * of one vmdev_log never overlap. */
typedef void (*vmdev_log_fn)(void *opaque, enum vmdev_log_level level,
                             const char *message);

struct vmdev_log;

/* A sink (fn NULL: stderr, as "vmdev <level>: <message>") keeping levels
 * up to max_level. NULL with errno on failure. */
struct vmdev_log *vmdev_log_new(vmdev_log_fn fn, void *opaque,
                                enum vmdev_log_level max_level);
/* After every device that was given it. Accepts NULL. */
void vmdev_log_free(struct vmdev_log *log);

__attribute__((format(printf, 3, 4)))
void vmdev_log(struct vmdev_log *log, enum vmdev_log_level level,
               const char *fmt, ...);

/*
 * At most a burst of lines a second pass through one limit; the next
 * line after a quiet second says how many were held back. Zero is the
 * initial state; the owner keeps it (one per device, or per kind of
 * message), and it may be used from several threads at once.
 */
struct vmdev_ratelimit {
    uint64_t window_start_ns;
    unsigned emitted;
    unsigned suppressed;
};

__attribute__((format(printf, 4, 5)))
void vmdev_log_limited(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                       enum vmdev_log_level level, const char *fmt, ...);

/* A guest's error, through the device's limit. */
__attribute__((format(printf, 3, 4)))
void vmdev_log_guest(struct vmdev_log *log, struct vmdev_ratelimit *limit,
                     const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif
