/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's receive path (virtio 1.2, 5.1.6.3 and 5.1.6.4) from a
 * hostile driver. The input picks the features (MRG_RXBUF, GUEST_CSUM,
 * GUEST_TSO4/6, GUEST_ECN, INDIRECT_DESC, EVENT_IDX, MQ with 1 to 4
 * pairs and 1 to 4 backends), stream backends or offload-carrying ones
 * (a tap's kind), and the shape of the receive buffers a Linux guest
 * posts: mergeable (one buffer of a "page"), big packets (the header's
 * buffer then up to 8 pages) or small (header and 1518 bytes). Then it
 * posts chains (varied: indirect, a readable descriptor first, a
 * zero-length one, the header split across descriptors; or hostile:
 * outside RAM, off its end, 4 GiB long, a loop, a next past the table,
 * readable after writable, a broken indirect table, too small for the
 * header, over the rings, over another chain), has the backends send
 * frames of 14 bytes to 64 KiB (with offload metadata on the offload
 * backends, allowed or not), runs the loop, kicks, and changes the
 * number of pairs in use through the control queue.
 *
 * After every step the target checks that
 *  - the device wrote nothing in RAM but the used rings and the writable
 *    buffers of the chains the driver had made available (or of hostile
 *    ones: anything once a hostile buffer covers a descriptor table or an
 *    available ring);
 *  - chains are used in order, each no longer than its writable bytes;
 *    a frame's num_buffers is the number of chains it took (1 without
 *    MRG_RXBUF), all published at once, and their bytes are the header
 *    and the frame sent, on the queue of its backend's pair;
 *  - the header carries only offloads the driver negotiated, and those
 *    of the frame as the backend gave them;
 *  - per backend, frames arrive in order, each at most once; every frame
 *    a backend handed over is delivered or counted in rx_dropped (the
 *    frames skipped at most that many), the device's frame and byte
 *    counters are what arrived; on the offload backends, which hand a
 *    frame over at once, a frame is dropped only when the buffers could
 *    never take it (5.1.6.3.1) or its offloads were not negotiated, and
 *    refused (left with the backend) only when the buffers available
 *    cannot hold it;
 *  - the device enters DEVICE_NEEDS_RESET only for a chain that breaks
 *    the rules, and then publishes nothing of the frame it was writing;
 *  - at the end, with the rings refilled as Linux does, every frame that
 *    fits the buffers is delivered (no wake-up lost).
 * Work per input is bounded: 64 steps, 64 frames, 64 KiB of buffers per
 * receive queue.
 */
#include <endian.h>

#include "net/backend.h"
#include "virtio/devices/net_offload.h"
#include "virtio_net_rig.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feature bits (5.1.3). */
#define F_GUEST_CSUM 1
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_GUEST_ECN 9
#define F_MRG_RXBUF 15

#define MAX_STEPS 64
#define MAX_FRAMES 64 /* sent per input, over all backends */
#define POOL_SIZE 0x10000u /* buffer memory of one receive queue */
#define MAX_BUFS 12 /* readable, zero-length, split header, header, 8 pages */
#define HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr))
#define STREAM_FRAME_MAX 9014u /* a jumbo frame */
/* What a backend's socket holds without blocking the target. */
#define STREAM_BYTES_MAX (96u << 10)
#define OFFLOAD_FRAME_MAX 65550u /* a TSO frame of 64 KiB and its headers */
/* Guest RAM, small: each input's costs its allocation and shadow. The
 * part compared after each step (the rings, the pools, tables) lies in
 * the first of its two regions. */
#define RAM_SIZE (1u << 20)
#define WINDOW_MAX (RAM_SIZE / 2 - 4096)
#define MAX_RANGES 4096

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

struct buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

struct chain {
    uint16_t head;
    struct buf bufs[MAX_BUFS];
    unsigned num_bufs;
    uint64_t writable_len;
    uint32_t pool_start;
    bool refused; /* breaks a rule: the device must not use it */
};

/* A receive queue as the driver sees it: chains made available, oldest
 * first, in a pool of memory allocated round the ring. */
struct rxq {
    struct chain out[RIG_QUEUE_SIZE];
    unsigned first, count;
    uint64_t pool;
    uint32_t pool_head, pool_tail;
    bool wrapped;
    uint64_t delivered; /* frames */
};

struct sent_frame {
    uint32_t len;
    bool with_offload;
    struct vmdev_net_offload offload;
};

struct backend_state {
    struct sent_frame sent[MAX_FRAMES];
    unsigned num_sent;
    unsigned offered;  /* offload backends: frames the device took */
    int last_seen;     /* the last frame delivered, -1: none */
    uint32_t stream_bytes;
};

struct range {
    uint64_t gpa, len;
};

