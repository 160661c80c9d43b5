/* SPDX-License-Identifier: MIT */
/* The part of every network backend that does not depend on its kind. */
#include <errno.h>
#include <stddef.h>

#include "backend.h"

void net_backend_init(struct vmdev_net_backend *b,
                      const struct net_backend_ops *ops,
                      struct vmdev_event_loop *loop)
{
    *b = (struct vmdev_net_backend){ .ops = ops, .loop = loop, .up = true };
}

bool net_backend_deliver(struct vmdev_net_backend *b, const void *frame,
                         size_t len)
{
    if (!b->cb.receive(b->cb.opaque, frame, len))
        return false;
    atomic_fetch_add(&b->rx_frames, 1);
    atomic_fetch_add(&b->rx_bytes, len);
    return true;
}

void net_backend_rx_error(struct vmdev_net_backend *b)
{
    atomic_fetch_add(&b->rx_errors, 1);
}

void net_backend_set_link(struct vmdev_net_backend *b, bool up)
{
    if (b->up == up)
        return;
    b->up = up;
    if (b->started && b->cb.link_changed)
        b->cb.link_changed(b->cb.opaque, up);
}

int vmdev_net_start(struct vmdev_net_backend *b,
                    const struct vmdev_net_callbacks *callbacks)
{
    if (!callbacks || !callbacks->receive)
        return -EINVAL;
    if (b->started)
        return -EBUSY;
    b->cb = *callbacks;
    b->started = true;
    return b->ops->start(b);
}

struct vmdev_event_loop *vmdev_net_loop(const struct vmdev_net_backend *b)
{
    return b->loop;
}

int vmdev_net_send(struct vmdev_net_backend *b, const struct iovec *iov,
                   unsigned iovcnt)
{
    size_t len = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (len > VMDEV_NET_MAX_FRAME)
        return -EMSGSIZE;
    if (!b->up)
        return -ENOTCONN;
    int ret = b->ops->send(b, iov, iovcnt, len);
    if (ret == 0) {
        atomic_fetch_add(&b->tx_frames, 1);
        atomic_fetch_add(&b->tx_bytes, len);
    }
    return ret;
}

void vmdev_net_resume_receive(struct vmdev_net_backend *b)
{
    b->ops->resume_receive(b);
}

bool vmdev_net_link_up(const struct vmdev_net_backend *b)
{
    return b->up;
}

struct vmdev_net_stats vmdev_net_stats(const struct vmdev_net_backend *b)
{
    return (struct vmdev_net_stats){
        .rx_frames = atomic_load(&b->rx_frames),
        .rx_bytes = atomic_load(&b->rx_bytes),
        .tx_frames = atomic_load(&b->tx_frames),
        .tx_bytes = atomic_load(&b->tx_bytes),
        .rx_errors = atomic_load(&b->rx_errors),
    };
}

void vmdev_net_close(struct vmdev_net_backend *b)
{
    if (b)
        b->ops->close(b);
}
