/* SPDX-License-Identifier: MIT */
/*
 * qcow2 images (QEMU's docs/interop/qcow2.txt), versions 2 and 3, read
 * only for now: the two-level cluster map (L1 in memory, L2 tables
 * through a cache sized to cover the disk), data clusters, zero clusters,
 * compressed clusters (deflate and zstd) and a chain of backing images.
 *
 * Everything in the image is hostile: the header, the tables and every
 * entry are checked before use, and a bad one fails the request (EIO)
 * without touching anything outside the image.
 *
 * A read is split into extents of clusters of one kind: data clusters
 * contiguous in the file go to the engine as one read into a slice of the
 * request's buffers; unallocated ones go to the backing image, or read as
 * zeroes; compressed ones are read and inflated here. Metadata is read
 * synchronously on the calling thread (an I/O thread) through a second,
 * buffered descriptor; with the L2 cache covering the disk that is once
 * per table.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "format.h"

#define QCOW2_MAGIC 0x514649fbu
#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21
/* As QEMU: at most 32 MiB of L1 table and 1023 bytes of backing name. */
#define MAX_L1_BYTES (32u << 20)
#define MAX_BACKING_NAME 1023
#define MAX_BACKING_DEPTH 16
/* The L2 cache covers the disk, up to this much memory. */
#define MAX_L2_CACHE_BYTES (32u << 20)

/* Incompatible feature bits (qcow2.txt, header). */
#define INCOMPAT_DIRTY (1ull << 0)
#define INCOMPAT_CORRUPT (1ull << 1)
#define INCOMPAT_DATA_FILE (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2 (1ull << 4)
#define INCOMPAT_KNOWN (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | \
                        INCOMPAT_COMPRESSION | INCOMPAT_EXTL2)

/* Header extension types. */
#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acau

/* Table entries. */
#define L1_OFFSET_MASK 0x00fffffffffffe00ull
#define L2_COPIED (1ull << 63)
#define L2_COMPRESSED (1ull << 62)
#define L2_OFFSET_MASK 0x00fffffffffffe00ull
#define L2_ZERO 1ull
/* Bits 1-8 of a standard L2 entry are reserved. */
#define L2_RESERVED 0x1feull

enum compression { COMPRESSION_ZLIB, COMPRESSION_ZSTD };

struct l2_slot {
    uint64_t offset; /* of the table in the file; 0: empty */
    uint64_t last_use;
    uint64_t *table; /* big-endian, as on disk */
};

struct qcow2 {
    uint32_t version;
    int meta_fd; /* buffered: header, tables, compressed clusters */
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits; /* log2 of the entries in an L2 table */
    uint64_t file_size;
    enum compression compression;
    uint32_t l1_size;
    uint64_t *l1; /* host-endian */
    struct vmdev_block *backing; /* NULL: unallocated reads as zeroes */

    pthread_mutex_t lock; /* the L2 cache */
    struct l2_slot *slots;
    unsigned num_slots;
    uint64_t use_clock;
};

/* What a guest cluster is. */
enum extent_kind { EXTENT_UNALLOCATED, EXTENT_ZERO, EXTENT_DATA,
                   EXTENT_COMPRESSED };

struct mapping {
    enum extent_kind kind;
    uint64_t host;       /* EXTENT_DATA: the cluster's offset in the file */
    uint64_t compressed; /* EXTENT_COMPRESSED: the descriptor */
};

static uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

/* All of [offset, offset + len) from the file, or -EIO. */
static int read_exact(int fd, void *buf, size_t len, uint64_t offset)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static bool inside_file(const struct qcow2 *q, uint64_t offset, uint64_t len)
{
    return offset <= q->file_size && len <= q->file_size - offset;
}

/* --- The L2 cache (q->lock held) --- */

static const uint64_t *l2_table(struct qcow2 *q, uint64_t offset, int *err)
{
    struct l2_slot *victim = &q->slots[0];
    for (unsigned i = 0; i < q->num_slots; i++) {
        struct l2_slot *s = &q->slots[i];
        if (s->offset == offset) {
            s->last_use = ++q->use_clock;
            return s->table;
        }
        if (s->last_use < victim->last_use)
            victim = s;
    }
    /* qcow2.txt: L2 tables are cluster-aligned, inside the file. */
    if (offset & (q->cluster_size - 1) ||
        !inside_file(q, offset, q->cluster_size)) {
        *err = -EIO;
        return NULL;
    }
    victim->offset = 0;
    *err = read_exact(q->meta_fd, victim->table, q->cluster_size, offset);
    if (*err)
        return NULL;
    victim->offset = offset;
    victim->last_use = ++q->use_clock;
    return victim->table;
}

