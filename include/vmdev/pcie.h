/* SPDX-License-Identifier: MIT */
/*
 * PCI Express: root ports with a native hot-plug slot, and the Express
 * capability of the endpoints behind them.
 *
 * A root port is a function on bus 0 with a type 1 (bridge) header: bus
 * numbers, a 32-bit memory window and a 64-bit prefetchable one (no I/O
 * window), and a PCI Express capability whose slot is what Linux's
 * pciehp drives (PCIe Base 6.0, 6.7 and 7.5.3.9-11): attention button,
 * power controller, power and attention indicators, presence detect,
 * Data Link Layer Link Active reporting, command completed, and an MSI
 * (or INTx) for the slot's events.
 *
 * Its secondary bus holds one device, function 0 of slot 0: the one
 * plugged into the port. A hot-plug is a plug while the guest runs: the
 * slot reports presence and raises its event, the guest powers the slot
 * and the link comes up. A safe removal is an attention-button press the
 * guest answers by releasing the device and powering the slot off (power
 * and its indicator); the port then calls its owner's slot_powered_off, and the owner takes the
 * device out with vmdev_pci_bus_remove. Taking it out while the slot is
 * still powered is a surprise removal: presence and link drop and the
 * guest hears of it.
 */
#ifndef VMDEV_PCIE_H
#define VMDEV_PCIE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/irq.h"
#include "vmdev/log.h"
#include "vmdev/pci.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vmdev_pcie_root_port;

struct vmdev_pcie_root_port_config {
    const char *name; /* for logs; outlives the port */
    /* Link Capabilities' port number, and the slot's physical number
     * (the name Linux gives the slot in /sys/bus/pci/slots). */
    uint8_t port_number;
    uint16_t physical_slot;
    /* What firmware programs before the guest starts, so that a device
     * plugged later fits without re-enumeration: the secondary bus (also
     * the subordinate one), and the windows. A window is 1 MiB aligned
     * and sized; a size of 0 leaves it closed. */
    uint8_t secondary_bus;
    uint32_t mem_base, mem_size;
    uint64_t pref_base, pref_size;
    /* Where the slot's MSI goes (the port's MSI capability says what
     * message). */
    struct vmdev_msi_sink msi;
    /* The guest powered the slot off, and turned its power indicator off,
     * while a device sat in it: it has let go of the device, which the
     * owner now takes out (vmdev_pci_bus_remove) and frees. (pciehp turns
     * the indicator off a second after the power and ignores presence
     * events until then: a device plugged earlier would go unnoticed.)
     * Called from the guest's config write, under the PCI bus's locks:
     * only note it here and act later, from another context. May be
     * NULL. */
    void (*slot_powered_off)(void *opaque, struct vmdev_pcie_root_port *port);
    void *opaque;
    struct vmdev_log *log; /* NULL: stderr */
};

/* NULL with errno EINVAL (a misaligned window) or ENOMEM. Plug its
 * function into bus 0 next (vmdev_pci_bus_add_function). */
struct vmdev_pcie_root_port *
vmdev_pcie_root_port_new(const struct vmdev_pcie_root_port_config *config);
/* Once its function is off the bus and its slot is empty. Accepts NULL. */
void vmdev_pcie_root_port_free(struct vmdev_pcie_root_port *port);

struct vmdev_pci_device *
vmdev_pcie_root_port_function(struct vmdev_pcie_root_port *port);

/*
 * Plug pdev (no bus yet; it should carry the Express endpoint capability)
 * into the port's slot. hotplug false: present from power-on, before the
 * guest looks; true: the guest is running and is told. Returns 0, -EBUSY
 * (occupied, or for a hot-plug a slot the guest has not released yet:
 * see vacant), -ENODEV (the port is not on a bus) or -EINVAL (pdev is on
 * a bus).
 */
int vmdev_pcie_root_port_plug(struct vmdev_pcie_root_port *port,
                              struct vmdev_pci_device *pdev, bool hotplug);
/* The function in the slot, or NULL. */
struct vmdev_pci_device *
vmdev_pcie_root_port_device(struct vmdev_pcie_root_port *port);

/* Empty, and released by the guest (power and its indicator off, as at
 * reset): a device hot-plugged now is heard of. */
bool vmdev_pcie_root_port_vacant(struct vmdev_pcie_root_port *port);

/*
 * Ask the guest to release the device: press the attention button.
 * Returns 0, -ENODEV for an empty slot, or -EBUSY while the slot's power
 * indicator blinks: the guest is counting down to a removal (a second
 * press would cancel it) or bringing the slot up (it would ignore the
 * press), as QEMU refuses then too.
 */
int vmdev_pcie_root_port_request_unplug(struct vmdev_pcie_root_port *port);
/* A request was made and the guest has not powered the slot off yet. */
bool vmdev_pcie_root_port_unplug_pending(struct vmdev_pcie_root_port *port);
/* The slot's power controller is on (Slot Control.PCC clear). */
bool vmdev_pcie_root_port_powered(struct vmdev_pcie_root_port *port);

/* The slot and link state; the config space is the function's. */
void vmdev_pcie_root_port_save(struct vmdev_pcie_root_port *port,
                               struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_pcie_root_port_restore(struct vmdev_pcie_root_port *port,
                                 const void *data, size_t len,
                                 const char *name);

/* Append the PCI Express capability of an endpoint (PCIe 7.5.3) with its
 * link at 2.5 GT/s x1: what a function behind a root port carries.
 * Returns its offset, or 0 when the capability list is full. */
uint8_t vmdev_pcie_add_endpoint_capability(struct vmdev_pci_device *pdev);

#ifdef __cplusplus
}
#endif

#endif
