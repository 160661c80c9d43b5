/* SPDX-License-Identifier: MIT */
/* virtio-console (virtio 1.2, 5.3), single port: transmitq output and
 * receiveq input. */
#include "test.h"
#include "virtio_driver.h"
#include "vmdev/virtio_console.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (1u << 20)

static struct vdrv_mem mem;
static struct vdrv_queue rxq, txq;
static char out[256];
static size_t out_len;
static unsigned interrupts;
static unsigned input_ready_calls;

static void input_ready(void *opaque)
{
    input_ready_calls++;
}

static void collect(void *opaque, const void *buf, size_t len)
{
    if (len > sizeof(out) - out_len)
        len = sizeof(out) - out_len;
    memcpy(out + out_len, buf, len);
    out_len += len;
}

static void count_irq(void *opaque, enum vmdev_virtio_irq_reason r,
                      uint16_t queue)
{
    interrupts++;
}

/* Negotiated and queues set up, DRIVER_OK not yet set. */
static struct vmdev_virtio_console *start_before_driver_ok(void)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1))
        abort();
    out_len = 0;
    interrupts = 0;
    input_ready_calls = 0;
    struct vmdev_console_output o = { .write = collect,
                                      .input_ready = input_ready };
    struct vmdev_virtio_console *con =
        vmdev_virtio_console_new("console0", mem.mem, &o);
    struct vmdev_virtio_device *dev = vmdev_virtio_console_device(con);
    dev->transport.interrupt = count_irq;
    vdrv_accept_all_features(dev);
    vdrv_queue_init(&rxq, &mem, 128, false);
    vdrv_queue_init(&txq, &mem, 128, false);
    vdrv_queue_config(&rxq, &dev->queues[0].config);
    vdrv_queue_config(&txq, &dev->queues[1].config);
    return con;
}

static struct vmdev_virtio_console *start(void)
{
    struct vmdev_virtio_console *con = start_before_driver_ok();
    vmdev_virtio_set_status(vmdev_virtio_console_device(con), 0xf);
    return con;
}

static uint64_t text(const char *s)
{
    uint64_t gpa = vdrv_alloc(&mem, strlen(s), 1);
    vdrv_write(&mem, gpa, s, strlen(s));
    return gpa;
}

static void kick(struct vmdev_virtio_console *con, uint16_t q)
{
    vdrv_notify(vmdev_virtio_console_device(con), q);
}

static void transmit_reaches_output_in_order(void)
{
    struct vmdev_virtio_console *con = start();
    struct vdrv_buf hello[2] = { { text("hel"), 3 }, { text("lo "), 3 } };
    struct vdrv_buf world = { text("world"), 5 };
    CHECK(vdrv_add(&txq, hello, 2, NULL, 0, false) >= 0);
    CHECK(vdrv_add(&txq, &world, 1, NULL, 0, true) >= 0);
    kick(con, 1);
    CHECK_EQ(out_len, 11);
    CHECK(memcmp(out, "hello world", 11) == 0);
    uint32_t id, len;
    CHECK(vdrv_get_used(&txq, &id, &len));
    CHECK_EQ(len, 0);
    CHECK(vdrv_get_used(&txq, &id, &len));
    CHECK_EQ(interrupts, 1);
    vmdev_virtio_console_free(con);
}

