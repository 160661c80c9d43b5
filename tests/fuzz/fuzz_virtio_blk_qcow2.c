/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk on a qcow2 image, from a hostile driver, under cache=
 * writeback or cache=none (O_DIRECT; guest buffers that are not aligned
 * go through the block layer's bounce buffer). The image is built well
 * formed by qcow2_build.h from the input's shape (cluster size 4 KiB to
 * 64 KiB, zlib or zstd, data, zero and compressed clusters), sometimes
 * over a raw backing file named relatively beside it. cache=none needs a
 * file system that takes O_DIRECT (tmpfs does not): the image then lives
 * under /var/tmp; if that refuses O_DIRECT too, cache=none is skipped,
 * said once on stderr.
 *
 * The input is then batches of requests: reads and writes of whole
 * sectors in 1 to 16 data descriptors (direct or through an indirect
 * table; buffers misaligned in memory; descriptors aliasing one buffer,
 * up to size_max each; one descriptor past size_max; seg_max + 1 of
 * them, the header or the status byte sharing a data descriptor),
 * flushes, write-zeroes, discards, get-id and unknown types, anywhere on
 * the disk and past it, and hostile chains (a header too short, no status
 * byte, a buffer outside RAM, data not a whole sector).
 *
 * Asserted: each request's status is what virtio 1.2 and the device's
 * limits say (a request past size_max or seg_max, outside the disk or
 * misaligned for O_DIRECT gets VIRTIO_BLK_S_IOERR; an unknown type
 * UNSUPP); every request of a batch completes, or the device is
 * DEVICE_NEEDS_RESET; guest RAM changes only in the used ring and the
 * writable buffers of the batch's chains; data read back equals the
 * target's shadow of the disk (the image as built, the backing file's
 * bytes under unallocated clusters, then every write, write-zeroes and
 * discard that completed); and the device's data in flight never
 * exceeded VMDEV_VIRTIO_BLK_DATA_BUDGET (aliasing descriptors ask for
 * far more). qcow2_rig.h's watchdog bounds the work of an input.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>

#include "qcow2_build.h"
#include "qcow2_rig.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_blk.h"
#include "vmdev/virtio_device.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOT_FUZZED __attribute__((disable_sanitizer_instrumentation))

#define RAM_BASE 0x100000ull
#define RAM_SIZE (4ull << 20) /* room for a descriptor past size_max */
#define RAM_END (RAM_BASE + RAM_SIZE)
#define QUEUE_SIZE 16
#define SEG_MAX (QUEUE_SIZE - 2) /* as the device advertises it */
#define SIZE_MAX_BYTES (1u << 20)
#define DESC_GPA RAM_BASE
#define AVAIL_GPA (RAM_BASE + 0x100)
#define USED_GPA (RAM_BASE + 0x200)
#define USED_LEN (6 + 8 * QUEUE_SIZE)
#define INDIRECT_GPA (RAM_BASE + 0x1000) /* 16 tables of 32 descriptors */
#define HEADER_GPA (RAM_BASE + 0x3000)   /* 32 bytes a request */
#define STATUS_GPA (RAM_BASE + 0x3400)   /* 8 bytes a request */
#define DATA_GPA (RAM_BASE + 0x4000)
#define MAX_DISK (32ull << 20)
#define MAX_BATCHES 4
#define MAX_BATCH 8
#define MAX_SEGS 16

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

/* What a hostile chain does wrong. */
enum hostility { WELL_FORMED, SHORT_HEADER, NO_STATUS, OUTSIDE_RAM,
                 PARTIAL_SECTOR };

struct range {
    uint64_t gpa, len;
};

struct request {
    uint32_t type;
    uint64_t sector;
    unsigned segs;       /* data descriptors */
    uint64_t seg_len;
    bool aliased;        /* every data descriptor on one buffer */
    uint64_t data_gpa;   /* the first (or only) data buffer */
    uint64_t seg_gpa[MAX_SEGS + 1];
    enum hostility hostile;
    uint32_t range_sectors; /* discard, write-zeroes */
    bool unmap;
    uint16_t head;
    int expected; /* a status, or -1: not predicted */
    bool used;
    uint32_t used_len;
    struct range writable[MAX_SEGS + 2]; /* what the device may write */
    unsigned num_writable;
};

