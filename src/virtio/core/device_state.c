/* SPDX-License-Identifier: MIT */
/*
 * Save and restore of a virtio device's common state: negotiated
 * features, status, and each queue's configuration and ring positions.
 * A restored queue goes through the same enable checks as one the driver
 * set up, so a snapshot cannot point a device anywhere a guest could not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdev/virtio_device.h"


#define STATE_VERSION 1

static void queue_key(char *key, size_t size, unsigned index,
                      const char *field)
{
    snprintf(key, size, "q%u.%s", index, field);
}

static void save_queue(struct vmdev_state_writer *w, unsigned index,
                       const struct vmdev_virtqueue *vq)
{
    char key[32];
#define PUT(type, field, value)                                                \
    do {                                                                       \
        queue_key(key, sizeof(key), index, field);                             \
        vmdev_state_put_##type(w, key, value);                                 \
    } while (0)
    PUT(u16, "size", vq->config.size);
    PUT(u8, "ready", vq->config.ready);
    PUT(u64, "desc", vq->config.desc_addr);
    PUT(u64, "driver", vq->config.driver_addr);
    PUT(u64, "device", vq->config.device_addr);
    PUT(u16, "vector", vq->config.msix_vector);
    PUT(u8, "enabled", vq->enabled);
    PUT(u16, "last_avail", vq->last_avail_idx);
    PUT(u16, "used", vq->used_idx);
    PUT(u16, "signalled", vq->signalled_used);
    PUT(u8, "signalled_valid", vq->signalled_used_valid);
#undef PUT
}

void vmdev_virtio_save(struct vmdev_virtio_device *dev,
                       struct vmdev_state_writer *w)
{
    vmdev_state_begin_section(w, dev->name, STATE_VERSION);
    vmdev_state_put_u32(w, "device_id", dev->device_id);
    vmdev_state_put_u64(w, "device_features", dev->device_features);
    vmdev_state_put_u64(w, "driver_features", dev->driver_features);
    vmdev_state_put_u8(w, "status", vmdev_virtio_get_status(dev));
    vmdev_state_put_u8(w, "config_generation", dev->config_generation);
    vmdev_state_put_u16(w, "num_queues", dev->num_queues);
    for (uint16_t i = 0; i < dev->num_queues; i++)
        save_queue(w, i, &dev->queues[i]);
    if (dev->ops->save)
        dev->ops->save(dev, w);
    vmdev_state_end_section(w);
}

struct queue_image {
    uint16_t size, vector, last_avail, used, signalled;
    uint8_t ready, enabled, signalled_valid;
    uint64_t desc, driver, device;
};

static int load_queue(const struct vmdev_state_section *s, unsigned index,
                      struct queue_image *q)
{
    char key[32];
    int ret = 0;
#define GET(type, field, out)                                                  \
    do {                                                                       \
        queue_key(key, sizeof(key), index, field);                             \
        if (!ret)                                                              \
            ret = vmdev_state_get_##type(s, key, out);                         \
    } while (0)
    GET(u16, "size", &q->size);
    GET(u8, "ready", &q->ready);
    GET(u64, "desc", &q->desc);
    GET(u64, "driver", &q->driver);
    GET(u64, "device", &q->device);
    GET(u16, "vector", &q->vector);
    GET(u8, "enabled", &q->enabled);
    GET(u16, "last_avail", &q->last_avail);
    GET(u16, "used", &q->used);
    GET(u16, "signalled", &q->signalled);
    GET(u8, "signalled_valid", &q->signalled_valid);
#undef GET
    return ret ? -EINVAL : 0;
}

static int apply_queue(struct vmdev_virtio_device *dev,
                       struct vmdev_virtqueue *vq, const struct queue_image *q)
{
    vmdev_virtqueue_reset(vq);
    vq->config.size = q->size;
    vq->config.ready = q->ready;
    vq->config.desc_addr = q->desc;
    vq->config.driver_addr = q->driver;
    vq->config.device_addr = q->device;
    vq->config.msix_vector = q->vector;
    if (!q->enabled)
        return q->size <= vq->config.max_size ? 0 : -EINVAL;
    const char *why;
    if (vmdev_virtqueue_enable(vq, dev->mem, dev->driver_features, &why))
        return -EINVAL;
    vq->last_avail_idx = q->last_avail;
    vq->used_idx = q->used;
    vq->signalled_used = q->signalled;
    vq->signalled_used_valid = q->signalled_valid;
    return 0;
}

static int restore_locked(struct vmdev_virtio_device *dev,
                          const void *snapshot, size_t len)
{
    struct vmdev_state_section s;
    int ret = vmdev_state_open_section(snapshot, len, dev->name,
                                       STATE_VERSION, &s);
    if (ret)
        return ret;

    uint32_t device_id;
    uint64_t device_features, driver_features;
    uint8_t status, generation;
    uint16_t num_queues;
    if (vmdev_state_get_u32(&s, "device_id", &device_id) ||
        vmdev_state_get_u64(&s, "device_features", &device_features) ||
        vmdev_state_get_u64(&s, "driver_features", &driver_features) ||
        vmdev_state_get_u8(&s, "status", &status) ||
        vmdev_state_get_u8(&s, "config_generation", &generation) ||
        vmdev_state_get_u16(&s, "num_queues", &num_queues))
        return -EINVAL;
    /* The snapshot must describe this very device, and what the driver
     * accepted must be what we offer. */
    if (device_id != dev->device_id ||
        device_features != dev->device_features ||
        (driver_features & ~device_features) ||
        num_queues != dev->num_queues)
        return -EINVAL;

    struct queue_image *queues = calloc(num_queues, sizeof(*queues));
    if (!queues)
        return -ENOMEM;
    for (uint16_t i = 0; i < num_queues; i++) {
        if (load_queue(&s, i, &queues[i])) {
            free(queues);
            return -EINVAL;
        }
    }

    dev->driver_features = driver_features;
    __atomic_store_n(&dev->status, status, __ATOMIC_RELEASE);
    __atomic_store_n(&dev->config_generation, generation, __ATOMIC_RELEASE);
    for (uint16_t i = 0; i < num_queues; i++) {
        if (apply_queue(dev, &dev->queues[i], &queues[i])) {
            free(queues);
            for (uint16_t j = 0; j < num_queues; j++)
                vmdev_virtqueue_reset(&dev->queues[j]);
            dev->driver_features = 0;
            __atomic_store_n(&dev->status, 0, __ATOMIC_RELEASE);
            return -EINVAL;
        }
    }
    free(queues);
    if (dev->ops->restore && dev->ops->restore(dev, &s))
        return -EINVAL;
    return 0;
}

int vmdev_virtio_restore(struct vmdev_virtio_device *dev,
                         const void *snapshot, size_t len)
{
    return restore_locked(dev, snapshot, len);
}