struct state {
    struct net_rig rig;
    uint16_t queue_size, active_pairs;
    unsigned num_rx_queues; /* configured */
    bool mergeable, offloads;
    uint8_t shape, page_sel, pages;
    struct rxq rx[RIG_MAX_PAIRS];
    struct backend_state b[RIG_MAX_PAIRS];
    unsigned frames_sent;
    uint64_t delivered, delivered_bytes, skipped;
    bool refused_posted;  /* a chain the device must refuse */
    bool unpredictable;   /* a hostile chain the device may use */
    bool anything_goes;   /* one over a descriptor table or avail ring */
    /* Writable ranges a step may change besides the rings and the
     * chains outstanding: chains used in the step, hostile chains, acks. */
    struct range step_ranges[MAX_RANGES];
    unsigned num_step_ranges;
    struct range hostile[MAX_RANGES];
    unsigned num_hostile;
};

static struct state st;
static uint8_t before[WINDOW_MAX];
static uint64_t snap_len; /* RAM allocated later is the driver's */
static uint8_t allowed[WINDOW_MAX];
static uint8_t frame[VMDEV_NET_MAX_FRAME];
static uint8_t expect[VMDEV_NET_MAX_FRAME];
static uint8_t got[HDR_LEN + VMDEV_NET_MAX_FRAME];

static bool has(unsigned bit)
{
    return vmdev_virtio_has_feature(st.rig.dev, bit);
}

static uint8_t *host(uint64_t gpa)
{
    return st.rig.mem.host[0] + (gpa - RIG_RAM_BASE);
}

static uint64_t window_len(void)
{
    return st.rig.mem.next_free - RIG_RAM_BASE;
}

static const uint8_t device_mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };

/* Frame seq of backend k: to the device or broadcast, the sender and seq
 * in the source address, then bytes that depend on all three. */
static void make_frame(uint8_t *f, unsigned k, unsigned seq, uint32_t len)
{
    if (seq % 3 == 2)
        memset(f, 0xff, 6);
    else
        memcpy(f, device_mac, 6);
    const uint8_t src[8] = { 0x02, 0, (uint8_t)k, (uint8_t)seq, 0x88, 0xb5 };
    memcpy(f + 6, src, 8);
    for (uint32_t i = 14; i < len; i++)
        f[i] = (uint8_t)(i * 131u + seq * 17u + k * 59u + (i >> 8));
}

/* --- The driver's side --- */

static int64_t pool_take(struct rxq *q, uint32_t len)
{
    if (q->count == 0) {
        q->pool_head = q->pool_tail = 0;
        q->wrapped = false;
    }
    if (!q->wrapped) {
        if (q->pool_tail + len <= POOL_SIZE) {
            q->pool_tail += len;
            return q->pool_tail - len;
        }
        if (len <= q->pool_head) {
            q->wrapped = true;
            q->pool_tail = len;
            return 0;
        }
        return -1;
    }
    if (q->pool_tail + len <= q->pool_head) {
        q->pool_tail += len;
        return q->pool_tail - len;
    }
    return -1;
}

/* The oldest chain was used: its memory goes back to the pool. */
static void pool_give_back(struct rxq *q)
{
    q->first = (q->first + 1) % RIG_QUEUE_SIZE;
    q->count--;
    if (q->count == 0)
        return;
    uint32_t next = q->out[q->first].pool_start;
    if (next < q->pool_head)
        q->wrapped = false;
    q->pool_head = next;
}

static uint32_t page_size(void)
{
    static const uint32_t sizes[8] = { 128, 256, 512, 1024,
                                       1536, 2048, 4096, 4096 };
    return sizes[st.page_sel];
}

/*
 * The chain's buffers as the shape says: 0 mergeable (one page), 1 big
 * packets (the header's buffer, then pages), 2 small (header and a
 * 1518-byte frame), with the variations of `vary`: bit 3 a readable
 * descriptor first, bit 4 a zero-length writable one, bit 5 the first
 * writable buffer split at a byte of the header (bits 6-7).
 */
static unsigned lay_out(struct buf *bufs, unsigned shape, uint8_t vary)
{
    unsigned n = 0;
    if (vary & 8)
        bufs[n++] = (struct buf){ 0, 16, false };
    uint32_t first = shape == 1 ? HDR_LEN
                     : shape == 2 ? HDR_LEN + 1518 : page_size();
    if (vary & 32) {
        static const uint32_t splits[4] = { 4, 10, 11, 13 };
        uint32_t at = splits[vary >> 6];
        if (at < first) {
            bufs[n++] = (struct buf){ 0, at, true };
            first -= at;
        }
    }
    bufs[n++] = (struct buf){ 0, first, true };
    if (vary & 16)
        bufs[n++] = (struct buf){ 0, 0, true };
    for (unsigned i = 0; shape == 1 && i < st.pages; i++)
        bufs[n++] = (struct buf){ 0, page_size(), true };
    return n;
}

static void remember_hostile(uint64_t gpa, uint64_t len)
{
    if (st.num_hostile == MAX_RANGES)
        st.anything_goes = true;
    else
        st.hostile[st.num_hostile++] = (struct range){ gpa, len };
}

