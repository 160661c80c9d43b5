/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "test.h"
#include "vmdev/device_manager.h"

/* What happened, in order: "d:<id>" for a destroy, "r:<name>" for a
 * claimed resource's release. */
static char events[512];

static void log_event(const char *kind, const char *what)
{
    size_t used = strlen(events);
    snprintf(events + used, sizeof(events) - used, "%s%s:%s",
             used ? " " : "", kind, what);
}

struct fake_device {
    const char *name;
    uint32_t value;
};

static void fake_destroy(void *opaque)
{
    struct fake_device *f = opaque;
    log_event("d", f->name);
}

static void fake_save(void *opaque, struct vmdev_state_writer *w,
                      const char *id)
{
    struct fake_device *f = opaque;
    vmdev_state_begin_section(w, id, 1);
    vmdev_state_put_u32(w, "value", f->value);
    vmdev_state_end_section(w);
}

static int fake_restore(void *opaque, const void *snapshot, size_t len,
                        const char *id)
{
    struct fake_device *f = opaque;
    struct vmdev_state_section s;
    int ret = vmdev_state_find_section(snapshot, len, id, &s);
    if (ret)
        return ret;
    uint32_t value;
    ret = vmdev_state_get_u32(&s, "value", &value);
    if (ret)
        return ret;
    if (value > 1000)
        return -EINVAL;
    f->value = value;
    return 0;
}

static const struct vmdev_device_ops stateless_ops = { fake_destroy, NULL,
                                                       NULL };
static const struct vmdev_device_ops stateful_ops = { fake_destroy, fake_save,
                                                      fake_restore };

static void release_named(void *ctx)
{
    log_event("r", ctx);
}

/* Names for claims, writable as a claim's context is. */
static char slot[] = "slot", timer[] = "timer", ioapic_pins[] = "ioapic-pins",
            pci_window[] = "pci-window", disk_slot[] = "disk-slot";

static uint64_t read_zero(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    return 0;
}

static void write_nothing(void *opaque, uint64_t offset, uint64_t value,
                          unsigned size)
{
    (void)opaque, (void)offset, (void)value, (void)size;
}

static const struct vmdev_bus_ops quiet_ops = { read_zero, write_nothing };

