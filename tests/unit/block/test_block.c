/* SPDX-License-Identifier: MIT */
/* Raw images through the block layer: opening (format choice, read-only,
 * sizes), request checks, cache modes, on an io_uring engine. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "engine_wait.h"
#include "test.h"
#include "vmdev/block.h"

#define DISK_SIZE (1u << 20)

static char path[] = "block-test-XXXXXX";
static unsigned done_calls;
static int64_t last_result;

static void note_done(struct vmdev_block_request *req, int64_t result)
{
    done_calls++;
    last_result = result;
}

/* A fresh image of DISK_SIZE bytes, byte i holding i * 3 + seed. */
static bool make_image(unsigned seed, size_t size)
{
    strcpy(path, "block-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 3 + seed);
    bool ok = write(fd, data, size) == (ssize_t)size;
    free(data);
    close(fd);
    return ok;
}

static struct vmdev_block *open_image(enum vmdev_block_format format,
                                      enum vmdev_block_cache cache,
                                      bool readonly, char *why, size_t len)
{
    struct vmdev_block_options o = {
        .path = path, .format = format, .cache = cache, .readonly = readonly,
    };
    return vmdev_block_new(&o, why, len);
}

static bool run(struct vmdev_io_engine *e, unsigned want)
{
    return engine_wait(e, &done_calls, want);
}

static struct vmdev_block_request rw(enum vmdev_io_op op, uint64_t offset,
                                     struct iovec *iov, unsigned cnt)
{
    return (struct vmdev_block_request){ .op = op, .offset = offset, .iov = iov,
                                         .iovcnt = cnt, .done = note_done };
}

static void read_write_and_flush(void)
{
    CHECK(make_image(1, DISK_SIZE));
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_DEFAULT,
                                       VMDEV_BLOCK_CACHE_WRITEBACK, false, NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(b && e);
    CHECK_EQ(vmdev_block_size(b), DISK_SIZE);
    CHECK_EQ(vmdev_block_alignment(b), 1);
    CHECK(vmdev_block_writeback(b));
    done_calls = 0;
    static uint8_t out[8192], back[8192];
    memset(out, 0xa5, sizeof(out));
    struct iovec o = { out, sizeof(out) }, in = { back, sizeof(back) };
    struct vmdev_block_request w = rw(VMDEV_IO_WRITE, DISK_SIZE - 8192, &o, 1);
    struct vmdev_block_request f = { .op = VMDEV_IO_FLUSH, .done = note_done };
    CHECK_EQ(vmdev_block_submit(b, e, &w), 0);
    CHECK_EQ(vmdev_block_submit(b, e, &f), 0);
    CHECK(run(e, 2));
    struct vmdev_block_request r = rw(VMDEV_IO_READ, DISK_SIZE - 8192, &in, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &r), 0);
    CHECK(run(e, 3));
    CHECK_EQ(last_result, 8192);
    CHECK(memcmp(back, out, sizeof(out)) == 0);
    struct vmdev_block_stats s = vmdev_block_stats(b);
    CHECK_EQ(s.reads, 1);
    CHECK_EQ(s.writes, 1);
    CHECK_EQ(s.flushes, 1);
    CHECK_EQ(s.bytes_written, 8192);
    CHECK_EQ(s.bounced, 0);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    unlink(path);
}

