/* SPDX-License-Identifier: MIT */
/*
 * The tap backend against the kernel, in a network namespace of its own
 * (so it needs CAP_SYS_ADMIN and CAP_NET_ADMIN; without them it skips, exit
 * 77): a two-queue tap created on a bridge, frames from each queue reaching
 * a packet socket on the bridge and a frame from the bridge reaching the
 * tap; offloads crossing the kernel between two taps through their
 * virtio-net headers (a segmentation frame arrives whole where the
 * receiving tap takes segmentation, cut and summed by the kernel where it
 * does not); an existing tap attached again, also to the bridge it is on;
 * the refusals that name the problem with nothing left behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_frames.h"
#include "test.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"

/* IEEE 802 local experimental ethertype: nothing else in the namespace
 * sends it. */
#define TEST_ETHERTYPE 0x88b5
#define FRAME_LEN 100

struct device {
    unsigned frames;
    uint8_t last[FRAME_LEN];
    size_t last_len;
};

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct device *d = opaque;
    const uint8_t *f = frame;
    /* The kernel sends its own (IPv6 router solicitations and the like). */
    if (len == FRAME_LEN && f[12] == TEST_ETHERTYPE >> 8 &&
        f[13] == (TEST_ETHERTYPE & 0xff)) {
        d->frames++;
        memcpy(d->last, frame, len);
        d->last_len = len;
    }
    return true;
}

static struct vmdev_event_loop *loop;
static struct device dev;

/* TCP frames of the test's flow (net_frames' default ports) that a tap
 * handed over: how many, their payload, the last one's offloads, and
 * whether every frame that came without a partial checksum verified. */
struct tcp_sink {
    unsigned frames;
    size_t payload, last_len, largest;
    bool last_had_offload;
    struct vmdev_net_offload last;
    bool checksums_ok;
};

static bool on_tcp(void *opaque, const void *frame, size_t len,
                   const struct vmdev_net_offload *offload)
{
    struct tcp_sink *t = opaque;
    struct nf_layout l;
    const uint8_t *f = frame;
    if (!nf_parse(f, len, &l) || l.proto != NF_PROTO_TCP ||
        f[l.l4] != 40000 >> 8 || f[l.l4 + 1] != (40000 & 0xff))
        return true;
    t->frames++;
    t->payload += len - l.payload;
    t->last_len = len;
    if (len > t->largest)
        t->largest = len;
    t->last_had_offload = offload != NULL;
    if (offload)
        t->last = *offload;
    if (!(offload && offload->flags & VMDEV_NET_OFFLOAD_NEEDS_CSUM) &&
        !(nf_ip_ok(f, len, &l) && nf_l4_ok(f, len, &l)))
        t->checksums_ok = false;
    return true;
}

static int if_ioctl(unsigned long request, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int ret = s < 0 || ioctl(s, request, ifr) < 0 ? -errno : 0;
    if (s >= 0)
        close(s);
    return ret;
}

static int set_up(const char *name)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    int ret = if_ioctl(SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    return ret ? ret : if_ioctl(SIOCSIFFLAGS, &ifr);
}

static bool is_up(const char *name)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    return if_ioctl(SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
}

/* A broadcast test frame whose payload is all tag. */
static void make_frame(uint8_t *f, uint8_t tag)
{
    memset(f, 0xff, 6);
    static const uint8_t src[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
    memcpy(f + 6, src, 6);
    f[12] = TEST_ETHERTYPE >> 8;
    f[13] = TEST_ETHERTYPE & 0xff;
    memset(f + 14, tag, FRAME_LEN - 14);
}

/* A packet socket on the bridge, for the test frames only. */
static int bridge_socket(const char *bridge)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   htons(TEST_ETHERTYPE));
    if (s < 0)
        return -1;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                               .sll_protocol = htons(TEST_ETHERTYPE),
                               .sll_ifindex = (int)if_nametoindex(bridge) };
    if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        close(s);
        return -1;
    }
    return s;
}

/* The next test frame on s, within 5 s: its payload tag, or -1. */
static int next_tag(int s)
{
    struct pollfd p = { s, POLLIN, 0 };
    uint8_t f[2048];
    while (poll(&p, 1, 5000) == 1) {
        ssize_t n = recv(s, f, sizeof(f), 0);
        if (n == FRAME_LEN)
            return f[FRAME_LEN - 1];
    }
    return -1;
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    CHECK(set_up("lo") == 0);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    CHECK(ioctl(s, SIOCBRADDBR, "vmdevbr0") == 0);
    close(s);
    CHECK(set_up("vmdevbr0") == 0);
}

