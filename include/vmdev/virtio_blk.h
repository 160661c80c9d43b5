/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image file: read, write, flush
 * and get-id, read-only disks, capacity, seg_max and blk_size. I/O is
 * synchronous on the notifying thread (io_uring and qcow2 come with the
 * storage work).
 */
#ifndef VMDEV_VIRTIO_BLK_H
#define VMDEV_VIRTIO_BLK_H

#include <stdbool.h>

#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VIRTIO_BLK_ID_LEN 20 /* 5.2.6: the serial is 20 bytes */

struct vmdev_virtio_blk_config {
    const char *path;   /* raw image */
    bool readonly;      /* open read-only and offer VIRTIO_BLK_F_RO */
    const char *serial; /* for GET_ID; NULL: the file's base name */
};

struct vmdev_virtio_blk;

/* Opens the image. NULL with errno set (and nothing changed on disk). */
struct vmdev_virtio_blk *vmdev_virtio_blk_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_blk_config *config);
struct vmdev_virtio_device *vmdev_virtio_blk_device(struct vmdev_virtio_blk *);
/* Flushes and closes the image; after the transport is gone. */
void vmdev_virtio_blk_free(struct vmdev_virtio_blk *blk);

#ifdef __cplusplus
}
#endif

#endif
