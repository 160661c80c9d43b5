/* SPDX-License-Identifier: MIT */
/* ACPI PM1 block, PM timer and reset register (ACPI 6.5 section 4.8). */
#include "test.h"
#include "platform_fakes.h"
#include "vmdev/acpi_pm.h"

#include <errno.h>

#define NS UINT64_C(1000000000)
#define STS VMDEV_ACPI_PM1_EVT_OFFSET
#define EN (VMDEV_ACPI_PM1_EVT_OFFSET + 2)
#define CNT VMDEV_ACPI_PM1_CNT_OFFSET
#define TMR VMDEV_ACPI_PM_TMR_OFFSET
#define SLP_EN 0x2000
/* The first nanosecond of tick 2^23: ceil(2^23 * 1e9 / 3579545). */
#define TOGGLE_24_NS UINT64_C(2343484438)

struct rig {
    struct fake_clock clock;
    struct fake_timer timer;
    struct fake_irq sci;
    unsigned poweroffs, resets;
    struct vmdev_acpi_pm *pm;
};

static void on_poweroff(void *opaque)
{
    ((struct rig *)opaque)->poweroffs++;
}

static void on_reset(void *opaque)
{
    ((struct rig *)opaque)->resets++;
}

static void rig_init(struct rig *r, bool timer_32bit, uint64_t mono_ns)
{
    memset(r, 0, sizeof(*r));
    r->clock.mono_ns = mono_ns;
    struct vmdev_acpi_pm_config cfg = {
        .clock = fake_clock_iface(&r->clock),
        .timer = fake_timer_iface(&r->timer),
        .sci = fake_irq_line(&r->sci),
        .timer_32bit = timer_32bit,
        .poweroff = on_poweroff,
        .reset = on_reset,
        .opaque = r,
    };
    r->pm = vmdev_acpi_pm_new(&cfg);
}

static uint32_t rd(struct rig *r, unsigned off, unsigned size)
{
    return vmdev_acpi_pm_read(r->pm, off, size);
}

static void wr(struct rig *r, unsigned off, unsigned size, uint32_t v)
{
    vmdev_acpi_pm_write(r->pm, off, size, v);
}

static void expired(void *pm)
{
    vmdev_acpi_pm_timer_expired(pm);
}

static void pm_timer_counts_at_3_58_mhz(void)
{
    struct rig r;
    rig_init(&r, false, 10 * NS);
    CHECK(r.pm);
    CHECK_EQ(rd(&r, TMR, 4), (35795450u & 0xffffff));
    fake_clock_advance(&r.clock, NS);
    CHECK_EQ(rd(&r, TMR, 4), ((35795450u + 3579545u) & 0xffffff));
    CHECK_EQ(rd(&r, TMR + 3, 1), 0); /* 24 bits: the top byte is 0 */
    wr(&r, TMR, 4, 0); /* read-only */
    CHECK_EQ(rd(&r, TMR, 4), ((35795450u + 3579545u) & 0xffffff));
    vmdev_acpi_pm_free(r.pm);

    rig_init(&r, true, 10 * NS);
    CHECK_EQ(rd(&r, TMR, 4), 35795450u);
    CHECK_EQ(rd(&r, TMR + 2, 2), 35795450u >> 16);
    fake_clock_advance(&r.clock, 1200 * NS); /* past 2^32 ticks: wraps */
    CHECK_EQ(rd(&r, TMR, 4), (uint32_t)(35795450ull + 1200ull * 3579545));
    vmdev_acpi_pm_free(r.pm);
}

