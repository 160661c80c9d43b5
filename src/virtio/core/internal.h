/* SPDX-License-Identifier: MIT */
/* What the virtio core's files share (device.c, device_state.c). */
#ifndef VMDEV_VIRTIO_CORE_INTERNAL_H
#define VMDEV_VIRTIO_CORE_INTERNAL_H

#include "vmdev/virtio.h"

/* With dev->lock held: take (and let go of) every queue's lock, for a
 * device with queue_locks; nothing otherwise. */
void virtio_lock_queues(struct vmdev_virtio_device *dev);
void virtio_unlock_queues(struct vmdev_virtio_device *dev);

#endif
