/* SPDX-License-Identifier: MIT */
/* MC146818A RTC against the Motorola datasheet, on a fake clock. */
#include "test.h"
#include "platform_fakes.h"
#include "platform/rtc_calendar.h"
#include "vmdev/rtc.h"

#include <errno.h>

#define NS INT64_C(1000000000)
#define MS INT64_C(1000000)
/* 2024-02-29 23:59:58 UTC, a Thursday. */
#define LEAP_DAY_EVENING INT64_C(1709251198)

enum { SEC = 0, SEC_ALARM, MIN, MIN_ALARM, HOUR, HOUR_ALARM, WDAY, DAY, MONTH,
       YEAR, REG_A, REG_B, REG_C, REG_D, CENTURY = 0x32 };

struct rig {
    struct fake_clock clock;
    struct fake_timer timer;
    struct fake_irq irq;
    struct vmdev_rtc *rtc;
};

static void rig_init(struct rig *r, int32_t utc_offset)
{
    memset(r, 0, sizeof(*r));
    r->clock.mono_ns = 5000 * NS;
    r->clock.real_ns = LEAP_DAY_EVENING * NS;
    struct vmdev_rtc_config cfg = {
        .clock = fake_clock_iface(&r->clock),
        .timer = fake_timer_iface(&r->timer),
        .irq = fake_irq_line(&r->irq),
        .utc_offset_seconds = utc_offset,
    };
    r->rtc = vmdev_rtc_new(&cfg);
}

static uint8_t get(struct rig *r, uint8_t index)
{
    vmdev_rtc_write(r->rtc, VMDEV_RTC_PORT_INDEX, index);
    return vmdev_rtc_read(r->rtc, VMDEV_RTC_PORT_DATA);
}

static void set(struct rig *r, uint8_t index, uint8_t value)
{
    vmdev_rtc_write(r->rtc, VMDEV_RTC_PORT_INDEX, index);
    vmdev_rtc_write(r->rtc, VMDEV_RTC_PORT_DATA, value);
}

static void expired(void *rtc)
{
    vmdev_rtc_timer_expired(rtc);
}

static unsigned run_for(struct rig *r, int64_t ns)
{
    return fake_run_for(&r->clock, &r->timer, (uint64_t)ns, expired, r->rtc);
}

static void time_registers_bcd_24h(void)
{
    struct rig r;
    rig_init(&r, 0);
    CHECK(r.rtc);
    CHECK_EQ(get(&r, REG_A), 0x26);
    CHECK_EQ(get(&r, REG_B), 0x02);
    CHECK_EQ(get(&r, SEC), 0x58);
    CHECK_EQ(get(&r, MIN), 0x59);
    CHECK_EQ(get(&r, HOUR), 0x23);
    CHECK_EQ(get(&r, WDAY), 5);
    CHECK_EQ(get(&r, DAY), 0x29);
    CHECK_EQ(get(&r, MONTH), 0x02);
    CHECK_EQ(get(&r, YEAR), 0x24);
    CHECK_EQ(get(&r, CENTURY), 0x20);
    fake_clock_advance(&r.clock, 2 * NS);
    CHECK_EQ(get(&r, SEC), 0x00);
    CHECK_EQ(get(&r, HOUR), 0x00);
    CHECK_EQ(get(&r, WDAY), 6);
    CHECK_EQ(get(&r, DAY), 0x01);
    CHECK_EQ(get(&r, MONTH), 0x03);
    CHECK_EQ(r.timer.arms, 0); /* nothing enabled, nothing armed */
    vmdev_rtc_free(r.rtc);
}

static void binary_and_12_hour_modes(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_B, 0x04); /* binary, 12-hour */
    CHECK_EQ(get(&r, SEC), 58);
    CHECK_EQ(get(&r, HOUR), 0x80 | 11); /* 11 PM */
    CHECK_EQ(get(&r, DAY), 29);
    fake_clock_advance(&r.clock, 2 * NS);
    CHECK_EQ(get(&r, HOUR), 12); /* midnight is 12 AM */
    fake_clock_advance(&r.clock, 12 * 3600 * NS);
    CHECK_EQ(get(&r, HOUR), 0x80 | 12); /* noon is 12 PM */
    set(&r, REG_B, 0x00); /* BCD, 12-hour */
    fake_clock_advance(&r.clock, 3600 * NS);
    CHECK_EQ(get(&r, HOUR), 0x81);
    CHECK_EQ(get(&r, YEAR), 0x24);
    vmdev_rtc_free(r.rtc);
}

