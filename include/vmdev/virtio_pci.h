/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci modern transport (virtio 1.2, 4.1): a PCI function with
 * the common, notify, ISR, device and PCI-config-access capabilities in
 * one 64-bit memory BAR, MSI-X vectors for each queue and for
 * configuration changes, and INTx with the ISR when MSI-X is off.
 *
 * BAR 0 layout:
 *   0x0000 common configuration    0x3000 notifications (4 bytes a queue)
 *   0x1000 ISR status              0x4000 MSI-X table
 *   0x2000 device configuration    0x6000 MSI-X pending bits
 */
#ifndef VMDEV_VIRTIO_PCI_H
#define VMDEV_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/irq.h"
#include "vmdev/pci.h"
#include "vmdev/pci_msix.h"
#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_VIRTIO_PCI_BAR 0
#define VMDEV_VIRTIO_PCI_BAR_SIZE 0x8000
#define VMDEV_VIRTIO_PCI_NOTIFY_OFFSET 0x3000
#define VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER 4
/* One MSI-X vector per queue and one for configuration changes, in the
 * 8 KiB between the table's offset and the PBA's in BAR 0. */
#define VMDEV_VIRTIO_PCI_MAX_QUEUES 511
#define VMDEV_VIRTIO_MSI_NO_VECTOR 0xffff

struct vmdev_event_loop;
struct vmdev_virtio_pci;

/*
 * What the VMM wires a virtio-pci function to. Only msi is required.
 *
 * queue_loop gives each queue an event loop: the function makes an
 * eventfd per queue, watches it there and attaches the queue to that
 * loop (vmdev_virtio_attach_queue), so the device serves and finishes
 * the queue's requests on the loop's thread. With set_ioeventfd as well,
 * the function asks the VMM, whenever the guest maps BAR 0, to have the
 * guest's writes to each notify register signal that queue's eventfd
 * without an exit (KVM_IOEVENTFD), and to undo it before the BAR moves
 * or the function leaves the bus. A notify write that still arrives
 * through the BAR (no ioeventfd, or set_ioeventfd failed) kicks the
 * queue on the writer's thread.
 */
struct vmdev_virtio_pci_config {
    struct vmdev_msi_sink msi; /* where the MSI-X messages go */
    /* The loop serving queue group `group` (vmdev_virtio_queue_group):
     * queues of one group share a loop. May be NULL: no eventfds. */
    struct vmdev_event_loop *(*queue_loop)(void *opaque, unsigned group);
    /* Have the guest's `len`-byte writes at guest physical `address`
     * signal `fd` (assign) or no longer (!assign). Returns 0 or a
     * negative errno; a failure leaves the writes trapping. Called from
     * the thread applying BAR changes or unplugging, without the
     * function's lock. May be NULL. */
    int (*set_ioeventfd)(void *opaque, uint64_t address, unsigned len,
                         int fd, bool assign);
    void *opaque;
    /* The function will sit behind a PCI Express root port: it carries
     * the Express endpoint capability (vmdev/pcie.h). */
    bool express;
};

/*
 * Wrap `vdev` (initialised, with at most VMDEV_VIRTIO_PCI_MAX_QUEUES
 * queues) in a PCI function. Returns NULL with errno EINVAL (too many
 * queues, too large a device configuration) or ENOMEM, or with the errno
 * of a queue's eventfd, watch or attachment. Plug
 * vmdev_virtio_pci_function() into a bus afterwards.
 */
struct vmdev_virtio_pci *
vmdev_virtio_pci_new(struct vmdev_virtio_device *vdev,
                     const struct vmdev_virtio_pci_config *config);
/*
 * Take the function off its bus if it is on one (its ioeventfds undone
 * before its BAR is unmapped), stop watching the queues' eventfds and
 * detach the queues from their loops, then free the transport. The
 * device stays the caller's: vmdev_virtio_free it afterwards. Accepts
 * NULL.
 */
void vmdev_virtio_pci_free(struct vmdev_virtio_pci *vp);

/* The PCI function, for vmdev_pci_bus_add and config-space access. */
struct vmdev_pci_device *vmdev_virtio_pci_function(struct vmdev_virtio_pci *vp);

struct vmdev_virtio_pci_stats {
    uint64_t eventfd_kicks; /* queue kicks through an eventfd */
    struct vmdev_pci_msix_stats msix;
};
struct vmdev_virtio_pci_stats
vmdev_virtio_pci_get_stats(const struct vmdev_virtio_pci *vp);

/* BAR 0 offset of the notify register of `queue`. */
uint64_t vmdev_virtio_pci_notify_offset(uint16_t queue);
/* A notification that arrived some other way than the BAR or the
 * function's own eventfds. */
void vmdev_virtio_pci_queue_kick(struct vmdev_virtio_pci *vp, uint16_t queue);

/* Transport registers, PCI config and MSI-X in sections under `name`;
 * the virtio device's own state in its section. */
void vmdev_virtio_pci_save(struct vmdev_virtio_pci *vp,
                           struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_virtio_pci_restore(struct vmdev_virtio_pci *vp, const void *data,
                             size_t len, const char *name);

#ifdef __cplusplus
}
#endif

#endif
