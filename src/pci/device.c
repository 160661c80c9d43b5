/* SPDX-License-Identifier: MIT */
/*
 * A PCI function's configuration space: the type 0 header, BARs sized by
 * write masks, the capability list, INTx and save/restore. What the guest
 * may change is exactly what wmask allows; everything else reads back as
 * the device described it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/internal.h"
#include "pci/regs.h"
#include "vmdev/log.h"
#include "vmdev/pci.h"
#include "vmdev/pcie.h"

#define STATE_VERSION 1

void vmdev_pci_set_config(struct vmdev_pci_device *pdev, uint32_t offset,
                          uint32_t value, unsigned size)
{
    for (unsigned i = 0; i < size && offset + i < VMDEV_PCI_CONFIG_SIZE; i++)
        pdev->config[offset + i] = (uint8_t)(value >> (8 * i));
}

uint32_t vmdev_pci_get_config(const struct vmdev_pci_device *pdev,
                              uint32_t offset, unsigned size)
{
    uint32_t value = 0;
    for (unsigned i = 0; i < size && offset + i < VMDEV_PCI_CONFIG_SIZE; i++)
        value |= (uint32_t)pdev->config[offset + i] << (8 * i);
    return value;
}

void vmdev_pci_set_wmask(struct vmdev_pci_device *pdev, uint32_t offset,
                         uint32_t mask, unsigned size)
{
    for (unsigned i = 0; i < size && offset + i < VMDEV_PCI_CONFIG_SIZE; i++)
        pdev->wmask[offset + i] = (uint8_t)(mask >> (8 * i));
}

void pci_device_init(struct vmdev_pci_device *pdev,
                     const struct vmdev_pci_device_config *c)
{
    memset(pdev, 0, sizeof(*pdev));
    pthread_mutex_init(&pdev->intx_lock, NULL);
    pdev->name = c->name;
    pdev->ops = c->ops;
    pdev->opaque = c->opaque;
    pdev->lock = c->lock;
    vmdev_pci_set_config(pdev, PCI_VENDOR_ID, c->vendor_id, 2);
    vmdev_pci_set_config(pdev, PCI_DEVICE_ID, c->device_id, 2);
    vmdev_pci_set_config(pdev, PCI_REVISION_ID, c->revision, 1);
    vmdev_pci_set_config(pdev, PCI_CLASS_PROG, c->class_code, 3);
    vmdev_pci_set_config(pdev, PCI_HEADER_TYPE, 0, 1);
    vmdev_pci_set_config(pdev, PCI_SUBSYSTEM_VENDOR_ID,
                         c->subsystem_vendor_id, 2);
    vmdev_pci_set_config(pdev, PCI_SUBSYSTEM_ID, c->subsystem_id, 2);
    vmdev_pci_set_config(pdev, PCI_INTERRUPT_PIN,
                         c->interrupt_pin <= 4 ? c->interrupt_pin : 0, 1);
    /* 6.2.2: the bits software may set in Command. */
    vmdev_pci_set_wmask(pdev, PCI_COMMAND,
                        PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
                            PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE,
                        2);
    vmdev_pci_set_wmask(pdev, 0x0c, 0xff, 1); /* cache line size */
    vmdev_pci_set_wmask(pdev, 0x0d, 0xff, 1); /* latency timer */
    vmdev_pci_set_wmask(pdev, PCI_INTERRUPT_LINE, 0xff, 1);
}

static bool is_power_of_two(uint64_t x)
{
    return x && !(x & (x - 1));
}

void pci_device_release(struct vmdev_pci_device *pdev)
{
    pthread_mutex_destroy(&pdev->intx_lock);
}

struct vmdev_pci_device *
vmdev_pci_device_new(const struct vmdev_pci_device_config *config)
{
    struct vmdev_pci_device *pdev = malloc(sizeof(*pdev));
    if (!pdev)
        return NULL;
    pci_device_init(pdev, config);
    return pdev;
}

void vmdev_pci_device_free(struct vmdev_pci_device *pdev)
{
    if (!pdev)
        return;
    pci_device_release(pdev);
    free(pdev);
}

void *vmdev_pci_device_opaque(const struct vmdev_pci_device *pdev)
{
    return pdev->opaque;
}

