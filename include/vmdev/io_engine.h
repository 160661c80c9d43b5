/* SPDX-License-Identifier: MIT */
/*
 * I/O engines: asynchronous reads, writes, flushes, discards and
 * write-zeroes on file descriptors, for the block backends.
 *
 * A request is a struct vmdev_io the caller fills and keeps alive until
 * its done() runs. Completions are reported through an eventfd
 * (vmdev_io_engine_eventfd) that the owning event loop watches; the
 * owner then calls vmdev_io_engine_complete(), which runs each finished
 * request's done() on the calling thread. Calls on an engine may come
 * from several threads at once: the engine serialises them with a lock of
 * its own, held only while it works on its queues and its ring (and
 * across the io_uring_enter that unplug or an unplugged submit makes),
 * never while a done() runs, so done() may submit again. A caller need
 * hold none of its own locks to submit or complete (virtio-blk holds
 * none across either).
 *
 * Engines: io_uring (liburing), the default, and a pool of worker threads
 * doing the same system calls, for hosts where io_uring is not available.
 * Both finish a read or write whole: a short transfer is continued, and
 * only a read that reaches end of file completes with fewer bytes.
 */
#ifndef VMDEV_IO_ENGINE_H
#define VMDEV_IO_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vmdev_io_op {
    VMDEV_IO_READ,
    VMDEV_IO_WRITE,
    VMDEV_IO_FLUSH,        /* fdatasync */
    VMDEV_IO_DISCARD,      /* deallocate [offset, offset + len); reads zero */
    VMDEV_IO_WRITE_ZEROES, /* zero the range; unmap lets it deallocate */
    /* Nothing: completes with 0 through the engine, for a caller that
     * finished the work itself but reports completion asynchronously. */
    VMDEV_IO_NOP,
};

struct vmdev_io {
    enum vmdev_io_op op;
    int fd;
    uint64_t offset;
    const struct iovec *iov; /* READ, WRITE */
    unsigned iovcnt;
    uint64_t len;            /* DISCARD, WRITE_ZEROES */
    bool unmap;              /* WRITE_ZEROES */
    /* Bytes transferred (READ, WRITE), 0 (the others) or -errno. */
    void (*done)(struct vmdev_io *io, int64_t result);
    void *opaque;

    /* The engine's, while the request is in flight. */
    struct vmdev_io *next;
    int64_t result;
    uint64_t transferred;
    struct iovec *rest; /* what remains after a short transfer */
    unsigned rest_cnt;
};

enum vmdev_io_engine_kind {
    VMDEV_IO_ENGINE_AUTO,     /* io_uring when the host has it, else threads */
    VMDEV_IO_ENGINE_IO_URING,
    VMDEV_IO_ENGINE_THREADS,
};

struct vmdev_io_engine;

/*
 * An engine keeping up to depth requests in flight (1 to 4096); more wait
 * inside the engine. NULL with errno set: ENOSYS or EPERM when io_uring
 * was asked for and the host refuses it, EINVAL for a bad depth.
 */
struct vmdev_io_engine *vmdev_io_engine_new(enum vmdev_io_engine_kind kind,
                                            unsigned depth);
/* Waits for every request in flight and runs their done(). */
void vmdev_io_engine_free(struct vmdev_io_engine *engine);

/* "io_uring" or "threads". */
const char *vmdev_io_engine_name(const struct vmdev_io_engine *engine);

/*
 * Start a request. Requests submitted between plug and unplug go to the
 * kernel together (one io_uring_enter for a batch); plugs nest, and when
 * threads overlap them the last unplug sends the batch. Returns 0, or -EINVAL
 * for a malformed request (its done() is then not called).
 */
__attribute__((warn_unused_result))
int vmdev_io_engine_submit(struct vmdev_io_engine *engine, struct vmdev_io *io);
void vmdev_io_engine_plug(struct vmdev_io_engine *engine);
void vmdev_io_engine_unplug(struct vmdev_io_engine *engine);

/* Readable (an eventfd) when requests have finished. */
int vmdev_io_engine_eventfd(const struct vmdev_io_engine *engine);
/* Run done() for every finished request; returns how many. */
unsigned vmdev_io_engine_complete(struct vmdev_io_engine *engine);
/* Requests submitted whose done() has not run yet. */
unsigned vmdev_io_engine_in_flight(const struct vmdev_io_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
