/* SPDX-License-Identifier: MIT */
/*
 * The user-mode (libslirp) backend, driven the way a guest's stack would:
 * DHCP hands out 10.0.2.15, the gateway answers ARP, a TCP connection to
 * 10.0.2.2 reaches a listener on the host's loopback through the NAT and
 * data flows both ways, `restricted` refuses it, a forwarded host port
 * opens a connection towards the guest, IPv6 answers a router
 * solicitation only when enabled, frames wait in order while the device
 * has no room, the link's MTU sizes slirp's TCP segments; and the hostfwd
 * syntax, good and bad.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_frames.h"
#include "test.h"
#include "vmdev/clock.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"

#define MAX_FRAMES 256
#define MAX_FRAME 4100 /* the largest this device side takes */
#define WAIT_NS 5000000000ull /* for anything to happen: generous */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

/* What the device side saw. */
struct device {
    unsigned frames;
    bool refuse;
    size_t len[MAX_FRAMES];
    uint8_t data[MAX_FRAMES][MAX_FRAME];
};

static struct vmdev_event_loop *loop;
static struct device dev;

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct device *d = opaque;
    if (d->refuse || d->frames == MAX_FRAMES || len > sizeof(d->data[0]))
        return false;
    memcpy(d->data[d->frames], frame, len);
    d->len[d->frames++] = len;
    return true;
}

static const struct vmdev_net_callbacks callbacks = { on_receive, NULL, NULL,
                                                      &dev };

static uint64_t now_ns(void)
{
    return vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC);
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static struct vmdev_net_backend *slirp_started(
    const struct vmdev_net_slirp_config *config)
{
    memset(&dev, 0, sizeof(dev));
    char why[256];
    struct vmdev_net_backend *nb = vmdev_net_slirp_new(config, loop, why,
                                                       sizeof(why));
    if (!nb) {
        fprintf(stderr, "vmdev_net_slirp_new: %s\n", why);
        return NULL;
    }
    if (vmdev_net_start(nb, &callbacks)) {
        vmdev_net_free(nb);
        return NULL;
    }
    return nb;
}

static void send_frame(struct vmdev_net_backend *nb, const void *frame,
                       size_t len)
{
    struct iovec iov = { (void *)frame, len };
    int ret = vmdev_net_send(nb, &iov, 1);
    if (ret)
        fprintf(stderr, "vmdev_net_send: %d\n", ret);
}

/* Run the loop until a frame after the first `seen` matches, or the time
 * runs out: the index of the frame, or -1. */
typedef bool (*frame_test)(const uint8_t *frame, size_t len, const void *arg);

static int wait_frame(unsigned seen, frame_test match, const void *arg)
{
    uint64_t deadline = now_ns() + WAIT_NS;
    for (;;) {
        for (unsigned i = seen; i < dev.frames; i++)
            if (match(dev.data[i], dev.len[i], arg))
                return (int)i;
        seen = dev.frames;
        uint64_t now = now_ns();
        if (now >= deadline)
            return -1;
        vmdev_event_loop_run_once(loop, (int)((deadline - now) / 1000000u) + 1);
    }
}

/* ---- ARP ---- */

static size_t arp_request(uint8_t *f, const char *target)
{
    memset(f, 0, 42);
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0806);
    put16(f + 14, 1);      /* Ethernet */
    put16(f + 16, 0x0800); /* IPv4 */
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1); /* request */
    memcpy(f + 22, guest_mac, 6);
    inet_pton(AF_INET, "10.0.2.15", f + 28);
    inet_pton(AF_INET, target, f + 38);
    return 42;
}

static bool is_arp_reply_for(const uint8_t *f, size_t len, const void *arg)
{
    uint8_t ip[4];
    inet_pton(AF_INET, arg, ip);
    return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2 &&
           memcmp(f + 28, ip, 4) == 0 && memcmp(f, guest_mac, 6) == 0;
}

/* slirp learns the guest's MAC from its ARP requests. */
static bool introduce_guest(struct vmdev_net_backend *nb)
{
    uint8_t f[64];
    unsigned seen = dev.frames;
    send_frame(nb, f, arp_request(f, "10.0.2.2"));
    return wait_frame(seen, is_arp_reply_for, "10.0.2.2") >= 0;
}

