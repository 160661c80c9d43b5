/* SPDX-License-Identifier: MIT */
/* The stop guard (stop_guard.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "stop_guard.h"
#include "vmdev/event_loop.h"

enum { GUARD_RUNNING, GUARD_ARMED, GUARD_DONE };

struct vmm_stop_guard {
    struct vmm_stop_guard_ops ops;
    unsigned grace_ms;
    int signal_fd;
    int control_fd; /* an eventfd: state changed */
    pthread_mutex_t lock;
    int state;
    pthread_t thread;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int guard_state(struct vmm_stop_guard *g)
{
    pthread_mutex_lock(&g->lock);
    int state = g->state;
    pthread_mutex_unlock(&g->lock);
    return state;
}

static void set_state(struct vmm_stop_guard *g, int state)
{
    pthread_mutex_lock(&g->lock);
    if (g->state < state)
        g->state = state;
    pthread_mutex_unlock(&g->lock);
    vmdev_eventfd_signal(g->control_fd);
}

/* The guard's calls: waiting for signals and its eventfd, and the
 * stop's request, which kicks the vCPUs (tgkill). */
static const int guard_syscalls[] = { SCMP_SYS(poll), SCMP_SYS(read),
                                      SCMP_SYS(tgkill) };
static const unsigned long guard_ioctls[] = { 0 };

static void *guard_thread(void *opaque)
{
    struct vmm_stop_guard *g = opaque;
    uint64_t deadline = 0;
    unsigned signals = 0;
    const struct vmm_syscall_list list = {
        guard_syscalls, sizeof(guard_syscalls) / sizeof(guard_syscalls[0]),
        guard_ioctls, 0
    };
    if (vmm_sandbox_enter("stop-guard", &list, 1))
        return NULL;
    for (;;) {
        int state = guard_state(g);
        if (state == GUARD_DONE)
            return NULL;
        if (state == GUARD_ARMED && !deadline)
            deadline = now_ms() + g->grace_ms;
        int timeout = -1;
        if (deadline) {
            uint64_t now = now_ms();
            timeout = now >= deadline ? 0 : (int)(deadline - now);
        }
        struct pollfd fds[2] = { { g->signal_fd, POLLIN, 0 },
                                 { g->control_fd, POLLIN, 0 } };
        int n = poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR)
            return NULL;
        if (n == 0) {
            if (guard_state(g) == GUARD_DONE)
                return NULL;
            fprintf(stderr, "vmdev-run: the VM did not stop within %u ms (a "
                    "device or vCPU thread is blocked); exiting without "
                    "waiting for it\n", g->grace_ms);
            _exit(g->ops.exit_status(g->ops.opaque));
        }
        if (fds[1].revents & POLLIN)
            vmdev_eventfd_drain(g->control_fd);
        struct signalfd_siginfo info;
        if ((fds[0].revents & POLLIN) &&
            read(g->signal_fd, &info, sizeof(info)) == sizeof(info)) {
            int signo = (int)info.ssi_signo;
            if (++signals > 1) {
                fprintf(stderr, "vmdev-run: %s again, exiting without waiting "
                        "for the VM to stop\n", strsignal(signo));
                _exit(g->ops.exit_status(g->ops.opaque));
            }
            fprintf(stderr, "vmdev-run: %s, stopping the guest\n",
                    strsignal(signo));
            g->ops.request_stop(g->ops.opaque, signo);
            set_state(g, GUARD_ARMED);
        }
    }
}

struct vmm_stop_guard *vmm_stop_guard_start(const struct vmm_stop_guard_ops *ops,
                                            unsigned grace_ms)
{
    struct vmm_stop_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->ops = *ops;
    g->grace_ms = grace_ms;
    pthread_mutex_init(&g->lock, NULL);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    g->signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    g->control_fd = vmdev_eventfd_new();
    int err = 0;
    if (g->signal_fd < 0 || g->control_fd < 0)
        err = errno;
    else
        err = pthread_create(&g->thread, NULL, guard_thread, g);
    if (err) {
        if (g->signal_fd >= 0)
            close(g->signal_fd);
        if (g->control_fd >= 0)
            close(g->control_fd);
        pthread_mutex_destroy(&g->lock);
        free(g);
        errno = err;
        return NULL;
    }
    return g;
}

void vmm_stop_guard_arm(struct vmm_stop_guard *guard)
{
    set_state(guard, GUARD_ARMED);
}

void vmm_stop_guard_free(struct vmm_stop_guard *guard)
{
    if (!guard)
        return;
    set_state(guard, GUARD_DONE);
    pthread_join(guard->thread, NULL);
    close(guard->signal_fd);
    close(guard->control_fd);
    pthread_mutex_destroy(&guard->lock);
    free(guard);
}
