/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1) driven as Linux's virtio_net drives it,
 * through the driver-side library, with stream-socket backends whose
 * peers are this test: frames the guest sends come out of the peer's end
 * of the socket, frames the peer writes land in the guest's buffers. The
 * backends' event loop runs by hand, as an I/O thread would run it. For
 * offloads that pass through, a backend kind of the test's own carries
 * them as a tap with its virtio-net header does.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net_frames.h"
#include "offload_peer.h"
#include "test.h"
#include "virtio/devices/net_offload.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_net.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (48u << 20)
#define MAX_PAIRS 4
#define MAX_QUEUES (2 * MAX_PAIRS + 1)
#define HDR 12u

/* Feature bits (5.1.3). */
#define F_CSUM 0
#define F_GUEST_CSUM 1
#define F_MTU 3
#define F_MAC 5
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_GUEST_ECN 9
#define F_HOST_TSO4 11
#define F_HOST_TSO6 12
#define F_HOST_ECN 13
#define F_MRG_RXBUF 15
#define F_STATUS 16
#define F_CTRL_VQ 17
#define F_CTRL_RX 18
#define F_GUEST_ANNOUNCE 21
#define F_MQ 22
#define F_CTRL_MAC_ADDR 23
#define F_NOTF_COAL 53

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static struct vdrv_mem mem;
static struct vdrv_queue queues[MAX_QUEUES];
static uint64_t buffer_of[MAX_QUEUES][1024]; /* head -> guest address */
static struct vmdev_virtio_net *net;
static struct vmdev_virtio_device *dev;
static struct vmdev_event_loop *loop;
static int peers[MAX_PAIRS];
static unsigned num_peers;
static unsigned queue_irqs[MAX_QUEUES], config_irqs;
static uint8_t frame[80 * 1024], got[80 * 1024];

struct setup {
    uint16_t pairs, backends, mtu, queue_size;
    uint64_t features; /* accepted by the driver; 0: all offered */
    struct vmdev_virtio_net_coalesce rx_coalesce, tx_coalesce;
    bool offload_backend; /* one offload_peer instead of stream sockets */
};

static struct offload_peer *opeer;

static void on_interrupt(void *opaque, enum vmdev_virtio_irq_reason reason,
                         uint16_t queue)
{
    (void)opaque;
    if (reason == VMDEV_VIRTIO_IRQ_CONFIG)
        config_irqs++;
    else if (queue < MAX_QUEUES)
        queue_irqs[queue]++;
}

static void run_ready(void)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

static void stop(void)
{
    vmdev_virtio_net_free(net);
    net = NULL;
    for (unsigned i = 0; i < num_peers; i++)
        close(peers[i]);
    num_peers = 0;
    vmdev_event_loop_free(loop);
    loop = NULL;
    vdrv_mem_release(&mem);
}

static uint64_t driver_features;

/* The driver's side of a (re)start: reset, features, fresh rings,
 * DRIVER_OK. */
static void driver_start(void)
{
    vmdev_virtio_set_status(dev, 0);
    vdrv_accept_features(dev, driver_features);
    bool event_idx = vmdev_virtio_has_feature(dev, VMDEV_VIRTIO_F_EVENT_IDX);
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        vdrv_queue_init(&queues[i], &mem, dev->queues[i].config.max_size,
                        event_idx);
        vdrv_queue_config(&queues[i], &dev->queues[i].config);
    }
    vmdev_virtio_set_status(dev, 0xf);
}

/* A device negotiated and running, its peers connected. */
static bool start(const struct setup *s)
{
    stop();
    memset(queue_irqs, 0, sizeof(queue_irqs));
    config_irqs = 0;
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 2) ||
        !(loop = vmdev_event_loop_new()))
        return false;
    struct vmdev_net_backend *backends[MAX_PAIRS];
    uint16_t nb = s->backends ? s->backends : 1;
    if (s->offload_backend) {
        if (!(opeer = offload_peer_new(loop)))
            return false;
        backends[0] = &opeer->base;
        nb = 1;
    }
    for (unsigned i = s->offload_backend ? 1 : 0; i < nb; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
            return false;
        peers[num_peers++] = sv[1];
        if (!(backends[i] = vmdev_net_stream_new_from_fd(sv[0], loop)))
            return false;
    }
    struct vmdev_virtio_net_config cfg = {
        .num_pairs = s->pairs, .queue_size = s->queue_size, .mtu = s->mtu,
        .backends = backends, .num_backends = nb,
        .rx_coalesce = s->rx_coalesce, .tx_coalesce = s->tx_coalesce,
    };
    memcpy(cfg.mac, our_mac, 6);
    if (!(net = vmdev_virtio_net_new("net0", mem.mem, &cfg)))
        return false;
    dev = vmdev_virtio_net_device(net);
    dev->transport = (struct vmdev_virtio_transport){ on_interrupt, NULL };
    driver_features = s->features ? s->features : UINT64_MAX;
    driver_start();
    run_ready();
    return vmdev_virtio_is_running(dev);
}

static uint64_t with(unsigned bit)
{
    return UINT64_C(1) << bit;
}

/* --- Transmit: the guest's side, then the peer's --- */

/* Queue hdr and frame on pair's transmit queue, header and frame in
 * separate buffers as Linux lays them out without ANY_LAYOUT. */
static void guest_send(uint16_t pair, const struct virtio_net_hdr *hdr,
                       const void *data, size_t len, bool kick)
{
    struct vdrv_buf out[2] = { { vdrv_alloc(&mem, HDR, 8), HDR },
                               { vdrv_alloc(&mem, len ? len : 1, 8),
                                 (uint32_t)len } };
    vdrv_write(&mem, out[0].gpa, hdr, HDR);
    vdrv_write(&mem, out[1].gpa, data, len);
    if (vdrv_add(&queues[2 * pair + 1], out, len ? 2 : 1, NULL, 0, false) < 0)
        abort();
    if (kick)
        vdrv_notify(dev, (uint16_t)(2 * pair + 1));
}

/* The next frame the peer got, or 0 when there is none. */
static size_t peer_read(unsigned b, uint8_t *buf)
{
    uint8_t len_be[4];
    ssize_t n = recv(peers[b], len_be, 4, MSG_DONTWAIT | MSG_PEEK);
    if (n != 4)
        return 0;
    size_t len = (size_t)len_be[0] << 24 | (size_t)len_be[1] << 16 |
                 (size_t)len_be[2] << 8 | len_be[3];
    if (recv(peers[b], len_be, 4, MSG_DONTWAIT) != 4)
        return 0;
    size_t have = 0;
    while (have < len) {
        struct pollfd pfd = { peers[b], POLLIN, 0 };
        if (poll(&pfd, 1, 5000) != 1)
            return 0;
        n = recv(peers[b], buf + have, len - have, 0);
        if (n <= 0)
            return 0;
        have += (size_t)n;
    }
    return len;
}

