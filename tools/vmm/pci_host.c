/* SPDX-License-Identifier: MIT */
#include "pci_host.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "layout.h"
#include "report.h"
#include "sandbox.h"
#include "vmdev/event_loop.h"
#include "vmdev/pci.h"
#include "vmdev/pcie.h"
#include "vmdev/resource.h"
#include "vmdev/virtio_pci.h"

/* Each root port's windows: room for a virtio function's BAR, and for
 * 64-bit prefetchable BARs (PCI-PCI bridge windows are 1 MiB grained). */
#define PORT_MEM_WINDOW (1ull << 20)
#define PORT_PREF_WINDOW (32ull << 20)

struct virtio_function;

/* A root port on bus 0 and what sits in it. */
struct vmm_port {
    struct vmm_pci *pci;
    struct vmdev_pcie_root_port *port;
    struct virtio_function *function; /* plugged in, or NULL */
    /* The guest powered the slot off (set on a vCPU thread, taken on the
     * device manager's loop, which then removes the function). */
    atomic_bool powered_off;
    bool removal_requested; /* device-del pressed the button */
    unsigned index;
    /* Its memory window, where the device in it has its BAR. */
    struct vmdev_resource_pool *window;
    char name[24];
};

/* A virtio device on the bus: the device-manager entry's opaque. */
struct virtio_function {
    struct vmm_pci *pci;
    struct vmdev_virtio_device *vdev;
    struct vmdev_virtio_pci *vp;
    struct vmm_port *port; /* where vp's function is plugged, or NULL */
    struct vmdev_device *dev; /* its device-manager entry */
    /* After the device is freed (vmm_virtio_spec.gone). */
    void (*gone)(void *opaque, struct vmdev_virtio_device *vdev);
    void *gone_opaque;
    bool fixed; /* vmm_virtio_spec.fixed */
    char transport_section[VMDEV_DEVICE_ID_MAX + sizeof("/pci")];
};

struct vmm_pci {
    struct vmm_vm *vm;
    struct vmdev_device_manager *devices;
    struct vmdev_pci_bus *bus;
    struct vmdev_resource_pool *mmio, *mmio64;
    vmm_set_gsi_fn *set_gsi;
    void *gsi_opaque;
    struct vmdev_log *log;

    /* PCI interrupts are active low and shared: a line is low while any
     * function on it asserts. */
    pthread_mutex_t intx_lock;
    unsigned asserted[PCI_INTX_GSI_COUNT];

    /* Serve the virtio queues, off the vCPU threads: the queues of group
     * g (vmdev_virtio_queue_group) of every device on I/O thread
     * g % num_io_loops. */
    struct vmdev_event_loop *io_loops[VMM_PCI_MAX_IO_THREADS];
    unsigned num_io_loops;
    /* What the freed functions counted (vmdev_virtio_pci_stats). */
    atomic_uint_fast64_t kicks_by_unplugged, routed_by_unplugged;
    /* Port i is function i % 8 of slot 1 + i / 8, its secondary bus i + 1. */
    struct vmm_port ports[VMM_PCI_MAX_PORTS];
    unsigned num_ports;
    /* Signalled when the guest powers a slot off; watched on the device
     * manager's loop. */
    struct vmdev_event_loop *loop;
    int powered_off_fd;
    struct vmdev_event_watch *powered_off_watch;
    vmm_pci_removed_fn *removed;
    void *removed_opaque;
};

static struct vmdev_bus *bus_for(struct vmm_pci *pci,
                                 const struct vmdev_pci_bar *bar)
{
    return bar->type == VMDEV_PCI_BAR_IO ? pci->vm->pio : pci->vm->mmio;
}

/* The VM's ioeventfds, for the virtio-pci functions' notify registers:
 * KVM signals fd on the guest's write, without an exit to user space. */
static int set_ioeventfd(void *opaque, uint64_t address, unsigned len, int fd,
                         bool assign)
{
    struct vmm_pci *pci = opaque;
    struct kvm_ioeventfd io = {
        .addr = address,
        .len = len,
        .fd = fd,
        .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };
    if (pci->vm->vm_fd < 0) /* a VM without KVM: the writes trap */
        return -ENOTSUP;
    if (ioctl(pci->vm->vm_fd, KVM_IOEVENTFD, &io) == 0)
        return 0;
    int err = errno;
    if (assign)
        vmm_report("KVM_IOEVENTFD at 0x%llx: %s\n",
                (unsigned long long)io.addr, strerror(err));
    return -err;
}

