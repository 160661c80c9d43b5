/* SPDX-License-Identifier: MIT */
/*
 * qcow2 images built from a description, so that most inputs pass the
 * header checks and reach the table walks, the allocator and the
 * snapshot switches, where fuzz_qcow2's raw bytes rarely get.
 *
 * The input's first bytes give the shape (cluster size 512 B to 2 MiB,
 * version, refcount width, compression type, disk size, which guest
 * clusters hold data, zeroes or compressed data, snapshots sharing the
 * active L2 tables); the target lays out a consistent image from them
 * as qemu-img would (header, refcount table, L1 tables, snapshot table,
 * L2 tables, data, compressed data packed by bytes, refcount blocks
 * counting everything, snapshot references included, COPIED where a
 * count is 1; qcow2_build.h builds it). The rest of the input is a list of edits of that image
 * by the objects' names: a table entry pointed at another object (L1 at
 * an L2 table, the refcount table or a data cluster; an L2 entry at
 * metadata), refcount table entries naming one block (shared) or a block
 * past the end of the file, refcount blocks counting clusters past the
 * end (a crash's leaks, or the whole block), a count changed, header
 * fields changed, the file cut short, bytes flipped.
 *
 * qcow2_rig.h's exercise then runs on the image, with its bound on the
 * work and the growth of the file one image may cause.
 */
#include "qcow2_build.h"
#include "qcow2_rig.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EDITS 32

/* The cluster of an object named by one byte: its kind (the low bits),
 * and which of that kind (the rest, wrapping), plus `within`. An image
 * without that kind gives another object. */
static uint64_t object_cluster(const struct image *im, uint8_t name,
                               uint8_t within)
{
    enum object_kind kind = (enum object_kind)(name % 9);
    unsigned of_kind = 0;
    for (unsigned i = 0; i < im->num_objects; i++)
        of_kind += im->objects[i].kind == kind;
    const struct object *o = &im->objects[name % im->num_objects];
    for (unsigned i = 0, nth = of_kind ? name / 9u % of_kind : 0;
         of_kind && i < im->num_objects; i++)
        if (im->objects[i].kind == kind && nth-- == 0) {
            o = &im->objects[i];
            break;
        }
    return o->cluster + within % o->clusters;
}

/*
 * One edit: an opcode byte and three argument bytes. The file may be
 * made longer than the image (a table pointing past its end is in range
 * then) only through the header fields; its end is im->clusters.
 */
static void apply_edit(struct image *im, struct input *in, uint64_t *file_len)
{
    uint8_t op = take8(in), a = take8(in), b = take8(in), c = take8(in);
    uint64_t cs = im->cluster_size;
    uint64_t per_block = (cs * 8) >> im->refcount_order;
    uint64_t table = im->reftable_cluster << im->cluster_bits;
    uint64_t l1 = im->l1_cluster[0] << im->cluster_bits;
    switch (op % 10) {
    case 0: /* An L1 entry at any object (an L2 table shared, the L1 or the
               refcount table as an L2 table), COPIED as c says. */
        if (a % 64 < im->l1_entries)
            put64(im, l1 + a % 64 * 8, object_cluster(im, b, 0) << im->cluster_bits |
                                           (uint64_t)(c & 1) << 63);
        break;
    case 1: { /* An entry of an L2 table at any object, standard or
                 compressed, flags from c. */
        uint64_t l2 = get64(im, l1 + a % im->l1_entries % 64 * 8) & L1_MASK_FOR_BUILD;
        if (!l2 || l2 + cs > im->clusters << im->cluster_bits)
            break;
        uint64_t target = object_cluster(im, b, c >> 4) << im->cluster_bits;
        uint64_t entry = c & 4 ? 1ull << 62 | (uint64_t)(c >> 3) << (62 - (im->cluster_bits - 8)) |
                                     (target + (c & 3) * 200)
                               : target | (uint64_t)(c & 1) << 63 | (c & 2) >> 1;
        put64(im, l2 + (uint64_t)(a * 7 + c) % (cs / 8) * 8, entry);
        break;
    }
    case 2: /* Refcount table entries [a, a + b] all naming one block:
               shared blocks, the looping image. */
        for (uint64_t g = a; g <= (uint64_t)a + b &&
                             g < im->reftable_clusters * cs / 8; g++)
            put64(im, table + g * 8, object_cluster(im, c, 0) << im->cluster_bits);
        break;
    case 3: /* A refcount table entry past the end of the file. */
        if (a < im->reftable_clusters * cs / 8)
            put64(im, table + (uint64_t)a * 8,
                  (im->clusters + b) << im->cluster_bits | (uint64_t)c << 48);
        break;
    case 4: { /* Counts for clusters past the end of the file: a crash's
                 leaks, (b | c << 8) of them, or every one the blocks have. */
        uint64_t n = c == 0xff ? im->refblocks * per_block : (uint64_t)(b | c << 8);
        for (uint64_t i = im->clusters; i < im->clusters + n &&
                                        i < im->refblocks * per_block; i++)
            refcount_write(im, i, a ? a : 1);
        break;
    }
    case 5: /* The count of one object's cluster changed (0 frees it). */
        refcount_write(im, object_cluster(im, a, b), c);
        break;
    case 6: /* Header fields: refcount table clusters, L1 entries, the
               snapshot count, the refcount width. */
        if (a & 1)
            put32(im, 56, b | (uint32_t)c << 8);
        if (a & 2)
            put32(im, 36, (uint32_t)im->l1_entries + b);
        if (a & 4)
            put32(im, 60, c % 8);
        if (a & 8 && im->version == 3)
            put32(im, 96, b % 7);
        if (a & 16) /* the L1 table at another object */
            put64(im, 40, object_cluster(im, b, c) << im->cluster_bits);
        if (a & 32) /* the refcount table at another object */
            put64(im, 48, object_cluster(im, c, b) << im->cluster_bits);
        break;
    case 7: /* The file cut short by a clusters and b sectors. */
        *file_len = *file_len > (uint64_t)a * cs + b * 512u
                        ? *file_len - a * cs - b * 512u
                        : 512;
        break;
    case 8: { /* One byte of an object flipped. */
        uint64_t at = (object_cluster(im, a, 0) << im->cluster_bits) +
                      (uint64_t)(b * 8 + (c & 7)) % cs;
        im->file[at] ^= (uint8_t)(c | 1);
        break;
    }
    case 9: /* A snapshot's L1 entry at another L2 table or object. */
        if (im->snapshots && a % 64 < im->l1_entries)
            put64(im, (im->l1_cluster[1 + c % im->snapshots] << im->cluster_bits) +
                          a % 64 * 8,
                  object_cluster(im, b, 0) << im->cluster_bits);
        break;
    }
}

