/* SPDX-License-Identifier: MIT */
/*
 * MC146818A real-time clock. Section names are those of the Motorola
 * MC146818A datasheet.
 */
#include "device_entry.h"
#include "vmdev/rtc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "platform/rtc_calendar.h"
#include "vmdev/log.h"

#define NS_PER_SEC INT64_C(1000000000)
/* The calendar never leaves [1970-01-01, 2200-01-01). */
#define CALENDAR_MAX_NS (INT64_C(7258118400) * NS_PER_SEC - 1)
/* "Update Cycle": UIP rises 244 us before the update (32.768 kHz base). */
#define UIP_WINDOW_NS 244000
#define TIME_BASE_HZ 32768

#define A_UIP 0x80
#define A_DV_SHIFT 4
#define A_RS_MASK 0x0f
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10
#define C_SOURCES 0x70 /* PF, AF, UF sit where B has PIE, AIE, UIE */
#define D_VRT 0x80
#define HOUR_PM 0x80
#define ALARM_DONT_CARE 0xc0 /* "Alarm": values 0xC0-0xFF match any */

#define STATE_VERSION 1
#define NO_EVENT INT64_MAX   /* nothing armed */
#define STALE_EVENT INT64_MIN /* the armed deadline must be recomputed */

struct rtc_regs {
    uint8_t cmos[VMDEV_RTC_CMOS_SIZE]; /* time bytes valid while frozen */
    uint8_t index;
    uint8_t flags;     /* PF | AF | UF not yet read from register C */
    int64_t offset_ns; /* calendar time = realtime + offset */
    int64_t synced_ns; /* calendar time up to which flags are accounted */
};

struct vmdev_rtc {
    pthread_mutex_t lock;
    struct vmdev_clock clock;
    struct vmdev_timer timer;
    struct vmdev_irq_line irq;
    int64_t armed_event_ns; /* calendar time the timer is armed for */
    struct vmdev_log *log;
    struct vmdev_ratelimit log_limit; /* the guest's errors */
    struct rtc_regs r;
};

static const uint8_t time_regs[] = {
    VMDEV_RTC_REG_SECONDS, VMDEV_RTC_REG_MINUTES, VMDEV_RTC_REG_HOURS,
    VMDEV_RTC_REG_WEEKDAY, VMDEV_RTC_REG_DAY,     VMDEV_RTC_REG_MONTH,
    VMDEV_RTC_REG_YEAR,    VMDEV_RTC_REG_CENTURY,
};

static bool is_time_reg(unsigned index)
{
    for (unsigned i = 0; i < sizeof(time_regs); i++)
        if (time_regs[i] == index)
            return true;
    return false;
}

static bool bcd_mode(const struct vmdev_rtc *rtc)
{
    return !(rtc->r.cmos[VMDEV_RTC_REG_B] & B_DM_BINARY);
}

/* "Divider Control": DV=010 is the PC's 32.768 kHz base; 000 and 001
 * count too (any base works for an emulated crystal); 11x holds the
 * chain in reset and the test patterns stop it. */
static bool divider_counts(const struct vmdev_rtc *rtc)
{
    return (rtc->r.cmos[VMDEV_RTC_REG_A] >> A_DV_SHIFT & 7) <= 2;
}

static bool clock_running(const struct vmdev_rtc *rtc)
{
    return divider_counts(rtc) && !(rtc->r.cmos[VMDEV_RTC_REG_B] & B_SET);
}

static int64_t realtime_ns(const struct vmdev_rtc *rtc)
{
    uint64_t real = vmdev_clock_now(&rtc->clock, VMDEV_CLOCK_REALTIME);
    return real > (uint64_t)CALENDAR_MAX_NS ? CALENDAR_MAX_NS : (int64_t)real;
}

/* offset_ns stays within [-CALENDAR_MAX_NS, CALENDAR_MAX_NS], so the sum
 * can only overflow upwards. */
static int64_t calendar_now(const struct vmdev_rtc *rtc)
{
    int64_t t;
    if (__builtin_add_overflow(realtime_ns(rtc), rtc->r.offset_ns, &t))
        t = CALENDAR_MAX_NS;
    return t < 0 ? 0 : t > CALENDAR_MAX_NS ? CALENDAR_MAX_NS : t;
}

/* Make the calendar read `to` at this instant. */
static void set_calendar(struct vmdev_rtc *rtc, int64_t to)
{
    rtc->r.offset_ns = to - realtime_ns(rtc);
    rtc->r.synced_ns = to;
    rtc->armed_event_ns = STALE_EVENT;
}

