/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1): the data path.
 *
 * Each queue pair works on its backend's event loop. A driver
 * notification, on whatever thread it arrives, only signals the pair's
 * kick eventfd; the loop then resumes the backend's receiving and sends
 * what the transmit queue holds. So the backend is only ever called on
 * its own thread, and never with dev->lock held: it may call back into
 * the device (a frame, the link going down) from inside any call.
 *
 * Receive: the backend hands over a frame; under dev->lock it is
 * filtered, then written with its header into one buffer, or into as
 * many as it needs with MRG_RXBUF, all returned with one used-index
 * update. With too few buffers the buffers go back to the ring and the
 * backend keeps the frame until the driver adds some (back-pressure; a
 * frame no number of the driver's buffers could take is dropped).
 *
 * Transmit: each frame is copied out of the guest's buffers, which then
 * go straight back, so what was checked cannot change. A frame asking
 * for checksum or segmentation offload goes to a backend that carries
 * offloads (a tap) with them, checked; to one that carries plain frames
 * only, it is completed here. A frame the backend cannot take now stays
 * the only one in flight until the backend is writable again.
 *
 * Receive offloads (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN) are offered when
 * every backend carries them; the backends are told at DRIVER_OK which
 * the driver took, and a frame that still needs more (read before that)
 * is dropped and counted.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_internal.h"
#include "vmdev/log.h"

/* Frames one wake-up sends before yielding the loop to other work. */
#define TX_BATCH 256

static struct vmdev_virtio_net *net_of(struct vmdev_virtio_device *dev)
{
    return (struct vmdev_virtio_net *)dev;
}

void net_pair_kick(struct vmdev_virtio_net_pair *pair)
{
    vmdev_eventfd_signal(pair->kick_fd);
}

/* --- Notification coalescing (5.1.6.5.6) --- */

static const struct vmdev_virtio_net_coalesce *
coalesce_of(const struct net_coalesce_state *c)
{
    const struct vmdev_virtio_net *net = c->pair->net;
    return c->queue & 1 ? &net->tx_coalesce : &net->rx_coalesce;
}

/* frames were returned on c's queue: interrupt now, or once usecs have
 * passed since the first of them, or once enough of them wait. */
static void coalesce_returned(struct net_coalesce_state *c, uint32_t frames)
{
    struct vmdev_virtio_device *dev = &c->pair->net->dev;
    const struct vmdev_virtio_net_coalesce *k = coalesce_of(c);
    c->pending += frames;
    if (k->usecs == 0 || (k->frames && c->pending >= k->frames)) {
        c->pending = 0;
        if (c->armed) {
            c->armed = false;
            c->timer.cancel(c->timer.opaque);
        }
        vmdev_virtio_notify_queue(dev, c->queue);
        return;
    }
    if (!c->armed) {
        c->armed = true;
        c->timer.arm(c->timer.opaque,
                     vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC) +
                         (uint64_t)k->usecs * 1000u);
    }
}

static void coalesce_expired(void *opaque)
{
    struct net_coalesce_state *c = opaque;
    struct vmdev_virtio_device *dev = &c->pair->net->dev;
    pthread_mutex_lock(&dev->lock);
    if (c->armed) {
        c->armed = false;
        c->pending = 0;
        if (vmdev_virtio_is_running(dev))
            vmdev_virtio_notify_queue(dev, c->queue);
    }
    pthread_mutex_unlock(&dev->lock);
}

/* --- Receive --- */

