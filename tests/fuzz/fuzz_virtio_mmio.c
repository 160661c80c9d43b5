/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport under any sequence of guest accesses: register
 * and configuration reads and writes of any offset and width, writes into
 * guest RAM (where the rings the input programs live), and device-side
 * configuration changes, against the echo device. After every step the
 * interrupt line must equal "InterruptStatus != 0"; at the end the pair is
 * saved and must restore into a fresh pair that reads back the same.
 *
 * Input: a sequence of 8-byte steps
 *   byte 0   bits 0-1: 0 read, 1 write, 2 store to guest RAM, 3 config
 *                      change by the device
 *            bits 2-3: access size 1 << n
 *            bit 4:    offset is raw (else folded into the 0x200 window)
 *   bytes 1-2 offset (little-endian); for a RAM store, the word index
 *   bytes 3-6 value, low 32 bits; byte 7 its bits 32-39
 */
#include <stdlib.h>
#include <string.h>

#include "virtio_echo_device.h"
#include "vmdev/log.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtio_mmio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest RAM from address 0, so small register values reach it. */
#define RAM_SIZE 0x2000u
#define NUM_QUEUES 2
#define QUEUE_MAX 16
#define STEP 8

static uint8_t ram[RAM_SIZE];
static struct echo_device device, restored_device;

struct line {
    bool level;
};

static void line_set(void *opaque, bool level)
{
    ((struct line *)opaque)->level = level;
}

struct pair {
    struct echo_device *dev;
    struct line line;
    struct vmdev_virtio_mmio *mmio;
};

/* Guest errors are what the fuzzer makes: only warnings are shown. */
static struct vmdev_log *quiet_log;

static int pair_init(struct pair *p, struct echo_device *dev,
                     const struct vmdev_guest_memory *mem)
{
    p->dev = dev;
    p->line.level = false;
    if (echo_device_init(dev, "echo0", NUM_QUEUES, QUEUE_MAX, mem))
        return -1;
    vmdev_virtio_set_log(&dev->dev, quiet_log);
    struct vmdev_irq_line irq = { line_set, &p->line };
    p->mmio = vmdev_virtio_mmio_new(&dev->dev, &irq);
    if (!p->mmio) {
        vmdev_virtio_free(&dev->dev);
        return -1;
    }
    return 0;
}

static void pair_release(struct pair *p)
{
    vmdev_virtio_mmio_free(p->mmio);
    vmdev_virtio_free(&p->dev->dev);
}

static uint32_t read_reg(struct pair *p, uint32_t offset)
{
    return (uint32_t)vmdev_virtio_mmio_read(p->mmio, offset, 4);
}

/* A level line follows the pending bits exactly (4.2.2). */
static void check_line(struct pair *p)
{
    uint32_t pending = read_reg(p, VMDEV_VIRTIO_MMIO_INTERRUPT_STATUS);
    if (pending & ~(VMDEV_VIRTIO_MMIO_INT_VRING | VMDEV_VIRTIO_MMIO_INT_CONFIG))
        abort();
    if (p->line.level != (pending != 0))
        abort();
}

static void step(struct pair *p, const uint8_t *s)
{
    unsigned kind = s[0] & 3;
    unsigned size = 1u << ((s[0] >> 2) & 3);
    uint64_t offset = (uint64_t)s[1] | (uint64_t)s[2] << 8;
    if (kind <= 1 && !(s[0] & 0x10))
        offset %= VMDEV_VIRTIO_MMIO_SIZE;
    uint32_t low;
    memcpy(&low, s + 3, 4);
    uint64_t value = low | (uint64_t)s[7] << 32;

    switch (kind) {
    case 0:
        (void)vmdev_virtio_mmio_read(p->mmio, offset, size);
        break;
    case 1:
        vmdev_virtio_mmio_write(p->mmio, offset, value, size);
        break;
    case 2:
        /* The driver lays out rings and buffers; word-aligned stores. */
        memcpy(ram + (offset * 4) % RAM_SIZE, &low, 4);
        break;
    default:
        echo_device_change_config(p->dev, low % ECHO_CONFIG_LEN, s[7]);
        break;
    }
    check_line(p);
}

/* Registers a restored pair must read as the original does. */
static const uint32_t compared[] = {
    VMDEV_VIRTIO_MMIO_DEVICE_FEATURES, VMDEV_VIRTIO_MMIO_QUEUE_NUM_MAX,
    VMDEV_VIRTIO_MMIO_QUEUE_READY,     VMDEV_VIRTIO_MMIO_INTERRUPT_STATUS,
    VMDEV_VIRTIO_MMIO_STATUS,          VMDEV_VIRTIO_MMIO_CONFIG_GENERATION,
};

static void check_round_trip(struct pair *p,
                             const struct vmdev_guest_memory *mem)
{
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_virtio_mmio_save(p->mmio, &w, "echo0.mmio");
    if (vmdev_state_writer_finish(&w)) {
        vmdev_state_writer_release(&w);
        return; /* out of memory: nothing to compare */
    }
    struct pair copy;
    if (pair_init(&copy, &restored_device, mem)) {
        vmdev_state_writer_release(&w);
        return;
    }
    /* A state the guest reached is a state a snapshot must restore. */
    if (vmdev_virtio_mmio_restore(copy.mmio, w.data, w.len, "echo0.mmio"))
        abort();
    for (size_t i = 0; i < sizeof(compared) / sizeof(compared[0]); i++)
        if (read_reg(&copy, compared[i]) != read_reg(p, compared[i]))
            abort();
    check_line(&copy);
    pair_release(&copy);
    vmdev_state_writer_release(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!quiet_log && !(quiet_log = vmdev_log_new(NULL, NULL, VMDEV_LOG_WARN)))
        abort();
    memset(ram, 0, sizeof(ram));
    struct vmdev_guest_memory *mem = vmdev_guest_memory_new();
    struct vmdev_guest_memory_region region = {
        .gpa = 0, .size = RAM_SIZE, .host = ram, .fd = -1,
    };
    if (!mem)
        return 0;
    if (vmdev_guest_memory_add_region(mem, &region)) {
        vmdev_guest_memory_free(mem);
        return 0;
    }
    struct pair p;
    if (pair_init(&p, &device, mem)) {
        vmdev_guest_memory_free(mem);
        return 0;
    }
    for (size_t at = 0; at + STEP <= size; at += STEP)
        step(&p, data + at);
    check_round_trip(&p, mem);
    pair_release(&p);
    vmdev_guest_memory_free(mem);
    return 0;
}
