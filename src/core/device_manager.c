/* SPDX-License-Identifier: MIT */
#include "vmdev/device_manager.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How an owned resource is given back. */
enum release_method {
    RELEASE_BUS_RANGE, /* vmdev_bus_unregister(target, base) */
    RELEASE_POOL,      /* vmdev_resource_release(target, base) */
    RELEASE_CALLBACK,  /* release(target) */
};

struct owned {
    struct vmdev_resource res;
    enum release_method method;
    void *target;
    void (*release)(void *ctx);
};

struct vmdev_device {
    struct vmdev_device *prev, *next;
    char id[VMDEV_DEVICE_ID_MAX + 1];
    char type[VMDEV_DEVICE_ID_MAX + 1];
    const struct vmdev_device_ops *ops;
    void *opaque;
    struct owned *owned;
    size_t num_owned, owned_capacity;
};

struct vmdev_device_manager {
    struct vmdev_device *first, *last;
    size_t count;
};

const char *vmdev_resource_kind_name(enum vmdev_resource_kind kind)
{
    switch (kind) {
    case VMDEV_RESOURCE_PIO:
        return "pio";
    case VMDEV_RESOURCE_MMIO:
        return "mmio";
    case VMDEV_RESOURCE_GSI:
        return "gsi";
    case VMDEV_RESOURCE_MSI:
        return "msi";
    case VMDEV_RESOURCE_PCI_SLOT:
        return "pci-slot";
    }
    return "?";
}

