/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART against the PC16550D datasheet and the probing sequence of
 * Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c).
 */
#include "test.h"
#include "platform_fakes.h"
#include "vmdev/uart16550.h"

#include <errno.h>
#include <pthread.h>

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2,
       LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct sink {
    uint8_t bytes[64];
    unsigned count;
};

static void sink_write(void *opaque, uint8_t byte)
{
    struct sink *s = opaque;
    if (s->count < sizeof(s->bytes))
        s->bytes[s->count] = byte;
    s->count++;
}

struct rig {
    struct fake_irq irq;
    struct sink sink;
    struct vmdev_uart16550 *uart;
};

static void rig_init(struct rig *r, uint8_t modem_inputs)
{
    memset(r, 0, sizeof(*r));
    struct vmdev_uart16550_config cfg = {
        .irq = fake_irq_line(&r->irq),
        .sink = { sink_write, &r->sink },
        .modem_inputs = modem_inputs,
    };
    r->uart = vmdev_uart16550_new(&cfg);
}

static uint8_t rd(struct rig *r, unsigned off)
{
    return vmdev_uart16550_read(r->uart, off);
}

static void wr(struct rig *r, unsigned off, uint8_t v)
{
    vmdev_uart16550_write(r->uart, off, v);
}

static void reset_state(void)
{
    struct rig r;
    rig_init(&r, VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR | VMDEV_UART_MSR_DCD);
    CHECK(r.uart);
    CHECK_EQ(rd(&r, IER), 0);
    CHECK_EQ(rd(&r, IIR), 0x01);
    CHECK_EQ(rd(&r, LCR), 0);
    CHECK_EQ(rd(&r, MCR), 0);
    CHECK_EQ(rd(&r, LSR), 0x60); /* THRE | TEMT */
    CHECK_EQ(rd(&r, MSR), 0xb0); /* DCD | DSR | CTS, no deltas */
    CHECK(!r.irq.level);
    wr(&r, SCR, 0xa5);
    CHECK_EQ(rd(&r, SCR), 0xa5);
    CHECK_EQ(rd(&r, 8), 0xff);
    vmdev_uart16550_free(r.uart);
}

static void divisor_latch_and_baud(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, IER, 0x05);
    wr(&r, LCR, 0x83); /* DLAB, 8N1 */
    wr(&r, DLL, 0x01);
    wr(&r, DLM, 0x00);
    CHECK_EQ(vmdev_uart16550_baud(r.uart), 115200);
    CHECK_EQ(rd(&r, DLL), 0x01);
    wr(&r, DLL, 0x80);
    wr(&r, DLM, 0x01); /* 384 */
    CHECK_EQ(vmdev_uart16550_baud(r.uart), 300);
    wr(&r, DLL, 0);
    wr(&r, DLM, 0);
    CHECK_EQ(vmdev_uart16550_baud(r.uart), 0);
    wr(&r, DLL, 12);
    wr(&r, LCR, 0x03);
    CHECK_EQ(vmdev_uart16550_baud(r.uart), 9600);
    /* The latch writes did not reach IER or THR. */
    CHECK_EQ(rd(&r, IER), 0x05);
    CHECK_EQ(r.sink.count, 0);
    vmdev_uart16550_free(r.uart);
}

