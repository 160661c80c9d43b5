/* SPDX-License-Identifier: MIT */
/*
 * PCI: configuration space, BARs, capabilities, INTx, and bus 0 behind a
 * host bridge reached through conf1 (0xCF8/0xCFC) and ECAM, with the
 * buses behind its PCI Express root ports (vmdev/pcie.h).
 *
 * A device describes its header and BARs; the guest programs them through
 * config space with write masks applied here. Devices never change the
 * address-space buses themselves: when the guest moves or enables a BAR,
 * the PCI bus only marks it, and the bus owner (the VMM) reconciles the
 * mappings with vmdev_pci_bus_apply_bar_changes() after the config access
 * has returned, outside any bus lock.
 *
 * Layout and semantics follow the PCI Local Bus Specification 3.0, chapter
 * 6, and the PCI Express Base Specification (7.2.2 ECAM).
 */
#ifndef VMDEV_PCI_H
#define VMDEV_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/log.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_PCI_CONFIG_SIZE 4096 /* PCIe: 256 bytes + extended space */
#define VMDEV_PCI_NUM_BARS 6
#define VMDEV_PCI_SLOTS 32
#define VMDEV_PCI_FUNCTIONS 8
#define VMDEV_PCI_ECAM_BUS_SIZE (1u << 20) /* 32 devices x 8 fns x 4 KiB */
#define VMDEV_PCI_ECAM_SIZE (256u << 20)   /* buses 0-255 */

enum vmdev_pci_bar_type {
    VMDEV_PCI_BAR_NONE,
    VMDEV_PCI_BAR_IO,
    VMDEV_PCI_BAR_MEM32,
    VMDEV_PCI_BAR_MEM64, /* uses the next BAR slot for the high half */
};

struct vmdev_pci_bar {
    enum vmdev_pci_bar_type type;
    bool prefetchable;
    uint64_t size; /* a power of two; 16 bytes at least for memory */
    /* Accesses inside the BAR, as offsets from its start. */
    const struct vmdev_bus_ops *ops;
    void *opaque;
    unsigned access_sizes;
    /* Where the bus owner has it mapped; see apply_bar_changes. */
    bool mapped;
    uint64_t mapped_address;
};

struct vmdev_pci_device;
struct vmdev_pci_bus;

struct vmdev_pci_device_ops {
    /* Before a guest config read: a register with side effects or one
     * computed on demand (virtio's PCI config window) refreshes its bytes
     * (vmdev_pci_set_config). May be NULL. */
    void (*config_read)(struct vmdev_pci_device *pdev, uint32_t offset,
                        unsigned size);
    /* After a config write was applied (capabilities the device owns,
     * such as MSI-X, look at their registers here). May be NULL. */
    void (*config_written)(struct vmdev_pci_device *pdev, uint32_t offset,
                           unsigned size);
    /* BAR `index` is now mapped at `address` (mapped true: after the bus
     * owner's map_bar) or is about to go from there (false: before its
     * unmap_bar), for a device that wires more than its bus ops to the
     * BAR's address (virtio-pci's notify eventfds). Called where the bus
     * applies BAR changes or removes the device, without the device's
     * lock. May be NULL. */
    void (*bar_mapped)(struct vmdev_pci_device *pdev, unsigned index,
                       uint64_t address, bool mapped);
};

/* A function's type 0 header and how it is reached. */
struct vmdev_pci_device_config {
    const char *name; /* for logs; outlives the function */
    uint16_t vendor_id, device_id;
    uint32_t class_code; /* 24 bits: base, sub, prog-if */
    uint8_t revision;
    uint16_t subsystem_vendor_id, subsystem_id;
    uint8_t interrupt_pin; /* 0 none, 1 INTA .. 4 INTD */
    const struct vmdev_pci_device_ops *ops; /* may be NULL */
    void *opaque;                           /* vmdev_pci_device_opaque */
    /* Held around config accesses and BAR dispatch when set, so one lock
     * guards a device's registers (virtio-pci uses the virtio lock). */
    pthread_mutex_t *lock;
};

/* NULL with errno ENOMEM. Describe the BARs and capabilities next, then
 * plug it into a bus. */
struct vmdev_pci_device *
vmdev_pci_device_new(const struct vmdev_pci_device_config *config);
/* Once it is off its bus. Accepts NULL. */
void vmdev_pci_device_free(struct vmdev_pci_device *pdev);

void *vmdev_pci_device_opaque(const struct vmdev_pci_device *pdev);
/* The bus it is plugged into (NULL: none; behind a root port, the root
 * port's bus), and its slot on bus 0 (0 behind a root port). */
struct vmdev_pci_bus *vmdev_pci_device_bus(const struct vmdev_pci_device *pdev);
unsigned vmdev_pci_device_slot(const struct vmdev_pci_device *pdev);
/* Where the guest reaches it now: bus (behind a root port, the port's
 * secondary bus as programmed), device and function. Returns false when
 * it is not plugged in. */
bool vmdev_pci_device_address(const struct vmdev_pci_device *pdev,
                              unsigned *bus, unsigned *slot, unsigned *fn);
/* BAR `index` (< VMDEV_PCI_NUM_BARS) as described and as mapped, for the
 * bus owner's map_bar and unmap_bar. */
const struct vmdev_pci_bar *
vmdev_pci_device_bar(const struct vmdev_pci_device *pdev, unsigned index);

/* Describe BAR `index`. Returns 0 or -EINVAL (bad index, size or type;
 * a 64-bit BAR at index 5 or over a BAR already described). */
