/* SPDX-License-Identifier: MIT */
/*
 * What the qcow2 fuzz targets share: a scratch directory (on tmpfs when
 * the host has /dev/shm, so the many fdatasyncs of a writable qcow2 cost
 * nothing), one I/O engine, and the exercise every image gets: opened
 * read-only and read whole in two chunkings; opened writable, written,
 * zeroed, discarded, flushed and read again; its snapshots listed, one
 * created, applied and deleted with writes between. A refusal must come
 * with a reason.
 *
 * And a bound on the work one image can cause, far below libFuzzer's
 * 10 s timeout: a watchdog aborts an input that runs longer than
 * QCOW2_RIG_MAX_SECONDS, and after the exercise the file may have grown
 * only as far as the writes, the metadata they need and the snapshot
 * switches' copies explain (blocks actually stored), with its end at most
 * the 1 GiB of counted clusters past it that a writable open accepts as
 * a crash's leaks (MAX_LEAKED_BYTES in src/block/qcow2.h) further.
 */
#ifndef VMDEV_FUZZ_QCOW2_RIG_H
#define VMDEV_FUZZ_QCOW2_RIG_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine_wait.h"
#include "vmdev/block.h"

#define QCOW2_RIG_MAX_READ (256u << 10) /* of the disk, whatever it claims */
#define QCOW2_RIG_MAX_SECONDS 3
/* Appending may start this far past the end of the file (a crash's
 * leaks, which a writable open steps over once). */
#define QCOW2_RIG_LEAKS_ACCEPTED (1ull << 30)

struct qcow2_rig {
    char dir[64];
    struct vmdev_io_engine *engine;
    unsigned done_calls;
    uint8_t *buf; /* QCOW2_RIG_MAX_READ bytes */
    timer_t watchdog;
};

static void qcow2_rig_overran(int sig)
{
    (void)sig;
    static const char says[] = "qcow2 fuzz: one input ran longer than the "
                               "work bound (QCOW2_RIG_MAX_SECONDS)\n";
    if (write(2, says, sizeof(says) - 1) < 0) {
        /* Aborting anyway. */
    }
    abort();
}

/* The watchdog signals this thread (the one running the input), so the
 * report shows where the work was going on. */
static inline void qcow2_rig_init(struct qcow2_rig *r, const char *prefix)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(r->dir, sizeof(r->dir), "%s/%s-XXXXXX", base, prefix);
    if (!mkdtemp(r->dir))
        abort();
    r->engine = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    r->buf = malloc(QCOW2_RIG_MAX_READ);
    struct sigaction sa = { .sa_handler = qcow2_rig_overran };
    struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID,
                           .sigev_signo = SIGUSR2 };
    ev._sigev_un._tid = gettid();
    if (!r->engine || !r->buf || sigaction(SIGUSR2, &sa, NULL) ||
        timer_create(CLOCK_MONOTONIC, &ev, &r->watchdog))
        abort();
}

static inline void qcow2_rig_arm(struct qcow2_rig *r, bool on)
{
    struct itimerspec t = { .it_value = { on ? QCOW2_RIG_MAX_SECONDS : 0, 0 } };
    if (timer_settime(r->watchdog, 0, &t, NULL))
        abort();
}

/* dir/name into out. */
static inline void qcow2_rig_path(const struct qcow2_rig *r, const char *name,
                                  char *out, size_t len)
{
    snprintf(out, len, "%s/%s", r->dir, name);
}

static void qcow2_rig_note_done(struct vmdev_block_request *req,
                                int64_t result)
{
    (void)result;
    (*(unsigned *)req->opaque)++;
}

/* op on [offset, offset + len), buffers in pieces (1 to 4); waited for. */
static inline void qcow2_rig_run(struct qcow2_rig *r, struct vmdev_block *b,
                                 enum vmdev_io_op op, uint64_t offset,
                                 uint8_t *buf, uint64_t len, unsigned pieces)
{
    struct iovec iov[4];
    uint64_t piece = len / pieces;
    for (unsigned i = 0; i < pieces; i++)
        iov[i] = (struct iovec){ buf ? buf + i * piece : NULL,
                                 i + 1 == pieces ? len - i * piece : piece };
    struct vmdev_block_request req = { .op = op, .offset = offset,
                                       .done = qcow2_rig_note_done,
                                       .opaque = &r->done_calls };
    if (op == VMDEV_IO_READ || op == VMDEV_IO_WRITE) {
        req.iov = iov;
        req.iovcnt = pieces;
    } else {
        req.len = len;
        req.unmap = pieces > 1;
    }
    if (vmdev_block_submit(b, r->engine, &req))
        return;
    /* A request that never finishes is a hang to report. */
    if (!engine_wait(r->engine, &r->done_calls, r->done_calls + 1))
        abort();
}

/* Snapshot operations over whatever snapshot table and tables the image
 * has: each succeeds or says why. */
static inline void qcow2_rig_snapshots(struct qcow2_rig *r,
                                       struct vmdev_block *b, uint64_t disk,
                                       uint64_t len)
{
    char why[256] = "";
    struct vmdev_block_snapshot *list;
    int n = vmdev_block_snapshot_list(b, &list);
    if (n > 0 && vmdev_block_snapshot_apply(b, list[0].id, why, sizeof(why)) &&
        !why[0])
        abort();
    vmdev_block_snapshot_list_free(list, n);
    why[0] = '\0';
    if (vmdev_block_snapshot_create(b, "fuzz", why, sizeof(why))) {
        if (!why[0])
            abort();
        return;
    }
    if (len) {
        memset(r->buf, 0xa5, len);
        qcow2_rig_run(r, b, VMDEV_IO_WRITE, disk / 2, r->buf, len / 2 + 1, 1);
    }
    why[0] = '\0';
    if (vmdev_block_snapshot_apply(b, "fuzz", why, sizeof(why)) && !why[0])
        abort();
    if (len)
        qcow2_rig_run(r, b, VMDEV_IO_READ, 0, r->buf, len, 1);
    why[0] = '\0';
    if (vmdev_block_snapshot_delete(b, "fuzz", why, sizeof(why)) && !why[0])
        abort();
}

