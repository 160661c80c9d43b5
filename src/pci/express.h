/* SPDX-License-Identifier: MIT */
/* The PCI Express capability's registers (PCIe Base 6.0, 7.5.3), as
 * offsets into the capability, and its builder (src/pci only). */
#ifndef VMDEV_PCI_EXPRESS_H
#define VMDEV_PCI_EXPRESS_H

#include <stdint.h>

#include "vmdev/pci.h"

#define PCI_EXP_FLAGS 0x02
#define PCI_EXP_DEVCAP 0x04
#define PCI_EXP_DEVCTL 0x08
#define PCI_EXP_LNKCAP 0x0c
#define PCI_EXP_LNKCTL 0x10
#define PCI_EXP_LNKSTA 0x12
#define PCI_EXP_SLTCAP 0x14
#define PCI_EXP_SLTCTL 0x18
#define PCI_EXP_SLTSTA 0x1a
#define PCI_EXP_RTCTL 0x1c
#define PCI_EXP_RTSTA 0x20
#define PCI_EXP_LNKCAP2 0x2c
#define PCI_EXP_CAP_SIZE 0x3c /* version 2, through Slot Status 2 */

#define PCI_EXP_TYPE_ENDPOINT 0x0
#define PCI_EXP_TYPE_ROOT_PORT 0x4
#define PCI_EXP_FLAGS_SLOT 0x0100

/* Link Capabilities and Status (7.5.3.6, 7.5.3.8). */
#define PCI_EXP_LNKCAP_DLLLARC (1u << 20)
#define PCI_EXP_LNKSTA_DLLLA 0x2000

/* Slot Capabilities, Control and Status (7.5.3.9-11). */
#define PCI_EXP_SLTCAP_ABP 0x01  /* attention button present */
#define PCI_EXP_SLTCAP_PCP 0x02  /* power controller present */
#define PCI_EXP_SLTCAP_AIP 0x08  /* attention indicator present */
#define PCI_EXP_SLTCAP_PIP 0x10  /* power indicator present */
#define PCI_EXP_SLTCAP_HPC 0x40  /* hot-plug capable */
#define PCI_EXP_SLTCAP_PSN_SHIFT 19

#define PCI_EXP_SLTCTL_ABPE 0x0001
#define PCI_EXP_SLTCTL_PFDE 0x0002
#define PCI_EXP_SLTCTL_MRLSCE 0x0004
#define PCI_EXP_SLTCTL_PDCE 0x0008
#define PCI_EXP_SLTCTL_CCIE 0x0010
#define PCI_EXP_SLTCTL_HPIE 0x0020
#define PCI_EXP_SLTCTL_AIC 0x00c0
#define PCI_EXP_SLTCTL_ATTN_IND_OFF 0x00c0
#define PCI_EXP_SLTCTL_PIC 0x0300
#define PCI_EXP_SLTCTL_PWR_IND_ON 0x0100
#define PCI_EXP_SLTCTL_PWR_IND_BLINK 0x0200
#define PCI_EXP_SLTCTL_PWR_IND_OFF 0x0300
#define PCI_EXP_SLTCTL_PCC 0x0400 /* set: power off */
#define PCI_EXP_SLTCTL_DLLSCE 0x1000

#define PCI_EXP_SLTSTA_ABP 0x0001
#define PCI_EXP_SLTSTA_PFD 0x0002
#define PCI_EXP_SLTSTA_MRLSC 0x0004
#define PCI_EXP_SLTSTA_PDC 0x0008
#define PCI_EXP_SLTSTA_CC 0x0010
#define PCI_EXP_SLTSTA_PDS 0x0040
#define PCI_EXP_SLTSTA_DLLSC 0x0100

/*
 * Append a version 2 Express capability of type `port_type`, its link
 * at 2.5 GT/s x1 and up (Link Status shows it trained), and for a root
 * port a hot-plug slot. Returns its offset, or 0 when there is no room.
 */
uint8_t pcie_add_express_capability(struct vmdev_pci_device *pdev,
                                    unsigned port_type, uint8_t port_number,
                                    uint16_t physical_slot);

#endif
