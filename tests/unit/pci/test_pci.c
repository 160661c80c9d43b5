/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration space, BARs, the capability list, conf1 and ECAM
 * access, INTx, BAR reconciliation and MSI-X, checked against the PCI
 * Local Bus Specification 3.0 as a guest's PCI code would probe them.
 */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "test.h"
#include "vmdev/pci.h"
#include "vmdev/pci_msix.h"
#include "vmdev/state.h"

/* --- A fake bus owner that records what it is asked to do. --- */

struct owner_log {
    unsigned maps, unmaps;
    uint64_t last_map, last_unmap;
    unsigned last_bar;
    int map_result;
    bool intx[VMDEV_PCI_SLOTS][5];
    unsigned intx_changes;
    unsigned msis;
    struct vmdev_msi_msg last_msi;
};

static struct owner_log owner;

static int fake_map(void *opaque, struct vmdev_pci_device *pdev,
                    unsigned index, uint64_t address)
{
    owner.maps++;
    owner.last_map = address;
    owner.last_bar = index;
    return owner.map_result;
}

static void fake_unmap(void *opaque, struct vmdev_pci_device *pdev,
                       unsigned index, uint64_t address)
{
    owner.unmaps++;
    owner.last_unmap = address;
}

static void fake_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
    owner.intx[slot][pin] = level;
    owner.intx_changes++;
}

static void fake_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    owner.msis++;
    owner.last_msi = *msg;
}

static const struct vmdev_pci_bus_owner owner_ops = {
    .map_bar = fake_map, .unmap_bar = fake_unmap, .set_intx = fake_intx,
};

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
}

static const struct vmdev_bus_ops bar_ops = { bar_read, bar_write };

static struct vmdev_pci_device *dev;
static struct vmdev_pci_bus *bus;

static const struct vmdev_pci_device_config test_header = {
    .name = "test", .vendor_id = 0x1af4, .device_id = 0x1041,
    .class_code = 0x020000, .revision = 1, .subsystem_vendor_id = 0x1af4,
    .subsystem_id = 0x1100, .interrupt_pin = 1,
};

/* A device with an IO BAR 0, a 32-bit BAR 1 and a 64-bit BAR 2-3, in slot
 * 3 of a new bus; ops may be NULL. */
static void make_device_with(const struct vmdev_pci_device_ops *ops)
{
    memset(&owner, 0, sizeof(owner));
    vmdev_pci_bus_free(bus); /* the last test's bus and device go */
    bus = NULL;
    vmdev_pci_device_free(dev);
    struct vmdev_pci_device_config header = test_header;
    header.ops = ops;
    dev = vmdev_pci_device_new(&header);
    if (!dev || vmdev_pci_set_bar(dev, 0, VMDEV_PCI_BAR_IO, 32, false, &bar_ops,
                          NULL, VMDEV_ACCESS_ANY) ||
        vmdev_pci_set_bar(dev, 1, VMDEV_PCI_BAR_MEM32, 4096, false,
                          &bar_ops, NULL, VMDEV_ACCESS_ANY) ||
        vmdev_pci_set_bar(dev, 2, VMDEV_PCI_BAR_MEM64, 1ull << 33, true,
                          &bar_ops, NULL, VMDEV_ACCESS_ANY))
        abort();
    bus = vmdev_pci_bus_new(&owner_ops);
    if (vmdev_pci_bus_add(bus, dev, 3) != 3)
        abort();
}

static void make_device(void)
{
    make_device_with(NULL);
}

/* Through mechanism #1, as Linux's pci_conf1_read/write do. */
static uint32_t conf1_read(unsigned slot, unsigned reg, unsigned size)
{
    uint32_t address = 0x80000000u | slot << 11 | (reg & 0xfc);
    vmdev_pci_conf1_ops.write(bus, 0, address, 4);
    return (uint32_t)vmdev_pci_conf1_ops.read(bus, 4 + (reg & 3), size);
}

