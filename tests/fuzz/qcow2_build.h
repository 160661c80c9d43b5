/* SPDX-License-Identifier: MIT */
/*
 * Consistent qcow2 images built in memory, for the fuzz targets that
 * need images past the header checks (fuzz_qcow2_meta, which then edits
 * them; fuzz_virtio_blk_qcow2, which drives a disk on one). From a shape
 * (cluster size, version, refcount width, compression type, disk size,
 * which guest clusters hold data, zeroes or compressed data, snapshots
 * sharing the active L2 tables) the image is laid out as qemu-img would
 * (header, refcount table, L1 tables, snapshot table, L2 tables, data,
 * compressed data packed by bytes, refcount blocks counting everything,
 * snapshot references included, COPIED where a count is 1). A guest
 * cluster's data is fill_pattern(cluster, its index).
 */
#ifndef VMDEV_FUZZ_QCOW2_BUILD_H
#define VMDEV_FUZZ_QCOW2_BUILD_H

#include <endian.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MAX_DATA_CLUSTERS 48
#define MAX_L2_TABLES 16
#define MAX_SNAPSHOTS 3
#define MAX_OBJECTS 256
/* An L1 or L2 entry's offset bits (qcow2.txt). */
#define L1_MASK_FOR_BUILD 0x00fffffffffffe00ull
#define L2_MASK_FOR_BUILD L1_MASK_FOR_BUILD

enum object_kind { OBJ_HEADER, OBJ_REFTABLE, OBJ_L1, OBJ_SNAPSHOT_TABLE,
                   OBJ_SNAPSHOT_L1, OBJ_L2, OBJ_DATA, OBJ_COMPRESSED,
                   OBJ_REFBLOCK };

/* A run of clusters of the image, by what it holds. */
struct object {
    enum object_kind kind;
    uint64_t cluster, clusters;
};

struct image {
    unsigned cluster_bits, refcount_order, version;
    uint64_t cluster_size, disk_size, l1_entries;
    bool zstd;
    uint8_t *file; /* the image, (clusters << cluster_bits) bytes */
    uint64_t clusters;
    struct object objects[MAX_OBJECTS];
    unsigned num_objects;
    uint64_t reftable_cluster, reftable_clusters;
    uint64_t l1_cluster[1 + MAX_SNAPSHOTS]; /* active, then snapshots */
    unsigned snapshots;
    uint64_t snapshot_table_cluster;
    uint64_t refblocks_cluster, refblocks;
    uint64_t *refcounts; /* per cluster, as counted */
    /* When the caller sets it (a byte per guest cluster, zeroed): what
     * each guest cluster came to hold, an enum guest_kind. */
    uint8_t *guest_kinds;
};

static inline uint64_t add_object(struct image *im, enum object_kind kind,
                           uint64_t clusters)
{
    uint64_t at = im->clusters;
    if (im->num_objects < MAX_OBJECTS)
        im->objects[im->num_objects++] = (struct object){ kind, at, clusters };
    im->clusters += clusters;
    return at;
}

static inline uint64_t clusters_for(const struct image *im, uint64_t bytes)
{
    return (bytes + im->cluster_size - 1) >> im->cluster_bits;
}

static inline void put64(struct image *im, uint64_t offset, uint64_t value)
{
    uint64_t be = htobe64(value);
    memcpy(im->file + offset, &be, 8);
}

static inline uint64_t get64(const struct image *im, uint64_t offset)
{
    uint64_t be;
    memcpy(&be, im->file + offset, 8);
    return be64toh(be);
}

static inline void put32(struct image *im, uint64_t offset, uint32_t value)
{
    uint32_t be = htobe32(value);
    memcpy(im->file + offset, &be, 4);
}

/* A cluster of recognisable content. */
static inline void fill_pattern(uint8_t *p, uint64_t len, uint64_t seed)
{
    for (uint64_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed * 131 + i / 512 * 7 + i);
}

/* Compressed data as qemu-img writes it: raw deflate (window 2^12) or a
 * zstd frame. Its length, or 0. */
