/* SPDX-License-Identifier: MIT */
/*
 * The block layer every format shares: opening an image (and choosing its
 * format), the checks on each request (inside the disk, aligned for
 * O_DIRECT, writable), the bounce buffers, writethrough and the counters.
 * The formats themselves are in formats/.
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

#include "block/format.h"

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

void block_backing_path(const char *image, const char *name, char *out,
                  size_t out_len)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", image);
    if (name[0] == '/')
        snprintf(out, out_len, "%s", name);
    else
        snprintf(out, out_len, "%s/%s", dirname(dir), name);
}

/* path's real path (symbolic links and ".." resolved) into out
 * (PATH_MAX bytes); if the file does not exist, its directory's real path
 * and its last component, so that a name outside is refused as such even
 * when missing. 0 or -errno. */
static int real_path(const char *path, char *out)
{
    if (realpath(path, out))
        return 0;
    if (errno != ENOENT)
        return -errno;
    struct stat st;
    /* A dangling symbolic link has no real path to place. */
    if (lstat(path, &st) == 0)
        return -ENOENT;
    char dir[PATH_MAX], last[PATH_MAX], dir_real[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    snprintf(last, sizeof(last), "%s", path);
    if (!realpath(dirname(dir), dir_real))
        return -errno;
    const char *base = basename(last);
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", dir_real, base) >= PATH_MAX)
        return -ENAMETOOLONG;
    return 0;
}

int block_backing_name_check(const char *image, const char *name, char *why,
                       size_t why_len)
{
#define RULE "backing names must stay in the image's directory (backing=PATH " \
             "names the file explicitly, backing_outside=on allows it)"
    char shown[256];
    block_printable(name, shown, sizeof(shown));
    /* An absolute name is the image's choice of any file on the host. */
    if (name[0] == '/')
        return block_refuse(why, why_len, "backing file name '%s' in %s is "
                            "absolute; " RULE, shown, image);
    /* A relative one must not climb out with "..", or through a symbolic
     * link beside the image: the real paths say both. */
    char dir[PATH_MAX], dir_real[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", image);
    block_backing_path(image, name, full, sizeof(full));
    int ret = realpath(dirname(dir), dir_real) ? 0 : -errno;
    if (!ret)
        ret = real_path(full, real);
    if (ret) {
        block_refuse(why, why_len, "backing file %s: %s", full,
                     strerror(-ret));
        return ret;
    }
    size_t n = strlen(dir_real);
    bool inside = strcmp(dir_real, "/") == 0 ||
                  (strncmp(real, dir_real, n) == 0 && real[n] == '/');
    if (!inside) {
        char shown_real[256];
        block_printable(real, shown_real, sizeof(shown_real));
        return block_refuse(why, why_len, "backing file name '%s' in %s "
                            "leads outside the image's directory (to %s); "
                            RULE, shown, image, shown_real);
    }
    return 0;
#undef RULE
}

int block_pread_exact(int fd, void *buf, size_t len, uint64_t offset)
{
    return transfer_exact(fd, buf, len, offset, false);
}

int block_pwrite_exact(int fd, const void *buf, size_t len, uint64_t offset)
{
    /* Only read from when writing. */
    return transfer_exact(fd, (uint8_t *)buf, len, offset, true);
}

const char *block_printable(const char *text, char *out, size_t out_len)
{
    size_t n = 0;
    for (; *text && n + 1 < out_len; text++, n++)
        out[n] = *text >= 0x20 && *text < 0x7f ? *text : '?';
    if (out_len)
        out[n] = '\0';
    return out;
}

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a file";
}

static int refuse_not_regular(const struct block_origin *origin, mode_t mode,
                              char *why, size_t why_len)
{
    char name[256];
    block_printable(origin->name, name, sizeof(name));
    block_refuse(why, why_len, "backing file name '%s' in %s is %s, not a "
                 "regular file; an image may name only regular files "
                 "(backing=PATH names another explicitly)", name,
                 origin->named_in, file_kind(mode));
    return -EINVAL;
}

/*
 * The file, opened as o says: a descriptor, or -errno and why. A file an
 * image named must be a regular file (vmdev/block.h): a device or a
 * /proc file would hand the host's data to the guest. That is checked
 * before opening, so that no such file is ever opened (opening a FIFO
 * blocks, opening some devices acts: /dev/watchdog arms, a tape rewinds),
 * then again on the descriptor, which is what is read, in case the name
 * changed in between; O_NONBLOCK keeps a FIFO swapped in from blocking the
 * open, and is cleared for the regular file (io_uring would honour it).
 */
static int open_file(const struct vmdev_block_options *o,
                     const struct block_origin *origin, char *why,
                     size_t why_len)
{
    bool named_by_image = origin->named_in != NULL;
    struct stat st;
    if (named_by_image && stat(o->path, &st) == 0 && !S_ISREG(st.st_mode))
        return refuse_not_regular(origin, st.st_mode, why, why_len);
    int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (o->cache == VMDEV_BLOCK_CACHE_NONE)
        flags |= O_DIRECT;
    int fd = open(o->path, named_by_image ? flags | O_NONBLOCK : flags);
    if (fd < 0) {
        int err = errno;
        block_refuse(why, why_len, "%s", strerror(err));
        return -err;
    }
    if (!named_by_image)
        return fd;
    int ret = 0, status = fcntl(fd, F_GETFL);
    if (fstat(fd, &st) || status < 0 ||
        fcntl(fd, F_SETFL, status & ~O_NONBLOCK)) {
        ret = -errno;
        block_refuse(why, why_len, "%s", strerror(-ret));
    } else if (!S_ISREG(st.st_mode)) {
        ret = refuse_not_regular(origin, st.st_mode, why, why_len);
    }
    if (ret) {
        close(fd);
        return ret;
    }
    return fd;
}

/* The backing options make sense together: -EINVAL and why if not. */
static int check_backing_options(const struct vmdev_block_options *o,
                                 char *why, size_t why_len)
{
    switch (o->backing) {
    case VMDEV_BLOCK_BACKING_FROM_IMAGE:
    case VMDEV_BLOCK_BACKING_OFF:
        return 0;
    case VMDEV_BLOCK_BACKING_EXPLICIT:
        if (!o->backing_file || !*o->backing_file)
            return block_refuse(why, why_len, "no backing file given");
        if (o->format != VMDEV_BLOCK_FORMAT_QCOW2)
            return block_refuse(why, why_len, "backing=%s given for a raw "
                                "image, which has no backing file",
                                o->backing_file);
        if (o->backing_format != VMDEV_BLOCK_FORMAT_DEFAULT &&
            o->backing_format != VMDEV_BLOCK_FORMAT_RAW &&
            o->backing_format != VMDEV_BLOCK_FORMAT_QCOW2)
            return block_refuse(why, why_len, "unknown backing format %d",
                                (int)o->backing_format);
        return 0;
    }
    return block_refuse(why, why_len, "unknown backing choice %d",
                        (int)o->backing);
}

struct vmdev_block *vmdev_block_new(const struct vmdev_block_options *o,
                                     char *why, size_t why_len)
{
    int ret = check_backing_options(o, why, why_len);
    if (ret) {
        errno = -ret;
        return NULL;
    }
    const struct block_origin chosen_by_user = { 0 };
    return block_open(o, &chosen_by_user, why, why_len);
}

struct vmdev_block *block_open(const struct vmdev_block_options *o,
                               const struct block_origin *origin, char *why,
                               size_t why_len)
{
    int fd = open_file(o, origin, why, why_len);
    if (fd < 0) {
        errno = -fd;
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
    b->format = &block_raw_format;
    if (o->format == VMDEV_BLOCK_FORMAT_QCOW2) {
        ret = qcow2_open(b, o, origin->depth, why, why_len);
        if (ret) {
            close(fd);
            free(b);
            errno = -ret;
            return NULL;
        }
    }
    return b;
}

void vmdev_block_free(struct vmdev_block *b)
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

int block_read_sync(struct vmdev_block *b, uint64_t offset, void *buf,
                    uint64_t len)
{
    if (b->format->read_sync)
        return b->format->read_sync(b, offset, buf, len);
    return block_pread_exact(b->fd, buf, len, offset);
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

int vmdev_block_check(const struct vmdev_block *b,
                      const struct vmdev_block_request *req)
{
    uint64_t len;
    return check_request(b, req, &len);
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
