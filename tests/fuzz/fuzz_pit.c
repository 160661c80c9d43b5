/* SPDX-License-Identifier: MIT */
/*
 * i8254 PIT on a fake clock: control words, counter latch and read-back
 * commands, counts written as LSB, MSB or both, reads of the counters and
 * of port 0x61, counter 2's GATE toggled there, and time passing by
 * amounts the input picks: either with the one-shot timer fired at each
 * deadline, as a VMM's loop does, or in one late jump. The target keeps a
 * model of each counter's programming and byte sequencing (datasheet
 * 231164, "Read Operations", "Read-Back Command") and checks that
 *  - a status byte shows the access, mode and BCD bits programmed when it
 *    was latched;
 *  - in modes 2 and 3 a count read whole (a latch, or both bytes with
 *    nothing between them) lies in 1..N for the count N in effect, 0
 *    standing for N = 65536 (10000 in BCD); before any count it is 0;
 *    a lone byte stays within N's bytes; BCD counts have digits 0-9;
 *  - port 0x61 reads back the bits written;
 *  - no interrupt storm: while time passes IRQ0 rises at most once per
 *    VMDEV_PIT_MIN_PERIOD_NS elapsed (plus the train's first edge), each
 *    expiry delivering an edge; a late host gets its missed edges
 *    coalesced into one; any other access pulses IRQ0 at most twice.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../unit/platform/platform_fakes.h"
#include "vmdev/pit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACCESS_LATCH 0
#define ACCESS_LSB 1
#define ACCESS_MSB 2
#define ACCESS_BOTH 3
#define READ_BACK_NO_COUNT 0x20
#define READ_BACK_NO_STATUS 0x10
#define STATUS_PROGRAMMING 0x3f /* access, mode, BCD */

struct counter_model {
    uint8_t mode, access;
    bool bcd;
    uint32_t count;          /* modes 2 and 3: the count in effect, or 0 */
    bool write_msb_next;
    uint8_t write_lsb;
    bool read_msb_next;
    uint8_t lsb_read;        /* the first byte of a two-byte read */
    bool lsb_was_latched;    /* and whether it came from a latch */
    bool count_latched;
    uint32_t latched_count;  /* the count in effect at the latch */
    bool status_latched;
    uint8_t latched_programming;
};

struct world {
    struct fake_clock clock;
    struct fake_timer timer;
    struct fake_irq irq0;
};

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static void expired(void *pit)
{
    vmdev_pit_timer_expired(pit);
}

static uint8_t programming(const struct counter_model *c)
{
    return (uint8_t)(c->access << 4 | c->mode << 1 | (c->bcd ? 1 : 0));
}

static bool periodic(const struct counter_model *c)
{
    return c->mode == 2 || c->mode == 3;
}

static void model_control(struct counter_model *c, uint8_t cw)
{
    uint8_t mode = cw >> 1 & 7;
    c->mode = mode > 5 ? mode - 4 : mode; /* 6 and 7 are 2 and 3 */
    c->access = cw >> 4 & 3;
    c->bcd = cw & 1;
    c->count = 0;
    c->write_msb_next = c->read_msb_next = false;
    c->count_latched = false;
}

static void model_latch_count(struct counter_model *c)
{
    if (c->count_latched)
        return; /* a second latch before the read is ignored */
    c->count_latched = true;
    c->latched_count = c->count;
}

static void model_latch_status(struct counter_model *c)
{
    if (c->status_latched)
        return;
    c->status_latched = true;
    c->latched_programming = programming(c);
}

static void model_count_written(struct counter_model *c, uint16_t raw)
{
    if (!periodic(c))
        return;
    uint32_t n = c->bcd ? (raw & 0xf) + (raw >> 4 & 0xf) * 10 +
                              (raw >> 8 & 0xf) * 100 + (raw >> 12) * 1000
                        : raw;
    c->count = n ? n : (c->bcd ? 10000 : 65536);
}

static void model_write(struct counter_model *c, uint8_t value)
{
    switch (c->access) {
    case ACCESS_LSB: model_count_written(c, value); break;
    case ACCESS_MSB: model_count_written(c, (uint16_t)(value << 8)); break;
    default:
        if (!c->write_msb_next) {
            c->write_lsb = value;
            c->write_msb_next = true;
        } else {
            c->write_msb_next = false;
            model_count_written(c, (uint16_t)(c->write_lsb | value << 8));
        }
        break;
    }
}

static bool bcd_digits(uint16_t v)
{
    for (unsigned shift = 0; shift < 16; shift += 4)
        if ((v >> shift & 0xf) > 9)
            return false;
    return true;
}

/* A whole count read in a periodic mode, given N in effect when it was
 * taken. */
static void check_whole_count(const struct counter_model *c, uint16_t raw,
                              uint32_t n)
{
    uint32_t modulus = c->bcd ? 10000 : 65536;
    uint32_t v = c->bcd ? (raw & 0xf) + (raw >> 4 & 0xf) * 10 +
                              (raw >> 8 & 0xf) * 100 + (raw >> 12) * 1000
                        : raw;
    if (n == 0)
        check(v == 0); /* no count yet */
    else
        check((v >= 1 && v <= n) || (v == 0 && n >= modulus));
}

