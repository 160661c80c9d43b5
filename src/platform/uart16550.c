/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART. Section references are to the National Semiconductor
 * PC16550D datasheet ("Register Description", Tables II-IV).
 */
#include "device_entry.h"
#include "vmdev/uart16550.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define IER_RDA 0x01  /* ERBFI: received data available */
#define IER_THRE 0x02 /* ETBEI: transmitter holding register empty */
#define IER_RLS 0x04  /* ELSI: receiver line status */
#define IER_MS 0x08   /* EDSSI: modem status */
#define IER_MASK 0x0f /* bits 4-7 are always 0 */

#define IIR_NONE 0x01
#define IIR_MS 0x00
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_RLS 0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_RX_RESET 0x02
#define FCR_TX_RESET 0x04
#define FCR_DMA_MODE 0x08
#define FCR_TRIGGER_SHIFT 6

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 5-7 are always 0 */

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_LINES 0xf0

#define STATE_VERSION 1

/* Everything the guest can observe; what save/restore carries. */
struct uart_regs {
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    uint8_t fcr;          /* enable, DMA mode and trigger bits as written */
    uint8_t lsr_errors;   /* OE/PE/FE/BI, cleared by reading LSR */
    uint8_t msr_deltas;   /* MSR bits 0-3, cleared by reading MSR */
    uint8_t modem_inputs; /* external CTS/DSR/RI/DCD (MSR bits 4-7) */
    bool thre_pending;    /* THRE interrupt condition, see write_ier */
    uint8_t rx_fifo[VMDEV_UART16550_FIFO_SIZE];
    uint8_t rx_head, rx_count; /* with FIFOs off, rx_count is 0 or 1 */
    uint8_t last_rbr;          /* RBR reads this once the receiver is empty */
};

struct vmdev_uart16550 {
    pthread_mutex_t lock;
    struct vmdev_irq_line irq;
    struct vmdev_byte_sink sink;
    struct vmdev_uart16550_rx_ready rx_ready;
    bool host_waiting; /* rx_accepting() said 0: call rx_ready when not */

    struct uart_regs r;
};

static bool fifo_enabled(const struct vmdev_uart16550 *u)
{
    return u->r.fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct vmdev_uart16550 *u)
{
    return fifo_enabled(u) ? VMDEV_UART16550_FIFO_SIZE : 1;
}

/* FCR bits 6-7 select the receiver trigger level: 1, 4, 8 or 14 bytes. */
static unsigned rx_trigger(const struct vmdev_uart16550 *u)
{
    static const uint8_t levels[4] = { 1, 4, 8, 14 };
    return levels[u->r.fcr >> FCR_TRIGGER_SHIFT];
}

/* In loopback the modem inputs are wired to the modem outputs (MCR bit 4
 * description): CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2. */
static uint8_t current_lines(const struct vmdev_uart16550 *u)
{
    if (!(u->r.mcr & MCR_LOOP))
        return u->r.modem_inputs;
    uint8_t lines = 0;
    if (u->r.mcr & MCR_RTS)
        lines |= VMDEV_UART_MSR_CTS;
    if (u->r.mcr & MCR_DTR)
        lines |= VMDEV_UART_MSR_DSR;
    if (u->r.mcr & MCR_OUT1)
        lines |= VMDEV_UART_MSR_RI;
    if (u->r.mcr & MCR_OUT2)
        lines |= VMDEV_UART_MSR_DCD;
    return lines;
}

static uint8_t line_deltas(uint8_t before, uint8_t after)
{
    uint8_t changed = before ^ after, deltas = 0;
    if (changed & VMDEV_UART_MSR_CTS)
        deltas |= MSR_DCTS;
    if (changed & VMDEV_UART_MSR_DSR)
        deltas |= MSR_DDSR;
    /* TERI: RI changed from on to off only. */
    if ((before & VMDEV_UART_MSR_RI) && !(after & VMDEV_UART_MSR_RI))
        deltas |= MSR_TERI;
    if (changed & VMDEV_UART_MSR_DCD)
        deltas |= MSR_DDCD;
    return deltas;
}

