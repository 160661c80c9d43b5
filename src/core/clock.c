/* SPDX-License-Identifier: MIT */
#include "vmdev/clock.h"

#include <time.h>

static uint64_t host_now_ns(void *opaque, enum vmdev_clock_id id)
{
    struct timespec ts;
    clock_gettime(id == VMDEV_CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC,
                  &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const struct vmdev_clock vmdev_host_clock = { host_now_ns, NULL };
