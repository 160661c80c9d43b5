/* SPDX-License-Identifier: MIT */
/*
 * Opening images and the raw format: a raw image's bytes are the disk's,
 * so a request goes to the engine as it is, after the checks every format
 * shares (inside the disk, aligned for O_DIRECT, writable).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"

#define QCOW2_MAGIC "QFI\xfb"
#define MAX_ALIGNMENT 4096

int block_refuse(char *why, size_t why_len, const char *fmt, ...)
{
    if (why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* The smallest O_DIRECT read the file accepts: its logical block size. */
static uint32_t probe_direct_alignment(int fd)
{
    void *buf;
    if (posix_memalign(&buf, MAX_ALIGNMENT, MAX_ALIGNMENT))
        return MAX_ALIGNMENT;
    uint32_t align = MAX_ALIGNMENT;
    for (uint32_t size = 512; size < MAX_ALIGNMENT; size *= 2) {
        if (pread(fd, buf, size, 0) >= 0) {
            align = size;
            break;
        }
    }
    free(buf);
    return align;
}

static int image_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st))
        return -errno;
    if (S_ISBLK(st.st_mode))
        return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Whether the image starts with the qcow2 magic: 1, 0 or -errno. */
static int has_qcow2_magic(int fd)
{
    /* O_DIRECT needs an aligned buffer and length even for a probe. */
    char *head;
    if (posix_memalign((void **)&head, MAX_ALIGNMENT, MAX_ALIGNMENT))
        return -ENOMEM;
    ssize_t n = pread(fd, head, MAX_ALIGNMENT, 0);
    int ret = n < 0 ? -errno : n >= 4 && memcmp(head, QCOW2_MAGIC, 4) == 0;
    free(head);
    return ret;
}

static const struct block_format_ops raw_format;

