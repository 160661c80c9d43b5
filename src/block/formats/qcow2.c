/* SPDX-License-Identifier: MIT */
/*
 * qcow2 images (QEMU's docs/interop/qcow2.txt): opening and checking the
 * header, its extensions and the backing chain, and serving requests
 * through the reading and writing parts (qcow2.h lists them). Versions 2
 * and 3 read; version 3 writes.
 *
 * Everything in the image is hostile: the header, the tables and every
 * entry are checked before use. A bad entry fails the request (EIO)
 * without touching anything outside the image; one found while writing
 * marks the image corrupt, and it takes no more writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcow2.h"

#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21
/* As QEMU: at most 1023 bytes of backing name. */
#define MAX_BACKING_NAME 1023
#define MAX_BACKING_DEPTH 16
/* The L2 cache covers the disk, up to this much memory. */
#define MAX_L2_CACHE_BYTES (32u << 20)

/* Header extension types. */
#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acau

static void request_io_done(struct vmdev_io *io, int64_t result)
{
    struct qcow2_request *r = io->opaque;
    if (result < 0)
        qcow2_request_fail(r, result);
    qcow2_request_put(r);
}

static int qcow2_submit(struct vmdev_block *b, struct vmdev_block_request *req)
{
    struct qcow2 *q = b->format_state;
    struct qcow2_request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->req = req;
    atomic_init(&r->pending, 1);
    atomic_init(&r->error, 0);
    if (req->op == VMDEV_IO_READ || req->op == VMDEV_IO_WRITE)
        for (unsigned i = 0; i < req->data_iovcnt; i++)
            r->len += req->data_iov[i].iov_len;
    int ret = 0;
    switch (req->op) {
    case VMDEV_IO_READ:
        ret = qcow2_dispatch_read(r, b, q);
        break;
    case VMDEV_IO_WRITE:
        ret = qcow2_dispatch_write(r, b, q);
        break;
    case VMDEV_IO_WRITE_ZEROES:
    case VMDEV_IO_DISCARD:
        ret = qcow2_dispatch_zeroes(r, b, q);
        break;
    case VMDEV_IO_FLUSH:
        /* The tables, then (below) the engine's fdatasync. */
        ret = qcow2_write_metadata(b);
        break;
    case VMDEV_IO_NOP:
        break;
    }
    if (ret)
        qcow2_request_fail(r, ret);
    if (r->dispatched_any) {
        /* Extents are in flight and finish on the engine's thread. */
        qcow2_request_put(r);
        return 0;
    }
    /* Nothing went to the engine: it still reports the completion. */
    bool flush = req->op == VMDEV_IO_FLUSH && q->writable &&
                 !atomic_load(&r->error);
    r->io = (struct vmdev_io){ .op = flush ? VMDEV_IO_FLUSH : VMDEV_IO_NOP,
                               .fd = b->fd, .done = request_io_done,
                               .opaque = r };
    ret = vmdev_io_engine_submit(req->engine, &r->io);
    if (ret)
        free(r);
    return ret;
}

static void qcow2_close(struct vmdev_block *b)
{
    struct qcow2 *q = b->format_state;
    if (!q)
        return;
    if (q->writable && q->l1)
        qcow2_write_metadata(b);
    vmdev_block_free(q->backing);
    for (unsigned i = 0; q->slots && i < q->num_slots; i++)
        free(q->slots[i].table);
    free(q->slots);
    free(q->l1);
    free(q->zeroes);
    qcow2_snapshot_table_close(q);
    qcow2_refcount_close(q);
    if (q->meta_fd >= 0)
        close(q->meta_fd);
    pthread_mutex_destroy(&q->lock);
    free(q);
    b->format_state = NULL;
}

static const struct block_format_ops qcow2_format = {
    .name = "qcow2",
    .submit = qcow2_submit,
    .read_sync = qcow2_read_sync,
    .write_metadata = qcow2_write_metadata,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .close = qcow2_close,
};

/* --- Opening --- */

struct header {
    uint32_t version;
    uint64_t backing_offset;
    uint32_t backing_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t reftable_offset;
    uint32_t reftable_clusters;
    uint32_t snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible;
    uint64_t autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
};

