/* SPDX-License-Identifier: MIT */
/*
 * Driver side of the split ring, written from the virtio 1.2
 * specification (2.7.13 "Supplying Buffers to The Device" and 2.7.14
 * "Receiving Used Buffers From The Device"), not from our device code.
 */
#include "virtio_driver.h"

#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "virtio_driver: %s\n", what);
    abort();
}

int vdrv_mem_init(struct vdrv_mem *m, uint64_t base, uint64_t size,
                  unsigned num_regions)
{
    memset(m, 0, sizeof(*m));
    if (num_regions == 0 || num_regions > VDRV_MAX_REGIONS ||
        size % num_regions)
        return -1;
    m->mem = vmdev_guest_memory_new();
    if (!m->mem)
        return -1;
    m->base = base;
    m->size = size;
    m->num_regions = num_regions;
    m->next_free = base;
    uint64_t region_size = size / num_regions;
    for (unsigned i = 0; i < num_regions; i++) {
        m->host[i] = calloc(1, region_size);
        if (!m->host[i])
            return -1;
        struct vmdev_guest_memory_region r = {
            .gpa = base + i * region_size,
            .size = region_size,
            .host = m->host[i],
            .fd = -1,
        };
        if (vmdev_guest_memory_add_region(m->mem, &r))
            return -1;
    }
    return 0;
}

struct vmdev_guest_memory *vdrv_mem_over(uint8_t *host, uint64_t base,
                                         uint64_t size, unsigned num_regions)
{
    struct vmdev_guest_memory *mem = vmdev_guest_memory_new();
    uint64_t region_size = size / num_regions;
    for (unsigned i = 0; mem && i < num_regions; i++) {
        struct vmdev_guest_memory_region r = {
            .gpa = base + i * region_size,
            .size = region_size,
            .host = host + i * region_size,
            .fd = -1,
        };
        if (vmdev_guest_memory_add_region(mem, &r)) {
            vmdev_guest_memory_free(mem);
            return NULL;
        }
    }
    return mem;
}

void vdrv_mem_release(struct vdrv_mem *m)
{
    vmdev_guest_memory_free(m->mem);
    for (unsigned i = 0; i < m->num_regions; i++)
        free(m->host[i]);
    memset(m, 0, sizeof(*m));
}

uint64_t vdrv_alloc(struct vdrv_mem *m, uint64_t size, uint64_t align)
{
    uint64_t gpa = (m->next_free + align - 1) & ~(align - 1);
    if (gpa + size > m->base + m->size)
        die("fake guest memory exhausted");
    m->next_free = gpa + size;
    return gpa;
}

void *vdrv_host(const struct vdrv_mem *m, uint64_t gpa)
{
    if (gpa < m->base || gpa >= m->base + m->size)
        die("address outside fake guest memory");
    uint64_t region_size = m->size / m->num_regions;
    uint64_t offset = gpa - m->base;
    return m->host[offset / region_size] + offset % region_size;
}

void vdrv_write(const struct vdrv_mem *m, uint64_t gpa, const void *data,
                uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        *(uint8_t *)vdrv_host(m, gpa + i) = ((const uint8_t *)data)[i];
}

void vdrv_read(const struct vdrv_mem *m, uint64_t gpa, void *data,
               uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        ((uint8_t *)data)[i] = *(const uint8_t *)vdrv_host(m, gpa + i);
}

static void put16(const struct vdrv_mem *m, uint64_t gpa, uint16_t v)
{
    uint16_t le = htole16(v);
    vdrv_write(m, gpa, &le, 2);
}

static uint16_t get16(const struct vdrv_mem *m, uint64_t gpa)
{
    uint16_t le;
    vdrv_read(m, gpa, &le, 2);
    return le16toh(le);
}

static uint32_t get32(const struct vdrv_mem *m, uint64_t gpa)
{
    uint32_t le;
    vdrv_read(m, gpa, &le, 4);
    return le32toh(le);
}

void vdrv_queue_init(struct vdrv_queue *q, struct vdrv_mem *m, uint16_t size,
                     bool event_idx)
{
    memset(q, 0, sizeof(*q));
    q->m = m;
    q->size = size;
    q->event_idx = event_idx;
    /* 2.7: alignment 16 (descriptors), 2 (driver area), 4 (device
     * area); the event fields are always allocated, as Linux does. */
    q->desc = vdrv_alloc(m, 16ull * size, 16);
    q->avail = vdrv_alloc(m, 6ull + 2ull * size, 2);
    q->used = vdrv_alloc(m, 6ull + 8ull * size, 4);
    for (uint16_t i = 0; i < size; i++)
        q->next_free[i] = (uint16_t)(i + 1);
    q->free_head = 0;
    q->num_free = size;
}

void vdrv_queue_config(const struct vdrv_queue *q, struct vmdev_virtqueue_config *c)
{
    c->size = q->size;
    c->desc_addr = q->desc;
    c->driver_addr = q->avail;
    c->device_addr = q->used;
    c->ready = true;
}

static void write_desc(const struct vdrv_mem *m, uint64_t table,
                       uint16_t index, uint64_t addr, uint32_t len,
                       uint16_t flags, uint16_t next)
{
    uint8_t raw[16];
    uint64_t a = htole64(addr);
    uint32_t l = htole32(len);
    uint16_t f = htole16(flags), n = htole16(next);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &l, 4);
    memcpy(raw + 12, &f, 2);
    memcpy(raw + 14, &n, 2);
    vdrv_write(m, table + 16ull * index, raw, sizeof(raw));
}

