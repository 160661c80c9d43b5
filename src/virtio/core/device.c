/* SPDX-License-Identifier: MIT */
/*
 * The transport-independent half of a virtio device: feature negotiation,
 * the status state machine (virtio 1.2, 2.1 and 3.1), configuration space
 * access and generation, interrupts, guest faults, save and restore.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdev/event_loop.h"
#include "vmdev/log.h"
#include "vmdev/virtio_device.h"


#define STATE_VERSION 1

/*
 * What the core keeps per queue: the queue's lock (for a device with
 * queue_locks), and its way back to the device: when a batch stops after
 * a ring's worth of chains with more waiting, it signals fd, and the loop
 * serving the queue calls the device's queue_kick again once it has run
 * what else was ready. The driver need not kick for those chains (with
 * EVENT_IDX it does not: it has passed avail_event).
 */
struct vmdev_virtio_queue_state {
    struct vmdev_virtio_device *dev;
    uint16_t index;
    pthread_mutex_t lock;
    /* -1 while the queue is not attached to a loop; read by batches
     * under a queue lock, so accessed atomically. */
    int fd;
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *watch;
};

static int return_fd(const struct vmdev_virtio_queue_state *qs)
{
    return __atomic_load_n(&qs->fd, __ATOMIC_ACQUIRE);
}

void vmdev_virtio_lock_queues(struct vmdev_virtio_device *dev)
{
    if (!dev->ops->queue_locks)
        return;
    for (uint16_t i = 0; i < dev->num_queues; i++)
        pthread_mutex_lock(&dev->queue_state[i].lock);
}

void vmdev_virtio_unlock_queues(struct vmdev_virtio_device *dev)
{
    if (!dev->ops->queue_locks)
        return;
    for (uint16_t i = dev->num_queues; i--;)
        pthread_mutex_unlock(&dev->queue_state[i].lock);
}

uint8_t vmdev_virtio_get_status(const struct vmdev_virtio_device *dev)
{
    return __atomic_load_n(&dev->status, __ATOMIC_ACQUIRE);
}

uint8_t vmdev_virtio_get_config_generation(
    const struct vmdev_virtio_device *dev)
{
    return __atomic_load_n(&dev->config_generation, __ATOMIC_ACQUIRE);
}

static void store_status(struct vmdev_virtio_device *dev, uint8_t status)
{
    __atomic_store_n(&dev->status, status, __ATOMIC_RELEASE);
}

int vmdev_virtio_init(struct vmdev_virtio_device *dev, const char *name,
                      uint32_t device_id,
                      const struct vmdev_virtio_device_ops *ops,
                      uint64_t device_features, uint32_t config_len,
                      uint16_t num_queues, uint16_t queue_max_size,
                      const struct vmdev_guest_memory *mem)
{
    if (queue_max_size == 0 || queue_max_size > VMDEV_VQ_MAX_SIZE ||
        (queue_max_size & (queue_max_size - 1)) || num_queues == 0)
        return -EINVAL;
    memset(dev, 0, sizeof(*dev));
    dev->queues = calloc(num_queues, sizeof(*dev->queues));
    dev->queue_state = calloc(num_queues, sizeof(*dev->queue_state));
    if (!dev->queues || !dev->queue_state) {
        free(dev->queues);
        free(dev->queue_state);
        return -ENOMEM;
    }
    for (uint16_t i = 0; i < num_queues; i++) {
        struct vmdev_virtio_queue_state *qs = &dev->queue_state[i];
        vmdev_virtqueue_init(&dev->queues[i], queue_max_size);
        qs->dev = dev;
        qs->index = i;
        qs->fd = -1;
        pthread_mutex_init(&qs->lock, NULL);
    }
    dev->name = name;
    dev->device_id = device_id;
    dev->ops = ops;
    /* A modern-only device: the driver must accept VERSION_1 (6.1). */
    dev->device_features =
        device_features | VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1);
    dev->config_len = config_len;
    dev->num_queues = num_queues;
    dev->mem = mem;
    pthread_mutex_init(&dev->lock, NULL);
    return 0;
}

