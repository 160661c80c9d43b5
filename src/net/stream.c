/* SPDX-License-Identifier: MIT */
/*
 * The stream-socket network backend: Ethernet frames over a UNIX or TCP
 * stream, each preceded by its length as a 4-byte big-endian number (the
 * framing of QEMU's `-netdev stream` and of passt).
 *
 * Everything the peer sends is hostile: a length over VMDEV_NET_MAX_FRAME
 * ends the connection (the stream cannot be resynchronised), a frame too
 * short to be Ethernet is counted and dropped.
 *
 * Memory is bounded: received bytes wait in a buffer of two maximal
 * frames, and while the device has no room the backend stops reading, so
 * the peer blocks in its socket; a frame the socket took only partly is
 * kept (one at most) and further sends get -EAGAIN until it is out.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"

#define LENGTH_BYTES 4
#define ETH_HEADER 14
#define RX_CAPACITY (2 * (LENGTH_BYTES + VMDEV_NET_MAX_FRAME))

struct stream_backend {
    struct vmdev_net_backend base;
    int fd;
    struct net_fd_watch watch;
    bool held;          /* the first frame in rx waits for room */
    bool want_writable; /* a send got -EAGAIN: say when it may go on */
    uint8_t *rx;        /* received, not yet delivered: [rx_start, rx_end) */
    size_t rx_start, rx_end;
    uint8_t *tx;        /* a frame partly sent: [tx_start, tx_end) */
    size_t tx_start, tx_end;
};

static struct stream_backend *stream_of(struct vmdev_net_backend *b)
{
    return NET_BACKEND_KIND(b, struct stream_backend);
}

static void on_events(void *opaque, uint32_t events);
static void disconnect(struct stream_backend *nb);

/* Watch for what there is to do: reading unless held or down, writing
 * while a frame is partly out. */
static int update_watch(struct stream_backend *nb)
{
    uint32_t want = 0;
    if (!nb->base.started)
        return 0;
    if (nb->base.up && !nb->held)
        want |= VMDEV_EVENT_IN;
    if (nb->base.up && nb->tx_start < nb->tx_end)
        want |= VMDEV_EVENT_OUT;
    return net_fd_watch_set(&nb->base, &nb->watch, nb->fd, want, on_events,
                            nb);
}

/* The same on the loop: unwatched, nothing would move again, so a watch
 * that cannot be added takes the link down (start() reports it instead). */
static void keep_watching(struct stream_backend *nb)
{
    if (update_watch(nb))
        disconnect(nb);
}

static void disconnect(struct stream_backend *nb)
{
    if (!nb->base.up)
        return;
    nb->tx_start = nb->tx_end = 0;
    shutdown(nb->fd, SHUT_RDWR);
    net_backend_set_link(&nb->base, false);
    update_watch(nb);
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Hand over the complete frames received, until the device has no room. */
static void deliver(struct stream_backend *nb)
{
    while (nb->base.up && !nb->held && nb->rx_end - nb->rx_start >= LENGTH_BYTES) {
        uint32_t len = be32_at(nb->rx + nb->rx_start);
        if (len > VMDEV_NET_MAX_FRAME) {
            /* Nothing after a bad length can be trusted to be a frame. */
            net_backend_rx_error(&nb->base);
            disconnect(nb);
            return;
        }
        if (nb->rx_end - nb->rx_start < LENGTH_BYTES + (size_t)len)
            break;
        const uint8_t *frame = nb->rx + nb->rx_start + LENGTH_BYTES;
        if (len < ETH_HEADER) {
            net_backend_rx_error(&nb->base);
        } else if (!net_backend_deliver(&nb->base, frame, len, NULL)) {
            nb->held = true;
            break;
        }
        nb->rx_start += LENGTH_BYTES + len;
    }
    if (nb->rx_start == nb->rx_end)
        nb->rx_start = nb->rx_end = 0;
}

static void read_some(struct stream_backend *nb)
{
    /* A whole frame always fits once what is left moves to the front. */
    if (nb->rx_start && RX_CAPACITY - nb->rx_end < LENGTH_BYTES +
                                                    VMDEV_NET_MAX_FRAME) {
        memmove(nb->rx, nb->rx + nb->rx_start, nb->rx_end - nb->rx_start);
        nb->rx_end -= nb->rx_start;
        nb->rx_start = 0;
    }
    ssize_t n = read(nb->fd, nb->rx + nb->rx_end, RX_CAPACITY - nb->rx_end);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        disconnect(nb);
        return;
    }
    nb->rx_end += (size_t)n;
    deliver(nb);
}