static void utc_offset_option(void)
{
    struct rig r;
    rig_init(&r, -5 * 3600);
    CHECK_EQ(get(&r, HOUR), 0x18);
    CHECK_EQ(get(&r, DAY), 0x29);
    vmdev_rtc_free(r.rtc);
    rig_init(&r, 3600);
    CHECK_EQ(get(&r, HOUR), 0x00);
    CHECK_EQ(get(&r, DAY), 0x01);
    vmdev_rtc_free(r.rtc);
}

static void write_time(struct rig *r)
{
    set(r, SEC, 0x06);
    set(r, MIN, 0x05);
    set(r, HOUR, 0x04);
    set(r, DAY, 0x03);
    set(r, MONTH, 0x02);
    set(r, YEAR, 0x01);
    set(r, CENTURY, 0x20);
}

static void set_bit_freezes_and_sets_time(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_B, 0x92); /* SET with UIE: SET clears UIE */
    CHECK_EQ(get(&r, REG_B), 0x82);
    write_time(&r);
    fake_clock_advance(&r.clock, 3 * NS + 999 * MS);
    CHECK_EQ(get(&r, SEC), 0x06); /* no updates while SET */
    CHECK_EQ(get(&r, REG_A) & 0x80, 0);
    set(&r, REG_B, 0x02);
    CHECK_EQ(get(&r, SEC), 0x06);
    CHECK_EQ(get(&r, WDAY), 7); /* 2001-02-03 was a Saturday */
    fake_clock_advance(&r.clock, 999 * MS);
    CHECK_EQ(get(&r, SEC), 0x06);
    fake_clock_advance(&r.clock, 1 * MS);
    CHECK_EQ(get(&r, SEC), 0x07);
    fake_clock_advance(&r.clock, 3600 * NS);
    CHECK_EQ(get(&r, HOUR), 0x05);
    CHECK_EQ(get(&r, YEAR), 0x01);
    CHECK_EQ(get(&r, CENTURY), 0x20);
    /* Nonsense (BCD 0x99 hours, month 0) is clamped, never trusted. */
    set(&r, REG_B, 0x82);
    set(&r, HOUR, 0x99);
    set(&r, MONTH, 0x00);
    set(&r, REG_B, 0x02);
    CHECK_EQ(get(&r, HOUR), 0x00);
    CHECK_EQ(get(&r, MONTH), 0x01);
    vmdev_rtc_free(r.rtc);
}

/* Linux's mc146818_set_time(): SET, divider reset, write, release B,
 * then A. The first update comes 500 ms after the divider restarts. */
static void divider_reset_starts_half_second_early(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_B, 0x82);
    set(&r, REG_A, 0x76);
    write_time(&r);
    set(&r, REG_B, 0x02);
    fake_clock_advance(&r.clock, 5 * NS);
    CHECK_EQ(get(&r, SEC), 0x06); /* divider still in reset */
    set(&r, REG_A, 0x26);
    fake_clock_advance(&r.clock, 499 * MS);
    CHECK_EQ(get(&r, SEC), 0x06);
    fake_clock_advance(&r.clock, 1 * MS);
    CHECK_EQ(get(&r, SEC), 0x07);
    CHECK_EQ(get(&r, MIN), 0x05);
    vmdev_rtc_free(r.rtc);
}

static void register_write_while_running(void)
{
    struct rig r;
    rig_init(&r, 0);
    fake_clock_advance(&r.clock, 300 * MS);
    set(&r, MIN, 0x30);
    CHECK_EQ(get(&r, MIN), 0x30);
    CHECK_EQ(get(&r, SEC), 0x58);
    fake_clock_advance(&r.clock, 699 * MS);
    CHECK_EQ(get(&r, SEC), 0x58); /* sub-second phase kept */
    fake_clock_advance(&r.clock, 1 * MS);
    CHECK_EQ(get(&r, SEC), 0x59);
    set(&r, CENTURY, 0x21);
    CHECK_EQ(get(&r, CENTURY), 0x21);
    CHECK_EQ(get(&r, YEAR), 0x24);
    CHECK_EQ(get(&r, HOUR), 0x23);
    vmdev_rtc_free(r.rtc);
}

