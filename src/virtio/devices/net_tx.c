/* SPDX-License-Identifier: MIT */
/*
 * virtio-net transmit (virtio 1.2, 5.1.6.2), on the backend's loop: each
 * frame is copied out of the guest's buffers, which then go straight
 * back, so what was checked cannot change. A frame asking for checksum or
 * segmentation offload goes to a backend that carries offloads (a tap)
 * with them, checked; to one that carries plain frames only, it is
 * completed here. A frame the backend cannot take now stays the only one
 * in flight until the backend is writable again.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "net_internal.h"

/* Chains or segments one wake-up takes before yielding the loop. */
#define TX_BATCH 256

enum tx_taken {
    TX_STOPPED = -1, /* the device stopped (or the guest broke it) */
    TX_EMPTY = 0,    /* nothing to send; notifications back on */
    TX_FRAME = 1,    /* a frame in tx_frame */
    TX_TOO_LONG = 2, /* a chain whose frame could not be sent: dropped */
};

/*
 * Copy the next frame of the pair's transmit queue into tx_frame and
 * return its chain at once; one chain a call, whatever it held.
 */
static enum tx_taken tx_take(struct vmdev_virtio_net_pair *p,
                             struct virtio_net_hdr *hdr, uint32_t *returned)
{
    struct vmdev_virtio_net *net = p->net;
    struct vmdev_virtio_device *dev = &net->dev;
    uint16_t txq = net_tx_queue(p->index);
    struct vmdev_virtqueue *vq = &dev->queues[txq];
    const char *why = NULL;
    for (;;) {
        if (!vmdev_virtio_is_running(dev) || !vq->enabled)
            return TX_STOPPED;
        int ret = vmdev_virtqueue_pop(vq, &p->tx_chain, &why);
        if (ret < 0) {
            vmdev_virtio_guest_error(dev, "queue %u: %s", txq, why);
            return TX_STOPPED;
        }
        if (ret == 0) {
            vmdev_virtqueue_set_notification(vq, true);
            if (vmdev_virtqueue_has_available(vq))
                continue; /* added before notifications were on */
            return TX_EMPTY;
        }
        vmdev_virtqueue_set_notification(vq, false);
        const struct vmdev_virtqueue_chain *c = &p->tx_chain;
        struct vmdev_virtqueue_reader r;
        vmdev_virtqueue_reader_init(&r, c);
        /* 5.1.6.2: each frame is preceded by its header. */
        if (vmdev_virtqueue_read_exact(&r, hdr, sizeof(*hdr))) {
            vmdev_virtio_guest_error(dev, "queue %u: transmit buffer "
                                     "shorter than the virtio-net header",
                                     txq);
            return TX_STOPPED;
        }
        uint64_t len = c->readable_len - sizeof(*hdr);
        bool fits = len >= ETH_HEADER_LEN && len <= VMDEV_NET_MAX_FRAME;
        if (fits)
            p->tx_len = vmdev_virtqueue_read(&r, p->tx_frame, (size_t)len);
        vmdev_virtqueue_push(vq, c->head, 0);
        (*returned)++;
        p->tx_stats.frames++;
        p->tx_stats.bytes += len;
        net->stats.tx_frames++;
        net->stats.tx_bytes += len;
        if (fits)
            return TX_FRAME;
        atomic_fetch_add(&p->tx_dropped, 1);
        return TX_TOO_LONG;
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
             (features & VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4))) ||
            (gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
             (features & VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)));
        if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
            !(features & VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN)))
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
        if (csum &&
            (!(features & VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CSUM)) ||
             (size_t)le16toh(hdr->csum_start) + le16toh(hdr->csum_offset) + 2 >
                 p->tx_len))
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
        if (!(features & VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CSUM)) ||
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

/* Chains returned to the driver count towards its notification, unless a
 * reset came since they were taken (p->tx_generation): they were the last
 * session's. Under dev->lock. */
static void tx_returned(struct vmdev_virtio_net_pair *p, uint32_t *returned)
{
    if (*returned && p->tx_generation == p->net->generation)
        net_coalesce_returned(&p->tx_coal, *returned);
    *returned = 0;
}

/*
 * Send the transmit queue's frames, on the backend's loop, unlocked. At
 * most TX_BATCH chains or segments per wake-up, dropped ones included,
 * then it kicks itself to come back after the loop's other work: a guest
 * cannot hold the loop, however small its segments or broken its frames.
 */
void net_tx_run(struct vmdev_virtio_net_pair *p)
{
    struct vmdev_virtio_net *net = p->net;
    struct vmdev_virtio_device *dev = &net->dev;
    uint32_t returned = 0; /* chains taken in session p->tx_generation */
    unsigned budget = TX_BATCH;
    for (;;) {
        struct virtio_net_hdr hdr;
        uint64_t features = 0;
        enum tx_taken taken = TX_EMPTY;
        pthread_mutex_lock(&dev->lock);
        if (p->tx_pending && p->tx_generation != net->generation) {
            /* Taken before a reset: the new session does not send it. */
            p->tx_pending = false;
            atomic_fetch_add(&p->tx_dropped, 1);
        }
        if (!p->tx_pending) {
            if (p->tx_generation != net->generation)
                returned = 0; /* the last session's */
            taken = tx_take(p, &hdr, &returned);
            features = dev->driver_features;
            p->tx_generation = net->generation;
        }
        if (taken <= TX_EMPTY && !p->tx_pending) {
            tx_returned(p, &returned);
            pthread_mutex_unlock(&dev->lock);
            return;
        }
        pthread_mutex_unlock(&dev->lock);
        if (taken == TX_FRAME && tx_prepare(p, &hdr, features)) {
            p->tx_pending = true;
        } else if (taken != TX_EMPTY) {
            /* Dropped (counted by tx_take when too long): a chain of
             * the budget all the same. */
            if (taken == TX_FRAME)
                atomic_fetch_add(&p->tx_dropped, 1);
            budget--;
        }
        int ret = p->tx_pending ? tx_send_pending(p, &budget) : 0;
        if (ret == -EBUSY || (!ret && budget == 0))
            net_pair_kick(p); /* more may wait: after the others */
        if (ret || budget == 0)
            break;
    }
    if (returned) {
        pthread_mutex_lock(&dev->lock);
        tx_returned(p, &returned);
        pthread_mutex_unlock(&dev->lock);
    }
}
