/* SPDX-License-Identifier: MIT */
#include "vmdev/bus.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
    uint64_t base;
    uint64_t last; /* inclusive, so a range may end at UINT64_MAX */
    unsigned access_sizes;
    const struct vmdev_bus_ops *ops;
    void *opaque;
};

struct vmdev_bus {
    char name[32];
    uint64_t limit;
    pthread_rwlock_t lock;
    /* Sorted by base, non-overlapping; searched by bisection. */
    struct bus_range *ranges;
    unsigned count, capacity;
    atomic_uint_fast64_t refused;
};

struct vmdev_bus *vmdev_bus_new(const char *name, uint64_t limit)
{
    struct vmdev_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    snprintf(bus->name, sizeof(bus->name), "%s", name);
    bus->limit = limit;
    pthread_rwlock_init(&bus->lock, NULL);
    return bus;
}

void vmdev_bus_free(struct vmdev_bus *bus)
{
    if (!bus)
        return;
    pthread_rwlock_destroy(&bus->lock);
    free(bus->ranges);
    free(bus);
}

static bool valid_access_sizes(unsigned sizes)
{
    return sizes && !(sizes & ~(unsigned)VMDEV_ACCESS_ANY);
}

int vmdev_bus_register(struct vmdev_bus *bus, uint64_t base, uint64_t len,
                       unsigned access_sizes, const struct vmdev_bus_ops *ops,
                       void *opaque)
{
    if (!len || base > bus->limit || len - 1 > bus->limit - base ||
        !valid_access_sizes(access_sizes) || !ops || !ops->read ||
        !ops->write)
        return -EINVAL;
    uint64_t last = base + (len - 1);

    pthread_rwlock_wrlock(&bus->lock);
    unsigned pos = 0;
    int ret = 0;
    for (; pos < bus->count; pos++) {
        const struct bus_range *r = &bus->ranges[pos];
        if (base <= r->last && r->base <= last) {
            ret = -EEXIST;
            goto out;
        }
        if (r->base > base)
            break;
    }
    if (bus->count == bus->capacity) {
        unsigned cap = bus->capacity ? bus->capacity * 2 : 16;
        struct bus_range *grown = realloc(bus->ranges, cap * sizeof(*grown));
        if (!grown) {
            ret = -ENOMEM;
            goto out;
        }
        bus->ranges = grown;
        bus->capacity = cap;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
            (bus->count - pos) * sizeof(bus->ranges[0]));
    bus->ranges[pos] = (struct bus_range){
        .base = base, .last = last, .access_sizes = access_sizes,
        .ops = ops, .opaque = opaque,
    };
    bus->count++;
out:
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

int vmdev_bus_unregister(struct vmdev_bus *bus, uint64_t base)
{
    int ret = -ENOENT;
    pthread_rwlock_wrlock(&bus->lock);
    for (unsigned i = 0; i < bus->count; i++) {
        if (bus->ranges[i].base == base) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1],
                    (bus->count - i - 1) * sizeof(bus->ranges[0]));
            bus->count--;
            ret = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

/* Caller holds the read lock. */
static const struct bus_range *find_range(const struct vmdev_bus *bus,
                                          uint64_t addr)
{
    unsigned lo = 0, hi = bus->count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr > r->last)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

static int check_access(const struct bus_range *r, uint64_t addr,
                        unsigned size)
{
    if (!r)
        return -ENOENT;
    if (size > 8 || !(r->access_sizes & (1u << size)))
        return -EINVAL;
    if (size - 1 > r->last - addr)
        return -EINVAL;
    return 0;
}

int vmdev_bus_read(struct vmdev_bus *bus, uint64_t addr, unsigned size,
                   uint64_t *value)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct bus_range *r = find_range(bus, addr);
    int ret = check_access(r, addr, size);
    if (!ret) {
        uint64_t v = r->ops->read(r->opaque, addr - r->base, size);
        *value = size == 8 ? v : v & ((UINT64_C(1) << (size * 8)) - 1);
    } else {
        *value = UINT64_MAX;
        atomic_fetch_add_explicit(&bus->refused, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

int vmdev_bus_write(struct vmdev_bus *bus, uint64_t addr, unsigned size,
                    uint64_t value)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct bus_range *r = find_range(bus, addr);
    int ret = check_access(r, addr, size);
    if (!ret) {
        if (size < 8)
            value &= (UINT64_C(1) << (size * 8)) - 1;
        r->ops->write(r->opaque, addr - r->base, value, size);
    } else {
        atomic_fetch_add_explicit(&bus->refused, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

uint64_t vmdev_bus_refused_count(const struct vmdev_bus *bus)
{
    return atomic_load_explicit(&bus->refused, memory_order_relaxed);
}