/* What the guest cluster holding byte `offset` is. */
static int map_cluster(struct qcow2 *q, uint64_t offset, struct mapping *m)
{
    uint64_t cluster = offset >> q->cluster_bits;
    uint64_t l1_index = cluster >> q->l2_bits;
    uint64_t l2_index = cluster & ((1ull << q->l2_bits) - 1);
    *m = (struct mapping){ .kind = EXTENT_UNALLOCATED };
    if (l1_index >= q->l1_size)
        return -EIO;
    uint64_t l2_offset = q->l1[l1_index] & L1_OFFSET_MASK;
    if (!l2_offset)
        return 0;
    int err = 0;
    pthread_mutex_lock(&q->lock);
    const uint64_t *table = l2_table(q, l2_offset, &err);
    uint64_t entry = table ? be64toh(table[l2_index]) : 0;
    pthread_mutex_unlock(&q->lock);
    if (err)
        return err;
    if (entry & L2_COMPRESSED) {
        m->kind = EXTENT_COMPRESSED;
        m->compressed = entry & ~(L2_COPIED | L2_COMPRESSED);
        return 0;
    }
    uint64_t host = entry & L2_OFFSET_MASK;
    if (entry & L2_ZERO) {
        /* Version 2 has no zero flag: the bit is reserved there. */
        if (q->version < 3)
            return -EIO;
        m->kind = EXTENT_ZERO;
        return 0;
    }
    if (!host)
        return 0;
    /* A data cluster: aligned, inside the file, reserved bits clear. */
    if (entry & L2_RESERVED || host & (q->cluster_size - 1) ||
        !inside_file(q, host, q->cluster_size))
        return -EIO;
    m->kind = EXTENT_DATA;
    m->host = host;
    return 0;
}

/* --- Reads --- */

/* A request being served in extents. */
struct qcow2_request {
    struct vmdev_block_request *req;
    uint64_t len;     /* a read's: its buffers' */
    unsigned pending; /* extents in flight, + 1 while dispatching */
    int64_t error;
    struct vmdev_io nop; /* carries the completion when nothing was async */
};

/* An extent in flight, with its slice of the request's buffers. */
struct qcow2_extent {
    struct qcow2_request *parent;
    uint64_t len;
    struct vmdev_io io;               /* a data read */
    struct vmdev_block_request sub;   /* a backing read */
    unsigned iovcnt;
    struct iovec iov[];
};

static void request_put(struct qcow2_request *r)
{
    if (--r->pending)
        return;
    struct vmdev_block_request *req = r->req;
    int64_t result = r->error ? r->error : (int64_t)r->len;
    free(r);
    block_request_done(req, result);
}

static void nop_done(struct vmdev_io *io, int64_t result)
{
    (void)result;
    request_put(io->opaque);
}

static void extent_finished(struct qcow2_extent *e, int64_t result)
{
    struct qcow2_request *r = e->parent;
    if (result < 0 || (uint64_t)result != e->len)
        r->error = r->error ? r->error : (result < 0 ? result : -EIO);
    free(e);
    request_put(r);
}

static void data_read_done(struct vmdev_io *io, int64_t result)
{
    extent_finished(io->opaque, result);
}

static void backing_read_done(struct vmdev_block_request *sub, int64_t result)
{
    extent_finished(sub->opaque, result);
}

/* Visit [offset, offset + len) of the request's data, buffer by buffer. */
static void each_span(const struct vmdev_block_request *req, uint64_t offset,
                      uint64_t len, void (*visit)(void *ctx, uint8_t *p,
                                                  size_t n),
                      void *ctx)
{
    for (unsigned i = 0; i < req->data_iovcnt && len; i++) {
        const struct iovec *v = &req->data_iov[i];
        if (offset >= v->iov_len) {
            offset -= v->iov_len;
            continue;
        }
        size_t take = v->iov_len - offset < len ? v->iov_len - offset : len;
        visit(ctx, (uint8_t *)v->iov_base + offset, take);
        len -= take;
        offset = 0;
    }
}

struct iov_list {
    struct iovec *iov;
    unsigned count;
};

static void add_iovec(void *ctx, uint8_t *p, size_t n)
{
    struct iov_list *l = ctx;
    l->iov[l->count++] = (struct iovec){ p, n };
}

