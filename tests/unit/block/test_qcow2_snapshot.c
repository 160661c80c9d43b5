/* SPDX-License-Identifier: MIT */
/*
 * qcow2 internal snapshots against QEMU's own tools: snapshots we create,
 * apply and delete (between writes) leave an image `qemu-img check` finds
 * clean, whose snapshots `qemu-img snapshot -l` lists and `qemu-img
 * convert -l` reads back as the disk was; snapshots QEMU made survive our
 * writes and apply through us. Then the refusals, and images that lie.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "block_sync.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

#define DISK_SIZE (8u << 20)
#define MAX_WRITE (256u << 10)

static struct vmdev_io_engine *engine;

static struct vmdev_block *open_image(const char *name, bool readonly,
                                      char *why, size_t why_len)
{
    struct vmdev_block_options o = {
        .path = img_path(name), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = readonly,
    };
    struct vmdev_block *b = vmdev_block_new(&o, why, why_len);
    if (!b)
        fprintf(stderr, "%s: %s\n", name, why ? why : "");
    return b;
}

/* count writes and write-zeroes of random extents, on b and on mirror. */
static bool scribble(struct vmdev_block *b, uint8_t *mirror, uint64_t *seed,
                     unsigned count)
{
    static uint8_t data[MAX_WRITE];
    for (unsigned i = 0; i < count; i++) {
        uint64_t len = 1 + test_random(seed) % MAX_WRITE;
        uint64_t offset = test_random(seed) % (DISK_SIZE - len);
        if (test_random(seed) % 4) {
            offset &= ~511ull;
            len = (len + 511) & ~511ull;
        }
        bool zeroes = test_random(seed) % 5 == 0;
        uint8_t fill = (uint8_t)test_random(seed);
        for (uint64_t k = 0; k < len; k++)
            data[k] = zeroes ? 0 : (uint8_t)(fill + k / 512);
        int64_t want = zeroes ? 0 : (int64_t)len;
        if (block_sync(b, engine, zeroes ? VMDEV_IO_WRITE_ZEROES
                                         : VMDEV_IO_WRITE,
                       offset, data, len) != want)
            return false;
        memcpy(mirror + offset, data, len);
    }
    return true;
}

/* The whole disk, read through us, is mirror. */
static bool reads_as(struct vmdev_block *b, const uint8_t *mirror)
{
    uint8_t *got = malloc(DISK_SIZE);
    bool ok = got && block_sync(b, engine, VMDEV_IO_READ, 0, got, DISK_SIZE) ==
                         DISK_SIZE &&
              memcmp(got, mirror, DISK_SIZE) == 0;
    free(got);
    return ok;
}

static bool save(const char *name, const uint8_t *bytes)
{
    FILE *f = fopen(img_path(name), "w");
    bool ok = f && fwrite(bytes, 1, DISK_SIZE, f) == DISK_SIZE;
    return f && fclose(f) == 0 && ok;
}

/* qemu-img check: no errors, no leaks (it says why otherwise). */
static bool clean(const char *name)
{
    int status = img_sh_status("qemu-img check %s", name);
    if (status)
        img_sh("qemu-img check %s >&2", name);
    return status == 0;
}

static bool qemu_lists(const char *image, const char *name)
{
    return img_sh_status("qemu-img snapshot -l %s | grep -qw -- '%s'", image,
                         name) == 0;
}

/* QEMU reads snapshot `name` as the raw file `expect`. */
static bool snapshot_holds(const char *image, const char *name,
                           const char *expect)
{
    return img_sh("qemu-img convert -l snapshot.name=%s -O raw %s snap.raw "
                  "&& cmp snap.raw %s", name, image, expect);
}

static bool active_holds(const char *image, const char *expect)
{
    return img_sh("qemu-img compare -f qcow2 -F raw %s %s", image, expect);
}

