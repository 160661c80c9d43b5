/* SPDX-License-Identifier: MIT */
/* virtio-rng (virtio 1.2, 5.4) driven as a transport and driver would. */
#include <errno.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/virtio_rng.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (2u << 20)

static struct vdrv_mem mem;
static struct vdrv_queue q;
static unsigned interrupts;
static uint8_t next_byte; /* the fake source counts 0, 1, 2, ... */
static bool source_broken;

static ssize_t counting_source(void *opaque, void *buf, size_t len)
{
    if (source_broken)
        return -EIO;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = next_byte++;
    return (ssize_t)len;
}

static void count_interrupt(void *opaque, enum vmdev_virtio_irq_reason r,
                            uint16_t queue)
{
    interrupts++;
}

static struct vmdev_virtio_rng *start(unsigned regions)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, regions))
        abort();
    interrupts = 0;
    next_byte = 0;
    source_broken = false;
    struct vmdev_rng_source src = { counting_source, NULL };
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new("rng0", mem.mem, &src);
    if (!rng)
        abort();
    struct vmdev_virtio_device *dev = vmdev_virtio_rng_device(rng);
    dev->transport.interrupt = count_interrupt;
    vdrv_accept_all_features(dev);
    vdrv_queue_init(&q, &mem, 256, true);
    vdrv_queue_config(&q, &dev->queues[0].config);
    vmdev_virtio_set_status(dev, 0xf);
    return rng;
}

static void kick(struct vmdev_virtio_rng *rng)
{
    vdrv_notify(vmdev_virtio_rng_device(rng), 0);
}

/* Request len bytes; returns the used length, checks the bytes. */
static bool request(struct vmdev_virtio_rng *rng, uint32_t len, bool indirect,
                    uint32_t expect)
{
    struct vdrv_buf in = { vdrv_alloc(&mem, len, 8), len };
    uint8_t first = next_byte;
    if (vdrv_add(&q, NULL, 0, &in, 1, indirect) < 0)
        return false;
    kick(rng);
    uint32_t id, used;
    if (!vdrv_get_used(&q, &id, &used) || used != expect)
        return false;
    for (uint32_t i = 0; i < used; i++)
        if (*(uint8_t *)vdrv_host(&mem, in.gpa + i) != (uint8_t)(first + i))
            return false;
    return true;
}

static void fills_requests_with_source_bytes(void)
{
    struct vmdev_virtio_rng *rng = start(1);
    CHECK(vmdev_virtio_rng_device(rng)->status & 4);
    CHECK(request(rng, 1, false, 1));
    CHECK(request(rng, 4096, false, 4096));
    CHECK(request(rng, 5000, true, 5000));
    CHECK_EQ(interrupts, 3);
    /* Larger than the cap: the device gives the cap. */
    CHECK(request(rng, 100000, false, VMDEV_VIRTIO_RNG_MAX_REQUEST));
    vmdev_virtio_rng_free(rng);
}

static void request_across_regions(void)
{
    struct vmdev_virtio_rng *rng = start(2);
    uint64_t boundary = RAM_BASE + RAM_SIZE / 2;
    struct vdrv_buf in = { boundary - 100, 200 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    kick(rng);
    uint32_t id, used;
    CHECK(vdrv_get_used(&q, &id, &used));
    CHECK_EQ(used, 200);
    CHECK_EQ(*(uint8_t *)vdrv_host(&mem, boundary + 99), 199);
    vmdev_virtio_rng_free(rng);
}

static void several_requests_one_interrupt(void)
{
    struct vmdev_virtio_rng *rng = start(1);
    struct vdrv_buf in = { vdrv_alloc(&mem, 64, 8), 64 };
    for (int i = 0; i < 5; i++)
        CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    kick(rng);
    uint32_t id, used;
    unsigned n = 0;
    while (vdrv_get_used(&q, &id, &used))
        n++;
    CHECK_EQ(n, 5);
    CHECK_EQ(interrupts, 1);
    /* EVENT_IDX: the device asked to be kicked past what it consumed. */
    CHECK_EQ(vdrv_avail_event(&q), 5);
    vmdev_virtio_rng_free(rng);
}

static void readable_only_request_gets_nothing(void)
{
    struct vmdev_virtio_rng *rng = start(1);
    struct vdrv_buf out = { vdrv_alloc(&mem, 64, 8), 64 };
    CHECK(vdrv_add(&q, &out, 1, NULL, 0, false) >= 0);
    kick(rng);
    uint32_t id, used;
    CHECK(vdrv_get_used(&q, &id, &used));
    CHECK_EQ(used, 0);
    CHECK(!(vmdev_virtio_rng_device(rng)->status & 0x40));
    vmdev_virtio_rng_free(rng);
}

static void broken_source_completes_empty(void)
{
    struct vmdev_virtio_rng *rng = start(1);
    source_broken = true;
    CHECK(request(rng, 64, false, 0));
    vmdev_virtio_rng_free(rng);
}

static void malformed_chain_needs_reset(void)
{
    struct vmdev_virtio_rng *rng = start(1);
    vdrv_set_desc(&q, 0, RAM_BASE + RAM_SIZE, 64, VDRV_DESC_F_WRITE, 0);
    vdrv_publish(&q, 0);
    kick(rng);
    struct vmdev_virtio_device *dev = vmdev_virtio_rng_device(rng);
    CHECK(dev->status & 0x40);
    CHECK_EQ(dev->guest_errors, 1);
    CHECK_EQ(vdrv_used_idx(&q), 0);
    /* Further kicks are ignored until reset. */
    struct vdrv_buf in = { vdrv_alloc(&mem, 64, 8), 64 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    kick(rng);
    CHECK_EQ(vdrv_used_idx(&q), 0);
    vmdev_virtio_rng_free(rng);
}

static void uses_getrandom_by_default(void)
{
    vdrv_mem_release(&mem);
    CHECK_EQ(vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1), 0);
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new("rng0", mem.mem, NULL);
    CHECK(rng != NULL);
    struct vmdev_virtio_device *dev = vmdev_virtio_rng_device(rng);
    vmdev_virtio_set_status(dev, 3);
    vmdev_virtio_set_driver_features(dev, 1, 1);
    vmdev_virtio_set_status(dev, 0xb);
    vdrv_queue_init(&q, &mem, 16, false);
    vdrv_queue_config(&q, &dev->queues[0].config);
    vmdev_virtio_set_status(dev, 0xf);
    struct vdrv_buf in = { vdrv_alloc(&mem, 64, 8), 64 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    kick(rng);
    uint32_t id, used;
    CHECK(vdrv_get_used(&q, &id, &used));
    CHECK_EQ(used, 64);
    static const uint8_t zeros[64];
    CHECK(memcmp(vdrv_host(&mem, in.gpa), zeros, 64) != 0);
    vmdev_virtio_rng_free(rng);
}

TEST_MAIN(TEST(fills_requests_with_source_bytes),
          TEST(request_across_regions), TEST(several_requests_one_interrupt),
          TEST(readable_only_request_gets_nothing),
          TEST(broken_source_completes_empty),
          TEST(malformed_chain_needs_reset), TEST(uses_getrandom_by_default))
