/* SPDX-License-Identifier: MIT */
/*
 * The virtio device model, for those who write a device or a transport:
 * what a device implements, what a transport (virtio-pci, virtio-mmio)
 * drives, and the state they share. A device embeds struct
 * vmdev_virtio_device, which is defined here for that reason; a VMM
 * needs only vmdev/virtio.h, where it is opaque.
 *
 *   transport (guest registers) --> vmdev_virtio_* calls --> device ops
 *   device --> vmdev_virtio_interrupt_queue(), _config() --> transport
 *              interrupt callback (MSI-X vector or INTx/ISR)
 *
 * A device knows nothing of its transport; a transport knows nothing of
 * the device type. Both sides take dev->lock around state changes; device
 * ops are called with it held, except where an op says otherwise.
 *
 * Queue locks. A device whose queues share little (virtio-blk: one I/O
 * engine and one pool of requests per queue) sets queue_locks in its ops
 * and serves each queue under that queue's own lock
 * (vmdev_virtio_queue_lock) instead of dev->lock, so its queues run in
 * parallel and the hot path (a kick from an ioeventfd, a completion)
 * never waits for a register access. The order is dev->lock, then queue
 * locks in index order. The core takes every queue lock, after
 * dev->lock, around what changes the queues or the status (a status
 * write, reset, save and restore); a guest error, an interrupt and the
 * transports' interrupt paths are safe from a queue lock alone.
 *
 * Guest faults (a bad ring, a malformed request) go through
 * vmdev_virtio_guest_error(): the device enters DEVICE_NEEDS_RESET, stops
 * processing queues, the error is counted and logged (rate-limited), and a
 * config interrupt tells the driver. Nothing a guest does ends the process.
 */
#ifndef VMDEV_VIRTIO_DEVICE_H
#define VMDEV_VIRTIO_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmdev/guest_memory.h"
#include "vmdev/log.h"
#include "vmdev/state.h"
#include "vmdev/virtio.h"
#include "vmdev/virtqueue.h"

