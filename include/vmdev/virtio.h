/* SPDX-License-Identifier: MIT */
/*
 * A virtio device as a VMM sees it, whatever its kind (vmdev_virtio_blk,
 * vmdev_virtio_net, ...) and its transport: opaque, freed, logged and
 * served through the calls below. Writing a device or a transport is
 * vmdev/virtio_device.h.
 */
#ifndef VMDEV_VIRTIO_H
#define VMDEV_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/guest_memory.h"
#include "vmdev/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device status bits (virtio 1.2, 2.1). */
#define VMDEV_VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VMDEV_VIRTIO_STATUS_DRIVER 2u
#define VMDEV_VIRTIO_STATUS_DRIVER_OK 4u
#define VMDEV_VIRTIO_STATUS_FEATURES_OK 8u
#define VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40u
#define VMDEV_VIRTIO_STATUS_FAILED 0x80u

/* Reserved feature bits (virtio 1.2, 6). */
#define VMDEV_VIRTIO_F_INDIRECT_DESC 28
#define VMDEV_VIRTIO_F_EVENT_IDX 29
#define VMDEV_VIRTIO_F_VERSION_1 32
#define VMDEV_VIRTIO_F_ACCESS_PLATFORM 33
#define VMDEV_VIRTIO_F_RING_PACKED 34

/* Device ids (virtio 1.2, 5). */
#define VMDEV_VIRTIO_ID_NET 1
#define VMDEV_VIRTIO_ID_BLOCK 2
#define VMDEV_VIRTIO_ID_CONSOLE 3
#define VMDEV_VIRTIO_ID_RNG 4

#define VMDEV_VIRTIO_BIT(b) (UINT64_C(1) << (b))

struct vmdev_virtio_device;
struct vmdev_event_loop;

/* Free the device, whatever its kind, once its transport is freed: its
 * work stops (ops->stop), its queues go, then what it holds
 * (ops->destroy). Accepts NULL. */
void vmdev_virtio_free(struct vmdev_virtio_device *dev);

/* Send the device's log lines, and its transport's, to `log` (NULL:
 * stderr) from now on; before a transport is made. The log outlives the
 * device. */
void vmdev_virtio_set_log(struct vmdev_virtio_device *dev,
                          struct vmdev_log *log);

/* The name it logs and saves under, and its number of queues. */
const char *vmdev_virtio_name(const struct vmdev_virtio_device *dev);
uint16_t vmdev_virtio_num_queues(const struct vmdev_virtio_device *dev);
/* Guest faults since creation (each set DEVICE_NEEDS_RESET). */
uint64_t vmdev_virtio_guest_errors(const struct vmdev_virtio_device *dev);

/* The device status (2.1), NEEDS_RESET included. Any thread. */
uint8_t vmdev_virtio_get_status(const struct vmdev_virtio_device *dev);

/*
 * A queue notification from the driver, from a thread that holds none of
 * the device's locks (an ioeventfd, a notify register write): the core
 * takes dev->lock (or, for a device with queue_locks, lets the device
 * take the queue's). Ignored unless DRIVER_OK and not NEEDS_RESET, and
 * for an index past num_queues.
 */
void vmdev_virtio_queue_kick(struct vmdev_virtio_device *dev, uint16_t index);

/*
 * Tell the device that queue `index` is served on loop, before the driver
 * can start it; the core also comes back to the queue there when it left
 * chains waiting (vmdev_virtio_process_queue). Returns 0, -EINVAL for a
 * bad index, -errno if the loop cannot watch another fd, or the device's
 * error. Detach once the queue's notifications have stopped. Neither with
 * dev->lock held: detaching waits for a completion callback that may be
 * waiting for the lock.
 */
__attribute__((warn_unused_result))
int vmdev_virtio_attach_queue(struct vmdev_virtio_device *dev, uint16_t index,
                              struct vmdev_event_loop *loop);
void vmdev_virtio_detach_queue(struct vmdev_virtio_device *dev,
                               uint16_t index);

/*
 * Queues of one group are best served on one I/O thread, with the work
 * the device does for them on its own (virtio-net: a queue pair's two
 * queues and the pair's backend), so that a driver's notification is
 * handled without waking another thread. A VMM with several I/O threads
 * serves group g on thread g % threads. index < num_queues; groups run
 * from 0 to num_queues - 1.
 */
uint16_t vmdev_virtio_queue_group(const struct vmdev_virtio_device *dev,
                                  uint16_t index);

#ifdef __cplusplus
}
#endif

#endif
