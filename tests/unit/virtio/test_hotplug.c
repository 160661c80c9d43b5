/* SPDX-License-Identifier: MIT */
/*
 * Hot-plug churn at library level: a virtio-rng function behind a PCI
 * Express root port, added, brought up and used, then removed, a thousand
 * times, with the guest's side played as Linux's pciehp and virtio_pci
 * play it. Each cycle the device serves a request through its queue's
 * eventfd on an event loop; each removal goes through the attention
 * button and the guest's power-off, and every fifth is a surprise. Open
 * file descriptors and the resident set are measured after a warm-up and
 * at the end and must not grow. Then a disk pulled by surprise with
 * reads in flight in its I/O engine: the host frees everything without a
 * use after free or a leak (this test runs under ASan in CI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/pcie.h"
#include "vmdev/virtio.h"
#include "vmdev/virtio_pci.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_rng.h"

#define CYCLES 1000
#define WARM_UP 100
#define RAM_BASE 0x100000ull
#define RAM_SIZE (1u << 20)
#define MEM_WINDOW 0xc0000000u
#define SECONDARY_BUS 1

/* Slot Control and Status bits (PCIe 7.5.3.10-11), as pciehp names them. */
#define SLTCTL_NOTIFICATIONS 0x1031 /* ABPE CCIE HPIE DLLSCE, as pciehp */
#define SLTCTL_PCC 0x0400
#define SLTCTL_PIC 0x0300 /* 0x0300: the power indicator off */
#define SLTSTA_EVENTS 0x011f

static struct vmdev_pci_bus *bus;
static struct vmdev_pcie_root_port *port;
static unsigned exp_cap, msis, powered_off, ioeventfds;
static int notify_fd = -1; /* the queue's, as KVM would hold it */

static int map_bar(void *o, struct vmdev_pci_device *p, unsigned i, uint64_t a)
{
    return 0;
}

static void unmap_bar(void *o, struct vmdev_pci_device *p, unsigned i,
                      uint64_t a)
{
}

static void count_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    msis++;
}

static void note_power_off(void *opaque, struct vmdev_pcie_root_port *p)
{
    powered_off++;
}

/* Assigned minus deassigned: what a VMM would still hold in KVM. */
static int count_ioeventfd(void *opaque, uint64_t address, unsigned len,
                           int fd, bool assign)
{
    ioeventfds += assign ? 1u : -1u;
    notify_fd = assign ? fd : -1;
    return 0;
}

static struct vmdev_event_loop *the_loop(void *opaque, unsigned group)
{
    return opaque;
}

static uint32_t cfg_read(unsigned b, unsigned reg, unsigned size)
{
    uint64_t offset = (uint64_t)b << 20 | (b ? 0 : 1u << 15) | reg;
    return (uint32_t)vmdev_pci_ecam_ops.read(bus, offset, size);
}

static void cfg_write(unsigned b, unsigned reg, uint32_t value, unsigned size)
{
    uint64_t offset = (uint64_t)b << 20 | (b ? 0 : 1u << 15) | reg;
    vmdev_pci_ecam_ops.write(bus, offset, value, size);
}

static unsigned find_cap(unsigned b, unsigned id)
{
    for (unsigned at = cfg_read(b, 0x34, 1); at; at = cfg_read(b, at + 1, 1))
        if (cfg_read(b, at, 1) == id)
            return at;
    return 0;
}

/* pciehp_isr: acknowledge what is pending. */
static void ack_slot(void)
{
    cfg_write(0, exp_cap + 0x1a, cfg_read(0, exp_cap + 0x1a, 2) & SLTSTA_EVENTS,
              2);
}

static void slot_control(uint16_t value, uint16_t mask)
{
    uint16_t control = (uint16_t)cfg_read(0, exp_cap + 0x18, 2);
    cfg_write(0, exp_cap + 0x18, (control & ~mask) | (value & mask), 2);
    ack_slot();
}

static unsigned long resident_kib(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
        abort();
    fclose(f);
    return resident * 4;
}

/* The common configuration in the BAR, found as
 * virtio_pci_find_capability does. */
static uint64_t common;

