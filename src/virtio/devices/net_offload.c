/* SPDX-License-Identifier: MIT */
/*
 * Software checksum and TCP segmentation for guest frames whose offloads
 * the backend cannot carry (net_offload.h).
 */
#include "net_offload.h"

#include <errno.h>
#include <string.h>

#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_IPV6 0x86ddu
#define ETHERTYPE_VLAN 0x8100u
#define ETHERTYPE_QINQ 0x88a8u
#define IPPROTO_TCP_NUMBER 6u
#define IPV4_MIN_HEADER 20u
#define IPV6_HEADER 40u
#define TCP_MIN_HEADER 20u
#define TCP_SEQ 4u
#define TCP_FLAGS 13u
#define TCP_CHECKSUM 16u
#define TCP_FIN 0x01u
#define TCP_PSH 0x08u
#define TCP_CWR 0x80u

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void set_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void set_be32(uint8_t *p, uint32_t v)
{
    set_be16(p, (uint16_t)(v >> 16));
    set_be16(p + 2, (uint16_t)v);
}

/* One's-complement sum of big-endian 16-bit words, not yet folded. A
 * 64-bit accumulator cannot overflow for any frame size. */
static uint64_t sum_words(const uint8_t *p, size_t len, uint64_t acc)
{
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        acc += get_be16(p + i);
    if (i < len)
        acc += (uint64_t)p[i] << 8;
    return acc;
}

static uint16_t fold(uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

uint16_t net_checksum_fold(const uint8_t *p, size_t len, uint32_t seed)
{
    return fold(sum_words(p, len, seed));
}

int net_complete_checksum(uint8_t *frame, size_t len, uint16_t start,
                          uint16_t offset)
{
    /* 5.1.6.2: the field at csum_start + csum_offset, both inside. */
    if (start >= len || (size_t)offset + 2 > len - start)
        return -EINVAL;
    uint16_t sum = (uint16_t)~fold(sum_words(frame + start, len - start, 0));
    /* As Linux does in software: a computed 0 goes out as 0xffff, the
     * same value in one's complement, which UDP reads as "checksummed". */
    set_be16(frame + start + offset, sum ? sum : 0xffff);
    return 0;
}

int net_tso_init(struct net_tso *t, const uint8_t *frame, size_t len,
                 uint8_t gso_type, uint16_t gso_size)
{
    if (gso_type != VIRTIO_NET_HDR_GSO_TCPV4 &&
        gso_type != VIRTIO_NET_HDR_GSO_TCPV6)
        return -ENOTSUP;
    if (len < ETH_HEADER_LEN || gso_size == 0)
        return -EINVAL;
    size_t l3 = ETH_HEADER_LEN;
    uint16_t ethertype = get_be16(frame + 12);
    if (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ) {
        if (len < ETH_HEADER_LEN + 4)
            return -EINVAL;
        ethertype = get_be16(frame + 16);
        l3 += 4;
    }
    bool ipv6 = gso_type == VIRTIO_NET_HDR_GSO_TCPV6;
    size_t l4;
    if (!ipv6) {
        if (ethertype != ETHERTYPE_IPV4 || len < l3 + IPV4_MIN_HEADER ||
            frame[l3] >> 4 != 4 || (frame[l3] & 0xf) * 4u < IPV4_MIN_HEADER ||
            frame[l3 + 9] != IPPROTO_TCP_NUMBER)
            return -EINVAL;
        l4 = l3 + (frame[l3] & 0xf) * 4u;
    } else {
        /* Extension headers are not followed: Linux's virtio_net sends
         * TSO for plain TCP over IPv6 only. */
        if (ethertype != ETHERTYPE_IPV6 || len < l3 + IPV6_HEADER ||
            frame[l3] >> 4 != 6 || frame[l3 + 6] != IPPROTO_TCP_NUMBER)
            return -EINVAL;
        l4 = l3 + IPV6_HEADER;
    }
    if (len < l4 + TCP_MIN_HEADER || (frame[l4 + 12] >> 4) * 4u <
                                         TCP_MIN_HEADER)
        return -EINVAL;
    size_t hdr_len = l4 + (frame[l4 + 12] >> 4) * 4u;
    if (len < hdr_len)
        return -EINVAL;
    size_t payload = len - hdr_len;
    size_t largest = payload < gso_size ? payload : gso_size;
    /* Each segment's IP length field is 16 bits. */
    if ((ipv6 ? hdr_len - l4 : hdr_len - l3) + largest > 0xffff)
        return -EINVAL;
    *t = (struct net_tso){ .frame = frame, .len = len, .l3 = l3, .l4 = l4,
                           .hdr_len = hdr_len, .ipv6 = ipv6, .mss = gso_size,
                           .next = hdr_len };
    return 0;
}

/* The pseudo-header's sum (RFC 793 for IPv4, RFC 8200 8.1 for IPv6). */
static uint64_t pseudo_header_sum(const struct net_tso *t, const uint8_t *seg,
                                  size_t tcp_len)
{
    uint64_t acc = IPPROTO_TCP_NUMBER + tcp_len;
    if (t->ipv6)
        return sum_words(seg + t->l3 + 8, 32, acc); /* source, destination */
    return sum_words(seg + t->l3 + 12, 8, acc);
}

size_t net_tso_next(struct net_tso *t, uint8_t *out)
{
    if (t->next >= t->len && (t->index > 0 || t->len > t->hdr_len))
        return 0;
    size_t chunk = t->len - t->next;
    if (chunk > t->mss)
        chunk = t->mss;
    bool first = t->index == 0, last = t->next + chunk >= t->len;
    memcpy(out, t->frame, t->hdr_len);
    memcpy(out + t->hdr_len, t->frame + t->next, chunk);
    size_t seg_len = t->hdr_len + chunk;
    size_t tcp_len = seg_len - t->l4;
    uint8_t *ip = out + t->l3, *tcp = out + t->l4;

    if (t->ipv6) {
        set_be16(ip + 4, (uint16_t)tcp_len);
    } else {
        size_t ihl = t->l4 - t->l3;
        set_be16(ip + 2, (uint16_t)(ihl + tcp_len));
        set_be16(ip + 4, (uint16_t)(get_be16(t->frame + t->l3 + 4) +
                                    t->index));
        set_be16(ip + 10, 0);
        set_be16(ip + 10, (uint16_t)~fold(sum_words(ip, ihl, 0)));
    }
    set_be32(tcp + TCP_SEQ, get_be32(t->frame + t->l4 + TCP_SEQ) +
                                (uint32_t)(t->next - t->hdr_len));
    if (!last)
        tcp[TCP_FLAGS] &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (!first)
        tcp[TCP_FLAGS] &= (uint8_t)~TCP_CWR;
    set_be16(tcp + TCP_CHECKSUM, 0);
    uint64_t acc = pseudo_header_sum(t, out, tcp_len);
    set_be16(tcp + TCP_CHECKSUM,
             (uint16_t)~fold(sum_words(tcp, tcp_len, acc)));

    t->next += chunk;
    t->index++;
    if (chunk == 0)
        t->next = t->len; /* a frame of headers only: one segment */
    return seg_len;
}
