/* SPDX-License-Identifier: MIT */
/* Per-thread seccomp filters (sandbox.h). */
#include <errno.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <ucontext.h>
#include <unistd.h>

#include "options.h"
#include "sandbox.h"
#include "vmdev/event_loop.h"

/* System call numbers with a name for the handler's message; x86-64's
 * run below 512. */
#define NAMED_SYSCALLS 512
#define NAME_LEN 24

/* Set once on the main thread before any filter exists, read by the
 * SIGSYS handler of any thread. */
static enum vmm_seccomp sandbox_mode = VMM_SECCOMP_OFF;
static const char *stray_thread; /* --seccomp-test-stray */
static char syscall_names[NAMED_SYSCALLS][NAME_LEN];
/* The thread's name, for the handler (which must not make calls the
 * filter may refuse). */
static __thread char thread_name[16];

/* What every thread does whatever its work: allocate and free memory,
 * wait on locks, read clocks, log to stderr, return from signal handlers
 * and end. */
static const int common_syscalls[] = {
    SCMP_SYS(brk),           SCMP_SYS(mmap),          SCMP_SYS(munmap),
    SCMP_SYS(mremap),        SCMP_SYS(mprotect),      SCMP_SYS(madvise),
    SCMP_SYS(futex),         SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),   SCMP_SYS(sched_yield),
    SCMP_SYS(getpid),        SCMP_SYS(gettid),        SCMP_SYS(write),
    SCMP_SYS(writev),        SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(restart_syscall), SCMP_SYS(exit),        SCMP_SYS(exit_group),
};

/* Device code, on whichever thread runs it: image I/O (io_uring, or
 * plain calls), fdatasync and hole punching; network backends (sockets,
 * taps, libslirp's host connections); eventfds, epoll and timerfds of the
 * event loops; entropy for virtio-rng. */
static const int device_syscalls[] = {
    SCMP_SYS(read),         SCMP_SYS(readv),        SCMP_SYS(pread64),
    SCMP_SYS(preadv),       SCMP_SYS(preadv2),      SCMP_SYS(pwrite64),
    SCMP_SYS(pwritev),      SCMP_SYS(pwritev2),     SCMP_SYS(lseek),
    SCMP_SYS(fdatasync),    SCMP_SYS(fsync),        SCMP_SYS(fallocate),
    SCMP_SYS(io_uring_enter), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),    SCMP_SYS(poll),         SCMP_SYS(ppoll),
    SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
    SCMP_SYS(sendmsg),      SCMP_SYS(recvmsg),      SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),     SCMP_SYS(socket),       SCMP_SYS(connect),
    SCMP_SYS(bind),         SCMP_SYS(listen),       SCMP_SYS(accept4),
    SCMP_SYS(accept),       SCMP_SYS(getsockopt),   SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname),  SCMP_SYS(getpeername), SCMP_SYS(shutdown),
    SCMP_SYS(fcntl),        SCMP_SYS(close),        SCMP_SYS(getrandom),
    SCMP_SYS(eventfd2), /* a new MSI route's irqfd, on its first use */
};
static const unsigned long device_ioctls[] = {
    TUNSETOFFLOAD, FIONREAD, FIONBIO,
    TCGETS, /* stdio asks whether a character device it writes is a tty */
};
const struct vmm_syscall_list vmm_device_syscalls =
    VMM_SYSCALL_LIST(device_syscalls, device_ioctls);

/* Building a device while the guest runs (the control API's device-add,
 * on the main thread), beyond running one: checking and opening an image
 * (its backing chain's names resolved), a capture or a tap and asking
 * their sizes and kinds, a disk's io_uring rings, a backend's timers, a
 * tap's offloads and its bridge port (by name, through a socket). */
