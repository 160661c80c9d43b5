/* SPDX-License-Identifier: MIT */
/* Shared by the block tests: drive an engine until requests finish. */
#ifndef VMDEV_TEST_ENGINE_WAIT_H
#define VMDEV_TEST_ENGINE_WAIT_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>

#include "vmdev/io_engine.h"

/* Complete on e until *done_calls reaches want (the tests' done()
 * callbacks count); false when nothing finishes for 10 s. */
static inline bool engine_wait(struct vmdev_io_engine *e,
                               const unsigned *done_calls, unsigned want)
{
    struct pollfd p = { .fd = vmdev_io_engine_eventfd(e), .events = POLLIN };
    while (*done_calls < want) {
        /* A signal (libFuzzer's timeout alarm) is not a hang. */
        int n = poll(&p, 1, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 1)
            return false;
        vmdev_io_engine_complete(e);
    }
    return true;
}

#endif