static void ids_are_generated_checked_and_unique(void)
{
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct fake_device f = { "f", 0 };
    struct vmdev_device *a, *b, *c, *d;
    CHECK_EQ(vmdev_device_add(m, "virtio-blk", NULL, &stateless_ops, &f, &a), 0);
    CHECK_EQ(vmdev_device_add(m, "virtio-blk", NULL, &stateless_ops, &f, &b), 0);
    CHECK(strcmp(vmdev_device_id(a), "virtio-blk0") == 0);
    CHECK(strcmp(vmdev_device_id(b), "virtio-blk1") == 0);
    CHECK(strcmp(vmdev_device_type(b), "virtio-blk") == 0);
    CHECK(vmdev_device_opaque(b) == &f);
    /* A user's id may take a name a later generated one would have. */
    CHECK_EQ(vmdev_device_add(m, "virtio-blk", "virtio-blk2", &stateless_ops,
                              &f, &c), 0);
    CHECK_EQ(vmdev_device_add(m, "virtio-blk", NULL, &stateless_ops, &f, &d), 0);
    CHECK(strcmp(vmdev_device_id(d), "virtio-blk3") == 0);
    CHECK_EQ(vmdev_device_add(m, "rng", "virtio-blk2", &stateless_ops, &f, &d),
             -EEXIST);
    /* A removed device's id is free again. */
    vmdev_device_remove(m, a);
    CHECK_EQ(vmdev_device_add(m, "virtio-blk", NULL, &stateless_ops, &f, &a), 0);
    CHECK(strcmp(vmdev_device_id(a), "virtio-blk0") == 0);

    static const char *const bad_ids[] = {
        "", "0disk", "-disk", "disk 0", "disk/0", "disk0\n", "dïsk",
        "a2345678901234567890123456789012", /* 32 characters */
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        CHECK(!vmdev_device_id_valid(bad_ids[i]));
        CHECK_EQ(vmdev_device_add(m, "rng", bad_ids[i], &stateless_ops, &f, &d),
                 -EINVAL);
    }
    CHECK(!vmdev_device_id_valid(NULL));
    CHECK(vmdev_device_id_valid("disk0"));
    CHECK_EQ(vmdev_device_add(m, "rng", "a234567890123456789012345678901",
                              &stateless_ops, &f, &d), 0);
    CHECK_EQ(vmdev_device_add(m, "rng", "Disk_0.a-b", &stateless_ops, &f, &d), 0);
    /* A type leaves room for a generated number. */
    CHECK_EQ(vmdev_device_add(m, "a234567890123456789012345678", NULL,
                              &stateless_ops, &f, &d), -EINVAL);
    CHECK_EQ(vmdev_device_add(m, "a23456789012345678901234567", NULL,
                              &stateless_ops, &f, &d), 0);
    CHECK(strcmp(vmdev_device_id(d), "a234567890123456789012345670") == 0);
    CHECK_EQ(vmdev_device_add(m, "9p", NULL, &stateless_ops, &f, &d), -EINVAL);
    CHECK_EQ(vmdev_device_add(m, NULL, "x", &stateless_ops, &f, &d), -EINVAL);
    CHECK_EQ(vmdev_device_add(m, "rng", "x", NULL, &f, &d), -EINVAL);
    static const struct vmdev_device_ops save_only = { NULL, fake_save, NULL };
    CHECK_EQ(vmdev_device_add(m, "rng", "x", &save_only, &f, &d), -EINVAL);
    CHECK_EQ(vmdev_device_count(m), 7);
    vmdev_device_manager_free(m);
}

static void find_and_iterate_in_order_added(void)
{
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct fake_device f[3] = { { "a", 0 }, { "b", 0 }, { "c", 0 } };
    struct vmdev_device *d[3];
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(vmdev_device_add(m, "fake", f[i].name, &stateless_ops, &f[i],
                                  &d[i]), 0);
    CHECK(vmdev_device_find(m, "b") == d[1]);
    CHECK(vmdev_device_find(m, "d") == NULL);
    CHECK(vmdev_device_next(m, NULL) == d[0]);
    CHECK(vmdev_device_next(m, d[0]) == d[1]);
    CHECK(vmdev_device_next(m, d[2]) == NULL);
    vmdev_device_remove(m, d[1]);
    CHECK(vmdev_device_find(m, "b") == NULL);
    CHECK(vmdev_device_next(m, d[0]) == d[2]);
    CHECK_EQ(vmdev_device_count(m), 2);
    vmdev_device_remove(m, d[0]);
    vmdev_device_remove(m, d[2]);
    CHECK(vmdev_device_next(m, NULL) == NULL);
    CHECK_EQ(vmdev_device_count(m), 0);
    vmdev_device_manager_free(m);
}

