/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's PCI: the libvmdev bus behind conf1 and ECAM, BARs placed
 * from the PCI memory window and mapped on the VM's buses, INTx to the
 * IOAPIC, and virtio-pci functions for the virtio devices.
 */
#ifndef VMM_PCI_HOST_H
#define VMM_PCI_HOST_H

#include <stdbool.h>

#include "vm.h"
#include "vmdev/virtio.h"

struct vmm_pci;

/* Drive an IOAPIC input pin (electrical level). */
typedef void vmm_set_gsi_fn(void *opaque, unsigned gsi, bool level);

struct vmm_pci *vmm_pci_create(struct vmm_vm *vm, vmm_set_gsi_fn *set_gsi,
                               void *gsi_opaque);
void vmm_pci_destroy(struct vmm_pci *pci);

/* Wrap an initialised virtio device in a virtio-pci function in the next
 * free slot, with its BAR placed. Returns 0 or -1 after printing why. */
int vmm_pci_add_virtio(struct vmm_pci *pci, struct vmdev_virtio_device *vdev);

/* Queue notifications that arrived through ioeventfds. */
uint64_t vmm_pci_ioeventfd_kicks(struct vmm_pci *pci);

#endif
