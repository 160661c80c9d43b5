/* SPDX-License-Identifier: MIT */
/*
 * IOAPIC: guest accesses through the bus glue at any offset in its page
 * and of any size (a bus that lets a bad size through must still find
 * the device sane), input pins driven by the host, and local APIC EOIs
 * with any vector. A model of the 82093AA from its datasheet (3.2.4) and
 * the device's header runs alongside; after every step the target checks
 * that
 *  - every read (IOREGSEL, ID, version, arbitration, each redirection
 *    half, reserved registers) and vmdev_ioapic_redirection() return the
 *    model's value, Remote IRR included;
 *  - the MSIs sent are exactly the model's, in order: only from unmasked
 *    pins, an edge pin on its asserting transition only, a level pin when
 *    it is asserted and its Remote IRR clear, which then stays set (no
 *    second delivery) until an EOI with its vector;
 *  - each message is the one vmdev_ioapic_pin_msi() gives for that pin, in
 *    the local APICs' format (Intel SDM vol. 3, 11.11).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/ioapic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RTE_VECTOR 0xffull
#define RTE_DELIVERY_MODE (7ull << 8)
#define RTE_DEST_MODE (1ull << 11)
#define RTE_POLARITY_LOW (1ull << 13)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_TRIGGER_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_DEST (0xffull << 56)
#define RTE_WRITABLE                                                           \
    (RTE_VECTOR | RTE_DELIVERY_MODE | RTE_DEST_MODE | RTE_POLARITY_LOW |     \
     RTE_TRIGGER_LEVEL | RTE_MASKED | RTE_DEST)
#define REG_REDIRECTION 0x10
#define MAX_SENT 64

struct model {
    uint8_t id, regsel;
    uint32_t levels; /* the host's lines, before polarity */
    uint64_t rte[VMDEV_IOAPIC_PINS];
    /* Deliveries expected since the last step, as pins. */
    unsigned expected[MAX_SENT], num_expected;
};

struct sent {
    struct vmdev_msi_msg msgs[MAX_SENT];
    unsigned count;
};

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static void record_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    struct sent *s = opaque;
    check(s->count < MAX_SENT);
    s->msgs[s->count++] = *msg;
}

static bool asserted(const struct model *m, unsigned pin)
{
    bool line = m->levels >> pin & 1;
    return m->rte[pin] & RTE_POLARITY_LOW ? !line : line;
}

static void model_deliver(struct model *m, unsigned pin)
{
    check(!(m->rte[pin] & RTE_MASKED));
    if (m->rte[pin] & RTE_TRIGGER_LEVEL) {
        /* A level pin is delivered once per EOI. */
        check(!(m->rte[pin] & RTE_REMOTE_IRR));
        m->rte[pin] |= RTE_REMOTE_IRR;
    }
    check(m->num_expected < MAX_SENT);
    m->expected[m->num_expected++] = pin;
}

static void model_service_level(struct model *m, unsigned pin)
{
    uint64_t rte = m->rte[pin];
    if ((rte & RTE_TRIGGER_LEVEL) && !(rte & (RTE_MASKED | RTE_REMOTE_IRR)) &&
        asserted(m, pin))
        model_deliver(m, pin);
}

static uint32_t model_read(const struct model *m)
{
    uint8_t reg = m->regsel;
    if (reg == 0x00 || reg == 0x02) /* ID, arbitration ID */
        return (uint32_t)m->id << 24;
    if (reg == 0x01)
        return VMDEV_IOAPIC_VERSION | (VMDEV_IOAPIC_PINS - 1) << 16;
    if (reg >= REG_REDIRECTION && reg < REG_REDIRECTION + 2 * VMDEV_IOAPIC_PINS) {
        uint64_t rte = m->rte[(reg - REG_REDIRECTION) / 2];
        return (uint32_t)(reg & 1 ? rte >> 32 : rte);
    }
    return 0;
}

static void model_write(struct model *m, uint32_t value)
{
    uint8_t reg = m->regsel;
    if (reg == 0x00) {
        m->id = value >> 24 & 0xf;
        return;
    }
    if (reg < REG_REDIRECTION || reg >= REG_REDIRECTION + 2 * VMDEV_IOAPIC_PINS)
        return;
    unsigned pin = (reg - REG_REDIRECTION) / 2;
    uint64_t shift = reg & 1 ? 32 : 0;
    uint64_t half = 0xffffffffull << shift;
    uint64_t rte = (m->rte[pin] & ~(half & RTE_WRITABLE)) |
                   ((uint64_t)value << shift & half & RTE_WRITABLE);
    if (!(rte & RTE_TRIGGER_LEVEL))
        rte &= ~RTE_REMOTE_IRR; /* meaningless for an edge pin */
    m->rte[pin] = rte;
    model_service_level(m, pin);
}

