/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1) on network backends (vmdev/net.h).
 *
 * Offered: MAC, STATUS (link up/down, announce), MTU when one is set,
 * MRG_RXBUF, CSUM with HOST_TSO4/6 and HOST_ECN (passed to a backend that
 * carries them, a tap; a backend that takes plain frames gets them
 * checksummed and segmented in software), GUEST_CSUM with GUEST_TSO4/6
 * and GUEST_ECN when every backend carries them, CTRL_VQ
 * with CTRL_RX, CTRL_MAC_ADDR, GUEST_ANNOUNCE, MQ when there are several
 * queue pairs, and NOTF_COAL.
 *
 * Queues: receive and transmit queue of each pair (2n, 2n+1), then the
 * control queue. Pair n sends through backend n % num_backends, on that
 * backend's event loop, whatever thread the driver's notification arrived
 * on. Backend k's frames go to pair k % (the pairs the driver uses).
 */
#ifndef VMDEV_VIRTIO_NET_H
#define VMDEV_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/net.h"
#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VIRTIO_NET_MAX_PAIRS 16
#define VMDEV_VIRTIO_NET_DEFAULT_QUEUE_SIZE 256
#define VMDEV_VIRTIO_NET_MIN_QUEUE_SIZE 64
#define VMDEV_VIRTIO_NET_MAX_QUEUE_SIZE 1024
/* 5.1.4.1: the MTU the device advertises is at least 68. */
#define VMDEV_VIRTIO_NET_MIN_MTU 68
#define VMDEV_VIRTIO_NET_MAX_MTU 65535

/* Interrupt coalescing of one direction (5.1.6.5.6): a used-buffer
 * notification waits at most usecs after the first frame it covers, or
 * until frames frames are waiting. usecs 0: no waiting. */
struct vmdev_virtio_net_coalesce {
    uint32_t usecs;
    uint32_t frames;
};

struct vmdev_virtio_net_config {
    uint8_t mac[6];
    uint16_t num_pairs;  /* 1 to VMDEV_VIRTIO_NET_MAX_PAIRS (0: 1) */
    uint16_t queue_size; /* a power of two, 64 to 1024 (0: 256) */
    uint16_t mtu;        /* 0: no MTU feature; else 68 to 65535 */
    /* 1 to num_pairs backends. The device owns them from the call on,
     * even when creation fails (it closes them), and starts them. */
    struct vmdev_net_backend **backends;
    uint16_t num_backends;
    /* For a driver without NOTF_COAL; one with it starts from none
     * (5.1.6.5.6) and sets its own through the control queue. */
    struct vmdev_virtio_net_coalesce rx_coalesce, tx_coalesce;
};

/* Frames and bytes of one queue. */
struct vmdev_virtio_net_queue_stats {
    uint64_t frames, bytes;
};

struct vmdev_virtio_net_stats {
    uint64_t rx_frames, rx_bytes; /* to the guest */
    uint64_t tx_frames, tx_bytes; /* from the guest, before segmenting */
    uint64_t rx_filtered;  /* not for this MAC or mode (CTRL_RX) */
    /* Not for the guest as it is: longer than its buffers can hold (with
     * MRG_RXBUF, all of them; without, the next one), over the MTU, or
     * with offloads the driver did not take. */
    uint64_t rx_dropped;
    uint64_t tx_dropped;   /* malformed frames, or the link is down */
    uint64_t tx_segments;  /* frames produced by software segmentation */
    uint64_t tx_checksums; /* checksums completed in software */
    uint64_t ctrl_commands, ctrl_errors; /* control queue: all, refused */
    /* The coalescing a driver last set (NOTF_COAL), reset or not. */
    struct vmdev_virtio_net_coalesce rx_coalesce_set, tx_coalesce_set;
};

struct vmdev_virtio_net;

/* NULL with errno set (the backends closed): EINVAL for a bad
 * configuration, ENOMEM, or what starting a backend or watching a pair's
 * wake-up eventfd failed with. */
struct vmdev_virtio_net *vmdev_virtio_net_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_net_config *config);
struct vmdev_virtio_device *vmdev_virtio_net_device(struct vmdev_virtio_net *);
/* Take dev->lock: not from inside a device callback. */
struct vmdev_virtio_net_stats vmdev_virtio_net_stats(
    struct vmdev_virtio_net *net);
/* Queue index's traffic (zeros past the last queue). */
struct vmdev_virtio_net_queue_stats vmdev_virtio_net_queue_stats(
    struct vmdev_virtio_net *net, uint16_t index);
/* The MAC the driver uses now (CTRL_MAC_ADDR may have changed it). */
void vmdev_virtio_net_mac(struct vmdev_virtio_net *net, uint8_t mac[6]);

/* Ask the driver to announce itself (gratuitous ARP, unsolicited neighbour
 * advertisements), as after a migration: true when the driver negotiated
 * GUEST_ANNOUNCE and was told. */
bool vmdev_virtio_net_announce(struct vmdev_virtio_net *net);
/* After the transport is gone: stops the backends and frees everything. */
void vmdev_virtio_net_free(struct vmdev_virtio_net *net);

#ifdef __cplusplus
}
#endif

#endif
