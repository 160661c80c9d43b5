/* SPDX-License-Identifier: MIT */
#include "test.h"
#include "vmdev/bus.h"

#include <errno.h>

struct recorder {
    uint64_t last_offset, last_value;
    unsigned last_size, reads, writes;
};

static uint64_t rec_read(void *opaque, uint64_t offset, unsigned size)
{
    struct recorder *r = opaque;
    r->last_offset = offset;
    r->last_size = size;
    r->reads++;
    return 0x1122334455667788ull;
}

static void rec_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    struct recorder *r = opaque;
    r->last_offset = offset;
    r->last_value = value;
    r->last_size = size;
    r->writes++;
}

static const struct vmdev_bus_ops rec_ops = { rec_read, rec_write };

static void handlers_see_offsets_and_masked_values(void)
{
    struct vmdev_bus *bus = vmdev_bus_new("pio", 0xffff);
    struct recorder rec = { 0 };
    CHECK_EQ(vmdev_bus_register(bus, 0x3f8, 8, VMDEV_ACCESS_1 | VMDEV_ACCESS_2, &rec_ops, &rec), 0);
    uint64_t v;
    CHECK_EQ(vmdev_bus_read(bus, 0x3fd, 1, &v), 0);
    CHECK_EQ(rec.last_offset, 5);
    CHECK_EQ(v, 0x88);
    CHECK_EQ(vmdev_bus_write(bus, 0x3f9, 2, 0xabcdef), 0);
    CHECK_EQ(rec.last_offset, 1);
    CHECK_EQ(rec.last_value, 0xcdef);
    vmdev_bus_free(bus);
}

static void bad_sizes_and_unmapped_are_refused(void)
{
    struct vmdev_bus *bus = vmdev_bus_new("pio", 0xffff);
    struct recorder rec = { 0 };
    CHECK_EQ(vmdev_bus_register(bus, 0x3f8, 8, VMDEV_ACCESS_1, &rec_ops, &rec), 0);
    uint64_t v = 0;
    CHECK_EQ(vmdev_bus_read(bus, 0x3f8, 4, &v), -EINVAL);
    CHECK_EQ(vmdev_bus_read(bus, 0x3f8, 3, &v), -EINVAL);
    CHECK_EQ(vmdev_bus_read(bus, 0x3f8, 16, &v), -EINVAL);
    CHECK_EQ(vmdev_bus_write(bus, 0x400, 1, 0), -ENOENT);
    CHECK_EQ(vmdev_bus_read(bus, 0x3f7, 1, &v), -ENOENT);
    CHECK(v == UINT64_MAX);
    CHECK_EQ(rec.reads + rec.writes, 0);
    CHECK_EQ(vmdev_bus_refused_count(bus), 5);
    vmdev_bus_free(bus);
}

static void access_past_range_end_is_refused(void)
{
    struct vmdev_bus *bus = vmdev_bus_new("mmio", UINT64_MAX);
    struct recorder rec = { 0 };
    CHECK_EQ(vmdev_bus_register(bus, 0x1000, 0x10, VMDEV_ACCESS_ANY, &rec_ops, &rec), 0);
    uint64_t v;
    CHECK_EQ(vmdev_bus_read(bus, 0x100c, 8, &v), -EINVAL);
    CHECK_EQ(vmdev_bus_read(bus, 0x1008, 8, &v), 0);
    CHECK_EQ(v, 0x1122334455667788ull);
    /* A range may end at the very top of the address space. */
    CHECK_EQ(vmdev_bus_register(bus, UINT64_MAX - 7, 8, VMDEV_ACCESS_8, &rec_ops, &rec), 0);
    CHECK_EQ(vmdev_bus_read(bus, UINT64_MAX - 7, 8, &v), 0);
    CHECK_EQ(rec.last_offset, 0);
    vmdev_bus_free(bus);
}

static void register_rejects_overlap_overflow_and_bad_sizes(void)
{
    struct vmdev_bus *bus = vmdev_bus_new("pio", 0xffff);
    struct recorder rec = { 0 };
    CHECK_EQ(vmdev_bus_register(bus, 0x60, 1, VMDEV_ACCESS_1, &rec_ops, &rec), 0);
    CHECK_EQ(vmdev_bus_register(bus, 0x64, 1, VMDEV_ACCESS_1, &rec_ops, &rec), 0);
    CHECK_EQ(vmdev_bus_register(bus, 0x5f, 2, VMDEV_ACCESS_1, &rec_ops, &rec), -EEXIST);
    CHECK_EQ(vmdev_bus_register(bus, 0x61, 4, VMDEV_ACCESS_1, &rec_ops, &rec), -EEXIST);
    CHECK_EQ(vmdev_bus_register(bus, 0x61, 3, VMDEV_ACCESS_1, &rec_ops, &rec), 0);
    CHECK_EQ(vmdev_bus_register(bus, 0xfff0, 0x11, VMDEV_ACCESS_1, &rec_ops, &rec), -EINVAL);
    CHECK_EQ(vmdev_bus_register(bus, 0x10000, 1, VMDEV_ACCESS_1, &rec_ops, &rec), -EINVAL);
    CHECK_EQ(vmdev_bus_register(bus, 0x100, 0, VMDEV_ACCESS_1, &rec_ops, &rec), -EINVAL);
    CHECK_EQ(vmdev_bus_register(bus, 0x100, 1, 1u << 3, &rec_ops, &rec), -EINVAL);
    CHECK_EQ(vmdev_bus_register(bus, 0x100, 1, 0, &rec_ops, &rec), -EINVAL);
    CHECK_EQ(vmdev_bus_unregister(bus, 0x61), 0);
    CHECK_EQ(vmdev_bus_unregister(bus, 0x61), -ENOENT);
    uint64_t v;
    CHECK_EQ(vmdev_bus_read(bus, 0x62, 1, &v), -ENOENT);
    CHECK_EQ(vmdev_bus_read(bus, 0x64, 1, &v), 0);
    vmdev_bus_free(bus);
}

TEST_MAIN(TEST(handlers_see_offsets_and_masked_values),
          TEST(bad_sizes_and_unmapped_are_refused),
          TEST(access_past_range_end_is_refused),
          TEST(register_rejects_overlap_overflow_and_bad_sizes))
