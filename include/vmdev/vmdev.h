/* SPDX-License-Identifier: MIT */
/*
 * Every header a VMM uses, for a program that would rather not pick:
 * #include <vmdev/vmdev.h>. Each header also stands alone. Writing a
 * virtio device or transport of one's own takes, besides,
 * <vmdev/virtio_device.h> (with <vmdev/virtqueue.h>), whose structures a
 * device embeds.
 */
#ifndef VMDEV_VMDEV_H
#define VMDEV_VMDEV_H

#include "vmdev/acpi_pm.h"
#include "vmdev/block.h"
#include "vmdev/bus.h"
#include "vmdev/clock.h"
#include "vmdev/device_manager.h"
#include "vmdev/event_loop.h"
#include "vmdev/i8042.h"
#include "vmdev/pit.h"
#include "vmdev/pic.h"
#include "vmdev/io_engine.h"
#include "vmdev/ioapic.h"
#include "vmdev/irq.h"
#include "vmdev/log.h"
#include "vmdev/guest_memory.h"
#include "vmdev/net.h"
#include "vmdev/net_switch.h"
#include "vmdev/pci.h"
#include "vmdev/pci_msix.h"
#include "vmdev/pcie.h"
#include "vmdev/resource.h"
#include "vmdev/rtc.h"
#include "vmdev/state.h"
#include "vmdev/uart16550.h"
#include "vmdev/version.h"
#include "vmdev/virtio.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_console.h"
#include "vmdev/virtio_mmio.h"
#include "vmdev/virtio_net.h"
#include "vmdev/virtio_pci.h"
#include "vmdev/virtio_rng.h"

#endif
