/* SPDX-License-Identifier: MIT */
/*
 * The tap network backend ("bridge mode"): frames to and from a Linux tap
 * interface, one backend per queue of the tap (IFF_MULTI_QUEUE when there
 * are several), optionally put on a Linux bridge.
 *
 * A tap hands over whole frames: each read() is one frame, each write()
 * one frame. What the host kernel sends is still checked: a frame shorter
 * than an Ethernet header is counted and dropped.
 *
 * Memory is bounded: while the device has no room, the frame read last
 * waits in the backend (one at most) and the tap is not read, so frames
 * queue in the kernel, up to the interface's txqueuelen, and the kernel
 * drops beyond that, as it would for a real card.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h"

#define ETH_HEADER 14
/* Frames read per wake-up before the loop's other work gets its turn. */
#define RX_BATCH 64

struct tap_backend {
    struct vmdev_net_backend base;
    int fd;
    struct vmdev_event_watch *watch;
    uint32_t watching;  /* the VMDEV_EVENT_* bits the watch asks for */
    bool held;          /* frame[0, held_len) waits for room */
    bool want_writable; /* a send got -EAGAIN: say when it may go on */
    size_t held_len;
    uint8_t *frame;     /* VMDEV_NET_MAX_FRAME bytes */
};

static struct tap_backend *tap_of(struct vmdev_net_backend *b)
{
    return (struct tap_backend *)((char *)b -
                                  offsetof(struct tap_backend, base));
}

static void on_events(void *opaque, uint32_t events);

/* Reading unless a frame is held; writing only while a send waits. */
static void update_watch(struct tap_backend *tb)
{
    if (!tb->base.started)
        return;
    uint32_t want = (tb->held ? 0 : VMDEV_EVENT_IN) |
                    (tb->want_writable ? VMDEV_EVENT_OUT : 0);
    if (want == tb->watching && (tb->watch || !want))
        return;
    if (tb->watch)
        vmdev_event_loop_remove(tb->base.loop, tb->watch);
    tb->watch = NULL;
    tb->watching = want;
    if (!want || !vmdev_event_loop_add_into(tb->base.loop, tb->fd, want,
                                            on_events, tb, &tb->watch))
        tb->watching = 0;
}

/* Offer frame[0, len) to the device: false when it has no room (the
 * frame is held then). */
static bool offer(struct tap_backend *tb, size_t len)
{
    if (len < ETH_HEADER) {
        net_backend_rx_error(&tb->base);
        return true;
    }
    if (net_backend_deliver(&tb->base, tb->frame, len))
        return true;
    tb->held = true;
    tb->held_len = len;
    return false;
}

static void read_frames(struct tap_backend *tb)
{
    for (unsigned i = 0; i < RX_BATCH && !tb->held; i++) {
        ssize_t n = read(tb->fd, tb->frame, VMDEV_NET_MAX_FRAME);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: read all there was */
        offer(tb, (size_t)n);
    }
}

static void on_events(void *opaque, uint32_t events)
{
    struct tap_backend *tb = opaque;
    if (events & VMDEV_EVENT_OUT && tb->want_writable) {
        tb->want_writable = false;
        if (tb->base.cb.writable)
            tb->base.cb.writable(tb->base.cb.opaque);
    }
    if (events & VMDEV_EVENT_IN)
        read_frames(tb);
    update_watch(tb);
}

static int tap_send(struct vmdev_net_backend *b, const struct iovec *iov,
                    unsigned iovcnt, size_t len)
{
    struct tap_backend *tb = tap_of(b);
    if (iovcnt > IOV_MAX)
        return -EINVAL;
    ssize_t n;
    do
        n = writev(tb->fd, iov, (int)iovcnt);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        tb->want_writable = true;
        update_watch(tb);
        return -EAGAIN;
    }
    /* A tap takes a frame whole or not at all; EIO: the interface is
     * down, the frame is lost as on a cable with nothing at the end. */
    if (n != (ssize_t)len)
        return -EIO;
    return 0;
}

static void tap_resume_receive(struct vmdev_net_backend *b)
{
    struct tap_backend *tb = tap_of(b);
    if (!tb->held)
        return;
    tb->held = false;
    if (offer(tb, tb->held_len))
        read_frames(tb);
    update_watch(tb);
}

static void tap_close(struct vmdev_net_backend *b)
{
    struct tap_backend *tb = tap_of(b);
    if (tb->watch)
        vmdev_event_loop_remove(tb->base.loop, tb->watch);
    close(tb->fd);
    free(tb->frame);
    free(tb);
}

static int tap_start(struct vmdev_net_backend *b)
{
    struct tap_backend *tb = tap_of(b);
    update_watch(tb);
    return tb->watch ? 0 : -errno;
}

static const struct net_backend_ops tap_ops = {
    .start = tap_start,
    .send = tap_send,
    .resume_receive = tap_resume_receive,
    .close = tap_close,
};

