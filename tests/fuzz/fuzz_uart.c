/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART: any sequence of guest register accesses, host input and
 * modem line changes; and the input itself as a saved-state buffer.
 * Whatever happens, a device's own snapshot must restore.
 */
#include "vmdev/uart16550.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore_level(void *opaque, bool level)
{
    (void)opaque;
    (void)level;
}

static void ignore_byte(void *opaque, uint8_t byte)
{
    (void)opaque;
    (void)byte;
}

static struct vmdev_uart16550 *make(void)
{
    struct vmdev_uart16550_config cfg = {
        .irq = { ignore_level, NULL },
        .sink = { ignore_byte, NULL },
        .modem_inputs = VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DCD,
    };
    return vmdev_uart16550_new(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmdev_uart16550 *uart = make();
    if (!uart)
        return 0;
    (void)!vmdev_uart16550_restore(uart, data, size, "uart0");

    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t op = data[i], arg = data[i + 1];
        i += 2;
        switch (op & 3) {
        case 0:
            vmdev_uart16550_read(uart, op >> 2 & 15);
            break;
        case 1:
            vmdev_uart16550_write(uart, op >> 2 & 15, arg);
            break;
        case 2: {
            size_t n = arg % 24;
            if (n > size - i)
                n = size - i;
            vmdev_uart16550_receive(uart, data + i, n);
            i += n;
            break;
        }
        default:
            vmdev_uart16550_set_modem_inputs(uart, arg);
            (void)vmdev_uart16550_rx_space(uart);
            (void)vmdev_uart16550_baud(uart);
            break;
        }
    }

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_uart16550_save(uart, &w, "uart0");
    if (!vmdev_state_writer_finish(&w)) {
        struct vmdev_uart16550 *copy = make();
        if (copy && vmdev_uart16550_restore(copy, w.data, w.len, "uart0"))
            __builtin_trap();
        vmdev_uart16550_free(copy);
    }
    vmdev_state_writer_release(&w);
    vmdev_uart16550_free(uart);
    return 0;
}
