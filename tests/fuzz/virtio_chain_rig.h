/* SPDX-License-Identifier: MIT */
/*
 * A hostile driver for the simple virtio devices' fuzz targets (console,
 * rng): split rings of 16 entries at fixed places in 32 KiB of fake guest
 * RAM (one region or two), and chains the input describes, either well
 * formed (readable buffers, then writable ones, direct or through an
 * indirect table, in RAM no other outstanding buffer uses) or hostile
 * (buffers outside RAM or overlapping anything, lengths of 0 or 4 GiB,
 * readable after writable, a next index past the table or back to the
 * head, nested indirect tables, indirect tables not negotiated).
 *
 * The rig remembers each chain as it built it, and a copy of RAM from
 * before each device call, so a target can check what the device wrote:
 * only the used ring and the writable buffers of the chains it used.
 * The rings are written here directly (not through vdrv_queue) so that a
 * device reset can start them afresh any number of times.
 */
#ifndef VMDEV_FUZZ_VIRTIO_CHAIN_RIG_H
#define VMDEV_FUZZ_VIRTIO_CHAIN_RIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_driver.h"
#include "vmdev/virtio_device.h"

#define RIG_RAM_BASE 0x10000ull
#define RIG_RAM_SIZE 0x8000ull
#define RIG_RAM_END (RIG_RAM_BASE + RIG_RAM_SIZE)
#define RIG_QUEUE_SIZE 16
#define RIG_MAX_QUEUES 2
#define RIG_QUEUE_AREA 0x400 /* descriptors, avail and used ring of one */
#define RIG_DESC_OFFSET 0x000
#define RIG_AVAIL_OFFSET 0x100
#define RIG_USED_OFFSET 0x200
#define RIG_USED_LEN (6 + 8 * RIG_QUEUE_SIZE)
/* Buffers and indirect tables, after the rings. */
#define RIG_DATA_BASE (RIG_RAM_BASE + RIG_MAX_QUEUES * RIG_QUEUE_AREA)
#define RIG_DATA_SIZE (RIG_RAM_END - RIG_DATA_BASE)
#define RIG_MAX_BUFFERS 4 /* per chain */
#define RIG_MAX_WRITABLE 512 /* ranges remembered per input */

struct rig_buffer {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

struct rig_chain {
    uint16_t head;
    unsigned num_descs; /* ring descriptors it takes */
    struct rig_buffer bufs[RIG_MAX_BUFFERS];
    unsigned num_bufs;
    bool hostile; /* the device may refuse it, and what it does is unknown */
};

struct rig_queue {
    uint16_t avail_idx, used_idx;
    uint16_t next_desc; /* descriptors are handed out in ring order */
    unsigned descs_out;
    struct rig_chain out[RIG_QUEUE_SIZE]; /* published, oldest first */
    unsigned first_out, num_out;
};

struct rig {
    uint8_t ram[RIG_RAM_SIZE];    /* guest RAM */
    uint8_t before[RIG_RAM_SIZE]; /* and its copy before a call */
    struct vmdev_guest_memory *mem;
    struct vmdev_virtio_device *dev;
    unsigned num_queues;
    uint64_t wanted_features;
    struct rig_queue queues[RIG_MAX_QUEUES];
    uint64_t next_data; /* bump allocator over the data area, wrapping */
    uint8_t fill;       /* the next byte written into a readable buffer */
    /* Every writable range of a hostile chain ever published. */
    struct rig_buffer hostile_writable[RIG_MAX_WRITABLE];
    unsigned num_hostile_writable;
    bool hostile_overflow; /* too many to remember: anything goes */
};

static inline void rig_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static inline uint8_t *rig_host(struct rig *r, uint64_t gpa)
{
    return r->ram + (gpa - RIG_RAM_BASE);
}

static inline void rig_put16(struct rig *r, uint64_t gpa, uint16_t v)
{
    memcpy(rig_host(r, gpa), &v, sizeof(v));
}

static inline uint16_t rig_get16(struct rig *r, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, rig_host(r, gpa), sizeof(v));
    return v;
}

static inline uint32_t rig_get32(struct rig *r, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, rig_host(r, gpa), sizeof(v));
    return v;
}

static inline uint64_t rig_queue_base(unsigned q)
{
    return RIG_RAM_BASE + q * RIG_QUEUE_AREA;
}