static void zero_span(void *ctx, uint8_t *p, size_t n)
{
    (void)ctx;
    memset(p, 0, n);
}

static void copy_span(void *ctx, uint8_t *p, size_t n)
{
    const uint8_t **from = ctx;
    memcpy(p, *from, n);
    *from += n;
}

static void fill_zero(const struct vmdev_block_request *req, uint64_t offset,
                      uint64_t len)
{
    each_span(req, offset, len, zero_span, NULL);
}

static void copy_in(const struct vmdev_block_request *req, uint64_t offset,
                    const uint8_t *from, uint64_t len)
{
    each_span(req, offset, len, copy_span, &from);
}

static struct qcow2_extent *new_extent(struct qcow2_request *r,
                                       uint64_t at, uint64_t len)
{
    struct vmdev_block_request *req = r->req;
    struct qcow2_extent *e = calloc(1, sizeof(*e) + req->data_iovcnt *
                                                        sizeof(struct iovec));
    if (!e)
        return NULL;
    e->parent = r;
    e->len = len;
    struct iov_list slice = { e->iov, 0 };
    each_span(req, at, len, add_iovec, &slice);
    e->iovcnt = slice.count;
    return e;
}

static int read_data(struct qcow2_request *r, struct vmdev_block *b,
                     uint64_t at, uint64_t host, uint64_t len)
{
    struct qcow2_extent *e = new_extent(r, at, len);
    if (!e)
        return -ENOMEM;
    e->io = (struct vmdev_io){ .op = VMDEV_IO_READ, .fd = b->fd,
                               .offset = host, .iov = e->iov,
                               .iovcnt = e->iovcnt, .done = data_read_done,
                               .opaque = e };
    r->pending++;
    int ret = vmdev_io_engine_submit(r->req->engine, &e->io);
    if (ret) {
        r->pending--;
        free(e);
    }
    return ret;
}

/* Unallocated clusters: the backing image's bytes, zeroes past its end. */
static int read_backing(struct qcow2_request *r, struct qcow2 *q,
                        uint64_t guest, uint64_t at, uint64_t len)
{
    uint64_t backing_size = q->backing ? vmdev_block_size(q->backing) : 0;
    uint64_t from_backing = guest >= backing_size ? 0
                            : backing_size - guest < len ? backing_size - guest
                                                         : len;
    if (from_backing < len)
        fill_zero(r->req, at + from_backing, len - from_backing);
    if (!from_backing)
        return 0;
    struct qcow2_extent *e = new_extent(r, at, from_backing);
    if (!e)
        return -ENOMEM;
    e->sub = (struct vmdev_block_request){
        .op = VMDEV_IO_READ, .offset = guest, .iov = e->iov,
        .iovcnt = e->iovcnt, .done = backing_read_done, .opaque = e,
    };
    r->pending++;
    int ret = vmdev_block_submit(q->backing, r->req->engine, &e->sub);
    if (ret) {
        r->pending--;
        free(e);
    }
    return ret;
}

/* Inflate one compressed cluster into out (cluster_size bytes). */
static int decompress(const struct qcow2 *q, const uint8_t *in, size_t in_len,
                      uint8_t *out)
{
    if (q->compression == COMPRESSION_ZSTD) {
        ZSTD_DCtx *dctx = ZSTD_createDCtx();
        if (!dctx)
            return -ENOMEM;
        ZSTD_inBuffer src = { in, in_len, 0 };
        ZSTD_outBuffer dst = { out, q->cluster_size, 0 };
        size_t ret = 0;
        /* The compressed size is rounded up to sectors: stop once the
         * cluster is whole, whatever follows. */
        while (dst.pos < dst.size && src.pos < src.size) {
            ret = ZSTD_decompressStream(dctx, &dst, &src);
            if (ZSTD_isError(ret) || (ret && src.pos == src.size))
                break;
        }
        ZSTD_freeDCtx(dctx);
        return !ZSTD_isError(ret) && dst.pos == dst.size ? 0 : -EIO;
    }
    /* Raw deflate with a 4 KiB window (qcow2.txt, compression type 0). */
    z_stream s = { .next_in = (Bytef *)in, .avail_in = (uInt)in_len,
                   .next_out = out, .avail_out = (uInt)q->cluster_size };
    if (inflateInit2(&s, -12) != Z_OK)
        return -ENOMEM;
    int ret = inflate(&s, Z_FINISH);
    bool whole = s.avail_out == 0 && (ret == Z_STREAM_END || ret == Z_BUF_ERROR ||
                                      ret == Z_OK);
    inflateEnd(&s);
    return whole ? 0 : -EIO;
}

