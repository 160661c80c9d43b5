/* SPDX-License-Identifier: MIT */
/*
 * Two cascaded Intel 8259A PICs (datasheet 231468). Section names cited
 * below ("Interrupt Sequence", "Operation Command Words") are the
 * datasheet's.
 *
 * Priorities are relative to `lowest`, the input with the lowest priority
 * (IR7 after initialisation); rotation moves it. Everything the output
 * depends on is recomputed in update() after each change.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_entry.h"
#include "vmdev/pic.h"

#define CASCADE_IRQ 2
#define SPURIOUS_IRQ 7
#define NO_IRQ -1

/* ICW1 ("Initialization Command Words"): A0=0 with D4 set. */
#define ICW1 0x10
#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_LTIM 0x08
/* ICW4. */
#define ICW4_AEOI 0x02
#define ICW4_SFNM 0x10
/* OCW3: A0=0, D4=0, D3=1. */
#define OCW3 0x08
#define OCW3_RIS 0x01
#define OCW3_RR 0x02
#define OCW3_P 0x04
#define OCW3_SMM 0x20
#define OCW3_ESMM 0x40
/* OCW2: A0=0, D4=0, D3=0; R, SL and EOI in D7-D5, the level in D2-D0. */
#define OCW2_LEVEL(v) ((v) & 7)
#define OCW2_COMMAND(v) ((v) >> 5)
enum ocw2_command {
    ROTATE_AEOI_CLEAR = 0, /* 000 */
    NONSPECIFIC_EOI = 1,   /* 001 */
    NOP = 2,               /* 010 */
    SPECIFIC_EOI = 3,      /* 011 */
    ROTATE_AEOI_SET = 4,   /* 100 */
    ROTATE_NONSPECIFIC_EOI = 5, /* 101 */
    SET_PRIORITY = 6,      /* 110 */
    ROTATE_SPECIFIC_EOI = 7, /* 111 */
};

/* Where the chip is in its initialisation sequence. */
enum init_step { READY, WANT_ICW2, WANT_ICW3, WANT_ICW4 };

struct pic_chip {
    uint8_t irr, isr, imr;
    uint8_t levels; /* input lines as last set, for edge detection */
    uint8_t elcr;
    uint8_t vector_base; /* ICW2 T7-T3 */
    uint8_t icw1, icw3, icw4;
    uint8_t lowest; /* the input with the lowest priority, 0-7 */
    uint8_t init_step;
    bool read_isr;  /* OCW3: status reads give ISR instead of IRR */
    bool poll;      /* OCW3 P: the next read is a poll */
    bool special_mask;
    bool rotate_in_aeoi;
};

struct vmdev_pic {
    pthread_mutex_t lock;
    struct vmdev_pic_config cfg;
    struct pic_chip chips[2];
    bool output;
};

static uint8_t bit(unsigned irq)
{
    return (uint8_t)(1u << irq);
}

static uint8_t level_triggered(const struct pic_chip *c)
{
    return (c->icw1 & ICW1_LTIM) ? 0xff : c->elcr;
}

/* Input number n-th in priority order (0 = highest). */
static unsigned by_priority(const struct pic_chip *c, unsigned n)
{
    return (c->lowest + 1 + n) & 7;
}

/* The highest-priority input in mask, or NO_IRQ. */
static int highest(const struct pic_chip *c, uint8_t mask)
{
    for (unsigned n = 0; n < 8; n++) {
        unsigned irq = by_priority(c, n);
        if (mask & bit(irq))
            return (int)irq;
    }
    return NO_IRQ;
}

static unsigned priority_of(const struct pic_chip *c, int irq)
{
    return irq == NO_IRQ ? 8 : ((unsigned)irq - c->lowest - 1) & 7;
}

/*
 * The request this chip would present on INT ("Interrupt Sequence"): the
 * highest unmasked request above everything in service. In special mask
 * mode a masked input's service bit does not hold others back; in special
 * fully nested mode the cascade input's does not either, so the slave can
 * interrupt its own handler with a higher-priority request.
 */
