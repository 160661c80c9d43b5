/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a block backend.
 *
 * Each request queue has its own I/O engine and a pool of requests, one
 * per ring entry. A popped chain is checked, its data segments become the
 * block request's iovecs (the engine moves data straight between the
 * image and the guest's buffers), and the chain is held until the engine
 * finishes. Completions are reaped on the I/O thread the queue is
 * attached to, where the engine's eventfd is watched, and a batch of them
 * goes back to the driver with one interrupt.
 *
 * Each queue is served under its own lock (queue_locks in the virtio
 * core), not dev->lock: its kicks on whichever thread notifies (the
 * queue's I/O thread for an ioeventfd, a vCPU for a notify write) and its
 * completions on its I/O thread. The queues share only the data budget
 * (an atomic reservation) and the generation (moved under every queue
 * lock). Requests go to the engine plugged and are sent at the unplug,
 * after the queue's lock is let go, so no lock of ours is held across
 * io_uring_enter; completions run without one too, each request taking
 * its queue's lock for the moment it goes back to the ring.
 *
 * A reset does not wait for requests in flight. They finish into the
 * buffers they were given, but their chains are not returned to the rings
 * that came after (the generation moved on). Until they finish their pool
 * slots stay busy, so the new rings wait for them rather than the pool
 * growing.
 *
 * What a request may cost the host is bounded twice. Each read or write
 * keeps to what the configuration space advertises (5.2.4: no data
 * segment, that is descriptor, past size_max, no more than seg_max of
 * them, so at most size_max * seg_max bytes), or it is answered IOERR
 * before anything is allocated or submitted. And the data of the reads
 * and writes in flight, all queues together, stays within
 * VMDEV_VIRTIO_BLK_DATA_BUDGET: the block layer's allocations for a
 * request (a cache=none bounce buffer, a qcow2 read's extents) are at
 * most a small multiple of its data, so this bounds the memory a guest
 * can make the host hold. A request that does not fit goes back into its
 * ring (vmdev_virtqueue_unpop) and the queue takes nothing more until a
 * completion frees some of the budget; a request larger than the whole
 * budget runs alone, once nothing else is in flight.
 */
#include "vmdev/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vmdev/event_loop.h"
#include "vmdev/log.h"
#include "vmdev/virtio_device.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define SECTOR_SIZE 512u
/* The host's page and file-system block: a smaller write may make the
 * host read the rest first, and holes are punched in whole blocks. */
#define PHYSICAL_BLOCK_SIZE 4096u
/* size_max: the most data one descriptor of a request may hold (5.2.4).
 * Linux's virtio_blk makes it the queue's max_segment_size. */
#define SIZE_MAX_BYTES (1u << 20)
/* seg_max is the ring size less the header and status descriptors, at
 * most this: Linux takes no more, and it bounds each request's iovecs. */
#define SEG_MAX_LIMIT 254u
/* Two more iovecs than seg_max: a driver may share the header's or the
 * status byte's buffer with data. */
#define REQUEST_IOVECS (SEG_MAX_LIMIT + 2)
/* One range per discard or write-zeroes, as Linux sends them with
 * max_discard_seg 1, of at most 1 GiB. */
#define MAX_RANGE_SECTORS (UINT32_C(1) << 21)

struct blk_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

/* 5.2.6: the data of a discard or write-zeroes request. */
struct blk_range {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

/* struct virtio_blk_config (5.2.4) up to write_zeroes_may_unmap, in
 * little-endian. */
struct blk_config {
    uint64_t capacity; /* in 512-byte sectors, whatever blk_size says */
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size; /* in blk_size units */
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} __attribute__((packed));
_Static_assert(sizeof(struct blk_config) == 60, "virtio_blk_config layout");

/* What checking a request decided. */
enum verdict {
    SUBMIT,      /* hand it to the block layer */
    DONE,        /* nothing to do: answer OK */
    FAIL_IOERR,  /* answer VIRTIO_BLK_S_IOERR */
    FAIL_UNSUPP, /* answer VIRTIO_BLK_S_UNSUPP */
};

struct blk_queue;

/* A request handed to the block layer, until it finishes. */
struct blk_request {
    struct vmdev_block_request io;
    struct blk_queue *queue;
    struct blk_request *next_free;
    uint64_t generation; /* the device's, when the chain was popped */
    uint16_t head;
    uint8_t *status;   /* the chain's last writable byte */
    uint64_t expected; /* bytes the block layer must move */
    uint32_t in_len;   /* bytes the device writes before the status */
    uint64_t charged;  /* bytes of the device's budget it holds */
    struct iovec iov[REQUEST_IOVECS];
};

/* Everything but the engine, the loop and the watch under the queue's
 * lock (vmdev_virtio_queue_lock). */
struct blk_queue {
    struct vmdev_virtio_blk *blk;
    uint16_t index;
    struct vmdev_io_engine *engine;
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *watch;
    struct blk_request *pool;
    struct blk_request *free;
    bool completed; /* chains returned since the last interrupt */
    /* Chains stayed in the ring for want of a free request. */
    bool waiting_for_request;
    /* A request went back into the ring for want of budget: take nothing
     * more until a completion frees some. Atomic: a completion on another
     * queue looks at it without this queue's lock (serve_request). */
    atomic_bool waiting_for_budget;
    bool freed_budget; /* a completion gave budget back */
    struct vmdev_virtio_blk_stats stats; /* this queue's; no peak */
    struct vmdev_virtqueue_chain chain;
};

struct vmdev_virtio_blk {
    struct vmdev_virtio_device dev; /* first: ops get this pointer */
    struct vmdev_block *block;
    bool default_writeback;
    bool stopping; /* being freed: completions only release */
    uint64_t generation; /* moves at every reset, under every queue lock */
    atomic_uint_fast64_t data_in_flight; /* bytes of reads and writes */
    atomic_uint_fast64_t data_in_flight_peak;
    uint32_t size_max, seg_max; /* as the configuration says them */
    struct blk_config config;
    char id[VMDEV_VIRTIO_BLK_ID_LEN];
    struct blk_queue *queues;
    uint16_t num_queues;
    struct vmdev_ratelimit io_error_log_limit; /* a failing disk's lines */
};

static struct vmdev_virtio_blk *blk_of(struct vmdev_virtio_device *dev)
{
    return (struct vmdev_virtio_blk *)dev;
}

static bool wce_forced_off(const struct vmdev_virtio_blk *blk)
{
    /* 5.2.5: writes are stable on completion when the driver takes
     * neither FLUSH nor CONFIG_WCE, and CONFIG_WCE without FLUSH starts
     * at writethrough. Either way, without FLUSH, writethrough. */
    return (vmdev_virtio_get_status(&blk->dev) & VMDEV_VIRTIO_STATUS_FEATURES_OK) &&
           !vmdev_virtio_has_feature(&blk->dev, VIRTIO_BLK_F_FLUSH);
}

static void blk_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    blk->config.writeback = vmdev_block_writeback(blk->block) &&
                            !wce_forced_off(blk);
    memcpy(data, (const uint8_t *)&blk->config + offset, len);
}

static void blk_write_config(struct vmdev_virtio_device *dev, uint32_t offset,
                             const void *data, uint32_t len)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    uint8_t value;
    /* 5.2.4: writeback is the one writable field, 0 (writethrough) or 1
     * (writeback); anything else is ignored. */
    if (offset != offsetof(struct blk_config, writeback) || len != 1)
        return;
    memcpy(&value, data, 1);
    if (value <= 1 && !wce_forced_off(blk))
        vmdev_block_set_writeback(blk->block, value == 1);
}

/* How the driver laid out a request's data: 5.2.4's segments are its
 * descriptors, however many host segments each was translated into. */
struct data_layout {
    unsigned descriptors; /* descriptors holding some of the data */
    uint64_t largest;     /* the most data one descriptor holds */
};

/*
 * Up to cap iovecs for len bytes of the chain, from segment seg after
 * skipping skip bytes, and their layout. Returns how many iovecs, or -1
 * if cap is not enough. A descriptor that also holds the header or the
 * status byte counts with the data it holds.
 */
static int gather(const struct vmdev_virtqueue_chain *c, unsigned seg, uint64_t skip,
                  uint64_t len, struct iovec *iov, unsigned cap,
                  struct data_layout *layout)
{
    unsigned n = 0;
    uint64_t in_descriptor = 0;
    *layout = (struct data_layout){ 0 };
    for (unsigned end = c->num_readable + c->num_writable; seg < end && len;
         seg++) {
        const struct vmdev_virtqueue_segment *s = &c->segments[seg];
        if (skip >= s->len) {
            skip -= s->len;
            continue;
        }
        if (n == cap)
            return -1;
        uint64_t take = s->len - skip < len ? s->len - skip : len;
        iov[n++] = (struct iovec){ (uint8_t *)s->host + skip, (size_t)take };
        if (n == 1 || !s->continues_descriptor) {
            layout->descriptors++;
            in_descriptor = 0;
        }
        in_descriptor += take;
        if (in_descriptor > layout->largest)
            layout->largest = in_descriptor;
        len -= take;
        skip = 0;
    }
    return (int)n;
}

/* The last writable byte: the status (5.2.6). writable_len is >= 1. */
static uint8_t *status_byte(const struct vmdev_virtqueue_chain *c)
{
    unsigned seg = c->num_readable + c->num_writable;
    while (c->segments[seg - 1].len == 0)
        seg--;
    const struct vmdev_virtqueue_segment *s = &c->segments[seg - 1];
    return (uint8_t *)s->host + s->len - 1;
}

static const char *op_name(enum vmdev_io_op op)
{
    switch (op) {
    case VMDEV_IO_READ: return "read";
    case VMDEV_IO_WRITE: return "write";
    case VMDEV_IO_FLUSH: return "flush";
    case VMDEV_IO_DISCARD: return "discard";
    case VMDEV_IO_WRITE_ZEROES: return "write-zeroes";
    case VMDEV_IO_NOP: break;
    }
    return "request";
}

static void release(struct blk_request *req)
{
    req->next_free = req->queue->free;
    req->queue->free = req;
}

static void budget_release(struct vmdev_virtio_blk *blk, uint64_t bytes)
{
    if (bytes)
        atomic_fetch_sub(&blk->data_in_flight, bytes);
}

/* The block layer finished req: on the queue's I/O thread, without the
 * queue's lock (the engine runs done() with no lock held). */
static void request_done(struct vmdev_block_request *io, int64_t result)
{
    struct blk_request *req = io->opaque;
    struct blk_queue *q = req->queue;
    struct vmdev_virtio_blk *blk = q->blk;
    budget_release(blk, req->charged);
    bool ok = result >= 0 && (uint64_t)result == req->expected;
    if (blk->stopping) {
        /* The device is being freed: the rings and the locks are gone. */
        req->charged = 0;
        release(req);
        return;
    }
    vmdev_virtio_queue_lock(&blk->dev, q->index);
    if (req->charged)
        q->freed_budget = true;
    req->charged = 0;
    if (!ok) {
        q->stats.io_errors++;
        vmdev_log_limited(blk->dev.log, &blk->io_error_log_limit,
                          VMDEV_LOG_WARN, "%s: %s at byte %llu failed: %s",
                          blk->dev.name, op_name(io->op),
                          (unsigned long long)io->offset,
                          result < 0 ? strerror((int)-result)
                                     : "short transfer");
    }
    /* Chains of an earlier generation belong to rings that are gone. */
    if (req->generation == blk->generation &&
        vmdev_virtio_queue_running(&blk->dev, q->index)) {
        *req->status = ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
        vmdev_virtqueue_push(&blk->dev.queues[q->index], req->head,
                      (ok ? req->in_len : 0) + 1);
        q->completed = true;
    }
    release(req);
    vmdev_virtio_queue_unlock(&blk->dev, q->index);
}

/*
 * Take bytes more of reads and writes in flight from the budget, if the
 * device stays within it; all queues share it. One request larger than
 * the whole budget (one of size_max * seg_max may be) runs once nothing
 * else is in flight.
 */
static bool budget_reserve(struct vmdev_virtio_blk *blk, uint64_t bytes)
{
    if (bytes == 0)
        return true;
    uint_fast64_t now = atomic_load(&blk->data_in_flight);
    do {
        if (now != 0 && (now > VMDEV_VIRTIO_BLK_DATA_BUDGET ||
                         bytes > VMDEV_VIRTIO_BLK_DATA_BUDGET - now))
            return false;
    } while (!atomic_compare_exchange_weak(&blk->data_in_flight, &now,
                                           now + bytes));
    uint_fast64_t peak = atomic_load(&blk->data_in_flight_peak);
    while (now + bytes > peak &&
           !atomic_compare_exchange_weak(&blk->data_in_flight_peak, &peak,
                                         now + bytes))
        ;
    return true;
}

/* The bytes of the budget a prepared request needs: a read's or write's
 * data, which the block layer may copy or map piece by piece; the other
 * requests allocate nothing in proportion to their length. */
static uint64_t budget_cost(const struct blk_request *req)
{
    return req->io.op == VMDEV_IO_READ || req->io.op == VMDEV_IO_WRITE
               ? req->expected
               : 0;
}

/* Hand a checked request, its budget reserved, to the block layer:
 * SUBMIT, or FAIL_IOERR (out of memory: the budget goes back, and the
 * queue looks for queues waiting on it once its lock is let go). */
static enum verdict submit(struct blk_queue *q, struct blk_request *req)
{
    struct vmdev_virtio_blk *blk = q->blk;
    req->io.opaque = req;
    req->queue = q;
    req->generation = blk->generation;
    req->charged = budget_cost(req);
    if (vmdev_block_submit(blk->block, q->engine, &req->io)) {
        budget_release(blk, req->charged);
        if (req->charged)
            q->freed_budget = true;
        req->charged = 0;
        return FAIL_IOERR;
    }
    return SUBMIT;
}

/*
 * IN and OUT: whole sectors between the header and the status byte, laid
 * out within size_max and seg_max. FAIL_IOERR allocates and submits
 * nothing.
 */
static enum verdict prepare_rw(const struct vmdev_virtio_blk *blk,
                               const struct vmdev_virtqueue_chain *c,
                               const struct blk_header *h,
                               struct blk_request *req)
{
    bool write = le32toh(h->type) == VIRTIO_BLK_T_OUT;
    uint64_t sector = le64toh(h->sector);
    uint64_t len = write ? c->readable_len - sizeof(*h) : c->writable_len - 1;
    /* 5.2.6.1: the data is a multiple of 512 bytes. */
    if (len == 0 || len % SECTOR_SIZE || sector > UINT64_MAX / SECTOR_SIZE)
        return FAIL_IOERR;
    /* 5.2.6.1 and 5.2.4: a driver that negotiated SIZE_MAX and SEG_MAX
     * submits no segment larger than size_max and no more than seg_max
     * of them, so no request larger than both together; checked first,
     * so a request of gigabytes in descriptors that alias the same guest
     * memory costs nothing. A driver that declined the features is held
     * to them too: the device serves no more (Linux takes both). */
    if (len > (uint64_t)blk->size_max * blk->seg_max)
        return FAIL_IOERR;
    struct data_layout layout;
    int iovcnt = write ? gather(c, 0, sizeof(*h), len, req->iov,
                                REQUEST_IOVECS, &layout)
                       : gather(c, c->num_readable, 0, len, req->iov,
                                REQUEST_IOVECS, &layout);
    if (iovcnt < 0 || layout.descriptors > blk->seg_max ||
        layout.largest > blk->size_max)
        return FAIL_IOERR;
    req->io = (struct vmdev_block_request){
        .op = write ? VMDEV_IO_WRITE : VMDEV_IO_READ,
        .offset = sector * SECTOR_SIZE,
        .iov = req->iov,
        .iovcnt = (unsigned)iovcnt,
    };
    req->expected = len;
    req->in_len = write ? 0 : (uint32_t)len;
    return SUBMIT;
}

/* DISCARD and WRITE_ZEROES: one range after the header (5.2.6). */
static enum verdict prepare_range(struct vmdev_virtio_blk *blk,
                                  struct vmdev_virtqueue_reader *r, uint32_t type,
                                  struct blk_request *req)
{
    bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
    uint64_t feature = zeroes ? VIRTIO_BLK_F_WRITE_ZEROES
                              : VIRTIO_BLK_F_DISCARD;
    struct blk_range range;
    /* More ranges than max_*_seg (1) is a request we do not take. */
    if (!(blk->dev.device_features & VMDEV_VIRTIO_BIT(feature)) ||
        r->remaining != sizeof(range) ||
        vmdev_virtqueue_read_exact(r, &range, sizeof(range)))
        return FAIL_UNSUPP;
    uint32_t flags = le32toh(range.flags);
    uint64_t sector = le64toh(range.sector);
    uint32_t count = le32toh(range.num_sectors);
    /* 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
    if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP || (!zeroes && flags))
        return FAIL_UNSUPP;
    if (count > MAX_RANGE_SECTORS || sector > UINT64_MAX / SECTOR_SIZE)
        return FAIL_IOERR;
    if (count == 0)
        return DONE;
    req->io = (struct vmdev_block_request){
        .op = zeroes ? VMDEV_IO_WRITE_ZEROES : VMDEV_IO_DISCARD,
        .offset = sector * SECTOR_SIZE,
        .len = (uint64_t)count * SECTOR_SIZE,
        /* write_zeroes_may_unmap is 0 without discard=on. */
        .unmap = blk->config.write_zeroes_may_unmap &&
                 (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
    };
    req->expected = 0;
    req->in_len = 0;
    return SUBMIT;
}

static void count_request(struct blk_queue *q)
{
    q->stats.requests++;
}

/*
 * One chain: answered at once (pushed back in the batch), handed to the
 * block layer (held until it finishes: request_done), put back into the
 * ring for want of budget, or refused as a guest error. q->free has a
 * request for it.
 */
static void serve_request(struct blk_queue *q, struct vmdev_virtqueue_chain *c,
                          struct vmdev_virtio_batch *batch)
{
    struct vmdev_virtio_blk *blk = q->blk;
    struct vmdev_virtqueue_reader r;
    struct blk_header h;
    /* 5.2.6: a readable header and a writable status byte at least. */
    vmdev_virtqueue_reader_init(&r, c);
    if (vmdev_virtqueue_read_exact(&r, &h, sizeof(h)) || c->writable_len < 1) {
        vmdev_virtio_batch_refuse(batch,
                                  "request without a header or a status byte");
        return;
    }
    uint8_t *status = status_byte(c);
    uint32_t type = le32toh(h.type);
    struct blk_request *req = q->free;
    enum verdict verdict;

    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        verdict = prepare_rw(blk, c, &h, req);
        break;
    case VIRTIO_BLK_T_FLUSH:
        /* Nothing to make stable on a read-only disk. */
        verdict = vmdev_block_readonly(blk->block) ? DONE : SUBMIT;
        req->io = (struct vmdev_block_request){ .op = VMDEV_IO_FLUSH };
        req->expected = 0;
        req->in_len = 0;
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        verdict = prepare_range(blk, &r, type, req);
        break;
    case VIRTIO_BLK_T_GET_ID: {
        struct vmdev_virtqueue_writer w;
        vmdev_virtqueue_writer_init(&w, c);
        uint64_t room = c->writable_len - 1;
        count_request(q);
        size_t written = vmdev_virtqueue_write(
            &w, blk->id, room < sizeof(blk->id) ? room : sizeof(blk->id));
        *status = VIRTIO_BLK_S_OK;
        vmdev_virtio_batch_push(batch, c, (uint32_t)written + 1);
        return;
    }
    default:
        verdict = FAIL_UNSUPP;
        break;
    }
    if (verdict == SUBMIT) {
        /* Refused when outside the disk, misaligned, or writing a
         * read-only disk (5.2.6.2: that is IOERR), before it takes any
         * of the budget. */
        req->io.done = request_done;
        if (vmdev_block_check(blk->block, &req->io))
            verdict = FAIL_IOERR;
    }
    if (verdict == SUBMIT && !budget_reserve(blk, budget_cost(req))) {
        /* Say so, then try once more: a completion gives budget back
         * before it looks for waiting queues (resume_waiting_queues), so
         * either this second try sees the budget or the completion sees
         * the flag. */
        atomic_store(&q->waiting_for_budget, true);
        if (!budget_reserve(blk, budget_cost(req))) {
            /* Back into the ring, popped again (and checked again) once
             * a completion frees some of the budget; the queue takes
             * nothing until then. The chain is the ring's, not held:
             * nothing else refers to it. */
            vmdev_virtqueue_unpop(&blk->dev.queues[q->index], 1);
            q->stats.budget_waits++;
            return;
        }
        atomic_store(&q->waiting_for_budget, false);
    }
    count_request(q);
    if (verdict == SUBMIT) {
        req->head = c->head;
        req->status = status;
        verdict = submit(q, req);
        if (verdict == SUBMIT) {
            q->free = req->next_free;
            return;
        }
    }
    switch (verdict) {
    case FAIL_IOERR:
        q->stats.io_errors++;
        *status = VIRTIO_BLK_S_IOERR;
        break;
    case FAIL_UNSUPP:
        q->stats.unsupported++;
        *status = VIRTIO_BLK_S_UNSUPP;
        break;
    default:
        *status = VIRTIO_BLK_S_OK;
        break;
    }
    vmdev_virtio_batch_push(batch, c, 1);
}