static void multi_queue_tap_on_a_bridge(void)
{
    memset(&dev, 0, sizeof(dev));
    struct vmdev_event_loop *loops[2] = { loop, loop };
    struct vmdev_net_backend *b[2];
    char why[200] = "";
    struct vmdev_net_tap_config c = { "vmdevtap0", "vmdevbr0", 2 };
    int ret = vmdev_net_tap_new(&c, loops, b, why, sizeof(why));
    if (ret)
        fprintf(stderr, "tap_open: %s\n", why);
    CHECK_EQ(ret, 0);
    CHECK(is_up("vmdevtap0"));
    struct vmdev_net_callbacks cb = { on_receive, NULL, NULL, &dev };
    CHECK_EQ(vmdev_net_start(b[0], &cb), 0);
    CHECK_EQ(vmdev_net_start(b[1], &cb), 0);
    int s = bridge_socket("vmdevbr0");
    CHECK(s >= 0);

    /* Each queue's frames go through the tap into the bridge. */
    uint8_t f[FRAME_LEN];
    for (unsigned q = 0; q < 2; q++) {
        make_frame(f, (uint8_t)(0x10 + q));
        struct iovec iov = { f, sizeof(f) };
        CHECK_EQ(vmdev_net_send(b[q], &iov, 1), 0);
        CHECK_EQ(next_tag(s), 0x10 + q);
    }

    /* The bridge floods a broadcast to its port, the tap: one of the two
     * queues reads it. */
    make_frame(f, 0x20);
    CHECK_EQ(send(s, f, sizeof(f), 0), (ssize_t)sizeof(f));
    for (int i = 0; i < 50 && !dev.frames; i++)
        vmdev_event_loop_run_once(loop, 100);
    CHECK_EQ(dev.frames, 1);
    CHECK_EQ(dev.last[FRAME_LEN - 1], 0x20);
    uint64_t rx = vmdev_net_stats(b[0]).rx_frames + vmdev_net_stats(b[1]).rx_frames;
    CHECK(rx >= 1);
    close(s);
    vmdev_net_free(b[0]);
    vmdev_net_free(b[1]);
    /* Created here, it goes with its last queue. */
    CHECK_EQ(if_nametoindex("vmdevtap0"), 0);
}

static void offloads_cross_the_kernel(void)
{
    struct vmdev_event_loop *loops[1] = { loop };
    struct vmdev_net_backend *a, *b;
    char why[200] = "";
    struct vmdev_net_tap_config ca = { "vmdevtapa", "vmdevbr0", 1 };
    struct vmdev_net_tap_config cb = { "vmdevtapb", "vmdevbr0", 1 };
    CHECK_EQ(vmdev_net_tap_new(&ca, loops, &a, why, sizeof(why)), 0);
    CHECK_EQ(vmdev_net_tap_new(&cb, loops, &b, why, sizeof(why)), 0);
    CHECK_EQ(vmdev_net_offloads(a), VMDEV_NET_CAN_CSUM | VMDEV_NET_CAN_TSO4 |
                                        VMDEV_NET_CAN_TSO6 | VMDEV_NET_CAN_ECN);
    struct tcp_sink sink_a = { .checksums_ok = true };
    struct tcp_sink sink_b = { .checksums_ok = true };
    struct vmdev_net_callbacks cb_a = { on_tcp, NULL, NULL, &sink_a };
    struct vmdev_net_callbacks cb_b = { on_tcp, NULL, NULL, &sink_b };
    CHECK_EQ(vmdev_net_start(a, &cb_a), 0);
    CHECK_EQ(vmdev_net_start(b, &cb_b), 0);
    CHECK_EQ(vmdev_net_set_receive_offloads(b, VMDEV_NET_CAN_CSUM |
                                                   VMDEV_NET_CAN_TSO4), 0);

    /* 20000 bytes of TCP in one frame with its checksum left partial, out
     * of tap a: the bridge floods it (its destination is unknown) to b. */
    static uint8_t f[32768];
    struct nf_spec tcp = { .proto = NF_PROTO_TCP, .payload_len = 20000,
                           .tcp_flags = NF_TCP_ACK, .seed = 3 };
    struct nf_layout l;
    size_t len = nf_build(f, &tcp, &l);
    struct vmdev_net_offload o = {
        .flags = VMDEV_NET_OFFLOAD_NEEDS_CSUM,
        .gso_type = VMDEV_NET_GSO_TCPV4, .hdr_len = (uint16_t)l.payload,
        .gso_size = 1448, .csum_start = (uint16_t)l.l4,
        .csum_offset = nf_leave_partial(f, len, &l) };
    struct iovec iov = { f, len };
    CHECK_EQ(vmdev_net_send_offload(a, &iov, 1, &o), 0);
    for (int i = 0; i < 50 && !sink_b.frames; i++)
        vmdev_event_loop_run_once(loop, 100);
    /* b takes segmentation: the frame arrives whole, still to be cut. */
    CHECK_EQ(sink_b.frames, 1);
    CHECK_EQ(sink_b.last_len, len);
    CHECK(sink_b.last_had_offload);
    CHECK_EQ(sink_b.last.gso_type, VMDEV_NET_GSO_TCPV4);
    CHECK_EQ(sink_b.last.gso_size, 1448);
    CHECK(sink_b.last.flags & VMDEV_NET_OFFLOAD_NEEDS_CSUM);

    /* b takes nothing: the kernel cuts and sums it on the way. */
    CHECK_EQ(vmdev_net_set_receive_offloads(b, 0), 0);
    sink_b = (struct tcp_sink){ .checksums_ok = true };
    CHECK_EQ(vmdev_net_send_offload(a, &iov, 1, &o), 0);
    for (int i = 0; i < 50 && sink_b.payload < 20000; i++)
        vmdev_event_loop_run_once(loop, 100);
    CHECK_EQ(sink_b.payload, 20000);
    CHECK_EQ(sink_b.frames, (20000 + 1447) / 1448);
    CHECK(sink_b.largest <= 1514);
    CHECK(sink_b.checksums_ok);
    CHECK_EQ(sink_a.frames, 0);

    /* An offload the header cannot carry is refused before the kernel. */
    struct vmdev_net_offload udp = { .gso_type = 3 /* UDP fragmentation */ };
    CHECK_EQ(vmdev_net_send_offload(a, &iov, 1, &udp), -EINVAL);
    vmdev_net_free(a);
    vmdev_net_free(b);
}

