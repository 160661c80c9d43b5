/* SPDX-License-Identifier: MIT */
/*
 * Device manager: a machine's table of devices.
 *
 * Each device has an id unique in the machine ("disk0", "com1"), a type
 * ("virtio-blk"), the callbacks that snapshot and free it, and the
 * resources it owns: ranges on the address-space buses, ranges taken from
 * resource pools (PCI memory windows, GSIs, MSI vectors), and any other
 * claim that comes with a release callback (a PCI slot). Whoever builds
 * the machine claims resources through the device, so that removing it
 * gives every one of them back.
 *
 * Removal releases a device's resources newest first and only then
 * destroys it: its bus ranges go before its memory does, so no vCPU
 * reaches a device being freed. Freeing the manager removes every device,
 * newest first, so a device removed goes before the interrupt controller
 * or bus it was added after.
 *
 * The manager is used from one thread at a time: the one that builds the
 * machine and later hot-plugs (the design's main thread). Device callbacks
 * keep running on whatever threads they run on until their bus ranges and
 * watches are released.
 */
#ifndef VMDEV_DEVICE_MANAGER_H
#define VMDEV_DEVICE_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/resource.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An id: a letter, then letters, digits, '-', '_' or '.', in all at most
 * VMDEV_DEVICE_ID_MAX characters. */
#define VMDEV_DEVICE_ID_MAX 31

enum vmdev_resource_kind {
    VMDEV_RESOURCE_PIO,      /* port range */
    VMDEV_RESOURCE_MMIO,     /* guest-physical range */
    VMDEV_RESOURCE_GSI,      /* interrupt input numbers */
    VMDEV_RESOURCE_MSI,      /* MSI vectors */
    VMDEV_RESOURCE_PCI_SLOT, /* base is the slot number, size 1 */
};

/* One owned resource: [base, base + size) of its kind. */
struct vmdev_resource {
    enum vmdev_resource_kind kind;
    uint64_t base;
    uint64_t size;
};

/* Whether id follows the id rules (for a VMM checking its command line). */
bool vmdev_device_id_valid(const char *id);

/* "pio", "mmio", "gsi", "msi", "pci-slot"; "?" for anything else. */
const char *vmdev_resource_kind_name(enum vmdev_resource_kind kind);

struct vmdev_device_ops {
    /* Free the device. Runs after its resources are released; may be
     * NULL. */
    void (*destroy)(void *opaque);
    /* Write the device's state in a section named `id`, or in several
     * named `id` and "id/...". NULL for a device without state. */
    void (*save)(void *opaque, struct vmdev_state_writer *w, const char *id);
    /* Validate and apply what save() wrote: 0, -ENOENT (missing) or
     * -EINVAL (bad). Required when save is set. */
    int (*restore)(void *opaque, const void *snapshot, size_t len,
                   const char *id);
};

struct vmdev_device_manager;
struct vmdev_device;

struct vmdev_device_manager *vmdev_device_manager_new(void);
/* Remove every device, newest first, then free the table. */
void vmdev_device_manager_free(struct vmdev_device_manager *mgr);

/*
 * Add a device of `type` (1 to VMDEV_DEVICE_ID_MAX - 4 characters, the
 * id rules) with the given id, or with NULL the first of "<type>0",
 * "<type>1", ... not taken. ops and opaque must outlive the device.
 * Returns 0 with *out set, -EINVAL (bad type or id, save without
 * restore), -EEXIST (id taken) or -ENOMEM.
 */
__attribute__((warn_unused_result))
int vmdev_device_add(struct vmdev_device_manager *mgr, const char *type,
                     const char *id, const struct vmdev_device_ops *ops,
                     void *opaque, struct vmdev_device **out);

/* Release the device's resources (newest first), destroy it and forget
 * it. A device half built when its setup failed is removed the same way. */
void vmdev_device_remove(struct vmdev_device_manager *mgr,
                         struct vmdev_device *dev);

/* The device with this id, or NULL. */
struct vmdev_device *vmdev_device_find(struct vmdev_device_manager *mgr,
                                       const char *id);
/* Devices in the order they were added: NULL gives the first, the last
 * gives NULL. */
struct vmdev_device *vmdev_device_next(struct vmdev_device_manager *mgr,
                                       const struct vmdev_device *prev);
size_t vmdev_device_count(const struct vmdev_device_manager *mgr);

const char *vmdev_device_id(const struct vmdev_device *dev);
const char *vmdev_device_type(const struct vmdev_device *dev);
void *vmdev_device_opaque(const struct vmdev_device *dev);

/*
 * Copy up to max of the device's resources, oldest first, into out; the
 * return value is how many it owns.
 */
size_t vmdev_device_resources(const struct vmdev_device *dev,
                              struct vmdev_resource *out, size_t max);

/*
 * Claims. Each returns 0, or the error of the underlying call (nothing is
 * then owned) or -ENOMEM.
 *
 * map: register [base, base + len) on bus (vmdev_bus_register), recorded
 * as kind (PIO or MMIO); released with vmdev_bus_unregister.
 */
__attribute__((warn_unused_result))
int vmdev_device_map(struct vmdev_device *dev, struct vmdev_bus *bus,
                     enum vmdev_resource_kind kind, uint64_t base,
                     uint64_t len, unsigned access_sizes,
                     const struct vmdev_bus_ops *ops, void *opaque);
/* alloc/reserve: take a range from pool (vmdev_resource_alloc or
 * _reserve); released with vmdev_resource_release. */
__attribute__((warn_unused_result))
int vmdev_device_alloc(struct vmdev_device *dev,
                       struct vmdev_resource_pool *pool,
                       enum vmdev_resource_kind kind, uint64_t size,
                       uint64_t align, uint64_t *start);
__attribute__((warn_unused_result))
int vmdev_device_reserve(struct vmdev_device *dev,
                         struct vmdev_resource_pool *pool,
                         enum vmdev_resource_kind kind, uint64_t start,
                         uint64_t size);
/* Record a resource the caller has already taken; release(ctx) gives it
 * back when the device goes. Should recording fail (-ENOMEM), release(ctx)
 * runs at once, so a claimed resource is never leaked. */
__attribute__((warn_unused_result))
int vmdev_device_claim(struct vmdev_device *dev,
                       enum vmdev_resource_kind kind, uint64_t base,
                       uint64_t size, void (*release)(void *ctx), void *ctx);

/*
 * Snapshot every device that has state, in the order added. Restore
 * applies them in the same order and stops at the first device that
 * refuses its section, returning its error with *failed (when not NULL)
 * naming it; devices before it are already restored, so a caller restores
 * into a machine it has not started and discards it on failure.
 */
void vmdev_device_manager_save(struct vmdev_device_manager *mgr,
                               struct vmdev_state_writer *w);
__attribute__((warn_unused_result))
int vmdev_device_manager_restore(struct vmdev_device_manager *mgr,
                                 const void *snapshot, size_t len,
                                 const struct vmdev_device **failed);

#ifdef __cplusplus
}
#endif

#endif
