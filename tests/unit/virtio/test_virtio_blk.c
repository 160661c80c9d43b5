/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image, with requests built the
 * way Linux's virtio_blk builds them (header, data, status byte) and
 * completions reaped by an event loop run by hand, as an I/O thread does.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_blk.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (16u << 20)
#define IMAGE_SECTORS 8192 /* 4 MiB */
#define MAX_QUEUES 2

/* Feature bits and request types (5.2.3, 5.2.6). */
#define F_SIZE_MAX 1
#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_TOPOLOGY 10
#define F_CONFIG_WCE 11
#define F_MQ 12
#define F_DISCARD 13
#define F_WRITE_ZEROES 14
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

/* virtio_blk_config offsets (5.2.4). */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20
#define CFG_PHYSICAL_BLOCK_EXP 24
#define CFG_MIN_IO_SIZE 26
#define CFG_WRITEBACK 32
#define CFG_NUM_QUEUES 34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_DISCARD_ALIGNMENT 44
#define CFG_WRITE_ZEROES_MAY_UNMAP 56

static struct vdrv_mem mem;
static struct vdrv_queue queues[MAX_QUEUES];
static char image[64];
static struct vmdev_virtio_blk *blk;
static struct vmdev_virtio_device *dev;
static struct vmdev_event_loop *loop;
static enum vmdev_io_engine_kind engine_kind = VMDEV_IO_ENGINE_AUTO;

struct setup {
    bool readonly, discard;
    uint16_t num_queues, queue_size;
    enum vmdev_block_cache cache;
    const char *serial;
    unsigned ram_regions; /* 0: 2 */
    uint64_t image_bytes; /* 0: IMAGE_SECTORS; more is a sparse tail */
};

static void make_image(void)
{
    snprintf(image, sizeof(image), "vmdev-blk-XXXXXX");
    int fd = mkstemp(image);
    if (fd < 0)
        abort();
    uint8_t sector[512];
    for (unsigned s = 0; s < IMAGE_SECTORS; s++) {
        memset(sector, (uint8_t)s, sizeof(sector));
        memcpy(sector, &s, sizeof(s));
        if (write(fd, sector, sizeof(sector)) != (ssize_t)sizeof(sector))
            abort();
    }
    close(fd);
}

static struct vmdev_block *open_image(const struct setup *s)
{
    struct vmdev_block_options o = {
        .path = image, .format = VMDEV_BLOCK_FORMAT_RAW, .cache = s->cache,
        .readonly = s->readonly,
    };
    return vmdev_block_new(&o, NULL, 0);
}

/* A device on a fresh image, negotiated, its queues attached and live. */
static void start_with(const struct setup *s)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE,
                      s->ram_regions ? s->ram_regions : 2))
        abort();
    make_image();
    if (s->image_bytes && truncate(image, (off_t)s->image_bytes))
        abort();
    struct vmdev_virtio_blk_config cfg = {
        .block = open_image(s), .serial = s->serial,
        .num_queues = s->num_queues, .queue_size = s->queue_size,
        .discard = s->discard, .engine = engine_kind,
    };
    if (!cfg.block || !(blk = vmdev_virtio_blk_new("blk0", mem.mem, &cfg)))
        abort();
    dev = vmdev_virtio_blk_device(blk);
    loop = vmdev_event_loop_new();
    for (uint16_t i = 0; i < dev->num_queues; i++)
        if (!loop || vmdev_virtio_attach_queue(dev, i, loop))
            abort();
    vdrv_accept_all_features(dev);
    for (uint16_t i = 0; i < dev->num_queues; i++) {
        vdrv_queue_init(&queues[i], &mem, dev->queues[i].config.max_size, true);
        vdrv_queue_config(&queues[i], &dev->queues[i].config);
    }
    vmdev_virtio_set_status(dev, 0xf);
}

static void start(void)
{
    start_with(&(struct setup){ .serial = "serial-1234" });
}

static void stop(void)
{
    for (uint16_t i = 0; i < dev->num_queues; i++)
        vmdev_virtio_detach_queue(dev, i);
    vmdev_virtio_blk_free(blk);
    vmdev_event_loop_free(loop);
    unlink(image);
}

struct req {
    unsigned queue;
    uint64_t header, data, status;
    int head;
    uint32_t used;
};

/*
 * Make a request available and notify: the header, out_len bytes of
 * device-readable data (from out, or 0xa5 bytes), in_len bytes of
 * device-writable data, then the status byte; data in `pieces`
 * descriptors.
 */
