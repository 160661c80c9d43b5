/* SPDX-License-Identifier: MIT */
/*
 * The machine's parts, shared by the files that build it: machine.c (the
 * whole, its lifetime), machine_platform.c (the ISA devices and their
 * interrupt wiring), machine_virtio.c (PCI and the virtio devices) and
 * machine_stats.c (--stats).
 */
#ifndef VMM_MACHINE_INTERNAL_H
#define VMM_MACHINE_INTERNAL_H

#include "console_host.h"
#include "machine.h"
#include "pci_host.h"
#include "serial_host.h"
#include "vmdev/acpi_pm.h"
#include "vmdev/device_manager.h"
#include "vmdev/i8042.h"
#include "vmdev/ioapic.h"
#include "vmdev/pic.h"
#include "vmdev/pit.h"
#include "vmdev/rtc.h"
#include "vmdev/uart16550.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_console.h"
#include "vmdev/virtio_net.h"

/* The machine's own devices, by id (vmm_machine_ids). */
enum machine_device {
    ID_IOAPIC, ID_PIC, ID_PIT, ID_COM1, ID_RTC, ID_PM, ID_I8042, ID_PCI,
};

/* An ISA interrupt line: PIC input irq and its IOAPIC pin. */
struct isa_line {
    struct vmm_machine *machine;
    unsigned irq;
};

struct vmm_machine {
    struct vmm_vm *vm;
    struct vmdev_event_loop *loop;
    struct vmdev_log *log; /* every device's lines */
    /* Every device, with the ports, ranges and GSIs it owns. */
    struct vmdev_device_manager *devices;
    struct vmdev_resource_pool *gsis; /* IOAPIC pins */

    /* The platform devices, each its device-manager entry's opaque (the
     * library's vmdev_*_device_ops free them with the entry). */
    struct vmdev_ioapic *ioapic;
    struct vmdev_pic *pic;
    struct vmdev_pit *pit;
    struct vmdev_uart16550 *uart;
    struct vmdev_rtc *rtc;
    struct vmdev_acpi_pm *pm;
    struct vmdev_i8042 *i8042;
    /* What they use of the host, freed after them: a device cancels its
     * timer as it goes, so a timer outlives its device. */
    struct vmdev_event_timer *pit_timer, *rtc_timer, *pm_timer;
    struct vmm_serial_host *serial_host;
    struct isa_line isa_lines[VMDEV_PIC_IRQS];

    /* PCI and the virtio devices on it, those added later included, in
     * the order added. */
    struct vmm_pci *pci;
    struct machine_disk {
        struct vmdev_virtio_blk *blk;
        struct vmdev_virtio_device *vdev;
    } disks[VMM_PCI_MAX_PORTS];
    unsigned num_disks;
    struct machine_net {
        struct vmdev_virtio_net *net;
        struct vmdev_virtio_device *vdev;
        /* A hot-added card's pcap= capture, freed after the card. */
        struct vmdev_net_capture *capture;
    } nets[VMM_PCI_MAX_PORTS];
    unsigned num_nets;
    unsigned nets_added; /* cards added while the guest ran, ever */
    struct vmm_console_host *console_host;
    struct vmdev_virtio_console *console;
};

/* The interrupt controllers, then the ISA devices. 0 or -1 after
 * printing why. */
int vmm_machine_add_platform(struct vmm_machine *m,
                             const struct vmm_options *opts);
/* Before the devices go: the VM stops calling into the controllers. */
void vmm_machine_unhook_platform(struct vmm_machine *m);
/* After the devices went: their timers and the serial port's host side. */
void vmm_machine_release_platform(struct vmm_machine *m);
/* Drive IOAPIC input `gsi` (a PCI INTx line), for the PCI host. */
void vmm_machine_set_ioapic_pin(void *opaque, unsigned gsi, bool level);

/* The PCI host bridge and the virtio devices, in the slot order Linux
 * names them by. 0 or -1 after printing why. */
int vmm_machine_add_virtio(struct vmm_machine *m, const struct vmm_options *opts,
                           struct vmdev_block **images,
                           struct vmdev_net_capture *const *captures);

#endif
