/* SPDX-License-Identifier: MIT */
/*
 * Resource allocation: windows of addresses or numbers (MMIO32, MMIO64,
 * PIO, GSIs, MSI vectors) handed out in aligned, non-overlapping ranges.
 * A VMM makes one pool per window; devices get what the pool gives and
 * return it when they go (hot-unplug).
 */
#ifndef VMDEV_RESOURCE_H
#define VMDEV_RESOURCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmdev_resource_pool;

/* A pool covering [base, base + size); size > 0 and no wrap. */
struct vmdev_resource_pool *vmdev_resource_pool_new(uint64_t base,
                                                    uint64_t size);
void vmdev_resource_pool_free(struct vmdev_resource_pool *pool);

/*
 * The lowest free range of `size` at a multiple of `align` (a power of
 * two; 0 or 1 for none). Returns 0 with *start set, -EINVAL for a bad
 * size or alignment, -ENOSPC when nothing fits.
 */
__attribute__((warn_unused_result))
int vmdev_resource_alloc(struct vmdev_resource_pool *pool, uint64_t size,
                         uint64_t align, uint64_t *start);
/* Claim exactly [start, start + size): -EBUSY if any of it is taken,
 * -EINVAL when outside the pool. */
__attribute__((warn_unused_result))
int vmdev_resource_reserve(struct vmdev_resource_pool *pool, uint64_t start,
                           uint64_t size);
/* Give back the range that starts at `start`; -ENOENT if none does. */
int vmdev_resource_release(struct vmdev_resource_pool *pool, uint64_t start);

#ifdef __cplusplus
}
#endif

#endif
