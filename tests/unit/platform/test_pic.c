/* SPDX-License-Identifier: MIT */
/* The cascaded 8259A pair against the datasheet (231468). */
#include "test.h"
#include "platform_fakes.h"
#include "vmdev/pic.h"

#include <errno.h>

#define M VMDEV_PIC_MASTER
#define S VMDEV_PIC_SLAVE
#define CMD 0
#define DATA 1
#define MASTER_BASE 0x30
#define SLAVE_BASE 0x38
/* OCW2 */
#define EOI 0x20
#define SPECIFIC_EOI(n) (0x60 | (n))
#define ROTATE_EOI 0xa0
#define ROTATE_SPECIFIC_EOI(n) (0xe0 | (n))
#define SET_PRIORITY(n) (0xc0 | (n))
#define ROTATE_AEOI_SET 0x80
/* OCW3 */
#define READ_IRR 0x0a
#define READ_ISR 0x0b
#define POLL 0x0c
#define SMM_SET 0x68
#define SMM_CLEAR 0x48

struct rig {
    struct fake_irq intr;
    struct vmdev_pic *pic;
};

static void out(struct rig *r, enum vmdev_pic_chip chip, unsigned port,
                uint8_t v)
{
    vmdev_pic_write(r->pic, chip, port, v);
}

static uint8_t in(struct rig *r, enum vmdev_pic_chip chip, unsigned port)
{
    return vmdev_pic_read(r->pic, chip, port);
}

/* Linux's init_8259A(): edge, cascade, ICW4, 8086 mode, normal EOI (or
 * auto-EOI), vectors at 0x30 and 0x38, everything unmasked after. */
static void rig_init_with(struct rig *r, uint8_t icw4)
{
    memset(r, 0, sizeof(*r));
    struct vmdev_pic_config cfg = { .intr = fake_irq_line(&r->intr) };
    r->pic = vmdev_pic_new(&cfg);
    out(r, M, DATA, 0xff);
    out(r, S, DATA, 0xff);
    out(r, M, CMD, 0x11);
    out(r, M, DATA, MASTER_BASE);
    out(r, M, DATA, 1 << 2);
    out(r, M, DATA, icw4);
    out(r, S, CMD, 0x11);
    out(r, S, DATA, SLAVE_BASE);
    out(r, S, DATA, 2);
    out(r, S, DATA, 0x01);
    out(r, M, DATA, 0x00);
    out(r, S, DATA, 0x00);
}

static void rig_init(struct rig *r)
{
    rig_init_with(r, 0x01);
}

static void pulse(struct rig *r, unsigned irq)
{
    vmdev_pic_set_irq(r->pic, irq, true);
    vmdev_pic_set_irq(r->pic, irq, false);
}

static uint8_t isr(struct rig *r, enum vmdev_pic_chip chip)
{
    out(r, chip, CMD, READ_ISR);
    return in(r, chip, CMD);
}

static uint8_t irr(struct rig *r, enum vmdev_pic_chip chip)
{
    out(r, chip, CMD, READ_IRR);
    return in(r, chip, CMD);
}

static void linux_init_and_one_interrupt(void)
{
    struct rig r;
    rig_init(&r);
    CHECK(!r.intr.level);
    CHECK_EQ(in(&r, M, DATA), 0x00);
    CHECK_EQ(in(&r, S, DATA), 0x00);
    pulse(&r, 1);
    CHECK(r.intr.level);
    CHECK(vmdev_pic_output(r.pic));
    CHECK_EQ(irr(&r, M), 0x02);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 1);
    CHECK(!r.intr.level);
    CHECK_EQ(irr(&r, M), 0);
    CHECK_EQ(isr(&r, M), 0x02);
    out(&r, M, CMD, EOI);
    CHECK_EQ(isr(&r, M), 0);
    CHECK(!r.intr.level);
    /* Linux probes the PIC by writing the mask and reading it back. */
    out(&r, M, DATA, 0xfb);
    CHECK_EQ(in(&r, M, DATA), 0xfb);
    vmdev_pic_free(r.pic);
}

/* Fully nested mode: a request waits while one of higher or equal
 * priority is in service; a higher one interrupts it. */