static void resume_waiting_queues(struct vmdev_virtio_blk *blk,
                                  uint16_t after);

/*
 * The queue's request path: the driver's notification, the queue's loop
 * coming back to it, or a completion that made room. Requests go to the
 * engine while it is plugged and leave at the unplug, once the queue's
 * lock is let go.
 */
static void serve_queue(struct blk_queue *q)
{
    struct vmdev_virtio_device *dev = &q->blk->dev;
    vmdev_io_engine_plug(q->engine);
    vmdev_virtio_queue_lock(dev, q->index);
    if (vmdev_virtio_queue_running(dev, q->index)) {
        struct vmdev_virtio_batch batch;
        vmdev_virtio_batch_begin(&batch, dev, q->index);
        /* A free request for each chain, and none waiting in the ring
         * for the budget: otherwise the chains stay in the ring until a
         * completion makes room. */
        while (q->free && !atomic_load(&q->waiting_for_budget) &&
               vmdev_virtio_batch_pop(&batch, &q->chain) == 1)
            serve_request(q, &q->chain, &batch);
        q->waiting_for_request = !q->free;
        vmdev_virtio_batch_end(&batch);
    }
    bool freed_budget = q->freed_budget;
    q->freed_budget = false;
    vmdev_virtio_queue_unlock(dev, q->index);
    /* One io_uring_enter for what this notification brought. */
    vmdev_io_engine_unplug(q->engine);
    /* A refused submission gave its budget back. */
    if (freed_budget)
        resume_waiting_queues(q->blk, q->index);
}

