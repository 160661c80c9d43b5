/* SPDX-License-Identifier: MIT */
/* The I/O engine interface and what the engines share. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "vmdev/event_loop.h"

#define MAX_DEPTH 4096

struct vmdev_io_engine *vmdev_io_engine_new(enum vmdev_io_engine_kind kind,
                                            unsigned depth)
{
    if (depth == 0 || depth > MAX_DEPTH) {
        errno = EINVAL;
        return NULL;
    }
    switch (kind) {
    case VMDEV_IO_ENGINE_AUTO: {
        struct vmdev_io_engine *e = uring_engine_new(depth);
        return e ? e : thread_engine_new(depth);
    }
    case VMDEV_IO_ENGINE_IO_URING:
        return uring_engine_new(depth);
    case VMDEV_IO_ENGINE_THREADS:
        return thread_engine_new(depth);
    }
    errno = EINVAL;
    return NULL;
}

/* Block until something finishes, then finish it. */
static void wait_and_complete(struct vmdev_io_engine *e)
{
    struct pollfd p = { .fd = e->event_fd, .events = POLLIN };
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    vmdev_io_engine_complete(e);
}

void vmdev_io_engine_free(struct vmdev_io_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    if (e->plugged) {
        e->plugged = 0;
        e->ops->submit_batch(e);
    }
    pthread_mutex_unlock(&e->lock);
    while (atomic_load(&e->in_flight))
        wait_and_complete(e);
    e->ops->destroy(e);
}

const char *vmdev_io_engine_name(const struct vmdev_io_engine *e)
{
    return e->ops->name;
}

uint64_t io_engine_total_len(const struct vmdev_io *io)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < io->iovcnt; i++)
        total += io->iov[i].iov_len;
    return total;
}

/* Everything a request says is checked here, before any engine sees it:
 * offsets and lengths stay within off_t, as the system calls take it. */