static uint8_t ram[RAM_SIZE], ram_before[RAM_SIZE];
static struct vmdev_guest_memory *mem;
static struct vmdev_event_loop *loop;
static struct qcow2_rig rig;
static char direct_dir[64] = "/var/tmp/vmdev-fuzz-blk-qcow2-XXXXXX";
static bool direct_ok;
static char image_path[2][128], backing_path_of[2][128];

/* The disk as the driver wrote it, and which of its sectors are known. */
static uint8_t shadow[MAX_DISK];
static bool known[MAX_DISK / 512];
static uint64_t disk_size, alignment;

static void remove_scratch(void)
{
    for (unsigned i = 0; i < 2; i++) {
        unlink(image_path[i]);
        unlink(backing_path_of[i]);
    }
    rmdir(rig.dir);
    if (direct_ok)
        rmdir(direct_dir);
}

/* Whether the directory's file system takes O_DIRECT. */
static bool takes_o_direct(const char *dir)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/probe", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    unlink(p);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void set_up_once(void)
{
    qcow2_rig_init(&rig, "vmdev-fuzz-blk-qcow2");
    direct_ok = mkdtemp(direct_dir) && takes_o_direct(direct_dir);
    if (!direct_ok) {
        rmdir(direct_dir);
        fprintf(stderr, "virtio_blk_qcow2 fuzz: /var/tmp does not take "
                "O_DIRECT; cache=none is not exercised\n");
    }
    const char *dirs[2] = { rig.dir, direct_dir };
    for (unsigned i = 0; i < 2; i++) {
        snprintf(image_path[i], sizeof(image_path[i]), "%s/disk.qcow2", dirs[i]);
        snprintf(backing_path_of[i], sizeof(backing_path_of[i]),
                 "%s/backing.raw", dirs[i]);
    }
    atexit(remove_scratch);
    mem = vdrv_mem_over(ram, RAM_BASE, RAM_SIZE, 1);
    loop = vmdev_event_loop_new();
    if (!mem || !loop)
        abort();
}

/* The backing file's byte at x: a pattern no cluster of the image has. */
NOT_FUZZED static uint8_t backing_byte(uint64_t x)
{
    return (uint8_t)(x * 7 + (x >> 9) + 0x33);
}

NOT_FUZZED static void fill_backing(uint8_t *p, uint64_t from, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++)
        p[k] = backing_byte(from + k);
}

static void write_backing(const char *path, uint64_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        abort();
    fill_backing(p, 0, len);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || (len && pwrite(fd, p, len, 0) != (ssize_t)len) || close(fd))
        abort();
    free(p);
}

/* The bytes the driver writes: recognisable per request and offset. */
NOT_FUZZED static void fill_data(uint8_t *p, uint64_t n, unsigned seed)
{
    for (uint64_t k = 0; k < n; k++)
        p[k] = (uint8_t)(k * 13 + (k >> 9) * 5 + seed * 71 + 0x5c);
}

/*
 * Build the image (and its backing file) from the input's shape and set
 * the shadow to what it holds. false when the shape builds nothing.
 */