static const int hotplug_syscalls[] = {
    SCMP_SYS(openat),        SCMP_SYS(newfstatat),    SCMP_SYS(fstat),
    SCMP_SYS(statx),         SCMP_SYS(lstat),         SCMP_SYS(stat),
    SCMP_SYS(access),        SCMP_SYS(faccessat),     SCMP_SYS(faccessat2),
    SCMP_SYS(readlink),      SCMP_SYS(readlinkat),    SCMP_SYS(getcwd),
    SCMP_SYS(uname),         SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_register), SCMP_SYS(timerfd_create),
    SCMP_SYS(epoll_create1), SCMP_SYS(ioctl),
    SCMP_SYS(rt_sigaction), /* libslirp's backend asks how SIGPIPE goes */
    /* A disk's thread engine (where io_uring is not to be had). */
    SCMP_SYS(clone),         SCMP_SYS(clone3),        SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
};
static const unsigned long hotplug_ioctls[] = {
    BLKGETSIZE64,   TUNSETIFF,     TUNGETIFF,     TUNSETVNETLE,
    TUNSETVNETHDRSZ, SIOCGIFINDEX, SIOCGIFHWADDR, SIOCSIFHWADDR,
    SIOCGIFFLAGS,   SIOCSIFFLAGS,  SIOCBRADDIF,
};
const struct vmm_syscall_list vmm_hotplug_syscalls =
    VMM_SYSCALL_LIST(hotplug_syscalls, hotplug_ioctls);

static void append(char **at, char *end, const char *s)
{
    while (*s && *at < end)
        *(*at)++ = *s++;
}

static void append_hex(char **at, char *end, unsigned long v)
{
    char digits[2 + 16];
    int n = 0;
    do
        digits[n++] = "0123456789abcdef"[v & 15];
    while ((v >>= 4) && n < 16);
    append(at, end, "0x");
    while (n && *at < end)
        *(*at)++ = digits[--n];
}

/* SIGSYS from a filter in ON mode: name the thread and the call, end the
 * process. Only write and _exit are used (both allowed everywhere). */
static void refused_call(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    ucontext_t *uc = context;
    char message[256], *at = message, *end = message + sizeof(message) - 1;
    int nr = info->si_syscall;
    append(&at, end, "vmdev-run: thread ");
    append(&at, end, thread_name[0] ? thread_name : "?");
    append(&at, end, " made the system call ");
    if (nr >= 0 && nr < NAMED_SYSCALLS && syscall_names[nr][0])
        append(&at, end, syscall_names[nr]);
    else
        append_hex(&at, end, (unsigned long)nr);
    if (nr == SCMP_SYS(ioctl)) {
        append(&at, end, " with request ");
        append_hex(&at, end, (unsigned long)uc->uc_mcontext.gregs[REG_RSI]);
    }
    append(&at, end, ", outside its seccomp list; stopping (--seccomp=log "
                     "lets such calls through and logs them)\n");
    ssize_t ignored = write(STDERR_FILENO, message, (size_t)(at - message));
    (void)ignored;
    _exit(VMM_EXIT_ERROR);
}

int vmm_sandbox_prepare(enum vmm_seccomp mode, const char *stray)
{
    sandbox_mode = mode;
    stray_thread = stray;
    if (mode == VMM_SECCOMP_OFF)
        return 0;
    for (int nr = 0; nr < NAMED_SYSCALLS; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name)
            snprintf(syscall_names[nr], NAME_LEN, "%s", name);
        free(name);
    }
    struct sigaction sa = { .sa_sigaction = refused_call,
                            .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL)) {
        fprintf(stderr, "vmdev-run: --seccomp: SIGSYS handler: %s\n",
                strerror(errno));
        return -errno;
    }
    return 0;
}