/* More of the partly sent frame: whether it is all out. */
static bool flush_tx(struct stream_backend *nb)
{
    while (nb->tx_start < nb->tx_end) {
        ssize_t n = send(nb->fd, nb->tx + nb->tx_start,
                         nb->tx_end - nb->tx_start, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return false;
        if (n <= 0) {
            disconnect(nb);
            return false;
        }
        nb->tx_start += (size_t)n;
    }
    nb->tx_start = nb->tx_end = 0;
    return true;
}

static void on_events(void *opaque, uint32_t events)
{
    struct stream_backend *nb = opaque;
    if (events & VMDEV_EVENT_OUT && flush_tx(nb) && nb->want_writable) {
        nb->want_writable = false;
        keep_watching(nb);
        if (nb->base.cb.writable)
            nb->base.cb.writable(nb->base.cb.opaque);
    }
    if (events & VMDEV_EVENT_IN && nb->base.up && !nb->held)
        read_some(nb);
    keep_watching(nb);
}

static int stream_send(struct vmdev_net_backend *b, const struct iovec *iov,
                       unsigned iovcnt, size_t len,
                       const struct vmdev_net_offload *offload)
{
    (void)offload; /* none: the framing has no room for them */
    struct stream_backend *nb = stream_of(b);
    if (!flush_tx(nb)) {
        if (!nb->base.up)
            return -ENOTCONN;
        nb->want_writable = true;
        return -EAGAIN;
    }
    uint8_t header[LENGTH_BYTES] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                     (uint8_t)(len >> 8), (uint8_t)len };
    struct iovec v[VMDEV_NET_MAX_IOV + 1] = { { header, sizeof(header) } };
    memcpy(v + 1, iov, iovcnt * sizeof(*iov));
    struct msghdr msg = { .msg_iov = v, .msg_iovlen = iovcnt + 1 };
    ssize_t n;
    do
        n = sendmsg(nb->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
        disconnect(nb);
        return -ENOTCONN;
    }
    size_t sent = n < 0 ? 0 : (size_t)n;
    if (sent < sizeof(header) + len) {
        /* Keep the rest; it goes out before anything else. */
        size_t at = 0;
        for (unsigned i = 0; i <= iovcnt; i++) {
            size_t skip = sent > v[i].iov_len ? v[i].iov_len : sent;
            memcpy(nb->tx + at, (uint8_t *)v[i].iov_base + skip,
                   v[i].iov_len - skip);
            at += v[i].iov_len - skip;
            sent -= skip;
        }
        nb->tx_start = 0;
        nb->tx_end = at;
        keep_watching(nb);
    }
    return 0;
}

static void stream_resume_receive(struct vmdev_net_backend *b)
{
    struct stream_backend *nb = stream_of(b);
    if (!nb->held)
        return;
    nb->held = false;
    deliver(nb);
    keep_watching(nb);
}

static void stream_close(struct vmdev_net_backend *b)
{
    struct stream_backend *nb = stream_of(b);
    net_fd_watch_close(&nb->base, &nb->watch);
    close(nb->fd);
    free(nb->rx);
    free(nb->tx);
    free(nb);
}

static int stream_start(struct vmdev_net_backend *b)
{
    return update_watch(stream_of(b));
}

static const struct net_backend_ops stream_ops = {
    .start = stream_start,
    .send = stream_send,
    .resume_receive = stream_resume_receive,
    .close = stream_close,
};

struct vmdev_net_backend *
vmdev_net_stream_new_from_fd(int fd, struct vmdev_event_loop *loop)
{
    struct stream_backend *nb = calloc(1, sizeof(*nb));
    if (!nb) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    net_backend_init(&nb->base, &stream_ops, loop);
    net_fd_watch_init(&nb->watch);
    nb->fd = fd;
    nb->rx = malloc(RX_CAPACITY);
    nb->tx = malloc(LENGTH_BYTES + VMDEV_NET_MAX_FRAME);
    int flags = fcntl(fd, F_GETFL), err = 0;
    if (!nb->rx || !nb->tx)
        err = ENOMEM;
    else if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        err = errno;
    if (err) {
        stream_close(&nb->base);
        errno = err;
        return NULL;
    }
    return &nb->base;
}

/* A connected stream socket to a UNIX path or tcp:HOST:PORT; -errno. */
static int connect_to(const char *address, char *why, size_t why_len)
{
    if (strncmp(address, "tcp:", 4) != 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (!*address || strlen(address) >= sizeof(sun.sun_path)) {
            snprintf(why, why_len, "'%s' is not a UNIX socket path (at most "
                     "%zu bytes) or tcp:HOST:PORT", address,
                     sizeof(sun.sun_path) - 1);
            return -EINVAL;
        }
        strcpy(sun.sun_path, address);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
            return fd;
        int err = errno;
        if (fd >= 0)
            close(fd);
        snprintf(why, why_len, "cannot connect to %s: %s", address,
                 strerror(err));
        return -err;
    }
    /* tcp:HOST:PORT, HOST maybe [an IPv6 address]. */
    char host[256];
    const char *colon = strrchr(address + 4, ':');
    size_t host_len = colon ? (size_t)(colon - (address + 4)) : 0;
    if (!colon || !host_len || host_len >= sizeof(host) || !colon[1]) {
        snprintf(why, why_len, "'%s' is not tcp:HOST:PORT", address);
        return -EINVAL;
    }
    memcpy(host, address + 4, host_len);
    host[host_len] = '\0';
    if (host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *list;
    int gai = getaddrinfo(host, colon + 1, &hints, &list);
    if (gai) {
        snprintf(why, why_len, "cannot resolve %s: %s", address,
                 gai_strerror(gai));
        return -EINVAL;
    }
    int err = ECONNREFUSED;
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                        a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            freeaddrinfo(list);
            return fd;
        }
        err = errno;
        if (fd >= 0)
            close(fd);
    }
    freeaddrinfo(list);
    snprintf(why, why_len, "cannot connect to %s: %s", address, strerror(err));
    return -err;
}

struct vmdev_net_backend *
vmdev_net_stream_new(const char *address, struct vmdev_event_loop *loop,
                     char *why, size_t why_len)
{
    char scratch[1];
    if (!why_len) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    int fd = connect_to(address, why, why_len);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    struct vmdev_net_backend *nb = vmdev_net_stream_new_from_fd(fd, loop);
    if (!nb)
        snprintf(why, why_len, "%s: %s", address, strerror(errno));
    return nb;
}
