/* SPDX-License-Identifier: MIT */
/* Intel 8254 PIT against its datasheet (231164), on a fake clock. */
#include "test.h"
#include "platform_fakes.h"
#include "vmdev/pit.h"

#include <errno.h>

enum { CH0 = 0, CH1 = 1, CH2 = 2, CTRL = 3 };
/* Control words: SC (counter), RW, mode, BCD. */
#define CW(counter, rw, mode) (uint8_t)((counter) << 6 | (rw) << 4 | (mode) << 1)
#define RW_LATCH 0
#define RW_LSB 1
#define RW_MSB 2
#define RW_BOTH 3
#define READ_BACK(bits) (uint8_t)(0xc0 | (bits))
#define RB_NO_COUNT 0x20
#define RB_NO_STATUS 0x10
#define RB_CH(i) (0x02 << (i))
#define ST_OUT 0x80
#define ST_NULL 0x40

struct rig {
    struct fake_clock clock;
    struct fake_timer timer;
    struct fake_irq irq;
    struct vmdev_pit *pit;
    uint64_t t0; /* when the count under test was loaded */
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    r->clock.mono_ns = 7777777;
    struct vmdev_pit_config cfg = {
        .clock = fake_clock_iface(&r->clock),
        .timer = fake_timer_iface(&r->timer),
        .irq = fake_irq_line(&r->irq),
    };
    r->pit = vmdev_pit_new(&cfg);
    CHECK(r->pit);
}

/* The first moment at which n input clocks have passed since t. */
static uint64_t clocks_ns(uint64_t n)
{
    return (n * UINT64_C(1000000000) + VMDEV_PIT_FREQ_HZ - 1) /
           VMDEV_PIT_FREQ_HZ;
}

static void expired(void *pit)
{
    vmdev_pit_timer_expired(pit);
}

/* Move to n clocks after t0, firing the timer on the way as a VMM would.
 * Returns how many times it fired. */
static unsigned run_to(struct rig *r, uint64_t n)
{
    uint64_t target = r->t0 + clocks_ns(n);
    if (target < r->clock.mono_ns) {
        fprintf(stderr, "run_to(%" PRIu64 "): that moment has passed\n", n);
        test_failed = true;
        return 0;
    }
    return fake_run_for(&r->clock, &r->timer, target - r->clock.mono_ns,
                        expired, r->pit);
}

static void out(struct rig *r, unsigned port, uint8_t v)
{
    vmdev_pit_write(r->pit, port, v);
}

static uint8_t in(struct rig *r, unsigned port)
{
    return vmdev_pit_read(r->pit, port);
}

/* Program counter ch with a 16-bit count, LSB then MSB; t0 is now, and
 * IRQ0 edges are counted from here (the control word itself may make one:
 * see control_word_sets_initial_out). */
static void start(struct rig *r, unsigned ch, unsigned mode, uint16_t count)
{
    out(r, CTRL, CW(ch, RW_BOTH, mode));
    out(r, ch, (uint8_t)count);
    r->t0 = r->clock.mono_ns;
    out(r, ch, (uint8_t)(count >> 8));
    r->irq.rises = 0;
}

static uint16_t latched(struct rig *r, unsigned ch)
{
    out(r, CTRL, CW(ch, RW_LATCH, 0));
    uint16_t lo = in(r, ch);
    return (uint16_t)(lo | in(r, ch) << 8);
}

static uint8_t status(struct rig *r, unsigned ch)
{
    out(r, CTRL, READ_BACK(RB_NO_COUNT | RB_CH(ch)));
    return in(r, ch);
}

static bool out2(struct rig *r)
{
    return vmdev_pit_port61_read(r->pit) & VMDEV_PIT_PORT61_OUT2;
}

/* Mode 0: OUT low from the control word until TC, one IRQ0 edge at TC,
 * then the counter wraps and keeps counting with OUT high. */
