/* SPDX-License-Identifier: MIT */
/*
 * A toy virtio device for transport tests and fuzz targets. Each request's
 * device-readable bytes are copied into its device-writable buffers and
 * the chain is returned with the count written; a ring fault is reported
 * through vmdev_virtio_guest_error() as a real device would.
 *
 * Its configuration space is 8 bytes laid out as { u8 mode; u8 pad;
 * le16 word; le32 dword } and starts as 01 00 34 12 78 56 34 12, so each
 * field width reads a distinct value. It is writable.
 */
#ifndef VMDEV_TEST_VIRTIO_ECHO_DEVICE_H
#define VMDEV_TEST_VIRTIO_ECHO_DEVICE_H

#include <stdint.h>

#include "vmdev/virtio_device.h"

#define ECHO_DEVICE_ID 42
#define ECHO_FEATURE_LOW 3   /* a device-specific bit in window 0 */
#define ECHO_FEATURE_HIGH 35 /* and one in window 1 */
#define ECHO_FEATURES                                                          \
    (VMDEV_VIRTIO_BIT(ECHO_FEATURE_LOW) | VMDEV_VIRTIO_BIT(ECHO_FEATURE_HIGH))
#define ECHO_CONFIG_LEN 8

struct echo_device {
    struct vmdev_virtio_device dev; /* first: ops cast back to this */
    uint8_t config[ECHO_CONFIG_LEN];
    struct vmdev_virtqueue_chain chain;
    unsigned activations, resets, requests;
};

/* 0 or the error of vmdev_virtio_init(). */
int echo_device_init(struct echo_device *e, const char *name,
                     uint16_t num_queues, uint16_t queue_max_size,
                     const struct vmdev_guest_memory *mem);
/* The device changes a config byte and tells the driver (takes the lock,
 * as a device's own thread would). */
void echo_device_change_config(struct echo_device *e, uint32_t offset,
                               uint8_t value);

#endif
