/* SPDX-License-Identifier: MIT */
/*
 * The PC's platform devices: the IOAPIC and the PICs that every ISA
 * line drives, then the PIT, COM1, the RTC, the ACPI PM block and the
 * i8042, each at its legacy ports. Each device is its device-manager
 * entry's opaque with the library's own ops (vmdev_*_device_ops), so
 * the machine writes no save, restore or free of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "machine_internal.h"
#include "vmdev/clock.h"

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

static struct vmdev_irq_line isa_line(struct vmm_machine *m, unsigned irq)
{
    m->isa_lines[irq] = (struct isa_line){ m, irq };
    return (struct vmdev_irq_line){ set_isa_irq, &m->isa_lines[irq] };
}

/*
 * Add `device` (NULL: its creation failed) as an entry whose ops are the
 * library's for it. On failure the device is freed through those ops
 * and the machine, torn down next, does not look at it again.
 */
static struct vmdev_device *add_platform_device(struct vmm_machine *m,
                                                const char *type,
                                                enum machine_device id,
                                                const struct vmdev_device_ops *ops,
                                                void *device)
{
    const char *name = vmm_machine_ids[id];
    if (!device) {
        fprintf(stderr, "vmdev-run: cannot create %s: %s\n", name,
                strerror(errno));
        return NULL;
    }
    struct vmdev_device *dev;
    int ret = vmdev_device_add(m->devices, type, name, ops, device, &dev);
    if (ret) {
        fprintf(stderr, "vmdev-run: cannot add %s: %s\n", name,
                strerror(-ret));
        ops->destroy(device);
        return NULL;
    }
    return dev;
}

/* The device drives ISA line irq: its IOAPIC pin becomes its resource. */
static int claim_isa_irq(struct vmm_machine *m, struct vmdev_device *dev,
                         unsigned irq)
{
    int ret = vmdev_device_reserve(dev, m->gsis, VMDEV_RESOURCE_GSI,
                                   isa_gsi(irq), 1);
    if (ret)
        fprintf(stderr, "vmdev-run: %s: IRQ %u: %s\n", vmdev_device_id(dev),
                irq, ret == -EBUSY ? "taken" : strerror(-ret));
    return ret ? -1 : 0;
}