static bool build_disk(struct input *in, unsigned where, bool with_backing,
                       uint64_t *backing_len)
{
    uint8_t bits = take8(in), flags = take8(in);
    uint16_t clusters = take16(in);
    struct shape shape = { .density = take8(in),
                           .compressed_share = take8(in),
                           .zero_share = take8(in), .seed = take8(in) };
    struct image im = { .cluster_bits = 12 + bits % 5, .version = 3,
                        .refcount_order = 4, .zstd = flags & 1 };
    im.cluster_size = 1ull << im.cluster_bits;
    /* Mostly up to 1 MiB (each input fills its shadow); now and then up
     * to MAX_DISK, room for requests of size_max * seg_max. */
    uint64_t max_clusters = (flags & 2 ? MAX_DISK : 1u << 20) >> im.cluster_bits;
    im.disk_size = (clusters % max_clusters + 1) << im.cluster_bits;
    uint64_t l2_span = im.cluster_size * (im.cluster_size / 8);
    im.l1_entries = (im.disk_size + l2_span - 1) / l2_span;
    uint64_t guest_clusters = im.disk_size >> im.cluster_bits;
    im.guest_kinds = calloc(guest_clusters, 1);
    bool built = im.guest_kinds && build_tables(&im, &shape);
    if (built) {
        count_references(&im);
        set_copied_flags(&im);
        write_refcounts(&im);
        write_header(&im, 0);
        if (with_backing) {
            /* The format extension, the end marker and the name after
             * the header, as qemu-img writes them. */
            static const uint8_t ext[] = { 0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 3,
                                           'r', 'a', 'w', 0, 0, 0, 0, 0,
                                           0, 0, 0, 0, 0, 0, 0, 0 };
            memcpy(im.file + 112, ext, sizeof(ext));
            memcpy(im.file + 112 + sizeof(ext), "backing.raw", 11);
            put64(&im, 8, 112 + sizeof(ext));
            put32(&im, 16, 11);
        }
        unlink(image_path[where]);
        write_image(image_path[where], &im, im.clusters << im.cluster_bits);
    }
    disk_size = im.disk_size;
    /* The shadow: cluster by cluster, what the image holds. */
    *backing_len = with_backing ? (uint64_t)take16(in) * 512 % (disk_size + 4096)
                                : 0;
    if (built) {
        fill_backing(shadow, 0, disk_size);
        if (*backing_len < disk_size)
            memset(shadow + *backing_len, 0, disk_size - *backing_len);
        if (with_backing)
            write_backing(backing_path_of[where], *backing_len);
        for (uint64_t g = 0; g < guest_clusters; g++) {
            uint8_t *c = shadow + (g << im.cluster_bits);
            if (im.guest_kinds[g] == GUEST_DATA ||
                im.guest_kinds[g] == GUEST_COMPRESSED)
                fill_pattern(c, im.cluster_size, g);
            else if (im.guest_kinds[g] == GUEST_ZERO)
                memset(c, 0, im.cluster_size);
        }
        memset(known, true, disk_size / 512);
    }
    free(im.guest_kinds);
    free(im.file);
    free(im.refcounts);
    return built;
}

static uint8_t *host(uint64_t gpa)
{
    return ram + (gpa - RAM_BASE);
}

