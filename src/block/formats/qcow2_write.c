/* SPDX-License-Identifier: MIT */
/*
 * qcow2 writes (version 3 images). A write is split into runs of clusters
 * of one kind:
 *
 *  - clusters this image alone owns (COPIED: refcount 1) are written in
 *    place, through the engine, like a raw image;
 *  - any other (unallocated, zero, compressed, shared with a snapshot)
 *    gets new clusters at the end of the file: the old content around the
 *    write is copied in (from the backing image, the compressed cluster,
 *    the shared one, or zeroes), the whole clusters are written, and only
 *    then does the L2 table, in the cache, point at them. The old clusters
 *    lose their reference once that table is durable.
 *
 * Allocating runs are written synchronously under q->lock, on the I/O
 * thread: another request cannot see or write a cluster half-allocated.
 *
 * Write-zeroes turns whole clusters into zero clusters (keeping the
 * cluster allocated unless unmap allows dropping it) and writes zeroes
 * into partial ones; discard drops whole clusters, leaving them reading
 * as zeroes (a zero cluster when a backing image would show through).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcow2.h"

/* At most this much is copied and written per allocating run. */
#define MAX_RUN_BYTES (4u << 20)

static bool in_place(const struct mapping *m)
{
    return m->kind == EXTENT_DATA && m->copied;
}

/* What an entry held that loses its reference when it is replaced. */
static bool holds_clusters(uint64_t entry)
{
    return (entry & L2_COMPRESSED) || (entry & L2_OFFSET_MASK);
}

/* Drop the references the replaced entries held, once the tables that no
 * longer point there are durable. */
static int release_replaced(struct qcow2 *q, const uint64_t *old, unsigned n)
{
    if (!n)
        return 0;
    int ret = qcow2_write_tables(q);
    if (!ret && fdatasync(q->meta_fd))
        ret = -errno;
    for (unsigned i = 0; i < n && !ret; i++)
        ret = qcow2_release_entry(q, old[i]);
    return ret;
}

struct gather {
    uint8_t *to;
};

static void gather_span(void *ctx, uint8_t *p, size_t n)
{
    struct gather *g = ctx;
    memcpy(g->to, p, n);
    g->to += n;
}

/*
 * New clusters for the run of n clusters starting at the one holding
 * `guest`, with the request's [at, at + len) (or zeroes) written at guest
 * and the old content around it. q->lock held.
 */
static int write_allocating(struct qcow2_request *r, struct vmdev_block *b,
                            struct qcow2 *q, uint64_t guest, uint64_t at,
                            uint64_t len, unsigned n, bool zeroes)
{
    uint64_t run_start = guest & ~(q->cluster_size - 1);
    uint64_t run_len = (uint64_t)n * q->cluster_size;
    uint64_t head = guest - run_start, tail = run_start + run_len - guest - len;
    struct l2_slot *slot;
    unsigned index;
    int ret = qcow2_l2_for_write(q, run_start, &slot, &index);
    if (ret)
        return ret;
    struct mapping first, last;
    ret = qcow2_map_cluster_locked(q, run_start, &first);
    if (!ret)
        ret = qcow2_map_cluster_locked(q, run_start + run_len - 1, &last);
    if (ret)
        return ret;

    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, run_len))
        return -ENOMEM;
    if (head)
        ret = qcow2_read_cluster_sync(q, &first, run_start, buf, head);
    if (!ret && tail)
        ret = qcow2_read_cluster_sync(q, &last, guest + len, buf + run_len - tail,
                                tail);
    if (!ret && zeroes) {
        memset(buf + head, 0, len);
    } else if (!ret) {
        struct gather g = { buf + head };
        qcow2_each_span(r->req, at, len, gather_span, &g);
    }

    /* A zero cluster that kept its own cluster is written over in place:
     * until the table changes, it still reads as zeroes. */
    bool reuse = n == 1 && first.kind == EXTENT_ZERO && first.host &&
                 first.copied;
    uint64_t host = first.host;
    if (!ret && reuse && qcow2_overlaps_metadata(q, host, q->cluster_size))
        ret = qcow2_mark_corrupt(q, "an L2 entry points a zero cluster at the "
                              "image's metadata");
    if (!ret && !reuse)
        ret = qcow2_alloc_clusters(q, n, &host);
    if (!ret)
        ret = block_pwrite_exact(b->fd, buf, run_len, host);
    free(buf);
    if (ret)
        return ret;

    uint64_t *old = malloc(n * sizeof(*old));
    if (!old)
        return -ENOMEM;
    unsigned released = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t entry = be64toh(slot->table[index + i]);
        if (!reuse && holds_clusters(entry))
            old[released++] = entry;
        l2_set(slot, index + i, (host + i * q->cluster_size) | L2_COPIED);
    }
    ret = release_replaced(q, old, released);
    free(old);
    return ret;
}

