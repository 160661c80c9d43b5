/* SPDX-License-Identifier: MIT */
/*
 * ACPI PM1 block: guest reads and writes of 1 to 4 bytes at any offset
 * (past the block's end too), the host's power button, time passing on a
 * fake clock with the one-shot timer fired when due, as a VMM's loop
 * would. A 24- or 32-bit PM timer, as the input's first byte says. A model
 * of the block from ACPI 6.5 section 4.8 runs alongside, and the target
 * checks after every step that
 *  - every read returns the model's bytes: PM1 status and enable, PM1
 *    control (SCI_EN always set, the write-only bits reading 0), PM_TMR at
 *    3.579545 MHz from the clock, zero elsewhere, all ones out of range;
 *  - TMR_STS is set exactly when the timer's top bit has changed since it
 *    was last looked at, and the SCI is high exactly while an enabled
 *    status bit is set;
 *  - with TMR_EN set and TMR_STS clear a timer is armed for the next
 *    toggle of the top bit, no later, and when it fires TMR_STS is set;
 *  - the poweroff callback runs exactly for SLP_EN written with SLP_TYP S5
 *    and the reset callback exactly for RESET_VALUE written to RESET_REG.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../unit/platform/platform_fakes.h"
#include "vmdev/acpi_pm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NS_PER_SEC 1000000000ull
#define CNT_SCI_EN 0x0001
#define CNT_STORED 0x1c02 /* BM_RLD and SLP_TYP; SLP_EN, GBL_RLS write-only */
#define PM1_EN_WRITABLE                                                        \
    (VMDEV_ACPI_PM1_TMR | VMDEV_ACPI_PM1_GBL | VMDEV_ACPI_PM1_PWRBTN |         \
     VMDEV_ACPI_PM1_SLPBTN | VMDEV_ACPI_PM1_RTC)
/* PM1_CNT's high byte: SLP_TYP in bits 2-4, SLP_EN in bit 5. */
#define CNT_HIGH_SLP_EN 0x20
#define CNT_HIGH_SLP_TYP(b) (((b) >> 2) & 7)

struct world {
    struct fake_clock clock;
    struct fake_timer timer;
    struct fake_irq sci;
    unsigned poweroffs, resets;
};

struct model {
    uint16_t sts, en, cnt;
    uint64_t seen_ticks; /* the counter when the device last looked */
    unsigned top_bit;    /* 23 or 31 */
    unsigned poweroffs, resets;
};

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static uint64_t ticks_at(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * VMDEV_ACPI_PM_TIMER_HZ /
                      NS_PER_SEC);
}

/* Every entry point first looks at the timer: TMR_STS is set when its top
 * bit changed since the last look (4.8.3.3). */
static void model_look(struct model *m, uint64_t now_ns)
{
    uint64_t ticks = ticks_at(now_ns);
    if (ticks >> m->top_bit != m->seen_ticks >> m->top_bit)
        m->sts |= VMDEV_ACPI_PM1_TMR;
    m->seen_ticks = ticks;
}

static uint8_t model_byte(const struct model *m, unsigned offset)
{
    uint32_t timer = (uint32_t)m->seen_ticks;
    if (m->top_bit == 23)
        timer &= 0xffffff;
    switch (offset) {
    case 0: case 1: return (uint8_t)(m->sts >> 8 * offset);
    case 2: case 3: return (uint8_t)(m->en >> 8 * (offset - 2));
    case 4: case 5:
        return (uint8_t)((m->cnt | CNT_SCI_EN) >> 8 * (offset - 4));
    case 8: case 9: case 10: case 11:
        return (uint8_t)(timer >> 8 * (offset - 8));
    default: return 0;
    }
}

static void model_write(struct model *m, unsigned offset, unsigned size,
                        uint32_t value)
{
    for (unsigned i = 0; i < size; i++) {
        unsigned at = offset + i;
        uint8_t byte = (uint8_t)(value >> 8 * i);
        if (at < 2) {
            m->sts &= (uint16_t)~(byte << 8 * at);
        } else if (at < 4) {
            unsigned shift = 8 * (at - 2);
            m->en = (uint16_t)((m->en & ~(0xff << shift)) |
                               ((byte << shift) & PM1_EN_WRITABLE));
        } else if (at < 6) {
            unsigned shift = 8 * (at - 4);
            m->cnt = (uint16_t)((m->cnt & ~(0xff << shift)) |
                                ((byte << shift) & CNT_STORED));
            if (at == 5 && (byte & CNT_HIGH_SLP_EN) &&
                CNT_HIGH_SLP_TYP(byte) == VMDEV_ACPI_SLP_TYP_S5)
                m->poweroffs++;
        } else if (at == VMDEV_ACPI_RESET_REG_OFFSET &&
                   byte == VMDEV_ACPI_RESET_VALUE) {
            m->resets++;
        }
    }
}

static void count_poweroff(void *opaque)
{
    ((struct world *)opaque)->poweroffs++;
}

static void count_reset(void *opaque)
{
    ((struct world *)opaque)->resets++;
}

