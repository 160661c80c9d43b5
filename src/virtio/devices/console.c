/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2, 5.3), one port: queue 0 is port 0's
 * receiveq, queue 1 its transmitq (5.3.2).
 */
#include "vmdev/virtio_console.h"

#include <pthread.h>
#include <stdlib.h>

#include "vmdev/log.h"
#include "vmdev/virtio_device.h"

#define RECEIVEQ 0
#define TRANSMITQ 1
#define QUEUE_SIZE 128
/* struct virtio_console_config (5.3.4): cols, rows, max_nr_ports,
 * emerg_wr; none of their features is offered, so all read zero. */
#define CONFIG_LEN 12

struct vmdev_virtio_console {
    struct vmdev_virtio_device dev; /* first: ops get this pointer */
    struct vmdev_console_output output;
    struct vmdev_virtqueue_chain chain;    /* transmit, on the queue's thread */
    struct vmdev_virtqueue_chain rx_chain; /* receive, under dev.lock */
    uint64_t bytes_out, bytes_in;
};

static void console_read_config(struct vmdev_virtio_device *dev,
                                uint32_t offset, void *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        ((uint8_t *)data)[i] = 0;
}

/* Everything readable in a transmit chain goes out, in order. */
static int64_t transmit(struct vmdev_virtio_device *dev,
                        struct vmdev_virtqueue_chain *chain, const char **why)
{
    struct vmdev_virtio_console *con = (struct vmdev_virtio_console *)dev;
    uint8_t buf[1024];
    struct vmdev_virtqueue_reader r;
    size_t n;
    vmdev_virtqueue_reader_init(&r, chain);
    while ((n = vmdev_virtqueue_read(&r, buf, sizeof(buf))) > 0) {
        if (con->output.write)
            con->output.write(con->output.opaque, buf, n);
        con->bytes_out += n;
    }
    return 0;
}

static void console_queue_kick(struct vmdev_virtio_device *dev,
                                 uint16_t index)
{
    struct vmdev_virtio_console *con = (struct vmdev_virtio_console *)dev;
    if (index == TRANSMITQ)
        vmdev_virtio_process_queue(dev, index, &con->chain, transmit);
    /* Receive buffers wait for host input: tell the host there is room. */
    else if (index == RECEIVEQ && con->output.input_ready)
        con->output.input_ready(con->output.opaque);
}

size_t vmdev_virtio_console_receive(struct vmdev_virtio_console *con,
                                    const void *data, size_t len)
{
    struct vmdev_virtio_device *dev = &con->dev;
    struct vmdev_virtqueue *vq = &dev->queues[RECEIVEQ];
    const uint8_t *bytes = data;
    size_t done = 0;
    bool pushed = false;
    pthread_mutex_lock(&dev->lock);
    if (!vmdev_virtio_is_running(dev) || !vq->enabled) {
        pthread_mutex_unlock(&dev->lock);
        return 0;
    }
    while (done < len) {
        const char *why = NULL;
        int ret = vmdev_virtqueue_pop(vq, &con->rx_chain, &why);
        if (ret < 0) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", RECEIVEQ, why);
            break;
        }
        if (ret == 0) {
            /* 2.7.10: ask for a kick when buffers come, then look again
             * so that one added meanwhile is not missed. */
            vmdev_virtqueue_set_notification(vq, true);
            if (!vmdev_virtqueue_has_available(vq))
                break;
            continue;
        }
        /* 5.3.6.1: receive buffers are device-writable; a chain with no
         * room takes nothing and goes back empty. */
        struct vmdev_virtqueue_writer w;
        vmdev_virtqueue_writer_init(&w, &con->rx_chain);
        size_t n = vmdev_virtqueue_write(&w, bytes + done, len - done);
        vmdev_virtqueue_push(vq, con->rx_chain.head, (uint32_t)n);
        pushed = true;
        done += n;
    }
    con->bytes_in += done;
    if (pushed)
        vmdev_virtio_interrupt_queue(dev, RECEIVEQ);
    pthread_mutex_unlock(&dev->lock);
    return done;
}

/* DRIVER_OK: Linux posts receive buffers (and may write) before it sets
 * DRIVER_OK, and kicks then go unheard (3.1.1: no used buffers before
 * it); serve what waits now. */
static int console_activate(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_console *con = (struct vmdev_virtio_console *)dev;
    if (dev->queues[TRANSMITQ].enabled)
        vmdev_virtio_process_queue(dev, TRANSMITQ, &con->chain, transmit);
    if (dev->queues[RECEIVEQ].enabled && con->output.input_ready)
        con->output.input_ready(con->output.opaque);
    return 0;
}

static void console_destroy(struct vmdev_virtio_device *dev)
{
    free(dev);
}

static const struct vmdev_virtio_device_ops console_ops = {
    .read_config = console_read_config,
    .activate = console_activate,
    .queue_kick = console_queue_kick,
    .destroy = console_destroy,
};

struct vmdev_virtio_console *vmdev_virtio_console_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_console_output *output)
{
    struct vmdev_virtio_console *con = calloc(1, sizeof(*con));
    if (!con)
        return NULL;
    if (vmdev_virtio_init(&con->dev, name, VMDEV_VIRTIO_ID_CONSOLE,
                          &console_ops,
                          VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
                              VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX),
                          CONFIG_LEN, 2, QUEUE_SIZE, mem)) {
        free(con);
        return NULL;
    }
    if (output)
        con->output = *output;
    return con;
}

struct vmdev_virtio_device *
vmdev_virtio_console_device(struct vmdev_virtio_console *con)
{
    return &con->dev;
}

void vmdev_virtio_console_free(struct vmdev_virtio_console *con)
{
    if (con)
        vmdev_virtio_free(&con->dev);
}