/*
 * Write [guest, guest + len) from the request's data at `at`, or zeroes.
 * In-place runs go to the engine; allocating ones are done here.
 */
static int write_range(struct qcow2_request *r, struct vmdev_block *b,
                       struct qcow2 *q, uint64_t guest, uint64_t at,
                       uint64_t len, bool zeroes)
{
    uint64_t end = guest + len;
    unsigned max_run = MAX_RUN_BYTES >> q->cluster_bits;
    if (!max_run)
        max_run = 1;
    while (guest < end) {
        pthread_mutex_lock(&q->lock);
        struct mapping m = { .kind = EXTENT_UNALLOCATED }, next;
        int ret = q->corrupt ? -EIO : qcow2_map_cluster_locked(q, guest, &m);
        uint64_t in_cluster = guest & (q->cluster_size - 1);
        uint64_t span = q->cluster_size - in_cluster;
        unsigned clusters = 1;
        uint64_t table_end = ((guest >> (q->cluster_bits + q->l2_bits)) + 1)
                             << (q->cluster_bits + q->l2_bits);
        bool place = in_place(&m);
        /* Whole clusters after it, of the same kind, join the run: in
         * place only where contiguous in the file; allocating within one
         * L2 table and a bounded copy. */
        while (!ret && guest + span < end) {
            if (!place && (guest + span >= table_end || clusters >= max_run))
                break;
            /* Zeroes in place come from one cluster's worth of them. */
            if (place && zeroes)
                break;
            ret = qcow2_map_cluster_locked(q, guest + span, &next);
            if (ret || in_place(&next) != place ||
                (place && next.host != m.host + clusters * q->cluster_size))
                break;
            span += q->cluster_size;
            clusters++;
        }
        if (span > end - guest)
            span = end - guest;
        if (!ret && place) {
            uint64_t host = m.host + in_cluster;
            if (qcow2_overlaps_metadata(q, host, span))
                ret = qcow2_mark_corrupt(q, "an L2 entry points data at the "
                                      "image's metadata");
            pthread_mutex_unlock(&q->lock);
            struct qcow2_extent *e = ret      ? NULL
                                     : zeroes ? qcow2_new_zero_extent(r, q->zeroes,
                                                                span)
                                              : qcow2_new_extent(r, at, span);
            if (!ret)
                ret = e ? qcow2_submit_extent_io(r, e, VMDEV_IO_WRITE, b->fd, host)
                        : -ENOMEM;
        } else {
            if (!ret)
                ret = write_allocating(r, b, q, guest, at, span, clusters,
                                       zeroes);
            pthread_mutex_unlock(&q->lock);
        }
        if (ret)
            return ret;
        guest += span;
        at += span;
    }
    return 0;
}

int qcow2_dispatch_write(struct qcow2_request *r, struct vmdev_block *b,
                   struct qcow2 *q)
{
    return write_range(r, b, q, r->req->offset, 0, r->len, false);
}

