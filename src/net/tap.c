/* SPDX-License-Identifier: MIT */
/*
 * The tap network backend ("bridge mode"): frames to and from a Linux tap
 * interface, one backend per queue of the tap (IFF_MULTI_QUEUE when there
 * are several), optionally put on a Linux bridge.
 *
 * A tap hands over whole frames: each read() is one frame, each write()
 * one frame. Opened with IFF_VNET_HDR, each frame comes after Linux's
 * 10-byte virtio-net header, so checksum and segmentation offloads pass
 * straight through both ways (the kernel checks what we write, as it
 * does for vhost-net); TUNSETOFFLOAD limits what the kernel hands us to
 * what the consumer takes. What the host kernel sends is still checked: a
 * frame shorter than an Ethernet header is counted and dropped.
 *
 * Memory is bounded: while the device has no room, the frame read last
 * waits in the backend (one at most) and the tap is not read, so frames
 * queue in the kernel, up to the interface's txqueuelen, and the kernel
 * drops beyond that, as it would for a real card.
 */
#include <errno.h>
#include <fcntl.h>
#include <endian.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_net.h>
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
    struct net_fd_watch watch;
    bool vnet_hdr;      /* frames come after a struct virtio_net_hdr */
    atomic_uint rx_offloads; /* VMDEV_NET_CAN_*: what the consumer takes */
    bool held;          /* frame[0, held_len) waits for room */
    bool want_writable; /* a send got -EAGAIN: say when it may go on */
    size_t held_len;
    struct vmdev_net_offload held_offload;
    uint8_t *frame;     /* VMDEV_NET_MAX_FRAME bytes */
};

static struct tap_backend *tap_of(struct vmdev_net_backend *b)
{
    return NET_BACKEND_KIND(b, struct tap_backend);
}

static void on_events(void *opaque, uint32_t events);
static void tap_gone(struct tap_backend *tb);

/* Reading unless a frame is held or the tap is gone; writing only while
 * a send waits. 0, or -errno when the watch cannot be added. */
static int update_watch(struct tap_backend *tb)
{
    if (!tb->base.started)
        return 0;
    uint32_t want = 0;
    if (tb->base.up)
        want = (tb->held ? 0 : VMDEV_EVENT_IN) |
               (tb->want_writable ? VMDEV_EVENT_OUT : 0);
    return net_fd_watch_set(&tb->base, &tb->watch, tb->fd, want, on_events,
                            tb);
}

/* The same on the loop: unwatched, nothing would move again, so a watch
 * that cannot be added takes the link down (start() reports it instead). */
static void keep_watching(struct tap_backend *tb)
{
    if (update_watch(tb))
        tap_gone(tb);
}

/* The interface was deleted under us (the fd reports an error on every
 * poll from then on): stop watching it, and the link is down. */
static void tap_gone(struct tap_backend *tb)
{
    tb->want_writable = false;
    net_backend_set_link(&tb->base, false);
}

static bool has_offload(const struct vmdev_net_offload *o)
{
    return o->flags || o->gso_type != VMDEV_NET_GSO_NONE;
}

/* Offer frame[0, len) to the device: false when it has no room (the
 * frame is held then). */
static bool offer(struct tap_backend *tb, size_t len,
                  const struct vmdev_net_offload *offload)
{
    if (len < ETH_HEADER) {
        net_backend_rx_error(&tb->base);
        return true;
    }
    if (net_backend_deliver(&tb->base, tb->frame, len,
                            has_offload(offload) ? offload : NULL))
        return true;
    tb->held = true;
    tb->held_len = len;
    tb->held_offload = *offload;
    return false;
}