static bool peer_write(unsigned b, const void *data, size_t len)
{
    uint8_t len_be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                          (uint8_t)(len >> 8), (uint8_t)len };
    struct iovec iov[2] = { { len_be, 4 }, { (void *)data, len } };
    return writev(peers[b], iov, 2) == (ssize_t)(4 + len);
}

static size_t used_count(uint16_t queue)
{
    size_t n = 0;
    uint32_t id, len;
    while (vdrv_get_used(&queues[queue], &id, &len))
        n++;
    return n;
}

static void fill_frame(uint8_t *f, size_t len, const uint8_t *dst, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
    memcpy(f, dst, 6);
    f[6] = 0x52; /* a unicast source */
    f[12] = 0x88;
    f[13] = 0xb5; /* local experimental ethertype */
}

/* --- Receive --- */

/* Give the device n buffers of size bytes on pair's receive queue and
 * kick only when the device asked for it, as Linux does. */
static void guest_add_rx(uint16_t pair, unsigned n, uint32_t size)
{
    uint16_t q = (uint16_t)(2 * pair);
    uint16_t old = queues[q].avail_idx;
    for (unsigned i = 0; i < n; i++) {
        struct vdrv_buf in = { vdrv_alloc(&mem, size, 8), size };
        int head = vdrv_add(&queues[q], NULL, 0, &in, 1, false);
        if (head < 0)
            abort();
        buffer_of[q][head] = in.gpa;
    }
    if (vdrv_kick_needed(&queues[q], old))
        vdrv_notify(dev, q);
}

/* Reassemble the next received frame: its header, frame bytes and the
 * number of buffers it took; false when none is there. */
static bool guest_receive(uint16_t pair, struct virtio_net_hdr *hdr,
                          uint8_t *data, size_t *len)
{
    uint16_t q = (uint16_t)(2 * pair);
    uint32_t id, n;
    if (!vdrv_get_used(&queues[q], &id, &n) || n < HDR)
        return false;
    vdrv_read(&mem, buffer_of[q][id], hdr, HDR);
    vdrv_read(&mem, buffer_of[q][id] + HDR, data, n - HDR);
    *len = n - HDR;
    for (unsigned i = 1; i < le16toh(hdr->num_buffers); i++) {
        if (!vdrv_get_used(&queues[q], &id, &n))
            return false;
        vdrv_read(&mem, buffer_of[q][id], data + *len, n);
        *len += n;
    }
    return true;
}

/* --- Control queue --- */

/* 5.1.2: the control queue follows all the pairs with MQ, one without. */
static uint16_t ctrl_queue(void)
{
    return vmdev_virtio_has_feature(dev, F_MQ) ? (uint16_t)(dev->num_queues - 1)
                                               : 2;
}

/* Send class, command and data; the ack byte, or -1 without an answer. */
static int ctrl(uint8_t class, uint8_t cmd, const void *data, size_t len)
{
    uint16_t q = ctrl_queue();
    struct vdrv_buf out[2] = { { vdrv_alloc(&mem, 2, 8), 2 },
                               { vdrv_alloc(&mem, len ? len : 1, 8),
                                 (uint32_t)len } };
    struct vdrv_buf in = { vdrv_alloc(&mem, 1, 8), 1 };
    uint8_t head[2] = { class, cmd }, ack = 0xee;
    vdrv_write(&mem, out[0].gpa, head, 2);
    vdrv_write(&mem, out[1].gpa, data, len);
    vdrv_write(&mem, in.gpa, &ack, 1);
    if (vdrv_add(&queues[q], out, len ? 2 : 1, &in, 1, false) < 0)
        abort();
    vdrv_notify(dev, q);
    uint32_t id, n;
    if (!vdrv_get_used(&queues[q], &id, &n) || n != 1)
        return -1;
    vdrv_read(&mem, in.gpa, &ack, 1);
    return ack;
}

static uint16_t config_status(void)
{
    uint16_t status;
    vmdev_virtio_read_config(dev, 6, &status, 2);
    return le16toh(status);
}

/* ================================================================== */

static void configuration_and_features(void)
{
    struct setup s = { .pairs = 3, .mtu = 9000 };
    CHECK(start(&s));
    uint8_t mac[6];
    uint16_t pairs, mtu;
    vmdev_virtio_read_config(dev, 0, mac, 6);
    vmdev_virtio_read_config(dev, 8, &pairs, 2);
    vmdev_virtio_read_config(dev, 10, &mtu, 2);
    CHECK(memcmp(mac, our_mac, 6) == 0);
    CHECK_EQ(config_status(), 1); /* link up */
    CHECK_EQ(le16toh(pairs), 3);
    CHECK_EQ(le16toh(mtu), 9000);
    CHECK_EQ(dev->num_queues, 7);
    uint64_t f = dev->device_features;
    static const unsigned offered[] = {
        F_CSUM, F_MTU, F_MAC, F_HOST_TSO4, F_HOST_TSO6, F_HOST_ECN,
        F_MRG_RXBUF, F_STATUS, F_CTRL_VQ, F_CTRL_RX, F_MQ, F_CTRL_MAC_ADDR,
        F_GUEST_ANNOUNCE, F_NOTF_COAL,
    };
    for (unsigned i = 0; i < sizeof(offered) / sizeof(offered[0]); i++)
        CHECK(f & with(offered[i]));
    /* Plain-frame backends: no large or partly checksummed frames in. */
    CHECK(!(f & with(F_GUEST_CSUM)) && !(f & with(F_GUEST_TSO4)));

    struct setup one = { 0 };
    CHECK(start(&one));
    CHECK(!(dev->device_features & with(F_MQ)));
    CHECK(!(dev->device_features & with(F_MTU)));
    CHECK_EQ(dev->num_queues, 3);
}

static void refuses_bad_configurations(void)
{
    stop();
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    struct {
        uint16_t pairs, size, mtu, backends;
        uint8_t mac0;
    } bad[] = {
        { VMDEV_VIRTIO_NET_MAX_PAIRS + 1, 0, 0, 1, 0 },
        { 1, 100, 0, 1, 0 },   /* not a power of two */
        { 1, 32, 0, 1, 0 },    /* too small */
        { 1, 2048, 0, 1, 0 },  /* too large */
        { 1, 0, 67, 1, 0 },    /* MTU under 68 */
        { 1, 0, 0, 2, 0 },     /* more backends than pairs */
        { 1, 0, 0, 1, 0x01 },  /* a multicast MAC */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmdev_net_backend *b[2];
        int sv[2][2];
        for (unsigned k = 0; k < bad[i].backends; k++) {
            CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[k]) == 0);
            b[k] = vmdev_net_stream_new_from_fd(sv[k][0], loop);
            CHECK(b[k] != NULL);
        }
        struct vmdev_virtio_net_config cfg = {
            .mac = { bad[i].mac0 }, .num_pairs = bad[i].pairs,
            .queue_size = bad[i].size, .mtu = bad[i].mtu, .backends = b,
            .num_backends = bad[i].backends,
        };
        errno = 0;
        CHECK(vmdev_virtio_net_new("net0", NULL, &cfg) == NULL);
        CHECK_EQ(errno, EINVAL);
        /* The device closed the backends: the peers see the end. */
        for (unsigned k = 0; k < bad[i].backends; k++) {
            char c;
            CHECK_EQ(read(sv[k][1], &c, 1), 0);
            close(sv[k][1]);
        }
    }
}