static void post(struct req *r, unsigned queue, uint32_t type, uint64_t sector,
                 const void *out, uint32_t out_len, uint32_t in_len,
                 unsigned pieces, bool indirect)
{
    uint8_t h[16] = { 0 };
    uint32_t t = htole32(type);
    uint64_t s = htole64(sector);
    memcpy(h, &t, 4);
    memcpy(h + 8, &s, 8);
    r->queue = queue;
    r->header = vdrv_alloc(&mem, 16, 8);
    vdrv_write(&mem, r->header, h, 16);
    r->status = vdrv_alloc(&mem, 1, 1);
    *(uint8_t *)vdrv_host(&mem, r->status) = 0xff;
    struct vdrv_buf o[18] = { { r->header, 16 } }, in[18];
    unsigned n_out = 1, n_in = 0;
    uint32_t len = out_len ? out_len : in_len;
    if (len) {
        r->data = vdrv_alloc(&mem, len, 512);
        if (out)
            vdrv_write(&mem, r->data, out, out_len);
        else
            memset(vdrv_host(&mem, r->data), out_len ? 0xa5 : 0, len);
        for (unsigned i = 0; i < pieces; i++) {
            uint32_t piece = len / pieces;
            struct vdrv_buf b = { r->data + i * piece,
                                  i + 1 == pieces ? len - i * piece : piece };
            if (out_len)
                o[n_out++] = b;
            else
                in[n_in++] = b;
        }
    }
    in[n_in++] = (struct vdrv_buf){ r->status, 1 };
    r->head = vdrv_add(&queues[queue], o, n_out, in, n_in, indirect);
    if (r->head < 0)
        abort();
    vdrv_notify(dev, (uint16_t)queue);
}

/* Run the I/O thread's loop until queue has a used element; false when
 * nothing comes within seconds (a hang is a failure, not a wait). */
static bool reap(unsigned queue, uint32_t *id, uint32_t *len)
{
    for (int i = 0; i < 50; i++) {
        if (vdrv_get_used(&queues[queue], id, len))
            return true;
        vmdev_event_loop_run_once(loop, 100);
    }
    return vdrv_get_used(&queues[queue], id, len);
}

/* A read of sector into the given data buffers, one descriptor each
 * (through an indirect table when asked), then the status byte. */
static void post_read(struct req *r, uint64_t sector,
                      const struct vdrv_buf *data, unsigned n, bool indirect)
{
    static struct vdrv_buf in[VMDEV_VQ_MAX_SEGMENTS];
    uint8_t h[16] = { 0 };
    uint64_t s = htole64(sector);
    memcpy(h + 8, &s, 8); /* type 0: T_IN */
    r->queue = 0;
    r->header = vdrv_alloc(&mem, 16, 8);
    vdrv_write(&mem, r->header, h, 16);
    r->status = vdrv_alloc(&mem, 1, 1);
    *(uint8_t *)vdrv_host(&mem, r->status) = 0xff;
    r->data = data[0].gpa;
    memcpy(in, data, n * sizeof(*data));
    in[n] = (struct vdrv_buf){ r->status, 1 };
    r->head = vdrv_add(&queues[0], &(struct vdrv_buf){ r->header, 16 }, 1,
                       in, n + 1, indirect);
    if (r->head < 0)
        abort();
    vdrv_notify(dev, 0);
}

static bool finish(struct req *r)
{
    uint32_t id;
    return reap(r->queue, &id, &r->used) && id == (uint32_t)r->head;
}

/* One request, start to finish. */
static bool submit(struct req *r, uint32_t type, uint64_t sector,
                   uint32_t out_len, uint32_t in_len, unsigned pieces,
                   bool indirect)
{
    post(r, 0, type, sector, NULL, out_len, in_len, pieces, indirect);
    return finish(r);
}

static bool submit_range(struct req *r, uint32_t type, uint64_t sector,
                         uint32_t num_sectors, uint32_t flags)
{
    uint8_t range[16];
    uint64_t s = htole64(sector);
    uint32_t n = htole32(num_sectors), f = htole32(flags);
    memcpy(range, &s, 8);
    memcpy(range + 8, &n, 4);
    memcpy(range + 12, &f, 4);
    post(r, 0, type, 0, range, sizeof(range), 0, 1, false);
    return finish(r);
}

static uint8_t status_of(const struct req *r)
{
    return *(uint8_t *)vdrv_host(&mem, r->status);
}

static bool sector_matches_image(uint64_t gpa, unsigned sector)
{
    uint8_t buf[512];
    vdrv_read(&mem, gpa, buf, sizeof(buf));
    unsigned stored;
    memcpy(&stored, buf, sizeof(stored));
    return stored == sector && buf[100] == (uint8_t)sector;
}

static uint64_t config(uint32_t offset, uint32_t len)
{
    uint64_t v = 0;
    vmdev_virtio_read_config(dev, offset, &v, len);
    return le64toh(v);
}

static bool file_bytes_are(uint64_t offset, uint32_t len, uint8_t value)
{
    uint8_t buf[4096];
    int fd = open(image, O_RDONLY);
    bool same = len <= sizeof(buf) &&
                pread(fd, buf, len, (off_t)offset) == (ssize_t)len;
    close(fd);
    for (uint32_t i = 0; same && i < len; i++)
        same = buf[i] == value;
    return same;
}

