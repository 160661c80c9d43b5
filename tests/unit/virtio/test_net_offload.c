/* SPDX-License-Identifier: MIT */
/*
 * Software checksum completion and TCP segmentation (virtio 1.2, 5.1.6.2)
 * against frames built and verified by tests/lib/net_frames.c: what comes
 * out is what a NIC would put on the wire, and hostile headers are
 * refused rather than followed.
 */
#include <errno.h>

#include "net_frames.h"
#include "test.h"
#include "virtio/devices/net_offload.h"

#define BUF (70 * 1024)

static uint8_t frame[BUF], seg[BUF], joined[BUF];

static void completes_tcp_and_udp_checksums(void)
{
    for (unsigned v6 = 0; v6 < 2; v6++) {
        for (unsigned udp = 0; udp < 2; udp++) {
            struct nf_spec s = { .ipv6 = v6, .proto = udp ? NF_PROTO_UDP
                                                           : NF_PROTO_TCP,
                                 .payload_len = 1001, .seed = 7,
                                 .tcp_flags = NF_TCP_ACK };
            struct nf_layout l;
            size_t len = nf_build(frame, &s, &l);
            CHECK(nf_l4_ok(frame, len, &l));
            uint16_t off = nf_leave_partial(frame, len, &l);
            CHECK(!nf_l4_ok(frame, len, &l));
            CHECK_EQ(net_complete_checksum(frame, len, (uint16_t)l.l4, off), 0);
            CHECK(nf_l4_ok(frame, len, &l));
        }
    }
}

static void refuses_checksum_outside_the_frame(void)
{
    struct nf_spec s = { .proto = NF_PROTO_UDP, .payload_len = 10 };
    struct nf_layout l;
    size_t len = nf_build(frame, &s, &l);
    memcpy(seg, frame, len);
    CHECK_EQ(net_complete_checksum(frame, len, (uint16_t)len, 0), -EINVAL);
    CHECK_EQ(net_complete_checksum(frame, len, (uint16_t)(len - 1), 0),
             -EINVAL);
    CHECK_EQ(net_complete_checksum(frame, len, (uint16_t)l.l4,
                                   (uint16_t)(len - l.l4 - 1)), -EINVAL);
    CHECK_EQ(net_complete_checksum(frame, len, 0xffff, 0xffff), -EINVAL);
    CHECK(memcmp(frame, seg, len) == 0);
    /* The last two bytes are still a place for it. */
    CHECK_EQ(net_complete_checksum(frame, len, (uint16_t)(len - 2), 0), 0);
}

/* Cut, then check each segment as a receiver would and put the stream
 * back together. */
static void segments(const struct nf_spec *s, uint16_t mss)
{
    struct nf_layout l;
    size_t len = nf_build(frame, s, &l);
    nf_leave_partial(frame, len, &l);
    struct net_tso t;
    CHECK_EQ(net_tso_init(&t, frame, len,
                          s->ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6
                                  : VIRTIO_NET_HDR_GSO_TCPV4, mss), 0);
    CHECK_EQ(t.hdr_len, l.payload);
    size_t n, count = 0, payload = 0;
    size_t expected = s->payload_len ? (s->payload_len + mss - 1) / mss : 1;
    while ((n = net_tso_next(&t, seg)) != 0) {
        struct nf_layout sl;
        CHECK(nf_parse(seg, n, &sl));
        CHECK_EQ(sl.payload, l.payload);
        CHECK(n - sl.payload <= mss);
        CHECK(count + 1 == expected || n - sl.payload == mss);
        CHECK(nf_ip_ok(seg, n, &sl));
        CHECK(nf_l4_ok(seg, n, &sl));
        CHECK_EQ(nf_tcp_seq(seg, &sl), (uint32_t)(s->seq + payload));
        if (!s->ipv6)
            CHECK_EQ(nf_ip_id(seg, &sl), (uint16_t)(s->ip_id + count));
        uint8_t flags = nf_tcp_flags(seg, &sl);
        bool first = count == 0, last = count + 1 == expected;
        CHECK_EQ(flags & NF_TCP_ACK, s->tcp_flags & NF_TCP_ACK);
        CHECK_EQ(flags & NF_TCP_CWR, first ? s->tcp_flags & NF_TCP_CWR : 0);
        CHECK_EQ(flags & (NF_TCP_FIN | NF_TCP_PSH),
                 last ? s->tcp_flags & (NF_TCP_FIN | NF_TCP_PSH) : 0);
        memcpy(joined + payload, seg + sl.payload, n - sl.payload);
        payload += n - sl.payload;
        count++;
    }
    CHECK_EQ(count, expected);
    CHECK_EQ(payload, s->payload_len);
    CHECK(memcmp(joined, frame + l.payload, payload) == 0);
}