static bool is_broadcast(const uint8_t *mac)
{
    static const uint8_t all[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    return memcmp(mac, all, 6) == 0;
}

static bool in_table(const uint8_t (*table)[6], unsigned count,
                     const uint8_t *mac)
{
    for (unsigned i = 0; i < count; i++)
        if (memcmp(table[i], mac, 6) == 0)
            return true;
    return false;
}

/* 5.1.6.5.1 and 5.1.6.5.2: what the driver asked to receive. */
static bool rx_accepts(const struct vmdev_virtio_net *net,
                       const uint8_t *frame)
{
    const struct net_rx_filter *f = &net->filter;
    if (f->promisc)
        return true;
    if (frame[0] & 1) {
        if (is_broadcast(frame) || f->allmulti || f->multi_overflow)
            return true;
        return in_table(f->multi, f->multi_count, frame);
    }
    if (memcmp(frame, net->mac, 6) == 0 || f->uni_overflow)
        return true;
    return in_table(f->uni, f->uni_count, frame);
}

/* Host addresses of the chain's writable bytes at and at+1, where the
 * header's num_buffers goes (a field that may straddle two segments). */
static void writable_bytes(const struct vmdev_vq_chain *c, uint64_t at,
                           uint8_t *out[2])
{
    unsigned found = 0;
    for (unsigned s = c->num_readable;
         s < c->num_readable + c->num_writable && found < 2; s++) {
        uint32_t seg_len = c->segments[s].len;
        while (found < 2 && at < seg_len)
            out[found++] = (uint8_t *)c->segments[s].host + at++;
        at -= seg_len;
    }
}

enum rx_result {
    RX_DELIVERED,
    RX_DROPPED, /* no number of the driver's buffers can hold it */
    RX_NO_ROOM, /* not enough buffers now: wait for more */
    RX_GUEST_ERROR,
};

/*
 * Write hdr and frame into the receive queue's buffers: one chain, or
 * with MRG_RXBUF as many as it takes. Under dev->lock.
 */
static enum rx_result rx_fill(struct vmdev_virtio_net_pair *p,
                              const struct virtio_net_hdr *hdr,
                              const uint8_t *frame, size_t len,
                              const char **why)
{
    struct vmdev_virtio_net *net = p->net;
    struct vmdev_virtqueue *vq = &net->dev.queues[net_rx_queue(p->index)];
    bool mergeable = net_has(net, VIRTIO_NET_F_MRG_RXBUF);
    uint64_t total = sizeof(*hdr) + len, done = 0;
    uint16_t count = 0;
    uint8_t *num_buffers[2] = { NULL, NULL };

    while (done < total) {
        if (count == vq->config.size) {
            /* Every buffer the ring can hold is not enough. */
            vmdev_vq_unpop(vq, count);
            return RX_DROPPED;
        }
        int ret = vmdev_vq_pop(vq, &p->rx_chain, why);
        if (ret < 0)
            return RX_GUEST_ERROR;
        if (ret == 0) {
            vmdev_vq_unpop(vq, count);
            return RX_NO_ROOM;
        }
        const struct vmdev_vq_chain *c = &p->rx_chain;
        /* 5.1.6.3.1: receive buffers are device-writable, and with
         * MRG_RXBUF each holds at least the header. */
        if (c->writable_len < sizeof(*hdr)) {
            *why = "receive buffer smaller than the virtio-net header";
            return RX_GUEST_ERROR;
        }
        if (!mergeable && c->writable_len < total) {
            /* The driver sized its buffers for smaller frames. */
            vmdev_vq_unpop(vq, 1);
            return RX_DROPPED;
        }
        struct vmdev_vq_writer w;
        vmdev_vq_writer_init(&w, c);
        if (count == 0) {
            vmdev_vq_write(&w, hdr, sizeof(*hdr));
            writable_bytes(c, offsetof(struct virtio_net_hdr, num_buffers),
                           num_buffers);
            done = sizeof(*hdr);
        }
        size_t n = vmdev_vq_write(&w, frame + (done - sizeof(*hdr)),
                                  total - done);
        done += n;
        p->rx_used[count++] = (struct vmdev_vq_used){ c->head,
                                                      (uint32_t)w.written };
    }
    /* 5.1.6.4: num_buffers says how many buffers the frame took. */
    *num_buffers[0] = (uint8_t)count;
    *num_buffers[1] = (uint8_t)(count >> 8);
    vmdev_vq_push_many(vq, p->rx_used, count);
    return RX_DELIVERED;
}

/* Where a backend's frames go: the pair of its number among those the
 * driver uses (5.1.6.5.5), so a backend past them is not left unread. */
static struct vmdev_virtio_net_pair *
rx_target(struct vmdev_virtio_net *net,
          const struct vmdev_virtio_net_pair *home)
{
    return &net->pairs[home->index % net->active_pairs];
}

/* 5.1.4.2: with MTU negotiated, nothing longer than the MTU and the
 * Ethernet header (and a VLAN tag) goes to the driver. */
static bool over_mtu(const struct vmdev_virtio_net *net, const uint8_t *frame,
                     size_t len)
{
    if (!net_has(net, VIRTIO_NET_F_MTU))
        return false;
    bool vlan = frame[12] == 0x81 && frame[13] == 0x00;
    return len > le16toh(net->config.mtu) + ETH_HEADER_LEN + (vlan ? 4u : 0u);
}

/* 5.1.6.4: the header of a received frame, from the offloads the backend
 * says it carries and the driver accepted. False when it needs one the
 * driver did not accept (a frame read before the backend was told). */
static bool rx_header(const struct vmdev_virtio_net *net,
                      const struct vmdev_net_offload *o,
                      struct virtio_net_hdr *hdr)
{
    *hdr = (struct virtio_net_hdr){ .gso_type = VIRTIO_NET_HDR_GSO_NONE,
                                    .num_buffers = htole16(1) };
    if (!o)
        return true;
    bool csum = net_has(net, VIRTIO_NET_F_GUEST_CSUM);
    if (o->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM && !csum)
        return false;
    uint8_t gso = o->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    bool allowed = gso == VIRTIO_NET_HDR_GSO_NONE ||
                   (gso == VIRTIO_NET_HDR_GSO_TCPV4 &&
                    net_has(net, VIRTIO_NET_F_GUEST_TSO4)) ||
                   (gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
                    net_has(net, VIRTIO_NET_F_GUEST_TSO6));
    /* 5.1.6.4.1: a segmentation frame comes with NEEDS_CSUM; ECN only
     * with segmentation. */
    if (gso != VIRTIO_NET_HDR_GSO_NONE &&
        !(o->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        allowed = false;
    if (o->gso_type & VIRTIO_NET_HDR_GSO_ECN &&
        (gso == VIRTIO_NET_HDR_GSO_NONE ||
         !net_has(net, VIRTIO_NET_F_GUEST_ECN)))
        allowed = false;
    if (!allowed)
        return false;
    /* Without GUEST_CSUM the flags are zero: DATA_VALID is only a hint. */
    hdr->flags = csum ? o->flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM |
                                    VIRTIO_NET_HDR_F_DATA_VALID)
                      : 0;
    hdr->gso_type = o->gso_type;
    hdr->hdr_len = htole16(o->hdr_len);
    hdr->gso_size = htole16(o->gso_size);
    hdr->csum_start = htole16(o->csum_start);
    hdr->csum_offset = htole16(o->csum_offset);
    return true;
}

/* A frame from the backend whose home pair is opaque, on its loop. */
static bool backend_receive(void *opaque, const void *data, size_t len,
                            const struct vmdev_net_offload *offload)
{
    struct vmdev_virtio_net_pair *home = opaque;
    struct vmdev_virtio_net *net = home->net;
    struct vmdev_virtio_device *dev = &net->dev;
    const uint8_t *frame = data;
    pthread_mutex_lock(&dev->lock);
    struct vmdev_virtio_net_pair *p = rx_target(net, home);
    uint16_t rxq = net_rx_queue(p->index);
    struct vmdev_virtqueue *vq = &dev->queues[rxq];
    if (!vmdev_virtio_is_running(dev) || !vq->enabled) {
        home->rx_waiting = true;
        pthread_mutex_unlock(&dev->lock);
        return false;
    }
    if (!rx_accepts(net, frame)) {
        net->stats.rx_filtered++;
        pthread_mutex_unlock(&dev->lock);
        return true;
    }
    struct virtio_net_hdr hdr;
    const char *why = NULL;
    /* A segmentation offload frame is longer than the MTU by design. */
    enum rx_result r =
        !rx_header(net, offload, &hdr) ||
                ((hdr.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) ==
                     VIRTIO_NET_HDR_GSO_NONE &&
                 over_mtu(net, frame, len))
            ? RX_DROPPED
            : rx_fill(p, &hdr, frame, len, &why);
    /* Too few buffers: ask for a kick when the driver adds any, then look
     * again in case it did before the request was visible. */
    while (r == RX_NO_ROOM && vmdev_vq_wait_for_more(vq))
        r = rx_fill(p, &hdr, frame, len, &why);
    bool taken = true;
    if (r == RX_GUEST_ERROR) {
        vmdev_virtio_guest_error(dev, "queue %u: %s", rxq,
                                 why ? why : "bad receive buffer");
    } else if (r == RX_NO_ROOM) {
        home->rx_waiting = true;
        taken = false;
    } else if (r == RX_DROPPED) {
        net->stats.rx_dropped++;
    } else {
        p->rx_stats.frames++;
        p->rx_stats.bytes += len;
        net->stats.rx_frames++;
        net->stats.rx_bytes += len;
        coalesce_returned(&p->rx_coal, 1);
    }
    pthread_mutex_unlock(&dev->lock);
    return taken;
}

/* --- Transmit --- */

/*
 * Copy the next frame of the pair's transmit queue into tx_frame and
 * return its chain. 1 with a frame ready to send, 0 when the queue is
 * empty (notifications back on), -1 when the device stopped.
 */
static int tx_take(struct vmdev_virtio_net_pair *p, struct virtio_net_hdr *hdr,
                   uint32_t *returned)
{
    struct vmdev_virtio_net *net = p->net;
    struct vmdev_virtio_device *dev = &net->dev;
    uint16_t txq = net_tx_queue(p->index);
    struct vmdev_virtqueue *vq = &dev->queues[txq];
    const char *why = NULL;
    for (;;) {
        if (!vmdev_virtio_is_running(dev) || !vq->enabled)
            return -1;
        int ret = vmdev_vq_pop(vq, &p->tx_chain, &why);
        if (ret < 0) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", txq, why);
            return -1;
        }
        if (ret == 0) {
            vmdev_vq_set_notification(vq, true);
            if (vmdev_vq_has_available(vq))
                continue;
            return 0;
        }
        vmdev_vq_set_notification(vq, false);
        const struct vmdev_vq_chain *c = &p->tx_chain;
        struct vmdev_vq_reader r;
        vmdev_vq_reader_init(&r, c);
        /* 5.1.6.2: each frame is preceded by its header. */
        if (vmdev_vq_read_exact(&r, hdr, sizeof(*hdr))) {
            vmdev_virtio_guest_error(dev, "queue %u: transmit buffer "
                                     "shorter than the virtio-net header",
                                     txq);
            return -1;
        }
        uint64_t len = c->readable_len - sizeof(*hdr);
        bool fits = len >= ETH_HEADER_LEN && len <= VMDEV_NET_MAX_FRAME;
        if (fits)
            p->tx_len = vmdev_vq_read(&r, p->tx_frame, (size_t)len);
        vmdev_vq_push(vq, c->head, 0);
        (*returned)++;
        p->tx_stats.frames++;
        p->tx_stats.bytes += len;
        net->stats.tx_frames++;
        net->stats.tx_bytes += len;
        if (fits)
            return 1;
        atomic_fetch_add(&p->tx_dropped, 1);
    }
}

/* The VMDEV_NET_CAN_* bits the header asks for. */
static unsigned tx_offloads_needed(const struct virtio_net_hdr *hdr)
{
    unsigned need = 0;
    if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
        need |= VMDEV_NET_CAN_CSUM;
    switch (hdr->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_TCPV4:
        need |= VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_CSUM;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        need |= VMDEV_NET_CAN_TSO6 | VMDEV_NET_CAN_CSUM;
        break;
    }
    if (hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN)
        need |= VMDEV_NET_CAN_ECN;
    return need;
}

/* Check what the header asks of the frame; then either the backend
 * carries those offloads (sent with them) or the checksum is completed
 * here and segmentation set up. False when the frame is to be dropped. */
static bool tx_prepare(struct vmdev_virtio_net_pair *p,
                       const struct virtio_net_hdr *hdr, uint64_t features)
{
    uint8_t gso = hdr->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    unsigned need = tx_offloads_needed(hdr);
    bool pass = need && !(need & ~vmdev_net_offloads(p->backend));
    p->tso_active = false;
    p->offload_active = false;
    p->segment_len = 0;
    /* ECN marks a segmentation; alone it means nothing. */
    if (gso == VIRTIO_NET_HDR_GSO_NONE && hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN)
        return false;
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        /* 5.1.6.2.1: only the offloads the driver accepted. */
        bool allowed =
            (gso == VIRTIO_NET_HDR_GSO_TCPV4 &&
             (features & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4))) ||
            (gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
             (features & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)));
        if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
            !(features & VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN)))
            allowed = false;
        if (!allowed || net_tso_init(&p->tso, p->tx_frame, p->tx_len, gso,
                                     le16toh(hdr->gso_size)))
            return false;
        p->tso_active = !pass;
    }
    if (pass) {
        bool csum = hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
        /* 5.1.6.2: a checksum only with CSUM, its field inside the frame;
         * a segmentation only with NEEDS_CSUM (5.1.6.2.1). */
        if (csum && (!(features & VIRTIO_BIT(VIRTIO_NET_F_CSUM)) ||
                     (size_t)le16toh(hdr->csum_start) +
                             le16toh(hdr->csum_offset) + 2 > p->tx_len))
            return false;
        if (gso != VIRTIO_NET_HDR_GSO_NONE && !csum)
            return false;
        p->offload_active = true;
        p->offload = (struct vmdev_net_offload){
            .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
            .csum_start = le16toh(hdr->csum_start),
            .csum_offset = le16toh(hdr->csum_offset),
        };
        if (gso != VIRTIO_NET_HDR_GSO_NONE) {
            /* What the host kernel is told comes from the headers parsed
             * above, not from the driver's fields (5.1.6.2.2: hdr_len is
             * a hint): the TCP checksum, all the headers. */
            p->offload.gso_type = hdr->gso_type;
            p->offload.gso_size = le16toh(hdr->gso_size);
            p->offload.hdr_len = (uint16_t)p->tso.hdr_len;
            p->offload.csum_start = (uint16_t)p->tso.l4;
            p->offload.csum_offset = 16; /* RFC 793: the TCP checksum */
        }
        return true;
    }
    if (p->tso_active)
        return true;
    if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!(features & VIRTIO_BIT(VIRTIO_NET_F_CSUM)) ||
            net_complete_checksum(p->tx_frame, p->tx_len,
                                  le16toh(hdr->csum_start),
                                  le16toh(hdr->csum_offset)))
            return false;
        atomic_fetch_add(&p->tx_checksums, 1);
    }
    return true;
}

