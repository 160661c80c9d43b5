/* SPDX-License-Identifier: MIT */
/*
 * qcow2 reads. A read is split into extents of clusters of one kind: data
 * clusters contiguous in the file go to the engine as one read into a
 * slice of the request's buffers; unallocated ones go to the backing
 * image, or read as zeroes; compressed ones are read and inflated here.
 *
 * The synchronous reads serve copy-on-write (the old content around a
 * partial write) and a qcow2 image's own backing chain when it copies.
 */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2.h"

/* An extent in flight, with its slice of the request's buffers. */
struct qcow2_extent {
    struct qcow2_request *parent;
    uint64_t len;
    struct vmdev_io io;             /* a data read or write */
    struct vmdev_block_request sub; /* a backing read */
    unsigned iovcnt;
    struct iovec iov[];
};

void qcow2_request_fail(struct qcow2_request *r, int64_t result)
{
    int64_t none = 0;
    atomic_compare_exchange_strong(&r->error, &none, result);
}

void qcow2_request_put(struct qcow2_request *r)
{
    if (atomic_fetch_sub(&r->pending, 1) != 1)
        return;
    struct vmdev_block_request *req = r->req;
    int64_t error = atomic_load(&r->error);
    int64_t result = error ? error
                     : req->op == VMDEV_IO_READ || req->op == VMDEV_IO_WRITE
                         ? (int64_t)r->len
                         : 0;
    free(r);
    block_request_done(req, result);
}

static void extent_finished(struct qcow2_extent *e, int64_t result)
{
    struct qcow2_request *r = e->parent;
    if (result < 0 || (uint64_t)result != e->len)
        qcow2_request_fail(r, result < 0 ? result : -EIO);
    free(e);
    qcow2_request_put(r);
}

static void extent_io_done(struct vmdev_io *io, int64_t result)
{
    extent_finished(io->opaque, result);
}

static void backing_read_done(struct vmdev_block_request *sub, int64_t result)
{
    extent_finished(sub->opaque, result);
}

