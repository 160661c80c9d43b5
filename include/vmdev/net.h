/* SPDX-License-Identifier: MIT */
/*
 * Network backends: they move Ethernet frames between a device and the
 * host side (a stream socket to a switch or to passt; user-mode NAT and
 * tap to come) and know nothing of virtio.
 *
 * A backend runs on one event loop (an I/O thread): frames from the host
 * side arrive through receive() on that loop's thread, and the device
 * sends with vmdev_net_send() on the same thread.
 *
 * Back-pressure both ways, so nothing grows without bound:
 *  - receive() returns false when the device has no room for the frame
 *    (no guest buffers): the backend keeps it, stops reading, and offers
 *    it again after vmdev_net_resume_receive();
 *  - vmdev_net_send() returns -EAGAIN when the host side cannot take the
 *    frame now; writable() says when to try again.
 */
#ifndef VMDEV_NET_H
#define VMDEV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmdev/event_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest frame a backend carries: a 64 KiB IP packet, its Ethernet
 * header and room to spare, as QEMU's network layer allows. */
#define VMDEV_NET_MAX_FRAME 69632u

struct vmdev_net_callbacks {
    /* A frame for the device: true if taken, false if there is no room
     * (the backend stops until vmdev_net_resume_receive()). */
    bool (*receive)(void *opaque, const void *frame, size_t len);
    /* Sending may go on after -EAGAIN. */
    void (*writable)(void *opaque);
    /* The host side came or went (a stream peer closing, say). */
    void (*link_changed)(void *opaque, bool up);
    void *opaque;
};

struct vmdev_net_stats {
    uint64_t rx_frames, rx_bytes; /* to the device */
    uint64_t tx_frames, tx_bytes; /* from the device */
    uint64_t rx_errors;           /* malformed frames from the host side */
};

struct vmdev_net_backend;

/*
 * A stream-socket backend: each frame preceded by its length as a 4-byte
 * big-endian number, as QEMU's `-netdev stream` and passt frame them.
 * address is a UNIX socket path, or tcp:HOST:PORT. NULL with errno set
 * and a sentence in why (why_len bytes, may be 0) if it cannot connect.
 * It moves nothing until vmdev_net_start().
 */
struct vmdev_net_backend *
vmdev_net_stream_connect(const char *address, struct vmdev_event_loop *loop,
                         char *why, size_t why_len);
/* The same over a connected stream socket fd, which it then owns (a
 * switch's accepted port, a test's socketpair), closing it on failure. */
struct vmdev_net_backend *vmdev_net_stream_from_fd(int fd,
                                                   struct vmdev_event_loop *loop);

/*
 * Start moving frames, delivering them to callbacks (receive is required).
 * Once only, by whoever consumes the frames (a device, a switch port).
 * Returns 0, -EINVAL, -EBUSY when already started, or what watching the
 * socket failed with.
 */
__attribute__((warn_unused_result))
int vmdev_net_start(struct vmdev_net_backend *backend,
                    const struct vmdev_net_callbacks *callbacks);
/* The loop the backend runs on: its callbacks come on that loop's thread,
 * and its user calls it there. */
struct vmdev_event_loop *vmdev_net_loop(const struct vmdev_net_backend *b);

/*
 * Send one frame (len bytes in iov): 0 when the backend has taken it,
 * -EAGAIN when it cannot now (writable() follows), -EMSGSIZE for a frame
 * over VMDEV_NET_MAX_FRAME, -ENOTCONN once the host side is gone.
 */
int vmdev_net_send(struct vmdev_net_backend *backend, const struct iovec *iov,
                   unsigned iovcnt);
/* The device has room again: offer the frame held back, then read on. */
void vmdev_net_resume_receive(struct vmdev_net_backend *backend);
bool vmdev_net_link_up(const struct vmdev_net_backend *backend);
struct vmdev_net_stats vmdev_net_stats(const struct vmdev_net_backend *backend);
/* From any thread once nothing else calls into the backend; a callback
 * in progress on the loop's thread is waited for, so the caller must not
 * hold a lock that callback takes. */
void vmdev_net_close(struct vmdev_net_backend *backend);

#ifdef __cplusplus
}
#endif

#endif
