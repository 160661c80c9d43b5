/* SPDX-License-Identifier: MIT */
#include "offload_peer.h"

#include <stdlib.h>
#include <string.h>

static struct offload_peer *peer_of(struct vmdev_net_backend *b)
{
    return (struct offload_peer *)b; /* base is first */
}

static int peer_start(struct vmdev_net_backend *b)
{
    (void)b;
    return 0;
}

static int peer_send(struct vmdev_net_backend *b, const struct iovec *iov,
                     unsigned iovcnt, size_t len,
                     const struct vmdev_net_offload *offload)
{
    struct offload_peer *p = peer_of(b);
    size_t at = 0;
    for (unsigned i = 0; i < iovcnt; i++) {
        memcpy(p->frame + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    p->sent_frames++;
    p->sent_len = len;
    p->sent_with_offload = offload != NULL;
    if (offload)
        p->sent = *offload;
    if (offload && offload->flags & VMDEV_NET_OFFLOAD_NEEDS_CSUM &&
        (size_t)offload->csum_start + offload->csum_offset + 2 > len)
        p->sent_bad_checksum_field = true;
    if (p->on_send)
        p->on_send(p->on_send_arg);
    return 0;
}

static int peer_set_receive_offloads(struct vmdev_net_backend *b,
                                     unsigned offloads)
{
    peer_of(b)->receive_offloads = offloads;
    return 0;
}

static void peer_resume(struct vmdev_net_backend *b)
{
    (void)b;
}

static void peer_close(struct vmdev_net_backend *b)
{
    free(peer_of(b));
}

static const struct net_backend_ops peer_ops = {
    .start = peer_start,
    .send = peer_send,
    .set_receive_offloads = peer_set_receive_offloads,
    .resume_receive = peer_resume,
    .close = peer_close,
};

struct offload_peer *offload_peer_new(struct vmdev_event_loop *loop)
{
    struct offload_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    net_backend_init(&p->base, &peer_ops, loop);
    p->base.offloads = OFFLOAD_PEER_ALL;
    return p;
}
