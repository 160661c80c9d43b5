/* SPDX-License-Identifier: MIT */
/*
 * Block backends: a disk image opened in a format (raw, or qcow2: versions
 * 2 and 3 read, version 3 written), read and written at byte offsets
 * through an I/O engine.
 *
 * A request is checked against the disk (inside it, aligned where the
 * cache mode needs it, writable) before anything is submitted, then runs
 * on the engine the caller passes: each I/O thread serving a disk has its
 * own engine, and a request's done() runs on that thread.
 *
 * Cache modes: writeback (the host's page cache; the guest's flushes reach
 * the disk), writethrough (every write is flushed before it completes) and
 * none (O_DIRECT; a request whose buffers are not aligned in memory goes
 * through an aligned bounce buffer). The guest can switch between
 * writeback and writethrough at run time (virtio-blk's WCE).
 */
#ifndef VMDEV_BLOCK_H
#define VMDEV_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdev/io_engine.h"
#include "vmdev/log.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vmdev_block_format {
    /* raw, but an image carrying the qcow2 magic is refused: a guest that
     * wrote a qcow2 header into its raw disk must never make the host
     * parse it (and open a backing file it names). */
    VMDEV_BLOCK_FORMAT_DEFAULT,
    VMDEV_BLOCK_FORMAT_RAW,
    VMDEV_BLOCK_FORMAT_QCOW2,
};

enum vmdev_block_cache {
    VMDEV_BLOCK_CACHE_WRITEBACK,
    VMDEV_BLOCK_CACHE_WRITETHROUGH,
    VMDEV_BLOCK_CACHE_NONE,
};

/*
 * A qcow2 image's backing file. Image files are not trusted (whoever
 * made the image chose their bytes), so the backing file name a
 * header carries is followed, at every level of a chain, only when it is
 * relative (found from the naming image's directory, as qemu-img does)
 * and its real path (symbolic links and ".." resolved) is inside that
 * directory, unless backing_outside allows other names; and, whatever
 * backing_outside says, only to a regular file, never a device, FIFO,
 * socket or directory. Otherwise an image could make the host read any
 * file it can (/etc/shadow, /dev/sda, /proc/self/fd/N of a device) into
 * the guest through its unallocated clusters. What the caller gives here (the
 * user's choice) is trusted.
 */
enum vmdev_block_backing {
    /* The name in the image's header, under the rules above. */
    VMDEV_BLOCK_BACKING_FROM_IMAGE,
    /* backing_file instead of the header's name (the top image only; the
     * names inside a qcow2 backing_file's own chain follow the rules). */
    VMDEV_BLOCK_BACKING_EXPLICIT,
    /* None: an image that names a backing file is refused. */
    VMDEV_BLOCK_BACKING_OFF,
};

struct vmdev_block_options {
    const char *path; /* a file or a block device */
    enum vmdev_block_format format;
    enum vmdev_block_cache cache;
    bool readonly;
    /* Zero (FROM_IMAGE, backing_outside false) is the safe default. */
    enum vmdev_block_backing backing;
    /* EXPLICIT: a file or a block device, opened read-only, a relative
     * path from the current directory; in backing_format, RAW or QCOW2,
     * or DEFAULT for the format the image's header names (refused if it
     * names none). The header is not changed. A raw image is refused
     * with EXPLICIT: it has no backing file. */
    const char *backing_file;
    enum vmdev_block_format backing_format;
    /* Follow header names that are absolute or lead outside the naming
     * image's directory, at every level (still regular files only). */
    bool backing_outside;
    /* Where the image's lines go (a corrupt image found in use): NULL,
     * stderr. The backing images log there too. */
    struct vmdev_log *log;
};

struct vmdev_block_stats {
    uint64_t reads, writes, flushes, discards, write_zeroes;
    uint64_t bytes_read, bytes_written;
    uint64_t bounced; /* requests copied through an aligned buffer */
    uint64_t errors;  /* requests that completed with an error */
};

struct vmdev_block;

/*
 * Open an image. NULL with errno set and a sentence in why (why_len
 * bytes, may be 0) saying what is wrong, for the user; nothing on disk
 * changes.
 */
struct vmdev_block *vmdev_block_new(const struct vmdev_block_options *options,
                                     char *why, size_t why_len);
/* Flushes a writable image (a format's tables too), then closes it. No
 * request may be in flight. */
void vmdev_block_free(struct vmdev_block *block);

uint64_t vmdev_block_size(const struct vmdev_block *block);
bool vmdev_block_readonly(const struct vmdev_block *block);
/* Offsets and lengths must be multiples of this (1 unless cache=none). */
uint32_t vmdev_block_alignment(const struct vmdev_block *block);
/* Writeback (true) or writethrough, where each write is flushed before it
 * completes (under cache=none too, for the disk's own cache). */
bool vmdev_block_writeback(const struct vmdev_block *block);
void vmdev_block_set_writeback(struct vmdev_block *block, bool writeback);
/* A copy of the counters (requests may update them on other threads). */
struct vmdev_block_stats vmdev_block_stats(const struct vmdev_block *block);