/* The bus owner's side of a BAR move (see vmdev_pci_bus_apply_bar_changes). */
static int map_bar(void *opaque, struct vmdev_pci_device *pdev, unsigned index,
                   uint64_t address)
{
    struct vmm_pci *pci = opaque;
    const struct vmdev_pci_bar *bar = vmdev_pci_device_bar(pdev, index);
    return vmdev_bus_register(bus_for(pci, bar), address, bar->size,
                              bar->access_sizes, bar->ops, bar->opaque);
}

static void unmap_bar(void *opaque, struct vmdev_pci_device *pdev,
                      unsigned index, uint64_t address)
{
    struct vmm_pci *pci = opaque;
    vmdev_bus_unregister(bus_for(pci, vmdev_pci_device_bar(pdev, index)),
                         address);
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

static void pci_destroy(void *opaque)
{
    struct vmm_pci *pci = opaque;
    if (pci->vm->after_write_opaque == pci)
        pci->vm->after_write = NULL;
    if (pci->powered_off_watch)
        vmdev_event_loop_remove(pci->loop, pci->powered_off_watch);
    if (pci->powered_off_fd >= 0)
        close(pci->powered_off_fd);
    /* Every function was removed before the host (added after it). */
    for (unsigned i = 0; i < pci->num_ports; i++) {
        struct vmdev_pcie_root_port *port = pci->ports[i].port;
        if (port)
            vmdev_pci_bus_remove(pci->bus,
                                 vmdev_pcie_root_port_function(port));
        vmdev_pcie_root_port_free(port);
        vmdev_resource_pool_free(pci->ports[i].window);
    }
    for (unsigned i = 0; i < pci->num_io_loops; i++)
        vmdev_event_loop_free(pci->io_loops[i]);
    vmdev_pci_bus_free(pci->bus);
    vmdev_resource_pool_free(pci->mmio);
    vmdev_resource_pool_free(pci->mmio64);
    pthread_mutex_destroy(&pci->intx_lock);
    free(pci);
}

static const struct vmdev_device_ops pci_host_ops = { pci_destroy, NULL, NULL };

/*
 * An I/O thread's calls: the device code of the queues it serves
 * (vmm_device_syscalls) and, for their interrupts, KVM's routes (a new
 * MSI route and its irqfd, or KVM_SIGNAL_MSI past the table's bound); a
 * device fault stops the VM (tgkill of the vCPUs).
 */
static const int io_syscalls[] = { SCMP_SYS(ioctl), SCMP_SYS(tgkill) };
static const unsigned long io_ioctls[] = { KVM_IRQFD, KVM_SET_GSI_ROUTING,
                                           KVM_SIGNAL_MSI };

/* The I/O threads, started and confined. */
static int start_io_loops(struct vmm_pci *pci, unsigned count,
                          const struct vmm_syscall_list *extra)
{
    if (count == 0)
        count = 1;
    if (count > VMM_PCI_MAX_IO_THREADS)
        count = VMM_PCI_MAX_IO_THREADS;
    for (; pci->num_io_loops < count; pci->num_io_loops++) {
        struct vmdev_event_loop *loop = vmdev_event_loop_new();
        if (!loop)
            return -1;
        pci->io_loops[pci->num_io_loops] = loop;
        if (vmdev_event_loop_start(loop))
            return -1;
        char name[16];
        snprintf(name, sizeof(name), "io%u", pci->num_io_loops);
        const struct vmm_syscall_list lists[] = {
            VMM_SYSCALL_LIST(io_syscalls, io_ioctls), vmm_device_syscalls,
            extra ? *extra : vmm_device_syscalls,
        };
        if (vmm_sandbox_enter_loop(loop, name, lists, 3))
            return -1;
    }
    return 0;
}

struct vmdev_event_loop *vmm_pci_io_loop(struct vmm_pci *pci, unsigned index)
{
    return pci->io_loops[index % pci->num_io_loops];
}

/* The guest powered a port's slot off: it let go of its device, which
 * the device manager's loop now removes. On a vCPU thread, under the PCI
 * bus's locks. */
static void port_powered_off(void *opaque, struct vmdev_pcie_root_port *port)
{
    struct vmm_port *p = opaque;
    (void)port;
    atomic_store(&p->powered_off, true);
    vmdev_eventfd_signal(p->pci->powered_off_fd);
}

/* Remove the entry and report it gone, by id. */
static void remove_entry(struct vmm_pci *pci, struct vmdev_device *dev)
{
    char id[VMDEV_DEVICE_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", vmdev_device_id(dev));
    vmdev_device_remove(pci->devices, dev);
    vmdev_log(pci->log, VMDEV_LOG_INFO, "%s: removed", id);
    if (pci->removed)
        pci->removed(pci->removed_opaque, id);
}

static void on_powered_off(void *opaque, uint32_t events)
{
    struct vmm_pci *pci = opaque;
    (void)events;
    vmdev_eventfd_drain(pci->powered_off_fd);
    for (unsigned i = 0; i < pci->num_ports; i++) {
        struct vmm_port *p = &pci->ports[i];
        /* Still off: a guest that powered the slot back on since uses
         * the device again. A device the machine holds stays. */
        if (atomic_exchange(&p->powered_off, false) && p->function &&
            !p->function->fixed && !vmdev_pcie_root_port_powered(p->port))
            remove_entry(pci, p->function->dev);
    }
}

/* Root ports with their bus numbers and windows, as firmware leaves
 * them; the host's entry owns the windows. */
static int create_ports(struct vmm_pci *pci, struct vmdev_device *dev,
                        unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        struct vmm_port *p = &pci->ports[i];
        pci->num_ports = i + 1; /* pci_destroy frees what was made */
        uint64_t mem, pref;
        if (vmdev_device_alloc(dev, pci->mmio, VMDEV_RESOURCE_MMIO,
                               PORT_MEM_WINDOW, PORT_MEM_WINDOW, &mem) ||
            vmdev_device_alloc(dev, pci->mmio64, VMDEV_RESOURCE_MMIO,
                               PORT_PREF_WINDOW, PORT_PREF_WINDOW, &pref))
            return -1;
        p->pci = pci;
        p->index = i;
        p->window = vmdev_resource_pool_new(mem, PORT_MEM_WINDOW);
        if (!p->window)
            return -1;
        snprintf(p->name, sizeof(p->name), "root-port%u", i);
        p->port = vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
            .name = p->name,
            .port_number = (uint8_t)(i + 1),
            .physical_slot = (uint16_t)i,
            .secondary_bus = (uint8_t)(i + 1),
            .mem_base = (uint32_t)mem,
            .mem_size = PORT_MEM_WINDOW,
            .pref_base = pref,
            .pref_size = PORT_PREF_WINDOW,
            .msi = { .send = vmm_vm_send_msi, .opaque = pci->vm },
            .slot_powered_off = port_powered_off,
            .opaque = p,
            .log = pci->log,
        });
        if (!p->port)
            return -1;
        if (vmdev_pci_bus_add_function(pci->bus,
                                       vmdev_pcie_root_port_function(p->port),
                                       (int)(1 + i / VMDEV_PCI_FUNCTIONS),
                                       i % VMDEV_PCI_FUNCTIONS) < 0) {
            vmdev_pcie_root_port_free(p->port);
            p->port = NULL;
            return -1;
        }
    }
    return 0;
}

