/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport (virtio 1.2, 4.2), driven through an MMIO bus
 * the way Linux's drivers/virtio/virtio_mmio.c drives it: identification,
 * reset, the status handshake, feature windows, per-queue setup, then
 * requests on rings built by the driver-side test library, interrupts on
 * a level-triggered line, configuration access, refusals of what 4.2.2.2
 * forbids the driver, and reset. Save/restore: test_virtio_mmio_state.c.
 */
#include <errno.h>

#include "mmio_rig.h"
#include "test.h"
#include "vmdev/log.h"

static unsigned guest_log_lines;

static void count_log(void *opaque, enum vmdev_log_level level,
                      const char *message)
{
    if (level == VMDEV_LOG_GUEST)
        guest_log_lines++;
}

static struct vmdev_log *counting_log;

static void setup(void)
{
    counting_log = vmdev_log_new(count_log, NULL, VMDEV_LOG_GUEST);
    if (!counting_log)
        abort();
    guest_log_lines = 0;
    rig_up();
    vmdev_virtio_set_log(&toy.dev, counting_log);
}

static void teardown(void)
{
    rig_down();
    vmdev_log_free(counting_log);
}

/* Accesses of any size, through the bus. */
static uint64_t rd_sized(uint64_t offset, unsigned size)
{
    return vdrv_mmio_read(&drv, offset, size);
}

static void wr_sized(uint64_t offset, uint64_t value, unsigned size)
{
    vdrv_mmio_write(&drv, offset, value, size);
}

/* Queue a 4-byte request with an 8-byte reply buffer and kick. */
static uint64_t send_request(unsigned queue, const char *text)
{
    struct vdrv_buf out = { vdrv_alloc(&mem, 4, 8), 4 };
    struct vdrv_buf in = { vdrv_alloc(&mem, 8, 8), 8 };
    vdrv_write(&mem, out.gpa, text, 4);
    if (vdrv_add(&drvq[queue], &out, 1, &in, 1, false) < 0)
        abort();
    wr(R(QUEUE_NOTIFY), queue);
    return in.gpa;
}

static void identifies_as_a_version_2_device(void)
{
    setup();
    /* vm_probe() checks these before anything else (4.2.3.1.1). */
    CHECK_EQ(rd(R(MAGIC_VALUE)), 0x74726976);
    CHECK_EQ(rd(R(VERSION_REG)), 2);
    CHECK_EQ(rd(R(DEVICE_ID)), ECHO_DEVICE_ID);
    CHECK_EQ(rd(R(VENDOR_ID_REG)), VMDEV_VIRTIO_MMIO_VENDOR_ID);
    CHECK_EQ(toy.dev.transport.opaque, mmio);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 0);
    teardown();
}

static void features_negotiated_through_two_windows(void)
{
    setup();
    wr(R(DEVICE_FEATURES_SEL), 0);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 1u << ECHO_FEATURE_LOW);
    wr(R(DEVICE_FEATURES_SEL), 1);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), (1u << (VMDEV_VIRTIO_F_VERSION_1 - 32)) |
                                         (1u << (ECHO_FEATURE_HIGH - 32)));
    wr(R(DEVICE_FEATURES_SEL), 2);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 0);

    /* Without VERSION_1 FEATURES_OK does not stick (3.1.1 step 6). */
    uint32_t status =
        vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(ECHO_FEATURE_LOW));
    CHECK(!(status & VMDEV_VIRTIO_STATUS_FEATURES_OK));
    status =
        vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) |
                                      VMDEV_VIRTIO_BIT(ECHO_FEATURE_HIGH));
    CHECK_EQ(status, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                         VMDEV_VIRTIO_STATUS_DRIVER |
                         VMDEV_VIRTIO_STATUS_FEATURES_OK);
    CHECK_EQ(toy.dev.driver_features,
             VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) |
                 VMDEV_VIRTIO_BIT(ECHO_FEATURE_HIGH));
    /* The set is frozen once FEATURES_OK is set. */
    wr(R(DRIVER_FEATURES_SEL), 0);
    wr(R(DRIVER_FEATURES), 1u << ECHO_FEATURE_LOW);
    CHECK(!vmdev_virtio_has_feature(&toy.dev, ECHO_FEATURE_LOW));
    teardown();
}

