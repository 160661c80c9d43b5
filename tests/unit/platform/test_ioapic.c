/* SPDX-License-Identifier: MIT */
/* 82093AA I/O APIC behaviour, from the datasheet (sections 3.0-3.2). */
#include "test.h"
#include "vmdev/ioapic.h"

#include <errno.h>

struct msi_log {
    unsigned count;
    struct vmdev_msi_msg last;
};

static void record_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    struct msi_log *log = opaque;
    log->count++;
    log->last = *msg;
}

static struct vmdev_ioapic *new_ioapic(struct msi_log *log)
{
    struct vmdev_msi_sink sink = { .send = record_msi, .opaque = log };
    return vmdev_ioapic_new(0, &sink);
}

static uint32_t reg_read(struct vmdev_ioapic *io, uint8_t reg)
{
    vmdev_ioapic_write(io, VMDEV_IOAPIC_REGSEL, reg);
    return vmdev_ioapic_read(io, VMDEV_IOAPIC_WINDOW);
}

static void reg_write(struct vmdev_ioapic *io, uint8_t reg, uint32_t value)
{
    vmdev_ioapic_write(io, VMDEV_IOAPIC_REGSEL, reg);
    vmdev_ioapic_write(io, VMDEV_IOAPIC_WINDOW, value);
}

/* Program pin: vector, trigger (level?), polarity (low?), destination. */
static void program(struct vmdev_ioapic *io, unsigned pin, uint8_t vector,
                    bool level, bool active_low, uint8_t dest, bool masked)
{
    uint32_t low = vector | (level ? 1u << 15 : 0) | (active_low ? 1u << 13 : 0) |
                   (masked ? 1u << 16 : 0);
    reg_write(io, (uint8_t)(0x10 + 2 * pin + 1), (uint32_t)dest << 24);
    reg_write(io, (uint8_t)(0x10 + 2 * pin), low);
}

static void identification_registers(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    CHECK_EQ(reg_read(io, 0x01), 0x00170011); /* 24 entries, version 0x11 */
    reg_write(io, 0x00, 0x0f000000);
    CHECK_EQ(reg_read(io, 0x00), 0x0f000000);
    reg_write(io, 0x01, 0);                    /* read-only */
    CHECK_EQ(reg_read(io, 0x01), 0x00170011);
    CHECK_EQ(reg_read(io, 0x02), 0x0f000000);  /* arbitration id follows id */
    CHECK_EQ(reg_read(io, 0x40), 0);           /* past the table */
    /* Every pin starts masked. */
    for (unsigned pin = 0; pin < 24; pin++)
        CHECK(vmdev_ioapic_redirection(io, pin) & (1ull << 16));
    CHECK_EQ(vmdev_ioapic_read(io, VMDEV_IOAPIC_REGSEL), 0x40); /* last selected */
    vmdev_ioapic_free(io);
}

static void read_only_entry_bits(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    /* Delivery status (12), remote IRR (14) and reserved bits 17-31 ignore
     * writes; the high half keeps only the destination. */
    reg_write(io, 0x10, 0xffffffff);
    CHECK_EQ(reg_read(io, 0x10), 0x0001afff);
    reg_write(io, 0x11, 0xffffffff);
    CHECK_EQ(reg_read(io, 0x11), 0xff000000);
    vmdev_ioapic_free(io);
}

static void edge_pin_delivers_on_rising_edge_only(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    program(io, 4, 0x24, false, false, 3, false);
    vmdev_ioapic_set_irq(io, 4, true);
    CHECK_EQ(log.count, 1);
    CHECK(log.last.address == (0xfee00000ull | 3u << 12));
    CHECK_EQ(log.last.data, 0x24 | 1u << 14);
    vmdev_ioapic_set_irq(io, 4, true); /* no new edge */
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_set_irq(io, 4, false);
    vmdev_ioapic_set_irq(io, 4, true);
    CHECK_EQ(log.count, 2);
    /* A masked edge is lost, and unmasking does not replay it. */
    program(io, 4, 0x24, false, false, 3, true);
    vmdev_ioapic_set_irq(io, 4, false);
    vmdev_ioapic_set_irq(io, 4, true);
    program(io, 4, 0x24, false, false, 3, false);
    CHECK_EQ(log.count, 2);
    vmdev_ioapic_free(io);
}