static void timer_status_on_top_bit_toggle(void)
{
    struct rig r;
    rig_init(&r, false, 0);
    fake_clock_advance(&r.clock, TOGGLE_24_NS - 1);
    CHECK_EQ(rd(&r, STS, 2), 0);
    CHECK_EQ(rd(&r, TMR, 4), 0x7fffff);
    fake_clock_advance(&r.clock, 1);
    CHECK_EQ(rd(&r, TMR, 4), 0x800000);
    CHECK_EQ(rd(&r, STS, 2), VMDEV_ACPI_PM1_TMR);
    CHECK(!r.sci.level); /* TMR_EN clear */
    CHECK_EQ(r.timer.arms, 0);
    wr(&r, STS, 2, 0xfffe); /* writing 0 leaves a status bit alone */
    CHECK_EQ(rd(&r, STS, 2), VMDEV_ACPI_PM1_TMR);
    wr(&r, STS, 2, VMDEV_ACPI_PM1_TMR); /* write 1 to clear */
    CHECK_EQ(rd(&r, STS, 2), 0);
    vmdev_acpi_pm_free(r.pm);
}

static void timer_enable_raises_sci(void)
{
    struct rig r;
    rig_init(&r, false, 0);
    wr(&r, EN, 2, VMDEV_ACPI_PM1_TMR);
    CHECK(r.timer.armed);
    CHECK_EQ(r.timer.deadline_ns, TOGGLE_24_NS);
    for (unsigned i = 0; i < 10; i++)
        rd(&r, TMR, 4);
    CHECK_EQ(r.timer.arms, 1); /* polling the timer does not re-arm */
    CHECK_EQ(fake_run_for(&r.clock, &r.timer, TOGGLE_24_NS - 1, expired, r.pm),
             0);
    CHECK(!r.sci.level);
    CHECK_EQ(fake_run_for(&r.clock, &r.timer, 1, expired, r.pm), 1);
    CHECK(r.sci.level);
    CHECK(!r.timer.armed); /* TMR_STS set: nothing more to signal */
    wr(&r, STS, 2, VMDEV_ACPI_PM1_TMR);
    CHECK(!r.sci.level);
    CHECK(r.timer.armed);
    CHECK_EQ(r.timer.deadline_ns, UINT64_C(4686968875)); /* tick 2^24 */
    wr(&r, EN, 2, 0);
    CHECK(!r.timer.armed);
    vmdev_acpi_pm_free(r.pm);
}

static void power_button(void)
{
    struct rig r;
    rig_init(&r, false, 0);
    vmdev_acpi_pm_press_power_button(r.pm);
    CHECK_EQ(rd(&r, STS, 2), VMDEV_ACPI_PM1_PWRBTN);
    CHECK(!r.sci.level);
    wr(&r, EN, 2, VMDEV_ACPI_PM1_PWRBTN | 0x0001);
    CHECK(r.sci.level);
    CHECK_EQ(rd(&r, EN, 2), VMDEV_ACPI_PM1_PWRBTN | 0x0001);
    /* One 32-bit access covers status (clear) and enable. */
    CHECK_EQ(rd(&r, STS, 4),
             VMDEV_ACPI_PM1_PWRBTN | (uint32_t)(VMDEV_ACPI_PM1_PWRBTN | 1) << 16);
    wr(&r, STS, 4, VMDEV_ACPI_PM1_PWRBTN | (uint32_t)VMDEV_ACPI_PM1_PWRBTN << 16);
    CHECK(!r.sci.level);
    CHECK_EQ(rd(&r, STS, 4), (uint32_t)VMDEV_ACPI_PM1_PWRBTN << 16);
    wr(&r, EN, 2, 0xffff); /* only implemented enables stick */
    CHECK_EQ(rd(&r, EN, 2), 0x0721);
    vmdev_acpi_pm_free(r.pm);
}

static void sleep_s5_powers_off(void)
{
    struct rig r;
    rig_init(&r, false, 0);
    CHECK_EQ(rd(&r, CNT, 2), 0x0001); /* SCI_EN: always in ACPI mode */
    wr(&r, CNT, 2, VMDEV_ACPI_SLP_TYP_S5 << 10);
    CHECK_EQ(r.poweroffs, 0);
    CHECK_EQ(rd(&r, CNT, 2), (VMDEV_ACPI_SLP_TYP_S5 << 10) | 1);
    wr(&r, CNT, 2, 3 << 10 | SLP_EN); /* S3 is not offered */
    CHECK_EQ(r.poweroffs, 0);
    wr(&r, CNT, 2, VMDEV_ACPI_SLP_TYP_S5 << 10 | SLP_EN);
    CHECK_EQ(r.poweroffs, 1);
    CHECK_EQ(rd(&r, CNT, 2) & SLP_EN, 0); /* write-only */
    /* The high byte alone, as a byte-wide access. */
    wr(&r, CNT + 1, 1, (VMDEV_ACPI_SLP_TYP_S5 << 10 | SLP_EN) >> 8);
    CHECK_EQ(r.poweroffs, 2);
    CHECK_EQ(r.resets, 0);
    vmdev_acpi_pm_free(r.pm);
}