static int map_pio(struct vmm_machine *m, struct vmdev_device *dev,
                   uint16_t port, uint16_t len, unsigned access_sizes,
                   const struct vmdev_bus_ops *ops, void *opaque)
{
    int ret = vmdev_device_map(dev, m->vm->pio, VMDEV_RESOURCE_PIO, port, len,
                               access_sizes, ops, opaque);
    if (ret)
        fprintf(stderr, "vmdev-run: %s: cannot map port 0x%x: %s\n",
                vmdev_device_id(dev), port, strerror(-ret));
    return ret ? -1 : 0;
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
    struct vmdev_msi_sink sink = { .send = vmm_vm_send_msi, .opaque = m->vm };
    m->ioapic = vmdev_ioapic_new(0, &sink);
    struct vmdev_device *dev = add_platform_device(
        m, "ioapic", ID_IOAPIC, &vmdev_ioapic_device_ops, m->ioapic);
    if (!dev)
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

void vmm_machine_set_ioapic_pin(void *opaque, unsigned gsi, bool level)
{
    struct vmm_machine *m = opaque;
    vmdev_ioapic_set_irq(m->ioapic, gsi, level);
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
    struct vmdev_device *dev = add_platform_device(m, "pic", ID_PIC,
                                                   &vmdev_pic_device_ops,
                                                   m->pic);
    if (!dev)
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
    return map_pio(m, dev, PORT_PIC_MASTER, VMDEV_PIC_PORTS, VMDEV_ACCESS_1,
                   &vmdev_pic_master_bus_ops, m->pic) ||
           map_pio(m, dev, PORT_PIC_SLAVE, VMDEV_PIC_PORTS, VMDEV_ACCESS_1,
                   &vmdev_pic_slave_bus_ops, m->pic) ||
           map_pio(m, dev, PORT_ELCR, VMDEV_PIC_ELCR_PORTS, VMDEV_ACCESS_1,
                   &vmdev_pic_elcr_bus_ops, m->pic);
}

/* A device's timer is created before the device (the device's config
 * takes it), so its callback finds the device through the machine. */
static void pit_timer_expired(void *opaque)
{
    struct vmm_machine *m = opaque;
    vmdev_pit_timer_expired(m->pit);
}

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

static struct vmdev_event_timer *new_timer(struct vmm_machine *m,
                                           void (*expired)(void *),
                                           struct vmdev_timer *timer)
{
    struct vmdev_event_timer *t = vmdev_event_loop_timer_new(m->loop, expired,
                                                             m, timer);
    if (!t)
        fprintf(stderr, "vmdev-run: cannot create a timer: %s\n",
                strerror(errno));
    return t;
}

static int create_pit(struct vmm_machine *m)
{
    struct vmdev_pit_config config = { .clock = vmdev_host_clock,
                                       .irq = isa_line(m, IRQ_PIT) };
    m->pit_timer = new_timer(m, pit_timer_expired, &config.timer);
    if (!m->pit_timer)
        return -1;
    m->pit = vmdev_pit_new(&config);
    struct vmdev_device *dev = add_platform_device(m, "pit", ID_PIT,
                                                   &vmdev_pit_device_ops,
                                                   m->pit);
    return !dev || claim_isa_irq(m, dev, IRQ_PIT) ||
                   map_pio(m, dev, PORT_PIT, VMDEV_PIT_PORTS, VMDEV_ACCESS_1,
                           &vmdev_pit_bus_ops, m->pit) ||
                   map_pio(m, dev, PORT_SYSTEM_CONTROL_B, 1, VMDEV_ACCESS_1,
                           &vmdev_pit_port61_bus_ops, m->pit)
               ? -1
               : 0;
}

static int create_serial(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (opts->serial.kind == VMM_OUTPUT_OFF)
        return 0;
    m->serial_host = vmm_serial_host_open(m->loop, &opts->serial,
                                          &m->vm->exiting);
    if (!m->serial_host)
        return -1;
    struct vmdev_uart16550_config config = {
        .irq = isa_line(m, IRQ_COM1),
        .modem_inputs = VMDEV_UART_MSR_CTS | VMDEV_UART_MSR_DSR |
                        VMDEV_UART_MSR_DCD,
    };
    vmm_serial_host_callbacks(m->serial_host, &config);
    m->uart = vmdev_uart16550_new(&config);
    struct vmdev_device *dev = add_platform_device(
        m, "uart", ID_COM1, &vmdev_uart16550_device_ops, m->uart);
    return !dev || claim_isa_irq(m, dev, IRQ_COM1) ||
                   vmm_serial_host_start(m->serial_host, m->uart) ||
                   map_pio(m, dev, PORT_COM1, VMDEV_UART16550_REGS,
                           VMDEV_ACCESS_1, &vmdev_uart16550_bus_ops, m->uart)
               ? -1
               : 0;
}

static int create_rtc(struct vmm_machine *m)
{
    struct vmdev_rtc_config config = { .clock = vmdev_host_clock,
                                       .irq = isa_line(m, IRQ_RTC),
                                       .log = m->log };
    m->rtc_timer = new_timer(m, rtc_timer_expired, &config.timer);
    if (!m->rtc_timer)
        return -1;
    m->rtc = vmdev_rtc_new(&config);
    struct vmdev_device *dev = add_platform_device(m, "rtc", ID_RTC,
                                                   &vmdev_rtc_device_ops,
                                                   m->rtc);
    return !dev || claim_isa_irq(m, dev, IRQ_RTC) ||
                   map_pio(m, dev, PORT_RTC, 2, VMDEV_ACCESS_1,
                           &vmdev_rtc_bus_ops, m->rtc)
               ? -1
               : 0;
}

static int create_acpi_pm(struct vmm_machine *m)
{
    struct vmdev_acpi_pm_config config = {
        .clock = vmdev_host_clock,
        .timer_32bit = true,
        .sci = isa_line(m, IRQ_SCI),
        .poweroff = poweroff,
        .reset = reset,
        .opaque = m,
        .log = m->log,
    };
    m->pm_timer = new_timer(m, pm_timer_expired, &config.timer);
    if (!m->pm_timer)
        return -1;
    m->pm = vmdev_acpi_pm_new(&config);
    struct vmdev_device *dev = add_platform_device(m, "acpi-pm", ID_PM,
                                                   &vmdev_acpi_pm_device_ops,
                                                   m->pm);
    return !dev || claim_isa_irq(m, dev, IRQ_SCI) ||
                   map_pio(m, dev, PORT_ACPI_PM, VMDEV_ACPI_PM_BLOCK_LEN,
                           VMDEV_ACCESS_UP_TO_4, &vmdev_acpi_pm_bus_ops, m->pm)
               ? -1
               : 0;
}

static int create_i8042(struct vmm_machine *m)
{
    struct vmdev_i8042_config config = {
        .kbd_irq = isa_line(m, IRQ_KEYBOARD),
        .reset = reset,
        .opaque = m,
        .log = m->log,
    };
    m->i8042 = vmdev_i8042_new(&config);
    struct vmdev_device *dev = add_platform_device(m, "i8042", ID_I8042,
                                                   &vmdev_i8042_device_ops,
                                                   m->i8042);
    return !dev || claim_isa_irq(m, dev, IRQ_KEYBOARD) ||
                   map_pio(m, dev, PORT_I8042_DATA, 1, VMDEV_ACCESS_1,
                           &vmdev_i8042_data_bus_ops, m->i8042) ||
                   map_pio(m, dev, PORT_I8042_COMMAND, 1, VMDEV_ACCESS_1,
                           &vmdev_i8042_command_bus_ops, m->i8042)
               ? -1
               : 0;
}

/* The controllers first: every later device drives them, and the device
 * manager removes devices newest first, so they go last. */
int vmm_machine_add_platform(struct vmm_machine *m,
                             const struct vmm_options *opts)
{
    return create_ioapic(m) || create_pic(m) || create_pit(m) ||
                   create_serial(m, opts) || create_rtc(m) ||
                   create_acpi_pm(m) || create_i8042(m)
               ? -1
               : 0;
}

void vmm_machine_unhook_platform(struct vmm_machine *m)
{
    if (m->vm->extint_opaque == m)
        m->vm->extint_ack = NULL;
    if (m->vm->eoi_opaque == m)
        m->vm->eoi = NULL;
}

void vmm_machine_release_platform(struct vmm_machine *m)
{
    vmdev_event_loop_timer_free(m->loop, m->pit_timer);
    vmdev_event_loop_timer_free(m->loop, m->rtc_timer);
    vmdev_event_loop_timer_free(m->loop, m->pm_timer);
    vmm_serial_host_close(m->serial_host);
}
