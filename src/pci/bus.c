/* SPDX-License-Identifier: MIT */
/*
 * PCI bus 0 behind a host bridge: slots and their functions, the buses
 * behind root ports, configuration access through mechanism #1 (PCI 3.0,
 * 3.2.2.3.2) and ECAM (PCIe 7.2.2), INTx to the owner, and the
 * reconciliation of BAR mappings.
 *
 * Locks, outermost first: apply_lock (BAR reconciliation and unplug),
 * lock (the slot table and the conf1 address), then a device's own lock.
 * The owner's map/unmap are called with apply_lock alone, never from
 * inside a config access, because they change the address-space buses
 * whose locks the access itself is holding.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "pci/internal.h"
#include "pci/regs.h"
#include "vmdev/log.h"
#include "vmdev/pci.h"

/* A generic PCIe host bridge (PCI id 1b36:0008). */
#define HOST_BRIDGE_VENDOR 0x1b36
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE 0x060000

#define CONF1_ENABLE 0x80000000u

struct vmdev_pci_bus {
    struct vmdev_pci_bus_owner owner;
    pthread_mutex_t apply_lock;
    pthread_mutex_t lock;
    struct vmdev_pci_device *slots[VMDEV_PCI_SLOTS][VMDEV_PCI_FUNCTIONS];
    uint32_t conf1_address;
    atomic_bool dirty;
    struct vmdev_pci_device host_bridge;
    struct vmdev_ratelimit log_limit; /* the guest's BAR placements */
};

void pci_bus_mark_dirty(struct vmdev_pci_bus *bus)
{
    if (bus)
        atomic_store(&bus->dirty, true);
}

void pci_bus_lock(struct vmdev_pci_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
}

void pci_bus_unlock(struct vmdev_pci_bus *bus)
{
    pthread_mutex_unlock(&bus->lock);
}

void pci_bus_set_intx(struct vmdev_pci_bus *bus, unsigned slot, unsigned pin,
                      bool level)
{
    if (bus && bus->owner.set_intx)
        bus->owner.set_intx(bus->owner.opaque, slot, pin, level);
}

struct vmdev_pci_bus *vmdev_pci_bus_new(const struct vmdev_pci_bus_owner *o)
{
    struct vmdev_pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    bus->owner = *o;
    pthread_mutex_init(&bus->apply_lock, NULL);
    pthread_mutex_init(&bus->lock, NULL);
    pci_device_init(&bus->host_bridge,
                    &(struct vmdev_pci_device_config){
                        .name = "host-bridge",
                        .vendor_id = HOST_BRIDGE_VENDOR,
                        .device_id = HOST_BRIDGE_DEVICE,
                        .class_code = CLASS_HOST_BRIDGE,
                        .subsystem_vendor_id = HOST_BRIDGE_VENDOR,
                        .subsystem_id = HOST_BRIDGE_DEVICE,
                    });
    bus->host_bridge.bus = bus;
    bus->slots[0][0] = &bus->host_bridge;
    return bus;
}

