/* SPDX-License-Identifier: MIT */
/*
 * Ethernet frames for network tests: TCP and UDP over IPv4 or IPv6, as a
 * guest's stack builds them, and an independent check of their headers
 * and checksums (RFC 1071, RFC 793, RFC 768, RFC 8200 8.1).
 */
#ifndef VMDEV_TEST_NET_FRAMES_H
#define VMDEV_TEST_NET_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_PROTO_TCP 6
#define NF_PROTO_UDP 17
#define NF_TCP_FIN 0x01
#define NF_TCP_SYN 0x02
#define NF_TCP_RST 0x04
#define NF_TCP_PSH 0x08
#define NF_TCP_ACK 0x10
#define NF_TCP_CWR 0x80

struct nf_spec {
    bool ipv6, vlan;
    uint8_t proto;       /* NF_PROTO_TCP or NF_PROTO_UDP */
    size_t tcp_options;  /* bytes of TCP options, a multiple of 4 */
    size_t payload_len;
    uint16_t src_port, dst_port; /* 0: 40000 and 5201 */
    uint32_t seq, ack;   /* TCP */
    uint8_t tcp_flags;
    uint16_t ip_id;      /* IPv4 */
    uint8_t seed;        /* payload byte i is seed + i */
};

/* Where a frame's layers start. */
struct nf_layout {
    size_t l3, l4, payload;
    bool ipv6;
    uint8_t proto;
};

/* Build the frame into buf (big enough) with every checksum complete.
 * Returns its length and fills *layout. */
size_t nf_build(uint8_t *buf, const struct nf_spec *spec,
                struct nf_layout *layout);
/* Replace the L4 checksum by the pseudo-header sum a driver leaves for
 * the device (VIRTIO_NET_HDR_F_NEEDS_CSUM); returns the checksum offset
 * within the L4 header. */
uint16_t nf_leave_partial(uint8_t *frame, size_t len,
                          const struct nf_layout *layout);
/* Parse Ethernet (one VLAN tag), IPv4 or IPv6, TCP or UDP. */
bool nf_parse(const uint8_t *frame, size_t len, struct nf_layout *layout);
/* The IPv4 header checksum and length fields agree with the frame. */
bool nf_ip_ok(const uint8_t *frame, size_t len, const struct nf_layout *l);
/* The L4 checksum verifies. */
bool nf_l4_ok(const uint8_t *frame, size_t len, const struct nf_layout *l);
uint32_t nf_tcp_seq(const uint8_t *frame, const struct nf_layout *l);
uint8_t nf_tcp_flags(const uint8_t *frame, const struct nf_layout *l);
uint16_t nf_ip_id(const uint8_t *frame, const struct nf_layout *l);

#endif