struct vmm_pci *vmm_pci_create(const struct vmm_pci_config *c)
{
    struct vmm_pci *pci = calloc(1, sizeof(*pci));
    if (!pci)
        return NULL;
    struct vmm_vm *vm = c->vm;
    pci->vm = vm;
    pci->devices = c->devices;
    pci->set_gsi = c->set_gsi;
    pci->gsi_opaque = c->gsi_opaque;
    pci->log = c->log;
    pci->loop = c->loop;
    pci->powered_off_fd = -1;
    pthread_mutex_init(&pci->intx_lock, NULL);
    struct vmdev_device *dev;
    if (vmdev_device_add(c->devices, "pci-host", c->id, &pci_host_ops, pci,
                         &dev)) {
        pci_destroy(pci);
        return NULL;
    }
    struct vmdev_pci_bus_owner owner = {
        .map_bar = map_bar, .unmap_bar = unmap_bar, .set_intx = set_intx,
        .opaque = pci, .log = c->log,
    };
    unsigned ports = c->ports;
    pci->powered_off_fd = vmdev_eventfd_new();
    if (pci->powered_off_fd >= 0)
        pci->powered_off_watch = vmdev_event_loop_add(
            c->loop, pci->powered_off_fd, VMDEV_EVENT_IN, on_powered_off, pci);
    pci->bus = vmdev_pci_bus_new(&owner);
    pci->mmio = vmdev_resource_pool_new(GUEST_PCI_MMIO, GUEST_PCI_MMIO_SIZE);
    pci->mmio64 = vmdev_resource_pool_new(
        guest_pci_mmio64_base(vm->high_ram_end), GUEST_PCI_MMIO64_SIZE);
    if (ports > VMM_PCI_MAX_PORTS)
        ports = VMM_PCI_MAX_PORTS;
    if (!pci->bus || !pci->mmio || !pci->mmio64 || !pci->powered_off_watch ||
        start_io_loops(pci, c->io_threads, c->io_extra) ||
        vmdev_device_reserve(dev, c->gsis, VMDEV_RESOURCE_GSI,
                             PCI_INTX_GSI_BASE,
                             PCI_INTX_GSI_COUNT) ||
        vmdev_device_map(dev, vm->pio, VMDEV_RESOURCE_PIO,
                         VMDEV_PCI_CONF1_PORT, VMDEV_PCI_CONF1_LEN,
                         VMDEV_ACCESS_UP_TO_4, &vmdev_pci_conf1_ops,
                         pci->bus) ||
        vmdev_device_map(dev, vm->mmio, VMDEV_RESOURCE_MMIO, GUEST_PCI_ECAM,
                         GUEST_PCI_ECAM_SIZE, VMDEV_ACCESS_UP_TO_4,
                         &vmdev_pci_ecam_ops, pci->bus) ||
        create_ports(pci, dev, ports)) {
        vmm_report("cannot set up the PCI host bridge\n");
        vmdev_device_remove(c->devices, dev);
        return NULL;
    }
    /* Deasserted PCI lines idle high. */
    for (unsigned i = 0; i < PCI_INTX_GSI_COUNT; i++)
        c->set_gsi(c->gsi_opaque, PCI_INTX_GSI_BASE + i, true);
    vm->after_write = after_write;
    vm->after_write_opaque = pci;
    return pci;
}