/* The first nanosecond at which the counter has reached ticks. */
static uint64_t ns_of_ticks(uint64_t ticks)
{
    unsigned __int128 scaled = (unsigned __int128)ticks * NS_PER_SEC;
    return (uint64_t)((scaled + VMDEV_ACPI_PM_TIMER_HZ - 1) /
                      VMDEV_ACPI_PM_TIMER_HZ);
}

/* With TMR_EN set and TMR_STS clear, the timer must be armed for the next
 * toggle of the top bit: later would delay the SCI, earlier is a wasted
 * wake-up (allowed, but never before now's toggle). */
static void check_timer(const struct world *w, const struct model *m)
{
    if (!(m->en & VMDEV_ACPI_PM1_TMR) || (m->sts & VMDEV_ACPI_PM1_TMR))
        return;
    uint64_t toggle = ((m->seen_ticks >> m->top_bit) + 1) << m->top_bit;
    check(w->timer.armed);
    check(w->timer.deadline_ns <= ns_of_ticks(toggle));
    check(w->timer.deadline_ns > w->clock.mono_ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct world w = { .clock = { 123456789, 0 } };
    bool wide = data[0] & 1;
    struct vmdev_acpi_pm_config cfg = {
        .clock = fake_clock_iface(&w.clock),
        .timer = fake_timer_iface(&w.timer),
        .sci = fake_irq_line(&w.sci),
        .timer_32bit = wide,
        .poweroff = count_poweroff,
        .reset = count_reset,
        .opaque = &w,
    };
    struct vmdev_acpi_pm *pm = vmdev_acpi_pm_new(&cfg);
    if (!pm)
        return 0;
    struct model m = { .top_bit = wide ? 31 : 23 };
    m.seen_ticks = ticks_at(w.clock.mono_ns);

    for (size_t i = 1; i + 3 <= size; i += 3) {
        uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
        unsigned size_bytes = 1 + (op >> 3 & 3);
        unsigned offset = a % (VMDEV_ACPI_PM_BLOCK_LEN + 4);
        bool in_range = offset + size_bytes <= VMDEV_ACPI_PM_BLOCK_LEN;
        switch (op & 7) {
        case 0:
        case 1: { /* a guest read */
            uint32_t value = vmdev_acpi_pm_read(pm, offset, size_bytes);
            if (!in_range) {
                check(value == 0xffffffff);
                break;
            }
            model_look(&m, w.clock.mono_ns);
            for (unsigned k = 0; k < size_bytes; k++)
                check((uint8_t)(value >> 8 * k) == model_byte(&m, offset + k));
            break;
        }
        case 2:
        case 3: { /* a guest write; b repeated fills the wider accesses,
                     op's top bits vary the second byte */
            uint32_t value = b | (uint32_t)(b ^ (op & 0xe0)) << 8 |
                             (uint32_t)b << 16 | (uint32_t)a << 24;
            vmdev_acpi_pm_write(pm, offset, size_bytes, value);
            if (!in_range)
                break;
            model_look(&m, w.clock.mono_ns);
            model_write(&m, offset, size_bytes, value);
            break;
        }
        case 4: /* the host's power button */
            vmdev_acpi_pm_press_power_button(pm);
            model_look(&m, w.clock.mono_ns);
            m.sts |= VMDEV_ACPI_PM1_PWRBTN;
            break;
        case 5:
        case 6: { /* time passes, 1 ns to about 34 s, the timer firing on
                     the way; toggles of the top bit are 2.3 s or more
                     apart, and the timer has no other reason to fire */
            uint64_t ns = ((uint64_t)a << 8 | b) << (op >> 3) % 24 >> 4;
            uint64_t end = w.clock.mono_ns + ns;
            unsigned fired = 0;
            unsigned most = 2 + (unsigned)(ns / ns_of_ticks(1ull << m.top_bit));
            while (w.timer.armed && w.timer.deadline_ns <= end) {
                check(++fired <= most);
                if (w.timer.deadline_ns > w.clock.mono_ns)
                    w.clock.mono_ns = w.timer.deadline_ns;
                w.timer.armed = false;
                bool waiting = (m.en & VMDEV_ACPI_PM1_TMR) &&
                               !(m.sts & VMDEV_ACPI_PM1_TMR);
                vmdev_acpi_pm_timer_expired(pm);
                model_look(&m, w.clock.mono_ns);
                /* Fired at the deadline it asked for: the bit toggled. */
                check(!waiting || (m.sts & VMDEV_ACPI_PM1_TMR));
            }
            w.clock.mono_ns = end;
            break;
        }
        default: /* a spurious late expiry is harmless */
            vmdev_acpi_pm_timer_expired(pm);
            model_look(&m, w.clock.mono_ns);
            break;
        }
        check(w.poweroffs == m.poweroffs && w.resets == m.resets);
        check(w.sci.level == ((m.sts & m.en) != 0));
        check_timer(&w, &m);
    }
    vmdev_acpi_pm_free(pm);
    return 0;
}
