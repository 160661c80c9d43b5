/* SPDX-License-Identifier: MIT */
/*
 * What the parts of the qcow2 format share (QEMU's docs/interop/qcow2.txt):
 *
 *   qcow2.c          opening (header, extensions, backing chain), requests
 *   qcow2_map.c      the L1 table and the L2 cache: what a guest cluster
 *                    is, changing it, writing changed tables back in order
 *   qcow2_refcount.c refcount table and blocks, cluster allocation and
 *                    release, marking the image corrupt
 *   qcow2_read.c     reads, asynchronous and synchronous, and inflating
 *   qcow2_write.c    writes, write-zeroes, discard, flush
 *   qcow2_snapshot.c the snapshot table; creating, applying and deleting
 *                    snapshots by switching to recounted metadata at once
 *
 * Locking: q->lock covers every table (L1, L2 cache, refcounts) and the
 * end of the file. A request holds it while it maps or changes clusters,
 * never while its data moves through an engine.
 *
 * Crash consistency comes from the order the file is changed in: a new
 * cluster's refcount and data reach the file first; L2 tables stay in the
 * cache (dirty) and are written only after an fdatasync, so a table never
 * points at a cluster the disk does not count; the L1 table likewise only
 * after its new L2 tables are durable; and a cluster's refcount drops only
 * after the table that stopped pointing at it is durable. A crash at any
 * moment so leaves at worst leaked clusters, never a reference the
 * refcounts do not cover.
 */
#ifndef VMDEV_BLOCK_QCOW2_H
#define VMDEV_BLOCK_QCOW2_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <stdatomic.h>

#include "block/format.h"

#define QCOW2_MAGIC 0x514649fbu

/* Header fields' offsets (qcow2.txt, "Header"). */
#define HDR_L1_SIZE 36
#define HDR_REFTABLE_OFFSET 48
#define HDR_INCOMPATIBLE 72
#define HDR_AUTOCLEAR 88

/* Incompatible feature bits. */
#define INCOMPAT_DIRTY (1ull << 0)
#define INCOMPAT_CORRUPT (1ull << 1)
#define INCOMPAT_DATA_FILE (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2 (1ull << 4)
#define INCOMPAT_KNOWN (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | \
                        INCOMPAT_COMPRESSION | INCOMPAT_EXTL2)

/* Table entries. */
#define L1_OFFSET_MASK 0x00fffffffffffe00ull
#define L1_COPIED (1ull << 63)
#define L2_COPIED (1ull << 63)
#define L2_COMPRESSED (1ull << 62)
#define L2_OFFSET_MASK 0x00fffffffffffe00ull
#define L2_ZERO 1ull
/* Bits 1-8 of a standard L2 entry are reserved. */
#define L2_RESERVED 0x1feull
#define REFTABLE_OFFSET_MASK 0xfffffffffffffe00ull

enum compression { COMPRESSION_ZLIB, COMPRESSION_ZSTD };

/* A snapshot table entry (qcow2.txt, "Snapshots"). */
struct qcow2_snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;
    char *id, *name;       /* NUL-terminated copies */
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size32;
    uint64_t vm_state_size; /* the extra data's, if there */
    uint64_t disk_size;     /* the extra data's, else the image's */
    uint8_t *extra;         /* as in the file: rewritten unchanged */
    uint32_t extra_len;
};

struct l2_slot {
    uint64_t offset; /* of the table in the file; 0: empty */
    uint64_t last_use;
    bool dirty;      /* changed since it was read or written */
    uint64_t *table; /* big-endian, as on disk */
};

struct qcow2 {
    uint32_t version;
    int meta_fd; /* buffered: header, tables, compressed clusters */
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits; /* log2 of the entries in an L2 table */
    enum compression compression;
    struct vmdev_block *backing; /* NULL: unallocated reads as zeroes */
    struct vmdev_log *log; /* the image's lines (NULL: stderr) */

    pthread_mutex_t lock; /* everything below */
    uint64_t file_size;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t *l1; /* host-endian */
    uint32_t l1_dirty_from, l1_dirty_to; /* entries not on disk yet */
    struct l2_slot *slots;
    unsigned num_slots;
    uint64_t use_clock;

    struct qcow2_snapshot *snapshots;
    uint32_t num_snapshots;
    uint64_t snapshots_offset;

    /* Writable images only. */
    bool writable;
    bool corrupt; /* found inconsistent: no more writes */
    unsigned refcount_order;
    unsigned refblock_bits;     /* log2 of the entries in a refcount block */
    uint64_t reftable_offset;
    uint32_t reftable_clusters;
    uint64_t reftable_size;     /* entries */
    uint64_t *reftable;         /* host-endian */
    uint64_t refblock_offset;   /* the refcount block cached in refblock */
    uint8_t *refblock;
    uint64_t end;               /* where the next cluster is appended */
    uint8_t *zeroes;            /* a cluster of them, aligned for O_DIRECT */
    /* Offsets of L2 tables and refcount blocks, sorted, so that a data
     * write is never let onto metadata. */
    uint64_t *metadata;
    size_t num_metadata, metadata_cap;
};

