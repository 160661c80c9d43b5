/* SPDX-License-Identifier: MIT */
/*
 * A driver-side virtio library for tests and fuzz targets.
 *
 * It plays the guest: it owns fake guest memory (one or more regions, each
 * a separate host allocation so that buffers can straddle regions) and
 * builds split virtqueues in it as the virtio 1.2 specification tells a
 * driver to (2.7.13), independently of the device code it tests. Raw
 * setters let a test write what no correct driver would.
 */
#ifndef VMDEV_TEST_VIRTIO_DRIVER_H
#define VMDEV_TEST_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/guest_memory.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtqueue.h"

#define VDRV_MAX_REGIONS 4

struct vdrv_mem {
    struct vmdev_guest_memory *mem;
    uint64_t base, size;
    unsigned num_regions;
    uint8_t *host[VDRV_MAX_REGIONS];
    uint64_t next_free; /* bump allocator, guest-physical */
};

/* Guest memory over the caller's buffer host (size bytes at base), split
 * evenly into num_regions adjacent regions: for fuzz targets that write
 * RAM themselves. NULL on failure. */
struct vmdev_guest_memory *vdrv_mem_over(uint8_t *host, uint64_t base,
                                         uint64_t size, unsigned num_regions);

/* size is split evenly into num_regions adjacent regions from base. */
int vdrv_mem_init(struct vdrv_mem *m, uint64_t base, uint64_t size,
                  unsigned num_regions);
void vdrv_mem_release(struct vdrv_mem *m);
/* Allocate guest memory (zeroed); aborts the test program when full. */
uint64_t vdrv_alloc(struct vdrv_mem *m, uint64_t size, uint64_t align);
/* Host view of one guest byte (tests only; no bounds beyond the RAM). */
void *vdrv_host(const struct vdrv_mem *m, uint64_t gpa);
void vdrv_write(const struct vdrv_mem *m, uint64_t gpa, const void *data,
                uint64_t len);
void vdrv_read(const struct vdrv_mem *m, uint64_t gpa, void *data,
               uint64_t len);

struct vdrv_buf {
    uint64_t gpa;
    uint32_t len;
};

struct vdrv_queue {
    struct vdrv_mem *m;
    uint16_t size;
    bool event_idx;
    uint64_t desc, avail, used; /* guest addresses of the three areas */
    uint16_t avail_idx;         /* next avail ring slot (free-running) */
    uint16_t last_used_idx;
    uint16_t free_head, num_free;
    uint16_t next_free[VMDEV_VQ_MAX_SIZE]; /* shadow free list */
    uint16_t chain_len[VMDEV_VQ_MAX_SIZE]; /* descriptors per head */
};

/* Allocate and zero the rings (with the event fields) for `size`. */
void vdrv_queue_init(struct vdrv_queue *q, struct vdrv_mem *m, uint16_t size,
                     bool event_idx);
/* What a transport would have been told: size, addresses, ready. */
void vdrv_queue_config(const struct vdrv_queue *q, struct vmdev_virtqueue_config *c);

/*
 * Add a chain of out (device-readable) then in (device-writable) buffers,
 * direct or through one indirect table, and make it available. Returns
 * the head index, or -1 when the ring has too few free descriptors.
 */
int vdrv_add(struct vdrv_queue *q, const struct vdrv_buf *out, unsigned n_out,
             const struct vdrv_buf *in, unsigned n_in, bool indirect);
/* Take the next used element; false when there is none. */
bool vdrv_get_used(struct vdrv_queue *q, uint32_t *id, uint32_t *len);

/* Raw access, for chains no correct driver builds. */
void vdrv_set_desc(struct vdrv_queue *q, uint16_t index, uint64_t addr,
                   uint32_t len, uint16_t flags, uint16_t next);
/* Put `head` in the next avail slot and publish it. */
void vdrv_publish(struct vdrv_queue *q, uint16_t head);
void vdrv_set_avail_idx(struct vdrv_queue *q, uint16_t idx);
void vdrv_set_avail_flags(struct vdrv_queue *q, uint16_t flags);
void vdrv_set_used_event(struct vdrv_queue *q, uint16_t idx);
uint16_t vdrv_used_flags(const struct vdrv_queue *q);
uint16_t vdrv_avail_event(const struct vdrv_queue *q);
uint16_t vdrv_used_idx(const struct vdrv_queue *q);
/* Whether a driver that published from old_avail to now must kick, as
 * Linux decides it (avail_event with EVENT_IDX, else the used flags). */
bool vdrv_kick_needed(const struct vdrv_queue *q, uint16_t old_avail);

/*
 * For device tests without a transport: take a device through
 * ACKNOWLEDGE, DRIVER and FEATURES_OK accepting every feature it offers
 * (virtio 1.2, 3.1.1 steps 1 to 6); the caller sets up its queues and then
 * DRIVER_OK.
 */
void vdrv_accept_all_features(struct vmdev_virtio_device *dev);
/* The same accepting only the offered features also in wanted. */
void vdrv_accept_features(struct vmdev_virtio_device *dev, uint64_t wanted);
/* A queue notification as a transport delivers it: under the device lock. */
void vdrv_notify(struct vmdev_virtio_device *dev, uint16_t queue);

#define VDRV_DESC_F_NEXT 1u
#define VDRV_DESC_F_WRITE 2u
#define VDRV_DESC_F_INDIRECT 4u

#endif