static void level_pin_waits_for_eoi(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    program(io, 9, 0x41, true, false, 0, false);
    vmdev_ioapic_set_irq(io, 9, true);
    CHECK_EQ(log.count, 1);
    CHECK_EQ(log.last.data, 0x41 | 1u << 14 | 1u << 15);
    CHECK(vmdev_ioapic_redirection(io, 9) & (1ull << 14)); /* remote IRR */
    vmdev_ioapic_set_irq(io, 9, true);
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_eoi(io, 0x42); /* another vector: nothing */
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_eoi(io, 0x41); /* still asserted: delivered again */
    CHECK_EQ(log.count, 2);
    vmdev_ioapic_set_irq(io, 9, false);
    vmdev_ioapic_eoi(io, 0x41);
    CHECK_EQ(log.count, 2);
    CHECK(!(vmdev_ioapic_redirection(io, 9) & (1ull << 14)));
    vmdev_ioapic_free(io);
}

static void unmasking_asserted_level_pin_delivers(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    program(io, 16, 0x51, true, false, 1, true);
    vmdev_ioapic_set_irq(io, 16, true);
    CHECK_EQ(log.count, 0);
    program(io, 16, 0x51, true, false, 1, false);
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_free(io);
}

static void active_low_polarity_inverts(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    program(io, 10, 0x61, true, true, 0, false);
    /* Line low = asserted for an active-low pin: unmasked and low fires. */
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_set_irq(io, 10, true); /* deasserted */
    vmdev_ioapic_eoi(io, 0x61);
    CHECK_EQ(log.count, 1);
    vmdev_ioapic_set_irq(io, 10, false);
    CHECK_EQ(log.count, 2);
    vmdev_ioapic_free(io);
}

static void msi_format_and_pin_query(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *io = new_ioapic(&log);
    /* Logical destination mode, lowest-priority delivery (mode 1). */
    reg_write(io, 0x10 + 2 * 5 + 1, 0x0a000000);
    reg_write(io, 0x10 + 2 * 5, 0x30 | 1u << 8 | 1u << 11);
    struct vmdev_msi_msg msg;
    CHECK(vmdev_ioapic_pin_msi(io, 5, &msg));
    CHECK(msg.address == (0xfee00000ull | 0x0a << 12 | 1u << 2));
    CHECK_EQ(msg.data, 0x30 | 1u << 8 | 1u << 14);
    CHECK(!vmdev_ioapic_pin_msi(io, 6, &msg)); /* masked */
    CHECK(!vmdev_ioapic_pin_msi(io, 24, &msg));
    vmdev_ioapic_set_irq(io, 24, true);        /* ignored, no crash */
    vmdev_ioapic_free(io);
}

static void save_restore_round_trip(void)
{
    struct msi_log log = { 0 };
    struct vmdev_ioapic *a = new_ioapic(&log);
    program(a, 9, 0x41, true, false, 2, false);
    vmdev_ioapic_set_irq(a, 9, true); /* remote IRR set, pin high */
    CHECK_EQ(log.count, 1);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_ioapic_save(a, &w, "ioapic");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);

    struct vmdev_ioapic *b = new_ioapic(&log);
    CHECK_EQ(vmdev_ioapic_restore(b, w.data, w.len, "ioapic"), 0);
    for (unsigned pin = 0; pin < 24; pin++)
        CHECK(vmdev_ioapic_redirection(a, pin) == vmdev_ioapic_redirection(b, pin));
    vmdev_ioapic_eoi(b, 0x41); /* the restored pin is still high */
    CHECK_EQ(log.count, 2);
    CHECK_EQ(vmdev_ioapic_restore(b, w.data, w.len, "other"), -ENOENT);
    vmdev_state_writer_release(&w);

    /* Remote IRR on an edge pin is not a state the device can be in. */
    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "ioapic", 1);
    vmdev_state_put_u8(&w, "id", 0);
    vmdev_state_put_u8(&w, "regsel", 0);
    vmdev_state_put_u32(&w, "pin_levels", 0);
    uint8_t table[8 * 24] = { 0 };
    table[1] = 0x40; /* bit 14 of pin 0, edge */
    vmdev_state_put_bytes(&w, "redirection", table, sizeof(table));
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_ioapic_restore(b, w.data, w.len, "ioapic"), -EINVAL);
    vmdev_state_writer_release(&w);
    vmdev_ioapic_free(a);
    vmdev_ioapic_free(b);
}

TEST_MAIN(TEST(identification_registers), TEST(read_only_entry_bits),
          TEST(edge_pin_delivers_on_rising_edge_only),
          TEST(level_pin_waits_for_eoi),
          TEST(unmasking_asserted_level_pin_delivers),
          TEST(active_low_polarity_inverts), TEST(msi_format_and_pin_query),
          TEST(save_restore_round_trip))
