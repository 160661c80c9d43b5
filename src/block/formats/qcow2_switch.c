/* SPDX-License-Identifier: MIT */
/*
 * Changing a qcow2 image's snapshots in one step a crash cannot split.
 *
 * Creating, applying or deleting a snapshot changes refcounts all over
 * the image, the COPIED flags of the active tables and the snapshot
 * table. QEMU changes them in place, one after the other; a crash in
 * between leaves counts that disagree with the flags, which qemu-img
 * check reports as corruption. Here the image's next metadata is built
 * beside the current one, in clusters past the end of the file that
 * nothing references or counts yet:
 *
 *   - a copy of every L2 table the new active L1 table uses, with COPIED
 *     set exactly where the new count of the cluster is 1;
 *   - the new active L1 table, pointing at the copies;
 *   - the new snapshot table;
 *   - refcounts recounted from every table that stays: a new refcount
 *     table and blocks.
 *
 * After an fdatasync, one write of header bytes 36-71 (the places of the
 * L1, refcount and snapshot tables, all inside the first 512-byte sector,
 * which a disk writes whole) switches the image over. Before that write
 * the file is the old image; after it, the new one. Clusters only the old
 * image used are then punched out.
 *
 * The price is a read of every L2 table of every snapshot and a rewrite
 * of the active ones and of all refcounts: proportional to the metadata
 * (an L2 table per 512 MiB of disk with 64 KiB clusters), never to the
 * data. Recounting also drops the leaks of an earlier crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcow2.h"

/* The new refcount blocks are built in memory: at most this much. */
#define MAX_RECOUNT_BYTES (1ull << 30)

struct recount {
    struct qcow2 *q;
    uint8_t *counts;   /* the new refcount blocks, back to back */
    uint64_t clusters; /* they count clusters [0, clusters) */
    uint64_t old_end;  /* tables may only point below this cluster */
    uint64_t max;      /* the largest count the refcount width holds */
    uint64_t *table;   /* the L2 table being walked, big-endian */
    const char *fault; /* what -EIO found wrong */
    /* The distinct L2 tables the next metadata reaches, by offset. */
    struct table_use *uses;
    size_t num_uses;
};

/* An L2 table: references to its cluster, and paths through it to the
 * data it points at (one per L1 entry naming it). */
struct table_use {
    uint64_t offset, tables, paths;
};

static int fault(struct recount *rc, const char *what)
{
    rc->fault = what;
    return -EIO;
}

/* `more` references to each cluster of [offset, offset + len). */
static int count_clusters(struct recount *rc, uint64_t offset, uint64_t len,
                          uint64_t more)
{
    struct qcow2 *q = rc->q;
    if (!len || !more)
        return 0;
    uint64_t last = (offset + len - 1) >> q->cluster_bits;
    if (last >= rc->clusters)
        return fault(rc, "a table points past the end of the image");
    for (uint64_t c = offset >> q->cluster_bits; c <= last; c++) {
        uint64_t n = qcow2_refcount_get(q, rc->counts, c), at;
        if (more > rc->max || n > rc->max - more)
            return -ERANGE;
        qcow2_refcount_set(q, rc->counts, c, n + more, &at);
    }
    return 0;
}

/* What the L2 table in rc->table points at, `paths` times, checked as a
 * write would need it: inside the old image and never on its metadata. */