/* The byte a time register shows for a calendar second. */
static uint8_t time_byte(const struct vmdev_rtc *rtc, unsigned index,
                         int64_t secs)
{
    struct rtc_tm tm;
    bool bcd = bcd_mode(rtc);
    rtc_tm_from_seconds(secs, &tm);
    switch (index) {
    case VMDEV_RTC_REG_SECONDS:
        return rtc_encode((unsigned)tm.second, bcd);
    case VMDEV_RTC_REG_MINUTES:
        return rtc_encode((unsigned)tm.minute, bcd);
    case VMDEV_RTC_REG_HOURS:
        if (rtc->r.cmos[VMDEV_RTC_REG_B] & B_24H)
            return rtc_encode((unsigned)tm.hour, bcd);
        /* 12-hour mode: 1-12 with bit 7 set for PM. */
        return (uint8_t)(rtc_encode(tm.hour % 12 ? (unsigned)tm.hour % 12 : 12,
                                    bcd) |
                         (tm.hour >= 12 ? HOUR_PM : 0));
    case VMDEV_RTC_REG_WEEKDAY:
        return rtc_encode((unsigned)tm.wday, bcd);
    case VMDEV_RTC_REG_DAY:
        return rtc_encode((unsigned)tm.mday, bcd);
    case VMDEV_RTC_REG_MONTH:
        return rtc_encode((unsigned)tm.month, bcd);
    case VMDEV_RTC_REG_YEAR:
        return rtc_encode((unsigned)tm.year % 100, bcd);
    default: /* VMDEV_RTC_REG_CENTURY */
        return rtc_encode((unsigned)tm.year / 100, bcd);
    }
}

static void freeze_time(struct vmdev_rtc *rtc, int64_t secs)
{
    for (unsigned i = 0; i < sizeof(time_regs); i++)
        rtc->r.cmos[time_regs[i]] = time_byte(rtc, time_regs[i], secs);
}

/* An hour byte in the current 12/24-hour mode; -1 if invalid. */
static int decode_hour(const struct vmdev_rtc *rtc, uint8_t byte)
{
    unsigned v;
    if (rtc->r.cmos[VMDEV_RTC_REG_B] & B_24H)
        return rtc_decode(byte, bcd_mode(rtc), &v) && v < 24 ? (int)v : -1;
    if (!rtc_decode(byte & ~HOUR_PM, bcd_mode(rtc), &v) || v < 1 || v > 12)
        return -1;
    return (int)(v % 12) + (byte & HOUR_PM ? 12 : 0);
}

static int decode_field(const struct vmdev_rtc *rtc, unsigned index)
{
    unsigned v;
    return rtc_decode(rtc->r.cmos[index], bcd_mode(rtc), &v) ? (int)v : -1;
}

/* The calendar second the frozen time registers hold. Whatever a guest
 * wrote, the result is a valid time: bad fields are clamped and logged. */
static int64_t frozen_time(struct vmdev_rtc *rtc)
{
    struct rtc_tm tm = {
        .second = decode_field(rtc, VMDEV_RTC_REG_SECONDS),
        .minute = decode_field(rtc, VMDEV_RTC_REG_MINUTES),
        .hour = decode_hour(rtc, rtc->r.cmos[VMDEV_RTC_REG_HOURS]),
        .mday = decode_field(rtc, VMDEV_RTC_REG_DAY),
        .month = decode_field(rtc, VMDEV_RTC_REG_MONTH),
    };
    int year = decode_field(rtc, VMDEV_RTC_REG_YEAR);
    int century = decode_field(rtc, VMDEV_RTC_REG_CENTURY);
    tm.year = year < 0 || century < 0 ? -1 : century * 100 + year;
    if (!rtc_tm_normalise(&tm))
        vmdev_log_guest(rtc->log, &rtc->log_limit,
                        "rtc: time set out of range, clamped to "
                        "%04d-%02d-%02d %02d:%02d:%02d",
                        tm.year, tm.month, tm.mday, tm.hour, tm.minute,
                        tm.second);
    return rtc_tm_to_seconds(&tm);
}

static int alarm_field(const struct vmdev_rtc *rtc, unsigned index, int max)
{
    uint8_t byte = rtc->r.cmos[index];
    if (byte >= ALARM_DONT_CARE)
        return -1;
    int v = index == VMDEV_RTC_REG_HOURS_ALARM ? decode_hour(rtc, byte)
                                               : decode_field(rtc, index);
    /* A value the time registers never show never matches. */
    return v < 0 || v > max ? max + 1 : v;
}