static void transmits_frames_to_the_backend(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    struct virtio_net_hdr hdr = { 0 };
    static const size_t sizes[] = { 14, 60, 1514, 9014, VMDEV_NET_MAX_FRAME };
    for (unsigned i = 0; i < 5; i++) {
        fill_frame(frame, sizes[i], our_mac, (uint8_t)i);
        guest_send(0, &hdr, frame, sizes[i], true);
    }
    run_ready();
    for (unsigned i = 0; i < 5; i++) {
        fill_frame(frame, sizes[i], our_mac, (uint8_t)i);
        CHECK_EQ(peer_read(0, got), sizes[i]);
        CHECK(memcmp(got, frame, sizes[i]) == 0);
    }
    CHECK_EQ(used_count(1), 5);
    CHECK(queue_irqs[1] > 0);
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.tx_frames, 5);
    CHECK_EQ(st.tx_dropped, 0);
    CHECK_EQ(vmdev_virtio_net_queue_stats(net, 1).frames, 5);

    /* Too short to be Ethernet, too long to be a frame: dropped, the
     * buffers still come back. */
    guest_send(0, &hdr, frame, 13, false);
    guest_send(0, &hdr, frame, VMDEV_NET_MAX_FRAME + 1, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), 0);
    CHECK_EQ(used_count(1), 2);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, 2);
    CHECK(vmdev_virtio_is_running(dev));
}

/* Chains the device drops count towards a wake-up's batch like frames it
 * sends: a ring full of them does not hold the loop in one go. */
static void dropped_transmits_share_the_batch(void)
{
    struct setup s = { .queue_size = 1024 };
    CHECK(start(&s));
    struct virtio_net_hdr hdr = { 0 };
    struct virtio_net_hdr ecn_alone = { .gso_type = VIRTIO_NET_HDR_GSO_ECN };
    unsigned total = 500;
    for (unsigned i = 0; i < total; i++) {
        fill_frame(frame, 60, our_mac, (uint8_t)i);
        if (i % 2)
            guest_send(0, &hdr, frame, 13, false); /* too short */
        else
            guest_send(0, &ecn_alone, frame, 60, false); /* refused */
    }
    vdrv_notify(dev, 1);
    CHECK(vmdev_event_loop_run_once(loop, 0) > 0);
    size_t first = used_count(1);
    CHECK(first > 0);
    CHECK(first < total);
    run_ready();
    CHECK_EQ(first + used_count(1), total);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, total);
    CHECK_EQ(peer_read(0, got), 0);
    CHECK(vmdev_virtio_is_running(dev));
}

static void restart_driver(void *arg)
{
    (void)arg;
    driver_start();
}

/* Completions the device counted before a reset were the old session's:
 * the new one's coalescing starts from none of them (the reset comes
 * while the frame is being sent, after its buffers went back). */
static void reset_while_sending_forgets_completions(void)
{
    struct setup s = { .offload_backend = true,
                       .features = ~with(F_NOTF_COAL),
                       .tx_coalesce = { .usecs = 60u * 1000 * 1000,
                                        .frames = 2 } };
    CHECK(start(&s));
    struct virtio_net_hdr hdr = { 0 };
    fill_frame(frame, 100, our_mac, 1);
    opeer->on_send = restart_driver;
    guest_send(0, &hdr, frame, 100, true);
    run_ready();
    opeer->on_send = NULL;
    CHECK_EQ(opeer->sent_frames, 1);
    CHECK(vmdev_virtio_is_running(dev));
    memset(queue_irqs, 0, sizeof(queue_irqs));
    guest_send(0, &hdr, frame, 100, true);
    run_ready();
    CHECK_EQ(opeer->sent_frames, 2);
    CHECK_EQ(queue_irqs[1], 0); /* one frame of two */
    guest_send(0, &hdr, frame, 100, true);
    run_ready();
    CHECK_EQ(queue_irqs[1], 1);
}

/* A header alone with nothing after it is a transmit the device drops;
 * a chain shorter than the header is a driver bug (5.1.6.2). */
static void short_transmit_header_is_a_guest_error(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    struct vdrv_buf out = { vdrv_alloc(&mem, 11, 8), 11 };
    CHECK(vdrv_add(&queues[1], &out, 1, NULL, 0, false) >= 0);
    vdrv_notify(dev, 1);
    run_ready();
    CHECK(!vmdev_virtio_is_running(dev));
    CHECK(dev->status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(dev->guest_errors, 1);
    CHECK_EQ(peer_read(0, got), 0);
}

static void completes_checksums_and_segments(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    /* A UDP datagram with its checksum left to the device. */
    struct nf_spec udp = { .proto = NF_PROTO_UDP, .payload_len = 999 };
    struct nf_layout l;
    size_t len = nf_build(frame, &udp, &l);
    uint16_t off = nf_leave_partial(frame, len, &l);
    struct virtio_net_hdr hdr = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                  .csum_start = htole16((uint16_t)l.l4),
                                  .csum_offset = htole16(off) };
    guest_send(0, &hdr, frame, len, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), len);
    CHECK(nf_l4_ok(got, len, &l));

    /* 60000 bytes of TCP over IPv6 as one frame, MSS 1440. */
    struct nf_spec tcp = { .ipv6 = true, .proto = NF_PROTO_TCP,
                           .payload_len = 60000, .seq = 777,
                           .tcp_flags = NF_TCP_ACK | NF_TCP_PSH, .seed = 5 };
    len = nf_build(frame, &tcp, &l);
    off = nf_leave_partial(frame, len, &l);
    hdr = (struct virtio_net_hdr){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
        .hdr_len = htole16((uint16_t)l.payload),
        .gso_size = htole16(1440), .csum_start = htole16((uint16_t)l.l4),
        .csum_offset = htole16(off) };
    guest_send(0, &hdr, frame, len, true);
    run_ready();
    size_t payload = 0, n;
    unsigned segments = 0;
    while ((n = peer_read(0, got)) != 0) {
        struct nf_layout sl;
        CHECK(nf_parse(got, n, &sl));
        CHECK(nf_ip_ok(got, n, &sl) && nf_l4_ok(got, n, &sl));
        CHECK_EQ(nf_tcp_seq(got, &sl), 777 + payload);
        CHECK(memcmp(got + sl.payload, frame + l.payload + payload,
                     n - sl.payload) == 0);
        payload += n - sl.payload;
        segments++;
    }
    CHECK_EQ(payload, 60000);
    CHECK_EQ(segments, (60000 + 1439) / 1440);
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.tx_segments, segments);
    CHECK_EQ(st.tx_checksums, 1);
    CHECK_EQ(st.tx_frames, 2);
}