static uint64_t allocated(const char *name)
{
    struct stat st;
    return stat(img_path(name), &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

typedef int snapshot_op(struct vmdev_block *b, const char *name, char *why,
                        size_t why_len);

/* The operation succeeds (it says why not otherwise). */
static bool succeeds(snapshot_op *op, const char *what, struct vmdev_block *b,
                     const char *name)
{
    char why[256] = "";
    int ret = op(b, name, why, sizeof(why));
    if (ret)
        fprintf(stderr, "%s %s: %d %s\n", what, name, ret, why);
    return ret == 0;
}

#define create(b, name) succeeds(vmdev_block_snapshot_create, "create", b, name)
#define apply(b, name) succeeds(vmdev_block_snapshot_apply, "apply", b, name)
#define delete(b, name) succeeds(vmdev_block_snapshot_delete, "delete", b, name)

/*
 * On img.qcow2 (its content in start.raw): writes, snapshot "first",
 * writes, snapshot "second", writes; QEMU sees all three states. Then
 * applying and deleting them, with writes between; QEMU agrees after
 * each step, and deleting them gives their space back.
 */
static bool snapshots_round_trip(uint64_t seed)
{
    uint64_t first_seed = seed;
    size_t size = 0;
    uint8_t *mirror = img_load("start.raw", &size);
    uint8_t *first = malloc(DISK_SIZE), *second = malloc(DISK_SIZE);
    struct vmdev_block *b = open_image("img.qcow2", false, NULL, 0);
    bool ok = mirror && size == DISK_SIZE && first && second && b;
    ok = ok && scribble(b, mirror, &seed, 20) && create(b, "first");
    if (ok)
        memcpy(first, mirror, DISK_SIZE);
    ok = ok && scribble(b, mirror, &seed, 20) && create(b, "second");
    if (ok)
        memcpy(second, mirror, DISK_SIZE);
    ok = ok && scribble(b, mirror, &seed, 20) && reads_as(b, mirror);
    vmdev_block_free(b);
    ok = ok && save("first.raw", first) && save("second.raw", second) &&
         save("now.raw", mirror);
    ok = ok && clean("img.qcow2") && qemu_lists("img.qcow2", "first") &&
         qemu_lists("img.qcow2", "second") &&
         snapshot_holds("img.qcow2", "first", "first.raw") &&
         snapshot_holds("img.qcow2", "second", "second.raw") &&
         active_holds("img.qcow2", "now.raw");

    /* Reopened: the list is what was made. */
    b = ok ? open_image("img.qcow2", false, NULL, 0) : NULL;
    struct vmdev_block_snapshot *list = NULL;
    int n = b ? vmdev_block_snapshot_list(b, &list) : -1;
    ok = ok && n == 2 && strcmp(list[0].name, "first") == 0 &&
         strcmp(list[0].id, "1") == 0 && strcmp(list[1].name, "second") == 0 &&
         strcmp(list[1].id, "2") == 0 && list[1].disk_size == DISK_SIZE &&
         list[1].date_sec > 0;
    vmdev_block_snapshot_list_free(list, n);

    /* Back to the first, written over; then to the second, by its ID. */
    ok = ok && apply(b, "first") && reads_as(b, first);
    memcpy(mirror, first, DISK_SIZE);
    ok = ok && scribble(b, mirror, &seed, 10) && reads_as(b, mirror);
    ok = ok && apply(b, "2") && reads_as(b, second);
    ok = ok && delete(b, "first");
    vmdev_block_free(b);
    ok = ok && clean("img.qcow2") && !qemu_lists("img.qcow2", "first") &&
         snapshot_holds("img.qcow2", "second", "second.raw") &&
         active_holds("img.qcow2", "second.raw");

    /* The last one goes: COPIED flags back where counts drop to 1. */
    uint64_t before = allocated("img.qcow2");
    b = ok ? open_image("img.qcow2", false, NULL, 0) : NULL;
    ok = ok && b && delete(b, "second") &&
         vmdev_block_snapshot_list(b, &list) == 0;
    free(list);
    vmdev_block_free(b);
    ok = ok && clean("img.qcow2") &&
         img_sh("test -z \"$(qemu-img snapshot -l img.qcow2)\"") &&
         active_holds("img.qcow2", "second.raw");
    uint64_t after = allocated("img.qcow2");
    if (ok && after >= before)
        fprintf(stderr, "deleting kept %llu of %llu bytes allocated\n",
                (unsigned long long)after, (unsigned long long)before);
    ok = ok && after < before;
    free(mirror);
    free(first);
    free(second);
    if (!ok)
        fprintf(stderr, "seed %llu failed\n", (unsigned long long)first_seed);
    return ok;
}

static void create_apply_delete_interoperate(void)
{
    img_dir_create();
    CHECK(img_make_source("start.raw", DISK_SIZE, 1));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2"));
    CHECK(snapshots_round_trip(1));
    CHECK(img_sh("qemu-img convert -c -f raw -O qcow2 -o "
                 "compression_type=zstd,cluster_size=4096 start.raw "
                 "img.qcow2"));
    CHECK(snapshots_round_trip(2));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -o cluster_size=512,"
                 "refcount_bits=64 start.raw img.qcow2"));
    CHECK(snapshots_round_trip(3));
    /* Made by us, over a backing file: the snapshots hold only what was
     * written. */
    CHECK(img_sh("cp start.raw base.raw && rm img.qcow2"));
    struct vmdev_block_create_options o = {
        .path = img_path("img.qcow2"), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cluster_size = 4096, .backing_file = "base.raw",
        .backing_format = VMDEV_BLOCK_FORMAT_RAW,
    };
    CHECK_EQ(vmdev_block_create(&o, NULL, 0), 0);
    CHECK(snapshots_round_trip(4));
    CHECK(img_sh("cmp base.raw start.raw"));

    /* An empty disk has no tables at all. */
    o = (struct vmdev_block_create_options){ .path = img_path("empty.qcow2"),
                                             .format = VMDEV_BLOCK_FORMAT_QCOW2 };
    CHECK_EQ(vmdev_block_create(&o, NULL, 0), 0);
    struct vmdev_block *b = open_image("empty.qcow2", false, NULL, 0);
    CHECK(b && create(b, "nothing") && create(b, "still") &&
          apply(b, "nothing") && delete(b, "still"));
    vmdev_block_free(b);
    CHECK(clean("empty.qcow2") && qemu_lists("empty.qcow2", "nothing"));
    img_dir_remove();
}

