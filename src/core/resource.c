/* SPDX-License-Identifier: MIT */
/*
 * Resource pools: the allocated ranges are kept sorted, so the first fit
 * is found by walking the gaps between them.
 */
#include "vmdev/resource.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct range {
    uint64_t start, size;
};

struct vmdev_resource_pool {
    uint64_t base, size;
    struct range *used; /* sorted by start, non-overlapping */
    unsigned count, capacity;
};

struct vmdev_resource_pool *vmdev_resource_pool_new(uint64_t base,
                                                    uint64_t size)
{
    if (size == 0 || base + (size - 1) < base)
        return NULL;
    struct vmdev_resource_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return NULL;
    pool->base = base;
    pool->size = size;
    return pool;
}

void vmdev_resource_pool_free(struct vmdev_resource_pool *pool)
{
    if (!pool)
        return;
    free(pool->used);
    free(pool);
}

static uint64_t pool_last(const struct vmdev_resource_pool *pool)
{
    return pool->base + (pool->size - 1);
}

static int insert(struct vmdev_resource_pool *pool, unsigned at,
                  uint64_t start, uint64_t size)
{
    if (pool->count == pool->capacity) {
        unsigned capacity = pool->capacity ? 2 * pool->capacity : 8;
        struct range *used = realloc(pool->used, capacity * sizeof(*used));
        if (!used)
            return -ENOMEM;
        pool->used = used;
        pool->capacity = capacity;
    }
    memmove(&pool->used[at + 1], &pool->used[at],
            (pool->count - at) * sizeof(*pool->used));
    pool->used[at] = (struct range){ start, size };
    pool->count++;
    return 0;
}

/* Round up to a multiple of align; false when that overflows. */
static bool align_up(uint64_t value, uint64_t align, uint64_t *out)
{
    uint64_t rounded = (value + (align - 1)) & ~(align - 1);
    if (rounded < value)
        return false;
    *out = rounded;
    return true;
}

/* Does [start, start + size) fit before `limit` (inclusive last byte)? */
static bool fits(uint64_t start, uint64_t size, uint64_t last)
{
    return start <= last && size - 1 <= last - start;
}

int vmdev_resource_alloc(struct vmdev_resource_pool *pool, uint64_t size,
                         uint64_t align, uint64_t *start)
{
    if (align == 0)
        align = 1;
    if (size == 0 || (align & (align - 1)))
        return -EINVAL;
    /* Walk the gaps: before each allocated range, then after the last. */
    uint64_t gap_start = pool->base;
    for (unsigned i = 0; i <= pool->count; i++) {
        bool before_range = i < pool->count;
        bool empty = before_range && pool->used[i].start == gap_start;
        uint64_t gap_last = before_range ? pool->used[i].start - 1
                                         : pool_last(pool);
        uint64_t candidate;
        if (!empty && align_up(gap_start, align, &candidate) &&
            fits(candidate, size, gap_last)) {
            int ret = insert(pool, i, candidate, size);
            if (ret)
                return ret;
            *start = candidate;
            return 0;
        }
        if (!before_range)
            break;
        uint64_t end = pool->used[i].start + pool->used[i].size;
        if (end == 0) /* that range reaches the top of the space */
            break;
        gap_start = end;
    }
    return -ENOSPC;
}

int vmdev_resource_reserve(struct vmdev_resource_pool *pool, uint64_t start,
                           uint64_t size)
{
    if (size == 0 || start < pool->base || !fits(start, size, pool_last(pool)))
        return -EINVAL;
    uint64_t last = start + (size - 1);
    unsigned i = 0;
    while (i < pool->count && pool->used[i].start + (pool->used[i].size - 1) <
                                  start)
        i++;
    if (i < pool->count && pool->used[i].start <= last)
        return -EBUSY;
    return insert(pool, i, start, size);
}

int vmdev_resource_release(struct vmdev_resource_pool *pool, uint64_t start)
{
    for (unsigned i = 0; i < pool->count; i++) {
        if (pool->used[i].start == start) {
            memmove(&pool->used[i], &pool->used[i + 1],
                    (pool->count - i - 1) * sizeof(*pool->used));
            pool->count--;
            return 0;
        }
    }
    return -ENOENT;
}