/* Offloads the driver did not accept, and headers that lie, drop the
 * frame and nothing else. */
static void refuses_offloads_not_negotiated_or_lying(void)
{
    struct setup s = { .features = ~(with(F_HOST_TSO4) | with(F_CSUM) |
                                     with(F_HOST_ECN)) };
    CHECK(start(&s));
    struct nf_spec tcp = { .proto = NF_PROTO_TCP, .payload_len = 3000 };
    struct nf_layout l;
    size_t len = nf_build(frame, &tcp, &l);
    struct virtio_net_hdr tso4 = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                   .gso_size = htole16(1000) };
    struct virtio_net_hdr csum = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                   .csum_start = htole16(34),
                                   .csum_offset = htole16(16) };
    guest_send(0, &tso4, frame, len, false);
    guest_send(0, &csum, frame, len, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), 0);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, 2);

    struct setup all = { 0 };
    CHECK(start(&all));
    len = nf_build(frame, &tcp, &l);
    struct virtio_net_hdr lies[] = {
        /* The checksum field past the end. */
        { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
          .csum_start = htole16((uint16_t)len), .csum_offset = 0 },
        { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
          .csum_start = htole16((uint16_t)(len - 1)), .csum_offset = 0 },
        { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0xffff,
          .csum_offset = 0xffff },
        /* TSO of the wrong IP version, of UDP, with no segment size. */
        { .gso_type = VIRTIO_NET_HDR_GSO_TCPV6, .gso_size = htole16(1000) },
        { .gso_type = VIRTIO_NET_HDR_GSO_UDP, .gso_size = htole16(1000) },
        { .gso_type = VIRTIO_NET_HDR_GSO_UDP_L4, .gso_size = htole16(1000) },
        { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 0 },
        { .gso_type = 0x7f, .gso_size = htole16(1000) },
    };
    unsigned n = sizeof(lies) / sizeof(lies[0]);
    for (unsigned i = 0; i < n; i++)
        guest_send(0, &lies[i], frame, len, i + 1 == n);
    /* TSO on a frame cut inside its TCP header. */
    guest_send(0, &tso4, frame, l.l4 + 10, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), 0);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, n + 1);
    CHECK_EQ(used_count(1), n + 1);
    CHECK(vmdev_virtio_is_running(dev));
}

/* The peer stops reading: the device stops taking the guest's frames
 * (they wait in the ring), then sends them all once it can. */
static void transmit_back_pressure(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    int small = 4096;
    CHECK(setsockopt(peers[0], SOL_SOCKET, SO_RCVBUF, &small,
                     sizeof(small)) == 0);
    struct virtio_net_hdr hdr = { 0 };
    unsigned total = 120; /* two descriptors each: nearly the ring */
    for (unsigned i = 0; i < total; i++) {
        fill_frame(frame, 9000, our_mac, (uint8_t)i);
        guest_send(0, &hdr, frame, 9000, i + 1 == total);
    }
    run_ready();
    size_t returned = used_count(1);
    CHECK(returned < total);
    unsigned seen = 0, idle = 0;
    size_t n;
    while (seen < total) {
        bool progress = false;
        while ((n = peer_read(0, got)) != 0) {
            fill_frame(frame, 9000, our_mac, (uint8_t)seen);
            CHECK_EQ(n, 9000);
            CHECK(memcmp(got, frame, n) == 0);
            seen++;
            progress = true;
        }
        if (vmdev_event_loop_run_once(loop, 100) > 0)
            progress = true;
        /* Five seconds with nothing moving: the device is stuck. */
        idle = progress ? 0 : idle + 1;
        CHECK(idle < 50);
    }
    returned += used_count(1);
    CHECK_EQ(returned, total);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, 0);
}

static void receives_into_merged_buffers(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    guest_add_rx(0, 64, 1536);
    static const size_t sizes[] = { 60, 1514, 1524, 1525, 9014, 65550 };
    for (unsigned i = 0; i < 6; i++) {
        fill_frame(frame, sizes[i], our_mac, (uint8_t)i);
        CHECK(peer_write(0, frame, sizes[i]));
    }
    run_ready();
    for (unsigned i = 0; i < 6; i++) {
        struct virtio_net_hdr hdr;
        size_t len;
        CHECK(guest_receive(0, &hdr, got, &len));
        fill_frame(frame, sizes[i], our_mac, (uint8_t)i);
        CHECK_EQ(len, sizes[i]);
        CHECK(memcmp(got, frame, len) == 0);
        CHECK_EQ(le16toh(hdr.num_buffers), (sizes[i] + HDR + 1535) / 1536);
        CHECK_EQ(hdr.flags, 0);
        CHECK_EQ(hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    }
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.rx_frames, 6);
    CHECK_EQ(vmdev_virtio_net_queue_stats(net, 0).frames, 6);
    CHECK(queue_irqs[0] > 0);
}

/* Without MRG_RXBUF a frame takes one buffer; one it cannot fit is
 * dropped, and the buffer stays for the next. */
static void receives_into_single_buffers(void)
{
    struct setup s = { .features = ~with(F_MRG_RXBUF) };
    CHECK(start(&s));
    guest_add_rx(0, 4, 1526);
    fill_frame(frame, 1515, our_mac, 1);
    CHECK(peer_write(0, frame, 1515));
    fill_frame(frame, 1514, our_mac, 2);
    CHECK(peer_write(0, frame, 1514));
    run_ready();
    struct virtio_net_hdr hdr;
    size_t len;
    CHECK(guest_receive(0, &hdr, got, &len));
    CHECK_EQ(len, 1514);
    CHECK(memcmp(got, frame, len) == 0);
    CHECK_EQ(le16toh(hdr.num_buffers), 1);
    CHECK(!guest_receive(0, &hdr, got, &len));
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_dropped, 1);
}

/* No buffers: the backend keeps the frames and stops reading; buffers
 * bring them all, in order, none lost. */
