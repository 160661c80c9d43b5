/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's PCI: the libvmdev bus behind conf1 and ECAM, BARs placed
 * from the PCI memory window and mapped on the VM's buses, INTx to the
 * IOAPIC, and virtio-pci functions for the virtio devices.
 */
#ifndef VMM_PCI_HOST_H
#define VMM_PCI_HOST_H

#include <stdbool.h>

#include "sandbox.h"
#include "vm.h"
#include "vmdev/device_manager.h"
#include "vmdev/pci.h"
#include "vmdev/virtio.h"

struct vmm_pci;

#define VMM_PCI_MAX_IO_THREADS 16
/* Root ports: eight functions in each of slots 1-31 of bus 0. */
#define VMM_PCI_MAX_PORTS ((VMDEV_PCI_SLOTS - 1) * VMDEV_PCI_FUNCTIONS)

/* Drive an IOAPIC input pin (electrical level). */
typedef void vmm_set_gsi_fn(void *opaque, unsigned gsi, bool level);

/*
 * The host bridge, added to devices as id (conf1 ports, ECAM window
 * and the INTx GSIs, reserved from gsis, are its resources), with `ports`
 * PCI Express root ports (up to VMM_PCI_MAX_PORTS; their windows are the
 * host's resources too) and io_threads I/O threads (1 to
 * VMM_PCI_MAX_IO_THREADS) for the virtio queues: queue q of each device
 * is served on thread q % io_threads.
 * Removing it, with the rest of the machine, frees it; the virtio
 * functions were added after it and so go before it. Each I/O thread
 * confines itself (sandbox.h) to what the devices' code calls, plus
 * io_extra when not NULL (what a backend running there needs besides).
 * The bus and every virtio device added log to log.
 * NULL after printing why.
 */
struct vmm_pci *vmm_pci_create(struct vmm_vm *vm,
                               struct vmdev_device_manager *devices,
                               const char *id, struct vmdev_resource_pool *gsis,
                               vmm_set_gsi_fn *set_gsi, void *gsi_opaque,
                               struct vmdev_log *log, unsigned io_threads,
                               const struct vmm_syscall_list *io_extra,
                               unsigned ports);

/* Creates a virtio device whose name (and snapshot section) is id; NULL
 * after printing why. */
typedef struct vmdev_virtio_device *vmm_make_virtio_fn(const char *id,
                                                       void *opaque);

/*
 * Add a virtio device on PCI to devices as type with id (NULL: one
 * generated from the type): make() creates it, then it gets a virtio-pci
 * function in the first free root port, its BAR placed in the port's
 * window. The entry owns the port's slot; removing it unplugs the
 * function and destroys the device. Call only while no vCPU runs.
 * Returns 0 or -1 after printing why.
 */
int vmm_pci_add_virtio(struct vmm_pci *pci, struct vmdev_device_manager *devices,
                       const char *type, const char *id,
                       vmm_make_virtio_fn *make, void *make_opaque);

/* I/O thread index % io_threads's loop: where a device's backend runs
 * (a network card's queue pair n on loop n). */
struct vmdev_event_loop *vmm_pci_io_loop(struct vmm_pci *pci, unsigned index);

/* Where the guest finds the device of entry dev: "bb:dd.f" into out.
 * False for a device not on PCI. */
bool vmm_pci_address(struct vmm_pci *pci, const struct vmdev_device *dev,
                     char *out, size_t len);

/* Queue notifications that arrived through ioeventfds. */
uint64_t vmm_pci_ioeventfd_kicks(struct vmm_pci *pci);
/* MSI-X interrupts the functions sent by writing their vectors' irqfds
 * themselves (vmdev_msi_sink.route). */
uint64_t vmm_pci_msix_routed(struct vmm_pci *pci);

#endif
