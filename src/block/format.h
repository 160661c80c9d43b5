/* SPDX-License-Identifier: MIT */
/*
 * What the block layer (block.c: opening, request checks, cache modes,
 * counters) shares with the image formats (formats/raw.c, formats/qcow2*.c).
 */
#ifndef VMDEV_BLOCK_FORMAT_H
#define VMDEV_BLOCK_FORMAT_H

#include <stdatomic.h>

#include "vmdev/block.h"

struct block_format_ops {
    const char *name;
    /*
     * Start req, already checked against the disk; READ and WRITE move
     * req->data_iov. Returns 0 (block_request_done() follows, on the
     * engine's thread) or -errno before anything started.
     */
    int (*submit)(struct vmdev_block *b, struct vmdev_block_request *req);
    /* [offset, offset + len) of the disk into buf, blocking: a backing
     * image's bytes for copy-on-write. NULL: the file's bytes (raw). */
    int (*read_sync)(struct vmdev_block *b, uint64_t offset, void *buf,
                     uint64_t len);
    /* Put what the format keeps in memory into the file, ahead of a
     * writethrough write's fdatasync. NULL: nothing kept. */
    int (*write_metadata)(struct vmdev_block *b);
    /* Internal snapshots (vmdev/block.h); NULL: the format has none. The
     * block layer has checked the image is writable for the changes. */
    int (*snapshot_list)(struct vmdev_block *b,
                         struct vmdev_block_snapshot **list);
    int (*snapshot_create)(struct vmdev_block *b, const char *name,
                           char *why, size_t why_len);
    int (*snapshot_apply)(struct vmdev_block *b, const char *id_or_name,
                          char *why, size_t why_len);
    int (*snapshot_delete)(struct vmdev_block *b, const char *id_or_name,
                           char *why, size_t why_len);
    /* Release the format's state; the file is closed after. */
    void (*close)(struct vmdev_block *b);
};

/* A raw image's format: its bytes are the disk's (formats/raw.c). */
extern const struct block_format_ops block_raw_format;

struct vmdev_block {
    int fd;
    uint64_t size; /* the disk's, as the guest sees it */
    bool readonly;
    enum vmdev_block_cache cache;
    uint32_t alignment; /* offsets and lengths (O_DIRECT) */
    atomic_bool writeback;
    /* Requests submitted and not yet done (snapshot operations need 0). */
    atomic_uint in_flight;
    const struct block_format_ops *format;
    void *format_state;
    struct {
        atomic_uint_fast64_t reads, writes, flushes, discards, write_zeroes;
        atomic_uint_fast64_t bytes_read, bytes_written, bounced, errors;
    } stats;
};

/* A sentence for the user in why (why_len bytes; none when 0) saying why
 * an image is refused. Returns -EINVAL, the refusal of a bad image. */
__attribute__((format(printf, 3, 4)))
int block_refuse(char *why, size_t why_len, const char *fmt, ...);

/* The format is done with req: result is the bytes moved (READ, WRITE),
 * 0 or -errno. Writethrough, bounce copies and counters happen here. */
void block_request_done(struct vmdev_block_request *req, int64_t result);

/* All of [offset, offset + len) of fd, or -errno (-EIO at end of file). */
int block_pread_exact(int fd, void *buf, size_t len, uint64_t offset);
int block_pwrite_exact(int fd, const void *buf, size_t len, uint64_t offset);

/* The disk's [offset, offset + len) into buf on this thread: 0 or -errno. */
int block_read_sync(struct vmdev_block *b, uint64_t offset, void *buf,
                    uint64_t len);

/* text into out (out_len bytes, cut short to fit) with every byte that
 * is not printable ASCII as '?': a name from an image, safe to show on a
 * terminal. Returns out. */
const char *block_printable(const char *text, char *out, size_t out_len);

/* Where a backing file named `name` in the image at `image` is: relative
 * to the image's directory unless absolute, as qemu-img resolves it. */
void block_backing_path(const char *image, const char *name, char *out,
                  size_t out_len);

/* Who chose a file block_open() opens, and how deep in a chain it is. */
struct block_origin {
    /* Backing file number depth of the image the user opened (0: that
     * one). */
    unsigned depth;
    /* NULL: the user chose it (a file or a block device). Otherwise the
     * image whose header named it, and the name as written there: not
     * trusted, so it must be a regular file (vmdev/block.h). */
    const char *named_in;
    const char *name;
};

/* Whether the image at `image` may name `name` as its backing file
 * without backing_outside (vmdev/block.h): relative, and its real path
 * inside the image's directory. 0, or -errno and why, which names the
 * rule and the option that relaxes it. */
int block_backing_name_check(const char *image, const char *name, char *why,
                       size_t why_len);

/* vmdev_block_new() for a file of a chain. */
struct vmdev_block *block_open(const struct vmdev_block_options *options,
                               const struct block_origin *origin, char *why,
                               size_t why_len);

/*
 * qcow2.c: read and check the qcow2 image options->path open at b->fd
 * (b->readonly, b->cache, b->alignment set), open its backing chain as
 * options say, set b->size, b->format and b->format_state. 0, or -errno
 * with a sentence in why and nothing held.
 */
int qcow2_open(struct vmdev_block *b, const struct vmdev_block_options *options,
               unsigned depth, char *why, size_t why_len);

/* qcow2_create.c: a new, empty qcow2 image of `size` bytes into the empty
 * file fd, as options say (checked). 0, or -errno with a sentence in why. */
int qcow2_create(int fd, const struct vmdev_block_create_options *options,
                 uint64_t size, char *why, size_t why_len);

#endif