static void read_frames(struct tap_backend *tb)
{
    struct virtio_net_hdr hdr;
    struct iovec iov[2] = { { &hdr, sizeof(hdr) },
                            { tb->frame, VMDEV_NET_MAX_FRAME } };
    size_t hdr_len = tb->vnet_hdr ? sizeof(hdr) : 0;
    for (unsigned i = 0; i < RX_BATCH && !tb->held && tb->base.up; i++) {
        ssize_t n = readv(tb->fd, iov + !tb->vnet_hdr, 1 + tb->vnet_hdr);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return; /* read all there was */
        if (n < 0 && errno == EINVAL) {
            /* One frame the kernel could not put in a virtio-net header
             * (a kind of segmentation it has no code for): lost. */
            net_backend_rx_error(&tb->base);
            continue;
        }
        if (n <= 0) {
            tap_gone(tb);
            return;
        }
        struct vmdev_net_offload offload = { 0 };
        /* The kernel returns the frame's whole length even where it did
         * not fit the buffer (tun_put_user): one longer was cut short (a
         * gso_max_size raised past our frame size), not a frame. */
        if ((size_t)n < hdr_len || (size_t)n > hdr_len + VMDEV_NET_MAX_FRAME) {
            net_backend_rx_error(&tb->base);
            continue;
        }
        if (tb->vnet_hdr)
            offload = (struct vmdev_net_offload){
                .flags = hdr.flags,
                .gso_type = hdr.gso_type,
                .hdr_len = le16toh(hdr.hdr_len),
                .gso_size = le16toh(hdr.gso_size),
                .csum_start = le16toh(hdr.csum_start),
                .csum_offset = le16toh(hdr.csum_offset),
            };
        /* The kernel marks what it verified DATA_VALID whatever
         * TUNSETOFFLOAD said: a hint only for a consumer taking checksums. */
        if (!(atomic_load(&tb->rx_offloads) & VMDEV_NET_CAN_CSUM))
            offload.flags &= (uint8_t)~VMDEV_NET_OFFLOAD_DATA_VALID;
        offer(tb, (size_t)n - hdr_len, &offload);
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
    keep_watching(tb);
}

static int tap_send(struct vmdev_net_backend *b, const struct iovec *iov,
                    unsigned iovcnt, size_t len,
                    const struct vmdev_net_offload *offload)
{
    struct tap_backend *tb = tap_of(b);
    struct virtio_net_hdr hdr = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
    if (offload)
        hdr = (struct virtio_net_hdr){
            .flags = offload->flags,
            .gso_type = offload->gso_type,
            .hdr_len = htole16(offload->hdr_len),
            .gso_size = htole16(offload->gso_size),
            .csum_start = htole16(offload->csum_start),
            .csum_offset = htole16(offload->csum_offset),
        };
    struct iovec v[VMDEV_NET_MAX_IOV + 1];
    unsigned n_iov = 0;
    if (tb->vnet_hdr) {
        v[n_iov++] = (struct iovec){ &hdr, sizeof(hdr) };
        len += sizeof(hdr);
    }
    memcpy(v + n_iov, iov, iovcnt * sizeof(*iov));
    n_iov += iovcnt;
    ssize_t n;
    do
        n = writev(tb->fd, v, (int)n_iov);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        tb->want_writable = true;
        keep_watching(tb);
        return -EAGAIN;
    }
    if (n < 0 && errno == EBADFD) {
        tap_gone(tb);
        keep_watching(tb);
        return -ENOTCONN;
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
    if (offer(tb, tb->held_len, &tb->held_offload))
        read_frames(tb);
    keep_watching(tb);
}

static void tap_close(struct vmdev_net_backend *b)
{
    struct tap_backend *tb = tap_of(b);
    net_fd_watch_close(&tb->base, &tb->watch);
    close(tb->fd);
    free(tb->frame);
    free(tb);
}

static int tap_start(struct vmdev_net_backend *b)
{
    return update_watch(tap_of(b));
}

/* VMDEV_NET_CAN_* as TUN_F_* (the kernel takes segmentation only with
 * checksums). */
static unsigned tun_offloads(unsigned offloads)
{
    if (!(offloads & VMDEV_NET_CAN_CSUM))
        return 0;
    unsigned tun = TUN_F_CSUM;
    if (offloads & VMDEV_NET_CAN_TSO4)
        tun |= TUN_F_TSO4;
    if (offloads & VMDEV_NET_CAN_TSO6)
        tun |= TUN_F_TSO6;
    if (offloads & (VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_TSO6) &&
        offloads & VMDEV_NET_CAN_ECN)
        tun |= TUN_F_TSO_ECN;
    return tun;
}

static int tap_set_receive_offloads(struct vmdev_net_backend *b,
                                    unsigned offloads)
{
    struct tap_backend *tb = tap_of(b);
    if (!tb->vnet_hdr)
        return 0;
    if (ioctl(tb->fd, TUNSETOFFLOAD, tun_offloads(offloads)) < 0)
        return -errno;
    atomic_store(&tb->rx_offloads, offloads); /* from any thread */
    return 0;
}

static const struct net_backend_ops tap_ops = {
    .start = tap_start,
    .send = tap_send,
    .set_receive_offloads = tap_set_receive_offloads,
    .resume_receive = tap_resume_receive,
    .close = tap_close,
};

#define ALL_OFFLOADS                                                           \
    (VMDEV_NET_CAN_CSUM | VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_TSO6 |            \
     VMDEV_NET_CAN_ECN)

/* How the fd frames: a tap with the virtio-net header carries what the
 * kernel offers (all of it; asked once), none received until the consumer
 * says; a descriptor that is no tun at all (a socket standing in for a
 * tap in tests) carries plain frames. -EINVAL for a tun device or a tap
 * with packet information, whose frames are no Ethernet frames; -errno
 * when the header cannot be set up (frames would be misread). These
 * settings are the tap's, not the queue's: they apply to every queue. */
static int probe_vnet_hdr(struct tap_backend *tb)
{
    struct ifreq ifr = { 0 };
    if (ioctl(tb->fd, TUNGETIFF, &ifr) < 0)
        return 0;
    if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TAP ||
        !(ifr.ifr_flags & IFF_NO_PI))
        return -EINVAL;
    if (!(ifr.ifr_flags & IFF_VNET_HDR))
        return 0;
    /* The header's fields are little-endian whatever the host's order
     * (virtio 1.x); a kernel without TUNSETVNETLE is little-endian only
     * on little-endian hosts. */
    int le = 1;
    if (ioctl(tb->fd, TUNSETVNETLE, &le) < 0 && __BYTE_ORDER != __LITTLE_ENDIAN)
        return -errno;
    int hdr_size = sizeof(struct virtio_net_hdr);
    if (ioctl(tb->fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
        return -errno;
    tb->vnet_hdr = true;
    if (ioctl(tb->fd, TUNSETOFFLOAD, tun_offloads(ALL_OFFLOADS)) == 0)
        tb->base.offloads = ALL_OFFLOADS;
    /* None until the consumer says what it takes. */
    if (ioctl(tb->fd, TUNSETOFFLOAD, 0) < 0 && tb->base.offloads)
        return -errno;
    return 0;
}

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
    net_fd_watch_init(&tb->watch);
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
    err = -probe_vnet_hdr(tb);
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
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
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
            snprintf(why, why_len, "%s exists but is not a multi-queue tap "
                     "(IFF_MULTI_QUEUE), which several queues need "
                     "(a tap without it takes queues=1)", ifname);
        else if (err == EINVAL && !multi_queue)
            snprintf(why, why_len, "%s exists but is not a single-queue tap "
                     "(a multi-queue one takes queues=2 or more)", ifname);
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

/* The interface index of ifindex's master (its bridge), from rtnetlink,
 * which answers for the caller's network namespace; 0 when none. */
static unsigned master_of(unsigned ifindex)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return 0;
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
    } req = {
        .nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
                .nlmsg_flags = NLM_F_REQUEST },
        .ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)ifindex },
    };
    unsigned master = 0;
    /* Aligned for the headers read out of it. */
    union {
        struct nlmsghdr nh;
        char bytes[8192];
    } reply;
    ssize_t n = -1;
    if (send(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req))
        n = recv(fd, &reply, sizeof(reply), 0);
    close(fd);
    struct nlmsghdr *nh = &reply.nh;
    if (n < 0 || !NLMSG_OK(nh, (unsigned)n) || nh->nlmsg_type != RTM_NEWLINK)
        return 0;
    struct ifinfomsg *ifi = NLMSG_DATA(nh);
    int left = (int)IFLA_PAYLOAD(nh);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, left);
         a = RTA_NEXT(a, left))
        if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= sizeof(uint32_t))
            memcpy(&master, RTA_DATA(a), sizeof(uint32_t));
    return master;
}