static int pending(const struct pic_chip *c, bool is_master)
{
    int request = highest(c, c->irr & ~c->imr);
    if (request == NO_IRQ)
        return NO_IRQ;
    uint8_t blocking = c->isr;
    if (c->special_mask)
        blocking &= ~c->imr;
    if (is_master && (c->icw4 & ICW4_SFNM))
        blocking &= ~bit(CASCADE_IRQ);
    return priority_of(c, request) < priority_of(c, highest(c, blocking))
               ? request
               : NO_IRQ;
}

static bool cascaded(const struct vmdev_pic *pic)
{
    return !(pic->chips[VMDEV_PIC_MASTER].icw1 & ICW1_SNGL);
}

static void input_changed(struct pic_chip *c, unsigned irq, bool level)
{
    uint8_t m = bit(irq);
    bool was = c->levels & m;
    c->levels = level ? c->levels | m : c->levels & ~m;
    if (level_triggered(c) & m)
        c->irr = level ? c->irr | m : c->irr & ~m;
    else if (level && !was)
        c->irr |= m;
}

static void update(struct vmdev_pic *pic)
{
    struct pic_chip *master = &pic->chips[VMDEV_PIC_MASTER];
    struct pic_chip *slave = &pic->chips[VMDEV_PIC_SLAVE];
    if (cascaded(pic))
        input_changed(master, CASCADE_IRQ, pending(slave, false) != NO_IRQ);
    bool output = pending(master, true) != NO_IRQ;
    if (output != pic->output) {
        pic->output = output;
        vmdev_irq_set(&pic->cfg.intr, output);
    }
}

/* One INTA sequence on a chip for request irq. */
static void acknowledge(struct pic_chip *c, int irq)
{
    uint8_t m = bit((unsigned)irq);
    if (!(level_triggered(c) & m))
        c->irr &= ~m; /* the edge is consumed; a level stays requested */
    if (c->icw4 & ICW4_AEOI) {
        if (c->rotate_in_aeoi)
            c->lowest = (uint8_t)irq;
    } else {
        c->isr |= m;
    }
}

static void eoi(struct pic_chip *c, int irq, bool rotate)
{
    if (irq == NO_IRQ)
        return;
    c->isr &= ~bit((unsigned)irq);
    if (rotate)
        c->lowest = (uint8_t)irq;
}

static void write_ocw2(struct pic_chip *c, uint8_t value)
{
    unsigned level = OCW2_LEVEL(value);
    switch (OCW2_COMMAND(value)) {
    case NONSPECIFIC_EOI:
        eoi(c, highest(c, c->isr), false);
        break;
    case ROTATE_NONSPECIFIC_EOI:
        eoi(c, highest(c, c->isr), true);
        break;
    case SPECIFIC_EOI:
        eoi(c, (int)level, false);
        break;
    case ROTATE_SPECIFIC_EOI:
        eoi(c, (int)level, true);
        break;
    case SET_PRIORITY:
        c->lowest = (uint8_t)level;
        break;
    case ROTATE_AEOI_SET:
        c->rotate_in_aeoi = true;
        break;
    case ROTATE_AEOI_CLEAR:
        c->rotate_in_aeoi = false;
        break;
    default: /* NOP */
        break;
    }
}

static void write_ocw3(struct pic_chip *c, uint8_t value)
{
    if (value & OCW3_P)
        c->poll = true;
    if (value & OCW3_RR)
        c->read_isr = value & OCW3_RIS;
    if (value & OCW3_ESMM)
        c->special_mask = value & OCW3_SMM;
}

/*
 * ICW1 starts the initialisation sequence: "the edge sense circuit is
 * reset", the mask cleared, IR7 made lowest priority, special mask mode
 * cleared and status reads set to IRR. Edge requests already latched are
 * dropped; a level input still high stays requested.
 */
