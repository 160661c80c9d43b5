/* SPDX-License-Identifier: MIT */
/*
 * The machine: a device manager holding every device with what it owns,
 * the platform devices (machine_platform.c) and the virtio devices on PCI
 * (machine_virtio.c), built in that order and torn down newest first.
 */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

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

struct vmm_machine *vmm_machine_create(struct vmm_vm *vm,
                                       struct vmdev_event_loop *loop,
                                       struct vmdev_log *log,
                                       const struct vmm_options *opts,
                                       struct vmdev_block **images,
                                       struct vmdev_net_capture *const *captures)
{
    struct vmm_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->vm = vm;
    m->loop = loop;
    m->log = log;
    m->devices = vmdev_device_manager_new();
    m->gsis = vmdev_resource_pool_new(0, VMDEV_IOAPIC_PINS);
    if (!m->devices || !m->gsis || vmm_machine_add_platform(m, opts) ||
        vmm_machine_add_virtio(m, opts, images, captures)) {
        vmm_machine_destroy(m);
        return NULL;
    }
    return m;
}

struct vmdev_device_manager *vmm_machine_devices(struct vmm_machine *m)
{
    return m->devices;
}

void vmm_machine_destroy(struct vmm_machine *m)
{
    if (!m)
        return;
    vmm_machine_unhook_platform(m);
    /* The console (and the I/O thread that calls input_ready) goes with
     * the devices; the host sides after, on the idle main loop. */
    vmdev_device_manager_free(m->devices);
    vmm_machine_release_platform(m);
    vmm_console_host_close(m->console_host);
    vmdev_resource_pool_free(m->gsis);
    free(m);
}
