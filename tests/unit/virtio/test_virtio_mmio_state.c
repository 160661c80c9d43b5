/* SPDX-License-Identifier: MIT */
/*
 * Save and restore of the virtio-mmio transport with its device: a pair
 * saved mid-conversation (an interrupt pending, selectors moved) is
 * restored into a fresh device and transport, which read back the same
 * registers, raise the same line and carry on with the driver's rings;
 * a snapshot with invalid transport or device state is refused before
 * anything is applied.
 */
#include <errno.h>

#include "mmio_rig.h"
#include "test.h"

/* The original device, brought up by the driver through a bus. */
static void setup(void)
{
    rig_up();
    linux_bring_up();
}

static void teardown(void)
{
    rig_down();
}

/* Queue a 4-byte request with a 4-byte reply buffer; returns the reply's
 * address. The caller kicks. */
static uint64_t add_request(unsigned queue, const char *text)
{
    struct vdrv_buf out = { vdrv_alloc(&mem, 4, 8), 4 };
    struct vdrv_buf in = { vdrv_alloc(&mem, 4, 8), 4 };
    vdrv_write(&mem, out.gpa, text, 4);
    if (vdrv_add(&drvq[queue], &out, 1, &in, 1, false) < 0)
        abort();
    return in.gpa;
}

/* A second device and transport, as after migration to another VMM. */
struct restored {
    struct echo_device toy;
    struct fake_irq line;
    struct vmdev_virtio_mmio *mmio;
};

static void restored_init(struct restored *r)
{
    if (echo_device_init(&r->toy, "toy0", NUM_QUEUES, QUEUE_MAX, mem.mem))
        abort();
    memset(&r->line, 0, sizeof(r->line));
    struct vmdev_irq_line irq = fake_irq_line(&r->line);
    r->mmio = vmdev_virtio_mmio_new(&r->toy.dev, &irq);
    if (!r->mmio)
        abort();
}

static void restored_release(struct restored *r)
{
    vmdev_virtio_mmio_free(r->mmio);
    vmdev_virtio_free(&r->toy.dev);
}

static uint32_t rd_restored(struct restored *r, uint32_t offset)
{
    return (uint32_t)vmdev_virtio_mmio_read(r->mmio, offset, 4);
}

static void save_restore_round_trip(void)
{
    setup();
    add_request(1, "one!");
    wr(R(QUEUE_NOTIFY), 1); /* InterruptStatus 1 left pending */
    CHECK(line.level);
    wr(R(DEVICE_FEATURES_SEL), 1);
    wr(R(QUEUE_SEL), 1);

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_virtio_mmio_save(mmio, &w, "toy0.mmio");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);

    struct restored r;
    restored_init(&r);
    CHECK_EQ(vmdev_virtio_mmio_restore(r.mmio, w.data, w.len, "toy0.mmio"),
             0);
    /* The pending interrupt is on the new line at once. */
    CHECK(r.line.level);
    /* Every readable register reads as on the original. */
    static const uint32_t readable[] = {
        R(MAGIC_VALUE),      R(VERSION_REG),      R(DEVICE_ID),
        R(VENDOR_ID_REG),    R(DEVICE_FEATURES),  R(QUEUE_NUM_MAX),
        R(QUEUE_READY),      R(INTERRUPT_STATUS), R(STATUS),
        R(CONFIG_GENERATION),
    };
    for (unsigned i = 0; i < sizeof(readable) / sizeof(readable[0]); i++)
        CHECK_EQ(rd_restored(&r, readable[i]), rd(readable[i]));
    CHECK_EQ(rd_restored(&r, R(DEVICE_FEATURES)),
             (1u << (VMDEV_VIRTIO_F_VERSION_1 - 32)) |
                 (1u << (ECHO_FEATURE_HIGH - 32)));
    CHECK_EQ(rd_restored(&r, R(QUEUE_READY)), 1);

    /* The restored pair carries on: ACK, then a request on queue 1. */
    vmdev_virtio_mmio_write(r.mmio, R(INTERRUPT_ACK),
                            VMDEV_VIRTIO_MMIO_INT_VRING, 4);
    CHECK(!r.line.level);
    uint64_t reply = add_request(1, "two!");
    vmdev_virtio_mmio_write(r.mmio, R(QUEUE_NOTIFY), 1, 4);
    CHECK(r.line.level);
    CHECK_EQ(vdrv_used_idx(&drvq[1]), 2);
    char echoed[5] = { 0 };
    vdrv_read(&mem, reply, echoed, 4);
    CHECK(!strcmp(echoed, "two!"));

    restored_release(&r);
    vmdev_state_writer_release(&w);
    teardown();
}

