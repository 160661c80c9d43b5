/* SPDX-License-Identifier: MIT */
/*
 * The transport-independent virtio device: feature negotiation, the
 * status state machine (virtio 1.2, 2.1 and 3.1.1), configuration access,
 * guest faults and save/restore, driven as a transport would.
 */
#include <errno.h>
#include <unistd.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_device.h"

#define RAM_BASE 0x10000ull
#define RAM_SIZE (1u << 20)
#define FEATURE_TOY 3 /* a device-specific bit we offer */

struct toy {
    struct vmdev_virtio_device dev;
    uint8_t config[8];
    unsigned activations, resets, notifies, config_writes;
    bool serve_queues; /* queue_kick serves chains (toy_serve) */
    unsigned served;
    unsigned queue_irqs, config_irqs;
    uint16_t last_notified;
    int activate_result;
};

static void toy_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    struct toy *t = (struct toy *)dev;
    memcpy(data, t->config + offset, len);
}

static void toy_write_config(struct vmdev_virtio_device *dev, uint32_t offset,
                             const void *data, uint32_t len)
{
    struct toy *t = (struct toy *)dev;
    memcpy(t->config + offset, data, len);
    t->config_writes++;
}

static int toy_activate(struct vmdev_virtio_device *dev)
{
    struct toy *t = (struct toy *)dev;
    t->activations++;
    return t->activate_result;
}

static void toy_reset(struct vmdev_virtio_device *dev)
{
    ((struct toy *)dev)->resets++;
}

static struct vmdev_virtqueue_chain toy_chain;
/* Chains a hostile driver offers again as the device serves them (it
 * keeps its ring full): how many more. */
static unsigned toy_reoffers;
static struct vdrv_queue drvq[2];

static int64_t toy_serve(struct vmdev_virtio_device *dev,
                         struct vmdev_virtqueue_chain *chain, const char **why)
{
    struct toy *t = (struct toy *)dev;
    (void)why;
    t->served++;
    if (toy_reoffers) {
        toy_reoffers--;
        vdrv_publish(&drvq[0], chain->head);
    }
    return 0;
}

static void toy_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct toy *t = (struct toy *)dev;
    t->notifies++;
    t->last_notified = index;
    if (t->serve_queues)
        vmdev_virtio_process_queue(dev, index, &toy_chain, toy_serve);
}

static const struct vmdev_virtio_device_ops toy_ops = {
    .read_config = toy_read_config,
    .write_config = toy_write_config,
    .activate = toy_activate,
    .reset = toy_reset,
    .queue_kick = toy_queue_kick,
};

static void toy_interrupt(void *opaque, enum vmdev_virtio_irq_reason reason,
                          uint16_t queue)
{
    struct toy *t = opaque;
    if (reason == VMDEV_VIRTIO_IRQ_QUEUE)
        t->queue_irqs++;
    else
        t->config_irqs++;
}

static struct vdrv_mem mem;
static struct toy toy;

static void toy_setup(void)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1))
        abort();
    memset(&toy, 0, sizeof(toy));
    if (vmdev_virtio_init(&toy.dev, "toy0", 99, &toy_ops,
                          VMDEV_VIRTIO_BIT(FEATURE_TOY) |
                              VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX),
                          sizeof(toy.config), 2, 8, mem.mem))
        abort();
    toy.dev.transport.interrupt = toy_interrupt;
    toy.dev.transport.opaque = &toy;
    memcpy(toy.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

static void toy_teardown(void)
{
    vmdev_virtio_free(&toy.dev);
}

/* The driver's side of 3.1.1, up to and including FEATURES_OK. */
static uint8_t negotiate(uint64_t features)
{
    vmdev_virtio_set_status(&toy.dev, 0);
    vmdev_virtio_set_status(&toy.dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE);
    vmdev_virtio_set_status(&toy.dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                          VMDEV_VIRTIO_STATUS_DRIVER);
    vmdev_virtio_set_driver_features(&toy.dev, 0, (uint32_t)features);
    vmdev_virtio_set_driver_features(&toy.dev, 1, (uint32_t)(features >> 32));
    vmdev_virtio_set_status(&toy.dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                          VMDEV_VIRTIO_STATUS_DRIVER |
                                          VMDEV_VIRTIO_STATUS_FEATURES_OK);
    return toy.dev.status;
}

static void start(void)
{
    for (unsigned i = 0; i < 2; i++) {
        vdrv_queue_init(&drvq[i], &mem, 8, true);
        vdrv_queue_config(&drvq[i], &toy.dev.queues[i].config);
    }
    vmdev_virtio_set_status(&toy.dev,
                            toy.dev.status | VMDEV_VIRTIO_STATUS_DRIVER_OK);
}

static const uint64_t good_features =
    VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) | VMDEV_VIRTIO_BIT(FEATURE_TOY) |
    VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX);

