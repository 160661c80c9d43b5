/* SPDX-License-Identifier: MIT */
/*
 * virtio-pci modern transport (virtio 1.2, 4.1). Guest register accesses
 * arrive through BAR 0 and config space; each takes the virtio device's
 * lock, which is also the PCI function's lock, so transport, MSI-X and
 * device state change together.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci/regs.h"
#include "pci_function.h"
#include "vmdev/log.h"
#include "vmdev/pcie.h"

#define STATE_VERSION 1

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_MODERN_DEVICE_BASE 0x1040 /* 4.1.2.1: 0x1040 + id */
#define VIRTIO_PCI_SUBSYSTEM_ID 0x1100

/* 4.1.4: capability types. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* Regions of BAR 0. */
#define COMMON_OFFSET 0x0000
#define COMMON_LEN 0x40
#define ISR_OFFSET 0x1000
#define ISR_LEN 4
#define DEVICE_OFFSET 0x2000
#define DEVICE_LEN 0x1000
#define NOTIFY_OFFSET VMDEV_VIRTIO_PCI_NOTIFY_OFFSET
#define NOTIFY_LEN 0x1000
#define MSIX_TABLE_OFFSET 0x4000
#define MSIX_PBA_OFFSET 0x6000

/* Every region holds what the most queues need, apart from the others. */
_Static_assert(NOTIFY_OFFSET + VMDEV_VIRTIO_PCI_MAX_QUEUES *
                       VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER <=
                   MSIX_TABLE_OFFSET,
               "notify registers overlap the MSI-X table");
_Static_assert(MSIX_TABLE_OFFSET + (VMDEV_VIRTIO_PCI_MAX_QUEUES + 1) * 16 <=
                   MSIX_PBA_OFFSET,
               "the MSI-X table overlaps the PBA");
_Static_assert(MSIX_PBA_OFFSET + (VMDEV_VIRTIO_PCI_MAX_QUEUES + 1 + 63) / 64 *
                       8 <=
                   VMDEV_VIRTIO_PCI_BAR_SIZE,
               "the MSI-X PBA leaves the BAR");

/* 4.1.4.3: struct virtio_pci_common_cfg. */
#define CC_DEVICE_FEATURE_SELECT 0x00
#define CC_DEVICE_FEATURE 0x04
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE 0x0c
#define CC_CONFIG_MSIX_VECTOR 0x10
#define CC_NUM_QUEUES 0x12
#define CC_DEVICE_STATUS 0x14
#define CC_CONFIG_GENERATION 0x15
#define CC_QUEUE_SELECT 0x16
#define CC_QUEUE_SIZE 0x18
#define CC_QUEUE_MSIX_VECTOR 0x1a
#define CC_QUEUE_ENABLE 0x1c
#define CC_QUEUE_NOTIFY_OFF 0x1e
#define CC_QUEUE_DESC 0x20
#define CC_QUEUE_DRIVER 0x28
#define CC_QUEUE_DEVICE 0x30

/* 4.1.4: struct virtio_pci_cap and its extensions. */
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_LEN 16
#define NOTIFY_CAP_MULTIPLIER 16
#define NOTIFY_CAP_LEN 20
#define PCI_CFG_CAP_DATA 16
#define PCI_CFG_CAP_LEN 20

#define ISR_QUEUE 1u
#define ISR_CONFIG 2u

static uint32_t pci_class_for(uint32_t device_id)
{
    switch (device_id) {
    case VMDEV_VIRTIO_ID_NET:
        return 0x020000; /* network controller, Ethernet */
    case VMDEV_VIRTIO_ID_BLOCK:
        return 0x018000; /* mass storage, other */
    case VMDEV_VIRTIO_ID_CONSOLE:
        return 0x078000; /* communication controller, other */
    default:
        return 0x00ff00; /* unclassified */
    }
}