static inline void rig_set_desc(struct rig *r, uint64_t table, uint16_t index,
                                const struct rig_buffer *b, uint16_t flags,
                                uint16_t next)
{
    uint8_t d[16];
    uint32_t len = b->len;
    memcpy(d, &b->gpa, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    memcpy(rig_host(r, table + 16ull * index), d, sizeof(d));
}

/* The device's lock is held around every call into it, as a transport
 * holds it. */
static inline void rig_set_status(struct rig *r, uint8_t status)
{
    pthread_mutex_lock(&r->dev->lock);
    vmdev_virtio_set_status(r->dev, status);
    pthread_mutex_unlock(&r->dev->lock);
}

static inline uint8_t rig_status(struct rig *r)
{
    pthread_mutex_lock(&r->dev->lock);
    uint8_t status = r->dev->status;
    pthread_mutex_unlock(&r->dev->lock);
    return status;
}

static inline bool rig_running(struct rig *r)
{
    pthread_mutex_lock(&r->dev->lock);
    bool running = vmdev_virtio_is_running(r->dev);
    pthread_mutex_unlock(&r->dev->lock);
    return running;
}

/* Virtio 1.2, 3.1.1: the driver's initialisation, with fresh rings. */
static inline void rig_bring_up(struct rig *r)
{
    vdrv_accept_features(r->dev,
                         r->wanted_features |
                             VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1));
    for (unsigned q = 0; q < r->num_queues; q++) {
        uint64_t base = rig_queue_base(q);
        memset(rig_host(r, base), 0, RIG_QUEUE_AREA);
        memset(&r->queues[q], 0, sizeof(r->queues[q]));
        struct vmdev_virtqueue_config *c = &r->dev->queues[q].config;
        c->size = RIG_QUEUE_SIZE;
        c->desc_addr = base + RIG_DESC_OFFSET;
        c->driver_addr = base + RIG_AVAIL_OFFSET;
        c->device_addr = base + RIG_USED_OFFSET;
        c->ready = true;
    }
    rig_set_status(
        r, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE | VMDEV_VIRTIO_STATUS_DRIVER |
               VMDEV_VIRTIO_STATUS_FEATURES_OK | VMDEV_VIRTIO_STATUS_DRIVER_OK);
}

static inline void rig_reset(struct rig *r)
{
    rig_set_status(r, 0);
    rig_bring_up(r);
}

static inline void rig_start(struct rig *r, struct vmdev_virtio_device *dev,
                             unsigned num_queues, uint8_t setup)
{
    r->dev = dev;
    r->num_queues = num_queues;
    r->wanted_features =
        (setup & 1 ? VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) : 0) |
        (setup & 2 ? VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX) : 0);
    r->next_data = RIG_DATA_BASE;
    rig_bring_up(r);
}

/* RAM and its guest memory, one region or two (buffers then straddle). */
static inline bool rig_mem_new(struct rig *r, uint8_t setup)
{
    memset(r, 0, sizeof(*r));
    r->mem = vdrv_mem_over(r->ram, RIG_RAM_BASE, RIG_RAM_SIZE,
                           setup & 4 ? 2 : 1);
    return r->mem != NULL;
}

static inline void rig_mem_free(struct rig *r)
{
    vmdev_guest_memory_free(r->mem);
}

static inline uint64_t rig_alloc(struct rig *r, uint32_t len)
{
    if (r->next_data + len > RIG_RAM_END)
        r->next_data = RIG_DATA_BASE;
    uint64_t gpa = r->next_data;
    r->next_data += (len + 7) & ~7u;
    return gpa;
}

static inline void rig_remember_hostile(struct rig *r, const struct rig_chain *c)
{
    for (unsigned i = 0; i < c->num_bufs; i++) {
        if (!c->bufs[i].writable)
            continue;
        if (r->num_hostile_writable == RIG_MAX_WRITABLE)
            r->hostile_overflow = true;
        else
            r->hostile_writable[r->num_hostile_writable++] = c->bufs[i];
    }
}

/*
 * Build and publish a chain on queue q from the input at *in (advanced).
 * Layout: a control byte (bits 0-1: buffers - 1, bit 2: indirect, bit 3:
 * hostile), then two bytes per buffer (bit 7 of the first: writable; its
 * bits 0-5 and the second's low bits: the length, up to 255; the second's
 * high bits: what a hostile chain does wrong with this buffer). Returns
 * false when the input or the ring has no room.
 */