/* The loop serving a queue group: thread g % io_threads. */
static struct vmdev_event_loop *queue_loop(void *opaque, unsigned group)
{
    return vmm_pci_io_loop(opaque, group);
}

/* The PCI slot's release: off the bus (the function deassigns its
 * ioeventfds before its BAR is unmapped). */
static void unplug_function(void *opaque)
{
    struct virtio_function *f = opaque;
    if (!f->port)
        return;
    vmdev_pci_bus_remove(f->pci->bus, vmdev_virtio_pci_function(f->vp));
    f->port->function = NULL;
    f->port = NULL;
}

/* The transport goes first: it stops the queues' eventfds and lets go of
 * the device, which is destroyed after. */
static void virtio_function_destroy(void *opaque)
{
    struct virtio_function *f = opaque;
    if (f->vp) { /* what it counted, kept for --stats */
        struct vmdev_virtio_pci_stats stats = vmdev_virtio_pci_get_stats(f->vp);
        atomic_fetch_add(&f->pci->kicks_by_unplugged, stats.eventfd_kicks);
        atomic_fetch_add(&f->pci->routed_by_unplugged, stats.msix.routed);
    }
    vmdev_virtio_pci_free(f->vp);
    if (f->vdev)
        vmdev_virtio_free(f->vdev);
    if (f->gone)
        f->gone(f->gone_opaque, f->vdev);
    free(f);
}

static void virtio_function_save(void *opaque, struct vmdev_state_writer *w,
                                 const char *id)
{
    struct virtio_function *f = opaque;
    (void)id; /* the device's section carries it (vdev->name) */
    vmdev_virtio_pci_save(f->vp, w, f->transport_section);
}

