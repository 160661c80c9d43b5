/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image, with synchronous I/O
 * straight between the file and the guest's buffers (preadv/pwritev on
 * the chain's segments, no bounce copy).
 */
#include "vmdev/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmdev/log.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

/* Request types and status (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR_SIZE 512
#define QUEUE_SIZE 256
/* Two descriptors go to the header and status (5.2.4, seg_max). */
#define SEG_MAX (QUEUE_SIZE - 2)

/* struct virtio_blk_config (5.2.4), up to blk_size. */
#define CONFIG_CAPACITY 0
#define CONFIG_SEG_MAX 12
#define CONFIG_BLK_SIZE 20
#define CONFIG_LEN 24

struct blk_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct vmdev_virtio_blk {
    struct vmdev_virtio_device dev; /* first: ops get this pointer */
    int fd;
    bool readonly;
    uint64_t sectors;
    uint8_t config[CONFIG_LEN];
    char id[VMDEV_VIRTIO_BLK_ID_LEN];
    struct vmdev_vq_chain chain;
    struct iovec iov[VMDEV_VQ_MAX_SEGMENTS];
    uint64_t reads, writes, flushes, io_errors;
};

static void blk_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    struct vmdev_virtio_blk *blk = (struct vmdev_virtio_blk *)dev;
    memcpy(data, blk->config + offset, len);
}

/* Turn the next `len` bytes of the chain, from segment *seg at *offset,
 * into iovecs. Returns the count. */
static unsigned gather(struct vmdev_virtio_blk *blk, unsigned *seg,
                       uint32_t *offset, unsigned end, uint64_t len)
{
    unsigned n = 0;
    while (len && *seg < end) {
        const struct vmdev_vq_segment *s = &blk->chain.segments[*seg];
        uint64_t take = s->len - *offset;
        if (take > len)
            take = len;
        blk->iov[n].iov_base = (uint8_t *)s->host + *offset;
        blk->iov[n].iov_len = take;
        n++;
        len -= take;
        *offset += (uint32_t)take;
        if (*offset == s->len) {
            (*seg)++;
            *offset = 0;
        }
    }
    return n;
}

