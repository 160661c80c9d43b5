/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration space through conf1 and ECAM, with BAR reconciliation
 * and MSI-X table accesses in between: the guest's whole reach into a PCI
 * function, and into a root port's bridge header and hot-plug slot with
 * an endpoint behind it that the host plugs, asks back and pulls as the
 * input says. Identity registers must never change, and a mapped BAR
 * must always be one that config space decodes.
 */
#include <errno.h>
#include <stdlib.h>

#include "vmdev/pci.h"
#include "vmdev/pci_msix.h"
#include "vmdev/pcie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int map_bar(void *opaque, struct vmdev_pci_device *pdev,
                   unsigned index, uint64_t address)
{
    /* Refuse some placements, as a real owner does on overlap. */
    return (address & 0x10000) ? -17 : 0;
}

static void unmap_bar(void *opaque, struct vmdev_pci_device *pdev,
                      unsigned index, uint64_t address)
{
}

static void set_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
}

static void send_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
}

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
}

static const struct vmdev_bus_ops bar_ops = { bar_read, bar_write };
static const struct vmdev_pci_bus_owner owner = {
    .map_bar = map_bar, .unmap_bar = unmap_bar, .set_intx = set_intx,
};

static struct vmdev_pci_device *dev;
static struct vmdev_pci_msix *msix;
static bool powered_off; /* the guest powered the port's slot off */

static void slot_powered_off(void *opaque, struct vmdev_pcie_root_port *port)
{
    powered_off = true;
}

/* The host's side of the port: plug an endpoint, ask for it back, pull
 * it, or take it out once the guest let go of it. */
static void port_op(struct vmdev_pci_bus *bus, struct vmdev_pcie_root_port *port,
                    uint32_t value)
{
    struct vmdev_pci_device *child = vmdev_pcie_root_port_device(port);
    if (child && (powered_off || (value & 3) == 3)) {
        vmdev_pci_bus_remove(bus, child);
        vmdev_pci_device_free(child);
        powered_off = false;
    } else if (child) {
        (void)vmdev_pcie_root_port_request_unplug(port);
    } else {
        child = vmdev_pci_device_new(&(struct vmdev_pci_device_config){
            .name = "child", .vendor_id = 0x1af4, .device_id = 0x1041,
            .interrupt_pin = 1 });
        if (!child ||
            vmdev_pci_set_bar(child, 0, VMDEV_PCI_BAR_MEM64, 0x8000, false,
                              &bar_ops, NULL, VMDEV_ACCESS_ANY) ||
            !vmdev_pcie_add_endpoint_capability(child))
            abort();
        /* A hot-plug waits for a slot the guest released. */
        bool vacant = vmdev_pcie_root_port_vacant(port);
        int ret = vmdev_pcie_root_port_plug(port, child, value & 4);
        if (ret == -EBUSY && (value & 4) && !vacant)
            vmdev_pci_device_free(child);
        else if (ret)
            abort();
    }
}

static void msix_written(struct vmdev_pci_device *pdev, uint32_t offset,
                         unsigned size)
{
    vmdev_pci_msix_config_written(msix, offset, size);
}