/*
 * The pending interrupt of highest priority (Table IV): receiver line
 * status, then received data or character timeout, then THR empty, then
 * modem status. Each is gated by its IER bit.
 */
static uint8_t pending_iir(const struct vmdev_uart16550 *u)
{
    if ((u->r.ier & IER_RLS) && (u->r.lsr_errors & LSR_ERRORS))
        return IIR_RLS;
    if ((u->r.ier & IER_RDA) && u->r.rx_count) {
        if (!fifo_enabled(u) || u->r.rx_count >= rx_trigger(u))
            return IIR_RDA;
        return IIR_TIMEOUT;
    }
    if ((u->r.ier & IER_THRE) && u->r.thre_pending)
        return IIR_THRE;
    if ((u->r.ier & IER_MS) && u->r.msr_deltas)
        return IIR_MS;
    return IIR_NONE;
}

static void update_irq(struct vmdev_uart16550 *u)
{
    vmdev_irq_set(&u->irq, pending_iir(u) != IIR_NONE);
}

static void rx_clear(struct vmdev_uart16550 *u)
{
    u->r.rx_head = 0;
    u->r.rx_count = 0;
}

/* One character arrives at the receiver. Returns false if it was lost. */
static bool rx_push(struct vmdev_uart16550 *u, uint8_t byte)
{
    if (u->r.rx_count < rx_capacity(u)) {
        unsigned tail = (u->r.rx_head + u->r.rx_count) % VMDEV_UART16550_FIFO_SIZE;
        u->r.rx_fifo[tail] = byte;
        u->r.rx_count++;
        return true;
    }
    /* LSR bit 1: with FIFOs off the new character overwrites RBR; with
     * FIFOs on it stays in the shift register and is lost. */
    u->r.lsr_errors |= LSR_OE;
    if (!fifo_enabled(u))
        u->r.rx_fifo[u->r.rx_head] = byte;
    return false;
}

static uint8_t rx_pop(struct vmdev_uart16550 *u)
{
    if (!u->r.rx_count)
        return u->r.last_rbr;
    u->r.last_rbr = u->r.rx_fifo[u->r.rx_head];
    u->r.rx_head = (u->r.rx_head + 1) % VMDEV_UART16550_FIFO_SIZE;
    u->r.rx_count--;
    return u->r.last_rbr;
}

static void transmit(struct vmdev_uart16550 *u, uint8_t byte)
{
    /* Writing THR clears the THRE interrupt (Table IV); the byte leaves at
     * once, THR is empty again and THRE is raised anew. */
    if (u->r.mcr & MCR_LOOP)
        rx_push(u, byte);
    else if (u->sink.write)
        u->sink.write(u->sink.opaque, byte);
    u->r.thre_pending = true;
}

static void write_fcr(struct vmdev_uart16550 *u, uint8_t value)
{
    /* FCR0 must be set for the other bits to be programmed; changing
     * FCR0 clears both FIFOs ("FIFO Control Register"). */
    if ((value ^ u->r.fcr) & FCR_ENABLE)
        rx_clear(u);
    if (!(value & FCR_ENABLE)) {
        u->r.fcr = 0;
        return;
    }
    if (value & FCR_RX_RESET)
        rx_clear(u);
    /* FCR_TX_RESET: the transmit FIFO is always empty here. */
    u->r.fcr = value & (FCR_ENABLE | FCR_DMA_MODE | (3u << FCR_TRIGGER_SHIFT));
}

