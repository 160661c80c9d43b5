/* SPDX-License-Identifier: MIT */
/*
 * New qcow2 images (version 3, 16-bit refcounts), laid out as qemu-img
 * lays them out: the header cluster (header, extensions, backing file
 * name), the refcount table, the refcount blocks counting every cluster
 * so far, and an empty L1 table covering the disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcow2.h"

#define REFCOUNT_ORDER 4
#define HEADER_LENGTH 112 /* version 3 with the compression type byte */
#define EXT_BACKING_FORMAT 0xe2792acau

struct new_layout {
    uint64_t l1_entries, l1, reftable, blocks, total; /* clusters */
};

static int plan_image(uint64_t size, unsigned cluster_bits,
                      struct new_layout *l)
{
    uint64_t cluster_size = 1ull << cluster_bits;
    unsigned l2_bits = cluster_bits - 3;
    unsigned refblock_bits = cluster_bits + 3 - REFCOUNT_ORDER;
    *l = (struct new_layout){ 0 };
    l->l1_entries = (size + (1ull << (cluster_bits + l2_bits)) - 1) >>
                    (cluster_bits + l2_bits);
    if (l->l1_entries * 8 > MAX_L1_BYTES)
        return -EFBIG;
    l->l1 = (l->l1_entries * 8 + cluster_size - 1) >> cluster_bits;
    /* The refcount blocks count themselves and their table too. */
    for (;;) {
        uint64_t total = 1 + l->reftable + l->blocks + l->l1;
        uint64_t blocks = (total + (1ull << refblock_bits) - 1) >>
                          refblock_bits;
        uint64_t reftable = (blocks * 8 + cluster_size - 1) >> cluster_bits;
        if (blocks == l->blocks && reftable == l->reftable)
            break;
        l->blocks = blocks;
        l->reftable = reftable;
    }
    l->total = 1 + l->reftable + l->blocks + l->l1;
    return l->reftable << cluster_bits > MAX_REFTABLE_BYTES ? -EFBIG : 0;
}

/* The first cluster: header, extensions, the backing file's name. */
static int fill_header(uint8_t *h, uint64_t cluster_size,
                       unsigned cluster_bits, uint64_t size,
                       const struct new_layout *l,
                       const struct vmdev_block_create_options *o, char *why,
                       size_t why_len)
{
    const char *format = o->backing_format == VMDEV_BLOCK_FORMAT_QCOW2
                             ? "qcow2" : "raw";
    size_t format_len = o->backing_file ? strlen(format) : 0;
    size_t name_len = o->backing_file ? strlen(o->backing_file) : 0;
    /* Extensions: the backing format (padded to 8), then the end. */
    uint64_t name_at = HEADER_LENGTH + (format_len ? 8 + ((format_len + 7) &
                                                          ~7ull) : 0) + 8;
    if (name_len > 1023 || name_at + name_len > cluster_size)
        return block_refuse(why, why_len, "the backing file name is too long "
                            "for the header cluster");
    uint64_t reftable_at = cluster_size;
    uint8_t *p = put_be(h, QCOW2_MAGIC, 4);
    p = put_be(p, 3, 4);
    p = put_be(p, name_len ? name_at : 0, 8);
    p = put_be(p, name_len, 4);
    p = put_be(p, cluster_bits, 4);
    p = put_be(p, size, 8);
    p = put_be(p, 0, 4); /* no encryption */
    p = put_be(p, l->l1_entries, 4);
    p = put_be(p, (1 + l->reftable + l->blocks) << cluster_bits, 8);
    p = put_be(p, reftable_at, 8);
    p = put_be(p, l->reftable, 4);
    p = put_be(p, 0, 4); /* snapshots */
    p = put_be(p, 0, 8);
    p = put_be(p, 0, 8); /* incompatible, compatible, autoclear features */
    p = put_be(p, 0, 8);
    p = put_be(p, 0, 8);
    p = put_be(p, REFCOUNT_ORDER, 4);
    p = put_be(p, HEADER_LENGTH, 4);
    /* Byte 104: compression type zlib; padding to HEADER_LENGTH. */
    p = h + HEADER_LENGTH;
    if (format_len) {
        p = put_be(p, EXT_BACKING_FORMAT, 4);
        p = put_be(p, format_len, 4);
        memcpy(p, format, format_len);
        p += (format_len + 7) & ~7ull;
    }
    /* The end-of-extensions marker is 8 zero bytes, already there. */
    if (name_len)
        memcpy(h + name_at, o->backing_file, name_len);
    return 0;
}

int qcow2_create(int fd, const struct vmdev_block_create_options *o,
                 uint64_t size, char *why, size_t why_len)
{
    unsigned cluster_bits = (unsigned)__builtin_ctz(o->cluster_size);
    uint64_t cluster_size = o->cluster_size;
    struct new_layout l;
    if (plan_image(size, cluster_bits, &l)) {
        block_refuse(why, why_len, "a %llu-byte disk needs more than a 32 MiB "
                     "L1 table with %llu-byte clusters (give bigger ones)",
                     (unsigned long long)size,
                     (unsigned long long)cluster_size);
        return -EFBIG;
    }
    /* Header, refcount table and blocks in one buffer; the L1 table is
     * the zeroes past them. */
    uint64_t head = (1 + l.reftable + l.blocks) << cluster_bits;
    uint8_t *buf = calloc(1, head);
    if (!buf)
        return -ENOMEM;
    int ret = fill_header(buf, cluster_size, cluster_bits, size, &l, o, why,
                          why_len);
    uint8_t *reftable = buf + cluster_size;
    uint8_t *blocks = reftable + (l.reftable << cluster_bits);
    for (uint64_t g = 0; g < l.blocks; g++)
        put_be(reftable + g * 8, (1 + l.reftable + g) << cluster_bits, 8);
    for (uint64_t c = 0; c < l.total; c++)
        put_be(blocks + c * 2, 1, 2);
    if (!ret && (ret = block_pwrite_exact(fd, buf, head, 0)))
        block_refuse(why, why_len, "cannot write the image: %s",
                     strerror(-ret));
    if (!ret && ftruncate(fd, (off_t)(l.total << cluster_bits))) {
        ret = -errno;
        block_refuse(why, why_len, "cannot size the image: %s",
                     strerror(errno));
    }
    free(buf);
    return ret;
}
