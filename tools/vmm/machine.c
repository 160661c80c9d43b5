/* SPDX-License-Identifier: MIT */
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "console_host.h"
#include "layout.h"
#include "pci_host.h"
#include "vmdev/acpi_pm.h"
#include "vmdev/clock.h"
#include "vmdev/device_manager.h"
#include "vmdev/event_loop.h"
#include "vmdev/i8042.h"
#include "vmdev/pit.h"
#include "vmdev/pic.h"
#include "vmdev/ioapic.h"
#include "vmdev/rtc.h"
#include "vmdev/uart16550.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_console.h"
#include "vmdev/virtio_net.h"
#include "vmdev/virtio_rng.h"

struct isa_line {
    struct vmm_machine *machine;
    unsigned irq;
};

struct vmm_machine {
    struct vmm_vm *vm;
    struct vmdev_event_loop *loop;
    /* Every device, with the ports, ranges and GSIs it owns. */
    struct vmdev_device_manager *devices;
    struct vmdev_resource_pool *gsis; /* IOAPIC pins */

    struct vmdev_uart16550 *uart;
    int serial_out_fd;
    /* stdin, watched while the guest's driver takes input; serial_ready
     * (an eventfd the UART's rx_ready signals) brings the watch back. */
    struct vmdev_event_watch *serial_in;
    bool serial_in_open; /* stdin not yet at its end */
    bool serial_in_file; /* a regular file, which epoll cannot watch */
    /* Read from stdin, not yet taken by the UART. */
    uint8_t serial_pending[16];
    size_t serial_pending_at, serial_pending_len;
    int serial_ready_fd;
    struct vmdev_event_watch *serial_ready;

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
    struct vmdev_virtio_blk *disks[VMM_MAX_DISKS];
    unsigned num_disks;
    struct vmdev_virtio_net *nets[VMM_MAX_NETS];
    unsigned num_nets;
    struct vmm_console_host *console_host;
    struct vmdev_virtio_console *console;

    struct isa_line isa_lines[VMDEV_PIC_IRQS];
};

/* The machine's own devices, by id. */
enum machine_device {
    ID_IOAPIC, ID_PIC, ID_PIT, ID_COM1, ID_RTC, ID_PM, ID_I8042, ID_PCI,
};

const char *const vmm_machine_ids[] = {
    [ID_IOAPIC] = "ioapic", [ID_PIC] = "pic", [ID_PIT] = "pit",
    [ID_COM1] = "com1", [ID_RTC] = "rtc", [ID_PM] = "pm",
    [ID_I8042] = "i8042", [ID_PCI] = "pci0", [ID_PCI + 1] = NULL,
};

bool vmm_machine_id_reserved(const char *id)
{
    for (unsigned i = 0; vmm_machine_ids[i]; i++)
        if (strcmp(vmm_machine_ids[i], id) == 0)
            return true;
    return false;
}

/* The IOAPIC pin an ISA line reaches: its own number, except IRQ0 (the
 * PIT), which is wired to pin 2 (the MADT says so with an override). */
static unsigned isa_gsi(unsigned irq)
{
    return irq == 0 ? 2 : irq;
}

/*
 * ISA interrupts reach both controllers, as on a PC: PIC input irq and
 * its IOAPIC pin. Whichever the guest unmasks delivers.
 */
static void set_isa_irq(void *opaque, bool level)
{
    struct isa_line *line = opaque;
    struct vmm_machine *m = line->machine;
    vmdev_pic_set_irq(m->pic, line->irq, level);
    vmdev_ioapic_set_irq(m->ioapic, isa_gsi(line->irq), level);
}

/* The device takes ISA line irq: its IOAPIC pin becomes its resource. */
static int claim_isa_irq(struct vmm_machine *m, struct vmdev_device *dev,
                         unsigned irq, struct vmdev_irq_line *line)
{
    int ret = vmdev_device_reserve(dev, m->gsis, VMDEV_RESOURCE_GSI,
                                   isa_gsi(irq), 1);
    if (ret) {
        fprintf(stderr, "vmdev-run: %s: IRQ %u: %s\n", vmdev_device_id(dev),
                irq, ret == -EBUSY ? "taken" : strerror(-ret));
        return -1;
    }
    m->isa_lines[irq] = (struct isa_line){ m, irq };
    *line = (struct vmdev_irq_line){ set_isa_irq, &m->isa_lines[irq] };
    return 0;
}