static bool valid_name(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    if (len == 0 || len > max)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

bool vmdev_device_id_valid(const char *id)
{
    return id && valid_name(id, VMDEV_DEVICE_ID_MAX);
}

struct vmdev_device_manager *vmdev_device_manager_new(void)
{
    return calloc(1, sizeof(struct vmdev_device_manager));
}

void vmdev_device_manager_free(struct vmdev_device_manager *mgr)
{
    if (!mgr)
        return;
    while (mgr->last)
        vmdev_device_remove(mgr, mgr->last);
    free(mgr);
}

struct vmdev_device *vmdev_device_find(struct vmdev_device_manager *mgr,
                                       const char *id)
{
    for (struct vmdev_device *d = mgr->first; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

/* Room for the suffix of a generated id: "<type>" plus up to 4 digits. */
#define TYPE_MAX (VMDEV_DEVICE_ID_MAX - 4)

static int generate_id(struct vmdev_device_manager *mgr, const char *type,
                       char id[VMDEV_DEVICE_ID_MAX + 1])
{
    for (unsigned n = 0; n < 10000; n++) {
        snprintf(id, VMDEV_DEVICE_ID_MAX + 1, "%s%u", type, n);
        if (!vmdev_device_find(mgr, id))
            return 0;
    }
    return -EEXIST;
}

int vmdev_device_add(struct vmdev_device_manager *mgr, const char *type,
                     const char *id, const struct vmdev_device_ops *ops,
                     void *opaque, struct vmdev_device **out)
{
    if (!type || !valid_name(type, TYPE_MAX) || !ops ||
        (ops->save && !ops->restore))
        return -EINVAL;
    if (id && !vmdev_device_id_valid(id))
        return -EINVAL;
    struct vmdev_device *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    if (id) {
        if (vmdev_device_find(mgr, id)) {
            free(dev);
            return -EEXIST;
        }
        strcpy(dev->id, id); /* length checked by valid_name */
    } else if (generate_id(mgr, type, dev->id)) {
        free(dev);
        return -EEXIST;
    }
    strcpy(dev->type, type);
    dev->ops = ops;
    dev->opaque = opaque;
    dev->prev = mgr->last;
    if (mgr->last)
        mgr->last->next = dev;
    else
        mgr->first = dev;
    mgr->last = dev;
    mgr->count++;
    *out = dev;
    return 0;
}

static void release(struct owned *o)
{
    switch (o->method) {
    case RELEASE_BUS_RANGE:
        vmdev_bus_unregister(o->target, o->res.base);
        break;
    case RELEASE_POOL:
        vmdev_resource_release(o->target, o->res.base);
        break;
    case RELEASE_CALLBACK:
        o->release(o->target);
        break;
    }
}

void vmdev_device_remove(struct vmdev_device_manager *mgr,
                         struct vmdev_device *dev)
{
    if (!dev)
        return;
    while (dev->num_owned)
        release(&dev->owned[--dev->num_owned]);
    free(dev->owned);
    if (dev->ops->destroy)
        dev->ops->destroy(dev->opaque);
    if (dev->prev)
        dev->prev->next = dev->next;
    else
        mgr->first = dev->next;
    if (dev->next)
        dev->next->prev = dev->prev;
    else
        mgr->last = dev->prev;
    mgr->count--;
    free(dev);
}

struct vmdev_device *vmdev_device_next(struct vmdev_device_manager *mgr,
                                       const struct vmdev_device *prev)
{
    return prev ? prev->next : mgr->first;
}

size_t vmdev_device_count(const struct vmdev_device_manager *mgr)
{
    return mgr->count;
}

const char *vmdev_device_id(const struct vmdev_device *dev)
{
    return dev->id;
}

const char *vmdev_device_type(const struct vmdev_device *dev)
{
    return dev->type;
}

void *vmdev_device_opaque(const struct vmdev_device *dev)
{
    return dev->opaque;
}

size_t vmdev_device_resources(const struct vmdev_device *dev,
                              struct vmdev_resource *out, size_t max)
{
    for (size_t i = 0; i < dev->num_owned && i < max; i++)
        out[i] = dev->owned[i].res;
    return dev->num_owned;
}

/* Make room for one more record before taking the resource, so that a
 * resource once taken is always recorded. */
static int reserve_record(struct vmdev_device *dev)
{
    if (dev->num_owned < dev->owned_capacity)
        return 0;
    size_t capacity = dev->owned_capacity ? dev->owned_capacity * 2 : 4;
    struct owned *grown = realloc(dev->owned, capacity * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    dev->owned = grown;
    dev->owned_capacity = capacity;
    return 0;
}

static void record(struct vmdev_device *dev, enum vmdev_resource_kind kind,
                   uint64_t base, uint64_t size, enum release_method method,
                   void *target, void (*release_fn)(void *ctx))
{
    dev->owned[dev->num_owned++] = (struct owned){
        .res = { kind, base, size },
        .method = method,
        .target = target,
        .release = release_fn,
    };
}

int vmdev_device_map(struct vmdev_device *dev, struct vmdev_bus *bus,
                     enum vmdev_resource_kind kind, uint64_t base,
                     uint64_t len, unsigned access_sizes,
                     const struct vmdev_bus_ops *ops, void *opaque)
{
    int ret = reserve_record(dev);
    if (ret)
        return ret;
    ret = vmdev_bus_register(bus, base, len, access_sizes, ops, opaque);
    if (ret)
        return ret;
    record(dev, kind, base, len, RELEASE_BUS_RANGE, bus, NULL);
    return 0;
}

int vmdev_device_alloc(struct vmdev_device *dev,
                       struct vmdev_resource_pool *pool,
                       enum vmdev_resource_kind kind, uint64_t size,
                       uint64_t align, uint64_t *start)
{
    int ret = reserve_record(dev);
    if (ret)
        return ret;
    ret = vmdev_resource_alloc(pool, size, align, start);
    if (ret)
        return ret;
    record(dev, kind, *start, size, RELEASE_POOL, pool, NULL);
    return 0;
}

int vmdev_device_reserve(struct vmdev_device *dev,
                         struct vmdev_resource_pool *pool,
                         enum vmdev_resource_kind kind, uint64_t start,
                         uint64_t size)
{
    int ret = reserve_record(dev);
    if (ret)
        return ret;
    ret = vmdev_resource_reserve(pool, start, size);
    if (ret)
        return ret;
    record(dev, kind, start, size, RELEASE_POOL, pool, NULL);
    return 0;
}

int vmdev_device_claim(struct vmdev_device *dev,
                       enum vmdev_resource_kind kind, uint64_t base,
                       uint64_t size, void (*release_fn)(void *ctx), void *ctx)
{
    if (!release_fn)
        return -EINVAL;
    int ret = reserve_record(dev);
    if (ret) {
        release_fn(ctx);
        return ret;
    }
    record(dev, kind, base, size, RELEASE_CALLBACK, ctx, release_fn);
    return 0;
}

void vmdev_device_manager_save(struct vmdev_device_manager *mgr,
                               struct vmdev_state_writer *w)
{
    for (struct vmdev_device *d = mgr->first; d; d = d->next)
        if (d->ops->save)
            d->ops->save(d->opaque, w, d->id);
}

int vmdev_device_manager_restore(struct vmdev_device_manager *mgr,
                                 const void *snapshot, size_t len,
                                 const struct vmdev_device **failed)
{
    for (struct vmdev_device *d = mgr->first; d; d = d->next) {
        if (!d->ops->save)
            continue;
        int ret = d->ops->restore(d->opaque, snapshot, len, d->id);
        if (ret) {
            if (failed)
                *failed = d;
            return ret;
        }
    }
    return 0;
}
