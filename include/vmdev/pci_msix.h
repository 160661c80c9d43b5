/* SPDX-License-Identifier: MIT */
/*
 * MSI-X (PCI 3.0, 6.8.2): the capability, the vector table and the
 * pending bit array. The table and PBA live in a BAR of the device; the
 * device's BAR handler forwards accesses in those ranges here. Callers
 * hold the device's lock (pdev->lock) around every call.
 */
#ifndef VMDEV_PCI_MSIX_H
#define VMDEV_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/irq.h"
#include "vmdev/pci.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_PCI_MSIX_MAX_VECTORS 2048
#define VMDEV_PCI_MSIX_ENTRY_SIZE 16

struct vmdev_pci_msix;

/* Messages sent, in all and through the sink's eventfds (route). */
struct vmdev_pci_msix_stats {
    uint64_t delivered, routed;
};

/*
 * Add the capability to pdev, with the table at table_offset and the PBA
 * at pba_offset of BAR `bar` (both 8-byte aligned, inside the BAR, which
 * is set first, and not overlapping). Every vector starts masked. NULL
 * with errno EINVAL or ENOMEM.
 */
struct vmdev_pci_msix *vmdev_pci_msix_new(struct vmdev_pci_device *pdev,
                                          uint16_t num_vectors, unsigned bar,
                                          uint32_t table_offset,
                                          uint32_t pba_offset,
                                          const struct vmdev_msi_sink *sink);
/* Accepts NULL. */
void vmdev_pci_msix_free(struct vmdev_pci_msix *msix);

/* The capability's offset in config space, and the table's vectors. */
uint8_t vmdev_pci_msix_capability(const struct vmdev_pci_msix *msix);
uint16_t vmdev_pci_msix_num_vectors(const struct vmdev_pci_msix *msix);

/* Bytes of BAR space the table and the PBA take. */
uint32_t vmdev_pci_msix_table_size(uint16_t num_vectors);
uint32_t vmdev_pci_msix_pba_size(uint16_t num_vectors);

/* Message Control.Enable is set. */
bool vmdev_pci_msix_enabled(const struct vmdev_pci_msix *msix);
struct vmdev_pci_msix_stats
vmdev_pci_msix_stats(const struct vmdev_pci_msix *msix);

/* Signal `vector`: sent now, or left pending while masked. Returns false
 * when MSI-X is disabled or the vector does not exist. */
bool vmdev_pci_msix_notify(struct vmdev_pci_msix *msix, uint16_t vector);

/* From the device's config_written hook, which every function with MSI-X
 * must call it from: Enable and Function Mask take effect here, and a
 * change may release pending messages. */
void vmdev_pci_msix_config_written(struct vmdev_pci_msix *msix, uint32_t offset,
                                   unsigned size);

/* Accesses inside the table and PBA; 4- or 8-byte, naturally aligned
 * (6.8.2.9); anything else reads as zero and writes nothing. */
uint64_t vmdev_pci_msix_table_read(struct vmdev_pci_msix *msix, uint64_t offset,
                                   unsigned size);
void vmdev_pci_msix_table_write(struct vmdev_pci_msix *msix, uint64_t offset,
                                uint64_t value, unsigned size);
uint64_t vmdev_pci_msix_pba_read(struct vmdev_pci_msix *msix, uint64_t offset,
                                 unsigned size);

void vmdev_pci_msix_save(const struct vmdev_pci_msix *msix,
                         struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_pci_msix_restore(struct vmdev_pci_msix *msix, const void *data, size_t len,
                           const char *name);

#ifdef __cplusplus
}
#endif

#endif