/* The local APIC message for an entry (Intel SDM vol. 3, 11.11.1-2). */
static struct vmdev_msi_msg msi_of(uint64_t rte)
{
    struct vmdev_msi_msg msg = {
        .address = 0xfee00000ull | (rte >> 56) << 12 |
                   (rte & RTE_DEST_MODE ? 4 : 0),
        .data = (uint32_t)(rte & (RTE_VECTOR | RTE_DELIVERY_MODE)) |
                1u << 14 | (rte & RTE_TRIGGER_LEVEL ? 1u << 15 : 0),
    };
    return msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sent sent = { .count = 0 };
    struct vmdev_msi_sink sink = { .send = record_msi, .opaque = &sent };
    struct vmdev_ioapic *io = vmdev_ioapic_new(0x21, &sink);
    if (!io)
        return 0;
    struct model m = { .id = 0x1 };
    for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++)
        m.rte[pin] = RTE_MASKED;
    const struct vmdev_bus_ops *bus = &vmdev_ioapic_bus_ops;

    for (size_t i = 0; i + 5 <= size; i += 5) {
        uint8_t op = data[i];
        uint32_t value = (uint32_t)data[i + 1] | (uint32_t)data[i + 2] << 8 |
                         (uint32_t)data[i + 3] << 16 |
                         (uint32_t)data[i + 4] << 24;
        unsigned access = 1u << (op >> 3 & 3);
        /* Mostly the two registers, sometimes anywhere in the page. */
        unsigned offset = op & 0x20 ? (uint8_t)(value >> 8)
                                    : (op & 0x40 ? VMDEV_IOAPIC_WINDOW
                                                 : VMDEV_IOAPIC_REGSEL);
        sent.count = 0;
        m.num_expected = 0;
        switch (op & 7) {
        case 0: /* select a register: a redirection entry, usually */
            bus->write(io, VMDEV_IOAPIC_REGSEL,
                       value & 0x100 ? (uint8_t)value
                                     : REG_REDIRECTION + (uint8_t)value % 48,
                       4);
            m.regsel = value & 0x100 ? (uint8_t)value
                                     : REG_REDIRECTION + (uint8_t)value % 48;
            break;
        case 1:
        case 2: /* a write at offset; only the window changes a register */
            bus->write(io, offset, value, access);
            if (offset == VMDEV_IOAPIC_REGSEL)
                m.regsel = (uint8_t)value;
            else if (offset == VMDEV_IOAPIC_WINDOW)
                model_write(&m, value);
            break;
        case 3: { /* a read at offset */
            uint64_t got = bus->read(io, offset, access);
            uint32_t expect = offset == VMDEV_IOAPIC_REGSEL ? m.regsel
                              : offset == VMDEV_IOAPIC_WINDOW ? model_read(&m)
                                                              : 0;
            check(got == expect);
            break;
        }
        case 4:
        case 5: { /* the host drives a pin */
            unsigned pin = value % (VMDEV_IOAPIC_PINS + 1);
            bool level = value >> 8 & 1;
            bool was = pin < VMDEV_IOAPIC_PINS && asserted(&m, pin);
            vmdev_ioapic_set_irq(io, pin, level);
            if (pin == VMDEV_IOAPIC_PINS)
                break; /* past the last pin: ignored */
            m.levels = (m.levels & ~(1u << pin)) | (uint32_t)level << pin;
            if (m.rte[pin] & RTE_TRIGGER_LEVEL)
                model_service_level(&m, pin);
            else if (asserted(&m, pin) && !was && !(m.rte[pin] & RTE_MASKED))
                model_deliver(&m, pin);
            break;
        }
        case 6: { /* a local APIC's EOI; usually a vector in use */
            uint8_t vector = value & 0x100
                                 ? (uint8_t)value
                                 : (uint8_t)m.rte[value % VMDEV_IOAPIC_PINS];
            vmdev_ioapic_eoi(io, vector);
            for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++) {
                uint64_t rte = m.rte[pin];
                if ((rte & RTE_TRIGGER_LEVEL) && (rte & RTE_REMOTE_IRR) &&
                    (uint8_t)rte == vector) {
                    m.rte[pin] &= ~RTE_REMOTE_IRR;
                    model_service_level(&m, pin);
                }
            }
            break;
        }
        default: { /* the VMM looks at a pin's entry and route */
            unsigned pin = value % VMDEV_IOAPIC_PINS;
            struct vmdev_msi_msg msg;
            bool unmasked = vmdev_ioapic_pin_msi(io, pin, &msg);
            struct vmdev_msi_msg want = msi_of(m.rte[pin]);
            check(unmasked == !(m.rte[pin] & RTE_MASKED));
            check(msg.address == want.address && msg.data == want.data);
            check(vmdev_ioapic_redirection(io, pin) == m.rte[pin]);
            break;
        }
        }
        /* Exactly the model's deliveries, each its pin's message as
         * programmed now (the pin cannot have changed since). */
        check(sent.count == m.num_expected);
        for (unsigned k = 0; k < sent.count; k++) {
            struct vmdev_msi_msg want = msi_of(m.rte[m.expected[k]]);
            check(sent.msgs[k].address == want.address &&
                  sent.msgs[k].data == want.data);
        }
    }
    vmdev_ioapic_free(io);
    return 0;
}
