/* SPDX-License-Identifier: MIT */
/*
 * Creating images: qcow2 images we create are what qemu-img expects (its
 * check finds them clean, its info reads the size, cluster size and
 * backing file back), take our writes and QEMU's reads; raw images are
 * sparse files of the size. Bad options are refused with a reason and
 * leave no file.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_sync.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

static struct vmdev_io_engine *engine;

static int create(const char *name, enum vmdev_block_format format,
                  uint64_t size, uint32_t cluster_size, const char *backing,
                  enum vmdev_block_format backing_format, char *why,
                  size_t why_len)
{
    struct vmdev_block_create_options o = {
        .path = img_path(name), .format = format, .size = size,
        .cluster_size = cluster_size, .backing_file = backing,
        .backing_format = backing_format,
    };
    if (why_len)
        why[0] = '\0';
    return vmdev_block_create(&o, why, why_len);
}

/* qemu-img info's JSON has `field` with this value. */
static bool info_says(const char *name, const char *field, const char *value)
{
    return img_sh_status("qemu-img info --output=json %s | "
                         "grep -q '\"%s\": %s'", name, field, value) == 0;
}

/* Our writes to a new image read back through QEMU. */
static bool takes_writes(const char *name, uint64_t size, const char *base)
{
    struct vmdev_block_options o = {
        .path = img_path(name), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = false,
    };
    struct vmdev_block *b = vmdev_block_new(&o, NULL, 0);
    uint8_t data[12288];
    memset(data, 0x3c, sizeof(data));
    uint64_t at = size / 3 & ~511ull;
    bool ok = b && vmdev_block_size(b) == size &&
              block_sync(b, engine, VMDEV_IO_WRITE, at, data, sizeof(data)) ==
                  (int64_t)sizeof(data);
    vmdev_block_free(b);
    /* The expected disk: the backing file's, or zeroes, and the write. */
    ok = ok && img_sh("%s && printf '%%12288s' | tr ' ' '\\074' | "
                      "dd of=expect.raw bs=512 seek=%llu conv=notrunc "
                      "status=none", base ? "cp base.raw expect.raw"
                                          : "truncate -s 0 expect.raw",
                      (unsigned long long)(at / 512));
    ok = ok && img_sh("truncate -s %llu expect.raw", (unsigned long long)size);
    ok = ok && img_sh("qemu-img check %s", name) &&
         img_sh("qemu-img compare -f qcow2 -F raw %s expect.raw", name);
    return ok;
}

static void qcow2_images_qemu_accepts(void)
{
    img_dir_create();
    static const struct {
        uint64_t size;
        uint32_t cluster_size;
    } shapes[] = {
        { 8u << 20, 0 },                   /* qemu-img's default clusters */
        { 10000000, 4096 },                /* rounded up to sectors */
        { 64u << 20, 512 },                /* several refcount blocks */
        { 1ull << 40, 65536 },             /* 1 TiB: a 16 KiB L1 table */
        { 300ull << 30, 2u << 20 },
        { 0, 65536 },
    };
    char why[256];
    for (unsigned i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        unlink(img_path("new.qcow2"));
        CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, shapes[i].size,
                        shapes[i].cluster_size, NULL, 0, why, sizeof(why)), 0);
        uint64_t size = (shapes[i].size + 511) & ~511ull;
        char value[32];
        snprintf(value, sizeof(value), "%llu", (unsigned long long)size);
        CHECK(img_sh("qemu-img check new.qcow2"));
        CHECK(info_says("new.qcow2", "virtual-size", value));
        snprintf(value, sizeof(value), "%u",
                 shapes[i].cluster_size ? shapes[i].cluster_size : 65536);
        CHECK(info_says("new.qcow2", "cluster-size", value));
        CHECK(info_says("new.qcow2", "compat", "\"1.1\""));
        CHECK(info_says("new.qcow2", "refcount-bits", "16"));
        if (size)
            CHECK(takes_writes("new.qcow2", size, NULL));
    }
    img_dir_remove();
}

