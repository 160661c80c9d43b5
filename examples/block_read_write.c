/* SPDX-License-Identifier: MIT */
/*
 * The block layer without a guest: create a qcow2 image (or a raw one),
 * open it, write a block at an offset through an I/O engine, read it back
 * and compare; then open the image again and read it once more, to see
 * the write reached the file.
 *
 *   block_read_write DIR [raw|qcow2]
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <vmdev/vmdev.h>

#define BLOCK 4096
#define AT (5u << 20) /* 5 MiB into a 16 MiB disk */

static void finished(struct vmdev_block_request *req, int64_t result)
{
    *(int64_t *)req->opaque = result;
}

/* One read or write of a block at AT, waited for: bytes moved or -errno. */
static int64_t transfer(struct vmdev_block *disk, struct vmdev_io_engine *engine,
                        enum vmdev_io_op op, void *buf)
{
    int64_t result = 1; /* not finished */
    struct iovec iov = { buf, BLOCK };
    struct vmdev_block_request req = {
        .op = op, .offset = AT, .iov = &iov, .iovcnt = 1,
        .done = finished, .opaque = &result,
    };
    int ret = vmdev_block_submit(disk, engine, &req);
    if (ret)
        return ret;
    /* The engine's eventfd says something finished; complete() runs the
     * done() callbacks. A VMM watches the eventfd in its event loop. */
    struct pollfd p = { .fd = vmdev_io_engine_eventfd(engine), .events = POLLIN };
    while (result == 1) {
        if (poll(&p, 1, 10000) != 1)
            return -1;
        vmdev_io_engine_complete(engine);
    }
    return result;
}

static struct vmdev_block *open_image(const char *path,
                                      enum vmdev_block_format format)
{
    char why[256] = "";
    struct vmdev_block_options options = { .path = path, .format = format };
    struct vmdev_block *disk = vmdev_block_new(&options, why, sizeof(why));
    if (!disk)
        fprintf(stderr, "block_read_write: %s\n", why);
    return disk;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DIR [raw|qcow2]\n", argv[0]);
        return 2;
    }
    enum vmdev_block_format format =
        argc == 3 && !strcmp(argv[2], "raw") ? VMDEV_BLOCK_FORMAT_RAW
                                             : VMDEV_BLOCK_FORMAT_QCOW2;
    char path[4096];
    snprintf(path, sizeof(path), "%s/example.%s", argv[1],
             format == VMDEV_BLOCK_FORMAT_RAW ? "raw" : "qcow2");
    char why[256] = "";
    struct vmdev_block_create_options create = {
        .path = path, .format = format, .size = 16u << 20,
    };
    if (vmdev_block_create(&create, why, sizeof(why))) {
        fprintf(stderr, "block_read_write: %s\n", why);
        return 1;
    }

    static unsigned char written[BLOCK], read_back[BLOCK];
    for (unsigned i = 0; i < BLOCK; i++)
        written[i] = (unsigned char)(i * 7 + 3);
    struct vmdev_io_engine *engine =
        vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 32);
    struct vmdev_block *disk = open_image(path, format);
    if (!engine || !disk)
        return 1;
    if (transfer(disk, engine, VMDEV_IO_WRITE, written) != BLOCK ||
        transfer(disk, engine, VMDEV_IO_READ, read_back) != BLOCK ||
        memcmp(written, read_back, BLOCK)) {
        fprintf(stderr, "block_read_write: the block read back differs\n");
        return 1;
    }
    vmdev_block_free(disk);

    /* Again from the file. */
    memset(read_back, 0, BLOCK);
    disk = open_image(path, format);
    if (!disk || transfer(disk, engine, VMDEV_IO_READ, read_back) != BLOCK ||
        memcmp(written, read_back, BLOCK)) {
        fprintf(stderr, "block_read_write: the block did not reach %s\n", path);
        return 1;
    }
    printf("block_read_write: %s (%llu bytes, %s engine): block at %u "
           "written and read back\n", path,
           (unsigned long long)vmdev_block_size(disk),
           vmdev_io_engine_name(engine), AT);
    vmdev_block_free(disk);
    vmdev_io_engine_free(engine);
    return 0;
}
