/* SPDX-License-Identifier: MIT */
/*
 * Packet capture of network backends: two stream backends share one
 * capture; what each sends (one iovec or several) and what each delivers
 * is in the pcap file once, whole, in order, as libpcap reads it back; a
 * frame the device refused first is written when it is taken, once; a
 * capture is given before start only; a failed write is reported at
 * close; a path that cannot be written is refused with libpcap's reason.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"

/* The device side: takes frames unless told to refuse the next. */
struct device {
    unsigned taken, refuse_next;
};

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct device *d = opaque;
    if (d->refuse_next) {
        d->refuse_next--;
        return false;
    }
    d->taken++;
    return true;
}

static struct vmdev_event_loop *loop;
static struct device dev;
static const struct vmdev_net_callbacks callbacks = { on_receive, NULL, NULL,
                                                      &dev };

static void run_ready(void)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

/* A frame of the test: `len` bytes saying `tag` and their position. */
static void fill(uint8_t *p, size_t len, uint8_t tag)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)(tag + k);
}

/* The peer writes one frame in the stream's framing. */
static bool peer_writes(int peer, size_t len, uint8_t tag)
{
    uint8_t buf[4 + 2048];
    uint32_t be = htonl((uint32_t)len);
    memcpy(buf, &be, 4);
    fill(buf + 4, len, tag);
    return write(peer, buf, 4 + len) == (ssize_t)(4 + len);
}

struct expect {
    size_t len;
    uint8_t tag;
};

static void frames_both_ways_in_order_once(void)
{
    char dir[] = "/tmp/vmdev-capture-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof(path), "%s/net.pcap", dir);
    char why[256] = "";
    struct vmdev_net_capture *cap = vmdev_net_capture_new(path, why,
                                                           sizeof(why));
    CHECK(cap != NULL);

    struct timespec began, ended;
    clock_gettime(CLOCK_REALTIME, &began);
    struct vmdev_net_backend *nb[2];
    int peer[2];
    for (unsigned i = 0; i < 2; i++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        peer[i] = sv[1];
        nb[i] = vmdev_net_stream_new_from_fd(sv[0], loop);
        CHECK(nb[i] != NULL);
        CHECK_EQ(vmdev_net_set_capture(nb[i], cap), 0);
        CHECK_EQ(vmdev_net_start(nb[i], &callbacks), 0);
    }
    /* Given before start only. */
    CHECK_EQ(vmdev_net_set_capture(nb[0], NULL), -EBUSY);

    uint8_t a[100], b[1514];
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    /* Sent in three pieces, then in one. */
    struct iovec pieces[3] = { { a, 10 }, { a + 10, 50 }, { a + 60, 40 } };
    CHECK_EQ(vmdev_net_send(nb[0], pieces, 3), 0);
    CHECK_EQ(vmdev_net_send(nb[1], &(struct iovec){ b, sizeof(b) }, 1), 0);
    /* Delivered: the first offer refused, so written when taken. */
    dev.refuse_next = 1;
    CHECK(peer_writes(peer[1], 60, 3));
    run_ready();
    CHECK_EQ(dev.taken, 0);
    vmdev_net_resume_receive(nb[1]);
    run_ready();
    CHECK_EQ(dev.taken, 1);
    CHECK(peer_writes(peer[0], 2000, 4));
    run_ready();
    CHECK_EQ(dev.taken, 2);
    CHECK_EQ(vmdev_net_capture_frames(cap), 4);
    clock_gettime(CLOCK_REALTIME, &ended);
    for (unsigned i = 0; i < 2; i++) {
        vmdev_net_free(nb[i]);
        close(peer[i]);
    }
    CHECK_EQ(vmdev_net_capture_flush(cap), 0);
    vmdev_net_capture_free(cap);

    /* What libpcap reads back: each stamp in nanoseconds, within the
     * test's time, none before the one written before it. */
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *in = pcap_open_offline_with_tstamp_precision(
        path, PCAP_TSTAMP_PRECISION_NANO, err);
    CHECK(in != NULL);
    CHECK_EQ(pcap_datalink(in), DLT_EN10MB);
    const struct expect want[] = { { 100, 1 }, { 1514, 2 }, { 60, 3 },
                                   { 2000, 4 } };
    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t last_ns = (uint64_t)began.tv_sec * 1000000000u +
                       (uint64_t)began.tv_nsec;
    uint64_t end_ns = (uint64_t)ended.tv_sec * 1000000000u +
                      (uint64_t)ended.tv_nsec;
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ(pcap_next_ex(in, &hdr, &data), 1);
        CHECK_EQ(hdr->caplen, want[i].len);
        CHECK_EQ(hdr->len, want[i].len);
        uint8_t expected[2048];
        fill(expected, want[i].len, want[i].tag);
        CHECK(memcmp(data, expected, want[i].len) == 0);
        uint64_t ns = (uint64_t)hdr->ts.tv_sec * 1000000000u +
                      (uint64_t)hdr->ts.tv_usec;
        CHECK(ns >= last_ns);
        CHECK(ns <= end_ns);
        last_ns = ns;
    }
    CHECK_EQ(pcap_next_ex(in, &hdr, &data), PCAP_ERROR_BREAK); /* the end */
    pcap_close(in);
    unlink(path);
    rmdir(dir);
}

/* A write that fails (no room) makes the close say so. */
static void failed_write_reported_at_close(void)
{
    struct vmdev_net_capture *cap = vmdev_net_capture_new("/dev/full",
                                                           NULL, 0);
    CHECK(cap != NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct vmdev_net_backend *nb = vmdev_net_stream_new_from_fd(sv[0], loop);
    CHECK(nb != NULL);
    CHECK_EQ(vmdev_net_set_capture(nb, cap), 0);
    CHECK_EQ(vmdev_net_start(nb, &callbacks), 0);
    uint8_t f[60];
    fill(f, sizeof(f), 5);
    CHECK_EQ(vmdev_net_send(nb, &(struct iovec){ f, sizeof(f) }, 1), 0);
    vmdev_net_free(nb);
    close(sv[1]);
    CHECK_EQ(vmdev_net_capture_flush(cap), -ENOSPC);
    vmdev_net_capture_free(cap);
}

static void unwritable_path_refused(void)
{
    char why[256] = "";
    errno = 0;
    CHECK(vmdev_net_capture_new("/nonexistent-vmdev-dir/net.pcap", why,
                                 sizeof(why)) == NULL);
    CHECK(errno != 0);
    CHECK(strstr(why, "/nonexistent-vmdev-dir/net.pcap") != NULL);
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
}

static void cleanup(void)
{
    vmdev_event_loop_free(loop);
}

TEST_MAIN(TEST(setup), TEST(frames_both_ways_in_order_once),
          TEST(failed_write_reported_at_close),
          TEST(unwritable_path_refused), TEST(cleanup))
