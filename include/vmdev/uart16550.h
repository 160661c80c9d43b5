/* SPDX-License-Identifier: MIT */
/*
 * A National Semiconductor PC16550D-compatible UART ("16550A" to Linux's
 * 8250 driver): eight byte-wide registers at offsets 0-7, 16-byte FIFOs,
 * the divisor latch, modem control and loopback.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * output sink (or, in loopback, to the receive FIFO), so the transmitter is
 * always empty and the TX FIFO never holds anything. Reception is driven by
 * the VMM's input thread through vmdev_uart16550_receive(), which accepts
 * only what fits: host input applies back-pressure instead of overrunning.
 *
 * Character timeout (PC16550D "FIFO interrupt mode operation"): a real UART
 * signals a timeout when fewer bytes than the trigger level wait for four
 * character times with no activity. Here a receive() call delivers a burst
 * and the line is idle afterwards, so the timeout indication is immediate:
 * IIR reports "character timeout" (0xC) while 1..trigger-1 bytes wait and
 * "data available" (0x4) at or above the trigger level. No timer is needed.
 *
 * OUT2: on PC mainboards MCR OUT2 gates the UART's interrupt output onto
 * the ISA bus. This model raises its line regardless of OUT2, as QEMU does;
 * Linux sets OUT2 whenever it wants interrupts, so the difference is only
 * visible to a guest that expects silence with OUT2 clear.
 *
 * Locking: every entry point takes the device's own mutex. The interrupt
 * line and the output sink are called with it held (lock order: UART ->
 * interrupt controller / sink); neither may call back into this UART.
 */
#ifndef VMDEV_UART16550_H
#define VMDEV_UART16550_H

#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/device_manager.h"
#include "vmdev/irq.h"
#include "vmdev/state.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Register offsets (PC16550D Table II). With LCR.DLAB set, offsets 0 and 1
 * reach the divisor latch instead of RBR/THR and IER. */
enum vmdev_uart16550_reg {
    VMDEV_UART_RBR_THR = 0,
    VMDEV_UART_IER = 1,
    VMDEV_UART_IIR_FCR = 2,
    VMDEV_UART_LCR = 3,
    VMDEV_UART_MCR = 4,
    VMDEV_UART_LSR = 5,
    VMDEV_UART_MSR = 6,
    VMDEV_UART_SCR = 7,
};

#define VMDEV_UART16550_REGS 8
#define VMDEV_UART16550_FIFO_SIZE 16
/* The crystal of PC serial ports; baud = clock / (16 * divisor). */
#define VMDEV_UART16550_CLOCK_HZ 1843200u

/* Modem input lines as they appear in MSR bits 4-7. */
#define VMDEV_UART_MSR_CTS 0x10
#define VMDEV_UART_MSR_DSR 0x20
#define VMDEV_UART_MSR_RI 0x40
#define VMDEV_UART_MSR_DCD 0x80

/* Where transmitted bytes go. Called once per byte, lock held. */
struct vmdev_byte_sink {
    void (*write)(void *opaque, uint8_t byte);
    void *opaque;
};

/* The receiver takes host input again (vmdev_uart16550_rx_accepting). */
struct vmdev_uart16550_rx_ready {
    void (*ready)(void *opaque);
    void *opaque;
};

struct vmdev_uart16550_config {
    struct vmdev_irq_line irq;   /* level, active high */
    struct vmdev_byte_sink sink; /* may be empty: output is dropped */
    /* May be empty. Called with the lock held, on the thread of the
     * guest's register access; it must not call into this UART. */
    struct vmdev_uart16550_rx_ready rx_ready;
    /* Initial modem inputs (VMDEV_UART_MSR_*); a null-modem host side
     * typically asserts CTS | DSR | DCD. */
    uint8_t modem_inputs;
};

struct vmdev_uart16550;

/* NULL on allocation failure. The device starts in its reset state. */
struct vmdev_uart16550 *
vmdev_uart16550_new(const struct vmdev_uart16550_config *config);
void vmdev_uart16550_free(struct vmdev_uart16550 *uart);

/* Register access; offsets >= 8 read 0xff and ignore writes. */
uint8_t vmdev_uart16550_read(struct vmdev_uart16550 *uart, unsigned offset);
void vmdev_uart16550_write(struct vmdev_uart16550 *uart, unsigned offset,
                           uint8_t value);

/* Bus glue: register 8 ports with VMDEV_ACCESS_1 and the UART as opaque. */
extern const struct vmdev_bus_ops vmdev_uart16550_bus_ops;

/*
 * Host input: queue up to len bytes; returns how many were accepted (the
 * free FIFO space, or 1 for an empty holding register with FIFOs off).
 * Ignored while in loopback (the receiver is fed by the transmitter then),
 * returning 0.
 */
size_t vmdev_uart16550_receive(struct vmdev_uart16550 *uart,
                               const uint8_t *buf, size_t len);
/* Bytes receive() would accept now, for back-pressure on the input. */
size_t vmdev_uart16550_rx_space(struct vmdev_uart16550 *uart);
/*
 * Bytes the guest's driver is ready for: the free FIFO space while the
 * received-data interrupt and the FIFOs are enabled, else 0. Linux's 8250
 * driver enables both when the port is opened, the interrupt first; the
 * FIFOs' enabling clears them, so input given before then would be lost
 * (a driver that never enables the FIFOs gets none this way; rx_space()
 * is the plain room). After a 0, config.rx_ready is called once it is no
 * longer 0 (the guest read a byte, or enabled what was missing), for a
 * host to resume feeding input without polling.
 */
size_t vmdev_uart16550_rx_accepting(struct vmdev_uart16550 *uart);

/* Change the modem input lines (VMDEV_UART_MSR_*); sets the MSR delta
 * bits for lines that changed (RI on its trailing edge only). */
void vmdev_uart16550_set_modem_inputs(struct vmdev_uart16550 *uart,
                                      uint8_t lines);

/* The programmed baud rate, 0 while the divisor latch holds 0. */
uint32_t vmdev_uart16550_baud(struct vmdev_uart16550 *uart);

/* Save into a section called name (e.g. "uart0"); restore validates every
 * value and leaves the device untouched on error (-ENOENT, -EINVAL). */
void vmdev_uart16550_save(struct vmdev_uart16550 *uart,
                          struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_uart16550_restore(struct vmdev_uart16550 *uart, const void *data,
                            size_t len, const char *name);

/* For a device-manager entry whose opaque is the device: destroy frees
 * it, save and restore take its state under the entry's id. */
extern const struct vmdev_device_ops vmdev_uart16550_device_ops;

#ifdef __cplusplus
}
#endif

#endif