static void queue_return_close(struct vmdev_virtio_queue_state *back);

void vmdev_virtio_free(struct vmdev_virtio_device *dev)
{
    if (!dev)
        return;
    if (dev->ops->stop)
        dev->ops->stop(dev);
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        queue_return_close(&dev->queue_state[i]);
        pthread_mutex_destroy(&dev->queue_state[i].lock);
    }
    free(dev->queues);
    dev->queues = NULL;
    free(dev->queue_state);
    dev->queue_state = NULL;
    pthread_mutex_destroy(&dev->lock);
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
}

void vmdev_virtio_set_log(struct vmdev_virtio_device *dev,
                          struct vmdev_log *log)
{
    dev->log = log;
}

const char *vmdev_virtio_name(const struct vmdev_virtio_device *dev)
{
    return dev->name;
}

uint16_t vmdev_virtio_num_queues(const struct vmdev_virtio_device *dev)
{
    return dev->num_queues;
}

uint64_t vmdev_virtio_guest_errors(const struct vmdev_virtio_device *dev)
{
    return __atomic_load_n(&dev->guest_errors, __ATOMIC_RELAXED);
}

uint32_t vmdev_virtio_get_device_features(struct vmdev_virtio_device *dev,
                                          uint32_t select)
{
    if (select > 1)
        return 0;
    return (uint32_t)(dev->device_features >> (32 * select));
}

void vmdev_virtio_set_driver_features(struct vmdev_virtio_device *dev,
                                      uint32_t select, uint32_t value)
{
    /* 2.2.2: the driver accepts only offered features, and the set is
     * fixed once FEATURES_OK is set (3.1.1). */
    if (select > 1 ||
        (vmdev_virtio_get_status(dev) & VMDEV_VIRTIO_STATUS_FEATURES_OK))
        return;
    unsigned shift = 32 * select;
    uint64_t window = UINT64_C(0xffffffff) << shift;
    uint64_t accepted = ((uint64_t)value << shift) & dev->device_features;
    dev->driver_features = (dev->driver_features & ~window) | accepted;
}

bool vmdev_virtio_has_feature(const struct vmdev_virtio_device *dev,
                              unsigned bit)
{
    return bit < 64 && (dev->driver_features & VMDEV_VIRTIO_BIT(bit));
}

