/* SPDX-License-Identifier: MIT */
#include "device_entry.h"
#include "vmdev/ioapic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Redirection entry fields (82093AA datasheet, 3.2.4). */
#define RTE_VECTOR 0xffull
#define RTE_DELIVERY_MODE_SHIFT 8
#define RTE_DELIVERY_MODE (7ull << 8)
#define RTE_DEST_MODE (1ull << 11)
#define RTE_DELIVERY_STATUS (1ull << 12) /* read-only */
#define RTE_POLARITY_LOW (1ull << 13)
#define RTE_REMOTE_IRR (1ull << 14)      /* read-only */
#define RTE_TRIGGER_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_DEST_SHIFT 56
/* Bits the guest may write: all but delivery status, Remote IRR and the
 * reserved bits 17-55. */
#define RTE_WRITABLE (RTE_VECTOR | RTE_DELIVERY_MODE | RTE_DEST_MODE |     \
                      RTE_POLARITY_LOW | RTE_TRIGGER_LEVEL | RTE_MASKED |  \
                      (0xffull << RTE_DEST_SHIFT))

#define REG_ID 0x00
#define REG_VERSION 0x01
#define REG_ARBITRATION 0x02
#define REG_REDIRECTION 0x10

struct vmdev_ioapic {
    pthread_mutex_t lock;
    struct vmdev_msi_sink sink;
    uint8_t id;
    uint8_t regsel;
    uint32_t pin_levels; /* input lines as driven, before polarity */
    uint64_t redirection[VMDEV_IOAPIC_PINS];
};

struct vmdev_ioapic *vmdev_ioapic_new(uint8_t id,
                                      const struct vmdev_msi_sink *sink)
{
    struct vmdev_ioapic *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    pthread_mutex_init(&io->lock, NULL);
    io->sink = *sink;
    io->id = id & 0xf;
    for (unsigned i = 0; i < VMDEV_IOAPIC_PINS; i++)
        io->redirection[i] = RTE_MASKED;
    return io;
}

void vmdev_ioapic_free(struct vmdev_ioapic *io)
{
    if (!io)
        return;
    pthread_mutex_destroy(&io->lock);
    free(io);
}

static bool pin_asserted(const struct vmdev_ioapic *io, unsigned pin)
{
    bool level = io->pin_levels >> pin & 1;
    return io->redirection[pin] & RTE_POLARITY_LOW ? !level : level;
}

/*
 * The MSI a local APIC accepts for this entry (Intel SDM vol. 3, 11.11.1
 * and 11.11.2): destination id and mode in the address; vector, delivery
 * mode, level-assert and trigger mode in the data.
 */
static struct vmdev_msi_msg msi_for_entry(uint64_t rte)
{
    struct vmdev_msi_msg msg = {
        .address = 0xfee00000ull | (rte >> RTE_DEST_SHIFT) << 12 |
                   (rte & RTE_DEST_MODE ? 1u << 2 : 0),
        .data = (uint32_t)(rte & (RTE_VECTOR | RTE_DELIVERY_MODE)) | 1u << 14,
    };
    if (rte & RTE_TRIGGER_LEVEL)
        msg.data |= 1u << 15;
    return msg;
}

static void deliver(struct vmdev_ioapic *io, unsigned pin)
{
    struct vmdev_msi_msg msg = msi_for_entry(io->redirection[pin]);
    if (io->redirection[pin] & RTE_TRIGGER_LEVEL)
        io->redirection[pin] |= RTE_REMOTE_IRR;
    vmdev_msi_send(&io->sink, &msg);
}

bool vmdev_ioapic_pin_msi(struct vmdev_ioapic *io, unsigned pin,
                          struct vmdev_msi_msg *msg)
{
    if (pin >= VMDEV_IOAPIC_PINS)
        return false;
    pthread_mutex_lock(&io->lock);
    uint64_t rte = io->redirection[pin];
    *msg = msi_for_entry(rte);
    pthread_mutex_unlock(&io->lock);
    return !(rte & RTE_MASKED);
}

/* A level pin that is asserted, unmasked and not awaiting EOI fires. */
static void service_level(struct vmdev_ioapic *io, unsigned pin)
{
    uint64_t rte = io->redirection[pin];
    if ((rte & RTE_TRIGGER_LEVEL) && !(rte & (RTE_MASKED | RTE_REMOTE_IRR)) &&
        pin_asserted(io, pin))
        deliver(io, pin);
}

void vmdev_ioapic_set_irq(struct vmdev_ioapic *io, unsigned pin, bool level)
{
    if (pin >= VMDEV_IOAPIC_PINS)
        return;
    pthread_mutex_lock(&io->lock);
    bool was = pin_asserted(io, pin);
    io->pin_levels = (io->pin_levels & ~(1u << pin)) | (uint32_t)level << pin;
    bool now = pin_asserted(io, pin);
    uint64_t rte = io->redirection[pin];
    if (rte & RTE_TRIGGER_LEVEL)
        service_level(io, pin);
    else if (now && !was && !(rte & RTE_MASKED))
        deliver(io, pin); /* edge: the asserting transition only */
    pthread_mutex_unlock(&io->lock);
}

void vmdev_ioapic_eoi(struct vmdev_ioapic *io, uint8_t vector)
{
    pthread_mutex_lock(&io->lock);
    for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++) {
        uint64_t rte = io->redirection[pin];
        if ((rte & RTE_TRIGGER_LEVEL) && (rte & RTE_VECTOR) == vector &&
            (rte & RTE_REMOTE_IRR)) {
            io->redirection[pin] &= ~RTE_REMOTE_IRR;
            service_level(io, pin);
        }
    }
    pthread_mutex_unlock(&io->lock);
}