/* A snapshot QEMU made stays as it was through our writes, and applies
 * through us; QEMU can still apply and delete it after. */
static void qemu_snapshots_survive_and_apply(void)
{
    img_dir_create();
    CHECK(img_make_source("start.raw", DISK_SIZE, 2));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2 && "
                 "qemu-img snapshot -c theirs img.qcow2"));
    size_t size;
    uint8_t *mirror = img_load("start.raw", &size);
    uint8_t *start = img_load("start.raw", &size);
    uint64_t seed = 5;
    struct vmdev_block *b = open_image("img.qcow2", false, NULL, 0);
    CHECK(mirror && start && b);
    CHECK(scribble(b, mirror, &seed, 40));
    vmdev_block_free(b);
    CHECK(save("now.raw", mirror));
    CHECK(clean("img.qcow2"));
    CHECK(snapshot_holds("img.qcow2", "theirs", "start.raw"));
    CHECK(active_holds("img.qcow2", "now.raw"));

    b = open_image("img.qcow2", false, NULL, 0);
    CHECK(b && apply(b, "theirs"));
    CHECK(reads_as(b, start));
    CHECK(scribble(b, mirror, &seed, 10) && create(b, "ours"));
    vmdev_block_free(b);
    CHECK(clean("img.qcow2"));
    CHECK(img_sh("qemu-img snapshot -a theirs img.qcow2 && "
                 "qemu-img snapshot -d ours img.qcow2"));
    CHECK(clean("img.qcow2"));
    CHECK(active_holds("img.qcow2", "start.raw"));
    free(mirror);
    free(start);
    img_dir_remove();
}

static int create_why(struct vmdev_block *b, const char *name, char *why,
                      size_t why_len)
{
    why[0] = '\0';
    return vmdev_block_snapshot_create(b, name, why, why_len);
}

/* What cannot be done is refused with a reason, and the file stays as it
 * was. */
