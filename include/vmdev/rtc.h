/* SPDX-License-Identifier: MIT */
/*
 * The PC's MC146818A-compatible real-time clock and its 128 bytes of CMOS.
 *
 * Two byte-wide ports: offset 0 is the index (port 0x70; bit 7 is the NMI
 * mask on PCs and is ignored here), offset 1 the data (port 0x71).
 *
 * Time is not stored: registers 0x00-0x09 and the century byte 0x32 are
 * computed on read from VMDEV_CLOCK_REALTIME plus an offset. The offset
 * starts as the configured UTC offset and changes when the guest sets the
 * time (SET=1, write, SET=0; or a single time register written while the
 * clock runs). While SET=1 or the divider chain is held in reset (register
 * A DV=11x), the time registers are frozen and read back what was written;
 * DV=000/001/010 all count (any time base works for an emulated crystal).
 * Leaving divider reset starts the clock so that the first update comes
 * 500 ms later (MC146818A "Divider Control").
 *
 * The day of week is derived from the date; a value the guest writes to
 * register 6 is read back while frozen but not kept. DSE (daylight saving)
 * and SQWE are stored and have no effect. Periodic rates follow the
 * 32.768 kHz table (RS=1,2: 256, 128 Hz; RS=n: 65536 >> n Hz) whatever DV. Years outside 1970-2199 are
 * clamped when the guest sets them.
 *
 * Interrupts: register C's PF, AF and UF are computed from the clock
 * whenever the device is accessed. The one-shot timer is armed only for
 * the next event whose interrupt is enabled and only while IRQF is clear;
 * the VMM calls vmdev_rtc_timer_expired() when it fires.
 *
 * The irq line is modelled as a level that is high while IRQF (register C
 * bit 7) is set, i.e. until the guest reads register C. On the ISA bus
 * IRQ8 is edge-triggered (QEMU pulses it); Linux's rtc-cmos reads C in its
 * handler either way, and a level line cannot lose an edge that arrives
 * while the line is masked. A VMM wiring it to an edge-triggered input
 * sees one rising edge per IRQF assertion.
 *
 * Locking: every entry point takes the device's mutex; the irq line and
 * the timer callbacks are called with it held (lock order: RTC -> interrupt
 * controller / timer owner). The timer owner must not call
 * vmdev_rtc_timer_expired() from inside arm() or cancel().
 * An expiry that arrives after cancel() (a race in the owner) is harmless.
 */
#ifndef VMDEV_RTC_H
#define VMDEV_RTC_H

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

#define VMDEV_RTC_PORT_INDEX 0 /* offset of port 0x70 */
#define VMDEV_RTC_PORT_DATA 1  /* offset of port 0x71 */
#define VMDEV_RTC_PORTS 2

#define VMDEV_RTC_CMOS_SIZE 128

/* Register indices (MC146818A "Address Map"). */
#define VMDEV_RTC_REG_SECONDS 0x00
#define VMDEV_RTC_REG_SECONDS_ALARM 0x01
#define VMDEV_RTC_REG_MINUTES 0x02
#define VMDEV_RTC_REG_MINUTES_ALARM 0x03
#define VMDEV_RTC_REG_HOURS 0x04
#define VMDEV_RTC_REG_HOURS_ALARM 0x05
#define VMDEV_RTC_REG_WEEKDAY 0x06
#define VMDEV_RTC_REG_DAY 0x07
#define VMDEV_RTC_REG_MONTH 0x08
#define VMDEV_RTC_REG_YEAR 0x09
#define VMDEV_RTC_REG_A 0x0a
#define VMDEV_RTC_REG_B 0x0b
#define VMDEV_RTC_REG_C 0x0c
#define VMDEV_RTC_REG_D 0x0d
/* The century byte of PC CMOS (the FADT's CENTURY field names it). */
#define VMDEV_RTC_REG_CENTURY 0x32

struct vmdev_rtc_config {
    struct vmdev_clock clock;  /* REALTIME for the calendar, MONOTONIC
                                  for timer deadlines */
    struct vmdev_timer timer;  /* one-shot, MONOTONIC deadlines */
    struct vmdev_irq_line irq; /* level: high while IRQF is set */
    /* Seconds added to UTC: 0 keeps the RTC in UTC (Linux's default);
     * a local-time guest (Windows) wants its zone's offset. */
    int32_t utc_offset_seconds;
    struct vmdev_log *log; /* where its lines go; NULL: stderr */
};

struct vmdev_rtc;

/* NULL on allocation failure. Register A starts as 0x26 (32.768 kHz time
 * base, 1024 Hz periodic rate), B as 0x02 (24-hour, BCD), NVRAM zeroed. */
struct vmdev_rtc *vmdev_rtc_new(const struct vmdev_rtc_config *config);
/* Cancels the timer. */
void vmdev_rtc_free(struct vmdev_rtc *rtc);

/* Port access at offset VMDEV_RTC_PORT_INDEX or VMDEV_RTC_PORT_DATA.
 * Reading the index port returns 0xff (it is write-only). */
uint8_t vmdev_rtc_read(struct vmdev_rtc *rtc, unsigned offset);
void vmdev_rtc_write(struct vmdev_rtc *rtc, unsigned offset, uint8_t value);

/* Bus glue: register 2 ports with VMDEV_ACCESS_1 and the RTC as opaque. */
extern const struct vmdev_bus_ops vmdev_rtc_bus_ops;

/* The VMM's one-shot timer fired. */
void vmdev_rtc_timer_expired(struct vmdev_rtc *rtc);

/* Firmware setup by the VMM: read/write NVRAM bytes 0x0e-0x7f except the
 * century byte (e.g. memory size at 0x34/0x35 for SeaBIOS). Returns
 * -EINVAL for other indices. */
__attribute__((warn_unused_result))
int vmdev_rtc_nvram_write(struct vmdev_rtc *rtc, unsigned index,
                          uint8_t value);

/* Save into a section called name (e.g. "rtc"). The calendar is saved as
 * an offset from the host's realtime clock, so a restored guest keeps
 * wall-clock time. Restore validates everything first and rearms the
 * timer (-ENOENT, -EINVAL leave the device untouched). */
void vmdev_rtc_save(struct vmdev_rtc *rtc, struct vmdev_state_writer *w,
                    const char *name);
__attribute__((warn_unused_result))
int vmdev_rtc_restore(struct vmdev_rtc *rtc, const void *data, size_t len,
                      const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_rtc_device_ops;

#ifdef __cplusplus
}
#endif

#endif
