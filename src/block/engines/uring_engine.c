/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine (liburing). Up to depth requests are in the kernel;
 * more wait in a FIFO and start as others finish. Completions signal an
 * eventfd registered with the ring. A short read or write is continued
 * from where it stopped; a WRITE_ZEROES the file system cannot do with
 * fallocate is finished with plain writes.
 *
 * The ring runs only the operations the engine submits (READV, WRITEV,
 * FSYNC, FALLOCATE, NOP): the kernel runs an io_uring request without
 * the submitting thread's seccomp filter, so a VMM thread confined away
 * from open() or connect() could otherwise have this ring open a file or
 * a connection for it (IORING_OP_OPENAT, IORING_OP_CONNECT). The ring is
 * created disabled, registers its eventfd and its restrictions (no later
 * registration either), then is enabled.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "vmdev/event_loop.h"

struct uring_engine {
    struct vmdev_io_engine base;
    struct io_uring ring;
    bool ring_ready;
    unsigned in_kernel;
    unsigned unsubmitted; /* prepared while plugged */
    struct vmdev_io *waiting_head, *waiting_tail;
    struct vmdev_io *done_head; /* finished without the ring */
};

static void prepare(struct io_uring_sqe *sqe, struct vmdev_io *io)
{
    const struct iovec *iov;
    unsigned cnt;
    switch (io->op) {
    case VMDEV_IO_READ:
    case VMDEV_IO_WRITE:
        io_engine_pending_iov(io, &iov, &cnt);
        if (io->op == VMDEV_IO_READ)
            io_uring_prep_readv(sqe, io->fd, iov, cnt,
                                io->offset + io->transferred);
        else
            io_uring_prep_writev(sqe, io->fd, iov, cnt,
                                 io->offset + io->transferred);
        break;
    case VMDEV_IO_FLUSH:
        io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
        break;
    case VMDEV_IO_NOP:
        io_uring_prep_nop(sqe);
        break;
    case VMDEV_IO_DISCARD:
    case VMDEV_IO_WRITE_ZEROES:
        io_uring_prep_fallocate(sqe, io->fd, io_engine_fallocate_mode(io),
                                io->offset, io->len);
        break;
    }
    io_uring_sqe_set_data(sqe, io);
}

static void submit_prepared(struct uring_engine *u)
{
    if (!u->unsubmitted)
        return;
    int ret;
    while ((ret = io_uring_submit(&u->ring)) == -EINTR)
        ;
    /* The SQ holds at most depth entries and no more than depth are in
     * the kernel, so a failure here is the kernel refusing io_uring
     * itself; the entries stay queued and the next submit retries. */
    if (ret > 0)
        u->unsubmitted -= (unsigned)ret < u->unsubmitted ? (unsigned)ret
                                                         : u->unsubmitted;
}

/* Hand io to the kernel (now, or at unplug). */
static void to_kernel(struct uring_engine *u, struct vmdev_io *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        submit_prepared(u);
        sqe = io_uring_get_sqe(&u->ring);
    }
    if (!sqe) {
        /* Not while in_kernel < depth and the SQ holds depth entries;
         * should the kernel keep refusing submissions, the request still
         * finishes, the slow way. */
        io->result = io_engine_run_blocking(io);
        io->next = u->done_head;
        u->done_head = io;
        vmdev_eventfd_signal(u->base.event_fd);
        return;
    }
    prepare(sqe, io);
    u->in_kernel++;
    u->unsubmitted++;
    if (!u->base.plugged)
        submit_prepared(u);
}

static void uring_start(struct vmdev_io_engine *e, struct vmdev_io *io)
{
    struct uring_engine *u = (struct uring_engine *)e;
    if (u->in_kernel < e->depth) {
        to_kernel(u, io);
        return;
    }
    io->next = NULL;
    if (u->waiting_tail)
        u->waiting_tail->next = io;
    else
        u->waiting_head = io;
    u->waiting_tail = io;
}

static void uring_submit_batch(struct vmdev_io_engine *e)
{
    submit_prepared((struct uring_engine *)e);
}

/*
 * What a completion means for io: true when io is finished (io->result
 * set), false when it went back to the kernel for the rest.
 */
