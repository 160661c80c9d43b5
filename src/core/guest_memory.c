/* SPDX-License-Identifier: MIT */
#include "vmdev/guest_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vmdev_guest_memory {
    unsigned count;
    /* Sorted by gpa, non-overlapping. */
    struct vmdev_guest_memory_region regions[VMDEV_GUEST_MEMORY_MAX_REGIONS];
};

struct vmdev_guest_memory *vmdev_guest_memory_new(void)
{
    return calloc(1, sizeof(struct vmdev_guest_memory));
}

void vmdev_guest_memory_free(struct vmdev_guest_memory *mem)
{
    free(mem);
}

/* Last byte of a range whose length is known to be non-zero. */
static uint64_t last_byte(uint64_t gpa, uint64_t size)
{
    return gpa + (size - 1);
}

int vmdev_guest_memory_add_region(struct vmdev_guest_memory *mem,
                         const struct vmdev_guest_memory_region *region)
{
    if (!region->size || !region->host ||
        region->gpa > UINT64_MAX - (region->size - 1))
        return -EINVAL;
    if (mem->count == VMDEV_GUEST_MEMORY_MAX_REGIONS)
        return -ENOSPC;

    uint64_t last = last_byte(region->gpa, region->size);
    unsigned pos = 0;
    for (; pos < mem->count; pos++) {
        const struct vmdev_guest_memory_region *r = &mem->regions[pos];
        if (region->gpa <= last_byte(r->gpa, r->size) && r->gpa <= last)
            return -EEXIST;
        if (r->gpa > region->gpa)
            break;
    }
    memmove(&mem->regions[pos + 1], &mem->regions[pos],
            (mem->count - pos) * sizeof(mem->regions[0]));
    mem->regions[pos] = *region;
    mem->count++;
    return 0;
}

static const struct vmdev_guest_memory_region *
find_region(const struct vmdev_guest_memory *mem, uint64_t gpa)
{
    unsigned lo = 0, hi = mem->count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct vmdev_guest_memory_region *r = &mem->regions[mid];
        if (gpa < r->gpa)
            hi = mid;
        else if (gpa - r->gpa >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

void *vmdev_guest_memory_translate(const struct vmdev_guest_memory *mem, uint64_t gpa,
                          uint64_t len, uint64_t *contig)
{
    if (!len || gpa > UINT64_MAX - (len - 1))
        return NULL;
    const struct vmdev_guest_memory_region *r = find_region(mem, gpa);
    if (!r)
        return NULL;
    uint64_t offset = gpa - r->gpa;
    uint64_t avail = r->size - offset;
    *contig = len < avail ? len : avail;
    return (uint8_t *)r->host + offset;
}

void *vmdev_guest_memory_map_contiguous(const struct vmdev_guest_memory *mem,
                               uint64_t gpa, uint64_t len)
{
    uint64_t contig;
    void *host = vmdev_guest_memory_translate(mem, gpa, len, &contig);
    return host && contig == len ? host : NULL;
}

bool vmdev_guest_memory_range_valid(const struct vmdev_guest_memory *mem, uint64_t gpa,
                           uint64_t len)
{
    if (!len)
        return true;
    if (gpa > UINT64_MAX - (len - 1))
        return false;
    while (len) {
        uint64_t contig;
        if (!vmdev_guest_memory_translate(mem, gpa, len, &contig))
            return false;
        gpa += contig;
        len -= contig;
    }
    return true;
}

int vmdev_guest_memory_read(const struct vmdev_guest_memory *mem, uint64_t gpa,
                   void *buf, size_t len)
{
    if (!vmdev_guest_memory_range_valid(mem, gpa, len))
        return -EFAULT;
    uint8_t *out = buf;
    while (len) {
        uint64_t contig;
        const void *host = vmdev_guest_memory_translate(mem, gpa, len, &contig);
        memcpy(out, host, contig);
        out += contig;
        gpa += contig;
        len -= contig;
    }
    return 0;
}

int vmdev_guest_memory_write(const struct vmdev_guest_memory *mem, uint64_t gpa,
                    const void *buf, size_t len)
{
    if (!vmdev_guest_memory_range_valid(mem, gpa, len))
        return -EFAULT;
    const uint8_t *in = buf;
    while (len) {
        uint64_t contig;
        void *host = vmdev_guest_memory_translate(mem, gpa, len, &contig);
        memcpy(host, in, contig);
        in += contig;
        gpa += contig;
        len -= contig;
    }
    return 0;
}

unsigned vmdev_guest_memory_region_count(const struct vmdev_guest_memory *mem)
{
    return mem->count;
}

const struct vmdev_guest_memory_region *
vmdev_guest_memory_region_at(const struct vmdev_guest_memory *mem, unsigned index)
{
    return index < mem->count ? &mem->regions[index] : NULL;
}
