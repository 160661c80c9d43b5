/* SPDX-License-Identifier: MIT */
/*
 * Test doubles for clocked, interrupting platform devices: a clock the
 * test moves by hand, a one-shot timer that records its deadline, and
 * (tests/lib/fake_irq.h) an irq line that records its level and edges.
 */
#ifndef VMDEV_TEST_PLATFORM_FAKES_H
#define VMDEV_TEST_PLATFORM_FAKES_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_irq.h"
#include "vmdev/clock.h"

struct fake_clock {
    uint64_t mono_ns, real_ns;
};

static inline uint64_t fake_clock_now(void *opaque, enum vmdev_clock_id id)
{
    struct fake_clock *c = opaque;
    return id == VMDEV_CLOCK_REALTIME ? c->real_ns : c->mono_ns;
}

static inline struct vmdev_clock fake_clock_iface(struct fake_clock *c)
{
    return (struct vmdev_clock){ fake_clock_now, c };
}

struct fake_timer {
    bool armed;
    uint64_t deadline_ns;
    unsigned arms, cancels;
};

static inline void fake_timer_arm(void *opaque, uint64_t deadline_ns)
{
    struct fake_timer *t = opaque;
    t->armed = true;
    t->deadline_ns = deadline_ns;
    t->arms++;
}

static inline void fake_timer_cancel(void *opaque)
{
    struct fake_timer *t = opaque;
    t->armed = false;
    t->cancels++;
}

static inline struct vmdev_timer fake_timer_iface(struct fake_timer *t)
{
    return (struct vmdev_timer){ fake_timer_arm, fake_timer_cancel, t };
}

/* Move both clocks forward by ns (the host's wall clock does not step). */
static inline void fake_clock_advance(struct fake_clock *c, uint64_t ns)
{
    c->mono_ns += ns;
    c->real_ns += ns;
}

/*
 * Advance the clocks by ns, firing the timer at each deadline that falls
 * inside, as a VMM's event loop would. Returns how many times it fired.
 */
static inline unsigned fake_run_for(struct fake_clock *c, struct fake_timer *t,
                                    uint64_t ns, void (*expired)(void *),
                                    void *device)
{
    uint64_t end = c->mono_ns + ns;
    unsigned fired = 0;
    while (t->armed && t->deadline_ns <= end && fired < 100000) {
        if (t->deadline_ns > c->mono_ns)
            fake_clock_advance(c, t->deadline_ns - c->mono_ns);
        t->armed = false;
        fired++;
        expired(device);
    }
    fake_clock_advance(c, end - c->mono_ns);
    return fired;
}

#endif