static void conf1_write(unsigned slot, unsigned reg, uint32_t value,
                        unsigned size)
{
    uint32_t address = 0x80000000u | slot << 11 | (reg & 0xfc);
    vmdev_pci_conf1_ops.write(bus, 0, address, 4);
    vmdev_pci_conf1_ops.write(bus, 4 + (reg & 3), value, size);
}

static void header_reads_back_identity(void)
{
    make_device();
    CHECK_EQ(conf1_read(3, 0x00, 4), 0x10411af4);
    CHECK_EQ(conf1_read(3, 0x02, 2), 0x1041);
    CHECK_EQ(conf1_read(3, 0x08, 4), 0x02000001); /* class, revision */
    CHECK_EQ(conf1_read(3, 0x2c, 4), 0x11001af4);
    CHECK_EQ(conf1_read(3, 0x3d, 1), 1);         /* INTA */
    CHECK_EQ(conf1_read(3, 0x0e, 1), 0);         /* type 0, single fn */
    /* Slot 0 is the host bridge. */
    CHECK_EQ(conf1_read(0, 0x0a, 2), 0x0600);
    /* Empty slots, other functions and other buses read all ones. */
    CHECK_EQ(conf1_read(4, 0x00, 4), 0xffffffff);
    CHECK_EQ(conf1_read(4, 0x00, 2), 0xffff);
    vmdev_pci_conf1_ops.write(bus, 0, 0x80000000u | 3 << 11 | 1 << 8, 4);
    CHECK_EQ(vmdev_pci_conf1_ops.read(bus, 4, 4), 0xffffffff);
    vmdev_pci_conf1_ops.write(bus, 0, 0x80000000u | 1 << 16 | 3 << 11, 4);
    CHECK_EQ(vmdev_pci_conf1_ops.read(bus, 4, 4), 0xffffffff);
    /* Without the enable bit nothing is selected. */
    vmdev_pci_conf1_ops.write(bus, 0, 3 << 11, 4);
    CHECK_EQ(vmdev_pci_conf1_ops.read(bus, 4, 4), 0xffffffff);
    CHECK_EQ(vmdev_pci_conf1_ops.read(bus, 0, 4), 3 << 11);
}

static void read_only_fields_ignore_writes(void)
{
    make_device();
    conf1_write(3, 0x00, 0xdeadbeef, 4);
    conf1_write(3, 0x08, 0xffffffff, 4);
    conf1_write(3, 0x3d, 0xff, 1);
    conf1_write(3, 0x34, 0xff, 1);
    CHECK_EQ(conf1_read(3, 0x00, 4), 0x10411af4);
    CHECK_EQ(conf1_read(3, 0x08, 4), 0x02000001);
    CHECK_EQ(conf1_read(3, 0x3d, 1), 1);
    /* Interrupt Line and Command's defined bits are writable. */
    conf1_write(3, 0x3c, 11, 1);
    CHECK_EQ(conf1_read(3, 0x3c, 1), 11);
    conf1_write(3, 0x04, 0xffff, 2);
    CHECK_EQ(conf1_read(3, 0x04, 2), 0x407);
    /* Misaligned accesses do nothing and read all ones. */
    CHECK_EQ(vmdev_pci_config_read(dev, 1, 2), 0xffffffff);
    CHECK_EQ(vmdev_pci_config_read(dev, 2, 4), 0xffffffff);
    CHECK_EQ(vmdev_pci_config_read(dev, 4096, 1), 0xffffffff);
    vmdev_pci_config_write(dev, 0x3b, 0x1234, 2);
    CHECK_EQ(conf1_read(3, 0x3c, 1), 11);
}