static uint32_t read_register(struct vmdev_ioapic *io, uint8_t reg)
{
    switch (reg) {
    case REG_ID:
        return (uint32_t)io->id << 24;
    case REG_VERSION:
        return VMDEV_IOAPIC_VERSION | (VMDEV_IOAPIC_PINS - 1) << 16;
    case REG_ARBITRATION:
        return (uint32_t)io->id << 24;
    default:
        break;
    }
    if (reg >= REG_REDIRECTION && reg < REG_REDIRECTION + 2 * VMDEV_IOAPIC_PINS) {
        uint64_t rte = io->redirection[(reg - REG_REDIRECTION) / 2];
        return (reg & 1) ? (uint32_t)(rte >> 32) : (uint32_t)rte;
    }
    return 0; /* reserved registers read as zero */
}

static void write_register(struct vmdev_ioapic *io, uint8_t reg, uint32_t value)
{
    if (reg == REG_ID) {
        io->id = value >> 24 & 0xf;
        return;
    }
    if (reg < REG_REDIRECTION || reg >= REG_REDIRECTION + 2 * VMDEV_IOAPIC_PINS)
        return; /* version, arbitration and reserved: read-only */
    unsigned pin = (reg - REG_REDIRECTION) / 2;
    uint64_t rte = io->redirection[pin];
    uint64_t written = (reg & 1) ? (rte & 0xffffffffull) | (uint64_t)value << 32
                                 : (rte & ~0xffffffffull) | value;
    rte = (rte & ~RTE_WRITABLE) | (written & RTE_WRITABLE);
    /* Remote IRR is meaningless for edge pins (datasheet 3.2.4). */
    if (!(rte & RTE_TRIGGER_LEVEL))
        rte &= ~RTE_REMOTE_IRR;
    io->redirection[pin] = rte;
    /* Unmasking an asserted level pin delivers it. */
    service_level(io, pin);
}

uint32_t vmdev_ioapic_read(struct vmdev_ioapic *io, unsigned offset)
{
    uint32_t value = 0;
    pthread_mutex_lock(&io->lock);
    if (offset == VMDEV_IOAPIC_REGSEL)
        value = io->regsel;
    else if (offset == VMDEV_IOAPIC_WINDOW)
        value = read_register(io, io->regsel);
    pthread_mutex_unlock(&io->lock);
    return value;
}

void vmdev_ioapic_write(struct vmdev_ioapic *io, unsigned offset,
                        uint32_t value)
{
    pthread_mutex_lock(&io->lock);
    if (offset == VMDEV_IOAPIC_REGSEL)
        io->regsel = (uint8_t)value;
    else if (offset == VMDEV_IOAPIC_WINDOW)
        write_register(io, io->regsel, value);
    pthread_mutex_unlock(&io->lock);
}

uint64_t vmdev_ioapic_redirection(struct vmdev_ioapic *io, unsigned pin)
{
    if (pin >= VMDEV_IOAPIC_PINS)
        return 0;
    pthread_mutex_lock(&io->lock);
    uint64_t rte = io->redirection[pin];
    pthread_mutex_unlock(&io->lock);
    return rte;
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    return vmdev_ioapic_read(opaque, (unsigned)offset);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    vmdev_ioapic_write(opaque, (unsigned)offset, (uint32_t)value);
}

const struct vmdev_bus_ops vmdev_ioapic_bus_ops = { bus_read, bus_write };

#define STATE_VERSION 1

void vmdev_ioapic_save(struct vmdev_ioapic *io, struct vmdev_state_writer *w,
                       const char *name)
{
    pthread_mutex_lock(&io->lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u8(w, "id", io->id);
    vmdev_state_put_u8(w, "regsel", io->regsel);
    vmdev_state_put_u32(w, "pin_levels", io->pin_levels);
    uint8_t table[8 * VMDEV_IOAPIC_PINS];
    for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++)
        for (unsigned b = 0; b < 8; b++)
            table[8 * pin + b] = (uint8_t)(io->redirection[pin] >> (8 * b));
    vmdev_state_put_bytes(w, "redirection", table, sizeof(table));
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&io->lock);
}

int vmdev_ioapic_restore(struct vmdev_ioapic *io, const void *data,
                         size_t len, const char *name)
{
    struct vmdev_state_section s;
    uint8_t id, regsel;
    uint32_t levels;
    uint8_t table[8 * VMDEV_IOAPIC_PINS];
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    if (vmdev_state_get_u8(&s, "id", &id) ||
        vmdev_state_get_u8(&s, "regsel", &regsel) ||
        vmdev_state_get_u32(&s, "pin_levels", &levels) ||
        vmdev_state_get_bytes(&s, "redirection", table, sizeof(table)))
        return -EINVAL;
    if (id > 0xf || levels >> VMDEV_IOAPIC_PINS)
        return -EINVAL;
    uint64_t redirection[VMDEV_IOAPIC_PINS];
    for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++) {
        uint64_t rte = 0;
        for (unsigned b = 0; b < 8; b++)
            rte |= (uint64_t)table[8 * pin + b] << (8 * b);
        /* Only architectural bits; Remote IRR only on level pins. */
        if (rte & ~(RTE_WRITABLE | RTE_REMOTE_IRR))
            return -EINVAL;
        if ((rte & RTE_REMOTE_IRR) && !(rte & RTE_TRIGGER_LEVEL))
            return -EINVAL;
        redirection[pin] = rte;
    }
    pthread_mutex_lock(&io->lock);
    io->id = id;
    io->regsel = regsel;
    io->pin_levels = levels;
    memcpy(io->redirection, redirection, sizeof(redirection));
    pthread_mutex_unlock(&io->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_ioapic, struct vmdev_ioapic);