static void write_ier(struct vmdev_uart16550 *u, uint8_t value)
{
    uint8_t old = u->r.ier;
    u->r.ier = value & IER_MASK;
    /*
     * Enabling ETBEI while THR is empty raises THRE at once; Linux's 8250
     * startup relies on it (UART_BUG_THRE / UART_BUG_TXEN tests). THR is
     * always empty in this model. Disabling ETBEI drops the condition so a
     * later enable raises it again.
     */
    if ((u->r.ier & IER_THRE) && !(old & IER_THRE))
        u->r.thre_pending = true;
    else if (!(u->r.ier & IER_THRE))
        u->r.thre_pending = false;
}

static void write_mcr(struct vmdev_uart16550 *u, uint8_t value)
{
    uint8_t before = current_lines(u);
    u->r.mcr = value & MCR_MASK;
    u->r.msr_deltas |= line_deltas(before, current_lines(u));
}

static uint8_t read_iir(struct vmdev_uart16550 *u)
{
    uint8_t iir = pending_iir(u);
    /* Reading IIR when it reports THRE clears that interrupt (Table IV). */
    if (iir == IIR_THRE)
        u->r.thre_pending = false;
    return iir | (fifo_enabled(u) ? IIR_FIFO_ENABLED : 0);
}

static uint8_t read_lsr(struct vmdev_uart16550 *u)
{
    uint8_t lsr = LSR_THRE | LSR_TEMT | u->r.lsr_errors;
    if (u->r.rx_count)
        lsr |= LSR_DR;
    /* Bits 1-4 are cleared by the read; bit 7 (error in RCVR FIFO) never
     * sets because no parity, framing or break errors are generated. */
    u->r.lsr_errors = 0;
    return lsr;
}

static uint8_t read_locked(struct vmdev_uart16550 *u, unsigned offset)
{
    bool dlab = u->r.lcr & LCR_DLAB;
    switch (offset) {
    case VMDEV_UART_RBR_THR:
        return dlab ? u->r.dll : rx_pop(u);
    case VMDEV_UART_IER:
        return dlab ? u->r.dlm : u->r.ier;
    case VMDEV_UART_IIR_FCR:
        return read_iir(u);
    case VMDEV_UART_LCR:
        return u->r.lcr;
    case VMDEV_UART_MCR:
        return u->r.mcr;
    case VMDEV_UART_LSR:
        return read_lsr(u);
    case VMDEV_UART_MSR: {
        uint8_t msr = current_lines(u) | u->r.msr_deltas;
        u->r.msr_deltas = 0;
        return msr;
    }
    case VMDEV_UART_SCR:
        return u->r.scr;
    default:
        return 0xff;
    }
}

static void write_locked(struct vmdev_uart16550 *u, unsigned offset,
                         uint8_t value)
{
    bool dlab = u->r.lcr & LCR_DLAB;
    switch (offset) {
    case VMDEV_UART_RBR_THR:
        if (dlab)
            u->r.dll = value;
        else
            transmit(u, value);
        break;
    case VMDEV_UART_IER:
        if (dlab)
            u->r.dlm = value;
        else
            write_ier(u, value);
        break;
    case VMDEV_UART_IIR_FCR:
        write_fcr(u, value);
        break;
    case VMDEV_UART_LCR:
        u->r.lcr = value;
        break;
    case VMDEV_UART_MCR:
        write_mcr(u, value);
        break;
    case VMDEV_UART_SCR:
        u->r.scr = value;
        break;
    default:
        /* LSR and MSR are read-only (Table II: writes are for factory
         * test only); other offsets are not ours. */
        break;
    }
}

static size_t rx_space_locked(const struct vmdev_uart16550 *u);

/* A driver listens once it has enabled the received-data interrupt and
 * the FIFOs: enabling the FIFOs clears them, and Linux's 8250 does that
 * right after enabling the interrupt, so a byte given in between is lost. */
static size_t rx_accepting_locked(const struct vmdev_uart16550 *u)
{
    return (u->r.ier & IER_RDA) && fifo_enabled(u) ? rx_space_locked(u) : 0;
}