struct vmdev_pci_bus *vmdev_pci_device_bus(const struct vmdev_pci_device *pdev)
{
    return pdev->bus;
}

unsigned vmdev_pci_device_slot(const struct vmdev_pci_device *pdev)
{
    return pdev->slot;
}

bool vmdev_pci_device_address(const struct vmdev_pci_device *pdev,
                              unsigned *bus, unsigned *slot, unsigned *fn)
{
    if (!pdev->bus)
        return false;
    *bus = pdev->upstream ? pcie_port_secondary_bus(pdev->upstream) : 0;
    *slot = pdev->slot;
    *fn = pdev->fn;
    return true;
}

/* INTx behind a root port is the port's pin (PCI-PCI 1.2, 9.1: the
 * swizzle of device 0 leaves the pin as it is), so the line is the
 * port's slot's. */
unsigned pci_device_intx_slot(const struct vmdev_pci_device *pdev)
{
    return pdev->upstream
               ? vmdev_pcie_root_port_function(pdev->upstream)->slot
               : pdev->slot;
}

const struct vmdev_pci_bar *
vmdev_pci_device_bar(const struct vmdev_pci_device *pdev, unsigned index)
{
    return index < VMDEV_PCI_NUM_BARS ? &pdev->bars[index] : NULL;
}

int vmdev_pci_set_bar(struct vmdev_pci_device *pdev, unsigned index,
                      enum vmdev_pci_bar_type type, uint64_t size,
                      bool prefetchable, const struct vmdev_bus_ops *ops,
                      void *opaque, unsigned access_sizes)
{
    if (index >= VMDEV_PCI_NUM_BARS || !is_power_of_two(size) || !ops ||
        pdev->bars[index].type != VMDEV_PCI_BAR_NONE)
        return -EINVAL;
    uint32_t reg = PCI_BASE_ADDRESS_0 + 4 * index;
    switch (type) {
    case VMDEV_PCI_BAR_IO:
        /* 6.2.5.1: I/O BARs are at least 4 bytes, at most 256. */
        if (size < 4 || size > 256)
            return -EINVAL;
        vmdev_pci_set_config(pdev, reg, PCI_BASE_ADDRESS_SPACE_IO, 4);
        vmdev_pci_set_wmask(pdev, reg, ~(uint32_t)(size - 1) & ~3u, 4);
        break;
    case VMDEV_PCI_BAR_MEM32:
        if (size < 16 || size > (UINT64_C(1) << 31))
            return -EINVAL;
        vmdev_pci_set_config(pdev, reg,
                             prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0,
                             4);
        vmdev_pci_set_wmask(pdev, reg, ~(uint32_t)(size - 1) & ~15u, 4);
        break;
    case VMDEV_PCI_BAR_MEM64:
        if (size < 16 || index == VMDEV_PCI_NUM_BARS - 1 ||
            pdev->bars[index + 1].type != VMDEV_PCI_BAR_NONE)
            return -EINVAL;
        vmdev_pci_set_config(pdev, reg,
                             PCI_BASE_ADDRESS_MEM_TYPE_64 |
                                 (prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH
                                               : 0),
                             4);
        vmdev_pci_set_wmask(pdev, reg, (uint32_t)~(size - 1) & ~15u, 4);
        vmdev_pci_set_wmask(pdev, reg + 4, (uint32_t)(~(size - 1) >> 32), 4);
        break;
    default:
        return -EINVAL;
    }
    struct vmdev_pci_bar *bar = &pdev->bars[index];
    bar->type = type;
    bar->prefetchable = prefetchable;
    bar->size = size;
    bar->ops = ops;
    bar->opaque = opaque;
    bar->access_sizes = access_sizes;
    return 0;
}

uint64_t vmdev_pci_bar_address(const struct vmdev_pci_device *pdev,
                               unsigned index)
{
    if (index >= VMDEV_PCI_NUM_BARS)
        return 0;
    uint32_t reg = PCI_BASE_ADDRESS_0 + 4 * index;
    uint32_t low = vmdev_pci_get_config(pdev, reg, 4);
    switch (pdev->bars[index].type) {
    case VMDEV_PCI_BAR_IO:
        return low & ~3u;
    case VMDEV_PCI_BAR_MEM32:
        return low & ~15u;
    case VMDEV_PCI_BAR_MEM64:
        return (low & ~15u) |
               (uint64_t)vmdev_pci_get_config(pdev, reg + 4, 4) << 32;
    default:
        return 0;
    }
}

