/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed-hardware power management for a PC (not hardware-reduced)
 * (ACPI 6.5 section 4.8): the PM1a event and control registers, the power
 * management timer and the FADT reset register, packed in one 16-byte I/O
 * block whose layout the VMM's FADT must describe with the constants here.
 *
 * SCI_EN reads as 1 always: the machine is in ACPI mode from power-on, so
 * the FADT must set SMI_CMD = 0 (ACPI 6.5 section 5.2.9, "SMI_CMD").
 * Sleep states: only \_S5 is implemented. The DSDT's \_S5 package must
 * name VMDEV_ACPI_SLP_TYP_S5; other SLP_TYP values with SLP_EN are logged
 * and ignored, so the DSDT must not offer \_S1-\_S4.
 *
 * Locking: entry points take the device mutex; the SCI line and the timer
 * are called with it held (lock order: PM block -> interrupt controller /
 * timer owner). The poweroff and reset callbacks run after the mutex is
 * released, so they may reset devices, this one included.
 * An expiry that arrives after cancel() (a race in the owner) is harmless.
 */
#ifndef VMDEV_ACPI_PM_H
#define VMDEV_ACPI_PM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/clock.h"
#include "vmdev/device_manager.h"
#include "vmdev/irq.h"
#include "vmdev/log.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The block and the FADT fields that describe it. */
#define VMDEV_ACPI_PM_BLOCK_LEN 16
#define VMDEV_ACPI_PM1_EVT_OFFSET 0x00 /* PM1a_EVT_BLK, PM1_EVT_LEN = 4 */
#define VMDEV_ACPI_PM1_EVT_LEN 4       /* status at +0, enable at +2 */
#define VMDEV_ACPI_PM1_CNT_OFFSET 0x04 /* PM1a_CNT_BLK, PM1_CNT_LEN = 2 */
#define VMDEV_ACPI_PM1_CNT_LEN 2
#define VMDEV_ACPI_PM_TMR_OFFSET 0x08 /* PM_TMR_BLK, PM_TMR_LEN = 4 */
#define VMDEV_ACPI_PM_TMR_LEN 4
#define VMDEV_ACPI_RESET_REG_OFFSET 0x0c /* RESET_REG: 8-bit, byte access */
#define VMDEV_ACPI_RESET_VALUE 0x0e      /* RESET_VALUE */
/* SLP_TYP the DSDT's \_S5 object must name. */
#define VMDEV_ACPI_SLP_TYP_S5 5
#define VMDEV_ACPI_PM_TIMER_HZ 3579545

/* PM1 status and enable bits (ACPI 6.5 tables 4.16-4.17). */
#define VMDEV_ACPI_PM1_TMR 0x0001
#define VMDEV_ACPI_PM1_GBL 0x0020
#define VMDEV_ACPI_PM1_PWRBTN 0x0100
#define VMDEV_ACPI_PM1_SLPBTN 0x0200
#define VMDEV_ACPI_PM1_RTC 0x0400
#define VMDEV_ACPI_PM1_WAK 0x8000 /* status only */

struct vmdev_acpi_pm_config {
    struct vmdev_clock clock;  /* MONOTONIC drives the PM timer */
    struct vmdev_timer timer;  /* armed only for TMR_STS with TMR_EN set */
    struct vmdev_irq_line sci; /* level, high while an enabled status is set */
    /* A 32-bit PM timer; the FADT's TMR_VAL_EXT flag must match. */
    bool timer_32bit;
    void (*poweroff)(void *opaque); /* SLP_EN with SLP_TYP = S5 */
    void (*reset)(void *opaque);    /* RESET_VALUE written to RESET_REG */
    void *opaque;
    struct vmdev_log *log; /* where its lines go; NULL: stderr */
};

struct vmdev_acpi_pm;

struct vmdev_acpi_pm *
vmdev_acpi_pm_new(const struct vmdev_acpi_pm_config *config);
void vmdev_acpi_pm_free(struct vmdev_acpi_pm *pm);

/* Access of 1, 2 or 4 bytes at an offset in the block; an access may span
 * registers (each byte goes to the register it falls in). Reserved bytes
 * read 0 and ignore writes. */
uint32_t vmdev_acpi_pm_read(struct vmdev_acpi_pm *pm, unsigned offset,
                            unsigned size);
void vmdev_acpi_pm_write(struct vmdev_acpi_pm *pm, unsigned offset,
                         unsigned size, uint32_t value);

/* Bus glue: register VMDEV_ACPI_PM_BLOCK_LEN ports with
 * VMDEV_ACCESS_UP_TO_4 and the block as opaque. */
extern const struct vmdev_bus_ops vmdev_acpi_pm_bus_ops;

/* The VMM's one-shot timer fired. */
void vmdev_acpi_pm_timer_expired(struct vmdev_acpi_pm *pm);

/* The host pressed the power button: PWRBTN_STS, and an SCI if enabled;
 * an ACPI guest answers by shutting down into \_S5. */
void vmdev_acpi_pm_press_power_button(struct vmdev_acpi_pm *pm);

void vmdev_acpi_pm_save(struct vmdev_acpi_pm *pm,
                        struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_acpi_pm_restore(struct vmdev_acpi_pm *pm, const void *data,
                          size_t len, const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_acpi_pm_device_ops;

#ifdef __cplusplus
}
#endif

#endif
