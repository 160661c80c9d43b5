/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (virtio 1.2, 5.4). Requests are served on the thread that
 * delivers the notification: filling a buffer from getrandom() is short
 * and never waits once the host's pool is initialised.
 */
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmdev/log.h"

#define QUEUE_SIZE 256
#define CHUNK 4096

struct vmdev_virtio_rng {
    struct vmdev_virtio_device dev; /* first: ops get this pointer */
    struct vmdev_rng_source source;
    struct vmdev_virtqueue_chain chain;
    uint64_t bytes_given;
    struct vmdev_ratelimit source_log_limit; /* a failing source's lines */
};

static ssize_t host_getrandom(void *opaque, void *buf, size_t len)
{
    ssize_t n;
    do
        n = getrandom(buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* Fill the chain's writable part, up to the per-request cap. */
static uint32_t fill_chain(struct vmdev_virtio_rng *rng)
{
    uint8_t buf[CHUNK];
    struct vmdev_virtqueue_writer w;
    vmdev_virtqueue_writer_init(&w, &rng->chain);
    while (w.remaining && w.written < VMDEV_VIRTIO_RNG_MAX_REQUEST) {
        size_t want = w.remaining < sizeof(buf) ? w.remaining : sizeof(buf);
        if (want > VMDEV_VIRTIO_RNG_MAX_REQUEST - w.written)
            want = VMDEV_VIRTIO_RNG_MAX_REQUEST - w.written;
        ssize_t got = rng->source.fill(rng->source.opaque, buf, want);
        if (got <= 0) {
            vmdev_log_limited(rng->dev.log, &rng->source_log_limit,
                              VMDEV_LOG_WARN, "%s: entropy source failed (%zd)",
                              rng->dev.name, got);
            break;
        }
        vmdev_virtqueue_write(&w, buf, (size_t)got);
    }
    return (uint32_t)w.written;
}

static int64_t serve_request(struct vmdev_virtio_device *dev,
                             struct vmdev_virtqueue_chain *chain, const char **why)
{
    struct vmdev_virtio_rng *rng = (struct vmdev_virtio_rng *)dev;
    /* 5.4.6.1: a buffer with nothing writable gets nothing. */
    if (!chain->writable_len)
        vmdev_log_guest(dev->log, &dev->guest_log_limit,
                        "%s: request without a writable buffer", dev->name);
    uint32_t written = fill_chain(rng);
    rng->bytes_given += written;
    return written;
}

static void rng_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtio_rng *rng = (struct vmdev_virtio_rng *)dev;
    vmdev_virtio_process_queue(dev, index, &rng->chain, serve_request);
}

static void rng_destroy(struct vmdev_virtio_device *dev)
{
    free(dev);
}

static const struct vmdev_virtio_device_ops rng_ops = {
    .queue_kick = rng_queue_kick,
    .destroy = rng_destroy,
};

struct vmdev_virtio_rng *vmdev_virtio_rng_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_rng_source *source)
{
    struct vmdev_virtio_rng *rng = calloc(1, sizeof(*rng));
    if (!rng)
        return NULL;
    if (vmdev_virtio_init(&rng->dev, name, VMDEV_VIRTIO_ID_RNG, &rng_ops,
                          VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
                              VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX),
                          0, 1, QUEUE_SIZE, mem)) {
        free(rng);
        return NULL;
    }
    if (source && source->fill)
        rng->source = *source;
    else
        rng->source.fill = host_getrandom;
    return rng;
}

struct vmdev_virtio_device *vmdev_virtio_rng_device(struct vmdev_virtio_rng *rng)
{
    return &rng->dev;
}

void vmdev_virtio_rng_free(struct vmdev_virtio_rng *rng)
{
    if (rng)
        vmdev_virtio_free(&rng->dev); /* frees rng through ops->destroy */
}