static int64_t next_alarm_after(const struct vmdev_rtc *rtc, int64_t secs)
{
    return rtc_next_alarm(secs,
                          alarm_field(rtc, VMDEV_RTC_REG_HOURS_ALARM, 23),
                          alarm_field(rtc, VMDEV_RTC_REG_MINUTES_ALARM, 59),
                          alarm_field(rtc, VMDEV_RTC_REG_SECONDS_ALARM, 59));
}

/* Periodic rate in time-base ticks ("Periodic Interrupt Rate", Table 5
 * for 32.768 kHz: RS=1,2 give 256 and 128 Hz, RS=n>=3 gives 65536/2^n). */
static unsigned periodic_ticks(const struct vmdev_rtc *rtc)
{
    unsigned rs = rtc->r.cmos[VMDEV_RTC_REG_A] & A_RS_MASK;
    if (!rs || !divider_counts(rtc))
        return 0;
    return rs <= 2 ? 1u << (rs + 6) : 1u << (rs - 1);
}

static int64_t ticks_at(int64_t ns)
{
    return ns / NS_PER_SEC * TIME_BASE_HZ +
           ns % NS_PER_SEC * TIME_BASE_HZ / NS_PER_SEC;
}

static int64_t first_ns_of_tick(int64_t tick)
{
    int64_t frac = tick % TIME_BASE_HZ;
    return tick / TIME_BASE_HZ * NS_PER_SEC +
           (frac * NS_PER_SEC + TIME_BASE_HZ - 1) / TIME_BASE_HZ;
}

/* Account PF, UF and AF for the calendar time between the last sync and
 * now ("Register C"). Flags set whether or not their interrupt is enabled. */
static void sync_flags(struct vmdev_rtc *rtc, int64_t now)
{
    int64_t from = rtc->r.synced_ns;
    rtc->r.synced_ns = now;
    if (now <= from)
        return; /* the host clock stepped back: nothing happened */
    unsigned period = periodic_ticks(rtc);
    if (period && ticks_at(from) / period != ticks_at(now) / period)
        rtc->r.flags |= C_PF;
    if (clock_running(rtc)) {
        int64_t from_s = from / NS_PER_SEC, now_s = now / NS_PER_SEC;
        if (from_s != now_s)
            rtc->r.flags |= C_UF;
        if (next_alarm_after(rtc, from_s) <= now_s)
            rtc->r.flags |= C_AF;
    }
}

static bool irq_pending(const struct vmdev_rtc *rtc)
{
    return rtc->r.flags & rtc->r.cmos[VMDEV_RTC_REG_B] & C_SOURCES;
}

/* Arm the timer for the next event that raises IRQF, if IRQF is clear. */
static void rearm(struct vmdev_rtc *rtc, int64_t now)
{
    int64_t event = NO_EVENT;
    uint8_t b = rtc->r.cmos[VMDEV_RTC_REG_B];
    unsigned period = periodic_ticks(rtc);
    if (!irq_pending(rtc)) {
        if ((b & B_PIE) && period)
            event = first_ns_of_tick((ticks_at(now) / period + 1) * period);
        if ((b & B_UIE) && clock_running(rtc)) {
            int64_t update = (now / NS_PER_SEC + 1) * NS_PER_SEC;
            event = update < event ? update : event;
        }
        if ((b & B_AIE) && clock_running(rtc)) {
            int64_t alarm = next_alarm_after(rtc, now / NS_PER_SEC);
            if (alarm != INT64_MAX && alarm * NS_PER_SEC < event)
                event = alarm * NS_PER_SEC;
        }
    }
    if (event == rtc->armed_event_ns)
        return;
    rtc->armed_event_ns = event;
    if (event == NO_EVENT) {
        if (rtc->timer.cancel)
            rtc->timer.cancel(rtc->timer.opaque);
    } else if (rtc->timer.arm) {
        uint64_t mono = vmdev_clock_now(&rtc->clock, VMDEV_CLOCK_MONOTONIC);
        rtc->timer.arm(rtc->timer.opaque, mono + (uint64_t)(event - now));
    }
}

static void update_irq(struct vmdev_rtc *rtc, int64_t now)
{
    vmdev_irq_set(&rtc->irq, irq_pending(rtc));
    rearm(rtc, now);
}