/* autoconfig(), autoconfig_16550a() and size_fifo() step by step. */
static void linux_autoconfig_sees_16550a(void)
{
    struct rig r;
    rig_init(&r, VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR | VMDEV_UART_MSR_DCD);
    /* IER existence test: bits 0-3 read back exactly. */
    wr(&r, IER, 0);
    CHECK_EQ(rd(&r, IER) & 0x0f, 0);
    wr(&r, IER, 0x0f);
    CHECK_EQ(rd(&r, IER) & 0x0f, 0x0f);
    wr(&r, IER, 0);
    /* Loopback test: MCR = LOOP | OUT2 | RTS gives DCD | CTS. */
    uint8_t save_mcr = rd(&r, MCR);
    wr(&r, MCR, 0x10 | 0x0a);
    CHECK_EQ(rd(&r, MSR) & 0xf0, 0x90);
    wr(&r, MCR, save_mcr);
    /* FIFO type: IIR bits 7:6 = 11 after FCR enable. */
    wr(&r, LCR, 0xbf);
    wr(&r, FCR, 0); /* the EFR write lands on FCR here */
    wr(&r, LCR, 0);
    wr(&r, FCR, 0x01);
    CHECK_EQ(rd(&r, IIR) >> 6, 3);
    /* No EFR with DLAB set (a 16650 would read 0 here) nor with 0xBF. */
    wr(&r, LCR, 0x80);
    CHECK(rd(&r, IIR) != 0);
    wr(&r, LCR, 0xbf);
    CHECK(rd(&r, IIR) != 0);
    /* Not a National SuperIO: "EXCR1" never mirrors MCR LOOP. */
    wr(&r, LCR, 0);
    uint8_t status1 = rd(&r, MCR);
    wr(&r, LCR, 0xe0);
    CHECK_EQ((rd(&r, 2) ^ status1) & 0x10, 0);
    wr(&r, LCR, 0);
    wr(&r, MCR, status1 ^ 0x10);
    wr(&r, LCR, 0xe0);
    uint8_t status2 = rd(&r, 2);
    wr(&r, LCR, 0);
    wr(&r, MCR, status1);
    CHECK_EQ((status2 ^ status1) & 0x10, 0);
    /* Not a TI16750: FCR bit 5 never shows as IIR bit 5, DLAB or not. */
    wr(&r, LCR, 0);
    wr(&r, FCR, 0x21);
    CHECK_EQ(rd(&r, IIR) & 0xe0, 0xc0);
    wr(&r, FCR, 0x01);
    wr(&r, LCR, 0x80);
    wr(&r, FCR, 0x21);
    CHECK_EQ(rd(&r, IIR) & 0xe0, 0xc0);
    wr(&r, FCR, 0x01);
    wr(&r, LCR, 0);
    /* Not an XScale: IER bit 6 (UUE) does not stick. */
    wr(&r, IER, 0x40);
    CHECK_EQ(rd(&r, IER), 0);
    /* size_fifo(): 256 bytes through loopback at divisor 1 leave 16. */
    wr(&r, FCR, 0x07);
    wr(&r, MCR, 0x10);
    wr(&r, LCR, 0x80);
    wr(&r, DLL, 1);
    wr(&r, DLM, 0);
    wr(&r, LCR, 0x03);
    for (unsigned i = 0; i < 256; i++)
        wr(&r, THR, (uint8_t)i);
    unsigned count = 0;
    while ((rd(&r, LSR) & 0x01) && count < 256) {
        CHECK_EQ(rd(&r, RBR), count);
        count++;
    }
    CHECK_EQ(count, 16);
    CHECK_EQ(r.sink.count, 0);
    /* serial8250_do_startup's LSR safety check. */
    CHECK(rd(&r, LSR) != 0xff);
    vmdev_uart16550_free(r.uart);
}

/* The UART_BUG_THRE and UART_BUG_TXEN tests of serial8250_do_startup. */
static void thre_interrupt_semantics(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, IER, 0x02);
    CHECK(r.irq.level);
    uint8_t iir1 = rd(&r, IIR);
    CHECK_EQ(iir1, 0x02);
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x01); /* the read that reported THRE cleared it */
    wr(&r, IER, 0);
    wr(&r, IER, 0x02);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x02); /* re-asserted on re-enable */
    /* Rewriting IER with ETBEI already set does not re-raise it. */
    wr(&r, IER, 0x02);
    CHECK(!r.irq.level);
    /* Each transmitted byte empties THR again: THRE once more. */
    wr(&r, THR, 'h');
    CHECK(r.irq.level);
    CHECK_EQ(r.sink.count, 1);
    CHECK_EQ(r.sink.bytes[0], 'h');
    wr(&r, FCR, 0x01);
    CHECK_EQ(rd(&r, IIR), 0xc2);
    CHECK(!r.irq.level);
    /* Disabling ETBEI withdraws a pending THRE. */
    wr(&r, THR, 'i');
    CHECK(r.irq.level);
    wr(&r, IER, 0);
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0xc1);
    vmdev_uart16550_free(r.uart);
}