static void write_icw1(struct pic_chip *c, uint8_t value)
{
    c->icw1 = value;
    c->icw4 = 0;
    c->imr = 0;
    c->isr = 0;
    c->lowest = 7;
    c->special_mask = false;
    c->read_isr = false;
    c->poll = false;
    c->rotate_in_aeoi = false;
    c->irr = c->levels & level_triggered(c);
    c->init_step = WANT_ICW2;
}

static void write_data(struct pic_chip *c, uint8_t value)
{
    switch (c->init_step) {
    case WANT_ICW2:
        c->vector_base = value & 0xf8;
        if (!(c->icw1 & ICW1_SNGL))
            c->init_step = WANT_ICW3;
        else
            c->init_step = (c->icw1 & ICW1_IC4) ? WANT_ICW4 : READY;
        break;
    case WANT_ICW3:
        c->icw3 = value;
        c->init_step = (c->icw1 & ICW1_IC4) ? WANT_ICW4 : READY;
        break;
    case WANT_ICW4:
        c->icw4 = value;
        c->init_step = READY;
        break;
    default: /* OCW1 */
        c->imr = value;
        break;
    }
}

/* A poll read (OCW3 P) is an INTA without a vector: 0x80 | level. */
static uint8_t poll_read(struct pic_chip *c, bool is_master)
{
    c->poll = false;
    int irq = pending(c, is_master);
    if (irq == NO_IRQ)
        return 0;
    acknowledge(c, irq);
    return (uint8_t)(0x80 | irq);
}

static struct pic_chip *chip_of(struct vmdev_pic *pic,
                                enum vmdev_pic_chip chip)
{
    return &pic->chips[chip == VMDEV_PIC_SLAVE];
}

uint8_t vmdev_pic_read(struct vmdev_pic *pic, enum vmdev_pic_chip chip,
                       unsigned offset)
{
    pthread_mutex_lock(&pic->lock);
    struct pic_chip *c = chip_of(pic, chip);
    uint8_t value;
    if (c->poll) {
        value = poll_read(c, c == &pic->chips[VMDEV_PIC_MASTER]);
        update(pic);
    } else if (offset & 1) {
        value = c->imr;
    } else {
        value = c->read_isr ? c->isr : c->irr;
    }
    pthread_mutex_unlock(&pic->lock);
    return value;
}

void vmdev_pic_write(struct vmdev_pic *pic, enum vmdev_pic_chip chip,
                     unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&pic->lock);
    struct pic_chip *c = chip_of(pic, chip);
    if (offset & 1)
        write_data(c, value);
    else if (value & ICW1)
        write_icw1(c, value);
    else if (value & OCW3)
        write_ocw3(c, value);
    else
        write_ocw2(c, value);
    update(pic);
    pthread_mutex_unlock(&pic->lock);
}

uint8_t vmdev_pic_elcr_read(struct vmdev_pic *pic, unsigned offset)
{
    pthread_mutex_lock(&pic->lock);
    uint8_t value = pic->chips[offset & 1].elcr;
    pthread_mutex_unlock(&pic->lock);
    return value;
}

void vmdev_pic_elcr_write(struct vmdev_pic *pic, unsigned offset,
                          uint8_t value)
{
    pthread_mutex_lock(&pic->lock);
    struct pic_chip *c = &pic->chips[offset & 1];
    c->elcr = value & (uint8_t)(VMDEV_PIC_ELCR_MASK >> (8 * (offset & 1)));
    /* A level input's request follows its line from now on; a new edge
     * input waits for its next rising edge. */
    c->irr = (uint8_t)((c->irr & ~level_triggered(c)) |
                       (c->levels & level_triggered(c)));
    update(pic);
    pthread_mutex_unlock(&pic->lock);
}

void vmdev_pic_set_irq(struct vmdev_pic *pic, unsigned irq, bool level)
{
    if (irq >= VMDEV_PIC_IRQS)
        return;
    pthread_mutex_lock(&pic->lock);
    input_changed(&pic->chips[irq / 8], irq % 8, level);
    update(pic);
    pthread_mutex_unlock(&pic->lock);
}