static int parse_header(const uint8_t *h, size_t len, struct header *out,
                        char *why, size_t why_len)
{
    if (len < 72 || be32_at(h) != QCOW2_MAGIC)
        return block_refuse(why, why_len, "not a qcow2 image");
    *out = (struct header){
        .version = be32_at(h + 4),
        .backing_offset = be64_at(h + 8),
        .backing_size = be32_at(h + 16),
        .cluster_bits = be32_at(h + 20),
        .size = be64_at(h + 24),
        .crypt_method = be32_at(h + 32),
        .l1_size = be32_at(h + 36),
        .l1_offset = be64_at(h + 40),
        .reftable_offset = be64_at(h + 48),
        .reftable_clusters = be32_at(h + 56),
        .snapshots = be32_at(h + 60),
        .snapshots_offset = be64_at(h + 64),
        .refcount_order = 4,
        .header_length = 72,
    };
    if (out->version != 2 && out->version != 3)
        return block_refuse(why, why_len, "qcow2 version %u is not supported "
                      "(2 and 3 are)", out->version);
    if (out->cluster_bits < MIN_CLUSTER_BITS ||
        out->cluster_bits > MAX_CLUSTER_BITS)
        return block_refuse(why, why_len, "cluster_bits %u is outside 9 to 21",
                      out->cluster_bits);
    if (out->version == 3) {
        if (len < 104)
            return block_refuse(why, why_len, "truncated qcow2 header");
        out->incompatible = be64_at(h + 72);
        out->autoclear = be64_at(h + 88);
        out->refcount_order = be32_at(h + 96);
        out->header_length = be32_at(h + 100);
        if (out->header_length < 104 || out->header_length > len ||
            out->header_length % 8)
            return block_refuse(why, why_len, "bad qcow2 header length %u",
                          out->header_length);
        if (out->header_length > 104)
            out->compression_type = h[104];
    }
    if (out->crypt_method)
        return block_refuse(why, why_len, "encrypted qcow2 images are not supported");
    if (out->incompatible & ~INCOMPAT_KNOWN)
        return block_refuse(why, why_len, "the image needs qcow2 features this "
                      "version does not know (incompatible bits 0x%llx)",
                      (unsigned long long)(out->incompatible & ~INCOMPAT_KNOWN));
    if (out->incompatible & INCOMPAT_DATA_FILE)
        return block_refuse(why, why_len, "qcow2 external data files are not supported");
    if (out->incompatible & INCOMPAT_EXTL2)
        return block_refuse(why, why_len, "qcow2 extended L2 entries are not supported");
    bool typed = out->incompatible & INCOMPAT_COMPRESSION;
    if (out->compression_type > 1 || typed != (out->compression_type != 0))
        return block_refuse(why, why_len, "bad qcow2 compression type %u",
                      out->compression_type);
    if (out->refcount_order > 6)
        return block_refuse(why, why_len, "bad qcow2 refcount order %u",
                      out->refcount_order);
    return 0;
}

/* Header extensions: the backing file's format, if named. */
static int parse_extensions(const uint8_t *h, size_t len, size_t at,
                            char *format, size_t format_len, char *why,
                            size_t why_len)
{
    while (at + 8 <= len) {
        uint32_t type = be32_at(h + at), ext_len = be32_at(h + at + 4);
        at += 8;
        if (type == EXT_END)
            return 0;
        if (ext_len > len - at)
            return block_refuse(why, why_len, "a qcow2 header extension overruns "
                          "the header cluster");
        if (type == EXT_BACKING_FORMAT) {
            if (ext_len >= format_len)
                return block_refuse(why, why_len, "bad qcow2 backing format name");
            memcpy(format, h + at, ext_len);
            format[ext_len] = '\0';
        }
        at += (ext_len + 7) & ~7u;
    }
    return 0;
}

/* The format a backing file opens in: the one given, else the one the
 * image names; never probed, since a raw file that a guest once wrote a
 * qcow2 header into must not be parsed. */
static int backing_format_of(enum vmdev_block_format given, const char *named,
                             const char *file, enum vmdev_block_format *out,
                             char *why, size_t why_len)
{
    if (given != VMDEV_BLOCK_FORMAT_DEFAULT)
        *out = given;
    else if (strcmp(named, "qcow2") == 0)
        *out = VMDEV_BLOCK_FORMAT_QCOW2;
    else if (strcmp(named, "raw") == 0)
        *out = VMDEV_BLOCK_FORMAT_RAW;
    else if (!*named)
        return block_refuse(why, why_len, "the image does not say the format "
                            "of its backing file %s (backing_format=raw|qcow2 "
                            "gives it; qemu-img rebase -u -F FORMAT adds it)",
                            file);
    else
        return block_refuse(why, why_len, "backing file %s has format '%s', "
                            "which is not supported", file, named);
    return 0;
}

/* Open the backing file that options describe, read-only: 0, or -errno
 * with why. */