static void fixed_priority_nesting(void)
{
    struct rig r;
    rig_init(&r);
    pulse(&r, 5);
    pulse(&r, 3);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 3);
    CHECK(!r.intr.level); /* 5 waits for 3 */
    pulse(&r, 1);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 1);
    CHECK_EQ(isr(&r, M), 0x0a);
    out(&r, M, CMD, EOI); /* non-specific: the highest in service, 1 */
    CHECK_EQ(isr(&r, M), 0x08);
    CHECK(!r.intr.level);
    out(&r, M, CMD, EOI);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 5);
    out(&r, M, CMD, SPECIFIC_EOI(5));
    CHECK_EQ(isr(&r, M), 0);
    vmdev_pic_free(r.pic);
}

/* OCW1: a masked request is held in IRR and raises INT when unmasked. */
static void masking(void)
{
    struct rig r;
    rig_init(&r);
    out(&r, M, DATA, 0x10);
    pulse(&r, 4);
    CHECK(!r.intr.level);
    CHECK_EQ(irr(&r, M), 0x10);
    out(&r, M, DATA, 0x00);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 4);
    /* Masking the cascade input hides every slave request. */
    out(&r, M, CMD, EOI);
    out(&r, M, DATA, 0x04);
    pulse(&r, 9);
    CHECK(!r.intr.level);
    out(&r, M, DATA, 0x00);
    CHECK(r.intr.level);
    vmdev_pic_free(r.pic);
}

/* ELCR: a level input requests while its line is high, even after
 * acknowledge and EOI; an edge input latches a pulse. Bits wired to edge
 * cannot be set. */
static void edge_and_level_inputs(void)
{
    struct rig r;
    rig_init(&r);
    vmdev_pic_elcr_write(r.pic, 0, 0xff);
    vmdev_pic_elcr_write(r.pic, 1, 0xff);
    CHECK_EQ(vmdev_pic_elcr_read(r.pic, 0), 0xf8);
    CHECK_EQ(vmdev_pic_elcr_read(r.pic, 1), 0xde);
    vmdev_pic_elcr_write(r.pic, 1, 0x08); /* IRQ11 level, as a PCI INTx */
    vmdev_pic_set_irq(r.pic, 11, true);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 3);
    out(&r, S, CMD, EOI);
    out(&r, M, CMD, EOI);
    CHECK(r.intr.level); /* still high: requested again */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 3);
    vmdev_pic_set_irq(r.pic, 11, false);
    out(&r, S, CMD, EOI);
    out(&r, M, CMD, EOI);
    CHECK(!r.intr.level);
    CHECK_EQ(irr(&r, S), 0);
    /* A level input that drops before INTA leaves nothing: spurious. */
    vmdev_pic_elcr_write(r.pic, 0, 0x20);
    vmdev_pic_set_irq(r.pic, 5, true);
    CHECK(r.intr.level);
    vmdev_pic_set_irq(r.pic, 5, false);
    CHECK(!r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 7);
    CHECK_EQ(isr(&r, M), 0); /* a spurious IR7 sets no service bit */
    /* An edge input held high requests once. */
    vmdev_pic_set_irq(r.pic, 6, true);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 6);
    out(&r, M, CMD, EOI);
    CHECK(!r.intr.level);
    /* LTIM in ICW1 makes every input of the chip level-triggered. */
    out(&r, M, CMD, 0x19);
    out(&r, M, DATA, MASTER_BASE);
    out(&r, M, DATA, 1 << 2);
    out(&r, M, DATA, 0x01);
    CHECK(r.intr.level); /* IRQ6's line is still high */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 6);
    vmdev_pic_free(r.pic);
}

/* The slave's INT on the master's IR2: the slave gives the vector, both
 * chips set a service bit and each needs its EOI. */
static void cascade(void)
{
    struct rig r;
    rig_init(&r);
    pulse(&r, 10);
    CHECK(r.intr.level);
    CHECK_EQ(irr(&r, S), 0x04);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 2);
    CHECK_EQ(isr(&r, M), 0x04);
    CHECK_EQ(isr(&r, S), 0x04);
    pulse(&r, 8); /* higher on the slave, but the master's IR2 is busy */
    CHECK(!r.intr.level);
    out(&r, S, CMD, EOI);
    CHECK(!r.intr.level);
    out(&r, M, CMD, EOI);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 0);
    vmdev_pic_free(r.pic);
}

