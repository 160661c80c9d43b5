/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests from a hostile driver: the input is guest memory
 * (descriptor table, available ring, headers, ranges, data) plus a few
 * bytes choosing the features, the ring size, a write to the writeback
 * field and how often to notify. Requests run on the real I/O engine
 * against a small raw image, and every one still in flight when the
 * device is freed must finish cleanly.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_BASE 0x10000ull
#define RAM_SIZE 0x4000ull
#define DESC_GPA (RAM_BASE + 0x000)  /* up to 16 * 16 bytes */
#define AVAIL_GPA (RAM_BASE + 0x100) /* up to 6 + 2 * 16 */
#define USED_GPA (RAM_BASE + 0x200)  /* up to 6 + 8 * 16 */
#define QUEUE_SIZE 16
#define IMAGE_SIZE (64u << 10)
#define HEADER 4

static uint8_t ram[RAM_SIZE];
static struct vmdev_guest_memory *mem[2]; /* one region, two regions */
static struct vmdev_event_loop *loop;
static char image[] = "/tmp/vmdev-fuzz-blk-XXXXXX";

static void remove_image(void)
{
    unlink(image);
}

static void set_up_once(void)
{
    int fd = mkstemp(image);
    if (fd < 0 || ftruncate(fd, IMAGE_SIZE))
        abort();
    close(fd);
    atexit(remove_image);
    mem[0] = vdrv_mem_over(ram, RAM_BASE, RAM_SIZE, 1);
    mem[1] = vdrv_mem_over(ram, RAM_BASE, RAM_SIZE, 2);
    loop = vmdev_event_loop_new();
    if (!mem[0] || !mem[1] || !loop)
        abort();
}

static struct vmdev_virtio_blk *make_device(uint8_t flags)
{
    struct vmdev_block_options o = {
        .path = image, .format = VMDEV_BLOCK_FORMAT_RAW,
        .cache = flags & 0x01 ? VMDEV_BLOCK_CACHE_WRITETHROUGH
                              : VMDEV_BLOCK_CACHE_WRITEBACK,
        .readonly = flags & 0x02,
    };
    struct vmdev_virtio_blk_config cfg = {
        .block = vmdev_block_new(&o, NULL, 0),
        .num_queues = 1, .queue_size = QUEUE_SIZE,
        .discard = !(flags & 0x02) && (flags & 0x04),
        .engine = VMDEV_IO_ENGINE_AUTO,
    };
    if (!cfg.block)
        abort();
    struct vmdev_virtio_blk *blk =
        vmdev_virtio_blk_new("fuzz-blk", mem[(flags >> 3) & 1], &cfg);
    if (!blk)
        abort();
    return blk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    if (!loop)
        set_up_once();
    uint8_t flags = data[0], features = data[1], config = data[2],
            rounds = data[3] & 7;
    memset(ram, 0, sizeof(ram));
    size_t body = size - HEADER;
    memcpy(ram, data + HEADER, body < RAM_SIZE ? body : RAM_SIZE);

    struct vmdev_virtio_blk *blk = make_device(flags);
    struct vmdev_virtio_device *dev = vmdev_virtio_blk_device(blk);
    if (vmdev_virtio_attach_queue(dev, 0, loop))
        abort();
    pthread_mutex_lock(&dev->lock);
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER);
    /* The offered low bits the input picks (FLUSH, CONFIG_WCE, DISCARD,
     * WRITE_ZEROES among them), always VERSION_1. */
    uint32_t low = (uint32_t)features << 8 | features >> 4 |
                   (uint32_t)(flags & 0xf0) << 24;
    vmdev_virtio_set_driver_features(dev, 0, low);
    vmdev_virtio_set_driver_features(dev, 1, 1);
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER |
                                     VMDEV_VIRTIO_STATUS_FEATURES_OK);
    /* The writeback field, with any value. */
    vmdev_virtio_write_config(dev, 32, &config, 1);
    struct vmdev_virtqueue_config *q = &dev->queues[0].config;
    q->size = (uint16_t)(1u << ((flags >> 4) % 5)); /* 1 to 16 */
    q->desc_addr = DESC_GPA;
    q->driver_addr = AVAIL_GPA;
    q->device_addr = USED_GPA;
    q->ready = true;
    vmdev_virtio_set_status(dev, 0xf);
    pthread_mutex_unlock(&dev->lock);

    for (unsigned i = 0; i < rounds; i++) {
        vmdev_event_loop_run_once(loop, 0);
        vmdev_virtio_queue_kick(dev, 0);
    }
    vmdev_event_loop_run_once(loop, 0);
    if (config & 1) {
        /* A reset with requests possibly in flight. */
        pthread_mutex_lock(&dev->lock);
        vmdev_virtio_set_status(dev, 0);
        pthread_mutex_unlock(&dev->lock);
    }
    vmdev_virtio_detach_queue(dev, 0);
    vmdev_virtio_blk_free(blk);
    return 0;
}
