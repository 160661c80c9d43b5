/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport, version 2 (virtio 1.2, 4.2). It owns only
 * the registers the specification gives the transport (selectors,
 * InterruptStatus); features, status, queues and configuration belong to
 * the virtio core and are reached through vmdev_virtio_* calls.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmdev/log.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_mmio.h"

#define INT_BITS (VMDEV_VIRTIO_MMIO_INT_VRING | VMDEV_VIRTIO_MMIO_INT_CONFIG)

struct vmdev_virtio_mmio {
    struct vmdev_virtio_device *dev;
    struct vmdev_irq_line irq;
    /* InterruptStatus and the line it drives: an interrupt may come from
     * a queue's lock, which is taken after dev->lock. */
    pthread_mutex_t irq_lock;
    uint32_t interrupt_status;
    /* Transport registers, guarded by dev->lock. */
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint32_t queue_sel;
    uint32_t shm_sel;
    /* Accesses the specification forbids the driver; per-transport log
     * rate limit so one noisy guest cannot hide another's errors. */
    uint64_t refused;
    struct vmdev_ratelimit log_limit;
};

__attribute__((format(printf, 2, 3)))
static void refuse(struct vmdev_virtio_mmio *mmio, const char *fmt, ...)
{
    char message[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    mmio->refused++;
    vmdev_log_guest(mmio->dev->log, &mmio->log_limit, "%s: virtio-mmio: %s",
                    mmio->dev->name, message);
}

/* Set InterruptStatus to (status & keep) | add; the line is the OR of
 * the pending bits (4.2.2). Returns the status before. */
static uint32_t change_interrupt_status(struct vmdev_virtio_mmio *mmio,
                                        uint32_t keep, uint32_t add)
{
    pthread_mutex_lock(&mmio->irq_lock);
    uint32_t before = mmio->interrupt_status;
    mmio->interrupt_status = (before & keep) | add;
    vmdev_irq_set(&mmio->irq, mmio->interrupt_status != 0);
    pthread_mutex_unlock(&mmio->irq_lock);
    return before;
}

static uint32_t read_interrupt_status(struct vmdev_virtio_mmio *mmio)
{
    pthread_mutex_lock(&mmio->irq_lock);
    uint32_t status = mmio->interrupt_status;
    pthread_mutex_unlock(&mmio->irq_lock);
    return status;
}

/* The device raised an interrupt: dev->lock held, or only a queue's lock
 * for a device with queue locks. */
static void device_interrupt(void *opaque, enum vmdev_virtio_irq_reason reason,
                             uint16_t queue)
{
    struct vmdev_virtio_mmio *mmio = opaque;
    (void)queue; /* one line for every queue: the driver scans them all */
    change_interrupt_status(mmio, UINT32_MAX,
                            reason == VMDEV_VIRTIO_IRQ_QUEUE
                                ? VMDEV_VIRTIO_MMIO_INT_VRING
                                : VMDEV_VIRTIO_MMIO_INT_CONFIG);
}

struct vmdev_virtio_mmio *
vmdev_virtio_mmio_new(struct vmdev_virtio_device *dev,
                      const struct vmdev_irq_line *irq)
{
    struct vmdev_virtio_mmio *mmio = calloc(1, sizeof(*mmio));
    if (!mmio)
        return NULL;
    mmio->dev = dev;
    mmio->irq = *irq;
    pthread_mutex_init(&mmio->irq_lock, NULL);
    change_interrupt_status(mmio, 0, 0);
    vmdev_virtio_set_transport(
        dev, &(struct vmdev_virtio_transport){ device_interrupt, mmio });
    return mmio;
}

void vmdev_virtio_mmio_free(struct vmdev_virtio_mmio *mmio)
{
    if (!mmio)
        return;
    vmdev_virtio_set_transport(mmio->dev,
                               &(struct vmdev_virtio_transport){ NULL, NULL });
    pthread_mutex_destroy(&mmio->irq_lock);
    free(mmio);
}

uint64_t vmdev_virtio_mmio_refused_count(struct vmdev_virtio_mmio *mmio)
{
    pthread_mutex_lock(&mmio->dev->lock);
    uint64_t refused = mmio->refused;
    pthread_mutex_unlock(&mmio->dev->lock);
    return refused;
}

/* The queue QueueSel names, or NULL past the device's queues. */
static struct vmdev_virtqueue *selected_queue(struct vmdev_virtio_mmio *mmio)
{
    if (mmio->queue_sel >= mmio->dev->num_queues)
        return NULL;
    return &mmio->dev->queues[mmio->queue_sel];
}

/*
 * The queue whose geometry a write may change: it must exist (QueueNumMax
 * reads 0 otherwise, 4.2.3.2 step 3) and not be ready (the driver writes
 * size and addresses before QueueReady, 4.2.3.2 steps 5-7; the device must
 * not see a ring move under it).
 */
static struct vmdev_virtqueue *
configurable_queue(struct vmdev_virtio_mmio *mmio, uint32_t offset)
{
    struct vmdev_virtqueue *vq = selected_queue(mmio);
    if (!vq) {
        refuse(mmio,
               "write to 0x%03" PRIx32 " for queue %" PRIu32
               " which does not exist",
               offset, mmio->queue_sel);
        return NULL;
    }
    if (vq->config.ready || vq->enabled) {
        refuse(mmio,
               "write to 0x%03" PRIx32 " for queue %" PRIu32
               " while it is ready",
               offset, mmio->queue_sel);
        return NULL;
    }
    return vq;
}

static void set_low(uint64_t *addr, uint32_t value)
{
    *addr = (*addr & ~UINT64_C(0xffffffff)) | value;
}

static void set_high(uint64_t *addr, uint32_t value)
{
    *addr = (*addr & UINT64_C(0xffffffff)) | ((uint64_t)value << 32);
}

static void write_queue_num(struct vmdev_virtio_mmio *mmio, uint32_t value)
{
    struct vmdev_virtqueue *vq =
        configurable_queue(mmio, VMDEV_VIRTIO_MMIO_QUEUE_NUM);
    if (!vq)
        return;
    if (value > vq->config.max_size) {
        /* 4.2.2: QueueNum is at most QueueNumMax. Store a size the ring
         * checks refuse, so DRIVER_OK reports the mistake (NEEDS_RESET)
         * instead of the device using a ring the driver did not lay out. */
        refuse(mmio, "queue %" PRIu32 " size %" PRIu32 " above the maximum %u",
               mmio->queue_sel, value, vq->config.max_size);
        value = 0;
    }
    /* A size that is not a power of two (2.7) fails at DRIVER_OK. */
    vq->config.size = (uint16_t)value;
}

static void write_queue_ready(struct vmdev_virtio_mmio *mmio, uint32_t value)
{
    struct vmdev_virtqueue *vq = selected_queue(mmio);
    struct vmdev_virtio_device *dev = mmio->dev;
    if (!vq) {
        refuse(mmio, "QueueReady for queue %" PRIu32 " which does not exist",
               mmio->queue_sel);
        return;
    }
    if (value > 1) {
        refuse(mmio, "QueueReady value %" PRIu32 " is neither 0 nor 1", value);
        return;
    }
    if (value == vq->config.ready)
        return;
    if (value && (vmdev_virtio_get_status(dev) & VMDEV_VIRTIO_STATUS_DRIVER_OK)) {
        /* 3.1.1: queues are discovered (step 7) before DRIVER_OK (step 8);
         * a late queue would never be checked and enabled. */
        refuse(mmio, "queue %" PRIu32 " made ready after DRIVER_OK",
               mmio->queue_sel);
        return;
    }
    if (!value && vq->enabled) {
        /* Without VMDEV_VIRTIO_F_RING_RESET a running queue stops only with a
         * device reset (4.2.3.1, 2.6.1). */
        refuse(mmio, "queue %" PRIu32 " cannot be stopped without a reset",
               mmio->queue_sel);
        return;
    }
    vq->config.ready = value;
}

static void write_queue_address(struct vmdev_virtio_mmio *mmio,
                                uint32_t offset, uint32_t value)
{
    struct vmdev_virtqueue *vq = configurable_queue(mmio, offset);
    if (!vq)
        return;
    /* Alignment and placement in guest RAM are checked at DRIVER_OK,
     * when both halves are known (2.7, vmdev_virtqueue_enable()). */
    switch (offset) {
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_LOW:
        set_low(&vq->config.desc_addr, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_HIGH:
        set_high(&vq->config.desc_addr, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_LOW:
        set_low(&vq->config.driver_addr, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        set_high(&vq->config.driver_addr, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_LOW:
        set_low(&vq->config.device_addr, value);
        break;
    default: /* VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH */
        set_high(&vq->config.device_addr, value);
        break;
    }
}

/* Status 0 resets the device, and with it the transport (4.2.2.3: the
 * device clears InterruptStatus on reset). */
static void write_status(struct vmdev_virtio_mmio *mmio, uint32_t value)
{
    /* The device status is a byte (2.1); the register's upper bits are
     * reserved and dropped. */
    uint8_t status = (uint8_t)value;
    vmdev_virtio_set_status(mmio->dev, status);
    if (status == 0) {
        change_interrupt_status(mmio, 0, 0);
        mmio->device_features_sel = 0;
        mmio->driver_features_sel = 0;
        mmio->queue_sel = 0;
        mmio->shm_sel = 0;
    }
}

static void write_queue_notify(struct vmdev_virtio_mmio *mmio, uint32_t value)
{
    /* 4.2.2: the value is a queue index (VMDEV_VIRTIO_F_NOTIFICATION_DATA is
     * not offered through this transport). */
    if (value >= mmio->dev->num_queues) {
        refuse(mmio, "notify for queue %" PRIu32 " which does not exist",
               value);
        return;
    }
    vmdev_virtio_queue_kick_locked(mmio->dev, (uint16_t)value);
}

static bool is_write_only(uint32_t offset)
{
    switch (offset) {
    case VMDEV_VIRTIO_MMIO_DEVICE_FEATURES_SEL:
    case VMDEV_VIRTIO_MMIO_DRIVER_FEATURES:
    case VMDEV_VIRTIO_MMIO_DRIVER_FEATURES_SEL:
    case VMDEV_VIRTIO_MMIO_QUEUE_SEL:
    case VMDEV_VIRTIO_MMIO_QUEUE_NUM:
    case VMDEV_VIRTIO_MMIO_QUEUE_NOTIFY:
    case VMDEV_VIRTIO_MMIO_INTERRUPT_ACK:
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
    case VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
    case VMDEV_VIRTIO_MMIO_SHM_SEL:
        return true;
    default:
        return false;
    }
}

static bool is_read_only(uint32_t offset)
{
    switch (offset) {
    case VMDEV_VIRTIO_MMIO_MAGIC_VALUE:
    case VMDEV_VIRTIO_MMIO_VERSION_REG:
    case VMDEV_VIRTIO_MMIO_DEVICE_ID:
    case VMDEV_VIRTIO_MMIO_VENDOR_ID_REG:
    case VMDEV_VIRTIO_MMIO_DEVICE_FEATURES:
    case VMDEV_VIRTIO_MMIO_QUEUE_NUM_MAX:
    case VMDEV_VIRTIO_MMIO_INTERRUPT_STATUS:
    case VMDEV_VIRTIO_MMIO_SHM_LEN_LOW:
    case VMDEV_VIRTIO_MMIO_SHM_LEN_HIGH:
    case VMDEV_VIRTIO_MMIO_SHM_BASE_LOW:
    case VMDEV_VIRTIO_MMIO_SHM_BASE_HIGH:
    case VMDEV_VIRTIO_MMIO_CONFIG_GENERATION:
        return true;
    default:
        return false;
    }
}

static uint32_t read_register(struct vmdev_virtio_mmio *mmio, uint32_t offset)
{
    struct vmdev_virtio_device *dev = mmio->dev;
    struct vmdev_virtqueue *vq;

    switch (offset) {
    case VMDEV_VIRTIO_MMIO_MAGIC_VALUE:
        return VMDEV_VIRTIO_MMIO_MAGIC;
    case VMDEV_VIRTIO_MMIO_VERSION_REG:
        return VMDEV_VIRTIO_MMIO_VERSION;
    case VMDEV_VIRTIO_MMIO_DEVICE_ID:
        return dev->device_id;
    case VMDEV_VIRTIO_MMIO_VENDOR_ID_REG:
        return VMDEV_VIRTIO_MMIO_VENDOR_ID;
    case VMDEV_VIRTIO_MMIO_DEVICE_FEATURES:
        return vmdev_virtio_get_device_features(dev,
                                                mmio->device_features_sel);
    case VMDEV_VIRTIO_MMIO_QUEUE_NUM_MAX:
        /* 0 for a queue that does not exist (4.2.2). */
        vq = selected_queue(mmio);
        return vq ? vq->config.max_size : 0;
    case VMDEV_VIRTIO_MMIO_QUEUE_READY:
        vq = selected_queue(mmio);
        return vq ? vq->config.ready : 0;
    case VMDEV_VIRTIO_MMIO_INTERRUPT_STATUS:
        return read_interrupt_status(mmio);
    case VMDEV_VIRTIO_MMIO_STATUS:
        return vmdev_virtio_get_status(dev);
    case VMDEV_VIRTIO_MMIO_SHM_LEN_LOW:
    case VMDEV_VIRTIO_MMIO_SHM_LEN_HIGH:
    case VMDEV_VIRTIO_MMIO_SHM_BASE_LOW:
    case VMDEV_VIRTIO_MMIO_SHM_BASE_HIGH:
        /* No shared memory regions: a non-existent region has length -1
         * (4.2.2); its base reads all ones too. */
        return UINT32_MAX;
    case VMDEV_VIRTIO_MMIO_QUEUE_RESET:
        /* Without VMDEV_VIRTIO_F_RING_RESET no queue is ever being reset. */
        return 0;
    case VMDEV_VIRTIO_MMIO_CONFIG_GENERATION:
        return vmdev_virtio_get_config_generation(dev);
    default:
        /* 4.2.2.2: the driver must not read write-only registers or
         * locations the table does not describe. */
        refuse(mmio, "read of %s 0x%03" PRIx32,
               is_write_only(offset) ? "write-only register" : "offset",
               offset);
        return 0;
    }
}

static void write_register(struct vmdev_virtio_mmio *mmio, uint32_t offset,
                           uint32_t value)
{
    switch (offset) {
    case VMDEV_VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        mmio->device_features_sel = value;
        break;
    case VMDEV_VIRTIO_MMIO_DRIVER_FEATURES:
        /* The core drops unoffered bits, windows past 1 and any write
         * after FEATURES_OK (2.2.2, 3.1.1). */
        vmdev_virtio_set_driver_features(mmio->dev, mmio->driver_features_sel,
                                         value);
        break;
    case VMDEV_VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        mmio->driver_features_sel = value;
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_SEL:
        /* Any value; a queue past the device's reads QueueNumMax 0. */
        mmio->queue_sel = value;
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_NUM:
        write_queue_num(mmio, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_READY:
        write_queue_ready(mmio, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_NOTIFY:
        write_queue_notify(mmio, value);
        break;
    case VMDEV_VIRTIO_MMIO_INTERRUPT_ACK:
        /* Bits without a meaning (4.2.2) clear nothing. */
        change_interrupt_status(mmio, ~(value & INT_BITS), 0);
        break;
    case VMDEV_VIRTIO_MMIO_STATUS:
        write_status(mmio, value);
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
    case VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VMDEV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        write_queue_address(mmio, offset, value);
        break;
    case VMDEV_VIRTIO_MMIO_SHM_SEL:
        mmio->shm_sel = value;
        break;
    case VMDEV_VIRTIO_MMIO_QUEUE_RESET:
        /* Only with VMDEV_VIRTIO_F_RING_RESET, which is never offered. */
        refuse(mmio, "QueueReset without VMDEV_VIRTIO_F_RING_RESET");
        break;
    default:
        /* 4.2.2.2: the driver must not write read-only registers or
         * locations the table does not describe. */
        refuse(mmio, "write of 0x%08" PRIx32 " to %s 0x%03" PRIx32, value,
               is_read_only(offset) ? "read-only register" : "offset",
               offset);
        break;
    }
}

/*
 * 4.2.2.2: control registers take 32-bit aligned accesses only; the
 * configuration space takes the widths of its fields (1, 2, 4, and 8 as
 * the driver's two 4-byte halves, or one 8-byte access a VMM may pass
 * through). Nothing may run past the window.
 */
static bool access_allowed(struct vmdev_virtio_mmio *mmio, uint64_t offset,
                           unsigned size, const char *what)
{
    if ((size != 1 && size != 2 && size != 4 && size != 8) ||
        offset >= VMDEV_VIRTIO_MMIO_SIZE ||
        size > VMDEV_VIRTIO_MMIO_SIZE - offset) {
        refuse(mmio, "%u-byte %s at 0x%" PRIx64 " outside the window", size,
               what, offset);
        return false;
    }
    if (offset < VMDEV_VIRTIO_MMIO_CONFIG && (size != 4 || offset % 4)) {
        refuse(mmio, "%u-byte %s at register 0x%03" PRIx64
                     ": registers take aligned 32-bit accesses only",
               size, what, offset);
        return false;
    }
    return true;
}

/* Configuration fields are little-endian (4.1.4.6 via 2.5), as bus values
 * are, so bytes go in order into the low bits. */
static uint64_t read_config(struct vmdev_virtio_mmio *mmio, uint32_t offset,
                            unsigned size)
{
    uint8_t bytes[8] = { 0 };
    uint64_t value = 0;
    /* Past config_len the core gives zeros. */
    vmdev_virtio_read_config(mmio->dev, offset, bytes, size);
    for (unsigned i = 0; i < size; i++)
        value |= (uint64_t)bytes[i] << (8 * i);
    return value;
}

static void write_config(struct vmdev_virtio_mmio *mmio, uint32_t offset,
                         uint64_t value, unsigned size)
{
    uint8_t bytes[8];
    for (unsigned i = 0; i < size; i++)
        bytes[i] = (uint8_t)(value >> (8 * i));
    vmdev_virtio_write_config(mmio->dev, offset, bytes, size);
}

uint64_t vmdev_virtio_mmio_read(struct vmdev_virtio_mmio *mmio,
                                uint64_t offset, unsigned size)
{
    uint64_t value = 0;
    pthread_mutex_lock(&mmio->dev->lock);
    if (access_allowed(mmio, offset, size, "read")) {
        if (offset >= VMDEV_VIRTIO_MMIO_CONFIG)
            value = read_config(
                mmio, (uint32_t)(offset - VMDEV_VIRTIO_MMIO_CONFIG), size);
        else
            value = read_register(mmio, (uint32_t)offset);
    }
    pthread_mutex_unlock(&mmio->dev->lock);
    return value;
}

void vmdev_virtio_mmio_write(struct vmdev_virtio_mmio *mmio, uint64_t offset,
                             uint64_t value, unsigned size)
{
    if (offset == VMDEV_VIRTIO_MMIO_QUEUE_NOTIFY && size == 4 &&
        value < mmio->dev->num_queues) {
        /* A kick needs none of the transport's registers: the device
         * takes what lock it serves the queue under. */
        vmdev_virtio_queue_kick(mmio->dev, (uint16_t)value);
        return;
    }
    pthread_mutex_lock(&mmio->dev->lock);
    if (access_allowed(mmio, offset, size, "write")) {
        if (offset >= VMDEV_VIRTIO_MMIO_CONFIG)
            write_config(mmio, (uint32_t)(offset - VMDEV_VIRTIO_MMIO_CONFIG),
                         value, size);
        else
            write_register(mmio, (uint32_t)offset, (uint32_t)value);
    }
    pthread_mutex_unlock(&mmio->dev->lock);
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    return vmdev_virtio_mmio_read(opaque, offset, size);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    vmdev_virtio_mmio_write(opaque, offset, value, size);
}

const struct vmdev_bus_ops vmdev_virtio_mmio_bus_ops = { bus_read, bus_write };

int vmdev_virtio_mmio_cmdline(char *buf, size_t len, uint64_t base,
                              uint32_t irq)
{
    if (base > UINT64_MAX - (VMDEV_VIRTIO_MMIO_SIZE - 1))
        return -EINVAL;
    /* Linux parses "<size>@<base>:<irq>[:<id>]" with memparse() and
     * sscanf("%lli:%u"), so decimal size and 0x-prefixed base both work. */
    int n = snprintf(buf, len, "virtio_mmio.device=%u@0x%" PRIx64 ":%" PRIu32,
                     VMDEV_VIRTIO_MMIO_SIZE, base, irq);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= len)
        return -ENOSPC;
    return n;
}

#define STATE_VERSION 1

void vmdev_virtio_mmio_save(struct vmdev_virtio_mmio *mmio,
                            struct vmdev_state_writer *w, const char *name)
{
    pthread_mutex_lock(&mmio->dev->lock);
    vmdev_virtio_lock_queues(mmio->dev);
    vmdev_virtio_save(mmio->dev, w);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u32(w, "interrupt_status", read_interrupt_status(mmio));
    vmdev_state_put_u32(w, "device_features_sel", mmio->device_features_sel);
    vmdev_state_put_u32(w, "driver_features_sel", mmio->driver_features_sel);
    vmdev_state_put_u32(w, "queue_sel", mmio->queue_sel);
    vmdev_state_put_u32(w, "shm_sel", mmio->shm_sel);
    vmdev_state_end_section(w);
    vmdev_virtio_unlock_queues(mmio->dev);
    pthread_mutex_unlock(&mmio->dev->lock);
}

int vmdev_virtio_mmio_restore(struct vmdev_virtio_mmio *mmio,
                              const void *data, size_t len, const char *name)
{
    struct vmdev_state_section s;
    uint32_t interrupt_status, device_sel, driver_sel, queue_sel, shm_sel;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    if (vmdev_state_get_u32(&s, "interrupt_status", &interrupt_status) ||
        vmdev_state_get_u32(&s, "device_features_sel", &device_sel) ||
        vmdev_state_get_u32(&s, "driver_features_sel", &driver_sel) ||
        vmdev_state_get_u32(&s, "queue_sel", &queue_sel) ||
        vmdev_state_get_u32(&s, "shm_sel", &shm_sel))
        return -EINVAL;
    /* Only the two bits of 4.2.2 can be pending. The selectors hold any
     * value a driver could have written, so any value is valid. */
    if (interrupt_status & ~INT_BITS)
        return -EINVAL;

    pthread_mutex_lock(&mmio->dev->lock);
    vmdev_virtio_lock_queues(mmio->dev);
    ret = vmdev_virtio_restore(mmio->dev, data, len);
    if (!ret) {
        change_interrupt_status(mmio, 0, interrupt_status);
        mmio->device_features_sel = device_sel;
        mmio->driver_features_sel = driver_sel;
        mmio->queue_sel = queue_sel;
        mmio->shm_sel = shm_sel;
    }
    vmdev_virtio_unlock_queues(mmio->dev);
    pthread_mutex_unlock(&mmio->dev->lock);
    return ret;
}