static void gateway_answers_arp(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    uint8_t f[64];
    send_frame(nb, f, arp_request(f, "10.0.2.2"));
    /* The answer waits for the loop: never from inside the send. */
    CHECK_EQ(dev.frames, 0);
    int i = wait_frame(0, is_arp_reply_for, "10.0.2.2");
    CHECK(i >= 0);
    /* The gateway's MAC is slirp's 52:55 followed by its address. */
    static const uint8_t gw[6] = { 0x52, 0x55, 10, 0, 2, 2 };
    CHECK(memcmp(dev.data[i] + 22, gw, 6) == 0);
    CHECK_EQ(vmdev_net_stats(nb).tx_frames, 1);
    CHECK(vmdev_net_stats(nb).rx_frames >= 1);
    vmdev_net_free(nb);
}

/* A frame in pieces: gathered for slirp up to VMDEV_NET_MAX_IOV of them;
 * one more is refused, as by every backend. */
static void frames_in_many_pieces(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    uint8_t f[64];
    size_t len = arp_request(f, "10.0.2.2");
    CHECK(len < VMDEV_NET_MAX_IOV);
    struct iovec pieces[VMDEV_NET_MAX_IOV + 1];
    for (unsigned i = 0; i <= VMDEV_NET_MAX_IOV; i++)
        pieces[i] = (struct iovec){ f + (i < len ? i : len), i < len ? 1 : 0 };
    CHECK_EQ(vmdev_net_send(nb, pieces, VMDEV_NET_MAX_IOV + 1), -EINVAL);
    CHECK_EQ(vmdev_net_stats(nb).tx_frames, 0);
    CHECK_EQ(vmdev_net_send(nb, pieces, VMDEV_NET_MAX_IOV), 0);
    CHECK(wait_frame(0, is_arp_reply_for, "10.0.2.2") >= 0);
    vmdev_net_free(nb);
}

/* ---- DHCP ---- */

static size_t dhcp_discover(uint8_t *f)
{
    size_t bootp = 240 + 4; /* fixed part, magic, message type, end */
    size_t len = 14 + 20 + 8 + bootp + 60;
    memset(f, 0, len);
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, (unsigned)(len - 14));
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4); /* from 0.0.0.0 to 255.255.255.255 */
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2)
        sum += get16(ip + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, ~sum & 0xffff);
    uint8_t *udp = ip + 20;
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, (unsigned)(len - 34)); /* checksum 0: none (RFC 768) */
    uint8_t *b = udp + 8;
    b[0] = 1; /* BOOTREQUEST */
    b[1] = 1;
    b[2] = 6;
    memcpy(b + 4, "\x12\x34\x56\x78", 4); /* xid */
    memcpy(b + 28, guest_mac, 6);
    memcpy(b + 236, "\x63\x82\x53\x63", 4); /* magic cookie */
    memcpy(b + 240, "\x35\x01\x01\xff", 4); /* DHCPDISCOVER, end */
    return len;
}

static bool is_dhcp_offer(const uint8_t *f, size_t len, const void *arg)
{
    (void)arg;
    if (len < 14 + 20 + 8 + 240 || get16(f + 12) != 0x0800 || f[23] != 17 ||
        get16(f + 34) != 67 || get16(f + 36) != 68)
        return false;
    const uint8_t *b = f + 42;
    return b[0] == 2 && memcmp(b + 4, "\x12\x34\x56\x78", 4) == 0;
}

static void dhcp_offers_the_first_address(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    uint8_t f[600];
    send_frame(nb, f, dhcp_discover(f));
    int i = wait_frame(0, is_dhcp_offer, NULL);
    CHECK(i >= 0);
    uint8_t want[4];
    inet_pton(AF_INET, "10.0.2.15", want);
    CHECK(memcmp(dev.data[i] + 42 + 16, want, 4) == 0); /* yiaddr */
    CHECK(memcmp(dev.data[i] + 42 + 28, guest_mac, 6) == 0); /* chaddr */
    vmdev_net_free(nb);
}

/* ---- TCP through the NAT ---- */

static int loopback_listener(uint16_t *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sin);
    if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) ||
        listen(s, 4) || getsockname(s, (struct sockaddr *)&sin, &sl)) {
        if (s >= 0)
            close(s);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return s;
}