/* preadv/pwritev until done: a regular file may return short counts. */
static int transfer(struct vmdev_virtio_blk *blk, bool write, unsigned iovcnt,
                    off_t offset)
{
    struct iovec *iov = blk->iov;
    while (iovcnt) {
        ssize_t n = write ? pwritev(blk->fd, iov, (int)iovcnt, offset)
                          : preadv(blk->fd, iov, (int)iovcnt, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO; /* 0: past the end of the file */
        offset += n;
        while (iovcnt && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* IN and OUT: the data between the header and the status byte. */
static uint8_t do_rw(struct vmdev_virtio_blk *blk, bool write,
                     uint64_t sector, uint64_t data_len)
{
    if (write && blk->readonly)
        return VIRTIO_BLK_S_IOERR;
    /* 5.2.6.1: whole sectors, within the disk. */
    uint64_t count = data_len / SECTOR_SIZE;
    if (data_len % SECTOR_SIZE || sector > blk->sectors ||
        count > blk->sectors - sector)
        return VIRTIO_BLK_S_IOERR;
    unsigned seg, iovcnt;
    uint32_t offset;
    if (write) {
        /* Readable: header (16 bytes) then data. */
        seg = 0;
        offset = 0;
        gather(blk, &seg, &offset, blk->chain.num_readable,
               sizeof(struct blk_header)); /* skip the header */
        iovcnt = gather(blk, &seg, &offset, blk->chain.num_readable,
                        data_len);
        blk->writes++;
    } else {
        /* Writable: data then the status byte. */
        seg = blk->chain.num_readable;
        offset = 0;
        iovcnt = gather(blk, &seg, &offset,
                        blk->chain.num_readable + blk->chain.num_writable,
                        data_len);
        blk->reads++;
    }
    int ret = transfer(blk, write, iovcnt, (off_t)(sector * SECTOR_SIZE));
    if (ret) {
        blk->io_errors++;
        vmdev_log(VMDEV_LOG_WARN, "%s: %s at sector %llu: %s", blk->dev.name,
                  write ? "write" : "read", (unsigned long long)sector,
                  strerror(-ret));
        return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/*
 * One request. Returns the bytes written into the chain, or -1 for a
 * chain too short to hold a header and a status byte (a guest error).
 */
static int64_t handle_request(struct vmdev_virtio_blk *blk)
{
    const struct vmdev_vq_chain *c = &blk->chain;
    struct vmdev_vq_reader r;
    struct blk_header h;
    /* 5.2.6: a readable header and a writable status byte at least. */
    vmdev_vq_reader_init(&r, c);
    if (vmdev_vq_read_exact(&r, &h, sizeof(h)) || c->writable_len < 1)
        return -1;
    uint32_t type = le32toh(h.type);
    uint64_t sector = le64toh(h.sector);
    uint64_t in_data = c->writable_len - 1; /* before the status byte */
    uint64_t out_data = c->readable_len - sizeof(h);
    uint64_t written = 0;
    uint8_t status;

    switch (type) {
    case VIRTIO_BLK_T_IN:
        status = do_rw(blk, false, sector, in_data);
        if (status == VIRTIO_BLK_S_OK)
            written = in_data;
        break;
    case VIRTIO_BLK_T_OUT:
        status = do_rw(blk, true, sector, out_data);
        break;
    case VIRTIO_BLK_T_FLUSH:
        blk->flushes++;
        status = blk->readonly || fdatasync(blk->fd) == 0
                     ? VIRTIO_BLK_S_OK
                     : VIRTIO_BLK_S_IOERR;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        struct vmdev_vq_writer w;
        vmdev_vq_writer_init(&w, c);
        size_t n = in_data < sizeof(blk->id) ? in_data : sizeof(blk->id);
        vmdev_vq_write(&w, blk->id, n);
        written = n;
        status = VIRTIO_BLK_S_OK;
        break;
    }
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    /* The status is the chain's last writable byte (5.2.6). */
    struct vmdev_vq_writer w;
    vmdev_vq_writer_init(&w, c);
    vmdev_vq_writer_skip(&w, in_data);
    vmdev_vq_write(&w, &status, 1);
    return (int64_t)written + 1;
}

static int64_t serve_request(struct vmdev_virtio_device *dev,
                             struct vmdev_vq_chain *chain, const char **why)
{
    int64_t written = handle_request((struct vmdev_virtio_blk *)dev);
    if (written < 0)
        *why = "request without a header or a status byte";
    return written;
}

static void blk_queue_notify(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtio_blk *blk = (struct vmdev_virtio_blk *)dev;
    vmdev_virtio_process_queue(dev, index, &blk->chain, serve_request);
}

static void blk_destroy(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_blk *blk = (struct vmdev_virtio_blk *)dev;
    if (!blk->readonly)
        fdatasync(blk->fd);
    close(blk->fd);
    free(blk);
}

static const struct vmdev_virtio_device_ops blk_ops = {
    .read_config = blk_read_config,
    .queue_notify = blk_queue_notify,
    .destroy = blk_destroy,
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

struct vmdev_virtio_blk *vmdev_virtio_blk_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_blk_config *config)
{
    int fd = open(config->path,
                  (config->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    /* Block devices as raw disks come with the storage backends. */
    int err = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
    if (err) {
        close(fd);
        errno = err;
        return NULL;
    }
    struct vmdev_virtio_blk *blk = calloc(1, sizeof(*blk));
    if (!blk) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                        VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                        VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                        VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                        VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (config->readonly)
        features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
    if (vmdev_virtio_init(&blk->dev, name, VIRTIO_ID_BLOCK, &blk_ops, features,
                          CONFIG_LEN, 1, QUEUE_SIZE, mem)) {
        close(fd);
        free(blk);
        errno = ENOMEM;
        return NULL;
    }
    blk->fd = fd;
    blk->readonly = config->readonly;
    /* A raw image's size in whole sectors; a partial tail is not used. */
    blk->sectors = (uint64_t)st.st_size / SECTOR_SIZE;
    put_le(blk->config + CONFIG_CAPACITY, blk->sectors, 8);
    put_le(blk->config + CONFIG_SEG_MAX, SEG_MAX, 4);
    put_le(blk->config + CONFIG_BLK_SIZE, SECTOR_SIZE, 4);
    /* 5.2.6: the id is 20 bytes, NUL-padded, not NUL-terminated if full. */
    char path[4096];
    snprintf(path, sizeof(path), "%s", config->path);
    const char *serial = config->serial ? config->serial : basename(path);
    size_t serial_len = strlen(serial);
    memcpy(blk->id, serial,
           serial_len < sizeof(blk->id) ? serial_len : sizeof(blk->id));
    return blk;
}

struct vmdev_virtio_device *vmdev_virtio_blk_device(struct vmdev_virtio_blk *blk)
{
    return &blk->dev;
}

void vmdev_virtio_blk_free(struct vmdev_virtio_blk *blk)
{
    if (blk)
        vmdev_virtio_destroy(&blk->dev);
}