/* Send what is pending, at most *budget frames: 0 when all is out (or
 * dropped), -EAGAIN when the backend will say it is writable, -EBUSY when
 * the budget ran out first (a segmented frame goes on next time). */
static int tx_send_pending(struct vmdev_virtio_net_pair *p, unsigned *budget)
{
    for (;;) {
        if (*budget == 0)
            return -EBUSY;
        struct iovec iov;
        if (p->tso_active) {
            if (!p->segment_len)
                p->segment_len = net_tso_next(&p->tso, p->tx_segment);
            if (!p->segment_len)
                break;
            iov = (struct iovec){ p->tx_segment, p->segment_len };
        } else {
            iov = (struct iovec){ p->tx_frame, p->tx_len };
        }
        int ret = vmdev_net_send_offload(p->backend, &iov, 1,
                                         p->offload_active ? &p->offload
                                                           : NULL);
        if (ret == -EAGAIN)
            return -EAGAIN;
        (*budget)--;
        if (ret)
            atomic_fetch_add(&p->tx_dropped, 1);
        else if (p->tso_active)
            atomic_fetch_add(&p->tx_segments, 1);
        if (!p->tso_active)
            break;
        p->segment_len = 0;
    }
    p->tx_pending = false;
    return 0;
}

/*
 * Send the transmit queue's frames, on the backend's loop, unlocked. At
 * most TX_BATCH frames (segments included) per wake-up, then it kicks
 * itself to come back after the loop's other work: a guest cannot hold
 * the loop, however small its segments.
 */
