/* SPDX-License-Identifier: MIT */
/*
 * The stop guard: SIGTERM and SIGINT, and a bound on how long stopping
 * takes. A thread of its own takes the signals (blocked everywhere else),
 * so a stop is requested even when the main loop is held up; once a stop
 * is under way, for whatever reason, the process ends after a grace
 * period if the VM has not finished stopping by then (a device thread
 * blocked on a host file, a vCPU waiting for it), and at once on a second
 * signal. Guest data the guest has not flushed may be lost then, as on a
 * host crash; images stay consistent (qcow2 leaks at worst).
 */
#ifndef VMM_STOP_GUARD_H
#define VMM_STOP_GUARD_H

#include <signal.h>

struct vmm_stop_guard;

struct vmm_stop_guard_ops {
    /* On the guard's thread, at the first signal. */
    void (*request_stop)(void *opaque, int signo);
    /* The exit status to end with if the grace period runs out. */
    int (*exit_status)(void *opaque);
    void *opaque;
};

/*
 * Block SIGTERM and SIGINT in the calling thread (so in every thread it
 * starts later) and start the guard's thread. NULL with errno set.
 */
struct vmm_stop_guard *vmm_stop_guard_start(const struct vmm_stop_guard_ops *ops,
                                            unsigned grace_ms);
/* A stop is under way (the guest powered off, say): start the clock. */
void vmm_stop_guard_arm(struct vmm_stop_guard *guard);
/* Stopping finished: end the guard's thread. */
void vmm_stop_guard_free(struct vmm_stop_guard *guard);

#endif