struct tcp_want {
    uint16_t src_port, dst_port;
    uint8_t flags; /* all of these set */
    size_t payload; /* at least this much */
};

static bool is_tcp(const uint8_t *f, size_t len, const void *arg)
{
    const struct tcp_want *w = arg;
    struct nf_layout l;
    if (!nf_parse(f, len, &l) || l.ipv6 || l.proto != NF_PROTO_TCP ||
        !nf_ip_ok(f, len, &l) || !nf_l4_ok(f, len, &l))
        return false;
    return get16(f + l.l4) == w->src_port && get16(f + l.l4 + 2) == w->dst_port &&
           (nf_tcp_flags(f, &l) & w->flags) == w->flags &&
           len - l.payload >= w->payload;
}

static void tcp_frame(struct vmdev_net_backend *nb, uint16_t dst_port,
                      uint32_t seq, uint32_t ack, uint8_t flags,
                      size_t payload, uint8_t seed)
{
    uint8_t f[1600];
    struct nf_layout l;
    struct nf_spec s = { .proto = NF_PROTO_TCP, .dst_port = dst_port,
                         .seq = seq, .ack = ack, .tcp_flags = flags,
                         .payload_len = payload, .seed = seed };
    send_frame(nb, f, nf_build(f, &s, &l));
}

/* Run the loop until fd has `want` bytes (or the time runs out). */
static size_t read_while_running(int fd, uint8_t *buf, size_t want)
{
    size_t got = 0;
    uint64_t deadline = now_ns() + WAIT_NS;
    while (got < want && now_ns() < deadline) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EAGAIN)
            break;
        else
            vmdev_event_loop_run_once(loop, 10);
    }
    return got;
}

static int accept_while_running(int listener)
{
    uint64_t deadline = now_ns() + WAIT_NS;
    while (now_ns() < deadline) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c >= 0 || errno != EAGAIN)
            return c;
        vmdev_event_loop_run_once(loop, 10);
    }
    return -1;
}

/* A guest TCP connection through the NAT to a listener on the host's
 * loopback, as the tests hold it. */
struct nat_connection {
    struct vmdev_net_backend *nb;
    uint16_t port;   /* the listener's, which the guest sees on 10.0.2.2 */
    int listener;    /* -1 if none */
    int conn;        /* the host's end of the connection; -1 if none */
    uint32_t server_seq; /* what the guest is to acknowledge next */
};

/* A slirp backend with config, a listener on the host's loopback, and the
 * guest (10.0.2.15:40000, its first sequence number 1000) connected to
 * 10.0.2.2:port, which is 127.0.0.1:port: c->conn is -1 if any step
 * failed (each failure reported). */
static void connect_through_nat(const struct vmdev_net_slirp_config *config,
                                struct nat_connection *c)
{
    *c = (struct nat_connection){ .listener = -1, .conn = -1 };
    c->listener = loopback_listener(&c->port);
    CHECK(c->listener >= 0);
    c->nb = slirp_started(config);
    CHECK(c->nb != NULL);
    CHECK(introduce_guest(c->nb));
    unsigned seen = dev.frames;
    tcp_frame(c->nb, c->port, 1000, 0, NF_TCP_SYN, 0, 0);
    struct tcp_want syn_ack = { c->port, 40000, NF_TCP_SYN | NF_TCP_ACK, 0 };
    int i = wait_frame(seen, is_tcp, &syn_ack);
    CHECK(i >= 0);
    struct nf_layout l;
    CHECK(nf_parse(dev.data[i], dev.len[i], &l));
    c->server_seq = nf_tcp_seq(dev.data[i], &l) + 1;
    c->conn = accept_while_running(c->listener);
}

static void nat_connection_close(struct nat_connection *c)
{
    if (c->conn >= 0)
        close(c->conn);
    if (c->listener >= 0)
        close(c->listener);
    vmdev_net_free(c->nb);
}