static struct vmdev_virtqueue *selected_queue(struct vmdev_virtio_pci *vp)
{
    return vp->queue_select < vp->vdev->num_queues
               ? &vp->vdev->queues[vp->queue_select]
               : NULL;
}

/* The vectors are written under dev->lock and read by interrupts that
 * may hold only a queue's lock. */
static uint16_t load_vector(const uint16_t *vector)
{
    return __atomic_load_n(vector, __ATOMIC_RELAXED);
}

static void store_vector(uint16_t *vector, uint16_t value)
{
    __atomic_store_n(vector, value, __ATOMIC_RELAXED);
}

static uint16_t msix_vectors(const struct vmdev_virtio_pci *vp)
{
    return vmdev_pci_msix_num_vectors(vp->msix);
}

/* --- Interrupts from the device: dev->lock held, or only the queue's
 * lock for a device with queue locks. --- */

static void transport_interrupt(void *opaque,
                                enum vmdev_virtio_irq_reason reason,
                                uint16_t queue)
{
    struct vmdev_virtio_pci *vp = opaque;
    uint16_t vector =
        reason == VMDEV_VIRTIO_IRQ_QUEUE
            ? load_vector(&vp->vdev->queues[queue].config.msix_vector)
            : load_vector(&vp->config_vector);
    /* With MSI-X on, the vector's message (pending while masked); and
     * 4.1.5.4: NO_VECTOR means no interrupt at all. notify answers
     * whether MSI-X was on when it looked. */
    if (vector != VMDEV_VIRTIO_MSI_NO_VECTOR
            ? vmdev_pci_msix_notify(vp->msix, vector)
            : vmdev_pci_msix_enabled(vp->msix))
        return;
    pthread_mutex_lock(&vp->isr_lock);
    vp->isr |= reason == VMDEV_VIRTIO_IRQ_QUEUE ? ISR_QUEUE : ISR_CONFIG;
    vmdev_pci_set_intx(vp->pci, true);
    pthread_mutex_unlock(&vp->isr_lock);
}

/* --- Common configuration (4.1.4.3). --- */

static void put_le(uint8_t *image, unsigned offset, uint64_t value,
                   unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        image[offset + i] = (uint8_t)(value >> (8 * i));
}

static uint64_t common_read(struct vmdev_virtio_pci *vp, uint64_t offset,
                            unsigned size)
{
    struct vmdev_virtio_device *vdev = vp->vdev;
    struct vmdev_virtqueue *vq = selected_queue(vp);
    uint8_t image[COMMON_LEN] = { 0 };

    put_le(image, CC_DEVICE_FEATURE_SELECT, vp->device_feature_select, 4);
    put_le(image, CC_DEVICE_FEATURE,
           vmdev_virtio_get_device_features(vdev, vp->device_feature_select),
           4);
    put_le(image, CC_DRIVER_FEATURE_SELECT, vp->driver_feature_select, 4);
    if (vp->driver_feature_select < 2)
        put_le(image, CC_DRIVER_FEATURE,
               vdev->driver_features >> (32 * vp->driver_feature_select), 4);
    put_le(image, CC_CONFIG_MSIX_VECTOR, load_vector(&vp->config_vector), 2);
    put_le(image, CC_NUM_QUEUES, vdev->num_queues, 2);
    put_le(image, CC_DEVICE_STATUS, vmdev_virtio_get_status(vdev), 1);
    put_le(image, CC_CONFIG_GENERATION,
           vmdev_virtio_get_config_generation(vdev), 1);
    put_le(image, CC_QUEUE_SELECT, vp->queue_select, 2);
    if (vq) {
        /* 4.1.4.3.2: a queue that does not exist reads size 0. */
        put_le(image, CC_QUEUE_SIZE, vq->config.size, 2);
        put_le(image, CC_QUEUE_MSIX_VECTOR,
               load_vector(&vq->config.msix_vector), 2);
        put_le(image, CC_QUEUE_ENABLE, vq->config.ready, 2);
        put_le(image, CC_QUEUE_NOTIFY_OFF, vp->queue_select, 2);
        put_le(image, CC_QUEUE_DESC, vq->config.desc_addr, 8);
        put_le(image, CC_QUEUE_DRIVER, vq->config.driver_addr, 8);
        put_le(image, CC_QUEUE_DEVICE, vq->config.device_addr, 8);
    }
    if (offset >= COMMON_LEN || size > COMMON_LEN - offset)
        return 0;
    uint64_t value = 0;
    for (unsigned i = 0; i < size; i++)
        value |= (uint64_t)image[offset + i] << (8 * i);
    return value;
}

