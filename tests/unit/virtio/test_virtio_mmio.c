/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport (virtio 1.2, 4.2), driven through an MMIO bus
 * the way Linux's drivers/virtio/virtio_mmio.c drives it: identification,
 * reset, the status handshake, feature windows, per-queue setup, then
 * requests on rings built by the driver-side test library, interrupts on
 * a level-triggered line, configuration access, refusals of what 4.2.2.2
 * forbids the driver, reset, and save/restore.
 */
#include <errno.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/bus.h"
#include "vmdev/log.h"
#include "vmdev/virtio.h"
#include "vmdev/virtio_mmio.h"

#define RAM_BASE 0x10000ull
#define RAM_SIZE (1u << 20)
#define MMIO_BASE 0xd0000000ull
#define TOY_ID 42
#define FEATURE_TOY 3      /* a device-specific bit, low window */
#define FEATURE_TOY_HIGH 35 /* and one in the high window */
#define QUEUE_MAX 16
#define NUM_QUEUES 2

#define R(name) VMDEV_VIRTIO_MMIO_##name

/* A toy device: echoes each request's readable bytes into its writable
 * ones. Its configuration is { u8 mode; u8 pad; u16 word; u32 dword }. */
struct toy {
    struct vmdev_virtio_device dev;
    uint8_t config[8];
    struct vmdev_vq_chain chain;
    unsigned resets, activations;
};

static void toy_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    memcpy(data, ((struct toy *)dev)->config + offset, len);
}

static void toy_write_config(struct vmdev_virtio_device *dev, uint32_t offset,
                             const void *data, uint32_t len)
{
    memcpy(((struct toy *)dev)->config + offset, data, len);
}

static int toy_activate(struct vmdev_virtio_device *dev)
{
    ((struct toy *)dev)->activations++;
    return 0;
}

static void toy_reset(struct vmdev_virtio_device *dev)
{
    ((struct toy *)dev)->resets++;
}

static void toy_queue_notify(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct toy *t = (struct toy *)dev;
    struct vmdev_virtqueue *vq = &dev->queues[index];
    const char *why;
    int ret;
    while ((ret = vmdev_vq_pop(vq, &t->chain, &why)) == 1) {
        struct vmdev_vq_reader r;
        struct vmdev_vq_writer w;
        uint8_t buf[64];
        size_t n;
        vmdev_vq_reader_init(&r, &t->chain);
        vmdev_vq_writer_init(&w, &t->chain);
        while ((n = vmdev_vq_read(&r, buf, sizeof(buf))) > 0)
            vmdev_vq_write(&w, buf, n);
        vmdev_vq_push(vq, t->chain.head, (uint32_t)w.written);
    }
    if (ret < 0)
        vmdev_virtio_guest_error(dev, "queue %u: %s", index, why);
    else
        vmdev_virtio_notify_queue(dev, index);
}

static const struct vmdev_virtio_device_ops toy_ops = {
    .read_config = toy_read_config,
    .write_config = toy_write_config,
    .activate = toy_activate,
    .reset = toy_reset,
    .queue_notify = toy_queue_notify,
};

/* The interrupt line as an interrupt controller sees it. */
struct line {
    bool level;
    unsigned rises;
};

static void line_set(void *opaque, bool level)
{
    struct line *l = opaque;
    if (level && !l->level)
        l->rises++;
    l->level = level;
}

static unsigned guest_log_lines;

static void count_log(void *opaque, enum vmdev_log_level level,
                      const char *message)
{
    if (level == VMDEV_LOG_GUEST)
        guest_log_lines++;
}

static struct vdrv_mem mem;
static struct vdrv_queue drvq[NUM_QUEUES];
static struct toy toy;
static struct line line;
static struct vmdev_virtio_mmio *mmio;
static struct vmdev_bus *bus;

static const uint64_t toy_features =
    VIRTIO_BIT(FEATURE_TOY) | VIRTIO_BIT(FEATURE_TOY_HIGH);