/* After a guest access: a host refused input may give it now. */
static void check_rx_ready(struct vmdev_uart16550 *u)
{
    if (u->host_waiting && rx_accepting_locked(u)) {
        u->host_waiting = false;
        if (u->rx_ready.ready)
            u->rx_ready.ready(u->rx_ready.opaque);
    }
}

uint8_t vmdev_uart16550_read(struct vmdev_uart16550 *u, unsigned offset)
{
    pthread_mutex_lock(&u->lock);
    uint8_t value = read_locked(u, offset);
    update_irq(u);
    check_rx_ready(u);
    pthread_mutex_unlock(&u->lock);
    return value;
}

void vmdev_uart16550_write(struct vmdev_uart16550 *u, unsigned offset,
                           uint8_t value)
{
    pthread_mutex_lock(&u->lock);
    write_locked(u, offset, value);
    update_irq(u);
    check_rx_ready(u);
    pthread_mutex_unlock(&u->lock);
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_uart16550_read(opaque, offset < 8 ? (unsigned)offset : 8);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    (void)size;
    vmdev_uart16550_write(opaque, offset < 8 ? (unsigned)offset : 8,
                          (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_uart16550_bus_ops = { bus_read, bus_write };

static size_t rx_space_locked(const struct vmdev_uart16550 *u)
{
    if (u->r.mcr & MCR_LOOP)
        return 0;
    return rx_capacity(u) - u->r.rx_count;
}

size_t vmdev_uart16550_receive(struct vmdev_uart16550 *u, const uint8_t *buf,
                               size_t len)
{
    pthread_mutex_lock(&u->lock);
    size_t n = rx_space_locked(u);
    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++)
        rx_push(u, buf[i]);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}

size_t vmdev_uart16550_rx_space(struct vmdev_uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    size_t n = rx_space_locked(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}

size_t vmdev_uart16550_rx_accepting(struct vmdev_uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    size_t n = rx_accepting_locked(u);
    if (!n)
        u->host_waiting = true;
    pthread_mutex_unlock(&u->lock);
    return n;
}

void vmdev_uart16550_set_modem_inputs(struct vmdev_uart16550 *u,
                                      uint8_t lines)
{
    pthread_mutex_lock(&u->lock);
    uint8_t before = current_lines(u);
    u->r.modem_inputs = lines & MSR_LINES;
    u->r.msr_deltas |= line_deltas(before, current_lines(u));
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

uint32_t vmdev_uart16550_baud(struct vmdev_uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    unsigned divisor = (unsigned)u->r.dlm << 8 | u->r.dll;
    pthread_mutex_unlock(&u->lock);
    return divisor ? VMDEV_UART16550_CLOCK_HZ / (16 * divisor) : 0;
}

struct vmdev_uart16550 *
vmdev_uart16550_new(const struct vmdev_uart16550_config *config)
{
    struct vmdev_uart16550 *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    if (pthread_mutex_init(&u->lock, NULL)) {
        free(u);
        return NULL;
    }
    u->irq = config->irq;
    u->sink = config->sink;
    u->rx_ready = config->rx_ready;
    u->r.modem_inputs = config->modem_inputs & MSR_LINES;
    u->r.dll = 12; /* 9600 baud until the guest programs the latch */
    return u;
}

void vmdev_uart16550_free(struct vmdev_uart16550 *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Save/restore. The FIFO is saved linearised from its head. */

void vmdev_uart16550_save(struct vmdev_uart16550 *u,
                          struct vmdev_state_writer *w, const char *name)
{
    pthread_mutex_lock(&u->lock);
    uint8_t fifo[VMDEV_UART16550_FIFO_SIZE] = { 0 };
    for (unsigned i = 0; i < u->r.rx_count; i++)
        fifo[i] = u->r.rx_fifo[(u->r.rx_head + i) % VMDEV_UART16550_FIFO_SIZE];
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u8(w, "ier", u->r.ier);
    vmdev_state_put_u8(w, "lcr", u->r.lcr);
    vmdev_state_put_u8(w, "mcr", u->r.mcr);
    vmdev_state_put_u8(w, "scr", u->r.scr);
    vmdev_state_put_u8(w, "dll", u->r.dll);
    vmdev_state_put_u8(w, "dlm", u->r.dlm);
    vmdev_state_put_u8(w, "fcr", u->r.fcr);
    vmdev_state_put_u8(w, "lsr_errors", u->r.lsr_errors);
    vmdev_state_put_u8(w, "msr_deltas", u->r.msr_deltas);
    vmdev_state_put_u8(w, "modem_inputs", u->r.modem_inputs);
    vmdev_state_put_u8(w, "thre_pending", u->r.thre_pending);
    vmdev_state_put_u8(w, "last_rbr", u->r.last_rbr);
    vmdev_state_put_u8(w, "rx_count", u->r.rx_count);
    vmdev_state_put_bytes(w, "rx_fifo", fifo, sizeof(fifo));
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&u->lock);
}

int vmdev_uart16550_restore(struct vmdev_uart16550 *u, const void *data,
                            size_t len, const char *name)
{
    struct vmdev_state_section s;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;

    /* Decode into a scratch device so the checks can use the helpers. */
    struct vmdev_uart16550 n;
    uint8_t thre = 0;
    memset(&n.r, 0, sizeof(n.r));
    if ((ret = vmdev_state_get_u8(&s, "ier", &n.r.ier)) ||
        (ret = vmdev_state_get_u8(&s, "lcr", &n.r.lcr)) ||
        (ret = vmdev_state_get_u8(&s, "mcr", &n.r.mcr)) ||
        (ret = vmdev_state_get_u8(&s, "scr", &n.r.scr)) ||
        (ret = vmdev_state_get_u8(&s, "dll", &n.r.dll)) ||
        (ret = vmdev_state_get_u8(&s, "dlm", &n.r.dlm)) ||
        (ret = vmdev_state_get_u8(&s, "fcr", &n.r.fcr)) ||
        (ret = vmdev_state_get_u8(&s, "lsr_errors", &n.r.lsr_errors)) ||
        (ret = vmdev_state_get_u8(&s, "msr_deltas", &n.r.msr_deltas)) ||
        (ret = vmdev_state_get_u8(&s, "modem_inputs", &n.r.modem_inputs)) ||
        (ret = vmdev_state_get_u8(&s, "thre_pending", &thre)) ||
        (ret = vmdev_state_get_u8(&s, "last_rbr", &n.r.last_rbr)) ||
        (ret = vmdev_state_get_u8(&s, "rx_count", &n.r.rx_count)) ||
        (ret = vmdev_state_get_bytes(&s, "rx_fifo", n.r.rx_fifo,
                                     sizeof(n.r.rx_fifo))))
        return ret;

    /* Only values the registers can hold (bits that read as 0 are 0, FCR
     * without FCR0 is all zero, the FIFO within the receiver's size). */
    if ((n.r.ier & ~IER_MASK) || (n.r.mcr & ~MCR_MASK) || thre > 1 ||
        (n.r.fcr & ~(FCR_ENABLE | FCR_DMA_MODE | (3u << FCR_TRIGGER_SHIFT))) ||
        (!(n.r.fcr & FCR_ENABLE) && n.r.fcr) || (n.r.lsr_errors & ~LSR_ERRORS) ||
        (n.r.msr_deltas & ~MSR_DELTAS) || (n.r.modem_inputs & ~MSR_LINES) ||
        n.r.rx_count > rx_capacity(&n))
        return -EINVAL;
    n.r.thre_pending = thre;

    pthread_mutex_lock(&u->lock);
    u->r = n.r;
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_uart16550, struct vmdev_uart16550);