/* A vector the device has, or NO_VECTOR so the driver sees the refusal
 * (4.1.5.1.2.1: it reads the register back). */
static uint16_t checked_vector(struct vmdev_virtio_pci *vp, uint64_t value)
{
    return value < msix_vectors(vp) ? (uint16_t)value
                                        : VMDEV_VIRTIO_MSI_NO_VECTOR;
}

static void reset_transport(struct vmdev_virtio_pci *vp)
{
    vp->device_feature_select = 0;
    vp->driver_feature_select = 0;
    vp->queue_select = 0;
    store_vector(&vp->config_vector, VMDEV_VIRTIO_MSI_NO_VECTOR);
    pthread_mutex_lock(&vp->isr_lock);
    vp->isr = 0;
    vmdev_pci_set_intx(vp->pci, false);
    pthread_mutex_unlock(&vp->isr_lock);
}

/* Set the low or high half of a 64-bit queue address. */
static void set_address_half(uint64_t *address, uint64_t offset,
                             uint64_t value, unsigned size)
{
    if (size == 8)
        *address = value;
    else if (offset % 8 == 0)
        *address = (*address & ~UINT64_C(0xffffffff)) | (uint32_t)value;
    else
        *address = (*address & UINT64_C(0xffffffff)) | value << 32;
}

static bool queue_writable(struct vmdev_virtio_pci *vp,
                           struct vmdev_virtqueue *vq)
{
    /* 4.1.4.3.2: queue fields are set before the queue is enabled. */
    return vq && !vq->config.ready && !vq->enabled;
}

static void common_write(struct vmdev_virtio_pci *vp, uint64_t offset,
                         uint64_t value, unsigned size)
{
    struct vmdev_virtio_device *vdev = vp->vdev;
    struct vmdev_virtqueue *vq = selected_queue(vp);

    switch (offset) {
    case CC_DEVICE_FEATURE_SELECT:
        if (size == 4)
            vp->device_feature_select = (uint32_t)value;
        return;
    case CC_DRIVER_FEATURE_SELECT:
        if (size == 4)
            vp->driver_feature_select = (uint32_t)value;
        return;
    case CC_DRIVER_FEATURE:
        if (size == 4)
            vmdev_virtio_set_driver_features(vdev, vp->driver_feature_select,
                                             (uint32_t)value);
        return;
    case CC_CONFIG_MSIX_VECTOR:
        if (size == 2)
            store_vector(&vp->config_vector, checked_vector(vp, value));
        return;
    case CC_DEVICE_STATUS:
        if (size != 1)
            return;
        vmdev_virtio_set_status(vdev, (uint8_t)value);
        if (value == 0)
            reset_transport(vp);
        return;
    case CC_QUEUE_SELECT:
        if (size == 2)
            vp->queue_select = (uint16_t)value;
        return;
    case CC_QUEUE_SIZE:
        if (size == 2 && queue_writable(vp, vq))
            vq->config.size = (uint16_t)value;
        return;
    case CC_QUEUE_MSIX_VECTOR:
        if (size == 2 && vq)
            store_vector(&vq->config.msix_vector, checked_vector(vp, value));
        return;
    case CC_QUEUE_ENABLE:
        /* 4.1.4.3.2: the driver writes 1 only; the ring is checked when
         * the device starts (DRIVER_OK). */
        if (size == 2 && value == 1 && queue_writable(vp, vq))
            vq->config.ready = true;
        return;
    case CC_QUEUE_DESC:
    case CC_QUEUE_DESC + 4:
    case CC_QUEUE_DRIVER:
    case CC_QUEUE_DRIVER + 4:
    case CC_QUEUE_DEVICE:
    case CC_QUEUE_DEVICE + 4: {
        if (!(size == 4 || (size == 8 && offset % 8 == 0)) ||
            !queue_writable(vp, vq))
            return;
        uint64_t *address = offset < CC_QUEUE_DRIVER ? &vq->config.desc_addr
                            : offset < CC_QUEUE_DEVICE
                                ? &vq->config.driver_addr
                                : &vq->config.device_addr;
        set_address_half(address, offset, value, size);
        return;
    }
    default:
        vmdev_log_guest(vdev->log, &vp->log_limit,
                        "%s: write to read-only common config %#llx",
                        vdev->name, (unsigned long long)offset);
        return;
    }
}

