/* SPDX-License-Identifier: MIT */
#include "test.h"
#include "vmdev/guest_memory.h"

#include <errno.h>

static uint8_t low[0x1000], high[0x2000];

/* Two adjacent regions: [0x1000, 0x2000) and [0x2000, 0x4000). */
static struct vmdev_guest_memory *two_regions(void)
{
    struct vmdev_guest_memory *mem = vmdev_guest_memory_new();
    struct vmdev_guest_memory_region a = { .gpa = 0x1000, .size = sizeof(low), .host = low, .fd = -1 };
    struct vmdev_guest_memory_region b = { .gpa = 0x2000, .size = sizeof(high), .host = high, .fd = -1 };
    if (vmdev_guest_memory_add_region(mem, &b) || vmdev_guest_memory_add_region(mem, &a))
        abort();
    return mem;
}

static void add_rejects_overlap_and_wrap(void)
{
    struct vmdev_guest_memory *mem = two_regions();
    uint8_t buf[16];
    struct vmdev_guest_memory_region r = { .gpa = 0x3fff, .size = 2, .host = buf, .fd = -1 };
    CHECK_EQ(vmdev_guest_memory_add_region(mem, &r), -EEXIST);
    r.gpa = 0x800; r.size = 0x801;
    CHECK_EQ(vmdev_guest_memory_add_region(mem, &r), -EEXIST);
    r.gpa = UINT64_MAX; r.size = 2;
    CHECK_EQ(vmdev_guest_memory_add_region(mem, &r), -EINVAL);
    r.gpa = 0; r.size = 0;
    CHECK_EQ(vmdev_guest_memory_add_region(mem, &r), -EINVAL);
    r.gpa = UINT64_MAX; r.size = 1;
    CHECK_EQ(vmdev_guest_memory_add_region(mem, &r), 0);
    CHECK_EQ(vmdev_guest_memory_region_count(mem), 3);
    CHECK(vmdev_guest_memory_region_at(mem, 0)->gpa == 0x1000);
    vmdev_guest_memory_free(mem);
}

static void translate_reports_contiguous_length(void)
{
    struct vmdev_guest_memory *mem = two_regions();
    uint64_t contig = 0;
    uint8_t *p = vmdev_guest_memory_translate(mem, 0x1ff0, 0x100, &contig);
    CHECK(p == low + 0xff0);
    CHECK_EQ(contig, 0x10);
    CHECK(vmdev_guest_memory_translate(mem, 0x4000, 1, &contig) == NULL);
    CHECK(vmdev_guest_memory_translate(mem, 0xfff, 1, &contig) == NULL);
    CHECK(vmdev_guest_memory_translate(mem, 0x1000, 0, &contig) == NULL);
    CHECK(vmdev_guest_memory_translate(mem, UINT64_MAX - 1, 4, &contig) == NULL);
    CHECK(vmdev_guest_memory_map_contiguous(mem, 0x1ff0, 0x10) == low + 0xff0);
    CHECK(vmdev_guest_memory_map_contiguous(mem, 0x1ff0, 0x11) == NULL);
    vmdev_guest_memory_free(mem);
}

static void read_write_span_regions(void)
{
    struct vmdev_guest_memory *mem = two_regions();
    uint8_t out[32], in[32];
    for (unsigned i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ(vmdev_guest_memory_write(mem, 0x1ff0, out, sizeof(out)), 0);
    CHECK_EQ(low[0xfff], out[15]);
    CHECK_EQ(high[0], out[16]);
    CHECK_EQ(vmdev_guest_memory_read(mem, 0x1ff0, in, sizeof(in)), 0);
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    vmdev_guest_memory_free(mem);
}

static void read_write_refuse_partial_ranges(void)
{
    struct vmdev_guest_memory *mem = two_regions();
    uint8_t buf[8] = { 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa };
    memset(high, 0, sizeof(high));
    /* The last 4 bytes fall outside guest RAM: nothing may be written. */
    CHECK_EQ(vmdev_guest_memory_write(mem, 0x3ffc, buf, 8), -EFAULT);
    CHECK_EQ(high[sizeof(high) - 1], 0);
    CHECK_EQ(vmdev_guest_memory_read(mem, 0x3ffc, buf, 8), -EFAULT);
    CHECK_EQ(vmdev_guest_memory_read(mem, UINT64_MAX - 3, buf, 8), -EFAULT);
    CHECK(!vmdev_guest_memory_range_valid(mem, 0x800, 0x1000));
    CHECK(vmdev_guest_memory_range_valid(mem, 0x1000, 0x3000));
    CHECK(vmdev_guest_memory_range_valid(mem, 0, 0));
    vmdev_guest_memory_free(mem);
}

TEST_MAIN(TEST(add_rejects_overlap_and_wrap),
          TEST(translate_reports_contiguous_length),
          TEST(read_write_span_regions),
          TEST(read_write_refuse_partial_ranges))
