/* SPDX-License-Identifier: MIT */
/* virtio-blk (virtio 1.2, 5.2) on a raw image, with requests built the
 * way Linux's virtio_blk builds them: header, data, status byte. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/virtio_blk.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (4u << 20)
#define IMAGE_SECTORS 2048 /* 1 MiB */

static struct vdrv_mem mem;
static struct vdrv_queue q;
static char image[64];
static struct vmdev_virtio_blk *blk;

static void make_image(void)
{
    snprintf(image, sizeof(image), "/tmp/vmdev-blk-XXXXXX");
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

static struct vmdev_virtio_device *start(bool readonly, unsigned regions)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, regions))
        abort();
    make_image();
    struct vmdev_virtio_blk_config cfg = { image, readonly, "serial-1234" };
    blk = vmdev_virtio_blk_new("blk0", mem.mem, &cfg);
    if (!blk)
        abort();
    struct vmdev_virtio_device *dev = vmdev_virtio_blk_device(blk);
    vdrv_accept_all_features(dev);
    vdrv_queue_init(&q, &mem, 256, true);
    vdrv_queue_config(&q, &dev->queues[0].config);
    vmdev_virtio_set_status(dev, 0xf);
    return dev;
}

static void stop(void)
{
    vmdev_virtio_blk_free(blk);
    unlink(image);
}

struct req {
    uint64_t header, data, status;
    uint32_t used;
};

/* Submit one request; data is `len` bytes in `pieces` descriptors. */
static bool submit(struct req *r, uint32_t type, uint64_t sector, uint32_t len,
                   unsigned pieces, bool indirect)
{
    uint8_t h[16] = { 0 };
    uint32_t t = htole32(type);
    uint64_t s = htole64(sector);
    memcpy(h, &t, 4);
    memcpy(h + 8, &s, 8);
    r->header = vdrv_alloc(&mem, 16, 8);
    vdrv_write(&mem, r->header, h, 16);
    r->status = vdrv_alloc(&mem, 1, 1);
    *(uint8_t *)vdrv_host(&mem, r->status) = 0xff;
    struct vdrv_buf out[17] = { { r->header, 16 } }, in[17];
    unsigned n_out = 1, n_in = 0;
    bool device_writes = type == 0 || type == 8;
    if (len) {
        r->data = vdrv_alloc(&mem, len, 512);
        /* What a write carries: 0xa5 bytes. */
        for (uint32_t i = 0; !device_writes && i < len; i++)
            *(uint8_t *)vdrv_host(&mem, r->data + i) = 0xa5;
        for (unsigned i = 0; i < pieces; i++) {
            uint32_t piece = len / pieces;
            struct vdrv_buf b = { r->data + i * piece,
                                  i + 1 == pieces ? len - i * piece : piece };
            if (device_writes)
                in[n_in++] = b;
            else
                out[n_out++] = b;
        }
    }
    in[n_in++] = (struct vdrv_buf){ r->status, 1 };
    if (vdrv_add(&q, out, n_out, in, n_in, indirect) < 0)
        return false;
    vdrv_notify(vmdev_virtio_blk_device(blk), 0);
    uint32_t id;
    return vdrv_get_used(&q, &id, &r->used);
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

static void config_reports_geometry(void)
{
    struct vmdev_virtio_device *dev = start(false, 1);
    uint64_t capacity;
    uint32_t seg_max, blk_size;
    vmdev_virtio_read_config(dev, 0, &capacity, 8);
    vmdev_virtio_read_config(dev, 12, &seg_max, 4);
    vmdev_virtio_read_config(dev, 20, &blk_size, 4);
    CHECK_EQ(le64toh(capacity), IMAGE_SECTORS);
    CHECK_EQ(le32toh(seg_max), 254);
    CHECK_EQ(le32toh(blk_size), 512);
    CHECK(vmdev_virtio_has_feature(dev, 9));  /* FLUSH */
    CHECK(!vmdev_virtio_has_feature(dev, 5)); /* not RO */
    stop();
}

static void reads_sectors_into_scattered_buffers(void)
{
    start(false, 2);
    struct req r;
    CHECK(submit(&r, 0, 10, 8 * 512, 3, false));
    CHECK_EQ(status_of(&r), 0);
    CHECK_EQ(r.used, 8 * 512 + 1);
    for (unsigned i = 0; i < 8; i++)
        CHECK(sector_matches_image(r.data + 512 * i, 10 + i));
    CHECK(submit(&r, 0, IMAGE_SECTORS - 1, 512, 1, true));
    CHECK_EQ(status_of(&r), 0);
    CHECK(sector_matches_image(r.data, IMAGE_SECTORS - 1));
    stop();
}

static void writes_reach_the_file(void)
{
    start(false, 1);
    struct req r;
    CHECK(submit(&r, 1, 100, 1024, 2, false));
    CHECK_EQ(status_of(&r), 0);
    CHECK_EQ(r.used, 1);
    CHECK(submit(&r, 4, 0, 0, 0, false)); /* flush */
    CHECK_EQ(status_of(&r), 0);
    int fd = open(image, O_RDONLY);
    uint8_t buf[1024];
    CHECK_EQ(pread(fd, buf, sizeof(buf), 100 * 512), 1024);
    close(fd);
    for (unsigned i = 0; i < sizeof(buf); i++)
        CHECK_EQ(buf[i], 0xa5);
    /* The neighbours are untouched. */
    fd = open(image, O_RDONLY);
    CHECK_EQ(pread(fd, buf, 512, 99 * 512), 512);
    CHECK_EQ(buf[100], 99);
    CHECK_EQ(pread(fd, buf, 512, 102 * 512), 512);
    CHECK_EQ(buf[100], 102);
    close(fd);
    stop();
}

static void get_id_returns_serial(void)
{
    start(false, 1);
    struct req r;
    CHECK(submit(&r, 8, 0, 20, 1, false));
    CHECK_EQ(status_of(&r), 0);
    CHECK_EQ(r.used, 21);
    char id[20];
    vdrv_read(&mem, r.data, id, 20);
    CHECK(memcmp(id, "serial-1234\0", 12) == 0);
    stop();
}

static void bad_requests_get_an_error_status(void)
{
    start(false, 1);
    struct req r;
    CHECK(submit(&r, 0, IMAGE_SECTORS, 512, 1, false)); /* past the end */
    CHECK_EQ(status_of(&r), 1);
    CHECK_EQ(r.used, 1);
    CHECK(submit(&r, 0, IMAGE_SECTORS - 1, 1024, 1, false)); /* straddles */
    CHECK_EQ(status_of(&r), 1);
    CHECK(submit(&r, 0, UINT64_MAX, 512, 1, false)); /* overflow */
    CHECK_EQ(status_of(&r), 1);
    CHECK(submit(&r, 0, 0, 100, 1, false)); /* not whole sectors */
    CHECK_EQ(status_of(&r), 1);
    CHECK(submit(&r, 77, 0, 0, 0, false)); /* unknown type */
    CHECK_EQ(status_of(&r), 2);
    /* None of this is a fault of the transport: the device still runs. */
    CHECK(vmdev_virtio_is_running(vmdev_virtio_blk_device(blk)));
    stop();
}

static void readonly_refuses_writes(void)
{
    struct vmdev_virtio_device *dev = start(true, 1);
    CHECK(vmdev_virtio_has_feature(dev, 5));
    struct req r;
    CHECK(submit(&r, 1, 0, 512, 1, false));
    CHECK_EQ(status_of(&r), 1);
    int fd = open(image, O_RDONLY);
    uint8_t buf[512];
    CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 512);
    close(fd);
    CHECK_EQ(buf[100], 0); /* sector 0 still holds its pattern, not 0xa5 */
    CHECK(submit(&r, 0, 5, 512, 1, false));
    CHECK_EQ(status_of(&r), 0);
    CHECK(sector_matches_image(r.data, 5));
    stop();
}