static void put_desc(uint64_t table, unsigned i, uint64_t gpa, uint64_t len,
                     uint16_t flags, uint16_t next)
{
    uint32_t len32 = (uint32_t)len;
    uint8_t *d = host(table + 16ull * i);
    memcpy(d, &gpa, 8);
    memcpy(d + 8, &len32, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

struct desc {
    uint64_t gpa, len;
    bool writable;
};

struct driver {
    struct vmdev_virtio_blk *blk;
    struct vmdev_virtio_device *dev;
    uint16_t avail_idx, used_idx;
    uint64_t cluster_size;
    unsigned requests_made;
};

static void remember_writable(struct request *r, uint64_t gpa, uint64_t len)
{
    r->writable[r->num_writable++] = (struct range){ gpa, len };
}

/*
 * Lay request r (the j-th of its batch) out in RAM from the data area at
 * *data, its descriptors in the ring from *next_desc or in its own
 * indirect table, and make it available. false when RAM or the ring has
 * no room left.
 */
static bool publish(struct driver *d, struct request *r, unsigned j,
                    unsigned *next_desc, uint64_t *data, bool indirect,
                    unsigned misalign, bool share)
{
    struct desc descs[MAX_SEGS + 4];
    unsigned n = 0;
    uint64_t header = HEADER_GPA + 32ull * j;
    uint64_t status = STATUS_GPA + 8ull * j;
    bool rw = r->type == T_IN || r->type == T_OUT;
    bool share_header = share && r->type == T_OUT && !r->aliased;
    bool share_status = share && r->type == T_IN && !r->aliased;
    uint64_t at = (*data + 511) & ~511ull;
    uint64_t need = rw ? (r->aliased ? r->seg_len : r->segs * r->seg_len) +
                             16 + 1 + 512 * (r->segs + 1)
                       : 64;
    if (at + need > RAM_END)
        return false;
    if (share_header)
        header = at + misalign; /* the first data sector follows it */
    struct { uint32_t type, reserved; uint64_t sector; } h = {
        htole32(r->type), 0, htole64(r->sector) };
    memcpy(host(header), &h, sizeof(h));
    descs[n++] = (struct desc){ r->hostile == OUTSIDE_RAM ? 0x1000 : header,
                                r->hostile == SHORT_HEADER ? 8 : 16, false };
    if (rw) {
        for (unsigned s = 0; s < r->segs; s++) {
            uint64_t len = r->seg_len;
            if (r->hostile == PARTIAL_SECTOR && s + 1 == r->segs)
                len++;
            bool alias = r->aliased && s > 0;
            uint64_t gpa = alias          ? r->seg_gpa[0]
                           : share_header && s == 0 ? header + 16
                                                    : at + misalign;
            if (!alias) {
                /* A byte more: room for a status byte sharing it. */
                at = (gpa + len + 1 + 511) & ~511ull;
                if (r->type == T_OUT)
                    fill_data(host(gpa), len, d->requests_made + s);
            }
            r->seg_gpa[s] = gpa;
            if (share_header && s == 0) {
                descs[0].len += len;
                continue;
            }
            descs[n++] = (struct desc){ gpa, len, r->type == T_IN };
            if (r->type == T_IN)
                remember_writable(r, gpa, len);
        }
        r->data_gpa = r->seg_gpa[0];
    } else if (r->type == T_DISCARD || r->type == T_WRITE_ZEROES) {
        struct { uint64_t sector; uint32_t num, flags; } range = {
            htole64(r->sector), htole32(r->range_sectors),
            htole32(r->unmap ? 1 : 0) };
        memcpy(host(at), &range, sizeof(range));
        descs[n++] = (struct desc){ at, sizeof(range), false };
        at += 16;
    } else if (r->type == T_GET_ID) {
        descs[n++] = (struct desc){ at, 20, true };
        remember_writable(r, at, 20);
        at += 24;
    }
    if (r->hostile != NO_STATUS) {
        if (share_status) {
            /* The status byte right after the last data sector. */
            descs[n - 1].len++;
            remember_writable(r, descs[n - 1].gpa, descs[n - 1].len);
        } else {
            descs[n++] = (struct desc){ status, 1, true };
            remember_writable(r, status, 1);
        }
    }
    *data = at + 1;
    d->requests_made += r->segs + 1;

    indirect |= *next_desc + n > QUEUE_SIZE;
    if (*next_desc + (indirect ? 1 : n) > QUEUE_SIZE)
        return false;
    uint64_t table = indirect ? INDIRECT_GPA + 512ull * j : DESC_GPA;
    unsigned first = indirect ? 0 : *next_desc;
    for (unsigned i = 0; i < n; i++)
        put_desc(table, first + i, descs[i].gpa, descs[i].len,
                 (uint16_t)((descs[i].writable ? F_WRITE : 0) |
                            (i + 1 < n ? F_NEXT : 0)),
                 (uint16_t)(i + 1 < n ? first + i + 1 : 0));
    r->head = (uint16_t)*next_desc;
    if (indirect)
        put_desc(DESC_GPA, *next_desc, table, 16ull * n, F_INDIRECT, 0);
    *next_desc += indirect ? 1 : n;
    uint16_t slot = d->avail_idx % QUEUE_SIZE;
    memcpy(host(AVAIL_GPA + 4 + 2 * slot), &r->head, 2);
    d->avail_idx++;
    memcpy(host(AVAIL_GPA + 2), &d->avail_idx, 2);
    return true;
}

/* What the device must answer a well-formed request, or -1 when a
 * hostile one makes the device stop (DEVICE_NEEDS_RESET). */
static int expected_status(const struct request *r)
{
    if (r->hostile == SHORT_HEADER || r->hostile == NO_STATUS ||
        r->hostile == OUTSIDE_RAM)
        return -1;
    uint64_t bytes;
    switch (r->type) {
    case T_IN:
    case T_OUT:
        bytes = r->segs * r->seg_len;
        if (r->hostile == PARTIAL_SECTOR || r->segs > SEG_MAX ||
            r->seg_len > SIZE_MAX_BYTES || bytes > (uint64_t)SIZE_MAX_BYTES * SEG_MAX)
            return S_IOERR;
        break;
    case T_FLUSH:
    case T_GET_ID:
        return S_OK;
    case T_DISCARD:
    case T_WRITE_ZEROES:
        if (r->type == T_DISCARD && r->unmap)
            return S_UNSUPP;
        if (r->range_sectors > (1u << 21) || r->sector > UINT64_MAX / 512)
            return S_IOERR;
        if (r->range_sectors == 0)
            return S_OK;
        bytes = r->range_sectors * 512ull;
        break;
    default:
        return S_UNSUPP;
    }
    if (r->sector > disk_size / 512 || bytes > disk_size - r->sector * 512 ||
        r->sector * 512 % alignment || bytes % alignment)
        return S_IOERR;
    return S_OK;
}

/* The disk bytes a request touches: [*from, *to). */
static bool disk_range(const struct request *r, uint64_t *from, uint64_t *to)
{
    if (r->sector > disk_size / 512)
        return false;
    uint64_t bytes = r->type == T_IN || r->type == T_OUT
                         ? r->segs * r->seg_len
                     : r->type == T_DISCARD || r->type == T_WRITE_ZEROES
                         ? r->range_sectors * 512ull
                         : 0;
    *from = r->sector * 512;
    *to = bytes > disk_size - *from ? disk_size : *from + bytes;
    return bytes != 0;
}

static bool changes_disk(const struct request *r)
{
    return r->type == T_OUT || r->type == T_DISCARD ||
           r->type == T_WRITE_ZEROES;
}

NOT_FUZZED static void forget(uint64_t from, uint64_t to)
{
    for (uint64_t s = from / 512; s * 512 < to; s++)
        known[s] = false;
}

/* Where the read buffer differs from a known sector of the shadow. */
NOT_FUZZED static bool read_matches(const uint8_t *buf, uint64_t from,
                                    uint64_t len, uint64_t *bad)
{
    for (uint64_t k = 0; k < len; k++)
        if (known[(from + k) / 512] && buf[k] != shadow[from + k]) {
            *bad = from + k;
            return false;
        }
    return true;
}

/* Only the used ring and the batch's writable buffers changed. */
NOT_FUZZED static bool ram_changed_only_where_allowed(const struct request *rs,
                                                      unsigned n, uint64_t *bad)
{
    for (uint64_t off = 0; off < RAM_SIZE; off += 4096) {
        if (!memcmp(ram + off, ram_before + off, 4096))
            continue;
        for (uint64_t k = off; k < off + 4096; k++) {
            if (ram[k] == ram_before[k])
                continue;
            uint64_t gpa = RAM_BASE + k;
            bool allowed = gpa >= USED_GPA && gpa < USED_GPA + USED_LEN;
            for (unsigned i = 0; i < n && !allowed; i++)
                for (unsigned w = 0; w < rs[i].num_writable && !allowed; w++)
                    allowed = gpa >= rs[i].writable[w].gpa &&
                              gpa - rs[i].writable[w].gpa <
                                  rs[i].writable[w].len;
            if (!allowed) {
                *bad = gpa;
                return false;
            }
        }
    }
    return true;
}

static bool overlaps(const struct request *a, const struct request *b)
{
    uint64_t af, at, bf, bt;
    return disk_range(a, &af, &at) && disk_range(b, &bf, &bt) && af < bt &&
           bf < at;
}

/* Apply a completed write, write-zeroes or discard to the shadow. */
static void apply_to_shadow(const struct driver *d, const struct request *r)
{
    uint64_t from, to;
    if (!disk_range(r, &from, &to))
        return;
    if (r->type == T_OUT) {
        for (unsigned s = 0; s < r->segs; s++)
            memcpy(shadow + from + s * r->seg_len, host(r->seg_gpa[s]),
                   r->seg_len);
    } else if (r->type == T_WRITE_ZEROES) {
        memset(shadow + from, 0, to - from);
    } else {
        /* Whole clusters read as zeroes afterwards; parts stay. */
        uint64_t cs = d->cluster_size;
        uint64_t a = (from + cs - 1) & ~(cs - 1), b = to & ~(cs - 1);
        if (a < b)
            memset(shadow + a, 0, b - a);
    }
    memset(known + from / 512, true, (to - from) / 512);
}

/* What an input may still move in requests of size_max descriptors:
 * enough for twice the budget. */
#define BIG_BYTES_PER_INPUT (2ull * VMDEV_VIRTIO_BLK_DATA_BUDGET)
static uint64_t big_bytes_left;

/*
 * One request from 6 bytes of input: type and layout, data descriptors
 * and their length, sector, and what a hostile chain does wrong.
 */
static void describe(struct input *in, struct request *r, bool *indirect,
                     unsigned *misalign, bool *share)
{
    uint8_t kind = take8(in), shape = take8(in);
    uint16_t where = take16(in);
    uint8_t extra = take8(in), hostile = take8(in);
    static const uint32_t types[] = { T_IN, T_IN, T_OUT, T_OUT, T_OUT,
                                      T_FLUSH, T_WRITE_ZEROES, T_DISCARD,
                                      T_GET_ID, 2, 0x7fffffff };
    *r = (struct request){ .type = types[kind % 11] };
    *indirect = kind & 0x10;
    *misalign = kind & 0x20 ? 1 + extra % 511 : 0;
    *share = kind & 0x40;
    r->segs = 1 + shape % 16;
    r->seg_len = 512ull * (1 + (shape >> 4));
    switch (extra >> 5) {
    case 0: /* seg_max + 1 descriptors of one sector */
        r->segs = SEG_MAX + 1;
        r->seg_len = 512;
        break;
    case 1: /* every descriptor on one buffer of size_max: far more data
               than RAM, and than the budget once a few are in flight
               (within the input's share of such data, for its time) */
        r->aliased = true;
        r->segs = 1 + shape % SEG_MAX;
        if (big_bytes_left >= r->segs * (uint64_t)SIZE_MAX_BYTES) {
            r->seg_len = SIZE_MAX_BYTES;
            big_bytes_left -= r->segs * (uint64_t)SIZE_MAX_BYTES;
        }
        break;
    case 2: /* one descriptor past size_max */
        r->segs = 1;
        r->seg_len = SIZE_MAX_BYTES + 512;
        break;
    case 3:
        r->aliased = true;
        break;
    default:
        break;
    }
    uint64_t sectors = disk_size / 512;
    r->sector = kind & 0x80 ? UINT64_MAX / 256 + where
                            : (uint64_t)where * (1 + (shape & 7)) % (sectors + 64);
    /* Alignment steers most requests to where O_DIRECT takes them. */
    if (!(extra & 1))
        r->sector &= ~7ull;
    r->range_sectors = extra & 2 ? (1u << 21) + 8 : (uint32_t)where % 4096;
    r->unmap = extra & 4;
    r->hostile = hostile < 200 ? WELL_FORMED : (enum hostility)(1 + hostile % 4);
    if (r->hostile == SHORT_HEADER || r->hostile == NO_STATUS)
        r->type = T_FLUSH; /* nothing else readable or writable */
}

static void set_status(struct driver *d, uint8_t status)
{
    pthread_mutex_lock(&d->dev->lock);
    vmdev_virtio_set_status(d->dev, status);
    pthread_mutex_unlock(&d->dev->lock);
}

static uint8_t device_status(struct driver *d)
{
    pthread_mutex_lock(&d->dev->lock);
    uint8_t status = d->dev->status;
    pthread_mutex_unlock(&d->dev->lock);
    return status;
}

static void bring_up(struct driver *d, uint8_t setup)
{
    memset(host(DESC_GPA), 0, 0x1000);
    d->avail_idx = d->used_idx = 0;
    uint64_t wanted =
        VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) |
        VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
        (setup & 2 ? VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX) : 0) |
        (setup & 4 ? 0 : ~0ull << 32 >> 32); /* FLUSH, WCE, ... */
    vdrv_accept_features(d->dev, wanted);
    pthread_mutex_lock(&d->dev->lock);
    uint8_t wce = setup >> 3 & 3; /* 0, 1, or values to ignore */
    vmdev_virtio_write_config(d->dev, 32, &wce, 1);
    struct vmdev_virtqueue_config *q = &d->dev->queues[0].config;
    q->size = QUEUE_SIZE;
    q->desc_addr = DESC_GPA;
    q->driver_addr = AVAIL_GPA;
    q->device_addr = USED_GPA;
    q->ready = true;
    vmdev_virtio_set_status(d->dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                        VMDEV_VIRTIO_STATUS_DRIVER |
                                        VMDEV_VIRTIO_STATUS_FEATURES_OK |
                                        VMDEV_VIRTIO_STATUS_DRIVER_OK);
    pthread_mutex_unlock(&d->dev->lock);
}