static void uip_before_each_update(void)
{
    struct rig r;
    rig_init(&r, 0);
    fake_clock_advance(&r.clock, NS - 245000);
    CHECK_EQ(get(&r, REG_A), 0x26);
    fake_clock_advance(&r.clock, 2000);
    CHECK_EQ(get(&r, REG_A), 0xa6);
    CHECK_EQ(get(&r, SEC), 0x58); /* the update has not happened yet */
    fake_clock_advance(&r.clock, 243000);
    CHECK_EQ(get(&r, REG_A), 0x26);
    CHECK_EQ(get(&r, SEC), 0x59);
    fake_clock_advance(&r.clock, NS - 100000);
    set(&r, REG_B, 0x82); /* SET: no update cycle, no UIP */
    CHECK_EQ(get(&r, REG_A), 0x26);
    set(&r, REG_A, 0xa6); /* UIP is read-only */
    set(&r, REG_B, 0x02);
    fake_clock_advance(&r.clock, 1000);
    CHECK_EQ(get(&r, REG_A), 0x26);
    vmdev_rtc_free(r.rtc);
}

static void periodic_interrupt_rates(void)
{
    /* RS -> period in ns, rounded up (Table 5, 32.768 kHz time base). */
    static const struct { uint8_t rs; int64_t ns; } rates[] = {
        { 1, 3906250 }, { 2, 7812500 }, { 3, 122071 },
        { 6, 976563 },  { 15, 500000000 },
    };
    for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct rig r;
        rig_init(&r, 0);
        set(&r, REG_A, (uint8_t)(0x20 | rates[i].rs));
        CHECK(!r.timer.armed);
        set(&r, REG_B, 0x42);
        CHECK(r.timer.armed);
        CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, rates[i].ns);
        CHECK(!r.irq.level);
        CHECK_EQ(run_for(&r, rates[i].ns), 1);
        CHECK(r.irq.level);
        CHECK(!r.timer.armed); /* IRQF set: nothing more to signal */
        CHECK_EQ(get(&r, REG_C), 0xc0);
        CHECK(!r.irq.level);
        CHECK(r.timer.armed);
        CHECK_EQ(get(&r, REG_C), 0x00);
        CHECK_EQ(run_for(&r, rates[i].ns), 1);
        CHECK_EQ(r.irq.rises, 2);
        vmdev_rtc_free(r.rtc);
    }
}

static void flags_without_interrupts(void)
{
    struct rig r;
    rig_init(&r, 0);
    fake_clock_advance(&r.clock, 2 * MS);
    CHECK_EQ(get(&r, REG_C), 0x40); /* PF at 1024 Hz, no IRQF */
    fake_clock_advance(&r.clock, 2 * NS);
    CHECK_EQ(get(&r, REG_C), 0x70); /* PF, AF (alarm 00:00:00 matched), UF */
    CHECK_EQ(r.timer.arms, 0);
    CHECK_EQ(r.irq.rises, 0);
    /* Enabling PIE while PF is pending raises IRQF at once. */
    fake_clock_advance(&r.clock, 2 * MS);
    set(&r, REG_B, 0x42);
    CHECK(r.irq.level);
    CHECK_EQ(get(&r, REG_C), 0xc0);
    vmdev_rtc_free(r.rtc);
}

static void update_ended_interrupt(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_A, 0x20); /* no periodic flags */
    set(&r, REG_B, 0x12);
    CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, NS);
    CHECK_EQ(run_for(&r, NS), 1);
    CHECK(r.irq.level);
    CHECK_EQ(get(&r, SEC), 0x59);
    CHECK_EQ(get(&r, REG_C), 0x90);
    CHECK_EQ(run_for(&r, 10 * NS), 1); /* waits for C to be read */
    CHECK_EQ(get(&r, REG_C), 0xb0); /* midnight matched alarm 00:00:00 */
    CHECK_EQ(run_for(&r, 3 * NS), 1);
    CHECK_EQ(get(&r, REG_C), 0x90);
    CHECK_EQ(run_for(&r, 3 * NS), 1);
    vmdev_rtc_free(r.rtc);
}

