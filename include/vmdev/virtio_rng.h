/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (virtio 1.2, 5.4): one request queue whose device-writable
 * buffers the device fills with entropy from the host.
 */
#ifndef VMDEV_VIRTIO_RNG_H
#define VMDEV_VIRTIO_RNG_H

#include <sys/types.h>

#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the bytes come from: fill up to len bytes, return the count or a
 * negative errno. NULL `fill` means the host's getrandom(2). */
struct vmdev_rng_source {
    ssize_t (*fill)(void *opaque, void *buf, size_t len);
    void *opaque;
};

/* Bytes given per request at most; a driver asking for more gets this. */
#define VMDEV_VIRTIO_RNG_MAX_REQUEST (64 * 1024)

struct vmdev_virtio_rng;

struct vmdev_virtio_rng *vmdev_virtio_rng_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_rng_source *source);
/* The device, for a transport (virtio-pci, virtio-mmio). */
struct vmdev_virtio_device *vmdev_virtio_rng_device(struct vmdev_virtio_rng *);
/* After the transport is gone. */
void vmdev_virtio_rng_free(struct vmdev_virtio_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