/* A bridge takes the lowest address among its ports unless it was given
 * one: a tap made here with a random address could change the bridge's.
 * As QEMU's bridge helper does, the tap's address starts with 0xfe, above
 * any vendor's. */
static void keep_bridge_address(const char *ifname)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (if_ioctl(SIOCGIFHWADDR, &ifr) == 0) {
        ifr.ifr_hwaddr.sa_data[0] = (char)0xfe;
        if_ioctl(SIOCSIFHWADDR, &ifr);
    }
}

/* Put ifname up and, if bridge is named, on that bridge; -errno with a
 * sentence in why. */
static int connect_interface(const char *ifname, const char *bridge,
                             bool created, char *why, size_t why_len)
{
    if (created && bridge)
        keep_bridge_address(ifname);
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
    /* A port already: of this bridge, a persistent tap a run before put
     * there, which is as asked. */
    if (ret == -EBUSY && master_of(index) == if_nametoindex(bridge))
        ret = 0;
    if (ret) {
        if (ret == -EBUSY)
            snprintf(why, why_len, "tap %s is a bridge's port already: "
                     "leave bridge= out, or take it off that bridge", ifname);
        else if (ret == -ENODEV)
            snprintf(why, why_len, "no bridge named %s", bridge);
        else if (ret == -EOPNOTSUPP)
            snprintf(why, why_len, "%s is not a Linux bridge", bridge);
        else
            snprintf(why, why_len, "cannot put tap %s on bridge %s: %s",
                     ifname, bridge, strerror(-ret));
    }
    return ret;
}

int vmdev_net_tap_new(const struct vmdev_net_tap_config *config,
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
    /* No '%': the kernel would make up a new name per queue ("tap%d"). */
    if (!name || !*name || strlen(name) >= IFNAMSIZ ||
        strpbrk(name, "/%: \t\n")) {
        snprintf(why, why_len, "'%s' is not an interface name (1 to %d "
                 "characters, none of '/', '%%', ':' or blanks)",
                 name ? name : "", IFNAMSIZ - 1);
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
    bool created = if_nametoindex(name) == 0;
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
            if (errno == EINVAL)
                snprintf(why, why_len, "%s is not a tap without packet "
                         "information", name);
            else
                snprintf(why, why_len, "tap %s: %s", name, strerror(errno));
            break;
        }
    }
    if (!ret)
        ret = connect_interface(name, config->bridge, created, why, why_len);
    if (ret) {
        while (opened--) {
            vmdev_net_free(backends[opened]);
            backends[opened] = NULL;
        }
    }
    return ret;
}