void vmdev_pci_bus_free(struct vmdev_pci_bus *bus)
{
    if (!bus)
        return;
    pci_device_release(&bus->host_bridge);
    pthread_mutex_destroy(&bus->apply_lock);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

int vmdev_pci_bus_add_function(struct vmdev_pci_bus *bus,
                               struct vmdev_pci_device *pdev, int slot,
                               unsigned fn)
{
    if (slot == 0 || slot >= VMDEV_PCI_SLOTS || fn >= VMDEV_PCI_FUNCTIONS ||
        (slot < 0 && fn) || pdev->bus)
        return -EINVAL;
    pthread_mutex_lock(&bus->lock);
    int ret = 0;
    if (slot < 0) {
        for (slot = 1; slot < VMDEV_PCI_SLOTS && bus->slots[slot][0]; slot++)
            ;
        if (slot == VMDEV_PCI_SLOTS)
            ret = -ENOSPC;
    } else if (bus->slots[slot][fn]) {
        ret = -EBUSY;
    } else if (fn && !bus->slots[slot][0]) {
        ret = -EINVAL; /* software looks for function 0 first */
    }
    if (ret == 0) {
        pdev->bus = bus;
        pdev->slot = (uint8_t)slot;
        pdev->fn = (uint8_t)fn;
        bus->slots[slot][fn] = pdev;
        if (fn) /* 6.2.1: function 0 says the slot has more */
            bus->slots[slot][0]->config[PCI_HEADER_TYPE] |=
                PCI_HEADER_TYPE_MULTIFUNCTION;
        ret = slot;
    }
    pthread_mutex_unlock(&bus->lock);
    if (ret >= 0)
        pci_bus_mark_dirty(bus);
    return ret;
}

int vmdev_pci_bus_add(struct vmdev_pci_bus *bus, struct vmdev_pci_device *pdev,
                      int slot)
{
    return vmdev_pci_bus_add_function(bus, pdev, slot, 0);
}

/* Take BAR `index` off the address space where the owner mapped it; the
 * device hears of it first, so nothing of its points there after. */
static void unmap_bar(struct vmdev_pci_bus *bus, struct vmdev_pci_device *pdev,
                      unsigned index)
{
    struct vmdev_pci_bar *bar = &pdev->bars[index];
    if (!bar->mapped)
        return;
    if (pdev->ops && pdev->ops->bar_mapped)
        pdev->ops->bar_mapped(pdev, index, bar->mapped_address, false);
    if (bus->owner.unmap_bar)
        bus->owner.unmap_bar(bus->owner.opaque, pdev, index,
                             bar->mapped_address);
    bar->mapped = false;
}

void vmdev_pci_bus_remove(struct vmdev_pci_bus *bus,
                          struct vmdev_pci_device *pdev)
{
    if (pdev->bus != bus || pdev == &bus->host_bridge)
        return;
    pthread_mutex_lock(&bus->apply_lock);
    pthread_mutex_lock(&bus->lock);
    /* Unreachable by config accesses from here on. */
    if (pdev->upstream)
        pcie_port_detach(pdev->upstream);
    else
        bus->slots[pdev->slot][pdev->fn] = NULL;
    pthread_mutex_unlock(&bus->lock);
    for (unsigned i = 0; i < VMDEV_PCI_NUM_BARS; i++)
        unmap_bar(bus, pdev, i);
    pthread_mutex_lock(&pdev->intx_lock);
    if (pdev->intx_output)
        pci_bus_set_intx(bus, pci_device_intx_slot(pdev),
                         pdev->config[PCI_INTERRUPT_PIN], false);
    pdev->intx_output = false;
    pdev->bus = NULL;
    pdev->upstream = NULL;
    pthread_mutex_unlock(&pdev->intx_lock);
    pthread_mutex_unlock(&bus->apply_lock);
}

struct vmdev_pci_device *vmdev_pci_bus_device(struct vmdev_pci_bus *bus,
                                              unsigned slot)
{
    if (slot >= VMDEV_PCI_SLOTS)
        return NULL;
    pthread_mutex_lock(&bus->lock);
    struct vmdev_pci_device *pdev = bus->slots[slot][0];
    pthread_mutex_unlock(&bus->lock);
    return pdev;
}

bool vmdev_pci_bus_bar_changes_pending(const struct vmdev_pci_bus *bus)
{
    return atomic_load(&bus->dirty);
}

static void reconcile_bar(struct vmdev_pci_bus *bus,
                          struct vmdev_pci_device *pdev, unsigned index)
{
    struct vmdev_pci_bar *bar = &pdev->bars[index];
    uint64_t address = 0;
    if (bar->type == VMDEV_PCI_BAR_NONE)
        return;
    if (pdev->lock)
        pthread_mutex_lock(pdev->lock);
    bool decoded = vmdev_pci_bar_decoded(pdev, index, &address);
    if (pdev->lock)
        pthread_mutex_unlock(pdev->lock);
    /* Behind a port, the address must also fall in one of its windows. */
    if (decoded && pdev->upstream)
        decoded = pcie_port_forwards(pdev->upstream, bar, address);

    if (bar->mapped && (!decoded || address != bar->mapped_address))
        unmap_bar(bus, pdev, index);
    if (decoded && !bar->mapped) {
        int ret = bus->owner.map_bar
                      ? bus->owner.map_bar(bus->owner.opaque, pdev, index,
                                           address)
                      : -ENOSYS;
        if (ret) {
            /* The guest placed it over something else; it stays dark. */
            vmdev_log_guest(bus->owner.log, &bus->log_limit,
                            "%s: BAR %u at %#llx cannot be mapped (%d)",
                            pdev->name, index, (unsigned long long)address,
                            ret);
            return;
        }
        bar->mapped = true;
        bar->mapped_address = address;
        if (pdev->ops && pdev->ops->bar_mapped)
            pdev->ops->bar_mapped(pdev, index, address, true);
    }
}

static void reconcile_function(struct vmdev_pci_bus *bus,
                               struct vmdev_pci_device *pdev)
{
    for (unsigned i = 0; pdev && i < VMDEV_PCI_NUM_BARS; i++)
        reconcile_bar(bus, pdev, i);
}

void vmdev_pci_bus_apply_bar_changes(struct vmdev_pci_bus *bus)
{
    if (!atomic_load(&bus->dirty))
        return;
    pthread_mutex_lock(&bus->apply_lock);
    if (atomic_exchange(&bus->dirty, false)) {
        for (unsigned devfn = 0; devfn < VMDEV_PCI_SLOTS * VMDEV_PCI_FUNCTIONS;
             devfn++) {
            pthread_mutex_lock(&bus->lock);
            struct vmdev_pci_device *pdev =
                bus->slots[devfn / VMDEV_PCI_FUNCTIONS]
                          [devfn % VMDEV_PCI_FUNCTIONS];
            struct vmdev_pci_device *child =
                pdev && pdev->port ? pcie_port_child(pdev->port) : NULL;
            pthread_mutex_unlock(&bus->lock);
            /* Unplug takes apply_lock too, so both stay valid here. */
            reconcile_function(bus, pdev);
            reconcile_function(bus, child);
        }
    }
    pthread_mutex_unlock(&bus->apply_lock);
}

/* The function a config access at (busno, slot, fn) reaches: on bus 0
 * the slot table, on another bus the device behind the root port whose
 * secondary bus it is. Bus lock held. */
static struct vmdev_pci_device *find_function(struct vmdev_pci_bus *bus,
                                              unsigned busno, unsigned slot,
                                              unsigned fn)
{
    if (busno == 0)
        return bus->slots[slot][fn];
    for (unsigned s = 1; s < VMDEV_PCI_SLOTS; s++) {
        for (unsigned f = 0; f < VMDEV_PCI_FUNCTIONS; f++) {
            struct vmdev_pci_device *pdev = bus->slots[s][f];
            struct vmdev_pci_device *child =
                pdev && pdev->port ? pcie_port_route(pdev->port, busno, slot,
                                                     fn)
                                   : NULL;
            if (child)
                return child;
        }
    }
    return NULL;
}

static uint32_t config_read(struct vmdev_pci_bus *bus, unsigned busno,
                            unsigned slot, unsigned fn, uint32_t reg,
                            unsigned size)
{
    uint32_t value = UINT32_MAX >> (32 - 8 * size);
    pthread_mutex_lock(&bus->lock);
    struct vmdev_pci_device *pdev = find_function(bus, busno, slot, fn);
    if (pdev)
        value = vmdev_pci_config_read(pdev, reg, size);
    pthread_mutex_unlock(&bus->lock);
    return value;
}

static void config_write(struct vmdev_pci_bus *bus, unsigned busno,
                         unsigned slot, unsigned fn, uint32_t reg,
                         uint32_t value, unsigned size)
{
    pthread_mutex_lock(&bus->lock);
    struct vmdev_pci_device *pdev = find_function(bus, busno, slot, fn);
    if (pdev)
        vmdev_pci_config_write(pdev, reg, value, size);
    pthread_mutex_unlock(&bus->lock);
}

/*
 * Mechanism #1: 0xCF8 holds enable, bus, device, function and register
 * (bits 31, 23:16, 15:11, 10:8, 7:2); 0xCFC-0xCFF is the selected dword.
 */
static uint64_t conf1_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vmdev_pci_bus *bus = opaque;
    if (offset < 4) {
        if (offset != 0 || size != 4)
            return UINT32_MAX;
        pthread_mutex_lock(&bus->lock);
        uint32_t address = bus->conf1_address;
        pthread_mutex_unlock(&bus->lock);
        return address;
    }
    unsigned byte = (unsigned)offset - 4;
    if (byte % size)
        return UINT32_MAX >> (32 - 8 * size);
    pthread_mutex_lock(&bus->lock);
    uint32_t address = bus->conf1_address;
    pthread_mutex_unlock(&bus->lock);
    if (!(address & CONF1_ENABLE))
        return UINT32_MAX >> (32 - 8 * size);
    return config_read(bus, (address >> 16) & 0xff, (address >> 11) & 0x1f,
                       (address >> 8) & 7, (address & 0xfc) + byte, size);
}

