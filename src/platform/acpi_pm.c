/* SPDX-License-Identifier: MIT */
/*
 * ACPI PM1a event/control, PM timer and reset register. Section numbers
 * are those of the ACPI 6.5 specification.
 */
#include "device_entry.h"
#include "vmdev/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "vmdev/log.h"

#define NS_PER_SEC 1000000000ull

/* 4.8.3.1.1-2: the status bits this block implements; enables as well. */
#define PM1_STS_MASK                                                           \
    (VMDEV_ACPI_PM1_TMR | VMDEV_ACPI_PM1_GBL | VMDEV_ACPI_PM1_PWRBTN |         \
     VMDEV_ACPI_PM1_SLPBTN | VMDEV_ACPI_PM1_RTC | VMDEV_ACPI_PM1_WAK)
#define PM1_EN_MASK                                                            \
    (VMDEV_ACPI_PM1_TMR | VMDEV_ACPI_PM1_GBL | VMDEV_ACPI_PM1_PWRBTN |         \
     VMDEV_ACPI_PM1_SLPBTN | VMDEV_ACPI_PM1_RTC)

/* 4.8.3.2.1 PM1 control bits. */
#define CNT_SCI_EN 0x0001
#define CNT_BM_RLD 0x0002
#define CNT_GBL_RLS 0x0004 /* write-only */
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP 0x1c00
#define CNT_SLP_EN 0x2000 /* write-only */
#define CNT_STORED (CNT_BM_RLD | CNT_SLP_TYP)

/* Register byte ranges within the block. */
#define STS_OFFSET 0
#define EN_OFFSET 2

#define STATE_VERSION 1

struct pm_regs {
    uint16_t sts, en, cnt;
    uint64_t tick_offset; /* counter = ticks since the clock's zero + this */
    uint64_t synced_tick; /* counter value up to which TMR_STS is accounted */
};

struct vmdev_acpi_pm {
    pthread_mutex_t lock;
    struct vmdev_clock clock;
    struct vmdev_timer timer;
    struct vmdev_irq_line sci;
    unsigned timer_bits;
    void (*poweroff)(void *opaque);
    void (*reset)(void *opaque);
    void *opaque;
    struct vmdev_log *log;
    struct vmdev_ratelimit log_limit; /* the guest's errors */
    bool timer_armed;
    uint64_t armed_deadline_ns;
    struct pm_regs r;
};

enum action { ACTION_NONE, ACTION_POWEROFF, ACTION_RESET };

static uint64_t ticks_of_ns(uint64_t ns)
{
    return ns / NS_PER_SEC * VMDEV_ACPI_PM_TIMER_HZ +
           ns % NS_PER_SEC * VMDEV_ACPI_PM_TIMER_HZ / NS_PER_SEC;
}

/* The first nanosecond at which ticks_of_ns() reaches ticks. */
static uint64_t ns_of_ticks(uint64_t ticks)
{
    uint64_t rem = ticks % VMDEV_ACPI_PM_TIMER_HZ;
    return ticks / VMDEV_ACPI_PM_TIMER_HZ * NS_PER_SEC +
           (rem * NS_PER_SEC + VMDEV_ACPI_PM_TIMER_HZ - 1) /
               VMDEV_ACPI_PM_TIMER_HZ;
}

static uint64_t counter_now(const struct vmdev_acpi_pm *pm)
{
    return ticks_of_ns(vmdev_clock_now(&pm->clock, VMDEV_CLOCK_MONOTONIC)) +
           pm->r.tick_offset;
}

/* 4.8.3.3: TMR_STS is set whenever the timer's top bit (23 or 31)
 * changes, i.e. every 2^(bits-1) ticks. */
static void sync_timer_status(struct vmdev_acpi_pm *pm, uint64_t now)
{
    unsigned shift = pm->timer_bits - 1;
    if (now >> shift != pm->r.synced_tick >> shift)
        pm->r.sts |= VMDEV_ACPI_PM1_TMR;
    pm->r.synced_tick = now;
}

/* Level SCI (4.8.3.1): an enabled status bit is set. SCI_EN is always 1. */
static void update_irq(struct vmdev_acpi_pm *pm, uint64_t now)
{
    vmdev_irq_set(&pm->sci, pm->r.sts & pm->r.en);
    bool want = (pm->r.en & VMDEV_ACPI_PM1_TMR) &&
                !(pm->r.sts & VMDEV_ACPI_PM1_TMR);
    if (want) {
        /* The guest may poll PM_TMR in a loop: re-arm only on change. */
        unsigned shift = pm->timer_bits - 1;
        uint64_t toggle = ((now >> shift) + 1) << shift;
        uint64_t deadline = ns_of_ticks(toggle - pm->r.tick_offset);
        if ((!pm->timer_armed || deadline != pm->armed_deadline_ns) &&
            pm->timer.arm)
            pm->timer.arm(pm->timer.opaque, deadline);
        pm->armed_deadline_ns = deadline;
    } else if (pm->timer_armed && pm->timer.cancel) {
        pm->timer.cancel(pm->timer.opaque);
    }
    pm->timer_armed = want;
}