static void mode0_interrupt_on_terminal_count(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 0, 100);
    CHECK_EQ(status(&r, CH0), 0x30); /* OUT low, count loaded, RW 3, mode 0 */
    CHECK(r.timer.armed);
    CHECK_EQ(r.timer.deadline_ns, r.t0 + clocks_ns(100));
    CHECK_EQ(run_to(&r, 40), 0);
    CHECK_EQ(latched(&r, CH0), 60);
    CHECK_EQ(r.irq.rises, 0);
    CHECK_EQ(run_to(&r, 100), 1);
    CHECK_EQ(r.irq.rises, 1);
    CHECK(!r.irq.level); /* pulsed */
    CHECK_EQ(status(&r, CH0), ST_OUT | 0x30);
    CHECK_EQ(run_to(&r, 110), 0);
    CHECK_EQ(latched(&r, CH0), 65526);
    CHECK(!r.timer.armed);
    CHECK_EQ(r.irq.rises, 1);
    vmdev_pit_free(r.pit);
}

/* Mode 0: "writing the first byte disables counting"; the complete count
 * restarts it from the new value. */
static void mode0_first_byte_stops_counting(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 0, 1000);
    run_to(&r, 10);
    out(&r, CH0, 0x00); /* LSB of 0x0200 */
    CHECK(!r.timer.armed);
    CHECK_EQ(status(&r, CH0) & (ST_OUT | ST_NULL), ST_NULL);
    run_to(&r, 2000);
    CHECK_EQ(r.irq.rises, 0);
    r.t0 = r.clock.mono_ns;
    out(&r, CH0, 0x02);
    run_to(&r, 0x1ff);
    CHECK_EQ(latched(&r, CH0), 1);
    CHECK_EQ(run_to(&r, 0x200), 1);
    CHECK_EQ(r.irq.rises, 1);
    vmdev_pit_free(r.pit);
}

/* Mode 2: one IRQ0 edge per period of N clocks; the count runs N..1. */
static void mode2_rate_generator(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 2, 1193); /* about 1 kHz, as Linux's HZ=1000 tick */
    CHECK_EQ(status(&r, CH0) & ST_OUT, ST_OUT);
    CHECK_EQ(latched(&r, CH0), 1193);
    CHECK_EQ(run_to(&r, 1192), 0);
    CHECK_EQ(latched(&r, CH0), 1);
    CHECK_EQ(status(&r, CH0) & ST_OUT, 0); /* low while the count is 1 */
    CHECK_EQ(run_to(&r, 1193), 1);
    CHECK_EQ(latched(&r, CH0), 1193); /* reloaded */
    CHECK_EQ(status(&r, CH0) & ST_OUT, ST_OUT);
    CHECK_EQ(run_to(&r, 1193 * 10 + 5), 9);
    CHECK_EQ(r.irq.rises, 10);
    CHECK_EQ(latched(&r, CH0), 1188);
    vmdev_pit_free(r.pit);
}

/* A periodic rate above 20 kHz is coalesced to 20 kHz. */
static void periodic_rate_is_bounded(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 2, 2);
    unsigned fired = run_to(&r, VMDEV_PIT_FREQ_HZ / 100); /* 10 ms */
    CHECK(fired >= 190 && fired <= 200);
    CHECK_EQ(r.irq.rises, fired);
    vmdev_pit_free(r.pit);
}

/* Mode 3: OUT high for (N+1)/2 clocks and low for N/2; the value read
 * decrements by two. */
