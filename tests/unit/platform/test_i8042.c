/* SPDX-License-Identifier: MIT */
/*
 * 8042 controller: the commands Linux's i8042 probe issues
 * (drivers/input/serio/i8042.c) and the reset line.
 */
#include "test.h"
#include "platform_fakes.h"
#include "vmdev/i8042.h"

#include <errno.h>

#define DATA VMDEV_I8042_PORT_DATA
#define CMD VMDEV_I8042_PORT_COMMAND
#define OBF 0x01
#define AUXDATA 0x20

struct rig {
    struct fake_irq irq;
    unsigned resets;
    struct vmdev_i8042 *kbc;
};

static void count_reset(void *opaque)
{
    struct rig *r = opaque;
    r->resets++;
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    struct vmdev_i8042_config cfg = {
        .kbd_irq = fake_irq_line(&r->irq),
        .reset = count_reset,
        .opaque = r,
    };
    r->kbc = vmdev_i8042_new(&cfg);
}

static uint8_t status(struct rig *r)
{
    return vmdev_i8042_read(r->kbc, CMD);
}

static void command(struct rig *r, uint8_t cmd)
{
    vmdev_i8042_write(r->kbc, CMD, cmd);
}

/* i8042_command() for a command with one reply: the byte, or -1 if the
 * controller would have left Linux polling until its timeout. */
static int reply(struct rig *r, uint8_t cmd)
{
    command(r, cmd);
    if (!(status(r) & OBF))
        return -1;
    return vmdev_i8042_read(r->kbc, DATA);
}

static void self_tests_and_command_byte(void)
{
    struct rig r;
    rig_init(&r);
    CHECK(r.kbc);
    CHECK_EQ(status(&r) & OBF, 0); /* i8042_flush() finds nothing */
    CHECK_EQ(reply(&r, 0xaa), 0x55);
    CHECK_EQ(status(&r) & 0x04, 0x04); /* system flag after self-test */
    CHECK_EQ(reply(&r, 0xab), 0x00);
    int ctr = reply(&r, 0x20);
    CHECK_EQ(ctr, 0x65);
    CHECK_EQ(reply(&r, 0x20), ctr); /* "stable CTR read" */
    command(&r, 0x60);
    CHECK_EQ(status(&r) & 0x08, 0x08); /* A2: last write was a command */
    vmdev_i8042_write(r.kbc, DATA, 0xff);
    CHECK_EQ(status(&r) & 0x08, 0);
    CHECK_EQ(reply(&r, 0x20), 0x77); /* reserved bits 3 and 7 stay 0 */
    command(&r, 0xad);
    command(&r, 0xa7);
    command(&r, 0x60);
    vmdev_i8042_write(r.kbc, DATA, 0x00);
    command(&r, 0xa8);
    command(&r, 0xae);
    CHECK_EQ(reply(&r, 0x20), 0x00);
    command(&r, 0xad);
    command(&r, 0xa7);
    CHECK_EQ(reply(&r, 0x20), 0x30);
    CHECK_EQ(status(&r) & 0x10, 0x10); /* keyboard not inhibited */
    vmdev_i8042_free(r.kbc);
}

/* i8042_check_aux(): both tests must answer at once, saying "no AUX". */
static void no_aux_port_without_timeouts(void)
{
    struct rig r;
    rig_init(&r);
    command(&r, 0xd3);
    vmdev_i8042_write(r.kbc, DATA, 0x5a);
    uint8_t st = status(&r);
    CHECK_EQ(st & OBF, OBF);
    CHECK_EQ(st & AUXDATA, 0); /* not AUX data: Linux returns -1 */
    CHECK_EQ(vmdev_i8042_read(r.kbc, DATA), 0x5a);
    int test = reply(&r, 0xa9);
    CHECK(test != -1 && test != 0x00 && test != 0xfa && test != 0xff);
    /* Bytes for the keyboard vanish without wedging the controller. */
    vmdev_i8042_write(r.kbc, DATA, 0xf2);
    CHECK_EQ(status(&r) & OBF, 0);
    CHECK_EQ(reply(&r, 0xaa), 0x55);
    vmdev_i8042_free(r.kbc);
}

static void keyboard_irq_follows_output_buffer(void)
{
    struct rig r;
    rig_init(&r);
    command(&r, 0xd2); /* write keyboard output buffer */
    vmdev_i8042_write(r.kbc, DATA, 0x1c);
    CHECK(r.irq.level);
    CHECK_EQ(vmdev_i8042_read(r.kbc, DATA), 0x1c);
    CHECK(!r.irq.level);
    command(&r, 0x60);
    vmdev_i8042_write(r.kbc, DATA, 0x64); /* interrupts off */
    command(&r, 0xd2);
    vmdev_i8042_write(r.kbc, DATA, 0x1c);
    CHECK(!r.irq.level);
    CHECK_EQ(status(&r) & OBF, OBF);
    CHECK_EQ(r.irq.rises, 1);
    vmdev_i8042_free(r.kbc);
}

static void reset_line(void)
{
    struct rig r;
    rig_init(&r);
    command(&r, 0xff); /* pulse nothing */
    CHECK_EQ(r.resets, 0);
    command(&r, 0xfe);
    CHECK_EQ(r.resets, 1);
    command(&r, 0xf0); /* bits 0-3 all pulsed, reset among them */
    CHECK_EQ(r.resets, 2);
    CHECK_EQ(reply(&r, 0xd0), 0x03); /* output port: A20 on, not in reset */
    command(&r, 0xd1);
    vmdev_i8042_write(r.kbc, DATA, 0x03);
    CHECK_EQ(r.resets, 2);
    command(&r, 0xd1);
    vmdev_i8042_write(r.kbc, DATA, 0x02); /* reset line driven low */
    CHECK_EQ(r.resets, 3);
    CHECK_EQ(vmdev_i8042_read(r.kbc, 1), 0xff);
    vmdev_i8042_free(r.kbc);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    command(&a, 0x60);
    vmdev_i8042_write(a.kbc, DATA, 0x47);
    command(&a, 0xd2);
    vmdev_i8042_write(a.kbc, DATA, 0x9e);
    command(&a, 0xd1); /* a data byte is awaited */
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_i8042_save(a.kbc, &w, "i8042");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_i8042_restore(b.kbc, w.data, w.len, "i8042"), 0);
    CHECK(b.irq.level);
    CHECK_EQ(status(&b), status(&a));
    vmdev_i8042_write(b.kbc, DATA, 0x00); /* completes 0xd1: reset */
    CHECK_EQ(b.resets, 1);
    CHECK_EQ(vmdev_i8042_read(b.kbc, DATA), 0x9e);
    CHECK_EQ(reply(&b, 0x20), 0x47);
    vmdev_state_writer_release(&w);

    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "i8042", 1);
    vmdev_state_put_u8(&w, "ctr", 0x80); /* a reserved bit */
    static const char *const keys[] = { "output", "output_full",
                                        "last_was_command", "pending",
                                        "output_port" };
    for (unsigned i = 0; i < 5; i++)
        vmdev_state_put_u8(&w, keys[i], 0);
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_i8042_restore(b.kbc, w.data, w.len, "i8042"), -EINVAL);
    CHECK_EQ(reply(&b, 0x20), 0x47);
    vmdev_state_writer_release(&w);
    vmdev_i8042_free(a.kbc);
    vmdev_i8042_free(b.kbc);
}

TEST_MAIN(TEST(self_tests_and_command_byte),
          TEST(no_aux_port_without_timeouts),
          TEST(keyboard_irq_follows_output_buffer), TEST(reset_line),
          TEST(save_restore_round_trip))
