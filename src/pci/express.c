/* SPDX-License-Identifier: MIT */
/*
 * The PCI Express capability (PCIe Base 6.0, 7.5.3): what an endpoint
 * behind a root port carries, and the registers of a root port and its
 * hot-plug slot. The slot's behaviour is root_port.c's.
 */
#include "pci/express.h"

#include "pci/internal.h"
#include "pci/regs.h"
#include "vmdev/pcie.h"

/* 2.5 GT/s (Link Capabilities' speed encoding 1) on one lane. */
#define LINK_SPEED_2_5GT 0x1
#define LINK_WIDTH_X1 (1u << 4)
#define LINK_SPEEDS_VECTOR_2_5GT (1u << 1) /* Link Capabilities 2 */
#define DEVCAP_ROLE_BASED_ERRORS (1u << 15)

/* Device Control's fields software sets (7.5.3.4): error reporting,
 * relaxed ordering, payload and read request sizes, tags, no-snoop. */
#define DEVCTL_WRITABLE 0x7fff
/* Link Control (7.5.3.7) but Retrain Link, which reads as 0, and the
 * reserved bit 2. */
#define LNKCTL_WRITABLE 0x0fdb
#define SLTCTL_WRITABLE                                                       \
    (PCI_EXP_SLTCTL_ABPE | PCI_EXP_SLTCTL_PFDE | PCI_EXP_SLTCTL_MRLSCE |      \
     PCI_EXP_SLTCTL_PDCE | PCI_EXP_SLTCTL_CCIE | PCI_EXP_SLTCTL_HPIE |        \
     PCI_EXP_SLTCTL_AIC | PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC |           \
     PCI_EXP_SLTCTL_DLLSCE)
#define SLTSTA_EVENTS                                                         \
    (PCI_EXP_SLTSTA_ABP | PCI_EXP_SLTSTA_PFD | PCI_EXP_SLTSTA_MRLSC |         \
     PCI_EXP_SLTSTA_PDC | PCI_EXP_SLTSTA_CC | PCI_EXP_SLTSTA_DLLSC)
#define RTCTL_WRITABLE 0x1f   /* error and PME interrupt enables */
#define RTSTA_PME_STATUS 0x01 /* bit 16 of Root Status: its third byte */

uint8_t pcie_add_express_capability(struct vmdev_pci_device *pdev,
                                    unsigned port_type, uint8_t port_number,
                                    uint16_t physical_slot)
{
    uint8_t cap = vmdev_pci_add_capability(pdev, PCI_CAP_ID_EXP,
                                           PCI_EXP_CAP_SIZE);
    if (!cap)
        return 0;
    bool root_port = port_type == PCI_EXP_TYPE_ROOT_PORT;
    uint16_t flags = (uint16_t)(2 | port_type << 4);
    if (root_port)
        flags |= PCI_EXP_FLAGS_SLOT;
    vmdev_pci_set_config(pdev, cap + PCI_EXP_FLAGS, flags, 2);
    vmdev_pci_set_config(pdev, cap + PCI_EXP_DEVCAP,
                         DEVCAP_ROLE_BASED_ERRORS, 4);
    vmdev_pci_set_wmask(pdev, cap + PCI_EXP_DEVCTL, DEVCTL_WRITABLE, 2);

    uint32_t lnkcap = LINK_SPEED_2_5GT | LINK_WIDTH_X1 |
                      (uint32_t)port_number << 24;
    if (root_port) /* pciehp waits on Link Active to bring a slot up */
        lnkcap |= PCI_EXP_LNKCAP_DLLLARC;
    vmdev_pci_set_config(pdev, cap + PCI_EXP_LNKCAP, lnkcap, 4);
    vmdev_pci_set_wmask(pdev, cap + PCI_EXP_LNKCTL, LNKCTL_WRITABLE, 2);
    /* Trained; a root port's Link Active follows its slot. */
    vmdev_pci_set_config(pdev, cap + PCI_EXP_LNKSTA,
                         LINK_SPEED_2_5GT | LINK_WIDTH_X1, 2);
    vmdev_pci_set_config(pdev, cap + PCI_EXP_LNKCAP2,
                         LINK_SPEEDS_VECTOR_2_5GT, 4);
    if (!root_port)
        return cap;

    vmdev_pci_set_config(pdev, cap + PCI_EXP_SLTCAP,
                         PCI_EXP_SLTCAP_ABP | PCI_EXP_SLTCAP_PCP |
                             PCI_EXP_SLTCAP_AIP | PCI_EXP_SLTCAP_PIP |
                             PCI_EXP_SLTCAP_HPC |
                             (uint32_t)physical_slot
                                 << PCI_EXP_SLTCAP_PSN_SHIFT,
                         4);
    vmdev_pci_set_wmask(pdev, cap + PCI_EXP_SLTCTL, SLTCTL_WRITABLE, 2);
    for (unsigned i = 0; i < 2; i++)
        pdev->w1cmask[cap + PCI_EXP_SLTSTA + i] =
            (uint8_t)(SLTSTA_EVENTS >> (8 * i));
    vmdev_pci_set_wmask(pdev, cap + PCI_EXP_RTCTL, RTCTL_WRITABLE, 2);
    pdev->w1cmask[cap + PCI_EXP_RTSTA + 2] = RTSTA_PME_STATUS;
    return cap;
}

uint8_t vmdev_pcie_add_endpoint_capability(struct vmdev_pci_device *pdev)
{
    return pcie_add_express_capability(pdev, PCI_EXP_TYPE_ENDPOINT, 0, 0);
}
