/* SPDX-License-Identifier: MIT */
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "layout.h"
#include "pci_host.h"
#include "vmdev/acpi_pm.h"
#include "vmdev/clock.h"
#include "vmdev/i8042.h"
#include "vmdev/i8254.h"
#include "vmdev/i8259.h"
#include "vmdev/ioapic.h"
#include "vmdev/rtc_cmos.h"
#include "vmdev/uart16550.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_console.h"
#include "vmdev/virtio_rng.h"

struct isa_line {
    struct vmm_machine *machine;
    unsigned irq;
};

struct vmm_machine {
    struct vmm_vm *vm;
    struct vmdev_event_loop *loop;

    struct vmdev_uart16550 *uart;
    int serial_out_fd;
    struct vmdev_event_watch *serial_in;

    struct vmdev_rtc *rtc;
    struct vmdev_event_timer *rtc_timer;
    struct vmdev_acpi_pm *pm;
    struct vmdev_event_timer *pm_timer;
    struct vmdev_i8042 *i8042;
    struct vmdev_pic *pic;
    struct vmdev_pit *pit;
    struct vmdev_event_timer *pit_timer;
    struct vmdev_ioapic *ioapic;
    struct vmm_pci *pci;
    struct vmdev_virtio_rng *rng;
    struct vmdev_virtio_console *console;
    int console_out_fd;
    struct vmdev_virtio_blk *disks[VMM_MAX_DISKS];
    char disk_names[VMM_MAX_DISKS][24];

    struct isa_line isa_lines[VMDEV_PIC_IRQS];
};

/*
 * ISA interrupts reach both controllers, as on a PC: PIC input irq and the
 * IOAPIC pin of the same number, except IRQ0 (the PIT), which is wired to
 * pin 2 (the MADT says so with an override). Whichever the guest unmasks
 * delivers.
 */
static void set_isa_irq(void *opaque, bool level)
{
    struct isa_line *line = opaque;
    struct vmm_machine *m = line->machine;
    vmdev_pic_set_irq(m->pic, line->irq, level);
    vmdev_ioapic_set_irq(m->ioapic, line->irq == 0 ? 2 : line->irq, level);
}

static struct vmdev_irq_line isa_line(struct vmm_machine *m, unsigned irq)
{
    m->isa_lines[irq] = (struct isa_line){ m, irq };
    return (struct vmdev_irq_line){ set_isa_irq, &m->isa_lines[irq] };
}

static void poweroff(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmm_vm_request_exit(m->vm, VMM_EXIT_POWEROFF);
}

static void reset(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmm_vm_request_exit(m->vm, VMM_EXIT_REBOOT);
}

static void serial_write(void *opaque, uint8_t byte)
{
    struct vmm_machine *m = opaque;
    /* Unbuffered: the test harness timestamps console lines on arrival. */
    while (write(m->serial_out_fd, &byte, 1) < 0 && errno == EINTR)
        ;
}