static void blk_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    serve_queue(&blk_of(dev)->queues[index]);
}

/* Take again from the rings of queues whose requests waited for the
 * budget, starting after `after` so that no queue always goes first. */
static void resume_waiting_queues(struct vmdev_virtio_blk *blk, uint16_t after)
{
    for (uint16_t k = 1; k <= blk->num_queues; k++) {
        struct blk_queue *q =
            &blk->queues[(uint16_t)((after + k) % blk->num_queues)];
        /* Without the queue's lock: a queue busy with other work is not
         * waited for unless it waits for the budget. */
        if (atomic_exchange(&q->waiting_for_budget, false))
            serve_queue(q);
    }
}

/* The queue's engine has finished requests: on its I/O thread. */
static void queue_completions(void *opaque, uint32_t events)
{
    struct blk_queue *q = opaque;
    struct vmdev_virtio_blk *blk = q->blk;
    struct vmdev_virtio_device *dev = &blk->dev;
    (void)events;
    /* Each request goes back under the queue's lock (request_done). */
    if (!vmdev_io_engine_complete(q->engine))
        return;
    vmdev_virtio_queue_lock(dev, q->index);
    if (q->completed) {
        q->completed = false;
        vmdev_virtio_interrupt_queue(dev, q->index);
    }
    /* Chains left in the ring for want of a request. */
    bool serve = q->waiting_for_request && q->free &&
                 !atomic_load(&q->waiting_for_budget);
    bool freed_budget = q->freed_budget;
    q->freed_budget = false;
    vmdev_virtio_queue_unlock(dev, q->index);
    if (serve)
        serve_queue(q);
    if (freed_budget)
        resume_waiting_queues(blk, q->index);
}

