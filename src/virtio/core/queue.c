/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2, 2.7) and the one descriptor-chain walker.
 *
 * The rings live in guest memory the driver writes concurrently, so every
 * value read from them is read once into a local, checked, and only then
 * used. Ring areas are mapped at enable time after their geometry passed
 * the checks of 2.7; buffers are translated through the guest-memory
 * accessors, never by pointer arithmetic on guest addresses.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "vmdev/virtio_device.h"
#include "vmdev/virtqueue.h"

/* Ring layouts, virtio 1.2, 2.7.5, 2.7.6 and 2.7.8. All little-endian. */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

#define DESC_SIZE 16u
#define AVAIL_HEADER 4u /* flags, idx */
#define USED_HEADER 4u
#define USED_ELEM_SIZE 8u
#define EVENT_FIELD 2u /* used_event / avail_event */

_Static_assert(sizeof(struct virtq_desc) == DESC_SIZE, "descriptor layout");
_Static_assert(sizeof(struct virtq_used_elem) == USED_ELEM_SIZE,
               "used element layout");

/*
 * The driver writes the rings while we read them. Reads that decide
 * anything go through these: one load, and an acquire where the spec
 * orders the driver's index update after the entries it publishes.
 */
static uint16_t ring_load16(const void *p)
{
    return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static void ring_store16(void *p, uint16_t value)
{
    __atomic_store_n((uint16_t *)p, htole16(value), __ATOMIC_RELAXED);
}

static uint16_t *avail_flags(const struct vmdev_virtqueue *vq)
{
    return (uint16_t *)vq->avail;
}

static uint16_t *avail_idx(const struct vmdev_virtqueue *vq)
{
    return (uint16_t *)vq->avail + 1;
}

static uint16_t *avail_ring(const struct vmdev_virtqueue *vq, uint16_t slot)
{
    return (uint16_t *)vq->avail + 2 + slot;
}

/* used_event sits after the available ring (2.7.6). */
static uint16_t *used_event(const struct vmdev_virtqueue *vq)
{
    return avail_ring(vq, vq->config.size);
}

static uint16_t *used_flags(const struct vmdev_virtqueue *vq)
{
    return (uint16_t *)vq->used;
}

static uint16_t *used_idx_field(const struct vmdev_virtqueue *vq)
{
    return (uint16_t *)vq->used + 1;
}

static struct virtq_used_elem *used_ring(const struct vmdev_virtqueue *vq,
                                         uint16_t slot)
{
    return (struct virtq_used_elem *)((uint8_t *)vq->used + USED_HEADER) +
           slot;
}

/* avail_event sits after the used ring (2.7.8). */
static uint16_t *avail_event(const struct vmdev_virtqueue *vq)
{
    return (uint16_t *)used_ring(vq, vq->config.size);
}

/* Copy one descriptor out of guest memory, so it is read exactly once. */
static void load_desc(const void *table, uint32_t index,
                      struct virtq_desc *out)
{
    struct virtq_desc raw;
    memcpy(&raw, (const uint8_t *)table + (size_t)index * DESC_SIZE,
           sizeof(raw));
    /* The guest may rewrite the entry; never re-read it from there. */
    __asm__ __volatile__("" ::: "memory");
    out->addr = le64toh(raw.addr);
    out->len = le32toh(raw.len);
    out->flags = le16toh(raw.flags);
    out->next = le16toh(raw.next);
}

void vmdev_virtqueue_init(struct vmdev_virtqueue *vq, uint16_t max_size)
{
    memset(vq, 0, sizeof(*vq));
    vq->config.max_size = max_size;
    vmdev_virtqueue_reset(vq);
}

void vmdev_virtqueue_reset(struct vmdev_virtqueue *vq)
{
    uint16_t max_size = vq->config.max_size;
    memset(vq, 0, sizeof(*vq));
    vq->config.max_size = max_size;
    vq->config.size = max_size;
    vq->config.msix_vector = 0xffff; /* VMDEV_VIRTIO_MSI_NO_VECTOR */
}

static bool is_power_of_two(uint32_t x)
{
    return x && !(x & (x - 1));
}

int vmdev_virtqueue_enable(struct vmdev_virtqueue *vq,
                    const struct vmdev_guest_memory *mem, uint64_t features,
                    const char **why)
{
    const struct vmdev_virtqueue_config *c = &vq->config;
    bool event_idx = features & VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX);
    uint32_t event_len = event_idx ? EVENT_FIELD : 0;

    vq->enabled = false;
    /* 2.7: Queue Size is a power of 2 no larger than the device's max
     * (4.1.4.3.2: the driver MUST NOT write a larger value). */
    if (!is_power_of_two(c->size) || c->size > c->max_size) {
        *why = "queue size is not a power of two within the maximum";
        return -EINVAL;
    }
    /* 2.7, table "Virtqueue Part Alignment". */
    if (c->desc_addr % 16 || c->driver_addr % 2 || c->device_addr % 4) {
        *why = "ring area misaligned";
        return -EINVAL;
    }
    uint64_t desc_len = (uint64_t)DESC_SIZE * c->size;
    uint64_t avail_len = AVAIL_HEADER + 2ull * c->size + event_len;
    uint64_t used_len = USED_HEADER + (uint64_t)USED_ELEM_SIZE * c->size +
                        event_len;
    void *desc = vmdev_guest_memory_map_contiguous(mem, c->desc_addr, desc_len);
    void *avail = vmdev_guest_memory_map_contiguous(mem, c->driver_addr, avail_len);
    void *used = vmdev_guest_memory_map_contiguous(mem, c->device_addr, used_len);
    if (!desc || !avail || !used) {
        *why = "ring area outside guest RAM";
        return -EINVAL;
    }
    vq->mem = mem;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    vq->event_idx = event_idx;
    vq->indirect = features & VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC);
    vq->last_avail_idx = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_used_valid = false;
    vq->enabled = true;
    return 0;
}