/* Make the chain just made available (direct, descriptors idx[]) break a
 * rule, as kind says; whether the device must refuse it. */
static bool make_hostile(unsigned qi, struct chain *c, const uint16_t *idx,
                         uint8_t kind)
{
    struct vdrv_queue *q = &st.rig.queues[2 * qi];
    unsigned last = c->num_bufs - 1;
    struct buf *b = &c->bufs[last];
    uint16_t flags = (uint16_t)(b->writable ? VDRV_DESC_F_WRITE : 0);
    switch (kind % 11) {
    case 0: /* below RAM (5.1.6.3.1 buffers are guest memory) */
        vdrv_set_desc(q, idx[last], 0x1000, 64, flags, 0);
        return true;
    case 1: /* running off the end of RAM */
        vdrv_set_desc(q, idx[last], RIG_RAM_BASE + RAM_SIZE - 8, 64,
                      flags, 0);
        return true;
    case 2: /* 4 GiB (2.7.5.2: a chain stays below 2^32 bytes) */
        vdrv_set_desc(q, idx[last], b->gpa, UINT32_MAX, flags, 0);
        return true;
    case 3: /* back to the head: a loop (2.7.5.2) */
        vdrv_set_desc(q, idx[last], b->gpa, b->len,
                      (uint16_t)(flags | VDRV_DESC_F_NEXT), idx[0]);
        return true;
    case 4: /* a next past the table */
        vdrv_set_desc(q, idx[last], b->gpa, b->len,
                      (uint16_t)(flags | VDRV_DESC_F_NEXT),
                      (uint16_t)(q->size + kind));
        return true;
    case 5: /* readable after writable (2.7.4.2), or none writable */
        vdrv_set_desc(q, idx[last], b->gpa, b->len, 0, 0);
        return true;
    case 6: /* an indirect table of 24 bytes, or one not negotiated */
        vdrv_set_desc(q, idx[0], c->bufs[0].gpa, 24, VDRV_DESC_F_INDIRECT, 0);
        return true;
    case 7: /* no room for the header (5.1.6.3.1) */
        for (unsigned i = 0; i < c->num_bufs; i++)
            vdrv_set_desc(q, idx[i], c->bufs[i].gpa, 0,
                          (uint16_t)((c->bufs[i].writable ? VDRV_DESC_F_WRITE
                                                          : 0) |
                                     (i < last ? VDRV_DESC_F_NEXT : 0)),
                          i < last ? idx[i + 1] : 0);
        return true;
    case 8:
    case 9: { /* over this queue's descriptors, avail or used ring */
        uint64_t at = kind & 16 ? q->used : kind & 32 ? q->avail : q->desc;
        uint32_t len = kind & 16 ? 6u + 8u * q->size : 16u * q->size;
        vdrv_set_desc(q, idx[last], at, len, VDRV_DESC_F_WRITE, 0);
        remember_hostile(at, len);
        if (!(kind & 16))
            st.anything_goes = true; /* its writes become descriptors */
        return false;
    }
    default: { /* over another queue's or this one's other buffers */
        const struct rxq *o = &st.rx[(qi + (kind >> 4)) % st.num_rx_queues];
        uint64_t at = o->pool + (uint32_t)kind * 97u % (POOL_SIZE - 4096);
        vdrv_set_desc(q, idx[last], at, 4096, VDRV_DESC_F_WRITE, 0);
        remember_hostile(at, 4096);
        return false;
    }
    }
}

/*
 * Make one chain available on receive queue qi: the default shape, or
 * as vary says (bits 0-1: shape + 1, bit 2: indirect), hostile as
 * hostile_kind says when it is not negative. Whether it was posted.
 */