static int blk_attach_queue(struct vmdev_virtio_device *dev, uint16_t index,
                            struct vmdev_event_loop *loop)
{
    struct blk_queue *q = &blk_of(dev)->queues[index];
    if (q->watch) {
        vmdev_event_loop_remove(q->loop, q->watch);
        q->watch = NULL;
        q->loop = NULL;
    }
    if (!loop)
        return 0;
    q->watch = vmdev_event_loop_add(loop, vmdev_io_engine_eventfd(q->engine),
                                    VMDEV_EVENT_IN, queue_completions, q);
    if (!q->watch)
        return -errno;
    q->loop = loop;
    return 0;
}

/* With every queue lock held, so no request is served before the cache
 * mode is right; the core then kicks the queues for buffers made
 * available before DRIVER_OK. */
static int blk_activate(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    if (wce_forced_off(blk))
        vmdev_block_set_writeback(blk->block, false);
    return 0;
}

/* Before the core lets go of the queues' locks for good: no completion
 * runs after this, and what the engines still finish only releases. */
static void blk_stop(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    for (uint16_t i = 0; i < blk->num_queues; i++) {
        struct blk_queue *q = &blk->queues[i];
        if (q->watch)
            vmdev_event_loop_remove(q->loop, q->watch);
        q->watch = NULL;
        q->loop = NULL;
    }
    blk->stopping = true;
}