uint8_t vmdev_pic_acknowledge(struct vmdev_pic *pic)
{
    pthread_mutex_lock(&pic->lock);
    struct pic_chip *master = &pic->chips[VMDEV_PIC_MASTER];
    struct pic_chip *slave = &pic->chips[VMDEV_PIC_SLAVE];
    uint8_t vector;
    int irq = pending(master, true);
    if (irq == NO_IRQ) {
        vector = master->vector_base | SPURIOUS_IRQ;
    } else {
        acknowledge(master, irq);
        if (irq == CASCADE_IRQ && cascaded(pic)) {
            /* The slave supplies the vector in the second INTA cycle. */
            int slave_irq = pending(slave, false);
            if (slave_irq == NO_IRQ) {
                vector = slave->vector_base | SPURIOUS_IRQ;
            } else {
                acknowledge(slave, slave_irq);
                vector = (uint8_t)(slave->vector_base | slave_irq);
            }
        } else {
            vector = (uint8_t)(master->vector_base | irq);
        }
    }
    update(pic);
    pthread_mutex_unlock(&pic->lock);
    return vector;
}

bool vmdev_pic_output(struct vmdev_pic *pic)
{
    pthread_mutex_lock(&pic->lock);
    bool output = pic->output;
    pthread_mutex_unlock(&pic->lock);
    return output;
}

static void chip_reset(struct pic_chip *c)
{
    memset(c, 0, sizeof(*c));
    c->lowest = 7;
}

struct vmdev_pic *vmdev_pic_new(const struct vmdev_pic_config *config)
{
    struct vmdev_pic *pic = calloc(1, sizeof(*pic));
    if (!pic)
        return NULL;
    pthread_mutex_init(&pic->lock, NULL);
    pic->cfg = *config;
    chip_reset(&pic->chips[0]);
    chip_reset(&pic->chips[1]);
    vmdev_irq_set(&pic->cfg.intr, false);
    return pic;
}

void vmdev_pic_free(struct vmdev_pic *pic)
{
    if (!pic)
        return;
    pthread_mutex_destroy(&pic->lock);
    free(pic);
}

static uint64_t master_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_pic_read(opaque, VMDEV_PIC_MASTER, (unsigned)offset);
}

static void master_write(void *opaque, uint64_t offset, uint64_t value,
                         unsigned size)
{
    (void)size;
    vmdev_pic_write(opaque, VMDEV_PIC_MASTER, (unsigned)offset,
                    (uint8_t)value);
}

static uint64_t slave_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_pic_read(opaque, VMDEV_PIC_SLAVE, (unsigned)offset);
}

static void slave_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    (void)size;
    vmdev_pic_write(opaque, VMDEV_PIC_SLAVE, (unsigned)offset, (uint8_t)value);
}

static uint64_t elcr_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_pic_elcr_read(opaque, (unsigned)offset);
}