static void tx_run(struct vmdev_virtio_net_pair *p)
{
    struct vmdev_virtio_net *net = p->net;
    struct vmdev_virtio_device *dev = &net->dev;
    uint32_t returned = 0;
    unsigned budget = TX_BATCH;
    for (;;) {
        struct virtio_net_hdr hdr;
        uint64_t features = 0;
        int taken = 0;
        pthread_mutex_lock(&dev->lock);
        if (p->tx_pending && p->tx_generation != net->generation) {
            /* Taken before a reset: the new session does not send it. */
            p->tx_pending = false;
            atomic_fetch_add(&p->tx_dropped, 1);
        }
        if (!p->tx_pending) {
            taken = tx_take(p, &hdr, &returned);
            features = dev->driver_features;
            p->tx_generation = net->generation;
        }
        if (taken <= 0 && !p->tx_pending) {
            if (returned)
                coalesce_returned(&p->tx_coal, returned);
            pthread_mutex_unlock(&dev->lock);
            return;
        }
        pthread_mutex_unlock(&dev->lock);
        if (taken > 0) {
            if (tx_prepare(p, &hdr, features))
                p->tx_pending = true;
            else
                atomic_fetch_add(&p->tx_dropped, 1);
        }
        int ret = p->tx_pending ? tx_send_pending(p, &budget) : 0;
        if (ret == -EBUSY || (!ret && budget == 0))
            net_pair_kick(p); /* more may wait: after the others */
        if (ret || budget == 0)
            break;
    }
    if (returned) {
        pthread_mutex_lock(&dev->lock);
        coalesce_returned(&p->tx_coal, returned);
        pthread_mutex_unlock(&dev->lock);
    }
}