static void rx_fifo_trigger_and_timeout(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, FCR, 0x41); /* enable, trigger level 4 */
    wr(&r, IER, 0x01);
    CHECK_EQ(vmdev_uart16550_rx_space(r.uart), 16);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, (const uint8_t *)"abc", 3), 3);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0xcc); /* below trigger: character timeout */
    CHECK_EQ(vmdev_uart16550_receive(r.uart, (const uint8_t *)"d", 1), 1);
    CHECK_EQ(rd(&r, IIR), 0xc4); /* trigger level reached */
    CHECK_EQ(rd(&r, LSR), 0x61);
    CHECK_EQ(rd(&r, RBR), 'a');
    CHECK_EQ(rd(&r, IIR), 0xcc);
    CHECK_EQ(rd(&r, RBR), 'b');
    CHECK_EQ(rd(&r, RBR), 'c');
    CHECK_EQ(rd(&r, RBR), 'd');
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, LSR), 0x60);
    CHECK_EQ(rd(&r, RBR), 'd'); /* empty: the last byte again */

    /* Trigger levels 1, 8 and 14. */
    static const uint8_t fcr[3] = { 0x01, 0x81, 0xc1 };
    static const unsigned level[3] = { 1, 8, 14 };
    uint8_t buf[16];
    memset(buf, 'x', sizeof(buf));
    for (unsigned i = 0; i < 3; i++) {
        wr(&r, FCR, fcr[i] | 0x02);
        vmdev_uart16550_receive(r.uart, buf, level[i] - 1);
        CHECK_EQ(rd(&r, IIR), level[i] == 1 ? 0xc1 : 0xcc);
        vmdev_uart16550_receive(r.uart, buf, 1);
        CHECK_EQ(rd(&r, IIR), 0xc4);
    }
    /* Back-pressure: the FIFO takes 16 bytes at most. */
    wr(&r, FCR, 0xc3);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, buf, 10), 10);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, buf, 10), 6);
    CHECK_EQ(vmdev_uart16550_rx_space(r.uart), 0);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, buf, 1), 0);
    CHECK_EQ(rd(&r, LSR) & 0x02, 0); /* host input never overruns */
    vmdev_uart16550_free(r.uart);
}

static void count_ready(void *opaque)
{
    (*(unsigned *)opaque)++;
}

/*
 * Host input waits for a driver that takes it (Linux's 8250 enables the
 * received-data interrupt when the port opens, right after clearing the
 * FIFO), and the host is told once when the guest can take more, so it
 * need not poll a full FIFO.
 */
static void rx_ready_tells_a_refused_host_once(void)
{
    struct rig r;
    memset(&r, 0, sizeof(r));
    unsigned ready = 0;
    struct vmdev_uart16550_config cfg = {
        .irq = fake_irq_line(&r.irq),
        .rx_ready = { count_ready, &ready },
    };
    r.uart = vmdev_uart16550_new(&cfg);
    CHECK(r.uart);
    /* Linux's 8250 startup: the interrupt on, then (set_termios) the
     * FIFOs, whose enabling clears them. */
    CHECK_EQ(vmdev_uart16550_rx_space(r.uart), 1);
    CHECK_EQ(vmdev_uart16550_rx_accepting(r.uart), 0); /* not listening */
    wr(&r, LCR, 0x03);
    wr(&r, IER, 0x05); /* RDA | RLS */
    CHECK_EQ(ready, 0);
    CHECK_EQ(vmdev_uart16550_rx_accepting(r.uart), 0); /* FIFOs still off */
    wr(&r, FCR, 0x81); /* FIFOs on, trigger 8 */
    CHECK_EQ(ready, 1);
    CHECK_EQ(vmdev_uart16550_rx_accepting(r.uart), 16);
    uint8_t buf[16];
    memset(buf, 'y', sizeof(buf));
    CHECK_EQ(vmdev_uart16550_receive(r.uart, buf, 16), 16);
    CHECK_EQ(vmdev_uart16550_rx_accepting(r.uart), 0); /* full */
    CHECK_EQ(rd(&r, LSR) & 0x01, 1); /* no byte read: still full */
    CHECK_EQ(ready, 1);
    CHECK_EQ(rd(&r, RBR), 'y');
    CHECK_EQ(ready, 2);
    CHECK_EQ(rd(&r, RBR), 'y'); /* told once per refusal */
    CHECK_EQ(ready, 2);
    CHECK_EQ(vmdev_uart16550_rx_accepting(r.uart), 2);
    vmdev_uart16550_free(r.uart);
}

static void fifo_reset_and_16450_mode(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, FCR, 0x01);
    vmdev_uart16550_receive(r.uart, (const uint8_t *)"xyz", 3);
    wr(&r, FCR, 0x03); /* RX reset */
    CHECK_EQ(rd(&r, LSR) & 0x01, 0);
    vmdev_uart16550_receive(r.uart, (const uint8_t *)"xyz", 3);
    wr(&r, FCR, 0x00); /* clearing FCR0 empties the FIFOs */
    CHECK_EQ(rd(&r, LSR) & 0x01, 0);
    CHECK_EQ(rd(&r, IIR) & 0xc0, 0);
    /* Other FCR bits without FCR0 are not programmed. */
    wr(&r, FCR, 0xc0);
    CHECK_EQ(rd(&r, IIR) & 0xc0, 0);
    /* 16450 mode: a single holding register. */
    wr(&r, IER, 0x01);
    CHECK_EQ(vmdev_uart16550_rx_space(r.uart), 1);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, (const uint8_t *)"pq", 2), 1);
    CHECK_EQ(rd(&r, IIR), 0x04);
    CHECK_EQ(rd(&r, RBR), 'p');
    CHECK_EQ(rd(&r, IIR), 0x01);
    vmdev_uart16550_free(r.uart);
}

