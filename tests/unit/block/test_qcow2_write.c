/* SPDX-License-Identifier: MIT */
/*
 * qcow2 writes against QEMU's own tools: a run of writes, write-zeroes and
 * discards through the block layer, on images of many shapes, leaves an
 * image that `qemu-img check` finds clean (no errors, no leaks) and that
 * `qemu-img compare` finds equal to the same operations done on a raw
 * copy. Then images that lie, and the refusals of writable opens.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_sync.h"
#include "engine_wait.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

#define DISK_SIZE (8u << 20)
#define MAX_WRITE (300u << 10)
#define BATCH 8

static unsigned done_calls;
static unsigned failures;

static void count_done(struct vmdev_block_request *req, int64_t result)
{
    done_calls++;
    int64_t want = req->op == VMDEV_IO_READ || req->op == VMDEV_IO_WRITE
                       ? (int64_t)req->iov[0].iov_len
                       : 0;
    if (result != want) {
        fprintf(stderr, "request op %d at %llu: %lld\n", req->op,
                (unsigned long long)req->offset, (long long)result);
        failures++;
    }
}

static struct vmdev_block *open_image(const char *name,
                                      enum vmdev_block_cache cache, char *why,
                                      size_t why_len)
{
    struct vmdev_block_options o = {
        .path = img_path(name), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = cache, .readonly = false,
    };
    return vmdev_block_new(&o, why, why_len);
}

struct op {
    enum vmdev_io_op op;
    uint64_t offset, len;
    bool unmap;
    uint8_t fill;
};

/* What the op leaves in the raw mirror. Discard drops whole clusters,
 * which then read as zeroes; parts of clusters stay. */
static void apply(uint8_t *mirror, const struct op *o, uint64_t cluster_size)
{
    uint64_t from = o->offset, to = o->offset + o->len;
    if (o->op == VMDEV_IO_DISCARD) {
        from = (from + cluster_size - 1) & ~(cluster_size - 1);
        to &= ~(cluster_size - 1);
        if (from >= to)
            return;
    }
    for (uint64_t i = from; i < to; i++)
        mirror[i] = o->op == VMDEV_IO_WRITE ? (uint8_t)(o->fill + i / 512) : 0;
}

static bool overlaps(const struct op *batch, unsigned n, const struct op *o)
{
    for (unsigned i = 0; i < n; i++)
        if (o->offset < batch[i].offset + batch[i].len &&
            batch[i].offset < o->offset + o->len)
            return true;
    return false;
}

/* Complete on both engines until want requests are done; false when
 * nothing finishes for 10 s. */
static bool wait_both(struct vmdev_io_engine *e[2], unsigned want)
{
    struct pollfd p[2] = {
        { .fd = vmdev_io_engine_eventfd(e[0]), .events = POLLIN },
        { .fd = vmdev_io_engine_eventfd(e[1]), .events = POLLIN },
    };
    while (done_calls < want) {
        if (poll(p, 2, 10000) < 1)
            return false;
        vmdev_io_engine_complete(e[0]);
        vmdev_io_engine_complete(e[1]);
    }
    return true;
}

/*
 * `rounds` batches of up to BATCH non-overlapping operations, spread over
 * two engines (a device's two queues), on the image; the same on mirror.
 */
