/* SPDX-License-Identifier: MIT */
/*
 * qcow2 images as an attacker writes them: the input is the image file.
 * It is opened read-only as qcow2 and read whole through the real I/O
 * engine, in two chunkings; then writable, written, zeroed, discarded,
 * flushed and read again; then its snapshots listed, one created,
 * applied and deleted with writes between. A refusal must come with a
 * reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_wait.h"
#include "vmdev/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_READ (256u << 10) /* of the disk, whatever size it claims */

static char path[] = "/tmp/vmdev-fuzz-qcow2-XXXXXX";
static struct vmdev_io_engine *engine;
static unsigned done_calls;

static void remove_image(void)
{
    unlink(path);
}

static void note_done(struct vmdev_block_request *req, int64_t result)
{
    (void)req;
    (void)result;
    done_calls++;
}

/* op on [offset, offset + len), buffers in pieces; waited for. */
static void run(struct vmdev_block *b, enum vmdev_io_op op, uint64_t offset,
                uint8_t *buf, uint64_t len, unsigned pieces)
{
    struct iovec iov[4];
    uint64_t piece = len / pieces;
    for (unsigned i = 0; i < pieces; i++)
        iov[i] = (struct iovec){ buf ? buf + i * piece : NULL,
                                 i + 1 == pieces ? len - i * piece : piece };
    struct vmdev_block_request req = { .op = op, .offset = offset,
                                       .done = note_done };
    if (op == VMDEV_IO_READ || op == VMDEV_IO_WRITE) {
        req.iov = iov;
        req.iovcnt = pieces;
    } else {
        req.len = len;
        req.unmap = pieces > 1;
    }
    if (vmdev_block_submit(b, engine, &req))
        return;
    /* A request that never finishes is a hang to report. */
    if (!engine_wait(engine, &done_calls, done_calls + 1))
        abort();
}

/* Snapshot operations over whatever snapshot table and tables the
 * image has: each succeeds or says why. */
static void snapshots(struct vmdev_block *b, uint64_t disk, uint64_t len)
{
    static uint8_t buf[MAX_READ];
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
        memset(buf, 0xa5, len);
        run(b, VMDEV_IO_WRITE, disk / 2, buf, len / 2 + 1, 1);
    }
    why[0] = '\0';
    if (vmdev_block_snapshot_apply(b, "fuzz", why, sizeof(why)) && !why[0])
        abort();
    if (len)
        run(b, VMDEV_IO_READ, 0, buf, len, 1);
    why[0] = '\0';
    if (vmdev_block_snapshot_delete(b, "fuzz", why, sizeof(why)) && !why[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine) {
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_image);
        engine = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
        if (!engine)
            abort();
    }
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    struct vmdev_block_options o = {
        .path = path, .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
    };
    char why[256] = "";
    struct vmdev_block *b = vmdev_block_open(&o, why, sizeof(why));
    if (!b) {
        if (!why[0])
            abort();
        return 0;
    }
    static uint8_t buf[MAX_READ];
    uint64_t disk = vmdev_block_size(b);
    uint64_t len = disk < MAX_READ ? disk : MAX_READ;
    if (len) {
        run(b, VMDEV_IO_READ, 0, buf, len, 3);
        run(b, VMDEV_IO_READ, disk - len, buf, len, 1);
    }
    vmdev_block_close(b);

    /* Writable: allocation, copy-on-write, zeroing and discarding over
     * whatever tables the image has, then a read of what came of it. */
    o.readonly = false;
    b = vmdev_block_open(&o, why, sizeof(why));
    if (!b)
        return 0;
    disk = vmdev_block_size(b);
    len = disk < MAX_READ ? disk : MAX_READ;
    if (len) {
        memset(buf, 0x5a, len);
        run(b, VMDEV_IO_WRITE, disk / 3, buf, len / 2 + 1, 2);
        run(b, VMDEV_IO_WRITE, disk - len, buf, len, 1);
        run(b, VMDEV_IO_WRITE_ZEROES, disk / 5, NULL, len - len / 4, 2);
        run(b, VMDEV_IO_WRITE_ZEROES, disk / 7, NULL, len / 3, 1);
        run(b, VMDEV_IO_DISCARD, disk - len, NULL, len, 1);
        run(b, VMDEV_IO_FLUSH, 0, NULL, 0, 1);
        run(b, VMDEV_IO_READ, 0, buf, len, 3);
    }
    snapshots(b, disk, len);
    vmdev_block_close(b);
    return 0;
}
