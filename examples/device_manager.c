/* SPDX-License-Identifier: MIT */
/*
 * A device manager: devices added by type and id, their resources claimed
 * through their entries (a UART's ports on the port bus), listed, found,
 * then one removed, which releases what it held: its ports answer no more.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <vmdev/vmdev.h>

static void destroy_uart(void *opaque)
{
    vmdev_uart16550_free(opaque);
}

static const struct vmdev_device_ops uart_ops = { .destroy = destroy_uart };

/* A UART added as `id` and mapped at port `base`. */
static int add_uart(struct vmdev_device_manager *mgr, struct vmdev_bus *pio,
                    const char *id, uint16_t base)
{
    struct vmdev_uart16550_config config = { 0 };
    struct vmdev_uart16550 *uart = vmdev_uart16550_new(&config);
    if (!uart)
        return -ENOMEM;
    struct vmdev_device *dev;
    int ret = vmdev_device_add(mgr, "uart", id, &uart_ops, uart, &dev);
    if (ret) {
        vmdev_uart16550_free(uart);
        return ret;
    }
    ret = vmdev_device_map(dev, pio, VMDEV_RESOURCE_PIO, base,
                           VMDEV_UART16550_REGS, VMDEV_ACCESS_1,
                           &vmdev_uart16550_bus_ops, uart);
    if (ret)
        vmdev_device_remove(mgr, dev);
    return ret;
}

static void list(struct vmdev_device_manager *mgr)
{
    for (struct vmdev_device *d = vmdev_device_next(mgr, NULL); d;
         d = vmdev_device_next(mgr, d)) {
        struct vmdev_resource r[4];
        size_t n = vmdev_device_resources(d, r, 4);
        printf("  %s (%s):", vmdev_device_id(d), vmdev_device_type(d));
        for (size_t i = 0; i < n && i < 4; i++)
            printf(" %s 0x%llx+%llu", vmdev_resource_kind_name(r[i].kind),
                   (unsigned long long)r[i].base,
                   (unsigned long long)r[i].size);
        printf("\n");
    }
}

int main(void)
{
    struct vmdev_device_manager *mgr = vmdev_device_manager_new();
    struct vmdev_bus *pio = vmdev_bus_new("pio", 0xffff);
    if (!mgr || !pio)
        return 1;
    int ret = add_uart(mgr, pio, "com1", 0x3f8);
    if (!ret)
        ret = add_uart(mgr, pio, "com2", 0x2f8);
    /* Two devices may not share an id, nor a port. */
    if (ret || add_uart(mgr, pio, "com1", 0x3e8) != -EEXIST ||
        add_uart(mgr, pio, "com3", 0x2f8) == 0) {
        fprintf(stderr, "device_manager: adding gave the wrong answers\n");
        return 1;
    }
    printf("device_manager: %zu devices\n", vmdev_device_count(mgr));
    list(mgr);

    uint64_t scratch = 0;
    vmdev_bus_write(pio, 0x3f8 + VMDEV_UART_SCR, 1, 0x5a);
    vmdev_bus_read(pio, 0x3f8 + VMDEV_UART_SCR, 1, &scratch);
    struct vmdev_device *com1 = vmdev_device_find(mgr, "com1");
    if (vmdev_device_count(mgr) != 2 || !com1 || scratch != 0x5a) {
        fprintf(stderr, "device_manager: com1 is not there as added\n");
        return 1;
    }

    vmdev_device_remove(mgr, com1);
    uint64_t after = 0;
    int refused = vmdev_bus_read(pio, 0x3f8 + VMDEV_UART_SCR, 1, &after);
    if (vmdev_device_find(mgr, "com1") || vmdev_device_count(mgr) != 1 ||
        !refused || after != UINT64_MAX) {
        fprintf(stderr, "device_manager: com1 or its ports outlived it\n");
        return 1;
    }
    printf("device_manager: com1 removed, its ports released; left:\n");
    list(mgr);
    vmdev_device_manager_free(mgr);
    vmdev_bus_free(pio);
    return 0;
}