static void receive_back_pressure(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    unsigned total = 40; /* what the socket holds without a reader */
    for (unsigned i = 0; i < total; i++) {
        fill_frame(frame, 1000, our_mac, (uint8_t)i);
        CHECK(peer_write(0, frame, 1000));
    }
    run_ready();
    struct virtio_net_hdr hdr;
    size_t len;
    CHECK(!guest_receive(0, &hdr, got, &len));
    unsigned seen = 0;
    while (seen < total) {
        guest_add_rx(0, 7, 2048);
        run_ready();
        while (guest_receive(0, &hdr, got, &len)) {
            fill_frame(frame, 1000, our_mac, (uint8_t)seen);
            CHECK_EQ(len, 1000);
            CHECK(memcmp(got, frame, len) == 0);
            seen++;
        }
        CHECK(seen <= total);
    }
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_frames, total);
    /* A frame larger than every buffer the ring can hold is dropped
     * rather than holding everything behind it. */
    struct setup tiny = { .queue_size = 64 };
    CHECK(start(&tiny));
    guest_add_rx(0, 64, 64);
    fill_frame(frame, 9000, our_mac, 1);
    CHECK(peer_write(0, frame, 9000));
    fill_frame(frame, 100, our_mac, 2);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK(guest_receive(0, &hdr, got, &len));
    CHECK_EQ(len, 100);
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_dropped, 1);
}

/* Frames that need several buffers when the driver has too few: the
 * buffers go back, the device asks to be kicked for more (2.7.10), and a
 * driver that kicks only when asked (EVENT_IDX) still gets every frame. */
static void merged_frames_wait_for_enough_buffers(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    CHECK(vmdev_virtio_has_feature(dev, VMDEV_VIRTIO_F_EVENT_IDX));
    unsigned total = 20;
    for (unsigned i = 0; i < total; i++) {
        fill_frame(frame, 5000, our_mac, (uint8_t)i);
        CHECK(peer_write(0, frame, 5000)); /* 5012 bytes: 5 buffers */
    }
    guest_add_rx(0, 3, 1024);
    run_ready();
    struct virtio_net_hdr hdr;
    size_t len;
    CHECK(!guest_receive(0, &hdr, got, &len));
    unsigned seen = 0;
    for (unsigned round = 0; seen < total && round < 400; round++) {
        guest_add_rx(0, 1, 1024);
        run_ready();
        while (guest_receive(0, &hdr, got, &len)) {
            fill_frame(frame, 5000, our_mac, (uint8_t)seen);
            CHECK_EQ(len, 5000);
            CHECK_EQ(le16toh(hdr.num_buffers), 5);
            CHECK(memcmp(got, frame, len) == 0);
            seen++;
        }
    }
    CHECK_EQ(seen, total);
}

/* Frames that arrive before the driver is ready wait for it. */
static void frames_wait_for_driver_ok(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    vmdev_virtio_set_status(dev, 0); /* reset */
    fill_frame(frame, 200, our_mac, 9);
    CHECK(peer_write(0, frame, 200));
    run_ready();
    vdrv_accept_all_features(dev);
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        vdrv_queue_init(&queues[i], &mem, dev->queues[i].config.max_size,
                        true);
        vdrv_queue_config(&queues[i], &dev->queues[i].config);
    }
    vmdev_virtio_set_status(dev, 0xf);
    guest_add_rx(0, 4, 2048);
    run_ready();
    struct virtio_net_hdr hdr;
    size_t len;
    CHECK(guest_receive(0, &hdr, got, &len));
    CHECK_EQ(len, 200);
    CHECK(memcmp(got, frame, len) == 0);
}

static void receive_buffer_without_room_for_header(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    guest_add_rx(0, 1, 11);
    fill_frame(frame, 60, our_mac, 0);
    CHECK(peer_write(0, frame, 60));
    run_ready();
    CHECK(dev->status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(dev->guest_errors, 1);
}

/* 5.1.6.5.1, .2: promiscuous by default; then only our address, the
 * tables, broadcast, and multicast when asked. */
static void filters_as_the_driver_asks(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    guest_add_rx(0, 64, 2048);
    static const uint8_t other[6] = { 0x52, 0x54, 0, 0, 0, 9 };
    static const uint8_t listed[6] = { 0x52, 0x54, 0, 0, 0, 7 };
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
    static const uint8_t mcast2[6] = { 0x33, 0x33, 0, 0, 0, 1 };
    const uint8_t *dsts[] = { our_mac, other, listed, bcast, mcast, mcast2 };
    struct virtio_net_hdr hdr;
    size_t len;
#define DELIVERED(dst)                                                         \
    (fill_frame(frame, 64, dst, 0), peer_write(0, frame, 64) &&                \
                                        (run_ready(), true) &&                 \
                                        guest_receive(0, &hdr, got, &len))
    for (unsigned i = 0; i < 6; i++)
        CHECK(DELIVERED(dsts[i]));
    uint8_t off = 0, on = 1;
    CHECK_EQ(ctrl(0, 0, &off, 1), 0); /* PROMISC off */
    uint8_t tables[4 + 6 + 4 + 6] = { 1, 0, 0, 0 };
    memcpy(tables + 4, listed, 6);
    tables[10] = 1;
    memcpy(tables + 14, mcast2, 6);
    CHECK_EQ(ctrl(1, 0, tables, sizeof(tables)), 0); /* MAC_TABLE_SET */
    CHECK(DELIVERED(our_mac));
    CHECK(!DELIVERED(other));
    CHECK(DELIVERED(listed));
    CHECK(DELIVERED(bcast));
    CHECK(!DELIVERED(mcast));
    CHECK(DELIVERED(mcast2));
    CHECK_EQ(ctrl(0, 1, &on, 1), 0); /* ALLMULTI */
    CHECK(DELIVERED(mcast));
    /* A new address through CTRL_MAC_ADDR. */
    CHECK_EQ(ctrl(1, 1, other, 6), 0);
    CHECK(DELIVERED(other));
    CHECK(!DELIVERED(our_mac));
    uint8_t now[6];
    vmdev_virtio_net_mac(net, now);
    CHECK(memcmp(now, other, 6) == 0);
    /* More addresses than the table holds: all of that kind. */
    static uint8_t big[4 + 65 * 6 + 4];
    big[0] = 65;
    CHECK_EQ(ctrl(1, 0, big, sizeof(big)), 0);
    CHECK(DELIVERED(our_mac));
    CHECK(DELIVERED(listed));
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_filtered, 3);
    /* A reset forgets it all. */
    vmdev_virtio_set_status(dev, 0);
    vmdev_virtio_net_mac(net, now);
    CHECK(memcmp(now, our_mac, 6) == 0);
#undef DELIVERED
}