static int add_device(struct vmm_machine *m, const char *type,
                      const char *id, const struct vmdev_device_ops *ops,
                      struct vmdev_device **dev)
{
    int ret = vmdev_device_add(m->devices, type, id, ops, m, dev);
    if (ret)
        fprintf(stderr, "vmdev-run: cannot add %s: %s\n", id, strerror(-ret));
    return ret ? -1 : 0;
}

static int map_pio(struct vmm_machine *m, struct vmdev_device *dev,
                   uint16_t port, uint16_t len,
                   const struct vmdev_bus_ops *ops, void *opaque)
{
    int ret = vmdev_device_map(dev, m->vm->pio, VMDEV_RESOURCE_PIO, port, len,
                               VMDEV_ACCESS_1, ops, opaque);
    if (ret)
        fprintf(stderr, "vmdev-run: %s: cannot map port 0x%x: %s\n",
                vmdev_device_id(dev), port, strerror(-ret));
    return ret ? -1 : 0;
}

/*
 * Snapshot callbacks of a platform device held in m->field: the device's
 * own save and restore, under the entry's id.
 */
#define MACHINE_DEVICE_STATE(field, save_fn, restore_fn)                       \
    static void field##_save(void *opaque, struct vmdev_state_writer *w,       \
                             const char *id)                                   \
    {                                                                          \
        save_fn(((struct vmm_machine *)opaque)->field, w, id);                 \
    }                                                                          \
    static int field##_restore(void *opaque, const void *snapshot,             \
                               size_t len, const char *id)                     \
    {                                                                          \
        return restore_fn(((struct vmm_machine *)opaque)->field, snapshot,     \
                          len, id);                                            \
    }

MACHINE_DEVICE_STATE(ioapic, vmdev_ioapic_save, vmdev_ioapic_restore)
MACHINE_DEVICE_STATE(pic, vmdev_pic_save, vmdev_pic_restore)
MACHINE_DEVICE_STATE(pit, vmdev_pit_save, vmdev_pit_restore)
MACHINE_DEVICE_STATE(uart, vmdev_uart16550_save, vmdev_uart16550_restore)
MACHINE_DEVICE_STATE(rtc, vmdev_rtc_save, vmdev_rtc_restore)
MACHINE_DEVICE_STATE(pm, vmdev_acpi_pm_save, vmdev_acpi_pm_restore)
MACHINE_DEVICE_STATE(i8042, vmdev_i8042_save, vmdev_i8042_restore)

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
    /* Unbuffered: the test harness timestamps console lines on arrival.
     * A signal interrupting a write blocked on a full pipe is the VM
     * stopping: the byte is dropped rather than holding the vCPU. */
    while (write(m->serial_out_fd, &byte, 1) < 0 && errno == EINTR &&
           !atomic_load(&m->vm->exiting))
        ;
}

static void serial_input(void *opaque, uint32_t events);

static void watch_serial_input(struct vmm_machine *m, bool on)
{
    if (on && !m->serial_in && m->serial_in_open)
        m->serial_in = vmdev_event_loop_add(m->loop, STDIN_FILENO,
                                            VMDEV_EVENT_IN, serial_input, m);
    else if (!on && m->serial_in) {
        vmdev_event_loop_remove(m->loop, m->serial_in);
        m->serial_in = NULL;
    }
}

/*
 * Give the UART the bytes read from stdin that it has not taken: the
 * guest may shrink its FIFO (turn it off, or loopback on) between
 * rx_accepting() and receive(). True once none are left; false after
 * rx_accepting() said 0, whose rx_ready (serial_ready) brings us back.
 */
static bool deliver_serial_pending(struct vmm_machine *m)
{
    while (m->serial_pending_len) {
        if (!vmdev_uart16550_rx_accepting(m->uart))
            return false;
        size_t n = vmdev_uart16550_receive(
            m->uart, m->serial_pending + m->serial_pending_at,
            m->serial_pending_len);
        m->serial_pending_at += n;
        m->serial_pending_len -= n;
    }
    return true;
}

/* Read up to what the guest's driver takes now into serial_pending and
 * give it to the UART: false when stdin ended (or failed). */
static bool read_serial_input(struct vmm_machine *m, size_t space)
{
    ssize_t n = read(STDIN_FILENO, m->serial_pending,
                     space < sizeof(m->serial_pending) ? space
                                                       : sizeof(m->serial_pending));
    if (n > 0) {
        m->serial_pending_at = 0;
        m->serial_pending_len = (size_t)n;
        deliver_serial_pending(m);
        return true;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN);
}

