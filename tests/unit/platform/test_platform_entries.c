/* SPDX-License-Identifier: MIT */
/*
 * Every platform device is added to a device manager with the library's
 * own entry ops (vmdev_*_device_ops) and the device as opaque: a machine
 * saved through the manager restores into fresh devices, and freeing the
 * manager frees the devices (AddressSanitizer counts what is left).
 */
#include "platform_fakes.h"
#include "test.h"
#include "vmdev/acpi_pm.h"
#include "vmdev/i8042.h"
#include "vmdev/ioapic.h"
#include "vmdev/pic.h"
#include "vmdev/pit.h"
#include "vmdev/rtc.h"
#include "vmdev/uart16550.h"

static struct fake_clock clock_state = { 1000000000ull, 1700000000000000000ull };
static struct fake_timer timer_state;
static struct fake_irq irq_state;

static void drop_msi(void *opaque, const struct vmdev_msi_msg *msg) {}
static void ignore(void *opaque) {}

/* One device: how to make it, a register to set and how to read it. */
struct platform_case {
    const char *type;
    const struct vmdev_device_ops *ops;
    void *(*make)(void);
    void (*set)(void *dev);
    uint32_t (*get)(void *dev);
    uint32_t value; /* what get() answers after set() */
};

static void *make_uart(void)
{
    struct vmdev_uart16550_config c = { .irq = fake_irq_line(&irq_state) };
    return vmdev_uart16550_new(&c);
}
static void set_uart(void *d) { vmdev_uart16550_write(d, 7, 0x5a); } /* SCR */
static uint32_t get_uart(void *d) { return vmdev_uart16550_read(d, 7); }

static void *make_rtc(void)
{
    struct vmdev_rtc_config c = { .clock = fake_clock_iface(&clock_state),
                                  .timer = fake_timer_iface(&timer_state),
                                  .irq = fake_irq_line(&irq_state) };
    return vmdev_rtc_new(&c);
}
static void set_rtc(void *d) /* a byte of CMOS RAM */
{
    vmdev_rtc_write(d, 0, 0x40);
    vmdev_rtc_write(d, 1, 0xa5);
}
static uint32_t get_rtc(void *d)
{
    vmdev_rtc_write(d, 0, 0x40);
    return vmdev_rtc_read(d, 1);
}

static void *make_pic(void)
{
    struct vmdev_pic_config c = { .intr = fake_irq_line(&irq_state) };
    return vmdev_pic_new(&c);
}
static void set_pic(void *d) { vmdev_pic_write(d, VMDEV_PIC_SLAVE, 1, 0x5a); }
static uint32_t get_pic(void *d) { return vmdev_pic_read(d, VMDEV_PIC_SLAVE, 1); }

static void *make_pit(void)
{
    struct vmdev_pit_config c = { .clock = fake_clock_iface(&clock_state),
                                  .timer = fake_timer_iface(&timer_state),
                                  .irq = fake_irq_line(&irq_state) };
    return vmdev_pit_new(&c);
}
static void set_pit(void *d) { vmdev_pit_port61_write(d, 0x03); }
static uint32_t get_pit(void *d) { return vmdev_pit_port61_read(d) & 0x03; }

static void *make_acpi_pm(void)
{
    struct vmdev_acpi_pm_config c = { .clock = fake_clock_iface(&clock_state),
                                      .timer = fake_timer_iface(&timer_state),
                                      .sci = fake_irq_line(&irq_state),
                                      .poweroff = ignore, .reset = ignore };
    return vmdev_acpi_pm_new(&c);
}
static void set_acpi_pm(void *d) /* PM1 enable: the power button */
{
    vmdev_acpi_pm_write(d, VMDEV_ACPI_PM1_EVT_OFFSET + 2, 2, 0x0100);
}
static uint32_t get_acpi_pm(void *d)
{
    return vmdev_acpi_pm_read(d, VMDEV_ACPI_PM1_EVT_OFFSET + 2, 2);
}

static void *make_i8042(void)
{
    struct vmdev_i8042_config c = { .kbd_irq = fake_irq_line(&irq_state),
                                    .reset = ignore };
    return vmdev_i8042_new(&c);
}
static void set_i8042(void *d) /* the command byte */
{
    vmdev_i8042_write(d, VMDEV_I8042_PORT_COMMAND, 0x60);
    vmdev_i8042_write(d, VMDEV_I8042_PORT_DATA, 0x24);
}
static uint32_t get_i8042(void *d)
{
    vmdev_i8042_write(d, VMDEV_I8042_PORT_COMMAND, 0x20);
    return vmdev_i8042_read(d, VMDEV_I8042_PORT_DATA);
}