static void offers_version_1_and_device_features(void)
{
    toy_setup();
    CHECK_EQ(vmdev_virtio_get_device_features(&toy.dev, 0),
             (1u << FEATURE_TOY) | (1u << VMDEV_VIRTIO_F_EVENT_IDX));
    CHECK_EQ(vmdev_virtio_get_device_features(&toy.dev, 1), 1); /* bit 32 */
    CHECK_EQ(vmdev_virtio_get_device_features(&toy.dev, 2), 0);
    toy_teardown();
}

static void features_ok_needs_version_1(void)
{
    toy_setup();
    uint8_t status = negotiate(VMDEV_VIRTIO_BIT(FEATURE_TOY));
    CHECK(!(status & VMDEV_VIRTIO_STATUS_FEATURES_OK));
    status = negotiate(good_features);
    CHECK(status & VMDEV_VIRTIO_STATUS_FEATURES_OK);
    toy_teardown();
}

static void unoffered_features_dropped_and_frozen_after_features_ok(void)
{
    toy_setup();
    negotiate(good_features | VMDEV_VIRTIO_BIT(7) | VMDEV_VIRTIO_BIT(40));
    CHECK_EQ(toy.dev.driver_features, good_features);
    /* 3.1.1: after FEATURES_OK the set no longer changes. */
    vmdev_virtio_set_driver_features(&toy.dev, 0, 0);
    CHECK_EQ(toy.dev.driver_features, good_features);
    CHECK(vmdev_virtio_has_feature(&toy.dev, FEATURE_TOY));
    CHECK(!vmdev_virtio_has_feature(&toy.dev, 200));
    toy_teardown();
}

static void driver_ok_enables_ready_queues_and_activates(void)
{
    toy_setup();
    negotiate(good_features);
    start();
    CHECK_EQ(toy.activations, 1);
    CHECK(vmdev_virtio_is_running(&toy.dev));
    CHECK(toy.dev.queues[0].enabled && toy.dev.queues[1].enabled);
    CHECK(toy.dev.queues[0].event_idx);
    vmdev_virtio_queue_kick(&toy.dev, 1);
    CHECK_EQ(toy.notifies, 1);
    CHECK_EQ(toy.last_notified, 1);
    vmdev_virtio_queue_kick(&toy.dev, 2); /* no such queue */
    CHECK_EQ(toy.notifies, 1);
    toy_teardown();
}