static int virtio_function_restore(void *opaque, const void *snapshot,
                                   size_t len, const char *id)
{
    struct virtio_function *f = opaque;
    (void)id;
    return vmdev_virtio_pci_restore(f->vp, snapshot, len,
                                    f->transport_section);
}

static const struct vmdev_device_ops virtio_function_ops = {
    virtio_function_destroy, virtio_function_save, virtio_function_restore,
};

/* An empty port the guest has released (after a forced removal, it
 * powers the slot off a moment later). */
static struct vmm_port *free_port(struct vmm_pci *pci)
{
    for (unsigned i = 0; i < pci->num_ports; i++)
        if (!pci->ports[i].function &&
            vmdev_pcie_root_port_vacant(pci->ports[i].port))
            return &pci->ports[i];
    return NULL;
}

/* Into the first free root port; the entry owns the port's slot. */
static int plug_function(struct vmm_pci *pci, struct vmdev_device *dev,
                         struct virtio_function *f, bool hotplug)
{
    struct vmdev_virtio_pci_config config = {
        .msi = { .send = vmm_vm_send_msi, .opaque = pci->vm,
                 .route = vmm_vm_route_msi },
        .queue_loop = queue_loop,
        .set_ioeventfd = set_ioeventfd,
        .opaque = pci,
        .express = true,
    };
    struct vmm_port *port = free_port(pci);
    if (!port) {
        vmm_report("no free PCI Express port for %s "
                        "(--pcie-ports adds more)\n",
                vmdev_device_id(dev));
        return -1;
    }
    f->vp = vmdev_virtio_pci_new(f->vdev, &config);
    if (!f->vp) {
        vmm_report("cannot create virtio-pci for %s: %s\n",
                vmdev_device_id(dev), strerror(errno));
        return -1;
    }
    /* Like firmware, place the BAR in the port's memory window; the OS
     * keeps it and enables decode. */
    uint64_t bar;
    if (vmdev_device_alloc(dev, port->window, VMDEV_RESOURCE_MMIO,
                           VMDEV_VIRTIO_PCI_BAR_SIZE,
                           VMDEV_VIRTIO_PCI_BAR_SIZE, &bar)) {
        vmm_report("no room in %s's window for %s\n",
                port->name, vmdev_device_id(dev));
        return -1;
    }
    struct vmdev_pci_device *pdev = vmdev_virtio_pci_function(f->vp);
    vmdev_pci_bar_assign(pdev, VMDEV_VIRTIO_PCI_BAR, bar);
    /* A power-off of the slot's last device is no news for this one. */
    atomic_store(&port->powered_off, false);
    port->removal_requested = false;
    int ret = vmdev_pcie_root_port_plug(port->port, pdev, hotplug);
    if (ret) {
        vmm_report("cannot plug %s into %s: %s\n",
                vmdev_device_id(dev), port->name, strerror(-ret));
        return -1;
    }
    port->function = f;
    f->port = port;
    ret = vmdev_device_claim(dev, VMDEV_RESOURCE_PCI_SLOT, port->index, 1,
                             unplug_function, f);
    if (ret)
        vmm_report("cannot add %s: %s\n", vmdev_device_id(dev),
                   strerror(-ret));
    return ret;
}

int vmm_pci_add_virtio(struct vmm_pci *pci, const struct vmm_virtio_spec *spec)
{
    struct virtio_function *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->pci = pci;
    struct vmdev_device *dev;
    const char *type = spec->type, *id = spec->id;
    int ret = vmdev_device_add(pci->devices, type, id, &virtio_function_ops, f,
                               &dev);
    if (ret) {
        vmm_report("cannot add %s%s%s: %s\n", type,
                id ? " id=" : "", id ? id : "",
                ret == -EEXIST ? "the id is taken" : strerror(-ret));
        free(f);
        return -1;
    }
    f->dev = dev;
    snprintf(f->transport_section, sizeof(f->transport_section), "%s/pci",
             vmdev_device_id(dev));
    /* The device is named by its id: its snapshot section is the id. */
    f->vdev = spec->make(vmdev_device_id(dev), spec->make_opaque);
    if (f->vdev) {
        vmdev_virtio_set_log(f->vdev, pci->log);
        f->gone = spec->gone;
        f->gone_opaque = spec->gone_opaque;
        f->fixed = spec->fixed;
    }
    if (!f->vdev || plug_function(pci, dev, f, spec->hotplug)) {
        vmdev_device_remove(pci->devices, dev);
        return -1;
    }
    return 0;
}