/* The pair's kick: on the backend's loop, without dev->lock. */
static void pair_kicked(void *opaque, uint32_t events)
{
    struct vmdev_virtio_net_pair *p = opaque;
    (void)events;
    vmdev_eventfd_drain(p->kick_fd);
    struct vmdev_virtio_device *dev = &p->net->dev;
    pthread_mutex_lock(&dev->lock);
    bool resume = p->rx_waiting;
    p->rx_waiting = false;
    int offloads = p->rx_offloads_to_set;
    p->rx_offloads_to_set = -1;
    pthread_mutex_unlock(&dev->lock);
    /* A failure leaves the backend handing over offloads the driver may
     * not take: such frames are dropped and counted (rx_header). */
    if (offloads >= 0 &&
        vmdev_net_set_receive_offloads(p->backend, (unsigned)offloads))
        vmdev_log(VMDEV_LOG_WARN, "%s: the backend cannot change its receive "
                  "offloads", dev->name);
    if (resume)
        vmdev_net_resume_receive(p->backend);
    tx_run(p);
}

/* --- Backend callbacks other than receive --- */

/* Every pair sending through the backend may go on. */
static void backend_writable(void *opaque)
{
    struct vmdev_virtio_net_pair *home = opaque;
    struct vmdev_virtio_net *net = home->net;
    for (uint16_t i = home->index; i < net->num_pairs; i += net->num_backends)
        tx_run(&net->pairs[i]);
}

/* Up while every backend is; each one's state kept here, as its own
 * callback said, since the others run on other threads. */
static bool links_up(const struct vmdev_virtio_net *net)
{
    for (uint16_t i = 0; i < net->num_backends; i++)
        if (!net->pairs[i].link_up)
            return false;
    return true;
}

/* 5.1.4: link status changes come with a configuration interrupt. */
static void backend_link_changed(void *opaque, bool up)
{
    struct vmdev_virtio_net_pair *home = opaque;
    struct vmdev_virtio_net *net = home->net;
    pthread_mutex_lock(&net->dev.lock);
    home->link_up = up;
    /* A pair waiting to be told the backend is writable would wait
     * forever on a backend that went away: its sends now fail fast. */
    for (uint16_t i = home->index; i < net->num_pairs; i += net->num_backends)
        net_pair_kick(&net->pairs[i]);
    uint16_t status = le16toh(net->config.status);
    uint16_t now = links_up(net) ? (uint16_t)(status | VIRTIO_NET_S_LINK_UP)
                                 : (uint16_t)(status & ~VIRTIO_NET_S_LINK_UP);
    if (now != status) {
        net->config.status = htole16(now);
        if (net->dev.status & VIRTIO_STATUS_DRIVER_OK)
            vmdev_virtio_notify_config(&net->dev);
    }
    pthread_mutex_unlock(&net->dev.lock);
}