static struct qcow2_rig rig;
static char image_path[96];

static void remove_scratch(void)
{
    unlink(image_path);
    rmdir(rig.dir);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rig.engine) {
        qcow2_rig_init(&rig, "vmdev-fuzz-qcow2-meta");
        qcow2_rig_path(&rig, "image.qcow2", image_path, sizeof(image_path));
        atexit(remove_scratch);
    }
    struct input in = { data, size };
    uint8_t bits = take8(&in), flags = take8(&in);
    uint16_t disk_clusters = take16(&in);
    struct shape shape = { .density = take8(&in),
                           .compressed_share = take8(&in),
                           .zero_share = take8(&in), .seed = take8(&in) };
    uint8_t incompatible = take8(&in);
    struct image im = {
        /* Mostly 512 B to 64 KiB, now and then up to 2 MiB (slow: each
         * open allocates an L2 cache of such clusters). */
        .cluster_bits = bits < 240 ? 9 + bits % 8u : 9 + bits % 13u,
        .version = flags & 0x08 ? 2 : 3,
        .zstd = flags & 0x10 && !(flags & 0x08),
        .snapshots = flags >> 5 & 3,
    };
    im.refcount_order = im.version == 2 || (flags & 7) == 7 ? 4 : flags & 7;
    im.cluster_size = 1ull << im.cluster_bits;
    im.disk_size = ((uint64_t)(disk_clusters % 4096) + 1) * im.cluster_size -
                   (incompatible & 0x70) / 16 % (im.cluster_size / 512) * 512;
    uint64_t l2_span = im.cluster_size * (im.cluster_size / 8);
    im.l1_entries = (im.disk_size + l2_span - 1) / l2_span;
    if (im.version == 2) /* no zero clusters there */
        shape.zero_share = 0;
    if (!build_tables(&im, &shape)) {
        free(im.file);
        free(im.refcounts);
        return 0;
    }
    count_references(&im);
    set_copied_flags(&im);
    write_refcounts(&im);
    write_snapshot_table(&im);
    write_header(&im, incompatible);
    uint64_t file_len = im.clusters << im.cluster_bits;
    for (unsigned i = 0; i < MAX_EDITS && in.left; i++)
        apply_edit(&im, &in, &file_len);
    write_image(image_path, &im, file_len);
    free(im.file);
    free(im.refcounts);
    qcow2_rig_exercise(&rig, (struct vmdev_block_options){
        .path = image_path, .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK });
    return 0;
}