/* With every queue lock held. */
static void blk_reset(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    blk->generation++;
    vmdev_block_set_writeback(blk->block, blk->default_writeback);
    for (uint16_t i = 0; i < blk->num_queues; i++) {
        struct blk_queue *q = &blk->queues[i];
        q->completed = false;
        /* The ring they waited in is gone; DRIVER_OK takes from the new. */
        atomic_store(&q->waiting_for_budget, false);
        q->waiting_for_request = false;
    }
}

static void free_queues(struct vmdev_virtio_blk *blk)
{
    for (uint16_t i = 0; blk->queues && i < blk->num_queues; i++) {
        struct blk_queue *q = &blk->queues[i];
        if (q->watch)
            vmdev_event_loop_remove(q->loop, q->watch);
        /* Runs the done() of what is in flight: they only release. */
        vmdev_io_engine_free(q->engine);
        free(q->pool);
    }
    free(blk->queues);
}

static void blk_destroy(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_blk *blk = blk_of(dev);
    blk->stopping = true;
    free_queues(blk);
    vmdev_block_free(blk->block);
    free(blk);
}

static const struct vmdev_virtio_device_ops blk_ops = {
    .read_config = blk_read_config,
    .write_config = blk_write_config,
    .activate = blk_activate,
    .reset = blk_reset,
    .queue_kick = blk_queue_kick,
    .attach_queue = blk_attach_queue,
    .stop = blk_stop,
    .destroy = blk_destroy,
    .queue_locks = true,
};