/* 6.2.5.1: write all ones, read back the size mask and type bits. */
static void bar_sizing(void)
{
    make_device();
    for (unsigned i = 0; i < 6; i++)
        conf1_write(3, 0x10 + 4 * i, 0xffffffff, 4);
    CHECK_EQ(conf1_read(3, 0x10, 4), 0xffffffe1); /* 32 bytes of IO */
    CHECK_EQ(conf1_read(3, 0x14, 4), 0xfffff000); /* 4 KiB, 32-bit */
    CHECK_EQ(conf1_read(3, 0x18, 4), 0x0000000c); /* 64-bit prefetch */
    CHECK_EQ(conf1_read(3, 0x1c, 4), 0xfffffffe); /* 8 GiB */
    CHECK_EQ(conf1_read(3, 0x20, 4), 0);          /* unimplemented */
    CHECK_EQ(conf1_read(3, 0x30, 4), 0);          /* no expansion ROM */
}

static void bar_description_checked(void)
{
    struct vmdev_pci_device *d = vmdev_pci_device_new(
        &(struct vmdev_pci_device_config){ .name = "d", .vendor_id = 1,
                                           .device_id = 2 });
    CHECK(d != NULL);
    CHECK_EQ(vmdev_pci_set_bar(d, 6, VMDEV_PCI_BAR_MEM32, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_4),
             -EINVAL);
    CHECK_EQ(vmdev_pci_set_bar(d, 0, VMDEV_PCI_BAR_MEM32, 3000, false,
                               &bar_ops, NULL, VMDEV_ACCESS_4),
             -EINVAL);
    CHECK_EQ(vmdev_pci_set_bar(d, 5, VMDEV_PCI_BAR_MEM64, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_4),
             -EINVAL);
    CHECK_EQ(vmdev_pci_set_bar(d, 0, VMDEV_PCI_BAR_IO, 512, false, &bar_ops,
                               NULL, VMDEV_ACCESS_4),
             -EINVAL);
    CHECK_EQ(vmdev_pci_set_bar(d, 1, VMDEV_PCI_BAR_MEM32, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_4),
             0);
    CHECK_EQ(vmdev_pci_set_bar(d, 0, VMDEV_PCI_BAR_MEM64, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_4),
             -EINVAL); /* would overlap BAR 1 */
    vmdev_pci_device_free(d);
}

