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

/* The guest let go of a device (or was made to) and it is gone. */
typedef void vmm_pci_removed_fn(void *opaque, const char *id);

struct vmm_pci_config {
    struct vmm_vm *vm;
    struct vmdev_device_manager *devices;
    const char *id;                   /* the host bridge's */
    struct vmdev_resource_pool *gsis; /* the INTx GSIs are reserved here */
    vmm_set_gsi_fn *set_gsi;
    void *gsi_opaque;
    struct vmdev_log *log; /* the bus's and every virtio device's */
    /* 1 to VMM_PCI_MAX_IO_THREADS; each confines itself (sandbox.h) to
     * what the devices' code calls, plus io_extra when not NULL (what a
     * backend running there needs besides). */
    unsigned io_threads;
    const struct vmm_syscall_list *io_extra;
    unsigned ports; /* root ports, up to VMM_PCI_MAX_PORTS */
    /* The device manager's loop (the main thread's): a device the guest
     * let go of is removed there. */
    struct vmdev_event_loop *loop;
};

/*
 * The host bridge, added to devices as id (conf1 ports, ECAM window and
 * the INTx GSIs are its resources), with its root ports (their windows
 * are the host's resources too) and I/O threads for the virtio queues:
 * queue group g of each device is served on thread g % io_threads.
 * Removing it, with the rest of the machine, frees it; the virtio
 * functions were added after it and so go before it. NULL after
 * reporting why.
 */
struct vmm_pci *vmm_pci_create(const struct vmm_pci_config *config);

/* Creates a virtio device whose name (and snapshot section) is id; NULL
 * after reporting why. */
typedef struct vmdev_virtio_device *vmm_make_virtio_fn(const char *id,
                                                       void *opaque);

struct vmm_virtio_spec {
    const char *type; /* the device-manager entry's */
    const char *id;   /* NULL: one generated from the type */
    vmm_make_virtio_fn *make;
    void *make_opaque;
    /* After the device is freed, its entry removed (or its add failed
     * once make() had made it); vdev only says which. May be NULL. */
    void (*gone)(void *opaque, struct vmdev_virtio_device *vdev);
    void *gone_opaque;
    /* The guest runs: it hears of the device through its port's slot. */
    bool hotplug;
    /* The machine holds the device (hvc0's host side writes to it): it is
     * not removed, by device-del nor when the guest powers its slot off. */
    bool fixed;
};

/*
 * Add a virtio device on PCI: make() creates it, then it gets a virtio-pci
 * function in the first free root port, its BAR placed in the port's
 * window. The entry owns the BAR and the port's slot; removing it unplugs
 * the function and destroys the device. On the device manager's thread.
 * Returns 0 or -1 after reporting why (report.h), with nothing left.
 */
int vmm_pci_add_virtio(struct vmm_pci *pci, const struct vmm_virtio_spec *spec);

enum { VMM_PCI_REMOVED, VMM_PCI_REMOVAL_PENDING };
/*
 * Take the device of entry dev out: at once when force (a surprise
 * removal, the guest told after the fact) or when the guest does not
 * power its slot; otherwise press its port's attention button and
 * return VMM_PCI_REMOVAL_PENDING: once the guest has released the device
 * and powered the slot off, the device manager's loop removes it. Either
 * way the removed callback hears of it. -ENODEV: not a removable device
 * on a port; -EBUSY (reported): the guest is busy with the slot.
 */
int vmm_pci_remove(struct vmm_pci *pci, struct vmdev_device *dev, bool force);
void vmm_pci_on_removed(struct vmm_pci *pci, vmm_pci_removed_fn *fn,
                        void *opaque);

/* A virtio function's counters, and which device it carries. */
struct vmm_pci_counters {
    const struct vmdev_virtio_device *vdev;
    uint64_t guest_errors;  /* faults the device found in what the guest gave */
    uint64_t eventfd_kicks; /* queue notifications through ioeventfds */
    uint64_t interrupts;    /* MSI-X messages sent */
};
bool vmm_pci_counters(struct vmm_pci *pci, const struct vmdev_device *dev,
                      struct vmm_pci_counters *out);

/* Where a device on PCI sits and whether its removal waits on the guest. */
struct vmm_pci_place {
    char address[16]; /* "bb:dd.f" as the guest reaches it */
    char port[24];    /* its root port's name */
    bool removal_pending;
};
bool vmm_pci_place(struct vmm_pci *pci, const struct vmdev_device *dev,
                   struct vmm_pci_place *out);

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