static inline bool rig_add_chain(struct rig *r, unsigned q, const uint8_t **in,
                                 const uint8_t *end)
{
    struct rig_queue *rq = &r->queues[q];
    if (end - *in < 1)
        return false;
    uint8_t control = *(*in)++;
    struct rig_chain c = { .num_bufs = 1 + (control & 3) };
    bool indirect = control & 4;
    bool hostile_wanted = control & 8;
    if ((unsigned)(end - *in) < 2 * c.num_bufs)
        return false;
    c.num_descs = indirect ? 1 : c.num_bufs;
    if (rq->num_out == RIG_QUEUE_SIZE ||
        rq->descs_out + c.num_descs > RIG_QUEUE_SIZE)
        return false;
    if (indirect &&
        !(r->wanted_features & VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC)))
        c.hostile = true; /* 2.7.5.3.1: not without the feature */

    uint16_t flags[RIG_MAX_BUFFERS], next[RIG_MAX_BUFFERS];
    uint16_t index[RIG_MAX_BUFFERS];
    bool seen_writable = false;
    for (unsigned i = 0; i < c.num_bufs; i++) {
        uint8_t b0 = *(*in)++, b1 = *(*in)++;
        struct rig_buffer *b = &c.bufs[i];
        b->writable = b0 & 0x80;
        b->len = (uint32_t)(b0 & 0x3f) << 2 | (b1 & 3);
        if (b->len == 0)
            b->len = 1;
        b->gpa = rig_alloc(r, b->len);
        index[i] = indirect ? (uint16_t)i
                            : (uint16_t)((rq->next_desc + i) % RIG_QUEUE_SIZE);
        flags[i] = (uint16_t)((b->writable ? VDRV_DESC_F_WRITE : 0) |
                              (i + 1 < c.num_bufs ? VDRV_DESC_F_NEXT : 0));
        next[i] = i + 1 < c.num_bufs ? (uint16_t)(indirect ? i + 1
                                                           : index[0] + i + 1)
                                     : 0;
        if (!indirect)
            next[i] %= RIG_QUEUE_SIZE;
        if (seen_writable && !b->writable)
            c.hostile = true; /* 2.7.4.2: readable after writable */
        seen_writable |= b->writable;
        if (!hostile_wanted)
            continue;
        switch (b1 >> 2 & 7) {
        case 0: b->gpa = RIG_RAM_END - 8; break;   /* runs out of RAM */
        case 1: b->gpa = 0x1000; break;            /* below RAM */
        case 2: b->len = UINT32_MAX; break;        /* 4 GiB */
        case 3: /* next past the table or anywhere */
            flags[i] |= VDRV_DESC_F_NEXT;
            next[i] = (uint16_t)(b1 >> 5 ? b1 >> 3 : 0xffff);
            break;
        case 4: /* anywhere in RAM, rings included */
            b->gpa = RIG_RAM_BASE + (uint64_t)b1 * 250;
            break;
        case 5: b->len = 0; break;
        case 6: /* back to the first: a loop */
            flags[i] |= VDRV_DESC_F_NEXT;
            next[i] = index[0];
            break;
        default: flags[i] |= VDRV_DESC_F_INDIRECT; break; /* nested */
        }
        c.hostile = true;
    }

    uint64_t table = rig_queue_base(q) + RIG_DESC_OFFSET;
    if (indirect) {
        uint64_t itable = rig_alloc(r, 16 * c.num_bufs);
        for (unsigned i = 0; i < c.num_bufs; i++)
            rig_set_desc(r, itable, index[i], &c.bufs[i], flags[i], next[i]);
        struct rig_buffer t = { itable, 16 * c.num_bufs, false };
        rig_set_desc(r, table, rq->next_desc, &t, VDRV_DESC_F_INDIRECT, 0);
        c.head = rq->next_desc;
    } else {
        for (unsigned i = 0; i < c.num_bufs; i++)
            rig_set_desc(r, table, index[i], &c.bufs[i], flags[i], next[i]);
        c.head = index[0];
    }
    /* Readable buffers get bytes a target can recognise. */
    for (unsigned i = 0; i < c.num_bufs; i++) {
        const struct rig_buffer *b = &c.bufs[i];
        if (b->writable || b->gpa < RIG_DATA_BASE ||
            b->gpa + b->len > RIG_RAM_END)
            continue;
        for (uint32_t k = 0; k < b->len; k++)
            *rig_host(r, b->gpa + k) = r->fill++;
    }
    rq->next_desc = (uint16_t)((rq->next_desc + c.num_descs) % RIG_QUEUE_SIZE);
    rq->descs_out += c.num_descs;
    rq->out[(rq->first_out + rq->num_out++) % RIG_QUEUE_SIZE] = c;
    if (c.hostile)
        rig_remember_hostile(r, &c);

    uint64_t avail = rig_queue_base(q) + RIG_AVAIL_OFFSET;
    rig_put16(r, avail + 4 + 2 * (rq->avail_idx % RIG_QUEUE_SIZE), c.head);
    rig_put16(r, avail + 2, ++rq->avail_idx);
    return true;
}