bool vmdev_virtio_is_running(const struct vmdev_virtio_device *dev)
{
    uint8_t status = vmdev_virtio_get_status(dev);
    return (status & VMDEV_VIRTIO_STATUS_DRIVER_OK) &&
           !(status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

bool vmdev_virtio_queue_running(const struct vmdev_virtio_device *dev,
                                uint16_t index)
{
    return index < dev->num_queues && vmdev_virtio_is_running(dev) &&
           dev->queues[index].enabled;
}

void vmdev_virtio_queue_lock(struct vmdev_virtio_device *dev, uint16_t index)
{
    pthread_mutex_lock(&dev->queue_state[index].lock);
}

void vmdev_virtio_queue_unlock(struct vmdev_virtio_device *dev,
                               uint16_t index)
{
    pthread_mutex_unlock(&dev->queue_state[index].lock);
}

static void device_reset(struct vmdev_virtio_device *dev)
{
    if (dev->ops->reset)
        dev->ops->reset(dev);
    for (uint16_t i = 0; i < dev->num_queues; i++)
        vmdev_virtqueue_reset(&dev->queues[i]);
    dev->driver_features = 0;
    store_status(dev, 0);
}

void vmdev_virtio_guest_error(struct vmdev_virtio_device *dev,
                              const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    /* From dev->lock or from a queue lock: the status bit is set in one
     * atomic step, and only the first error interrupts. */
    __atomic_fetch_add(&dev->guest_errors, 1, __ATOMIC_RELAXED);
    vmdev_log_guest(dev->log, &dev->guest_log_limit,
                    "%s: %s; device needs reset", dev->name, message);
    uint8_t old = __atomic_fetch_or(&dev->status,
                                    VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                                    __ATOMIC_ACQ_REL);
    if (old & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    /* 2.1.2: with DRIVER_OK set, tell the driver by a config change. */
    if (old & VMDEV_VIRTIO_STATUS_DRIVER_OK)
        vmdev_virtio_interrupt_config(dev);
}

/* DRIVER_OK: check and map every queue the driver enabled (queue locks
 * held). false: a ring was refused, a guest error. */
static bool enable_queues(struct vmdev_virtio_device *dev)
{
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        struct vmdev_virtqueue *vq = &dev->queues[i];
        const char *why = NULL;
        if (!vq->config.ready)
            continue;
        if (vmdev_virtqueue_enable(vq, dev->mem, dev->driver_features, &why)) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", i, why);
            return false;
        }
    }
    return true;
}

/* The status change itself, with every queue lock held; true when the
 * device is to start (ops->activate, after the queue locks are let go:
 * a device starts its queues by kicking them). */
static bool apply_status(struct vmdev_virtio_device *dev, uint8_t status)
{
    if (status == 0) {
        device_reset(dev);
        return false;
    }
    uint8_t old = vmdev_virtio_get_status(dev);
    uint8_t added = status & ~old;

    /* 3.1.1: FEATURES_OK sticks only for a feature set we can serve; a
     * modern device needs VERSION_1 (6.1). The driver reads the status
     * back and gives up when the bit did not stay. */
    if ((added & VMDEV_VIRTIO_STATUS_FEATURES_OK) &&
        !vmdev_virtio_has_feature(dev, VMDEV_VIRTIO_F_VERSION_1))
        status &= (uint8_t)~VMDEV_VIRTIO_STATUS_FEATURES_OK;

    /* NEEDS_RESET is the device's to set and only a reset clears it. */
    status &= (uint8_t)~VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET;

    /* 2.1.2: the driver MUST NOT clear a device status bit; only a reset
     * (writing 0) does. Clearing DRIVER_OK or FEATURES_OK would otherwise
     * re-activate the device, or renegotiate, with requests in flight. */
    uint8_t cleared = old & (uint8_t)~status &
                      (uint8_t)~VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if (cleared) {
        vmdev_virtio_guest_error(dev, "status bits 0x%02x cleared without a "
                                 "reset", cleared);
        return false;
    }
    store_status(dev, status | (old & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET));

    if (!(added & VMDEV_VIRTIO_STATUS_DRIVER_OK))
        return false;
    /* 3.1.1: DRIVER_OK comes after FEATURES_OK. */
    if (!(status & VMDEV_VIRTIO_STATUS_FEATURES_OK)) {
        vmdev_virtio_guest_error(dev, "DRIVER_OK without FEATURES_OK");
        return false;
    }
    return !(old & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
           enable_queues(dev);
}

static bool activate(struct vmdev_virtio_device *dev)
{
    if (dev->ops->activate && dev->ops->activate(dev)) {
        vmdev_virtio_guest_error(dev, "device could not start");
        return false;
    }
    return true;
}

void vmdev_virtio_set_status(struct vmdev_virtio_device *dev, uint8_t status)
{
    vmdev_virtio_lock_queues(dev);
    bool start = apply_status(dev, status);
    /* With queue locks, nothing is served before the device has
     * started; then the queues are kicked for buffers made available
     * before DRIVER_OK, whose kicks were ignored. */
    bool started = start && dev->ops->queue_locks && activate(dev);
    vmdev_virtio_unlock_queues(dev);
    if (start && !dev->ops->queue_locks)
        activate(dev);
    for (uint16_t i = 0; started && i < dev->num_queues; i++)
        vmdev_virtio_queue_kick_locked(dev, i);
}

void vmdev_virtio_read_config(struct vmdev_virtio_device *dev,
                              uint32_t offset, void *data, uint32_t len)
{
    if (offset > dev->config_len || len > dev->config_len - offset ||
        !dev->ops->read_config) {
        memset(data, 0, len);
        return;
    }
    dev->ops->read_config(dev, offset, data, len);
}

void vmdev_virtio_write_config(struct vmdev_virtio_device *dev,
                               uint32_t offset, const void *data,
                               uint32_t len)
{
    if (offset > dev->config_len || len > dev->config_len - offset ||
        !dev->ops->write_config)
        return;
    dev->ops->write_config(dev, offset, data, len);
}

void vmdev_virtio_queue_kick_locked(struct vmdev_virtio_device *dev,
                                    uint16_t index)
{
    if (index >= dev->num_queues || !dev->ops->queue_kick)
        return;
    /* With queue locks the device checks under the queue's lock. */
    if (dev->ops->queue_locks || vmdev_virtio_queue_running(dev, index))
        dev->ops->queue_kick(dev, index);
}

void vmdev_virtio_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    if (index >= dev->num_queues || !dev->ops->queue_kick)
        return;
    if (dev->ops->queue_locks) {
        dev->ops->queue_kick(dev, index);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    vmdev_virtio_queue_kick_locked(dev, index);
    pthread_mutex_unlock(&dev->lock);
}

void vmdev_virtio_set_transport(struct vmdev_virtio_device *dev,
                                const struct vmdev_virtio_transport *t)
{
    pthread_mutex_lock(&dev->lock);
    vmdev_virtio_lock_queues(dev);
    dev->transport = *t;
    vmdev_virtio_unlock_queues(dev);
    pthread_mutex_unlock(&dev->lock);
}

void vmdev_virtio_interrupt_queue(struct vmdev_virtio_device *dev,
                                  uint16_t index)
{
    if (index >= dev->num_queues ||
        !vmdev_virtqueue_should_interrupt(&dev->queues[index]))
        return;
    if (dev->transport.interrupt)
        dev->transport.interrupt(dev->transport.opaque, VMDEV_VIRTIO_IRQ_QUEUE,
                                 index);
}

void vmdev_virtio_interrupt_config(struct vmdev_virtio_device *dev)
{
    __atomic_fetch_add(&dev->config_generation, 1, __ATOMIC_RELEASE);
    if (dev->transport.interrupt)
        dev->transport.interrupt(dev->transport.opaque,
                                 VMDEV_VIRTIO_IRQ_CONFIG, 0);
}

void vmdev_virtio_batch_begin(struct vmdev_virtio_batch *batch,
                              struct vmdev_virtio_device *dev, uint16_t index)
{
    const struct vmdev_virtqueue *vq = &dev->queues[index];
    *batch = (struct vmdev_virtio_batch){
        .dev = dev,
        .index = index,
        /* A ring's worth per batch where the loop can bring us back. */
        .budget = return_fd(&dev->queue_state[index]) >= 0 ? vq->config.size
                                                           : UINT32_MAX,
    };
}

int vmdev_virtio_batch_pop(struct vmdev_virtio_batch *batch,
                           struct vmdev_virtqueue_chain *chain)
{
    struct vmdev_virtio_device *dev = batch->dev;
    struct vmdev_virtqueue *vq = &dev->queues[batch->index];
    if (batch->failed)
        return -1;
    for (;;) {
        if (!batch->budget) {
            /* The rest after what else the loop has to do. */
            vmdev_eventfd_signal(return_fd(&dev->queue_state[batch->index]));
            return 0;
        }
        const char *why = NULL;
        int ret = vmdev_virtqueue_pop(vq, chain, &why);
        if (ret == 1) {
            batch->budget--;
            return 1;
        }
        if (ret < 0) {
            vmdev_virtio_batch_refuse(batch, why);
            return -1;
        }
        /* 2.7.10: publish avail_event, then re-check the ring, so a
         * buffer the driver added without kicking is not stranded. */
        vmdev_virtqueue_set_notification(vq, true);
        if (!vmdev_virtqueue_has_available(vq))
            return 0;
    }
}

void vmdev_virtio_batch_push(struct vmdev_virtio_batch *batch,
                             const struct vmdev_virtqueue_chain *chain,
                             uint32_t written)
{
    vmdev_virtqueue_push(&batch->dev->queues[batch->index], chain->head,
                         written);
    batch->pushed = true;
}

void vmdev_virtio_batch_refuse(struct vmdev_virtio_batch *batch,
                               const char *why)
{
    if (batch->failed)
        return;
    batch->failed = true;
    vmdev_virtio_guest_error(batch->dev, "queue %u: %s", batch->index,
                             why ? why : "bad request");
}

void vmdev_virtio_batch_end(struct vmdev_virtio_batch *batch)
{
    if (batch->pushed)
        vmdev_virtio_interrupt_queue(batch->dev, batch->index);
    batch->pushed = false;
}

void vmdev_virtio_process_queue(struct vmdev_virtio_device *dev,
                                uint16_t index,
                                struct vmdev_virtqueue_chain *chain,
                                vmdev_virtio_chain_fn *serve)
{
    struct vmdev_virtio_batch batch;
    vmdev_virtio_batch_begin(&batch, dev, index);
    while (vmdev_virtio_batch_pop(&batch, chain) == 1) {
        const char *why = NULL;
        int64_t written = serve(dev, chain, &why);
        if (written < 0 || written > UINT32_MAX) {
            vmdev_virtio_batch_refuse(&batch, why);
            break;
        }
        vmdev_virtio_batch_push(&batch, chain, (uint32_t)written);
    }
    vmdev_virtio_batch_end(&batch);
}

/* On the queue's loop: serve what a batch left. */
static void queue_returned(void *opaque, uint32_t events)
{
    struct vmdev_virtio_queue_state *back = opaque;
    (void)events;
    if (!vmdev_eventfd_drain(return_fd(back)))
        return;
    vmdev_virtio_queue_kick(back->dev, back->index);
}

/* Without dev->lock: removing the watch waits for its callback. */
static void queue_return_close(struct vmdev_virtio_queue_state *back)
{
    if (back->watch)
        vmdev_event_loop_remove(back->loop, back->watch);
    back->watch = NULL;
    back->loop = NULL;
    /* Batches stop signalling it before it closes. */
    pthread_mutex_lock(&back->dev->lock);
    vmdev_virtio_lock_queues(back->dev);
    int fd = back->fd;
    __atomic_store_n(&back->fd, -1, __ATOMIC_RELEASE);
    vmdev_virtio_unlock_queues(back->dev);
    pthread_mutex_unlock(&back->dev->lock);
    if (fd >= 0)
        close(fd);
}

int vmdev_virtio_attach_queue(struct vmdev_virtio_device *dev, uint16_t index,
                              struct vmdev_event_loop *loop)
{
    if (index >= dev->num_queues)
        return -EINVAL;
    if (!loop)
        return -EINVAL;
    struct vmdev_virtio_queue_state *back = &dev->queue_state[index];
    queue_return_close(back);
    int fd = vmdev_eventfd_new();
    if (fd < 0)
        return -errno;
    back->loop = loop;
    back->watch = vmdev_event_loop_add(loop, fd, VMDEV_EVENT_IN,
                                       queue_returned, back);
    if (!back->watch) {
        int err = -errno;
        close(fd);
        back->loop = NULL;
        return err;
    }
    int ret = dev->ops->attach_queue ? dev->ops->attach_queue(dev, index, loop)
                                     : 0;
    if (ret) {
        vmdev_event_loop_remove(loop, back->watch);
        back->watch = NULL;
        back->loop = NULL;
        close(fd);
        return ret;
    }
    /* Batches are bounded only once the way back exists. */
    __atomic_store_n(&back->fd, fd, __ATOMIC_RELEASE);
    return 0;
}

uint16_t vmdev_virtio_queue_group(const struct vmdev_virtio_device *dev,
                                  uint16_t index)
{
    if (index >= dev->num_queues || !dev->ops->queue_group)
        return index;
    uint16_t group = dev->ops->queue_group(dev, index);
    return group < dev->num_queues ? group : index;
}

void vmdev_virtio_detach_queue(struct vmdev_virtio_device *dev, uint16_t index)
{
    if (index >= dev->num_queues)
        return;
    queue_return_close(&dev->queue_state[index]);
    if (dev->ops->attach_queue)
        (void)dev->ops->attach_queue(dev, index, NULL);
}
