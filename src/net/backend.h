/* SPDX-License-Identifier: MIT */
/*
 * What every network backend shares (backend.c): the callbacks it was
 * started with, its link state and its counters. A kind of backend
 * (stream.c, slirp.c, tap.c) embeds struct vmdev_net_backend first and
 * supplies the operations below; the public functions in net.h check their
 * arguments and count frames here, once, for every kind.
 */
#ifndef VMDEV_NET_BACKEND_H
#define VMDEV_NET_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "vmdev/net.h"

struct net_backend_ops {
    /* Begin watching for frames; the callbacks are in b->cb. -errno. */
    int (*start)(struct vmdev_net_backend *b);
    /* One frame of len bytes (at most VMDEV_NET_MAX_FRAME) in at most
     * VMDEV_NET_MAX_IOV pieces, link up,
     * offload NULL or within b->offloads: 0, -EAGAIN (then writable()
     * when it may go on), -ENOTCONN or -EIO. */
    int (*send)(struct vmdev_net_backend *b, const struct iovec *iov,
                unsigned iovcnt, size_t len,
                const struct vmdev_net_offload *offload);
    /* Offloads (within b->offloads) received frames may carry; NULL for
     * a kind with none. */
    int (*set_receive_offloads)(struct vmdev_net_backend *b,
                                unsigned offloads);
    /* The device has room again. */
    void (*resume_receive)(struct vmdev_net_backend *b);
    /* Stop watching and free everything, b included. */
    void (*close)(struct vmdev_net_backend *b);
};

struct vmdev_net_backend {
    const struct net_backend_ops *ops;
    struct vmdev_event_loop *loop;
    struct vmdev_net_callbacks cb;
    bool started; /* vmdev_net_start() gave it callbacks */
    unsigned offloads; /* VMDEV_NET_CAN_*: what the kind can carry */
    bool up;
    struct vmdev_net_capture *capture; /* NULL, or where frames are copied */
    atomic_uint_fast64_t rx_frames, rx_bytes, tx_frames, tx_bytes, rx_errors;
};

/* The kind's own struct, which embeds struct vmdev_net_backend as base. */
#define NET_BACKEND_KIND(b, type) ((type *)((char *)(b) - offsetof(type, base)))

/*
 * A kind's watch of its one descriptor on the backend's loop. Its
 * callbacks swap the watch as what they ask for changes, while the
 * backend may be closed from another thread: the lock keeps the two
 * apart, and once closed no watch is added again.
 */
struct net_fd_watch {
    pthread_mutex_t lock;
    struct vmdev_event_watch *watch;
    uint32_t events; /* the VMDEV_EVENT_* bits it asks for */
    void *opaque;    /* the callbacks' */
    bool closed;
};
void net_fd_watch_init(struct net_fd_watch *w);
/* Make w ask for want on fd (0: no watch), changing it only when want
 * changes; nothing once closed. On the loop's thread, except the first
 * from start(), whose callback may run before the add returns: the result
 * is the add's, 0 or -errno. */
int net_fd_watch_set(struct vmdev_net_backend *b, struct net_fd_watch *w,
                     int fd, uint32_t want, vmdev_event_fn fn, void *opaque);
/* No more callbacks, from any thread: a callback in progress is waited
 * for, whichever watch it came from (closing). */
void net_fd_watch_close(struct vmdev_net_backend *b, struct net_fd_watch *w);

void net_backend_init(struct vmdev_net_backend *b,
                      const struct net_backend_ops *ops,
                      struct vmdev_event_loop *loop);
/* Offer a frame from the host side to the device, offload NULL for a
 * plain one: whether it took it (counted then). */
bool net_backend_deliver(struct vmdev_net_backend *b, const void *frame,
                         size_t len, const struct vmdev_net_offload *offload);
/* The time a frame is handed over (taken before the hand-over, recorded
 * only once it was taken, so a frame offered again is written once). */
void net_capture_now(struct timespec *when);
/* Copy a frame of len bytes (at most VMDEV_NET_MAX_FRAME) to c. */
void net_capture_record(struct vmdev_net_capture *c,
                        const struct timespec *when, const struct iovec *iov,
                        unsigned iovcnt, size_t len);
/* A malformed frame from the host side. */
void net_backend_rx_error(struct vmdev_net_backend *b);
/* The host side came or went: tell the device once per change. */
void net_backend_set_link(struct vmdev_net_backend *b, bool up);

#endif
