/* SPDX-License-Identifier: MIT */
/*
 * randread DEVICE SECONDS DEPTH JOBS (bench/blk.sh, in the guest): 4 KiB
 * reads at random aligned offsets of DEVICE, opened O_DIRECT, for SECONDS,
 * by JOBS processes each pinned to CPU j and keeping DEPTH reads in flight
 * through Linux AIO, so a multi-queue disk sees every CPU's queue busy.
 * Prints the reads per second of all jobs together, each counted over its
 * own SECONDS. Static: the initramfs has no libc but this one.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_DEPTH 128

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64: enough to scatter offsets, and no libc state. */
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* One job: reads per second, counted from its first submission to its
 * deadline, or -1. */
static double job(const char *device, double seconds, unsigned depth,
                  unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set)) {
        perror("sched_setaffinity");
        return -1;
    }
    int fd = open(device, O_RDONLY | O_DIRECT);
    uint64_t size = 0;
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) || size < BLOCK) {
        perror(device);
        return -1;
    }
    uint64_t blocks = size / BLOCK, state = 0x9e3779b97f4a7c15ull + cpu;
    uint8_t *buffers = aligned_alloc(BLOCK, (size_t)depth * BLOCK);
    aio_context_t ctx = 0;
    if (!buffers || syscall(SYS_io_setup, depth, &ctx)) {
        perror("io_setup");
        return -1;
    }
    struct iocb iocbs[MAX_DEPTH], *list[MAX_DEPTH];
    for (unsigned i = 0; i < depth; i++) {
        memset(&iocbs[i], 0, sizeof(iocbs[i]));
        iocbs[i].aio_fildes = (uint32_t)fd;
        iocbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
        iocbs[i].aio_buf = (uint64_t)(uintptr_t)(buffers + (size_t)i * BLOCK);
        iocbs[i].aio_nbytes = BLOCK;
        iocbs[i].aio_offset = (int64_t)(next_random(&state) % blocks * BLOCK);
        iocbs[i].aio_data = i;
        list[i] = &iocbs[i];
    }
    double start = now(), end = start + seconds;
    if (syscall(SYS_io_submit, ctx, (long)depth, list) != (long)depth) {
        perror("io_submit");
        return -1;
    }
    long long done = 0;
    unsigned in_flight = depth;
    struct io_event events[MAX_DEPTH];
    while (in_flight) {
        long n = syscall(SYS_io_getevents, ctx, 1L, (long)depth, events, NULL);
        if (n < 0) {
            perror("io_getevents");
            return -1;
        }
        bool more = now() < end;
        unsigned again = 0;
        for (long e = 0; e < n; e++) {
            if (events[e].res != BLOCK) {
                fprintf(stderr, "randread: a read gave %lld\n",
                        (long long)events[e].res);
                return -1;
            }
            /* What finishes after the deadline is drained, not counted. */
            if (more)
                done++;
            struct iocb *cb = &iocbs[events[e].data];
            if (!more) {
                in_flight--;
                continue;
            }
            cb->aio_offset = (int64_t)(next_random(&state) % blocks * BLOCK);
            list[again++] = cb;
        }
        if (again && syscall(SYS_io_submit, ctx, (long)again, list) !=
                         (long)again) {
            perror("io_submit");
            return -1;
        }
    }
    return (double)done / seconds;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: randread DEVICE SECONDS DEPTH JOBS\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    unsigned depth = (unsigned)atoi(argv[3]), jobs = (unsigned)atoi(argv[4]);
    if (seconds <= 0 || depth == 0 || depth > MAX_DEPTH || jobs == 0 ||
        jobs > 64) {
        fprintf(stderr, "randread: bad SECONDS, DEPTH or JOBS\n");
        return 2;
    }
    int pipes[64][2];
    unsigned started = 0;
    int failed = 0;
    for (; started < jobs; started++) {
        pid_t pid = -1;
        if (pipe(pipes[started]) || (pid = fork()) < 0) {
            perror("randread");
            failed = 1;
            break;
        }
        if (pid == 0) {
            double rate = job(argv[1], seconds, depth, started);
            dprintf(pipes[started][1], "%f\n", rate);
            _exit(rate < 0);
        }
        close(pipes[started][1]);
    }
    /* The jobs' rates, each over its own measured time, add up. */
    double total = 0;
    for (unsigned j = 0; j < started; j++) {
        char line[64] = { 0 };
        if (read(pipes[j][0], line, sizeof(line) - 1) <= 0 || atof(line) < 0)
            failed = 1;
        else
            total += atof(line);
        int status;
        wait(&status);
    }
    if (failed)
        return 1;
    printf("%.0f\n", total);
    return 0;
}
