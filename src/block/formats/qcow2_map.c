/* SPDX-License-Identifier: MIT */
/*
 * The qcow2 cluster map: the L1 table (in memory) and L2 tables through a
 * cache sized to cover the disk. Changed tables stay in the cache until
 * qcow2_write_tables() puts them in the file, in the order qcow2.h explains.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcow2.h"

static int write_slot(struct qcow2 *q, struct l2_slot *s)
{
    int ret = block_pwrite_exact(q->meta_fd, s->table, q->cluster_size, s->offset);
    if (!ret)
        s->dirty = false;
    return ret;
}

/* A slot to (re)fill: the least recently used, written back if changed. */
static int free_slot(struct qcow2 *q, struct l2_slot **out)
{
    struct l2_slot *victim = &q->slots[0];
    for (unsigned i = 1; i < q->num_slots; i++)
        if (q->slots[i].last_use < victim->last_use)
            victim = &q->slots[i];
    if (victim->dirty) {
        /* What the table points at must be durable before it is. */
        if (fdatasync(q->meta_fd))
            return -errno;
        int ret = write_slot(q, victim);
        if (ret)
            return ret;
    }
    victim->offset = 0;
    *out = victim;
    return 0;
}

static int l2_slot(struct qcow2 *q, uint64_t offset, struct l2_slot **out)
{
    for (unsigned i = 0; i < q->num_slots; i++) {
        struct l2_slot *s = &q->slots[i];
        if (s->offset == offset) {
            s->last_use = ++q->use_clock;
            *out = s;
            return 0;
        }
    }
    /* qcow2.txt: L2 tables are cluster-aligned, inside the file. */
    if (offset & (q->cluster_size - 1) ||
        !inside_file(q, offset, q->cluster_size))
        return -EIO;
    struct l2_slot *s;
    int ret = free_slot(q, &s);
    if (!ret)
        ret = block_pread_exact(q->meta_fd, s->table, q->cluster_size, offset);
    if (ret)
        return ret;
    s->offset = offset;
    s->last_use = ++q->use_clock;
    *out = s;
    return 0;
}

int qcow2_l1_read(struct qcow2 *q, uint64_t offset, uint32_t entries,
            uint64_t *l1)
{
    uint64_t len = (uint64_t)entries * 8;
    if (!inside_file(q, offset, len))
        return -EIO;
    int ret = block_pread_exact(q->meta_fd, l1, len, offset);
    for (uint32_t i = 0; !ret && i < entries; i++)
        l1[i] = be64toh(l1[i]);
    return ret;
}

int qcow2_map_cluster_locked(struct qcow2 *q, uint64_t guest, struct mapping *m)
{
    uint64_t cluster = guest >> q->cluster_bits;
    uint64_t l1_index = cluster >> q->l2_bits;
    unsigned l2_index = (unsigned)(cluster & ((1ull << q->l2_bits) - 1));
    *m = (struct mapping){ .kind = EXTENT_UNALLOCATED };
    if (l1_index >= q->l1_size)
        return -EIO;
    uint64_t l2_offset = q->l1[l1_index] & L1_OFFSET_MASK;
    if (!l2_offset)
        return 0;
    struct l2_slot *slot;
    int ret = l2_slot(q, l2_offset, &slot);
    if (ret)
        return ret;
    uint64_t entry = be64toh(slot->table[l2_index]);
    m->entry = entry;
    if (entry & L2_COMPRESSED) {
        m->kind = EXTENT_COMPRESSED;
        m->compressed = entry & ~(L2_COPIED | L2_COMPRESSED);
        return 0;
    }
    uint64_t host = entry & L2_OFFSET_MASK;
    m->copied = entry & L2_COPIED;
    /* A cluster: aligned, inside the file, reserved bits clear. */
    if (host && (entry & L2_RESERVED || host & (q->cluster_size - 1) ||
                 !inside_file(q, host, q->cluster_size)))
        return -EIO;
    m->host = host;
    if (entry & L2_ZERO) {
        /* Version 2 has no zero flag: the bit is reserved there. */
        if (q->version < 3)
            return -EIO;
        m->kind = EXTENT_ZERO;
    } else if (host) {
        m->kind = EXTENT_DATA;
    }
    return 0;
}