void vmdev_pci_bar_assign(struct vmdev_pci_device *pdev, unsigned index,
                          uint64_t address)
{
    if (index >= VMDEV_PCI_NUM_BARS)
        return;
    uint32_t reg = PCI_BASE_ADDRESS_0 + 4 * index;
    /* Through the write masks, as if the firmware wrote the BAR. */
    for (unsigned i = 0; i < 4; i++) {
        uint8_t wm = pdev->wmask[reg + i];
        pdev->config[reg + i] = (uint8_t)((pdev->config[reg + i] & ~wm) |
                                          ((address >> (8 * i)) & wm));
    }
    if (pdev->bars[index].type == VMDEV_PCI_BAR_MEM64)
        for (unsigned i = 0; i < 4; i++)
            pdev->config[reg + 4 + i] = (uint8_t)(address >> (32 + 8 * i));
    pci_bus_mark_dirty(pdev->bus);
}

bool vmdev_pci_bar_decoded(const struct vmdev_pci_device *pdev,
                           unsigned index, uint64_t *address)
{
    if (index >= VMDEV_PCI_NUM_BARS)
        return false;
    const struct vmdev_pci_bar *bar = &pdev->bars[index];
    uint16_t command = (uint16_t)vmdev_pci_get_config(pdev, PCI_COMMAND, 2);
    uint64_t addr = vmdev_pci_bar_address(pdev, index);
    bool enabled;
    switch (bar->type) {
    case VMDEV_PCI_BAR_IO:
        enabled = command & PCI_COMMAND_IO;
        break;
    case VMDEV_PCI_BAR_MEM32:
    case VMDEV_PCI_BAR_MEM64:
        enabled = command & PCI_COMMAND_MEMORY;
        break;
    default:
        return false;
    }
    /* An address of 0 is unassigned; one whose end wraps is unusable. */
    if (!enabled || addr == 0 || addr + bar->size - 1 < addr)
        return false;
    *address = addr;
    return true;
}

uint8_t vmdev_pci_add_capability(struct vmdev_pci_device *pdev, uint8_t id,
                                 uint8_t len)
{
    /* Capabilities start after the header, dword aligned (6.7). */
    uint32_t offset = pdev->last_cap ? (pdev->cap_end + 3) & ~3u : 0x40;
    if (len < 2 || offset + len > 256)
        return 0;
    pdev->config[offset] = id;
    pdev->config[offset + 1] = 0;
    if (pdev->last_cap)
        pdev->config[pdev->last_cap + 1] = (uint8_t)offset;
    else
        pdev->config[PCI_CAPABILITY_LIST] = (uint8_t)offset;
    pdev->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    pdev->last_cap = (uint8_t)offset;
    pdev->cap_end = offset + len;
    return (uint8_t)offset;
}

static void lock_device(struct vmdev_pci_device *pdev)
{
    if (pdev->lock)
        pthread_mutex_lock(pdev->lock);
}

static void unlock_device(struct vmdev_pci_device *pdev)
{
    if (pdev->lock)
        pthread_mutex_unlock(pdev->lock);
}

static bool access_ok(uint32_t offset, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && offset % size == 0 &&
           offset < VMDEV_PCI_CONFIG_SIZE;
}

uint32_t vmdev_pci_config_read(struct vmdev_pci_device *pdev, uint32_t offset,
                               unsigned size)
{
    if (!access_ok(offset, size))
        return UINT32_MAX;
    lock_device(pdev);
    if (pdev->ops && pdev->ops->config_read)
        pdev->ops->config_read(pdev, offset, size);
    pthread_mutex_lock(&pdev->intx_lock); /* Status.Interrupt */
    uint32_t value = vmdev_pci_get_config(pdev, offset, size);
    pthread_mutex_unlock(&pdev->intx_lock);
    unlock_device(pdev);
    return value;
}

/* Drive the owner's INTx input from the pin and Command.INTX_DISABLE;
 * intx_lock held. */