static void serial_input(void *opaque, uint32_t events)
{
    struct vmm_machine *m = opaque;
    /* Bytes still waiting for the UART, a full FIFO, or no driver
     * listening yet: leave the rest in the host's buffer (back-pressure)
     * and stop watching until the UART says the guest takes more
     * (serial_ready). */
    size_t space = deliver_serial_pending(m)
                       ? vmdev_uart16550_rx_accepting(m->uart) : 0;
    if (!space) {
        watch_serial_input(m, false);
        return;
    }
    if (!read_serial_input(m, space)) {
        m->serial_in_open = false; /* end of input */
        watch_serial_input(m, false);
    }
}

/* The UART's rx_ready, on a vCPU thread with the UART's lock held. */
static void serial_rx_ready(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_eventfd_signal(m->serial_ready_fd);
}

/* stdin a regular file: read as much as the guest takes now; when it
 * takes no more, rx_ready (serial_ready) brings us back. */
static void feed_serial_file(struct vmm_machine *m)
{
    size_t space;
    while (m->serial_in_open && deliver_serial_pending(m) &&
           (space = vmdev_uart16550_rx_accepting(m->uart)) > 0)
        if (!read_serial_input(m, space))
            m->serial_in_open = false; /* end of input */
}

static void serial_ready(void *opaque, uint32_t events)
{
    struct vmm_machine *m = opaque;
    vmdev_eventfd_drain(m->serial_ready_fd);
    if (!deliver_serial_pending(m))
        return; /* rx_ready comes again */
    if (m->serial_in_file)
        feed_serial_file(m);
    else
        watch_serial_input(m, true);
}

static void destroy_serial(void *opaque)
{
    struct vmm_machine *m = opaque;
    m->serial_in_open = false;
    watch_serial_input(m, false);
    if (m->serial_ready)
        vmdev_event_loop_remove(m->loop, m->serial_ready);
    m->serial_ready = NULL;
    if (m->serial_ready_fd >= 0)
        close(m->serial_ready_fd);
    m->serial_ready_fd = -1;
    vmdev_uart16550_free(m->uart);
    m->uart = NULL;
    if (m->serial_out_fd > STDERR_FILENO)
        close(m->serial_out_fd);
    m->serial_out_fd = -1;
}

static const struct vmdev_device_ops serial_ops = { destroy_serial, uart_save,
                                                    uart_restore };

static int create_serial(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (opts->serial.kind == VMM_OUTPUT_OFF)
        return 0;
    struct vmdev_device *dev;
    if (add_device(m, "uart", vmm_machine_ids[ID_COM1], &serial_ops, &dev))
        return -1;
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
        .sink = { serial_write, m },
        .rx_ready = { serial_rx_ready, m },
        .modem_inputs = VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR | VMDEV_UART_MSR_DCD,
    };
    if (claim_isa_irq(m, dev, IRQ_COM1, &config.irq))
        return -1;
    m->uart = vmdev_uart16550_new(&config);
    if (!m->uart)
        return -1;
    if (opts->serial.kind == VMM_OUTPUT_STDIO) {
        m->serial_ready_fd = vmdev_eventfd_new();
        m->serial_ready = m->serial_ready_fd < 0
                              ? NULL
                              : vmdev_event_loop_add(m->loop, m->serial_ready_fd,
                                                     VMDEV_EVENT_IN,
                                                     serial_ready, m);
        if (!m->serial_ready)
            return -1;
        m->serial_in_open = true;
        watch_serial_input(m, true);
        if (!m->serial_in && errno == EPERM) {
            /* A regular file (or /dev/null): epoll refuses it, and it is
             * always readable, so it is read whenever the guest takes
             * input, starting once its driver listens. */
            m->serial_in_file = true;
            feed_serial_file(m);
        } else if (!m->serial_in) {
            fprintf(stderr, "vmdev-run: not reading stdin: %s\n", strerror(errno));
            m->serial_in_open = false;
        }
    }
    return map_pio(m, dev, PORT_COM1, VMDEV_UART16550_REGS,
                   &vmdev_uart16550_bus_ops, m->uart);
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

static void destroy_pic(void *opaque)
{
    struct vmm_machine *m = opaque;
    if (m->vm->extint_opaque == m)
        m->vm->extint_ack = NULL;
    vmdev_pic_free(m->pic);
    m->pic = NULL;
}

static const struct vmdev_device_ops pic_ops = { destroy_pic, pic_save,
                                                 pic_restore };