/* A persistent tap made beforehand (as an administrator would with
 * `ip tuntap add`): attached, not created, and left in place. */
static void an_existing_tap_is_attached(void)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmdevtap1");
    CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
    CHECK(ioctl(fd, TUNSETPERSIST, 1) == 0);
    close(fd);

    struct vmdev_event_loop *loops[2] = { loop, loop };
    struct vmdev_net_backend *b[2] = { NULL, NULL };
    char why[200] = "";
    /* Made single-queue: two queues are refused, and said why. */
    struct vmdev_net_tap_config c = { "vmdevtap1", NULL, 2 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "is not a multi-queue tap") != NULL);
    c.num_queues = 1;
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), 0);
    CHECK(is_up("vmdevtap1"));
    vmdev_net_free(b[0]);
    CHECK(if_nametoindex("vmdevtap1") != 0);
    /* Put on the bridge by one run, it is still there for the next. */
    c.bridge = "vmdevbr0";
    for (int run = 0; run < 2; run++) {
        if (vmdev_net_tap_new(&c, loops, b, why, sizeof(why)))
            fprintf(stderr, "run %d: %s\n", run, why);
        CHECK(b[0] != NULL);
        vmdev_net_free(b[0]);
    }

    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
    CHECK(ioctl(fd, TUNSETPERSIST, 0) == 0);
    close(fd);
}

static void bridge_refusals_leave_nothing(void)
{
    struct vmdev_event_loop *loops[1] = { loop };
    struct vmdev_net_backend *b[1] = { NULL };
    char why[200] = "";
    struct vmdev_net_tap_config c = { "vmdevtap2", "nosuchbr", 1 };
    CHECK_EQ(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)), -ENODEV);
    CHECK(strstr(why, "no bridge named nosuchbr") != NULL);
    CHECK_EQ(if_nametoindex("vmdevtap2"), 0);
    c.bridge = "lo";
    CHECK(vmdev_net_tap_new(&c, loops, b, why, sizeof(why)) < 0);
    CHECK(strstr(why, "lo is not a Linux bridge") != NULL);
    CHECK_EQ(if_nametoindex("vmdevtap2"), 0);
    CHECK(b[0] == NULL);
}

int main(int argc, char **argv)
{
    /* A namespace of its own: nothing here touches the host's network. */
    if (unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "skipped: cannot make a network namespace (%s); "
                "these tests need CAP_SYS_ADMIN and CAP_NET_ADMIN\n",
                strerror(errno));
        return 77;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "skipped: no /dev/net/tun (%s)\n", strerror(errno));
        return 77;
    }
    close(fd);
    static const struct test_case cases[] = {
        TEST(setup),
        TEST(multi_queue_tap_on_a_bridge),
        TEST(offloads_cross_the_kernel),
        TEST(an_existing_tap_is_attached),
        TEST(bridge_refusals_leave_nothing),
    };
    return test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
