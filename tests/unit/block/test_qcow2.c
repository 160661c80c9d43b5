/* SPDX-License-Identifier: MIT */
/*
 * qcow2 read through the block layer against QEMU's own tools: images made
 * by qemu-img (cluster sizes, versions, compression, a backing chain, lazy
 * refcounts, an internal snapshot, zero clusters written by qemu-io) read
 * byte for byte as `qemu-img convert -O raw` gives them. Then images that
 * lie: truncated, looping chains, tables in the wrong places.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_wait.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

#define SOURCE_SIZE (6u << 20)
#define CHUNK (320u << 10) /* not a multiple of any cluster size */

static unsigned done_calls;
static int64_t last_result;

static void note_done(struct vmdev_block_request *req, int64_t result)
{
    done_calls++;
    last_result = result;
}

static struct vmdev_block *open_qcow2(const char *name, char *why,
                                      size_t why_len)
{
    struct vmdev_block_options o = {
        .path = img_path(name), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
    };
    return vmdev_block_new(&o, why, why_len);
}

/* Read [offset, offset + len) into out, through three iovecs. */
static int64_t read_at(struct vmdev_block *b, struct vmdev_io_engine *e,
                       uint64_t offset, uint8_t *out, uint64_t len)
{
    uint64_t a = len / 3, c = len / 5;
    struct iovec iov[3] = { { out, a }, { out + a, len - a - c },
                            { out + len - c, c } };
    struct vmdev_block_request req = { .op = VMDEV_IO_READ, .offset = offset,
                                       .iov = iov, .iovcnt = c ? 3 : 2,
                                       .done = note_done };
    unsigned want = done_calls + 1;
    int ret = vmdev_block_submit(b, e, &req);
    if (ret)
        return ret;
    return engine_wait(e, &done_calls, want) ? last_result : -ETIMEDOUT;
}

/* Our reading of the image equals qemu-img's conversion to raw, in
 * chunks that straddle clusters, and one small read at an odd place. */
static bool reads_as_qemu_does(const char *name)
{
    if (!img_sh("qemu-img convert -O raw %s expect.raw", name))
        return false;
    size_t size;
    uint8_t *expect = img_load("expect.raw", &size);
    char why[256] = "";
    struct vmdev_block *b = open_qcow2(name, why, sizeof(why));
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 16);
    bool same = expect && b && e && vmdev_block_size(b) == size;
    if (!b)
        fprintf(stderr, "%s: %s\n", name, why);
    uint8_t *got = malloc(size);
    for (uint64_t off = 0; same && off < size; off += CHUNK) {
        uint64_t len = size - off < CHUNK ? size - off : CHUNK;
        same = read_at(b, e, off, got + off, len) == (int64_t)len;
    }
    same = same && memcmp(got, expect, size) == 0;
    uint8_t small[1536];
    same = same && read_at(b, e, size / 2 - 512, small, sizeof(small)) ==
                       (int64_t)sizeof(small) &&
           memcmp(small, expect + size / 2 - 512, sizeof(small)) == 0;
    if (!same)
        fprintf(stderr, "%s reads differently from qemu-img convert\n", name);
    free(got);
    free(expect);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    return same;
}

static void cluster_sizes_and_versions(void)
{
    img_dir_create();
    CHECK(img_make_source("src.raw", SOURCE_SIZE, 3));
    static const char *const variants[] = {
        "-o cluster_size=4096", "-o cluster_size=65536",
        "-o cluster_size=2M", "-o compat=0.10", "-o compat=0.10,cluster_size=512",
    };
    for (unsigned i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        CHECK(img_sh("qemu-img convert -f raw -O qcow2 %s src.raw img.qcow2",
                 variants[i]));
        CHECK(reads_as_qemu_does("img.qcow2"));
    }
    img_dir_remove();
}