static void driver_ok_without_features_ok_is_a_guest_error(void)
{
    toy_setup();
    vmdev_virtio_set_status(&toy.dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                          VMDEV_VIRTIO_STATUS_DRIVER |
                                          VMDEV_VIRTIO_STATUS_DRIVER_OK);
    CHECK_EQ(toy.activations, 0);
    CHECK(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(toy.dev.guest_errors, 1);
    CHECK(!vmdev_virtio_is_running(&toy.dev));
    toy_teardown();
}

/* 2.1.2: only a reset clears status bits. A driver clearing DRIVER_OK
 * (or FEATURES_OK) must not get a device that starts again when it sets
 * the bit back, with requests of the first start in flight. */
static void clearing_status_bits_without_reset_needs_reset(void)
{
    static const uint8_t cleared[] = { VMDEV_VIRTIO_STATUS_DRIVER_OK,
                                       VMDEV_VIRTIO_STATUS_FEATURES_OK,
                                       VMDEV_VIRTIO_STATUS_ACKNOWLEDGE };
    for (unsigned i = 0; i < sizeof(cleared); i++) {
        toy_setup();
        negotiate(good_features);
        start();
        uint8_t running = toy.dev.status;
        vmdev_virtio_set_status(&toy.dev, running & (uint8_t)~cleared[i]);
        CHECK(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
        CHECK_EQ(toy.dev.guest_errors, 1);
        CHECK(!vmdev_virtio_is_running(&toy.dev));
        CHECK_EQ(toy.config_irqs, 1); /* 2.1.2: told by a config change */
        /* Setting it back starts nothing. */
        vmdev_virtio_set_status(&toy.dev, running);
        CHECK_EQ(toy.activations, 1);
        CHECK(!vmdev_virtio_is_running(&toy.dev));
        /* A reset and a new start do. */
        negotiate(good_features);
        start();
        CHECK_EQ(toy.activations, 2);
        CHECK(vmdev_virtio_is_running(&toy.dev));
        toy_teardown();
    }
}

static void other_work_ran(void *opaque, uint32_t events)
{
    (void)events;
    unsigned *runs = opaque;
    (*runs)++;
}

/*
 * A driver that offers every chain again as soon as the device serves it
 * keeps the ring full for as long as it likes. One notification serves a
 * ring's worth and returns; the queue's loop comes back for the rest
 * after the other work it has (here another watch on the same loop), a
 * ring's worth at a time, until the driver stops.
 */
static void a_full_queue_is_served_in_ring_sized_batches(void)
{
    toy_setup();
    toy.serve_queues = true;
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    CHECK_EQ(vmdev_virtio_attach_queue(&toy.dev, 0, loop), 0);
    int other = vmdev_eventfd_new();
    unsigned other_runs = 0;
    struct vmdev_event_watch *w = vmdev_event_loop_add(loop, other,
                                                       VMDEV_EVENT_IN,
                                                       other_work_ran,
                                                       &other_runs);
    CHECK(other >= 0 && w);
    negotiate(good_features);
    start();
    uint64_t gpa = vdrv_alloc(&mem, 64, 8);
    struct vdrv_buf buf = { gpa, 64 };
    for (unsigned i = 0; i < 8; i++)
        CHECK(vdrv_add(&drvq[0], &buf, 1, NULL, 0, false) >= 0);
    toy_reoffers = 100;

    vdrv_notify(&toy.dev, 0);
    CHECK_EQ(toy.served, 8); /* the ring's size */
    CHECK_EQ(vdrv_used_idx(&drvq[0]), 8);
    unsigned rounds = 0;
    while (toy.served < 108 && rounds < 100) {
        vmdev_eventfd_signal(other); /* the loop has other work each time */
        unsigned before = toy.served, others = other_runs;
        CHECK(vmdev_event_loop_run_once(loop, 0) >= 1);
        CHECK(toy.served - before <= 8);
        CHECK_EQ(other_runs, others + 1);
        vmdev_eventfd_drain(other);
        rounds++;
    }
    CHECK_EQ(toy.served, 108);
    CHECK_EQ(vdrv_used_idx(&drvq[0]), 108);
    CHECK(rounds >= 100 / 8);
    /* Nothing waits: the loop is not brought back again. */
    vmdev_event_loop_run_once(loop, 0);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 0);
    CHECK_EQ(toy.notifies, 1 + rounds);
    CHECK(!(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET));

    vmdev_event_loop_remove(loop, w);
    close(other);
    vmdev_virtio_detach_queue(&toy.dev, 0);
    toy_teardown();
    vmdev_event_loop_free(loop);
}

static void bad_ring_at_driver_ok_needs_reset(void)
{
    toy_setup();
    negotiate(good_features);
    vdrv_queue_init(&drvq[0], &mem, 8, true);
    vdrv_queue_config(&drvq[0], &toy.dev.queues[0].config);
    toy.dev.queues[0].config.desc_addr += 8; /* misaligned */
    vmdev_virtio_set_status(&toy.dev,
                            toy.dev.status | VMDEV_VIRTIO_STATUS_DRIVER_OK);
    CHECK(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(toy.activations, 0);
    CHECK_EQ(toy.config_irqs, 1); /* 2.1.2: the driver is told */
    /* Notifications are ignored until a reset. */
    vmdev_virtio_queue_kick(&toy.dev, 0);
    CHECK_EQ(toy.notifies, 0);
    /* The driver cannot clear NEEDS_RESET by writing status... */
    vmdev_virtio_set_status(&toy.dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE);
    CHECK(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    /* ...only a reset does, and it forgets everything negotiated. */
    unsigned resets = toy.resets;
    vmdev_virtio_set_status(&toy.dev, 0);
    CHECK_EQ(toy.dev.status, 0);
    CHECK_EQ(toy.dev.driver_features, 0);
    CHECK_EQ(toy.resets, resets + 1);
    CHECK(!toy.dev.queues[0].config.ready);
    CHECK_EQ(toy.dev.queues[0].config.size, 8);
    toy_teardown();
}

static void activate_failure_needs_reset(void)
{
    toy_setup();
    toy.activate_result = -EIO;
    negotiate(good_features);
    start();
    CHECK(toy.dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK(!vmdev_virtio_is_running(&toy.dev));
    toy_teardown();
}

static void config_access_is_bounded(void)
{
    toy_setup();
    uint8_t buf[8];
    vmdev_virtio_read_config(&toy.dev, 4, buf, 4);
    CHECK_EQ(buf[0], 5);
    memset(buf, 0xaa, sizeof(buf));
    vmdev_virtio_read_config(&toy.dev, 6, buf, 4); /* past the end */
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[3], 0);
    vmdev_virtio_read_config(&toy.dev, UINT32_MAX, buf, 4);
    CHECK_EQ(buf[0], 0);
    vmdev_virtio_write_config(&toy.dev, 7, "xy", 2);
    vmdev_virtio_write_config(&toy.dev, UINT32_MAX - 1, "xy", 2);
    CHECK_EQ(toy.config_writes, 0);
    vmdev_virtio_write_config(&toy.dev, 6, "xy", 2);
    CHECK_EQ(toy.config_writes, 1);
    CHECK_EQ(toy.config[7], 'y');
    toy_teardown();
}

static void config_change_bumps_generation_and_interrupts(void)
{
    toy_setup();
    uint8_t gen = toy.dev.config_generation;
    vmdev_virtio_interrupt_config(&toy.dev);
    CHECK_EQ(toy.dev.config_generation, (uint8_t)(gen + 1));
    CHECK_EQ(toy.config_irqs, 1);
    toy_teardown();
}

static void queue_interrupt_follows_suppression(void)
{
    toy_setup();
    negotiate(good_features);
    start();
    vmdev_virtqueue_push(&toy.dev.queues[0], 0, 0);
    vmdev_virtio_interrupt_queue(&toy.dev, 0);
    CHECK_EQ(toy.queue_irqs, 1);
    vdrv_set_used_event(&drvq[0], 5);
    vmdev_virtqueue_push(&toy.dev.queues[0], 0, 0);
    vmdev_virtio_interrupt_queue(&toy.dev, 0);
    CHECK_EQ(toy.queue_irqs, 1);
    toy_teardown();
}

/* Without a device's own grouping each queue is a group of its own; an
 * index out of range comes back unchanged rather than read past. */
static void queues_are_their_own_groups_by_default(void)
{
    toy_setup();
    CHECK_EQ(vmdev_virtio_queue_group(&toy.dev, 0), 0);
    CHECK_EQ(vmdev_virtio_queue_group(&toy.dev, 1), 1);
    CHECK_EQ(vmdev_virtio_queue_group(&toy.dev, 7), 7);
    toy_teardown();
}

static void save_restore_round_trip(void)
{
    toy_setup();
    negotiate(good_features);
    start();
    /* Move the first queue along so its indices are not zero. */
    struct vdrv_buf in = { vdrv_alloc(&mem, 8, 8), 8 };
    for (unsigned i = 0; i < 3; i++)
        CHECK(vdrv_add(&drvq[0], NULL, 0, &in, 1, false) >= 0);
    struct vmdev_virtqueue_chain *chain = malloc(sizeof(*chain));
    const char *why;
    for (unsigned i = 0; i < 2; i++) {
        CHECK_EQ(vmdev_virtqueue_pop(&toy.dev.queues[0], chain, &why), 1);
        vmdev_virtqueue_push(&toy.dev.queues[0], chain->head, 1);
    }
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_virtio_save(&toy.dev, &w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);

    struct toy copy = { 0 };
    CHECK_EQ(vmdev_virtio_init(&copy.dev, "toy0", 99, &toy_ops,
                               toy.dev.device_features, 8,
                               2, 8, mem.mem),
             0);
    CHECK_EQ(vmdev_virtio_restore(&copy.dev, w.data, w.len), 0);
    CHECK_EQ(copy.dev.status, toy.dev.status);
    CHECK_EQ(copy.dev.driver_features, good_features);
    CHECK(copy.dev.queues[0].enabled);
    CHECK_EQ(copy.dev.queues[0].last_avail_idx, 2);
    CHECK_EQ(copy.dev.queues[0].used_idx, 2);
    /* The restored device carries on with the third request. */
    CHECK_EQ(vmdev_virtqueue_pop(&copy.dev.queues[0], chain, &why), 1);
    vmdev_virtqueue_push(&copy.dev.queues[0], chain->head, 1);
    CHECK_EQ(vdrv_used_idx(&drvq[0]), 3);

    /* A snapshot of another device or with a bad ring is refused. */
    struct toy other = { 0 };
    CHECK_EQ(vmdev_virtio_init(&other.dev, "toy0", 98, &toy_ops, 0, 8, 2, 8,
                               mem.mem),
             0);
    CHECK_EQ(vmdev_virtio_restore(&other.dev, w.data, w.len), -EINVAL);
    vmdev_virtio_free(&other.dev);

    vmdev_virtio_free(&copy.dev);
    vmdev_state_writer_release(&w);
    free(chain);
    toy_teardown();
}

static void restore_refuses_ring_outside_ram(void)
{
    toy_setup();
    negotiate(good_features);
    start();
    toy.dev.queues[1].config.desc_addr = RAM_BASE + RAM_SIZE;
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_virtio_save(&toy.dev, &w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    struct toy copy = { 0 };
    CHECK_EQ(vmdev_virtio_init(&copy.dev, "toy0", 99, &toy_ops,
                               toy.dev.device_features, 8, 2, 8, mem.mem),
             0);
    CHECK_EQ(vmdev_virtio_restore(&copy.dev, w.data, w.len), -EINVAL);
    CHECK_EQ(copy.dev.status, 0);
    CHECK(!copy.dev.queues[0].enabled);
    vmdev_virtio_free(&copy.dev);
    vmdev_state_writer_release(&w);
    toy_teardown();
}

TEST_MAIN(TEST(offers_version_1_and_device_features),
          TEST(features_ok_needs_version_1),
          TEST(unoffered_features_dropped_and_frozen_after_features_ok),
          TEST(driver_ok_enables_ready_queues_and_activates),
          TEST(driver_ok_without_features_ok_is_a_guest_error),
          TEST(clearing_status_bits_without_reset_needs_reset),
          TEST(a_full_queue_is_served_in_ring_sized_batches),
          TEST(bad_ring_at_driver_ok_needs_reset),
          TEST(activate_failure_needs_reset), TEST(config_access_is_bounded),
          TEST(config_change_bumps_generation_and_interrupts),
          TEST(queue_interrupt_follows_suppression),
          TEST(queues_are_their_own_groups_by_default),
          TEST(save_restore_round_trip),
          TEST(restore_refuses_ring_outside_ram))
