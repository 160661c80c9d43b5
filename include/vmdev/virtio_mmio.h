/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport, version 2 (virtio 1.2, 4.2): a 0x200-byte
 * register window in front of one vmdev_virtio_device, with one
 * level-triggered interrupt line.
 *
 *   0x000-0x0ff  control registers (4.2.2), 32-bit aligned accesses only
 *   0x100-0x1ff  the device's configuration space, 1/2/4/8-byte accesses
 *
 * Register the window on an MMIO bus with VMDEV_ACCESS_ANY and
 * vmdev_virtio_mmio_bus_ops; the transport itself refuses register
 * accesses that are not 32-bit and aligned (4.2.2.2). Accesses the
 * specification forbids the driver (writes to read-only registers, reads
 * of write-only ones, narrow or misaligned register accesses, offsets no
 * register lives at) read 0 or are ignored, counted and logged at
 * VMDEV_LOG_GUEST, rate-limited per transport.
 *
 * Only the modern layout is offered: Version reads 2, and the legacy
 * (version 1) registers GuestPageSize, QueueAlign and QueuePFN do not
 * exist. Queues are set up before DRIVER_OK (3.1.1 step 7): QueueReady
 * written to 1 after DRIVER_OK is ignored, and a queue, once the device
 * enabled it, stops only with a device reset. There are no shared memory
 * regions (SHMLen reads -1) and no per-queue reset (QueueReset reads 0).
 *
 * InterruptStatus bit 0 reports used buffers, bit 1 a configuration
 * change (4.2.2); the line is high while any bit is set and the driver
 * lowers it through InterruptACK.
 *
 * Locking: every entry point takes the device's lock (dev->lock), which
 * also guards the transport's own registers. The interrupt line is set
 * with that lock held (lock order: virtio device -> interrupt controller),
 * so the line's set() must not call back into this device.
 */
#ifndef VMDEV_VIRTIO_MMIO_H
#define VMDEV_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "vmdev/bus.h"
#include "vmdev/irq.h"
#include "vmdev/state.h"
#include "vmdev/virtio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the window to register on the bus and give to Linux. */
#define VMDEV_VIRTIO_MMIO_SIZE 0x200u

/* "virt" in little-endian ASCII (4.2.2). */
#define VMDEV_VIRTIO_MMIO_MAGIC 0x74726976u
#define VMDEV_VIRTIO_MMIO_VERSION 2u
/*
 * VendorID is free for the device to choose (4.2.2) and Linux ignores it;
 * this is "VMDV" in little-endian ASCII, so a guest can tell libvmdev's
 * transport from others.
 */
#define VMDEV_VIRTIO_MMIO_VENDOR_ID 0x56444d56u

/* Register offsets (virtio 1.2, 4.2.2, table "MMIO Device Register
 * Layout"). R: read-only, W: write-only, RW: both. */
enum vmdev_virtio_mmio_reg {
    VMDEV_VIRTIO_MMIO_MAGIC_VALUE = 0x000,         /* R */
    VMDEV_VIRTIO_MMIO_VERSION_REG = 0x004,         /* R */
    VMDEV_VIRTIO_MMIO_DEVICE_ID = 0x008,           /* R */
    VMDEV_VIRTIO_MMIO_VENDOR_ID_REG = 0x00c,       /* R */
    VMDEV_VIRTIO_MMIO_DEVICE_FEATURES = 0x010,     /* R */
    VMDEV_VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014, /* W */
    VMDEV_VIRTIO_MMIO_DRIVER_FEATURES = 0x020,     /* W */
    VMDEV_VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024, /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_SEL = 0x030,           /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034,       /* R */
    VMDEV_VIRTIO_MMIO_QUEUE_NUM = 0x038,           /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_READY = 0x044,         /* RW */
    VMDEV_VIRTIO_MMIO_QUEUE_NOTIFY = 0x050,        /* W */
    VMDEV_VIRTIO_MMIO_INTERRUPT_STATUS = 0x060,    /* R */
    VMDEV_VIRTIO_MMIO_INTERRUPT_ACK = 0x064,       /* W */
    VMDEV_VIRTIO_MMIO_STATUS = 0x070,              /* RW */
    VMDEV_VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080,      /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084,     /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090,    /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094,   /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0,    /* W */
    VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4,   /* W */
    VMDEV_VIRTIO_MMIO_SHM_SEL = 0x0ac,             /* W */
    VMDEV_VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0,         /* R */
    VMDEV_VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4,        /* R */
    VMDEV_VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8,        /* R */
    VMDEV_VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc,       /* R */
    VMDEV_VIRTIO_MMIO_QUEUE_RESET = 0x0c0,         /* RW */
    VMDEV_VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc,   /* R */
    VMDEV_VIRTIO_MMIO_CONFIG = 0x100,              /* RW, device-specific */
};