static int read_compressed(struct qcow2_request *r, struct qcow2 *q,
                           uint64_t descriptor, uint64_t in_cluster,
                           uint64_t at, uint64_t len)
{
    /* qcow2.txt: the low 62 - (cluster_bits - 8) bits are the offset, the
     * rest the count of 512-byte sectors after the first. */
    unsigned offset_bits = 62 - (q->cluster_bits - 8);
    uint64_t offset = descriptor & ((1ull << offset_bits) - 1);
    uint64_t sectors = descriptor >> offset_bits;
    uint64_t in_len = (sectors + 1) * 512 - (offset & 511);
    if (offset >= q->file_size)
        return -EIO;
    /* The last cluster's sectors may run past the end of the file. */
    if (in_len > q->file_size - offset)
        in_len = q->file_size - offset;
    uint8_t *in = malloc(in_len), *out = malloc(q->cluster_size);
    int ret = in && out ? read_exact(q->meta_fd, in, in_len, offset) : -ENOMEM;
    if (!ret)
        ret = decompress(q, in, in_len, out);
    if (!ret)
        copy_in(r->req, at, out + in_cluster, len);
    free(in);
    free(out);
    return ret;
}

/* Whether the cluster at `next` continues an extent that mapped to m. */
static bool continues(const struct qcow2 *q, const struct mapping *m,
                      const struct mapping *next, uint64_t clusters)
{
    if (next->kind != m->kind || m->kind == EXTENT_COMPRESSED)
        return false;
    return m->kind != EXTENT_DATA ||
           next->host == m->host + clusters * q->cluster_size;
}

static int dispatch_read(struct qcow2_request *r, struct vmdev_block *b,
                         struct qcow2 *q)
{
    struct vmdev_block_request *req = r->req;
    uint64_t guest = req->offset, end = req->offset + r->len, at = 0;
    while (guest < end) {
        struct mapping m, next;
        int ret = map_cluster(q, guest, &m);
        if (ret)
            return ret;
        uint64_t in_cluster = guest & (q->cluster_size - 1);
        uint64_t len = q->cluster_size - in_cluster;
        uint64_t clusters = 1;
        /* Whole clusters of the same kind after it join the extent. */
        while (guest + len < end && (ret = map_cluster(q, guest + len, &next)) == 0 &&
               continues(q, &m, &next, clusters)) {
            len += q->cluster_size;
            clusters++;
        }
        if (ret)
            return ret;
        if (len > end - guest)
            len = end - guest;
        switch (m.kind) {
        case EXTENT_ZERO:
            fill_zero(req, at, len);
            break;
        case EXTENT_UNALLOCATED:
            ret = read_backing(r, q, guest, at, len);
            break;
        case EXTENT_DATA:
            ret = read_data(r, b, at, m.host + in_cluster, len);
            break;
        case EXTENT_COMPRESSED:
            ret = read_compressed(r, q, m.compressed, in_cluster, at, len);
            break;
        }
        if (ret)
            return ret;
        guest += len;
        at += len;
    }
    return 0;
}

static int qcow2_submit(struct vmdev_block *b, struct vmdev_block_request *req)
{
    struct qcow2 *q = b->format_state;
    struct qcow2_request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->req = req;
    r->pending = 1;
    /* Read-only: a flush has nothing to do. */
    if (req->op == VMDEV_IO_READ) {
        for (unsigned i = 0; i < req->data_iovcnt; i++)
            r->len += req->data_iov[i].iov_len;
        int ret = dispatch_read(r, b, q);
        if (ret)
            r->error = ret;
    } else if (req->op != VMDEV_IO_FLUSH) {
        r->error = -EROFS;
    }
    if (r->pending > 1) {
        /* Extents are in flight and finish on the engine's thread. */
        request_put(r);
        return 0;
    }
    /* Nothing went to the engine: it still reports the completion. */
    r->nop = (struct vmdev_io){ .op = VMDEV_IO_NOP, .fd = b->fd,
                                .done = nop_done, .opaque = r };
    int ret = vmdev_io_engine_submit(req->engine, &r->nop);
    if (ret)
        free(r);
    return ret;
}

