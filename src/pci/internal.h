/* SPDX-License-Identifier: MIT */
/* Between a PCI device and the bus it sits on (src/pci only). */
#ifndef VMDEV_PCI_INTERNAL_H
#define VMDEV_PCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "vmdev/pci.h"

struct vmdev_pci_device {
    const char *name;
    uint8_t config[VMDEV_PCI_CONFIG_SIZE];
    uint8_t wmask[VMDEV_PCI_CONFIG_SIZE];   /* bits the guest may write */
    uint8_t w1cmask[VMDEV_PCI_CONFIG_SIZE]; /* bits a 1 write clears */
    struct vmdev_pci_bar bars[VMDEV_PCI_NUM_BARS];
    const struct vmdev_pci_device_ops *ops;
    void *opaque;
    pthread_mutex_t *lock; /* vmdev_pci_device_config.lock */

    /* Set by the bus. A function behind a root port has the port's bus
     * as its bus, slot and fn 0, and the port as upstream. */
    struct vmdev_pci_bus *bus;
    uint8_t slot, fn;
    struct vmdev_pcie_root_port *upstream;
    /* When this function is itself a root port. */
    struct vmdev_pcie_root_port *port;
    bool intx_level;  /* what the device asserts */
    bool intx_output; /* what the bus owner was last told */
    /* Guards the two above and Status.Interrupt: a device may raise
     * INTx from a thread that does not hold *lock (virtio-pci from a
     * queue's lock). Taken after *lock, and nothing is taken under it
     * but the bus owner's set_intx. */
    pthread_mutex_t intx_lock;
    uint8_t last_cap; /* offset of the last capability, 0 for none */
    uint32_t cap_end; /* first byte after it */
};

/* The bus's host bridge is a function it holds in itself. */
void pci_device_init(struct vmdev_pci_device *pdev,
                     const struct vmdev_pci_device_config *config);
void pci_device_release(struct vmdev_pci_device *pdev);

/* Config space changed what a BAR decodes; both accept a NULL bus (a
 * device not plugged in yet). */
void pci_bus_mark_dirty(struct vmdev_pci_bus *bus);
void pci_bus_set_intx(struct vmdev_pci_bus *bus, unsigned slot, unsigned pin,
                      bool level);
/* The slot whose INTx lines the function's pin drives. */
unsigned pci_device_intx_slot(const struct vmdev_pci_device *pdev);
/* The bus's lock (the slot tables and every route through a port). */
void pci_bus_lock(struct vmdev_pci_bus *bus);
void pci_bus_unlock(struct vmdev_pci_bus *bus);

/*
 * Between the bus and its root ports (root_port.c). A port's child and
 * link change with both the bus lock and the port's lock held, so either
 * one is enough to read them.
 */
/* The function at (busno, slot, fn) when busno is the port's secondary
 * bus and its link is up; bus lock held. */
struct vmdev_pci_device *pcie_port_route(struct vmdev_pcie_root_port *port,
                                         unsigned busno, unsigned slot,
                                         unsigned fn);
/* The function in the port's slot, whatever its link; bus lock held. */
struct vmdev_pci_device *pcie_port_child(struct vmdev_pcie_root_port *port);
/* The port forwards [address, address + size) of this BAR type to its
 * secondary side (memory or prefetchable window, Command.Memory). */
bool pcie_port_forwards(struct vmdev_pcie_root_port *port,
                        const struct vmdev_pci_bar *bar, uint64_t address);
/* The child leaves the slot (bus lock held): presence and link drop, and
 * if the guest still had it powered, it hears of a surprise removal. */
void pcie_port_detach(struct vmdev_pcie_root_port *port);
/* The port's secondary bus number as the guest programmed it. */
unsigned pcie_port_secondary_bus(struct vmdev_pcie_root_port *port);

#endif
