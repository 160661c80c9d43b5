/* SPDX-License-Identifier: MIT */
/*
 * The PC's 8042 keyboard controller, reduced to what a guest needs from it
 * today: Linux's i8042 probe completes without waiting for timeouts, and
 * the 0xFE "pulse output port" command resets the machine. No keyboard or
 * mouse sits behind it (keyboard emulation is a separate piece of work):
 * bytes written to a device are dropped.
 *
 * Ports: offset 0 is the data port (0x60), offset 4 the status/command
 * port (0x64). Port 0x61 between them belongs to another device, so a VMM
 * registers two one-byte ranges and passes 0 or 4 (see the bus ops below).
 *
 * There is no AUX (mouse) port. Command 0xD3 (write AUX output buffer)
 * echoes its byte without the AUX status bit and 0xA9 (AUX interface test)
 * reports 0x02 (clock line stuck high): Linux's i8042_check_aux() takes
 * both as "no AUX port" at once instead of timing out.
 *
 * Locking: entry points take the device mutex; the keyboard irq line is
 * called with it held (lock order: i8042 -> interrupt controller). The
 * reset callback runs after the mutex is released, so it may reset
 * devices, this one included.
 */
#ifndef VMDEV_I8042_H
#define VMDEV_I8042_H

#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/device_manager.h"
#include "vmdev/irq.h"
#include "vmdev/log.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_I8042_PORT_DATA 0    /* port 0x60 */
#define VMDEV_I8042_PORT_COMMAND 4 /* port 0x64: status read, command write */

struct vmdev_i8042_config {
    /* IRQ1: high while the output buffer is full and the command byte
     * enables the keyboard interrupt (bit 0). */
    struct vmdev_irq_line kbd_irq;
    /* The CPU reset line was pulsed (0xFE, or output port bit 0 cleared). */
    void (*reset)(void *opaque);
    void *opaque;
    struct vmdev_log *log; /* where its lines go; NULL: stderr */
};

struct vmdev_i8042;

struct vmdev_i8042 *vmdev_i8042_new(const struct vmdev_i8042_config *config);
void vmdev_i8042_free(struct vmdev_i8042 *kbc);

/* offset is VMDEV_I8042_PORT_DATA or VMDEV_I8042_PORT_COMMAND; others
 * read 0xff and ignore writes. */
uint8_t vmdev_i8042_read(struct vmdev_i8042 *kbc, unsigned offset);
void vmdev_i8042_write(struct vmdev_i8042 *kbc, unsigned offset,
                       uint8_t value);

/* Bus glue for the two one-byte ranges: 0x60 with the data ops, 0x64 with
 * the command ops, VMDEV_ACCESS_1, the controller as opaque. */
extern const struct vmdev_bus_ops vmdev_i8042_data_bus_ops;
extern const struct vmdev_bus_ops vmdev_i8042_command_bus_ops;

void vmdev_i8042_save(struct vmdev_i8042 *kbc, struct vmdev_state_writer *w,
                      const char *name);
__attribute__((warn_unused_result))
int vmdev_i8042_restore(struct vmdev_i8042 *kbc, const void *data, size_t len,
                        const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_i8042_device_ops;

#ifdef __cplusplus
}
#endif

#endif