static void receive_fills_posted_buffers_in_order(void)
{
    struct vmdev_virtio_console *con = start();
    CHECK_EQ(input_ready_calls, 1); /* DRIVER_OK */
    input_ready_calls = 0;
    /* Before any buffer: nothing is taken, the host keeps its bytes. */
    CHECK_EQ(vmdev_virtio_console_receive(con, "early", 5), 0);
    CHECK_EQ(interrupts, 0);
    struct vdrv_buf a = { vdrv_alloc(&mem, 4, 1), 4 };
    struct vdrv_buf b[2] = { { vdrv_alloc(&mem, 2, 1), 2 },
                             { vdrv_alloc(&mem, 3, 1), 3 } };
    int head_a = vdrv_add(&rxq, NULL, 0, &a, 1, false);
    int head_b = vdrv_add(&rxq, NULL, 0, b, 2, false);
    CHECK(head_a >= 0 && head_b >= 0);
    kick(con, 0);
    CHECK_EQ(input_ready_calls, 1);
    /* 4 + 5 bytes of room: the rest waits for more buffers. */
    CHECK_EQ(vmdev_virtio_console_receive(con, "hello world", 11), 9);
    uint32_t id, len;
    char got[8] = { 0 };
    CHECK(vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(id, head_a);
    CHECK_EQ(len, 4);
    vdrv_read(&mem, a.gpa, got, 4);
    CHECK(memcmp(got, "hell", 4) == 0);
    CHECK(vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(id, head_b);
    CHECK_EQ(len, 5);
    vdrv_read(&mem, b[0].gpa, got, 2);
    vdrv_read(&mem, b[1].gpa, got + 2, 3);
    CHECK(memcmp(got, "o wor", 5) == 0);
    CHECK(!vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(interrupts, 1);
    CHECK_EQ(vmdev_virtio_console_receive(con, "ld", 2), 0);
    /* A new buffer and its kick: the host is told, and the rest fits.
     * The driver consumed both used entries and asks to hear of the next
     * (EVENT_IDX, 2.7.7.2). */
    vdrv_set_used_event(&rxq, 2);
    CHECK(vdrv_add(&rxq, NULL, 0, &a, 1, false) >= 0);
    kick(con, 0);
    CHECK_EQ(input_ready_calls, 2);
    CHECK_EQ(vmdev_virtio_console_receive(con, "ld", 2), 2);
    CHECK(vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(len, 2);
    CHECK_EQ(interrupts, 2);
    vmdev_virtio_console_free(con);
}

/* Linux fills the receive queue and writes before DRIVER_OK; those kicks
 * go unheard, so DRIVER_OK serves what waits. */
static void buffers_posted_before_driver_ok_are_served(void)
{
    struct vmdev_virtio_console *con = start_before_driver_ok();
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 1), 16 };
    struct vdrv_buf early = { text("early"), 5 };
    CHECK(vdrv_add(&rxq, NULL, 0, &in, 1, false) >= 0);
    CHECK(vdrv_add(&txq, &early, 1, NULL, 0, false) >= 0);
    kick(con, 0);
    kick(con, 1);
    CHECK_EQ(input_ready_calls, 0);
    CHECK_EQ(out_len, 0);
    CHECK_EQ(vmdev_virtio_console_receive(con, "abc", 3), 0);
    struct vmdev_virtio_device *dev = vmdev_virtio_console_device(con);
    pthread_mutex_lock(&dev->lock);
    vmdev_virtio_set_status(dev, 0xf);
    pthread_mutex_unlock(&dev->lock);
    CHECK_EQ(input_ready_calls, 1);
    CHECK_EQ(out_len, 5);
    CHECK(memcmp(out, "early", 5) == 0);
    CHECK_EQ(vmdev_virtio_console_receive(con, "abc", 3), 3);
    vmdev_virtio_console_free(con);
}

static void receive_buffer_without_room_goes_back_empty(void)
{
    struct vmdev_virtio_console *con = start();
    /* A driver-readable buffer where a writable one belongs. */
    struct vdrv_buf wrong = { text("xx"), 2 };
    struct vdrv_buf right = { vdrv_alloc(&mem, 8, 1), 8 };
    CHECK(vdrv_add(&rxq, &wrong, 1, NULL, 0, false) >= 0);
    CHECK(vdrv_add(&rxq, NULL, 0, &right, 1, false) >= 0);
    CHECK_EQ(vmdev_virtio_console_receive(con, "abc", 3), 3);
    uint32_t id, len;
    CHECK(vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(len, 0);
    CHECK(vdrv_get_used(&rxq, &id, &len));
    CHECK_EQ(len, 3);
    struct vmdev_virtio_device *dev = vmdev_virtio_console_device(con);
    CHECK(!(dev->status & 0x40));
    vmdev_virtio_console_free(con);
}

static void receive_refuses_a_broken_ring(void)
{
    struct vmdev_virtio_console *con = start();
    vdrv_set_desc(&rxq, 0, RAM_BASE, 8, VDRV_DESC_F_NEXT, 0); /* loop */
    vdrv_publish(&rxq, 0);
    CHECK_EQ(vmdev_virtio_console_receive(con, "abc", 3), 0);
    struct vmdev_virtio_device *dev = vmdev_virtio_console_device(con);
    CHECK(dev->status & 0x40);
    CHECK_EQ(dev->guest_errors, 1);
    /* Stopped: later input is not taken. */
    CHECK_EQ(vmdev_virtio_console_receive(con, "abc", 3), 0);
    vmdev_virtio_console_free(con);
}

static void config_reads_zero(void)
{
    struct vmdev_virtio_console *con = start();
    uint32_t v = 0xffffffff;
    vmdev_virtio_read_config(vmdev_virtio_console_device(con), 8, &v, 4);
    CHECK_EQ(v, 0);
    vmdev_virtio_console_free(con);
}

static void malformed_transmit_needs_reset(void)
{
    struct vmdev_virtio_console *con = start();
    vdrv_set_desc(&txq, 0, RAM_BASE, 8, VDRV_DESC_F_NEXT, 0); /* loop */
    vdrv_publish(&txq, 0);
    kick(con, 1);
    struct vmdev_virtio_device *dev = vmdev_virtio_console_device(con);
    CHECK(dev->status & 0x40);
    CHECK_EQ(out_len, 0);
    vmdev_virtio_console_free(con);
}

TEST_MAIN(TEST(transmit_reaches_output_in_order),
          TEST(receive_fills_posted_buffers_in_order),
          TEST(buffers_posted_before_driver_ok_are_served),
          TEST(receive_buffer_without_room_goes_back_empty),
          TEST(receive_refuses_a_broken_ring), TEST(config_reads_zero),
          TEST(malformed_transmit_needs_reset))