static void toy_init(struct toy *t)
{
    memset(t, 0, sizeof(*t));
    if (vmdev_virtio_init(&t->dev, "toy0", TOY_ID, &toy_ops, toy_features,
                          sizeof(t->config), NUM_QUEUES, QUEUE_MAX, mem.mem))
        abort();
    memcpy(t->config, "\x01\x00\x34\x12\x78\x56\x34\x12", 8);
}

static void setup(void)
{
    vmdev_log_set_sink(count_log, NULL);
    guest_log_lines = 0;
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1))
        abort();
    toy_init(&toy);
    memset(&line, 0, sizeof(line));
    struct vmdev_irq_line irq = { line_set, &line };
    mmio = vmdev_virtio_mmio_new(&toy.dev, &irq);
    bus = vmdev_bus_new("mmio", UINT64_MAX);
    if (!mmio || !bus ||
        vmdev_bus_register(bus, MMIO_BASE, VMDEV_VIRTIO_MMIO_SIZE,
                           VMDEV_ACCESS_ANY, &vmdev_virtio_mmio_bus_ops,
                           mmio))
        abort();
}

static void teardown(void)
{
    vmdev_bus_free(bus);
    vmdev_virtio_mmio_free(mmio);
    vmdev_virtio_destroy(&toy.dev);
    vmdev_log_set_sink(NULL, NULL);
}

/* Accesses as the guest makes them: through the bus, at absolute
 * addresses. */
static uint64_t rd_sized(uint64_t offset, unsigned size)
{
    uint64_t value = 0;
    if (vmdev_bus_read(bus, MMIO_BASE + offset, size, &value))
        abort();
    return value;
}

static void wr_sized(uint64_t offset, uint64_t value, unsigned size)
{
    if (vmdev_bus_write(bus, MMIO_BASE + offset, size, value))
        abort();
}

static uint32_t rd(uint64_t offset)
{
    return (uint32_t)rd_sized(offset, 4);
}

static void wr(uint64_t offset, uint32_t value)
{
    wr_sized(offset, value, 4);
}

/* Linux's vm_get_status / vm_set_status via virtio_add_status(). */
static void add_status(uint32_t bits)
{
    wr(R(STATUS), rd(R(STATUS)) | bits);
}

/* virtio_dev_probe(): reset, ACKNOWLEDGE, DRIVER, features through the
 * two 32-bit windows (high first, as vm_get_features does), FEATURES_OK
 * and its read-back (3.1.1 steps 1-6). Returns the final status. */
static uint32_t linux_negotiate(uint64_t wanted)
{
    wr(R(STATUS), 0);
    add_status(VIRTIO_STATUS_ACKNOWLEDGE);
    add_status(VIRTIO_STATUS_DRIVER);
    wr(R(DEVICE_FEATURES_SEL), 1);
    uint64_t offered = (uint64_t)rd(R(DEVICE_FEATURES)) << 32;
    wr(R(DEVICE_FEATURES_SEL), 0);
    offered |= rd(R(DEVICE_FEATURES));
    uint64_t accepted = offered & wanted;
    wr(R(DRIVER_FEATURES_SEL), 1);
    wr(R(DRIVER_FEATURES), (uint32_t)(accepted >> 32));
    wr(R(DRIVER_FEATURES_SEL), 0);
    wr(R(DRIVER_FEATURES), (uint32_t)accepted);
    add_status(VIRTIO_STATUS_FEATURES_OK);
    return rd(R(STATUS));
}

static void write_address(uint32_t low_reg, uint64_t gpa)
{
    wr(low_reg, (uint32_t)gpa);
    wr(low_reg + 4, (uint32_t)(gpa >> 32));
}

/* vm_setup_vq(): 4.2.3.2. Returns 0, or -1 where Linux would give up. */
static int linux_setup_queue(unsigned index, uint16_t size)
{
    wr(R(QUEUE_SEL), index);
    if (rd(R(QUEUE_READY)) != 0)
        return -1;
    uint32_t max = rd(R(QUEUE_NUM_MAX));
    if (max == 0 || size > max)
        return -1;
    vdrv_queue_init(&drvq[index], &mem, size, false);
    wr(R(QUEUE_NUM), size);
    write_address(R(QUEUE_DESC_LOW), drvq[index].desc);
    write_address(R(QUEUE_DRIVER_LOW), drvq[index].avail);
    write_address(R(QUEUE_DEVICE_LOW), drvq[index].used);
    wr(R(QUEUE_READY), 1);
    return 0;
}