/* --- BAR 0 dispatch. --- */

static bool in_region(uint64_t offset, unsigned size, uint64_t start,
                      uint64_t len)
{
    return offset >= start && offset - start < len &&
           size <= len - (offset - start);
}

static uint64_t notify_len(const struct vmdev_virtio_pci *vp)
{
    return (uint64_t)vp->vdev->num_queues * VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER;
}

static uint64_t bar_read_locked(struct vmdev_virtio_pci *vp, uint64_t offset,
                                unsigned size)
{
    if (in_region(offset, size, COMMON_OFFSET, COMMON_LEN))
        return common_read(vp, offset - COMMON_OFFSET, size);
    if (in_region(offset, size, ISR_OFFSET, ISR_LEN)) {
        if (offset != ISR_OFFSET)
            return 0;
        /* 4.1.4.5: reading ISR clears it and deasserts INTx. */
        pthread_mutex_lock(&vp->isr_lock);
        uint8_t isr = vp->isr;
        vp->isr = 0;
        vmdev_pci_set_intx(vp->pci, false);
        pthread_mutex_unlock(&vp->isr_lock);
        return isr;
    }
    if (in_region(offset, size, DEVICE_OFFSET, DEVICE_LEN)) {
        uint8_t bytes[8];
        vmdev_virtio_read_config(vp->vdev, (uint32_t)(offset - DEVICE_OFFSET),
                                 bytes, size);
        uint64_t value = 0;
        for (unsigned i = 0; i < size; i++)
            value |= (uint64_t)bytes[i] << (8 * i);
        return value;
    }
    if (in_region(offset, size, MSIX_TABLE_OFFSET,
                  vmdev_pci_msix_table_size(msix_vectors(vp))))
        return vmdev_pci_msix_table_read(vp->msix, offset - MSIX_TABLE_OFFSET,
                                         size);
    if (in_region(offset, size, MSIX_PBA_OFFSET,
                  vmdev_pci_msix_pba_size(msix_vectors(vp))))
        return vmdev_pci_msix_pba_read(vp->msix, offset - MSIX_PBA_OFFSET,
                                       size);
    return 0;
}

