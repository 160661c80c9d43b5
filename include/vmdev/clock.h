/* SPDX-License-Identifier: MIT */
/*
 * Time for clocked devices (RTC, PIT, UART baud pacing, watchdog).
 *
 * A device reads time through a vmdev_clock and computes its counters from
 * it when the guest reads them; it arms a one-shot vmdev_timer only for an
 * event that raises an interrupt. When the deadline passes the owner of the
 * timer calls the device's *_timer_expired() entry point. Tests pass a fake
 * clock and fire timers by hand, so no test sleeps.
 */
#ifndef VMDEV_CLOCK_H
#define VMDEV_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vmdev_clock_id {
    VMDEV_CLOCK_MONOTONIC, /* ns; the time base of timers */
    VMDEV_CLOCK_REALTIME,  /* ns since the Unix epoch, UTC */
};

struct vmdev_clock {
    uint64_t (*now_ns)(void *opaque, enum vmdev_clock_id id);
    void *opaque;
};

static inline uint64_t vmdev_clock_now(const struct vmdev_clock *clock,
                                       enum vmdev_clock_id id)
{
    return clock->now_ns(clock->opaque, id);
}

/* A one-shot timer on VMDEV_CLOCK_MONOTONIC. arm() replaces any pending
 * deadline; cancel() of an idle timer is harmless. */
struct vmdev_timer {
    void (*arm)(void *opaque, uint64_t deadline_ns);
    void (*cancel)(void *opaque);
    void *opaque;
};

/* The host's clocks (clock_gettime), for VMMs and tools. */
extern const struct vmdev_clock vmdev_host_clock;

#ifdef __cplusplus
}
#endif

#endif