static void request_raises_used_buffer_interrupt_until_acked(void)
{
    setup();
    linux_bring_up();
    CHECK_EQ(rd(R(STATUS)), VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                VMDEV_VIRTIO_STATUS_DRIVER |
                                VMDEV_VIRTIO_STATUS_FEATURES_OK |
                                VMDEV_VIRTIO_STATUS_DRIVER_OK);
    CHECK_EQ(toy.activations, 1);
    CHECK(toy.dev.queues[0].enabled && toy.dev.queues[1].enabled);
    CHECK_EQ(toy.dev.queues[1].config.size, 8);
    CHECK_EQ(toy.dev.queues[1].config.desc_addr, drvq[1].desc);
    CHECK(!line.level);

    uint64_t reply = send_request(1, "ping");
    CHECK(line.level);
    CHECK_EQ(line.rises, 1);
    uint32_t id, len;
    CHECK(vdrv_get_used(&drvq[1], &id, &len));
    CHECK_EQ(len, 4);
    char echoed[5] = { 0 };
    vdrv_read(&mem, reply, echoed, 4);
    CHECK(!strcmp(echoed, "ping"));

    /* The line stays high until the driver acknowledges (level). */
    CHECK_EQ(rd(R(INTERRUPT_STATUS)), VMDEV_VIRTIO_MMIO_INT_VRING);
    CHECK(line.level);
    CHECK_EQ(vdrv_mmio_interrupt(&drv), VMDEV_VIRTIO_MMIO_INT_VRING);
    CHECK(!line.level);
    CHECK_EQ(rd(R(INTERRUPT_STATUS)), 0);

    /* The next request raises it again. */
    send_request(0, "pong");
    CHECK_EQ(line.rises, 2);
    CHECK(vdrv_get_used(&drvq[0], &id, &len));
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 0);
    teardown();
}

static void config_change_interrupt_and_generation(void)
{
    setup();
    linux_bring_up();
    uint32_t generation = rd(R(CONFIG_GENERATION));
    echo_device_change_config(&toy, 4, 0x99);
    CHECK(line.level);
    CHECK_EQ(rd_sized(R(CONFIG) + 4, 1), 0x99);
    CHECK_EQ(rd(R(CONFIG_GENERATION)), (generation + 1) & 0xff);

    /* Both causes pending at once show both bits; one ACK clears one. */
    send_request(0, "abcd");
    CHECK_EQ(rd(R(INTERRUPT_STATUS)),
             VMDEV_VIRTIO_MMIO_INT_CONFIG | VMDEV_VIRTIO_MMIO_INT_VRING);
    wr(R(INTERRUPT_ACK), VMDEV_VIRTIO_MMIO_INT_CONFIG);
    CHECK(line.level);
    CHECK_EQ(rd(R(INTERRUPT_STATUS)), VMDEV_VIRTIO_MMIO_INT_VRING);
    wr(R(INTERRUPT_ACK), 0xfffffffc); /* no meaning: clears nothing */
    CHECK(line.level);
    wr(R(INTERRUPT_ACK), VMDEV_VIRTIO_MMIO_INT_VRING);
    CHECK(!line.level);
    teardown();
}

