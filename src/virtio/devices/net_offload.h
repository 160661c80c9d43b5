/* SPDX-License-Identifier: MIT */
/*
 * What a network card does for its driver when the host path cannot:
 * completing a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) and cutting
 * a TCP segmentation offload frame into MSS-sized segments (virtio 1.2,
 * 5.1.6.2), for backends that carry plain Ethernet frames only.
 *
 * The frame is the guest's, copied out of its buffers first (so it cannot
 * change under the checks): every offset and length in it and in the
 * virtio-net header is checked here before use.
 */
#ifndef VMDEV_VIRTIO_NET_OFFLOAD_H
#define VMDEV_VIRTIO_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct virtio_net_hdr (5.1.6): with VERSION_1 always these 12 bytes,
 * little-endian. */
struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr_v1");

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1u
#define VIRTIO_NET_HDR_F_DATA_VALID 2u
#define VIRTIO_NET_HDR_GSO_NONE 0u
#define VIRTIO_NET_HDR_GSO_TCPV4 1u
#define VIRTIO_NET_HDR_GSO_UDP 3u
#define VIRTIO_NET_HDR_GSO_TCPV6 4u
#define VIRTIO_NET_HDR_GSO_UDP_L4 5u
#define VIRTIO_NET_HDR_GSO_ECN 0x80u

#define ETH_HEADER_LEN 14u

/*
 * Store the Internet checksum of frame[start, len) at start + offset, the
 * field holding the pseudo-header sum the driver seeded it with (5.1.6.2:
 * "the device computes the checksum from csum_start to the end").
 * Returns 0, or -EINVAL when start or offset lie outside the frame.
 */
int net_complete_checksum(uint8_t *frame, size_t len, uint16_t start,
                          uint16_t offset);

/* Cutting one TSO frame; its fields are the parse of the headers. */
struct net_tso {
    const uint8_t *frame;
    size_t len;
    size_t l3;      /* IP header */
    size_t l4;      /* TCP header */
    size_t hdr_len; /* Ethernet, IP and TCP headers: copied into each */
    bool ipv6;
    uint16_t mss;
    size_t next; /* offset of the payload the next segment starts with */
    unsigned index;
};

/*
 * Check a GSO frame of gso_type (ECN bit masked off) with payload pieces
 * of gso_size bytes: Ethernet (one VLAN tag allowed), then IPv4 with TCP
 * for TCPV4 or IPv6 with TCP as the next header for TCPV6, every header
 * inside the frame, each segment's IP length within 16 bits. Returns 0,
 * -EINVAL for a frame that is not what its header says, -ENOTSUP for a GSO
 * type other than TCP.
 */
int net_tso_init(struct net_tso *t, const uint8_t *frame, size_t len,
                 uint8_t gso_type, uint16_t gso_size);
/*
 * Write the next segment into out (room for at most t->hdr_len + t->mss
 * bytes) with its IP length, IPv4 identification and header checksum, TCP
 * sequence number, flags (FIN and PSH on the last segment only, CWR on the
 * first only) and TCP checksum. Returns its length, 0 after the last.
 */
size_t net_tso_next(struct net_tso *t, uint8_t *out);

/* The Internet checksum of a buffer (RFC 1071), folded, not inverted:
 * for tests that check what the device computed. */
uint16_t net_checksum_fold(const uint8_t *p, size_t len, uint32_t seed);

#endif