struct vmdev_block_request {
    enum vmdev_io_op op;
    uint64_t offset;
    const struct iovec *iov; /* READ, WRITE */
    unsigned iovcnt;
    uint64_t len;            /* DISCARD, WRITE_ZEROES */
    bool unmap;              /* WRITE_ZEROES */
    /* Bytes moved (READ, WRITE: all of them), 0, or -errno. */
    void (*done)(struct vmdev_block_request *req, int64_t result);
    void *opaque;

    /* The block layer's, while in flight. */
    struct vmdev_io io;
    struct vmdev_block *block;
    struct vmdev_io_engine *engine;
    void *bounce; /* cache=none, buffers not aligned */
    struct iovec bounce_iov;
    const struct iovec *data_iov; /* iov, or the bounce buffer */
    unsigned data_iovcnt;
    int64_t write_result; /* a writethrough write, waiting for its flush */
};

/*
 * What vmdev_block_submit would refuse before it allocates anything:
 * -EINVAL or -EROFS, as there, or 0. For a caller that reserves something
 * of its own for a request only if the block layer will take it.
 */
int vmdev_block_check(const struct vmdev_block *block,
                      const struct vmdev_block_request *req);

/*
 * Start req on engine. Returns 0, or before anything starts (done() is
 * not called): -EINVAL for a malformed request, one outside the disk or
 * one not aligned as cache=none needs; -EROFS for a write, discard or
 * write-zeroes on a read-only image; -ENOMEM.
 */
__attribute__((warn_unused_result))
int vmdev_block_submit(struct vmdev_block *block,
                       struct vmdev_io_engine *engine,
                       struct vmdev_block_request *req);

/* A new image. */
struct vmdev_block_create_options {
    const char *path; /* must not exist yet */
    enum vmdev_block_format format; /* RAW or QCOW2 (DEFAULT: raw) */
    /* Bytes, rounded up to 512; 0 with a backing file: the backing
     * file's size. */
    uint64_t size;
    /* qcow2 (version 3, 16-bit refcounts, as qemu-img makes them): */
    uint32_t cluster_size; /* a power of two, 512 B to 2 MiB; 0: 64 KiB */
    /* Written into the image as given; a relative name is found from the
     * image's directory. It must open, in backing_format (RAW, QCOW2):
     * the caller's choice, so it may be absolute, lead outside the
     * directory or be a block device, but opening the new image later
     * follows the first two only with backing_outside, and never a
     * device: that takes VMDEV_BLOCK_BACKING_EXPLICIT.
     * The names inside its own chain follow the rules of opening, and
     * backing_outside here is the same flag for them. */
    const char *backing_file;
    enum vmdev_block_format backing_format;
    bool backing_outside;
};

/*
 * Create an image: 0, or -errno with a sentence in why (why_len bytes,
 * may be 0) and no file left behind: -EEXIST if path exists, -EINVAL for
 * a bad option, the backing file's error if it does not open, -EFBIG
 * for a disk the cluster size cannot map (a 32 MiB L1 table).
 */
int vmdev_block_create(const struct vmdev_block_create_options *options,
                       char *why, size_t why_len);

/*
 * Internal snapshots (qcow2): a snapshot keeps the disk as it was, and
 * the disk can later be put back to it. `qemu-img snapshot` reads and
 * changes the same table. Each change reaches the file in one step a
 * crash cannot split (see qcow2_snapshot.c), and is durable when it
 * returns.
 *
 * create, apply and delete need a writable image and no request in
 * flight. They return 0, or -errno with a sentence in why (why_len bytes,
 * may be 0): -EBUSY while requests are in flight, -ENOTSUP for a format
 * without snapshots, -EROFS, -EFBIG past QEMU's limits (65536 snapshots,
 * a 64 MiB table) or ours (1 GiB of refcounts to recount), -ENOENT
 * for no such snapshot, -EEXIST for a name in use, -EINVAL for a bad
 * name, -ERANGE when the image's refcount width cannot count one more
 * reference to its clusters, -EIO.
 */
struct vmdev_block_snapshot {
    char *id;               /* unique: "1", "2", ... as QEMU numbers them */
    char *name;
    uint64_t disk_size;
    uint64_t vm_state_size; /* saved VM state (QEMU's savevm); ours: 0 */
    uint64_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
};

/* The image's snapshots, oldest first, into *list (released with
 * vmdev_block_snapshot_list_free()): their count, or -errno. */
int vmdev_block_snapshot_list(struct vmdev_block *block,
                              struct vmdev_block_snapshot **list);
void vmdev_block_snapshot_list_free(struct vmdev_block_snapshot *list,
                                    int count);
/* A snapshot of the disk as it is now, named name (not an existing
 * snapshot's name or id). */
int vmdev_block_snapshot_create(struct vmdev_block *block, const char *name,
                                char *why, size_t why_len);
/* Put the disk back to a snapshot, found by id first and then by name
 * (as QEMU finds them); it stays, and can be applied again. */
int vmdev_block_snapshot_apply(struct vmdev_block *block,
                               const char *id_or_name, char *why,
                               size_t why_len);
int vmdev_block_snapshot_delete(struct vmdev_block *block,
                                const char *id_or_name, char *why,
                                size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