static void serial_input(void *opaque, uint32_t events)
{
    struct vmm_machine *m = opaque;
    uint8_t buf[16];
    size_t space = vmdev_uart16550_rx_space(m->uart);
    /* A full FIFO: leave the bytes in the host's buffer (back-pressure);
     * the guest drains the FIFO at its own pace. */
    if (!space)
        return;
    ssize_t n = read(STDIN_FILENO, buf, space < sizeof(buf) ? space : sizeof(buf));
    if (n > 0) {
        vmdev_uart16550_receive(m->uart, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        vmdev_event_loop_remove(m->loop, m->serial_in); /* end of input */
        m->serial_in = NULL;
    }
}

static int register_pio(struct vmm_machine *m, uint16_t port, uint16_t len,
                        unsigned sizes, const struct vmdev_bus_ops *ops,
                        void *dev, const char *name)
{
    if (vmdev_bus_register(m->vm->pio, port, len, sizes, ops, dev) == 0)
        return 0;
    fprintf(stderr, "vmdev-run: cannot map %s at port 0x%x\n", name, port);
    return -1;
}

static int create_serial(struct vmm_machine *m, const struct vmm_options *opts)
{
    m->serial_out_fd = -1;
    if (opts->serial.kind == VMM_OUTPUT_OFF)
        return 0;
    if (opts->serial.kind == VMM_OUTPUT_FILE) {
        m->serial_out_fd = open(opts->serial.path,
                                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (m->serial_out_fd < 0) {
            fprintf(stderr, "vmdev-run: --serial file=%s: %s\n", opts->serial.path,
                    strerror(errno));
            return -1;
        }
    } else {
        m->serial_out_fd = STDOUT_FILENO;
    }
    struct vmdev_uart16550_config config = {
        .irq = isa_line(m, IRQ_COM1),
        .sink = { serial_write, m },
        .modem_inputs = VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR | VMDEV_UART_MSR_DCD,
    };
    m->uart = vmdev_uart16550_new(&config);
    if (!m->uart)
        return -1;
    if (opts->serial.kind == VMM_OUTPUT_STDIO) {
        m->serial_in = vmdev_event_loop_add(m->loop, STDIN_FILENO, VMDEV_EVENT_IN,
                                            serial_input, m);
        /* stdin may be /dev/null or a regular file epoll cannot watch. */
        if (!m->serial_in && errno != EPERM)
            fprintf(stderr, "vmdev-run: not reading stdin: %s\n", strerror(errno));
    }
    return register_pio(m, PORT_COM1, VMDEV_UART16550_REGS, VMDEV_ACCESS_1,
                        &vmdev_uart16550_bus_ops, m->uart, "COM1");
}

/* A device's timer is created before the device (the device's config
 * takes it), so its callback finds the device through the machine. */
static void rtc_timer_expired(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_rtc_timer_expired(m->rtc);
}

static void pm_timer_expired(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_acpi_pm_timer_expired(m->pm);
}

static void pit_timer_expired(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_pit_timer_expired(m->pit);
}

static uint8_t pic_acknowledge(void *opaque)
{
    struct vmm_machine *m = opaque;
    return vmdev_pic_acknowledge(m->pic);
}

/* The PICs before any ISA device: every ISA line drives one. */
static int create_pic(struct vmm_machine *m)
{
    struct vmdev_pic_config config = {
        .intr = { vmm_vm_set_extint, m->vm },
    };
    m->pic = vmdev_pic_new(&config);
    if (!m->pic)
        return -1;
    m->vm->extint_ack = pic_acknowledge;
    m->vm->extint_opaque = m;
    /* What PC firmware leaves before it starts an OS: both chips
     * initialised (edge, cascaded, vectors 0x08 and 0x70 as the BIOS
     * sets them) and every input masked, so that no ISA line reaches the
     * CPU before the guest programs the PICs itself. */
    static const uint8_t init[2][4] = { { 0x11, 0x08, 0x04, 0x01 },
                                        { 0x11, 0x70, 0x02, 0x01 } };
    for (unsigned chip = 0; chip < 2; chip++) {
        enum vmdev_pic_chip which = chip ? VMDEV_PIC_SLAVE : VMDEV_PIC_MASTER;
        vmdev_pic_write(m->pic, which, 0, init[chip][0]);
        for (unsigned i = 1; i < 4; i++)
            vmdev_pic_write(m->pic, which, 1, init[chip][i]);
        vmdev_pic_write(m->pic, which, 1, 0xff);
    }
    return register_pio(m, PORT_PIC_MASTER, VMDEV_PIC_PORTS, VMDEV_ACCESS_1,
                        &vmdev_pic_master_bus_ops, m->pic, "PIC") ||
           register_pio(m, PORT_PIC_SLAVE, VMDEV_PIC_PORTS, VMDEV_ACCESS_1,
                        &vmdev_pic_slave_bus_ops, m->pic, "PIC") ||
           register_pio(m, PORT_ELCR, VMDEV_PIC_ELCR_PORTS, VMDEV_ACCESS_1,
                        &vmdev_pic_elcr_bus_ops, m->pic, "ELCR");
}

static int create_pit(struct vmm_machine *m)
{
    struct vmdev_timer timer;
    m->pit_timer = vmdev_event_loop_timer_new(m->loop, pit_timer_expired, m, &timer);
    if (!m->pit_timer)
        return -1;
    struct vmdev_pit_config config = {
        .clock = vmdev_host_clock,
        .timer = timer,
        .irq = isa_line(m, IRQ_PIT),
    };
    m->pit = vmdev_pit_new(&config);
    if (!m->pit)
        return -1;
    return register_pio(m, PORT_PIT, VMDEV_PIT_PORTS, VMDEV_ACCESS_1,
                        &vmdev_pit_bus_ops, m->pit, "PIT") ||
           register_pio(m, PORT_SYSTEM_CONTROL_B, 1, VMDEV_ACCESS_1,
                        &vmdev_pit_port61_bus_ops, m->pit, "port 0x61");
}

static int create_rtc(struct vmm_machine *m)
{
    struct vmdev_timer timer;
    m->rtc_timer = vmdev_event_loop_timer_new(m->loop, rtc_timer_expired, m, &timer);
    if (!m->rtc_timer)
        return -1;
    struct vmdev_rtc_config config = {
        .clock = vmdev_host_clock,
        .timer = timer,
        .irq = isa_line(m, IRQ_RTC),
    };
    m->rtc = vmdev_rtc_new(&config);
    if (!m->rtc)
        return -1;
    return register_pio(m, PORT_RTC, 2, VMDEV_ACCESS_1, &vmdev_rtc_bus_ops, m->rtc,
                        "RTC");
}

static int create_acpi_pm(struct vmm_machine *m)
{
    struct vmdev_timer timer;
    m->pm_timer = vmdev_event_loop_timer_new(m->loop, pm_timer_expired, m, &timer);
    if (!m->pm_timer)
        return -1;
    struct vmdev_acpi_pm_config config = {
        .clock = vmdev_host_clock,
        .timer = timer,
        .sci = isa_line(m, IRQ_SCI),
        .timer_32bit = true,
        .poweroff = poweroff,
        .reset = reset,
        .opaque = m,
    };
    m->pm = vmdev_acpi_pm_new(&config);
    if (!m->pm)
        return -1;
    return register_pio(m, PORT_ACPI_PM, VMDEV_ACPI_PM_BLOCK_LEN,
                        VMDEV_ACCESS_UP_TO_4, &vmdev_acpi_pm_bus_ops, m->pm,
                        "ACPI PM block");
}

/*
 * KVM's split irqchip sends an EOI to user space only for vectors it
 * finds in level-triggered MSI routes of the IOAPIC's reserved GSIs
 * (one per pin). Refresh those routes whenever the guest programs the
 * IOAPIC, as the redirection table is what decides them.
 */
static void update_ioapic_routes(struct vmm_machine *m)
{
    struct vmdev_msi_msg msgs[VMDEV_IOAPIC_PINS];
    memset(msgs, 0, sizeof(msgs));
    uint32_t valid = 0;
    for (unsigned pin = 0; pin < VMDEV_IOAPIC_PINS; pin++)
        if (vmdev_ioapic_pin_msi(m->ioapic, pin, &msgs[pin]))
            valid |= 1u << pin;
    vmm_irq_routes_set_ioapic(m->vm->routes, msgs, valid);
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vmm_machine *m = opaque;
    return vmdev_ioapic_bus_ops.read(m->ioapic, offset, size);
}

static void ioapic_mmio_write(void *opaque, uint64_t offset, uint64_t value,
                              unsigned size)
{
    struct vmm_machine *m = opaque;
    vmdev_ioapic_bus_ops.write(m->ioapic, offset, value, size);
    if (offset == VMDEV_IOAPIC_WINDOW)
        update_ioapic_routes(m);
}

static const struct vmdev_bus_ops ioapic_mmio_ops = {
    ioapic_mmio_read, ioapic_mmio_write,
};

static void ioapic_eoi(void *opaque, uint8_t vector)
{
    struct vmm_machine *m = opaque;
    vmdev_ioapic_eoi(m->ioapic, vector);
}

static int create_ioapic(struct vmm_machine *m)
{
    struct vmdev_msi_sink sink = { vmm_vm_send_msi, m->vm };
    m->ioapic = vmdev_ioapic_new(0, &sink);
    if (!m->ioapic)
        return -1;
    m->vm->eoi = ioapic_eoi;
    m->vm->eoi_opaque = m;
    if (vmdev_bus_register(m->vm->mmio, GUEST_IOAPIC, VMDEV_IOAPIC_MMIO_SIZE,
                           VMDEV_ACCESS_4, &ioapic_mmio_ops, m)) {
        fprintf(stderr, "vmdev-run: cannot map the IOAPIC\n");
        return -1;
    }
    return 0;
}

static void set_ioapic_pin(void *opaque, unsigned gsi, bool level)
{
    struct vmm_machine *m = opaque;
    vmdev_ioapic_set_irq(m->ioapic, gsi, level);
}

static int create_pci(struct vmm_machine *m)
{
    m->pci = vmm_pci_create(m->vm, set_ioapic_pin, m);
    return m->pci ? 0 : -1;
}

/* Disks first: Linux names them vda, vdb, ... in PCI slot order. */
static int create_disks(struct vmm_machine *m, const struct vmm_options *opts)
{
    for (unsigned i = 0; i < opts->num_disks; i++) {
        const struct vmm_disk *d = &opts->disks[i];
        struct vmdev_virtio_blk_config config = { d->path, d->readonly, NULL };
        snprintf(m->disk_names[i], sizeof(m->disk_names[i]), "virtio-blk%u", i);
        m->disks[i] = vmdev_virtio_blk_new(m->disk_names[i], m->vm->mem, &config);
        if (!m->disks[i]) {
            fprintf(stderr, "vmdev-run: --disk path=%s: %s\n", d->path,
                    strerror(errno));
            return -1;
        }
        if (vmm_pci_add_virtio(m->pci, vmdev_virtio_blk_device(m->disks[i])))
            return -1;
    }
    return 0;
}

static void console_write(void *opaque, const void *buf, size_t len)
{
    struct vmm_machine *m = opaque;
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(m->console_out_fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the reader went away; the guest carries on */
        p += n;
        len -= (size_t)n;
    }
}

static int create_console(struct vmm_machine *m, const struct vmm_options *opts)
{
    m->console_out_fd = -1;
    if (opts->console.kind == VMM_OUTPUT_OFF)
        return 0;
    if (opts->console.kind == VMM_OUTPUT_FILE) {
        m->console_out_fd = open(opts->console.path,
                                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (m->console_out_fd < 0) {
            fprintf(stderr, "vmdev-run: --console file=%s: %s\n",
                    opts->console.path, strerror(errno));
            return -1;
        }
    } else {
        m->console_out_fd = STDOUT_FILENO;
    }
    struct vmdev_console_output out = { console_write, m };
    m->console = vmdev_virtio_console_new("virtio-console0", m->vm->mem, &out);
    if (!m->console) {
        fprintf(stderr, "vmdev-run: --console: cannot create virtio-console\n");
        return -1;
    }
    return vmm_pci_add_virtio(m->pci, vmdev_virtio_console_device(m->console));
}

static int create_rng(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (!opts->rng)
        return 0;
    m->rng = vmdev_virtio_rng_new("virtio-rng0", m->vm->mem, NULL);
    if (!m->rng) {
        fprintf(stderr, "vmdev-run: --rng: cannot create virtio-rng\n");
        return -1;
    }
    return vmm_pci_add_virtio(m->pci, vmdev_virtio_rng_device(m->rng));
}

static int create_i8042(struct vmm_machine *m)
{
    struct vmdev_i8042_config config = {
        .kbd_irq = isa_line(m, IRQ_KEYBOARD),
        .reset = reset,
        .opaque = m,
    };
    m->i8042 = vmdev_i8042_new(&config);
    if (!m->i8042)
        return -1;
    return register_pio(m, PORT_I8042_DATA, 1, VMDEV_ACCESS_1,
                        &vmdev_i8042_data_bus_ops, m->i8042, "i8042") ||
           register_pio(m, PORT_I8042_COMMAND, 1, VMDEV_ACCESS_1,
                        &vmdev_i8042_command_bus_ops, m->i8042, "i8042");
}

struct vmm_machine *vmm_machine_create(struct vmm_vm *vm,
                                       struct vmdev_event_loop *loop,
                                       const struct vmm_options *opts)
{
    struct vmm_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->vm = vm;
    m->loop = loop;
    if (create_ioapic(m) || create_pic(m) || create_pit(m) ||
        create_serial(m, opts) || create_rtc(m) ||
        create_acpi_pm(m) || create_i8042(m) || create_pci(m) ||
        create_disks(m, opts) || create_console(m, opts) ||
        create_rng(m, opts)) {
        vmm_machine_destroy(m);
        return NULL;
    }
    return m;
}

void vmm_machine_destroy(struct vmm_machine *m)
{
    if (!m)
        return;
    if (m->serial_in)
        vmdev_event_loop_remove(m->loop, m->serial_in);
    /* Devices cancel their timers as they go, so timers outlive them. */
    vmdev_uart16550_free(m->uart);
    vmdev_rtc_free(m->rtc);
    vmdev_acpi_pm_free(m->pm);
    vmdev_i8042_free(m->i8042);
    vmdev_pit_free(m->pit);
    vmdev_event_loop_timer_free(m->loop, m->rtc_timer);
    vmdev_event_loop_timer_free(m->loop, m->pit_timer);
    vmdev_event_loop_timer_free(m->loop, m->pm_timer);
    /* Transports go before the devices they wrap. */
    vmm_pci_destroy(m->pci);
    vmdev_virtio_rng_free(m->rng);
    vmdev_virtio_console_free(m->console);
    if (m->console_out_fd > STDERR_FILENO)
        close(m->console_out_fd);
    for (unsigned i = 0; i < VMM_MAX_DISKS; i++)
        vmdev_virtio_blk_free(m->disks[i]);
    if (m->vm->eoi_opaque == m)
        m->vm->eoi = NULL;
    if (m->vm->extint_opaque == m)
        m->vm->extint_ack = NULL;
    vmdev_pic_free(m->pic);
    vmdev_ioapic_free(m->ioapic);
    if (m->serial_out_fd > STDERR_FILENO)
        close(m->serial_out_fd);
    free(m);
}

void vmm_machine_print_stats(struct vmm_machine *m)
{
    uint64_t irqfd, signal_msi;
    vmm_irq_routes_counts(m->vm->routes, &irqfd, &signal_msi);
    fprintf(stderr,
            "vmdev-run: queue notifications: ioeventfd=%llu; "
            "interrupts: irqfd=%llu signal_msi=%llu\n",
            (unsigned long long)vmm_pci_ioeventfd_kicks(m->pci),
            (unsigned long long)irqfd, (unsigned long long)signal_msi);
}