static void compressed_clusters(void)
{
    img_dir_create();
    CHECK(img_make_source("src.raw", SOURCE_SIZE, 5));
    static const char *const variants[] = {
        "-o compression_type=zlib", "-o compression_type=zstd",
        "-o compression_type=zstd,cluster_size=4096",
        "-o compression_type=zlib,cluster_size=2M", "-o compat=0.10",
    };
    for (unsigned i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        CHECK(img_sh("qemu-img convert -c -f raw -O qcow2 %s src.raw img.qcow2",
                 variants[i]));
        CHECK(reads_as_qemu_does("img.qcow2"));
    }
    img_dir_remove();
}

/* raw <- qcow2 <- qcow2, named relative to each image's directory; each
 * layer changes some clusters and zeroes others, and the top is larger. */
static void a_backing_chain_of_three(void)
{
    img_dir_create();
    CHECK(img_make_source("a.raw", SOURCE_SIZE, 1));
    CHECK(img_make_source("b.raw", SOURCE_SIZE, 2));
    CHECK(img_make_source("c.raw", SOURCE_SIZE, 4));
    CHECK(img_sh("mkdir sub && cp a.raw sub/base.raw"));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -B base.raw -F raw b.raw "
             "sub/mid.qcow2"));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -o cluster_size=16384 "
             "-B sub/mid.qcow2 -F qcow2 c.raw top.qcow2"));
    CHECK(img_sh("qemu-img resize top.qcow2 +1M"));
    CHECK(reads_as_qemu_does("top.qcow2"));
    CHECK(reads_as_qemu_does("sub/mid.qcow2"));
    img_dir_remove();
}

/* An internal snapshot, then writes and zeroed clusters in the active
 * layer (qemu-io), with lazy refcounts: the active layer is read. */
static void snapshot_lazy_refcounts_and_zero_clusters(void)
{
    img_dir_create();
    CHECK(img_make_source("src.raw", SOURCE_SIZE, 6));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -o lazy_refcounts=on src.raw "
             "img.qcow2"));
    CHECK(img_sh("qemu-img snapshot -c before img.qcow2"));
    CHECK(img_sh("qemu-io -f qcow2 -c 'write -P 0x5a 1M 192k' "
             "-c 'write -z 3M 128k' -c 'write -P 0xc3 4095k 2k' img.qcow2"));
    CHECK(reads_as_qemu_does("img.qcow2"));
    img_dir_remove();
}

/* Opening refuses what it cannot trust, saying why. */
static bool refused(const char *name, const char *because)
{
    char why[512] = "";
    struct vmdev_block *b = open_qcow2(name, why, sizeof(why));
    vmdev_block_free(b);
    if (!b && strstr(why, because))
        return true;
    fprintf(stderr, "%s: opened, or refused for another reason: '%s'\n", name,
            why);
    return false;
}

static void bad_headers_are_refused(void)
{
    img_dir_create();
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 64M"));
    CHECK(img_sh("cp img.qcow2 good.qcow2"));
    CHECK(img_patch("img.qcow2", 4, 4, 4));
    CHECK(refused("img.qcow2", "version 4"));
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", 20, 30, 4)); /* cluster_bits */
    CHECK(refused("img.qcow2", "cluster_bits 30"));
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", 32, 1, 4)); /* AES */
    CHECK(refused("img.qcow2", "encrypted"));
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", 72, 1ull << 40, 8)); /* unknown incompatible */
    CHECK(refused("img.qcow2", "incompatible bits"));
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", 24, 1ull << 50, 8)); /* size beyond L1 */
    CHECK(refused("img.qcow2", "L1 table"));
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", 40, 1ull << 40, 8)); /* L1 past the file */
    CHECK(refused("img.qcow2", "L1 table"));
    CHECK(img_sh("truncate -s 100 img.qcow2"));
    CHECK(refused("img.qcow2", "qcow2"));
    CHECK(img_sh("head -c 65536 /dev/zero > img.qcow2"));
    CHECK(refused("img.qcow2", "not a qcow2 image"));
    img_dir_remove();
}