/* The PICs before any ISA device: every ISA line drives one. */
static int create_pic(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    if (add_device(m, "pic", vmm_machine_ids[ID_PIC], &pic_ops, &dev))
        return -1;
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
    return map_pio(m, dev, PORT_PIC_MASTER, VMDEV_PIC_PORTS,
                   &vmdev_pic_master_bus_ops, m->pic) ||
           map_pio(m, dev, PORT_PIC_SLAVE, VMDEV_PIC_PORTS,
                   &vmdev_pic_slave_bus_ops, m->pic) ||
           map_pio(m, dev, PORT_ELCR, VMDEV_PIC_ELCR_PORTS,
                   &vmdev_pic_elcr_bus_ops, m->pic);
}

/* Devices cancel their timers as they go, so a timer outlives its device. */
static void destroy_pit(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_pit_free(m->pit);
    m->pit = NULL;
    vmdev_event_loop_timer_free(m->loop, m->pit_timer);
    m->pit_timer = NULL;
}

static const struct vmdev_device_ops pit_ops = { destroy_pit, pit_save,
                                                 pit_restore };

static int create_pit(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    struct vmdev_pit_config config = { .clock = vmdev_host_clock };
    if (add_device(m, "pit", vmm_machine_ids[ID_PIT], &pit_ops, &dev) ||
        claim_isa_irq(m, dev, IRQ_PIT, &config.irq))
        return -1;
    m->pit_timer = vmdev_event_loop_timer_new(m->loop, pit_timer_expired, m,
                                              &config.timer);
    if (!m->pit_timer)
        return -1;
    m->pit = vmdev_pit_new(&config);
    if (!m->pit)
        return -1;
    return map_pio(m, dev, PORT_PIT, VMDEV_PIT_PORTS, &vmdev_pit_bus_ops,
                   m->pit) ||
           map_pio(m, dev, PORT_SYSTEM_CONTROL_B, 1, &vmdev_pit_port61_bus_ops,
                   m->pit);
}

static void destroy_rtc(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_rtc_free(m->rtc);
    m->rtc = NULL;
    vmdev_event_loop_timer_free(m->loop, m->rtc_timer);
    m->rtc_timer = NULL;
}

static const struct vmdev_device_ops rtc_ops = { destroy_rtc, rtc_save,
                                                 rtc_restore };

static int create_rtc(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    struct vmdev_rtc_config config = { .clock = vmdev_host_clock };
    if (add_device(m, "rtc", vmm_machine_ids[ID_RTC], &rtc_ops, &dev) ||
        claim_isa_irq(m, dev, IRQ_RTC, &config.irq))
        return -1;
    m->rtc_timer = vmdev_event_loop_timer_new(m->loop, rtc_timer_expired, m,
                                              &config.timer);
    if (!m->rtc_timer)
        return -1;
    m->rtc = vmdev_rtc_new(&config);
    if (!m->rtc)
        return -1;
    return map_pio(m, dev, PORT_RTC, 2, &vmdev_rtc_bus_ops, m->rtc);
}

static void destroy_acpi_pm(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_acpi_pm_free(m->pm);
    m->pm = NULL;
    vmdev_event_loop_timer_free(m->loop, m->pm_timer);
    m->pm_timer = NULL;
}

static const struct vmdev_device_ops acpi_pm_ops = { destroy_acpi_pm, pm_save,
                                                     pm_restore };