static void refusals_change_nothing(void)
{
    img_dir_create();
    char why[256];
    CHECK(img_sh("head -c 1M /dev/zero > disk.raw"));
    struct vmdev_block_options o = {
        .path = img_path("disk.raw"), .format = VMDEV_BLOCK_FORMAT_RAW,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = false,
    };
    struct vmdev_block *b = vmdev_block_new(&o, NULL, 0);
    CHECK(b != NULL);
    CHECK_EQ(create_why(b, "s", why, sizeof(why)), -ENOTSUP);
    CHECK(strstr(why, "raw images have no internal snapshots") != NULL);
    struct vmdev_block_snapshot *list;
    CHECK_EQ(vmdev_block_snapshot_list(b, &list), 0);
    vmdev_block_free(b);

    CHECK(img_make_source("start.raw", DISK_SIZE, 3));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2 && "
                 "qemu-img snapshot -c theirs img.qcow2 && "
                 "cp img.qcow2 before.qcow2"));
    b = open_image("img.qcow2", true, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_EQ(vmdev_block_snapshot_list(b, &list), 1);
    CHECK(strcmp(list[0].name, "theirs") == 0);
    vmdev_block_snapshot_list_free(list, 1);
    CHECK_EQ(create_why(b, "s", why, sizeof(why)), -EROFS);
    vmdev_block_free(b);

    b = open_image("img.qcow2", false, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_EQ(create_why(b, "", why, sizeof(why)), -EINVAL);
    CHECK_EQ(create_why(b, "theirs", why, sizeof(why)), -EEXIST);
    CHECK(strstr(why, "'theirs' exists") != NULL);
    CHECK_EQ(create_why(b, "1", why, sizeof(why)), -EEXIST); /* its ID */
    CHECK_EQ(vmdev_block_snapshot_apply(b, "nope", why, sizeof(why)), -ENOENT);
    CHECK(strstr(why, "no snapshot with id or name 'nope'") != NULL);
    CHECK_EQ(vmdev_block_snapshot_delete(b, "nope", why, sizeof(why)),
             -ENOENT);
    vmdev_block_free(b);
    CHECK(img_sh("cmp img.qcow2 before.qcow2"));

    /* One-bit refcounts cannot count a second reference. */
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -o refcount_bits=1 "
                 "start.raw img.qcow2 && cp img.qcow2 before.qcow2"));
    b = open_image("img.qcow2", false, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_EQ(create_why(b, "s", why, sizeof(why)), -ERANGE);
    CHECK(strstr(why, "1-bit refcounts") != NULL);
    vmdev_block_free(b);
    CHECK(img_sh("cmp img.qcow2 before.qcow2"));
    img_dir_remove();
}

/* A snapshot table that claims more entries than it has, and a
 * snapshot's L1 table outside the file: opening is refused. A table that
 * points data at the L1 table: the snapshot operation fails, the image
 * is marked corrupt and the header still points where it did. */
static void lying_snapshot_metadata(void)
{
    img_dir_create();
    char why[256] = "";
    CHECK(img_make_source("start.raw", DISK_SIZE, 4));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2 && "
                 "qemu-img snapshot -c theirs img.qcow2 && "
                 "cp img.qcow2 good.qcow2"));
    CHECK(img_patch("img.qcow2", 60, 2, 4));
    CHECK(open_image("img.qcow2", true, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "snapshot table") != NULL);

    uint64_t table = img_read_be("good.qcow2", 64, 8);
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    CHECK(img_patch("img.qcow2", table, 1ull << 40, 8));
    CHECK(open_image("img.qcow2", true, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "bad L1 table for qcow2 snapshot '1'") != NULL);

    /* The first L2 table (shared by the snapshot and the active L1) says
     * its first cluster is the active L1 table. */
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    uint64_t l1 = img_read_be("img.qcow2", 40, 8);
    uint64_t l2 = img_read_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    CHECK(l1 && l2);
    CHECK(img_patch("img.qcow2", l2, l1, 8));
    uint64_t header[5];
    for (unsigned i = 0; i < 5; i++)
        header[i] = img_read_be("img.qcow2", 36 + 8 * i, 8);
    struct vmdev_block *b = open_image("img.qcow2", false, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_EQ(vmdev_block_snapshot_delete(b, "theirs", why, sizeof(why)), -EIO);
    CHECK(strstr(why, "metadata") != NULL);
    CHECK_EQ(create_why(b, "more", why, sizeof(why)), -EIO);
    vmdev_block_free(b);
    CHECK(img_read_be("img.qcow2", 72, 8) & 2); /* corrupt */
    for (unsigned i = 0; i < 5; i++)
        CHECK_EQ(img_read_be("img.qcow2", 36 + 8 * i, 8), header[i]);
    img_dir_remove();
}

static void note_done(struct vmdev_block_request *req, int64_t result)
{
    *(int64_t *)req->opaque = result;
}

/* A request in flight (its completion not yet taken from the engine)
 * makes snapshot operations wait their turn: -EBUSY, nothing changed. */