static bool post(unsigned qi, uint8_t vary, int hostile_kind)
{
    struct rxq *rq = &st.rx[qi];
    struct vdrv_queue *q = &st.rig.queues[2 * qi];
    if (st.unpredictable || rq->count == q->size)
        return false;
    struct chain c = { .refused = false };
    unsigned shape = (vary & 3) ? (vary & 3) - 1u : st.shape;
    c.num_bufs = lay_out(c.bufs, shape, vary);
    bool indirect = vary & 4;
    if (hostile_kind >= 0)
        indirect = false;
    uint32_t total = 0;
    for (unsigned i = 0; i < c.num_bufs; i++)
        total += (c.bufs[i].len + 7u) & ~7u;
    if (indirect && window_len() + 16u * MAX_BUFS + 16 > WINDOW_MAX)
        return false;
    if ((indirect ? 1u : c.num_bufs) > q->num_free)
        return false;
    int64_t at = pool_take(rq, total ? total : 8);
    if (at < 0)
        return false;
    c.pool_start = (uint32_t)at;
    uint64_t gpa = rq->pool + (uint64_t)at;
    struct vdrv_buf out[MAX_BUFS], in[MAX_BUFS];
    unsigned n_out = 0, n_in = 0;
    for (unsigned i = 0; i < c.num_bufs; i++) {
        struct buf *b = &c.bufs[i];
        b->gpa = gpa;
        gpa += (b->len + 7u) & ~7u;
        if (b->writable) {
            in[n_in++] = (struct vdrv_buf){ b->gpa, b->len };
            c.writable_len += b->len;
        } else {
            /* Bytes the device must leave alone. */
            memset(host(b->gpa), 0x5a, b->len);
            out[n_out++] = (struct vdrv_buf){ b->gpa, b->len };
        }
    }
    /* The descriptors vdrv_add takes, in order (its free list). */
    uint16_t idx[MAX_BUFS];
    idx[0] = q->free_head;
    for (unsigned i = 1; i < c.num_bufs; i++)
        idx[i] = q->next_free[idx[i - 1]];
    int head = vdrv_add(q, out, n_out, in, n_in, indirect);
    check(head >= 0);
    c.head = (uint16_t)head;
    /* 2.7.5.3.1: an indirect table only with the feature. */
    if (indirect && !has(VMDEV_VIRTIO_F_INDIRECT_DESC))
        c.refused = true;
    if (hostile_kind >= 0) {
        for (unsigned i = 0; i < c.num_bufs; i++)
            if (c.bufs[i].writable)
                remember_hostile(c.bufs[i].gpa, c.bufs[i].len);
        if (make_hostile(qi, &c, idx, (uint8_t)hostile_kind))
            c.refused = true;
        else
            st.unpredictable = true;
    }
    /* 5.1.6.3.1: a receive chain holds at least the header. */
    if (c.writable_len < HDR_LEN)
        c.refused = true;
    st.refused_posted |= c.refused;
    rq->out[(rq->first + rq->count++) % RIG_QUEUE_SIZE] = c;
    return true;
}

/* As Linux's virtnet: kick only when the device asked (2.7.10). */
static void kick_if_needed(unsigned qi, uint16_t old_avail)
{
    if (vdrv_kick_needed(&st.rig.queues[2 * qi], old_avail))
        vdrv_notify(st.rig.dev, (uint16_t)(2 * qi));
}


/* --- What the device did --- */

static void allow(uint64_t gpa, uint64_t len)
{
    uint64_t end = window_len();
    if (gpa < RIG_RAM_BASE || gpa - RIG_RAM_BASE >= end)
        return;
    uint64_t off = gpa - RIG_RAM_BASE;
    if (len > end - off)
        len = end - off;
    memset(allowed + off, 1, len);
}

static void allow_step(uint64_t gpa, uint64_t len)
{
    if (st.num_step_ranges == MAX_RANGES)
        st.anything_goes = true;
    else
        st.step_ranges[st.num_step_ranges++] = (struct range){ gpa, len };
}

static void allow_chain(const struct chain *c)
{
    for (unsigned i = 0; i < c->num_bufs; i++)
        if (c->bufs[i].writable)
            allow_step(c->bufs[i].gpa, c->bufs[i].len);
}

/* Before the device runs: remember RAM. */
static void snapshot(void)
{
    st.num_step_ranges = 0;
    snap_len = window_len();
    memcpy(before, st.rig.mem.host[0], snap_len);
}

/* After: only the used rings and the buffers the device owned changed. */
static void check_writes(void)
{
    uint64_t len = snap_len;
    const uint8_t *ram = st.rig.mem.host[0];
    if (st.anything_goes || !memcmp(ram, before, len))
        return;
    memset(allowed, 0, len);
    for (unsigned i = 0; i < st.rig.num_queues; i++) {
        const struct vdrv_queue *q = &st.rig.queues[i];
        allow(q->used, 6u + 8u * q->size); /* avail_event included */
    }
    for (unsigned qi = 0; qi < st.num_rx_queues; qi++)
        for (unsigned i = 0; i < st.rx[qi].count; i++)
            allow_chain(&st.rx[qi].out[(st.rx[qi].first + i) %
                                       RIG_QUEUE_SIZE]);
    for (unsigned i = 0; i < st.num_step_ranges; i++)
        allow(st.step_ranges[i].gpa, st.step_ranges[i].len);
    for (unsigned i = 0; i < st.num_hostile; i++)
        allow(st.hostile[i].gpa, st.hostile[i].len);
    for (uint64_t block = 0; block < len; block += 4096) {
        uint64_t n = len - block < 4096 ? len - block : 4096;
        if (!memcmp(ram + block, before + block, n))
            continue;
        for (uint64_t off = block; off < block + n; off++)
            check(ram[off] == before[off] || allowed[off]);
    }
}

/* The first n written bytes of chain c, appended at got + *at. */
static void gather(const struct chain *c, uint32_t n, size_t *at)
{
    for (unsigned i = 0; i < c->num_bufs && n; i++) {
        const struct buf *b = &c->bufs[i];
        if (!b->writable)
            continue;
        uint32_t take = b->len < n ? b->len : n;
        memcpy(got + *at, host(b->gpa), take);
        *at += take;
        n -= take;
    }
}

