/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2, 5.3) with a single port and no multiport
 * feature: Linux's hvc0. What the guest writes goes to an output sink.
 * Host-to-guest input (the receive queue) is not served yet: the driver's
 * receive buffers stay posted.
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
    void *opaque;
};

struct vmdev_virtio_console;

struct vmdev_virtio_console *vmdev_virtio_console_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_console_output *output);
struct vmdev_virtio_device *
vmdev_virtio_console_device(struct vmdev_virtio_console *con);
void vmdev_virtio_console_free(struct vmdev_virtio_console *con);

#ifdef __cplusplus
}
#endif

#endif