/* --- Device ops --- */

static void net_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    memcpy(data, (const uint8_t *)&net_of(dev)->config + offset, len);
}

static void net_queue_notify(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtio_net *net = net_of(dev);
    if (index == net_ctrl_queue(net)) {
        net_ctrl_process(net);
        return;
    }
    if (index & 1) {
        net_pair_kick(&net->pairs[index / 2]);
        return;
    }
    /* Receive buffers: for the backends whose frames wait for them. */
    for (uint16_t k = 0; k < net->num_backends; k++)
        if (net->pairs[k].rx_waiting && k % net->active_pairs == index / 2)
            net_pair_kick(&net->pairs[k]);
}

/* A pair's queues go with its backend, whose loop is the pair's: group
 * k is the pairs on backend k (pair i on backend i % num_backends), so a
 * transmit kick reaches the backend on the thread it arrived on. The
 * control queue, served on any thread under dev->lock, is one of its own. */
static uint16_t net_queue_group(const struct vmdev_virtio_device *dev,
                                uint16_t index)
{
    const struct vmdev_virtio_net *net = (const struct vmdev_virtio_net *)dev;
    if (index == net_ctrl_queue(net))
        return index;
    return (uint16_t)(index / 2 % net->num_backends);
}

/* VMDEV_NET_CAN_* for the receive offloads the driver took. */
static unsigned accepted_rx_offloads(const struct vmdev_virtio_net *net)
{
    if (!net_has(net, VIRTIO_NET_F_GUEST_CSUM))
        return 0;
    unsigned can = VMDEV_NET_CAN_CSUM;
    if (net_has(net, VIRTIO_NET_F_GUEST_TSO4))
        can |= VMDEV_NET_CAN_TSO4;
    if (net_has(net, VIRTIO_NET_F_GUEST_TSO6))
        can |= VMDEV_NET_CAN_TSO6;
    if (net_has(net, VIRTIO_NET_F_GUEST_ECN))
        can |= VMDEV_NET_CAN_ECN;
    return can;
}

static int net_activate(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    /* Offered only when every backend carries them; told by each home
     * pair on its backend's loop (the kicks below), never under this
     * lock. */
    unsigned rx_offloads = accepted_rx_offloads(net);
    for (uint16_t i = 0; i < net->num_backends; i++)
        net->pairs[i].rx_offloads_to_set = (int)rx_offloads;
    /* Frames held back before the driver was ready, and transmit
     * buffers queued before DRIVER_OK. */
    for (uint16_t i = 0; i < net->num_pairs; i++)
        net_pair_kick(&net->pairs[i]);
    return 0;
}

static void net_reset(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    memcpy(net->mac, net->config.mac, 6);
    net->active_pairs = 1;
    net->generation++;
    net->config.status &= htole16((uint16_t)~VIRTIO_NET_S_ANNOUNCE);
    /* No receive offloads until the next driver says which it takes
     * (kicked here, so frames the kernel queues meanwhile are plain). */
    for (uint16_t i = 0; i < net->num_backends && net->pairs; i++) {
        if (net->pairs[i].backend) {
            net->pairs[i].rx_offloads_to_set = 0;
            net_pair_kick(&net->pairs[i]);
        }
    }
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct net_coalesce_state *c[2] = { &net->pairs[i].rx_coal,
                                            &net->pairs[i].tx_coal };
        for (unsigned k = 0; k < 2; k++) {
            if (c[k]->armed)
                c[k]->timer.cancel(c[k]->timer.opaque);
            c[k]->armed = false;
            c[k]->pending = 0;
        }
    }
    net_ctrl_reset(net);
}

/* --- Creation --- */

static void net_stop(struct vmdev_virtio_device *dev);
static void net_destroy(struct vmdev_virtio_device *dev);

static const struct vmdev_virtio_device_ops net_ops = {
    .read_config = net_read_config,
    .activate = net_activate,
    .reset = net_reset,
    .queue_notify = net_queue_notify,
    .queue_group = net_queue_group,
    .stop = net_stop,
    .destroy = net_destroy,
};

