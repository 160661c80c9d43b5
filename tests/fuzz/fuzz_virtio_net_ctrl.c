/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's control queue from a hostile driver: each record is a
 * class, a command, data of any length and an ack buffer of 0 to 2 bytes,
 * followed by a frame from the peer to an address the input picks, so
 * the receive filter the commands set is exercised at once. Nothing may
 * crash or leak; a command without room for its ack stops the device.
 */
#include "virtio_net_rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t destinations[4][6] = {
    { 0x52, 0x54, 0, 1, 2, 3 },          /* the device's own */
    { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
    { 0x01, 0x00, 0x5e, 0, 0, 1 },
    { 0x52, 0x54, 0, 9, 9, 9 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* CTRL_VQ always; the rest as the first byte says. */
    uint64_t features = VMDEV_VIRTIO_BIT(17);
    static const unsigned bits[8] = {
        18, 21, 22, 23, 53, 15, VMDEV_VIRTIO_F_EVENT_IDX, 5
    };
    for (unsigned i = 0; i < 8; i++)
        if (data[0] & (1u << i))
            features |= VMDEV_VIRTIO_BIT(bits[i]);
    struct net_rig r;
    rig_start(&r, features, (uint16_t)(12 + (data[1] & 0x7f) * 16), false);
    size_t at = 2;
    while (at + 3 <= size) {
        uint8_t head[2] = { data[at], data[at + 1] }, meta = data[at + 2];
        at += 3;
        size_t len = meta & 0x3f;
        if (len > size - at)
            len = size - at;
        uint32_t ack_len = meta >> 6 == 3 ? 0 : meta >> 6;
        uint64_t out = vdrv_alloc(&r.mem, 2 + len, 8);
        uint64_t ack = vdrv_alloc(&r.mem, 2, 8);
        vdrv_write(&r.mem, out, head, 2);
        vdrv_write(&r.mem, out + 2, data + at, len);
        at += len;
        struct vdrv_buf o = { out, (uint32_t)(2 + len) }, a = { ack, ack_len };
        if (vdrv_add(&r.queues[2], &o, 1, &a, ack_len ? 1 : 0, false) < 0)
            break;
        vdrv_notify(r.dev, 2);
        /* A frame to one of the addresses, through the filter. */
        uint8_t frame[64] = { 0 };
        memcpy(frame, destinations[meta & 3], 6);
        uint8_t message[4 + sizeof(frame)] = { 0, 0, 0, sizeof(frame) };
        memcpy(message + 4, frame, sizeof(frame));
        /* Once the receive buffers are used up the device stops taking
         * frames and the socket fills: skip what does not fit. */
        (void)!send(r.peer, message, sizeof(message), MSG_DONTWAIT);
        rig_run(&r);
        rig_reap(&r);
        if (!vmdev_virtio_is_running(r.dev))
            break;
    }
    /* Whatever the commands did, a reset leaves a device to start again. */
    vmdev_virtio_set_status(r.dev, 0);
    if (vmdev_virtio_get_device_features(r.dev, 0) == 0)
        abort();
    rig_stop(&r);
    return 0;
}