/* Special fully nested mode: a higher-priority slave request interrupts
 * a slave handler. */
static void special_fully_nested(void)
{
    struct rig r;
    rig_init_with(&r, 0x11);
    pulse(&r, 12);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 4);
    pulse(&r, 9);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), SLAVE_BASE + 1);
    CHECK_EQ(isr(&r, S), 0x12);
    /* A lower one still waits. */
    pulse(&r, 14);
    CHECK(!r.intr.level);
    vmdev_pic_free(r.pic);
}

/* Auto-EOI: no service bit; with rotation the acknowledged input
 * becomes the lowest priority. */
static void auto_eoi_and_rotation(void)
{
    struct rig r;
    rig_init_with(&r, 0x03);
    pulse(&r, 0);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 0);
    CHECK_EQ(isr(&r, M), 0);
    out(&r, M, CMD, ROTATE_AEOI_SET);
    pulse(&r, 0);
    pulse(&r, 1);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 0);
    pulse(&r, 0);
    /* 0 is now lowest: 1 wins over it. */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 1);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 0);
    vmdev_pic_free(r.pic);
}

/* OCW2 rotation and set-priority commands. */
static void rotating_priority(void)
{
    struct rig r;
    rig_init(&r);
    out(&r, M, CMD, SET_PRIORITY(3)); /* IR4 highest, IR3 lowest */
    pulse(&r, 3);
    pulse(&r, 6);
    pulse(&r, 4);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 4);
    out(&r, M, CMD, ROTATE_EOI); /* 4 lowest: 5, 6, 7, 0, ... 3, 4 */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 6);
    out(&r, M, CMD, ROTATE_SPECIFIC_EOI(6)); /* 6 lowest: 7, 0, .. 3 */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 3);
    /* Under rotation a non-specific EOI clears the highest-priority
     * service bit, not the lowest-numbered. */
    pulse(&r, 1);
    pulse(&r, 7);
    out(&r, M, CMD, SET_PRIORITY(0)); /* 1 highest */
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 1);
    CHECK_EQ(isr(&r, M), 0x0a);
    out(&r, M, CMD, EOI);
    CHECK_EQ(isr(&r, M), 0x08);
    vmdev_pic_free(r.pic);
}

/* Special mask mode: masking the input in service lets lower ones in. */
static void special_mask_mode(void)
{
    struct rig r;
    rig_init(&r);
    pulse(&r, 5);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 5);
    pulse(&r, 6);
    CHECK(!r.intr.level);
    out(&r, M, DATA, 0x20);
    CHECK(!r.intr.level); /* masking alone is not enough */
    out(&r, M, CMD, SMM_SET);
    CHECK(r.intr.level);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 6);
    out(&r, M, CMD, SPECIFIC_EOI(6));
    out(&r, M, CMD, SMM_CLEAR);
    out(&r, M, DATA, 0x00);
    pulse(&r, 7);
    CHECK(!r.intr.level); /* 5 is still in service */
    vmdev_pic_free(r.pic);
}

/* OCW3 poll: the next read is 0x80 | level and acts as INTA. */
static void poll_command(void)
{
    struct rig r;
    rig_init(&r);
    out(&r, M, CMD, POLL);
    CHECK_EQ(in(&r, M, CMD), 0);
    pulse(&r, 3);
    out(&r, M, CMD, POLL);
    CHECK_EQ(in(&r, M, DATA), 0x83);
    CHECK_EQ(isr(&r, M), 0x08);
    CHECK(!r.intr.level);
    CHECK_EQ(in(&r, M, DATA), 0x00); /* back to the mask */
    vmdev_pic_free(r.pic);
}

/* ICW1 resets the chip: mask and service bits cleared, edge requests
 * dropped, and a single-mode chip skips ICW3. */