void vdrv_set_desc(struct vdrv_queue *q, uint16_t index, uint64_t addr,
                   uint32_t len, uint16_t flags, uint16_t next)
{
    write_desc(q->m, q->desc, index, addr, len, flags, next);
}

void vdrv_set_avail_idx(struct vdrv_queue *q, uint16_t idx)
{
    put16(q->m, q->avail + 2, idx);
}

void vdrv_publish(struct vdrv_queue *q, uint16_t head)
{
    /* 2.7.13.1: ring entry first, then (after a barrier) the index. */
    put16(q->m, q->avail + 4 + 2ull * (q->avail_idx % q->size), head);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->avail_idx++;
    vdrv_set_avail_idx(q, q->avail_idx);
}

static uint16_t take_free(struct vdrv_queue *q)
{
    uint16_t i = q->free_head;
    q->free_head = q->next_free[i];
    q->num_free--;
    return i;
}

int vdrv_add(struct vdrv_queue *q, const struct vdrv_buf *out, unsigned n_out,
             const struct vdrv_buf *in, unsigned n_in, bool indirect)
{
    unsigned total = n_out + n_in;
    if (total == 0 || total > VMDEV_VQ_MAX_SIZE ||
        (indirect ? 1u : total) > q->num_free)
        return -1;
    static uint16_t indices[VMDEV_VQ_MAX_SIZE];
    uint64_t table = q->desc;
    uint16_t head;
    if (indirect) {
        /* 2.7.5.3.1: one descriptor points to a table of `total`. */
        table = vdrv_alloc(q->m, 16ull * total, 16);
        head = take_free(q);
        write_desc(q->m, q->desc, head, table, (uint32_t)(16 * total),
                   VDRV_DESC_F_INDIRECT, 0);
        q->chain_len[head] = 1;
        for (unsigned i = 0; i < total; i++)
            indices[i] = (uint16_t)i;
    } else {
        for (unsigned i = 0; i < total; i++)
            indices[i] = take_free(q);
        head = indices[0];
        q->chain_len[head] = (uint16_t)total;
    }
    /* 2.7.4.2: device-readable buffers first, then device-writable. */
    for (unsigned i = 0; i < total; i++) {
        bool writable = i >= n_out;
        const struct vdrv_buf *b = writable ? &in[i - n_out] : &out[i];
        bool last = i + 1 == total;
        uint16_t flags = (uint16_t)((writable ? VDRV_DESC_F_WRITE : 0) |
                                    (last ? 0 : VDRV_DESC_F_NEXT));
        write_desc(q->m, table, indices[i], b->gpa, b->len, flags,
                   last ? 0 : indices[i + 1]);
    }
    vdrv_publish(q, head);
    return head;
}

bool vdrv_get_used(struct vdrv_queue *q, uint32_t *id, uint32_t *len)
{
    if (vdrv_used_idx(q) == q->last_used_idx)
        return false;
    /* 2.7.14: read the element only after seeing the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t elem = q->used + 4 + 8ull * (q->last_used_idx % q->size);
    *id = get32(q->m, elem);
    *len = get32(q->m, elem + 4);
    q->last_used_idx++;
    /* Like Linux with callbacks enabled: interrupt me for the next one. */
    if (q->event_idx)
        vdrv_set_used_event(q, q->last_used_idx);
    /* Free the chain by following its links in the table we wrote. */
    if (*id < q->size) {
        uint16_t index = (uint16_t)*id;
        for (uint16_t n = q->chain_len[index]; n > 0; n--) {
            uint16_t flags = get16(q->m, q->desc + 16ull * index + 12);
            uint16_t next = get16(q->m, q->desc + 16ull * index + 14);
            q->next_free[index] = q->free_head;
            q->free_head = index;
            q->num_free++;
            if (!(flags & VDRV_DESC_F_NEXT))
                break;
            index = next;
        }
    }
    return true;
}

void vdrv_set_avail_flags(struct vdrv_queue *q, uint16_t flags)
{
    put16(q->m, q->avail, flags);
}

void vdrv_set_used_event(struct vdrv_queue *q, uint16_t idx)
{
    put16(q->m, q->avail + 4 + 2ull * q->size, idx);
}

uint16_t vdrv_used_flags(const struct vdrv_queue *q)
{
    return get16(q->m, q->used);
}

uint16_t vdrv_avail_event(const struct vdrv_queue *q)
{
    return get16(q->m, q->used + 4 + 8ull * q->size);
}

bool vdrv_kick_needed(const struct vdrv_queue *q, uint16_t old_avail)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(vdrv_used_flags(q) & 1); /* VIRTQ_USED_F_NO_NOTIFY */
    /* 2.7.10: vring_need_event(avail_event, new, old). */
    uint16_t event = vdrv_avail_event(q), now = q->avail_idx;
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old_avail);
}

uint16_t vdrv_used_idx(const struct vdrv_queue *q)
{
    return get16(q->m, q->used + 2);
}

void vdrv_accept_features(struct vmdev_virtio_device *dev, uint64_t wanted)
{
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE);
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER);
    for (uint32_t sel = 0; sel < 2; sel++)
        vmdev_virtio_set_driver_features(
            dev, sel, vmdev_virtio_get_device_features(dev, sel) &
                          (uint32_t)(wanted >> (32 * sel)));
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER |
                                     VMDEV_VIRTIO_STATUS_FEATURES_OK);
}

void vdrv_accept_all_features(struct vmdev_virtio_device *dev)
{
    vdrv_accept_features(dev, UINT64_MAX);
}

void vdrv_notify(struct vmdev_virtio_device *dev, uint16_t queue)
{
    vmdev_virtio_queue_kick(dev, queue);
}