static uint64_t allocated_bytes(void)
{
    struct stat st;
    return stat(image, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

static void config_reports_geometry_and_limits(void)
{
    start();
    CHECK_EQ(config(CFG_CAPACITY, 8), IMAGE_SECTORS);
    CHECK_EQ(config(CFG_SEG_MAX, 4), 254);
    CHECK_EQ(config(CFG_SIZE_MAX, 4), 1u << 20);
    CHECK_EQ(config(CFG_BLK_SIZE, 4), 512);
    /* 4 KiB physical blocks: 8 logical ones. */
    CHECK_EQ(config(CFG_PHYSICAL_BLOCK_EXP, 1), 3);
    CHECK_EQ(config(CFG_MIN_IO_SIZE, 2), 8);
    CHECK_EQ(config(CFG_WRITEBACK, 1), 1);
    CHECK_EQ(config(CFG_NUM_QUEUES, 2), 1);
    CHECK_EQ(config(CFG_MAX_DISCARD_SEG, 4), 1);
    CHECK_EQ(config(CFG_DISCARD_ALIGNMENT, 4), 8);
    CHECK_EQ(config(CFG_WRITE_ZEROES_MAY_UNMAP, 1), 0);
    static const unsigned offered[] = { F_SIZE_MAX, F_SEG_MAX, F_BLK_SIZE,
                                        F_FLUSH, F_TOPOLOGY, F_CONFIG_WCE,
                                        F_WRITE_ZEROES };
    for (unsigned i = 0; i < sizeof(offered) / sizeof(offered[0]); i++)
        CHECK(vmdev_virtio_has_feature(dev, offered[i]));
    /* Without discard=on, one queue, writable. */
    CHECK(!vmdev_virtio_has_feature(dev, F_DISCARD));
    CHECK(!vmdev_virtio_has_feature(dev, F_MQ));
    CHECK(!vmdev_virtio_has_feature(dev, F_RO));
    stop();
}

static void reads_sectors_into_scattered_buffers(void)
{
    start();
    struct req r;
    CHECK(submit(&r, T_IN, 10, 0, 8 * 512, 3, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(r.used, 8 * 512 + 1);
    for (unsigned i = 0; i < 8; i++)
        CHECK(sector_matches_image(r.data + 512 * i, 10 + i));
    CHECK(submit(&r, T_IN, IMAGE_SECTORS - 1, 0, 512, 1, true));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(r.data, IMAGE_SECTORS - 1));
    stop();
}

static void writes_reach_the_file(void)
{
    start();
    struct req r;
    CHECK(submit(&r, T_OUT, 100, 1024, 0, 2, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(r.used, 1);
    CHECK(submit(&r, T_FLUSH, 0, 0, 0, 0, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(file_bytes_are(100 * 512, 1024, 0xa5));
    /* The neighbours are untouched. */
    CHECK(!file_bytes_are(99 * 512, 512, 0xa5));
    CHECK(!file_bytes_are(102 * 512, 512, 0xa5));
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).flushes, 1);
    stop();
}

/* A whole ring of requests with one notification: every one completes,
 * each with its own data, whatever order the engine finishes them in. */
static void a_full_ring_completes(void)
{
    start();
    static struct req r[128];
    for (unsigned i = 0; i < 128; i++) {
        r[i].queue = 0;
        post(&r[i], 0, T_IN, 16 * i, NULL, 0, 4096, 1, i % 2);
    }
    unsigned done = 0;
    uint32_t id, len;
    while (done < 128 && reap(0, &id, &len)) {
        CHECK_EQ(len, 4097);
        done++;
    }
    CHECK_EQ(done, 128);
    for (unsigned i = 0; i < 128; i++) {
        CHECK_EQ(status_of(&r[i]), S_OK);
        CHECK(sector_matches_image(r[i].data, 16 * i));
        CHECK(sector_matches_image(r[i].data + 3584, 16 * i + 7));
    }
    stop();
}

static void get_id_returns_the_serial(void)
{
    start();
    struct req r;
    CHECK(submit(&r, T_GET_ID, 0, 0, 20, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(r.used, 21);
    char id[20];
    vdrv_read(&mem, r.data, id, 20);
    CHECK(memcmp(id, "serial-1234\0", 12) == 0);
    stop();
    /* 5.2.6: a 20-character serial fills the id, no NUL. */
    start_with(&(struct setup){ .serial = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" });
    CHECK(submit(&r, T_GET_ID, 0, 0, 20, 1, false));
    vdrv_read(&mem, r.data, id, 20);
    CHECK(memcmp(id, "ABCDEFGHIJKLMNOPQRST", 20) == 0);
    stop();
}

static void bad_requests_get_an_error_status(void)
{
    start();
    struct req r;
    CHECK(submit(&r, T_IN, IMAGE_SECTORS, 0, 512, 1, false)); /* past end */
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK_EQ(r.used, 1);
    CHECK(submit(&r, T_IN, IMAGE_SECTORS - 1, 0, 1024, 1, false));
    CHECK_EQ(status_of(&r), S_IOERR); /* straddles the end */
    CHECK(submit(&r, T_IN, UINT64_MAX, 0, 512, 1, false)); /* overflows */
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(submit(&r, T_OUT, UINT64_MAX / 512, 512, 0, 1, false));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(submit(&r, T_IN, 0, 0, 100, 1, false)); /* not whole sectors */
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(submit(&r, T_IN, 0, 0, 0, 0, false)); /* no data at all */
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(submit(&r, 77, 0, 0, 0, 0, false)); /* unknown type */
    CHECK_EQ(status_of(&r), S_UNSUPP);
    struct vmdev_virtio_blk_stats st = vmdev_virtio_blk_stats(blk);
    CHECK_EQ(st.io_errors, 6);
    CHECK_EQ(st.unsupported, 1);
    /* None of this is a fault of the transport: the device still runs. */
    CHECK(vmdev_virtio_is_running(dev));
    stop();
}

/* The image shrinks under the device: a read past the file's new end
 * fails on the host, and the guest hears IOERR. */
static void a_failing_image_gives_ioerr(void)
{
    start();
    CHECK_EQ(truncate(image, 512 * 100), 0);
    struct req r;
    CHECK(submit(&r, T_IN, 200, 0, 512, 1, false));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(submit(&r, T_IN, 50, 0, 512, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(vmdev_virtio_is_running(dev));
    stop();
}

static void readonly_refuses_writes(void)
{
    start_with(&(struct setup){ .readonly = true });
    CHECK(vmdev_virtio_has_feature(dev, F_RO));
    CHECK(!vmdev_virtio_has_feature(dev, F_WRITE_ZEROES));
    CHECK(!vmdev_virtio_has_feature(dev, F_DISCARD));
    struct req r;
    CHECK(submit(&r, T_OUT, 0, 512, 0, 1, false));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK(!file_bytes_are(100, 1, 0xa5));
    CHECK(submit_range(&r, T_WRITE_ZEROES, 0, 8, 0));
    CHECK_EQ(status_of(&r), S_UNSUPP);
    CHECK(submit(&r, T_FLUSH, 0, 0, 0, 0, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(submit(&r, T_IN, 5, 0, 512, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(r.data, 5));
    stop();
}

/* discard=on: a discard punches a hole the guest reads back as zeroes. */
static void discard_releases_space(void)
{
    start_with(&(struct setup){ .discard = true });
    CHECK(vmdev_virtio_has_feature(dev, F_DISCARD));
    CHECK_EQ(config(CFG_WRITE_ZEROES_MAY_UNMAP, 1), 1);
    CHECK_EQ(config(CFG_MAX_DISCARD_SECTORS, 4), 1u << 21);
    uint64_t before = allocated_bytes();
    struct req r;
    CHECK(submit_range(&r, T_DISCARD, 1024, 2048, 0)); /* 1 MiB */
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(allocated_bytes() + (1u << 20) <= before);
    CHECK(file_bytes_are(1024 * 512, 4096, 0));
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).discards, 1);
    /* Write-zeroes with unmap also lets the hole be punched. */
    before = allocated_bytes();
    CHECK(submit_range(&r, T_WRITE_ZEROES, 4096, 2048, 1));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(allocated_bytes() + (1u << 20) <= before);
    CHECK(file_bytes_are(4096 * 512, 4096, 0));
    stop();
}

static void write_zeroes_zeroes(void)
{
    start();
    struct req r;
    CHECK(submit_range(&r, T_WRITE_ZEROES, 300, 8, 0));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(file_bytes_are(300 * 512, 4096, 0));
    CHECK(!file_bytes_are(308 * 512, 512, 0));
    /* Without discard=on, unmap is accepted but not honoured: zeroes. */
    CHECK(submit_range(&r, T_WRITE_ZEROES, 400, 8, 1));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(file_bytes_are(400 * 512, 4096, 0));
    /* No sectors: nothing to do, done. */
    CHECK(submit_range(&r, T_WRITE_ZEROES, 0, 0, 0));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).write_zeroes, 2);
    stop();
}

/* 5.2.6.2: what the device must refuse in discard and write-zeroes. */
static void malformed_ranges_are_refused(void)
{
    start_with(&(struct setup){ .discard = true });
    struct req r;
    CHECK(submit_range(&r, T_DISCARD, 0, 8, 1)); /* unmap on a discard */
    CHECK_EQ(status_of(&r), S_UNSUPP);
    CHECK(submit_range(&r, T_WRITE_ZEROES, 0, 8, 2)); /* unknown flag */
    CHECK_EQ(status_of(&r), S_UNSUPP);
    CHECK(submit_range(&r, T_DISCARD, IMAGE_SECTORS - 4, 8, 0));
    CHECK_EQ(status_of(&r), S_IOERR); /* past the end */
    CHECK(submit_range(&r, T_DISCARD, 0, (1u << 21) + 1, 0));
    CHECK_EQ(status_of(&r), S_IOERR); /* above max_discard_sectors */
    CHECK(submit_range(&r, T_DISCARD, UINT64_MAX, 8, 0));
    CHECK_EQ(status_of(&r), S_IOERR);
    /* Two ranges where max_discard_seg is 1, and half a range. */
    uint8_t two[32] = { 0 };
    post(&r, 0, T_DISCARD, 0, two, sizeof(two), 0, 1, false);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_UNSUPP);
    post(&r, 0, T_WRITE_ZEROES, 0, two, 8, 0, 1, false);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_UNSUPP);
    CHECK(vmdev_virtio_is_running(dev));
    CHECK(file_bytes_are(IMAGE_SECTORS * 512ull - 512, 1,
                         (uint8_t)(IMAGE_SECTORS - 1)));
    stop();
    /* Without discard=on, a discard is not supported. */
    start();
    CHECK(submit_range(&r, T_DISCARD, 0, 8, 0));
    CHECK_EQ(status_of(&r), S_UNSUPP);
    stop();
}

/* CONFIG_WCE: writing writeback 0 makes every write flushed before it
 * completes; a reset brings back the configured mode. */
static void the_guest_switches_writethrough(void)
{
    start();
    struct vmdev_block *b = vmdev_virtio_blk_block(blk);
    struct req r;
    uint8_t off = 0, on = 1, bogus = 7;
    vmdev_virtio_write_config(dev, CFG_WRITEBACK, &off, 1);
    CHECK_EQ(config(CFG_WRITEBACK, 1), 0);
    CHECK(submit(&r, T_OUT, 8, 4096, 0, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(vmdev_block_stats(b).flushes, 1);
    vmdev_virtio_write_config(dev, CFG_WRITEBACK, &bogus, 1); /* ignored */
    CHECK_EQ(config(CFG_WRITEBACK, 1), 0);
    vmdev_virtio_write_config(dev, CFG_WRITEBACK, &on, 1);
    CHECK_EQ(config(CFG_WRITEBACK, 1), 1);
    CHECK(submit(&r, T_OUT, 16, 4096, 0, 1, false));
    CHECK_EQ(vmdev_block_stats(b).flushes, 1);
    vmdev_virtio_write_config(dev, CFG_WRITEBACK, &off, 1);
    vmdev_virtio_set_status(dev, 0);
    CHECK_EQ(config(CFG_WRITEBACK, 1), 1);
    /* A driver without FLUSH gets writethrough (5.2.5). */
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER);
    vmdev_virtio_set_driver_features(dev, 0, 0);
    vmdev_virtio_set_driver_features(dev, 1, 1); /* VERSION_1 */
    vmdev_virtio_set_status(dev, VMDEV_VIRTIO_STATUS_ACKNOWLEDGE |
                                     VMDEV_VIRTIO_STATUS_DRIVER |
                                     VMDEV_VIRTIO_STATUS_FEATURES_OK);
    CHECK_EQ(config(CFG_WRITEBACK, 1), 0);
    vdrv_queue_init(&queues[0], &mem, 256, false);
    vdrv_queue_config(&queues[0], &dev->queues[0].config);
    vmdev_virtio_set_status(dev, 0xf);
    CHECK(submit(&r, T_OUT, 24, 4096, 0, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK_EQ(vmdev_block_stats(b).flushes, 2);
    stop();
}

/* Two queues, each with its own engine, busy at once. */
static void two_queues_serve_at_once(void)
{
    start_with(&(struct setup){ .num_queues = 2 });
    CHECK(vmdev_virtio_has_feature(dev, F_MQ));
    CHECK_EQ(config(CFG_NUM_QUEUES, 2), 2);
    struct req a[8], b[8];
    for (unsigned i = 0; i < 8; i++) {
        post(&a[i], 0, T_IN, i, NULL, 0, 512, 1, false);
        post(&b[i], 1, T_OUT, 1000 + i, NULL, 512, 0, 1, false);
    }
    uint32_t id, len;
    unsigned done[2] = { 0, 0 };
    for (unsigned q = 0; q < 2; q++)
        while (done[q] < 8 && reap(q, &id, &len))
            done[q]++;
    CHECK_EQ(done[0], 8);
    CHECK_EQ(done[1], 8);
    for (unsigned i = 0; i < 8; i++) {
        CHECK_EQ(status_of(&a[i]), S_OK);
        CHECK(sector_matches_image(a[i].data, i));
        CHECK_EQ(status_of(&b[i]), S_OK);
    }
    CHECK(file_bytes_are(1000 * 512, 4096, 0xa5));
    CHECK_EQ(vmdev_virtio_blk_queue_requests(blk, 0), 8);
    CHECK_EQ(vmdev_virtio_blk_queue_requests(blk, 1), 8);
    CHECK_EQ(vmdev_virtio_blk_queue_requests(blk, 2), 0);
    stop();
}

/* A read on queue 1, start to finish, on a thread of its own. */
struct queue_one_read {
    struct req r;
    bool ok;
    bool finished;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void *read_on_queue_one(void *opaque)
{
    struct queue_one_read *q = opaque;
    post(&q->r, 1, T_IN, 5, NULL, 0, 512, 1, false);
    bool ok = finish(&q->r);
    pthread_mutex_lock(&q->lock);
    q->ok = ok;
    q->finished = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/*
 * Each queue is served under its own lock, and neither a kick nor a
 * completion takes the device's: with dev->lock held (a vCPU in a
 * register access) and queue 0's lock held (its I/O thread busy), a read
 * on queue 1 is served and completed. Ten seconds is a hang, not a wait.
 */
static void a_queue_runs_while_the_device_and_its_other_queues_are_busy(void)
{
    start_with(&(struct setup){ .num_queues = 2 });
    static struct queue_one_read q;
    q = (struct queue_one_read){ .ok = false };
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.cond, NULL);
    pthread_mutex_lock(&dev->lock);
    vmdev_virtio_queue_lock(dev, 0);
    pthread_t thread;
    CHECK_EQ(pthread_create(&thread, NULL, read_on_queue_one, &q), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&q.lock);
    while (!q.finished &&
           pthread_cond_timedwait(&q.cond, &q.lock, &deadline) == 0)
        ;
    bool finished_while_held = q.finished;
    pthread_mutex_unlock(&q.lock);
    vmdev_virtio_queue_unlock(dev, 0);
    pthread_mutex_unlock(&dev->lock);
    CHECK_EQ(pthread_join(thread, NULL), 0);
    CHECK(finished_while_held);
    CHECK(q.ok);
    CHECK_EQ(status_of(&q.r), S_OK);
    CHECK(sector_matches_image(q.r.data, 5));
    CHECK_EQ(vmdev_virtio_blk_queue_requests(blk, 1), 1);
    pthread_cond_destroy(&q.cond);
    pthread_mutex_destroy(&q.lock);
    stop();
}

/*
 * A driver may make a chain available again as soon as the device took
 * it, so more chains can be outstanding than the device has request
 * slots. The device takes what its pool holds and the rest when slots
 * free up: it neither grows nor stalls.
 */
static void more_chains_than_slots_wait_their_turn(void)
{
    start_with(&(struct setup){ .queue_size = 4 });
    struct req r;
    post(&r, 0, T_IN, 3, NULL, 0, 512, 1, false);
    uint32_t id, len;
    CHECK(reap(0, &id, &len));
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 4; i++)
            vdrv_publish(&queues[0], (uint16_t)r.head);
        vdrv_notify(dev, 0);
    }
    unsigned done = 0;
    while (done < 8 && reap(0, &id, &len)) {
        CHECK_EQ(id, (uint32_t)r.head);
        done++;
    }
    CHECK_EQ(done, 8);
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).reads, 9);
    CHECK(vmdev_virtio_is_running(dev));
    stop();
}

/* A reset with requests in flight: they finish, but their chains do not
 * land in the rings set up after the reset. */
static void a_reset_drops_requests_in_flight(void)
{
    start();
    struct req r;
    post(&r, 0, T_IN, 7, NULL, 0, 512, 1, false);
    vmdev_virtio_set_status(dev, 0);
    vdrv_accept_all_features(dev);
    vdrv_queue_init(&queues[0], &mem, 256, true);
    vdrv_queue_config(&queues[0], &dev->queues[0].config);
    vmdev_virtio_set_status(dev, 0xf);
    /* The read finishes on the host... */
    struct vmdev_block *b = vmdev_virtio_blk_block(blk);
    for (int i = 0; i < 50 && vmdev_block_stats(b).reads == 0; i++)
        vmdev_event_loop_run_once(loop, 100);
    CHECK_EQ(vmdev_block_stats(b).reads, 1);
    /* ...and is not returned to the new ring. */
    uint32_t id, len;
    CHECK(!vdrv_get_used(&queues[0], &id, &len));
    CHECK(submit(&r, T_IN, 9, 0, 512, 1, false));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(r.data, 9));
    stop();
}

/* n descriptors of len bytes each, all over the same guest buffer. */
static unsigned aliases_of(struct vdrv_buf *data, uint64_t gpa, uint32_t len,
                           unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        data[i] = (struct vdrv_buf){ gpa, len };
    return n;
}

/*
 * 5.2.4 and 5.2.6.1: with SIZE_MAX no data descriptor holds more than
 * size_max. cache=none and a misaligned buffer, so that serving it would
 * have copied it through a bounce buffer: refused, nothing is read and
 * nothing bounced. A descriptor of exactly size_max is served.
 */
static void a_segment_past_size_max_is_refused_before_any_copy(void)
{
    start_with(&(struct setup){ .cache = VMDEV_BLOCK_CACHE_NONE });
    struct vmdev_block *b = vmdev_virtio_blk_block(blk);
    uint32_t size_max = (uint32_t)config(CFG_SIZE_MAX, 4);
    uint64_t misaligned = vdrv_alloc(&mem, size_max + 8192, 4096) + 8;
    struct req r;
    post_read(&r, 0, &(struct vdrv_buf){ misaligned, size_max }, 1, false);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(misaligned + 512 * 9, 9));
    CHECK_EQ(vmdev_block_stats(b).bounced, 1);
    /* 4 KiB more: whole blocks for O_DIRECT, one descriptor too large. */
    post_read(&r, 0, &(struct vdrv_buf){ misaligned, size_max + 4096 }, 1,
              false);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK_EQ(r.used, 1);
    struct vmdev_block_stats st = vmdev_block_stats(b);
    CHECK_EQ(st.reads, 1);
    CHECK_EQ(st.bounced, 1);
    CHECK_EQ(vmdev_virtio_blk_stats(blk).io_errors, 1);
    CHECK(vmdev_virtio_is_running(dev));
    stop();
}

/* 5.2.4 and 5.2.6.1: with SEG_MAX no more than seg_max data descriptors;
 * Linux's largest request (seg_max of them) is served. */
static void more_segments_than_seg_max_are_refused(void)
{
    start();
    uint32_t seg_max = (uint32_t)config(CFG_SEG_MAX, 4);
    uint64_t buf = vdrv_alloc(&mem, 512ull * (seg_max + 1), 4096);
    static struct vdrv_buf data[VMDEV_VQ_MAX_SEGMENTS];
    for (unsigned i = 0; i <= seg_max; i++)
        data[i] = (struct vdrv_buf){ buf + 512 * i, 512 };
    struct req r;
    post_read(&r, 0, data, seg_max, true);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(buf + 512 * (seg_max - 1), seg_max - 1));
    post_read(&r, 0, data, seg_max + 1, true);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).reads, 1);
    stop();
}

/* A descriptor whose buffer crosses from one RAM region into the next
 * maps to two host segments but is one segment of the request: seg_max
 * such descriptors are served, and size_max is the whole descriptor's. */
static void a_descriptor_across_ram_regions_is_one_segment(void)
{
    start(); /* two adjacent regions of RAM_SIZE / 2 */
    uint32_t seg_max = (uint32_t)config(CFG_SEG_MAX, 4);
    uint32_t size_max = (uint32_t)config(CFG_SIZE_MAX, 4);
    uint64_t boundary = RAM_BASE + RAM_SIZE / 2;
    /* Past the boundary, so the bump allocator's later buffers (the
     * indirect tables) lie wholly in the second region. */
    uint64_t low = vdrv_alloc(&mem, boundary + size_max - mem.next_free, 512);
    static struct vdrv_buf data[VMDEV_VQ_MAX_SEGMENTS];
    for (unsigned i = 0; i + 1 < seg_max; i++)
        data[i] = (struct vdrv_buf){ low + 512 * i, 512 };
    data[seg_max - 1] = (struct vdrv_buf){ boundary - 2048, 4096 };
    struct req r;
    post_read(&r, 0, data, seg_max, true);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_OK);
    CHECK(sector_matches_image(boundary - 2048, seg_max - 1));
    CHECK(sector_matches_image(boundary - 2048 + 3584, seg_max + 6));
    /* Half of size_max on each side: one descriptor of twice size_max. */
    post_read(&r, 0, &(struct vdrv_buf){ boundary - size_max, 2 * size_max },
              1, false);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK_EQ(vmdev_block_stats(vmdev_virtio_blk_block(blk)).reads, 1);
    stop();
}

/*
 * The walker allows a chain of almost 4 GiB, and descriptors may all
 * name the same guest memory: 254 of 15 MiB each over one buffer, on a
 * disk that large. Refused at once; nothing is read.
 */
static void a_request_of_gigabytes_in_aliased_descriptors_is_refused(void)
{
    start_with(&(struct setup){ .ram_regions = 1,
                                .image_bytes = 4ull << 30 });
    uint32_t seg_max = (uint32_t)config(CFG_SEG_MAX, 4);
    uint32_t piece = 15u << 20;
    uint64_t buf = vdrv_alloc(&mem, piece, 4096);
    static struct vdrv_buf data[VMDEV_VQ_MAX_SEGMENTS];
    struct req r;
    post_read(&r, 0, data, aliases_of(data, buf, piece, seg_max), true);
    CHECK(finish(&r));
    CHECK_EQ(status_of(&r), S_IOERR);
    CHECK_EQ(r.used, 1);
    struct vmdev_block *b = vmdev_virtio_blk_block(blk);
    struct vmdev_block_stats st = vmdev_block_stats(b);
    CHECK_EQ(st.reads, 0);
    CHECK_EQ(st.bytes_read, 0);
    stop();
}

/* The reads of the two budget tests: BUDGET_READS reads of BUDGET_PIECES
 * pieces of size_max each, all into one misaligned buffer (so each is
 * bounced under cache=none), posted on queue 0 before any finishes.
 * Returns the buffer's guest address. */
enum { BUDGET_READS = 24, BUDGET_PIECES = 4 };
static uint64_t post_reads_past_the_budget(struct req r[BUDGET_READS])
{
    uint32_t size_max = (uint32_t)config(CFG_SIZE_MAX, 4);
    uint64_t misaligned = vdrv_alloc(&mem, size_max + 4096, 4096) + 8;
    struct vdrv_buf data[BUDGET_PIECES];
    for (unsigned i = 0; i < BUDGET_READS; i++)
        post_read(&r[i], 0, data,
                  aliases_of(data, misaligned, size_max, BUDGET_PIECES),
                  false);
    return misaligned;
}

/*
 * Many large reads into a misaligned buffer under cache=none, each
 * bounced through a copy as large as itself, posted before any finishes:
 * the device never holds more than its budget of them in flight. The
 * rest wait in the ring and are all served as earlier ones finish.
 */
static void reads_in_flight_stay_within_the_data_budget(void)
{
    start_with(&(struct setup){ .cache = VMDEV_BLOCK_CACHE_NONE });
    uint32_t size_max = (uint32_t)config(CFG_SIZE_MAX, 4);
    uint64_t request_bytes = (uint64_t)BUDGET_PIECES * size_max;
    CHECK(BUDGET_READS * request_bytes > VMDEV_VIRTIO_BLK_DATA_BUDGET);
    static struct req r[BUDGET_READS];
    uint64_t misaligned = post_reads_past_the_budget(r);
    unsigned done = 0;
    uint32_t id, len;
    while (done < BUDGET_READS && reap(0, &id, &len)) {
        CHECK_EQ(len, request_bytes + 1);
        done++;
    }
    CHECK_EQ(done, BUDGET_READS);
    for (unsigned i = 0; i < BUDGET_READS; i++)
        CHECK_EQ(status_of(&r[i]), S_OK);
    /* The last piece read was the image's fourth MiB. */
    CHECK(sector_matches_image(misaligned, 3 * size_max / 512));
    struct vmdev_virtio_blk_stats st = vmdev_virtio_blk_stats(blk);
    CHECK(st.data_in_flight_peak <= VMDEV_VIRTIO_BLK_DATA_BUDGET);
    /* It filled up: one more request would not have fitted. */
    CHECK(st.data_in_flight_peak + request_bytes >
          VMDEV_VIRTIO_BLK_DATA_BUDGET);
    CHECK(st.budget_waits > 0);
    CHECK_EQ(st.requests, BUDGET_READS);
    struct vmdev_block *b = vmdev_virtio_blk_block(blk);
    CHECK_EQ(vmdev_block_stats(b).reads, BUDGET_READS);
    CHECK_EQ(vmdev_block_stats(b).bounced, BUDGET_READS);
    stop();
}

/*
 * A request the block layer would refuse takes none of the data budget:
 * with the budget held by queue 0's reads (their completions not yet
 * reaped), a read past the end of the disk on queue 1 is answered IOERR
 * at once instead of waiting for budget it does not need, and, refused,
 * cannot leave budget taken and given back behind another queue's back.
 */
static void a_refused_request_takes_no_budget(void)
{
    start_with(&(struct setup){ .num_queues = 2,
                                .cache = VMDEV_BLOCK_CACHE_NONE });
    static struct req r[BUDGET_READS];
    post_reads_past_the_budget(r);
    CHECK(vmdev_virtio_blk_stats(blk).budget_waits > 0);
    struct req past_end;
    post(&past_end, 1, T_IN, config(CFG_CAPACITY, 8), NULL, 0, 512, 1, false);
    uint32_t id, len;
    /* Without running the I/O thread: answered in the notification. */
    CHECK(vdrv_get_used(&queues[1], &id, &len));
    CHECK_EQ(id, (uint32_t)past_end.head);
    CHECK_EQ(status_of(&past_end), S_IOERR);
    unsigned done = 0;
    while (done < BUDGET_READS && reap(0, &id, &len))
        done++;
    CHECK_EQ(done, BUDGET_READS);
    stop();
}

static void chain_without_status_needs_reset(void)
{
    start();
    uint64_t h = vdrv_alloc(&mem, 16, 8);
    struct vdrv_buf out = { h, 16 };
    CHECK(vdrv_add(&queues[0], &out, 1, NULL, 0, false) >= 0);
    vdrv_notify(dev, 0);
    CHECK(dev->status & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(dev->guest_errors, 1);
    stop();
}

/* Bad settings are refused, and the caller keeps the image. */
static void bad_settings_are_refused(void)
{
    make_image();
    struct vmdev_block *b = open_image(&(struct setup){ 0 });
    CHECK(b != NULL);
    static const struct { uint16_t queues, size; } bad[] = {
        { 65, 0 }, { 1, 3 }, { 1, 2 }, { 1, 2048 }, { 1, 96 },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmdev_virtio_blk_config cfg = { .block = b,
                                               .num_queues = bad[i].queues,
                                               .queue_size = bad[i].size };
        errno = 0;
        CHECK(vmdev_virtio_blk_new("blk0", mem.mem, &cfg) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    struct vmdev_virtio_blk_config none = { 0 };
    CHECK(vmdev_virtio_blk_new("blk0", mem.mem, &none) == NULL);
    vmdev_block_free(b);
    unlink(image);
}

static void on_both_engines(void (*test)(void))
{
    engine_kind = VMDEV_IO_ENGINE_IO_URING;
    test();
    engine_kind = VMDEV_IO_ENGINE_THREADS;
    test();
    engine_kind = VMDEV_IO_ENGINE_AUTO;
}

static void engines_serve_reads_and_writes(void)
{
    on_both_engines(reads_sectors_into_scattered_buffers);
    on_both_engines(writes_reach_the_file);
    on_both_engines(a_full_ring_completes);
}

TEST_MAIN(TEST(config_reports_geometry_and_limits),
          TEST(a_refused_request_takes_no_budget),
          TEST(a_queue_runs_while_the_device_and_its_other_queues_are_busy),
          TEST(reads_sectors_into_scattered_buffers),
          TEST(writes_reach_the_file), TEST(a_full_ring_completes),
          TEST(get_id_returns_the_serial),
          TEST(bad_requests_get_an_error_status),
          TEST(a_failing_image_gives_ioerr), TEST(readonly_refuses_writes),
          TEST(discard_releases_space), TEST(write_zeroes_zeroes),
          TEST(malformed_ranges_are_refused),
          TEST(the_guest_switches_writethrough),
          TEST(two_queues_serve_at_once),
          TEST(more_chains_than_slots_wait_their_turn),
          TEST(a_reset_drops_requests_in_flight),
          TEST(a_segment_past_size_max_is_refused_before_any_copy),
          TEST(more_segments_than_seg_max_are_refused),
          TEST(a_descriptor_across_ram_regions_is_one_segment),
          TEST(a_request_of_gigabytes_in_aliased_descriptors_is_refused),
          TEST(reads_in_flight_stay_within_the_data_budget),
          TEST(chain_without_status_needs_reset),
          TEST(bad_settings_are_refused),
          TEST(engines_serve_reads_and_writes))
