/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2, 5.3) with a single port and no multiport
 * feature: Linux's hvc0. What the guest writes goes to an output sink;
 * the host's input fills the receive buffers the driver posted.
 */
#ifndef VMDEV_VIRTIO_CONSOLE_H
#define VMDEV_VIRTIO_CONSOLE_H

#include <stddef.h>

#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vmdev_console_output {
    void (*write)(void *opaque, const void *buf, size_t len);
    /* The driver posted receive buffers (or started, DRIVER_OK): input
     * that did not fit may be offered again. Runs on the queue's thread with the device locked,
     * so it must not call vmdev_virtio_console_receive() itself. May be
     * NULL. */
    void (*input_ready)(void *opaque);
    void *opaque;
};

struct vmdev_virtio_console;

struct vmdev_virtio_console *vmdev_virtio_console_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_console_output *output);
struct vmdev_virtio_device *
vmdev_virtio_console_device(struct vmdev_virtio_console *con);
void vmdev_virtio_console_free(struct vmdev_virtio_console *con);

/*
 * Host input for the guest: copy as much of data as the posted receive
 * buffers take, in order, and interrupt the driver. Returns the bytes
 * taken (0 while the driver is not running or has no buffer posted); the
 * caller keeps the rest until input_ready. Takes the device lock.
 */
size_t vmdev_virtio_console_receive(struct vmdev_virtio_console *con,
                                    const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
