/* SPDX-License-Identifier: MIT */
/* Shared by the block tests: one request through the block layer,
 * waited for. */
#ifndef VMDEV_TEST_BLOCK_SYNC_H
#define VMDEV_TEST_BLOCK_SYNC_H

#include <stdint.h>

#include "vmdev/block.h"

/*
 * op on [offset, offset + len) of b through e, buf the data of READ and
 * WRITE: the request's result (bytes moved, 0 or -errno), a submit error,
 * or -ETIMEDOUT when nothing completes for 10 s.
 */
int64_t block_sync(struct vmdev_block *b, struct vmdev_io_engine *e,
                   enum vmdev_io_op op, uint64_t offset, void *buf,
                   uint64_t len);

#endif