static void control_commands_that_are_wrong(void)
{
    struct setup s = { .pairs = 2 };
    CHECK(start(&s));
    uint8_t two = 2, mac_mcast[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t pairs0 = htole16(0), pairs3 = htole16(3);
    uint8_t table_lies[4] = { 0xff, 0xff, 0xff, 0xff }; /* 4G entries */
    uint32_t coal[3] = { 0 };
    CHECK_EQ(ctrl(0, 0, &two, 1), 1);            /* on/off not 0 or 1 */
    CHECK_EQ(ctrl(0, 0, NULL, 0), 1);            /* no data */
    CHECK_EQ(ctrl(0, 2, &two, 1), 1);            /* ALLUNI: not offered */
    CHECK_EQ(ctrl(1, 1, mac_mcast, 6), 1);       /* multicast address */
    CHECK_EQ(ctrl(1, 1, mac_mcast, 5), 1);       /* short */
    CHECK_EQ(ctrl(1, 0, table_lies, 4), 1);      /* counts past the data */
    CHECK_EQ(ctrl(4, 0, &pairs0, 2), 1);         /* 0 pairs */
    CHECK_EQ(ctrl(4, 0, &pairs3, 2), 1);         /* more than offered */
    CHECK_EQ(ctrl(6, 0, coal, sizeof(coal)), 1); /* trailing bytes */
    CHECK_EQ(ctrl(2, 0, NULL, 0), 1);            /* VLAN: not offered */
    CHECK_EQ(ctrl(99, 0, NULL, 0), 1);
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.ctrl_commands, 11);
    CHECK_EQ(st.ctrl_errors, 11);
    CHECK(vmdev_virtio_is_running(dev));
    /* No room for the ack: the driver is broken. */
    uint16_t q = (uint16_t)(dev->num_queues - 1);
    struct vdrv_buf out = { vdrv_alloc(&mem, 2, 8), 2 };
    CHECK(vdrv_add(&queues[q], &out, 1, NULL, 0, false) >= 0);
    vdrv_notify(dev, q);
    CHECK(dev->status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* A driver without MQ uses one pair, and the control queue is queue 2
 * however many pairs the device has (5.1.2). */
static void control_queue_without_multiqueue(void)
{
    struct setup s = { .pairs = 3, .features = ~with(F_MQ) };
    CHECK(start(&s));
    CHECK(!vmdev_virtio_has_feature(dev, F_MQ));
    uint8_t on = 1, off = 0;
    CHECK_EQ(ctrl(0, 0, &off, 1), 0); /* PROMISC off: answered on queue 2 */
    CHECK_EQ(vmdev_virtio_net_stats(net).ctrl_commands, 1);
    CHECK_EQ(ctrl(0, 1, &on, 1), 0); /* ALLMULTI */
    /* Pair 0 still receives and sends. */
    guest_add_rx(0, 4, 2048);
    fill_frame(frame, 200, our_mac, 7);
    CHECK(peer_write(0, frame, 200));
    run_ready();
    struct virtio_net_hdr hdr;
    size_t len;
    CHECK(guest_receive(0, &hdr, got, &len));
    CHECK_EQ(len, 200);
    CHECK(memcmp(got, frame, 200) == 0);
    struct virtio_net_hdr tx = { 0 };
    guest_send(0, &tx, frame, 200, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), 200);
    CHECK(vmdev_virtio_is_running(dev));
}

/* Four pairs on one backend: every transmit queue reaches it, with its
 * own counters; pairs in use are set through the control queue. */
static void multiqueue_pairs(void)
{
    struct setup s = { .pairs = 4 };
    CHECK(start(&s));
    uint16_t four = htole16(4), five = htole16(5);
    CHECK_EQ(ctrl(4, 0, &four, 2), 0);
    CHECK_EQ(ctrl(4, 0, &five, 2), 1);
    struct virtio_net_hdr hdr = { 0 };
    for (uint16_t p = 0; p < 4; p++) {
        for (unsigned i = 0; i <= p; i++) {
            fill_frame(frame, 100 + p, our_mac, (uint8_t)p);
            guest_send(p, &hdr, frame, 100 + p, true);
        }
    }
    run_ready();
    unsigned count = 0;
    while (peer_read(0, got))
        count++;
    CHECK_EQ(count, 1 + 2 + 3 + 4);
    for (uint16_t p = 0; p < 4; p++) {
        struct vmdev_virtio_net_queue_stats q =
            vmdev_virtio_net_queue_stats(net, (uint16_t)(2 * p + 1));
        CHECK_EQ(q.frames, p + 1u);
        CHECK_EQ(q.bytes, (p + 1u) * (100u + p));
    }

    /* Two backends: each feeds its own pair's receive queue. */
    struct setup two = { .pairs = 2, .backends = 2 };
    CHECK(start(&two));
    uint16_t n2 = htole16(2);
    CHECK_EQ(ctrl(4, 0, &n2, 2), 0);
    guest_add_rx(0, 4, 2048);
    guest_add_rx(1, 4, 2048);
    fill_frame(frame, 300, our_mac, 1);
    CHECK(peer_write(1, frame, 300));
    run_ready();
    struct virtio_net_hdr h;
    size_t len;
    CHECK(!guest_receive(0, &h, got, &len));
    CHECK(guest_receive(1, &h, got, &len));
    CHECK_EQ(len, 300);
    fill_frame(frame, 200, our_mac, 2);
    guest_send(1, &hdr, frame, 200, true);
    run_ready();
    CHECK_EQ(peer_read(0, got), 0);
    CHECK_EQ(peer_read(1, got), 200);
    /* Back to one pair: the second backend's frames go to the first. */
    uint16_t n1 = htole16(1);
    CHECK_EQ(ctrl(4, 0, &n1, 2), 0);
    CHECK(peer_write(1, frame, 300));
    run_ready();
    CHECK(!guest_receive(1, &h, got, &len));
    CHECK(guest_receive(0, &h, got, &len));
    CHECK_EQ(len, 300);
    /* A backend waiting for pair 0's buffers while pair 1 is out of use
     * is woken by them. */
    while (guest_receive(0, &h, got, &len))
        ;
    for (unsigned i = 0; i < 6; i++)
        CHECK(peer_write(1, frame, 300));
    run_ready();
    unsigned got0 = 0;
    while (guest_receive(0, &h, got, &len))
        got0++;
    CHECK_EQ(got0, 3); /* four buffers given, one used above */
    guest_add_rx(0, 4, 2048);
    run_ready();
    while (guest_receive(0, &h, got, &len))
        got0++;
    CHECK_EQ(got0, 6);
}

/* Each pair's two queues are the group of its backend (pair i on backend
 * i % backends); the control queue is a group of its own. */
static void queue_groups_follow_the_backends(void)
{
    struct setup s = { .pairs = 4, .backends = 2 };
    CHECK(start(&s));
    const uint16_t on_two[9] = { 0, 0, 1, 1, 0, 0, 1, 1, 8 };
    for (uint16_t q = 0; q < 9; q++)
        CHECK_EQ(vmdev_virtio_queue_group(dev, q), on_two[q]);
    s.backends = 1;
    CHECK(start(&s));
    for (uint16_t q = 0; q < 8; q++)
        CHECK_EQ(vmdev_virtio_queue_group(dev, q), 0);
    CHECK_EQ(vmdev_virtio_queue_group(dev, 8), 8);
}

static void link_state_and_announce(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    CHECK(vmdev_virtio_net_announce(net));
    CHECK_EQ(config_status(), 3);
    CHECK_EQ(config_irqs, 1);
    CHECK_EQ(ctrl(3, 0, NULL, 0), 0); /* ANNOUNCE_ACK */
    CHECK_EQ(config_status(), 1);
    /* The peer goes away: link down, a configuration interrupt, and
     * frames sent meanwhile are dropped. */
    close(peers[0]);
    peers[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    run_ready();
    CHECK_EQ(config_status(), 0);
    CHECK_EQ(config_irqs, 2);
    struct virtio_net_hdr hdr = { 0 };
    fill_frame(frame, 100, our_mac, 0);
    guest_send(0, &hdr, frame, 100, true);
    run_ready();
    CHECK_EQ(used_count(1), 1);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, 1);

    struct setup no_announce = { .features = ~with(F_GUEST_ANNOUNCE) };
    CHECK(start(&no_announce));
    CHECK(!vmdev_virtio_net_announce(net));
    CHECK_EQ(config_status(), 1);
}

/* 5.1.6.5.6 (virtio 1.3's text): frames then time bound the receive
 * interrupts; new parameters apply at once; either one 0 means an
 * interrupt per frame; reset means none. */
static void coalesces_interrupts(void)
{
    struct setup s = { 0 };
    CHECK(start(&s));
    guest_add_rx(0, 64, 2048);
    uint32_t coal[2] = { htole32(4), htole32(60u * 1000 * 1000) };
    CHECK_EQ(ctrl(6, 1, coal, sizeof(coal)), 0); /* RX_SET */
    queue_irqs[0] = 0;
    for (unsigned i = 0; i < 3; i++) {
        fill_frame(frame, 100, our_mac, (uint8_t)i);
        CHECK(peer_write(0, frame, 100));
        run_ready();
    }
    CHECK_EQ(queue_irqs[0], 0);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 1);
    struct virtio_net_hdr hdr;
    size_t len;
    unsigned received = 0;
    while (guest_receive(0, &hdr, got, &len))
        received++; /* and asks for the next interrupt, as Linux does */
    CHECK_EQ(received, 4);
    /* The time bound: one frame, interrupt once 2 ms have passed. */
    coal[0] = htole32(1000);
    coal[1] = htole32(2000);
    CHECK_EQ(ctrl(6, 1, coal, sizeof(coal)), 0);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 1);
    for (int i = 0; i < 100 && queue_irqs[0] == 1; i++)
        CHECK(vmdev_event_loop_run_once(loop, 100) >= 0);
    CHECK_EQ(queue_irqs[0], 2);
    while (guest_receive(0, &hdr, got, &len))
        ;
    /* New parameters are checked at once: a frame waiting under a long
     * bound is notified when the driver sets a shorter one. */
    coal[0] = htole32(1000);
    coal[1] = htole32(60u * 1000 * 1000);
    CHECK_EQ(ctrl(6, 1, coal, sizeof(coal)), 0);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 2);
    coal[0] = htole32(0); /* max_packets 0: after every packet */
    CHECK_EQ(ctrl(6, 1, coal, sizeof(coal)), 0);
    CHECK_EQ(queue_irqs[0], 3);
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.rx_coalesce_set.frames, 0);
    CHECK_EQ(st.rx_coalesce_set.usecs, 0); /* as the device takes it */
    CHECK_EQ(st.tx_coalesce_set.usecs, 0);
    while (guest_receive(0, &hdr, got, &len))
        ;
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 4);

    /* The host's defaults hold for a driver that cannot set its own, from
     * the start and after a reset... */
    struct vmdev_virtio_net_coalesce slow = { .usecs = 60u * 1000 * 1000,
                                              .frames = 2 };
    struct setup host = { .rx_coalesce = slow,
                          .features = ~with(F_NOTF_COAL) };
    CHECK(start(&host));
    guest_add_rx(0, 8, 2048);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 0);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 1);
    /* ...while one that can starts from none (reset: all 0). */
    struct setup driver = { .rx_coalesce = slow };
    CHECK(start(&driver));
    CHECK(vmdev_virtio_has_feature(dev, F_NOTF_COAL));
    guest_add_rx(0, 8, 2048);
    CHECK(peer_write(0, frame, 100));
    run_ready();
    CHECK_EQ(queue_irqs[0], 1);
}