void qcow2_each_span(const struct vmdev_block_request *req, uint64_t offset,
               uint64_t len, void (*visit)(void *ctx, uint8_t *p, size_t n),
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

static void count_iovec(void *ctx, uint8_t *p, size_t n)
{
    (void)p;
    (void)n;
    ++*(unsigned *)ctx;
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
    qcow2_each_span(req, offset, len, zero_span, NULL);
}

static void copy_in(const struct vmdev_block_request *req, uint64_t offset,
                    const uint8_t *from, uint64_t len)
{
    qcow2_each_span(req, offset, len, copy_span, &from);
}

/*
 * An extent with room for just the iovecs its slice covers: a request
 * may split into an extent per cluster, and the slices of all of them
 * together are at most the request's iovecs plus one per extent, where
 * room for all the request's iovecs in each would grow with length
 * times iovecs.
 */
struct qcow2_extent *qcow2_new_extent(struct qcow2_request *r, uint64_t at,
                                uint64_t len)
{
    struct vmdev_block_request *req = r->req;
    unsigned pieces = 0;
    qcow2_each_span(req, at, len, count_iovec, &pieces);
    struct qcow2_extent *e = calloc(1, sizeof(*e) +
                                           pieces * sizeof(struct iovec));
    if (!e)
        return NULL;
    e->parent = r;
    e->len = len;
    struct iov_list slice = { e->iov, 0 };
    qcow2_each_span(req, at, len, add_iovec, &slice);
    e->iovcnt = slice.count;
    return e;
}

struct qcow2_extent *qcow2_new_zero_extent(struct qcow2_request *r,
                                     const void *zeroes, uint64_t len)
{
    struct qcow2_extent *e = calloc(1, sizeof(*e) + sizeof(struct iovec));
    if (!e)
        return NULL;
    e->parent = r;
    e->len = len;
    e->iov[0] = (struct iovec){ (void *)zeroes, len };
    e->iovcnt = 1;
    return e;
}

int qcow2_submit_extent_io(struct qcow2_request *r, struct qcow2_extent *e,
                     enum vmdev_io_op op, int fd, uint64_t host)
{
    e->io = (struct vmdev_io){ .op = op, .fd = fd, .offset = host,
                               .iov = e->iov, .iovcnt = e->iovcnt,
                               .done = extent_io_done, .opaque = e };
    atomic_fetch_add(&r->pending, 1);
    int ret = vmdev_io_engine_submit(r->req->engine, &e->io);
    if (ret) {
        atomic_fetch_sub(&r->pending, 1); /* the dispatch's still holds */
        free(e);
    } else {
        r->dispatched_any = true;
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
    struct qcow2_extent *e = qcow2_new_extent(r, at, from_backing);
    if (!e)
        return -ENOMEM;
    e->sub = (struct vmdev_block_request){
        .op = VMDEV_IO_READ, .offset = guest, .iov = e->iov,
        .iovcnt = e->iovcnt, .done = backing_read_done, .opaque = e,
    };
    atomic_fetch_add(&r->pending, 1);
    int ret = vmdev_block_submit(q->backing, r->req->engine, &e->sub);
    if (ret) {
        atomic_fetch_sub(&r->pending, 1); /* the dispatch's still holds */
        free(e);
    } else {
        r->dispatched_any = true;
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

/* The whole compressed cluster with this descriptor, into out. */
static int read_compressed(struct qcow2 *q, uint64_t descriptor, uint8_t *out)
{
    uint64_t offset, sectors;
    compressed_span(q, descriptor, &offset, &sectors);
    uint64_t in_len = sectors * 512 - (offset & 511);
    if (offset >= q->file_size)
        return -EIO;
    /* The last cluster's sectors may run past the end of the file. */
    if (in_len > q->file_size - offset)
        in_len = q->file_size - offset;
    uint8_t *in = malloc(in_len);
    int ret = in ? block_pread_exact(q->meta_fd, in, in_len, offset) : -ENOMEM;
    if (!ret)
        ret = decompress(q, in, in_len, out);
    free(in);
    return ret;
}

/*
 * A compressed cluster's part, read under the lock: a write to another part
 * of the cluster (from another queue) may replace and release it between
 * mapping and reading, so it is mapped again and read whatever it now is.
 */
static int read_compressed_into(struct qcow2_request *r, struct qcow2 *q,
                                uint64_t guest, uint64_t at, uint64_t len)
{
    uint8_t *part = malloc(len);
    if (!part)
        return -ENOMEM;
    pthread_mutex_lock(&q->lock);
    struct mapping m;
    int ret = qcow2_map_cluster_locked(q, guest, &m);
    if (!ret)
        ret = qcow2_read_cluster_sync(q, &m, guest, part, len);
    pthread_mutex_unlock(&q->lock);
    if (!ret)
        copy_in(r->req, at, part, len);
    free(part);
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

int qcow2_dispatch_read(struct qcow2_request *r, struct vmdev_block *b,
                  struct qcow2 *q)
{
    struct vmdev_block_request *req = r->req;
    uint64_t guest = req->offset, end = req->offset + r->len, at = 0;
    while (guest < end) {
        struct mapping m, next;
        int ret = qcow2_map_cluster(q, guest, &m);
        if (ret)
            return ret;
        uint64_t in_cluster = guest & (q->cluster_size - 1);
        uint64_t len = q->cluster_size - in_cluster;
        uint64_t clusters = 1;
        /* Whole clusters of the same kind after it join the extent. */
        while (guest + len < end && (ret = qcow2_map_cluster(q, guest + len, &next)) == 0 &&
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
        case EXTENT_DATA: {
            struct qcow2_extent *e = qcow2_new_extent(r, at, len);
            ret = e ? qcow2_submit_extent_io(r, e, VMDEV_IO_READ, b->fd,
                                       m.host + in_cluster)
                    : -ENOMEM;
            break;
        }
        case EXTENT_COMPRESSED:
            ret = read_compressed_into(r, q, guest, at, len);
            break;
        }
        if (ret)
            return ret;
        guest += len;
        at += len;
    }
    return 0;
}

int qcow2_read_cluster_sync(struct qcow2 *q, const struct mapping *m, uint64_t guest,
                      uint8_t *buf, uint64_t len)
{
    uint64_t in_cluster = guest & (q->cluster_size - 1);
    switch (m->kind) {
    case EXTENT_ZERO:
        memset(buf, 0, len);
        return 0;
    case EXTENT_DATA:
        return block_pread_exact(q->meta_fd, buf, len, m->host + in_cluster);
    case EXTENT_COMPRESSED: {
        uint8_t *out = malloc(q->cluster_size);
        int ret = out ? read_compressed(q, m->compressed, out) : -ENOMEM;
        if (!ret)
            memcpy(buf, out + in_cluster, len);
        free(out);
        return ret;
    }
    case EXTENT_UNALLOCATED:
        break;
    }
    uint64_t backing_size = q->backing ? vmdev_block_size(q->backing) : 0;
    uint64_t from_backing = guest >= backing_size ? 0
                            : backing_size - guest < len ? backing_size - guest
                                                         : len;
    memset(buf + from_backing, 0, len - from_backing);
    return from_backing ? block_read_sync(q->backing, guest, buf, from_backing)
                        : 0;
}

int qcow2_read_sync(struct vmdev_block *b, uint64_t offset, void *buf,
                    uint64_t len)
{
    struct qcow2 *q = b->format_state;
    uint8_t *to = buf;
    while (len) {
        uint64_t in_cluster = offset & (q->cluster_size - 1);
        uint64_t n = q->cluster_size - in_cluster < len
                         ? q->cluster_size - in_cluster
                         : len;
        struct mapping m;
        int ret = qcow2_map_cluster(q, offset, &m);
        if (!ret)
            ret = qcow2_read_cluster_sync(q, &m, offset, to, n);
        if (ret)
            return ret;
        offset += n;
        to += n;
        len -= n;
    }
    return 0;
}