/* The whole probe up to DRIVER_OK with both queues at size 8. */
static void linux_bring_up(void)
{
    linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1) | toy_features);
    for (unsigned i = 0; i < NUM_QUEUES; i++)
        if (linux_setup_queue(i, 8))
            abort();
    add_status(VIRTIO_STATUS_DRIVER_OK);
}

/* vm_interrupt(): read InterruptStatus, acknowledge what was read. */
static uint32_t linux_interrupt(void)
{
    uint32_t status = rd(R(INTERRUPT_STATUS));
    wr(R(INTERRUPT_ACK), status);
    return status;
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
    CHECK_EQ(rd(R(DEVICE_ID)), TOY_ID);
    CHECK_EQ(rd(R(VENDOR_ID_REG)), VMDEV_VIRTIO_MMIO_VENDOR_ID);
    CHECK_EQ(toy.dev.transport.opaque, mmio);
    CHECK_EQ(vmdev_virtio_mmio_refused_count(mmio), 0);
    teardown();
}

static void features_negotiated_through_two_windows(void)
{
    setup();
    wr(R(DEVICE_FEATURES_SEL), 0);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 1u << FEATURE_TOY);
    wr(R(DEVICE_FEATURES_SEL), 1);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), (1u << (VIRTIO_F_VERSION_1 - 32)) |
                                         (1u << (FEATURE_TOY_HIGH - 32)));
    wr(R(DEVICE_FEATURES_SEL), 2);
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 0);

    /* Without VERSION_1 FEATURES_OK does not stick (3.1.1 step 6). */
    uint32_t status = linux_negotiate(VIRTIO_BIT(FEATURE_TOY));
    CHECK(!(status & VIRTIO_STATUS_FEATURES_OK));
    status = linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                             VIRTIO_BIT(FEATURE_TOY_HIGH));
    CHECK_EQ(status, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                         VIRTIO_STATUS_FEATURES_OK);
    CHECK_EQ(toy.dev.driver_features, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                          VIRTIO_BIT(FEATURE_TOY_HIGH));
    /* The set is frozen once FEATURES_OK is set. */
    wr(R(DRIVER_FEATURES_SEL), 0);
    wr(R(DRIVER_FEATURES), 1u << FEATURE_TOY);
    CHECK(!vmdev_virtio_has_feature(&toy.dev, FEATURE_TOY));
    teardown();
}

