/* SPDX-License-Identifier: MIT */
/*
 * The two cascaded i8259 PICs: guest writes and reads of both chips'
 * ports (ICW1-4, OCW1-3, polls) and of the ELCR, the host raising and
 * lowering IRQ lines, and INTA cycles, when INT is high or (a CPU racing
 * a falling INT) when it is not. A model of the pair written from the
 * 8259A datasheet (231468) and the device's header runs alongside; after
 * every step the target checks that
 *  - INT is what the model computes from IRR, IMR, ISR, the priorities,
 *    special mask and special fully nested modes, through the cascade;
 *  - every byte read (IRR, ISR, IMR, poll, ELCR) and every vector
 *    acknowledged is the model's;
 * and, not relying on the model, that every vector lies in the master's
 * or the slave's programmed range and that a chip's ISR only ever holds
 * inputs acknowledged since its last ICW1.
 *
 * The host never drives IRQ 2: on a PC it is the cascade, wired to the
 * slave's INT, and no device sits on it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_irq.h"
#include "vmdev/pic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CASCADE 2
#define NONE 8 /* a priority rank below every input's */

/* ICW1, ICW4 and OCW3 bits (datasheet, "Initialization Command Words"
 * and "Operation Command Words"). */
#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_LTIM 0x08
#define ICW4_AEOI 0x02
#define ICW4_SFNM 0x10
#define OCW3_RIS 0x01
#define OCW3_RR 0x02
#define OCW3_POLL 0x04
#define OCW3_SMM 0x20
#define OCW3_ESMM 0x40

enum next_word { OCW, ICW2, ICW3, ICW4 };

struct chip_model {
    uint8_t irr, isr, imr, lines, elcr;
    uint8_t vector_base, icw1, icw4;
    uint8_t lowest; /* the input with the lowest priority */
    enum next_word next;
    bool read_isr, poll, special_mask, rotate_on_aeoi;
    uint8_t acknowledged; /* inputs acknowledged since ICW1 (not a register) */
};

struct model {
    struct chip_model chip[2]; /* master, slave */
    bool intr;
};

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static uint8_t triggered_by_level(const struct chip_model *c)
{
    return c->icw1 & ICW1_LTIM ? 0xff : c->elcr;
}

/* 0 for the highest priority, 7 for `lowest`, NONE for no input. */
static unsigned rank(const struct chip_model *c, int input)
{
    return input < 0 ? NONE : (unsigned)(input - c->lowest - 1) & 7;
}

/* The input of highest priority among the bits of set, or -1. */
static int first_by_priority(const struct chip_model *c, uint8_t set)
{
    int best = -1;
    for (int input = 0; input < 8; input++)
        if ((set >> input & 1) && rank(c, input) < rank(c, best))
            best = input;
    return best;
}

/* "Interrupt Sequence": the chip raises INT for its highest unmasked
 * request if that outranks everything in service that still holds
 * requests back. */
static int presented(const struct chip_model *c, bool is_master)
{
    int request = first_by_priority(c, c->irr & ~c->imr);
    uint8_t holding = c->isr;
    if (c->special_mask)
        holding &= ~c->imr;
    if (is_master && (c->icw4 & ICW4_SFNM))
        holding &= (uint8_t)~(1u << CASCADE);
    return request >= 0 && rank(c, request) < rank(c, first_by_priority(c, holding))
               ? request
               : -1;
}

static void drive(struct chip_model *c, unsigned input, bool level)
{
    uint8_t bit = (uint8_t)(1u << input);
    bool rising = level && !(c->lines & bit);
    c->lines = level ? c->lines | bit : c->lines & ~bit;
    if (triggered_by_level(c) & bit)
        c->irr = level ? c->irr | bit : c->irr & ~bit;
    else if (rising)
        c->irr |= bit;
}

static bool cascaded(const struct model *m)
{
    return !(m->chip[0].icw1 & ICW1_SNGL);
}

static void settle(struct model *m)
{
    if (cascaded(m))
        drive(&m->chip[0], CASCADE, presented(&m->chip[1], false) >= 0);
    m->intr = presented(&m->chip[0], true) >= 0;
}

static void take(struct chip_model *c, int input)
{
    uint8_t bit = (uint8_t)(1u << input);
    c->acknowledged |= bit;
    if (!(triggered_by_level(c) & bit))
        c->irr &= ~bit;
    if (!(c->icw4 & ICW4_AEOI))
        c->isr |= bit;
    else if (c->rotate_on_aeoi)
        c->lowest = (uint8_t)input;
}

static uint8_t model_acknowledge(struct model *m)
{
    struct chip_model *master = &m->chip[0], *slave = &m->chip[1];
    int input = presented(master, true);
    uint8_t vector;
    if (input < 0) {
        vector = master->vector_base | 7; /* spurious */
    } else {
        take(master, input);
        if (input == CASCADE && cascaded(m)) {
            int slave_input = presented(slave, false);
            if (slave_input < 0) {
                vector = slave->vector_base | 7;
            } else {
                take(slave, slave_input);
                vector = (uint8_t)(slave->vector_base | slave_input);
            }
        } else {
            vector = (uint8_t)(master->vector_base | input);
        }
    }
    settle(m);
    return vector;
}

static void end_of_interrupt(struct chip_model *c, int input, bool rotate)
{
    if (input < 0)
        return;
    c->isr &= (uint8_t)~(1u << input);
    if (rotate)
        c->lowest = (uint8_t)input;
}