static void interrupt_priorities(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, MCR, 0x10); /* loopback, FIFOs off */
    wr(&r, THR, 1);
    wr(&r, THR, 2); /* overwrites RBR: overrun (LSR bit 1) */
    wr(&r, MCR, 0x11); /* DTR -> DSR: a modem status change */
    wr(&r, IER, 0x0f);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x06); /* line status first */
    CHECK_EQ(rd(&r, LSR), 0x63); /* OE | DR | THRE | TEMT; read clears OE */
    CHECK_EQ(rd(&r, IIR), 0x04); /* then received data */
    CHECK_EQ(rd(&r, RBR), 2);
    CHECK_EQ(rd(&r, IIR), 0x02); /* then THRE, cleared by this read */
    CHECK_EQ(rd(&r, IIR), 0x00); /* then modem status */
    CHECK_EQ(rd(&r, MSR), 0x22); /* DSR | DDSR */
    CHECK_EQ(rd(&r, IIR), 0x01);
    CHECK(!r.irq.level);
    /* Overrun with FIFOs on: the 17th byte is lost, the FIFO kept. */
    wr(&r, FCR, 0x01);
    for (unsigned i = 0; i < 17; i++)
        wr(&r, THR, (uint8_t)i);
    CHECK_EQ(rd(&r, IIR), 0xc6);
    CHECK_EQ(rd(&r, LSR), 0x63);
    CHECK_EQ(rd(&r, LSR), 0x61);
    for (unsigned i = 0; i < 16; i++)
        CHECK_EQ(rd(&r, RBR), i);
    vmdev_uart16550_free(r.uart);
}

static void modem_status_deltas(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, IER, 0x08);
    vmdev_uart16550_set_modem_inputs(r.uart, VMDEV_UART_MSR_CTS |
                                                 VMDEV_UART_MSR_RI);
    CHECK(r.irq.level);
    CHECK_EQ(rd(&r, IIR), 0x00);
    CHECK_EQ(rd(&r, MSR), 0x51); /* RI | CTS | DCTS; RI rising is no TERI */
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, MSR), 0x50);
    vmdev_uart16550_set_modem_inputs(r.uart, VMDEV_UART_MSR_DSR |
                                                 VMDEV_UART_MSR_DCD);
    CHECK_EQ(rd(&r, MSR), 0xa0 | 0x08 | 0x04 | 0x02 | 0x01);
    /* Without EDSSI the deltas are recorded but raise nothing. */
    wr(&r, IER, 0);
    vmdev_uart16550_set_modem_inputs(r.uart, 0);
    CHECK(!r.irq.level);
    CHECK_EQ(rd(&r, MSR), 0x0a);
    vmdev_uart16550_free(r.uart);
}

static void loopback_routes_tx_to_rx(void)
{
    struct rig r;
    rig_init(&r, VMDEV_UART_MSR_DCD);
    wr(&r, MCR, 0x10 | 0x0f); /* LOOP, OUT2, OUT1, RTS, DTR */
    CHECK_EQ(rd(&r, MSR) & 0xf0, 0xf0);
    wr(&r, MCR, 0x10);
    CHECK_EQ(rd(&r, MSR), 0x0f); /* all four fell: deltas, TERI */
    CHECK_EQ(vmdev_uart16550_rx_space(r.uart), 0);
    CHECK_EQ(vmdev_uart16550_receive(r.uart, (const uint8_t *)"n", 1), 0);
    wr(&r, THR, 'L');
    CHECK_EQ(r.sink.count, 0);
    CHECK_EQ(rd(&r, LSR) & 0x01, 1);
    CHECK_EQ(rd(&r, RBR), 'L');
    /* Leaving loopback: the external lines come back (DCD). */
    wr(&r, MCR, 0);
    CHECK_EQ(rd(&r, MSR), 0x88);
    wr(&r, THR, 'T');
    CHECK_EQ(r.sink.count, 1);
    CHECK_EQ(rd(&r, MCR), 0);
    wr(&r, MCR, 0xff);
    CHECK_EQ(rd(&r, MCR), 0x1f);
    vmdev_uart16550_free(r.uart);
}