static void chain_without_status_needs_reset(void)
{
    struct vmdev_virtio_device *dev = start(false, 1);
    uint64_t h = vdrv_alloc(&mem, 16, 8);
    struct vdrv_buf out = { h, 16 };
    CHECK(vdrv_add(&q, &out, 1, NULL, 0, false) >= 0);
    vdrv_notify(dev, 0);
    CHECK(dev->status & 0x40);
    CHECK_EQ(dev->guest_errors, 1);
    stop();
}

static void missing_image_is_refused(void)
{
    vdrv_mem_release(&mem);
    CHECK_EQ(vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1), 0);
    struct vmdev_virtio_blk_config cfg = { "/nonexistent/disk.img", false,
                                           NULL };
    errno = 0;
    CHECK(vmdev_virtio_blk_new("blk0", mem.mem, &cfg) == NULL);
    CHECK_EQ(errno, ENOENT);
    cfg.path = "/dev/null"; /* not a regular file */
    CHECK(vmdev_virtio_blk_new("blk0", mem.mem, &cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST_MAIN(TEST(config_reports_geometry),
          TEST(reads_sectors_into_scattered_buffers),
          TEST(writes_reach_the_file), TEST(get_id_returns_serial),
          TEST(bad_requests_get_an_error_status),
          TEST(readonly_refuses_writes),
          TEST(chain_without_status_needs_reset),
          TEST(missing_image_is_refused))