static void bad_backing_chains_are_refused(void)
{
    img_dir_create();
    /* a -> b -> a: a loop, stopped by the depth limit. */
    CHECK(img_sh("qemu-img create -f qcow2 b.qcow2 1M && "
             "qemu-img create -f qcow2 -b b.qcow2 -F qcow2 a.qcow2 && "
             "qemu-img rebase -u -f qcow2 -b a.qcow2 -F qcow2 b.qcow2"));
    CHECK(refused("a.qcow2", "backing chain deeper than"));
    /* A backing file without its format is not probed. */
    CHECK(img_sh("qemu-img create -f qcow2 base.qcow2 1M && "
             "qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2"));
    size_t size;
    uint8_t *top = img_load("top.qcow2", &size);
    const uint8_t format_ext[4] = { 0xe2, 0x79, 0x2a, 0xca };
    uint8_t *ext = top ? memmem(top, size < 4096 ? size : 4096, format_ext, 4)
                       : NULL;
    CHECK(ext != NULL);
    /* Retype the backing-format extension as one nobody knows. */
    CHECK(ext && img_patch("top.qcow2", (uint64_t)(ext - top), 0x12345678, 4));
    free(top);
    CHECK(refused("top.qcow2", "does not say the format"));
    CHECK(img_sh("qemu-img create -f qcow2 -u -b missing.raw -F raw lost.qcow2 1M"));
    CHECK(refused("lost.qcow2", "missing.raw"));
    img_dir_remove();
}

/* Tables that point where they should not: reads fail with EIO or read
 * something, never crash or read outside the image. */
static void lying_tables_fail_reads(void)
{
    img_dir_create();
    CHECK(img_make_source("src.raw", SOURCE_SIZE, 7));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 src.raw img.qcow2"));
    /* The L1 table's offset, in the header; its first entry's table. */
    uint64_t l1 = img_read_be("img.qcow2", 40, 8);
    uint64_t l2 = img_read_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    CHECK(l1 && l2);
    CHECK(img_sh("cp img.qcow2 good.qcow2"));
    /* The L2 table overlaps the header; then lies past the file's end;
     * then the first data cluster is misaligned, then past the end; then
     * the file is cut short inside the data. */
    static const struct { uint64_t where, value; } lies[] = {
        { 0, 0x8000000000000000ull }, /* L1[0] -> offset 0 */
        { 0, 0x80000000ffff0000ull }, /* L1[0] past the end */
        { 1, 0x8000000000050200ull }, /* L2[0] misaligned */
        { 1, 0x80000000ffff0000ull }, /* L2[0] past the end */
        { 1, 0x4000000000000000ull }, /* L2[0] compressed, garbage */
    };
    uint8_t buf[8192];
    for (unsigned i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        CHECK(img_sh("cp good.qcow2 img.qcow2"));
        CHECK(img_patch("img.qcow2", lies[i].where ? l2 : l1, lies[i].value, 8));
        char why[256] = "";
        struct vmdev_block *b = open_qcow2("img.qcow2", why, sizeof(why));
        struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
        CHECK(b && e);
        int64_t got = b && e ? read_at(b, e, 0, buf, sizeof(buf)) : 0;
        /* L1[0] -> header reads the header's words as entries: whatever
         * they say, the read ends; the others are errors. */
        if (i == 0)
            CHECK(got == (int64_t)sizeof(buf) || got == -EIO);
        else
            CHECK_EQ(got, -EIO);
        vmdev_io_engine_free(e);
        vmdev_block_free(b);
    }
    CHECK(img_sh("cp good.qcow2 img.qcow2 && truncate -s 300000 img.qcow2"));
    struct vmdev_block *b = open_qcow2("img.qcow2", NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(b && e);
    CHECK_EQ(read_at(b, e, SOURCE_SIZE - 8192, buf, sizeof(buf)), -EIO);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    img_dir_remove();
}

TEST_MAIN(TEST(cluster_sizes_and_versions), TEST(compressed_clusters),
          TEST(a_backing_chain_of_three),
          TEST(snapshot_lazy_refcounts_and_zero_clusters),
          TEST(bad_headers_are_refused), TEST(bad_backing_chains_are_refused),
          TEST(lying_tables_fail_reads))
