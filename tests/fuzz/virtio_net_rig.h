/* SPDX-License-Identifier: MIT */
/*
 * A virtio-net device for fuzz targets: one queue pair (or up to
 * RIG_MAX_PAIRS, with one backend each or fewer) on stream backends whose
 * peer ends the target reads and writes, or on backends that carry
 * offloads, as a tap does; negotiated with the features the input picks,
 * its rings built by the driver-side library in fresh guest memory. The
 * backends share one loop, run by hand.
 */
#ifndef VMDEV_FUZZ_VIRTIO_NET_RIG_H
#define VMDEV_FUZZ_VIRTIO_NET_RIG_H

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "offload_peer.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_net.h"

#define RIG_RAM_BASE 0x100000ull
#define RIG_RAM_SIZE (4u << 20)
#define RIG_QUEUE_SIZE 64
#define RIG_MAX_PAIRS 4
#define RIG_NET_F_CTRL_VQ 17 /* 5.1.3 */
#define RIG_NET_F_MQ 22
/* Each pair's receive and transmit queue, then the control queue. */
#define RIG_MAX_QUEUES (2 * RIG_MAX_PAIRS + 1)

struct net_rig {
    struct vdrv_mem mem;
    /* Indexed as the device's queues; the first num_queues configured:
     * with MQ every pair's and the control queue (2 * pairs), else pair
     * 0's and the control queue (2), 5.1.2. */
    struct vdrv_queue queues[RIG_MAX_QUEUES];
    unsigned num_queues;
    struct vmdev_event_loop *loop;
    struct vmdev_virtio_net *net;
    struct vmdev_virtio_device *dev;
    uint16_t num_pairs, num_backends;
    /* Backend k (the device owns it), its stream peer's end (-1 on the
     * offload-carrying kind) and its offload peer (or NULL). */
    struct vmdev_net_backend *backends[RIG_MAX_PAIRS];
    int peers[RIG_MAX_PAIRS];
    struct offload_peer *offload_peers[RIG_MAX_PAIRS];
    int peer; /* backend 0's: peers[0] */
    struct offload_peer *offload_peer; /* backend 0's: offload_peers[0] */
    bool own_ram; /* mem is the rig's, released by rig_stop */
};

/* What rig_start_device() builds. */
struct net_rig_setup {
    uint64_t features; /* wanted; VERSION_1 added */
    uint16_t pairs;    /* 1 to RIG_MAX_PAIRS (0: 1) */
    uint16_t backends; /* 1 to pairs (0: 1) */
    bool offloads;     /* offload-carrying backends, else streams */
    uint16_t queue_size; /* the driver's: a power of two up to 64 (0: 64) */
    uint64_t ram_size; /* in two regions (0: RIG_RAM_SIZE) */
    /* Or guest memory of the caller's, zeroed and nothing allocated in
     * it, kept by rig_stop: fresh memory costs each input its allocation
     * and its shadow under ASan. */
    const struct vdrv_mem *ram;
};

static inline void rig_run(struct net_rig *r)
{
    for (int i = 0; i < 64 && vmdev_event_loop_run_once(r->loop, 0) > 0; i++)
        ;
}

/* Read and discard what the device sent; abort if the device passed a
 * frame with a checksum field outside it to an offload backend. */