static uint32_t timer_value(const struct vmdev_acpi_pm *pm, uint64_t now)
{
    return pm->timer_bits == 32 ? (uint32_t)now : (uint32_t)(now & 0xffffff);
}

/* The byte at offset in the block, given the timer counter now. */
static uint8_t read_byte(const struct vmdev_acpi_pm *pm, unsigned offset,
                         uint32_t timer)
{
    switch (offset) {
    case STS_OFFSET:
    case STS_OFFSET + 1:
        return (uint8_t)(pm->r.sts >> 8 * (offset - STS_OFFSET));
    case EN_OFFSET:
    case EN_OFFSET + 1:
        return (uint8_t)(pm->r.en >> 8 * (offset - EN_OFFSET));
    case VMDEV_ACPI_PM1_CNT_OFFSET:
    case VMDEV_ACPI_PM1_CNT_OFFSET + 1: {
        uint16_t cnt = pm->r.cnt | CNT_SCI_EN;
        return (uint8_t)(cnt >> 8 * (offset - VMDEV_ACPI_PM1_CNT_OFFSET));
    }
    case VMDEV_ACPI_PM_TMR_OFFSET:
    case VMDEV_ACPI_PM_TMR_OFFSET + 1:
    case VMDEV_ACPI_PM_TMR_OFFSET + 2:
    case VMDEV_ACPI_PM_TMR_OFFSET + 3:
        return (uint8_t)(timer >> 8 * (offset - VMDEV_ACPI_PM_TMR_OFFSET));
    default:
        return 0; /* reset register (write-only) and reserved bytes */
    }
}

uint32_t vmdev_acpi_pm_read(struct vmdev_acpi_pm *pm, unsigned offset,
                            unsigned size)
{
    if (size > 4 || offset >= VMDEV_ACPI_PM_BLOCK_LEN ||
        size > VMDEV_ACPI_PM_BLOCK_LEN - offset)
        return 0xffffffff;
    pthread_mutex_lock(&pm->lock);
    uint64_t now = counter_now(pm);
    sync_timer_status(pm, now);
    uint32_t timer = timer_value(pm, now), value = 0;
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)read_byte(pm, offset + i, timer) << 8 * i;
    update_irq(pm, now);
    pthread_mutex_unlock(&pm->lock);
    return value;
}