/* InterruptStatus / InterruptACK bits (4.2.2). */
#define VMDEV_VIRTIO_MMIO_INT_VRING 0x1u
#define VMDEV_VIRTIO_MMIO_INT_CONFIG 0x2u

struct vmdev_virtio_mmio;

/*
 * Put a transport in front of dev: it takes over dev->transport (replacing
 * whatever was there) so the device's interrupts reach irq, which starts
 * low. The device must outlive the transport. NULL on allocation failure.
 */
struct vmdev_virtio_mmio *
vmdev_virtio_mmio_new(struct vmdev_virtio_device *dev,
                      const struct vmdev_irq_line *irq);
/* Detach from the device (its interrupts go nowhere afterwards) and free
 * the transport. The device itself is left to vmdev_virtio_free(). */
void vmdev_virtio_mmio_free(struct vmdev_virtio_mmio *mmio);

/*
 * Register-window access at an offset below VMDEV_VIRTIO_MMIO_SIZE, of
 * size 1, 2, 4 or 8 bytes, value little-endian in the low bits. Anything
 * else is refused as described above.
 */
uint64_t vmdev_virtio_mmio_read(struct vmdev_virtio_mmio *mmio,
                                uint64_t offset, unsigned size);
void vmdev_virtio_mmio_write(struct vmdev_virtio_mmio *mmio, uint64_t offset,
                             uint64_t value, unsigned size);

/* Bus glue: the transport is the opaque, the window VMDEV_ACCESS_ANY. */
extern const struct vmdev_bus_ops vmdev_virtio_mmio_bus_ops;

/* Accesses refused since creation (see above), for metrics and tests. */
uint64_t vmdev_virtio_mmio_refused_count(struct vmdev_virtio_mmio *mmio);

/*
 * Write the Linux kernel command-line parameter that declares a window at
 * base with interrupt irq, "virtio_mmio.device=512@0x<base>:<irq>"
 * (Linux drivers/virtio/virtio_mmio.c, CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
 * Returns the string's length, -ENOSPC when it does not fit in len bytes
 * (buf then holds a truncated, terminated prefix), or -EINVAL when the
 * window would wrap the address space.
 */
int vmdev_virtio_mmio_cmdline(char *buf, size_t len, uint64_t base,
                              uint32_t irq);

/*
 * Save the device (vmdev_virtio_save(), its section named dev->name) and
 * then the transport's registers in a section called name. Restore
 * validates the transport's section before touching anything, then
 * restores the device and the registers and sets the line to the restored
 * level. Returns 0, -ENOENT (a section is missing) or -EINVAL.
 */
void vmdev_virtio_mmio_save(struct vmdev_virtio_mmio *mmio,
                            struct vmdev_state_writer *w, const char *name);
__attribute__((warn_unused_result))
int vmdev_virtio_mmio_restore(struct vmdev_virtio_mmio *mmio,
                              const void *data, size_t len, const char *name);

#ifdef __cplusplus
}
#endif

#endif
