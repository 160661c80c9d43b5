/* SPDX-License-Identifier: MIT */
#include "virtio_mmio_driver.h"

#include <stdio.h>
#include <stdlib.h>

#include "vmdev/virtio_device.h"
#include "vmdev/virtio_mmio.h"

#define R(name) VMDEV_VIRTIO_MMIO_##name

uint64_t vdrv_mmio_read(const struct vdrv_mmio *d, uint64_t offset,
                        unsigned size)
{
    uint64_t value = 0;
    if (vmdev_bus_read(d->bus, d->base + offset, size, &value)) {
        fprintf(stderr, "vdrv_mmio: bus refused a read at 0x%llx\n",
                (unsigned long long)offset);
        abort();
    }
    return value;
}

void vdrv_mmio_write(const struct vdrv_mmio *d, uint64_t offset,
                     uint64_t value, unsigned size)
{
    if (vmdev_bus_write(d->bus, d->base + offset, size, value)) {
        fprintf(stderr, "vdrv_mmio: bus refused a write at 0x%llx\n",
                (unsigned long long)offset);
        abort();
    }
}

uint32_t vdrv_mmio_rd(const struct vdrv_mmio *d, uint64_t offset)
{
    return (uint32_t)vdrv_mmio_read(d, offset, 4);
}

void vdrv_mmio_wr(const struct vdrv_mmio *d, uint64_t offset, uint32_t value)
{
    vdrv_mmio_write(d, offset, value, 4);
}

void vdrv_mmio_wr64(const struct vdrv_mmio *d, uint64_t low_offset,
                    uint64_t value)
{
    vdrv_mmio_wr(d, low_offset, (uint32_t)value);
    vdrv_mmio_wr(d, low_offset + 4, (uint32_t)(value >> 32));
}

void vdrv_mmio_add_status(const struct vdrv_mmio *d, uint32_t bits)
{
    vdrv_mmio_wr(d, R(STATUS), vdrv_mmio_rd(d, R(STATUS)) | bits);
}

uint32_t vdrv_mmio_negotiate(const struct vdrv_mmio *d, uint64_t wanted)
{
    vdrv_mmio_wr(d, R(STATUS), 0);
    vdrv_mmio_add_status(d, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE);
    vdrv_mmio_add_status(d, VMDEV_VIRTIO_STATUS_DRIVER);
    /* vm_get_features() reads the high window first. */
    vdrv_mmio_wr(d, R(DEVICE_FEATURES_SEL), 1);
    uint64_t offered = (uint64_t)vdrv_mmio_rd(d, R(DEVICE_FEATURES)) << 32;
    vdrv_mmio_wr(d, R(DEVICE_FEATURES_SEL), 0);
    offered |= vdrv_mmio_rd(d, R(DEVICE_FEATURES));
    uint64_t accepted = offered & wanted;
    vdrv_mmio_wr(d, R(DRIVER_FEATURES_SEL), 1);
    vdrv_mmio_wr(d, R(DRIVER_FEATURES), (uint32_t)(accepted >> 32));
    vdrv_mmio_wr(d, R(DRIVER_FEATURES_SEL), 0);
    vdrv_mmio_wr(d, R(DRIVER_FEATURES), (uint32_t)accepted);
    vdrv_mmio_add_status(d, VMDEV_VIRTIO_STATUS_FEATURES_OK);
    return vdrv_mmio_rd(d, R(STATUS));
}

int vdrv_mmio_setup_queue(const struct vdrv_mmio *d, unsigned index,
                          struct vdrv_queue *q, struct vdrv_mem *m,
                          uint16_t size)
{
    vdrv_mmio_wr(d, R(QUEUE_SEL), index);
    if (vdrv_mmio_rd(d, R(QUEUE_READY)) != 0)
        return -1; /* "Queue shouldn't already be set up" */
    uint32_t max = vdrv_mmio_rd(d, R(QUEUE_NUM_MAX));
    if (max == 0 || size > max)
        return -1;
    vdrv_queue_init(q, m, size, false);
    vdrv_mmio_wr(d, R(QUEUE_NUM), size);
    vdrv_mmio_wr64(d, R(QUEUE_DESC_LOW), q->desc);
    vdrv_mmio_wr64(d, R(QUEUE_DRIVER_LOW), q->avail);
    vdrv_mmio_wr64(d, R(QUEUE_DEVICE_LOW), q->used);
    vdrv_mmio_wr(d, R(QUEUE_READY), 1);
    return 0;
}

int vdrv_mmio_probe(const struct vdrv_mmio *d, uint64_t wanted,
                    struct vdrv_queue *queues, unsigned num_queues,
                    struct vdrv_mem *m, uint16_t size)
{
    if (!(vdrv_mmio_negotiate(d, wanted) & VMDEV_VIRTIO_STATUS_FEATURES_OK))
        return -1;
    for (unsigned i = 0; i < num_queues; i++)
        if (vdrv_mmio_setup_queue(d, i, &queues[i], m, size))
            return -1;
    vdrv_mmio_add_status(d, VMDEV_VIRTIO_STATUS_DRIVER_OK);
    return 0;
}

uint32_t vdrv_mmio_interrupt(const struct vdrv_mmio *d)
{
    uint32_t status = vdrv_mmio_rd(d, R(INTERRUPT_STATUS));
    vdrv_mmio_wr(d, R(INTERRUPT_ACK), status);
    return status;
}