/* All of len bytes at offset, continuing short transfers. */
static int transfer_exact(int fd, uint8_t *p, size_t len, uint64_t offset,
                          bool write)
{
    while (len) {
        ssize_t n = write ? pwrite(fd, p, len, (off_t)offset)
                          : pread(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

void backing_path(const char *image, const char *name, char *out,
                  size_t out_len)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", image);
    if (name[0] == '/')
        snprintf(out, out_len, "%s", name);
    else
        snprintf(out, out_len, "%s/%s", dirname(dir), name);
}

int read_exact(int fd, void *buf, size_t len, uint64_t offset)
{
    return transfer_exact(fd, buf, len, offset, false);
}

int write_exact(int fd, const void *buf, size_t len, uint64_t offset)
{
    /* Only read from when writing. */
    return transfer_exact(fd, (uint8_t *)buf, len, offset, true);
}

struct vmdev_block *vmdev_block_open(const struct vmdev_block_options *o,
                                     char *why, size_t why_len)
{
    return block_open(o, 0, why, why_len);
}

struct vmdev_block *block_open(const struct vmdev_block_options *o,
                               unsigned depth, char *why, size_t why_len)
{
    int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (o->cache == VMDEV_BLOCK_CACHE_NONE)
        flags |= O_DIRECT;
    int fd = open(o->path, flags);
    if (fd < 0) {
        int err = errno;
        block_refuse(why, why_len, "%s", strerror(err));
        errno = err;
        return NULL;
    }
    uint64_t size = 0;
    int ret = image_size(fd, &size);
    if (ret) {
        block_refuse(why, why_len, "%s",
                     ret == -EINVAL ? "not a regular file or block device"
                                    : strerror(-ret));
        close(fd);
        errno = -ret;
        return NULL;
    }
    int magic = o->format == VMDEV_BLOCK_FORMAT_DEFAULT ? has_qcow2_magic(fd) : 0;
    if (magic) {
        if (magic > 0)
            block_refuse(why, why_len, "the image carries the qcow2 magic; "
                         "give format=qcow2 or, to use its bytes as they are, "
                         "format=raw");
        else
            block_refuse(why, why_len, "cannot read its first block: %s",
                         strerror(-magic));
        close(fd);
        errno = magic > 0 ? EINVAL : -magic;
        return NULL;
    }
    struct vmdev_block *b = calloc(1, sizeof(*b));
    if (!b) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    b->fd = fd;
    b->size = size;
    b->readonly = o->readonly;
    b->cache = o->cache;
    b->alignment = o->cache == VMDEV_BLOCK_CACHE_NONE ? probe_direct_alignment(fd)
                                                      : 1;
    atomic_init(&b->writeback, o->cache != VMDEV_BLOCK_CACHE_WRITETHROUGH);
    b->format = &raw_format;
    if (o->format == VMDEV_BLOCK_FORMAT_QCOW2) {
        ret = qcow2_open(b, o->path, depth, why, why_len);
        if (ret) {
            close(fd);
            free(b);
            errno = -ret;
            return NULL;
        }
    }
    return b;
}

void vmdev_block_close(struct vmdev_block *b)
{
    if (!b)
        return;
    if (b->format->close)
        b->format->close(b);
    if (!b->readonly)
        fdatasync(b->fd);
    close(b->fd);
    free(b);
}

uint64_t vmdev_block_size(const struct vmdev_block *b)
{
    return b->size;
}

bool vmdev_block_readonly(const struct vmdev_block *b)
{
    return b->readonly;
}

uint32_t vmdev_block_alignment(const struct vmdev_block *b)
{
    return b->alignment;
}

bool vmdev_block_writeback(const struct vmdev_block *b)
{
    return atomic_load(&b->writeback);
}

void vmdev_block_set_writeback(struct vmdev_block *b, bool writeback)
{
    /* Also under cache=none: an O_DIRECT write may still sit in the
     * disk's volatile cache until a flush. */
    atomic_store(&b->writeback, writeback);
}

struct vmdev_block_stats vmdev_block_stats(const struct vmdev_block *b)
{
    return (struct vmdev_block_stats){
        .reads = atomic_load(&b->stats.reads),
        .writes = atomic_load(&b->stats.writes),
        .flushes = atomic_load(&b->stats.flushes),
        .discards = atomic_load(&b->stats.discards),
        .write_zeroes = atomic_load(&b->stats.write_zeroes),
        .bytes_read = atomic_load(&b->stats.bytes_read),
        .bytes_written = atomic_load(&b->stats.bytes_written),
        .bounced = atomic_load(&b->stats.bounced),
        .errors = atomic_load(&b->stats.errors),
    };
}

/* --- Internal snapshots: the format's, once the image is found able --- */

int vmdev_block_snapshot_list(struct vmdev_block *b,
                              struct vmdev_block_snapshot **list)
{
    *list = NULL;
    return b->format->snapshot_list ? b->format->snapshot_list(b, list) : 0;
}

void vmdev_block_snapshot_list_free(struct vmdev_block_snapshot *list,
                                    int count)
{
    for (int i = 0; list && i < count; i++) {
        free(list[i].id);
        free(list[i].name);
    }
    free(list);
}

/* Whether the image can change its snapshots: 0, or -errno and why. */
static int snapshots_changeable(const struct vmdev_block *b, char *why,
                                size_t why_len)
{
    if (!b->format->snapshot_create) {
        block_refuse(why, why_len, "%s images have no internal snapshots "
                     "(qcow2 images do)", b->format->name);
        return -ENOTSUP;
    }
    if (b->readonly) {
        block_refuse(why, why_len, "the image is open read-only");
        return -EROFS;
    }
    return 0;
}

int vmdev_block_snapshot_create(struct vmdev_block *b, const char *name,
                                char *why, size_t why_len)
{
    int ret = snapshots_changeable(b, why, why_len);
    return ret ? ret : b->format->snapshot_create(b, name, why, why_len);
}

int vmdev_block_snapshot_apply(struct vmdev_block *b, const char *id_or_name,
                               char *why, size_t why_len)
{
    int ret = snapshots_changeable(b, why, why_len);
    return ret ? ret : b->format->snapshot_apply(b, id_or_name, why, why_len);
}

int vmdev_block_snapshot_delete(struct vmdev_block *b, const char *id_or_name,
                                char *why, size_t why_len)
{
    int ret = snapshots_changeable(b, why, why_len);
    return ret ? ret : b->format->snapshot_delete(b, id_or_name, why, why_len);
}

static uint64_t request_bytes(const struct vmdev_block_request *req)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < req->iovcnt; i++) {
        if (req->iov[i].iov_len > UINT64_MAX - total)
            return UINT64_MAX;
        total += req->iov[i].iov_len;
    }
    return total;
}

