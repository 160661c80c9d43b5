/* SPDX-License-Identifier: MIT */
/* What the I/O engines share (io_engine.c) and what each provides. */
#ifndef VMDEV_BLOCK_ENGINE_H
#define VMDEV_BLOCK_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "vmdev/io_engine.h"

struct io_engine_ops {
    const char *name;
    /* Take io (checked, counted in flight); run it when it can. Under
     * engine->lock, as are submit_batch and reap. */
    void (*start)(struct vmdev_io_engine *engine, struct vmdev_io *io);
    /* Unplugged: pass what start() batched to the kernel. */
    void (*submit_batch)(struct vmdev_io_engine *engine);
    /* What has finished, linked through io->next with io->result set;
     * io_engine.c runs their done() after dropping the lock. */
    struct vmdev_io *(*reap)(struct vmdev_io_engine *engine);
    void (*destroy)(struct vmdev_io_engine *engine);
};

struct vmdev_io_engine {
    const struct io_engine_ops *ops;
    int event_fd; /* readable when something finished */
    unsigned depth;
    atomic_uint in_flight;
    /* Held while the engine works on its queues and rings (start,
     * submit_batch, reap), never while a done() runs: several threads may
     * submit and complete, and done() may submit again. */
    pthread_mutex_t lock;
    unsigned plugged; /* plugs not yet unplugged (lock) */
};

/* The lock and the counters of a new engine's base; io_engine_base_fini
 * releases them, in its destroy(). */
void io_engine_base_init(struct vmdev_io_engine *engine,
                         const struct io_engine_ops *ops, unsigned depth);
void io_engine_base_fini(struct vmdev_io_engine *engine);

struct vmdev_io_engine *uring_engine_new(unsigned depth);
/* For the tests of the ring's restrictions: submit one request of opcode
 * (its other fields zero, fd -1) on an idle io_uring engine's ring and
 * wait for it; its result in *result. 0 or -errno. */
int uring_engine_try_op(struct vmdev_io_engine *engine, uint8_t opcode,
                           int32_t *result);
struct vmdev_io_engine *thread_engine_new(unsigned depth);

/* Bytes a READ or WRITE moves in all. */
uint64_t io_engine_total_len(const struct vmdev_io *io);
/* The iovecs still to transfer: the request's, or what remains of them
 * after a short transfer (io->rest). */
void io_engine_pending_iov(const struct vmdev_io *io, const struct iovec **iov,
                    unsigned *cnt);
/* Account n more bytes moved; 0, or -ENOMEM when the remainder could not
 * be described. */
int io_engine_advance(struct vmdev_io *io, uint64_t n);
/* The fallocate() mode for DISCARD and WRITE_ZEROES. */
int io_engine_fallocate_mode(const struct vmdev_io *io);
/* Zero [offset, offset + len) with writes, for files whose file system
 * cannot zero a range (no FALLOC_FL_ZERO_RANGE). 0 or -errno. */
int io_engine_write_zeroes_by_hand(int fd, uint64_t offset, uint64_t len);
/* Run io with blocking system calls; its result. */
int64_t io_engine_run_blocking(struct vmdev_io *io);
/* Report io finished with result: free its remainder, count it out of
 * flight, run done(). Without engine->lock. */
void io_engine_finish(struct vmdev_io_engine *engine, struct vmdev_io *io,
                      int64_t result);

#endif