static void bar_write_locked(struct vmdev_virtio_pci *vp, uint64_t offset,
                             uint64_t value, unsigned size)
{
    if (in_region(offset, size, COMMON_OFFSET, COMMON_LEN)) {
        common_write(vp, offset - COMMON_OFFSET, value, size);
    } else if (in_region(offset, size, NOTIFY_OFFSET, notify_len(vp))) {
        /* 4.1.4.4: the register's offset names the queue. */
        uint64_t queue = (offset - NOTIFY_OFFSET) /
                         VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER;
        vmdev_virtio_queue_kick_locked(vp->vdev, (uint16_t)queue);
    } else if (in_region(offset, size, DEVICE_OFFSET, DEVICE_LEN)) {
        uint8_t bytes[8];
        for (unsigned i = 0; i < size; i++)
            bytes[i] = (uint8_t)(value >> (8 * i));
        vmdev_virtio_write_config(vp->vdev,
                                  (uint32_t)(offset - DEVICE_OFFSET), bytes,
                                  size);
    } else if (in_region(offset, size, MSIX_TABLE_OFFSET,
                         vmdev_pci_msix_table_size(msix_vectors(vp)))) {
        vmdev_pci_msix_table_write(vp->msix, offset - MSIX_TABLE_OFFSET, value,
                                   size);
    } else {
        vmdev_log_guest(vp->vdev->log, &vp->log_limit,
                        "%s: write of %u bytes to BAR offset %#llx ignored",
                        vp->vdev->name, size, (unsigned long long)offset);
    }
}

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vmdev_virtio_pci *vp = opaque;
    pthread_mutex_lock(&vp->vdev->lock);
    uint64_t value = bar_read_locked(vp, offset, size);
    pthread_mutex_unlock(&vp->vdev->lock);
    return value;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    struct vmdev_virtio_pci *vp = opaque;
    if (in_region(offset, size, NOTIFY_OFFSET, notify_len(vp))) {
        /* A kick needs none of the transport's registers: the device
         * takes what lock it serves the queue under. */
        vmdev_virtio_queue_kick(vp->vdev,
                                (uint16_t)((offset - NOTIFY_OFFSET) /
                                           VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER));
        return;
    }
    pthread_mutex_lock(&vp->vdev->lock);
    bar_write_locked(vp, offset, value, size);
    pthread_mutex_unlock(&vp->vdev->lock);
}

static const struct vmdev_bus_ops bar_ops = { bar_read, bar_write };

void vmdev_virtio_pci_queue_kick(struct vmdev_virtio_pci *vp, uint16_t queue)
{
    vmdev_virtio_queue_kick(vp->vdev, queue);
}

uint64_t vmdev_virtio_pci_notify_offset(uint16_t queue)
{
    return NOTIFY_OFFSET +
           (uint64_t)queue * VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER;
}

/* --- The PCI configuration access capability (4.1.4.9). --- */

/* The window's BAR, offset and length, if they describe a valid access. */
static bool cfg_window(struct vmdev_virtio_pci *vp, uint64_t *offset,
                       unsigned *len)
{
    const struct vmdev_pci_device *pdev = vp->pci;
    uint8_t bar = (uint8_t)vmdev_pci_get_config(pdev, vp->cfg_cap + CAP_BAR,
                                                1);
    *offset = vmdev_pci_get_config(pdev, vp->cfg_cap + CAP_OFFSET, 4);
    *len = vmdev_pci_get_config(pdev, vp->cfg_cap + CAP_LENGTH, 4);
    /* 4.1.4.9.1: length 1, 2 or 4, offset aligned to it, BAR 0. */
    return bar == VMDEV_VIRTIO_PCI_BAR &&
           (*len == 1 || *len == 2 || *len == 4) && *offset % *len == 0 &&
           *offset < VMDEV_VIRTIO_PCI_BAR_SIZE;
}

static bool touches_cfg_data(const struct vmdev_virtio_pci *vp,
                             uint32_t offset, unsigned size)
{
    uint32_t data = vp->cfg_cap + PCI_CFG_CAP_DATA;
    return offset < data + 4 && data < offset + size;
}

static void pci_config_read_hook(struct vmdev_pci_device *pdev,
                                 uint32_t offset, unsigned size)
{
    struct vmdev_virtio_pci *vp = vmdev_pci_device_opaque(pdev);
    uint64_t bar_offset;
    unsigned len;
    if (!touches_cfg_data(vp, offset, size))
        return;
    uint32_t value = 0;
    if (cfg_window(vp, &bar_offset, &len))
        value = (uint32_t)bar_read_locked(vp, bar_offset, len);
    vmdev_pci_set_config(pdev, vp->cfg_cap + PCI_CFG_CAP_DATA, value, 4);
}

