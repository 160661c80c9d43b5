/* SPDX-License-Identifier: MIT */
/*
 * Network backends: they move Ethernet frames between a device and the
 * host side (a stream socket to a switch or to passt, user-mode NAT
 * through libslirp, a tap) and know nothing of virtio.
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
 *
 * receive() never comes from inside vmdev_net_send() or
 * vmdev_net_start(): a frame a backend makes in answer to one sent (an
 * ARP reply from user-mode NAT, say) is delivered from the loop later.
 * The other way round, receive() must not send on its own backend (a
 * switch forwards to other ports' backends).
 */
#ifndef VMDEV_NET_H
#define VMDEV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "vmdev/event_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest frame a backend carries: a 64 KiB IP packet, its Ethernet
 * header and room to spare, as QEMU's network layer allows. */
#define VMDEV_NET_MAX_FRAME 69632u

/*
 * Offloads that travel beside a frame, on backends that carry them (a
 * tap with its virtio-net header): the fields of Linux's struct
 * virtio_net_hdr, in host byte order. A frame needing none has flags 0
 * and gso_type VMDEV_NET_GSO_NONE.
 */
struct vmdev_net_offload {
    uint8_t flags;        /* VMDEV_NET_OFFLOAD_* */
    uint8_t gso_type;     /* VMDEV_NET_GSO_*, with VMDEV_NET_GSO_ECN */
    uint16_t hdr_len;     /* Ethernet, IP and TCP headers of a GSO frame */
    uint16_t gso_size;    /* payload bytes per segment */
    uint16_t csum_start;  /* NEEDS_CSUM: sum from here to the end... */
    uint16_t csum_offset; /* ...into the 16 bits this far past csum_start */
};
#define VMDEV_NET_OFFLOAD_NEEDS_CSUM 1u /* a partial checksum to complete */
#define VMDEV_NET_OFFLOAD_DATA_VALID 2u /* the checksums were verified */
#define VMDEV_NET_GSO_NONE 0u
#define VMDEV_NET_GSO_TCPV4 1u
#define VMDEV_NET_GSO_TCPV6 4u
#define VMDEV_NET_GSO_ECN 0x80u

/* What a backend can carry, both ways (vmdev_net_offloads()). */
#define VMDEV_NET_CAN_CSUM 1u /* NEEDS_CSUM and DATA_VALID */
#define VMDEV_NET_CAN_TSO4 2u /* GSO_TCPV4 (needs CSUM) */
#define VMDEV_NET_CAN_TSO6 4u /* GSO_TCPV6 (needs CSUM) */
#define VMDEV_NET_CAN_ECN 8u  /* GSO_ECN on TCP segmentation */

struct vmdev_net_callbacks {
    /* A frame for the device: true if taken, false if there is no room
     * (the backend stops until vmdev_net_resume_receive()). offload is
     * NULL for a plain frame, else within what the consumer accepted
     * with vmdev_net_set_receive_offloads(). */
    bool (*receive)(void *opaque, const void *frame, size_t len,
                    const struct vmdev_net_offload *offload);
    /* Sending may go on after -EAGAIN. */
    void (*writable)(void *opaque);
    /* The host side came or went (a stream peer closing, say). */
    void (*link_changed)(void *opaque, bool up);
    void *opaque;
};

