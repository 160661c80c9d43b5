/* SPDX-License-Identifier: MIT */
#include "block_sync.h"

#include <errno.h>

#include "engine_wait.h"

struct outcome {
    unsigned done;
    int64_t result;
};

static void note_done(struct vmdev_block_request *req, int64_t result)
{
    struct outcome *o = req->opaque;
    o->result = result;
    o->done++;
}

int64_t block_sync(struct vmdev_block *b, struct vmdev_io_engine *e,
                   enum vmdev_io_op op, uint64_t offset, void *buf,
                   uint64_t len)
{
    struct outcome outcome = { 0 };
    struct iovec iov = { buf, len };
    struct vmdev_block_request req = { .op = op, .offset = offset,
                                       .done = note_done,
                                       .opaque = &outcome };
    if (op == VMDEV_IO_READ || op == VMDEV_IO_WRITE) {
        req.iov = &iov;
        req.iovcnt = 1;
    } else if (op != VMDEV_IO_FLUSH) {
        req.len = len;
    }
    int ret = vmdev_block_submit(b, e, &req);
    if (ret)
        return ret;
    return engine_wait(e, &outcome.done, 1) ? outcome.result : -ETIMEDOUT;
}