/*
 * Whole clusters [first, first + count * cluster_size) made to read as
 * zeroes: discard drops them (unallocated, or a zero cluster where a
 * backing image would show through); write-zeroes makes zero clusters,
 * keeping an owned cluster unless unmap. q->lock held.
 */
static int zero_clusters(struct qcow2 *q, uint64_t first, uint64_t count,
                         bool discard, bool unmap)
{
    uint64_t per_table = 1ull << q->l2_bits;
    uint64_t *old = malloc((count < per_table ? count : per_table) *
                           sizeof(*old));
    if (!old)
        return -ENOMEM;
    int ret = 0;
    while (count && !ret) {
        uint64_t cluster = first >> q->cluster_bits;
        uint64_t n = per_table - (cluster & (per_table - 1));
        if (n > count)
            n = count;
        /* Every entry checked; nothing to do where every cluster already
         * reads as wanted. */
        bool change = false;
        for (uint64_t i = 0; i < n && !ret; i++) {
            struct mapping m;
            ret = qcow2_map_cluster_locked(q, first + (i << q->cluster_bits), &m);
            change |= m.kind == EXTENT_UNALLOCATED ? q->backing != NULL
                      : m.kind == EXTENT_ZERO      ? m.host && (discard || unmap)
                                                   : true;
        }
        struct l2_slot *slot;
        unsigned index;
        if (!ret && change)
            ret = qcow2_l2_for_write(q, first, &slot, &index);
        unsigned released = 0;
        for (uint64_t i = 0; i < n && !ret && change; i++) {
            uint64_t entry = be64toh(slot->table[index + i]);
            uint64_t host = entry & L2_OFFSET_MASK;
            bool keep = !discard && !unmap && !(entry & L2_COMPRESSED) &&
                        host && (entry & L2_COPIED);
            uint64_t now = keep ? host | L2_COPIED | L2_ZERO
                           : discard && !q->backing ? 0
                                                    : L2_ZERO;
            if (!keep && holds_clusters(entry))
                old[released++] = entry;
            if (now != entry)
                l2_set(slot, index + (unsigned)i, now);
        }
        if (!ret)
            ret = release_replaced(q, old, released);
        first += n << q->cluster_bits;
        count -= n;
    }
    free(old);
    return ret;
}

int qcow2_dispatch_zeroes(struct qcow2_request *r, struct vmdev_block *b,
                    struct qcow2 *q)
{
    const struct vmdev_block_request *req = r->req;
    bool discard = req->op == VMDEV_IO_DISCARD;
    uint64_t start = req->offset, end = req->offset + req->len;
    uint64_t whole_start = (start + q->cluster_size - 1) & ~(q->cluster_size - 1);
    uint64_t whole_end = end & ~(q->cluster_size - 1);
    int ret = 0;
    if (whole_start < whole_end) {
        pthread_mutex_lock(&q->lock);
        ret = q->corrupt ? -EIO
                         : zero_clusters(q, whole_start,
                                         (whole_end - whole_start) >>
                                             q->cluster_bits,
                                         discard, req->unmap);
        pthread_mutex_unlock(&q->lock);
    } else {
        whole_start = whole_end = end;
    }
    /* Discard is advisory: parts of clusters stay as they are. */
    if (discard || ret)
        return ret;
    if (start < whole_start)
        ret = write_range(r, b, q, start, 0, whole_start - start, true);
    if (!ret && whole_end < end)
        ret = write_range(r, b, q, whole_end, 0, end - whole_end, true);
    return ret;
}

int qcow2_write_metadata(struct vmdev_block *b)
{
    struct qcow2 *q = b->format_state;
    if (!q->writable)
        return 0;
    pthread_mutex_lock(&q->lock);
    int ret = q->corrupt ? -EIO : qcow2_write_tables(q);
    pthread_mutex_unlock(&q->lock);
    return ret;
}