static inline void rig_drain_peer(struct net_rig *r)
{
    static uint8_t sink[1 << 16];
    for (uint16_t k = 0; k < r->num_backends; k++) {
        if (r->offload_peers[k] && r->offload_peers[k]->sent_bad_checksum_field)
            abort();
        while (r->peers[k] >= 0 &&
               recv(r->peers[k], sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
}

/* The device, negotiated and DRIVER_OK, its queues empty. */
static inline void rig_start_device(struct net_rig *r,
                                    const struct net_rig_setup *s)
{
    memset(r, 0, sizeof(*r));
    r->num_pairs = s->pairs ? s->pairs : 1;
    r->num_backends = s->backends ? s->backends : 1;
    r->own_ram = !s->ram;
    if (s->ram)
        r->mem = *s->ram;
    if (r->num_pairs > RIG_MAX_PAIRS || r->num_backends > r->num_pairs ||
        (r->own_ram &&
         vdrv_mem_init(&r->mem, RIG_RAM_BASE,
                       s->ram_size ? s->ram_size : RIG_RAM_SIZE, 2)) ||
        !(r->loop = vmdev_event_loop_new()))
        abort();
    for (uint16_t k = 0; k < r->num_backends; k++) {
        int sv[2] = { -1, -1 };
        if (!s->offloads &&
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
            abort();
        r->peers[k] = sv[1];
        r->offload_peers[k] = s->offloads ? offload_peer_new(r->loop) : NULL;
        r->backends[k] = s->offloads
                             ? (r->offload_peers[k] ? &r->offload_peers[k]->base
                                                    : NULL)
                             : vmdev_net_stream_new_from_fd(sv[0], r->loop);
        if (!r->backends[k])
            abort();
    }
    r->peer = r->peers[0];
    r->offload_peer = r->offload_peers[0];
    uint16_t size = s->queue_size ? s->queue_size : RIG_QUEUE_SIZE;
    struct vmdev_virtio_net_config cfg = {
        .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .queue_size = RIG_QUEUE_SIZE,
        .num_pairs = r->num_pairs, .backends = r->backends,
        .num_backends = r->num_backends,
    };
    if (!(r->net = vmdev_virtio_net_new("fuzz-net", r->mem.mem, &cfg)))
        abort();
    r->dev = vmdev_virtio_net_device(r->net);
    vdrv_accept_features(
        r->dev, s->features | VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    bool event_idx = vmdev_virtio_has_feature(r->dev, VMDEV_VIRTIO_F_EVENT_IDX);
    /* 5.1.2: the control queue follows every pair with MQ, else pair 0. */
    r->num_queues = vmdev_virtio_has_feature(r->dev, RIG_NET_F_MQ)
                        ? 2u * r->num_pairs + 1
                        : 3;
    for (uint16_t i = 0; i < r->num_queues; i++) {
        vdrv_queue_init(&r->queues[i], &r->mem, size, event_idx);
        vdrv_queue_config(&r->queues[i], &r->dev->queues[i].config);
    }
    vmdev_virtio_set_status(r->dev, 0xf);
}

/* One control command (5.1.6.5) with its data: the device's ack, or
 * 0xff when it gave none. */
static inline uint8_t rig_ctrl(struct net_rig *r, uint8_t class, uint8_t cmd,
                               const void *data, uint32_t len)
{
    struct vdrv_queue *q = &r->queues[r->num_queues - 1];
    uint64_t out = vdrv_alloc(&r->mem, 2 + len, 8);
    uint64_t ack = vdrv_alloc(&r->mem, 1, 8);
    uint8_t head[2] = { class, cmd }, none = 0xff;
    vdrv_write(&r->mem, out, head, 2);
    vdrv_write(&r->mem, out + 2, data, len);
    vdrv_write(&r->mem, ack, &none, 1);
    struct vdrv_buf o = { out, 2 + len }, a = { ack, 1 };
    if (vdrv_add(q, &o, 1, &a, 1, false) < 0)
        return none;
    vdrv_notify(r->dev, (uint16_t)(r->num_queues - 1));
    uint32_t id, used_len;
    while (vdrv_get_used(q, &id, &used_len))
        ;
    uint8_t result;
    vdrv_read(&r->mem, ack, &result, 1);
    return result;
}

static inline void rig_start(struct net_rig *r, uint64_t features,
                             uint16_t mrg_buffer_size, bool offloads)
{
    struct net_rig_setup s = { .features = features, .offloads = offloads };
    rig_start_device(r, &s);
    /* Receive buffers, for frames the peer sends. */
    for (unsigned i = 0; i < RIG_QUEUE_SIZE; i++) {
        struct vdrv_buf in = { vdrv_alloc(&r->mem, mrg_buffer_size, 8),
                               mrg_buffer_size };
        if (vdrv_add(&r->queues[0], NULL, 0, &in, 1, false) < 0)
            abort();
    }
    vdrv_notify(r->dev, 0);
    rig_run(r);
}

/* Take back every used transmit and control buffer, so the rings never
 * fill. */
static inline void rig_reap(struct net_rig *r)
{
    uint32_t id, len;
    for (unsigned q = 1; q < r->num_queues; q++)
        if (q % 2 || q == r->num_queues - 1)
            while (vdrv_get_used(&r->queues[q], &id, &len))
                ;
}

static inline void rig_stop(struct net_rig *r)
{
    vmdev_virtio_net_free(r->net);
    for (uint16_t k = 0; k < r->num_backends; k++)
        if (r->peers[k] >= 0)
            close(r->peers[k]);
    vmdev_event_loop_free(r->loop);
    if (r->own_ram)
        vdrv_mem_release(&r->mem);
}

#endif