/* A snapshot with the device's section and a hand-made transport one. */
static void write_snapshot(struct vmdev_state_writer *w,
                           uint32_t interrupt_status)
{
    vmdev_state_writer_init(w);
    pthread_mutex_lock(&toy.dev.lock);
    vmdev_virtio_save(&toy.dev, w);
    pthread_mutex_unlock(&toy.dev.lock);
    vmdev_state_begin_section(w, "toy0.mmio", 1);
    vmdev_state_put_u32(w, "interrupt_status", interrupt_status);
    vmdev_state_put_u32(w, "device_features_sel", 0);
    vmdev_state_put_u32(w, "driver_features_sel", 0);
    vmdev_state_put_u32(w, "queue_sel", 7);
    vmdev_state_put_u32(w, "shm_sel", 0);
    vmdev_state_end_section(w);
}

static void restore_validates_before_applying(void)
{
    setup();
    struct restored r;
    restored_init(&r);

    /* Bit 2 of InterruptStatus means nothing (4.2.2). */
    struct vmdev_state_writer w;
    write_snapshot(&w, 0x4);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_virtio_mmio_restore(r.mmio, w.data, w.len, "toy0.mmio"),
             -EINVAL);
    CHECK_EQ(r.toy.dev.status, 0); /* the device was not touched either */
    CHECK_EQ(vmdev_virtio_mmio_restore(r.mmio, w.data, w.len, "other"),
             -ENOENT);
    vmdev_state_writer_release(&w);

    /* A selector past the queues is a state a driver can reach. */
    write_snapshot(&w, VMDEV_VIRTIO_MMIO_INT_CONFIG);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_virtio_mmio_restore(r.mmio, w.data, w.len, "toy0.mmio"),
             0);
    CHECK_EQ(rd_restored(&r, R(QUEUE_NUM_MAX)), 0);
    CHECK_EQ(rd_restored(&r, R(INTERRUPT_STATUS)),
             VMDEV_VIRTIO_MMIO_INT_CONFIG);
    CHECK(r.line.level);
    CHECK(vmdev_virtio_is_running(&r.toy.dev));
    vmdev_state_writer_release(&w);

    /* A device section for another device type fails the whole restore
     * and leaves the transport's registers alone. */
    struct echo_device other;
    CHECK_EQ(echo_device_init(&other, "toy0", NUM_QUEUES, QUEUE_MAX, mem.mem),
             0);
    other.dev.device_id = ECHO_DEVICE_ID + 1;
    vmdev_state_writer_init(&w);
    vmdev_virtio_save(&other.dev, &w);
    vmdev_state_begin_section(&w, "toy0.mmio", 1);
    vmdev_state_put_u32(&w, "interrupt_status", 0);
    vmdev_state_put_u32(&w, "device_features_sel", 0);
    vmdev_state_put_u32(&w, "driver_features_sel", 0);
    vmdev_state_put_u32(&w, "queue_sel", 0);
    vmdev_state_put_u32(&w, "shm_sel", 0);
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_virtio_mmio_restore(r.mmio, w.data, w.len, "toy0.mmio"),
             -EINVAL);
    CHECK_EQ(rd_restored(&r, R(INTERRUPT_STATUS)),
             VMDEV_VIRTIO_MMIO_INT_CONFIG);
    vmdev_state_writer_release(&w);
    vmdev_virtio_free(&other.dev);

    restored_release(&r);
    teardown();
}

TEST_MAIN(TEST(save_restore_round_trip),
          TEST(restore_validates_before_applying))
