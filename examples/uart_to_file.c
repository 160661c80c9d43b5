/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART whose output goes to a file: the port bus a VMM dispatches
 * its port exits to, the UART mapped at COM1, and a few register writes
 * as a guest's driver would make them (8N1 at 115200 baud, then the
 * bytes). The file must then hold exactly those bytes.
 *
 *   uart_to_file FILE
 */
#include <stdio.h>
#include <string.h>
#include <vmdev/vmdev.h>

#define COM1 0x3f8

/* The UART's output sink: each byte the guest transmits. */
static void write_to_file(void *opaque, uint8_t byte)
{
    fputc(byte, (FILE *)opaque);
}

static void outb(struct vmdev_bus *pio, uint16_t port, uint8_t value)
{
    vmdev_bus_write(pio, port, 1, value);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    struct vmdev_uart16550_config config = {
        .sink = { write_to_file, out },
        .modem_inputs = VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR |
                        VMDEV_UART_MSR_DCD,
    };
    struct vmdev_uart16550 *uart = vmdev_uart16550_new(&config);
    struct vmdev_bus *pio = vmdev_bus_new("pio", 0xffff);
    if (!uart || !pio ||
        vmdev_bus_register(pio, COM1, VMDEV_UART16550_REGS, VMDEV_ACCESS_1,
                           &vmdev_uart16550_bus_ops, uart)) {
        fprintf(stderr, "cannot set up the UART\n");
        return 1;
    }

    /* The guest's driver: divisor 1 (115200 baud), 8 bits, no parity,
     * one stop bit, FIFOs on; then its message. */
    outb(pio, COM1 + VMDEV_UART_LCR, 0x80);
    outb(pio, COM1 + VMDEV_UART_RBR_THR, 1);
    outb(pio, COM1 + VMDEV_UART_IER, 0);
    outb(pio, COM1 + VMDEV_UART_LCR, 0x03);
    outb(pio, COM1 + VMDEV_UART_IIR_FCR, 0x07);
    const char message[] = "hello from the guest\n";
    for (size_t i = 0; i < strlen(message); i++)
        outb(pio, COM1 + VMDEV_UART_RBR_THR, (uint8_t)message[i]);

    vmdev_bus_free(pio);
    vmdev_uart16550_free(uart);
    if (fclose(out))
        return 1;

    /* What the file holds. */
    char got[64] = "";
    FILE *in = fopen(argv[1], "r");
    size_t n = in ? fread(got, 1, sizeof(got) - 1, in) : 0;
    if (in)
        fclose(in);
    if (n != strlen(message) || memcmp(got, message, n)) {
        fprintf(stderr, "uart_to_file: the file holds %zu bytes, not the "
                "message\n", n);
        return 1;
    }
    printf("uart_to_file: %s holds the guest's %zu bytes\n", argv[1], n);
    return 0;
}