/* Registers A and B: start or stop the calendar on the transitions. */
static void write_control(struct vmdev_rtc *rtc, int64_t now, unsigned index,
                          uint8_t value)
{
    bool was_running = clock_running(rtc);
    bool divider_was_counting = divider_counts(rtc);
    if (index == VMDEV_RTC_REG_A) {
        value &= (uint8_t)~A_UIP; /* read-only */
    } else if (value & B_SET) {
        value &= (uint8_t)~B_UIE; /* "SET": setting it clears UIE */
    }
    rtc->r.cmos[index] = value;
    rtc->armed_event_ns = STALE_EVENT;
    if (was_running && !clock_running(rtc)) {
        freeze_time(rtc, now / NS_PER_SEC);
    } else if (!was_running && clock_running(rtc)) {
        /* Out of divider reset the first update is 500 ms away; after
         * SET the next update is a full second away. */
        int64_t start = frozen_time(rtc) * NS_PER_SEC;
        if (!divider_was_counting)
            start += NS_PER_SEC / 2;
        set_calendar(rtc, start);
    }
}

static void write_time(struct vmdev_rtc *rtc, int64_t now, unsigned index,
                       uint8_t value)
{
    if (!clock_running(rtc)) {
        rtc->r.cmos[index] = value;
        return;
    }
    /* A running clock takes the new field and keeps counting from it,
     * sub-second phase unchanged. */
    freeze_time(rtc, now / NS_PER_SEC);
    rtc->r.cmos[index] = value;
    set_calendar(rtc, frozen_time(rtc) * NS_PER_SEC + now % NS_PER_SEC);
}

static uint8_t read_data(struct vmdev_rtc *rtc, int64_t now)
{
    unsigned index = rtc->r.index;
    if (is_time_reg(index) && clock_running(rtc))
        return time_byte(rtc, index, now / NS_PER_SEC);
    switch (index) {
    case VMDEV_RTC_REG_A: {
        bool uip = clock_running(rtc) &&
                   now % NS_PER_SEC >= NS_PER_SEC - UIP_WINDOW_NS;
        return rtc->r.cmos[index] | (uip ? A_UIP : 0);
    }
    case VMDEV_RTC_REG_C: {
        /* Reading C returns the flags and clears them and IRQF. */
        uint8_t c = rtc->r.flags | (irq_pending(rtc) ? C_IRQF : 0);
        rtc->r.flags = 0;
        return c;
    }
    case VMDEV_RTC_REG_D:
        return D_VRT; /* valid RAM and time: the battery never dies */
    default:
        return rtc->r.cmos[index];
    }
}

static void write_data(struct vmdev_rtc *rtc, int64_t now, uint8_t value)
{
    unsigned index = rtc->r.index;
    if (is_time_reg(index)) {
        write_time(rtc, now, index, value);
        return;
    }
    switch (index) {
    case VMDEV_RTC_REG_A:
    case VMDEV_RTC_REG_B:
        write_control(rtc, now, index, value);
        break;
    case VMDEV_RTC_REG_C:
    case VMDEV_RTC_REG_D:
        break; /* read-only */
    default:   /* alarm registers and NVRAM */
        rtc->r.cmos[index] = value;
        rtc->armed_event_ns = STALE_EVENT;
        break;
    }
}

uint8_t vmdev_rtc_read(struct vmdev_rtc *rtc, unsigned offset)
{
    if (offset != VMDEV_RTC_PORT_DATA)
        return 0xff;
    pthread_mutex_lock(&rtc->lock);
    int64_t now = calendar_now(rtc);
    sync_flags(rtc, now);
    uint8_t value = read_data(rtc, now);
    update_irq(rtc, now);
    pthread_mutex_unlock(&rtc->lock);
    return value;
}

