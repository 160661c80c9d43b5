/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2, 2.7) and the one descriptor-chain walker.
 *
 * Every check the specification asks of a device reading a ring lives in
 * queue.c: ring geometry when the queue is enabled, the available index on
 * each pop, and, while walking a chain, the loop bound, indices below the
 * queue size, indirect tables (not nested, length a multiple of 16), the
 * total length below 2^32, and writable descriptors after readable ones.
 * A device sees a popped chain only through the reader and writer cursors,
 * whose segments were translated by the guest-memory accessors.
 */
#ifndef VMDEV_VIRTQUEUE_H
#define VMDEV_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/guest_memory.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VQ_MAX_SIZE 32768
/* Host segments a chain may map to; a longer chain is a guest error. */
#define VMDEV_VQ_MAX_SEGMENTS 1024

/*
 * Transport-visible configuration. The transport writes these from guest
 * registers while the queue is not enabled; vmdev_virtqueue_enable() checks them.
 */
struct vmdev_virtqueue_config {
    uint16_t size;     /* driver's chosen size, <= max_size */
    uint16_t max_size; /* device's maximum */
    bool ready;        /* queue_enable written by the driver */
    uint64_t desc_addr, driver_addr, device_addr;
    uint16_t msix_vector; /* owned by the PCI transport */
};

struct vmdev_virtqueue_segment {
    void *host;
    uint32_t len;
    /* The rest of the previous segment's descriptor, whose buffer was
     * split where one RAM region ends and the next begins. */
    bool continues_descriptor;
};

/* A popped chain: where the device reads (driver-written) and writes. */
struct vmdev_virtqueue_chain {
    uint16_t head;
    unsigned num_readable, num_writable;
    struct vmdev_virtqueue_segment segments[VMDEV_VQ_MAX_SEGMENTS];
    /* Readable segments first, then writable ones. */
    uint64_t readable_len, writable_len;
};

struct vmdev_virtqueue {
    struct vmdev_virtqueue_config config;
    /* Runtime state, valid while enabled. */
    bool enabled;
    bool event_idx; /* VMDEV_VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;  /* VMDEV_VIRTIO_F_INDIRECT_DESC negotiated */
    const struct vmdev_guest_memory *mem;
    void *desc, *avail, *used; /* host mappings, checked at enable */
    uint16_t last_avail_idx;
    uint16_t used_idx;
    uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
    bool signalled_used_valid;
    uint64_t completed; /* chains returned to the driver */
    /* Popped and not yet pushed nor given back: at most config.size. */
    uint16_t in_flight;
};

/* Reset to the device's defaults: size = max_size, not ready, addresses 0. */
void vmdev_virtqueue_init(struct vmdev_virtqueue *vq, uint16_t max_size);
void vmdev_virtqueue_reset(struct vmdev_virtqueue *vq);

/*
 * Check ring geometry (virtio 1.2, 2.7: size a power of two no larger than
 * the maximum, 16/2/4-byte alignment of descriptor table, driver and device
 * areas, each area wholly in one guest RAM region) and map the rings.
 * Returns 0, or -EINVAL with a message in *why for the guest-error log.
 */
__attribute__((warn_unused_result))
int vmdev_virtqueue_enable(struct vmdev_virtqueue *vq,
                    const struct vmdev_guest_memory *mem, uint64_t features,
                    const char **why);

/*
 * Pop the next available chain. Returns 1 with *chain filled, 0 when the
 * ring is empty, -EINVAL on a guest fault (*why says which check failed;
 * the caller reports it through vmdev_virtio_guest_error()). A driver
 * that makes a chain available while the device holds a ring's worth is
 * at fault (it reused buffers the device has not returned), so a device
 * never holds more chains than its ring has entries.
 */
__attribute__((warn_unused_result))
int vmdev_virtqueue_pop(struct vmdev_virtqueue *vq, struct vmdev_virtqueue_chain *chain,
                 const char **why);

/* Return a chain to the driver with the number of bytes written into it. */
void vmdev_virtqueue_push(struct vmdev_virtqueue *vq, uint16_t head,
                   uint32_t written);

/* Return several chains with one update of the used index, so the driver
 * sees all of them or none (the buffers of one merged receive). */
struct vmdev_virtqueue_used {
    uint16_t head;
    uint32_t written;
};
void vmdev_virtqueue_push_many(struct vmdev_virtqueue *vq,
                        const struct vmdev_virtqueue_used *used, unsigned count);

/* Give back the last count chains popped and not pushed: the next pops
 * return them again (a device that found too few buffers for a frame). */
void vmdev_virtqueue_unpop(struct vmdev_virtqueue *vq, uint16_t count);

/* Should the driver be interrupted for what was pushed since last time?
 * Applies VIRTQ_AVAIL_F_NO_INTERRUPT or used_event (EVENT_IDX). */
bool vmdev_virtqueue_should_interrupt(struct vmdev_virtqueue *vq);

/* Ask the driver not to / to kick (used flags or avail_event). */
void vmdev_virtqueue_set_notification(struct vmdev_virtqueue *vq, bool enable);

/*
 * For a device that needs more buffers than the driver has made available
 * (a merged receive): have is how many it found, all given back
 * (vmdev_virtqueue_unpop). Asks to be kicked when the driver adds to what is
 * there now, not to what the device popped (2.7.10: a driver with
 * EVENT_IDX kicks only when its index passes avail_event). True when
 * more than have are available by now, so the caller tries again.
 */
bool vmdev_virtqueue_wait_for_more(struct vmdev_virtqueue *vq, uint16_t have);

/* True when the driver has made buffers available we have not popped. */
bool vmdev_virtqueue_has_available(struct vmdev_virtqueue *vq);

/*
 * Cursors over a popped chain. A reader consumes the readable segments in
 * order; a writer fills the writable ones. Both stop at the chain's end and
 * report how much they moved, so a short request is detected by the device.
 */
struct vmdev_virtqueue_reader {
    const struct vmdev_virtqueue_chain *chain;
    unsigned seg;
    uint32_t offset;
    uint64_t remaining;
};

struct vmdev_virtqueue_writer {
    const struct vmdev_virtqueue_chain *chain;
    unsigned seg;
    uint32_t offset;
    uint64_t remaining;
    uint64_t written;
};

void vmdev_virtqueue_reader_init(struct vmdev_virtqueue_reader *r,
                          const struct vmdev_virtqueue_chain *chain);
/* Copy up to len bytes; returns the count copied. */
size_t vmdev_virtqueue_read(struct vmdev_virtqueue_reader *r, void *buf, size_t len);
/* Copy exactly len bytes or nothing; returns 0 or -EINVAL. */
int vmdev_virtqueue_read_exact(struct vmdev_virtqueue_reader *r, void *buf, size_t len);
size_t vmdev_virtqueue_skip(struct vmdev_virtqueue_reader *r, size_t len);

void vmdev_virtqueue_writer_init(struct vmdev_virtqueue_writer *w,
                          const struct vmdev_virtqueue_chain *chain);
size_t vmdev_virtqueue_write(struct vmdev_virtqueue_writer *w, const void *buf, size_t len);
int vmdev_virtqueue_write_exact(struct vmdev_virtqueue_writer *w, const void *buf,
                         size_t len);
/* Move past len bytes whose content was placed some other way (preadv
 * into the segments); they count as written. */
size_t vmdev_virtqueue_writer_skip(struct vmdev_virtqueue_writer *w, size_t len);

#ifdef __cplusplus
}
#endif

#endif