/* Check one byte read from a counter; fresh_pair says the MSB of a
 * two-byte read follows its LSB with nothing in between. */
static void model_read(struct counter_model *c, uint8_t byte, bool fresh_pair)
{
    if (c->status_latched) {
        c->status_latched = false;
        check((byte & STATUS_PROGRAMMING) == c->latched_programming);
        return;
    }
    bool latched = c->count_latched;
    uint32_t n = latched ? c->latched_count : c->count;
    if (c->bcd)
        check(bcd_digits(byte));
    switch (c->access) {
    case ACCESS_LSB:
        c->count_latched = false;
        /* The low byte is the whole count below 256 (100 in BCD). */
        if (periodic(c) && n < (c->bcd ? 100u : 256u))
            check_whole_count(c, byte, n);
        break;
    case ACCESS_MSB:
        c->count_latched = false;
        if (periodic(c) && !c->bcd)
            check(n == 0 ? byte == 0 : byte <= (n > 0xffff ? 0xff : n >> 8));
        break;
    default:
        if (!c->read_msb_next) {
            c->read_msb_next = true;
            c->lsb_read = byte;
            c->lsb_was_latched = latched;
            break; /* a latch stays for the MSB */
        }
        c->read_msb_next = false;
        c->count_latched = false;
        /* Both bytes from one latch, or both read at the same moment. */
        if (periodic(c) && ((latched && c->lsb_was_latched) || fresh_pair))
            check_whole_count(c, (uint16_t)(c->lsb_read | byte << 8), n);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct world w = { .clock = { 5555555, 0 } };
    struct vmdev_pit_config cfg = {
        .clock = fake_clock_iface(&w.clock),
        .timer = fake_timer_iface(&w.timer),
        .irq = fake_irq_line(&w.irq0),
    };
    struct vmdev_pit *pit = vmdev_pit_new(&cfg);
    if (!pit)
        return 0;
    struct counter_model counters[3];
    for (unsigned i = 0; i < 3; i++) {
        counters[i] = (struct counter_model){ .access = ACCESS_BOTH };
    }
    uint8_t port61 = 0;
    int lsb_just_read = -1; /* the counter whose LSB the last step read */

    for (size_t i = 0; i + 3 <= size; i += 3) {
        uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
        unsigned index = a % 3;
        int lsb_read_now = -1;
        unsigned rises_before = w.irq0.rises;
        switch (op & 7) {
        case 0: { /* a control word: a counter's, a latch or a read-back */
            vmdev_pit_write(pit, VMDEV_PIT_PORT_CONTROL, b);
            unsigned select = b >> 6;
            if (select == 3) {
                for (unsigned k = 0; k < 3; k++) {
                    if (!(b & 2u << k))
                        continue;
                    if (!(b & READ_BACK_NO_STATUS))
                        model_latch_status(&counters[k]);
                    if (!(b & READ_BACK_NO_COUNT))
                        model_latch_count(&counters[k]);
                }
            } else if ((b >> 4 & 3) == ACCESS_LATCH) {
                model_latch_count(&counters[select]);
            } else {
                model_control(&counters[select], b);
            }
            check(w.irq0.rises - rises_before <= 2);
            break;
        }
        case 1:
        case 2: /* a count byte */
            vmdev_pit_write(pit, index, b);
            model_write(&counters[index], b);
            check(w.irq0.rises - rises_before <= 2);
            break;
        case 3: { /* a counter read */
            struct counter_model *c = &counters[index];
            bool lsb_next = !c->status_latched && c->access == ACCESS_BOTH &&
                            !c->read_msb_next;
            uint8_t byte = vmdev_pit_read(pit, index);
            model_read(c, byte, lsb_just_read == (int)index);
            if (lsb_next)
                lsb_read_now = (int)index;
            check(w.irq0.rises - rises_before <= 2);
            break;
        }
        case 4: /* port 0x61: counter 2's GATE and the stored bits */
            vmdev_pit_port61_write(pit, b);
            port61 = b & 0x0f;
            break;
        case 5:
            check((vmdev_pit_port61_read(pit) & 0x0f) == port61);
            break;
        case 6: { /* time passes, up to 8 ms, the timer firing when due */
            uint64_t ns = ((uint64_t)a << 8 | b) << (op >> 4 & 7);
            unsigned fired =
                fake_run_for(&w.clock, &w.timer, ns, expired, pit);
            unsigned rises = w.irq0.rises - rises_before;
            check(rises <= ns / VMDEV_PIT_MIN_PERIOD_NS + 2);
            check(fired <= rises + 2);
            break;
        }
        default: { /* the host comes back late: up to 36 minutes */
            fake_clock_advance(&w.clock, ((uint64_t)a << 8 | b) << (op >> 4 & 15) << 10);
            unsigned fired = fake_run_for(&w.clock, &w.timer, 0, expired, pit);
            check(fired <= 2 && w.irq0.rises - rises_before <= 2);
            break;
        }
        }
        lsb_just_read = lsb_read_now;
    }
    vmdev_pit_free(pit);
    return 0;
}