static void alarm_interrupt(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_A, 0x20);
    set(&r, SEC_ALARM, 0x05);
    set(&r, MIN_ALARM, 0x00);
    set(&r, HOUR_ALARM, 0xc0); /* don't care */
    set(&r, REG_B, 0x22);
    CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, 7 * NS);
    CHECK_EQ(run_for(&r, 7 * NS - 1), 0);
    CHECK(!r.irq.level);
    CHECK_EQ(run_for(&r, 1), 1);
    CHECK(r.irq.level);
    CHECK_EQ(get(&r, SEC), 0x05);
    CHECK_EQ(get(&r, REG_C), 0xb0); /* IRQF, AF, and UF without UIE */
    /* Next match: 01:00:05. */
    CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, 3600 * NS);

    /* Every field don't-care: once a second. */
    set(&r, SEC_ALARM, 0xff);
    set(&r, MIN_ALARM, 0xd7);
    CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, NS);

    /* 12-hour binary: 12 PM is noon, 11 h 59 min 55 s from 00:00:05. */
    set(&r, REG_B, 0x24);
    set(&r, HOUR_ALARM, 0x80 | 12);
    set(&r, MIN_ALARM, 0);
    set(&r, SEC_ALARM, 0);
    CHECK_EQ(r.timer.deadline_ns - r.clock.mono_ns, (12 * 3600 - 5) * NS);

    /* An alarm the clock can never show arms nothing. */
    set(&r, REG_B, 0x22);
    set(&r, SEC_ALARM, 0x6a);
    CHECK(!r.timer.armed);
    vmdev_rtc_free(r.rtc);
}

static void registers_c_d_and_ports(void)
{
    struct rig r;
    rig_init(&r, 0);
    CHECK_EQ(get(&r, REG_D), 0x80);
    set(&r, REG_D, 0x00);
    CHECK_EQ(get(&r, REG_D), 0x80);
    set(&r, REG_C, 0xff);
    CHECK_EQ(get(&r, REG_C), 0x00);
    /* The NMI-mask bit of the index is ignored. */
    vmdev_rtc_write(r.rtc, VMDEV_RTC_PORT_INDEX, 0x80 | REG_D);
    CHECK_EQ(vmdev_rtc_read(r.rtc, VMDEV_RTC_PORT_DATA), 0x80);
    CHECK_EQ(vmdev_rtc_read(r.rtc, VMDEV_RTC_PORT_INDEX), 0xff);
    CHECK_EQ(vmdev_rtc_read(r.rtc, 2), 0xff);
    vmdev_rtc_write(r.rtc, 7, 0x12); /* not ours: ignored */
    vmdev_rtc_free(r.rtc);
}

static void nvram(void)
{
    struct rig r;
    rig_init(&r, 0);
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != CENTURY)
            set(&r, (uint8_t)i, (uint8_t)(i * 3));
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != CENTURY)
            CHECK_EQ(get(&r, (uint8_t)i), (uint8_t)(i * 3));
    CHECK_EQ(vmdev_rtc_nvram_write(r.rtc, 0x34, 0x12), 0);
    CHECK_EQ(get(&r, 0x34), 0x12);
    CHECK_EQ(vmdev_rtc_nvram_write(r.rtc, REG_B, 0), -EINVAL);
    CHECK_EQ(vmdev_rtc_nvram_write(r.rtc, CENTURY, 0), -EINVAL);
    CHECK_EQ(vmdev_rtc_nvram_write(r.rtc, 0x80, 0), -EINVAL);
    vmdev_rtc_free(r.rtc);
}