static void removal_gives_every_resource_back_then_destroys(void)
{
    events[0] = 0;
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct vmdev_bus *pio = vmdev_bus_new("pio", 0xffff);
    struct vmdev_resource_pool *mmio = vmdev_resource_pool_new(0xc0000000,
                                                               0x100000);
    struct vmdev_resource_pool *gsis = vmdev_resource_pool_new(0, 24);
    struct fake_device f = { "uart", 0 };
    struct vmdev_device *dev;
    uint64_t bar, value;
    CHECK_EQ(vmdev_device_add(m, "uart", "com1", &stateless_ops, &f, &dev), 0);
    CHECK_EQ(vmdev_device_map(dev, pio, VMDEV_RESOURCE_PIO, 0x3f8, 8,
                              VMDEV_ACCESS_1, &quiet_ops, NULL), 0);
    CHECK_EQ(vmdev_device_reserve(dev, gsis, VMDEV_RESOURCE_GSI, 4, 1), 0);
    CHECK_EQ(vmdev_device_alloc(dev, mmio, VMDEV_RESOURCE_MMIO, 0x4000, 0x4000,
                                &bar), 0);
    CHECK_EQ(bar, 0xc0000000);
    CHECK_EQ(vmdev_device_claim(dev, VMDEV_RESOURCE_PCI_SLOT, 3, 1,
                                release_named, slot), 0);
    /* A claim that fails takes nothing: the range stays with its owner. */
    CHECK_EQ(vmdev_device_map(dev, pio, VMDEV_RESOURCE_PIO, 0x3fc, 1,
                              VMDEV_ACCESS_1, &quiet_ops, NULL), -EEXIST);
    CHECK_EQ(vmdev_device_reserve(dev, gsis, VMDEV_RESOURCE_GSI, 4, 1), -EBUSY);
    CHECK_EQ(vmdev_device_claim(dev, VMDEV_RESOURCE_MSI, 0, 1, NULL, NULL),
             -EINVAL);

    struct vmdev_resource res[8];
    CHECK_EQ(vmdev_device_resources(dev, res, 2), 4);
    CHECK_EQ(vmdev_device_resources(dev, res, 8), 4);
    CHECK_EQ(res[0].kind, VMDEV_RESOURCE_PIO);
    CHECK_EQ(res[0].base, 0x3f8);
    CHECK_EQ(res[0].size, 8);
    CHECK_EQ(res[1].kind, VMDEV_RESOURCE_GSI);
    CHECK_EQ(res[1].base, 4);
    CHECK_EQ(res[2].kind, VMDEV_RESOURCE_MMIO);
    CHECK_EQ(res[2].size, 0x4000);
    CHECK_EQ(res[3].kind, VMDEV_RESOURCE_PCI_SLOT);
    CHECK_EQ(res[3].base, 3);
    CHECK(strcmp(vmdev_resource_kind_name(res[3].kind), "pci-slot") == 0);
    CHECK_EQ(vmdev_bus_read(pio, 0x3f8, 1, &value), 0);

    vmdev_device_remove(m, dev);
    /* The claim went first and the device last. */
    CHECK(strcmp(events, "r:slot d:uart") == 0);
    CHECK_EQ(vmdev_bus_read(pio, 0x3f8, 1, &value), -ENOENT);
    uint64_t again;
    CHECK_EQ(vmdev_resource_reserve(gsis, 4, 1), 0);
    CHECK_EQ(vmdev_resource_alloc(mmio, 0x4000, 0x4000, &again), 0);
    CHECK_EQ(again, bar);
    vmdev_device_manager_free(m);
    vmdev_resource_pool_free(gsis);
    vmdev_resource_pool_free(mmio);
    vmdev_bus_free(pio);
}

static void a_half_built_device_is_removed_whole(void)
{
    events[0] = 0;
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct vmdev_resource_pool *gsis = vmdev_resource_pool_new(0, 24);
    struct fake_device f = { "rtc", 0 }, other = { "other", 0 };
    struct vmdev_device *dev, *holder;
    CHECK_EQ(vmdev_device_add(m, "fake", "holder", &stateless_ops, &other,
                              &holder), 0);
    CHECK_EQ(vmdev_device_reserve(holder, gsis, VMDEV_RESOURCE_GSI, 8, 1), 0);
    CHECK_EQ(vmdev_device_add(m, "rtc", NULL, &stateless_ops, &f, &dev), 0);
    CHECK_EQ(vmdev_device_claim(dev, VMDEV_RESOURCE_MSI, 0, 1, release_named,
                                timer), 0);
    /* Its interrupt is taken: setup fails and removes what it had. */
    CHECK_EQ(vmdev_device_reserve(dev, gsis, VMDEV_RESOURCE_GSI, 8, 1), -EBUSY);
    vmdev_device_remove(m, dev);
    CHECK(strcmp(events, "r:timer d:rtc") == 0);
    /* The holder kept its GSI. */
    CHECK_EQ(vmdev_resource_reserve(gsis, 8, 1), -EBUSY);
    vmdev_device_manager_free(m);
    CHECK(strcmp(events, "r:timer d:rtc d:other") == 0);
    vmdev_resource_pool_free(gsis);
}