/* A TCP frame of payload bytes over IPv4 or IPv6 as a stack hands it to
 * a card with TSO: one frame, the TCP checksum left partial. */
static size_t tso_frame(bool ipv6, size_t payload, struct nf_layout *l,
                        struct vmdev_net_offload *o)
{
    struct nf_spec tcp = { .ipv6 = ipv6, .proto = NF_PROTO_TCP,
                           .payload_len = payload, .seq = 1000,
                           .tcp_flags = NF_TCP_ACK, .seed = 9 };
    size_t len = nf_build(frame, &tcp, l);
    uint16_t off = nf_leave_partial(frame, len, l);
    *o = (struct vmdev_net_offload){
        .flags = VMDEV_NET_OFFLOAD_NEEDS_CSUM,
        .gso_type = ipv6 ? VMDEV_NET_GSO_TCPV6 : VMDEV_NET_GSO_TCPV4,
        .hdr_len = (uint16_t)l->payload, .gso_size = 1448,
        .csum_start = (uint16_t)l->l4, .csum_offset = off };
    return len;
}

/* 5.1.6.2 and 5.1.6.4 on a backend that carries offloads (a tap): they
 * pass through untouched both ways, checked on the way out. */
static void passes_offloads_through_a_backend_that_carries_them(void)
{
    struct setup s = { .offload_backend = true };
    CHECK(start(&s));
    uint64_t f = dev->device_features;
    CHECK(f & with(F_GUEST_CSUM) && f & with(F_GUEST_TSO4) &&
          f & with(F_GUEST_TSO6) && f & with(F_GUEST_ECN));
    CHECK_EQ(opeer->receive_offloads, OFFLOAD_PEER_ALL);

    /* Out: 30000 bytes of TCP as one frame, neither cut nor summed here. */
    struct nf_layout l;
    struct vmdev_net_offload o;
    size_t len = tso_frame(false, 30000, &l, &o);
    struct virtio_net_hdr hdr = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
        .hdr_len = htole16(o.hdr_len), .gso_size = htole16(1448),
        .csum_start = htole16(o.csum_start),
        .csum_offset = htole16(o.csum_offset) };
    guest_send(0, &hdr, frame, len, true);
    run_ready();
    CHECK_EQ(opeer->sent_len, len);
    CHECK(opeer->sent_with_offload);
    CHECK(memcmp(&opeer->sent, &o, sizeof(o)) == 0);
    CHECK(memcmp(opeer->frame, frame, len) == 0);
    struct vmdev_virtio_net_stats st = vmdev_virtio_net_stats(net);
    CHECK_EQ(st.tx_segments, 0);
    CHECK_EQ(st.tx_checksums, 0);

    /* A checksum field past the frame's end is not passed on. */
    opeer->sent_len = 0;
    hdr = (struct virtio_net_hdr){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .csum_start = htole16((uint16_t)(len - 4)),
        .csum_offset = htole16(4) };
    guest_send(0, &hdr, frame, len, true);
    /* Nor a frame whose headers are not what its GSO type says. */
    hdr = (struct virtio_net_hdr){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
        .hdr_len = htole16(o.hdr_len), .gso_size = htole16(1448),
        .csum_start = htole16(o.csum_start),
        .csum_offset = htole16(o.csum_offset) };
    guest_send(0, &hdr, frame, len, true);
    /* Nor segmentation without NEEDS_CSUM (5.1.6.2.1), nor ECN alone. */
    hdr = (struct virtio_net_hdr){ .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                   .gso_size = htole16(1448) };
    guest_send(0, &hdr, frame, len, true);
    hdr = (struct virtio_net_hdr){ .gso_type = VIRTIO_NET_HDR_GSO_ECN };
    guest_send(0, &hdr, frame, len, true);
    run_ready();
    CHECK_EQ(opeer->sent_len, 0);
    CHECK(!opeer->sent_bad_checksum_field);
    CHECK_EQ(vmdev_virtio_net_stats(net).tx_dropped, 4);

    /* What the host is told of a segmentation frame comes from its parsed
     * headers, not from the driver's hints (5.1.6.2.2). */
    hdr = (struct virtio_net_hdr){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
        .hdr_len = htole16(7), .gso_size = htole16(1448),
        .csum_start = htole16(o.csum_start),
        .csum_offset = htole16(o.csum_offset) };
    len = tso_frame(false, 30000, &l, &o);
    guest_send(0, &hdr, frame, len, true);
    run_ready();
    CHECK_EQ(opeer->sent_len, len);
    CHECK_EQ(opeer->sent.hdr_len, l.payload);

    /* In: a 20000-byte TCP over IPv6 frame reaches the driver whole, its
     * header saying what is left to do. */
    guest_add_rx(0, 16, 4096);
    len = tso_frame(true, 20000, &l, &o);
    CHECK(net_backend_deliver(&opeer->base, frame, len, &o));
    size_t n;
    CHECK(guest_receive(0, &hdr, got, &n));
    CHECK_EQ(n, len);
    CHECK(memcmp(got, frame, len) == 0);
    CHECK_EQ(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CHECK_EQ(hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    CHECK_EQ(le16toh(hdr.gso_size), 1448);
    CHECK_EQ(le16toh(hdr.hdr_len), o.hdr_len);
    CHECK_EQ(le16toh(hdr.csum_start), o.csum_start);
    CHECK_EQ(le16toh(hdr.csum_offset), o.csum_offset);
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_frames, 1);
}

