/* SPDX-License-Identifier: MIT */
/*
 * The raw format: the image's bytes are the disk's, so a request goes to
 * the engine as it is, once the block layer has checked it (inside the
 * disk, aligned for O_DIRECT, writable).
 */
#include "block/format.h"

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

const struct block_format_ops block_raw_format = {
    .name = "raw",
    .submit = raw_submit,
};
