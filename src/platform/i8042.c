/* SPDX-License-Identifier: MIT */
/*
 * Intel 8042 keyboard controller, commands and status only. References are
 * to the IBM PC AT Technical Reference "Keyboard Controller" section, whose
 * command set every PC chipset keeps.
 */
#include "device_entry.h"
#include "vmdev/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "vmdev/log.h"

/* Status register. */
#define STATUS_OBF 0x01      /* output buffer full */
#define STATUS_SYS 0x04      /* system flag, mirrors command byte bit 2 */
#define STATUS_COMMAND 0x08  /* last write went to port 0x64 */
#define STATUS_UNLOCKED 0x10 /* keyboard inhibit switch off */

/* Command byte ("controller RAM" byte 0). */
#define CTR_KBD_INT 0x01
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40
#define CTR_WRITABLE 0x77 /* bits 3 and 7 are reserved, read as 0 */

/* Output port: bit 0 drives the CPU reset line low when cleared. */
#define OUTPUT_PORT_NOT_RESET 0x01
#define OUTPUT_PORT_A20 0x02

enum {
    CMD_READ_CTR = 0x20,
    CMD_WRITE_CTR = 0x60,
    CMD_AUX_DISABLE = 0xa7,
    CMD_AUX_ENABLE = 0xa8,
    CMD_AUX_TEST = 0xa9,
    CMD_SELF_TEST = 0xaa,
    CMD_KBD_TEST = 0xab,
    CMD_KBD_DISABLE = 0xad,
    CMD_KBD_ENABLE = 0xae,
    CMD_READ_OUTPUT_PORT = 0xd0,
    CMD_WRITE_OUTPUT_PORT = 0xd1,
    CMD_WRITE_KBD_BUFFER = 0xd2,
    CMD_WRITE_AUX_BUFFER = 0xd3,
    CMD_WRITE_AUX = 0xd4,
    CMD_PULSE_FIRST = 0xf0, /* 0xF0-0xFF pulse output port bits 0-3 */
};

#define SELF_TEST_PASSED 0x55
#define INTERFACE_TEST_PASSED 0x00
#define AUX_CLOCK_STUCK_HIGH 0x02
#define STATE_VERSION 1

struct i8042_regs {
    uint8_t ctr;
    uint8_t output;      /* the one-byte output buffer */
    bool output_full;
    bool last_was_command;
    uint8_t pending;     /* command waiting for its data byte, or 0 */
    uint8_t output_port;
};

struct vmdev_i8042 {
    pthread_mutex_t lock;
    struct vmdev_irq_line kbd_irq;
    void (*reset)(void *opaque);
    void *opaque;
    struct vmdev_log *log;
    struct vmdev_ratelimit log_limit; /* the guest's errors */
    struct i8042_regs r;
};

static void update_irq(struct vmdev_i8042 *k)
{
    vmdev_irq_set(&k->kbd_irq, k->r.output_full && (k->r.ctr & CTR_KBD_INT));
}

static void put_output(struct vmdev_i8042 *k, uint8_t byte)
{
    k->r.output = byte;
    k->r.output_full = true;
}

static bool takes_data(uint8_t command)
{
    return command == CMD_WRITE_CTR || command == CMD_WRITE_OUTPUT_PORT ||
           command == CMD_WRITE_KBD_BUFFER ||
           command == CMD_WRITE_AUX_BUFFER || command == CMD_WRITE_AUX;
}

/* Returns true when the CPU reset line was pulsed. */
static bool run_command(struct vmdev_i8042 *k, uint8_t command)
{
    k->r.pending = takes_data(command) ? command : 0;
    switch (command) {
    case CMD_READ_CTR:
        put_output(k, k->r.ctr);
        break;
    case CMD_AUX_DISABLE:
        k->r.ctr |= CTR_AUX_DISABLE;
        break;
    case CMD_AUX_ENABLE:
        k->r.ctr &= (uint8_t)~CTR_AUX_DISABLE;
        break;
    case CMD_AUX_TEST:
        put_output(k, AUX_CLOCK_STUCK_HIGH); /* no AUX port, see header */
        break;
    case CMD_SELF_TEST:
        k->r.ctr |= CTR_SYS;
        put_output(k, SELF_TEST_PASSED);
        break;
    case CMD_KBD_TEST:
        put_output(k, INTERFACE_TEST_PASSED);
        break;
    case CMD_KBD_DISABLE:
        k->r.ctr |= CTR_KBD_DISABLE;
        break;
    case CMD_KBD_ENABLE:
        k->r.ctr &= (uint8_t)~CTR_KBD_DISABLE;
        break;
    case CMD_READ_OUTPUT_PORT:
        put_output(k, k->r.output_port);
        break;
    default:
        /* "Pulse output port": a 0 in bits 0-3 pulses that line; bit 0 is
         * the CPU reset. 0xFE is the classic reboot. */
        if (command >= CMD_PULSE_FIRST)
            return !(command & OUTPUT_PORT_NOT_RESET);
        if (!takes_data(command))
            vmdev_log_limited(k->log, &k->log_limit, VMDEV_LOG_DEBUG,
                              "i8042: command 0x%02x ignored", command);
        break;
    }
    return false;
}