static void find_virtio_caps(void)
{
    for (unsigned at = cfg_read(SECONDARY_BUS, 0x34, 1); at;
         at = cfg_read(SECONDARY_BUS, at + 1, 1)) {
        if (cfg_read(SECONDARY_BUS, at, 1) != 0x09)
            continue;
        unsigned type = cfg_read(SECONDARY_BUS, at + 3, 1);
        if (type == 1)
            common = cfg_read(SECONDARY_BUS, at + 8, 4);
    }
}

static struct vmdev_pci_device *pdev;

static uint64_t bar_rd(uint64_t off, unsigned size)
{
    const struct vmdev_pci_bar *bar = vmdev_pci_device_bar(pdev, 0);
    return bar->ops->read(bar->opaque, off, size);
}

static void bar_wr(uint64_t off, uint64_t value, unsigned size)
{
    const struct vmdev_pci_bar *bar = vmdev_pci_device_bar(pdev, 0);
    bar->ops->write(bar->opaque, off, value, size);
}

/* One cycle: plug, enumerate, drive a request, remove. False on the first
 * thing that went wrong. */
static bool cycle(struct vdrv_mem *mem, struct vmdev_event_loop *loop,
                  unsigned n)
{
    uint64_t ram_mark = mem->next_free;
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new("rng", mem->mem, NULL);
    struct vmdev_virtio_pci_config config = {
        .msi = { .send = count_msi },
        .queue_loop = the_loop,
        .set_ioeventfd = count_ioeventfd,
        .opaque = loop,
        .express = true,
    };
    struct vmdev_virtio_pci *vp =
        rng ? vmdev_virtio_pci_new(vmdev_virtio_rng_device(rng), &config)
            : NULL;
    if (!vp)
        return false;
    pdev = vmdev_virtio_pci_function(vp);
    unsigned msis_before = msis;
    if (vmdev_pcie_root_port_plug(port, pdev, true))
        return false;
    /* pciehp: the presence event, power on, the link, the indicator. */
    ack_slot();
    slot_control(0, SLTCTL_PCC);
    slot_control(0x0100, SLTCTL_PIC);
    bool ok = msis > msis_before &&
              cfg_read(SECONDARY_BUS, 0, 4) == 0x10441af4;
    /* The PCI core assigns the BAR; virtio_pci enables the device. */
    cfg_write(SECONDARY_BUS, 0x10, MEM_WINDOW | 4, 4);
    cfg_write(SECONDARY_BUS, 0x14, 0, 4);
    cfg_write(SECONDARY_BUS, 0x04, 0x6, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    ok = ok && ioeventfds == 1;
    find_virtio_caps();
    bar_wr(common + 0x14, 0, 1);
    bar_wr(common + 0x14, 1 | 2, 1);
    bar_wr(common + 0x08, 1, 4);
    bar_wr(common + 0x0c, 1, 4); /* VIRTIO_F_VERSION_1 */
    bar_wr(common + 0x14, 1 | 2 | 8, 1);
    bar_wr(common + 0x16, 0, 2);
    uint16_t size = (uint16_t)bar_rd(common + 0x18, 2);
    struct vdrv_queue q;
    vdrv_queue_init(&q, mem, size, false);
    bar_wr(common + 0x20, q.desc, 8);
    bar_wr(common + 0x28, q.avail, 8);
    bar_wr(common + 0x30, q.used, 8);
    bar_wr(common + 0x1c, 1, 2);
    bar_wr(common + 0x14, 1 | 2 | 4 | 8, 1);
    struct vdrv_buf in = { vdrv_alloc(mem, 64, 8), 64 };
    ok = ok && vdrv_add(&q, NULL, 0, &in, 1, false) >= 0;
    /* The guest's notify write, which KVM turns into the eventfd. */
    ok = ok && notify_fd >= 0;
    if (ok) {
        vmdev_eventfd_signal(notify_fd);
        ok = vmdev_event_loop_run_once(loop, 1000) == 1;
    }
    uint32_t id, len;
    ok = ok && vdrv_get_used(&q, &id, &len) && len == 64;

    /* Removal: the button and pciehp's power-off, or a surprise. */
    bool surprise = n % 5 == 4;
    unsigned off_before = powered_off;
    if (!surprise) {
        ok = ok && vmdev_pcie_root_port_request_unplug(port) == 0;
        ack_slot();
        bar_wr(common + 0x14, 0, 1); /* the driver's remove resets */
        slot_control(SLTCTL_PCC, SLTCTL_PCC); /* pciehp_power_off_slot */
        ok = ok && powered_off == off_before;
        slot_control(SLTCTL_PIC, SLTCTL_PIC); /* a second later */
        ok = ok && powered_off == off_before + 1;
    }
    vmdev_virtio_pci_free(vp); /* off the bus: presence and link drop */
    vmdev_virtio_rng_free(rng);
    ack_slot();
    if (surprise) /* pciehp tidies the slot */
        slot_control(SLTCTL_PCC | SLTCTL_PIC, SLTCTL_PCC | SLTCTL_PIC);
    ok = ok && ioeventfds == 0 && !vmdev_pcie_root_port_device(port) &&
         cfg_read(SECONDARY_BUS, 0, 4) == 0xffffffff;
    mem->next_free = ram_mark;
    return ok;
}

/* The bus, with the root port at 00:01.0 whose secondary bus is
 * SECONDARY_BUS and whose memory window is MEM_WINDOW's 1 MiB. */
static bool make_bus_and_port(void)
{
    bus = vmdev_pci_bus_new(&(struct vmdev_pci_bus_owner){
        .map_bar = map_bar, .unmap_bar = unmap_bar });
    port = vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
        .name = "port0", .secondary_bus = SECONDARY_BUS,
        .mem_base = MEM_WINDOW, .mem_size = 1u << 20,
        .msi = { .send = count_msi }, .slot_powered_off = note_power_off });
    return bus && port &&
           vmdev_pci_bus_add(bus, vmdev_pcie_root_port_function(port), 1) == 1;
}