static void tcp_through_nat_to_host_loopback(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct nat_connection c;
    connect_through_nat(&config, &c);
    CHECK(c.conn >= 0);

    /* The guest's bytes reach the host... */
    tcp_frame(c.nb, c.port, 1001, c.server_seq, NF_TCP_ACK | NF_TCP_PSH, 300,
              7);
    uint8_t buf[300];
    CHECK_EQ(read_while_running(c.conn, buf, sizeof(buf)), sizeof(buf));
    for (unsigned k = 0; k < sizeof(buf); k++)
        CHECK_EQ(buf[k], (uint8_t)(7 + k));

    /* ...and the host's reach the guest. */
    for (unsigned k = 0; k < 200; k++)
        buf[k] = (uint8_t)(k ^ 0x5a);
    CHECK_EQ(write(c.conn, buf, 200), 200);
    unsigned seen = dev.frames;
    struct tcp_want data = { c.port, 40000, NF_TCP_ACK, 200 };
    int i = wait_frame(seen, is_tcp, &data);
    CHECK(i >= 0);
    struct nf_layout l;
    CHECK(nf_parse(dev.data[i], dev.len[i], &l));
    CHECK_EQ(dev.len[i] - l.payload, 200);
    CHECK_EQ(nf_tcp_seq(dev.data[i], &l), c.server_seq);
    for (unsigned k = 0; k < 200; k++)
        CHECK_EQ(dev.data[i][l.payload + k], (uint8_t)(k ^ 0x5a));
    nat_connection_close(&c);
}

/* The host's end resets the connection while the guest still sends:
 * the guest's side is reset too. */
static void a_host_reset_reaches_the_guest(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct nat_connection c;
    connect_through_nat(&config, &c);
    CHECK(c.conn >= 0);
    /* Closed with a reset while the guest goes on sending. */
    struct linger reset = { 1, 0 };
    CHECK_EQ(setsockopt(c.conn, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)),
             0);
    close(c.conn);
    c.conn = -1;
    unsigned seen = dev.frames;
    for (unsigned r = 0; r < 3; r++)
        vmdev_event_loop_run_once(loop, 10);
    uint32_t seq = 1001;
    for (unsigned k = 0; k < 4; k++, seq += 300) {
        tcp_frame(c.nb, c.port, seq, c.server_seq, NF_TCP_ACK | NF_TCP_PSH,
                  300, 1);
        for (unsigned r = 0; r < 3; r++)
            vmdev_event_loop_run_once(loop, 10);
    }
    /* The guest's connection is reset. */
    struct tcp_want rst = { c.port, 40000, NF_TCP_RST, 0 };
    CHECK(wait_frame(seen, is_tcp, &rst) >= 0);
    nat_connection_close(&c);
}

static void restricted_refuses_the_host(void)
{
    uint16_t port;
    int listener = loopback_listener(&port);
    CHECK(listener >= 0);
    struct vmdev_net_slirp_config config = { .restricted = true };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    CHECK(introduce_guest(nb));
    unsigned seen = dev.frames;
    tcp_frame(nb, port, 1000, 0, NF_TCP_SYN, 0, 0);
    struct tcp_want reset = { port, 40000, NF_TCP_RST, 0 };
    CHECK(wait_frame(seen, is_tcp, &reset) >= 0);
    /* slirp decided before answering: the host saw no connection. */
    CHECK(accept(listener, NULL, NULL) < 0 && errno == EAGAIN);
    close(listener);
    vmdev_net_free(nb);
}

