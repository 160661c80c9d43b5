/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci register space: BAR 0 (common config, notify, ISR,
 * device config, MSI-X) and PCI config space, accessed in any order with
 * any size and value, with a device that serves its queue on each notify.
 * Guest memory holds the input too, so rings the fuzzer points at are
 * walked. Nothing may crash; a refused ring must mark NEEDS_RESET.
 */
#include <stdlib.h>
#include <string.h>

#include "vmdev/virtio_device.h"
#include "vmdev/virtio_pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_BASE 0x10000ull
#define RAM_SIZE 0x4000ull

static uint8_t ram[RAM_SIZE];
static struct vmdev_virtqueue_chain chain;

static void serve(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtqueue *vq = &dev->queues[index];
    const char *why;
    int ret;
    while ((ret = vmdev_virtqueue_pop(vq, &chain, &why)) == 1) {
        struct vmdev_virtqueue_writer w;
        vmdev_virtqueue_writer_init(&w, &chain);
        vmdev_virtqueue_write(&w, "reply", 5);
        vmdev_virtqueue_push(vq, chain.head, (uint32_t)w.written);
    }
    if (ret < 0)
        vmdev_virtio_guest_error(dev, "%s", why);
    vmdev_virtio_interrupt_queue(dev, index);
}

static void read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                        void *out, uint32_t len)
{
    memset(out, 0x5a, len);
}

static const struct vmdev_virtio_device_ops ops = {
    .read_config = read_config,
    .queue_kick = serve,
};

static void drop_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
}

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n && *p < end; i++)
        v |= (uint64_t)*(*p)++ << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vmdev_virtio_device dev;
    struct vmdev_guest_memory *mem = vmdev_guest_memory_new();
    struct vmdev_guest_memory_region r = { RAM_BASE, RAM_SIZE, ram, -1, 0 };
    if (!mem || vmdev_guest_memory_add_region(mem, &r))
        abort();
    memset(ram, 0, sizeof(ram));
    if (vmdev_virtio_init(&dev, "fuzz0", VMDEV_VIRTIO_ID_RNG, &ops,
                          VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX) |
                              VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC),
                          8, 2, 16, mem))
        abort();
    struct vmdev_virtio_pci_config config = {
        .msi = { .send = drop_msi, .opaque = NULL },
    };
    struct vmdev_virtio_pci *vp = vmdev_virtio_pci_new(&dev, &config);
    if (!vp)
        abort();
    struct vmdev_pci_device *pdev = vmdev_virtio_pci_function(vp);
    const struct vmdev_bus_ops *bar = vmdev_pci_device_bar(pdev, 0)->ops;
    void *bar_opaque = vmdev_pci_device_bar(pdev, 0)->opaque;

    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        uint8_t op = (uint8_t)take(&p, end, 1);
        unsigned sz = 1u << (op >> 4 & 3);
        uint64_t where = take(&p, end, 2);
        uint64_t value = take(&p, end, sz);
        switch (op & 7) {
        case 0:
            bar->write(bar_opaque, where % VMDEV_VIRTIO_PCI_BAR_SIZE, value, sz);
            break;
        case 1:
            (void)bar->read(bar_opaque, where % VMDEV_VIRTIO_PCI_BAR_SIZE, sz);
            break;
        case 2:
            vmdev_pci_config_write(pdev, (uint32_t)where % 256,
                                   (uint32_t)value, sz > 4 ? 4 : sz);
            break;
        case 3:
            (void)vmdev_pci_config_read(pdev, (uint32_t)where % 256,
                                        sz > 4 ? 4 : sz);
            break;
        case 4: { /* guest writes memory */
            uint64_t at = where % RAM_SIZE;
            for (unsigned i = 0; i < sz && at + i < RAM_SIZE; i++)
                ram[at + i] = (uint8_t)(value >> (8 * i));
            break;
        }
        case 5:
            vmdev_virtio_pci_queue_kick(vp, (uint16_t)(value & 3));
            break;
        default:
            pthread_mutex_lock(&dev.lock);
            vmdev_virtio_interrupt_config(&dev);
            pthread_mutex_unlock(&dev.lock);
            break;
        }
        /* A running device never has a queue enabled with a bad ring. */
        if ((dev.status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
            vmdev_virtio_is_running(&dev))
            abort();
    }
    vmdev_virtio_pci_free(vp);
    vmdev_virtio_free(&dev);
    vmdev_guest_memory_free(mem);
    return 0;
}