/* 5.1.6.4.1: a header with only offloads the driver negotiated, and
 * those of the frame as its backend gave them. */
static void check_header(const struct virtio_net_hdr *h,
                         const struct sent_frame *s)
{
    uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    check(!(h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM |
                         VIRTIO_NET_HDR_F_DATA_VALID)));
    if (!has(F_GUEST_CSUM))
        check(h->flags == 0);
    check(gso == VIRTIO_NET_HDR_GSO_NONE ||
          (gso == VIRTIO_NET_HDR_GSO_TCPV4 && has(F_GUEST_TSO4)) ||
          (gso == VIRTIO_NET_HDR_GSO_TCPV6 && has(F_GUEST_TSO6)));
    if (gso != VIRTIO_NET_HDR_GSO_NONE)
        check(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
        check(gso != VIRTIO_NET_HDR_GSO_NONE && has(F_GUEST_ECN));
    struct vmdev_net_offload none = { .gso_type = VMDEV_NET_GSO_NONE };
    const struct vmdev_net_offload *o = s->with_offload ? &s->offload : &none;
    check(h->flags == (has(F_GUEST_CSUM) ? o->flags & 3 : 0));
    check(h->gso_type == o->gso_type);
    check(le16toh(h->hdr_len) == (s->with_offload ? o->hdr_len : 0));
    check(le16toh(h->gso_size) == o->gso_size);
    check(le16toh(h->csum_start) == o->csum_start);
    check(le16toh(h->csum_offset) == o->csum_offset);
}

/* Take the used chains of receive queue qi, frame by frame. */
static void harvest(unsigned qi)
{
    struct rxq *rq = &st.rx[qi];
    struct vdrv_queue *q = &st.rig.queues[2 * qi];
    uint32_t id, len;
    while (vdrv_used_idx(q) != q->last_used_idx) {
        uint16_t published = (uint16_t)(vdrv_used_idx(q) - q->last_used_idx);
        size_t at = 0;
        uint16_t num_buffers = 1;
        for (uint16_t n = 0; n < num_buffers; n++) {
            /* All of a frame's chains come with one index update. */
            check(n < published && rq->count > 0);
            check(vdrv_get_used(q, &id, &len));
            const struct chain *c = &rq->out[rq->first];
            check(id == c->head && !c->refused);
            check(len <= c->writable_len);
            check(at + len <= sizeof(got));
            gather(c, len, &at);
            allow_chain(c);
            pool_give_back(rq);
            if (n == 0) {
                check(len >= HDR_LEN);
                struct virtio_net_hdr h;
                memcpy(&h, got, sizeof(h));
                num_buffers = le16toh(h.num_buffers);
                /* 5.1.6.4: how many buffers the frame took; one without
                 * MRG_RXBUF. */
                check(num_buffers >= 1 &&
                      (st.mergeable || num_buffers == 1));
            }
        }
        /* The frame: which backend's, which of its frames, intact. */
        check(at >= HDR_LEN + 14);
        const uint8_t *f = got + HDR_LEN;
        unsigned k = f[8], seq = f[9];
        check(k < st.rig.num_backends && seq < st.b[k].num_sent);
        const struct sent_frame *s = &st.b[k].sent[seq];
        check(at - HDR_LEN == s->len);
        make_frame(expect, k, seq, s->len);
        check(!memcmp(f, expect, s->len));
        struct virtio_net_hdr h;
        memcpy(&h, got, sizeof(h));
        check_header(&h, s);
        /* 5.1.6.5.5: backend k's frames go to pair k % pairs in use. */
        check(qi == k % st.active_pairs);
        /* In order, each once; the ones skipped were dropped. */
        check((int)seq > st.b[k].last_seen);
        st.skipped += (unsigned)((int)seq - st.b[k].last_seen - 1);
        st.b[k].last_seen = (int)seq;
        st.delivered++;
        st.delivered_bytes += s->len;
        rq->delivered++;
    }
}

static bool needs_reset(void)
{
    return st.rig.dev->status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

/* Frames the backends handed over: counted by each backend. */
static uint64_t accepted(void)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < st.rig.num_backends; k++)
        n += vmdev_net_stats(st.rig.backends[k]).rx_frames;
    return n;
}

/* After a step: take what was used and check the counters. */
static void settle(void)
{
    check_writes();
    if (st.unpredictable)
        return;
    for (unsigned qi = 0; qi < st.num_rx_queues; qi++)
        harvest(qi);
    struct vmdev_virtio_net_stats s = vmdev_virtio_net_stats(st.rig.net);
    check(s.rx_filtered == 0);
    check(s.rx_frames == st.delivered && s.rx_bytes == st.delivered_bytes);
    check(st.skipped <= s.rx_dropped);
    for (unsigned qi = 0; qi < st.num_rx_queues; qi++)
        check(vmdev_virtio_net_queue_stats(st.rig.net, (uint16_t)(2 * qi))
                  .frames == st.rx[qi].delivered);
    /* A guest error consumes the frame it met, and stops the device. */
    bool reset = needs_reset();
    check(!reset || st.refused_posted);
    check(accepted() == st.delivered + s.rx_dropped + (reset ? 1 : 0));
}

