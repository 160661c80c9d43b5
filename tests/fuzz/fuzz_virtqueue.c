/* SPDX-License-Identifier: MIT */
/*
 * The chain walker and cursors on guest memory the input writes: the
 * descriptor table, indirect tables, the available ring and its index are
 * all the fuzzer's. Every chain popped is read and written to its end and
 * returned, as a device would; a refusal must come with a reason.
 */
#include <stdlib.h>
#include <string.h>

#include "virtio_driver.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_BASE 0x10000ull
/* Small enough that an input of libFuzzer's 4 KiB default covers the
 * rings and most buffers; the two halves can be separate regions. */
#define RAM_SIZE 0x2000ull
#define MAX_QUEUE 64
#define DESC_GPA (RAM_BASE + 0x000)  /* up to 64 * 16 bytes */
#define AVAIL_GPA (RAM_BASE + 0x400) /* up to 6 + 2 * 64 */
#define USED_GPA (RAM_BASE + 0x500)  /* up to 6 + 8 * 64 */
#define HEADER 2

static uint8_t ram[RAM_SIZE];
static struct vmdev_virtqueue_chain chain;

static void consume(struct vmdev_virtqueue *vq)
{
    static uint8_t scratch[4096];
    struct vmdev_virtqueue_reader r;
    struct vmdev_virtqueue_writer w;
    vmdev_virtqueue_reader_init(&r, &chain);
    while (vmdev_virtqueue_read(&r, scratch, sizeof(scratch)))
        ;
    if (r.remaining)
        abort(); /* the reader stopped short of what the walker counted */
    vmdev_virtqueue_writer_init(&w, &chain);
    while (vmdev_virtqueue_write(&w, scratch, sizeof(scratch)))
        ;
    if (w.written != chain.writable_len)
        abort();
    vmdev_virtqueue_push(vq, chain.head, (uint32_t)w.written);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    uint8_t flags = data[0], rounds = data[1];
    memset(ram, 0, sizeof(ram));
    size_t body = size - HEADER;
    memcpy(ram, data + HEADER, body < RAM_SIZE ? body : RAM_SIZE);

    struct vmdev_guest_memory *mem = vdrv_mem_over(ram, RAM_BASE, RAM_SIZE, flags & 0x40 ? 2 : 1);
    if (!mem)
        return 0;
    uint64_t features = VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1);
    if (flags & 0x10)
        features |= VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC);
    if (flags & 0x20)
        features |= VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX);

    struct vmdev_virtqueue vq;
    vmdev_virtqueue_init(&vq, MAX_QUEUE);
    vq.config.size = (uint16_t)(1u << (flags & 0x07)); /* 128: refused */
    vq.config.desc_addr = DESC_GPA;
    vq.config.driver_addr = AVAIL_GPA;
    vq.config.device_addr = USED_GPA;
    const char *why = NULL;
    if (vmdev_virtqueue_enable(&vq, mem, features, &why)) {
        if (!why)
            abort();
        vmdev_guest_memory_free(mem);
        return 0;
    }
    for (unsigned i = 0; i <= rounds; i++) {
        why = NULL;
        int ret = vmdev_virtqueue_pop(&vq, &chain, &why);
        if (ret < 0 && !why)
            abort();
        if (ret <= 0)
            break;
        if (chain.readable_len + chain.writable_len > UINT32_MAX)
            abort();
        consume(&vq);
        (void)vmdev_virtqueue_should_interrupt(&vq);
        vmdev_virtqueue_set_notification(&vq, i & 1);
    }
    vmdev_guest_memory_free(mem);
    return 0;
}