static int create_queues(struct vmdev_virtio_blk *blk, uint16_t queue_size,
                         enum vmdev_io_engine_kind engine)
{
    blk->queues = calloc(blk->num_queues, sizeof(*blk->queues));
    if (!blk->queues)
        return -ENOMEM;
    for (uint16_t i = 0; i < blk->num_queues; i++) {
        struct blk_queue *q = &blk->queues[i];
        q->blk = blk;
        q->index = i;
        q->pool = calloc(queue_size, sizeof(*q->pool));
        if (!q->pool)
            return -ENOMEM;
        for (uint16_t n = queue_size; n--;) {
            q->pool[n].queue = q;
            release(&q->pool[n]);
        }
        q->engine = vmdev_io_engine_new(engine, queue_size);
        if (!q->engine)
            return -errno;
    }
    return 0;
}

static unsigned log2_of(uint32_t v)
{
    unsigned n = 0;
    while (v >>= 1)
        n++;
    return n;
}

static void fill_config(struct vmdev_virtio_blk *blk, uint16_t queue_size,
                        bool discard)
{
    struct blk_config *c = &blk->config;
    uint32_t blk_size = vmdev_block_alignment(blk->block);
    if (blk_size < SECTOR_SIZE)
        blk_size = SECTOR_SIZE;
    uint32_t physical = blk_size > PHYSICAL_BLOCK_SIZE ? blk_size
                                                       : PHYSICAL_BLOCK_SIZE;
    uint32_t seg_max = queue_size - 2u < SEG_MAX_LIMIT ? queue_size - 2u
                                                       : SEG_MAX_LIMIT;
    /* Whole logical blocks: a partial one at the end is not used. */
    uint64_t size = vmdev_block_size(blk->block) / blk_size * blk_size;
    c->capacity = htole64(size / SECTOR_SIZE);
    blk->size_max = SIZE_MAX_BYTES;
    blk->seg_max = seg_max;
    c->size_max = htole32(SIZE_MAX_BYTES);
    c->seg_max = htole32(seg_max);
    c->blk_size = htole32(blk_size);
    c->physical_block_exp = (uint8_t)log2_of(physical / blk_size);
    c->min_io_size = htole16((uint16_t)(physical / blk_size));
    c->num_queues = htole16(blk->num_queues);
    c->max_discard_sectors = htole32(MAX_RANGE_SECTORS);
    c->max_discard_seg = htole32(1);
    c->discard_sector_alignment = htole32(physical / SECTOR_SIZE);
    c->max_write_zeroes_sectors = htole32(MAX_RANGE_SECTORS);
    c->max_write_zeroes_seg = htole32(1);
    c->write_zeroes_may_unmap = discard;
}