/* Take the used elements there are; each names a request of the batch
 * not used before. */
static void take_used(struct driver *d, struct request *rs, unsigned n)
{
    uint16_t idx;
    memcpy(&idx, host(USED_GPA + 2), 2);
    for (; d->used_idx != idx; d->used_idx++) {
        uint64_t elem = USED_GPA + 4 + 8ull * (d->used_idx % QUEUE_SIZE);
        uint32_t id, len;
        memcpy(&id, host(elem), 4);
        memcpy(&len, host(elem + 4), 4);
        unsigned i = 0;
        while (i < n && (rs[i].head != id || rs[i].used))
            i++;
        if (i == n) {
            fprintf(stderr, "virtio_blk_qcow2 fuzz: used element for head "
                    "%u, which no request in flight has\n", id);
            abort();
        }
        rs[i].used = true;
        rs[i].used_len = len;
    }
}

/* One batch: published, notified once, waited for. false once the
 * device needs a reset (the input ends there). */
static bool run_batch(struct driver *d, struct input *in)
{
    struct request rs[MAX_BATCH];
    unsigned n = 0, next_desc = 0;
    uint64_t data = DATA_GPA;
    unsigned count = 1 + take8(in) % MAX_BATCH;
    bool hostile = false;
    for (; n < count && in->left; n++) {
        bool indirect, share;
        unsigned misalign;
        describe(in, &rs[n], &indirect, &misalign, &share);
        if (!publish(d, &rs[n], n, &next_desc, &data, indirect, misalign,
                     share))
            break;
        rs[n].expected = expected_status(&rs[n]);
        hostile |= rs[n].expected < 0;
    }
    if (!n)
        return true;
    /* What the driver wrote is not the device's doing. */
    memcpy(ram_before, ram, RAM_SIZE);
    vmdev_virtio_queue_kick(d->dev, 0);
    unsigned used = 0;
    for (;;) {
        take_used(d, rs, n);
        used = 0;
        for (unsigned i = 0; i < n; i++)
            used += rs[i].used;
        if (used == n ||
            device_status(d) & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET)
            break;
        /* The watchdog ends a batch that never completes. */
        if (vmdev_event_loop_run_once(loop, 1000) < 0)
            abort();
    }
    bool needs_reset =
        device_status(d) & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if (hostile != needs_reset || (!needs_reset && used != n)) {
        fprintf(stderr, "virtio_blk_qcow2 fuzz: %u of %u requests used, "
                "device %s, a hostile chain %s\n", used, n,
                needs_reset ? "needs a reset" : "running",
                hostile ? "among them" : "not among them");
        abort();
    }
    uint64_t bad;
    if (!ram_changed_only_where_allowed(rs, n, &bad)) {
        fprintf(stderr, "virtio_blk_qcow2 fuzz: guest RAM at 0x%llx changed, "
                "outside the used ring and the writable buffers\n",
                (unsigned long long)bad);
        abort();
    }
    /* Statuses, then reads against the shadow as it was, then the
     * shadow moves on by the writes. */
    for (unsigned i = 0; i < n; i++) {
        struct request *r = &rs[i];
        if (!r->used)
            continue;
        if (r->expected < 0) {
            fprintf(stderr, "virtio_blk_qcow2 fuzz: hostile request %u was "
                    "used\n", i);
            abort();
        }
        const struct range *last = &r->writable[r->num_writable - 1];
        uint8_t status = *host(last->gpa + last->len - 1);
        uint32_t want_len = r->expected == S_OK && r->type == T_IN
                                ? (uint32_t)(r->segs * r->seg_len) + 1
                            : r->expected == S_OK && r->type == T_GET_ID ? 21
                                                                         : 1;
        if (status != r->expected || r->used_len != want_len) {
            fprintf(stderr, "virtio_blk_qcow2 fuzz: request %u (type %u, "
                    "sector %llu, %u x %llu bytes%s, alignment %llu) got "
                    "status %u, used length %u; expected %d, %u\n", i,
                    r->type, (unsigned long long)r->sector, r->segs,
                    (unsigned long long)r->seg_len,
                    r->aliased ? " aliased" : "",
                    (unsigned long long)alignment, status, r->used_len,
                    r->expected, want_len);
            abort();
        }
        bool alone = true;
        for (unsigned k = 0; k < n && alone; k++)
            alone = k == i || !changes_disk(&rs[k]) || !overlaps(r, &rs[k]);
        if (r->type != T_IN || status != S_OK || r->aliased || !alone)
            continue;
        for (unsigned s = 0; s < r->segs; s++)
            if (!read_matches(host(r->seg_gpa[s]), r->sector * 512 + s * r->seg_len,
                              r->seg_len, &bad)) {
                fprintf(stderr, "virtio_blk_qcow2 fuzz: byte %llu of the disk "
                        "read 0x%02x, written 0x%02x\n",
                        (unsigned long long)bad,
                        *host(r->seg_gpa[s] + bad - r->sector * 512 -
                              s * r->seg_len),
                        shadow[bad]);
                abort();
            }
    }
    for (unsigned i = 0; i < n; i++) {
        struct request *r = &rs[i];
        uint64_t from, to;
        if (!changes_disk(r) || !disk_range(r, &from, &to))
            continue;
        bool alone = true;
        for (unsigned k = 0; k < n && alone; k++)
            alone = k == i || !changes_disk(&rs[k]) || !overlaps(r, &rs[k]);
        if (!r->used || !alone)
            forget(from, to); /* may or may not have happened, in any order */
        else if (r->expected == S_OK)
            apply_to_shadow(d, r);
    }
    return !needs_reset;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop)
        set_up_once();
    struct input in = { data, size };
    uint8_t setup = take8(&in);
    bool direct = setup & 1 && direct_ok;
    bool with_backing = setup & 0x20;
    unsigned where = direct ? 1 : 0;
    uint64_t backing_len;
    qcow2_rig_arm(&rig, true);
    big_bytes_left = BIG_BYTES_PER_INPUT;
    memset(ram, 0, sizeof(ram));
    if (!build_disk(&in, where, with_backing, &backing_len)) {
        qcow2_rig_arm(&rig, false);
        return 0;
    }
    struct vmdev_block_options o = {
        .path = image_path[where], .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = direct ? VMDEV_BLOCK_CACHE_NONE
                 : setup & 0x40 ? VMDEV_BLOCK_CACHE_WRITETHROUGH
                                : VMDEV_BLOCK_CACHE_WRITEBACK,
    };
    char why[512] = "";
    struct vmdev_virtio_blk_config cfg = {
        .block = vmdev_block_new(&o, why, sizeof(why)),
        .num_queues = 1, .queue_size = QUEUE_SIZE, .discard = true,
        .engine = VMDEV_IO_ENGINE_AUTO,
    };
    if (!cfg.block) {
        fprintf(stderr, "virtio_blk_qcow2 fuzz: the built image does not "
                "open: %s\n", why);
        abort();
    }
    alignment = vmdev_block_alignment(cfg.block);
    struct driver d = { .cluster_size = qcow2_rig_cluster_size(o.path) };
    d.blk = vmdev_virtio_blk_new("fuzz-blk-qcow2", mem, &cfg);
    if (!d.blk)
        abort();
    d.dev = vmdev_virtio_blk_device(d.blk);
    if (vmdev_virtio_attach_queue(d.dev, 0, loop))
        abort();
    bring_up(&d, setup);
    for (unsigned b = 0; b < MAX_BATCHES && in.left; b++)
        if (!run_batch(&d, &in))
            break;
    struct vmdev_virtio_blk_stats stats = vmdev_virtio_blk_stats(d.blk);
    if (stats.data_in_flight_peak > VMDEV_VIRTIO_BLK_DATA_BUDGET) {
        fprintf(stderr, "virtio_blk_qcow2 fuzz: %llu bytes of data in flight, "
                "past the budget\n",
                (unsigned long long)stats.data_in_flight_peak);
        abort();
    }
    set_status(&d, 0);
    vmdev_virtio_detach_queue(d.dev, 0);
    vmdev_virtio_blk_free(d.blk);
    qcow2_rig_arm(&rig, false);
    return 0;
}