static void update_intx(struct vmdev_pci_device *pdev)
{
    uint16_t command = (uint16_t)vmdev_pci_get_config(pdev, PCI_COMMAND, 2);
    bool output = pdev->intx_level && !(command & PCI_COMMAND_INTX_DISABLE);
    uint8_t pin = pdev->config[PCI_INTERRUPT_PIN];
    /* 6.2.3: Status.Interrupt shows the pin whatever INTX_DISABLE says. */
    if (pdev->intx_level)
        pdev->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        pdev->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    if (output == pdev->intx_output || !pin)
        return;
    pdev->intx_output = output;
    pci_bus_set_intx(pdev->bus, pci_device_intx_slot(pdev), pin, output);
}

static bool overlaps(uint32_t offset, unsigned size, uint32_t start,
                     uint32_t len)
{
    return offset < start + len && start < offset + size;
}

void vmdev_pci_config_write(struct vmdev_pci_device *pdev, uint32_t offset,
                            uint32_t value, unsigned size)
{
    if (!access_ok(offset, size))
        return;
    lock_device(pdev);
    pthread_mutex_lock(&pdev->intx_lock);
    for (unsigned i = 0; i < size; i++) {
        uint32_t at = offset + i;
        uint8_t byte = (uint8_t)(value >> (8 * i));
        uint8_t wm = pdev->wmask[at];
        pdev->config[at] = (uint8_t)((pdev->config[at] & ~wm) | (byte & wm));
        pdev->config[at] &= (uint8_t)~(byte & pdev->w1cmask[at]);
    }
    if (overlaps(offset, size, PCI_COMMAND, 2))
        update_intx(pdev);
    pthread_mutex_unlock(&pdev->intx_lock);
    if (overlaps(offset, size, PCI_COMMAND, 2) ||
        overlaps(offset, size, PCI_BASE_ADDRESS_0, 4 * VMDEV_PCI_NUM_BARS))
        pci_bus_mark_dirty(pdev->bus);
    if (pdev->ops && pdev->ops->config_written)
        pdev->ops->config_written(pdev, offset, size);
    unlock_device(pdev);
}

void vmdev_pci_set_intx(struct vmdev_pci_device *pdev, bool level)
{
    pthread_mutex_lock(&pdev->intx_lock);
    pdev->intx_level = level;
    update_intx(pdev);
    pthread_mutex_unlock(&pdev->intx_lock);
}

void vmdev_pci_device_save(const struct vmdev_pci_device *pdev,
                           struct vmdev_state_writer *w, const char *name)
{
    struct vmdev_pci_device *locked = (struct vmdev_pci_device *)pdev;
    pthread_mutex_lock(&locked->intx_lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_bytes(w, "config", pdev->config, sizeof(pdev->config));
    vmdev_state_put_u8(w, "intx_level", pdev->intx_level);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&locked->intx_lock);
}

int vmdev_pci_device_restore(struct vmdev_pci_device *pdev, const void *data,
                             size_t len, const char *name)
{
    struct vmdev_state_section s;
    uint8_t level;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    uint8_t *saved = malloc(VMDEV_PCI_CONFIG_SIZE);
    if (!saved)
        return -ENOMEM;
    if (vmdev_state_get_bytes(&s, "config", saved, VMDEV_PCI_CONFIG_SIZE) ||
        vmdev_state_get_u8(&s, "intx_level", &level) || level > 1) {
        free(saved);
        return -EINVAL;
    }
    lock_device(pdev);
    pthread_mutex_lock(&pdev->intx_lock);
    /* Only what the guest could have written is taken from the snapshot:
     * identity, BAR types and capability layout stay the device's own. */
    for (unsigned i = 0; i < VMDEV_PCI_CONFIG_SIZE; i++)
        pdev->config[i] = (uint8_t)((pdev->config[i] & ~pdev->wmask[i]) |
                                    (saved[i] & pdev->wmask[i]));
    pdev->intx_level = level;
    update_intx(pdev);
    pthread_mutex_unlock(&pdev->intx_lock);
    pci_bus_mark_dirty(pdev->bus);
    unlock_device(pdev);
    free(saved);
    return 0;
}
