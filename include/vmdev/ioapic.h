/* SPDX-License-Identifier: MIT */
/*
 * An Intel 82093AA I/O APIC (version 0x11) with 24 pins, for VMMs whose
 * local APICs live elsewhere (KVM with a split irqchip): each interrupt it
 * delivers leaves as an MSI message in the format the local APICs accept
 * (Intel SDM vol. 3, 11.11), which KVM_SIGNAL_MSI or a GSI route injects.
 *
 * Registers (82093AA datasheet, 3.0): IOREGSEL at offset 0x00 and IOWIN at
 * 0x10, 32-bit accesses; indirect registers ID (0x00), version (0x01),
 * arbitration (0x02) and the redirection table (0x10 + 2 * pin, low then
 * high half).
 *
 * Level-triggered pins set Remote IRR when delivered and are re-delivered
 * only after vmdev_ioapic_eoi() with their vector, which the VMM calls when
 * a local APIC broadcasts the EOI (KVM_EXIT_IOAPIC_EOI).
 *
 * Locking: each entry point takes the IOAPIC's mutex; the MSI sink is
 * called with it held and must not call back into the IOAPIC.
 */
#ifndef VMDEV_IOAPIC_H
#define VMDEV_IOAPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/device_manager.h"
#include "vmdev/irq.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_IOAPIC_PINS 24
#define VMDEV_IOAPIC_MMIO_SIZE 0x100
#define VMDEV_IOAPIC_REGSEL 0x00
#define VMDEV_IOAPIC_WINDOW 0x10
#define VMDEV_IOAPIC_VERSION 0x11

struct vmdev_ioapic;

/* NULL on allocation failure. Every pin starts masked. */
struct vmdev_ioapic *vmdev_ioapic_new(uint8_t id,
                                      const struct vmdev_msi_sink *sink);
void vmdev_ioapic_free(struct vmdev_ioapic *io);

uint32_t vmdev_ioapic_read(struct vmdev_ioapic *io, unsigned offset);
void vmdev_ioapic_write(struct vmdev_ioapic *io, unsigned offset,
                        uint32_t value);
/* Bus glue: register VMDEV_IOAPIC_MMIO_SIZE bytes with VMDEV_ACCESS_4. */
extern const struct vmdev_bus_ops vmdev_ioapic_bus_ops;

/* Drive input pin `pin` (before polarity inversion). Pins past the last
 * are ignored. */
void vmdev_ioapic_set_irq(struct vmdev_ioapic *io, unsigned pin, bool level);

/* A local APIC signalled EOI for `vector`: clear Remote IRR of the level
 * pins using it and re-deliver those still asserted. */
void vmdev_ioapic_eoi(struct vmdev_ioapic *io, uint8_t vector);

/*
 * The MSI message pin `pin` delivers as programmed now; returns whether
 * the pin is unmasked. A VMM whose local APICs need to know which vectors
 * are level-triggered (KVM's split irqchip scans its GSI routes for EOI
 * exits) rebuilds its routes from this after the guest writes the IOAPIC.
 */
bool vmdev_ioapic_pin_msi(struct vmdev_ioapic *io, unsigned pin,
                          struct vmdev_msi_msg *msg);

/* Read one redirection entry (for tests and debugging). */
uint64_t vmdev_ioapic_redirection(struct vmdev_ioapic *io, unsigned pin);

void vmdev_ioapic_save(struct vmdev_ioapic *io, struct vmdev_state_writer *w,
                       const char *name);
/* Validates and applies a saved section; -ENOENT or -EINVAL on error,
 * leaving the device unchanged. */
__attribute__((warn_unused_result))
int vmdev_ioapic_restore(struct vmdev_ioapic *io, const void *data,
                         size_t len, const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_ioapic_device_ops;

#ifdef __cplusplus
}
#endif

#endif