static const struct vmdev_pci_device_ops dev_ops = {
    .config_written = msix_written,
};

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n && *p < end; i++)
        v |= (uint64_t)*(*p)++ << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmdev_pci_bus *bus = vmdev_pci_bus_new(&owner);
    if (!bus)
        return 0;
    dev = vmdev_pci_device_new(&(struct vmdev_pci_device_config){
        .name = "fuzz", .vendor_id = 0x1af4, .device_id = 0x1042,
        .class_code = 0x018000, .revision = 1, .subsystem_vendor_id = 0x1af4,
        .subsystem_id = 0x1100, .interrupt_pin = 1, .ops = &dev_ops,
    });
    if (!dev)
        abort();
    struct vmdev_msi_sink sink = { .send = send_msi, .opaque = NULL };
    if (vmdev_pci_set_bar(dev, 0, VMDEV_PCI_BAR_MEM64, 0x4000, true,
                          &bar_ops, NULL, VMDEV_ACCESS_ANY) ||
        vmdev_pci_set_bar(dev, 2, VMDEV_PCI_BAR_IO, 64, false, &bar_ops,
                          NULL, VMDEV_ACCESS_ANY) ||
        vmdev_pci_set_bar(dev, 3, VMDEV_PCI_BAR_MEM32, 0x1000, false,
                          &bar_ops, NULL, VMDEV_ACCESS_ANY) ||
        !(msix = vmdev_pci_msix_new(dev, 4, 0, 0x2000, 0x3000, &sink)) ||
        vmdev_pci_bus_add(bus, dev, 1) != 1)
        abort();
    struct vmdev_pcie_root_port *port =
        vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
            .name = "port", .secondary_bus = 1, .mem_base = 0xc0000000,
            .mem_size = 1u << 20, .pref_base = 1ull << 32,
            .pref_size = 1u << 20, .msi = sink,
            .slot_powered_off = slot_powered_off });
    if (!port ||
        vmdev_pci_bus_add(bus, vmdev_pcie_root_port_function(port), 2) != 2)
        abort();
    powered_off = false;

    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        uint8_t op = (uint8_t)take(&p, end, 1);
        unsigned sz = 1u << (op >> 4 & 3);
        uint32_t where = (uint32_t)take(&p, end, 4);
        uint32_t value = (uint32_t)take(&p, end, 4);
        switch (op & 7) {
        case 0:
            vmdev_pci_conf1_ops.write(bus, where & 7, value, sz > 4 ? 4 : sz);
            break;
        case 1:
            (void)vmdev_pci_conf1_ops.read(bus, where & 7, sz > 4 ? 4 : sz);
            break;
        case 2: /* buses 0-3: the port's secondary one, or a renumbered */
            vmdev_pci_ecam_ops.write(bus, where % (4 * VMDEV_PCI_ECAM_BUS_SIZE),
                                     value, sz);
            break;
        case 3:
            (void)vmdev_pci_ecam_ops.read(
                bus, where % (4 * VMDEV_PCI_ECAM_BUS_SIZE), sz);
            break;
        case 4:
            vmdev_pci_msix_table_write(msix, where & 0x7f, value, sz);
            break;
        case 5:
            (void)vmdev_pci_msix_notify(msix, (uint16_t)(value & 7));
            (void)vmdev_pci_msix_pba_read(msix, where & 0xf, sz);
            break;
        case 6:
            if (value & 8)
                port_op(bus, port, value);
            else
                vmdev_pci_set_intx(dev, value & 1);
            break;
        default:
            vmdev_pci_bus_apply_bar_changes(bus);
            break;
        }
    }
    vmdev_pci_bus_apply_bar_changes(bus);
    if (vmdev_pci_get_config(dev, 0, 4) != 0x10421af4)
        abort();
    for (unsigned i = 0; i < VMDEV_PCI_NUM_BARS; i++) {
        uint64_t address;
        bool decoded = vmdev_pci_bar_decoded(dev, i, &address);
        if (vmdev_pci_device_bar(dev, i)->mapped &&
            (!decoded || address != vmdev_pci_device_bar(dev, i)->mapped_address))
            abort();
    }
    struct vmdev_pci_device *child = vmdev_pcie_root_port_device(port);
    if (child) {
        vmdev_pci_bus_remove(bus, child);
        vmdev_pci_device_free(child);
    }
    if (vmdev_pci_get_config(vmdev_pcie_root_port_function(port), 0, 4) !=
        0x000c1b36)
        abort();
    vmdev_pci_bus_remove(bus, vmdev_pcie_root_port_function(port));
    vmdev_pcie_root_port_free(port);
    vmdev_pci_bus_remove(bus, dev);
    vmdev_pci_msix_free(msix);
    vmdev_pci_device_free(dev);
    vmdev_pci_bus_free(bus);
    return 0;
}