static void reset_register(void)
{
    struct rig r;
    rig_init(&r, false, 0);
    wr(&r, VMDEV_ACPI_RESET_REG_OFFSET, 1, 0x06);
    CHECK_EQ(r.resets, 0);
    wr(&r, VMDEV_ACPI_RESET_REG_OFFSET, 1, VMDEV_ACPI_RESET_VALUE);
    CHECK_EQ(r.resets, 1);
    CHECK_EQ(rd(&r, VMDEV_ACPI_RESET_REG_OFFSET, 1), 0);
    CHECK_EQ(r.poweroffs, 0);
    /* Outside the block: all ones, writes dropped. */
    CHECK_EQ(rd(&r, 16, 1), 0xffffffff);
    CHECK_EQ(rd(&r, 14, 4), 0xffffffff);
    wr(&r, 13, 4, 0xffffffff);
    CHECK_EQ(r.resets, 1);
    vmdev_acpi_pm_free(r.pm);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a, false, 10 * NS);
    rig_init(&b, false, 5000 * NS); /* another host's monotonic clock */
    wr(&a, EN, 2, VMDEV_ACPI_PM1_PWRBTN | VMDEV_ACPI_PM1_TMR);
    wr(&a, CNT, 2, VMDEV_ACPI_SLP_TYP_S5 << 10 | 0x0002);
    vmdev_acpi_pm_press_power_button(a.pm);
    uint32_t counter = rd(&a, TMR, 4);

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_acpi_pm_save(a.pm, &w, "acpi-pm");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_acpi_pm_restore(b.pm, w.data, w.len, "acpi-pm"), 0);
    CHECK(b.sci.level);
    CHECK_EQ(rd(&b, TMR, 4), counter); /* the timer continues */
    CHECK_EQ(rd(&b, STS, 4), rd(&a, STS, 4));
    CHECK_EQ(rd(&b, CNT, 2), rd(&a, CNT, 2));
    CHECK(b.timer.armed);
    CHECK_EQ(b.timer.deadline_ns - b.clock.mono_ns,
             a.timer.deadline_ns - a.clock.mono_ns);
    fake_clock_advance(&a.clock, 7 * NS);
    fake_clock_advance(&b.clock, 7 * NS);
    CHECK_EQ(rd(&b, TMR, 4), rd(&a, TMR, 4));
    CHECK_EQ(rd(&b, STS, 2), rd(&a, STS, 2));
    vmdev_state_writer_release(&w);

    /* A 32-bit timer's state does not fit a 24-bit machine. */
    struct rig c;
    rig_init(&c, true, 0);
    vmdev_state_writer_init(&w);
    vmdev_acpi_pm_save(c.pm, &w, "acpi-pm");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_acpi_pm_restore(b.pm, w.data, w.len, "acpi-pm"), -EINVAL);
    CHECK(b.sci.level);
    vmdev_state_writer_release(&w);
    vmdev_acpi_pm_free(a.pm);
    vmdev_acpi_pm_free(b.pm);
    vmdev_acpi_pm_free(c.pm);
}

TEST_MAIN(TEST(pm_timer_counts_at_3_58_mhz),
          TEST(timer_status_on_top_bit_toggle), TEST(timer_enable_raises_sci),
          TEST(power_button), TEST(sleep_s5_powers_off), TEST(reset_register),
          TEST(save_restore_round_trip))