static void model_write(struct chip_model *c, unsigned offset, uint8_t value)
{
    if (offset & 1) {
        switch (c->next) {
        case ICW2:
            c->vector_base = value & 0xf8;
            c->next = !(c->icw1 & ICW1_SNGL) ? ICW3
                      : c->icw1 & ICW1_IC4   ? ICW4
                                             : OCW;
            break;
        case ICW3: /* the cascade is fixed: stored only */
            c->next = c->icw1 & ICW1_IC4 ? ICW4 : OCW;
            break;
        case ICW4:
            c->icw4 = value;
            c->next = OCW;
            break;
        default: /* OCW1 */
            c->imr = value;
            break;
        }
    } else if (value & 0x10) { /* ICW1 */
        c->icw1 = value;
        c->icw4 = 0;
        c->imr = c->isr = 0;
        c->lowest = 7;
        c->special_mask = c->read_isr = c->poll = c->rotate_on_aeoi = false;
        c->irr = c->lines & triggered_by_level(c);
        c->acknowledged = 0;
        c->next = ICW2;
    } else if (value & 0x08) { /* OCW3 */
        if (value & OCW3_POLL)
            c->poll = true;
        if (value & OCW3_RR)
            c->read_isr = value & OCW3_RIS;
        if (value & OCW3_ESMM)
            c->special_mask = value & OCW3_SMM;
    } else { /* OCW2: R, SL, EOI in bits 7-5, a level in 2-0 */
        int level = value & 7;
        switch (value >> 5) {
        case 0: c->rotate_on_aeoi = false; break;
        case 1: end_of_interrupt(c, first_by_priority(c, c->isr), false); break;
        case 3: end_of_interrupt(c, level, false); break;
        case 4: c->rotate_on_aeoi = true; break;
        case 5: end_of_interrupt(c, first_by_priority(c, c->isr), true); break;
        case 6: c->lowest = (uint8_t)level; break;
        case 7: end_of_interrupt(c, level, true); break;
        default: break; /* 2: no operation */
        }
    }
}

static uint8_t model_read(struct model *m, unsigned which, unsigned offset)
{
    struct chip_model *c = &m->chip[which];
    if (c->poll) { /* an INTA without a vector */
        c->poll = false;
        int input = presented(c, which == 0);
        uint8_t value = 0;
        if (input >= 0) {
            take(c, input);
            value = (uint8_t)(0x80 | input);
        }
        settle(m);
        return value;
    }
    if (offset & 1)
        return c->imr;
    return c->read_isr ? c->isr : c->irr;
}

static void model_elcr_write(struct model *m, unsigned offset, uint8_t value)
{
    struct chip_model *c = &m->chip[offset & 1];
    c->elcr = value & (uint8_t)(VMDEV_PIC_ELCR_MASK >> 8 * (offset & 1));
    /* A level input's request follows its line from now on; an edge
     * input keeps what it latched. */
    uint8_t level = triggered_by_level(c);
    c->irr = (uint8_t)((c->irr & ~level) | (c->lines & level));
    settle(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fake_irq intr = { false, 0 };
    struct vmdev_pic_config cfg = { .intr = fake_irq_line(&intr) };
    struct vmdev_pic *pic = vmdev_pic_new(&cfg);
    if (!pic)
        return 0;
    struct model m = { .chip = { { .lowest = 7 }, { .lowest = 7 } } };

    for (size_t i = 0; i + 2 <= size; i += 2) {
        uint8_t op = data[i], arg = data[i + 1];
        unsigned offset = op >> 3 & 1;
        enum vmdev_pic_chip which = op >> 4 & 1 ? VMDEV_PIC_SLAVE
                                                : VMDEV_PIC_MASTER;
        switch (op & 7) {
        case 0:
        case 1:
            vmdev_pic_write(pic, which, offset, arg);
            model_write(&m.chip[which == VMDEV_PIC_SLAVE], offset, arg);
            settle(&m);
            break;
        case 2: {
            const struct chip_model *c = &m.chip[which == VMDEV_PIC_SLAVE];
            bool reads_isr = !c->poll && !(offset & 1) && c->read_isr;
            uint8_t value = vmdev_pic_read(pic, which, offset);
            check(value == model_read(&m, which == VMDEV_PIC_SLAVE, offset));
            if (reads_isr)
                check(!(value & ~c->acknowledged));
            break;
        }
        case 3:
            vmdev_pic_elcr_write(pic, offset, arg);
            model_elcr_write(&m, offset, arg);
            break;
        case 4:
            check(vmdev_pic_elcr_read(pic, offset) == m.chip[offset].elcr);
            break;
        case 5: { /* a device's line; never the cascade's IRQ 2 */
            unsigned irq = arg & 15;
            bool level = arg & 0x10;
            if (irq == CASCADE)
                irq = (arg & 0x20) ? VMDEV_PIC_IRQS + (arg >> 6) : 9;
            vmdev_pic_set_irq(pic, irq, level);
            if (irq < VMDEV_PIC_IRQS) {
                drive(&m.chip[irq / 8], irq % 8, level);
                settle(&m);
            }
            break;
        }
        default: { /* INTA: usually only when INT is high, as a CPU does */
            if (!intr.level && !(op & 0x20))
                break;
            uint8_t vector = vmdev_pic_acknowledge(pic);
            check(vector == model_acknowledge(&m));
            check((vector & 0xf8) == m.chip[0].vector_base ||
                  (vector & 0xf8) == m.chip[1].vector_base);
            break;
        }
        }
        check(intr.level == m.intr);
        check(vmdev_pic_output(pic) == m.intr);
    }
    vmdev_pic_free(pic);
    return 0;
}