/* Walker state for one chain: where descriptors come from right now. */
struct chain_walk {
    const void *table;   /* the queue's table or an indirect table */
    uint32_t table_size; /* entries in it */
    uint32_t visited;    /* descriptors taken from `table` */
    bool in_indirect;
    bool seen_writable;
    uint64_t total_len;
};

/* Append [addr, addr + len) to the chain, split at region boundaries. */
static int add_buffer(const struct vmdev_virtqueue *vq,
                      struct vmdev_virtqueue_chain *chain, uint64_t addr,
                      uint32_t len, bool writable, const char **why)
{
    for (bool first = true; len; first = false) {
        uint64_t contig;
        void *host = vmdev_guest_memory_translate(vq->mem, addr, len, &contig);
        if (!host) {
            *why = "descriptor buffer outside guest RAM";
            return -EINVAL;
        }
        unsigned n = chain->num_readable + chain->num_writable;
        if (n == VMDEV_VQ_MAX_SEGMENTS) {
            *why = "descriptor chain maps to too many host segments";
            return -EINVAL;
        }
        chain->segments[n].host = host;
        chain->segments[n].len = (uint32_t)contig;
        chain->segments[n].continues_descriptor = !first;
        if (writable) {
            chain->num_writable++;
            chain->writable_len += contig;
        } else {
            chain->num_readable++;
            chain->readable_len += contig;
        }
        addr += contig;
        len -= (uint32_t)contig;
    }
    return 0;
}

/*
 * Switch the walk into the indirect table `d` points to (2.7.5.3).
 * Returns the first index to read in it.
 */