static void free_bus_and_port(void)
{
    vmdev_pci_bus_remove(bus, vmdev_pcie_root_port_function(port));
    vmdev_pcie_root_port_free(port);
    vmdev_pci_bus_free(bus);
}

static void a_thousand_plug_and_unplug_cycles(void)
{
    struct vdrv_mem mem;
    CHECK_EQ(vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1), 0);
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    CHECK(loop && make_bus_and_port());
    /* The guest's PCI core and pciehp set the port up once. */
    exp_cap = find_cap(0, 0x10);
    unsigned msi = find_cap(0, 0x05);
    CHECK(exp_cap && msi);
    cfg_write(0, msi + 4, 0xfee00000, 4);
    cfg_write(0, msi + 12, 0x41, 2);
    cfg_write(0, msi + 2, 1, 2);
    cfg_write(0, 0x04, 0x6, 2);
    slot_control(SLTCTL_NOTIFICATIONS, SLTCTL_NOTIFICATIONS);

    unsigned fds = 0;
    unsigned long rss = 0;
    for (unsigned n = 0; n < CYCLES; n++) {
        if (n == WARM_UP) {
            fds = test_open_fds();
            rss = resident_kib();
        }
        if (!cycle(&mem, loop, n)) {
            fprintf(stderr, "cycle %u went wrong\n", n);
            CHECK(false);
        }
    }
    CHECK_EQ(test_open_fds(), fds);
    unsigned long grown = resident_kib() - rss;
    fprintf(stderr, "%u cycles, %u hot-plug MSIs, %u power-offs: %u fds, "
                    "resident set %+ld KiB after the warm-up\n",
            CYCLES, msis, powered_off, fds, (long)grown);
    CHECK_EQ(powered_off, CYCLES / 5 * 4);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine holds freed memory */
    CHECK((long)grown < 1024);
#endif
    free_bus_and_port();
    vmdev_event_loop_free(loop);
    vdrv_mem_release(&mem);
}

/* The driver's side up to DRIVER_OK with one queue, found through the
 * function at SECONDARY_BUS; returns the queue. */
