/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a block backend (vmdev/block.h): read,
 * write, flush, get-id, discard and write-zeroes; several request queues,
 * each with its own I/O engine; the guest's choice of writeback or
 * writethrough (CONFIG_WCE); read-only disks; the block size, topology,
 * segment limits (a request past them gets IOERR) and discard limits in
 * the configuration space.
 *
 * Requests run asynchronously: each queue must be attached to the event
 * loop of the I/O thread that serves it (vmdev_virtio_attach_queue)
 * before the driver starts the device; completions are returned there.
 */
#ifndef VMDEV_VIRTIO_BLK_H
#define VMDEV_VIRTIO_BLK_H

#include <stdbool.h>

#include "vmdev/block.h"
#include "vmdev/io_engine.h"
#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VIRTIO_BLK_ID_LEN 20 /* 5.2.6: the serial is 20 bytes */
#define VMDEV_VIRTIO_BLK_MAX_QUEUES 64
#define VMDEV_VIRTIO_BLK_DEFAULT_QUEUE_SIZE 256
#define VMDEV_VIRTIO_BLK_MIN_QUEUE_SIZE 4
#define VMDEV_VIRTIO_BLK_MAX_QUEUE_SIZE 1024
/*
 * The most data a device's reads and writes in flight may hold, all its
 * queues together. A request that would take the device past it waits
 * in its ring until earlier ones finish; one larger than the budget (a
 * request may hold up to size_max * seg_max, at most 254 MiB) runs
 * alone. The block layer allocates at most a small multiple of a
 * request's data for it (a cache=none bounce buffer: as much again), so
 * this bounds the host memory a guest can tie up, at a depth Linux
 * hardly reaches: its requests are 1280 KiB by default (max_sectors_kb),
 * so 64 MiB is some fifty of the largest in flight.
 */
#define VMDEV_VIRTIO_BLK_DATA_BUDGET (64u << 20)

struct vmdev_virtio_blk_config {
    /* The image. The device owns it once created (it closes it when
     * freed); when creation fails, the caller still does. */
    struct vmdev_block *block;
    const char *serial;  /* GET_ID; the first 20 bytes; NULL: empty */
    uint16_t num_queues; /* 1 to VMDEV_VIRTIO_BLK_MAX_QUEUES (0: 1) */
    uint16_t queue_size; /* a power of two, 4 to 1024 (0: 256) */
    bool discard;        /* offer DISCARD, and unmapping write-zeroes */
    enum vmdev_io_engine_kind engine;
};

/* What the device did for the guest beyond what the image counts. */
struct vmdev_virtio_blk_stats {
    uint64_t requests;    /* chains served */
    uint64_t io_errors;   /* requests answered VIRTIO_BLK_S_IOERR */
    uint64_t unsupported; /* requests answered VIRTIO_BLK_S_UNSUPP */
    /* The most read and write data in flight at once, in bytes: within
     * VMDEV_VIRTIO_BLK_DATA_BUDGET unless one request was larger. */
    uint64_t data_in_flight_peak;
    uint64_t budget_waits; /* requests left in the ring for the budget */
};

struct vmdev_virtio_blk;

/* NULL with errno set: EINVAL for a bad num_queues or queue_size, or what
 * creating the queues' I/O engines failed with. */
struct vmdev_virtio_blk *vmdev_virtio_blk_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_blk_config *config);
struct vmdev_virtio_device *vmdev_virtio_blk_device(struct vmdev_virtio_blk *);
/* The image, for its counters (vmdev_block_stats). */
struct vmdev_block *vmdev_virtio_blk_block(struct vmdev_virtio_blk *blk);
/* Takes dev->lock: not from inside a device callback. */
struct vmdev_virtio_blk_stats vmdev_virtio_blk_stats(
    struct vmdev_virtio_blk *blk);
/* Chains served on queue index (0 past the last queue); takes dev->lock. */
uint64_t vmdev_virtio_blk_queue_requests(struct vmdev_virtio_blk *blk,
                                         uint16_t index);
/* Waits for requests in flight, flushes and closes the image; after the
 * transport is gone. */
void vmdev_virtio_blk_free(struct vmdev_virtio_blk *blk);

#ifdef __cplusplus
}
#endif

#endif