static int open_backing_file(struct qcow2 *q,
                             const struct vmdev_block_options *options,
                             const struct block_origin *origin, char *why,
                             size_t why_len)
{
    if (origin->depth > MAX_BACKING_DEPTH)
        return block_refuse(why, why_len, "backing chain deeper than %d "
                            "images (a loop?) at %s", MAX_BACKING_DEPTH,
                            options->path);
    char inner[1024] = ""; /* two paths and a rule */
    q->backing = block_open(options, origin, inner, sizeof(inner));
    if (!q->backing) {
        int err = errno;
        /* A fault further down the chain names its own file. */
        if (strncmp(inner, "backing ", 8) == 0)
            block_refuse(why, why_len, "%s", inner);
        else
            block_refuse(why, why_len, "backing file %s: %s", options->path,
                         inner);
        return -err;
    }
    return 0;
}

/*
 * The image's backing file as the caller's options say (vmdev/block.h):
 * the one they give, none, or the one the header names (name, in
 * format), which is not trusted. Its own chain always follows the names in
 * its headers, with the caller's backing_outside.
 */
static int open_backing(struct qcow2 *q, const struct vmdev_block_options *o,
                        unsigned depth, const char *name, const char *format,
                        char *why, size_t why_len)
{
    struct vmdev_block_options backing = {
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
        .backing = VMDEV_BLOCK_BACKING_FROM_IMAGE,
        .backing_outside = o->backing_outside,
        .log = o->log,
    };
    char full[PATH_MAX + MAX_BACKING_NAME + 2];
    struct block_origin origin = { .depth = depth + 1 };
    int ret;
    switch (o->backing) {
    case VMDEV_BLOCK_BACKING_EXPLICIT:
        backing.path = o->backing_file;
        ret = backing_format_of(o->backing_format, format, o->backing_file,
                                &backing.format, why, why_len);
        break;
    case VMDEV_BLOCK_BACKING_OFF: {
        if (!*name)
            return 0;
        char shown[256];
        return block_refuse(why, why_len, "%s names a backing file ('%s'), "
                            "and backing=off refuses any", o->path,
                            block_printable(name, shown, sizeof(shown)));
    }
    case VMDEV_BLOCK_BACKING_FROM_IMAGE:
    default:
        if (!*name)
            return 0;
        block_backing_path(o->path, name, full, sizeof(full));
        backing.path = full;
        origin.named_in = o->path;
        origin.name = name;
        ret = o->backing_outside ? 0
                                 : block_backing_name_check(o->path, name, why,
                                                      why_len);
        if (!ret)
            ret = backing_format_of(VMDEV_BLOCK_FORMAT_DEFAULT, format, full,
                                    &backing.format, why, why_len);
        break;
    }
    return ret ? ret : open_backing_file(q, &backing, &origin, why, why_len);
}

/* What writing needs that reading does not. */
static int check_writable(const struct vmdev_block *b, const struct header *h,
                          char *why, size_t why_len)
{
    if (h->version < 3)
        return block_refuse(why, why_len, "qcow2 version 2 images open "
                            "read-only (give readonly=on, or upgrade it with "
                            "qemu-img amend -o compat=1.1)");
    if (h->incompatible & INCOMPAT_CORRUPT)
        return block_refuse(why, why_len, "the image is marked corrupt (give "
                            "readonly=on, or repair it with qemu-img check "
                            "-r all)");
    if (h->incompatible & INCOMPAT_DIRTY)
        return block_refuse(why, why_len, "the image was not closed cleanly "
                            "and its refcounts are stale (lazy refcounts); "
                            "qemu-img check -r all repairs it");
    /* Under O_DIRECT, data clusters must not share a page with tables
     * written through the page cache. */
    if (b->cache == VMDEV_BLOCK_CACHE_NONE && h->cluster_bits < 12)
        return block_refuse(why, why_len, "cache=none needs qcow2 clusters "
                            "of at least 4096 bytes (give cache=writeback)");
    return 0;
}

/* Writing: the refcounts, and no autoclear bit left claiming that data we
 * do not keep up to date (bitmaps) still is. */
static int open_writable(struct qcow2 *q, const struct header *h, char *why,
                         size_t why_len)
{
    q->writable = true;
    q->refcount_order = h->refcount_order;
    int ret = qcow2_refcount_open(q, h->reftable_offset, h->reftable_clusters, why,
                            why_len);
    if (!ret)
        ret = qcow2_snapshot_metadata_add(q);
    if (ret)
        return ret;
    if (posix_memalign((void **)&q->zeroes, 4096, q->cluster_size))
        return -ENOMEM;
    memset(q->zeroes, 0, q->cluster_size);
    if (h->autoclear) {
        uint64_t none = 0;
        ret = block_pwrite_exact(q->meta_fd, &none, 8, HDR_AUTOCLEAR);
        if (!ret && fdatasync(q->meta_fd))
            ret = -errno;
        if (ret)
            return block_refuse(why, why_len, "cannot update the header: %s",
                                strerror(-ret));
    }
    return 0;
}