int qcow2_map_cluster(struct qcow2 *q, uint64_t guest, struct mapping *m)
{
    pthread_mutex_lock(&q->lock);
    int ret = qcow2_map_cluster_locked(q, guest, m);
    pthread_mutex_unlock(&q->lock);
    return ret;
}

static void l1_set(struct qcow2 *q, uint64_t index, uint64_t entry)
{
    q->l1[index] = entry;
    if (q->l1_dirty_from == q->l1_dirty_to) {
        q->l1_dirty_from = (uint32_t)index;
        q->l1_dirty_to = (uint32_t)index + 1;
    } else {
        if (index < q->l1_dirty_from)
            q->l1_dirty_from = (uint32_t)index;
        if (index >= q->l1_dirty_to)
            q->l1_dirty_to = (uint32_t)index + 1;
    }
}

int qcow2_l2_for_write(struct qcow2 *q, uint64_t guest, struct l2_slot **out,
                 unsigned *index)
{
    uint64_t cluster = guest >> q->cluster_bits;
    uint64_t l1_index = cluster >> q->l2_bits;
    *index = (unsigned)(cluster & ((1ull << q->l2_bits) - 1));
    if (l1_index >= q->l1_size)
        return -EIO;
    uint64_t l1_entry = q->l1[l1_index];
    uint64_t old = l1_entry & L1_OFFSET_MASK;
    if (old && (l1_entry & L1_COPIED))
        return l2_slot(q, old, out);

    /* No table yet, or one shared with a snapshot: a table of our own,
     * empty or a copy. It reaches the file before the L1 points at it. */
    struct l2_slot *shared = NULL;
    int ret = old ? l2_slot(q, old, &shared) : 0;
    uint64_t fresh;
    if (!ret)
        ret = qcow2_alloc_clusters(q, 1, &fresh);
    if (ret)
        return ret;
    /* Keep the shared table's slot from being the one refilled. */
    if (shared)
        shared->last_use = ++q->use_clock;
    struct l2_slot *s;
    ret = free_slot(q, &s);
    if (ret)
        return ret;
    if (!shared)
        memset(s->table, 0, q->cluster_size);
    else if (s != shared)
        memcpy(s->table, shared->table, q->cluster_size);
    /* else the shared table's own slot was refilled: it still holds it. */
    s->offset = fresh;
    s->dirty = true;
    s->last_use = ++q->use_clock;
    qcow2_metadata_add(q, fresh);
    l1_set(q, l1_index, fresh | L1_COPIED);
    if (old) {
        /* The copy is ours; the shared table loses our reference once the
         * L1 no longer points at it on disk. */
        ret = qcow2_write_tables(q);
        if (!ret && fdatasync(q->meta_fd))
            ret = -errno;
        if (!ret)
            ret = qcow2_release_clusters(q, old, q->cluster_size);
        if (ret)
            return ret;
    }
    *out = s;
    return 0;
}

int qcow2_write_tables(struct qcow2 *q)
{
    bool any = q->l1_dirty_from != q->l1_dirty_to;
    for (unsigned i = 0; i < q->num_slots && !any; i++)
        any = q->slots[i].dirty;
    if (!any)
        return 0;
    /* Refcounts and data the tables point at are durable first. */
    if (fdatasync(q->meta_fd))
        return -errno;
    bool wrote = false;
    for (unsigned i = 0; i < q->num_slots; i++) {
        if (!q->slots[i].dirty)
            continue;
        int ret = write_slot(q, &q->slots[i]);
        if (ret)
            return ret;
        wrote = true;
    }
    if (q->l1_dirty_from == q->l1_dirty_to)
        return 0;
    /* New L2 tables are durable before the L1 points at them. */
    if (wrote && fdatasync(q->meta_fd))
        return -errno;
    uint32_t from = q->l1_dirty_from, n = q->l1_dirty_to - from;
    uint64_t *be = malloc((size_t)n * 8);
    if (!be)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        be[i] = htobe64(q->l1[from + i]);
    int ret = block_pwrite_exact(q->meta_fd, be, (size_t)n * 8,
                          q->l1_offset + (uint64_t)from * 8);
    free(be);
    if (!ret)
        q->l1_dirty_from = q->l1_dirty_to = 0;
    return ret;
}