static void *make_ioapic(void)
{
    struct vmdev_msi_sink sink = { .send = drop_msi };
    return vmdev_ioapic_new(0, &sink);
}
static void set_ioapic(void *d) /* pin 3: masked, vector 0x33 */
{
    vmdev_ioapic_write(d, VMDEV_IOAPIC_REGSEL, 0x10 + 2 * 3);
    vmdev_ioapic_write(d, VMDEV_IOAPIC_WINDOW, 0x10033);
}
static uint32_t get_ioapic(void *d)
{
    vmdev_ioapic_write(d, VMDEV_IOAPIC_REGSEL, 0x10 + 2 * 3);
    return vmdev_ioapic_read(d, VMDEV_IOAPIC_WINDOW) & 0x100ff;
}

static const struct platform_case devices_under_test[] = {
    { "uart", &vmdev_uart16550_device_ops, make_uart, set_uart, get_uart, 0x5a },
    { "rtc", &vmdev_rtc_device_ops, make_rtc, set_rtc, get_rtc, 0xa5 },
    { "pic", &vmdev_pic_device_ops, make_pic, set_pic, get_pic, 0x5a },
    { "pit", &vmdev_pit_device_ops, make_pit, set_pit, get_pit, 0x03 },
    { "acpi-pm", &vmdev_acpi_pm_device_ops, make_acpi_pm, set_acpi_pm,
      get_acpi_pm, 0x0100 },
    { "i8042", &vmdev_i8042_device_ops, make_i8042, set_i8042, get_i8042,
      0x24 },
    { "ioapic", &vmdev_ioapic_device_ops, make_ioapic, set_ioapic, get_ioapic,
      0x10033 },
};
#define NUM_CASES (sizeof(devices_under_test) / sizeof(devices_under_test[0]))

/* A manager holding a fresh device of every case; devices[i] is case
 * i's. NULL when one cannot be made or added. */
static struct vmdev_device_manager *machine(void *devices[NUM_CASES])
{
    struct vmdev_device_manager *mgr = vmdev_device_manager_new();
    for (unsigned i = 0; mgr && i < NUM_CASES; i++) {
        const struct platform_case *c = &devices_under_test[i];
        struct vmdev_device *dev;
        devices[i] = c->make();
        if (!devices[i] ||
            vmdev_device_add(mgr, c->type, NULL, c->ops, devices[i], &dev)) {
            if (devices[i])
                c->ops->destroy(devices[i]);
            vmdev_device_manager_free(mgr);
            return NULL;
        }
    }
    return mgr;
}

static void entries_save_restore_and_free_their_devices(void)
{
    void *before[NUM_CASES], *after[NUM_CASES];
    struct vmdev_device_manager *saved = machine(before);
    CHECK(saved != NULL);
    for (unsigned i = 0; i < NUM_CASES; i++) {
        devices_under_test[i].set(before[i]);
        CHECK_EQ(devices_under_test[i].get(before[i]), devices_under_test[i].value);
    }
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_device_manager_save(saved, &w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    vmdev_device_manager_free(saved);

    struct vmdev_device_manager *restored = machine(after);
    CHECK(restored != NULL);
    for (unsigned i = 0; i < NUM_CASES; i++)
        CHECK(devices_under_test[i].get(after[i]) != devices_under_test[i].value); /* fresh */
    const struct vmdev_device *failed = NULL;
    int ret = vmdev_device_manager_restore(restored, w.data, w.len, &failed);
    if (ret)
        fprintf(stderr, "restoring %s: %d\n", vmdev_device_id(failed), ret);
    CHECK_EQ(ret, 0);
    for (unsigned i = 0; i < NUM_CASES; i++) {
        if (devices_under_test[i].get(after[i]) != devices_under_test[i].value)
            fprintf(stderr, "%s did not come back\n", devices_under_test[i].type);
        CHECK_EQ(devices_under_test[i].get(after[i]), devices_under_test[i].value);
    }
    vmdev_device_manager_free(restored);
    vmdev_state_writer_release(&w);
}

TEST_MAIN(TEST(entries_save_restore_and_free_their_devices))
