/* SPDX-License-Identifier: MIT */
/*
 * What the virtio-mmio tests share: an echo device behind the transport,
 * mapped on an MMIO bus that the driver-side library reaches as a guest
 * would, with its interrupt line recorded. One rig per test executable.
 */
#ifndef VMDEV_TEST_MMIO_RIG_H
#define VMDEV_TEST_MMIO_RIG_H

#include <stdlib.h>
#include <string.h>

#include "fake_irq.h"
#include "virtio_driver.h"
#include "virtio_echo_device.h"
#include "virtio_mmio_driver.h"
#include "vmdev/bus.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_mmio.h"

#define RAM_BASE 0x10000ull
#define RAM_SIZE (1u << 20)
#define MMIO_BASE 0xd0000000ull
#define QUEUE_MAX 16
#define NUM_QUEUES 2

#define R(name) VMDEV_VIRTIO_MMIO_##name

static struct vdrv_mem mem;
static struct vdrv_queue drvq[NUM_QUEUES];
static struct echo_device toy;
static struct fake_irq line;
static struct vmdev_virtio_mmio *mmio;
static struct vdrv_mmio drv;

/* A fresh device and transport, not yet probed by the driver. */
static inline void rig_up(void)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1) ||
        echo_device_init(&toy, "toy0", NUM_QUEUES, QUEUE_MAX, mem.mem))
        abort();
    memset(&line, 0, sizeof(line));
    struct vmdev_irq_line irq = fake_irq_line(&line);
    mmio = vmdev_virtio_mmio_new(&toy.dev, &irq);
    drv.bus = vmdev_bus_new("mmio", UINT64_MAX);
    drv.base = MMIO_BASE;
    if (!mmio || !drv.bus ||
        vmdev_bus_register(drv.bus, MMIO_BASE, VMDEV_VIRTIO_MMIO_SIZE,
                           VMDEV_ACCESS_ANY, &vmdev_virtio_mmio_bus_ops,
                           mmio))
        abort();
}

static inline void rig_down(void)
{
    vmdev_bus_free(drv.bus);
    vmdev_virtio_mmio_free(mmio);
    vmdev_virtio_free(&toy.dev);
}

/* The driver's probe and setup of both queues, as Linux's vm_probe and
 * vm_find_vqs do them. */
static inline void linux_bring_up(void)
{
    if (vdrv_mmio_probe(
            &drv, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) | ECHO_FEATURES,
            drvq, NUM_QUEUES, &mem, 8))
        abort();
}

/* 32-bit register accesses as the guest makes them: through the bus. */
static inline uint32_t rd(uint64_t offset)
{
    return vdrv_mmio_rd(&drv, offset);
}

static inline void wr(uint64_t offset, uint32_t value)
{
    vdrv_mmio_wr(&drv, offset, value);
}

#endif