static int enter_indirect(const struct vmdev_virtqueue *vq,
                          struct chain_walk *walk, const struct virtq_desc *d,
                          const char **why)
{
    /* 2.7.5.3.1: only with VMDEV_VIRTIO_F_INDIRECT_DESC negotiated. */
    if (!vq->indirect) {
        *why = "indirect descriptor without VMDEV_VIRTIO_F_INDIRECT_DESC";
        return -EINVAL;
    }
    /* 2.7.5.3.1: no indirect descriptor inside an indirect table. */
    if (walk->in_indirect) {
        *why = "nested indirect descriptor table";
        return -EINVAL;
    }
    /* 2.7.5.3.1: INDIRECT and NEXT are not set together. */
    if (d->flags & VIRTQ_DESC_F_NEXT) {
        *why = "indirect descriptor with VIRTQ_DESC_F_NEXT";
        return -EINVAL;
    }
    /* 2.7.5.3: the table is len / 16 descriptors; len is a multiple of 16.
     * 2.7.5.3.1 would bound the chain by the queue size, but Linux sizes
     * indirect tables by the request's segments alone, so the bound here
     * is the host's segment limit, as for any chain. */
    if (d->len == 0 || d->len % DESC_SIZE ||
        d->len / DESC_SIZE > VMDEV_VQ_MAX_SEGMENTS) {
        *why = "indirect table length not a non-zero multiple of 16 "
               "within the segment limit";
        return -EINVAL;
    }
    const void *table = vmdev_guest_memory_map_contiguous(vq->mem, d->addr, d->len);
    if (!table) {
        *why = "indirect table outside guest RAM";
        return -EINVAL;
    }
    walk->table = table;
    walk->table_size = d->len / DESC_SIZE;
    walk->visited = 0;
    walk->in_indirect = true;
    return 0;
}

/*
 * The chain walker. Follows `head` through the descriptor table (and at
 * most one indirect table) and fills `chain`, refusing anything the
 * specification forbids a driver to build.
 */
static int walk_chain(const struct vmdev_virtqueue *vq, uint16_t head,
                      struct vmdev_virtqueue_chain *chain, const char **why)
{
    struct chain_walk walk = {
        .table = vq->desc,
        .table_size = vq->config.size,
    };
    uint32_t index = head;

    chain->head = head;
    chain->num_readable = chain->num_writable = 0;
    chain->readable_len = chain->writable_len = 0;

    for (;;) {
        /* 2.7.5.2: every index names a descriptor of the table. */
        if (index >= walk.table_size) {
            *why = "descriptor index out of range";
            return -EINVAL;
        }
        /* 2.7.5.2: a chain is no longer than the table it is in; this is
         * also what stops a loop. */
        if (++walk.visited > walk.table_size) {
            *why = "descriptor chain loops or exceeds the queue size";
            return -EINVAL;
        }
        struct virtq_desc d;
        load_desc(walk.table, index, &d);

        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            /* 2.7.5.3.2: the device ignores WRITE on this descriptor. */
            if (enter_indirect(vq, &walk, &d, why))
                return -EINVAL;
            index = 0;
            continue;
        }

        bool writable = d.flags & VIRTQ_DESC_F_WRITE;
        /* 2.7.4.2: device-writable descriptors follow readable ones. */
        if (!writable && walk.seen_writable) {
            *why = "readable descriptor after a writable one";
            return -EINVAL;
        }
        walk.seen_writable |= writable;
        /* 2.7.5.2: the total length of a chain stays below 2^32. */
        walk.total_len += d.len;
        if (walk.total_len > UINT32_MAX) {
            *why = "descriptor chain longer than 4 GiB";
            return -EINVAL;
        }
        if (add_buffer(vq, chain, d.addr, d.len, writable, why))
            return -EINVAL;

        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        index = d.next;
    }
}