static int check_request(const struct vmdev_io *io)
{
    if (!io->done || io->fd < 0 || io->offset > INT64_MAX)
        return -EINVAL;
    switch (io->op) {
    case VMDEV_IO_READ:
    case VMDEV_IO_WRITE: {
        if (io->iovcnt == 0 || io->iovcnt > IOV_MAX || !io->iov)
            return -EINVAL;
        uint64_t total = 0;
        for (unsigned i = 0; i < io->iovcnt; i++) {
            if (io->iov[i].iov_len > (uint64_t)SSIZE_MAX - total)
                return -EINVAL;
            total += io->iov[i].iov_len;
        }
        if (total == 0 || total > (uint64_t)INT64_MAX - io->offset)
            return -EINVAL;
        return 0;
    }
    case VMDEV_IO_FLUSH:
    case VMDEV_IO_NOP:
        return 0;
    case VMDEV_IO_DISCARD:
    case VMDEV_IO_WRITE_ZEROES:
        if (io->len == 0 || io->len > (uint64_t)INT64_MAX - io->offset)
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

int vmdev_io_engine_submit(struct vmdev_io_engine *e, struct vmdev_io *io)
{
    int ret = check_request(io);
    if (ret)
        return ret;
    io->next = NULL;
    io->result = 0;
    io->transferred = 0;
    io->rest = NULL;
    io->rest_cnt = 0;
    atomic_fetch_add(&e->in_flight, 1);
    pthread_mutex_lock(&e->lock);
    e->ops->start(e, io);
    pthread_mutex_unlock(&e->lock);
    return 0;
}

void vmdev_io_engine_plug(struct vmdev_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->plugged++;
    pthread_mutex_unlock(&e->lock);
}

void vmdev_io_engine_unplug(struct vmdev_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    /* The last of overlapping plugs sends what they all batched. */
    if (e->plugged && --e->plugged == 0)
        e->ops->submit_batch(e);
    pthread_mutex_unlock(&e->lock);
}

int vmdev_io_engine_eventfd(const struct vmdev_io_engine *e)
{
    return e->event_fd;
}

unsigned vmdev_io_engine_complete(struct vmdev_io_engine *e)
{
    pthread_mutex_lock(&e->lock);
    struct vmdev_io *finished = e->ops->reap(e);
    pthread_mutex_unlock(&e->lock);
    /* done() without the lock: it may submit, here or on another engine. */
    unsigned count = 0;
    while (finished) {
        struct vmdev_io *io = finished;
        finished = io->next;
        io_engine_finish(e, io, io->result);
        count++;
    }
    return count;
}

unsigned vmdev_io_engine_in_flight(const struct vmdev_io_engine *e)
{
    return atomic_load(&((struct vmdev_io_engine *)e)->in_flight);
}

void io_engine_base_init(struct vmdev_io_engine *e,
                         const struct io_engine_ops *ops, unsigned depth)
{
    e->ops = ops;
    e->depth = depth;
    e->event_fd = -1;
    atomic_init(&e->in_flight, 0);
    pthread_mutex_init(&e->lock, NULL);
    e->plugged = 0;
}

void io_engine_base_fini(struct vmdev_io_engine *e)
{
    pthread_mutex_destroy(&e->lock);
}

void io_engine_pending_iov(const struct vmdev_io *io, const struct iovec **iov,
                    unsigned *cnt)
{
    if (io->rest) {
        *iov = io->rest;
        *cnt = io->rest_cnt;
    } else {
        *iov = io->iov;
        *cnt = io->iovcnt;
    }
}

int io_engine_advance(struct vmdev_io *io, uint64_t n)
{
    io->transferred += n;
    if (!io->rest) {
        io->rest = malloc(io->iovcnt * sizeof(*io->rest));
        if (!io->rest)
            return -ENOMEM;
        memcpy(io->rest, io->iov, io->iovcnt * sizeof(*io->rest));
        io->rest_cnt = io->iovcnt;
    }
    /* Drop the iovecs moved whole, trim the one moved in part. */
    unsigned skip = 0;
    while (skip < io->rest_cnt && n >= io->rest[skip].iov_len)
        n -= io->rest[skip++].iov_len;
    memmove(io->rest, io->rest + skip, (io->rest_cnt - skip) * sizeof(*io->rest));
    io->rest_cnt -= skip;
    if (io->rest_cnt) {
        io->rest[0].iov_base = (char *)io->rest[0].iov_base + n;
        io->rest[0].iov_len -= n;
    }
    return 0;
}

int io_engine_fallocate_mode(const struct vmdev_io *io)
{
    if (io->op == VMDEV_IO_DISCARD || io->unmap)
        return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

int io_engine_write_zeroes_by_hand(int fd, uint64_t offset, uint64_t len)
{
    static const uint8_t zeroes[65536];
    while (len) {
        size_t chunk = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
        ssize_t n = pwrite(fd, zeroes, chunk, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        offset += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int64_t transfer_blocking(struct vmdev_io *io)
{
    uint64_t total = io_engine_total_len(io);
    while (io->transferred < total) {
        const struct iovec *iov;
        unsigned cnt;
        io_engine_pending_iov(io, &iov, &cnt);
        off_t at = (off_t)(io->offset + io->transferred);
        ssize_t n = io->op == VMDEV_IO_READ ? preadv(io->fd, iov, (int)cnt, at)
                                            : pwritev(io->fd, iov, (int)cnt, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return io->op == VMDEV_IO_READ ? (int64_t)io->transferred : -EIO;
        if (io_engine_advance(io, (uint64_t)n))
            return -ENOMEM;
    }
    return (int64_t)io->transferred;
}

int64_t io_engine_run_blocking(struct vmdev_io *io)
{
    switch (io->op) {
    case VMDEV_IO_READ:
    case VMDEV_IO_WRITE:
        return transfer_blocking(io);
    case VMDEV_IO_FLUSH:
        return fdatasync(io->fd) ? -errno : 0;
    case VMDEV_IO_NOP:
        return 0;
    case VMDEV_IO_DISCARD:
    case VMDEV_IO_WRITE_ZEROES:
        if (fallocate(io->fd, io_engine_fallocate_mode(io), (off_t)io->offset,
                      (off_t)io->len) == 0)
            return 0;
        if (io->op == VMDEV_IO_WRITE_ZEROES &&
            (errno == EOPNOTSUPP || errno == EINVAL))
            return io_engine_write_zeroes_by_hand(io->fd, io->offset, io->len);
        return -errno;
    }
    return -EINVAL;
}

void io_engine_finish(struct vmdev_io_engine *e, struct vmdev_io *io, int64_t result)
{
    free(io->rest);
    io->rest = NULL;
    atomic_fetch_sub(&e->in_flight, 1);
    io->done(io, result);
}
