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

    /* Set by the bus. */
    struct vmdev_pci_bus *bus;
    uint8_t slot;
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

#endif
