/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's state, shared by the device (net.c), its receive
 * (net_rx.c) and transmit (net_tx.c) paths and the control queue
 * (net_ctrl.c).
 */
#ifndef VMDEV_VIRTIO_NET_INTERNAL_H
#define VMDEV_VIRTIO_NET_INTERNAL_H

#include <stdatomic.h>

#include "net_offload.h"
#include "vmdev/clock.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_net.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define VIRTIO_NET_F_NOTF_COAL 53

/* Configuration status bits (5.1.4). */
#define VIRTIO_NET_S_LINK_UP 1u
#define VIRTIO_NET_S_ANNOUNCE 2u

/* As QEMU: beyond this many addresses a MAC table means "all of them". */
#define NET_MAC_TABLE_ENTRIES 64

/* struct virtio_net_config (5.1.4) up to mtu, little-endian. */
struct net_config_space {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
} __attribute__((packed));
_Static_assert(sizeof(struct net_config_space) == 12, "virtio_net_config");

/* Receive filtering set through the control queue (5.1.6.5.1, .2). */
struct net_rx_filter {
    bool promisc, allmulti;
    bool uni_overflow, multi_overflow; /* table too long: accept all */
    unsigned uni_count, multi_count;
    uint8_t uni[NET_MAC_TABLE_ENTRIES][6];
    uint8_t multi[NET_MAC_TABLE_ENTRIES][6];
};

/* Notification coalescing of one queue (5.1.6.5.6). */
struct net_coalesce_state {
    struct vmdev_virtio_net_pair *pair;
    uint16_t queue;
    uint32_t pending; /* frames returned, not yet notified */
    bool armed;
    struct vmdev_event_timer *timer_owner;
    struct vmdev_timer timer;
};

struct vmdev_virtio_net_pair {
    struct vmdev_virtio_net *net;
    uint16_t index;
    struct vmdev_net_backend *backend;
    struct vmdev_event_loop *loop; /* the backend's */
    int kick_fd; /* wakes the pair's work on the backend's loop */
    struct vmdev_event_watch *kick_watch;

    /* Under dev->lock. Pair k < num_backends is backend k's home: these
     * two are the backend's state. */
    bool rx_waiting; /* the backend holds a frame until there is room */
    bool link_up;
    /* Receive offloads (VMDEV_NET_CAN_*) to tell the backend, from its
     * loop and outside dev->lock; -1: nothing to tell. */
    int rx_offloads_to_set;
    struct vmdev_virtqueue_chain rx_chain;
    struct vmdev_virtqueue_used *rx_used; /* one merged frame's buffers */
    struct net_coalesce_state rx_coal, tx_coal;

    /* Transmit side: the chain under dev->lock, the rest owned by the
     * backend's loop thread. */
    struct vmdev_virtqueue_chain tx_chain;
    uint8_t *tx_frame; /* the guest's frame, copied out of its buffers */
    size_t tx_len;
    bool tx_pending;   /* tx_frame (or its segments) not all sent yet */
    uint64_t tx_generation; /* the device's when tx_frame was taken */
    bool tso_active;
    struct net_tso tso;
    /* The backend carries the frame's offloads: sent with it as they are. */
    bool offload_active;
    struct vmdev_net_offload offload;
    uint8_t *tx_segment;
    size_t segment_len; /* a built segment not yet sent; 0: none */

    struct vmdev_virtio_net_queue_stats rx_stats, tx_stats; /* dev->lock */
    atomic_uint_fast64_t tx_dropped, tx_segments, tx_checksums;
};

struct vmdev_virtio_net {
    struct vmdev_virtio_device dev; /* first: ops get this pointer */
    struct net_config_space config;
    uint8_t mac[6];
    uint16_t num_pairs, active_pairs;
    uint64_t generation; /* moves at every reset */
    struct vmdev_virtio_net_pair *pairs;
    struct vmdev_net_backend **backends;
    uint16_t num_backends;
    struct net_rx_filter filter;
    struct vmdev_virtio_net_coalesce default_rx_coalesce, default_tx_coalesce;
    struct vmdev_virtio_net_coalesce rx_coalesce, tx_coalesce;
    struct vmdev_virtqueue_chain ctrl_chain;
    struct vmdev_virtio_net_stats stats; /* dev->lock; tx_* also in pairs */
    /* A backend refusing the offloads a driver's every reset asks for. */
    struct vmdev_ratelimit offload_log_limit;
};

static inline bool net_has(const struct vmdev_virtio_net *net, unsigned bit)
{
    return vmdev_virtio_has_feature(&net->dev, bit);
}

static inline uint16_t net_rx_queue(uint16_t pair)
{
    return (uint16_t)(2 * pair);
}

static inline uint16_t net_tx_queue(uint16_t pair)
{
    return (uint16_t)(2 * pair + 1);
}

/* 5.1.2: the control queue comes after the pairs the driver may use: all
 * of them with MQ, else one. */
static inline uint16_t net_ctrl_queue(const struct vmdev_virtio_net *net)
{
    return (uint16_t)(net_has(net, VIRTIO_NET_F_MQ) ? 2 * net->num_pairs : 2);
}

/* The control queue has buffers (net_ctrl.c); under dev->lock. */
void net_ctrl_process(struct vmdev_virtio_net *net);
/* Forget the control queue's settings (a device reset). */
void net_ctrl_reset(struct vmdev_virtio_net *net);
/* Wake a pair's work on its backend's loop; any thread. */
void net_pair_kick(struct vmdev_virtio_net_pair *pair);
/* frames were returned on c's queue: notify the driver as coalescing
 * says (net.c). Under dev->lock. */
void net_coalesce_returned(struct net_coalesce_state *c, uint32_t frames);
/* c's direction has new parameters: notify what waits (net.c). Under
 * dev->lock. */
void net_coalesce_changed(struct net_coalesce_state *c);
/* The backends' receive callback; opaque is the backend's home pair
 * (net_rx.c). On the backend's loop. */
bool net_receive(void *opaque, const void *data, size_t len,
                 const struct vmdev_net_offload *offload);
/* Send what the pair's transmit queue holds, at most a batch (net_tx.c).
 * On the backend's loop, without dev->lock. */
void net_tx_run(struct vmdev_virtio_net_pair *pair);

#endif