static void requests_outside_the_disk_are_refused(void)
{
    CHECK(make_image(2, DISK_SIZE));
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_RAW,
                                       VMDEV_BLOCK_CACHE_WRITEBACK, false, NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(b && e);
    done_calls = 0;
    uint8_t buf[512];
    struct iovec iov = { buf, sizeof(buf) };
    struct vmdev_block_request past = rw(VMDEV_IO_READ, DISK_SIZE - 511, &iov, 1);
    struct vmdev_block_request far = rw(VMDEV_IO_WRITE, UINT64_MAX - 100, &iov, 1);
    struct vmdev_block_request none = rw(VMDEV_IO_READ, 0, &iov, 0);
    struct vmdev_block_request zero = { .op = VMDEV_IO_WRITE_ZEROES,
                                        .offset = 4096, .len = DISK_SIZE,
                                        .done = note_done };
    struct vmdev_block_request empty = { .op = VMDEV_IO_DISCARD, .offset = 0,
                                         .len = 0, .done = note_done };
    CHECK_EQ(vmdev_block_submit(b, e, &past), -EINVAL);
    CHECK_EQ(vmdev_block_submit(b, e, &far), -EINVAL);
    CHECK_EQ(vmdev_block_submit(b, e, &none), -EINVAL);
    CHECK_EQ(vmdev_block_submit(b, e, &zero), -EINVAL);
    CHECK_EQ(vmdev_block_submit(b, e, &empty), -EINVAL);
    CHECK_EQ(vmdev_io_engine_in_flight(e), 0);
    /* The last byte is inside. */
    struct iovec last = { buf, 1 };
    struct vmdev_block_request edge = rw(VMDEV_IO_READ, DISK_SIZE - 1, &last, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &edge), 0);
    CHECK(run(e, 1));
    CHECK_EQ(last_result, 1);
    CHECK_EQ(buf[0], (uint8_t)((DISK_SIZE - 1) * 3 + 2));
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    unlink(path);
}

static void read_only_images_take_no_writes(void)
{
    CHECK(make_image(3, DISK_SIZE));
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_DEFAULT,
                                       VMDEV_BLOCK_CACHE_WRITEBACK, true, NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(b && e);
    CHECK(vmdev_block_readonly(b));
    uint8_t buf[512] = { 0 };
    struct iovec iov = { buf, sizeof(buf) };
    struct vmdev_block_request w = rw(VMDEV_IO_WRITE, 0, &iov, 1);
    struct vmdev_block_request d = { .op = VMDEV_IO_DISCARD, .offset = 0,
                                     .len = 4096, .done = note_done };
    struct vmdev_block_request z = { .op = VMDEV_IO_WRITE_ZEROES, .offset = 0,
                                     .len = 4096, .done = note_done };
    CHECK_EQ(vmdev_block_submit(b, e, &w), -EROFS);
    CHECK_EQ(vmdev_block_submit(b, e, &d), -EROFS);
    CHECK_EQ(vmdev_block_submit(b, e, &z), -EROFS);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    /* Unchanged on disk. */
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, buf, 1, 7), 1);
    CHECK_EQ(buf[0], (uint8_t)(7 * 3 + 3));
    close(fd);
    unlink(path);
}

static void a_qcow2_header_is_not_trusted_by_default(void)
{
    CHECK(make_image(4, DISK_SIZE));
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, "QFI\xfb\0\0\0\3", 8, 0), 8);
    close(fd);
    char why[160] = "";
    errno = 0;
    CHECK(open_image(VMDEV_BLOCK_FORMAT_DEFAULT, VMDEV_BLOCK_CACHE_WRITEBACK,
                     false, why, sizeof(why)) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strstr(why, "qcow2 magic") && strstr(why, "format=raw"));
    /* Said to be raw, its bytes are the disk's. */
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_RAW,
                                       VMDEV_BLOCK_CACHE_WRITEBACK, false, why,
                                       sizeof(why));
    CHECK(b != NULL);
    vmdev_block_free(b);
    unlink(path);
    CHECK(open_image(VMDEV_BLOCK_FORMAT_RAW, VMDEV_BLOCK_CACHE_WRITEBACK, false,
                     why, sizeof(why)) == NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK(strstr(why, "No such file") != NULL);
    strcpy(path, ".");
    CHECK(open_image(VMDEV_BLOCK_FORMAT_RAW, VMDEV_BLOCK_CACHE_WRITEBACK, true,
                     why, sizeof(why)) == NULL);
    CHECK(strstr(why, "not a regular file or block device") != NULL);
}

