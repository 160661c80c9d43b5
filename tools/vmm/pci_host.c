/* SPDX-License-Identifier: MIT */
#include "pci_host.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "vmdev/pci.h"
#include "vmdev/resource.h"
#include "vmdev/virtio_pci.h"

#define MAX_FUNCTIONS (VMDEV_PCI_SLOTS - 1)

struct vmm_pci {
    struct vmm_vm *vm;
    struct vmdev_pci_bus *bus;
    struct vmdev_resource_pool *mmio;
    vmm_set_gsi_fn *set_gsi;
    void *gsi_opaque;

    /* PCI interrupts are active low and shared: a line is low while any
     * function on it asserts. */
    pthread_mutex_t intx_lock;
    unsigned asserted[PCI_INTX_GSI_COUNT];

    struct vmdev_virtio_pci *functions[MAX_FUNCTIONS];
    unsigned num_functions;
};

static struct vmdev_bus *bus_for(struct vmm_pci *pci,
                                 const struct vmdev_pci_bar *bar)
{
    return bar->type == VMDEV_PCI_BAR_IO ? pci->vm->pio : pci->vm->mmio;
}

/* The bus owner's side of a BAR move (see vmdev_pci_bus_apply_bar_changes). */
static int map_bar(void *opaque, struct vmdev_pci_device *pdev, unsigned index,
                   uint64_t address)
{
    struct vmm_pci *pci = opaque;
    const struct vmdev_pci_bar *bar = &pdev->bars[index];
    return vmdev_bus_register(bus_for(pci, bar), address, bar->size,
                              bar->access_sizes, bar->ops, bar->opaque);
}

static void unmap_bar(void *opaque, struct vmdev_pci_device *pdev,
                      unsigned index, uint64_t address)
{
    struct vmm_pci *pci = opaque;
    vmdev_bus_unregister(bus_for(pci, &pdev->bars[index]), address);
}

static void set_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
    struct vmm_pci *pci = opaque;
    unsigned gsi = pci_intx_gsi(slot, pin);
    unsigned line = gsi - PCI_INTX_GSI_BASE;
    pthread_mutex_lock(&pci->intx_lock);
    if (level)
        pci->asserted[line]++;
    else if (pci->asserted[line])
        pci->asserted[line]--;
    bool electrical = pci->asserted[line] == 0;
    pthread_mutex_unlock(&pci->intx_lock);
    pci->set_gsi(pci->gsi_opaque, gsi, electrical);
}

/* After a guest write: apply any BAR moves it made, outside bus locks. */
static void after_write(void *opaque)
{
    struct vmm_pci *pci = opaque;
    vmdev_pci_bus_apply_bar_changes(pci->bus);
}

struct vmm_pci *vmm_pci_create(struct vmm_vm *vm, vmm_set_gsi_fn *set_gsi,
                               void *gsi_opaque)
{
    struct vmm_pci *pci = calloc(1, sizeof(*pci));
    if (!pci)
        return NULL;
    pci->vm = vm;
    pci->set_gsi = set_gsi;
    pci->gsi_opaque = gsi_opaque;
    pthread_mutex_init(&pci->intx_lock, NULL);
    struct vmdev_pci_bus_owner owner = { map_bar, unmap_bar, set_intx, pci };
    pci->bus = vmdev_pci_bus_new(&owner);
    pci->mmio = vmdev_resource_pool_new(GUEST_PCI_MMIO, GUEST_PCI_MMIO_SIZE);
    if (!pci->bus || !pci->mmio ||
        vmdev_bus_register(vm->pio, VMDEV_PCI_CONF1_PORT, VMDEV_PCI_CONF1_LEN,
                           VMDEV_ACCESS_UP_TO_4, &vmdev_pci_conf1_ops,
                           pci->bus) ||
        vmdev_bus_register(vm->mmio, GUEST_PCI_ECAM, GUEST_PCI_ECAM_SIZE,
                           VMDEV_ACCESS_UP_TO_4, &vmdev_pci_ecam_ops,
                           pci->bus)) {
        fprintf(stderr, "vmdev-run: cannot set up the PCI host bridge\n");
        vmm_pci_destroy(pci);
        return NULL;
    }
    /* Deasserted PCI lines idle high. */
    for (unsigned i = 0; i < PCI_INTX_GSI_COUNT; i++)
        set_gsi(gsi_opaque, PCI_INTX_GSI_BASE + i, true);
    vm->after_write = after_write;
    vm->after_write_opaque = pci;
    return pci;
}

void vmm_pci_destroy(struct vmm_pci *pci)
{
    if (!pci)
        return;
    if (pci->vm->after_write_opaque == pci)
        pci->vm->after_write = NULL;
    for (unsigned i = 0; i < pci->num_functions; i++) {
        vmdev_pci_bus_remove(pci->bus, &pci->functions[i]->pci);
        vmdev_virtio_pci_release(pci->functions[i]);
        free(pci->functions[i]);
    }
    vmdev_bus_unregister(pci->vm->pio, VMDEV_PCI_CONF1_PORT);
    vmdev_bus_unregister(pci->vm->mmio, GUEST_PCI_ECAM);
    vmdev_pci_bus_free(pci->bus);
    vmdev_resource_pool_free(pci->mmio);
    pthread_mutex_destroy(&pci->intx_lock);
    free(pci);
}

int vmm_pci_add_virtio(struct vmm_pci *pci, struct vmdev_virtio_device *vdev)
{
    if (pci->num_functions == MAX_FUNCTIONS) {
        fprintf(stderr, "vmdev-run: no PCI slot left for %s\n", vdev->name);
        return -1;
    }
    struct vmdev_virtio_pci *vp = calloc(1, sizeof(*vp));
    struct vmdev_msi_sink msi = { vmm_vm_send_msi, pci->vm };
    uint64_t bar;
    if (!vp || vmdev_virtio_pci_init(vp, vdev, &msi)) {
        fprintf(stderr, "vmdev-run: cannot create virtio-pci for %s\n",
                vdev->name);
        free(vp);
        return -1;
    }
    /* Like firmware, place the BAR; the OS keeps it and enables decode. */
    if (vmdev_resource_alloc(pci->mmio, VMDEV_VIRTIO_PCI_BAR_SIZE,
                             VMDEV_VIRTIO_PCI_BAR_SIZE, &bar) ||
        vmdev_pci_bus_add(pci->bus, &vp->pci, -1) < 0) {
        fprintf(stderr, "vmdev-run: no room on PCI for %s\n", vdev->name);
        vmdev_virtio_pci_release(vp);
        free(vp);
        return -1;
    }
    vmdev_pci_bar_assign(&vp->pci, VMDEV_VIRTIO_PCI_BAR, bar);
    pci->functions[pci->num_functions++] = vp;
    return 0;
}