/* Inside the disk, writable when it writes, and aligned for O_DIRECT. */
static int check_request(const struct vmdev_block *b,
                         const struct vmdev_block_request *req, uint64_t *len)
{
    if (!req->done)
        return -EINVAL;
    switch (req->op) {
    case VMDEV_IO_READ:
    case VMDEV_IO_WRITE:
        if (!req->iov || req->iovcnt == 0)
            return -EINVAL;
        *len = request_bytes(req);
        break;
    case VMDEV_IO_DISCARD:
    case VMDEV_IO_WRITE_ZEROES:
        *len = req->len;
        break;
    case VMDEV_IO_FLUSH:
        *len = 0;
        return 0;
    default:
        return -EINVAL;
    }
    if (*len == 0 || req->offset > b->size || *len > b->size - req->offset)
        return -EINVAL;
    if (req->op != VMDEV_IO_READ && b->readonly)
        return -EROFS;
    if (req->offset % b->alignment || *len % b->alignment)
        return -EINVAL;
    return 0;
}

/* O_DIRECT moves memory the device can reach: every buffer aligned. */
static bool memory_aligned(const struct vmdev_block *b,
                           const struct vmdev_block_request *req)
{
    for (unsigned i = 0; i < req->iovcnt; i++)
        if ((uintptr_t)req->iov[i].iov_base % b->alignment ||
            req->iov[i].iov_len % b->alignment)
            return false;
    return true;
}

static void copy_out_of_bounce(struct vmdev_block_request *req, uint64_t len)
{
    const uint8_t *from = req->bounce;
    for (unsigned i = 0; i < req->iovcnt && len; i++) {
        size_t n = req->iov[i].iov_len < len ? req->iov[i].iov_len : len;
        memcpy(req->iov[i].iov_base, from, n);
        from += n;
        len -= n;
    }
}

static void count(struct vmdev_block *b, const struct vmdev_block_request *req,
                  int64_t result)
{
    if (result < 0) {
        atomic_fetch_add(&b->stats.errors, 1);
        return;
    }
    switch (req->op) {
    case VMDEV_IO_READ:
        atomic_fetch_add(&b->stats.reads, 1);
        atomic_fetch_add(&b->stats.bytes_read, (uint64_t)result);
        break;
    case VMDEV_IO_WRITE:
        atomic_fetch_add(&b->stats.writes, 1);
        atomic_fetch_add(&b->stats.bytes_written, (uint64_t)result);
        break;
    case VMDEV_IO_FLUSH:
        atomic_fetch_add(&b->stats.flushes, 1);
        break;
    case VMDEV_IO_DISCARD:
        atomic_fetch_add(&b->stats.discards, 1);
        break;
    case VMDEV_IO_WRITE_ZEROES:
        atomic_fetch_add(&b->stats.write_zeroes, 1);
        break;
    case VMDEV_IO_NOP:
        break;
    }
}

static void finish(struct vmdev_block_request *req, int64_t result)
{
    free(req->bounce);
    req->bounce = NULL;
    count(req->block, req, result);
    atomic_fetch_sub(&req->block->in_flight, 1);
    req->done(req, result);
}

/* A writethrough write's flush is done. */
static void writethrough_flushed(struct vmdev_io *io, int64_t result)
{
    struct vmdev_block_request *req = io->opaque;
    finish(req, result < 0 ? result : req->write_result);
}

