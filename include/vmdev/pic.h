/* SPDX-License-Identifier: MIT */
/*
 * The PC's two cascaded Intel 8259A programmable interrupt controllers and
 * their edge/level control registers (ELCR, as on the PIIX and ICH).
 *
 * Ports, each window byte-wide:
 *   master  0x20-0x21  (offset 0: command/status, 1: data/IMR)
 *   slave   0xa0-0xa1
 *   ELCR    0x4d0-0x4d1 (offset 0: IRQ 0-7, 1: IRQ 8-15)
 * The slave's INT drives the master's IR2, as on every PC, whatever ICW3
 * says; ICW3 is stored and read back through save/restore only.
 *
 * Implemented from the 8259A datasheet (231468): ICW1-ICW4 initialisation
 * (single or cascaded, level-triggered mode LTIM, auto-EOI, special fully
 * nested mode), OCW1 masking, OCW2 EOI (non-specific, specific, and the
 * rotating forms) and set-priority, OCW3 register reads (IRR/ISR), poll
 * and special mask mode. MCS-80/85 mode and buffered mode are x86-only
 * irrelevances: their bits are accepted and ignored.
 *
 * Inputs: vmdev_pic_set_irq() with the level of IRQ 0-15. An input is
 * level-triggered when its ELCR bit is set or ICW1 chose LTIM; otherwise a
 * rising edge sets its IRR bit, which stays set until acknowledged even if
 * the line falls first (an edge-triggered device may pulse its line, as
 * irq.h allows). ELCR bits that the chipset hard-wires to edge (IRQ 0, 1,
 * 2, 8 and 13) cannot be set.
 *
 * Output: the master's INT, a level, high while an unmasked request has
 * higher priority than everything in service. The VMM delivers it as an
 * ExtINT to the CPU whose local APIC accepts it and, when the CPU takes
 * it, calls vmdev_pic_acknowledge() for the vector (the INTA cycles).
 *
 * Locking: every entry point takes the device's mutex and calls the INT
 * line with it held (lock order: PIC -> the VMM's interrupt delivery), so
 * that line's set() must not call back into the PIC.
 */
#ifndef VMDEV_PIC_H
#define VMDEV_PIC_H

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

#define VMDEV_PIC_PORTS 2  /* per chip: 0x20-0x21 and 0xa0-0xa1 */
#define VMDEV_PIC_ELCR_PORTS 2 /* 0x4d0-0x4d1 */
#define VMDEV_PIC_IRQS 16
/* ELCR bits that can be set: not IRQ 0, 1, 2 (master) nor 8, 13 (slave). */
#define VMDEV_PIC_ELCR_MASK 0xdef8u

enum vmdev_pic_chip { VMDEV_PIC_MASTER, VMDEV_PIC_SLAVE };

struct vmdev_pic_config {
    struct vmdev_irq_line intr; /* the master's INT output, a level */
};

struct vmdev_pic;

/* NULL on allocation failure. Both chips start uninitialised as after
 * reset: all inputs unmasked, edge-triggered, vector base 0, and the
 * guest's ICW1 sequence is expected before any use. */
struct vmdev_pic *vmdev_pic_new(const struct vmdev_pic_config *config);
void vmdev_pic_free(struct vmdev_pic *pic);

/* Register access on a chip at offset 0 or 1. */
uint8_t vmdev_pic_read(struct vmdev_pic *pic, enum vmdev_pic_chip chip,
                       unsigned offset);
void vmdev_pic_write(struct vmdev_pic *pic, enum vmdev_pic_chip chip,
                     unsigned offset, uint8_t value);
/* ELCR at offset 0 (IRQ 0-7) or 1 (IRQ 8-15). */
uint8_t vmdev_pic_elcr_read(struct vmdev_pic *pic, unsigned offset);
void vmdev_pic_elcr_write(struct vmdev_pic *pic, unsigned offset,
                          uint8_t value);

/* Bus glue, VMDEV_ACCESS_1, opaque the PIC: two ports at 0x20, two at
 * 0xa0, two at 0x4d0. */
extern const struct vmdev_bus_ops vmdev_pic_master_bus_ops;
extern const struct vmdev_bus_ops vmdev_pic_slave_bus_ops;
extern const struct vmdev_bus_ops vmdev_pic_elcr_bus_ops;

/* The level of input irq (0-15); other numbers are ignored. */
void vmdev_pic_set_irq(struct vmdev_pic *pic, unsigned irq, bool level);

/*
 * The INTA cycles: the vector of the highest-priority request, which
 * enters service (or, in auto-EOI mode, completes at once). With nothing
 * to deliver the chip answers with its IR7 vector, the datasheet's
 * spurious interrupt, and sets no ISR bit.
 */
uint8_t vmdev_pic_acknowledge(struct vmdev_pic *pic);

/* Whether the master's INT is high (for a VMM polling instead of using
 * the line, and for tests). */
bool vmdev_pic_output(struct vmdev_pic *pic);

/* Save into a section called name (e.g. "pic"); restore validates it all
 * first (-ENOENT, -EINVAL leave the device untouched) and sets INT to the
 * restored state. Input levels are part of the state. */
void vmdev_pic_save(struct vmdev_pic *pic, struct vmdev_state_writer *w,
                    const char *name);
__attribute__((warn_unused_result))
int vmdev_pic_restore(struct vmdev_pic *pic, const void *data, size_t len,
                      const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_pic_device_ops;

#ifdef __cplusplus
}
#endif

#endif