static void config_space_takes_each_field_width(void)
{
    setup();
    /* config = { 0x01, 0x00, 0x1234 (LE), 0x12345678 (LE) } */
    CHECK_EQ(rd_sized(R(CONFIG) + 0, 1), 0x01);
    CHECK_EQ(rd_sized(R(CONFIG) + 2, 2), 0x1234);
    CHECK_EQ(rd_sized(R(CONFIG) + 4, 4), 0x12345678);
    CHECK_EQ(rd_sized(R(CONFIG) + 0, 8), 0x1234567812340001ull);
    /* Past the device's 8 bytes the window reads zeros. */
    CHECK_EQ(rd_sized(R(CONFIG) + 8, 4), 0);
    CHECK_EQ(rd_sized(VMDEV_VIRTIO_MMIO_SIZE - 8, 8), 0);

    wr_sized(R(CONFIG) + 0, 0x7f, 1);
    CHECK_EQ(toy.config[0], 0x7f);
    wr_sized(R(CONFIG) + 2, 0xbeef, 2);
    CHECK_EQ(toy.config[2], 0xef);
    CHECK_EQ(toy.config[3], 0xbe);
    wr_sized(R(CONFIG) + 0, 0x0102030405060708ull, 8);
    CHECK_EQ(toy.config[0], 0x08);
    CHECK_EQ(toy.config[7], 0x01);
    wr_sized(R(CONFIG) + 16, 0xffffffff, 4); /* past the end: dropped */
    CHECK_EQ(rd_sized(R(CONFIG) + 4, 4), 0x01020304);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 0);

    /* An access running past the window is the bus's to refuse; the
     * transport refuses it too when called directly. */
    CHECK_EQ(vmdev_virtio_mmio_read(mmio, VMDEV_VIRTIO_MMIO_SIZE - 2, 4), 0);
    CHECK_EQ(vmdev_virtio_mmio_read(mmio, UINT64_MAX, 1), 0);
    CHECK_EQ(vmdev_virtio_mmio_read(mmio, R(CONFIG), 3), 0);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 3);
    teardown();
}

static void registers_take_only_aligned_32_bit_accesses(void)
{
    setup();
    /* 4.2.2.2: the driver must use 32-bit aligned register accesses. */
    CHECK_EQ(rd_sized(R(MAGIC_VALUE), 1), 0);
    CHECK_EQ(rd_sized(R(MAGIC_VALUE), 2), 0);
    CHECK_EQ(rd_sized(R(MAGIC_VALUE), 8), 0);
    CHECK_EQ(rd_sized(R(MAGIC_VALUE) + 1, 4), 0);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 4);

    wr_sized(R(STATUS), VMDEV_VIRTIO_STATUS_ACKNOWLEDGE, 1);
    wr_sized(R(STATUS), VMDEV_VIRTIO_STATUS_ACKNOWLEDGE, 2);
    wr_sized(R(STATUS) + 2, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE, 2);
    wr_sized(R(STATUS), VMDEV_VIRTIO_STATUS_ACKNOWLEDGE, 8);
    CHECK_EQ(rd(R(STATUS)), 0);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 8);
    CHECK(guest_log_lines > 0); /* logged, rate-limited */
    teardown();
}

static void wrong_direction_and_unknown_offsets_are_refused(void)
{
    setup();
    linux_bring_up();
    /* Reads of write-only registers give 0 (4.2.2.2). */
    CHECK_EQ(rd(R(QUEUE_SEL)), 0);
    CHECK_EQ(rd(R(QUEUE_DESC_LOW)), 0);
    CHECK_EQ(rd(R(INTERRUPT_ACK)), 0);
    /* Writes to read-only registers change nothing. */
    wr(R(MAGIC_VALUE), 0);
    wr(R(DEVICE_ID), 7);
    wr(R(QUEUE_NUM_MAX), 1);
    wr(R(CONFIG_GENERATION), 9);
    wr(R(INTERRUPT_STATUS), 3);
    CHECK_EQ(rd(R(MAGIC_VALUE)), VMDEV_VIRTIO_MMIO_MAGIC);
    CHECK_EQ(rd(R(DEVICE_ID)), ECHO_DEVICE_ID);
    CHECK_EQ(rd(R(QUEUE_NUM_MAX)), QUEUE_MAX);
    CHECK_EQ(rd(R(INTERRUPT_STATUS)), 0);
    CHECK(!line.level);
    /* Legacy (version 1) registers do not exist: QueuePFN at 0x040. */
    CHECK_EQ(rd(0x040), 0);
    wr(0x040, 0x1234);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 10);
    CHECK(vmdev_virtio_is_running(&toy.dev));
    teardown();
}

static void no_shared_memory_regions(void)
{
    setup();
    wr(R(SHM_SEL), 0);
    /* Linux's vm_get_shm_region(): a length of -1 means no region. */
    uint64_t len = rd(R(SHM_LEN_LOW)) | (uint64_t)rd(R(SHM_LEN_HIGH)) << 32;
    CHECK_EQ(len, UINT64_MAX);
    CHECK_EQ(rd(R(QUEUE_RESET)), 0);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 0);
    teardown();
}