static void pci_config_written_hook(struct vmdev_pci_device *pdev,
                                    uint32_t offset, unsigned size)
{
    struct vmdev_virtio_pci *vp = vmdev_pci_device_opaque(pdev);
    vmdev_pci_msix_config_written(vp->msix, offset, size);
    uint64_t bar_offset;
    unsigned len;
    if (touches_cfg_data(vp, offset, size) &&
        cfg_window(vp, &bar_offset, &len))
        bar_write_locked(vp, bar_offset,
                         vmdev_pci_get_config(pdev,
                                              vp->cfg_cap + PCI_CFG_CAP_DATA,
                                              len),
                         len);
}

static void pci_bar_mapped_hook(struct vmdev_pci_device *pdev, unsigned index,
                                uint64_t address, bool mapped)
{
    if (index == VMDEV_VIRTIO_PCI_BAR)
        virtio_pci_ioeventfds_follow_bar(vmdev_pci_device_opaque(pdev),
                                         address, mapped);
}

static const struct vmdev_pci_device_ops pci_ops = {
    .config_read = pci_config_read_hook,
    .config_written = pci_config_written_hook,
    .bar_mapped = pci_bar_mapped_hook,
};

/* --- Construction. --- */

static uint8_t add_virtio_cap(struct vmdev_virtio_pci *vp, uint8_t type,
                              uint8_t cap_len, uint32_t offset,
                              uint32_t length)
{
    struct vmdev_pci_device *pdev = vp->pci;
    uint8_t cap = vmdev_pci_add_capability(pdev, PCI_CAP_ID_VNDR, cap_len);
    if (!cap)
        return 0;
    vmdev_pci_set_config(pdev, cap + 2, cap_len, 1);
    vmdev_pci_set_config(pdev, cap + CAP_CFG_TYPE, type, 1);
    vmdev_pci_set_config(pdev, cap + CAP_BAR, VMDEV_VIRTIO_PCI_BAR, 1);
    vmdev_pci_set_config(pdev, cap + CAP_OFFSET, offset, 4);
    vmdev_pci_set_config(pdev, cap + CAP_LENGTH, length, 4);
    return cap;
}