static int create_acpi_pm(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    struct vmdev_acpi_pm_config config = {
        .clock = vmdev_host_clock,
        .timer_32bit = true,
        .poweroff = poweroff,
        .reset = reset,
        .opaque = m,
    };
    if (add_device(m, "acpi-pm", vmm_machine_ids[ID_PM], &acpi_pm_ops, &dev) ||
        claim_isa_irq(m, dev, IRQ_SCI, &config.sci))
        return -1;
    m->pm_timer = vmdev_event_loop_timer_new(m->loop, pm_timer_expired, m,
                                             &config.timer);
    if (!m->pm_timer)
        return -1;
    m->pm = vmdev_acpi_pm_new(&config);
    if (!m->pm)
        return -1;
    int ret = vmdev_device_map(dev, m->vm->pio, VMDEV_RESOURCE_PIO,
                               PORT_ACPI_PM, VMDEV_ACPI_PM_BLOCK_LEN,
                               VMDEV_ACCESS_UP_TO_4, &vmdev_acpi_pm_bus_ops,
                               m->pm);
    if (ret)
        fprintf(stderr, "vmdev-run: cannot map the ACPI PM block: %s\n",
                strerror(-ret));
    return ret ? -1 : 0;
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

static void destroy_ioapic(void *opaque)
{
    struct vmm_machine *m = opaque;
    if (m->vm->eoi_opaque == m)
        m->vm->eoi = NULL;
    vmdev_ioapic_free(m->ioapic);
    m->ioapic = NULL;
}

static const struct vmdev_device_ops ioapic_ops = { destroy_ioapic,
                                                    ioapic_save,
                                                    ioapic_restore };

static int create_ioapic(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    if (add_device(m, "ioapic", vmm_machine_ids[ID_IOAPIC], &ioapic_ops, &dev))
        return -1;
    struct vmdev_msi_sink sink = { .send = vmm_vm_send_msi, .opaque = m->vm };
    m->ioapic = vmdev_ioapic_new(0, &sink);
    if (!m->ioapic)
        return -1;
    m->vm->eoi = ioapic_eoi;
    m->vm->eoi_opaque = m;
    int ret = vmdev_device_map(dev, m->vm->mmio, VMDEV_RESOURCE_MMIO,
                               GUEST_IOAPIC, VMDEV_IOAPIC_MMIO_SIZE,
                               VMDEV_ACCESS_4, &ioapic_mmio_ops, m);
    if (ret)
        fprintf(stderr, "vmdev-run: cannot map the IOAPIC: %s\n",
                strerror(-ret));
    return ret ? -1 : 0;
}

static void set_ioapic_pin(void *opaque, unsigned gsi, bool level)
{
    struct vmm_machine *m = opaque;
    vmdev_ioapic_set_irq(m->ioapic, gsi, level);
}

/* libslirp's reading of /etc/resolv.conf, on the I/O thread its card's
 * backend runs on; and its warnings, which go through glib's default log
 * writer: that asks isatty(2) (TCGETS) on every message, whether stderr
 * is a terminal or not. */
static const int slirp_syscalls[] = { SCMP_SYS(openat), SCMP_SYS(newfstatat),
                                      SCMP_SYS(fstat) };
static const unsigned long slirp_ioctls[] = { TCGETS };
static const struct vmm_syscall_list slirp_io_syscalls =
    VMM_SYSCALL_LIST(slirp_syscalls, slirp_ioctls);

static int create_pci(struct vmm_machine *m, const struct vmm_options *opts)
{
    /* An I/O thread per vCPU: a disk's queues spread over them as Linux
     * spreads its queues over the vCPUs. A slirp card's backend runs on
     * one of them, and libslirp reads the host's /etc/resolv.conf there
     * when the guest first asks its DNS address (and again when it
     * changes): only then may I/O threads open files. */
    bool slirp = false;
    for (unsigned i = 0; i < opts->num_nets; i++)
        slirp |= opts->nets[i].backend.slirp;
    m->pci = vmm_pci_create(m->vm, m->devices, vmm_machine_ids[ID_PCI], m->gsis,
                            set_ioapic_pin, m, m->vm->cpus,
                            slirp ? &slirp_io_syscalls : NULL);
    return m->pci ? 0 : -1;
}

struct disk_make {
    struct vmm_machine *m;
    const struct vmm_disk *disk;
    struct vmdev_block **image; /* NULL once the device has it */
};

static struct vmdev_virtio_device *make_disk(const char *id, void *opaque)
{
    struct disk_make *make = opaque;
    const struct vmm_disk *d = make->disk;
    struct vmdev_virtio_blk_config config = {
        .block = *make->image,
        .serial = d->serial,
        .num_queues = (uint16_t)d->num_queues,
        .queue_size = (uint16_t)d->queue_size,
        .discard = d->discard,
        .engine = VMDEV_IO_ENGINE_AUTO,
    };
    struct vmdev_virtio_blk *blk = vmdev_virtio_blk_new(id, make->m->vm->mem,
                                                        &config);
    if (!blk) {
        fprintf(stderr, "vmdev-run: --disk path=%s: %s\n", d->path,
                strerror(errno));
        return NULL;
    }
    *make->image = NULL;
    make->m->disks[make->m->num_disks++] = blk;
    return vmdev_virtio_blk_device(blk);
}

/* Disks first: Linux names them vda, vdb, ... in PCI slot order. */
static int create_disks(struct vmm_machine *m, const struct vmm_options *opts,
                        struct vmdev_block **images)
{
    for (unsigned i = 0; i < opts->num_disks; i++) {
        struct disk_make make = { m, &opts->disks[i], &images[i] };
        if (vmm_pci_add_virtio(m->pci, m->devices, "virtio-blk",
                               opts->disks[i].id, make_disk, &make))
            return -1;
    }
    return 0;
}

struct net_make {
    struct vmm_machine *m;
    const struct vmm_net *net;
    struct vmdev_net_capture *capture; /* its pcap=, or NULL */
};

/* How --net named the card's backend, for messages. */
static void backend_name(const struct net_spec *b, char *out, size_t len)
{
    if (b->slirp)
        snprintf(out, len, "slirp");
    else if (b->tap)
        snprintf(out, len, "tap=%s", b->tap);
    else
        snprintf(out, len, "socket=%s", b->socket);
}

/* The card's backends: a tap queue per pair, pair i's on I/O thread i
 * (modulo their number); otherwise one backend carrying every pair's
 * frames, on the first I/O thread. Backend k's pairs are the device's
 * queue group k (vmdev_virtio_queue_group), whose kicks pci_host.c
 * serves on that same thread. The count, or 0 after a message. */
static unsigned make_backends(struct vmm_machine *m, const struct vmm_net *n,
                              const char *what,
                              struct vmdev_net_backend **backends)
{
    char why[512];
    struct vmdev_event_loop *loops[VMDEV_VIRTIO_NET_MAX_PAIRS];
    for (unsigned i = 0; i < n->queues; i++)
        loops[i] = vmm_pci_io_loop(m->pci, i);
    unsigned made = net_spec_open(&n->backend, loops, n->queues, backends,
                                  why, sizeof(why));
    if (!made)
        fprintf(stderr, "vmdev-run: --net %s: %s\n", what, why);
    return made;
}

static struct vmdev_virtio_device *make_net(const char *id, void *opaque)
{
    struct net_make *make = opaque;
    const struct vmm_net *n = make->net;
    char what[64];
    backend_name(&n->backend, what, sizeof(what));
    struct vmdev_net_backend *backends[VMDEV_VIRTIO_NET_MAX_PAIRS];
    unsigned num_backends = make_backends(make->m, n, what, backends);
    if (!num_backends)
        return NULL;
    for (unsigned i = 0; make->capture && i < num_backends; i++)
        (void)vmdev_net_set_capture(backends[i], make->capture); /* unstarted */
    struct vmdev_virtio_net_config config = {
        .num_pairs = (uint16_t)n->queues,
        .queue_size = (uint16_t)n->queue_size,
        .mtu = (uint16_t)n->mtu,
        .backends = backends,
        .num_backends = (uint16_t)num_backends,
        .rx_coalesce = { n->coalesce_usecs, n->coalesce_frames },
        .tx_coalesce = { n->coalesce_usecs, n->coalesce_frames },
    };
    memcpy(config.mac, n->mac, 6);
    struct vmdev_virtio_net *net = vmdev_virtio_net_new(id, make->m->vm->mem,
                                                        &config);
    if (!net) {
        fprintf(stderr, "vmdev-run: --net %s: %s\n", what, strerror(errno));
        return NULL;
    }
    make->m->nets[make->m->num_nets++] = net;
    return vmdev_virtio_net_device(net);
}

/* After the disks: Linux names the cards eth0, eth1, ... in slot order. */
static int create_nets(struct vmm_machine *m, const struct vmm_options *opts,
                       struct vmdev_net_capture *const *captures)
{
    for (unsigned i = 0; i < opts->num_nets; i++) {
        struct net_make make = { m, &opts->nets[i], captures[i] };
        if (vmm_pci_add_virtio(m->pci, m->devices, "virtio-net",
                               opts->nets[i].id, make_net, &make))
            return -1;
    }
    return 0;
}

static struct vmdev_virtio_device *make_console(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_console_output out = vmm_console_host_output(m->console_host);
    m->console = vmdev_virtio_console_new(id, m->vm->mem, &out);
    if (!m->console) {
        fprintf(stderr, "vmdev-run: --console: cannot create virtio-console\n");
        return NULL;
    }
    return vmdev_virtio_console_device(m->console);
}

static int create_console(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (opts->console.kind == VMM_OUTPUT_OFF)
        return 0;
    m->console_host = vmm_console_host_open(m->loop, opts);
    if (!m->console_host ||
        vmm_pci_add_virtio(m->pci, m->devices, "virtio-console", NULL,
                           make_console, m))
        return -1;
    vmm_console_host_start(m->console_host, m->console);
    return 0;
}

static struct vmdev_virtio_device *make_rng(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new(id, m->vm->mem, NULL);
    if (!rng) {
        fprintf(stderr, "vmdev-run: --rng: cannot create virtio-rng\n");
        return NULL;
    }
    return vmdev_virtio_rng_device(rng);
}

static int create_rng(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (!opts->rng)
        return 0;
    return vmm_pci_add_virtio(m->pci, m->devices, "virtio-rng", NULL, make_rng,
                              m);
}

static void destroy_i8042(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_i8042_free(m->i8042);
    m->i8042 = NULL;
}

static const struct vmdev_device_ops i8042_ops = { destroy_i8042, i8042_save,
                                                   i8042_restore };

static int create_i8042(struct vmm_machine *m)
{
    struct vmdev_device *dev;
    struct vmdev_i8042_config config = { .reset = reset, .opaque = m };
    if (add_device(m, "i8042", vmm_machine_ids[ID_I8042], &i8042_ops, &dev) ||
        claim_isa_irq(m, dev, IRQ_KEYBOARD, &config.kbd_irq))
        return -1;
    m->i8042 = vmdev_i8042_new(&config);
    if (!m->i8042)
        return -1;
    return map_pio(m, dev, PORT_I8042_DATA, 1, &vmdev_i8042_data_bus_ops,
                   m->i8042) ||
           map_pio(m, dev, PORT_I8042_COMMAND, 1, &vmdev_i8042_command_bus_ops,
                   m->i8042);
}

/*
 * Interrupt controllers first: every later device drives them, and the
 * device manager removes devices newest first, so they go last.
 */
struct vmm_machine *vmm_machine_create(struct vmm_vm *vm,
                                       struct vmdev_event_loop *loop,
                                       const struct vmm_options *opts,
                                       struct vmdev_block **images,
                                       struct vmdev_net_capture *const *captures)
{
    struct vmm_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->vm = vm;
    m->loop = loop;
    m->serial_out_fd = -1;
    m->serial_ready_fd = -1;
    m->devices = vmdev_device_manager_new();
    m->gsis = vmdev_resource_pool_new(0, VMDEV_IOAPIC_PINS);
    if (!m->devices || !m->gsis || create_ioapic(m) || create_pic(m) ||
        create_pit(m) || create_serial(m, opts) || create_rtc(m) ||
        create_acpi_pm(m) || create_i8042(m) || create_pci(m, opts) ||
        create_disks(m, opts, images) || create_nets(m, opts, captures) ||
        create_console(m, opts) ||
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
    /* The console (and the I/O thread that calls input_ready) goes with
     * the devices; its host side after, on the idle main loop. */
    vmdev_device_manager_free(m->devices);
    vmm_console_host_close(m->console_host);
    vmdev_resource_pool_free(m->gsis);
    free(m);
}

/* "pio 0x3f8-0x3ff", "gsi 16-23", "pci-slot 1": addresses in hex. */
static void print_resource(const struct vmdev_resource *r, bool first)
{
    unsigned long long start = r->base, last = r->base + r->size - 1;
    fprintf(stderr, "%s%s ", first ? " " : ", ", vmdev_resource_kind_name(r->kind));
    if (r->kind == VMDEV_RESOURCE_PIO || r->kind == VMDEV_RESOURCE_MMIO)
        fprintf(stderr, "0x%llx-0x%llx", start, last);
    else if (r->size > 1)
        fprintf(stderr, "%llu-%llu", start, last);
    else
        fprintf(stderr, "%llu", start);
}

/* One line per device: its id, type and what it owns. */
static void print_devices(struct vmm_machine *m)
{
    for (struct vmdev_device *d = vmdev_device_next(m->devices, NULL); d;
         d = vmdev_device_next(m->devices, d)) {
        struct vmdev_resource res[16];
        size_t n = vmdev_device_resources(d, res, 16);
        fprintf(stderr, "vmdev-run: device %s (%s):", vmdev_device_id(d),
                vmdev_device_type(d));
        for (size_t i = 0; i < n && i < 16; i++)
            print_resource(&res[i], i == 0);
        fprintf(stderr, "%s\n", n > 16 ? ", ..." : n ? "" : " nothing");
    }
}

/* One line per disk: what the image saw, and what the guest was told. */
static void print_disks(struct vmm_machine *m)
{
    for (unsigned i = 0; i < m->num_disks; i++) {
        struct vmdev_virtio_blk *blk = m->disks[i];
        struct vmdev_block_stats b = vmdev_block_stats(vmdev_virtio_blk_block(blk));
        struct vmdev_virtio_blk_stats v = vmdev_virtio_blk_stats(blk);
        fprintf(stderr,
                "vmdev-run: disk %s: reads=%llu writes=%llu flushes=%llu "
                "discards=%llu write_zeroes=%llu bytes_read=%llu "
                "bytes_written=%llu errors=%llu; requests=%llu ioerr=%llu "
                "unsupp=%llu data_in_flight_peak=%llu budget_waits=%llu\n",
                vmdev_virtio_blk_device(blk)->name,
                (unsigned long long)b.reads, (unsigned long long)b.writes,
                (unsigned long long)b.flushes, (unsigned long long)b.discards,
                (unsigned long long)b.write_zeroes,
                (unsigned long long)b.bytes_read,
                (unsigned long long)b.bytes_written,
                (unsigned long long)b.errors, (unsigned long long)v.requests,
                (unsigned long long)v.io_errors,
                (unsigned long long)v.unsupported,
                (unsigned long long)v.data_in_flight_peak,
                (unsigned long long)v.budget_waits);
        fprintf(stderr, "vmdev-run: disk %s: requests by queue:",
                vmdev_virtio_blk_device(blk)->name);
        for (uint16_t q = 0; q < vmdev_virtio_blk_device(blk)->num_queues; q++)
            fprintf(stderr, " %llu", (unsigned long long)
                                         vmdev_virtio_blk_queue_requests(blk, q));
        fputc('\n', stderr);
    }
}

/* One line per card, then its frames by queue (receive, transmit). */
static void print_nets(struct vmm_machine *m)
{
    for (unsigned i = 0; i < m->num_nets; i++) {
        struct vmdev_virtio_net *net = m->nets[i];
        const char *name = vmdev_virtio_net_device(net)->name;
        struct vmdev_virtio_net_stats s = vmdev_virtio_net_stats(net);
        fprintf(stderr,
                "vmdev-run: net %s: rx_frames=%llu rx_bytes=%llu "
                "tx_frames=%llu tx_bytes=%llu rx_filtered=%llu "
                "rx_dropped=%llu tx_dropped=%llu tx_segments=%llu "
                "tx_checksums=%llu ctrl=%llu ctrl_errors=%llu "
                "rx_coalesce_set=%u/%u tx_coalesce_set=%u/%u\n",
                name, (unsigned long long)s.rx_frames,
                (unsigned long long)s.rx_bytes,
                (unsigned long long)s.tx_frames,
                (unsigned long long)s.tx_bytes,
                (unsigned long long)s.rx_filtered,
                (unsigned long long)s.rx_dropped,
                (unsigned long long)s.tx_dropped,
                (unsigned long long)s.tx_segments,
                (unsigned long long)s.tx_checksums,
                (unsigned long long)s.ctrl_commands,
                (unsigned long long)s.ctrl_errors, s.rx_coalesce_set.usecs,
                s.rx_coalesce_set.frames, s.tx_coalesce_set.usecs,
                s.tx_coalesce_set.frames);
        uint16_t queues = (uint16_t)(vmdev_virtio_net_device(net)->num_queues - 1);
        for (unsigned tx = 0; tx < 2; tx++) {
            fprintf(stderr, "vmdev-run: net %s: %s frames by queue:", name,
                    tx ? "tx" : "rx");
            for (uint16_t q = (uint16_t)tx; q < queues; q += 2)
                fprintf(stderr, " %llu", (unsigned long long)
                        vmdev_virtio_net_queue_stats(net, q).frames);
            fputc('\n', stderr);
        }
    }
}

void vmm_machine_print_stats(struct vmm_machine *m)
{
    print_devices(m);
    print_disks(m);
    print_nets(m);
    uint64_t irqfd, signal_msi, tables_set;
    vmm_irq_routes_counts(m->vm->routes, &irqfd, &signal_msi, &tables_set);
    /* The routes' own irqfd writes, and those the PCI functions make. */
    irqfd += vmm_pci_msix_routed(m->pci);
    fprintf(stderr,
            "vmdev-run: queue notifications: ioeventfd=%llu; "
            "interrupts: irqfd=%llu signal_msi=%llu gsi_routing_sets=%llu\n",
            (unsigned long long)vmm_pci_ioeventfd_kicks(m->pci),
            (unsigned long long)irqfd, (unsigned long long)signal_msi,
            (unsigned long long)tables_set);
}