static void forwarded_port_connects_towards_the_guest(void)
{
    /* A free port: the kernel's choice, released for slirp to take. */
    uint16_t port;
    int probe = loopback_listener(&port);
    CHECK(probe >= 0);
    close(probe);
    char spec[64], why[256];
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u-:7000", port);
    struct vmdev_net_hostfwd fwd;
    CHECK_EQ(vmdev_net_hostfwd_parse(spec, &fwd, why, sizeof(why)), 0);
    struct vmdev_net_slirp_config config = { .restricted = true,
                                             .hostfwds = &fwd,
                                             .num_hostfwds = 1 };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    CHECK(introduce_guest(nb));

    /* Taken while the backend lives: a second one cannot have it. */
    CHECK(vmdev_net_slirp_new(&config, loop, why, sizeof(why)) == NULL);
    CHECK_EQ(errno, EADDRINUSE);
    CHECK(strstr(why, spec + 4) != NULL || strstr(why, "127.0.0.1") != NULL);

    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(c >= 0);
    CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
          errno == EINPROGRESS);
    /* slirp accepts, and opens the connection to 10.0.2.15:7000. */
    struct nf_layout l;
    int i = -1;
    uint64_t deadline = now_ns() + WAIT_NS;
    while (i < 0 && now_ns() < deadline) {
        vmdev_event_loop_run_once(loop, 10);
        for (unsigned k = 0; k < dev.frames && i < 0; k++)
            if (nf_parse(dev.data[k], dev.len[k], &l) && !l.ipv6 &&
                l.proto == NF_PROTO_TCP &&
                get16(dev.data[k] + l.l4 + 2) == 7000 &&
                nf_tcp_flags(dev.data[k], &l) == NF_TCP_SYN)
                i = (int)k;
    }
    CHECK(i >= 0);
    uint8_t to[4];
    inet_pton(AF_INET, "10.0.2.15", to);
    CHECK(memcmp(dev.data[i] + l.l3 + 16, to, 4) == 0);
    close(c);
    vmdev_net_free(nb);
}

/* ---- IPv6 ---- */