/* Over a raw and a qcow2 backing file, named relative to the image. */
static void backing_files(void)
{
    img_dir_create();
    char why[256];
    CHECK(img_make_source("base.raw", 6u << 20, 7));
    CHECK(img_sh("mkdir sub && qemu-img convert -f raw -O qcow2 base.raw "
                 "sub/base.qcow2"));
    CHECK_EQ(create("over-raw.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 0, 0,
                    "base.raw", VMDEV_BLOCK_FORMAT_RAW, why, sizeof(why)), 0);
    CHECK(info_says("over-raw.qcow2", "backing-filename", "\"base.raw\""));
    CHECK(info_says("over-raw.qcow2", "backing-filename-format", "\"raw\""));
    CHECK(img_sh("qemu-img compare over-raw.qcow2 base.raw"));
    CHECK(takes_writes("over-raw.qcow2", 6u << 20, "base.raw"));

    CHECK_EQ(create("sub/over.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 0, 4096,
                    "base.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, why, sizeof(why)),
             0);
    CHECK(info_says("sub/over.qcow2", "backing-filename-format", "\"qcow2\""));
    CHECK(img_sh("qemu-img check sub/over.qcow2 && "
                 "qemu-img compare sub/over.qcow2 base.raw"));
    CHECK(takes_writes("sub/over.qcow2", 6u << 20, "base.raw"));
    /* A bigger disk than its backing file. */
    CHECK_EQ(create("big.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 16u << 20, 0,
                    "base.raw", VMDEV_BLOCK_FORMAT_RAW, why, sizeof(why)), 0);
    CHECK(info_says("big.qcow2", "virtual-size", "16777216"));
    CHECK(img_sh("qemu-img check big.qcow2"));
    img_dir_remove();
}

static void raw_images_are_sparse(void)
{
    img_dir_create();
    char why[256];
    CHECK_EQ(create("disk.raw", VMDEV_BLOCK_FORMAT_RAW, 1ull << 30, 0, NULL, 0,
                    why, sizeof(why)), 0);
    struct stat st;
    CHECK(stat(img_path("disk.raw"), &st) == 0);
    CHECK_EQ(st.st_size, 1ll << 30);
    CHECK(st.st_blocks < 64);
    img_dir_remove();
}

/* Each refusal names the problem, and no file is left (or changed). */
static void bad_options_leave_nothing(void)
{
    img_dir_create();
    char why[256];
    CHECK(img_sh("echo keep > taken.qcow2"));
    CHECK_EQ(create("taken.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 1u << 20, 0, NULL,
                    0, why, sizeof(why)), -EEXIST);
    CHECK(strstr(why, "taken.qcow2") != NULL);
    CHECK(img_sh("test \"$(cat taken.qcow2)\" = keep"));

    static const uint32_t bad_clusters[] = { 256, 3000, 4u << 20 };
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 1u << 20,
                        bad_clusters[i], NULL, 0, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "cluster size") != NULL);
    }
    CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 0, 0, "missing.raw",
                    VMDEV_BLOCK_FORMAT_RAW, why, sizeof(why)), -ENOENT);
    CHECK(strstr(why, "missing.raw") != NULL);
    CHECK(img_sh("head -c 1M /dev/zero > base.raw"));
    CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 0, 0, "base.raw",
                    VMDEV_BLOCK_FORMAT_QCOW2, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "base.raw") != NULL);
    CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 0, 0, "base.raw",
                    VMDEV_BLOCK_FORMAT_DEFAULT, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "needs its format") != NULL);
    CHECK_EQ(create("new.raw", VMDEV_BLOCK_FORMAT_RAW, 1u << 20, 0, "base.raw",
                    VMDEV_BLOCK_FORMAT_RAW, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "raw images have no backing file") != NULL);
    /* 512-byte clusters map at most 32 GiB per 32 MiB of L1 table. */
    CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 1ull << 40, 512,
                    NULL, 0, why, sizeof(why)), -EFBIG);
    CHECK(strstr(why, "bigger") != NULL);
    char long_name[1100];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK_EQ(create("new.qcow2", VMDEV_BLOCK_FORMAT_QCOW2, 1u << 20, 0,
                    long_name, VMDEV_BLOCK_FORMAT_RAW, why, sizeof(why)),
             -EINVAL);
    CHECK(strstr(why, "longer than 1023") != NULL);
    CHECK(img_sh("test ! -e new.qcow2 && test ! -e new.raw"));
    img_dir_remove();
}

static void setup(void)
{
    engine = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(engine != NULL);
}

TEST_MAIN(TEST(setup),
          TEST(qcow2_images_qemu_accepts),
          TEST(backing_files),
          TEST(raw_images_are_sparse),
          TEST(bad_options_leave_nothing))