static void freeing_the_manager_removes_newest_first(void)
{
    events[0] = 0;
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct fake_device f[3] = { { "ioapic", 0 }, { "pci", 0 }, { "disk", 0 } };
    char *releases[3] = { ioapic_pins, pci_window, disk_slot };
    for (unsigned i = 0; i < 3; i++) {
        struct vmdev_device *d;
        CHECK_EQ(vmdev_device_add(m, "fake", NULL, &stateless_ops, &f[i], &d), 0);
        CHECK_EQ(vmdev_device_claim(d, VMDEV_RESOURCE_GSI, i, 1, release_named,
                                    releases[i]), 0);
    }
    vmdev_device_manager_free(m);
    CHECK(strcmp(events, "r:disk-slot d:disk r:pci-window d:pci "
                         "r:ioapic-pins d:ioapic") == 0);
    vmdev_device_manager_free(NULL);
}

static void snapshot_round_trip_by_id(void)
{
    events[0] = 0;
    struct vmdev_device_manager *m = vmdev_device_manager_new();
    struct fake_device a = { "a", 11 }, b = { "b", 22 }, plain = { "p", 33 };
    struct vmdev_device *da, *db, *dp;
    CHECK_EQ(vmdev_device_add(m, "fake", "alpha", &stateful_ops, &a, &da), 0);
    CHECK_EQ(vmdev_device_add(m, "fake", NULL, &stateless_ops, &plain, &dp), 0);
    CHECK_EQ(vmdev_device_add(m, "fake", "beta", &stateful_ops, &b, &db), 0);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_device_manager_save(m, &w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    struct vmdev_state_section s;
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "alpha", &s), 0);
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "beta", &s), 0);
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, vmdev_device_id(dp), &s),
             -ENOENT);

    a.value = 0, b.value = 0, plain.value = 0;
    const struct vmdev_device *failed = NULL;
    CHECK_EQ(vmdev_device_manager_restore(m, w.data, w.len, &failed), 0);
    CHECK(failed == NULL);
    CHECK_EQ(a.value, 11);
    CHECK_EQ(b.value, 22);
    CHECK_EQ(plain.value, 0);

    /* A value the device refuses names the device. */
    CHECK_EQ(test_state_patch(w.data, w.len, "value", 4, 5000), 0);
    CHECK_EQ(vmdev_device_manager_restore(m, w.data, w.len, &failed), -EINVAL);
    CHECK(failed == da);
    /* A machine with a device the snapshot lacks cannot be restored. */
    vmdev_device_remove(m, da);
    struct vmdev_device *dc;
    struct fake_device c = { "c", 0 };
    CHECK_EQ(vmdev_device_add(m, "fake", "gamma", &stateful_ops, &c, &dc), 0);
    CHECK_EQ(vmdev_device_manager_restore(m, w.data, w.len, &failed), -ENOENT);
    CHECK(failed == dc);
    vmdev_state_writer_release(&w);
    vmdev_device_manager_free(m);
}

TEST_MAIN(TEST(ids_are_generated_checked_and_unique),
          TEST(find_and_iterate_in_order_added),
          TEST(removal_gives_every_resource_back_then_destroys),
          TEST(a_half_built_device_is_removed_whole),
          TEST(freeing_the_manager_removes_newest_first),
          TEST(snapshot_round_trip_by_id))