/* A router solicitation from fe80::1 to ff02::2 (RFC 4861 4.1). */
static size_t router_solicitation(uint8_t *f)
{
    size_t len = 14 + 40 + 8;
    memset(f, 0, len);
    static const uint8_t all_routers_mac[6] = { 0x33, 0x33, 0, 0, 0, 2 };
    memcpy(f, all_routers_mac, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x86dd);
    uint8_t *ip = f + 14;
    ip[0] = 0x60;
    put16(ip + 4, 8);
    ip[6] = 58; /* ICMPv6 */
    ip[7] = 255;
    inet_pton(AF_INET6, "fe80::1", ip + 8);
    inet_pton(AF_INET6, "ff02::2", ip + 24);
    uint8_t *icmp = ip + 40;
    icmp[0] = 133;
    /* Checksum over the pseudo-header (RFC 8200 8.1) and the message. */
    uint32_t sum = 8 + 58;
    for (unsigned i = 8; i < 40; i += 2)
        sum += get16(ip + i);
    for (unsigned i = 0; i < 8; i += 2)
        sum += get16(icmp + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(icmp + 2, ~sum & 0xffff);
    return len;
}

static bool is_router_advert(const uint8_t *f, size_t len, const void *arg)
{
    (void)arg;
    return len >= 14 + 40 + 16 && get16(f + 12) == 0x86dd && f[20] == 58 &&
           f[54] == 134;
}

static void ipv6_router_advert_only_when_enabled(void)
{
    uint8_t f[128];
    struct vmdev_net_slirp_config off = { 0 }, on = { .ipv6 = true };
    struct vmdev_net_backend *nb = slirp_started(&on);
    CHECK(nb != NULL);
    send_frame(nb, f, router_solicitation(f));
    int i = wait_frame(0, is_router_advert, NULL);
    CHECK(i >= 0);
    /* Its prefix option (type 3) carries fec0::/64. */
    uint8_t prefix[16];
    inet_pton(AF_INET6, "fec0::", prefix);
    bool found = false;
    for (size_t at = 14 + 40 + 16; at + 8 <= dev.len[i] && dev.data[i][at + 1];
         at += 8u * dev.data[i][at + 1])
        if (dev.data[i][at] == 3 && at + 32 <= dev.len[i])
            found = dev.data[i][at + 2] == 64 &&
                    memcmp(dev.data[i] + at + 16, prefix, 16) == 0;
    CHECK(found);
    vmdev_net_free(nb);

    /* Off: the solicitation goes unanswered. An ARP request sent after it
     * is answered, so by then slirp has had its chance. */
    nb = slirp_started(&off);
    CHECK(nb != NULL);
    send_frame(nb, f, router_solicitation(f));
    CHECK(introduce_guest(nb));
    for (unsigned k = 0; k < dev.frames; k++)
        CHECK(!is_router_advert(dev.data[k], dev.len[k], NULL));
    vmdev_net_free(nb);
}

/* ---- back-pressure ---- */

static bool is_any_arp_reply(const uint8_t *f, size_t len, const void *arg)
{
    (void)arg;
    return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2;
}

static void frames_wait_in_order_while_the_device_is_full(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    struct vmdev_net_backend *nb = slirp_started(&config);
    CHECK(nb != NULL);
    dev.refuse = true;
    uint8_t f[64];
    send_frame(nb, f, arp_request(f, "10.0.2.2"));
    send_frame(nb, f, arp_request(f, "10.0.2.3"));
    /* Run until the loop has nothing left; nothing got through. */
    while (vmdev_event_loop_run_once(loop, 50) > 0)
        ;
    CHECK_EQ(dev.frames, 0);
    CHECK_EQ(vmdev_net_stats(nb).rx_frames, 0);
    dev.refuse = false;
    vmdev_net_resume_receive(nb);
    CHECK_EQ(dev.frames, 2);
    CHECK(is_arp_reply_for(dev.data[0], dev.len[0], "10.0.2.2"));
    CHECK(is_arp_reply_for(dev.data[1], dev.len[1], "10.0.2.3"));
    CHECK_EQ(vmdev_net_stats(nb).rx_frames, 2);
    /* And the backend goes on as before. */
    send_frame(nb, f, arp_request(f, "10.0.2.2"));
    CHECK(wait_frame(2, is_any_arp_reply, NULL) == 2);
    vmdev_net_free(nb);
}

/* ---- hostfwd= ---- */

static void hostfwd_syntax(void)
{
    char why[256];
    struct vmdev_net_hostfwd f;
    CHECK_EQ(vmdev_net_hostfwd_parse("tcp:127.0.0.1:2222-:22", &f, why,
                                     sizeof(why)), 0);
    const struct sockaddr_in *a = (const void *)&f.host;
    CHECK(!f.udp);
    CHECK_EQ(a->sin_family, AF_INET);
    CHECK_EQ(ntohs(a->sin_port), 2222);
    CHECK_EQ(ntohl(a->sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK_EQ(f.guest.s_addr, 0);
    CHECK_EQ(f.guest_port, 22);

    CHECK_EQ(vmdev_net_hostfwd_parse("udp::5353-10.0.2.20:53", &f, why,
                                     sizeof(why)), 0);
    CHECK(f.udp);
    CHECK_EQ(a->sin_addr.s_addr, INADDR_ANY);
    CHECK_EQ(ntohl(f.guest.s_addr), 0x0a000214);
    CHECK_EQ(f.guest_port, 53);

    CHECK_EQ(vmdev_net_hostfwd_parse(":[::1]:8080-:80", &f, why, sizeof(why)),
             0);
    const struct sockaddr_in6 *a6 = (const void *)&f.host;
    CHECK_EQ(a6->sin6_family, AF_INET6);
    CHECK_EQ(ntohs(a6->sin6_port), 8080);
    CHECK(memcmp(&a6->sin6_addr, &in6addr_loopback, 16) == 0);
    CHECK_EQ(f.host_len, sizeof(struct sockaddr_in6));

    static const struct {
        const char *spec, *why;
    } bad[] = {
        { "sctp:1.2.3.4:1-:2", "does not start with" },
        { "tcp:1.2.3.4:1:2", "no '-'" },
        { "tcp:1.2.3.4:0-:22", "host port" },
        { "tcp:1.2.3.4:65536-:22", "host port" },
        { "tcp:1.2.3.4:22x-:22", "host port" },
        { "tcp:1.2.3:22-:22", "host address" },
        { "tcp:[::1:22-:22", "host address" },
        { "tcp:2222-:22", "host address" },
        { "tcp::2222-22", "guest side" },
        { "tcp::2222-::1:22", "guest address" },
        { "tcp::2222-:", "guest port" },
        { "tcp::2222-:70000", "guest port" },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (vmdev_net_hostfwd_parse(bad[i].spec, &f, why, sizeof(why)) !=
                -EINVAL ||
            !strstr(why, bad[i].why) || !strstr(why, bad[i].spec)) {
            fprintf(stderr, "'%s': got '%s', want '%s'\n", bad[i].spec, why,
                    bad[i].why);
            CHECK(false);
        }
    }
}

/* The guest's data segments from slirp's TCP: in *largest the largest
 * payload of those arriving while the host sends `total` bytes. */
static void largest_segment(unsigned mtu, size_t total, size_t *largest)
{
    *largest = 0;
    struct vmdev_net_slirp_config config = { .mtu = mtu };
    struct nat_connection c;
    connect_through_nat(&config, &c);
    CHECK(c.conn >= 0);
    /* The handshake's last ACK. */
    tcp_frame(c.nb, c.port, 1001, c.server_seq, NF_TCP_ACK, 0, 0);
    static uint8_t buf[16384];
    CHECK(total <= sizeof(buf));
    memset(buf, 0x33, total);
    CHECK_EQ(write(c.conn, buf, total), (ssize_t)total);
    /* The guest acknowledges each segment, so slirp sends them all. */
    size_t got = 0;
    unsigned seen = dev.frames;
    while (got < total) {
        struct tcp_want data = { c.port, 40000, NF_TCP_ACK, 1 };
        int i = wait_frame(seen, is_tcp, &data);
        CHECK(i >= 0);
        seen = (unsigned)i + 1;
        struct nf_layout l;
        CHECK(nf_parse(dev.data[i], dev.len[i], &l));
        size_t payload = dev.len[i] - l.payload;
        CHECK_EQ(nf_tcp_seq(dev.data[i], &l), c.server_seq + got);
        got += payload;
        if (payload > *largest)
            *largest = payload;
        tcp_frame(c.nb, c.port, 1001, c.server_seq + (uint32_t)got, NF_TCP_ACK,
                  0, 0);
    }
    CHECK_EQ(got, total);
    nat_connection_close(&c);
}

static void mtu_sizes_the_guests_segments(void)
{
    /* The MTU less 60: the IPv4 and TCP headers, and 20 bytes libslirp
     * 4.7's TCP keeps below its MSS (1440 at 1500, as real guests see). */
    size_t largest;
    largest_segment(0, 12000, &largest);
    CHECK_EQ(largest, 1440);
    largest_segment(4000, 12000, &largest);
    CHECK_EQ(largest, 3940);
}

static void mtu_out_of_range_refused(void)
{
    const unsigned bad[] = { 67, VMDEV_NET_SLIRP_MAX_MTU + 1 };
    for (unsigned k = 0; k < 2; k++) {
        struct vmdev_net_slirp_config config = { .mtu = bad[k] };
        char why[256] = "";
        errno = 0;
        CHECK(vmdev_net_slirp_new(&config, loop, why, sizeof(why)) == NULL);
        CHECK_EQ(errno, EINVAL);
        CHECK(strstr(why, "MTU") != NULL);
    }
    struct vmdev_net_slirp_config top = { .mtu = VMDEV_NET_SLIRP_MAX_MTU };
    struct vmdev_net_backend *nb = vmdev_net_slirp_new(&top, loop, NULL, 0);
    CHECK(nb != NULL);
    vmdev_net_free(nb);
}

/* libslirp writes to host sockets without MSG_NOSIGNAL: where SIGPIPE
 * would end the process (a host peer closing while the guest sends,
 * which a guest can bring about), the backend is refused. */
static void refused_while_sigpipe_ends_the_process(void)
{
    struct vmdev_net_slirp_config config = { 0 };
    char why[256] = "";
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    errno = 0;
    CHECK(vmdev_net_slirp_new(&config, loop, why, sizeof(why)) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strstr(why, "SIGPIPE") != NULL);
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    struct vmdev_net_backend *nb = vmdev_net_slirp_new(&config, loop, why,
                                                       sizeof(why));
    CHECK(nb != NULL);
    vmdev_net_free(nb);
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    /* What a process using the backend must do (net.h). */
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
}

TEST_MAIN(TEST(setup),
          TEST(gateway_answers_arp), TEST(frames_in_many_pieces),
          TEST(dhcp_offers_the_first_address),
          TEST(tcp_through_nat_to_host_loopback),
          TEST(a_host_reset_reaches_the_guest),
          TEST(restricted_refuses_the_host),
          TEST(forwarded_port_connects_towards_the_guest),
          TEST(ipv6_router_advert_only_when_enabled),
          TEST(frames_wait_in_order_while_the_device_is_full),
          TEST(mtu_sizes_the_guests_segments),
          TEST(mtu_out_of_range_refused),
          TEST(hostfwd_syntax),
          TEST(refused_while_sigpipe_ends_the_process))