static void host_clock_stepping_back(void)
{
    struct rig r;
    rig_init(&r, 0);
    set(&r, REG_B, 0x12);
    r.clock.real_ns -= 10 * NS;
    CHECK_EQ(get(&r, SEC), 0x48);
    CHECK_EQ(get(&r, REG_C), 0x00);
    r.clock.real_ns = 0; /* before any time the RTC can show */
    CHECK_EQ(get(&r, YEAR), 0x70);
    vmdev_rtc_free(r.rtc);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a, 0);
    rig_init(&b, 7200);
    set(&a, REG_B, 0x82);
    write_time(&a);
    set(&a, REG_B, 0x62); /* PIE, AIE, BCD, 24 h */
    set(&a, SEC_ALARM, 0x30);
    set(&a, MIN_ALARM, 0xc0);
    set(&a, HOUR_ALARM, 0xc0);
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != CENTURY)
            set(&a, (uint8_t)i, (uint8_t)(i ^ 0x5a));
    run_for(&a, 10 * MS); /* a periodic interrupt is pending */
    CHECK(a.irq.level);
    set(&a, 0x40, 0x99);
    set(&a, 0x21, 0x77); /* leave the index somewhere */

    b.clock = a.clock; /* the same host, later */
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_rtc_save(a.rtc, &w, "rtc");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_rtc_restore(b.rtc, w.data, w.len, "rtc"), 0);
    CHECK(b.irq.level);
    CHECK_EQ(vmdev_rtc_read(b.rtc, VMDEV_RTC_PORT_DATA), 0x77);
    for (unsigned i = 0; i < 0x80; i++)
        CHECK_EQ(get(&b, (uint8_t)i), get(&a, (uint8_t)i));
    CHECK(!b.irq.level); /* C was read */
    CHECK(a.timer.armed && b.timer.armed);
    CHECK_EQ(b.timer.deadline_ns, a.timer.deadline_ns);
    vmdev_state_writer_release(&w);

    /* Invalid values are refused and leave the device as it was. */
    static const struct { const char *key; uint8_t value; } bad[] = {
        { "index", 0x80 }, { "flags", 0x80 },
    };
    for (unsigned i = 0; i < 2; i++) {
        uint8_t cmos[128] = { [REG_A] = 0x26 };
        vmdev_state_writer_init(&w);
        vmdev_state_begin_section(&w, "rtc", 1);
        vmdev_state_put_bytes(&w, "cmos", cmos, sizeof(cmos));
        vmdev_state_put_u8(&w, "index", i == 0 ? bad[i].value : 0);
        vmdev_state_put_u8(&w, "flags", i == 1 ? bad[i].value : 0);
        vmdev_state_put_u64(&w, "offset_ns", 0);
        vmdev_state_put_u64(&w, "synced_ns", 0);
        vmdev_state_end_section(&w);
        CHECK_EQ(vmdev_state_writer_finish(&w), 0);
        CHECK_EQ(vmdev_rtc_restore(b.rtc, w.data, w.len, "rtc"), -EINVAL);
        vmdev_state_writer_release(&w);
    }
    CHECK_EQ(get(&b, 0x40), 0x99);
    vmdev_rtc_free(a.rtc);
    vmdev_rtc_free(b.rtc);
}

/* The calendar helpers across the whole range, leap rules included. */
static void calendar_arithmetic(void)
{
    struct rtc_tm tm;
    for (int64_t day = 0; day < (RTC_YEAR_MAX + 1 - 1970) * 365; day += 17) {
        int64_t secs = day * RTC_SECONDS_PER_DAY + 3661;
        rtc_tm_from_seconds(secs, &tm);
        CHECK(rtc_tm_normalise(&tm));
        CHECK_EQ(rtc_tm_to_seconds(&tm), secs);
    }
    /* 2000 is a leap year, 2100 is not. */
    struct rtc_tm leap = { .year = 2000, .month = 2, .mday = 29 };
    CHECK(rtc_tm_normalise(&leap));
    struct rtc_tm not_leap = { .year = 2100, .month = 2, .mday = 29 };
    CHECK(!rtc_tm_normalise(&not_leap));
    CHECK_EQ(not_leap.mday, 28);
    rtc_tm_from_seconds(rtc_tm_to_seconds(&not_leap) + RTC_SECONDS_PER_DAY,
                        &tm);
    CHECK_EQ(tm.month, 3);
    CHECK_EQ(tm.mday, 1);
    CHECK_EQ(tm.wday, 2); /* 2100-03-01 is a Monday */
    unsigned v;
    CHECK(!rtc_decode(0x1a, true, &v));
    CHECK(rtc_decode(0x59, true, &v) && v == 59);
    CHECK_EQ(rtc_encode(59, true), 0x59);
    CHECK_EQ(rtc_next_alarm(0, -1, -1, -1), 1);
    CHECK_EQ(rtc_next_alarm(10, 0, 0, 10), RTC_SECONDS_PER_DAY + 10);
    CHECK_EQ(rtc_next_alarm(0, 24, 0, 0), INT64_MAX);
}

TEST_MAIN(TEST(calendar_arithmetic), TEST(time_registers_bcd_24h), TEST(binary_and_12_hour_modes),
          TEST(utc_offset_option), TEST(set_bit_freezes_and_sets_time),
          TEST(divider_reset_starts_half_second_early),
          TEST(register_write_while_running), TEST(uip_before_each_update),
          TEST(periodic_interrupt_rates), TEST(flags_without_interrupts),
          TEST(update_ended_interrupt), TEST(alarm_interrupt),
          TEST(registers_c_d_and_ports), TEST(nvram),
          TEST(host_clock_stepping_back), TEST(save_restore_round_trip))
