/* SPDX-License-Identifier: MIT */
/*
 * A network backend kind for tests and fuzz targets: it carries every
 * offload, as a tap with its virtio-net header does, and stands for the
 * host side. It records the last frame sent to it and what its consumer
 * said it takes; the test delivers frames with net_backend_deliver().
 */
#ifndef VMDEV_TEST_OFFLOAD_PEER_H
#define VMDEV_TEST_OFFLOAD_PEER_H

#include "net/backend.h"

#define OFFLOAD_PEER_ALL                                                       \
    (VMDEV_NET_CAN_CSUM | VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_TSO6 |            \
     VMDEV_NET_CAN_ECN)

struct offload_peer {
    struct vmdev_net_backend base;
    unsigned receive_offloads; /* from vmdev_net_set_receive_offloads() */
    unsigned sent_frames;
    size_t sent_len;           /* the last frame sent */
    bool sent_with_offload;
    struct vmdev_net_offload sent;
    /* A frame came with a checksum field outside it: the device should
     * have refused it (5.1.6.2). */
    bool sent_bad_checksum_field;
    /* When set, called inside each send (a test acting meanwhile). */
    void (*on_send)(void *arg);
    void *on_send_arg;
    uint8_t frame[VMDEV_NET_MAX_FRAME];
};

/* NULL when out of memory. Closing the backend frees it. */
struct offload_peer *offload_peer_new(struct vmdev_event_loop *loop);

#endif