static struct vmm_port *port_of(struct vmm_pci *pci,
                                const struct vmdev_device *dev)
{
    for (unsigned i = 0; i < pci->num_ports; i++)
        if (pci->ports[i].function && pci->ports[i].function->dev == dev)
            return &pci->ports[i];
    return NULL;
}

int vmm_pci_remove(struct vmm_pci *pci, struct vmdev_device *dev, bool force)
{
    struct vmm_port *p = port_of(pci, dev);
    if (!p || p->function->fixed)
        return -ENODEV;
    /* A slot the guest does not power holds a device it does not use. */
    if (force || !vmdev_pcie_root_port_powered(p->port)) {
        remove_entry(pci, dev);
        return VMM_PCI_REMOVED;
    }
    if (vmdev_pcie_root_port_request_unplug(p->port) == -EBUSY) {
        /* Counting down to the removal asked before, or busy bringing
         * the slot up: a press now would cancel or be ignored. */
        if (p->removal_requested)
            return VMM_PCI_REMOVAL_PENDING;
        vmm_report("device-del: the guest is busy with %s's slot (its "
                   "power indicator blinks); try again\n",
                   vmdev_device_id(dev));
        return -EBUSY;
    }
    p->removal_requested = true;
    return VMM_PCI_REMOVAL_PENDING;
}

void vmm_pci_on_removed(struct vmm_pci *pci, vmm_pci_removed_fn *fn,
                        void *opaque)
{
    pci->removed = fn;
    pci->removed_opaque = opaque;
}

bool vmm_pci_place(struct vmm_pci *pci, const struct vmdev_device *dev,
                   struct vmm_pci_place *out)
{
    struct vmm_port *p = port_of(pci, dev);
    unsigned bus, slot, fn;
    if (!p || !vmdev_pci_device_address(
                  vmdev_virtio_pci_function(p->function->vp), &bus, &slot,
                  &fn))
        return false;
    snprintf(out->address, sizeof(out->address), "%02x:%02x.%x", bus, slot,
             fn);
    snprintf(out->port, sizeof(out->port), "%s", p->name);
    out->removal_pending = p->removal_requested;
    return true;
}

uint64_t vmm_pci_ioeventfd_kicks(struct vmm_pci *pci)
{
    uint64_t kicks = atomic_load(&pci->kicks_by_unplugged);
    for (unsigned i = 0; i < pci->num_ports; i++)
        if (pci->ports[i].function)
            kicks += vmdev_virtio_pci_get_stats(pci->ports[i].function->vp)
                         .eventfd_kicks;
    return kicks;
}

uint64_t vmm_pci_msix_routed(struct vmm_pci *pci)
{
    uint64_t routed = atomic_load(&pci->routed_by_unplugged);
    for (unsigned i = 0; i < pci->num_ports; i++)
        if (pci->ports[i].function)
            routed += vmdev_virtio_pci_get_stats(pci->ports[i].function->vp)
                          .msix.routed;
    return routed;
}

bool vmm_pci_counters(struct vmm_pci *pci, const struct vmdev_device *dev,
                      struct vmm_pci_counters *out)
{
    struct vmm_port *p = port_of(pci, dev);
    if (!p)
        return false;
    struct vmdev_virtio_pci_stats stats =
        vmdev_virtio_pci_get_stats(p->function->vp);
    *out = (struct vmm_pci_counters){
        .vdev = p->function->vdev,
        .guest_errors = vmdev_virtio_guest_errors(p->function->vdev),
        .eventfd_kicks = stats.eventfd_kicks,
        .interrupts = stats.msix.delivered,
    };
    return true;
}

bool vmm_pci_address(struct vmm_pci *pci, const struct vmdev_device *dev,
                     char *out, size_t len)
{
    struct vmm_pci_place place;
    if (!vmm_pci_place(pci, dev, &place))
        return false;
    snprintf(out, len, "%s", place.address);
    return true;
}