/* Writethrough flushes after every write; the guest may switch modes. */
static void writethrough_flushes_each_write(void)
{
    CHECK(make_image(5, DISK_SIZE));
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_RAW,
                                       VMDEV_BLOCK_CACHE_WRITETHROUGH, false,
                                       NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(b && e);
    CHECK(!vmdev_block_writeback(b));
    done_calls = 0;
    uint8_t buf[4096] = { 1 };
    struct iovec iov = { buf, sizeof(buf) };
    struct vmdev_block_request w = rw(VMDEV_IO_WRITE, 0, &iov, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &w), 0);
    CHECK(run(e, 1));
    CHECK_EQ(last_result, 4096);
    CHECK_EQ(vmdev_block_stats(b).flushes, 1);
    vmdev_block_set_writeback(b, true);
    CHECK_EQ(vmdev_block_submit(b, e, &w), 0);
    CHECK(run(e, 2));
    CHECK_EQ(vmdev_block_stats(b).flushes, 1);
    CHECK_EQ(vmdev_block_stats(b).writes, 2);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    unlink(path);
}

/* cache=none: O_DIRECT, offsets aligned, unaligned memory bounced. */
static void direct_io_bounces_unaligned_buffers(void)
{
    CHECK(make_image(6, DISK_SIZE));
    struct vmdev_block *b = open_image(VMDEV_BLOCK_FORMAT_RAW,
                                       VMDEV_BLOCK_CACHE_NONE, false, NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(b && e);
    uint32_t align = vmdev_block_alignment(b);
    CHECK(align >= 512 && align <= 4096);
    done_calls = 0;
    static uint8_t raw_out[8192 + 1], raw_back[8192 + 1];
    uint8_t *out = raw_out + 1, *back = raw_back + 1; /* odd addresses */
    for (unsigned i = 0; i < 8192; i++)
        out[i] = (uint8_t)(i ^ 0x5a);
    struct iovec o[2] = { { out, 4096 }, { out + 4096, 4096 } };
    struct iovec in = { back, 8192 };
    struct vmdev_block_request w = rw(VMDEV_IO_WRITE, 8192, o, 2);
    CHECK_EQ(vmdev_block_submit(b, e, &w), 0);
    CHECK(run(e, 1));
    CHECK_EQ(last_result, 8192);
    struct vmdev_block_request r = rw(VMDEV_IO_READ, 8192, &in, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &r), 0);
    CHECK(run(e, 2));
    CHECK_EQ(last_result, 8192);
    CHECK(memcmp(back, out, 8192) == 0);
    CHECK_EQ(vmdev_block_stats(b).bounced, 2);
    /* An aligned buffer goes straight to the file. */
    static __attribute__((aligned(4096))) uint8_t aligned[4096];
    struct iovec a = { aligned, sizeof(aligned) };
    struct vmdev_block_request ra = rw(VMDEV_IO_READ, 8192, &a, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &ra), 0);
    CHECK(run(e, 3));
    CHECK(memcmp(aligned, out, 4096) == 0);
    CHECK_EQ(vmdev_block_stats(b).bounced, 2);
    /* Offsets and lengths must be aligned. */
    struct iovec small = { aligned, 100 };
    struct vmdev_block_request odd = rw(VMDEV_IO_READ, 100, &a, 1);
    struct vmdev_block_request short_len = rw(VMDEV_IO_READ, 0, &small, 1);
    CHECK_EQ(vmdev_block_submit(b, e, &odd), -EINVAL);
    CHECK_EQ(vmdev_block_submit(b, e, &short_len), -EINVAL);
    vmdev_io_engine_free(e);
    vmdev_block_free(b);
    unlink(path);
}

TEST_MAIN(TEST(read_write_and_flush),
          TEST(requests_outside_the_disk_are_refused),
          TEST(read_only_images_take_no_writes),
          TEST(a_qcow2_header_is_not_trusted_by_default),
          TEST(writethrough_flushes_each_write),
          TEST(direct_io_bounces_unaligned_buffers))