static bool run_ops(struct vmdev_block *b, uint8_t *mirror, uint64_t seed,
                    unsigned rounds, uint64_t cluster_size)
{
    struct vmdev_io_engine *e[2] = {
        vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, BATCH),
        vmdev_io_engine_new(VMDEV_IO_ENGINE_THREADS, BATCH),
    };
    static struct op batch[BATCH];
    static struct vmdev_block_request req[BATCH];
    static struct iovec iov[BATCH];
    uint8_t *data = malloc((size_t)BATCH * MAX_WRITE);
    bool ok = e[0] && e[1] && data;
    failures = 0;
    for (unsigned round = 0; ok && round < rounds; round++) {
        unsigned n = 0, want = done_calls;
        unsigned size = 1 + test_random(&seed) % BATCH;
        while (n < size) {
            struct op o = { .fill = (uint8_t)test_random(&seed) };
            unsigned kind = test_random(&seed) % 10;
            o.op = kind < 7 ? VMDEV_IO_WRITE
                   : kind < 9 ? VMDEV_IO_WRITE_ZEROES : VMDEV_IO_DISCARD;
            o.unmap = test_random(&seed) & 1;
            /* Sector-aligned mostly; some at any byte. */
            o.len = 1 + test_random(&seed) % (o.op == VMDEV_IO_WRITE
                                                  ? MAX_WRITE : 4 * MAX_WRITE);
            o.offset = test_random(&seed) % (DISK_SIZE - o.len);
            if (test_random(&seed) % 4) {
                o.offset &= ~511ull;
                o.len = (o.len + 511) & ~511ull;
            }
            if (overlaps(batch, n, &o))
                continue;
            batch[n] = o;
            req[n] = (struct vmdev_block_request){ .op = o.op,
                                                   .offset = o.offset,
                                                   .len = o.len,
                                                   .unmap = o.unmap,
                                                   .done = count_done };
            if (o.op == VMDEV_IO_WRITE) {
                uint8_t *p = data + (size_t)n * MAX_WRITE;
                for (uint64_t i = 0; i < o.len; i++)
                    p[i] = (uint8_t)(o.fill + (o.offset + i) / 512);
                iov[n] = (struct iovec){ p, o.len };
                req[n].iov = &iov[n];
                req[n].iovcnt = 1;
            }
            int ret = vmdev_block_submit(b, e[n % 2], &req[n]);
            if (ret) {
                fprintf(stderr, "submit: %d\n", ret);
                ok = false;
                break;
            }
            want++;
            n++;
        }
        ok = ok && wait_both(e, want);
        for (unsigned i = 0; i < n; i++)
            apply(mirror, &batch[i], cluster_size);
        if (round % 16 == 15) {
            struct vmdev_block_request flush = { .op = VMDEV_IO_FLUSH,
                                                 .done = count_done };
            ok = ok && vmdev_block_submit(b, e[0], &flush) == 0 &&
                 engine_wait(e[0], &done_calls, want + 1);
        }
    }
    ok = ok && failures == 0;
    vmdev_io_engine_free(e[0]);
    vmdev_io_engine_free(e[1]);
    free(data);
    return ok;
}

static bool save(const char *name, const uint8_t *bytes, size_t len)
{
    FILE *f = fopen(img_path(name), "w");
    bool ok = f && fwrite(bytes, 1, len, f) == len;
    return f && fclose(f) == 0 && ok;
}

/*
 * Operations on name (a qcow2 image whose content is initially in
 * start.raw), then close: qemu-img check finds nothing wrong, and the
 * image's content is the mirror's.
 */
static bool writes_check_clean(const char *name, uint64_t seed,
                               unsigned rounds)
{
    size_t size = 0;
    uint8_t *mirror = img_load("start.raw", &size);
    char why[256] = "";
    struct vmdev_block *b = open_image(name, VMDEV_BLOCK_CACHE_WRITEBACK, why,
                                       sizeof(why));
    if (!b)
        fprintf(stderr, "%s: %s\n", name, why);
    bool ok = mirror && size == DISK_SIZE && b;
    uint64_t cluster_size = 1ull << img_read_be(name, 20, 4);
    ok = ok && run_ops(b, mirror, seed, rounds, cluster_size);
    vmdev_block_free(b);
    ok = ok && save("expect.raw", mirror, size);
    free(mirror);
    int check = img_sh_status("qemu-img check %s", name);
    if (check)
        img_sh("qemu-img check %s >&2", name);
    ok = ok && check == 0 &&
         img_sh("qemu-img compare -f qcow2 -F raw %s expect.raw", name);
    if (!ok)
        fprintf(stderr, "%s (seed %llu) failed\n", name,
                (unsigned long long)seed);
    return ok;
}

