/* SPDX-License-Identifier: MIT */
/*
 * qcow2 refcounts (qcow2.txt, "Host cluster management"): the refcount
 * table (in memory) points at refcount blocks, each holding the counts of
 * a run of host clusters. Clusters are allocated at the end of the file;
 * a refcount block a new cluster needs is made first, and the table grows
 * when the file outgrows it. Each step reaches the file before anything
 * points at it, so a crash leaves at worst a leak.
 *
 * Refcount blocks are read and changed through a one-block cache that
 * writes through: a count changed is in the file (not yet durable) at
 * once, ahead of the tables that will point at the cluster.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmdev/log.h"
#include "qcow2.h"

static uint64_t group_of(const struct qcow2 *q, uint64_t cluster)
{
    return cluster >> q->refblock_bits;
}

/* The index of the first metadata offset at or after offset. */
static size_t metadata_from(const struct qcow2 *q, uint64_t offset)
{
    size_t lo = 0, hi = q->num_metadata;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (q->metadata[mid] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool metadata_reserve(struct qcow2 *q)
{
    if (q->num_metadata < q->metadata_cap)
        return true;
    size_t cap = q->metadata_cap ? q->metadata_cap * 2 : 64;
    uint64_t *grown = realloc(q->metadata, cap * sizeof(*grown));
    if (!grown)
        return false; /* only the overlap check is weaker */
    q->metadata = grown;
    q->metadata_cap = cap;
    return true;
}

void qcow2_metadata_add(struct qcow2 *q, uint64_t offset)
{
    size_t lo = metadata_from(q, offset);
    if ((lo < q->num_metadata && q->metadata[lo] == offset) ||
        !metadata_reserve(q))
        return;
    memmove(q->metadata + lo + 1, q->metadata + lo,
            (q->num_metadata - lo) * sizeof(*q->metadata));
    q->metadata[lo] = offset;
    q->num_metadata++;
}

void qcow2_metadata_append(struct qcow2 *q, uint64_t offset)
{
    if (metadata_reserve(q))
        q->metadata[q->num_metadata++] = offset;
}

void qcow2_metadata_append_range(struct qcow2 *q, uint64_t offset, uint64_t len)
{
    for (uint64_t at = offset & ~(q->cluster_size - 1); at < offset + len;
         at += q->cluster_size)
        qcow2_metadata_append(q, at);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void qcow2_metadata_sort(struct qcow2 *q)
{
    if (!q->num_metadata)
        return;
    qsort(q->metadata, q->num_metadata, sizeof(*q->metadata), compare_u64);
    size_t kept = 1;
    for (size_t i = 1; i < q->num_metadata; i++)
        if (q->metadata[i] != q->metadata[kept - 1])
            q->metadata[kept++] = q->metadata[i];
    q->num_metadata = kept;
}

void qcow2_metadata_add_tables(struct qcow2 *q)
{
    for (uint64_t i = 0; i < q->reftable_size; i++)
        if (q->reftable[i])
            qcow2_metadata_append(q, q->reftable[i]);
    for (uint32_t i = 0; i < q->l1_size; i++)
        if (q->l1[i] & L1_OFFSET_MASK)
            qcow2_metadata_append(q, q->l1[i] & L1_OFFSET_MASK);
    qcow2_metadata_sort(q);
}

void qcow2_metadata_clear(struct qcow2 *q)
{
    q->num_metadata = 0;
}

bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t offset, uint64_t len)
{
    uint64_t end = offset + len;
    if (offset < q->cluster_size) /* the header */
        return true;
    if (offset < q->l1_offset + (uint64_t)q->l1_size * 8 && end > q->l1_offset)
        return true;
    if (offset < q->reftable_offset + q->reftable_clusters * q->cluster_size &&
        end > q->reftable_offset)
        return true;
    /* The first table or block at or after the cluster holding offset. */
    size_t i = metadata_from(q, offset & ~(q->cluster_size - 1));
    return i < q->num_metadata && q->metadata[i] < end;
}

int qcow2_mark_corrupt(struct qcow2 *q, const char *what)
{
    if (!q->corrupt) {
        vmdev_log(q->log, VMDEV_LOG_ERROR,
                  "qcow2: %s; the image is marked corrupt and takes no more "
                  "writes (qemu-img check -r all repairs it)", what);
        q->corrupt = true;
        uint8_t bits[8];
        if (block_pread_exact(q->meta_fd, bits, 8, HDR_INCOMPATIBLE) == 0) {
            uint64_t incompatible = be64_at(bits) | INCOMPAT_CORRUPT;
            incompatible = htobe64(incompatible);
            if (block_pwrite_exact(q->meta_fd, &incompatible, 8, HDR_INCOMPATIBLE) == 0)
                fdatasync(q->meta_fd);
        }
    }
    return -EIO;
}

/* The refcount block at offset, in the cache. */
static int load_refblock(struct qcow2 *q, uint64_t offset)
{
    if (q->refblock_offset == offset)
        return 0;
    /* qcow2.txt: refcount blocks are cluster-aligned. */
    if (offset & (q->cluster_size - 1) ||
        !inside_file(q, offset, q->cluster_size))
        return qcow2_mark_corrupt(q, "a refcount table entry points outside the "
                               "image");
    q->refblock_offset = 0;
    int ret = block_pread_exact(q->meta_fd, q->refblock, q->cluster_size, offset);
    if (!ret)
        q->refblock_offset = offset;
    return ret;
}

uint64_t qcow2_refcount_get(const struct qcow2 *q, const uint8_t *counts,
                      uint64_t i)
{
    unsigned bits = 1u << q->refcount_order;
    if (bits < 8) {
        uint8_t byte = counts[i * bits / 8];
        return (byte >> (i * bits % 8)) & ((1u << bits) - 1);
    }
    uint64_t v = 0;
    for (unsigned k = 0; k < bits / 8; k++)
        v = v << 8 | counts[i * (bits / 8) + k];
    return v;
}

size_t qcow2_refcount_set(const struct qcow2 *q, uint8_t *counts, uint64_t i,
                    uint64_t value, uint64_t *at)
{
    unsigned bits = 1u << q->refcount_order;
    if (bits < 8) {
        *at = i * bits / 8;
        unsigned shift = (unsigned)(i * bits % 8);
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
        counts[*at] = (uint8_t)((counts[*at] & ~mask) |
                                ((value << shift) & mask));
        return 1;
    }
    size_t len = bits / 8;
    *at = i * len;
    for (size_t k = len; k-- > 0; value >>= 8)
        counts[*at + k] = (uint8_t)value;
    return len;
}

static uint64_t entry_get(const struct qcow2 *q, uint64_t i)
{
    return qcow2_refcount_get(q, q->refblock, i);
}

/* Entry i of the cached block, written through to the file. */
static int entry_put(struct qcow2 *q, uint64_t i, uint64_t value)
{
    uint64_t at;
    size_t len = qcow2_refcount_set(q, q->refblock, i, value, &at);
    return block_pwrite_exact(q->meta_fd, q->refblock + at, len,
                       q->refblock_offset + at);
}

/* Entry i of a new, zeroed refcount block set to 1. */
static void count_one(const struct qcow2 *q, uint8_t *block, uint64_t i)
{
    uint64_t at;
    qcow2_refcount_set(q, block, i, 1, &at);
}

static int grow_reftable(struct qcow2 *q, uint64_t entries);
static int refcount_at(struct qcow2 *q, uint64_t cluster, uint64_t *value);

/* Move the end past counted clusters there: leaks of this session's failed
 * allocations (qcow2_refcount_open put it past every cluster the image counted
 * when it opened). */
static int skip_leaked(struct qcow2 *q)
{
    for (;;) {
        uint64_t count;
        int ret = refcount_at(q, q->end >> q->cluster_bits, &count);
        if (ret || !count)
            return ret;
        q->end += q->cluster_size;
    }
}

/*
 * Make sure the clusters of group g have a refcount block. A new block
 * goes at the end of the file; it counts itself when it lands in its own
 * group, else its own cluster is counted first in the block that covers
 * it. It is durable before the table points at it.
 */
static int ensure_refblock(struct qcow2 *q, uint64_t g)
{
    if (g >= q->reftable_size) {
        int ret = grow_reftable(q, g + 1);
        if (ret)
            return ret;
    }
    if (q->reftable[g])
        return 0;
    uint64_t at;
    bool self;
    for (;;) {
        /* Making the blocks this one needs may have made it too. */
        if (q->reftable[g])
            return 0;
        at = q->end;
        uint64_t own = group_of(q, at >> q->cluster_bits);
        if ((self = own == g))
            break;
        if (own < q->reftable_size && q->reftable[own]) {
            /* Counted where it lands (past any leaked clusters). */
            int ret = qcow2_alloc_clusters(q, 1, &at);
            if (ret)
                return ret;
            if (q->reftable[g])
                return qcow2_release_clusters(q, at, q->cluster_size);
            break;
        }
        int ret = ensure_refblock(q, own);
        if (ret)
            return ret;
    }
    uint8_t *block = calloc(1, q->cluster_size);
    if (!block)
        return -ENOMEM;
    if (self) {
        count_one(q, block, (at >> q->cluster_bits) &
                                ((1ull << q->refblock_bits) - 1));
        q->end = at + q->cluster_size;
    }
    int ret = block_pwrite_exact(q->meta_fd, block, q->cluster_size, at);
    free(block);
    if (ret)
        return ret;
    if (q->end > q->file_size)
        q->file_size = q->end;
    if (fdatasync(q->meta_fd))
        return -errno;
    uint64_t be = htobe64(at);
    ret = block_pwrite_exact(q->meta_fd, &be, 8, q->reftable_offset + g * 8);
    if (ret)
        return ret;
    q->reftable[g] = at;
    qcow2_metadata_add(q, at);
    return 0;
}

/*
 * A bigger refcount table, at the end of the file, followed by the
 * refcount blocks that count it (and themselves) where no block did. It
 * and they are durable before the header points at it; the old table is
 * released after.
 */
static int grow_reftable(struct qcow2 *q, uint64_t entries)
{
    int ret = skip_leaked(q);
    if (ret)
        return ret;
    uint64_t per_cluster = q->cluster_size / 8;
    uint64_t clusters = (uint64_t)q->reftable_clusters * 2;
    if (clusters * per_cluster < entries)
        clusters = (entries + per_cluster - 1) / per_cluster;
    uint64_t first = q->end >> q->cluster_bits, blocks;
    for (;;) {
        /* Blocks needed for [first, first + clusters + blocks). */
        blocks = 0;
        for (;;) {
            uint64_t need = 0, last = first + clusters + blocks - 1;
            for (uint64_t g = group_of(q, first); g <= group_of(q, last); g++)
                need += g >= q->reftable_size || !q->reftable[g];
            if (need == blocks)
                break;
            blocks = need;
        }
        uint64_t last_group = group_of(q, first + clusters + blocks - 1);
        if (last_group < clusters * per_cluster)
            break;
        clusters *= 2;
    }
    if (clusters * q->cluster_size > MAX_REFTABLE_BYTES)
        return -ENOSPC;

    uint64_t size = clusters * per_cluster;
    uint64_t *table = calloc(size, 8);
    uint8_t *block = malloc(q->cluster_size);
    if (!table || !block) {
        free(table);
        free(block);
        return -ENOMEM;
    }
    memcpy(table, q->reftable, q->reftable_size * 8);
    uint64_t span_end = first + clusters + blocks, next_block = first + clusters;
    uint64_t per_block = 1ull << q->refblock_bits;
    for (uint64_t g = group_of(q, first); g <= group_of(q, span_end - 1) && !ret;
         g++) {
        uint64_t lo = g * per_block > first ? g * per_block : first;
        uint64_t hi = (g + 1) * per_block < span_end ? (g + 1) * per_block
                                                     : span_end;
        if (table[g]) {
            /* An existing block counts these clusters. */
            ret = load_refblock(q, table[g]);
            for (uint64_t c = lo; c < hi && !ret; c++) {
                if (entry_get(q, c - g * per_block))
                    ret = qcow2_mark_corrupt(q, "a cluster past the end of the "
                                          "image is already counted");
                else
                    ret = entry_put(q, c - g * per_block, 1);
            }
            continue;
        }
        memset(block, 0, q->cluster_size);
        for (uint64_t c = lo; c < hi; c++)
            count_one(q, block, c - g * per_block);
        table[g] = next_block << q->cluster_bits;
        ret = block_pwrite_exact(q->meta_fd, block, q->cluster_size, table[g]);
        next_block++;
    }
    for (uint64_t i = 0; i < size; i++)
        table[i] = htobe64(table[i]);
    if (!ret)
        ret = block_pwrite_exact(q->meta_fd, table, clusters * q->cluster_size,
                          first << q->cluster_bits);
    for (uint64_t i = 0; i < size; i++)
        table[i] = be64toh(table[i]);
    free(block);
    if (!ret && fdatasync(q->meta_fd))
        ret = -errno;
    uint8_t header[12];
    uint64_t offset_be = htobe64(first << q->cluster_bits);
    uint32_t clusters_be = htobe32((uint32_t)clusters);
    memcpy(header, &offset_be, 8);
    memcpy(header + 8, &clusters_be, 4);
    if (!ret)
        ret = block_pwrite_exact(q->meta_fd, header, sizeof(header),
                          HDR_REFTABLE_OFFSET);
    if (!ret && fdatasync(q->meta_fd))
        ret = -errno;
    if (ret) {
        free(table);
        return ret;
    }
    uint64_t old_offset = q->reftable_offset;
    uint64_t old_len = (uint64_t)q->reftable_clusters * q->cluster_size;
    free(q->reftable);
    q->reftable = table;
    q->reftable_size = size;
    q->reftable_offset = first << q->cluster_bits;
    q->reftable_clusters = (uint32_t)clusters;
    q->end = span_end << q->cluster_bits;
    if (q->end > q->file_size)
        q->file_size = q->end;
    for (uint64_t g = 0; g < size; g++)
        if (table[g] >= (first + clusters) << q->cluster_bits)
            qcow2_metadata_add(q, table[g]);
    return qcow2_release_clusters(q, old_offset, old_len);
}

static int refcount_at(struct qcow2 *q, uint64_t cluster, uint64_t *value)
{
    uint64_t g = group_of(q, cluster);
    if (g >= q->reftable_size || !q->reftable[g]) {
        *value = 0;
        return 0;
    }
    int ret = load_refblock(q, q->reftable[g] & REFTABLE_OFFSET_MASK);
    if (!ret)
        *value = entry_get(q, cluster & ((1ull << q->refblock_bits) - 1));
    return ret;
}

static int refcount_put(struct qcow2 *q, uint64_t cluster, uint64_t value)
{
    int ret = ensure_refblock(q, group_of(q, cluster));
    if (!ret)
        ret = load_refblock(q, q->reftable[group_of(q, cluster)] &
                                   REFTABLE_OFFSET_MASK);
    if (!ret)
        ret = entry_put(q, cluster & ((1ull << q->refblock_bits) - 1), value);
    return ret;
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset)
{
    if (q->corrupt)
        return -EIO;
    for (;;) {
        uint64_t first = q->end >> q->cluster_bits;
        bool covered = true;
        for (uint64_t g = group_of(q, first); g <= group_of(q, first + n - 1);
             g++) {
            if (g >= q->reftable_size || !q->reftable[g]) {
                int ret = ensure_refblock(q, g);
                if (ret)
                    return ret;
                covered = false;
                break;
            }
        }
        if (!covered)
            continue; /* the end moved: start over after the new block */
        /* Counted clusters past the end are leaks of an earlier crash (a
         * count written, the cluster never): step over them. */
        uint64_t c;
        for (c = first; c < first + n; c++) {
            uint64_t count;
            int ret = refcount_at(q, c, &count);
            if (ret)
                return ret;
            if (count)
                break;
        }
        if (c < first + n) {
            q->end = (c + 1) << q->cluster_bits;
            continue;
        }
        for (c = first; c < first + n; c++) {
            int ret = refcount_put(q, c, 1);
            if (ret)
                return ret;
        }
        *offset = first << q->cluster_bits;
        q->end = (first + n) << q->cluster_bits;
        if (q->end > q->file_size)
            q->file_size = q->end;
        return 0;
    }
}

int qcow2_release_clusters(struct qcow2 *q, uint64_t offset, uint64_t len)
{
    uint64_t first = offset >> q->cluster_bits;
    uint64_t last = (offset + len - 1) >> q->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t count;
        int ret = refcount_at(q, c, &count);
        if (ret)
            return ret;
        if (!count)
            return qcow2_mark_corrupt(q, "a cluster in use has no references "
                                   "counted");
        ret = refcount_put(q, c, count - 1);
        if (ret)
            return ret;
        if (count == 1)
            /* Nobody points here any more: give the space back. */
            fallocate(q->meta_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(c << q->cluster_bits), (off_t)q->cluster_size);
    }
    return 0;
}

/* Clusters an entry says it holds: in the file, and not metadata (a lying
 * entry must not make us free a table). */
static int check_released(struct qcow2 *q, uint64_t offset, uint64_t len)
{
    if (!inside_file(q, offset, len) || qcow2_overlaps_metadata(q, offset, len))
        return qcow2_mark_corrupt(q, "an L2 entry points at metadata or outside "
                               "the image");
    return 0;
}

int qcow2_release_entry(struct qcow2 *q, uint64_t entry)
{
    if (entry & L2_COMPRESSED) {
        /* The sectors it occupies, possibly sharing clusters with other
         * compressed clusters (each counted once per user). */
        uint64_t offset, sectors;
        compressed_span(q, entry & ~(L2_COPIED | L2_COMPRESSED), &offset,
                        &sectors);
        uint64_t at = offset & ~511ull, len = sectors * 512;
        if (at >= q->file_size)
            return qcow2_mark_corrupt(q, "a compressed cluster lies outside the "
                                   "image");
        /* The last one's sectors may run past the end of the file. */
        int ret = check_released(q, at, len < q->file_size - at
                                             ? len
                                             : q->file_size - at);
        return ret ? ret : qcow2_release_clusters(q, at, len);
    }
    uint64_t host = entry & L2_OFFSET_MASK;
    if (!host)
        return 0;
    int ret = host & (q->cluster_size - 1)
                  ? qcow2_mark_corrupt(q, "an L2 entry is not cluster-aligned")
                  : check_released(q, host, q->cluster_size);
    return ret ? ret : qcow2_release_clusters(q, host, q->cluster_size);
}

/* Two refcount table entries naming one block: a corrupt table (no
 * image shares a refcount block), and one that could make a scan read the
 * same block once per entry. */
static bool reftable_shares_blocks(const struct qcow2 *q)
{
    uint64_t *sorted = malloc(q->reftable_size * sizeof(*sorted));
    if (!sorted)
        return false; /* only the check is lost; the scan stays bounded by
                         the table's size */
    size_t n = 0;
    for (uint64_t g = 0; g < q->reftable_size; g++)
        if (q->reftable[g])
            sorted[n++] = q->reftable[g];
    qsort(sorted, n, sizeof(*sorted), compare_u64);
    bool shared = false;
    for (size_t i = 1; i < n && !shared; i++)
        shared = sorted[i] == sorted[i - 1];
    free(sorted);
    return shared;
}

/*
 * One past the highest cluster at or after `from` that the refcount
 * blocks count, into *counted_end (from if none). Only the blocks of
 * groups reaching past `from` are read, each once, from the last down,
 * stopping at the first count found: the work is bounded by the size of
 * the blocks in the file, whatever numbers they hold.
 */
static int find_counted_end(struct qcow2 *q, uint64_t from,
                            uint64_t *counted_end, char *why, size_t why_len)
{
    uint64_t per_block = 1ull << q->refblock_bits;
    *counted_end = from;
    for (uint64_t g = q->reftable_size; g-- > group_of(q, from);) {
        uint64_t offset = q->reftable[g];
        if (!offset)
            continue;
        /* qcow2.txt: refcount blocks are cluster-aligned, in the file. */
        if (offset & (q->cluster_size - 1) ||
            !inside_file(q, offset, q->cluster_size))
            return block_refuse(why, why_len, "the qcow2 refcount table "
                                "points outside the image (block %llu at "
                                "0x%llx)", (unsigned long long)g,
                                (unsigned long long)offset);
        q->refblock_offset = 0;
        if (block_pread_exact(q->meta_fd, q->refblock, q->cluster_size, offset))
            return block_refuse(why, why_len, "cannot read the qcow2 "
                                "refcount block at 0x%llx",
                                (unsigned long long)offset);
        q->refblock_offset = offset;
        uint64_t lowest = g == group_of(q, from) ? from - g * per_block : 0;
        for (uint64_t i = per_block; i-- > lowest;) {
            if (entry_get(q, i)) {
                *counted_end = g * per_block + i + 1;
                return 0;
            }
        }
    }
    return 0;
}

/*
 * Where clusters are appended: past the end of the file and past every
 * cluster counted beyond it. A crash between counting new clusters and
 * writing them leaves such counts (a leak); a hostile image can claim
 * terabytes there, and the allocator would step over them one by one and
 * move the file's end as far. So they are found once, here, and an image
 * counting more past its end than any crash leaves is refused.
 */
static int find_append_point(struct qcow2 *q, char *why, size_t why_len)
{
    uint64_t file_clusters = (q->file_size + q->cluster_size - 1) >>
                             q->cluster_bits;
    if (reftable_shares_blocks(q))
        return block_refuse(why, why_len, "two qcow2 refcount table entries "
                            "name the same refcount block (qemu-img check "
                            "-r all repairs it)");
    uint64_t counted_end;
    int ret = find_counted_end(q, file_clusters, &counted_end, why, why_len);
    if (ret)
        return ret;
    uint64_t leaked = counted_end - file_clusters;
    if (leaked > MAX_LEAKED_BYTES >> q->cluster_bits)
        return block_refuse(why, why_len, "the qcow2 refcounts count %llu "
                            "clusters past the end of the file, more than a "
                            "crash leaves (at most %u MiB); qemu-img check -r "
                            "all repairs it", (unsigned long long)leaked,
                            MAX_LEAKED_BYTES >> 20);
    q->end = counted_end << q->cluster_bits;
    return 0;
}

int qcow2_refcount_open(struct qcow2 *q, uint64_t table_offset,
                  uint32_t table_clusters, char *why, size_t why_len)
{
    uint64_t bytes = (uint64_t)table_clusters * q->cluster_size;
    if (!table_clusters || bytes > MAX_REFTABLE_BYTES ||
        table_offset & (q->cluster_size - 1) ||
        !inside_file(q, table_offset, bytes))
        return block_refuse(why, why_len, "bad qcow2 refcount table (%u "
                            "clusters at 0x%llx)", table_clusters,
                            (unsigned long long)table_offset);
    q->refblock_bits = q->cluster_bits + 3 - q->refcount_order;
    q->reftable_offset = table_offset;
    q->reftable_clusters = table_clusters;
    q->reftable_size = bytes / 8;
    q->reftable = malloc(bytes);
    q->refblock = malloc(q->cluster_size);
    if (!q->reftable || !q->refblock)
        return -ENOMEM;
    if (block_pread_exact(q->meta_fd, q->reftable, bytes, table_offset))
        return block_refuse(why, why_len, "cannot read the qcow2 refcount "
                            "table");
    for (uint64_t i = 0; i < q->reftable_size; i++)
        q->reftable[i] = be64toh(q->reftable[i]) & REFTABLE_OFFSET_MASK;
    qcow2_metadata_add_tables(q);
    return find_append_point(q, why, why_len);
}

void qcow2_refcount_close(struct qcow2 *q)
{
    free(q->reftable);
    free(q->refblock);
    free(q->metadata);
}
