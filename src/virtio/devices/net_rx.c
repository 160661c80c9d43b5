/* SPDX-License-Identifier: MIT */
/*
 * virtio-net receive (virtio 1.2, 5.1.6.3 and 5.1.6.4), on the backend's
 * loop: the backend hands over a frame; under dev->lock it is filtered,
 * then written with its header into one buffer, or into as many as it
 * needs with MRG_RXBUF, all returned with one used-index update. With too
 * few buffers the buffers go back to the ring and the backend keeps the
 * frame until the driver adds some (back-pressure). A frame the buffers
 * can never take is dropped: with MRG_RXBUF one longer than the whole
 * ring holds, without it one longer than the next buffer.
 */
#include <endian.h>
#include <string.h>

#include "net_internal.h"

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
static void writable_bytes(const struct vmdev_virtqueue_chain *c, uint64_t at,
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

/* Receive attempts, once the first found too few buffers, before the
 * frame waits for the loop. */
#define RX_RETRIES 4

enum rx_result {
    RX_DELIVERED,
    RX_DROPPED, /* no number of the driver's buffers can hold it */
    RX_NO_ROOM, /* not enough buffers now: wait for more */
    RX_GUEST_ERROR,
};

/*
 * Write hdr and frame into the receive queue's buffers: one chain, or
 * with MRG_RXBUF as many as it takes. Under dev->lock. RX_NO_ROOM leaves
 * in *had how many buffers there were, all given back to the ring.
 */
static enum rx_result rx_fill(struct vmdev_virtio_net_pair *p,
                              const struct virtio_net_hdr *hdr,
                              const uint8_t *frame, size_t len,
                              const char **why, uint16_t *had)
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
            vmdev_virtqueue_unpop(vq, count);
            return RX_DROPPED;
        }
        int ret = vmdev_virtqueue_pop(vq, &p->rx_chain, why);
        if (ret < 0)
            return RX_GUEST_ERROR;
        if (ret == 0) {
            vmdev_virtqueue_unpop(vq, count);
            *had = count;
            return RX_NO_ROOM;
        }
        const struct vmdev_virtqueue_chain *c = &p->rx_chain;
        /* 5.1.6.3.1: receive buffers are device-writable, and with
         * MRG_RXBUF each holds at least the header. */
        if (c->writable_len < sizeof(*hdr)) {
            *why = "receive buffer smaller than the virtio-net header";
            return RX_GUEST_ERROR;
        }
        if (!mergeable && c->writable_len < total) {
            /* The driver sized its buffers for smaller frames. */
            vmdev_virtqueue_unpop(vq, 1);
            return RX_DROPPED;
        }
        struct vmdev_virtqueue_writer w;
        vmdev_virtqueue_writer_init(&w, c);
        if (count == 0) {
            vmdev_virtqueue_write(&w, hdr, sizeof(*hdr));
            writable_bytes(c, offsetof(struct virtio_net_hdr, num_buffers),
                           num_buffers);
            done = sizeof(*hdr);
        }
        size_t n = vmdev_virtqueue_write(&w, frame + (done - sizeof(*hdr)),
                                  total - done);
        done += n;
        p->rx_used[count++] = (struct vmdev_virtqueue_used){ c->head,
                                                      (uint32_t)w.written };
    }
    /* 5.1.6.4: num_buffers says how many buffers the frame took. */
    *num_buffers[0] = (uint8_t)count;
    *num_buffers[1] = (uint8_t)(count >> 8);
    vmdev_virtqueue_push_many(vq, p->rx_used, count);
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
bool net_receive(void *opaque, const void *data, size_t len,
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
    uint16_t had = 0;
    /* A segmentation offload frame is longer than the MTU by design. */
    enum rx_result r =
        !rx_header(net, offload, &hdr) ||
                ((hdr.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) ==
                     VIRTIO_NET_HDR_GSO_NONE &&
                 over_mtu(net, frame, len))
            ? RX_DROPPED
            : rx_fill(p, &hdr, frame, len, &why, &had);
    /* Too few buffers: ask for a kick when the driver adds to them, and
     * try again if it already has. A few times here; then the pair's own
     * kick brings the frame back from the loop, so a guest whose index
     * keeps moving cannot hold this thread. */
    for (unsigned tries = 0; r == RX_NO_ROOM; tries++) {
        if (!vmdev_virtqueue_wait_for_more(vq, had))
            break;
        if (tries == RX_RETRIES) {
            net_pair_kick(home);
            break;
        }
        r = rx_fill(p, &hdr, frame, len, &why, &had);
    }
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
        net_coalesce_returned(&p->rx_coal, 1);
    }
    pthread_mutex_unlock(&dev->lock);
    return taken;
}