int vmdev_virtqueue_pop(struct vmdev_virtqueue *vq, struct vmdev_virtqueue_chain *chain,
                 const char **why)
{
    if (!vq->enabled)
        return 0;
    uint16_t idx = ring_load16(avail_idx(vq));
    uint16_t pending = (uint16_t)(idx - vq->last_avail_idx);
    if (pending == 0)
        return 0;
    /* 2.7.6: the driver cannot have more buffers outstanding than the
     * ring has entries. */
    if (pending > vq->config.size) {
        *why = "available index moved past the queue size";
        return -EINVAL;
    }
    /* 2.7.13.1 (the driver places buffers it owns) and 2.7.6 together: a
     * ring holds at most size chains, so with size of them in the
     * device's hands the driver has none to offer; it reused some. */
    if (vq->in_flight >= vq->config.size) {
        *why = "a chain offered while the device holds a ring's worth";
        return -EINVAL;
    }
    /* Read the ring entry only after the index that published it. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t slot = vq->last_avail_idx & (uint16_t)(vq->config.size - 1);
    uint16_t head = ring_load16(avail_ring(vq, slot));
    if (walk_chain(vq, head, chain, why))
        return -EINVAL;
    vq->last_avail_idx++;
    vq->in_flight++;
    return 1;
}

void vmdev_virtqueue_push_many(struct vmdev_virtqueue *vq,
                        const struct vmdev_virtqueue_used *used, unsigned count)
{
    if (!vq->enabled)
        return;
    for (unsigned i = 0; i < count; i++) {
        uint16_t slot = (uint16_t)(vq->used_idx + i) &
                        (uint16_t)(vq->config.size - 1);
        struct virtq_used_elem elem = {
            .id = htole32(used[i].head),
            .len = htole32(used[i].written),
        };
        memcpy(used_ring(vq, slot), &elem, sizeof(elem));
    }
    vq->used_idx = (uint16_t)(vq->used_idx + count);
    vq->completed += count;
    vq->in_flight = count < vq->in_flight ? (uint16_t)(vq->in_flight - count)
                                          : 0;
    /* 2.7.8: the elements are visible before the index that publishes
     * them, and all of them at once (a merged receive buffer, 5.1.6.4). */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    ring_store16(used_idx_field(vq), vq->used_idx);
}

void vmdev_virtqueue_push(struct vmdev_virtqueue *vq, uint16_t head,
                   uint32_t written)
{
    struct vmdev_virtqueue_used used = { head, written };
    vmdev_virtqueue_push_many(vq, &used, 1);
}

void vmdev_virtqueue_unpop(struct vmdev_virtqueue *vq, uint16_t count)
{
    vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - count);
    vq->in_flight = count < vq->in_flight ? (uint16_t)(vq->in_flight - count)
                                          : 0;
}

/* 2.7.10: interrupt when used_event lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool vmdev_virtqueue_should_interrupt(struct vmdev_virtqueue *vq)
{
    if (!vq->enabled)
        return false;
    /* Our used index store must be visible before we read the driver's
     * suppression fields, or both sides may decide not to signal. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(ring_load16(avail_flags(vq)) & VIRTQ_AVAIL_F_NO_INTERRUPT);

    uint16_t old_idx = vq->signalled_used;
    bool valid = vq->signalled_used_valid;
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = true;
    if (!valid)
        return true;
    return need_event(ring_load16(used_event(vq)), vq->used_idx, old_idx);
}

void vmdev_virtqueue_set_notification(struct vmdev_virtqueue *vq, bool enable)
{
    if (!vq->enabled)
        return;
    if (vq->event_idx) {
        /* 2.7.10: kick us when the driver passes what we have seen. */
        if (enable)
            ring_store16(avail_event(vq), vq->last_avail_idx);
    } else {
        ring_store16(used_flags(vq), enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
    }
    /* The caller re-checks the ring after enabling; order that read
     * after this store. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool vmdev_virtqueue_wait_for_more(struct vmdev_virtqueue *vq, uint16_t have)
{
    if (!vq->enabled)
        return false;
    uint16_t now = ring_load16(avail_idx(vq));
    if (vq->event_idx)
        ring_store16(avail_event(vq), now);
    else
        ring_store16(used_flags(vq), 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Whatever the driver added since the caller counted: before the
     * request was visible (no kick comes for those) or after it. */
    now = ring_load16(avail_idx(vq));
    return (uint16_t)(now - vq->last_avail_idx) > have;
}

bool vmdev_virtqueue_has_available(struct vmdev_virtqueue *vq)
{
    if (!vq->enabled)
        return false;
    return ring_load16(avail_idx(vq)) != vq->last_avail_idx;
}