/* The backend is told which receive offloads the driver took; a frame
 * that needs more (read before it was told) is dropped, DATA_VALID
 * without GUEST_CSUM is cleared (5.1.6.4.1: flags zero). */
static void receive_offloads_follow_the_driver(void)
{
    struct setup s = { .offload_backend = true,
                       .features = ~(with(F_GUEST_TSO4) | with(F_GUEST_TSO6) |
                                     with(F_GUEST_ECN)) };
    CHECK(start(&s));
    CHECK_EQ(opeer->receive_offloads, VMDEV_NET_CAN_CSUM);
    guest_add_rx(0, 16, 4096);
    struct nf_layout l;
    struct vmdev_net_offload o;
    size_t len = tso_frame(false, 5000, &l, &o);
    CHECK(net_backend_deliver(&opeer->base, frame, len, &o));
    struct virtio_net_hdr hdr;
    size_t n;
    CHECK(!guest_receive(0, &hdr, got, &n));
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_dropped, 1);

    struct vmdev_net_offload valid = { .flags = VMDEV_NET_OFFLOAD_DATA_VALID };
    fill_frame(frame, 100, our_mac, 1);
    CHECK(net_backend_deliver(&opeer->base, frame, 100, &valid));
    CHECK(guest_receive(0, &hdr, got, &n));
    CHECK_EQ(hdr.flags, VIRTIO_NET_HDR_F_DATA_VALID);

    /* A reset takes them all back until the next driver says. */
    vmdev_virtio_set_status(dev, 0);
    run_ready();
    CHECK_EQ(opeer->receive_offloads, 0);

    s.features = ~(with(F_GUEST_CSUM) | with(F_GUEST_TSO4) |
                   with(F_GUEST_TSO6) | with(F_GUEST_ECN));
    CHECK(start(&s));
    CHECK_EQ(opeer->receive_offloads, 0);
    guest_add_rx(0, 16, 4096);
    CHECK(net_backend_deliver(&opeer->base, frame, 100, &valid));
    CHECK(guest_receive(0, &hdr, got, &n));
    CHECK_EQ(hdr.flags, 0);
    CHECK_EQ(n, 100);
    struct vmdev_net_offload partial = { .flags = VMDEV_NET_OFFLOAD_NEEDS_CSUM,
                                         .csum_start = 34, .csum_offset = 6 };
    CHECK(net_backend_deliver(&opeer->base, frame, 100, &partial));
    CHECK(!guest_receive(0, &hdr, got, &n));
    CHECK_EQ(vmdev_virtio_net_stats(net).rx_dropped, 1);
}

static void cleanup(void)
{
    stop();
}

TEST_MAIN(TEST(configuration_and_features),
          TEST(refuses_bad_configurations),
          TEST(transmits_frames_to_the_backend),
          TEST(short_transmit_header_is_a_guest_error),
          TEST(dropped_transmits_share_the_batch),
          TEST(reset_while_sending_forgets_completions),
          TEST(completes_checksums_and_segments),
          TEST(refuses_offloads_not_negotiated_or_lying),
          TEST(transmit_back_pressure),
          TEST(receives_into_merged_buffers),
          TEST(receives_into_single_buffers),
          TEST(receive_back_pressure),
          TEST(merged_frames_wait_for_enough_buffers),
          TEST(frames_wait_for_driver_ok),
          TEST(receive_buffer_without_room_for_header),
          TEST(filters_as_the_driver_asks),
          TEST(control_commands_that_are_wrong),
          TEST(control_queue_without_multiqueue), TEST(multiqueue_pairs),
          TEST(queue_groups_follow_the_backends),
          TEST(link_state_and_announce),
          TEST(coalesces_interrupts),
          TEST(passes_offloads_through_a_backend_that_carries_them),
          TEST(receive_offloads_follow_the_driver),
          TEST(cleanup))