static void icw1_reset_and_single_mode(void)
{
    struct rig r;
    rig_init(&r);
    out(&r, M, DATA, 0x08);
    pulse(&r, 3);
    pulse(&r, 1);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), MASTER_BASE + 1);
    out(&r, M, CMD, 0x13); /* edge, single, ICW4 */
    CHECK_EQ(isr(&r, M), 0);
    CHECK_EQ(irr(&r, M), 0);
    out(&r, M, DATA, 0x50);
    out(&r, M, DATA, 0x01); /* ICW4, no ICW3 */
    out(&r, M, DATA, 0xfe); /* OCW1 */
    CHECK_EQ(in(&r, M, DATA), 0xfe);
    pulse(&r, 0);
    CHECK_EQ(vmdev_pic_acknowledge(r.pic), 0x50);
    /* Single: the slave no longer reaches IR2. */
    out(&r, M, CMD, EOI);
    out(&r, M, DATA, 0x00);
    pulse(&r, 9);
    CHECK(!r.intr.level);
    vmdev_pic_free(r.pic);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    vmdev_pic_elcr_write(a.pic, 1, 0x08);
    vmdev_pic_set_irq(a.pic, 11, true);
    pulse(&a, 4);
    CHECK_EQ(vmdev_pic_acknowledge(a.pic), SLAVE_BASE + 3);
    out(&a, M, CMD, SET_PRIORITY(2));
    pulse(&a, 1);
    out(&a, M, DATA, 0x40);
    out(&a, M, CMD, READ_ISR);

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pic_save(a.pic, &w, "pic");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_pic_restore(b.pic, w.data, w.len, "pic"), 0);
    CHECK_EQ(in(&b, M, CMD), 0x04); /* ISR, as selected before the save */
    CHECK_EQ(in(&b, M, DATA), 0x40);
    CHECK_EQ(vmdev_pic_elcr_read(b.pic, 1), 0x08);
    CHECK_EQ(b.intr.level, a.intr.level);
    /* Rotation survives: with IR3 highest, 4 comes before 1. */
    out(&b, S, CMD, EOI);
    out(&b, M, CMD, EOI);
    vmdev_pic_set_irq(b.pic, 11, false);
    CHECK_EQ(vmdev_pic_acknowledge(b.pic), MASTER_BASE + 4);

    /* Bad sections are refused and leave the device as it was. */
    static const struct { unsigned chip, reg; uint8_t value; } bad[] = {
        { 0, 4, 0x01 },  /* ELCR bit of IRQ0 */
        { 1, 4, 0x01 },  /* ELCR bit of IRQ8 */
        { 0, 5, 0x31 },  /* vector base not a multiple of 8 */
        { 0, 6, 0x01 },  /* ICW1 written without its D4 */
        { 1, 9, 8 },     /* lowest priority input 8 */
        { 0, 10, 4 },    /* initialisation step */
        { 1, 11, 0x10 }, /* unknown flag */
        { 1, 0, 0x00 },  /* IRQ11 is level and high: IRR must show it */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmdev_state_writer bw;
        vmdev_state_writer_init(&bw);
        vmdev_pic_save(a.pic, &bw, "pic");
        CHECK_EQ(vmdev_state_writer_finish(&bw), 0);
        /* The chips are two 12-byte fields; find this one's bytes. */
        const char *key = bad[i].chip ? "slave" : "master";
        uint8_t *p = memmem(bw.data, bw.len, key, strlen(key));
        CHECK(p);
        p[strlen(key) + 4 + bad[i].reg] = bad[i].value;
        uint8_t mask = in(&b, M, DATA);
        CHECK_EQ(vmdev_pic_restore(b.pic, bw.data, bw.len, "pic"), -EINVAL);
        CHECK_EQ(in(&b, M, DATA), mask);
        vmdev_state_writer_release(&bw);
    }
    CHECK_EQ(vmdev_pic_restore(b.pic, w.data, w.len, "none"), -ENOENT);
    vmdev_state_writer_release(&w);
    vmdev_pic_free(a.pic);
    vmdev_pic_free(b.pic);
}

TEST_MAIN(TEST(linux_init_and_one_interrupt), TEST(fixed_priority_nesting),
          TEST(masking), TEST(edge_and_level_inputs), TEST(cascade),
          TEST(special_fully_nested), TEST(auto_eoi_and_rotation),
          TEST(rotating_priority), TEST(special_mask_mode),
          TEST(poll_command), TEST(icw1_reset_and_single_mode),
          TEST(save_restore_round_trip))
