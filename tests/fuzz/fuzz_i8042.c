/* SPDX-License-Identifier: MIT */
/*
 * i8042 keyboard controller: any sequence of guest reads and writes of
 * ports 0x60 and 0x64 (and of offsets no port sits at), commands with and
 * without their data byte. A model of the controller as its header and
 * the IBM PC AT Technical Reference describe it runs alongside, and after
 * every access the target checks that
 *  - every byte read (data and status) is the model's,
 *  - IRQ1 is high exactly while the output buffer is full and the command
 *    byte enables the keyboard interrupt,
 *  - the host is asked to reset exactly when the guest pulses the reset
 *    line: a pulse command 0xF0-0xFF with bit 0 clear (0xFE among them),
 *    or an output port written through 0xD1 with bit 0 clear; never
 *    otherwise.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_irq.h"
#include "vmdev/i8042.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Status register and command byte bits (IBM PC AT Technical Reference). */
#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_COMMAND 0x08
#define STATUS_UNLOCKED 0x10
#define CTR_KBD_INT 0x01
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40
#define CTR_RESERVED 0x88
#define OUTPUT_PORT_NOT_RESET 0x01
#define OUTPUT_PORT_A20 0x02

/* What the controller should hold, from the guest's accesses alone. */
struct model {
    uint8_t ctr;
    uint8_t output;
    bool output_full;
    bool last_write_was_command;
    uint8_t awaiting_data; /* the command whose data byte comes next, or 0 */
    uint8_t output_port;
    unsigned resets;
};

static bool takes_data(uint8_t command)
{
    return command == 0x60 || command == 0xd1 || command == 0xd2 ||
           command == 0xd3 || command == 0xd4;
}

static void model_put_output(struct model *m, uint8_t byte)
{
    m->output = byte;
    m->output_full = true;
}

static void model_command(struct model *m, uint8_t command)
{
    m->last_write_was_command = true;
    m->awaiting_data = takes_data(command) ? command : 0;
    switch (command) {
    case 0x20: model_put_output(m, m->ctr); break;
    case 0xa7: m->ctr |= CTR_AUX_DISABLE; break;
    case 0xa8: m->ctr &= (uint8_t)~CTR_AUX_DISABLE; break;
    case 0xa9: model_put_output(m, 0x02); break; /* AUX clock stuck high */
    case 0xaa: /* self-test passes and sets the system flag */
        m->ctr |= CTR_SYS;
        model_put_output(m, 0x55);
        break;
    case 0xab: model_put_output(m, 0x00); break;
    case 0xad: m->ctr |= CTR_KBD_DISABLE; break;
    case 0xae: m->ctr &= (uint8_t)~CTR_KBD_DISABLE; break;
    case 0xd0: model_put_output(m, m->output_port); break;
    default:
        /* Pulse output port: a 0 in bit 0 pulses the CPU reset line. */
        if (command >= 0xf0 && !(command & OUTPUT_PORT_NOT_RESET))
            m->resets++;
        break;
    }
}

static void model_data(struct model *m, uint8_t value)
{
    m->last_write_was_command = false;
    uint8_t command = m->awaiting_data;
    m->awaiting_data = 0;
    switch (command) {
    case 0x60: m->ctr = value & (uint8_t)~CTR_RESERVED; break;
    case 0xd1:
        m->output_port = value;
        if (!(value & OUTPUT_PORT_NOT_RESET))
            m->resets++;
        break;
    case 0xd2:
    case 0xd3: model_put_output(m, value); break;
    default: break; /* a byte for the (absent) keyboard or AUX device */
    }
}

static uint8_t model_status(const struct model *m)
{
    return (uint8_t)(STATUS_UNLOCKED | (m->output_full ? STATUS_OBF : 0) |
                     (m->ctr & CTR_SYS ? STATUS_SYS : 0) |
                     (m->last_write_was_command ? STATUS_COMMAND : 0));
}

static void count_reset(void *opaque)
{
    (*(unsigned *)opaque)++;
}

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fake_irq irq = { false, 0 };
    unsigned resets = 0;
    struct vmdev_i8042_config cfg = {
        .kbd_irq = fake_irq_line(&irq),
        .reset = count_reset,
        .opaque = &resets,
    };
    struct vmdev_i8042 *kbc = vmdev_i8042_new(&cfg);
    if (!kbc)
        return 0;
    /* As firmware leaves it (see vmdev_i8042_new). */
    struct model m = {
        .ctr = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE,
        .output_port = OUTPUT_PORT_NOT_RESET | OUTPUT_PORT_A20,
    };

    for (size_t i = 0; i + 2 <= size; i += 2) {
        uint8_t op = data[i], arg = data[i + 1];
        switch (op & 7) {
        case 0:
        case 1: { /* the guest reads the data port: the output buffer */
            uint8_t expect = m.output;
            m.output_full = false;
            check(vmdev_i8042_read(kbc, VMDEV_I8042_PORT_DATA) == expect);
            break;
        }
        case 2:
            check(vmdev_i8042_read(kbc, VMDEV_I8042_PORT_COMMAND) ==
                  model_status(&m));
            break;
        case 3:
        case 4:
            vmdev_i8042_write(kbc, VMDEV_I8042_PORT_DATA, arg);
            model_data(&m, arg);
            break;
        case 5:
        case 6:
            vmdev_i8042_write(kbc, VMDEV_I8042_PORT_COMMAND, arg);
            model_command(&m, arg);
            break;
        default: { /* an offset no port sits at: reads 0xff, writes vanish */
            unsigned offset = 1 + (op >> 3) % 8;
            if (offset == VMDEV_I8042_PORT_COMMAND)
                offset = 9;
            check(vmdev_i8042_read(kbc, offset) == 0xff);
            vmdev_i8042_write(kbc, offset, arg);
            break;
        }
        }
        check(resets == m.resets);
        check(irq.level == (m.output_full && (m.ctr & CTR_KBD_INT)));
    }
    vmdev_i8042_free(kbc);
    return 0;
}
