/* SPDX-License-Identifier: MIT */
/*
 * A guest driver for the virtio-mmio transport, for tests: it makes the
 * register accesses Linux's drivers/virtio/virtio_mmio.c and the virtio
 * core make, in their order (virtio 1.2, 3.1.1 and 4.2.3), through an
 * MMIO bus at absolute addresses. Written from the specification and the
 * Linux driver's behaviour, not from the transport's code.
 */
#ifndef VMDEV_TEST_VIRTIO_MMIO_DRIVER_H
#define VMDEV_TEST_VIRTIO_MMIO_DRIVER_H

#include <stdint.h>

#include "virtio_driver.h"
#include "vmdev/bus.h"

struct vdrv_mmio {
    struct vmdev_bus *bus;
    uint64_t base;
};

/* Any-width access; aborts the test when the bus refuses it outright
 * (nothing mapped, or a size the window did not declare). */
uint64_t vdrv_mmio_read(const struct vdrv_mmio *d, uint64_t offset,
                        unsigned size);
void vdrv_mmio_write(const struct vdrv_mmio *d, uint64_t offset,
                     uint64_t value, unsigned size);
/* The 32-bit register accesses a driver makes (readl/writel). */
uint32_t vdrv_mmio_rd(const struct vdrv_mmio *d, uint64_t offset);
void vdrv_mmio_wr(const struct vdrv_mmio *d, uint64_t offset, uint32_t value);
/* A 64-bit address through a Low/High register pair. */
void vdrv_mmio_wr64(const struct vdrv_mmio *d, uint64_t low_offset,
                    uint64_t value);

/* virtio_add_status(): Status |= bits, read-modify-write. */
void vdrv_mmio_add_status(const struct vdrv_mmio *d, uint32_t bits);
/*
 * Reset, ACKNOWLEDGE, DRIVER, read both feature windows, accept
 * offered & wanted, FEATURES_OK (3.1.1 steps 1-5). Returns the status
 * read back, whose FEATURES_OK bit says whether the device agreed.
 */
uint32_t vdrv_mmio_negotiate(const struct vdrv_mmio *d, uint64_t wanted);
/*
 * vm_setup_vq(): select the queue, check it is not ready and exists,
 * lay out q in m at `size` and program it, QueueReady = 1 (4.2.3.2).
 * Returns 0, or -1 where Linux would fail the probe.
 */
int vdrv_mmio_setup_queue(const struct vdrv_mmio *d, unsigned index,
                          struct vdrv_queue *q, struct vdrv_mem *m,
                          uint16_t size);
/*
 * The whole probe: negotiate, set up queues 0..num_queues-1 at `size`,
 * DRIVER_OK (3.1.1). Returns 0, or -1 where Linux would fail the probe.
 */
int vdrv_mmio_probe(const struct vdrv_mmio *d, uint64_t wanted,
                    struct vdrv_queue *queues, unsigned num_queues,
                    struct vdrv_mem *m, uint16_t size);
/* vm_interrupt(): read InterruptStatus and acknowledge what it showed. */
uint32_t vdrv_mmio_interrupt(const struct vdrv_mmio *d);

#endif
