/* SPDX-License-Identifier: MIT */
/*
 * vmdev-blkbench: drive the block layer the way virtio-blk does (requests
 * with iovecs kept in flight on one I/O thread's engine) with the access
 * pattern of `qemu-img bench`, so the two run the same workload on the
 * same file: COUNT requests of SIZE bytes, DEPTH in flight, the first at
 * OFFSET and each next one STEP further, wrapping at the end of the disk.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmdev/block.h"

struct bench {
    struct vmdev_block *block;
    struct vmdev_io_engine *engine;
    bool write;
    uint64_t size, step, disk, next_offset;
    unsigned long count, submitted, completed, failed;
};

struct slot {
    struct vmdev_block_request req;
    struct iovec iov;
    struct bench *bench;
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: vmdev-blkbench [options] FILE\n"
            "  -c COUNT   requests in all (default 75000)\n"
            "  -d DEPTH   requests in flight (default 64)\n"
            "  -s SIZE    bytes per request (default 4096)\n"
            "  -S STEP    bytes from one request's offset to the next's\n"
            "             (default SIZE), wrapping at the end of the disk\n"
            "  -o OFFSET  the first request's offset (default 0)\n"
            "  -w         write (default: read)\n"
            "  -f FORMAT  raw or qcow2 (default raw)\n"
            "  -t CACHE   none, writeback or writethrough (default none)\n"
            "  -i ENGINE  io_uring or threads (default io_uring)\n"
            "  -h         this help\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return false;
    *out = v;
    return true;
}

static void submit_next(struct slot *s);

static void done(struct vmdev_block_request *req, int64_t result)
{
    struct slot *s = req->opaque;
    struct bench *b = s->bench;
    b->completed++;
    if (result != (int64_t)b->size)
        b->failed++;
    if (b->submitted < b->count)
        submit_next(s);
}

static void submit_next(struct slot *s)
{
    struct bench *b = s->bench;
    s->req = (struct vmdev_block_request){
        .op = b->write ? VMDEV_IO_WRITE : VMDEV_IO_READ,
        .offset = b->next_offset, .iov = &s->iov, .iovcnt = 1,
        .done = done, .opaque = s,
    };
    /* qemu-img bench (7.2) wraps modulo the disk's size; past that a
     * request would overrun the disk, which it lets fail and we restart. */
    b->next_offset = (b->next_offset + b->step) % b->disk;
    if (b->next_offset + b->size > b->disk)
        b->next_offset = 0;
    b->submitted++;
    int ret = vmdev_block_submit(b->block, b->engine, &s->req);
    if (ret) {
        fprintf(stderr, "vmdev-blkbench: submit at %llu: %s\n",
                (unsigned long long)s->req.offset, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    uint64_t count = 75000, depth = 64, size = 4096, step = 0, offset = 0;
    struct vmdev_block_options o = { .format = VMDEV_BLOCK_FORMAT_RAW,
                                     .cache = VMDEV_BLOCK_CACHE_NONE };
    enum vmdev_io_engine_kind kind = VMDEV_IO_ENGINE_AUTO;
    bool write = false;
    int c;
    while ((c = getopt(argc, argv, "c:d:s:S:o:wf:t:i:h")) != -1) {
        uint64_t *target = c == 'c' ? &count : c == 'd' ? &depth
                           : c == 's' ? &size : c == 'S' ? &step
                           : c == 'o' ? &offset : NULL;
        if (target) {
            if (!parse_u64(optarg, target)) {
                fprintf(stderr, "vmdev-blkbench: -%c: '%s' is not a number\n",
                        c, optarg);
                return 2;
            }
        } else if (c == 'w') {
            write = true;
        } else if (c == 'f' && !strcmp(optarg, "raw")) {
            o.format = VMDEV_BLOCK_FORMAT_RAW;
        } else if (c == 'f' && !strcmp(optarg, "qcow2")) {
            o.format = VMDEV_BLOCK_FORMAT_QCOW2;
        } else if (c == 't' && !strcmp(optarg, "none")) {
            o.cache = VMDEV_BLOCK_CACHE_NONE;
        } else if (c == 't' && !strcmp(optarg, "writeback")) {
            o.cache = VMDEV_BLOCK_CACHE_WRITEBACK;
        } else if (c == 't' && !strcmp(optarg, "writethrough")) {
            o.cache = VMDEV_BLOCK_CACHE_WRITETHROUGH;
        } else if (c == 'i' && !strcmp(optarg, "io_uring")) {
            kind = VMDEV_IO_ENGINE_AUTO;
        } else if (c == 'i' && !strcmp(optarg, "threads")) {
            kind = VMDEV_IO_ENGINE_THREADS;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            if (optarg)
                fprintf(stderr, "vmdev-blkbench: -%c: bad value '%s'\n", c,
                        optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || !count || !depth || depth > 1024 || !size ||
        size > (64u << 20)) {
        fprintf(stderr, "vmdev-blkbench: one FILE, and COUNT, DEPTH (up to "
                        "1024) and SIZE (up to 64 MiB) above 0\n");
        usage(stderr);
        return 2;
    }
    o.path = argv[optind];
    o.readonly = !write;
    char why[512] = "";
    struct bench b = { .write = write, .size = size, .step = step ? step : size,
                       .next_offset = offset, .count = count };
    b.block = vmdev_block_new(&o, why, sizeof(why));
    if (!b.block) {
        fprintf(stderr, "vmdev-blkbench: %s: %s\n", o.path, why);
        return 1;
    }
    b.disk = vmdev_block_size(b.block);
    b.engine = vmdev_io_engine_new(kind, (unsigned)depth);
    struct slot *slots = calloc(depth, sizeof(*slots));
    if (!b.engine || !slots || b.disk < size || offset > b.disk - size) {
        fprintf(stderr, "vmdev-blkbench: no engine, no memory, or the disk "
                        "(%llu bytes) is too small\n",
                (unsigned long long)b.disk);
        return 1;
    }
    for (uint64_t i = 0; i < depth; i++) {
        slots[i].bench = &b;
        slots[i].iov.iov_len = size;
        if (posix_memalign(&slots[i].iov.iov_base, 4096, size))
            return 1;
        memset(slots[i].iov.iov_base, (int)(0xa5 ^ i), size);
    }
    printf("Sending %llu %s requests, %llu bytes each, %llu in parallel "
           "(starting at offset %llu, step size %llu)\n",
           (unsigned long long)count, write ? "write" : "read",
           (unsigned long long)size, (unsigned long long)depth,
           (unsigned long long)offset, (unsigned long long)b.step);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (uint64_t i = 0; i < depth && b.submitted < count; i++)
        submit_next(&slots[i]);
    struct pollfd p = { .fd = vmdev_io_engine_eventfd(b.engine),
                        .events = POLLIN };
    while (b.completed < count) {
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return 1;
        vmdev_io_engine_complete(b.engine);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) +
                     (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("Run completed in %.3f seconds.\n", seconds);
    vmdev_io_engine_free(b.engine);
    vmdev_block_free(b.block);
    for (uint64_t i = 0; i < depth; i++)
        free(slots[i].iov.iov_base);
    free(slots);
    if (b.failed) {
        fprintf(stderr, "vmdev-blkbench: %lu requests failed\n", b.failed);
        return 1;
    }
    return 0;
}