/* The function's config space, BAR and MSI-X; vp zeroed, isr_lock made. */
static int build_function(struct vmdev_virtio_pci *vp)
{
    struct vmdev_virtio_device *vdev = vp->vdev;

    struct vmdev_pci_device_config header = {
        .name = vdev->name,
        .vendor_id = VIRTIO_PCI_VENDOR,
        .device_id = (uint16_t)(VIRTIO_PCI_MODERN_DEVICE_BASE +
                                vdev->device_id),
        .class_code = pci_class_for(vdev->device_id),
        .revision = 1, /* 4.1.2.1: a modern device */
        .subsystem_vendor_id = VIRTIO_PCI_VENDOR,
        .subsystem_id = VIRTIO_PCI_SUBSYSTEM_ID,
        .interrupt_pin = 1,
        .ops = &pci_ops,
        .opaque = vp,
        .lock = &vdev->lock,
    };
    struct vmdev_pci_device *pdev = vmdev_pci_device_new(&header);
    if (!pdev)
        return -ENOMEM;
    vp->pci = pdev;
    /* Non-prefetchable: reading the ISR has a side effect. */
    if (vmdev_pci_set_bar(pdev, VMDEV_VIRTIO_PCI_BAR, VMDEV_PCI_BAR_MEM64,
                          VMDEV_VIRTIO_PCI_BAR_SIZE, false, &bar_ops, vp,
                          VMDEV_ACCESS_ANY))
        return -EINVAL;

    uint8_t notify = add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG,
                                    NOTIFY_CAP_LEN, NOTIFY_OFFSET,
                                    (uint32_t)notify_len(vp));
    if (!add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, CAP_LEN,
                        COMMON_OFFSET, COMMON_LEN) ||
        !notify ||
        !add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, CAP_LEN, ISR_OFFSET,
                        ISR_LEN) ||
        (vdev->config_len &&
         !add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, CAP_LEN,
                         DEVICE_OFFSET, vdev->config_len)))
        return -EINVAL;
    vmdev_pci_set_config(pdev, notify + NOTIFY_CAP_MULTIPLIER,
                         VMDEV_VIRTIO_PCI_NOTIFY_MULTIPLIER, 4);

    vp->cfg_cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, PCI_CFG_CAP_LEN,
                                 0, 0);
    if (!vp->cfg_cap)
        return -EINVAL;
    /* 4.1.4.9: bar, offset, length and the data window are the driver's. */
    vmdev_pci_set_wmask(pdev, vp->cfg_cap + CAP_BAR, 0xff, 1);
    vmdev_pci_set_wmask(pdev, vp->cfg_cap + CAP_OFFSET, 0xffffffff, 4);
    vmdev_pci_set_wmask(pdev, vp->cfg_cap + CAP_LENGTH, 0xffffffff, 4);
    vmdev_pci_set_wmask(pdev, vp->cfg_cap + PCI_CFG_CAP_DATA, 0xffffffff, 4);

    /* One vector per queue and one for configuration changes. */
    vp->msix = vmdev_pci_msix_new(pdev, (uint16_t)(vdev->num_queues + 1),
                                  VMDEV_VIRTIO_PCI_BAR, MSIX_TABLE_OFFSET,
                                  MSIX_PBA_OFFSET, &vp->config.msi);
    if (!vp->msix)
        return -errno;
    if (vp->config.express && !vmdev_pcie_add_endpoint_capability(pdev))
        return -EINVAL;
    vmdev_virtio_set_transport(
        vdev, &(struct vmdev_virtio_transport){ transport_interrupt, vp });
    return 0;
}

struct vmdev_virtio_pci *
vmdev_virtio_pci_new(struct vmdev_virtio_device *vdev,
                     const struct vmdev_virtio_pci_config *config)
{
    if (!vdev || !config || !config->msi.send ||
        vdev->num_queues > VMDEV_VIRTIO_PCI_MAX_QUEUES ||
        vdev->config_len > DEVICE_LEN) {
        errno = EINVAL;
        return NULL;
    }
    struct vmdev_virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp)
        return NULL;
    vp->vdev = vdev;
    vp->config = *config;
    vp->config_vector = VMDEV_VIRTIO_MSI_NO_VECTOR;
    pthread_mutex_init(&vp->isr_lock, NULL);
    int ret = build_function(vp);
    if (!ret)
        ret = virtio_pci_kicks_start(vp);
    if (ret) {
        vmdev_virtio_pci_free(vp);
        errno = -ret;
        return NULL;
    }
    return vp;
}

void vmdev_virtio_pci_free(struct vmdev_virtio_pci *vp)
{
    if (!vp)
        return;
    /* The unplug order: the ioeventfds go (the bar_mapped hook) before
     * the BAR is unmapped, then the eventfds' watches, so that no kick
     * reaches the device once this returns. */
    struct vmdev_pci_bus *bus = vp->pci ? vmdev_pci_device_bus(vp->pci) : NULL;
    if (bus)
        vmdev_pci_bus_remove(bus, vp->pci);
    virtio_pci_kicks_stop(vp);
    /* No interrupt reaches the locks below once they are gone. */
    vmdev_virtio_set_transport(vp->vdev,
                               &(struct vmdev_virtio_transport){ NULL, NULL });
    vmdev_pci_msix_free(vp->msix);
    vmdev_pci_device_free(vp->pci);
    pthread_mutex_destroy(&vp->isr_lock);
    free(vp);
}

struct vmdev_pci_device *vmdev_virtio_pci_function(struct vmdev_virtio_pci *vp)
{
    return vp->pci;
}