static void bring_up(struct vdrv_mem *mem, struct vdrv_queue *q,
                     uint64_t features)
{
    cfg_write(SECONDARY_BUS, 0x10, MEM_WINDOW | 4, 4);
    cfg_write(SECONDARY_BUS, 0x14, 0, 4);
    cfg_write(SECONDARY_BUS, 0x04, 0x6, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    find_virtio_caps();
    bar_wr(common + 0x14, 0, 1);
    bar_wr(common + 0x14, 1 | 2, 1);
    bar_wr(common + 0x08, 1, 4);
    bar_wr(common + 0x0c, (uint32_t)(features >> 32), 4);
    bar_wr(common + 0x14, 1 | 2 | 8, 1);
    bar_wr(common + 0x16, 0, 2);
    uint16_t size = (uint16_t)bar_rd(common + 0x18, 2);
    vdrv_queue_init(q, mem, size, false);
    bar_wr(common + 0x20, q->desc, 8);
    bar_wr(common + 0x28, q->avail, 8);
    bar_wr(common + 0x30, q->used, 8);
    bar_wr(common + 0x1c, 1, 2);
    bar_wr(common + 0x14, 1 | 2 | 4 | 8, 1);
}

static void surprise_removal_with_reads_in_flight(void)
{
    char path[] = "/tmp/vmdev-hotplug-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 8 << 20), 0);
    close(fd);
    struct vdrv_mem mem;
    CHECK_EQ(vdrv_mem_init(&mem, RAM_BASE, 4u << 20, 1), 0);
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    CHECK(loop && make_bus_and_port());
    exp_cap = find_cap(0, 0x10);
    cfg_write(0, 0x04, 0x6, 2);
    unsigned fds = test_open_fds();

    char why[256];
    struct vmdev_block *image = vmdev_block_new(
        &(struct vmdev_block_options){ .path = path,
                                       .format = VMDEV_BLOCK_FORMAT_RAW },
        why, sizeof(why));
    CHECK(image != NULL);
    struct vmdev_virtio_blk *blk = vmdev_virtio_blk_new(
        "disk", mem.mem,
        &(struct vmdev_virtio_blk_config){ .block = image,
                                           .engine = VMDEV_IO_ENGINE_AUTO });
    CHECK(blk != NULL);
    struct vmdev_virtio_pci *vp = vmdev_virtio_pci_new(
        vmdev_virtio_blk_device(blk),
        &(struct vmdev_virtio_pci_config){
            .msi = { .send = count_msi }, .queue_loop = the_loop,
            .set_ioeventfd = count_ioeventfd, .opaque = loop,
            .express = true });
    CHECK(vp != NULL);
    pdev = vmdev_virtio_pci_function(vp);
    CHECK_EQ(vmdev_pcie_root_port_plug(port, pdev, false), 0);
    struct vdrv_queue q;
    bring_up(&mem, &q, 1ull << 32);

    /* Sixteen 64 KiB reads: the kick hands them to the engine. */
    for (unsigned i = 0; i < 16; i++) {
        uint64_t header = vdrv_alloc(&mem, 16, 8);
        uint8_t out_header[16] = { 0 }; /* VIRTIO_BLK_T_IN, sector */
        out_header[8] = (uint8_t)(i * 128);
        out_header[9] = (uint8_t)(i * 128 >> 8);
        vdrv_write(&mem, header, out_header, sizeof(out_header));
        struct vdrv_buf out = { header, 16 };
        struct vdrv_buf in[2] = { { vdrv_alloc(&mem, 65536, 512), 65536 },
                                  { vdrv_alloc(&mem, 1, 1), 1 } };
        CHECK(vdrv_add(&q, &out, 1, in, 2, false) >= 0);
    }
    CHECK(notify_fd >= 0);
    vmdev_eventfd_signal(notify_fd);
    CHECK(vmdev_event_loop_run_once(loop, 1000) >= 1);
    /* Taken (served) but not all answered: the completions wait on the
     * engine's eventfd, which the loop has not run. */
    CHECK_EQ(vmdev_virtio_blk_stats(blk).requests, 16);
    CHECK(vdrv_used_idx(&q) < 16);

    /* Pulled now: off the bus, the transport, then the disk, which waits
     * for what its engine still holds. */
    vmdev_virtio_pci_free(vp);
    vmdev_virtio_blk_free(blk);
    CHECK_EQ(ioeventfds, 0);
    CHECK(!vmdev_pcie_root_port_device(port));
    CHECK_EQ(test_open_fds(), fds);
    free_bus_and_port();
    vmdev_event_loop_free(loop);
    vdrv_mem_release(&mem);
    unlink(path);
}

TEST_MAIN(TEST(a_thousand_plug_and_unplug_cycles),
          TEST(surprise_removal_with_reads_in_flight))