static bool write_data(struct vmdev_i8042 *k, uint8_t value)
{
    uint8_t command = k->r.pending;
    k->r.pending = 0;
    switch (command) {
    case CMD_WRITE_CTR:
        k->r.ctr = value & CTR_WRITABLE;
        break;
    case CMD_WRITE_OUTPUT_PORT:
        k->r.output_port = value;
        return !(value & OUTPUT_PORT_NOT_RESET);
    case CMD_WRITE_KBD_BUFFER:
    case CMD_WRITE_AUX_BUFFER: /* echoed as keyboard data: no AUX port */
        put_output(k, value);
        break;
    default:
        /* A byte for the keyboard, or for the absent AUX device. */
        break;
    }
    return false;
}

uint8_t vmdev_i8042_read(struct vmdev_i8042 *k, unsigned offset)
{
    uint8_t value = 0xff;
    pthread_mutex_lock(&k->lock);
    if (offset == VMDEV_I8042_PORT_DATA) {
        value = k->r.output;
        k->r.output_full = false;
    } else if (offset == VMDEV_I8042_PORT_COMMAND) {
        value = STATUS_UNLOCKED;
        if (k->r.output_full)
            value |= STATUS_OBF;
        if (k->r.ctr & CTR_SYS)
            value |= STATUS_SYS;
        if (k->r.last_was_command)
            value |= STATUS_COMMAND;
    }
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    return value;
}

void vmdev_i8042_write(struct vmdev_i8042 *k, unsigned offset, uint8_t value)
{
    bool reset = false;
    pthread_mutex_lock(&k->lock);
    if (offset == VMDEV_I8042_PORT_DATA) {
        k->r.last_was_command = false;
        reset = write_data(k, value);
    } else if (offset == VMDEV_I8042_PORT_COMMAND) {
        k->r.last_was_command = true;
        reset = run_command(k, value);
    }
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    if (reset && k->reset)
        k->reset(k->opaque);
}

static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)offset;
    (void)size;
    return vmdev_i8042_read(opaque, VMDEV_I8042_PORT_DATA);
}

static void data_write(void *opaque, uint64_t offset, uint64_t value,
                       unsigned size)
{
    (void)offset;
    (void)size;
    vmdev_i8042_write(opaque, VMDEV_I8042_PORT_DATA, (uint8_t)value);
}

static uint64_t command_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)offset;
    (void)size;
    return vmdev_i8042_read(opaque, VMDEV_I8042_PORT_COMMAND);
}

static void command_write(void *opaque, uint64_t offset, uint64_t value,
                          unsigned size)
{
    (void)offset;
    (void)size;
    vmdev_i8042_write(opaque, VMDEV_I8042_PORT_COMMAND, (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_i8042_data_bus_ops = { data_read,
                                                        data_write };
const struct vmdev_bus_ops vmdev_i8042_command_bus_ops = { command_read,
                                                           command_write };

struct vmdev_i8042 *vmdev_i8042_new(const struct vmdev_i8042_config *config)
{
    struct vmdev_i8042 *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    if (pthread_mutex_init(&k->lock, NULL)) {
        free(k);
        return NULL;
    }
    k->kbd_irq = config->kbd_irq;
    k->reset = config->reset;
    k->log = config->log;
    k->opaque = config->opaque;
    /* As firmware leaves it: keyboard interrupt, translation, POST done;
     * the (absent) AUX port disabled. */
    k->r.ctr = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE;
    k->r.output_port = OUTPUT_PORT_NOT_RESET | OUTPUT_PORT_A20;
    return k;
}

void vmdev_i8042_free(struct vmdev_i8042 *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->lock);
    free(k);
}

void vmdev_i8042_save(struct vmdev_i8042 *k, struct vmdev_state_writer *w,
                      const char *name)
{
    pthread_mutex_lock(&k->lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u8(w, "ctr", k->r.ctr);
    vmdev_state_put_u8(w, "output", k->r.output);
    vmdev_state_put_u8(w, "output_full", k->r.output_full);
    vmdev_state_put_u8(w, "last_was_command", k->r.last_was_command);
    vmdev_state_put_u8(w, "pending", k->r.pending);
    vmdev_state_put_u8(w, "output_port", k->r.output_port);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&k->lock);
}

int vmdev_i8042_restore(struct vmdev_i8042 *k, const void *data, size_t len,
                        const char *name)
{
    struct vmdev_state_section s;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    struct i8042_regs n;
    uint8_t full, last;
    if ((ret = vmdev_state_get_u8(&s, "ctr", &n.ctr)) ||
        (ret = vmdev_state_get_u8(&s, "output", &n.output)) ||
        (ret = vmdev_state_get_u8(&s, "output_full", &full)) ||
        (ret = vmdev_state_get_u8(&s, "last_was_command", &last)) ||
        (ret = vmdev_state_get_u8(&s, "pending", &n.pending)) ||
        (ret = vmdev_state_get_u8(&s, "output_port", &n.output_port)))
        return ret;
    if ((n.ctr & ~CTR_WRITABLE) || full > 1 || last > 1 ||
        (n.pending && !takes_data(n.pending)))
        return -EINVAL;
    n.output_full = full;
    n.last_was_command = last;
    pthread_mutex_lock(&k->lock);
    k->r = n;
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_i8042, struct vmdev_i8042);
