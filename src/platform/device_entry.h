/* SPDX-License-Identifier: MIT */
/*
 * A platform device's device-manager ops (vmdev_device_ops), defined once
 * here for every device with the same shape: the entry's opaque is the
 * device itself, destroy frees it, and save and restore write and read
 * its state under the entry's id. A VMM adds the device with
 * vmdev_device_add(..., &vmdev_foo_device_ops, foo, ...) and writes no
 * callbacks of its own.
 */
#ifndef VMDEV_PLATFORM_DEVICE_ENTRY_H
#define VMDEV_PLATFORM_DEVICE_ENTRY_H

#include "vmdev/device_manager.h"

#define VMDEV_PLATFORM_DEVICE_OPS(prefix, type)                               \
    static void prefix##_entry_destroy(void *opaque)                          \
    {                                                                          \
        prefix##_free((type *)opaque);                                         \
    }                                                                          \
    static void prefix##_entry_save(void *opaque,                             \
                                    struct vmdev_state_writer *w,             \
                                    const char *id)                           \
    {                                                                          \
        prefix##_save((type *)opaque, w, id);                                  \
    }                                                                          \
    static int prefix##_entry_restore(void *opaque, const void *snapshot,     \
                                      size_t len, const char *id)             \
    {                                                                          \
        return prefix##_restore((type *)opaque, snapshot, len, id);            \
    }                                                                          \
    const struct vmdev_device_ops prefix##_device_ops = {                      \
        .destroy = prefix##_entry_destroy,                                     \
        .save = prefix##_entry_save,                                           \
        .restore = prefix##_entry_restore,                                     \
    }

#endif