static void fresh_images_of_every_shape(void)
{
    img_dir_create();
    CHECK(img_sh("head -c %u /dev/zero > start.raw", DISK_SIZE));
    static const char *const shapes[] = {
        "", "-o cluster_size=4096", "-o cluster_size=512",
        "-o cluster_size=2M", "-o refcount_bits=1,cluster_size=4096",
        "-o refcount_bits=64", "-o refcount_bits=8,cluster_size=1024",
        "-o preallocation=metadata", "-o compression_type=zstd",
    };
    for (unsigned i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        CHECK(img_sh("qemu-img create -f qcow2 %s img.qcow2 %u", shapes[i],
                     DISK_SIZE));
        CHECK(writes_check_clean("img.qcow2", 1000 + i, 60));
    }
    img_dir_remove();
}

/* Images that already hold data: allocated, compressed (clusters sharing
 * host clusters), over a backing file (copy-on-write from it). */
static void images_with_data_and_backing(void)
{
    img_dir_create();
    CHECK(img_make_source("start.raw", DISK_SIZE, 3));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2"));
    CHECK(writes_check_clean("img.qcow2", 7, 60));
    CHECK(img_sh("qemu-img convert -c -f raw -O qcow2 start.raw img.qcow2"));
    CHECK(writes_check_clean("img.qcow2", 8, 60));
    CHECK(img_sh("qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd,"
                 "cluster_size=4096 start.raw img.qcow2"));
    CHECK(writes_check_clean("img.qcow2", 9, 60));
    CHECK(img_sh("cp start.raw base.raw && cp start.raw base.orig && "
                 "qemu-img create -f qcow2 -b base.raw -F raw img.qcow2"));
    CHECK(writes_check_clean("img.qcow2", 10, 60));
    /* raw <- qcow2 (with data) <- qcow2 */
    CHECK(img_make_source("mid.raw", DISK_SIZE, 5));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -B base.raw -F raw "
                 "-o cluster_size=16384 mid.raw mid.qcow2 && "
                 "qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 img.qcow2 && "
                 "cp mid.raw start.raw"));
    CHECK(writes_check_clean("img.qcow2", 11, 60));
    /* The backing images are only read. */
    CHECK(img_sh("cmp base.raw base.orig && "
                 "qemu-img compare -f qcow2 -F raw mid.qcow2 mid.raw"));
    img_dir_remove();
}

/* A flush, or writethrough, puts the tables in the file: QEMU reads the
 * writes while the image is still open. */
