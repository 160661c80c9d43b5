/* SPDX-License-Identifier: MIT */
/*
 * Creating images: the options checked, the file made (never over an
 * existing one), the format written into it, and on any failure the file
 * removed again, so a refused creation leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/format.h"

#define DEFAULT_CLUSTER_SIZE 65536u
#define MIN_CLUSTER_SIZE 512u
#define MAX_CLUSTER_SIZE (2u << 20)
#define MAX_BACKING_NAME 1023 /* as QEMU */

/* The backing file opens in its format: its size, or -errno and why. The
 * caller chose it, so it is opened as the user's own file (any path, a
 * block device too); the names in its own chain are an image's, and
 * follow the rules of opening. */
static int backing_size(const struct vmdev_block_create_options *o,
                        uint64_t *size, char *why, size_t why_len)
{
    if (o->backing_format != VMDEV_BLOCK_FORMAT_RAW &&
        o->backing_format != VMDEV_BLOCK_FORMAT_QCOW2)
        return block_refuse(why, why_len, "backing file %s needs its format "
                            "(raw or qcow2)", o->backing_file);
    char full[PATH_MAX * 2];
    block_backing_path(o->path, o->backing_file, full, sizeof(full));
    struct vmdev_block_options b = {
        .path = full, .format = o->backing_format,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
        .backing_outside = o->backing_outside,
    };
    char inner[1024] = "";
    struct vmdev_block *backing = vmdev_block_new(&b, inner, sizeof(inner));
    if (!backing) {
        int err = errno;
        block_refuse(why, why_len, "backing file %s: %s", full, inner);
        return -err;
    }
    *size = vmdev_block_size(backing);
    vmdev_block_free(backing);
    return 0;
}

/* The options, checked and completed: cluster size and disk size. */
static int check_options(struct vmdev_block_create_options *o, char *why,
                         size_t why_len)
{
    if (!o->path || !*o->path)
        return block_refuse(why, why_len, "no path for the new image");
    if (o->format == VMDEV_BLOCK_FORMAT_DEFAULT)
        o->format = VMDEV_BLOCK_FORMAT_RAW;
    if (o->format == VMDEV_BLOCK_FORMAT_RAW) {
        if (o->backing_file || o->cluster_size)
            return block_refuse(why, why_len, "raw images have no %s",
                                o->backing_file ? "backing file"
                                                : "cluster size");
    } else if (o->format != VMDEV_BLOCK_FORMAT_QCOW2) {
        return block_refuse(why, why_len, "unknown image format %d",
                            (int)o->format);
    } else {
        if (!o->cluster_size)
            o->cluster_size = DEFAULT_CLUSTER_SIZE;
        if (o->cluster_size < MIN_CLUSTER_SIZE ||
            o->cluster_size > MAX_CLUSTER_SIZE ||
            (o->cluster_size & (o->cluster_size - 1)))
            return block_refuse(why, why_len, "cluster size %u is not a power "
                                "of two from %u to %u", o->cluster_size,
                                MIN_CLUSTER_SIZE, MAX_CLUSTER_SIZE);
    }
    if (o->backing_file && strlen(o->backing_file) > MAX_BACKING_NAME)
        return block_refuse(why, why_len, "the backing file name is longer "
                            "than %d bytes", MAX_BACKING_NAME);
    if (o->backing_file) {
        uint64_t size;
        int ret = backing_size(o, &size, why, why_len);
        if (ret)
            return ret;
        if (!o->size)
            o->size = size;
    }
    /* As qemu-img: whole sectors, and what qcow2 can address. */
    if (o->size > (1ull << 62))
        return block_refuse(why, why_len, "a %llu-byte disk is too big",
                            (unsigned long long)o->size);
    o->size = (o->size + 511) & ~511ull;
    return 0;
}

int vmdev_block_create(const struct vmdev_block_create_options *options,
                       char *why, size_t why_len)
{
    struct vmdev_block_create_options o = *options;
    int ret = check_options(&o, why, why_len);
    if (ret)
        return ret;
    int fd = open(o.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        block_refuse(why, why_len, "cannot create %s: %s", o.path,
                     strerror(errno));
        return ret;
    }
    if (o.format == VMDEV_BLOCK_FORMAT_QCOW2) {
        ret = qcow2_create(fd, &o, o.size, why, why_len);
    } else if (ftruncate(fd, (off_t)o.size)) {
        ret = -errno;
        block_refuse(why, why_len, "cannot size %s: %s", o.path,
                     strerror(errno));
    }
    if (!ret && fdatasync(fd)) {
        ret = -errno;
        block_refuse(why, why_len, "cannot write %s: %s", o.path,
                     strerror(errno));
    }
    close(fd);
    if (ret)
        unlink(o.path);
    return ret;
}