static int open_image(struct vmdev_block *b,
                      const struct vmdev_block_options *o, unsigned depth,
                      char *why, size_t why_len)
{
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    q->log = o->log;
    b->format_state = q;
    b->format = &qcow2_format;
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", b->fd);
    q->meta_fd = open(self, (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    off_t end = q->meta_fd < 0 ? -1 : lseek(q->meta_fd, 0, SEEK_END);
    if (end < 0) {
        int err = -errno;
        block_refuse(why, why_len, "%s", strerror(errno));
        return err;
    }
    q->file_size = (uint64_t)end;

    /* The header and its extensions live in the first cluster. */
    uint8_t first[512];
    if (block_pread_exact(q->meta_fd, first, sizeof(first), 0))
        return block_refuse(why, why_len, "not a qcow2 image (shorter than its header)");
    struct header h = { 0 };
    int ret = parse_header(first, sizeof(first), &h, why, why_len);
    if (!ret && !b->readonly)
        ret = check_writable(b, &h, why, why_len);
    if (ret)
        return ret;
    q->version = h.version;
    q->cluster_bits = h.cluster_bits;
    q->cluster_size = 1ull << h.cluster_bits;
    q->l2_bits = h.cluster_bits - 3;
    q->compression = h.compression_type ? COMPRESSION_ZSTD : COMPRESSION_ZLIB;
    size_t head_len = q->cluster_size < q->file_size ? q->cluster_size
                                                     : q->file_size;
    uint8_t *head = malloc(head_len);
    if (!head)
        return -ENOMEM;
    ret = block_pread_exact(q->meta_fd, head, head_len, 0);
    char backing_format[32] = "", backing_name[MAX_BACKING_NAME + 1] = "";
    if (!ret)
        ret = parse_extensions(head, head_len, h.header_length, backing_format,
                               sizeof(backing_format), why, why_len);
    if (!ret && h.backing_offset) {
        if (h.backing_size == 0 || h.backing_size > MAX_BACKING_NAME ||
            h.backing_offset > head_len ||
            h.backing_size > head_len - h.backing_offset)
            ret = block_refuse(why, why_len, "bad qcow2 backing file name");
        else
            memcpy(backing_name, head + h.backing_offset, h.backing_size);
    }
    free(head);
    if (ret)
        return ret;

    /* The L1 table covers the disk, within QEMU's limit, in the file. */
    uint64_t l2_span = q->cluster_size << q->l2_bits;
    uint64_t needed = h.size / l2_span + (h.size % l2_span != 0);
    if (h.size > (1ull << 62) || h.l1_size < needed ||
        (uint64_t)h.l1_size * 8 > MAX_L1_BYTES ||
        h.l1_offset & (q->cluster_size - 1) ||
        !inside_file(q, h.l1_offset, (uint64_t)h.l1_size * 8))
        return block_refuse(why, why_len, "bad qcow2 L1 table (%u entries at 0x%llx "
                      "for a %llu-byte disk)", h.l1_size,
                      (unsigned long long)h.l1_offset,
                      (unsigned long long)h.size);
    q->l1_size = h.l1_size;
    q->l1_offset = h.l1_offset;
    q->l1 = malloc(((size_t)h.l1_size + 1) * 8);
    if (!q->l1)
        return -ENOMEM;
    if (qcow2_l1_read(q, h.l1_offset, h.l1_size, q->l1))
        return block_refuse(why, why_len, "cannot read the qcow2 L1 table");
    ret = qcow2_snapshot_table_open(q, h.snapshots, h.snapshots_offset, h.size, why,
                              why_len);
    if (ret)
        return ret;

    /* Enough L2 tables for the whole disk, within a memory cap. */
    uint64_t slots = needed ? needed : 1;
    if (slots * q->cluster_size > MAX_L2_CACHE_BYTES)
        slots = MAX_L2_CACHE_BYTES / q->cluster_size;
    q->num_slots = (unsigned)(slots < 4 ? 4 : slots);
    q->slots = calloc(q->num_slots, sizeof(*q->slots));
    if (!q->slots)
        return -ENOMEM;
    for (unsigned i = 0; i < q->num_slots; i++)
        if (!(q->slots[i].table = malloc(q->cluster_size)))
            return -ENOMEM;

    ret = open_backing(q, o, depth, backing_name, backing_format, why,
                       why_len);
    if (ret)
        return ret;
    if (!b->readonly && (ret = open_writable(q, &h, why, why_len)))
        return ret;
    b->size = h.size;
    return 0;
}

int qcow2_open(struct vmdev_block *b, const struct vmdev_block_options *o,
               unsigned depth, char *why, size_t why_len)
{
    int ret = open_image(b, o, depth, why, why_len);
    if (ret)
        qcow2_close(b);
    return ret;
}
