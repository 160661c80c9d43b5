/* SPDX-License-Identifier: MIT */
#include "test.h"
#include "vmdev/state.h"

#include <errno.h>

static void round_trip_two_sections(void)
{
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "uart0", 1);
    vmdev_state_put_u8(&w, "lcr", 0x83);
    vmdev_state_put_u64(&w, "big", 0x0102030405060708ull);
    vmdev_state_end_section(&w);
    vmdev_state_begin_section(&w, "rtc", 3);
    vmdev_state_put_bytes(&w, "nvram", "abcdef", 6);
    vmdev_state_put_u16(&w, "x", 0xbeef);
    vmdev_state_put_u32(&w, "y", 0xdeadbeef);
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);

    struct vmdev_state_section s;
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "rtc", &s), 0);
    CHECK_EQ(s.version, 3);
    char nv[6];
    uint16_t x;
    uint32_t y;
    CHECK_EQ(vmdev_state_get_bytes(&s, "nvram", nv, 6), 0);
    CHECK(memcmp(nv, "abcdef", 6) == 0);
    CHECK_EQ(vmdev_state_get_u16(&s, "x", &x), 0);
    CHECK_EQ(x, 0xbeef);
    CHECK_EQ(vmdev_state_get_u32(&s, "y", &y), 0);
    CHECK_EQ(y, 0xdeadbeef);
    CHECK_EQ(vmdev_state_get_bytes(&s, "nvram", nv, 5), -EINVAL);
    CHECK_EQ(vmdev_state_get_u32(&s, "x", &y), -EINVAL);
    CHECK_EQ(vmdev_state_get_u32(&s, "missing", &y), -ENOENT);

    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "uart0", &s), 0);
    uint8_t lcr;
    uint64_t big;
    CHECK_EQ(vmdev_state_get_u8(&s, "lcr", &lcr), 0);
    CHECK_EQ(lcr, 0x83);
    CHECK_EQ(vmdev_state_get_u64(&s, "big", &big), 0);
    CHECK(big == 0x0102030405060708ull);
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "uart", &s), -ENOENT);
    vmdev_state_writer_release(&w);
}

static void truncated_snapshots_are_malformed(void)
{
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "a", 1);
    vmdev_state_put_u32(&w, "k", 7);
    vmdev_state_end_section(&w);
    vmdev_state_begin_section(&w, "b", 1);
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    struct vmdev_state_section s;
    /* Every strict prefix either lacks "b" or is malformed; none reads past. */
    for (size_t len = 0; len < w.len; len++)
        CHECK(vmdev_state_find_section(w.data, len, "b", &s) != 0);
    /* A field whose length runs past the payload. */
    CHECK_EQ(vmdev_state_find_section(w.data, w.len, "a", &s), 0);
    s.len -= 1;
    uint32_t v;
    CHECK_EQ(vmdev_state_get_u32(&s, "k", &v), -EINVAL);
    vmdev_state_writer_release(&w);
}

static void misuse_is_reported(void)
{
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_state_put_u8(&w, "outside", 1);
    CHECK_EQ(vmdev_state_writer_finish(&w), -EINVAL);
    vmdev_state_writer_release(&w);
    vmdev_state_begin_section(&w, "open", 1);
    CHECK_EQ(vmdev_state_writer_finish(&w), -EINVAL);
    vmdev_state_writer_release(&w);
}

/* A restore opens its section by the version it knows: another version
 * is a layout it cannot read. */
static void open_section_checks_the_version(void)
{
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_state_begin_section(&w, "pit", 2);
    vmdev_state_put_u8(&w, "mode", 3);
    vmdev_state_end_section(&w);
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    struct vmdev_state_section s;
    uint8_t mode = 0;
    CHECK_EQ(vmdev_state_open_section(w.data, w.len, "pit", 2, &s), 0);
    CHECK_EQ(vmdev_state_get_u8(&s, "mode", &mode), 0);
    CHECK_EQ(mode, 3);
    CHECK_EQ(vmdev_state_open_section(w.data, w.len, "pit", 1, &s), -EINVAL);
    CHECK_EQ(vmdev_state_open_section(w.data, w.len, "pit", 3, &s), -EINVAL);
    CHECK_EQ(vmdev_state_open_section(w.data, w.len, "pic", 2, &s), -ENOENT);
    CHECK_EQ(vmdev_state_open_section(w.data, w.len - 1, "pit", 2, &s),
             -EINVAL);
    vmdev_state_writer_release(&w);
}

TEST_MAIN(TEST(round_trip_two_sections), TEST(truncated_snapshots_are_malformed),
          TEST(misuse_is_reported), TEST(open_section_checks_the_version))