/* What a guest cluster is. */
enum extent_kind { EXTENT_UNALLOCATED, EXTENT_ZERO, EXTENT_DATA,
                   EXTENT_COMPRESSED };

struct mapping {
    enum extent_kind kind;
    uint64_t entry;      /* the L2 entry as it is */
    uint64_t host;       /* DATA (and ZERO, if it keeps its cluster) */
    uint64_t compressed; /* COMPRESSED: the descriptor */
    bool copied;         /* refcount 1: may be written in place */
};

/* A request being served in extents (reads, and writes in place). */
struct qcow2_request {
    struct vmdev_block_request *req;
    uint64_t len;     /* a read's or write's: its buffers' */
    /* Extents in flight, + 1 while dispatching. Atomic, as is error:
     * extents finish on the engine's completing thread while the
     * dispatching thread may still be submitting more. */
    atomic_uint pending;
    _Atomic int64_t error; /* the first failure, 0 while none */
    bool dispatched_any;   /* an extent went out: the dispatcher's own */
    struct vmdev_io io; /* NOP or FLUSH: carries the completion */
};

/* As QEMU: at most 32 MiB of L1 table and 8 MiB of refcount table. */
#define MAX_L1_BYTES (32u << 20)
#define MAX_REFTABLE_BYTES (8u << 20)
/* Counted clusters past the end of the file that a writable open accepts
 * as leaks of a crash (allocating writes in flight, whose counts reached
 * the file and whose data did not); beyond it the image is refused. */
#define MAX_LEAKED_BYTES (1u << 30)

static inline uint16_t be16_at(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static inline uint64_t be64_at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

/* value as width big-endian bytes at p; the byte after them. */
static inline uint8_t *put_be(uint8_t *p, uint64_t value, unsigned width)
{
    for (unsigned k = width; k-- > 0; value >>= 8)
        p[k] = (uint8_t)value;
    return p + width;
}

/* A compressed cluster's descriptor (qcow2.txt): the low 62 - (cluster_bits
 * - 8) bits are its offset in the file, the rest the count of 512-byte
 * sectors after the first that it occupies. */
static inline void compressed_span(const struct qcow2 *q, uint64_t descriptor,
                                   uint64_t *offset, uint64_t *sectors)
{
    unsigned offset_bits = 62 - (q->cluster_bits - 8);
    *offset = descriptor & ((1ull << offset_bits) - 1);
    *sectors = (descriptor >> offset_bits) + 1;
}

static inline bool inside_file(const struct qcow2 *q, uint64_t offset,
                               uint64_t len)
{
    return offset <= q->file_size && len <= q->file_size - offset;
}

/* qcow2_map.c (q->lock held by the caller unless said) */
/* An L1 table of `entries` at offset, checked to lie in the file, into
 * l1 (host-endian). */
int qcow2_l1_read(struct qcow2 *q, uint64_t offset, uint32_t entries,
            uint64_t *l1);
/* What the guest cluster holding byte `guest` is: 0 or -EIO. */
int qcow2_map_cluster_locked(struct qcow2 *q, uint64_t guest, struct mapping *m);
/* The same, taking q->lock. */
int qcow2_map_cluster(struct qcow2 *q, uint64_t guest, struct mapping *m);
/* The L2 table for guest byte `guest`, owned by this L1 alone, allocated
 * or copied as needed; *index is the entry's in it. */
int qcow2_l2_for_write(struct qcow2 *q, uint64_t guest, struct l2_slot **slot,
                 unsigned *index);
static inline void l2_set(struct l2_slot *slot, unsigned index, uint64_t entry)
{
    slot->table[index] = htobe64(entry);
    slot->dirty = true;
}
/* Write changed L2 tables, then the L1 table, each after an fdatasync. */
int qcow2_write_tables(struct qcow2 *q);

/* qcow2_refcount.c (q->lock held) */
/* Entry i of refcount blocks laid back to back at counts; setting one
 * returns the bytes it lives in (from *at). */
uint64_t qcow2_refcount_get(const struct qcow2 *q, const uint8_t *counts,
                      uint64_t i);
size_t qcow2_refcount_set(const struct qcow2 *q, uint8_t *counts, uint64_t i,
                    uint64_t value, uint64_t *at);
int qcow2_refcount_open(struct qcow2 *q, uint64_t table_offset,
                  uint32_t table_clusters, char *why, size_t why_len);
void qcow2_refcount_close(struct qcow2 *q);
/* n new contiguous clusters with refcount 1; *offset is the first's. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset);
/* Drop a reference to what an L2 entry points at (data or compressed),
 * punching out clusters nobody references any more. The table that
 * pointed there must be durable first. */
int qcow2_release_entry(struct qcow2 *q, uint64_t entry);
/* A reference to the cluster at offset (an L2 table) is gone. */
int qcow2_release_clusters(struct qcow2 *q, uint64_t offset, uint64_t len);
void qcow2_metadata_add(struct qcow2 *q, uint64_t offset);
/* Many at once: appended in any order (every cluster of a range), then
 * sorted once. */
void qcow2_metadata_append(struct qcow2 *q, uint64_t offset);
void qcow2_metadata_append_range(struct qcow2 *q, uint64_t offset, uint64_t len);
void qcow2_metadata_sort(struct qcow2 *q);
void qcow2_metadata_clear(struct qcow2 *q);
/* The refcount blocks and the active L1's L2 tables join the set. */
void qcow2_metadata_add_tables(struct qcow2 *q);
bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t offset, uint64_t len);
/* Found inconsistent while writing: say so in the header and stop
 * writing. Returns -EIO for the request. */