/* Before a call into the device: remember RAM. */
static inline void rig_snapshot(struct rig *r)
{
    memcpy(r->before, r->ram, RIG_RAM_SIZE);
}

static inline bool rig_in(const struct rig_buffer *b, uint64_t gpa)
{
    return gpa >= b->gpa && gpa - b->gpa < b->len;
}

/*
 * After the call: every byte that changed must be in a used ring (which
 * holds avail_event too), in a writable buffer of a chain the call used
 * (given), or in one of a hostile chain; when the call used a hostile
 * chain, in one of any chain posted lately.
 */
static inline void rig_check_writes(struct rig *r,
                                    const struct rig_chain *const *used,
                                    unsigned num_used)
{
    bool hostile_used = false;
    for (unsigned i = 0; i < num_used; i++)
        hostile_used |= used[i]->hostile;
    for (uint64_t off = 0; off < RIG_RAM_SIZE; off++) {
        if (off % 64 == 0 && !memcmp(r->ram + off, r->before + off, 64)) {
            off += 63;
            continue;
        }
        if (r->ram[off] == r->before[off])
            continue;
        uint64_t gpa = RIG_RAM_BASE + off;
        bool allowed = r->hostile_overflow;
        for (unsigned q = 0; q < r->num_queues && !allowed; q++) {
            uint64_t ring = rig_queue_base(q) + RIG_USED_OFFSET;
            allowed = gpa >= ring && gpa < ring + RIG_USED_LEN;
        }
        for (unsigned i = 0; i < num_used && !allowed; i++)
            for (unsigned k = 0; k < used[i]->num_bufs && !allowed; k++)
                allowed = used[i]->bufs[k].writable &&
                          rig_in(&used[i]->bufs[k], gpa);
        for (unsigned i = 0; i < r->num_hostile_writable && !allowed; i++)
            allowed = rig_in(&r->hostile_writable[i], gpa);
        /* A hostile chain's next may lead into any descriptor in the
         * table: those of chains posted lately, used or not. */
        for (unsigned q = 0; q < r->num_queues && !allowed && hostile_used; q++)
            for (unsigned i = 0; i < RIG_QUEUE_SIZE && !allowed; i++)
                for (unsigned k = 0; k < r->queues[q].out[i].num_bufs; k++)
                    allowed |= r->queues[q].out[i].bufs[k].writable &&
                               rig_in(&r->queues[q].out[i].bufs[k], gpa);
        rig_check(allowed);
    }
}

/*
 * Take the next used element of queue q: it must be the oldest chain
 * outstanding (these devices complete in order). NULL when none.
 */
static inline const struct rig_chain *rig_take_used(struct rig *r, unsigned q,
                                                    uint32_t *len)
{
    struct rig_queue *rq = &r->queues[q];
    uint64_t used = rig_queue_base(q) + RIG_USED_OFFSET;
    if (rig_get16(r, used + 2) == rq->used_idx)
        return NULL;
    rig_check(rq->num_out > 0);
    uint64_t elem = used + 4 + 8 * (rq->used_idx % RIG_QUEUE_SIZE);
    const struct rig_chain *c = &rq->out[rq->first_out];
    rig_check(rig_get32(r, elem) == c->head);
    *len = rig_get32(r, elem + 4);
    rq->used_idx++;
    rq->first_out = (rq->first_out + 1) % RIG_QUEUE_SIZE;
    rq->num_out--;
    rq->descs_out -= c->num_descs;
    return c;
}

/* The chain's device-writable bytes, or UINT64_MAX when unknowable (a
 * hostile chain may lead into other chains' descriptors). */
static inline uint64_t rig_writable_len(const struct rig_chain *c)
{
    if (c->hostile)
        return UINT64_MAX;
    uint64_t total = 0;
    for (unsigned i = 0; i < c->num_bufs; i++)
        if (c->bufs[i].writable)
            total += c->bufs[i].len;
    return total;
}

/* Whether every chain published on q has been used. */
static inline bool rig_all_used(struct rig *r, unsigned q)
{
    return r->queues[q].num_out == 0;
}

#endif