static void request_raises_used_buffer_interrupt_until_acked(void)
{
    setup();
    linux_bring_up();
    CHECK_EQ(rd(R(STATUS)), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                VIRTIO_STATUS_FEATURES_OK |
                                VIRTIO_STATUS_DRIVER_OK);
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
    CHECK_EQ(linux_interrupt(), VMDEV_VIRTIO_MMIO_INT_VRING);
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
    pthread_mutex_lock(&toy.dev.lock);
    toy.config[4] = 0x99;
    vmdev_virtio_notify_config(&toy.dev);
    pthread_mutex_unlock(&toy.dev.lock);
    CHECK(line.level);
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

    wr_sized(R(STATUS), VIRTIO_STATUS_ACKNOWLEDGE, 1);
    wr_sized(R(STATUS), VIRTIO_STATUS_ACKNOWLEDGE, 2);
    wr_sized(R(STATUS) + 2, VIRTIO_STATUS_ACKNOWLEDGE, 2);
    wr_sized(R(STATUS), VIRTIO_STATUS_ACKNOWLEDGE, 8);
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
    CHECK_EQ(rd(R(DEVICE_ID)), TOY_ID);
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
    linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
    /* 4.2.3.2 step 3: QueueNumMax 0 tells the driver there is no queue. */
    wr(R(QUEUE_SEL), NUM_QUEUES);
    CHECK_EQ(rd(R(QUEUE_NUM_MAX)), 0);
    CHECK_EQ(linux_setup_queue(NUM_QUEUES, 8), -1);
    wr(R(QUEUE_SEL), 0xffffffff);
    wr(R(QUEUE_NUM), 4);
    write_address(R(QUEUE_DESC_LOW), 0x1000);
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
    linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
    CHECK_EQ(linux_setup_queue(0, 8), 0);
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
    linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
    CHECK_EQ(linux_setup_queue(0, 8), 0);
    add_status(VIRTIO_STATUS_DRIVER_OK);
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
    pthread_mutex_lock(&toy.dev.lock);
    vmdev_virtio_notify_config(&toy.dev);
    pthread_mutex_unlock(&toy.dev.lock);
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
    CHECK_EQ(rd(R(DEVICE_FEATURES)), 1u << FEATURE_TOY);
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
    linux_negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
    CHECK_EQ(linux_setup_queue(0, 8), 0);
    /* 2.7: the descriptor table is 16-byte aligned; move it by 8. */
    wr(R(QUEUE_SEL), 0);
    wr(R(QUEUE_READY), 0);
    wr(R(QUEUE_DESC_LOW), (uint32_t)drvq[0].desc + 8);
    wr(R(QUEUE_READY), 1);
    add_status(VIRTIO_STATUS_DRIVER_OK);
    CHECK(rd(R(STATUS)) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(toy.activations, 0);
    /* 2.1.2: the driver hears of it through a configuration interrupt. */
    CHECK(line.level);
    CHECK_EQ(linux_interrupt(), VMDEV_VIRTIO_MMIO_INT_CONFIG);
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

/* A second device and transport, as after migration to another VMM. */
struct restored {
    struct toy toy;
    struct line line;
    struct vmdev_virtio_mmio *mmio;
};

static void restored_init(struct restored *r)
{
    toy_init(&r->toy);
    memset(&r->line, 0, sizeof(r->line));
    struct vmdev_irq_line irq = { line_set, &r->line };
    r->mmio = vmdev_virtio_mmio_new(&r->toy.dev, &irq);
    if (!r->mmio)
        abort();
}

static void restored_release(struct restored *r)
{
    vmdev_virtio_mmio_free(r->mmio);
    vmdev_virtio_destroy(&r->toy.dev);
}

static uint32_t rd_restored(struct restored *r, uint32_t offset)
{
    return (uint32_t)vmdev_virtio_mmio_read(r->mmio, offset, 4);
}

static void save_restore_round_trip(void)
{
    setup();
    linux_bring_up();
    send_request(1, "one!"); /* InterruptStatus 1 left pending */
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
             (1u << (VIRTIO_F_VERSION_1 - 32)) |
                 (1u << (FEATURE_TOY_HIGH - 32)));
    CHECK_EQ(rd_restored(&r, R(QUEUE_READY)), 1);

    /* The restored pair carries on: ACK, then a request on queue 1. */
    vmdev_virtio_mmio_write(r.mmio, R(INTERRUPT_ACK),
                            VMDEV_VIRTIO_MMIO_INT_VRING, 4);
    CHECK(!r.line.level);
    struct vdrv_buf out = { vdrv_alloc(&mem, 4, 8), 4 };
    struct vdrv_buf in = { vdrv_alloc(&mem, 4, 8), 4 };
    vdrv_write(&mem, out.gpa, "two!", 4);
    CHECK(vdrv_add(&drvq[1], &out, 1, &in, 1, false) >= 0);
    vmdev_virtio_mmio_write(r.mmio, R(QUEUE_NOTIFY), 1, 4);
    CHECK(r.line.level);
    CHECK_EQ(vdrv_used_idx(&drvq[1]), 2);
    char echoed[5] = { 0 };
    vdrv_read(&mem, in.gpa, echoed, 4);
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
    linux_bring_up();
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
    struct toy other;
    toy_init(&other);
    other.dev.device_id = TOY_ID + 1;
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
    vmdev_virtio_destroy(&other.dev);

    restored_release(&r);
    teardown();
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
          TEST(cmdline_declares_the_window), TEST(save_restore_round_trip),
          TEST(restore_validates_before_applying))