static int count_data(struct recount *rc, uint64_t paths)
{
    struct qcow2 *q = rc->q;
    for (uint64_t i = 0; i < 1ull << q->l2_bits; i++) {
        uint64_t entry = be64toh(rc->table[i]), at, len;
        if (entry & L2_COMPRESSED) {
            uint64_t sectors;
            compressed_span(q, entry & ~(L2_COPIED | L2_COMPRESSED), &at,
                            &sectors);
            at &= ~511ull;
            len = sectors * 512;
            /* The last one's sectors may run past the end of the file. */
            if (at >= q->file_size ||
                qcow2_overlaps_metadata(q, at, len < q->file_size - at
                                             ? len
                                             : q->file_size - at) ||
                (at + len - 1) >> q->cluster_bits >= rc->old_end)
                return fault(rc, "a compressed cluster lies on metadata or "
                                 "outside the image");
        } else if ((at = entry & L2_OFFSET_MASK)) {
            len = q->cluster_size;
            if (entry & L2_RESERVED || at & (len - 1) ||
                !inside_file(q, at, len) || qcow2_overlaps_metadata(q, at, len))
                return fault(rc, "an L2 entry points at metadata or outside "
                                 "the image");
        } else {
            continue;
        }
        int ret = count_clusters(rc, at, len, paths);
        if (ret)
            return ret;
    }
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Note the L2 tables an L1 table names: `tables` references to each
 * one's cluster and `paths` to its data. Each distinct table is read
 * once however many tables name it, so shared tables cost nothing more. */
static int note_tables(struct recount *rc, const uint64_t *l1,
                       uint32_t entries, uint64_t tables, uint64_t paths)
{
    struct qcow2 *q = rc->q;
    uint64_t *named = malloc(((size_t)entries + 1) * 8);
    if (!named)
        return -ENOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i < entries; i++) {
        uint64_t offset = l1[i] & L1_OFFSET_MASK;
        if (!offset)
            continue;
        if (offset & (q->cluster_size - 1) ||
            !inside_file(q, offset, q->cluster_size)) {
            free(named);
            return fault(rc, "an L1 entry points outside the image");
        }
        named[n++] = offset;
    }
    qsort(named, n, sizeof(*named), compare_u64);
    struct table_use *merged = malloc((rc->num_uses + n + 1) *
                                      sizeof(*merged));
    if (!merged) {
        free(named);
        return -ENOMEM;
    }
    size_t i = 0, k = 0, m = 0;
    int ret = 0;
    while (i < rc->num_uses || k < n) {
        if (k < n && k && named[k] == named[k - 1]) {
            /* Two guest ranges on one table: never written so. */
            ret = fault(rc, "an L1 table names one L2 table twice");
            break;
        }
        if (k == n || (i < rc->num_uses && rc->uses[i].offset < named[k])) {
            merged[m++] = rc->uses[i++];
        } else if (i < rc->num_uses && rc->uses[i].offset == named[k]) {
            merged[m] = rc->uses[i++];
            merged[m].tables += tables;
            merged[m++].paths += paths;
            k++;
        } else {
            merged[m++] = (struct table_use){ named[k++], tables, paths };
        }
    }
    free(named);
    if (ret) {
        free(merged);
        return ret;
    }
    free(rc->uses);
    rc->uses = merged;
    rc->num_uses = m;
    return 0;
}

/* The L2 table at offset into rc->table. */
static int load_table(struct recount *rc, uint64_t offset)
{
    return block_pread_exact(rc->q->meta_fd, rc->table, rc->q->cluster_size, offset);
}

/* Copies of the tables `source` names, from the cluster at `at` on, with
 * COPIED where the new count is 1; new_l1 points at them. */
static int write_copies(struct recount *rc, const uint64_t *source,
                        uint32_t entries, uint64_t at, uint64_t *new_l1)
{
    struct qcow2 *q = rc->q;
    for (uint32_t i = 0; i < entries; i++) {
        uint64_t offset = source[i] & L1_OFFSET_MASK;
        if (!offset)
            continue;
        int ret = load_table(rc, offset);
        if (ret)
            return ret;
        for (uint64_t k = 0; k < 1ull << q->l2_bits; k++) {
            uint64_t entry = be64toh(rc->table[k]) & ~L2_COPIED;
            uint64_t host = entry & L2_OFFSET_MASK;
            if (!(entry & L2_COMPRESSED) && host &&
                qcow2_refcount_get(q, rc->counts, host >> q->cluster_bits) == 1)
                entry |= L2_COPIED;
            rc->table[k] = htobe64(entry);
        }
        ret = block_pwrite_exact(q->meta_fd, rc->table, q->cluster_size, at);
        if (ret)
            return ret;
        new_l1[i] = at | L1_COPIED;
        at += q->cluster_size;
    }
    return 0;
}

static uint64_t clusters_for(const struct qcow2 *q, uint64_t bytes)
{
    return (bytes + q->cluster_size - 1) >> q->cluster_bits;
}

/* Where the next metadata goes, in clusters from `first` on. */
struct layout {
    uint64_t first, copies, l1, table, reftable, blocks, end;
};

static int plan(const struct qcow2 *q, const uint64_t *source,
                uint64_t table_bytes, struct layout *l)
{
    *l = (struct layout){ .first = q->end >> q->cluster_bits };
    for (uint32_t i = 0; i < q->l1_size; i++)
        l->copies += (source[i] & L1_OFFSET_MASK) != 0;
    l->l1 = clusters_for(q, (uint64_t)q->l1_size * 8);
    l->table = clusters_for(q, table_bytes);
    uint64_t fixed = l->first + l->copies + l->l1 + l->table;
    /* The refcount blocks count themselves and their table too. */
    for (;;) {
        uint64_t total = fixed + l->reftable + l->blocks;
        uint64_t blocks = (total + (1ull << q->refblock_bits) - 1) >>
                          q->refblock_bits;
        uint64_t reftable = clusters_for(q, blocks * 8);
        if (blocks == l->blocks && reftable == l->reftable)
            break;
        l->blocks = blocks;
        l->reftable = reftable;
    }
    l->end = fixed + l->reftable + l->blocks;
    return l->reftable * q->cluster_size > MAX_REFTABLE_BYTES ? -EFBIG : 0;
}