static void mode3_square_wave(void)
{
    struct rig r;
    rig_init(&r);
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    start(&r, CH2, 3, 100);
    CHECK(out2(&r));
    run_to(&r, 10);
    CHECK_EQ(latched(&r, CH2), 80);
    CHECK(out2(&r));
    run_to(&r, 49);
    CHECK(out2(&r));
    run_to(&r, 50);
    CHECK(!out2(&r));
    run_to(&r, 99);
    CHECK(!out2(&r));
    run_to(&r, 100);
    CHECK(out2(&r));
    /* Odd N: high 51 clocks, low 50. */
    start(&r, CH2, 3, 101);
    run_to(&r, 50);
    CHECK(out2(&r));
    run_to(&r, 51);
    CHECK(!out2(&r));
    run_to(&r, 101);
    CHECK(out2(&r));
    /* Counter 0 in mode 3 rises once per period. */
    start(&r, CH0, 3, 1000);
    CHECK_EQ(run_to(&r, 5500), 5);
    vmdev_pit_free(r.pit);
}

/* Modes 2 and 3 stop with GATE low (OUT high) and reload on its rising
 * edge; mode 0 pauses and resumes. */
static void gate_controls_counter2(void)
{
    struct rig r;
    rig_init(&r);
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    start(&r, CH2, 3, 100);
    run_to(&r, 60);
    CHECK(!out2(&r));
    vmdev_pit_port61_write(r.pit, 0);
    CHECK(out2(&r));
    uint16_t frozen = latched(&r, CH2);
    run_to(&r, 500);
    CHECK_EQ(latched(&r, CH2), frozen);
    r.t0 = r.clock.mono_ns;
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    CHECK_EQ(latched(&r, CH2), 100);
    run_to(&r, 50);
    CHECK(!out2(&r));

    /* Mode 0 with GATE low from the start waits; GATE high counts. */
    vmdev_pit_port61_write(r.pit, 0);
    start(&r, CH2, 0, 300);
    run_to(&r, 1000);
    CHECK_EQ(latched(&r, CH2), 300);
    CHECK(!out2(&r));
    r.t0 = r.clock.mono_ns;
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    run_to(&r, 100);
    vmdev_pit_port61_write(r.pit, 0);
    run_to(&r, 900);
    CHECK_EQ(latched(&r, CH2), 200);
    vmdev_pit_free(r.pit);
}

/* Mode 1: the count loads on GATE's rising edge; OUT is low from the
 * trigger to TC; a new trigger restarts it with the count register. */
static void mode1_retriggerable_one_shot(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH2, 1, 100);
    CHECK(out2(&r));
    CHECK_EQ(status(&r, CH2) & ST_NULL, ST_NULL); /* waits for a trigger */
    run_to(&r, 500);
    CHECK(out2(&r));
    r.t0 = r.clock.mono_ns;
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    CHECK_EQ(status(&r, CH2) & (ST_OUT | ST_NULL), 0);
    run_to(&r, 60);
    CHECK_EQ(latched(&r, CH2), 40);
    /* GATE low does not stop a one-shot; the next rising edge retriggers. */
    vmdev_pit_port61_write(r.pit, 0);
    run_to(&r, 70);
    CHECK_EQ(latched(&r, CH2), 30);
    r.t0 = r.clock.mono_ns;
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    run_to(&r, 99);
    CHECK(!out2(&r));
    run_to(&r, 100);
    CHECK(out2(&r));
    vmdev_pit_free(r.pit);
}

/* Modes 4 and 5: OUT strobes low for the one clock after TC. */
static void modes4_and_5_strobe(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 4, 50);
    CHECK_EQ(status(&r, CH0) & ST_OUT, ST_OUT);
    run_to(&r, 50);
    CHECK_EQ(status(&r, CH0) & ST_OUT, 0);
    CHECK_EQ(r.irq.rises, 0);
    CHECK_EQ(run_to(&r, 51), 1); /* OUT rises again: IRQ0's edge */
    CHECK_EQ(r.irq.rises, 1);
    CHECK_EQ(status(&r, CH0) & ST_OUT, ST_OUT);
    CHECK_EQ(run_to(&r, 100000), 0);

    start(&r, CH2, 5, 20);
    run_to(&r, 40);
    CHECK(out2(&r)); /* no trigger yet */
    r.t0 = r.clock.mono_ns;
    vmdev_pit_port61_write(r.pit, VMDEV_PIT_PORT61_GATE2);
    run_to(&r, 19);
    CHECK(out2(&r));
    run_to(&r, 20);
    CHECK(!out2(&r));
    run_to(&r, 21);
    CHECK(out2(&r));
    vmdev_pit_free(r.pit);
}