static int allow_list(scmp_filter_ctx ctx, const struct vmm_syscall_list *l)
{
    for (size_t i = 0; i < l->num_syscalls; i++) {
        int ret;
        /* tgkill within this process only (a vCPU's kick, a stop, an
         * abort): never a signal to another of the user's processes. */
        /* ioctl only with the listed requests (below): a plain rule
         * here would allow every request. */
        if (l->syscalls[i] == SCMP_SYS(ioctl))
            continue;
        if (l->syscalls[i] == SCMP_SYS(tgkill))
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                   SCMP_A0(SCMP_CMP_EQ,
                                           (scmp_datum_t)getpid(), 0));
        else
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, l->syscalls[i], 0);
        if (ret && ret != -EEXIST)
            return ret;
    }
    /* The request is an unsigned int in the kernel; compare 32 bits. */
    for (size_t i = 0; i < l->num_ioctls; i++) {
        int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
                                           l->ioctls[i] & 0xffffffffu));
        if (ret && ret != -EEXIST)
            return ret;
    }
    return 0;
}

int vmm_sandbox_enter(const char *name, const struct vmm_syscall_list *lists,
                      size_t count)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
    pthread_setname_np(pthread_self(), thread_name);
    if (sandbox_mode == VMM_SECCOMP_OFF)
        return 0;
    scmp_filter_ctx ctx = seccomp_init(sandbox_mode == VMM_SECCOMP_LOG
                                           ? SCMP_ACT_LOG
                                           : SCMP_ACT_TRAP);
    if (!ctx) {
        fprintf(stderr, "vmdev-run: --seccomp: cannot build a filter\n");
        return -ENOMEM;
    }
    const struct vmm_syscall_list common = {
        common_syscalls, sizeof(common_syscalls) / sizeof(common_syscalls[0]),
        NULL, 0
    };
    int ret = allow_list(ctx, &common);
    for (size_t i = 0; i < count && !ret; i++)
        ret = allow_list(ctx, &lists[i]);
    /* This thread only: others install their own (no TSYNC). */
    if (!ret)
        ret = seccomp_load(ctx);
    seccomp_release(ctx);
    if (ret)
        fprintf(stderr, "vmdev-run: --seccomp: thread %s: %s\n", name,
                strerror(-ret));
    /* The test of the filters: a call no thread needs. */
    else if (stray_thread &&
             strncmp(name, stray_thread, strlen(stray_thread)) == 0)
        (void)getppid();
    return ret;
}

struct loop_entry {
    const char *name;
    const struct vmm_syscall_list *lists;
    size_t count;
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t entered;
    bool done;
    int result;
};

static void enter_on_loop(void *opaque, uint32_t events)
{
    struct loop_entry *e = opaque;
    (void)events;
    if (!vmdev_eventfd_drain(e->fd))
        return;
    int result = vmm_sandbox_enter(e->name, e->lists, e->count);
    pthread_mutex_lock(&e->lock);
    e->result = result;
    e->done = true;
    pthread_cond_signal(&e->entered);
    pthread_mutex_unlock(&e->lock);
}

int vmm_sandbox_enter_loop(struct vmdev_event_loop *loop, const char *name,
                           const struct vmm_syscall_list *lists, size_t count)
{
    struct loop_entry e = { .name = name, .lists = lists, .count = count,
                            .fd = vmdev_eventfd_new() };
    if (e.fd < 0)
        return -errno;
    pthread_mutex_init(&e.lock, NULL);
    pthread_cond_init(&e.entered, NULL);
    struct vmdev_event_watch *w = vmdev_event_loop_add(loop, e.fd,
                                                       VMDEV_EVENT_IN,
                                                       enter_on_loop, &e);
    int ret = w ? 0 : -errno;
    if (w) {
        vmdev_eventfd_signal(e.fd);
        pthread_mutex_lock(&e.lock);
        while (!e.done)
            pthread_cond_wait(&e.entered, &e.lock);
        ret = e.result;
        pthread_mutex_unlock(&e.lock);
        vmdev_event_loop_remove(loop, w);
    }
    close(e.fd);
    pthread_cond_destroy(&e.entered);
    pthread_mutex_destroy(&e.lock);
    return ret;
}