/* Every count of the next metadata into rc->counts. */
static int recount(struct recount *rc, const uint64_t *source,
                   const struct qcow2_snapshot *list, uint32_t count,
                   const struct layout *l)
{
    struct qcow2 *q = rc->q;
    struct l1_use *l1s;
    size_t num_l1s;
    int ret = qcow2_snapshot_l1_tables(list, count, &l1s, &num_l1s);
    if (ret)
        return ret;
    ret = count_clusters(rc, 0, q->cluster_size, 1); /* the header */
    for (size_t i = 0; i < num_l1s && !ret; i++) {
        const struct l1_use *u = &l1s[i];
        uint64_t *l1 = malloc(((size_t)u->size + 1) * 8);
        if (!l1) {
            ret = -ENOMEM;
            break;
        }
        ret = qcow2_l1_read(q, u->offset, u->size, l1);
        if (!ret)
            ret = count_clusters(rc, u->offset, (uint64_t)u->size * 8,
                                 u->users);
        if (!ret)
            ret = note_tables(rc, l1, u->size, u->users, u->users);
        free(l1);
    }
    free(l1s);
    /* The active tables are copied: their data counts, they do not. */
    if (!ret)
        ret = note_tables(rc, source, q->l1_size, 0, 1);
    for (size_t i = 0; i < rc->num_uses && !ret; i++) {
        const struct table_use *u = &rc->uses[i];
        ret = count_clusters(rc, u->offset, q->cluster_size, u->tables);
        if (!ret)
            ret = load_table(rc, u->offset);
        if (!ret)
            ret = count_data(rc, u->paths);
    }
    /* Everything written past the old end is the next metadata. */
    if (!ret)
        ret = count_clusters(rc, l->first << q->cluster_bits,
                             (l->end - l->first) << q->cluster_bits, 1);
    return ret;
}

/* The new tables, in the order of the layout, then durable. */
static int write_next(struct recount *rc, const uint64_t *source,
                      const struct qcow2_snapshot *list, uint32_t count,
                      uint64_t table_bytes, const struct layout *l,
                      uint64_t *new_l1, uint64_t *new_reftable)
{
    struct qcow2 *q = rc->q;
    unsigned bits = q->cluster_bits;
    int ret = write_copies(rc, source, q->l1_size, l->first << bits, new_l1);
    uint64_t at = (l->first + l->copies) << bits;
    uint64_t l1_bytes = l->l1 << bits, table_at = at + l1_bytes;
    uint64_t reftable_at = table_at + (l->table << bits);
    uint64_t blocks_at = reftable_at + (l->reftable << bits);
    size_t big = (size_t)(l1_bytes > l->table << bits ? l1_bytes
                                                       : l->table << bits);
    if (big < l->reftable << bits)
        big = (size_t)(l->reftable << bits);
    uint64_t *buf = calloc(1, big + 8);
    if (!buf)
        return -ENOMEM;
    for (uint32_t i = 0; i < q->l1_size; i++)
        buf[i] = htobe64(new_l1[i]);
    if (!ret)
        ret = block_pwrite_exact(q->meta_fd, buf, l1_bytes, at);
    if (!ret && count) {
        memset(buf, 0, big);
        qcow2_snapshot_table_fill((uint8_t *)buf, list, count);
        ret = block_pwrite_exact(q->meta_fd, buf, l->table << bits, table_at);
    }
    memset(buf, 0, big);
    for (uint64_t g = 0; g < l->blocks; g++) {
        new_reftable[g] = blocks_at + (g << bits);
        buf[g] = htobe64(new_reftable[g]);
    }
    if (!ret)
        ret = block_pwrite_exact(q->meta_fd, buf, l->reftable << bits, reftable_at);
    free(buf);
    if (!ret)
        ret = block_pwrite_exact(q->meta_fd, rc->counts, l->blocks << bits,
                          blocks_at);
    if (!ret && fdatasync(q->meta_fd))
        ret = -errno;
    return ret;
}