static void qcow2_close(struct vmdev_block *b)
{
    struct qcow2 *q = b->format_state;
    if (!q)
        return;
    vmdev_block_close(q->backing);
    for (unsigned i = 0; q->slots && i < q->num_slots; i++)
        free(q->slots[i].table);
    free(q->slots);
    free(q->l1);
    if (q->meta_fd >= 0)
        close(q->meta_fd);
    pthread_mutex_destroy(&q->lock);
    free(q);
    b->format_state = NULL;
}

static const struct block_format_ops qcow2_format = { "qcow2", qcow2_submit,
                                                      qcow2_close };

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
    uint64_t incompatible;
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

/*
 * The backing file, relative to the image's directory unless absolute, in
 * the format the image names. Without a name there is no probing: a raw
 * file that a guest once wrote a qcow2 header into must not be parsed.
 */
static int open_backing(struct qcow2 *q, const char *path, const char *name,
                        const char *format, unsigned depth, char *why,
                        size_t why_len)
{
    char dir[PATH_MAX], full[PATH_MAX + MAX_BACKING_NAME + 2];
    snprintf(dir, sizeof(dir), "%s", path);
    if (name[0] == '/')
        snprintf(full, sizeof(full), "%s", name);
    else
        snprintf(full, sizeof(full), "%s/%s", dirname(dir), name);
    if (depth >= MAX_BACKING_DEPTH)
        return block_refuse(why, why_len, "backing chain deeper than %d images "
                      "(a loop?) at %s", MAX_BACKING_DEPTH, full);
    struct vmdev_block_options o = { .path = full,
                                     .cache = VMDEV_BLOCK_CACHE_WRITEBACK,
                                     .readonly = true };
    if (strcmp(format, "qcow2") == 0)
        o.format = VMDEV_BLOCK_FORMAT_QCOW2;
    else if (strcmp(format, "raw") == 0)
        o.format = VMDEV_BLOCK_FORMAT_RAW;
    else if (!*format)
        return block_refuse(why, why_len, "the image does not say the format of "
                      "its backing file %s (qemu-img rebase -u -F FORMAT "
                      "adds it)", full);
    else
        return block_refuse(why, why_len, "backing file %s has format '%s', which "
                      "is not supported", full, format);
    char inner[512] = "";
    q->backing = block_open(&o, depth + 1, inner, sizeof(inner));
    if (!q->backing) {
        int err = errno;
        /* A fault further down the chain names its own file. */
        if (strncmp(inner, "backing ", 8) == 0)
            block_refuse(why, why_len, "%s", inner);
        else
            block_refuse(why, why_len, "backing file %s: %s", full, inner);
        return -err;
    }
    return 0;
}

static int open_image(struct vmdev_block *b, const char *path, unsigned depth,
                      char *why, size_t why_len)
{
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    b->format_state = q;
    b->format = &qcow2_format;
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", b->fd);
    q->meta_fd = open(self, O_RDONLY | O_CLOEXEC);
    off_t end = q->meta_fd < 0 ? -1 : lseek(q->meta_fd, 0, SEEK_END);
    if (end < 0) {
        int err = -errno;
        block_refuse(why, why_len, "%s", strerror(errno));
        return err;
    }
    q->file_size = (uint64_t)end;

    /* The header and its extensions live in the first cluster. */
    uint8_t first[512];
    if (read_exact(q->meta_fd, first, sizeof(first), 0))
        return block_refuse(why, why_len, "not a qcow2 image (shorter than its header)");
    struct header h = { 0 };
    int ret = parse_header(first, sizeof(first), &h, why, why_len);
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
    ret = read_exact(q->meta_fd, head, head_len, 0);
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
    q->l1 = malloc(((size_t)h.l1_size + 1) * 8);
    if (!q->l1)
        return -ENOMEM;
    if (read_exact(q->meta_fd, q->l1, (size_t)h.l1_size * 8, h.l1_offset))
        return block_refuse(why, why_len, "cannot read the qcow2 L1 table");
    for (uint32_t i = 0; i < h.l1_size; i++)
        q->l1[i] = be64toh(q->l1[i]);

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

    if (backing_name[0]) {
        ret = open_backing(q, path, backing_name, backing_format, depth, why,
                           why_len);
        if (ret)
            return ret;
    }
    b->size = h.size;
    return 0;
}

int qcow2_open(struct vmdev_block *b, const char *path, unsigned depth,
               char *why, size_t why_len)
{
    int ret = open_image(b, path, depth, why, why_len);
    if (ret)
        qcow2_close(b);
    return ret;
}
