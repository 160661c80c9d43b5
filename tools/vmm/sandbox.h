/* SPDX-License-Identifier: MIT */
/*
 * Each of vmdev-run's threads, once set up, confines itself to the system
 * calls (and ioctl requests) it needs, with a seccomp filter of its own,
 * as Firecracker and Cloud Hypervisor do: a guest that takes over a device
 * thread still cannot open files, start processes or reach the network
 * beyond what that thread already does. A thread's list lives beside the
 * code that starts the thread (vm.c: vCPUs, pci_host.c: I/O threads,
 * main.c: the main thread, stop_guard.c); this file holds the mechanism
 * and what every thread needs (memory, locks, time, logging, exiting).
 */
#ifndef VMM_SANDBOX_H
#define VMM_SANDBOX_H

#include <stddef.h>

struct vmdev_event_loop;

enum vmm_seccomp {
    VMM_SECCOMP_ON,  /* a call outside the list ends the process, named */
    VMM_SECCOMP_OFF, /* no filter */
    VMM_SECCOMP_LOG, /* the kernel logs a call outside the list and lets
                        it through (for finding what a list misses) */
};

struct vmm_syscall_list {
    const int *syscalls; /* SCMP_SYS(name) */
    size_t num_syscalls;
    /* ioctl is allowed with these requests only (none: not at all). */
    const unsigned long *ioctls;
    size_t num_ioctls;
};

#define VMM_SYSCALL_LIST(calls, requests)                                     \
    { calls, sizeof(calls) / sizeof((calls)[0]), requests,                    \
      sizeof(requests) / sizeof((requests)[0]) }

/*
 * Once, on the main thread before any filter: the names of system calls
 * for the messages a filter's handler prints (it cannot look them up
 * then), and the handler itself. stray (a test's, normally NULL) names
 * the threads ("main", "vcpu", "io": a prefix of their names) that make
 * a call outside every list right after they are confined.
 */
int vmm_sandbox_prepare(enum vmm_seccomp mode, const char *stray);

/*
 * Name the calling thread (at most 15 bytes) and, unless the mode is OFF,
 * confine it to lists[0..count) plus what every thread needs. 0, or -errno
 * (having printed why).
 */
int vmm_sandbox_enter(const char *name, const struct vmm_syscall_list *lists,
                      size_t count);

/* The same on loop's thread, waiting for it there. */
int vmm_sandbox_enter_loop(struct vmdev_event_loop *loop, const char *name,
                           const struct vmm_syscall_list *lists,
                           size_t count);

/* What device code may call on whichever thread runs it (I/O threads,
 * vCPUs on an MMIO exit, the main loop): the block engines, the network
 * backends, eventfds and timers, KVM's interrupt routes. */
extern const struct vmm_syscall_list vmm_device_syscalls;
/* What building a device takes besides: the main thread's when devices
 * may be added while the guest runs. */
extern const struct vmm_syscall_list vmm_hotplug_syscalls;

#endif