static void queue_select_past_the_device_is_ignored(void)
{
    setup();
    vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    /* 4.2.3.2 step 3: QueueNumMax 0 tells the driver there is no queue. */
    wr(R(QUEUE_SEL), NUM_QUEUES);
    CHECK_EQ(rd(R(QUEUE_NUM_MAX)), 0);
    CHECK_EQ(vdrv_mmio_setup_queue(&drv, NUM_QUEUES, &drvq[0], &mem, 8), -1);
    wr(R(QUEUE_SEL), 0xffffffff);
    wr(R(QUEUE_NUM), 4);
    vdrv_mmio_wr64(&drv, R(QUEUE_DESC_LOW), 0x1000);
    wr(R(QUEUE_READY), 1);
    CHECK_EQ(rd(R(QUEUE_READY)), 0);
    wr(R(QUEUE_NOTIFY), 0xffffffff);
    /* 0x10001 must not be taken as queue 1. */
    wr(R(QUEUE_NOTIFY), 0x10001);
    for (unsigned i = 0; i < NUM_QUEUES; i++) {
        CHECK_EQ(toy.dev.queues[i].config.size, QUEUE_MAX);
        CHECK_EQ(toy.dev.queues[i].config.desc_addr, 0);
        CHECK(!toy.dev.queues[i].config.ready);
    }
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 6);
    teardown();
}

static void queue_geometry_is_locked_while_ready(void)
{
    setup();
    vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    CHECK_EQ(vdrv_mmio_setup_queue(&drv, 0, &drvq[0], &mem, 8), 0);
    uint64_t desc = toy.dev.queues[0].config.desc_addr;
    wr(R(QUEUE_SEL), 0);
    wr(R(QUEUE_NUM), 4);
    wr(R(QUEUE_DESC_LOW), 0x2000);
    wr(R(QUEUE_DEVICE_HIGH), 1);
    CHECK_EQ(toy.dev.queues[0].config.size, 8);
    CHECK_EQ(toy.dev.queues[0].config.desc_addr, desc);
    CHECK_EQ(toy.dev.queues[0].config.device_addr, drvq[0].used);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 3);
    /* Before DRIVER_OK the driver may take it back and change it. */
    wr(R(QUEUE_READY), 0);
    CHECK_EQ(rd(R(QUEUE_READY)), 0);
    wr(R(QUEUE_NUM), 4);
    CHECK_EQ(toy.dev.queues[0].config.size, 4);
    wr(R(QUEUE_NUM), QUEUE_MAX * 2); /* above QueueNumMax */
    CHECK_EQ(toy.dev.queues[0].config.size, 0);
    wr(R(QUEUE_READY), 2); /* neither 0 nor 1 */
    CHECK_EQ(rd(R(QUEUE_READY)), 0);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 5);
    teardown();
}

static void running_queues_start_and_stop_only_with_the_device(void)
{
    setup();
    vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    CHECK_EQ(vdrv_mmio_setup_queue(&drv, 0, &drvq[0], &mem, 8), 0);
    vdrv_mmio_add_status(&drv, VMDEV_VIRTIO_STATUS_DRIVER_OK);
    CHECK(toy.dev.queues[0].enabled);
    CHECK(!toy.dev.queues[1].enabled);
    /* A queue made ready after DRIVER_OK would never be checked. */
    wr(R(QUEUE_SEL), 1);
    wr(R(QUEUE_READY), 1);
    CHECK_EQ(rd(R(QUEUE_READY)), 0);
    /* A running queue is not stopped by QueueReady 0. */
    wr(R(QUEUE_SEL), 0);
    wr(R(QUEUE_READY), 0);
    CHECK_EQ(rd(R(QUEUE_READY)), 1);
    CHECK(toy.dev.queues[0].enabled);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 2);
    send_request(0, "live");
    CHECK(line.level);
    teardown();
}