__attribute__((warn_unused_result))
int vmdev_pci_set_bar(struct vmdev_pci_device *pdev, unsigned index,
                      enum vmdev_pci_bar_type type, uint64_t size,
                      bool prefetchable, const struct vmdev_bus_ops *ops,
                      void *opaque, unsigned access_sizes);

/* Address the guest (or firmware) programmed into a BAR, or 0. */
uint64_t vmdev_pci_bar_address(const struct vmdev_pci_device *pdev,
                               unsigned index);
/* Program a BAR as firmware would before the OS starts. */
void vmdev_pci_bar_assign(struct vmdev_pci_device *pdev, unsigned index,
                          uint64_t address);

/*
 * Append a capability of `len` bytes (header included) to the list.
 * Returns its offset (dword aligned, in the first 256 bytes) or 0 when
 * there is no room. The caller fills the body and its write masks.
 */
uint8_t vmdev_pci_add_capability(struct vmdev_pci_device *pdev, uint8_t id,
                                 uint8_t len);

/* Little-endian helpers for building config space. */
void vmdev_pci_set_config(struct vmdev_pci_device *pdev, uint32_t offset,
                          uint32_t value, unsigned size);
uint32_t vmdev_pci_get_config(const struct vmdev_pci_device *pdev,
                              uint32_t offset, unsigned size);
void vmdev_pci_set_wmask(struct vmdev_pci_device *pdev, uint32_t offset,
                         uint32_t mask, unsigned size);

/* Guest config accesses of 1, 2 or 4 bytes, naturally aligned; anything
 * else reads all ones and writes nothing (PCI 3.0, 3.2.2.3.2). */
uint32_t vmdev_pci_config_read(struct vmdev_pci_device *pdev, uint32_t offset,
                               unsigned size);
void vmdev_pci_config_write(struct vmdev_pci_device *pdev, uint32_t offset,
                            uint32_t value, unsigned size);

/* Assert or deassert the device's INTx pin (level). */
void vmdev_pci_set_intx(struct vmdev_pci_device *pdev, bool level);

/* The command register enables decoding of this BAR at a usable address. */
bool vmdev_pci_bar_decoded(const struct vmdev_pci_device *pdev,
                           unsigned index, uint64_t *address);

/* Config space and BAR mapping state, in a section called `name`. */
void vmdev_pci_device_save(const struct vmdev_pci_device *pdev,
                           struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_pci_device_restore(struct vmdev_pci_device *pdev, const void *data,
                             size_t len, const char *name);

/* --- The bus and its host bridge. --- */

struct vmdev_pci_bus_owner {
    /* Map or unmap BAR `index` of `pdev` at `address` on the right
     * address space; map returns 0 or a negative errno. */
    int (*map_bar)(void *opaque, struct vmdev_pci_device *pdev,
                   unsigned index, uint64_t address);
    void (*unmap_bar)(void *opaque, struct vmdev_pci_device *pdev,
                      unsigned index, uint64_t address);
    /* Level of the INTx pin (1..4) of the device in `slot`. */
    void (*set_intx)(void *opaque, unsigned slot, unsigned pin, bool level);
    void *opaque;
    struct vmdev_log *log; /* the bus's lines; NULL: stderr */
};

/* A bus with a host bridge in slot 0. */
struct vmdev_pci_bus *vmdev_pci_bus_new(const struct vmdev_pci_bus_owner *o);
void vmdev_pci_bus_free(struct vmdev_pci_bus *bus);

/* Plug `pdev` into function 0 of `slot` (1..31), or of the first free
 * slot for -1. Returns the slot or -EBUSY/-ENOSPC/-EINVAL. */
int vmdev_pci_bus_add(struct vmdev_pci_bus *bus, struct vmdev_pci_device *pdev,
                      int slot);
/* Plug `pdev` into function fn (0..7) of `slot` (1..31); a function
 * other than 0 needs function 0 there first, whose header then says the
 * slot is multi-function. Returns the slot or -EBUSY/-EINVAL. */
int vmdev_pci_bus_add_function(struct vmdev_pci_bus *bus,
                               struct vmdev_pci_device *pdev, int slot,
                               unsigned fn);
/* Unplug, from bus 0 or from behind a root port (the port's slot then
 * reports the device gone, vmdev/pcie.h). Config accesses no longer reach
 * it, then its mapped BARs are unmapped through the owner. */
void vmdev_pci_bus_remove(struct vmdev_pci_bus *bus,
                          struct vmdev_pci_device *pdev);
struct vmdev_pci_device *vmdev_pci_bus_device(struct vmdev_pci_bus *bus,
                                              unsigned slot);

/* Reconcile BAR mappings with what config space now decodes: unmap what
 * moved or was disabled, map what is new. Cheap when nothing changed. */
void vmdev_pci_bus_apply_bar_changes(struct vmdev_pci_bus *bus);
bool vmdev_pci_bus_bar_changes_pending(const struct vmdev_pci_bus *bus);

/* Configuration mechanism #1: an 8-byte PIO region at 0xCF8. */
extern const struct vmdev_bus_ops vmdev_pci_conf1_ops;
#define VMDEV_PCI_CONF1_PORT 0xcf8
#define VMDEV_PCI_CONF1_LEN 8
/* ECAM for buses 0-255: a VMDEV_PCI_ECAM_SIZE MMIO region (or a
 * smaller one mapping the first buses only). */
extern const struct vmdev_bus_ops vmdev_pci_ecam_ops;

#ifdef __cplusplus
}
#endif

#endif