/* The writable bytes of qi's chains before the first refused one, and
 * how many chains that is. */
static uint64_t room(unsigned qi, unsigned *chains)
{
    const struct rxq *rq = &st.rx[qi];
    uint64_t total = 0;
    *chains = 0;
    for (unsigned i = 0; i < rq->count; i++) {
        const struct chain *c = &rq->out[(rq->first + i) % RIG_QUEUE_SIZE];
        if (c->refused)
            break;
        total += c->writable_len;
        ++*chains;
    }
    return total;
}

/* Whether the buffers of qi, as they are, can take a frame of len. */
static bool fits(unsigned qi, uint32_t len, uint64_t *first_chain)
{
    unsigned chains;
    uint64_t total = room(qi, &chains);
    const struct rxq *rq = &st.rx[qi];
    *first_chain = chains ? rq->out[rq->first].writable_len : 0;
    if (st.mergeable)
        return total >= HDR_LEN + (uint64_t)len;
    return chains > 0;
}

/* rx_header()'s rule, from 5.1.6.4.1: whether the driver may see it. */
static bool offload_allowed(const struct sent_frame *s)
{
    if (!s->with_offload)
        return true;
    const struct vmdev_net_offload *o = &s->offload;
    uint8_t gso = o->gso_type & (uint8_t)~VMDEV_NET_GSO_ECN;
    if (o->flags & VMDEV_NET_OFFLOAD_NEEDS_CSUM && !has(F_GUEST_CSUM))
        return false;
    if (gso != VMDEV_NET_GSO_NONE &&
        !(o->flags & VMDEV_NET_OFFLOAD_NEEDS_CSUM))
        return false;
    if (!(gso == VMDEV_NET_GSO_NONE ||
          (gso == VMDEV_NET_GSO_TCPV4 && has(F_GUEST_TSO4)) ||
          (gso == VMDEV_NET_GSO_TCPV6 && has(F_GUEST_TSO6))))
        return false;
    return !(o->gso_type & VMDEV_NET_GSO_ECN) ||
           (gso != VMDEV_NET_GSO_NONE && has(F_GUEST_ECN));
}

/* Offload backends: hand over the frames waiting, in order, as a tap
 * does; each one taken is delivered at once or dropped for a reason. */
static void offer_frames(void)
{
    for (unsigned k = 0; st.offloads && k < st.rig.num_backends; k++) {
        struct backend_state *b = &st.b[k];
        while (b->offered < b->num_sent) {
            const struct sent_frame *s = &b->sent[b->offered];
            unsigned qi = k % st.active_pairs;
            uint64_t first_chain;
            bool room_now = fits(qi, s->len, &first_chain);
            unsigned chains;
            uint64_t total = room(qi, &chains);
            uint64_t dropped = vmdev_virtio_net_stats(st.rig.net).rx_dropped;
            uint64_t delivered = st.delivered;
            bool running = vmdev_virtio_is_running(st.rig.dev);
            make_frame(frame, k, b->offered, s->len);
            if (!net_backend_deliver(st.rig.backends[k], frame, s->len,
                                     s->with_offload ? &s->offload : NULL)) {
                /* 5.1.6.3: refused only without room for it. */
                check(st.unpredictable || !running || !room_now);
                break;
            }
            b->offered++;
            if (st.unpredictable)
                continue;
            /* What this frame wrote, before the driver's harvest writes
             * (used_event) and the next frame. */
            check_writes();
            for (unsigned q = 0; q < st.num_rx_queues; q++)
                harvest(q);
            snapshot();
            if (needs_reset())
                break;
            bool was_dropped =
                vmdev_virtio_net_stats(st.rig.net).rx_dropped != dropped;
            check(was_dropped != (st.delivered != delivered));
            if (was_dropped) {
                /* 5.1.6.3.1: dropped only when its offloads were not
                 * negotiated or no buffers could ever hold it: with
                 * MRG_RXBUF a full ring too small, else the next chain. */
                uint64_t need = HDR_LEN + (uint64_t)s->len;
                check(!offload_allowed(s) ||
                      (st.mergeable ? chains == st.queue_size && total < need
                                    : first_chain < need));
            } else {
                check(st.b[k].last_seen == (int)(b->offered - 1));
            }
        }
    }
}

/* Fill every ring in use with default chains as far as its pool goes,
 * then kick as Linux does; whether anything was posted. */