static void conf1_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    struct vmdev_pci_bus *bus = opaque;
    if (offset < 4) {
        /* Only a dword write selects; byte writes to 0xCF9 are the
         * chipset's reset control, not ours. */
        if (offset == 0 && size == 4) {
            pthread_mutex_lock(&bus->lock);
            bus->conf1_address = (uint32_t)value & (CONF1_ENABLE | 0xfffffc);
            pthread_mutex_unlock(&bus->lock);
        }
        return;
    }
    unsigned byte = (unsigned)offset - 4;
    pthread_mutex_lock(&bus->lock);
    uint32_t address = bus->conf1_address;
    pthread_mutex_unlock(&bus->lock);
    if (byte % size || !(address & CONF1_ENABLE))
        return;
    config_write(bus, (address >> 16) & 0xff, (address >> 11) & 0x1f,
                 (address >> 8) & 7, (address & 0xfc) + byte, (uint32_t)value,
                 size);
}

const struct vmdev_bus_ops vmdev_pci_conf1_ops = { conf1_read, conf1_write };

/* ECAM: offset = bus << 20 | device << 15 | function << 12 | register. */
static uint64_t ecam_read(void *opaque, uint64_t offset, unsigned size)
{
    if (size > 4 || offset % size || offset >= VMDEV_PCI_ECAM_SIZE)
        return UINT64_MAX >> (64 - 8 * size);
    return config_read(opaque, (unsigned)(offset >> 20), (offset >> 15) & 0x1f,
                       (offset >> 12) & 7, offset & 0xfff, size);
}

static void ecam_write(void *opaque, uint64_t offset, uint64_t value,
                       unsigned size)
{
    if (size > 4 || offset % size || offset >= VMDEV_PCI_ECAM_SIZE)
        return;
    config_write(opaque, (unsigned)(offset >> 20), (offset >> 15) & 0x1f,
                 (offset >> 12) & 7, offset & 0xfff, (uint32_t)value, size);
}

const struct vmdev_bus_ops vmdev_pci_ecam_ops = { ecam_read, ecam_write };