struct vmdev_net_stats {
    uint64_t rx_frames, rx_bytes; /* to the device */
    uint64_t tx_frames, tx_bytes; /* from the device */
    /* Frames from the host side dropped: malformed, or more than the
     * backend could hold while the device had no room. */
    uint64_t rx_errors;
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
vmdev_net_stream_new(const char *address, struct vmdev_event_loop *loop,
                     char *why, size_t why_len);
/* The same over a connected stream socket fd, which it then owns (a
 * switch's accepted port, a test's socketpair), closing it on failure. */
struct vmdev_net_backend *
vmdev_net_stream_new_from_fd(int fd, struct vmdev_event_loop *loop);

/* A tap's queues: one backend each (a queue pair of a virtio-net). */
#define VMDEV_NET_TAP_MAX_QUEUES 16u

struct vmdev_net_tap_config {
    const char *ifname;  /* an existing tap, or the name of one to create */
    const char *bridge;  /* NULL, or the Linux bridge to put it on */
    unsigned num_queues; /* 1 to VMDEV_NET_TAP_MAX_QUEUES */
};

/*
 * A tap interface ("bridge mode"): tap ifname, created when absent (the
 * kernel removes it again when the last backend closes), put up, and
 * added to the bridge when one is named. Creating or attaching needs
 * CAP_NET_ADMIN, or a persistent tap made for this user. num_queues
 * backends, backends[i] on loops[i]; more than one makes the tap
 * multi-queue (IFF_MULTI_QUEUE), and an existing tap must match. 0, or
 * -errno with a sentence in why (why_len bytes, may be 0) and nothing
 * left open. They move nothing until vmdev_net_start().
 */
int vmdev_net_tap_new(const struct vmdev_net_tap_config *config,
                      struct vmdev_event_loop *const *loops,
                      struct vmdev_net_backend **backends, char *why,
                      size_t why_len);
/* One queue of a tap opened elsewhere (a management layer passing the
 * fd), which it then owns, closing it on failure. */
struct vmdev_net_backend *vmdev_net_tap_from_fd(int fd,
                                                struct vmdev_event_loop *loop);

/* A host port forwarded into the guest's network (user-mode NAT). */
struct vmdev_net_hostfwd {
    bool udp;
    struct sockaddr_storage host; /* IPv4 or IPv6 address and port */
    socklen_t host_len;
    struct in_addr guest;         /* network byte order */
    uint16_t guest_port;
};

/*
 * Parse QEMU's hostfwd syntax, [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:
 * GUESTPORT: HOSTADDR an IPv4 address or [IPv6], empty for every IPv4
 * address; GUESTADDR IPv4, empty for the first address DHCP hands out.
 * 0, or -EINVAL with a sentence in why.
 */
int vmdev_net_hostfwd_parse(const char *spec, struct vmdev_net_hostfwd *out,
                            char *why, size_t why_len);

/* The largest MTU libslirp takes. */
#define VMDEV_NET_SLIRP_MAX_MTU 65521u

struct vmdev_net_slirp_config {
    /* The guest link's MTU, 68 to VMDEV_NET_SLIRP_MAX_MTU, 0 for 1500 (as
     * QEMU's): the segments slirp's TCP makes for the guest and the
     * largest frame either way. Give the device's MTU the same value. */
    unsigned mtu;
    bool ipv6;       /* also IPv6: fec0::/64, the host at fec0::2 */
    bool restricted; /* the guest reaches nothing but forwarded ports */
    const struct vmdev_net_hostfwd *hostfwds;
    unsigned num_hostfwds;
};

/*
 * User-mode networking through libslirp, as QEMU's `-netdev user`: the
 * guest's network is 10.0.2.0/24 with the host at 10.0.2.2 (its
 * connections go out as the host's own, to 127.0.0.1 too), DNS at
 * 10.0.2.3 and DHCP handing out 10.0.2.15 onwards. No privileges needed.
 * The process must ignore or handle SIGPIPE (libslirp writes to host
 * sockets without MSG_NOSIGNAL); with SIGPIPE at its default disposition
 * this refuses (EINVAL), even where every thread blocks it. NULL with
 * errno and a sentence in why (why_len bytes, may be 0) for that, an MTU
 * out of range (EINVAL), or a forward that cannot be set up (its host
 * port taken, say).
 */
struct vmdev_net_backend *
vmdev_net_slirp_new(const struct vmdev_net_slirp_config *config,
                    struct vmdev_event_loop *loop, char *why, size_t why_len);

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
 * Send one frame (len bytes in iov, at most VMDEV_NET_MAX_IOV pieces, else
 * -EINVAL): 0 when the backend has taken it, -EAGAIN when it cannot now
 * (writable() follows), -EMSGSIZE for a frame over VMDEV_NET_MAX_FRAME,
 * -ENOTCONN once the host side is gone, -EIO when the host side refused
 * this frame (a tap that is down).
 */
#define VMDEV_NET_MAX_IOV 64u
int vmdev_net_send(struct vmdev_net_backend *backend, const struct iovec *iov,
                   unsigned iovcnt);
/* The same with offloads (NULL: none), which must be within
 * vmdev_net_offloads() (-EINVAL otherwise). The backend passes them on
 * as they are: its host side (the tap's kernel) checks them. */
int vmdev_net_send_offload(struct vmdev_net_backend *backend,
                           const struct iovec *iov, unsigned iovcnt,
                           const struct vmdev_net_offload *offload);
/* VMDEV_NET_CAN_* bits of what it carries; 0 for plain frames only. */
unsigned vmdev_net_offloads(const struct vmdev_net_backend *backend);
/* Which of those the consumer takes in received frames (the guest's
 * GUEST_* features): no frame it receives needs more. Initially none. Any
 * thread; frames read before the change may still carry the old ones.
 * 0, or -errno. */
int vmdev_net_set_receive_offloads(struct vmdev_net_backend *backend,
                                   unsigned offloads);
/* The device has room again: offer the frame held back, then read on. */
void vmdev_net_resume_receive(struct vmdev_net_backend *backend);
bool vmdev_net_link_up(const struct vmdev_net_backend *backend);
struct vmdev_net_stats vmdev_net_stats(const struct vmdev_net_backend *backend);
/* From any thread once nothing else calls into the backend; a callback
 * in progress on the loop's thread is waited for, so the caller must not
 * hold a lock that callback takes. */
void vmdev_net_free(struct vmdev_net_backend *backend);

/*
 * A packet capture: the frames of the backends it is given to, both ways,
 * written to a pcap file (Ethernet, nanosecond timestamps) as each is
 * handed over, for tcpdump -r or Wireshark. A frame with offloads is
 * written as it went (a segmentation frame whole, as tcpdump shows a
 * tap's). Backends on different threads may share one; their records
 * are in the order written, each stamped when its frame was handed over,
 * so two threads' stamps may be out of order by that much. NULL with
 * errno and a sentence in why (why_len bytes, may be 0) if path cannot
 * be written; an existing file is replaced.
 */
struct vmdev_net_capture;
struct vmdev_net_capture *vmdev_net_capture_new(const char *path, char *why,
                                                size_t why_len);
/* Copy the backend's frames to capture (NULL: none), before
 * vmdev_net_start(): 0, or -EBUSY once started. */
int vmdev_net_set_capture(struct vmdev_net_backend *backend,
                          struct vmdev_net_capture *capture);
/* Frames written so far. */
uint64_t vmdev_net_capture_frames(struct vmdev_net_capture *capture);
/* Write out what is buffered: 0, or -errno of the first write that
 * failed since the capture was made (the file is then incomplete). Any
 * thread; call it once every backend given the capture is freed, to
 * know whether the file is whole. */
int vmdev_net_capture_flush(struct vmdev_net_capture *capture);
/* After every backend given it. Accepts NULL. */
void vmdev_net_capture_free(struct vmdev_net_capture *capture);

#ifdef __cplusplus
}
#endif

#endif