struct vmdev_net_backend *vmdev_net_tap_from_fd(int fd,
                                                struct vmdev_event_loop *loop)
{
    struct tap_backend *tb = calloc(1, sizeof(*tb));
    if (!tb) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    net_backend_init(&tb->base, &tap_ops, loop);
    tb->fd = fd;
    tb->frame = malloc(VMDEV_NET_MAX_FRAME);
    int flags = fcntl(fd, F_GETFL), err = 0;
    if (!tb->frame)
        err = ENOMEM;
    else if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        err = errno;
    if (err) {
        tap_close(&tb->base);
        errno = err;
        return NULL;
    }
    return &tb->base;
}

/* One queue of tap ifname: an fd, or -errno with a sentence in why. */
static int open_queue(const char *ifname, bool multi_queue, char *why,
                      size_t why_len)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        snprintf(why, why_len, "cannot open /dev/net/tun: %s", strerror(err));
        return -err;
    }
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    if (multi_queue)
        ifr.ifr_flags |= IFF_MULTI_QUEUE;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        close(fd);
        if (err == EPERM)
            snprintf(why, why_len, "tap %s: creating or attaching to it needs "
                     "CAP_NET_ADMIN (or a tap made for this user)", ifname);
        else if (err == EINVAL && multi_queue)
            snprintf(why, why_len, "tap %s exists without multi-queue "
                     "(IFF_MULTI_QUEUE): it takes queues=1 only", ifname);
        else if (err == EINVAL && !multi_queue)
            snprintf(why, why_len, "tap %s exists as a multi-queue tap or as "
                     "a tun: ask for its queue count", ifname);
        else if (err == EBUSY)
            snprintf(why, why_len, "tap %s is in use by another program",
                     ifname);
        else
            snprintf(why, why_len, "tap %s: %s", ifname, strerror(err));
        return -err;
    }
    return fd;
}

/* ioctl on ifr through a throwaway socket: 0 or -errno. */
static int if_ioctl(unsigned long request, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int ret = ioctl(s, request, ifr) < 0 ? -errno : 0;
    close(s);
    return ret;
}

/* Put ifname up and, if bridge is named, on that bridge; -errno with a
 * sentence in why. */
static int connect_interface(const char *ifname, const char *bridge,
                             char *why, size_t why_len)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int ret = if_ioctl(SIOCGIFFLAGS, &ifr);
    if (!ret && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        ret = if_ioctl(SIOCSIFFLAGS, &ifr);
    }
    if (ret) {
        snprintf(why, why_len, "cannot bring tap %s up: %s", ifname,
                 strerror(-ret));
        return ret;
    }
    if (!bridge)
        return 0;
    unsigned index = if_nametoindex(ifname);
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
    ifr.ifr_ifindex = (int)index;
    ret = index ? if_ioctl(SIOCBRADDIF, &ifr) : -ENODEV;
    if (ret) {
        if (ret == -EBUSY)
            snprintf(why, why_len, "tap %s is a bridge's port already: "
                     "leave bridge= out, or take it off that bridge", ifname);
        else if (ret == -ENODEV)
            snprintf(why, why_len, "no bridge named %s", bridge);
        else if (ret == -EOPNOTSUPP || ret == -EINVAL)
            snprintf(why, why_len, "%s is not a Linux bridge", bridge);
        else
            snprintf(why, why_len, "cannot put tap %s on bridge %s: %s",
                     ifname, bridge, strerror(-ret));
    }
    return ret;
}

int vmdev_net_tap_open(const struct vmdev_net_tap_config *config,
                       struct vmdev_event_loop *const *loops,
                       struct vmdev_net_backend **backends, char *why,
                       size_t why_len)
{
    char scratch[1];
    if (!why_len) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    const char *name = config ? config->ifname : NULL;
    if (!name || !*name || strlen(name) >= IFNAMSIZ ||
        strchr(name, '/') || strchr(name, ' ')) {
        snprintf(why, why_len, "'%s' is not an interface name (1 to %d "
                 "characters, no '/' or blank)", name ? name : "",
                 IFNAMSIZ - 1);
        return -EINVAL;
    }
    if (config->bridge && (!*config->bridge ||
                           strlen(config->bridge) >= IFNAMSIZ)) {
        snprintf(why, why_len, "'%s' is not a bridge name (1 to %d "
                 "characters)", config->bridge, IFNAMSIZ - 1);
        return -EINVAL;
    }
    if (config->num_queues < 1 ||
        config->num_queues > VMDEV_NET_TAP_MAX_QUEUES) {
        snprintf(why, why_len, "a tap has 1 to %u queues, not %u",
                 VMDEV_NET_TAP_MAX_QUEUES, config->num_queues);
        return -EINVAL;
    }
    unsigned opened = 0;
    int ret = 0;
    for (; opened < config->num_queues; opened++) {
        int fd = open_queue(name, config->num_queues > 1, why, why_len);
        if (fd < 0) {
            ret = fd;
            break;
        }
        backends[opened] = vmdev_net_tap_from_fd(fd, loops[opened]);
        if (!backends[opened]) {
            ret = -errno;
            snprintf(why, why_len, "tap %s: %s", name, strerror(errno));
            break;
        }
    }
    if (!ret)
        ret = connect_interface(name, config->bridge, why, why_len);
    if (ret) {
        while (opened--) {
            vmdev_net_close(backends[opened]);
            backends[opened] = NULL;
        }
    }
    return ret;
}