/* The image's cluster size as its header says, within qcow2's range. */
static inline uint64_t qcow2_rig_cluster_size(const char *path)
{
    uint8_t h[24] = { 0 };
    FILE *f = fopen(path, "r");
    if (f) {
        if (fread(h, 1, sizeof(h), f) != sizeof(h))
            h[23] = 16;
        fclose(f);
    }
    unsigned bits = h[23] < 9 ? 9 : h[23] > 21 ? 21 : h[23];
    return 1ull << bits;
}

static inline struct stat qcow2_rig_stat(const char *path)
{
    struct stat st;
    if (stat(path, &st))
        abort();
    return st;
}

/*
 * The file may grow by what the exercise writes and what that needs, for
 * any image: a few requests of at most QCOW2_RIG_MAX_READ (each cluster
 * they touch allocated whole, with its L2 table and refcount block), the
 * refcount table's growth (at most 8 MiB), and each snapshot switch's
 * copy of the metadata there was (three switches, each at most the file
 * as it was then). Its end may move past the stored blocks by at most the
 * leaks a writable open accepts.
 */
static inline void qcow2_rig_check_growth(const char *path,
                                          const struct stat *before,
                                          uint64_t cluster_size)
{
    struct stat after = qcow2_rig_stat(path);
    uint64_t stored_before = (uint64_t)before->st_blocks * 512,
             stored_after = (uint64_t)after.st_blocks * 512;
    uint64_t size_before = (uint64_t)before->st_size;
    uint64_t ops_bytes = 16 * (QCOW2_RIG_MAX_READ + 4 * cluster_size) +
                         (16ull << 20);
    uint64_t stored_limit = 4 * (stored_before > size_before ? stored_before
                                                             : size_before) +
                            ops_bytes;
    uint64_t size_limit = 4 * size_before + ops_bytes + QCOW2_RIG_LEAKS_ACCEPTED;
    if (stored_after > stored_limit || (uint64_t)after.st_size > size_limit) {
        fprintf(stderr, "qcow2 fuzz: the image grew from %llu bytes (%llu "
                "stored) to %llu (%llu stored), past the bound of %llu "
                "(%llu stored) for %llu-byte clusters\n",
                (unsigned long long)size_before,
                (unsigned long long)stored_before,
                (unsigned long long)after.st_size,
                (unsigned long long)stored_after,
                (unsigned long long)size_limit,
                (unsigned long long)stored_limit,
                (unsigned long long)cluster_size);
        abort();
    }
}

/* Open path as qcow2 (o gives the rest of the options) read-only, then
 * writable, exercising each; the work bound holds throughout. */
static inline void qcow2_rig_exercise(struct qcow2_rig *r,
                                      struct vmdev_block_options o)
{
    struct stat before = qcow2_rig_stat(o.path);
    uint64_t cluster_size = qcow2_rig_cluster_size(o.path);
    qcow2_rig_arm(r, true);
    o.readonly = true;
    char why[1024] = "";
    struct vmdev_block *b = vmdev_block_new(&o, why, sizeof(why));
    if (!b) {
        if (!why[0])
            abort();
        qcow2_rig_arm(r, false);
        return;
    }
    uint64_t disk = vmdev_block_size(b);
    uint64_t len = disk < QCOW2_RIG_MAX_READ ? disk : QCOW2_RIG_MAX_READ;
    if (len) {
        qcow2_rig_run(r, b, VMDEV_IO_READ, 0, r->buf, len, 3);
        qcow2_rig_run(r, b, VMDEV_IO_READ, disk - len, r->buf, len, 1);
    }
    vmdev_block_free(b);

    /* Writable: allocation, copy-on-write, zeroing and discarding over
     * whatever tables the image has, then a read of what came of it. */
    o.readonly = false;
    why[0] = '\0';
    b = vmdev_block_new(&o, why, sizeof(why));
    if (!b) {
        if (!why[0])
            abort();
        qcow2_rig_arm(r, false);
        return;
    }
    disk = vmdev_block_size(b);
    len = disk < QCOW2_RIG_MAX_READ ? disk : QCOW2_RIG_MAX_READ;
    if (len) {
        memset(r->buf, 0x5a, len);
        qcow2_rig_run(r, b, VMDEV_IO_WRITE, disk / 3, r->buf, len / 2 + 1, 2);
        qcow2_rig_run(r, b, VMDEV_IO_WRITE, disk - len, r->buf, len, 1);
        qcow2_rig_run(r, b, VMDEV_IO_WRITE_ZEROES, disk / 5, NULL,
                      len - len / 4, 2);
        qcow2_rig_run(r, b, VMDEV_IO_WRITE_ZEROES, disk / 7, NULL, len / 3, 1);
        qcow2_rig_run(r, b, VMDEV_IO_DISCARD, disk - len, NULL, len, 1);
        qcow2_rig_run(r, b, VMDEV_IO_FLUSH, 0, NULL, 0, 1);
        qcow2_rig_run(r, b, VMDEV_IO_READ, 0, r->buf, len, 3);
    }
    qcow2_rig_snapshots(r, b, disk, len);
    vmdev_block_free(b);
    qcow2_rig_arm(r, false);
    qcow2_rig_check_growth(o.path, &before, cluster_size);
}

#endif