static int check_config(const struct vmdev_virtio_net_config *c)
{
    uint16_t pairs = c->num_pairs ? c->num_pairs : 1;
    uint16_t size = c->queue_size ? c->queue_size
                                  : VMDEV_VIRTIO_NET_DEFAULT_QUEUE_SIZE;
    if (pairs > VMDEV_VIRTIO_NET_MAX_PAIRS || size & (size - 1) ||
        size < VMDEV_VIRTIO_NET_MIN_QUEUE_SIZE ||
        size > VMDEV_VIRTIO_NET_MAX_QUEUE_SIZE ||
        (c->mtu && c->mtu < VMDEV_VIRTIO_NET_MIN_MTU) || !c->backends ||
        c->num_backends == 0 || c->num_backends > pairs || c->mac[0] & 1)
        return -EINVAL;
    for (uint16_t i = 0; i < c->num_backends; i++) {
        if (!c->backends[i])
            return -EINVAL;
        for (uint16_t k = 0; k < i; k++)
            if (c->backends[k] == c->backends[i])
                return -EINVAL; /* one backend, one consumer */
    }
    return 0;
}

/* The guest's receive offloads that every backend carries. */
static uint64_t offered_rx_offloads(const struct vmdev_virtio_net_config *c)
{
    unsigned common = ~0u;
    for (uint16_t i = 0; i < c->num_backends; i++)
        common &= vmdev_net_offloads(c->backends[i]);
    if (!(common & VMDEV_NET_CAN_CSUM))
        return 0;
    uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    if (common & VMDEV_NET_CAN_TSO4)
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
    if (common & VMDEV_NET_CAN_TSO6)
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
    if (common & VMDEV_NET_CAN_ECN &&
        common & (VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_TSO6))
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
    return f;
}

static uint64_t offered_features(const struct vmdev_virtio_net_config *c,
                                 uint16_t pairs)
{
    uint64_t f = VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                 VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
                 VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                 VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                 VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
                 VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
                 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
                 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
                 VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) |
                 VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
                 VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
                 VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
                 VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
                 VIRTIO_BIT(VIRTIO_NET_F_NOTF_COAL);
    f |= offered_rx_offloads(c);
    if (pairs > 1)
        f |= VIRTIO_BIT(VIRTIO_NET_F_MQ);
    if (c->mtu)
        f |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
    return f;
}

/* ops->stop: the pairs' kicks first, then the backends (each waiting for
 * a callback in progress), then the timers those callbacks arm, so
 * nothing runs in the device after. */
static void net_stop(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (p->kick_watch)
            vmdev_event_loop_remove(p->loop, p->kick_watch);
        p->kick_watch = NULL;
    }
    for (uint16_t i = 0; i < net->num_backends; i++) {
        vmdev_net_close(net->backends[i]);
        net->backends[i] = NULL;
    }
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (!p->loop)
            continue; /* creation failed before this pair */
        vmdev_event_loop_timer_free(p->loop, p->rx_coal.timer_owner);
        vmdev_event_loop_timer_free(p->loop, p->tx_coal.timer_owner);
        p->rx_coal.timer_owner = p->tx_coal.timer_owner = NULL;
    }
}

static void net_destroy(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (p->kick_fd >= 0)
            close(p->kick_fd);
        free(p->rx_used);
        free(p->tx_frame);
        free(p->tx_segment);
    }
    free(net->pairs);
    free(net->backends);
    free(net);
}

static int init_pair(struct vmdev_virtio_net *net, uint16_t i, uint16_t size)
{
    struct vmdev_virtio_net_pair *p = &net->pairs[i];
    p->net = net;
    p->index = i;
    p->rx_offloads_to_set = -1;
    p->backend = net->backends[i % net->num_backends];
    p->loop = vmdev_net_loop(p->backend);
    p->link_up = vmdev_net_link_up(p->backend);
    struct vmdev_event_loop *loop = p->loop;
    p->rx_coal = (struct net_coalesce_state){ .pair = p,
                                              .queue = net_rx_queue(i) };
    p->tx_coal = (struct net_coalesce_state){ .pair = p,
                                              .queue = net_tx_queue(i) };
    p->kick_fd = vmdev_eventfd_new();
    p->rx_used = calloc(size, sizeof(*p->rx_used));
    p->tx_frame = malloc(VMDEV_NET_MAX_FRAME);
    p->tx_segment = malloc(VMDEV_NET_MAX_FRAME);
    if (p->kick_fd < 0)
        return -errno;
    if (!p->rx_used || !p->tx_frame || !p->tx_segment)
        return -ENOMEM;
    p->rx_coal.timer_owner = vmdev_event_loop_timer_new(
        loop, coalesce_expired, &p->rx_coal, &p->rx_coal.timer);
    p->tx_coal.timer_owner = vmdev_event_loop_timer_new(
        loop, coalesce_expired, &p->tx_coal, &p->tx_coal.timer);
    p->kick_watch = vmdev_event_loop_add(loop, p->kick_fd, VMDEV_EVENT_IN,
                                         pair_kicked, p);
    if (!p->rx_coal.timer_owner || !p->tx_coal.timer_owner || !p->kick_watch)
        return errno ? -errno : -ENOMEM;
    return 0;
}

static void close_backends(const struct vmdev_virtio_net_config *c)
{
    for (uint16_t i = 0; c->backends && i < c->num_backends; i++)
        vmdev_net_close(c->backends[i]);
}

