/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "test.h"
#include "vmdev/resource.h"

static void allocates_aligned_first_fit(void)
{
    struct vmdev_resource_pool *p = vmdev_resource_pool_new(0xc0000000,
                                                            0x20000000);
    CHECK(p != NULL);
    uint64_t a, b, c, d;
    CHECK_EQ(vmdev_resource_alloc(p, 0x4000, 0x4000, &a), 0);
    CHECK_EQ(a, 0xc0000000);
    CHECK_EQ(vmdev_resource_alloc(p, 0x1000, 0x1000, &b), 0);
    CHECK_EQ(b, 0xc0004000);
    /* A BAR is aligned to its size: the gap after b is skipped. */
    CHECK_EQ(vmdev_resource_alloc(p, 0x8000, 0x8000, &c), 0);
    CHECK_EQ(c, 0xc0008000);
    /* The hole left at 0xc0005000 takes a small one. */
    CHECK_EQ(vmdev_resource_alloc(p, 0x1000, 0x1000, &d), 0);
    CHECK_EQ(d, 0xc0005000);
    /* Released space is reused. */
    CHECK_EQ(vmdev_resource_release(p, a), 0);
    CHECK_EQ(vmdev_resource_release(p, a), -ENOENT);
    CHECK_EQ(vmdev_resource_alloc(p, 0x2000, 0x2000, &a), 0);
    CHECK_EQ(a, 0xc0000000);
    vmdev_resource_pool_free(p);
}

static void refuses_what_does_not_fit(void)
{
    struct vmdev_resource_pool *p = vmdev_resource_pool_new(16, 8);
    uint64_t x;
    CHECK_EQ(vmdev_resource_alloc(p, 0, 1, &x), -EINVAL);
    CHECK_EQ(vmdev_resource_alloc(p, 1, 3, &x), -EINVAL);
    CHECK_EQ(vmdev_resource_alloc(p, 9, 1, &x), -ENOSPC);
    CHECK_EQ(vmdev_resource_alloc(p, 4, 32, &x), -ENOSPC); /* alignment */
    for (unsigned i = 0; i < 8; i++) {
        CHECK_EQ(vmdev_resource_alloc(p, 1, 1, &x), 0);
        CHECK_EQ(x, 16 + i);
    }
    CHECK_EQ(vmdev_resource_alloc(p, 1, 1, &x), -ENOSPC);
    vmdev_resource_pool_free(p);
    CHECK(vmdev_resource_pool_new(UINT64_MAX, 2) == NULL);
    CHECK(vmdev_resource_pool_new(0, 0) == NULL);
}

static void reserve_claims_exact_ranges(void)
{
    struct vmdev_resource_pool *p = vmdev_resource_pool_new(0, 24); /* GSIs */
    uint64_t x;
    CHECK_EQ(vmdev_resource_reserve(p, 4, 1), 0);  /* COM1 */
    CHECK_EQ(vmdev_resource_reserve(p, 8, 2), 0);  /* RTC, SCI */
    CHECK_EQ(vmdev_resource_reserve(p, 9, 1), -EBUSY);
    CHECK_EQ(vmdev_resource_reserve(p, 3, 2), -EBUSY);
    CHECK_EQ(vmdev_resource_reserve(p, 23, 2), -EINVAL);
    CHECK_EQ(vmdev_resource_reserve(p, 0, 4), 0);
    CHECK_EQ(vmdev_resource_alloc(p, 1, 1, &x), 0);
    CHECK_EQ(x, 5);
    CHECK_EQ(vmdev_resource_alloc(p, 2, 1, &x), 0);
    CHECK_EQ(x, 6);
    CHECK_EQ(vmdev_resource_alloc(p, 1, 1, &x), 0);
    CHECK_EQ(x, 10);
    vmdev_resource_pool_free(p);
}

static void whole_64_bit_space(void)
{
    struct vmdev_resource_pool *p = vmdev_resource_pool_new(0, UINT64_MAX);
    uint64_t x;
    CHECK_EQ(vmdev_resource_reserve(p, UINT64_MAX - 0xfff, 0x1000), -EINVAL);
    CHECK_EQ(vmdev_resource_reserve(p, UINT64_MAX - 0x1000, 0x1000), 0);
    CHECK_EQ(vmdev_resource_alloc(p, 0x1000, 0x1000, &x), 0);
    CHECK_EQ(x, 0);
    CHECK_EQ(vmdev_resource_alloc(p, UINT64_MAX - 0x1fff, 1, &x), -ENOSPC);
    CHECK_EQ(vmdev_resource_alloc(p, UINT64_MAX - 0x2000, 1, &x), 0);
    CHECK_EQ(x, 0x1000);
    vmdev_resource_pool_free(p);
}

TEST_MAIN(TEST(allocates_aligned_first_fit), TEST(refuses_what_does_not_fit),
          TEST(reserve_claims_exact_ranges), TEST(whole_64_bit_space))