struct vmdev_virtio_pci_stats
vmdev_virtio_pci_get_stats(const struct vmdev_virtio_pci *vp)
{
    return (struct vmdev_virtio_pci_stats){
        .eventfd_kicks = atomic_load(&vp->eventfd_kicks),
        .msix = vmdev_pci_msix_stats(vp->msix),
    };
}

/* --- Save and restore. --- */

void vmdev_virtio_pci_save(struct vmdev_virtio_pci *vp,
                           struct vmdev_state_writer *w, const char *name)
{
    char section[64];
    pthread_mutex_lock(&vp->vdev->lock);
    vmdev_virtio_lock_queues(vp->vdev);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u32(w, "device_feature_select",
                        vp->device_feature_select);
    vmdev_state_put_u32(w, "driver_feature_select",
                        vp->driver_feature_select);
    vmdev_state_put_u16(w, "queue_select", vp->queue_select);
    vmdev_state_put_u16(w, "config_vector", load_vector(&vp->config_vector));
    pthread_mutex_lock(&vp->isr_lock);
    vmdev_state_put_u8(w, "isr", vp->isr);
    pthread_mutex_unlock(&vp->isr_lock);
    vmdev_state_end_section(w);
    snprintf(section, sizeof(section), "%s.pci", name);
    vmdev_pci_device_save(vp->pci, w, section);
    snprintf(section, sizeof(section), "%s.msix", name);
    vmdev_pci_msix_save(vp->msix, w, section);
    vmdev_virtio_save(vp->vdev, w);
    vmdev_virtio_unlock_queues(vp->vdev);
    pthread_mutex_unlock(&vp->vdev->lock);
}

int vmdev_virtio_pci_restore(struct vmdev_virtio_pci *vp, const void *data,
                             size_t len, const char *name)
{
    char section[64];
    struct vmdev_state_section s;
    uint32_t dfs, drfs;
    uint16_t qsel, cvec;
    uint8_t isr;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    if (vmdev_state_get_u32(&s, "device_feature_select", &dfs) ||
        vmdev_state_get_u32(&s, "driver_feature_select", &drfs) ||
        vmdev_state_get_u16(&s, "queue_select", &qsel) ||
        vmdev_state_get_u16(&s, "config_vector", &cvec) ||
        vmdev_state_get_u8(&s, "isr", &isr) || isr > 3 ||
        (cvec != VMDEV_VIRTIO_MSI_NO_VECTOR && cvec >= msix_vectors(vp)))
        return -EINVAL;
    /* The device and PCI state restore under their own checks. */
    snprintf(section, sizeof(section), "%s.pci", name);
    ret = vmdev_pci_device_restore(vp->pci, data, len, section);
    if (ret)
        return ret;
    pthread_mutex_lock(&vp->vdev->lock);
    vmdev_virtio_lock_queues(vp->vdev);
    snprintf(section, sizeof(section), "%s.msix", name);
    ret = vmdev_pci_msix_restore(vp->msix, data, len, section);
    if (!ret)
        ret = vmdev_virtio_restore(vp->vdev, data, len);
    for (uint16_t q = 0; !ret && q < vp->vdev->num_queues; q++) {
        uint16_t v = vp->vdev->queues[q].config.msix_vector;
        if (v != VMDEV_VIRTIO_MSI_NO_VECTOR && v >= msix_vectors(vp))
            ret = -EINVAL;
    }
    if (!ret) {
        vp->device_feature_select = dfs;
        vp->driver_feature_select = drfs;
        vp->queue_select = qsel;
        store_vector(&vp->config_vector, cvec);
        pthread_mutex_lock(&vp->isr_lock);
        vp->isr = isr;
        pthread_mutex_unlock(&vp->isr_lock);
    }
    vmdev_virtio_unlock_queues(vp->vdev);
    pthread_mutex_unlock(&vp->vdev->lock);
    return ret;
}