static enum action write_control(struct vmdev_acpi_pm *pm, uint16_t cnt)
{
    pm->r.cnt = cnt & CNT_STORED;
    if (!(cnt & CNT_SLP_EN))
        return ACTION_NONE;
    unsigned type = (cnt & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT;
    if (type == VMDEV_ACPI_SLP_TYP_S5)
        return ACTION_POWEROFF;
    vmdev_log_guest(pm->log, &pm->log_limit,
                    "acpi-pm: sleep type %u requested; only S5 (%u) exists",
                    type, VMDEV_ACPI_SLP_TYP_S5);
    return ACTION_NONE;
}

void vmdev_acpi_pm_write(struct vmdev_acpi_pm *pm, unsigned offset,
                         unsigned size, uint32_t value)
{
    if (size > 4 || offset >= VMDEV_ACPI_PM_BLOCK_LEN ||
        size > VMDEV_ACPI_PM_BLOCK_LEN - offset)
        return;
    /* Gather the written bytes per register: value and byte-lane mask. */
    uint16_t sts_clear = 0, en = 0, en_mask = 0, cnt = 0, cnt_mask = 0;
    bool reset = false;
    for (unsigned i = 0; i < size; i++) {
        unsigned at = offset + i;
        uint16_t byte = (uint8_t)(value >> 8 * i);
        if (at - STS_OFFSET < 2) {
            sts_clear |= byte << 8 * (at - STS_OFFSET);
        } else if (at - EN_OFFSET < 2) {
            en |= byte << 8 * (at - EN_OFFSET);
            en_mask |= 0xff << 8 * (at - EN_OFFSET);
        } else if (at - VMDEV_ACPI_PM1_CNT_OFFSET < 2) {
            cnt |= byte << 8 * (at - VMDEV_ACPI_PM1_CNT_OFFSET);
            cnt_mask |= 0xff << 8 * (at - VMDEV_ACPI_PM1_CNT_OFFSET);
        } else if (at == VMDEV_ACPI_RESET_REG_OFFSET) {
            reset = byte == VMDEV_ACPI_RESET_VALUE;
        }
        /* PM_TMR is read-only; other bytes are reserved. */
    }

    enum action action = reset ? ACTION_RESET : ACTION_NONE;
    pthread_mutex_lock(&pm->lock);
    uint64_t now = counter_now(pm);
    sync_timer_status(pm, now);
    pm->r.sts &= (uint16_t)~sts_clear; /* 4.8.3.1.1: write 1 to clear */
    pm->r.en = (uint16_t)((pm->r.en & ~en_mask) | (en & en_mask & PM1_EN_MASK));
    if (cnt_mask) {
        /* A write of one byte keeps the other; the write-only bits read
         * as 0 so they are never carried over. */
        uint16_t merged = (uint16_t)((pm->r.cnt & ~cnt_mask) | (cnt & cnt_mask));
        if (write_control(pm, merged) == ACTION_POWEROFF)
            action = ACTION_POWEROFF;
    }
    update_irq(pm, now);
    pthread_mutex_unlock(&pm->lock);

    if (action == ACTION_POWEROFF && pm->poweroff)
        pm->poweroff(pm->opaque);
    else if (action == ACTION_RESET && pm->reset)
        pm->reset(pm->opaque);
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    return vmdev_acpi_pm_read(opaque, offset < 16 ? (unsigned)offset : 16,
                              size);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    vmdev_acpi_pm_write(opaque, offset < 16 ? (unsigned)offset : 16, size,
                        (uint32_t)value);
}

const struct vmdev_bus_ops vmdev_acpi_pm_bus_ops = { bus_read, bus_write };

void vmdev_acpi_pm_timer_expired(struct vmdev_acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    uint64_t now = counter_now(pm);
    sync_timer_status(pm, now);
    pm->timer_armed = false;
    update_irq(pm, now);
    pthread_mutex_unlock(&pm->lock);
}

void vmdev_acpi_pm_press_power_button(struct vmdev_acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    uint64_t now = counter_now(pm);
    sync_timer_status(pm, now);
    pm->r.sts |= VMDEV_ACPI_PM1_PWRBTN;
    update_irq(pm, now);
    pthread_mutex_unlock(&pm->lock);
}

struct vmdev_acpi_pm *vmdev_acpi_pm_new(const struct vmdev_acpi_pm_config *c)
{
    struct vmdev_acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    if (pthread_mutex_init(&pm->lock, NULL)) {
        free(pm);
        return NULL;
    }
    pm->clock = c->clock;
    pm->timer = c->timer;
    pm->sci = c->sci;
    pm->timer_bits = c->timer_32bit ? 32 : 24;
    pm->poweroff = c->poweroff;
    pm->log = c->log;
    pm->reset = c->reset;
    pm->opaque = c->opaque;
    pm->r.synced_tick = counter_now(pm);
    return pm;
}

void vmdev_acpi_pm_free(struct vmdev_acpi_pm *pm)
{
    if (!pm)
        return;
    if (pm->timer_armed && pm->timer.cancel)
        pm->timer.cancel(pm->timer.opaque);
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

/* The counter is saved as its value, so it continues from there on a host
 * whose monotonic clock reads differently. */
void vmdev_acpi_pm_save(struct vmdev_acpi_pm *pm,
                        struct vmdev_state_writer *w, const char *name)
{
    pthread_mutex_lock(&pm->lock);
    uint64_t now = counter_now(pm);
    sync_timer_status(pm, now);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u16(w, "sts", pm->r.sts);
    vmdev_state_put_u16(w, "en", pm->r.en);
    vmdev_state_put_u16(w, "cnt", pm->r.cnt);
    vmdev_state_put_u8(w, "timer_bits", (uint8_t)pm->timer_bits);
    vmdev_state_put_u64(w, "counter", now);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&pm->lock);
}

int vmdev_acpi_pm_restore(struct vmdev_acpi_pm *pm, const void *data,
                          size_t len, const char *name)
{
    struct vmdev_state_section s;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    struct pm_regs n;
    uint8_t bits;
    uint64_t counter;
    if ((ret = vmdev_state_get_u16(&s, "sts", &n.sts)) ||
        (ret = vmdev_state_get_u16(&s, "en", &n.en)) ||
        (ret = vmdev_state_get_u16(&s, "cnt", &n.cnt)) ||
        (ret = vmdev_state_get_u8(&s, "timer_bits", &bits)) ||
        (ret = vmdev_state_get_u64(&s, "counter", &counter)))
        return ret;
    /* The timer width is machine configuration: the FADT the guest read
     * must still be true. */
    if ((n.sts & ~PM1_STS_MASK) || (n.en & ~PM1_EN_MASK) ||
        (n.cnt & ~CNT_STORED) || bits != pm->timer_bits)
        return -EINVAL;
    pthread_mutex_lock(&pm->lock);
    uint64_t ticks = ticks_of_ns(vmdev_clock_now(&pm->clock,
                                                 VMDEV_CLOCK_MONOTONIC));
    n.tick_offset = counter - ticks;
    n.synced_tick = counter;
    pm->r = n;
    update_irq(pm, counter);
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_acpi_pm, struct vmdev_acpi_pm);
