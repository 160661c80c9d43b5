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

void net_fd_watch_init(struct net_fd_watch *w)
{
    *w = (struct net_fd_watch){ .watch = NULL };
    pthread_mutex_init(&w->lock, NULL);
}

int net_fd_watch_set(struct vmdev_net_backend *b, struct net_fd_watch *w,
                     int fd, uint32_t want, vmdev_event_fn fn, void *opaque)
{
    int ret = 0;
    pthread_mutex_lock(&w->lock);
    if (w->closed || (want == w->events && (w->watch || !want)))
        goto out;
    w->opaque = opaque;
    /* From the loop's thread (or with no watch yet): no wait here. */
    vmdev_event_loop_remove(b->loop, w->watch);
    w->watch = NULL;
    w->events = want;
    if (want && !vmdev_event_loop_add_into(b->loop, fd, want, fn, opaque,
                                           &w->watch)) {
        w->events = 0;
        ret = -errno;
    }
out:
    pthread_mutex_unlock(&w->lock);
    return ret;
}

void net_fd_watch_close(struct vmdev_net_backend *b, struct net_fd_watch *w)
{
    pthread_mutex_lock(&w->lock);
    w->closed = true;
    struct vmdev_event_watch *watch = w->watch;
    void *opaque = w->opaque;
    w->watch = NULL;
    w->events = 0;
    pthread_mutex_unlock(&w->lock);
    vmdev_event_loop_remove(b->loop, watch);
    /* A callback in progress may have swapped its watch for this one, or
     * dropped it (a held frame): wait for it all the same. */
    if (opaque)
        vmdev_event_loop_wait_callbacks(b->loop, opaque);
    pthread_mutex_destroy(&w->lock);
}

bool net_backend_deliver(struct vmdev_net_backend *b, const void *frame,
                         size_t len, const struct vmdev_net_offload *offload)
{
    struct timespec when;
    if (b->capture)
        net_capture_now(&when);
    if (!b->cb.receive(b->cb.opaque, frame, len, offload))
        return false;
    if (b->capture)
        net_capture_record(b->capture, &when,
                           &(struct iovec){ (void *)frame, len }, 1, len);
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

int vmdev_net_set_capture(struct vmdev_net_backend *b,
                          struct vmdev_net_capture *capture)
{
    if (b->started)
        return -EBUSY;
    b->capture = capture;
    return 0;
}

struct vmdev_event_loop *vmdev_net_loop(const struct vmdev_net_backend *b)
{
    return b->loop;
}

/* The VMDEV_NET_CAN_* bits an offload needs. */
static unsigned offloads_needed(const struct vmdev_net_offload *o)
{
    unsigned need = 0;
    if (o->flags & (VMDEV_NET_OFFLOAD_NEEDS_CSUM | VMDEV_NET_OFFLOAD_DATA_VALID))
        need |= VMDEV_NET_CAN_CSUM;
    switch (o->gso_type & ~VMDEV_NET_GSO_ECN) {
    case VMDEV_NET_GSO_NONE:
        break;
    case VMDEV_NET_GSO_TCPV4:
        need |= VMDEV_NET_CAN_TSO4;
        break;
    case VMDEV_NET_GSO_TCPV6:
        need |= VMDEV_NET_CAN_TSO6;
        break;
    default:
        return ~0u; /* nothing carries it */
    }
    if (o->gso_type & VMDEV_NET_GSO_ECN)
        need |= VMDEV_NET_CAN_ECN;
    return need;
}

int vmdev_net_send_offload(struct vmdev_net_backend *b,
                           const struct iovec *iov, unsigned iovcnt,
                           const struct vmdev_net_offload *offload)
{
    if (iovcnt > VMDEV_NET_MAX_IOV)
        return -EINVAL;
    size_t len = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (len > VMDEV_NET_MAX_FRAME)
        return -EMSGSIZE;
    if (offload && (offloads_needed(offload) & ~b->offloads))
        return -EINVAL;
    if (!b->up)
        return -ENOTCONN;
    struct timespec when;
    if (b->capture)
        net_capture_now(&when);
    int ret = b->ops->send(b, iov, iovcnt, len, offload);
    if (ret == 0) {
        if (b->capture)
            net_capture_record(b->capture, &when, iov, iovcnt, len);
        atomic_fetch_add(&b->tx_frames, 1);
        atomic_fetch_add(&b->tx_bytes, len);
    }
    return ret;
}

int vmdev_net_send(struct vmdev_net_backend *b, const struct iovec *iov,
                   unsigned iovcnt)
{
    return vmdev_net_send_offload(b, iov, iovcnt, NULL);
}

unsigned vmdev_net_offloads(const struct vmdev_net_backend *b)
{
    return b->offloads;
}

int vmdev_net_set_receive_offloads(struct vmdev_net_backend *b,
                                   unsigned offloads)
{
    if (offloads & ~b->offloads)
        return -EINVAL;
    return b->ops->set_receive_offloads
               ? b->ops->set_receive_offloads(b, offloads)
               : 0;
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

void vmdev_net_free(struct vmdev_net_backend *b)
{
    if (b)
        b->ops->close(b);
}