static inline size_t compress_cluster(const struct image *im, const uint8_t *in,
                               uint8_t *out, size_t out_len)
{
    if (im->zstd) {
        size_t n = ZSTD_compress(out, out_len, in, im->cluster_size, 1);
        return ZSTD_isError(n) ? 0 : n;
    }
    z_stream z = { 0 };
    if (deflateInit2(&z, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)im->cluster_size;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int ret = deflate(&z, Z_FINISH);
    size_t n = out_len - z.avail_out;
    deflateEnd(&z);
    return ret == Z_STREAM_END ? n : 0;
}

/* What a guest cluster holds in the consistent image. */
enum guest_kind { GUEST_UNALLOCATED, GUEST_DATA, GUEST_ZERO,
                  GUEST_COMPRESSED };

struct shape {
    uint8_t density, compressed_share, zero_share, seed;
};

static inline enum guest_kind guest_kind_of(const struct shape *s, uint64_t i)
{
    uint8_t h = (uint8_t)((i * 2654435761u) >> 13 ^ s->seed);
    if (h >= s->density)
        return GUEST_UNALLOCATED;
    uint8_t k = (uint8_t)(h * 37 + i);
    return k < s->compressed_share ? GUEST_COMPRESSED
           : (uint8_t)(k * 3) < s->zero_share ? GUEST_ZERO
                                              : GUEST_DATA;
}

/*
 * Lay the consistent image out and fill everything but the refcounts.
 * false when the shape has nothing to build (out of memory).
 */
static inline bool build_tables(struct image *im, const struct shape *s)
{
    uint64_t entries_per_l2 = im->cluster_size / 8;
    uint64_t guest_clusters = clusters_for(im, im->disk_size);
    add_object(im, OBJ_HEADER, 1);
    im->l1_cluster[0] = add_object(im, OBJ_L1, clusters_for(im, im->l1_entries * 8));
    if (im->snapshots)
        im->snapshot_table_cluster = add_object(im, OBJ_SNAPSHOT_TABLE, 1);
    for (unsigned k = 1; k <= im->snapshots; k++)
        im->l1_cluster[k] = add_object(im, OBJ_SNAPSHOT_L1,
                                       clusters_for(im, im->l1_entries * 8));
    /* L2 tables and data, guest cluster by guest cluster. */
    uint64_t l2_of[64] = { 0 };
    unsigned tables = 0, datas = 0;
    struct { uint64_t guest; enum guest_kind kind; uint64_t cluster; }
        placed[MAX_DATA_CLUSTERS];
    /* At most 16 MiB of data clusters, however big they are. */
    unsigned max_datas = (16u << 20) >> im->cluster_bits;
    if (max_datas > MAX_DATA_CLUSTERS)
        max_datas = MAX_DATA_CLUSTERS;
    for (uint64_t g = 0; g < guest_clusters && datas < max_datas; g++) {
        enum guest_kind kind = guest_kind_of(s, g);
        uint64_t l1_index = g / entries_per_l2;
        if (kind == GUEST_UNALLOCATED || l1_index >= 64)
            continue;
        if (!l2_of[l1_index]) {
            if (tables == MAX_L2_TABLES)
                continue;
            l2_of[l1_index] = add_object(im, OBJ_L2, 1);
            tables++;
        }
        placed[datas].guest = g;
        placed[datas].kind = kind;
        placed[datas].cluster = kind == GUEST_DATA ? add_object(im, OBJ_DATA, 1)
                                                   : 0;
        datas++;
    }
    /* Compressed data packed after the data, by bytes. */
    unsigned compressed = 0;
    for (unsigned i = 0; i < datas; i++)
        compressed += placed[i].kind == GUEST_COMPRESSED;
    uint64_t packed_bytes = compressed * (im->cluster_size + im->cluster_size / 8 + 1024);
    uint64_t packed_cluster = compressed ? add_object(im, OBJ_COMPRESSED,
                                                      clusters_for(im, packed_bytes))
                                         : 0;
    /* Refcount blocks at the end, counting everything and themselves, and
     * a table big enough for them. */
    uint64_t per_block = (im->cluster_size * 8) >> im->refcount_order;
    uint64_t before_blocks = im->clusters + 1; /* the table, below */
    im->refblocks = 1;
    while ((before_blocks + im->refblocks + per_block - 1) / per_block >
           im->refblocks)
        im->refblocks++;
    im->reftable_clusters = clusters_for(im, im->refblocks * 8);
    im->reftable_cluster = add_object(im, OBJ_REFTABLE, im->reftable_clusters);
    im->refblocks_cluster = add_object(im, OBJ_REFBLOCK, im->refblocks);
    if (im->refblocks * per_block < im->clusters)
        return false; /* a wider table moved the blocks past their count */

    im->file = calloc(im->clusters, im->cluster_size);
    im->refcounts = calloc(im->clusters, sizeof(*im->refcounts));
    if (!im->file || !im->refcounts)
        return false;
    uint8_t *cluster = malloc(im->cluster_size);
    size_t out_len = im->cluster_size + im->cluster_size / 8 + 1024;
    uint8_t *squeezed = malloc(out_len);
    if (!cluster || !squeezed) {
        free(cluster);
        free(squeezed);
        return false;
    }
    uint64_t packed_at = packed_cluster << im->cluster_bits;
    unsigned offset_bits = 62 - (im->cluster_bits - 8);
    for (unsigned i = 0; i < datas; i++) {
        uint64_t l1_index = placed[i].guest / entries_per_l2;
        uint64_t l2 = l2_of[l1_index] << im->cluster_bits;
        uint64_t slot = l2 + (placed[i].guest % entries_per_l2) * 8;
        fill_pattern(cluster, im->cluster_size, placed[i].guest);
        switch (placed[i].kind) {
        case GUEST_DATA:
            memcpy(im->file + (placed[i].cluster << im->cluster_bits), cluster,
                   im->cluster_size);
            put64(im, slot, placed[i].cluster << im->cluster_bits);
            break;
        case GUEST_ZERO:
            put64(im, slot, 1); /* L2_ZERO, no cluster (version 3) */
            break;
        case GUEST_COMPRESSED: {
            size_t n = compress_cluster(im, cluster, squeezed, out_len);
            if (!n)
                continue; /* left unallocated */
            memcpy(im->file + packed_at, squeezed, n);
            uint64_t sectors = ((packed_at + n - 1) >> 9) - (packed_at >> 9);
            put64(im, slot, 1ull << 62 | sectors << offset_bits | packed_at);
            packed_at += n;
            break;
        }
        case GUEST_UNALLOCATED:
            break;
        }
        if (im->guest_kinds)
            im->guest_kinds[placed[i].guest] = (uint8_t)placed[i].kind;
    }
    free(cluster);
    free(squeezed);
    /* The active L1 and the snapshots' copies share the L2 tables. */
    for (unsigned k = 0; k <= im->snapshots; k++)
        for (uint64_t e = 0; e < 64 && e < im->l1_entries; e++)
            if (l2_of[e])
                put64(im, (im->l1_cluster[k] << im->cluster_bits) + e * 8,
                      l2_of[e] << im->cluster_bits);
    return true;
}

static inline void count(struct image *im, uint64_t offset, uint64_t len)
{
    for (uint64_t c = offset >> im->cluster_bits;
         c < clusters_for(im, offset + len) && c < im->clusters; c++)
        im->refcounts[c]++;
}

/* What each cluster is counted as: metadata once, each L2 table and data
 * cluster once per L1 table reaching it; COPIED set where that is 1. */
static inline void count_references(struct image *im)
{
    memset(im->refcounts, 0, im->clusters * sizeof(*im->refcounts));
    for (unsigned i = 0; i < im->num_objects; i++) {
        const struct object *o = &im->objects[i];
        if (o->kind != OBJ_L2 && o->kind != OBJ_DATA &&
            o->kind != OBJ_COMPRESSED)
            count(im, o->cluster << im->cluster_bits,
                  o->clusters << im->cluster_bits);
    }
    unsigned offset_bits = 62 - (im->cluster_bits - 8);
    uint64_t per_l2 = im->cluster_size / 8;
    for (unsigned k = 0; k <= im->snapshots; k++) {
        uint64_t l1 = im->l1_cluster[k] << im->cluster_bits;
        for (uint64_t e = 0; e < 64 && e < im->l1_entries; e++) {
            uint64_t l2 = get64(im, l1 + e * 8) & L1_MASK_FOR_BUILD;
            if (!l2)
                continue;
            count(im, l2, im->cluster_size);
            for (uint64_t j = 0; j < per_l2; j++) {
                uint64_t entry = get64(im, l2 + j * 8);
                if (entry & (1ull << 62)) {
                    uint64_t at = entry & ((1ull << offset_bits) - 1);
                    uint64_t sectors = (entry & ((1ull << 62) - 1)) >> offset_bits;
                    count(im, at & ~511ull, (sectors + 1) * 512);
                } else if (entry & L2_MASK_FOR_BUILD) {
                    count(im, entry & L2_MASK_FOR_BUILD, im->cluster_size);
                }
            }
        }
    }
}

static inline void set_copied_flags(struct image *im)
{
    uint64_t per_l2 = im->cluster_size / 8;
    for (unsigned k = 0; k <= im->snapshots; k++) {
        uint64_t l1 = im->l1_cluster[k] << im->cluster_bits;
        for (uint64_t e = 0; e < 64 && e < im->l1_entries; e++) {
            uint64_t l2 = get64(im, l1 + e * 8) & L1_MASK_FOR_BUILD;
            if (!l2)
                continue;
            bool own = im->refcounts[l2 >> im->cluster_bits] == 1;
            put64(im, l1 + e * 8, l2 | (own ? 1ull << 63 : 0));
            for (uint64_t j = 0; j < per_l2; j++) {
                uint64_t entry = get64(im, l2 + j * 8) & ~(1ull << 63);
                uint64_t host = entry & L2_MASK_FOR_BUILD;
                bool copied = !(entry & (1ull << 62)) && host &&
                              im->refcounts[host >> im->cluster_bits] == 1;
                put64(im, l2 + j * 8, entry | (copied ? 1ull << 63 : 0));
            }
        }
    }
}

/* Refcount i of the blocks, value clamped to the width (a snapshot's
 * extra references may not fit a narrow one: the image then lies). */
static inline void refcount_write(struct image *im, uint64_t i, uint64_t value)
{
    unsigned bits = 1u << im->refcount_order;
    uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    if (value > max)
        value = max;
    uint8_t *blocks = im->file + (im->refblocks_cluster << im->cluster_bits);
    uint64_t limit = im->refblocks << im->cluster_bits;
    if (bits < 8) {
        uint64_t byte = i * bits / 8;
        if (byte >= limit)
            return;
        unsigned shift = (unsigned)(i * bits % 8);
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
        blocks[byte] = (uint8_t)((blocks[byte] & ~mask) |
                                 ((value << shift) & mask));
        return;
    }
    uint64_t width = bits / 8, at = i * width;
    if (at + width > limit)
        return;
    for (uint64_t k = width; k-- > 0; value >>= 8)
        blocks[at + k] = (uint8_t)value;
}

static inline void write_refcounts(struct image *im)
{
    uint64_t table = im->reftable_cluster << im->cluster_bits;
    for (uint64_t b = 0; b < im->refblocks; b++)
        put64(im, table + b * 8, (im->refblocks_cluster + b) << im->cluster_bits);
    for (uint64_t c = 0; c < im->clusters; c++)
        refcount_write(im, c, im->refcounts[c]);
}

static inline void write_snapshot_table(struct image *im)
{
    uint64_t at = im->snapshot_table_cluster << im->cluster_bits;
    for (unsigned k = 1; k <= im->snapshots; k++) {
        put64(im, at, im->l1_cluster[k] << im->cluster_bits);
        put32(im, at + 8, (uint32_t)im->l1_entries);
        im->file[at + 12] = 0;
        im->file[at + 13] = 1;  /* ID length */
        im->file[at + 14] = 0;
        im->file[at + 15] = 5;  /* name length */
        put32(im, at + 36, 16); /* extra: VM state size, disk size */
        put64(im, at + 40, 0);
        put64(im, at + 48, im->disk_size);
        im->file[at + 56] = (uint8_t)('0' + k);
        memcpy(im->file + at + 57, "snap", 4);
        im->file[at + 61] = (uint8_t)('0' + k);
        at += 64;
    }
}

static inline void write_header(struct image *im, uint8_t extra_incompatible)
{
    put32(im, 0, 0x514649fbu);
    put32(im, 4, im->version);
    put32(im, 20, im->cluster_bits);
    put64(im, 24, im->disk_size);
    put32(im, 36, (uint32_t)im->l1_entries);
    put64(im, 40, im->l1_cluster[0] << im->cluster_bits);
    put64(im, 48, im->reftable_cluster << im->cluster_bits);
    put32(im, 56, (uint32_t)im->reftable_clusters);
    put32(im, 60, im->snapshots);
    put64(im, 64, im->snapshot_table_cluster << im->cluster_bits);
    if (im->version == 3) {
        /* Dirty or corrupt (read-only opens only) when bit 3 asks. */
        put64(im, 72, (im->zstd ? 1u << 3 : 0) |
                          (extra_incompatible & 8 ? extra_incompatible & 3 : 0));
        put64(im, 88, extra_incompatible >> 7); /* autoclear: a bitmap bit */
        put32(im, 96, im->refcount_order);
        put32(im, 100, 112);
        im->file[104] = im->zstd;
    }
}

/* The image's first len bytes into path, sparse: only the clusters with
 * content are written. */
static inline void write_image(const char *path, const struct image *im,
                        uint64_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    for (uint64_t c = 0; c < im->clusters; c++) {
        uint64_t at = c << im->cluster_bits;
        const uint8_t *p = im->file + at;
        if (at >= len)
            break;
        uint64_t n = len - at < im->cluster_size ? len - at : im->cluster_size;
        bool empty = true;
        for (uint64_t i = 0; i < n && empty; i += 8)
            empty = !memcmp(p + i, "\0\0\0\0\0\0\0\0", n - i < 8 ? n - i : 8);
        if (!empty && pwrite(fd, p, n, (off_t)at) != (ssize_t)n)
            abort();
    }
    if (ftruncate(fd, (off_t)len) || close(fd))
        abort();
}

#endif
