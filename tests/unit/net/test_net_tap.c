/* SPDX-License-Identifier: MIT */
/*
 * The tap backend's frame handling, on a SOCK_SEQPACKET socket pair that
 * stands in for a tap queue (one read, one frame; one write, one frame):
 * frames both ways from several buffers, frames too short to be Ethernet,
 * back-pressure holding one frame and keeping the order, a refused write.
 * test_net_tap_kernel.c does the same against real taps and a bridge.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"

#define MAX_FRAMES 64

struct device {
    unsigned frames, room, writable_calls;
    size_t len[MAX_FRAMES];
    uint8_t data[MAX_FRAMES][2048];
};

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct device *d = opaque;
    if (!d->room || d->frames == MAX_FRAMES || len > sizeof(d->data[0]))
        return false;
    d->room--;
    d->len[d->frames] = len;
    memcpy(d->data[d->frames++], frame, len);
    return true;
}

static void on_writable(void *opaque)
{
    ((struct device *)opaque)->writable_calls++;
}

static struct vmdev_event_loop *loop;
static struct device dev;
static int peer;

static struct vmdev_net_backend *pair(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return NULL;
    peer = sv[1];
    struct vmdev_net_backend *nb = vmdev_net_tap_from_fd(sv[0], loop);
    struct vmdev_net_callbacks cb = { on_receive, on_writable, NULL, &dev };
    if (nb && vmdev_net_start(nb, &cb)) {
        vmdev_net_free(nb);
        return NULL;
    }
    return nb;
}

static void run_ready(void)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

static void put_frame(size_t len, uint8_t tag)
{
    uint8_t f[2048];
    memset(f, tag, len);
    if (write(peer, f, len) != (ssize_t)len)
        abort();
}

static void frames_both_ways(void)
{
    memset(&dev, 0, sizeof(dev));
    dev.room = 10;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    put_frame(60, 1);
    put_frame(1514, 2);
    run_ready();
    CHECK_EQ(dev.frames, 2);
    CHECK_EQ(dev.len[0], 60);
    CHECK_EQ(dev.data[0][59], 1);
    CHECK_EQ(dev.len[1], 1514);
    CHECK_EQ(dev.data[1][1513], 2);

    /* One frame from three buffers reaches the tap as one frame. */
    uint8_t a[14], b[100], c[886];
    memset(a, 0xa, sizeof(a));
    memset(b, 0xb, sizeof(b));
    memset(c, 0xc, sizeof(c));
    struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) },
                            { c, sizeof(c) } };
    CHECK_EQ(vmdev_net_send(nb, iov, 3), 0);
    uint8_t got[2048];
    CHECK_EQ(read(peer, got, sizeof(got)), 1000);
    CHECK(got[0] == 0xa && got[13] == 0xa && got[14] == 0xb &&
          got[113] == 0xb && got[114] == 0xc && got[999] == 0xc);
    struct vmdev_net_stats st = vmdev_net_stats(nb);
    CHECK_EQ(st.rx_frames, 2);
    CHECK_EQ(st.rx_bytes, 60 + 1514);
    CHECK_EQ(st.tx_frames, 1);
    CHECK_EQ(st.tx_bytes, 1000);
    vmdev_net_free(nb);
    close(peer);
}

static void short_frames_are_dropped_and_counted(void)
{
    memset(&dev, 0, sizeof(dev));
    dev.room = 10;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    put_frame(13, 1);
    put_frame(1, 2);
    put_frame(14, 3);
    run_ready();
    CHECK_EQ(dev.frames, 1);
    CHECK_EQ(dev.len[0], 14);
    CHECK_EQ(dev.data[0][0], 3);
    CHECK_EQ(vmdev_net_stats(nb).rx_errors, 2);
    vmdev_net_free(nb);
    close(peer);
}

static void back_pressure_holds_one_frame_in_order(void)
{
    memset(&dev, 0, sizeof(dev));
    dev.room = 1;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    for (uint8_t i = 1; i <= 5; i++)
        put_frame(60 + i, i);
    run_ready();
    /* One taken, one held; the other three still in the socket. */
    CHECK_EQ(dev.frames, 1);
    run_ready();
    CHECK_EQ(dev.frames, 1);
    dev.room = 2;
    vmdev_net_resume_receive(nb);
    run_ready();
    CHECK_EQ(dev.frames, 3);
    dev.room = 10;
    vmdev_net_resume_receive(nb);
    run_ready();
    CHECK_EQ(dev.frames, 5);
    for (unsigned i = 0; i < 5; i++) {
        CHECK_EQ(dev.len[i], 61 + i);
        CHECK_EQ(dev.data[i][0], i + 1);
    }
    vmdev_net_free(nb);
    close(peer);
}

static void refused_write_is_an_error(void)
{
    memset(&dev, 0, sizeof(dev));
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    /* The other end gone: the write fails as a down tap's does. */
    close(peer);
    uint8_t f[60] = { 0 };
    struct iovec iov = { f, sizeof(f) };
    CHECK_EQ(vmdev_net_send(nb, &iov, 1), -EIO);
    CHECK_EQ(vmdev_net_stats(nb).tx_frames, 0);
    vmdev_net_free(nb);
}

static void bad_configurations_are_named(void)
{
    char why[200];
    struct vmdev_net_backend *b[2] = { NULL, NULL };
    struct vmdev_event_loop *loops[2] = { loop, loop };
    struct vmdev_net_tap_config c = { "a-name-far-too-long", NULL, 1 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "a-name-far-too-long") != NULL);
    c = (struct vmdev_net_tap_config){ "", NULL, 1 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    c = (struct vmdev_net_tap_config){ "a/b", NULL, 1 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    c = (struct vmdev_net_tap_config){ "tap0", NULL, 0 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "1 to 16 queues") != NULL);
    c = (struct vmdev_net_tap_config){ "tap0", NULL, 17 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    c = (struct vmdev_net_tap_config){ "tap0", "", 1 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    CHECK(b[0] == NULL && b[1] == NULL);
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
}

TEST_MAIN(TEST(setup),
          TEST(frames_both_ways),
          TEST(short_frames_are_dropped_and_counted),
          TEST(back_pressure_holds_one_frame_in_order),
          TEST(refused_write_is_an_error),
          TEST(bad_configurations_are_named))