int qcow2_mark_corrupt(struct qcow2 *q, const char *what);

/* qcow2_read.c */
void qcow2_request_put(struct qcow2_request *r);
/* Record result as r's failure unless one came first. */
void qcow2_request_fail(struct qcow2_request *r, int64_t result);
int qcow2_dispatch_read(struct qcow2_request *r, struct vmdev_block *b,
                  struct qcow2 *q);
/* Guest bytes [guest, guest + len), inside one cluster mapped to m, into
 * buf, on this thread (q->lock may be held). */
int qcow2_read_cluster_sync(struct qcow2 *q, const struct mapping *m, uint64_t guest,
                      uint8_t *buf, uint64_t len);
int qcow2_read_sync(struct vmdev_block *b, uint64_t offset, void *buf,
                    uint64_t len);
/* Visit [offset, offset + len) of the request's data, buffer by buffer. */
void qcow2_each_span(const struct vmdev_block_request *req, uint64_t offset,
               uint64_t len, void (*visit)(void *ctx, uint8_t *p, size_t n),
               void *ctx);
/* An extent: the slice [at, at + len) of the request's data as iovecs,
 * completing into r. Freed by its completion. */
struct qcow2_extent *qcow2_new_extent(struct qcow2_request *r, uint64_t at,
                                uint64_t len);
/* An extent writing len zeroes from `zeroes` (at least len bytes). */
struct qcow2_extent *qcow2_new_zero_extent(struct qcow2_request *r,
                                     const void *zeroes, uint64_t len);
int qcow2_submit_extent_io(struct qcow2_request *r, struct qcow2_extent *e,
                     enum vmdev_io_op op, int fd, uint64_t host);

/* qcow2_write.c */
int qcow2_dispatch_write(struct qcow2_request *r, struct vmdev_block *b,
                   struct qcow2 *q);
/* WRITE_ZEROES and DISCARD. */
int qcow2_dispatch_zeroes(struct qcow2_request *r, struct vmdev_block *b,
                    struct qcow2 *q);
int qcow2_write_metadata(struct vmdev_block *b);

/* qcow2_switch.c (q->lock held, no request in flight) */
/* Switch, in one step, to metadata whose active L1 table has the entries
 * of `source` (q->l1_size of them; their L2 tables are copied) and whose
 * snapshots are list[0..count). 0, or -errno with a sentence in why. */
int qcow2_switch_metadata(struct qcow2 *q, const uint64_t *source,
                    const struct qcow2_snapshot *list, uint32_t count,
                    char *why, size_t why_len);

/* qcow2_snapshot.c */
/* An L1 table snapshots use, and how many of them. */
struct l1_use {
    uint64_t offset;
    uint32_t size;
    uint32_t users;
};
/* The distinct L1 tables of list[0..count), sorted, into *out (malloc'd;
 * their number in *n). */
int qcow2_snapshot_l1_tables(const struct qcow2_snapshot *list, uint32_t count,
                       struct l1_use **out, size_t *n);
/* The snapshot table of list[0..count): its size, and it into buf (that
 * many zeroed bytes). */
uint64_t qcow2_snapshot_table_bytes(const struct qcow2_snapshot *list,
                              uint32_t count);
void qcow2_snapshot_table_fill(uint8_t *buf, const struct qcow2_snapshot *list,
                         uint32_t count);
/* Read and check the snapshot table (at open). */
int qcow2_snapshot_table_open(struct qcow2 *q, uint32_t count, uint64_t offset,
                        uint64_t disk_size, char *why, size_t why_len);
void qcow2_snapshot_table_close(struct qcow2 *q);
/* Snapshot L1 tables, their L2 tables and the snapshot table join the
 * metadata a data write must not land on. */
int qcow2_snapshot_metadata_add(struct qcow2 *q);
int qcow2_snapshot_list(struct vmdev_block *b,
                        struct vmdev_block_snapshot **list);
int qcow2_snapshot_create(struct vmdev_block *b, const char *name, char *why,
                          size_t why_len);
int qcow2_snapshot_apply(struct vmdev_block *b, const char *id_or_name,
                         char *why, size_t why_len);
int qcow2_snapshot_delete(struct vmdev_block *b, const char *id_or_name,
                          char *why, size_t why_len);

#endif
