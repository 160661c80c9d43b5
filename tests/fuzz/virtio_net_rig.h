/* SPDX-License-Identifier: MIT */
/*
 * A virtio-net device for fuzz targets: one queue pair on a stream
 * backend whose peer end the target reads and writes (or on a backend
 * that carries offloads, as a tap does), negotiated with the features the
 * input picks, its rings built by the driver-side library in fresh guest
 * memory. The backend's loop runs by hand.
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
#include "vmdev/virtio_net.h"

#define RIG_RAM_BASE 0x100000ull
#define RIG_RAM_SIZE (4u << 20)
#define RIG_QUEUE_SIZE 64

struct net_rig {
    struct vdrv_mem mem;
    struct vdrv_queue queues[3];
    struct vmdev_event_loop *loop;
    struct vmdev_virtio_net *net;
    struct vmdev_virtio_device *dev;
    int peer; /* -1 on the offload-carrying backend */
    struct offload_peer *offload_peer; /* or NULL */
};

static inline void rig_run(struct net_rig *r)
{
    for (int i = 0; i < 64 && vmdev_event_loop_run_once(r->loop, 0) > 0; i++)
        ;
}

/* Read and discard what the device sent; abort if the device passed a
 * frame with a checksum field outside it to the offload backend. */
static inline void rig_drain_peer(struct net_rig *r)
{
    if (r->offload_peer && r->offload_peer->sent_bad_checksum_field)
        abort();
    static uint8_t sink[1 << 16];
    while (r->peer >= 0 && recv(r->peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
        ;
}

static inline void rig_start(struct net_rig *r, uint64_t features,
                             uint16_t mrg_buffer_size, bool offloads)
{
    memset(r, 0, sizeof(*r));
    int sv[2] = { -1, -1 };
    if (vdrv_mem_init(&r->mem, RIG_RAM_BASE, RIG_RAM_SIZE, 2) ||
        !(r->loop = vmdev_event_loop_new()) ||
        (!offloads && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)))
        abort();
    r->peer = sv[1];
    struct offload_peer *op = offloads ? offload_peer_new(r->loop) : NULL;
    struct vmdev_net_backend *b =
        offloads ? (op ? &op->base : NULL)
                 : vmdev_net_stream_from_fd(sv[0], r->loop);
    r->offload_peer = op;
    struct vmdev_virtio_net_config cfg = {
        .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .queue_size = RIG_QUEUE_SIZE,
        .backends = &b, .num_backends = 1,
    };
    if (!b || !(r->net = vmdev_virtio_net_new("fuzz-net", r->mem.mem, &cfg)))
        abort();
    r->dev = vmdev_virtio_net_device(r->net);
    vdrv_accept_features(r->dev, features | VIRTIO_BIT(VIRTIO_F_VERSION_1));
    bool event_idx = vmdev_virtio_has_feature(r->dev, VIRTIO_F_EVENT_IDX);
    for (uint16_t i = 0; i < 3; i++) {
        vdrv_queue_init(&r->queues[i], &r->mem, RIG_QUEUE_SIZE, event_idx);
        vdrv_queue_config(&r->queues[i], &r->dev->queues[i].config);
    }
    vmdev_virtio_set_status(r->dev, 0xf);
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

/* Take back every used buffer, so the rings never fill. */
static inline void rig_reap(struct net_rig *r)
{
    uint32_t id, len;
    for (unsigned q = 1; q < 3; q++)
        while (vdrv_get_used(&r->queues[q], &id, &len))
            ;
}

static inline void rig_stop(struct net_rig *r)
{
    vmdev_virtio_net_free(r->net);
    if (r->peer >= 0)
        close(r->peer);
    vmdev_event_loop_free(r->loop);
    vdrv_mem_release(&r->mem);
}

#endif