/* Counter latch: the value holds until both bytes are read; a second
 * latch before that is ignored. LSB-only and MSB-only access. */
static void latch_and_access_modes(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH1, 2, 0x1234);
    run_to(&r, 0x34);
    out(&r, CTRL, CW(CH1, RW_LATCH, 0));
    run_to(&r, 0x100);
    out(&r, CTRL, CW(CH1, RW_LATCH, 0));
    CHECK_EQ(in(&r, CH1), 0x00);
    run_to(&r, 0x200);
    CHECK_EQ(in(&r, CH1), 0x12);
    /* Unlatched, the bytes are read live. */
    CHECK_EQ(in(&r, CH1), 0x34);
    CHECK_EQ(in(&r, CH1), 0x10);

    out(&r, CTRL, CW(CH1, RW_LSB, 2));
    r.t0 = r.clock.mono_ns;
    out(&r, CH1, 200);
    run_to(&r, 50);
    CHECK_EQ(in(&r, CH1), 150);
    CHECK_EQ(in(&r, CH1), 150);

    out(&r, CTRL, CW(CH1, RW_MSB, 2));
    r.t0 = r.clock.mono_ns;
    out(&r, CH1, 0x10); /* 0x1000 */
    run_to(&r, 0x100);
    CHECK_EQ(in(&r, CH1), 0x0f);

    /* Count 0 is the largest: 65536 in binary. */
    start(&r, CH1, 2, 0);
    CHECK_EQ(latched(&r, CH1), 0);
    run_to(&r, 1);
    CHECK_EQ(latched(&r, CH1), 0xffff);
    CHECK_EQ(in(&r, CTRL), 0xff); /* the control port is write-only */
    vmdev_pit_free(r.pit);
}

/* Read-back: status then count, for several counters at once; each latch
 * holds until read, and a second read-back does not replace it. */
static void read_back_command(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 2, 1000);
    start(&r, CH1, 0, 300);
    run_to(&r, 100);
    out(&r, CTRL, READ_BACK(RB_CH(0) | RB_CH(1)));
    run_to(&r, 500);
    out(&r, CTRL, READ_BACK(RB_CH(1)));
    /* Counter 1 as of the first command: OUT low before TC, count 200. */
    CHECK_EQ(in(&r, CH1), 0x30);
    CHECK_EQ(in(&r, CH1), 200);
    CHECK_EQ(in(&r, CH1), 0);
    CHECK_EQ(status(&r, CH1), ST_OUT | 0x30); /* live again: TC passed */
    /* Counter 0: OUT high, RW 3, mode 2; count 900. */
    CHECK_EQ(in(&r, CH0), ST_OUT | 0x34);
    CHECK_EQ(in(&r, CH0), 900 & 0xff);
    CHECK_EQ(in(&r, CH0), 900 >> 8);
    /* Count only. */
    out(&r, CTRL, READ_BACK(RB_NO_STATUS | RB_CH(0)));
    CHECK_EQ(in(&r, CH0), 500 & 0xff);
    CHECK_EQ(in(&r, CH0), 500 >> 8);
    vmdev_pit_free(r.pit);
}