static void elcr_write(void *opaque, uint64_t offset, uint64_t value,
                       unsigned size)
{
    (void)size;
    vmdev_pic_elcr_write(opaque, (unsigned)offset, (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_pic_master_bus_ops = { master_read,
                                                        master_write };
const struct vmdev_bus_ops vmdev_pic_slave_bus_ops = { slave_read,
                                                       slave_write };
const struct vmdev_bus_ops vmdev_pic_elcr_bus_ops = { elcr_read, elcr_write };

/* ---- save/restore ---- */

#define STATE_VERSION 1

enum {
    F_READ_ISR = 1 << 0,
    F_POLL = 1 << 1,
    F_SPECIAL_MASK = 1 << 2,
    F_ROTATE_IN_AEOI = 1 << 3,
    F_ALL = (1 << 4) - 1,
};

/* The byte-wide registers of a chip, in a fixed order. */
enum {
    R_IRR, R_ISR, R_IMR, R_LEVELS, R_ELCR, R_VECTOR_BASE, R_ICW1, R_ICW3,
    R_ICW4, R_LOWEST, R_INIT_STEP, R_FLAGS, R_COUNT
};

static void chip_to_bytes(const struct pic_chip *c, uint8_t b[R_COUNT])
{
    b[R_IRR] = c->irr;
    b[R_ISR] = c->isr;
    b[R_IMR] = c->imr;
    b[R_LEVELS] = c->levels;
    b[R_ELCR] = c->elcr;
    b[R_VECTOR_BASE] = c->vector_base;
    b[R_ICW1] = c->icw1;
    b[R_ICW3] = c->icw3;
    b[R_ICW4] = c->icw4;
    b[R_LOWEST] = c->lowest;
    b[R_INIT_STEP] = c->init_step;
    b[R_FLAGS] = (uint8_t)((c->read_isr ? F_READ_ISR : 0) |
                           (c->poll ? F_POLL : 0) |
                           (c->special_mask ? F_SPECIAL_MASK : 0) |
                           (c->rotate_in_aeoi ? F_ROTATE_IN_AEOI : 0));
}

static int chip_from_bytes(struct pic_chip *c, const uint8_t b[R_COUNT],
                           unsigned index)
{
    uint8_t elcr_mask = (uint8_t)(VMDEV_PIC_ELCR_MASK >> (8 * index));
    /* ICW1 is 0 until the guest first initialises the chip (the state
     * at power-on, not in an initialisation); once written it has the
     * ICW1 bit. */
    if ((b[R_ELCR] & ~elcr_mask) || (b[R_VECTOR_BASE] & 7) ||
        (b[R_ICW1] ? !(b[R_ICW1] & ICW1) : b[R_INIT_STEP] != READY) ||
        b[R_LOWEST] > 7 ||
        b[R_INIT_STEP] > WANT_ICW4 ||
        (b[R_FLAGS] & ~F_ALL))
        return -EINVAL;
    c->irr = b[R_IRR];
    c->isr = b[R_ISR];
    c->imr = b[R_IMR];
    c->levels = b[R_LEVELS];
    c->elcr = b[R_ELCR];
    c->vector_base = b[R_VECTOR_BASE];
    c->icw1 = b[R_ICW1];
    c->icw3 = b[R_ICW3];
    c->icw4 = b[R_ICW4];
    c->lowest = b[R_LOWEST];
    c->init_step = b[R_INIT_STEP];
    c->read_isr = b[R_FLAGS] & F_READ_ISR;
    c->poll = b[R_FLAGS] & F_POLL;
    c->special_mask = b[R_FLAGS] & F_SPECIAL_MASK;
    c->rotate_in_aeoi = b[R_FLAGS] & F_ROTATE_IN_AEOI;
    /* A level input's request is its line. */
    if ((c->irr ^ c->levels) & level_triggered(c))
        return -EINVAL;
    return 0;
}

static const char *const chip_keys[2] = { "master", "slave" };

void vmdev_pic_save(struct vmdev_pic *pic, struct vmdev_state_writer *w,
                    const char *name)
{
    uint8_t b[R_COUNT];
    pthread_mutex_lock(&pic->lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    for (unsigned i = 0; i < 2; i++) {
        chip_to_bytes(&pic->chips[i], b);
        vmdev_state_put_bytes(w, chip_keys[i], b, sizeof(b));
    }
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&pic->lock);
}

int vmdev_pic_restore(struct vmdev_pic *pic, const void *data, size_t len,
                      const char *name)
{
    struct vmdev_state_section s;
    struct pic_chip chips[2];
    uint8_t b[R_COUNT];
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    for (unsigned i = 0; i < 2; i++) {
        memset(&chips[i], 0, sizeof(chips[i]));
        if ((ret = vmdev_state_get_bytes(&s, chip_keys[i], b, sizeof(b))) ||
            (ret = chip_from_bytes(&chips[i], b, i)))
            return ret;
    }
    pthread_mutex_lock(&pic->lock);
    pic->chips[0] = chips[0];
    pic->chips[1] = chips[1];
    update(pic);
    /* The line may not have changed from this PIC's point of view, but
     * the receiver's may be fresh: say where it stands. */
    vmdev_irq_set(&pic->cfg.intr, pic->output);
    pthread_mutex_unlock(&pic->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_pic, struct vmdev_pic);