void vmdev_rtc_write(struct vmdev_rtc *rtc, unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&rtc->lock);
    if (offset == VMDEV_RTC_PORT_INDEX) {
        rtc->r.index = value & (VMDEV_RTC_CMOS_SIZE - 1); /* bit 7: NMI */
    } else if (offset == VMDEV_RTC_PORT_DATA) {
        int64_t now = calendar_now(rtc);
        sync_flags(rtc, now);
        write_data(rtc, now, value);
        update_irq(rtc, calendar_now(rtc));
    }
    pthread_mutex_unlock(&rtc->lock);
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_rtc_read(opaque, offset < 2 ? (unsigned)offset : 2);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    (void)size;
    vmdev_rtc_write(opaque, offset < 2 ? (unsigned)offset : 2,
                    (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_rtc_bus_ops = { bus_read, bus_write };

void vmdev_rtc_timer_expired(struct vmdev_rtc *rtc)
{
    pthread_mutex_lock(&rtc->lock);
    int64_t now = calendar_now(rtc);
    sync_flags(rtc, now);
    rtc->armed_event_ns = STALE_EVENT; /* the timer is idle now */
    update_irq(rtc, now);
    pthread_mutex_unlock(&rtc->lock);
}

int vmdev_rtc_nvram_write(struct vmdev_rtc *rtc, unsigned index,
                          uint8_t value)
{
    if (index <= VMDEV_RTC_REG_D || index >= VMDEV_RTC_CMOS_SIZE ||
        index == VMDEV_RTC_REG_CENTURY)
        return -EINVAL;
    pthread_mutex_lock(&rtc->lock);
    rtc->r.cmos[index] = value;
    pthread_mutex_unlock(&rtc->lock);
    return 0;
}

struct vmdev_rtc *vmdev_rtc_new(const struct vmdev_rtc_config *config)
{
    struct vmdev_rtc *rtc = calloc(1, sizeof(*rtc));
    if (!rtc)
        return NULL;
    if (pthread_mutex_init(&rtc->lock, NULL)) {
        free(rtc);
        return NULL;
    }
    rtc->clock = config->clock;
    rtc->timer = config->timer;
    rtc->irq = config->irq;
    rtc->log = config->log;
    rtc->armed_event_ns = NO_EVENT;
    rtc->r.cmos[VMDEV_RTC_REG_A] = 0x26;
    rtc->r.cmos[VMDEV_RTC_REG_B] = B_24H;
    rtc->r.offset_ns = (int64_t)config->utc_offset_seconds * NS_PER_SEC;
    rtc->r.synced_ns = calendar_now(rtc);
    return rtc;
}

void vmdev_rtc_free(struct vmdev_rtc *rtc)
{
    if (!rtc)
        return;
    if (rtc->armed_event_ns != NO_EVENT && rtc->timer.cancel)
        rtc->timer.cancel(rtc->timer.opaque);
    pthread_mutex_destroy(&rtc->lock);
    free(rtc);
}

void vmdev_rtc_save(struct vmdev_rtc *rtc, struct vmdev_state_writer *w,
                    const char *name)
{
    pthread_mutex_lock(&rtc->lock);
    sync_flags(rtc, calendar_now(rtc));
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_bytes(w, "cmos", rtc->r.cmos, sizeof(rtc->r.cmos));
    vmdev_state_put_u8(w, "index", rtc->r.index);
    vmdev_state_put_u8(w, "flags", rtc->r.flags);
    vmdev_state_put_u64(w, "offset_ns", (uint64_t)rtc->r.offset_ns);
    vmdev_state_put_u64(w, "synced_ns", (uint64_t)rtc->r.synced_ns);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&rtc->lock);
}

int vmdev_rtc_restore(struct vmdev_rtc *rtc, const void *data, size_t len,
                      const char *name)
{
    struct vmdev_state_section s;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    struct rtc_regs n;
    uint64_t offset, synced;
    if ((ret = vmdev_state_get_bytes(&s, "cmos", n.cmos, sizeof(n.cmos))) ||
        (ret = vmdev_state_get_u8(&s, "index", &n.index)) ||
        (ret = vmdev_state_get_u8(&s, "flags", &n.flags)) ||
        (ret = vmdev_state_get_u64(&s, "offset_ns", &offset)) ||
        (ret = vmdev_state_get_u64(&s, "synced_ns", &synced)))
        return ret;
    n.offset_ns = (int64_t)offset;
    n.synced_ns = (int64_t)synced;
    /* UIP, C and D are computed, never stored; the calendar stays in the
     * years the model represents. */
    if (n.index >= VMDEV_RTC_CMOS_SIZE || (n.flags & ~C_SOURCES) ||
        (n.cmos[VMDEV_RTC_REG_A] & A_UIP) || n.cmos[VMDEV_RTC_REG_C] ||
        n.cmos[VMDEV_RTC_REG_D] || n.offset_ns < -CALENDAR_MAX_NS ||
        n.offset_ns > CALENDAR_MAX_NS || n.synced_ns < 0 ||
        n.synced_ns > CALENDAR_MAX_NS)
        return -EINVAL;

    pthread_mutex_lock(&rtc->lock);
    rtc->r = n;
    rtc->armed_event_ns = STALE_EVENT;
    int64_t now = calendar_now(rtc);
    sync_flags(rtc, now);
    update_irq(rtc, now);
    pthread_mutex_unlock(&rtc->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_rtc, struct vmdev_rtc);
