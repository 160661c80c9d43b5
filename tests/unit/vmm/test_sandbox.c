/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's seccomp confinement (tools/vmm/sandbox.c), in child
 * processes: a confined thread makes the calls on its list, and a call
 * off it, a tgkill aimed at another process, or an ioctl with a request
 * off its list (even when the list names ioctl among its calls), ends the
 * process with status 1 and a message naming the call.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "options.h"
#include "sandbox.h"
#include "test.h"

static const int kicks[] = { SCMP_SYS(tgkill), SCMP_SYS(ioctl) };
static const unsigned long fionread_only[] = { FIONREAD };

enum attempt { OWN_TGKILL, OTHER_TGKILL, OFF_THE_LIST, LISTED_IOCTL,
               OTHER_IOCTL };

/* In a child: confine this thread with tgkill allowed, then make the
 * attempt; exit 0 if it returned. The child's stderr goes to out_fd. */
static int confined_child(enum attempt a, int out_fd, pid_t other)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    dup2(out_fd, STDERR_FILENO);
    const struct vmm_syscall_list list = { kicks, 2, fionread_only, 1 };
    int pending;
    if (vmm_sandbox_prepare(VMM_SECCOMP_ON, NULL) ||
        vmm_sandbox_enter("test", &list, 1))
        _exit(2);
    switch (a) {
    case OWN_TGKILL: /* signal 0: checks, sends nothing */
        _exit(syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), 0)
                  ? 3 : 0);
    case OTHER_TGKILL:
        syscall(SYS_tgkill, other, other, 0);
        _exit(0);
    case OFF_THE_LIST:
        (void)getppid();
        _exit(0);
    case LISTED_IOCTL:
        _exit(ioctl(out_fd, FIONREAD, &pending) == 0 ? 0 : 3);
    case OTHER_IOCTL:
        (void)ioctl(out_fd, FIONBIO, &pending);
        _exit(0);
    }
    _exit(4);
}

/* The child's exit status and what it wrote on stderr. */
static int run(enum attempt a, char *said, size_t len)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = confined_child(a, fds[1], getpid());
    close(fds[1]);
    ssize_t n = read(fds[0], said, len - 1);
    said[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void a_thread_may_signal_its_own_process(void)
{
    char said[512];
    CHECK_EQ(run(OWN_TGKILL, said, sizeof(said)), 0);
    CHECK_EQ(said[0], '\0');
}

static void a_signal_to_another_process_is_refused(void)
{
    char said[512];
    CHECK_EQ(run(OTHER_TGKILL, said, sizeof(said)), VMM_EXIT_ERROR);
    CHECK(strstr(said, "thread test made the system call tgkill") != NULL);
}

static void a_call_off_the_list_is_refused_and_named(void)
{
    char said[512];
    CHECK_EQ(run(OFF_THE_LIST, said, sizeof(said)), VMM_EXIT_ERROR);
    CHECK(strstr(said, "thread test made the system call getppid") != NULL);
}

static void only_the_listed_ioctl_requests_pass(void)
{
    char said[512];
    CHECK_EQ(run(LISTED_IOCTL, said, sizeof(said)), 0);
    CHECK_EQ(run(OTHER_IOCTL, said, sizeof(said)), VMM_EXIT_ERROR);
    CHECK(strstr(said, "thread test made the system call ioctl with request "
                       "0x5421") != NULL);
}

TEST_MAIN(TEST(a_thread_may_signal_its_own_process),
          TEST(only_the_listed_ioctl_requests_pass),
          TEST(a_signal_to_another_process_is_refused),
          TEST(a_call_off_the_list_is_refused_and_named))