static void cuts_tcp_over_ipv4_and_ipv6(void)
{
    uint8_t all = NF_TCP_ACK | NF_TCP_PSH | NF_TCP_FIN | NF_TCP_CWR;
    /* A sequence number that wraps, options, a VLAN tag, an IP id that
     * wraps. */
    struct nf_spec v4 = { .proto = NF_PROTO_TCP, .tcp_options = 12,
                          .payload_len = 10000, .seq = 0xfffff000u,
                          .tcp_flags = all, .ip_id = 0xfffe, .seed = 3 };
    segments(&v4, 1448);
    struct nf_spec v6 = { .ipv6 = true, .vlan = true, .proto = NF_PROTO_TCP,
                          .payload_len = 65000, .seq = 12345,
                          .tcp_flags = all, .seed = 9 };
    segments(&v6, 1428);
    /* Exactly a multiple of the MSS, one byte over, smaller than one. */
    v4.payload_len = 3 * 1000;
    segments(&v4, 1000);
    v4.payload_len = 3 * 1000 + 1;
    segments(&v4, 1000);
    v4.payload_len = 500;
    segments(&v4, 1000);
    /* Headers only: one segment, as sent. */
    v4.payload_len = 0;
    segments(&v4, 1000);
    /* The largest frame, cut into the smallest pieces. */
    v6.payload_len = 65400;
    segments(&v6, 1);
}

static void refuses_frames_that_lie(void)
{
    struct nf_spec s = { .proto = NF_PROTO_TCP, .payload_len = 3000,
                         .tcp_flags = NF_TCP_ACK };
    struct nf_layout l;
    size_t len = nf_build(frame, &s, &l);
    struct net_tso t;
    uint8_t v4 = VIRTIO_NET_HDR_GSO_TCPV4, v6 = VIRTIO_NET_HDR_GSO_TCPV6;
    /* The wrong type for the frame, or a type that is not TCP. */
    CHECK_EQ(net_tso_init(&t, frame, len, v6, 1000), -EINVAL);
    CHECK_EQ(net_tso_init(&t, frame, len, VIRTIO_NET_HDR_GSO_UDP, 1000),
             -ENOTSUP);
    CHECK_EQ(net_tso_init(&t, frame, len, VIRTIO_NET_HDR_GSO_UDP_L4, 1000),
             -ENOTSUP);
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 0), -EINVAL);
    /* Cut short anywhere inside the headers. */
    for (size_t cut = 0; cut < l.payload; cut++)
        CHECK_EQ(net_tso_init(&t, frame, cut, v4, 1000), -EINVAL);
    /* An IP header length under 20, one past the frame's end. */
    frame[l.l3] = 0x44;
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 1000), -EINVAL);
    frame[l.l3] = 0x4f;
    CHECK_EQ(net_tso_init(&t, frame, 14 + 60 + 19, v4, 1000), -EINVAL);
    frame[l.l3] = 0x45;
    /* Not TCP; not IPv4 at all. */
    frame[l.l3 + 9] = NF_PROTO_UDP;
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 1000), -EINVAL);
    frame[l.l3 + 9] = NF_PROTO_TCP;
    frame[l.l3] = 0x65;
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 1000), -EINVAL);
    frame[l.l3] = 0x45;
    /* A TCP data offset under 5, and one past the end. */
    frame[l.l4 + 12] = 4 << 4;
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 1000), -EINVAL);
    frame[l.l4 + 12] = 15 << 4;
    CHECK_EQ(net_tso_init(&t, frame, l.l4 + 40, v4, 1000), -EINVAL);
    frame[l.l4 + 12] = 5 << 4;
    CHECK_EQ(net_tso_init(&t, frame, len, v4, 1000), 0);
    /* An IPv6 frame whose next header is not TCP (an extension header). */
    struct nf_spec s6 = { .ipv6 = true, .proto = NF_PROTO_TCP,
                          .payload_len = 3000 };
    len = nf_build(frame, &s6, &l);
    frame[l.l3 + 6] = 0; /* hop-by-hop options */
    CHECK_EQ(net_tso_init(&t, frame, len, v6, 1000), -EINVAL);
    /* A segment whose IP length would not fit 16 bits. */
    s6.payload_len = 65530;
    frame[l.l3 + 6] = NF_PROTO_TCP;
    len = nf_build(frame, &s6, &l);
    CHECK_EQ(net_tso_init(&t, frame, len, v6, 0xffff), -EINVAL);
    CHECK_EQ(net_tso_init(&t, frame, len, v6, 0xffff - 20), 0);
}

TEST_MAIN(TEST(completes_tcp_and_udp_checksums),
          TEST(refuses_checksum_outside_the_frame),
          TEST(cuts_tcp_over_ipv4_and_ipv6),
          TEST(refuses_frames_that_lie))
