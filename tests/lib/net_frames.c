/* SPDX-License-Identifier: MIT */
#include "net_frames.h"

#include <string.h>

static const uint8_t dst_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t src_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* RFC 1071 with a 32-bit accumulator folded as it goes. */
static uint32_t add_words(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        sum += i & 1 ? p[i] : (uint32_t)p[i] << 8;
        if (sum > 0xffff0000u)
            sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

static uint16_t finish(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint32_t pseudo_sum(const uint8_t *frame, const struct nf_layout *l,
                           size_t l4_len)
{
    uint32_t sum = l->proto;
    sum += (uint32_t)(l4_len >> 16) + (uint32_t)(l4_len & 0xffff);
    if (l->ipv6)
        return add_words(sum, frame + l->l3 + 8, 32);
    return add_words(sum, frame + l->l3 + 12, 8);
}

static size_t check_offset(const struct nf_layout *l)
{
    return l->proto == NF_PROTO_TCP ? 16 : 6;
}

size_t nf_build(uint8_t *buf, const struct nf_spec *s, struct nf_layout *l)
{
    size_t at = 12;
    memcpy(buf, dst_mac, 6);
    memcpy(buf + 6, src_mac, 6);
    if (s->vlan) {
        put16(buf + at, 0x8100);
        put16(buf + at + 2, 42);
        at += 4;
    }
    put16(buf + at, s->ipv6 ? 0x86dd : 0x0800);
    at += 2;
    *l = (struct nf_layout){ .l3 = at, .ipv6 = s->ipv6, .proto = s->proto };
    size_t l4_header = s->proto == NF_PROTO_TCP ? 20 + s->tcp_options : 8;
    size_t l4_len = l4_header + s->payload_len;
    uint8_t *ip = buf + at;
    if (s->ipv6) {
        memset(ip, 0, 40);
        ip[0] = 0x60;
        put16(ip + 4, (unsigned)l4_len);
        ip[6] = s->proto;
        ip[7] = 64;
        for (unsigned i = 0; i < 16; i++) {
            ip[8 + i] = (uint8_t)(0x20 + i);
            ip[24 + i] = (uint8_t)(0x80 + i);
        }
        l->l4 = at + 40;
    } else {
        memset(ip, 0, 20);
        ip[0] = 0x45;
        put16(ip + 2, (unsigned)(20 + l4_len));
        put16(ip + 4, s->ip_id);
        ip[6] = 0x40; /* DF */
        ip[8] = 64;
        ip[9] = s->proto;
        const uint8_t addrs[8] = { 10, 0, 2, 15, 10, 0, 2, 2 };
        memcpy(ip + 12, addrs, 8);
        put16(ip + 10, (uint16_t)~finish(add_words(0, ip, 20)));
        l->l4 = at + 20;
    }
    uint8_t *l4 = buf + l->l4;
    memset(l4, 0, l4_header);
    put16(l4, s->src_port ? s->src_port : 40000);
    put16(l4 + 2, s->dst_port ? s->dst_port : 5201);
    if (s->proto == NF_PROTO_TCP) {
        for (unsigned i = 0; i < 4; i++) {
            l4[4 + i] = (uint8_t)(s->seq >> (24 - 8 * i));
            l4[8 + i] = (uint8_t)(s->ack >> (24 - 8 * i));
        }
        l4[12] = (uint8_t)(l4_header / 4 << 4);
        l4[13] = s->tcp_flags;
        put16(l4 + 14, 64240);
        for (size_t i = 0; i < s->tcp_options; i++)
            l4[20 + i] = 1; /* NOP */
    } else {
        put16(l4 + 4, (unsigned)l4_len);
    }
    l->payload = l->l4 + l4_header;
    for (size_t i = 0; i < s->payload_len; i++)
        buf[l->payload + i] = (uint8_t)(s->seed + i);
    size_t len = l->payload + s->payload_len;
    uint16_t sum = (uint16_t)~finish(add_words(pseudo_sum(buf, l, l4_len),
                                               l4, l4_len));
    put16(l4 + check_offset(l), sum ? sum : 0xffff);
    return len;
}

uint16_t nf_leave_partial(uint8_t *frame, size_t len,
                          const struct nf_layout *l)
{
    size_t off = check_offset(l);
    put16(frame + l->l4 + off,
          finish(pseudo_sum(frame, l, len - l->l4)));
    return (uint16_t)off;
}

bool nf_parse(const uint8_t *f, size_t len, struct nf_layout *l)
{
    if (len < 14)
        return false;
    size_t at = 12;
    if (get16(f + at) == 0x8100) {
        if (len < 18)
            return false;
        at += 4;
    }
    unsigned type = get16(f + at);
    at += 2;
    *l = (struct nf_layout){ .l3 = at };
    if (type == 0x86dd) {
        if (len < at + 40)
            return false;
        l->ipv6 = true;
        l->proto = f[at + 6];
        l->l4 = at + 40;
    } else if (type == 0x0800) {
        if (len < at + 20 || (f[at] & 0xf) < 5)
            return false;
        l->proto = f[at + 9];
        l->l4 = at + (f[at] & 0xfu) * 4;
    } else {
        return false;
    }
    if (l->proto == NF_PROTO_TCP) {
        if (len < l->l4 + 20)
            return false;
        l->payload = l->l4 + (f[l->l4 + 12] >> 4) * 4u;
    } else if (l->proto == NF_PROTO_UDP) {
        l->payload = l->l4 + 8;
    } else {
        return false;
    }
    return l->payload <= len;
}

bool nf_ip_ok(const uint8_t *f, size_t len, const struct nf_layout *l)
{
    if (l->ipv6)
        return get16(f + l->l3 + 4) == len - l->l4;
    size_t ihl = l->l4 - l->l3;
    return get16(f + l->l3 + 2) == len - l->l3 &&
           finish(add_words(0, f + l->l3, ihl)) == 0xffff;
}

bool nf_l4_ok(const uint8_t *f, size_t len, const struct nf_layout *l)
{
    size_t l4_len = len - l->l4;
    return finish(add_words(pseudo_sum(f, l, l4_len), f + l->l4, l4_len)) ==
           0xffff;
}

uint32_t nf_tcp_seq(const uint8_t *f, const struct nf_layout *l)
{
    const uint8_t *p = f + l->l4 + 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

uint8_t nf_tcp_flags(const uint8_t *f, const struct nf_layout *l)
{
    return f[l->l4 + 13];
}

uint16_t nf_ip_id(const uint8_t *f, const struct nf_layout *l)
{
    return (uint16_t)get16(f + l->l3 + 4);
}