static void bar_moves_go_to_the_owner(void)
{
    make_device();
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 0); /* nothing decoded yet */
    conf1_write(3, 0x14, 0xc0001000, 4);
    conf1_write(3, 0x18, 0x0000000c, 4);
    conf1_write(3, 0x1c, 0x2, 4); /* 64-bit BAR at 8 GiB */
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 0); /* Command.Memory still clear */
    conf1_write(3, 0x04, 0x2, 2);
    CHECK(vmdev_pci_bus_bar_changes_pending(bus));
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK(!vmdev_pci_bus_bar_changes_pending(bus));
    CHECK_EQ(owner.maps, 2);
    CHECK(vmdev_pci_device_bar(dev, 1)->mapped);
    CHECK_EQ(vmdev_pci_device_bar(dev, 1)->mapped_address, 0xc0001000);
    CHECK_EQ(vmdev_pci_device_bar(dev, 2)->mapped_address, 0x200000000ull);
    /* Moving a BAR unmaps the old place, maps the new one. */
    conf1_write(3, 0x14, 0xc0002000, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.unmaps, 1);
    CHECK_EQ(owner.last_unmap, 0xc0001000);
    CHECK_EQ(owner.last_map, 0xc0002000);
    /* Disabling memory decode unmaps both memory BARs. */
    conf1_write(3, 0x04, 0x0, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.unmaps, 3);
    CHECK(!vmdev_pci_device_bar(dev, 1)->mapped && !vmdev_pci_device_bar(dev, 2)->mapped);
    /* IO decode maps the IO BAR. */
    conf1_write(3, 0x10, 0xc040, 4);
    conf1_write(3, 0x04, 0x1, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.last_map, 0xc040);
    CHECK_EQ(owner.last_bar, 0);
    /* A refused mapping leaves the BAR unmapped. */
    owner.map_result = -EEXIST;
    conf1_write(3, 0x10, 0xc080, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK(!vmdev_pci_device_bar(dev, 0)->mapped);
    /* Unplugging unmaps what is mapped. */
    owner.map_result = 0;
    conf1_write(3, 0x10, 0xc0c0, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK(vmdev_pci_device_bar(dev, 0)->mapped);
    unsigned unmaps = owner.unmaps;
    vmdev_pci_bus_remove(bus, dev);
    CHECK_EQ(owner.unmaps, unmaps + 1);
    CHECK_EQ(conf1_read(3, 0, 4), 0xffffffff);
}

static void ecam_reaches_the_same_registers(void)
{
    make_device();
    uint64_t base = 3u << 15;
    CHECK_EQ(vmdev_pci_ecam_ops.read(bus, base, 4), 0x10411af4);
    CHECK_EQ(vmdev_pci_ecam_ops.read(bus, base + 2, 2), 0x1041);
    vmdev_pci_ecam_ops.write(bus, base + 0x3c, 5, 1);
    CHECK_EQ(conf1_read(3, 0x3c, 1), 5);
    CHECK_EQ(vmdev_pci_ecam_ops.read(bus, base + 1, 2), 0xffff); /* misaligned */
    CHECK_EQ(vmdev_pci_ecam_ops.read(bus, base + (1 << 12), 4), 0xffffffff);
    /* Extended config space exists (and is empty) on PCIe. */
    CHECK_EQ(vmdev_pci_ecam_ops.read(bus, base + 0x100, 4), 0);
}

static void capability_list_is_chained(void)
{
    make_device();
    uint8_t a = vmdev_pci_add_capability(dev, 0x09, 16);
    uint8_t b = vmdev_pci_add_capability(dev, 0x11, 12);
    CHECK_EQ(a, 0x40);
    CHECK_EQ(b, 0x50);
    CHECK(conf1_read(3, 0x06, 2) & 0x10);
    CHECK_EQ(conf1_read(3, 0x34, 1), 0x40);
    CHECK_EQ(conf1_read(3, 0x40, 2), 0x5009);
    CHECK_EQ(conf1_read(3, 0x50, 2), 0x0011);
    /* No room left: a capability past 256 bytes is refused. */
    for (int i = 0; i < 20; i++)
        (void)vmdev_pci_add_capability(dev, 9, 20);
    CHECK_EQ(vmdev_pci_add_capability(dev, 9, 200), 0);
}

static void intx_follows_pin_and_disable_bit(void)
{
    make_device();
    vmdev_pci_set_intx(dev, true);
    CHECK(owner.intx[3][1]);
    CHECK(conf1_read(3, 0x06, 2) & 0x8);
    conf1_write(3, 0x04, 0x400, 2); /* INTX_DISABLE */
    CHECK(!owner.intx[3][1]);
    CHECK(conf1_read(3, 0x06, 2) & 0x8); /* status still shows it */
    conf1_write(3, 0x04, 0, 2);
    CHECK(owner.intx[3][1]);
    unsigned changes = owner.intx_changes;
    vmdev_pci_set_intx(dev, true); /* no change, no call */
    CHECK_EQ(owner.intx_changes, changes);
    vmdev_pci_set_intx(dev, false);
    CHECK(!owner.intx[3][1]);
    CHECK(!(conf1_read(3, 0x06, 2) & 0x8));
}

static void save_restore_keeps_identity(void)
{
    make_device();
    conf1_write(3, 0x14, 0xc0001000, 4);
    conf1_write(3, 0x04, 0x6, 2);
    conf1_write(3, 0x3c, 10, 1);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pci_device_save(dev, &w, "pci3");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    /* Tamper with a read-only byte in the snapshot: vendor id. */
    uint8_t *v = memmem(w.data, w.len, "\xf4\x1a\x41\x10", 4);
    CHECK(v != NULL);
    v[0] = 0x00;

    struct vmdev_pci_device *copy = vmdev_pci_device_new(&test_header);
    CHECK(copy != NULL);
    CHECK_EQ(vmdev_pci_set_bar(copy, 1, VMDEV_PCI_BAR_MEM32, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_ANY),
             0);
    CHECK_EQ(vmdev_pci_device_restore(copy, w.data, w.len, "pci3"), 0);
    CHECK_EQ(vmdev_pci_get_config(copy, 0, 4), 0x10411af4);
    CHECK_EQ(vmdev_pci_bar_address(copy, 1), 0xc0001000);
    CHECK_EQ(vmdev_pci_get_config(copy, 0x04, 2), 0x6);
    CHECK_EQ(vmdev_pci_get_config(copy, 0x3c, 1), 10);
    CHECK_EQ(vmdev_pci_device_restore(copy, w.data, w.len / 2, "pci3"),
             -EINVAL);
    vmdev_pci_device_free(copy);
    vmdev_state_writer_release(&w);
}

/* --- MSI-X --- */

static struct vmdev_pci_msix *msix;

/* The function's config_written hook tells MSI-X, as its header asks. */
static void msix_config_written(struct vmdev_pci_device *pdev, uint32_t offset,
                                unsigned size)
{
    (void)pdev;
    vmdev_pci_msix_config_written(msix, offset, size);
}

static const struct vmdev_pci_device_ops msix_device_ops = {
    .config_written = msix_config_written,
};

static void make_msix(void)
{
    make_device_with(&msix_device_ops);
    struct vmdev_msi_sink sink = { .send = fake_msi, .opaque = NULL };
    msix = vmdev_pci_msix_new(dev, 3, 1, 0x800, 0xc00, &sink);
    if (!msix)
        abort();
}

static void program_vector(uint16_t v, uint32_t data, bool masked)
{
    vmdev_pci_msix_table_write(msix, 16u * v, 0xfee00000, 4);
    vmdev_pci_msix_table_write(msix, 16u * v + 4, 0, 4);
    vmdev_pci_msix_table_write(msix, 16u * v + 8, data, 4);
    vmdev_pci_msix_table_write(msix, 16u * v + 12, masked, 4);
}

static void msix_capability_layout(void)
{
    make_msix();
    uint8_t cap = vmdev_pci_msix_capability(msix);
    CHECK_EQ(conf1_read(3, cap, 1), 0x11);
    CHECK_EQ(conf1_read(3, cap + 2, 2), 2); /* N - 1 */
    CHECK_EQ(conf1_read(3, cap + 4, 4), 0x801); /* BIR 1 */
    CHECK_EQ(conf1_read(3, cap + 8, 4), 0xc01);
    conf1_write(3, cap + 2, 0xffff, 2);
    CHECK_EQ(conf1_read(3, cap + 2, 2), 0xc002); /* only enable, mask */
    /* Vectors start masked, table reads back. */
    CHECK_EQ(vmdev_pci_msix_table_read(msix, 12, 4), 1);
    program_vector(1, 0x4041, false);
    CHECK_EQ(vmdev_pci_msix_table_read(msix, 16 + 8, 4), 0x4041);
    CHECK_EQ(vmdev_pci_msix_table_read(msix, 16, 8), 0xfee00000);
    /* Out-of-table and odd-sized accesses are ignored. */
    CHECK_EQ(vmdev_pci_msix_table_read(msix, 48, 4), 0);
    CHECK_EQ(vmdev_pci_msix_table_read(msix, 2, 2), 0);
    vmdev_pci_msix_table_write(msix, 48, 1, 4);
    vmdev_pci_msix_table_write(msix, 46, 1, 4);
    vmdev_pci_msix_free(msix);
}

/* PCI 3.0, 6.8.2: table and PBA inside their BAR and apart. */
static void msix_layout_must_fit_its_bar(void)
{
    make_device(); /* BAR 1: 4 KiB */
    struct vmdev_msi_sink sink = { .send = fake_msi, .opaque = NULL };
    struct {
        uint16_t vectors;
        uint32_t table, pba;
        bool ok;
    } cases[] = {
        { 3, 0x800, 0xc00, true },
        { 64, 0x0, 0x400, true },    /* table ends where the PBA starts */
        { 65, 0x0, 0x400, false },   /* one more runs into the PBA */
        { 3, 0x800, 0x820, false },  /* PBA inside the table */
        { 3, 0x800, 0x1000, false }, /* PBA past the BAR's end */
        { 256, 0x800, 0x0, false },  /* table past the BAR's end */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_device();
        msix = vmdev_pci_msix_new(dev, cases[i].vectors, 1, cases[i].table,
                                  cases[i].pba, &sink);
        if (!msix != !cases[i].ok)
            fprintf(stderr, "case %u: %s\n", i, msix ? "made" : "refused");
        CHECK_EQ(!msix, !cases[i].ok);
        CHECK(msix || errno == EINVAL);
        vmdev_pci_msix_free(msix);
    }
}

static void msix_delivery_masking_and_pending(void)
{
    make_msix();
    program_vector(0, 0x30, false);
    program_vector(2, 0x32, true);
    /* Disabled: nothing sent, the caller falls back to INTx. */
    CHECK(!vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(owner.msis, 0);
    conf1_write(3, vmdev_pci_msix_capability(msix) + 2, 0x8000, 2);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(owner.msis, 1);
    CHECK_EQ(owner.last_msi.data, 0x30);
    CHECK_EQ(owner.last_msi.address, 0xfee00000);
    CHECK(!vmdev_pci_msix_notify(msix, 3)); /* no such vector */
    /* A masked vector's message becomes a pending bit... */
    CHECK(vmdev_pci_msix_notify(msix, 2));
    CHECK_EQ(owner.msis, 1);
    CHECK_EQ(vmdev_pci_msix_pba_read(msix, 0, 8), 4);
    CHECK_EQ(vmdev_pci_msix_pba_read(msix, 0, 4), 4);
    /* ...delivered when unmasked. */
    vmdev_pci_msix_table_write(msix, 2 * 16 + 12, 0, 4);
    CHECK_EQ(owner.msis, 2);
    CHECK_EQ(owner.last_msi.data, 0x32);
    CHECK_EQ(vmdev_pci_msix_pba_read(msix, 0, 8), 0);
    /* Function mask holds every vector. */
    conf1_write(3, vmdev_pci_msix_capability(msix) + 2, 0xc000, 2);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(owner.msis, 2);
    conf1_write(3, vmdev_pci_msix_capability(msix) + 2, 0x8000, 2);
    CHECK_EQ(owner.msis, 3);

    /* Save and restore the table and pending bits. */
    vmdev_pci_msix_table_write(msix, 2 * 16 + 12, 1, 4);
    CHECK(vmdev_pci_msix_notify(msix, 2));
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pci_msix_save(msix, &w, "msix");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    struct vmdev_pci_device *d2 = vmdev_pci_device_new(
        &(struct vmdev_pci_device_config){ .name = "d2", .vendor_id = 1,
                                           .device_id = 2 });
    CHECK(d2 != NULL);
    CHECK_EQ(vmdev_pci_set_bar(d2, 1, VMDEV_PCI_BAR_MEM32, 4096, false,
                               &bar_ops, NULL, VMDEV_ACCESS_ANY),
             0);
    struct vmdev_msi_sink sink = { .send = fake_msi, .opaque = NULL };
    struct vmdev_pci_msix *copy =
        vmdev_pci_msix_new(d2, 3, 1, 0x800, 0xc00, &sink);
    CHECK(copy != NULL);
    CHECK_EQ(vmdev_pci_msix_restore(copy, w.data, w.len, "msix"), 0);
    CHECK_EQ(vmdev_pci_msix_table_read(copy, 8, 4), 0x30);
    CHECK_EQ(vmdev_pci_msix_pba_read(copy, 0, 8), 4);
    vmdev_pci_msix_free(copy);
    vmdev_pci_device_free(d2);
    vmdev_state_writer_release(&w);
    vmdev_pci_msix_free(msix);
}

/* The sink's route: an eventfd per message, counted. */
static int route_calls;
static int route_gives = -1;
static struct vmdev_msi_msg last_routed;

static int give_route(void *opaque, const struct vmdev_msi_msg *msg)
{
    (void)opaque;
    route_calls++;
    last_routed = *msg;
    return route_gives;
}

static uint64_t eventfd_count(int fd)
{
    uint64_t n = 0;
    return read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

/* A vector asks the sink for its message's eventfd once, then writes it
 * itself; a new address or data asks again; no eventfd means the sink's
 * send, without asking again until the message changes. */
static void msix_vectors_keep_their_eventfd(void)
{
    make_device_with(&msix_device_ops);
    struct vmdev_msi_sink sink = { .send = fake_msi, .route = give_route };
    msix = vmdev_pci_msix_new(dev, 3, 1, 0x800, 0xc00, &sink);
    CHECK(msix != NULL);
    int fd = eventfd(0, EFD_NONBLOCK);
    CHECK(fd >= 0);
    route_calls = 0;
    route_gives = fd;
    program_vector(0, 0x30, false);
    conf1_write(3, vmdev_pci_msix_capability(msix) + 2, 0x8000, 2);
    for (int i = 0; i < 3; i++)
        CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(route_calls, 1);
    CHECK_EQ(last_routed.data, 0x30);
    CHECK_EQ(eventfd_count(fd), 3);
    CHECK_EQ(owner.msis, 0);
    vmdev_pci_msix_table_write(msix, 8, 0x31, 4);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(route_calls, 2);
    CHECK_EQ(last_routed.data, 0x31);
    CHECK_EQ(eventfd_count(fd), 1);
    /* No route for vector 1's message: the sink sends it. */
    route_gives = -1;
    program_vector(1, 0x40, false);
    CHECK(vmdev_pci_msix_notify(msix, 1));
    CHECK(vmdev_pci_msix_notify(msix, 1));
    CHECK_EQ(route_calls, 3);
    CHECK_EQ(owner.msis, 2);
    CHECK_EQ(owner.last_msi.data, 0x40);
    struct vmdev_pci_msix_stats stats = vmdev_pci_msix_stats(msix);
    CHECK_EQ(stats.delivered, 6);
    CHECK_EQ(stats.routed, 4);
    /* An 8-byte write of the address, and a write of the control word
     * alone: the first asks again, the second does not. */
    route_gives = fd;
    vmdev_pci_msix_table_write(msix, 0, 0xfee01000, 8);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(route_calls, 4);
    CHECK_EQ(last_routed.address, 0xfee01000);
    vmdev_pci_msix_table_write(msix, 12, 0, 4);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(route_calls, 4);
    CHECK_EQ(eventfd_count(fd), 2);
    /* A restored table asks again for every vector. */
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pci_msix_save(msix, &w, "msix");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    CHECK_EQ(vmdev_pci_msix_restore(msix, w.data, w.len, "msix"), 0);
    CHECK(vmdev_pci_msix_notify(msix, 0));
    CHECK_EQ(route_calls, 5);
    CHECK_EQ(eventfd_count(fd), 1);
    vmdev_state_writer_release(&w);
    vmdev_pci_msix_free(msix);
    close(fd);
}

TEST_MAIN(TEST(header_reads_back_identity),
          TEST(read_only_fields_ignore_writes), TEST(bar_sizing),
          TEST(bar_description_checked), TEST(bar_moves_go_to_the_owner),
          TEST(ecam_reaches_the_same_registers),
          TEST(capability_list_is_chained),
          TEST(intx_follows_pin_and_disable_bit),
          TEST(save_restore_keeps_identity), TEST(msix_capability_layout),
          TEST(msix_layout_must_fit_its_bar),
          TEST(msix_delivery_masking_and_pending),
          TEST(msix_vectors_keep_their_eventfd))