struct vmdev_virtio_blk *vmdev_virtio_blk_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_blk_config *config)
{
    uint16_t num_queues = config->num_queues ? config->num_queues : 1;
    uint16_t queue_size = config->queue_size
                              ? config->queue_size
                              : VMDEV_VIRTIO_BLK_DEFAULT_QUEUE_SIZE;
    if (!config->block || num_queues > VMDEV_VIRTIO_BLK_MAX_QUEUES ||
        queue_size < VMDEV_VIRTIO_BLK_MIN_QUEUE_SIZE ||
        queue_size > VMDEV_VIRTIO_BLK_MAX_QUEUE_SIZE ||
        (queue_size & (queue_size - 1))) {
        errno = EINVAL;
        return NULL;
    }
    struct vmdev_virtio_blk *blk = calloc(1, sizeof(*blk));
    if (!blk) {
        errno = ENOMEM;
        return NULL;
    }
    blk->block = config->block;
    blk->default_writeback = vmdev_block_writeback(config->block);
    blk->num_queues = num_queues;
    uint64_t features = VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
                        VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                        VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                        VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                        VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
                        VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) |
                        VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
                        VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX);
    if (num_queues > 1)
        features |= VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_MQ);
    bool readonly = vmdev_block_readonly(config->block);
    if (readonly)
        features |= VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_RO);
    else
        features |=
            VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |
            (config->discard ? VMDEV_VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) : 0);
    int ret = create_queues(blk, queue_size, config->engine);
    if (!ret && vmdev_virtio_init(&blk->dev, name, VMDEV_VIRTIO_ID_BLOCK,
                                  &blk_ops, features, sizeof(blk->config),
                                  num_queues, queue_size, mem))
        ret = -ENOMEM;
    if (ret) {
        blk->stopping = true;
        free_queues(blk);
        free(blk);
        errno = -ret;
        return NULL;
    }
    fill_config(blk, queue_size, config->discard && !readonly);
    /* 5.2.6: the id is 20 bytes, NUL-padded, not NUL-terminated if full. */
    if (config->serial)
        memcpy(blk->id, config->serial,
               strnlen(config->serial, sizeof(blk->id)));
    return blk;
}