/* BCD counting: 0100 counts down in decimal; count 0 is 10000. */
static void bcd_counting(void)
{
    struct rig r;
    rig_init(&r);
    out(&r, CTRL, CW(CH1, RW_BOTH, 2) | 1);
    out(&r, CH1, 0x00);
    r.t0 = r.clock.mono_ns;
    out(&r, CH1, 0x01);
    run_to(&r, 1);
    CHECK_EQ(latched(&r, CH1), 0x0099);
    run_to(&r, 90);
    CHECK_EQ(latched(&r, CH1), 0x0010);
    CHECK_EQ(status(&r, CH1), ST_OUT | 0x35); /* BCD, mode 2 */
    out(&r, CTRL, CW(CH1, RW_BOTH, 0) | 1);
    out(&r, CH1, 0x00);
    r.t0 = r.clock.mono_ns;
    out(&r, CH1, 0x00);
    run_to(&r, 1);
    CHECK_EQ(latched(&r, CH1), 0x9999);
    /* Digits above 9 are not BCD, but a guest may write them: the count
     * is what they weigh, and the state still saves and restores. */
    out(&r, CTRL, CW(CH1, RW_BOTH, 2) | 1);
    out(&r, CH1, 0xff);
    out(&r, CH1, 0xff);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pit_save(r.pit, &w, "pit");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_pit_restore(r.pit, w.data, w.len, "pit"), 0);
    vmdev_state_writer_release(&w);
    vmdev_pit_free(r.pit);
}

/* A control word is a change of OUT like any other: from mode 0 before TC
 * (OUT low) to mode 2 (OUT high) IRQ0 sees an edge, as on the PC. */
static void control_word_sets_initial_out(void)
{
    struct rig r;
    rig_init(&r);
    start(&r, CH0, 0, 1000);
    CHECK_EQ(status(&r, CH0) & ST_OUT, 0);
    out(&r, CTRL, CW(CH0, RW_BOTH, 2));
    CHECK_EQ(r.irq.rises, 1);
    CHECK_EQ(status(&r, CH0), ST_OUT | ST_NULL | 0x34);
    CHECK(!r.timer.armed); /* nothing counts until a count is written */
    out(&r, CTRL, CW(CH0, RW_BOTH, 6)); /* 6 is mode 2 again */
    CHECK_EQ(status(&r, CH0) & 0x0e, 0x04);
    out(&r, CTRL, CW(CH0, RW_BOTH, 0));
    CHECK_EQ(status(&r, CH0) & ST_OUT, 0);
    vmdev_pit_free(r.pit);
}

/* Linux's TSC calibration: counter 2 in mode 0 with GATE set and the
 * speaker off, polled through its MSB (quick_pit_calibrate) and through
 * OUT2 in port 0x61 (pit_calibrate_tsc). */
