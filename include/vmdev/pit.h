/* SPDX-License-Identifier: MIT */
/*
 * The PC's Intel 8254 programmable interval timer and the timer bits of
 * port 0x61 ("system control port B").
 *
 * Four byte-wide ports at 0x40-0x43: the data ports of counters 0, 1 and 2
 * and the write-only control word register. Counter 0's OUT drives IRQ0,
 * counter 1 (DRAM refresh on the original PC) is free, counter 2's GATE is
 * bit 0 of port 0x61 and its OUT is readable as bit 5 there, which is what
 * Linux's TSC calibration (pit_calibrate_tsc, quick_pit_calibrate) polls.
 * Counters 0 and 1 have their GATE tied high.
 *
 * Counts are not stored as they run: each counter keeps the time it
 * started counting (on VMDEV_CLOCK_MONOTONIC) and computes its value and
 * OUT from the clock at the 8254's 1.193182 MHz input frequency whenever
 * the guest reads them. All six modes, binary and BCD counting, the counter
 * latch and read-back commands (status and count latches) and the LSB/MSB
 * byte sequences behave as the datasheet describes, with these
 * simplifications, which QEMU and KVM's in-kernel PIT share:
 *  - a new count takes effect as soon as it is complete, in every mode (the
 *    8254 waits for the end of the current period in modes 2 and 3);
 *  - the counting element loads the count at once rather than on the next
 *    CLK pulse, so Null Count clears as soon as a count is written (modes 1
 *    and 5: as soon as GATE triggers);
 *  - in mode 3 an odd count runs its two half periods of (N+1)/2 and
 *    (N-1)/2 clocks, but the value read decrements by two from N throughout.
 *
 * IRQ0 is an edge on the PC (the i8259's IRQ0 and the IOAPIC's pin 2 are
 * edge-triggered), so the PIT pulses its line at each rising edge of
 * counter 0's OUT rather than following OUT's level. It arms its one-shot
 * timer only for the next such edge. A guest that programs a periodic
 * rate faster than VMDEV_PIT_MIN_PERIOD_NS gets its edges coalesced to that
 * rate (KVM limits its in-kernel PIT the same way), and edges the host
 * missed while it was late are coalesced rather than replayed.
 *
 * Locking: every entry point takes the device's mutex; the irq line and
 * the timer are called with it held (lock order: PIT -> interrupt
 * controller / timer owner). An expiry that arrives after the timer was
 * re-armed or cancelled is harmless.
 */
#ifndef VMDEV_PIT_H
#define VMDEV_PIT_H

#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/clock.h"
#include "vmdev/device_manager.h"
#include "vmdev/irq.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_PIT_FREQ_HZ 1193182u
#define VMDEV_PIT_PORTS 4         /* 0x40-0x43 */
#define VMDEV_PIT_PORT_CONTROL 3  /* offset of port 0x43 */
/* The fastest periodic IRQ0 rate delivered: 20 kHz. */
#define VMDEV_PIT_MIN_PERIOD_NS 50000u

/* Port 0x61 bits (IBM PC/AT technical reference, "System Control Port B"). */
#define VMDEV_PIT_PORT61_GATE2 0x01u       /* RW: counter 2 GATE */
#define VMDEV_PIT_PORT61_SPEAKER 0x02u     /* RW: speaker data enable */
#define VMDEV_PIT_PORT61_PARITY_OFF 0x04u  /* RW: stored, no effect */
#define VMDEV_PIT_PORT61_IOCHK_OFF 0x08u   /* RW: stored, no effect */
#define VMDEV_PIT_PORT61_REFRESH 0x10u     /* R: toggles every 15.09 us */
#define VMDEV_PIT_PORT61_OUT2 0x20u        /* R: counter 2 OUT */

struct vmdev_pit_config {
    struct vmdev_clock clock;  /* MONOTONIC drives the counters */
    struct vmdev_timer timer;  /* one-shot, for counter 0's next edge */
    struct vmdev_irq_line irq; /* IRQ0, pulsed */
};

struct vmdev_pit;

/* NULL on allocation failure. All counters start as after a control word
 * for mode 0, binary, LSB then MSB, with no count written (OUT low). */
struct vmdev_pit *vmdev_pit_new(const struct vmdev_pit_config *config);
/* Cancels the timer. */
void vmdev_pit_free(struct vmdev_pit *pit);

/* Port access at offsets 0-3 (ports 0x40-0x43). Reading the control port
 * returns 0xff (it is write-only). */
uint8_t vmdev_pit_read(struct vmdev_pit *pit, unsigned offset);
void vmdev_pit_write(struct vmdev_pit *pit, unsigned offset, uint8_t value);

/* Port 0x61. */
uint8_t vmdev_pit_port61_read(struct vmdev_pit *pit);
void vmdev_pit_port61_write(struct vmdev_pit *pit, uint8_t value);

/* Bus glue, opaque the PIT, VMDEV_ACCESS_1: 4 ports at 0x40 and 1 at 0x61. */
extern const struct vmdev_bus_ops vmdev_pit_bus_ops;
extern const struct vmdev_bus_ops vmdev_pit_port61_bus_ops;

/* The VMM's one-shot timer fired. */
void vmdev_pit_timer_expired(struct vmdev_pit *pit);

/* Save into a section called name (e.g. "pit"). Counter progress is saved
 * in PIT clocks, so a restored timer continues where it stopped whatever
 * the new host's clock reads. Restore validates everything first
 * (-ENOENT, -EINVAL leave the device untouched) and rearms the timer. */
void vmdev_pit_save(struct vmdev_pit *pit, struct vmdev_state_writer *w,
                    const char *name);
__attribute__((warn_unused_result))
int vmdev_pit_restore(struct vmdev_pit *pit, const void *data, size_t len,
                      const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_pit_device_ops;

#ifdef __cplusplus
}
#endif

#endif
