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

struct vmdev_virtio_pci {
    struct vmdev_pci_device pci;
    struct vmdev_pci_msix msix;
    struct vmdev_virtio_device *vdev;
    /* Transport registers (virtio 1.2, 4.1.4.3), under vdev->lock; the
     * vectors (config_vector, each queue's msix_vector) are also read
     * atomically by interrupts raised from a queue's lock. */
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select;
    uint16_t config_vector;
    /* The ISR status and the INTx level it drives, under isr_lock: an
     * interrupt may come from a queue's lock (taken after vdev->lock). */
    pthread_mutex_t isr_lock;
    uint8_t isr;
    uint8_t cfg_cap; /* offset of the PCI config access capability */
};

/*
 * Wrap `vdev` (initialised, with at most VMDEV_VIRTIO_PCI_MAX_QUEUES
 * queues) in a PCI function. MSI-X messages go to `msi`. Returns 0,
 * -EINVAL or -ENOMEM. Plug vp->pci into a bus afterwards.
 */
__attribute__((warn_unused_result))
int vmdev_virtio_pci_init(struct vmdev_virtio_pci *vp,
                          struct vmdev_virtio_device *vdev,
                          const struct vmdev_msi_sink *msi);
void vmdev_virtio_pci_release(struct vmdev_virtio_pci *vp);

/* BAR 0 offset of the notify register of `queue`, for an ioeventfd. */
uint64_t vmdev_virtio_pci_notify_offset(uint16_t queue);
/* A notification that arrived some other way (ioeventfd). */
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