/* Header bytes 36-71, one write inside one sector: the switch. */
static int write_header(struct qcow2 *q, const struct layout *l,
                        uint32_t count)
{
    unsigned bits = q->cluster_bits;
    uint64_t l1_at = (l->first + l->copies) << bits;
    uint64_t table_at = count ? l1_at + (l->l1 << bits) : 0;
    uint64_t reftable_at = l1_at + ((l->l1 + l->table) << bits);
    uint8_t h[36];
    uint32_t v32 = htobe32(q->l1_size);
    uint64_t v64 = htobe64(l1_at);
    memcpy(h, &v32, 4);
    memcpy(h + 4, &v64, 8);
    v64 = htobe64(reftable_at);
    memcpy(h + 12, &v64, 8);
    v32 = htobe32((uint32_t)l->reftable);
    memcpy(h + 20, &v32, 4);
    v32 = htobe32(count);
    memcpy(h + 24, &v32, 4);
    v64 = htobe64(table_at);
    memcpy(h + 28, &v64, 8);
    int ret = block_pwrite_exact(q->meta_fd, h, sizeof(h), HDR_L1_SIZE);
    if (!ret && fdatasync(q->meta_fd))
        ret = -errno;
    return ret;
}

/* Memory follows the file; space only the old metadata used is freed. */
static void adopt(struct qcow2 *q, struct recount *rc, const struct layout *l,
                  uint64_t *new_l1, uint64_t *new_reftable, uint32_t count)
{
    unsigned bits = q->cluster_bits;
    free(q->l1);
    q->l1 = new_l1;
    q->l1_offset = (l->first + l->copies) << bits;
    q->l1_dirty_from = q->l1_dirty_to = 0;
    for (unsigned i = 0; i < q->num_slots; i++)
        q->slots[i].offset = 0, q->slots[i].dirty = false;
    free(q->reftable);
    q->reftable = new_reftable;
    q->reftable_size = (l->reftable << bits) / 8;
    q->reftable_offset = (l->first + l->copies + l->l1 + l->table) << bits;
    q->reftable_clusters = (uint32_t)l->reftable;
    q->refblock_offset = 0;
    q->snapshots_offset = count ? (l->first + l->copies + l->l1) << bits : 0;
    q->end = l->end << bits;
    if (q->end > q->file_size)
        q->file_size = q->end;
    for (uint64_t c = 1; c < l->first;) {
        uint64_t run = 0;
        while (c + run < l->first && !qcow2_refcount_get(q, rc->counts, c + run))
            run++;
        if (run)
            fallocate(q->meta_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(c << bits), (off_t)(run << bits));
        c += run + 1;
    }
}

int qcow2_switch_metadata(struct qcow2 *q, const uint64_t *source,
                    const struct qcow2_snapshot *list, uint32_t count,
                    char *why, size_t why_len)
{
    /* The current tables are read back from the file below. */
    int ret = qcow2_write_tables(q);
    if (ret)
        return ret;
    uint64_t table_bytes = qcow2_snapshot_table_bytes(list, count);
    struct layout l;
    if (plan(q, source, table_bytes, &l)) {
        block_refuse(why, why_len, "the image's refcount table would "
                     "outgrow 8 MiB");
        return -EFBIG;
    }
    if (l.blocks << q->cluster_bits > MAX_RECOUNT_BYTES) {
        block_refuse(why, why_len, "the image's refcounts (%llu MiB) are too "
                     "many to recount for a snapshot operation",
                     (unsigned long long)((l.blocks << q->cluster_bits) >> 20));
        return -EFBIG;
    }
    unsigned bits = 1u << q->refcount_order;
    struct recount rc = {
        .q = q,
        .counts = calloc(l.blocks, q->cluster_size),
        .clusters = l.end,
        .old_end = l.first,
        .max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1,
        .table = malloc(q->cluster_size),
    };
    uint64_t *new_l1 = calloc((l.l1 << q->cluster_bits) + 8, 1);
    uint64_t *new_reftable = calloc(l.reftable << q->cluster_bits, 1);
    ret = rc.counts && rc.table && new_l1 && new_reftable ? 0 : -ENOMEM;
    if (!ret)
        ret = recount(&rc, source, list, count, &l);
    if (!ret)
        ret = write_next(&rc, source, list, count, table_bytes, &l, new_l1,
                         new_reftable);
    if (!ret) {
        ret = write_header(q, &l, count);
        if (ret) {
            /* Which image the file holds is unknown: write no more. */
            q->corrupt = true;
        } else {
            adopt(q, &rc, &l, new_l1, new_reftable, count);
            new_l1 = new_reftable = NULL;
        }
    }
    if (ret == -ERANGE)
        block_refuse(why, why_len, "the image's %u-bit refcounts cannot "
                     "count one more reference to a cluster (qemu-img amend "
                     "-o refcount_bits=16 widens them)", bits);
    else if (ret == -EIO && rc.fault) {
        block_refuse(why, why_len, "%s", rc.fault);
        qcow2_mark_corrupt(q, rc.fault);
    } else if (ret)
        block_refuse(why, why_len, "cannot write the image: %s",
                     strerror(-ret));
    free(rc.counts);
    free(rc.table);
    free(rc.uses);
    free(new_l1);
    free(new_reftable);
    return ret;
}