static void save_restore_round_trip(void)
{
    struct rig a, b;
    rig_init(&a, VMDEV_UART_MSR_CTS);
    rig_init(&b, 0);
    wr(&a, LCR, 0x80);
    wr(&a, DLL, 3);
    wr(&a, DLM, 0);
    wr(&a, LCR, 0x1b);
    wr(&a, FCR, 0x81);
    wr(&a, IER, 0x0b);
    wr(&a, SCR, 0x5c);
    wr(&a, MCR, 0x0b);
    vmdev_uart16550_receive(a.uart, (const uint8_t *)"0123456789", 10);
    CHECK_EQ(rd(&a, RBR), '0'); /* move the FIFO head off zero */
    vmdev_uart16550_receive(a.uart, (const uint8_t *)"ABCDEFGHI", 9);

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_uart16550_save(a.uart, &w, "uart0");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_uart16550_restore(b.uart, w.data, w.len, "uart0"), 0);
    CHECK(b.irq.level);
    CHECK_EQ(vmdev_uart16550_baud(b.uart), 38400);
    for (unsigned off = 1; off < 8; off++)
        if (off != IIR && off != LSR && off != MSR)
            CHECK_EQ(rd(&b, off), rd(&a, off));
    CHECK_EQ(rd(&b, MSR), rd(&a, MSR));
    while (rd(&a, LSR) & 0x01) {
        CHECK_EQ(rd(&b, IIR), rd(&a, IIR));
        CHECK_EQ(rd(&b, LSR), 0x61);
        CHECK_EQ(rd(&b, RBR), rd(&a, RBR));
    }
    CHECK_EQ(rd(&b, LSR), 0x60);
    CHECK_EQ(rd(&b, IIR), rd(&a, IIR));
    CHECK_EQ(rd(&b, IIR), rd(&a, IIR));
    CHECK_EQ(vmdev_uart16550_restore(b.uart, w.data, w.len, "uart1"), -ENOENT);
    vmdev_state_writer_release(&w);

    /* A FIFO count beyond the FIFO is refused and changes nothing. */
    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "uart0", 1);
    static const char *const keys[] = { "ier", "lcr", "mcr", "scr", "dll",
                                        "dlm", "lsr_errors", "msr_deltas",
                                        "modem_inputs", "thre_pending",
                                        "last_rbr" };
    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        vmdev_state_put_u8(&w, keys[i], 0);
    vmdev_state_put_u8(&w, "fcr", 0x01);
    vmdev_state_put_u8(&w, "rx_count", 17);
    uint8_t fifo[16] = { 0 };
    vmdev_state_put_bytes(&w, "rx_fifo", fifo, sizeof(fifo));
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_uart16550_restore(b.uart, w.data, w.len, "uart0"), -EINVAL);
    CHECK_EQ(rd(&b, SCR), 0x5c);
    vmdev_state_writer_release(&w);
    vmdev_uart16550_free(a.uart);
    vmdev_uart16550_free(b.uart);
}

/* An input thread and a vCPU thread at once: every byte arrives, in
 * order, with back-pressure instead of loss. */
#define STREAM_LEN 5000

static void *producer(void *opaque)
{
    struct vmdev_uart16550 *uart = opaque;
    for (unsigned i = 0; i < STREAM_LEN;) {
        uint8_t byte = (uint8_t)(i * 7);
        i += (unsigned)vmdev_uart16550_receive(uart, &byte, 1);
    }
    return NULL;
}

static void concurrent_receive_and_read(void)
{
    struct rig r;
    rig_init(&r, 0);
    wr(&r, FCR, 0x01);
    pthread_t thread;
    CHECK_EQ(pthread_create(&thread, NULL, producer, r.uart), 0);
    unsigned got = 0;
    bool in_order = true;
    while (got < STREAM_LEN) {
        if (rd(&r, LSR) & 0x01) {
            in_order &= rd(&r, RBR) == (uint8_t)(got * 7);
            got++;
        }
    }
    pthread_join(thread, NULL);
    CHECK(in_order);
    CHECK_EQ(rd(&r, LSR) & 0x03, 0);
    vmdev_uart16550_free(r.uart);
}

TEST_MAIN(TEST(reset_state), TEST(divisor_latch_and_baud),
          TEST(linux_autoconfig_sees_16550a), TEST(thre_interrupt_semantics),
          TEST(rx_fifo_trigger_and_timeout),
          TEST(rx_ready_tells_a_refused_host_once),
          TEST(fifo_reset_and_16450_mode),
          TEST(interrupt_priorities), TEST(modem_status_deltas),
          TEST(loopback_routes_tx_to_rx), TEST(save_restore_round_trip),
          TEST(concurrent_receive_and_read))