static bool refill_all(void)
{
    uint16_t old[RIG_MAX_PAIRS];
    bool any = false;
    for (unsigned q = 0; q < st.active_pairs; q++) {
        old[q] = st.rig.queues[2 * q].avail_idx;
        while (post(q, 0, -1))
            any = true;
    }
    snapshot();
    for (unsigned q = 0; q < st.active_pairs; q++)
        kick_if_needed(q, old[q]);
    return any;
}

/* One step of the device: the loop, then the offload frames waiting. */
static void run_device(void)
{
    rig_run(&st.rig);
    offer_frames();
    rig_drain_peer(&st.rig);
}

/* --- The input --- */

/* A new frame from backend k: recorded, and written to its socket on a
 * stream backend (an offload backend hands it over in offer_frames). */
static void send_frame(unsigned k, uint32_t len, const uint8_t *offload)
{
    struct backend_state *b = &st.b[k];
    if (st.frames_sent == MAX_FRAMES)
        return;
    uint32_t max = st.offloads ? OFFLOAD_FRAME_MAX : STREAM_FRAME_MAX;
    len = 14 + len % (max - 13);
    struct sent_frame s = { .len = len };
    if (offload && st.offloads) {
        static const uint8_t gso[4] = { VMDEV_NET_GSO_NONE,
                                        VMDEV_NET_GSO_TCPV4,
                                        VMDEV_NET_GSO_TCPV6, 3 /* UDP */ };
        s.with_offload = true;
        s.offload = (struct vmdev_net_offload){
            .flags = offload[0] & 3,
            .gso_type = (uint8_t)(gso[offload[0] >> 2 & 3] |
                                  (offload[0] & 16 ? VMDEV_NET_GSO_ECN : 0)),
            .hdr_len = 54, .gso_size = (uint16_t)(offload[3] * 8u),
            .csum_start = offload[1], .csum_offset = offload[2],
        };
    }
    if (!st.offloads) {
        if (b->stream_bytes + 4 + len > STREAM_BYTES_MAX)
            return;
        uint8_t prefix[4] = { 0, (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                              (uint8_t)len };
        make_frame(frame, k, b->num_sent, len);
        struct iovec iov[2] = { { prefix, 4 }, { frame, len } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t n = sendmsg(st.rig.peers[k], &m, MSG_DONTWAIT);
        if (n < 0)
            return; /* no room in the socket: never sent */
        /* Under STREAM_BYTES_MAX the socket takes each frame whole. */
        check((size_t)n == 4 + len);
        b->stream_bytes += 4 + len;
    }
    b->sent[b->num_sent++] = s;
    st.frames_sent++;
}

static void set_pairs(uint16_t pairs)
{
    /* The command and its ack come from the window too. */
    if (!has(RIG_NET_F_MQ) || window_len() + 64 > WINDOW_MAX)
        return;
    uint16_t le = htole16(pairs);
    uint8_t ack = rig_ctrl(&st.rig, 4 /* MQ */, 0 /* VQ_PAIRS_SET */, &le, 2);
    /* 5.1.6.5.5: 1 to max_virtqueue_pairs is accepted. */
    check(ack == 0);
    st.active_pairs = pairs;
}

static void step(uint8_t op, struct input *in)
{
    unsigned qi = (op >> 3 & 3) % st.active_pairs;
    unsigned k = (op >> 3) % st.rig.num_backends;
    uint16_t old = st.rig.queues[2 * qi].avail_idx;
    switch (op & 7) {
    case 0: /* chains of the default shape, then a kick if asked */
        for (unsigned i = 0; i <= op >> 5; i++)
            post(qi, 0, -1);
        snapshot();
        kick_if_needed(qi, old);
        break;
    case 1: { /* one chain, varied or hostile */
        uint8_t vary = take8(in);
        int kind = op & 32 ? take8(in) : -1;
        post(qi, vary, kind);
        snapshot();
        kick_if_needed(qi, old);
        break;
    }
    case 2: { /* a frame, with offloads when bit 6 says */
        uint8_t l[2] = { take8(in), take8(in) };
        uint8_t o[4] = { 0 };
        if (op & 64)
            for (unsigned i = 0; i < 4; i++)
                o[i] = take8(in);
        send_frame(k, (uint32_t)(l[0] | l[1] << 8), op & 64 ? o : NULL);
        snapshot();
        break;
    }
    case 3: { /* a burst of frames of up to 16 KiB */
        k = (op >> 6) % st.rig.num_backends;
        for (unsigned i = 0; i <= (op >> 3 & 7); i++) {
            uint8_t b = take8(in);
            send_frame(k, 46u + b * b / 4u, NULL);
        }
        snapshot();
        break;
    }
    case 4: /* the loop only */
        snapshot();
        break;
    case 5: /* kick every receive queue, asked or not */
        snapshot();
        for (unsigned q = 0; q < st.num_rx_queues; q++)
            vdrv_notify(st.rig.dev, (uint16_t)(2 * q));
        break;
    case 6: { /* another number of pairs in use */
        snapshot();
        /* The driver's own writes: the command's descriptors and avail
         * ring entry, and (after snap_len) the command and its ack. */
        const struct vdrv_queue *c = &st.rig.queues[st.rig.num_queues - 1];
        allow_step(c->desc, 16u * c->size);
        allow_step(c->avail, 6u + 2u * c->size);
        set_pairs((uint16_t)(1 + (op >> 3) % st.rig.num_pairs));
        break;
    }
    default: /* Linux's refill of every queue in use */
        refill_all();
        break;
    }
    run_device();
    settle();
}

/* At the end, while the device runs and the driver played by the rules:
 * refill and run until nothing moves; then no frame that fits waits. */
static void finish(void)
{
    for (unsigned round = 0; round < MAX_FRAMES + 4; round++) {
        if (st.unpredictable || needs_reset())
            return;
        uint64_t before_count = accepted();
        bool posted = refill_all();
        run_device();
        settle();
        if (!posted && accepted() == before_count)
            break;
    }
    if (st.unpredictable || needs_reset())
        return;
    for (unsigned k = 0; k < st.rig.num_backends; k++) {
        const struct backend_state *b = &st.b[k];
        unsigned taken = st.offloads
                             ? b->offered
                             : (unsigned)vmdev_net_stats(st.rig.backends[k])
                                   .rx_frames;
        check(taken <= b->num_sent);
        if (taken == b->num_sent)
            continue;
        uint64_t first_chain;
        check(!fits(k % st.active_pairs, b->sent[taken].len, &first_chain));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    memset(&st, 0, sizeof(st));
    /* Byte 0: features. Byte 1: pairs, backends, pairs in use, the
     * backend kind, the ring size. Byte 2: the buffers' shape, page size
     * and pages per big-packet chain. */
    uint8_t f = data[0], setup = data[1], shape = data[2];
    uint64_t features =
        (f & 1 ? VMDEV_VIRTIO_BIT(F_MRG_RXBUF) : 0) |
        (f & 2 ? VMDEV_VIRTIO_BIT(F_GUEST_CSUM) : 0) |
        (f & 4 ? VMDEV_VIRTIO_BIT(F_GUEST_TSO4) : 0) |
        (f & 8 ? VMDEV_VIRTIO_BIT(F_GUEST_TSO6) : 0) |
        (f & 16 ? VMDEV_VIRTIO_BIT(F_GUEST_ECN) : 0) |
        (f & 32 ? VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) : 0) |
        (f & 64 ? VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX) : 0) |
        (f & 128 ? VMDEV_VIRTIO_BIT(RIG_NET_F_MQ) |
                       VMDEV_VIRTIO_BIT(RIG_NET_F_CTRL_VQ)
                 : 0);
    uint16_t pairs = (uint16_t)(1 + (setup & 3));
    uint16_t backends = (uint16_t)(1 + (setup >> 2 & 3));
    if (backends > pairs)
        backends = pairs;
    static struct vdrv_mem ram; /* kept from input to input, zeroed */
    if (!ram.mem && vdrv_mem_init(&ram, RIG_RAM_BASE, RAM_SIZE, 2))
        abort();
    static const uint16_t sizes[2] = { 16, 64 };
    struct net_rig_setup s = { .features = features, .pairs = pairs,
                               .backends = backends,
                               .offloads = setup & 64,
                               .queue_size = sizes[setup >> 7],
                               .ram = &ram };
    rig_start_device(&st.rig, &s);
    st.queue_size = s.queue_size;
    st.offloads = s.offloads;
    st.mergeable = has(F_MRG_RXBUF);
    st.active_pairs = 1;
    st.num_rx_queues = has(RIG_NET_F_MQ) ? pairs : 1;
    st.shape = (uint8_t)((shape & 3) % 3);
    st.page_sel = shape >> 2 & 7;
    st.pages = (uint8_t)(1 + (shape >> 5));
    for (unsigned k = 0; k < RIG_MAX_PAIRS; k++)
        st.b[k].last_seen = -1;
    for (unsigned qi = 0; qi < st.num_rx_queues; qi++)
        st.rx[qi].pool = vdrv_alloc(&st.rig.mem, POOL_SIZE, 4096);
    rig_run(&st.rig); /* DRIVER_OK's work: the offloads told */
    set_pairs((uint16_t)(1 + (setup >> 4 & 3) % pairs));
    rig_reap(&st.rig);

    struct input in = { data + 3, size - 3 };
    for (unsigned i = 0; i < MAX_STEPS && in.left; i++) {
        step(take8(&in), &in);
        if (needs_reset())
            break;
    }
    finish();
    /* Zero what this input used (the device writes nowhere else, but
     * where descriptors it wrote itself sent it). */
    memset(ram.host[0], 0, st.anything_goes ? RAM_SIZE / 2 : window_len());
    if (st.anything_goes)
        memset(ram.host[1], 0, RAM_SIZE / 2);
    rig_stop(&st.rig);
    return 0;
}