static void flushed_writes_are_in_the_file(void)
{
    img_dir_create();
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 %u", DISK_SIZE));
    struct vmdev_block *b = open_image("img.qcow2", VMDEV_BLOCK_CACHE_WRITEBACK,
                                       NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(b && e);
    uint8_t *mirror = calloc(1, DISK_SIZE);
    CHECK(mirror != NULL);
    memset(mirror + (1u << 20), 0x11, 70000);
    CHECK_EQ(block_sync(b, e, VMDEV_IO_WRITE, 1u << 20, mirror + (1u << 20), 70000),
             70000);
    CHECK_EQ(block_sync(b, e, VMDEV_IO_FLUSH, 0, NULL, 0), 0);
    CHECK(save("expect.raw", mirror, DISK_SIZE));
    CHECK(img_sh("qemu-img compare -f qcow2 -F raw img.qcow2 expect.raw"));
    CHECK(img_sh("qemu-img check img.qcow2"));
    /* Writethrough: no flush asked for. */
    vmdev_block_set_writeback(b, false);
    memset(mirror + (5u << 20), 0x22, 4096);
    CHECK_EQ(block_sync(b, e, VMDEV_IO_WRITE, 5u << 20, mirror + (5u << 20), 4096),
             4096);
    CHECK(save("expect.raw", mirror, DISK_SIZE));
    CHECK(img_sh("qemu-img compare -f qcow2 -F raw img.qcow2 expect.raw"));
    CHECK(img_sh("qemu-img check img.qcow2"));
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    free(mirror);
    img_dir_remove();
}

/* Opening writable refuses what it could not keep consistent, and leaves
 * the file as it was; reading it is still allowed. */
static bool refused_for_writing(const char *name, const char *because)
{
    char why[512] = "";
    bool ok = img_sh("cp %s before.qcow2", name);
    struct vmdev_block *b = open_image(name, VMDEV_BLOCK_CACHE_WRITEBACK, why,
                                       sizeof(why));
    vmdev_block_free(b);
    if (b || !strstr(why, because)) {
        fprintf(stderr, "%s: opened, or refused for another reason: '%s'\n",
                name, why);
        ok = false;
    }
    struct vmdev_block_options o = {
        .path = img_path(name), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
    };
    b = vmdev_block_new(&o, why, sizeof(why));
    if (!b)
        fprintf(stderr, "%s: not even read-only: %s\n", name, why);
    vmdev_block_free(b);
    return ok && b && img_sh("cmp %s before.qcow2", name);
}

static void writable_opens_refuse_what_they_cannot_keep(void)
{
    img_dir_create();
    CHECK(img_sh("qemu-img create -f qcow2 -o compat=0.10 img.qcow2 1M"));
    CHECK(refused_for_writing("img.qcow2", "version 2"));
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 1M"));
    CHECK(img_patch("img.qcow2", 72, 2, 8));
    CHECK(refused_for_writing("img.qcow2", "marked corrupt"));
    CHECK(img_patch("img.qcow2", 72, 1, 8));
    CHECK(refused_for_writing("img.qcow2", "not closed cleanly"));
    img_dir_remove();
}

/* An L2 entry that points guest data at the L1 table: the write (or a
 * discard releasing it) fails, the table is untouched, and the image is
 * marked corrupt. */
static void a_lying_table_marks_the_image_corrupt(void)
{
    img_dir_create();
    CHECK(img_make_source("start.raw", DISK_SIZE, 4));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2"));
    uint64_t l1 = img_read_be("img.qcow2", 40, 8);
    uint64_t l2 = img_read_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    CHECK(l1 && l2);
    size_t size;
    CHECK(img_patch("img.qcow2", l2, 0x8000000000000000ull | l1, 8));
    uint8_t *image = img_load("img.qcow2", &size);
    CHECK(image != NULL);
    struct vmdev_block *b = open_image("img.qcow2", VMDEV_BLOCK_CACHE_WRITEBACK,
                                       NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(b && e);
    uint8_t data[4096];
    memset(data, 0xee, sizeof(data));
    CHECK_EQ(block_sync(b, e, VMDEV_IO_WRITE, 0, data, sizeof(data)), -EIO);
    /* Writes elsewhere are refused from now on too. */
    CHECK_EQ(block_sync(b, e, VMDEV_IO_WRITE, 1u << 20, data, sizeof(data)), -EIO);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    size_t after_size;
    uint8_t *after = img_load("img.qcow2", &after_size);
    CHECK(after != NULL);
    CHECK(after[79] & 2); /* incompatible bit 1: corrupt */
    CHECK(memcmp(after + l1, image + l1, 4096) == 0);
    free(image);
    free(after);
    CHECK(refused_for_writing("img.qcow2", "marked corrupt"));

    /* The same entry, not owned: a discard would release the L1 table's
     * cluster. It is refused the same way. */
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2"));
    CHECK(img_patch("img.qcow2", l2, l1, 8));
    image = img_load("img.qcow2", &size);
    b = open_image("img.qcow2", VMDEV_BLOCK_CACHE_WRITEBACK, NULL, 0);
    e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(image && b && e);
    CHECK_EQ(block_sync(b, e, VMDEV_IO_DISCARD, 0, NULL, 65536), -EIO);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    after = img_load("img.qcow2", &after_size);
    CHECK(after != NULL);
    CHECK(after[79] & 2);
    CHECK(memcmp(after + l1, image + l1, 4096) == 0);
    free(image);
    free(after);
    img_dir_remove();
}

/* Counts of one for `count` clusters from cluster `first`, in the image's
 * first refcount block (16-bit counts, as qemu-img makes them). */
static bool count_clusters(const char *name, uint64_t first, uint64_t count)
{
    size_t size;
    uint8_t *image = img_load(name, &size);
    uint64_t reftable = img_read_be(name, 48, 8);
    uint64_t block = image && reftable ? img_read_be(name, reftable, 8) : 0;
    bool ok = block && block + (first + count) * 2 <= size;
    for (uint64_t c = first; ok && c < first + count; c++) {
        image[block + c * 2] = 0;
        image[block + c * 2 + 1] = 1;
    }
    ok = ok && save(name, image, size);
    free(image);
    return ok;
}

static uint64_t clusters_in(const char *name, uint64_t cluster_size)
{
    size_t size;
    free(img_load(name, &size));
    return (size + cluster_size - 1) / cluster_size;
}

/*
 * Refcounts that count clusters past the end of the file: a few are the
 * leaks a crash leaves, and a write lands past them; a whole block of
 * them (gigabytes, which the allocator once stepped over one cluster at a
 * time, moving the file's end as far) is refused at open, at every
 * cluster size. Refusing reads only the refcount blocks, so it is quick
 * whatever the counts claim.
 */
static void counts_past_the_end_are_bounded(void)
{
    img_dir_create();
    /* A block of ones: 32768 clusters, 2 GiB, against a 256 KiB file. */
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 64M"));
    uint64_t end = clusters_in("img.qcow2", 65536);
    CHECK(count_clusters("img.qcow2", end, 32768 - end));
    CHECK(refused_for_writing("img.qcow2", "past the end of the file"));
    /* 2 MiB clusters: a million counted, 2 TiB (the step past each once
     * wrapped around). */
    CHECK(img_sh("qemu-img create -f qcow2 -o cluster_size=2M img.qcow2 64M"));
    end = clusters_in("img.qcow2", 2u << 20);
    CHECK(count_clusters("img.qcow2", end, (1u << 20) - end));
    CHECK(refused_for_writing("img.qcow2", "past the end of the file"));

    /* Every table entry naming the one block: refused before any scan. */
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 64M"));
    uint64_t reftable = img_read_be("img.qcow2", 48, 8);
    uint64_t block = img_read_be("img.qcow2", reftable, 8);
    for (unsigned g = 1; g < 8192; g++)
        CHECK(img_patch("img.qcow2", reftable + g * 8, block, 8));
    CHECK(refused_for_writing("img.qcow2", "same refcount block"));

    /* Three leaked clusters: the image opens, a write lands after them,
     * and qemu-img finds the leaks and nothing worse. */
    CHECK(img_sh("qemu-img create -f qcow2 img.qcow2 64M"));
    end = clusters_in("img.qcow2", 65536);
    CHECK(count_clusters("img.qcow2", end, 3));
    struct vmdev_block *b = open_image("img.qcow2", VMDEV_BLOCK_CACHE_WRITEBACK,
                                       NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(b && e);
    uint8_t data[4096];
    memset(data, 0x5a, sizeof(data));
    CHECK_EQ(block_sync(b, e, VMDEV_IO_WRITE, 0, data, sizeof(data)), 4096);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    /* Exit status 3: leaks, no corruption. */
    CHECK_EQ(img_sh_status("qemu-img check img.qcow2"), 3);
    uint64_t l1 = img_read_be("img.qcow2", 40, 8);
    uint64_t l2 = img_read_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    uint64_t host = img_read_be("img.qcow2", l2, 8) & 0x00fffffffffffe00ull;
    CHECK(host >= (end + 3) * 65536);
    img_dir_remove();
}

TEST_MAIN(TEST(fresh_images_of_every_shape),
          TEST(images_with_data_and_backing),
          TEST(flushed_writes_are_in_the_file),
          TEST(writable_opens_refuse_what_they_cannot_keep),
          TEST(a_lying_table_marks_the_image_corrupt),
          TEST(counts_past_the_end_are_bounded))