void block_request_done(struct vmdev_block_request *req, int64_t result)
{
    if (result >= 0 && req->bounce && req->op == VMDEV_IO_READ)
        copy_out_of_bounce(req, (uint64_t)result);
    struct vmdev_block *b = req->block;
    bool changes = req->op == VMDEV_IO_WRITE || req->op == VMDEV_IO_WRITE_ZEROES ||
                   req->op == VMDEV_IO_DISCARD;
    if (result >= 0 && changes && !atomic_load(&b->writeback)) {
        /* What the format keeps in memory goes first, then the sync. */
        int ret = b->format->write_metadata ? b->format->write_metadata(b) : 0;
        if (ret) {
            finish(req, ret);
            return;
        }
        req->write_result = result;
        req->io = (struct vmdev_io){ .op = VMDEV_IO_FLUSH, .fd = req->block->fd,
                                     .done = writethrough_flushed,
                                     .opaque = req };
        atomic_fetch_add(&req->block->stats.flushes, 1);
        if (vmdev_io_engine_submit(req->engine, &req->io) == 0)
            return;
        result = -EIO;
    }
    finish(req, result);
}

/* Raw: the request goes to the engine as it is. */
static void raw_io_done(struct vmdev_io *io, int64_t result)
{
    block_request_done(io->opaque, result);
}

static int raw_submit(struct vmdev_block *b, struct vmdev_block_request *req)
{
    req->io = (struct vmdev_io){
        .op = req->op, .fd = b->fd, .offset = req->offset,
        .iov = req->data_iov, .iovcnt = req->data_iovcnt, .len = req->len,
        .unmap = req->unmap, .done = raw_io_done, .opaque = req,
    };
    return vmdev_io_engine_submit(req->engine, &req->io);
}

static const struct block_format_ops raw_format = { .name = "raw",
                                                    .submit = raw_submit };

int block_read_sync(struct vmdev_block *b, uint64_t offset, void *buf,
                    uint64_t len)
{
    if (b->format->read_sync)
        return b->format->read_sync(b, offset, buf, len);
    return read_exact(b->fd, buf, len, offset);
}

/* cache=none with buffers O_DIRECT cannot take: an aligned copy. */
static int set_up_bounce(struct vmdev_block *b, struct vmdev_block_request *req,
                         uint64_t len)
{
    if (posix_memalign(&req->bounce, MAX_ALIGNMENT, len))
        return -ENOMEM;
    req->bounce_iov = (struct iovec){ req->bounce, len };
    req->data_iov = &req->bounce_iov;
    req->data_iovcnt = 1;
    if (req->op == VMDEV_IO_WRITE) {
        uint8_t *to = req->bounce;
        for (unsigned i = 0; i < req->iovcnt; i++) {
            memcpy(to, req->iov[i].iov_base, req->iov[i].iov_len);
            to += req->iov[i].iov_len;
        }
    }
    atomic_fetch_add(&b->stats.bounced, 1);
    return 0;
}

int vmdev_block_submit(struct vmdev_block *b, struct vmdev_io_engine *engine,
                       struct vmdev_block_request *req)
{
    uint64_t len;
    int ret = check_request(b, req, &len);
    if (ret)
        return ret;
    req->block = b;
    req->engine = engine;
    req->bounce = NULL;
    req->data_iov = req->iov;
    req->data_iovcnt = req->iovcnt;
    if ((req->op == VMDEV_IO_READ || req->op == VMDEV_IO_WRITE) &&
        b->cache == VMDEV_BLOCK_CACHE_NONE && !memory_aligned(b, req) &&
        (ret = set_up_bounce(b, req, len)))
        return ret;
    /* Counted before the format maps anything: a snapshot operation
     * that holds the format's lock and sees none in flight cannot race
     * a request's mapping. */
    atomic_fetch_add(&b->in_flight, 1);
    ret = b->format->submit(b, req);
    if (ret) {
        atomic_fetch_sub(&b->in_flight, 1);
        free(req->bounce);
        req->bounce = NULL;
    }
    return ret;
}
