/* SPDX-License-Identifier: MIT */
#include "virtio_echo_device.h"

#include <string.h>

static struct echo_device *to_echo(struct vmdev_virtio_device *dev)
{
    return (struct echo_device *)dev;
}

static void echo_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                             void *data, uint32_t len)
{
    memcpy(data, to_echo(dev)->config + offset, len);
}

static void echo_write_config(struct vmdev_virtio_device *dev,
                              uint32_t offset, const void *data, uint32_t len)
{
    memcpy(to_echo(dev)->config + offset, data, len);
}

static int echo_activate(struct vmdev_virtio_device *dev)
{
    to_echo(dev)->activations++;
    return 0;
}

static void echo_reset(struct vmdev_virtio_device *dev)
{
    to_echo(dev)->resets++;
}

static void echo_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct echo_device *e = to_echo(dev);
    struct vmdev_virtqueue *vq = &dev->queues[index];
    const char *why = NULL;
    int ret;
    while ((ret = vmdev_virtqueue_pop(vq, &e->chain, &why)) == 1) {
        struct vmdev_virtqueue_reader r;
        struct vmdev_virtqueue_writer w;
        uint8_t buf[256];
        size_t n;
        vmdev_virtqueue_reader_init(&r, &e->chain);
        vmdev_virtqueue_writer_init(&w, &e->chain);
        while ((n = vmdev_virtqueue_read(&r, buf, sizeof(buf))) > 0 &&
               vmdev_virtqueue_write(&w, buf, n) > 0)
            ;
        vmdev_virtqueue_push(vq, e->chain.head, (uint32_t)w.written);
        e->requests++;
    }
    if (ret < 0) {
        vmdev_virtio_guest_error(dev, "queue %u: %s", index, why);
        return;
    }
    vmdev_virtio_interrupt_queue(dev, index);
}

static const struct vmdev_virtio_device_ops echo_ops = {
    .read_config = echo_read_config,
    .write_config = echo_write_config,
    .activate = echo_activate,
    .reset = echo_reset,
    .queue_kick = echo_queue_kick,
};

int echo_device_init(struct echo_device *e, const char *name,
                     uint16_t num_queues, uint16_t queue_max_size,
                     const struct vmdev_guest_memory *mem)
{
    memset(e, 0, sizeof(*e));
    int ret = vmdev_virtio_init(&e->dev, name, ECHO_DEVICE_ID, &echo_ops,
                                ECHO_FEATURES, ECHO_CONFIG_LEN, num_queues,
                                queue_max_size, mem);
    memcpy(e->config, "\x01\x00\x34\x12\x78\x56\x34\x12", ECHO_CONFIG_LEN);
    return ret;
}

void echo_device_change_config(struct echo_device *e, uint32_t offset,
                               uint8_t value)
{
    pthread_mutex_lock(&e->dev.lock);
    if (offset < ECHO_CONFIG_LEN)
        e->config[offset] = value;
    vmdev_virtio_interrupt_config(&e->dev);
    pthread_mutex_unlock(&e->dev.lock);
}