static bool handle_completion(struct uring_engine *u, struct vmdev_io *io,
                              int res)
{
    switch (io->op) {
    case VMDEV_IO_READ:
    case VMDEV_IO_WRITE:
        if (res == -EINTR || res == -EAGAIN)
            break; /* try again as it was */
        if (res < 0) {
            io->result = res;
            return true;
        }
        if (res == 0) { /* end of file */
            io->result = io->op == VMDEV_IO_READ ? (int64_t)io->transferred
                                                 : -EIO;
            return true;
        }
        if (io_engine_advance(io, (uint64_t)res)) {
            io->result = -ENOMEM;
            return true;
        }
        if (io->transferred == io_engine_total_len(io)) {
            io->result = (int64_t)io->transferred;
            return true;
        }
        break; /* short: the rest goes back */
    case VMDEV_IO_WRITE_ZEROES:
        if (res == -EOPNOTSUPP || res == -EINVAL) {
            io->result = io_engine_write_zeroes_by_hand(io->fd, io->offset, io->len);
            return true;
        }
        io->result = res;
        return true;
    case VMDEV_IO_FLUSH:
    case VMDEV_IO_DISCARD:
    case VMDEV_IO_NOP:
        io->result = res;
        return true;
    }
    to_kernel(u, io);
    return false;
}

static struct vmdev_io *uring_reap(struct vmdev_io_engine *e)
{
    struct uring_engine *u = (struct uring_engine *)e;
    vmdev_eventfd_drain(e->event_fd);
    struct vmdev_io *finished = u->done_head, **tail = &finished;
    u->done_head = NULL;
    while (*tail)
        tail = &(*tail)->next;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        struct vmdev_io *io = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        u->in_kernel--;
        if (handle_completion(u, io, res)) {
            io->next = NULL;
            *tail = io;
            tail = &io->next;
        }
    }
    while (u->waiting_head && u->in_kernel < e->depth) {
        struct vmdev_io *io = u->waiting_head;
        u->waiting_head = io->next;
        if (!u->waiting_head)
            u->waiting_tail = NULL;
        to_kernel(u, io);
    }
    submit_prepared(u);
    return finished;
}

static void uring_destroy(struct vmdev_io_engine *e)
{
    struct uring_engine *u = (struct uring_engine *)e;
    if (u->ring_ready)
        io_uring_queue_exit(&u->ring);
    if (e->event_fd >= 0)
        close(e->event_fd);
    io_engine_base_fini(e);
    free(u);
}

static const struct io_engine_ops uring_ops = {
    .name = "io_uring",
    .start = uring_start,
    .submit_batch = uring_submit_batch,
    .reap = uring_reap,
    .destroy = uring_destroy,
};

static const uint8_t allowed_ops[] = {
    IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
    IORING_OP_NOP,
};

/*
 * Debian 12's liburing 2.3 declares io_uring_register_restrictions() and
 * io_uring_enable_rings() but does not export them (liburing.map gained
 * them in 2.4), so both registrations are made with the system call.
 */
static int register_on(struct io_uring *ring, unsigned opcode,
                       const void *arg, unsigned nr_args)
{
    long ret = syscall(__NR_io_uring_register, ring->ring_fd, opcode, arg,
                       nr_args);
    return ret < 0 ? -errno : 0;
}

static int restrict_ring(struct io_uring *ring)
{
    enum { N = sizeof(allowed_ops) / sizeof(allowed_ops[0]) };
    struct io_uring_restriction r[N];
    memset(r, 0, sizeof(r));
    for (unsigned i = 0; i < N; i++) {
        r[i].opcode = IORING_RESTRICTION_SQE_OP;
        r[i].sqe_op = allowed_ops[i];
    }
    int ret = register_on(ring, IORING_REGISTER_RESTRICTIONS, r, N);
    return ret ? ret : register_on(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

int uring_engine_try_op(struct vmdev_io_engine *e, uint8_t opcode,
                           int32_t *result)
{
    struct uring_engine *u = (struct uring_engine *)e;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_nop(sqe);
    sqe->opcode = opcode;
    sqe->fd = -1;
    io_uring_sqe_set_data(sqe, NULL);
    int ret = io_uring_submit(&u->ring);
    if (ret < 0)
        return ret;
    struct io_uring_cqe *cqe;
    ret = io_uring_wait_cqe(&u->ring, &cqe);
    if (ret)
        return ret;
    *result = cqe->res;
    io_uring_cqe_seen(&u->ring, cqe);
    return 0;
}

struct vmdev_io_engine *uring_engine_new(unsigned depth)
{
    struct uring_engine *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    io_engine_base_init(&u->base, &uring_ops, depth);
    u->base.event_fd = vmdev_eventfd_new();
    int ret = u->base.event_fd < 0
                  ? -errno
                  : io_uring_queue_init(depth, &u->ring,
                                        IORING_SETUP_R_DISABLED);
    if (ret == 0) {
        u->ring_ready = true;
        ret = io_uring_register_eventfd(&u->ring, u->base.event_fd);
    }
    if (ret == 0)
        ret = restrict_ring(&u->ring);
    if (ret) {
        uring_destroy(&u->base);
        errno = -ret;
        return NULL;
    }
    return &u->base;
}