static void reset_clears_device_and_transport(void)
{
    setup();
    linux_bring_up();
    send_request(0, "data");
    echo_device_change_config(&toy, 0, 0x02);
    CHECK(line.level);
    wr(R(DEVICE_FEATURES_SEL), 1);
    wr(R(QUEUE_SEL), 1);

    unsigned resets = toy.resets;
    wr(R(STATUS), 0);
    CHECK_EQ(toy.resets, resets + 1);
    /* 4.2.2.3: InterruptStatus and every QueueReady are cleared. */
    CHECK_EQ(rd(R(STATUS)), 0);
    CHECK_EQ(rd(R(INTERRUPT_STATUS)), 0);
    CHECK(!line.level);
    CHECK_EQ(toy.dev.driver_features, 0);
    /* Selectors are back at 0: window 0 of the features, queue 0. */
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 1u << ECHO_FEATURE_LOW);
    for (unsigned i = 0; i < NUM_QUEUES; i++) {
        wr(R(QUEUE_SEL), i);
        CHECK_EQ(rd(R(QUEUE_READY)), 0);
        CHECK(!toy.dev.queues[i].enabled);
        CHECK_EQ(toy.dev.queues[i].config.size, QUEUE_MAX);
        CHECK_EQ(toy.dev.queues[i].config.desc_addr, 0);
    }
    /* And the device comes up again from scratch. */
    linux_bring_up();
    CHECK(vmdev_virtio_is_running(&toy.dev));
    send_request(1, "anew");
    CHECK(line.level);
    teardown();
}

static void bad_ring_at_driver_ok_needs_reset(void)
{
    setup();
    vdrv_mmio_negotiate(&drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    CHECK_EQ(vdrv_mmio_setup_queue(&drv, 0, &drvq[0], &mem, 8), 0);
    /* 2.7: the descriptor table is 16-byte aligned; move it by 8. */
    wr(R(QUEUE_SEL), 0);
    wr(R(QUEUE_READY), 0);
    wr(R(QUEUE_DESC_LOW), (uint32_t)drvq[0].desc + 8);
    wr(R(QUEUE_READY), 1);
    vdrv_mmio_add_status(&drv, VMDEV_VIRTIO_STATUS_DRIVER_OK);
    CHECK(rd(R(STATUS)) & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(toy.activations, 0);
    /* 2.1.2: the driver hears of it through a configuration interrupt. */
    CHECK(line.level);
    CHECK_EQ(vdrv_mmio_interrupt(&drv), VMDEV_VIRTIO_MMIO_INT_CONFIG);
    CHECK(!line.level);
    /* Kicks are ignored until the driver resets the device. */
    wr(R(QUEUE_NOTIFY), 0);
    CHECK(!line.level);
    wr(R(STATUS), 0);
    CHECK_EQ(rd(R(STATUS)), 0);
    teardown();
}

static void cmdline_declares_the_window(void)
{
    char buf[64];
    CHECK_EQ(vmdev_virtio_mmio_cmdline(buf, sizeof(buf), 0xd0000000, 5),
             (int)strlen("virtio_mmio.device=512@0xd0000000:5"));
    CHECK(!strcmp(buf, "virtio_mmio.device=512@0xd0000000:5"));
    CHECK_EQ(vmdev_virtio_mmio_cmdline(buf, 10, 0xd0000000, 5), -ENOSPC);
    CHECK_EQ(strlen(buf), 9);
    CHECK_EQ(vmdev_virtio_mmio_cmdline(buf, sizeof(buf), UINT64_MAX - 0x100,
                                       5),
             -EINVAL);
    CHECK(vmdev_virtio_mmio_cmdline(buf, sizeof(buf), UINT64_MAX - 0x1ff, 5) >
          0);
}

TEST_MAIN(TEST(identifies_as_a_version_2_device),
          TEST(features_negotiated_through_two_windows),
          TEST(request_raises_used_buffer_interrupt_until_acked),
          TEST(config_change_interrupt_and_generation),
          TEST(config_space_takes_each_field_width),
          TEST(registers_take_only_aligned_32_bit_accesses),
          TEST(wrong_direction_and_unknown_offsets_are_refused),
          TEST(no_shared_memory_regions),
          TEST(queue_select_past_the_device_is_ignored),
          TEST(queue_geometry_is_locked_while_ready),
          TEST(running_queues_start_and_stop_only_with_the_device),
          TEST(reset_clears_device_and_transport),
          TEST(bad_ring_at_driver_ok_needs_reset),
          TEST(cmdline_declares_the_window))