struct vmdev_virtio_net *vmdev_virtio_net_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_net_config *config)
{
    int err = check_config(config);
    if (err) {
        close_backends(config);
        errno = -err;
        return NULL;
    }
    struct vmdev_virtio_net *net = calloc(1, sizeof(*net));
    if (!net) {
        close_backends(config);
        errno = ENOMEM;
        return NULL;
    }
    uint16_t pairs = config->num_pairs ? config->num_pairs : 1;
    uint16_t size = config->queue_size ? config->queue_size
                                       : VMDEV_VIRTIO_NET_DEFAULT_QUEUE_SIZE;
    net->num_pairs = pairs;
    net->num_backends = config->num_backends;
    net->default_rx_coalesce = config->rx_coalesce;
    net->default_tx_coalesce = config->tx_coalesce;
    memcpy(net->config.mac, config->mac, 6);
    net->config.max_virtqueue_pairs = htole16(pairs);
    net->config.mtu = htole16(config->mtu);
    net->backends = calloc(config->num_backends, sizeof(*net->backends));
    net->pairs = calloc(pairs, sizeof(*net->pairs));
    if (!net->backends || !net->pairs) {
        free(net->backends);
        free(net->pairs);
        free(net);
        close_backends(config);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(net->backends, config->backends,
           config->num_backends * sizeof(*net->backends));
    for (uint16_t i = 0; i < pairs; i++)
        net->pairs[i].kick_fd = -1;
    err = vmdev_virtio_init(&net->dev, name, VIRTIO_ID_NET, &net_ops,
                            offered_features(config, pairs),
                            sizeof(net->config), (uint16_t)(2 * pairs + 1),
                            size, mem);
    if (err) {
        close_backends(config);
        net_destroy(&net->dev);
        errno = -err;
        return NULL;
    }
    for (uint16_t i = 0; !err && i < pairs; i++)
        err = init_pair(net, i, size);
    if (!err) {
        net_reset(&net->dev);
        if (links_up(net))
            net->config.status = htole16(VIRTIO_NET_S_LINK_UP);
    }
    /* Last: from here the backends call in, on their loops. */
    for (uint16_t i = 0; !err && i < net->num_backends; i++) {
        struct vmdev_net_callbacks cb = { backend_receive, backend_writable,
                                          backend_link_changed,
                                          &net->pairs[i] };
        err = vmdev_net_start(net->backends[i], &cb);
    }
    if (err) {
        vmdev_virtio_destroy(&net->dev); /* closes the backends */
        errno = -err;
        return NULL;
    }
    return net;
}

struct vmdev_virtio_device *vmdev_virtio_net_device(struct vmdev_virtio_net *net)
{
    return &net->dev;
}

struct vmdev_virtio_net_stats vmdev_virtio_net_stats(
    struct vmdev_virtio_net *net)
{
    pthread_mutex_lock(&net->dev.lock);
    struct vmdev_virtio_net_stats s = net->stats;
    pthread_mutex_unlock(&net->dev.lock);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        s.tx_dropped += atomic_load(&net->pairs[i].tx_dropped);
        s.tx_segments += atomic_load(&net->pairs[i].tx_segments);
        s.tx_checksums += atomic_load(&net->pairs[i].tx_checksums);
    }
    return s;
}

struct vmdev_virtio_net_queue_stats vmdev_virtio_net_queue_stats(
    struct vmdev_virtio_net *net, uint16_t index)
{
    struct vmdev_virtio_net_queue_stats s = { 0 };
    if (index >= 2 * net->num_pairs)
        return s;
    pthread_mutex_lock(&net->dev.lock);
    struct vmdev_virtio_net_pair *p = &net->pairs[index / 2];
    s = index & 1 ? p->tx_stats : p->rx_stats;
    pthread_mutex_unlock(&net->dev.lock);
    return s;
}

void vmdev_virtio_net_mac(struct vmdev_virtio_net *net, uint8_t mac[6])
{
    pthread_mutex_lock(&net->dev.lock);
    memcpy(mac, net->mac, 6);
    pthread_mutex_unlock(&net->dev.lock);
}

bool vmdev_virtio_net_announce(struct vmdev_virtio_net *net)
{
    pthread_mutex_lock(&net->dev.lock);
    bool told = vmdev_virtio_is_running(&net->dev) &&
                net_has(net, VIRTIO_NET_F_GUEST_ANNOUNCE) &&
                net_has(net, VIRTIO_NET_F_CTRL_VQ);
    if (told) {
        /* 5.1.6.5.4: the driver answers with VIRTIO_NET_CTRL_ANNOUNCE_ACK. */
        net->config.status |= htole16(VIRTIO_NET_S_ANNOUNCE);
        vmdev_virtio_notify_config(&net->dev);
    }
    pthread_mutex_unlock(&net->dev.lock);
    return told;
}

void vmdev_virtio_net_free(struct vmdev_virtio_net *net)
{
    if (net)
        vmdev_virtio_destroy(&net->dev);
}