static void linux_tsc_calibration(void)
{
    struct rig r;
    rig_init(&r);
    uint8_t p61 = vmdev_pit_port61_read(r.pit);
    vmdev_pit_port61_write(r.pit, (uint8_t)((p61 & ~0x02) | 0x01));
    out(&r, CTRL, 0xb0);
    out(&r, CH2, 0xff);
    r.t0 = r.clock.mono_ns;
    out(&r, CH2, 0xff);
    in(&r, CH2);
    CHECK_EQ(in(&r, CH2), 0xff);
    for (unsigned k = 1; k < 200; k += 37) {
        run_to(&r, 256u * k + 3);
        in(&r, CH2);
        CHECK_EQ(in(&r, CH2), 0xff - k);
    }
    uint16_t latch = VMDEV_PIT_FREQ_HZ / 20; /* CAL_MS 50 */
    out(&r, CTRL, 0xb0);
    out(&r, CH2, (uint8_t)latch);
    r.t0 = r.clock.mono_ns;
    out(&r, CH2, (uint8_t)(latch >> 8));
    run_to(&r, latch - 1u);
    CHECK(!out2(&r));
    run_to(&r, latch);
    CHECK(out2(&r));
    CHECK_EQ(r.irq.rises, 0); /* counter 2 has no interrupt */
    /* The refresh bit toggles every 15.085 us. */
    uint8_t a = vmdev_pit_port61_read(r.pit) & VMDEV_PIT_PORT61_REFRESH;
    fake_clock_advance(&r.clock, 15085);
    uint8_t b = vmdev_pit_port61_read(r.pit) & VMDEV_PIT_PORT61_REFRESH;
    CHECK(a != b);
    vmdev_pit_free(r.pit);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    b.clock.mono_ns = 123456789012;
    vmdev_pit_port61_write(a.pit, VMDEV_PIT_PORT61_GATE2 | 0x0c);
    start(&a, CH0, 2, 1000);
    run_to(&a, 2500);
    start(&a, CH2, 0, 5000);
    run_to(&a, 1200);
    out(&a, CTRL, CW(CH1, RW_BOTH, 3));
    out(&a, CH1, 0x34); /* half a count written */
    out(&a, CTRL, READ_BACK(RB_NO_COUNT | RB_CH(2)));

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pit_save(a.pit, &w, "pit");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_pit_restore(b.pit, w.data, w.len, "pit"), 0);
    b.t0 = b.clock.mono_ns - clocks_ns(1200); /* counter 2's reference */

    CHECK_EQ(vmdev_pit_port61_read(b.pit) & 0x0f, 0x0d);
    CHECK_EQ(in(&b, CH2), 0x30); /* the latched status survives */
    CHECK_EQ(latched(&b, CH2), 3800);
    /* Counter 0 ran 2500 + 1200 clocks: 300 before its next edge. */
    CHECK(b.timer.armed);
    CHECK(b.timer.deadline_ns >= b.clock.mono_ns + clocks_ns(299));
    CHECK(b.timer.deadline_ns <= b.clock.mono_ns + clocks_ns(301));
    CHECK_EQ(fake_run_for(&b.clock, &b.timer, clocks_ns(1000), expired, b.pit),
             1);
    /* The half-written count of counter 1 completes after restore. */
    out(&b, CH1, 0x12);
    CHECK_EQ(latched(&b, CH1), 0x1234);

    /* Bad sections are refused and leave the device as it was. */
    struct { const char *key; unsigned width; uint64_t value; } bad[] = {
        { "c0.mode", 1, 6 },     { "c1.access", 1, 0 },
        { "c0.flags", 2, 0x5c }, /* counter 0 with GATE low */
        { "c2.flags", 2, 0x400 }, { "c0.active", 4, 0 },
        { "c0.reload", 4, 65537 }, { "port61", 1, 0x10 },
        { "next_edge", 8, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmdev_state_writer bw;
        vmdev_state_writer_init(&bw);
        vmdev_pit_save(a.pit, &bw, "pit");
        CHECK_EQ(vmdev_state_writer_finish(&bw), 0);
        CHECK_EQ(test_state_patch(bw.data, bw.len, bad[i].key, bad[i].width,
                                  bad[i].value),
                 0);
        uint16_t before = latched(&b, CH2);
        CHECK_EQ(vmdev_pit_restore(b.pit, bw.data, bw.len, "pit"), -EINVAL);
        CHECK_EQ(latched(&b, CH2), before);
        vmdev_state_writer_release(&bw);
    }
    CHECK_EQ(vmdev_pit_restore(b.pit, w.data, w.len, "nope"), -ENOENT);
    vmdev_state_writer_release(&w);
    vmdev_pit_free(a.pit);
    vmdev_pit_free(b.pit);
}

TEST_MAIN(TEST(mode0_interrupt_on_terminal_count),
          TEST(mode0_first_byte_stops_counting),
          TEST(mode2_rate_generator),
          TEST(periodic_rate_is_bounded),
          TEST(mode3_square_wave),
          TEST(gate_controls_counter2),
          TEST(mode1_retriggerable_one_shot),
          TEST(modes4_and_5_strobe),
          TEST(latch_and_access_modes),
          TEST(read_back_command),
          TEST(bcd_counting),
          TEST(control_word_sets_initial_out),
          TEST(linux_tsc_calibration),
          TEST(save_restore_round_trip))