static void busy_while_requests_are_in_flight(void)
{
    img_dir_create();
    CHECK(img_make_source("start.raw", DISK_SIZE, 6));
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 start.raw img.qcow2"));
    struct vmdev_block *b = open_image("img.qcow2", false, NULL, 0);
    CHECK(b != NULL);
    static uint8_t buf[65536];
    struct iovec iov = { buf, sizeof(buf) };
    int64_t result = 1;
    struct vmdev_block_request req = { .op = VMDEV_IO_READ, .offset = 0,
                                       .iov = &iov, .iovcnt = 1,
                                       .done = note_done, .opaque = &result };
    CHECK_EQ(vmdev_block_submit(b, engine, &req), 0);
    char why[256] = "";
    CHECK_EQ(create_why(b, "s", why, sizeof(why)), -EBUSY);
    CHECK(strstr(why, "in flight") != NULL);
    while (result == 1)
        vmdev_io_engine_complete(engine);
    CHECK_EQ(result, (int64_t)sizeof(buf));
    CHECK_EQ(create_why(b, "s", why, sizeof(why)), 0);
    vmdev_block_free(b);
    CHECK(clean("img.qcow2"));
    img_dir_remove();
}

/* Where snapshot table entry `index` of an image starts. */
static uint64_t entry_at(const char *image, unsigned index)
{
    uint64_t at = img_read_be(image, 64, 8);
    for (unsigned i = 0; i < index; i++)
        at += (40 + img_read_be(image, at + 36, 4) +
               img_read_be(image, at + 12, 2) + img_read_be(image, at + 14, 2) +
               7) & ~7ull;
    return at;
}

/* Tables that would multiply the work of reading them, and names that
 * would not survive a rewrite, are refused at open; an L1 table naming
 * one L2 table twice stops a snapshot operation and marks the image
 * corrupt. */
static void hostile_snapshot_tables(void)
{
    img_dir_create();
    char why[256] = "";
    CHECK(img_make_source("start.raw", DISK_SIZE, 7));
    /* 4 KiB clusters: the L1 table has four entries. */
    CHECK(img_sh("qemu-img convert -f raw -O qcow2 -o cluster_size=4096 "
                 "start.raw good.qcow2 && "
                 "qemu-img snapshot -c s1 good.qcow2 && "
                 "qemu-img snapshot -c s2 good.qcow2"));
    size_t size;
    free(img_load("good.qcow2", &size));
    /* Two L1 tables of almost the whole file, one cluster apart. */
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    uint64_t first = entry_at("img.qcow2", 0), second = entry_at("img.qcow2", 1);
    CHECK(img_patch("img.qcow2", first, 65536, 8));
    CHECK(img_patch("img.qcow2", first + 8, (size - 65536) / 8, 4));
    CHECK(img_patch("img.qcow2", second, 131072, 8));
    CHECK(img_patch("img.qcow2", second + 8, (size - 131072) / 8, 4));
    CHECK(open_image("img.qcow2", true, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "L1 tables overlap") != NULL);

    /* A NUL in a name. */
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    uint64_t name = first + ((40 + img_read_be("img.qcow2", first + 36, 4) +
                              img_read_be("img.qcow2", first + 12, 2)));
    CHECK(img_patch("img.qcow2", name, 0, 1));
    CHECK(open_image("img.qcow2", true, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "NUL") != NULL);

    /* The active L1 names its first L2 table twice. */
    CHECK(img_sh("cp good.qcow2 img.qcow2"));
    uint64_t l1 = img_read_be("img.qcow2", 40, 8);
    CHECK(img_patch("img.qcow2", l1 + 8, img_read_be("img.qcow2", l1, 8), 8));
    uint64_t header[5];
    for (unsigned i = 0; i < 5; i++)
        header[i] = img_read_be("img.qcow2", 36 + 8 * i, 8);
    struct vmdev_block *b = open_image("img.qcow2", false, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_EQ(create_why(b, "s3", why, sizeof(why)), -EIO);
    CHECK(strstr(why, "names one L2 table twice") != NULL);
    vmdev_block_free(b);
    CHECK(img_read_be("img.qcow2", 72, 8) & 2);
    for (unsigned i = 0; i < 5; i++)
        CHECK_EQ(img_read_be("img.qcow2", 36 + 8 * i, 8), header[i]);
    img_dir_remove();
}

static void setup(void)
{
    engine = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    CHECK(engine != NULL);
}

TEST_MAIN(TEST(setup),
          TEST(create_apply_delete_interoperate),
          TEST(qemu_snapshots_survive_and_apply),
          TEST(refusals_change_nothing),
          TEST(lying_snapshot_metadata),
          TEST(busy_while_requests_are_in_flight),
          TEST(hostile_snapshot_tables))