#ifdef __cplusplus
extern "C" {
#endif


struct vmdev_virtio_device_ops {
    /*
     * Device-specific configuration space (virtio 1.2, 4.1.4.6). offset
     * and len are already checked against config_len by the core.
     */
    void (*read_config)(struct vmdev_virtio_device *dev, uint32_t offset,
                        void *data, uint32_t len);
    /* NULL when the configuration space is read-only. */
    void (*write_config)(struct vmdev_virtio_device *dev, uint32_t offset,
                         const void *data, uint32_t len);
    /*
     * DRIVER_OK was set and every enabled queue passed its checks. With
     * queue_locks, called with every queue lock held too, and the core
     * then kicks each queue (buffers made available before DRIVER_OK).
     */
    int (*activate)(struct vmdev_virtio_device *dev);
    /* The driver wrote 0 to status; forget everything negotiated. */
    void (*reset)(struct vmdev_virtio_device *dev);
    /*
     * The driver made buffers available on queue `index`. With dev->lock
     * held, after the core checked the queue runs; with queue_locks, with
     * no lock or with dev->lock (vmdev_virtio_queue_kick_locked): the
     * device takes the queue's lock and checks vmdev_virtio_queue_running.
     */
    void (*queue_kick)(struct vmdev_virtio_device *dev, uint16_t index);
    /* Device-specific state beyond what the core saves. May be NULL. */
    void (*save)(struct vmdev_virtio_device *dev,
                 struct vmdev_state_writer *w);
    int (*restore)(struct vmdev_virtio_device *dev,
                   const struct vmdev_state_section *s);
    /*
     * Queue `index` is served on loop's thread from now on (NULL: no
     * longer). A device that finishes requests asynchronously watches its
     * completions there. Called without dev->lock. May be NULL.
     */
    int (*attach_queue)(struct vmdev_virtio_device *dev, uint16_t index,
                        struct vmdev_event_loop *loop);
    /*
     * The group of queue `index` (vmdev_virtio_queue_group). NULL: each
     * queue is a group of its own.
     */
    uint16_t (*queue_group)(const struct vmdev_virtio_device *dev,
                            uint16_t index);
    /*
     * Stop the work the device's own threads do on it (event-loop
     * callbacks, backends calling in), waiting for what runs; called
     * first by vmdev_virtio_free, without dev->lock. May be NULL.
     */
    void (*stop)(struct vmdev_virtio_device *dev);
    /* Release the device (after the transport is gone). */
    void (*destroy)(struct vmdev_virtio_device *dev);
    /* Each queue is served under its own lock (above). reset and the
     * device's save and restore then run with every queue lock held. */
    bool queue_locks;
};

enum vmdev_virtio_irq_reason {
    VMDEV_VIRTIO_IRQ_QUEUE,  /* used buffers on a queue */
    VMDEV_VIRTIO_IRQ_CONFIG, /* configuration or status changed */
};

/* How a transport delivers the interrupts a device raises: from
 * dev->lock, or from a queue's lock alone for a device with queue locks,
 * so interrupt must be safe from either. */
struct vmdev_virtio_transport {
    void (*interrupt)(void *opaque, enum vmdev_virtio_irq_reason reason,
                      uint16_t queue);
    void *opaque;
};

struct vmdev_virtio_device {
    const char *name; /* for logs and metrics: "virtio-blk0" */
    uint32_t device_id;
    const struct vmdev_virtio_device_ops *ops;

    uint64_t device_features; /* offered; VERSION_1 is always set */
    uint64_t driver_features; /* accepted by the driver */
    /* Read with vmdev_virtio_get_status: a guest error may set
     * NEEDS_RESET from a queue lock. Both are accessed atomically. */
    uint8_t status;
    uint8_t config_generation;
    uint32_t config_len;

    uint16_t num_queues;
    struct vmdev_virtqueue *queues; /* num_queues entries */

    const struct vmdev_guest_memory *mem;
    struct vmdev_virtio_transport transport;
    pthread_mutex_t lock;

    uint64_t guest_errors; /* guest faults since creation (atomic) */
    /* Where the device's and its transport's lines go (NULL: stderr),
     * and the limit its guest errors pass through. */
    struct vmdev_log *log;
    struct vmdev_ratelimit guest_log_limit;
    /* Per queue, the core's: its lock, and the way back to a queue a
     * batch left with chains waiting (device.c). */
    struct vmdev_virtio_queue_state *queue_state;
};

/*
 * Initialise the common part. queue_max_size is the largest ring the
 * device accepts (a power of two, at most 32768). Returns 0 or -ENOMEM.
 */
__attribute__((warn_unused_result))
int vmdev_virtio_init(struct vmdev_virtio_device *dev, const char *name,
                      uint32_t device_id,
                      const struct vmdev_virtio_device_ops *ops,
                      uint64_t device_features, uint32_t config_len,
                      uint16_t num_queues, uint16_t queue_max_size,
                      const struct vmdev_guest_memory *mem);

/* --- Called by transports, with dev->lock held. --- */

/* 32-bit feature windows (virtio 1.2, 4.1.4.3). */
uint32_t vmdev_virtio_get_device_features(struct vmdev_virtio_device *dev,
                                          uint32_t select);
/* Ignored once FEATURES_OK is set, and bits not offered are dropped. */
void vmdev_virtio_set_driver_features(struct vmdev_virtio_device *dev,
                                      uint32_t select, uint32_t value);
/*
 * Apply a status write (virtio 1.2, 2.1, 3.1.1): 0 resets; FEATURES_OK is
 * kept only if VERSION_1 was accepted; DRIVER_OK enables the queues the
 * driver made ready (a bad ring geometry makes it a guest error).
 */
void vmdev_virtio_set_status(struct vmdev_virtio_device *dev, uint8_t status);
/* Bounds-checked config access; out-of-range reads give zeros. */
void vmdev_virtio_read_config(struct vmdev_virtio_device *dev,
                              uint32_t offset, void *data, uint32_t len);
void vmdev_virtio_write_config(struct vmdev_virtio_device *dev,
                               uint32_t offset, const void *data,
                               uint32_t len);
/* --- Called without dev->lock unless said. --- */

/* Attach the transport that delivers the device's interrupts ({NULL,
 * NULL}: none), taking dev->lock and the queue locks; without dev->lock. */
void vmdev_virtio_set_transport(struct vmdev_virtio_device *dev,
                                const struct vmdev_virtio_transport *t);

/* The configuration generation (4.1.4.3, 4.2.2): any thread. */
uint8_t vmdev_virtio_get_config_generation(
    const struct vmdev_virtio_device *dev);

/* The same with dev->lock held (a notification through the PCI
 * configuration window; the kicks that follow a device's activation). */
void vmdev_virtio_queue_kick_locked(struct vmdev_virtio_device *dev,
                                    uint16_t index);

/*
 * Queue `index`'s lock, for a device with queue_locks (its queue_kick and
 * its completions). With only this lock held a device may pop, push,
 * interrupt and report guest errors; it must not take dev->lock.
 */
void vmdev_virtio_queue_lock(struct vmdev_virtio_device *dev, uint16_t index);
void vmdev_virtio_queue_unlock(struct vmdev_virtio_device *dev,
                               uint16_t index);
/* Under the queue's lock (or dev->lock): the device runs and the queue is
 * enabled, so its chains may be served. */
bool vmdev_virtio_queue_running(const struct vmdev_virtio_device *dev,
                                uint16_t index);

/* --- Called by devices, with dev->lock held (or, with queue_locks,
 * the queue's lock). --- */

/* Raise the queue interrupt if the ring's suppression rules allow it. */
void vmdev_virtio_interrupt_queue(struct vmdev_virtio_device *dev,
                                  uint16_t index);
/* The device changed its configuration: bump the generation, interrupt. */
void vmdev_virtio_interrupt_config(struct vmdev_virtio_device *dev);
/* A guest fault: NEEDS_RESET, count, rate-limited log, config interrupt. */
__attribute__((format(printf, 2, 3)))
void vmdev_virtio_guest_error(struct vmdev_virtio_device *dev,
                              const char *fmt, ...);
bool vmdev_virtio_has_feature(const struct vmdev_virtio_device *dev,
                              unsigned bit);

/*
 * A device's own loop over a queue, as a batch (dev->lock, or the queue's
 * lock, held for its whole length):
 *
 *     struct vmdev_virtio_batch batch;
 *     vmdev_virtio_batch_begin(&batch, dev, index);
 *     while (have_room && vmdev_virtio_batch_pop(&batch, &chain) == 1) {
 *         ...serve the chain: vmdev_virtio_batch_push() it back, keep it
 *         to push later, or vmdev_virtio_batch_refuse() the batch...
 *     }
 *     vmdev_virtio_batch_end(&batch);
 *
 * pop gives the next available chain (1). It answers 0 once the ring is
 * empty, after publishing how far the device got and looking again (so a
 * buffer the driver added without kicking is not stranded), or once the
 * batch has served a ring's worth of chains on a queue attached to an
 * event loop (vmdev_virtio_attach_queue): then the loop calls the device's
 * queue_kick again after the other work it has, so a driver that keeps
 * adding chains cannot hold the thread or dev->lock. Unattached, a batch
 * runs until the ring is empty. A chain the walker refuses is a guest
 * error and pop answers -1, as it does after refuse.
 *
 * end raises one interrupt for what the batch pushed. A chain kept past
 * the batch goes back later with vmdev_virtqueue_push and
 * vmdev_virtio_interrupt_queue, under the same lock.
 */
struct vmdev_virtio_batch {
    struct vmdev_virtio_device *dev;
    uint16_t index;
    unsigned budget; /* chains this batch may still pop */
    bool pushed;     /* chains returned since the last interrupt */
    bool failed;     /* refused: the device needs a reset */
};
void vmdev_virtio_batch_begin(struct vmdev_virtio_batch *batch,
                              struct vmdev_virtio_device *dev, uint16_t index);
int vmdev_virtio_batch_pop(struct vmdev_virtio_batch *batch,
                           struct vmdev_virtqueue_chain *chain);
/* Return chain to the driver with `written` bytes written into it. */
void vmdev_virtio_batch_push(struct vmdev_virtio_batch *batch,
                             const struct vmdev_virtqueue_chain *chain,
                             uint32_t written);
/* The driver built a request wrong (why: what, for the log): a guest
 * error; the batch pops nothing more. */
void vmdev_virtio_batch_refuse(struct vmdev_virtio_batch *batch,
                               const char *why);
void vmdev_virtio_batch_end(struct vmdev_virtio_batch *batch);

/*
 * The loop above for a device that answers each chain at once: serve
 * returns the bytes written into the chain, or -1 with *why set for a
 * request the guest built wrong.
 */
typedef int64_t vmdev_virtio_chain_fn(struct vmdev_virtio_device *dev,
                                      struct vmdev_virtqueue_chain *chain,
                                      const char **why);
void vmdev_virtio_process_queue(struct vmdev_virtio_device *dev,
                                uint16_t index,
                                struct vmdev_virtqueue_chain *chain,
                                vmdev_virtio_chain_fn *serve);
/* DRIVER_OK set and NEEDS_RESET clear: queues may be processed. */
bool vmdev_virtio_is_running(const struct vmdev_virtio_device *dev);


/*
 * With dev->lock held: take every queue's lock as well (in index order),
 * for a device with queue_locks, and let go of them; nothing otherwise.
 * A transport holds them across its own state and the device's when it
 * saves or restores, so that no completion falls between the two.
 */
void vmdev_virtio_lock_queues(struct vmdev_virtio_device *dev);
void vmdev_virtio_unlock_queues(struct vmdev_virtio_device *dev);

/* Save/restore of the common part (status, features, queues) plus the
 * device's own fields, in one section named dev->name; with dev->lock
 * and the queue locks held (vmdev_virtio_lock_queues). */
void vmdev_virtio_save(struct vmdev_virtio_device *dev,
                       struct vmdev_state_writer *w);
__attribute__((warn_unused_result))
int vmdev_virtio_restore(struct vmdev_virtio_device *dev,
                         const void *snapshot, size_t len);

#ifdef __cplusplus
}
#endif

#endif
