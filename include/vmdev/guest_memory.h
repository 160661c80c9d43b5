/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the only way a device reaches guest RAM.
 *
 * A guest address and a length are validated here, once, before any host
 * pointer exists. Devices never add offsets to host pointers derived from
 * guest addresses; they ask for a translation of the exact range they need
 * (which returns how many bytes are contiguous) or copy through
 * vmdev_guest_memory_read()/vmdev_guest_memory_write(), which handle ranges that span regions.
 *
 * The region table is fixed once devices start running: regions are added
 * during VMM setup only, so lookups need no lock.
 */
#ifndef VMDEV_GUEST_MEMORY_H
#define VMDEV_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_GUEST_MEMORY_MAX_REGIONS 16

struct vmdev_guest_memory_region {
    uint64_t gpa;       /* guest physical base */
    uint64_t size;      /* bytes, > 0 */
    void *host;         /* host mapping of the whole region */
    int fd;             /* backing fd for sharing (vhost-user), or -1 */
    uint64_t fd_offset; /* offset of the region within fd */
};

struct vmdev_guest_memory;

struct vmdev_guest_memory *vmdev_guest_memory_new(void);
void vmdev_guest_memory_free(struct vmdev_guest_memory *mem);

/*
 * Add a region. Fails with -EINVAL for a zero size, a null mapping or a
 * range that wraps the 64-bit space, -EEXIST when it overlaps a region
 * already present, -ENOSPC past VMDEV_GUEST_MEMORY_MAX_REGIONS.
 */
__attribute__((warn_unused_result))
int vmdev_guest_memory_add_region(struct vmdev_guest_memory *mem,
                         const struct vmdev_guest_memory_region *region);

/*
 * Translate [gpa, gpa + len). Returns the host address of gpa and sets
 * *contig to the number of bytes from gpa that are contiguous on the host,
 * at most len (and at least 1). Returns NULL when gpa is not in guest RAM,
 * when len is zero, or when gpa + len wraps.
 */
void *vmdev_guest_memory_translate(const struct vmdev_guest_memory *mem, uint64_t gpa,
                          uint64_t len, uint64_t *contig);

/*
 * The host address of [gpa, gpa + len) when the whole range lies in one
 * region, or NULL. For structures that must be contiguous (rings).
 */
void *vmdev_guest_memory_map_contiguous(const struct vmdev_guest_memory *mem,
                               uint64_t gpa, uint64_t len);

/* True when every byte of [gpa, gpa + len) is guest RAM (len 0: true). */
bool vmdev_guest_memory_range_valid(const struct vmdev_guest_memory *mem, uint64_t gpa,
                           uint64_t len);

/*
 * Copy between guest memory and a host buffer; the range may span
 * regions. Return 0, or -EFAULT (nothing copied) when any byte of the
 * range is not guest RAM.
 */
__attribute__((warn_unused_result))
int vmdev_guest_memory_read(const struct vmdev_guest_memory *mem, uint64_t gpa,
                   void *buf, size_t len);
__attribute__((warn_unused_result))
int vmdev_guest_memory_write(const struct vmdev_guest_memory *mem, uint64_t gpa,
                    const void *buf, size_t len);

/* Number of regions and read access to each, for VMM setup (KVM slots). */
unsigned vmdev_guest_memory_region_count(const struct vmdev_guest_memory *mem);
const struct vmdev_guest_memory_region *
vmdev_guest_memory_region_at(const struct vmdev_guest_memory *mem, unsigned index);

#ifdef __cplusplus
}
#endif

#endif