struct vmdev_virtio_device *vmdev_virtio_blk_device(struct vmdev_virtio_blk *blk)
{
    return &blk->dev;
}

struct vmdev_block *vmdev_virtio_blk_block(struct vmdev_virtio_blk *blk)
{
    return blk->block;
}

struct vmdev_virtio_blk_stats vmdev_virtio_blk_stats(struct vmdev_virtio_blk *blk)
{
    struct vmdev_virtio_blk_stats stats = { 0 };
    for (uint16_t i = 0; i < blk->num_queues; i++) {
        const struct blk_queue *q = &blk->queues[i];
        vmdev_virtio_queue_lock(&blk->dev, i);
        stats.requests += q->stats.requests;
        stats.io_errors += q->stats.io_errors;
        stats.unsupported += q->stats.unsupported;
        stats.budget_waits += q->stats.budget_waits;
        vmdev_virtio_queue_unlock(&blk->dev, i);
    }
    stats.data_in_flight_peak = atomic_load(&blk->data_in_flight_peak);
    return stats;
}

uint64_t vmdev_virtio_blk_queue_requests(struct vmdev_virtio_blk *blk,
                                         uint16_t index)
{
    if (index >= blk->num_queues)
        return 0;
    vmdev_virtio_queue_lock(&blk->dev, index);
    uint64_t n = blk->queues[index].stats.requests;
    vmdev_virtio_queue_unlock(&blk->dev, index);
    return n;
}

void vmdev_virtio_blk_free(struct vmdev_virtio_blk *blk)
{
    if (blk)
        vmdev_virtio_free(&blk->dev);
}
