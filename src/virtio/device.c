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

#include "vmdev/log.h"
#include "vmdev/virtio.h"

#define STATE_VERSION 1

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
    if (!dev->queues)
        return -ENOMEM;
    for (uint16_t i = 0; i < num_queues; i++)
        vmdev_vq_init(&dev->queues[i], queue_max_size);
    dev->name = name;
    dev->device_id = device_id;
    dev->ops = ops;
    /* A modern-only device: the driver must accept VERSION_1 (6.1). */
    dev->device_features = device_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
    dev->config_len = config_len;
    dev->num_queues = num_queues;
    dev->mem = mem;
    pthread_mutex_init(&dev->lock, NULL);
    return 0;
}

void vmdev_virtio_destroy(struct vmdev_virtio_device *dev)
{
    if (dev->ops->stop)
        dev->ops->stop(dev);
    free(dev->queues);
    dev->queues = NULL;
    pthread_mutex_destroy(&dev->lock);
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
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
    if (select > 1 || (dev->status & VIRTIO_STATUS_FEATURES_OK))
        return;
    unsigned shift = 32 * select;
    uint64_t window = UINT64_C(0xffffffff) << shift;
    uint64_t accepted = ((uint64_t)value << shift) & dev->device_features;
    dev->driver_features = (dev->driver_features & ~window) | accepted;
}

bool vmdev_virtio_has_feature(const struct vmdev_virtio_device *dev,
                              unsigned bit)
{
    return bit < 64 && (dev->driver_features & VIRTIO_BIT(bit));
}

bool vmdev_virtio_is_running(const struct vmdev_virtio_device *dev)
{
    return (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(dev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void device_reset(struct vmdev_virtio_device *dev)
{
    if (dev->ops->reset)
        dev->ops->reset(dev);
    for (uint16_t i = 0; i < dev->num_queues; i++)
        vmdev_vq_reset(&dev->queues[i]);
    dev->driver_features = 0;
    dev->status = 0;
}

void vmdev_virtio_guest_error(struct vmdev_virtio_device *dev,
                              const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    dev->guest_errors++;
    vmdev_log_guest("%s: %s; device needs reset", dev->name, message);
    if (dev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    dev->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* 2.1.2: with DRIVER_OK set, tell the driver by a config change. */
    if (dev->status & VIRTIO_STATUS_DRIVER_OK)
        vmdev_virtio_notify_config(dev);
}

/* DRIVER_OK: check and map every queue the driver enabled, then start. */
static void device_activate(struct vmdev_virtio_device *dev)
{
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        struct vmdev_virtqueue *vq = &dev->queues[i];
        const char *why = NULL;
        if (!vq->config.ready)
            continue;
        if (vmdev_vq_enable(vq, dev->mem, dev->driver_features, &why)) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", i, why);
            return;
        }
    }
    if (dev->ops->activate && dev->ops->activate(dev))
        vmdev_virtio_guest_error(dev, "device could not start");
}

void vmdev_virtio_set_status(struct vmdev_virtio_device *dev, uint8_t status)
{
    if (status == 0) {
        device_reset(dev);
        return;
    }
    uint8_t old = dev->status;
    uint8_t added = status & ~old;

    /* 3.1.1: FEATURES_OK sticks only for a feature set we can serve; a
     * modern device needs VERSION_1 (6.1). The driver reads the status
     * back and gives up when the bit did not stay. */
    if ((added & VIRTIO_STATUS_FEATURES_OK) &&
        !vmdev_virtio_has_feature(dev, VIRTIO_F_VERSION_1))
        status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;

    /* NEEDS_RESET is the device's to set and only a reset clears it. */
    status &= (uint8_t)~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    dev->status = status | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

    if (added & VIRTIO_STATUS_DRIVER_OK) {
        /* 3.1.1: DRIVER_OK comes after FEATURES_OK. */
        if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
            vmdev_virtio_guest_error(dev, "DRIVER_OK without FEATURES_OK");
            return;
        }
        if (!(old & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
            device_activate(dev);
    }
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

void vmdev_virtio_queue_notify(struct vmdev_virtio_device *dev,
                               uint16_t index)
{
    if (!vmdev_virtio_is_running(dev) || index >= dev->num_queues ||
        !dev->queues[index].enabled)
        return;
    if (dev->ops->queue_notify)
        dev->ops->queue_notify(dev, index);
}

void vmdev_virtio_notify_queue(struct vmdev_virtio_device *dev,
                               uint16_t index)
{
    if (index >= dev->num_queues ||
        !vmdev_vq_should_notify(&dev->queues[index]))
        return;
    if (dev->transport.interrupt)
        dev->transport.interrupt(dev->transport.opaque, VMDEV_VIRTIO_IRQ_QUEUE,
                                 index);
}

void vmdev_virtio_notify_config(struct vmdev_virtio_device *dev)
{
    dev->config_generation++;
    if (dev->transport.interrupt)
        dev->transport.interrupt(dev->transport.opaque,
                                 VMDEV_VIRTIO_IRQ_CONFIG, 0);
}

void vmdev_virtio_process_queue_async(struct vmdev_virtio_device *dev,
                                      uint16_t index,
                                      struct vmdev_vq_chain *chain,
                                      vmdev_virtio_chain_fn *serve,
                                      vmdev_virtio_room_fn *has_room)
{
    struct vmdev_virtqueue *vq = &dev->queues[index];
    const char *why = NULL;
    bool pushed = false;
    for (;;) {
        int ret = 0;
        bool full = false;
        while (!(full = has_room && !has_room(dev, index)) &&
               (ret = vmdev_vq_pop(vq, chain, &why)) == 1) {
            int64_t written = serve(dev, chain, &why);
            if (written == VMDEV_VIRTIO_CHAIN_HELD)
                continue;
            if (written < 0 || written > UINT32_MAX) {
                ret = -EINVAL;
                break;
            }
            vmdev_vq_push(vq, chain->head, (uint32_t)written);
            pushed = true;
        }
        if (ret < 0) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", index,
                                     why ? why : "bad request");
            return;
        }
        /* Out of room: the device comes back when it has some. */
        if (full)
            break;
        /* 2.7.10: publish avail_event, then re-check the ring. */
        vmdev_vq_set_notification(vq, true);
        if (!vmdev_vq_has_available(vq))
            break;
    }
    if (pushed)
        vmdev_virtio_notify_queue(dev, index);
}

void vmdev_virtio_process_queue(struct vmdev_virtio_device *dev,
                                uint16_t index, struct vmdev_vq_chain *chain,
                                vmdev_virtio_chain_fn *serve)
{
    vmdev_virtio_process_queue_async(dev, index, chain, serve, NULL);
}

int vmdev_virtio_attach_queue(struct vmdev_virtio_device *dev, uint16_t index,
                              struct vmdev_event_loop *loop)
{
    if (index >= dev->num_queues)
        return -EINVAL;
    if (!loop)
        return -EINVAL;
    return dev->ops->attach_queue ? dev->ops->attach_queue(dev, index, loop)
                                  : 0;
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
    if (index < dev->num_queues && dev->ops->attach_queue)
        (void)dev->ops->attach_queue(dev, index, NULL);
}
