/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's transmit path from a hostile driver: each record is a
 * virtio-net header (offload flags, GSO type and size, checksum offsets
 * as the input says) and a frame, either raw bytes or a TCP or UDP frame
 * built properly and then corrupted where the input says, so the
 * checksum and segmentation code sees frames that almost make sense.
 * The device checks, completes, cuts and sends them to a stream peer,
 * or checks and passes them with their offloads to a backend that
 * carries them (a tap's kind), as the input's third byte picks; nothing
 * may crash, leak or hang, and every frame out is a frame.
 */
#include <endian.h>

#include "net_frames.h"
#include "virtio/devices/net_offload.h"
#include "virtio_net_rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The offered features a selector byte turns on. */
static uint64_t features_of(uint8_t sel)
{
    static const unsigned bits[8] = {
        0, 11, 12, 13, 15, VMDEV_VIRTIO_F_EVENT_IDX,
        VMDEV_VIRTIO_F_INDIRECT_DESC, 17
    };
    uint64_t f = 0;
    for (unsigned i = 0; i < 8; i++)
        if (sel & (1u << i))
            f |= VMDEV_VIRTIO_BIT(bits[i]);
    return f;
}

struct input {
    const uint8_t *p;
    size_t left;
};

static bool take(struct input *in, void *out, size_t n)
{
    if (in->left < n)
        return false;
    memcpy(out, in->p, n);
    in->p += n;
    in->left -= n;
    return true;
}

static uint8_t frame[8192];

/* The next record's frame into frame[]; its length, or -1 at the end. */
static long next_frame(struct input *in)
{
    uint8_t kind;
    uint16_t len;
    if (!take(in, &kind, 1) || !take(in, &len, 2))
        return -1;
    len = (uint16_t)(le16toh(len) % sizeof(frame));
    if (!(kind & 1)) {
        size_t n = len < in->left ? len : in->left;
        take(in, frame, n);
        return (long)n;
    }
    struct nf_spec s = { .ipv6 = kind & 2, .vlan = kind & 4,
                         .proto = kind & 8 ? NF_PROTO_UDP : NF_PROTO_TCP,
                         .tcp_options = (kind >> 4) * 4u % 44,
                         .payload_len = len % 4000, .seq = len * 977u,
                         .tcp_flags = (uint8_t)(kind ^ len), .ip_id = len };
    struct nf_layout l;
    size_t n = nf_build(frame, &s, &l);
    nf_leave_partial(frame, n, &l);
    /* Corruptions: a count, then (offset, xor) pairs. */
    uint8_t count = 0;
    take(in, &count, 1);
    for (unsigned i = 0; i < count % 8; i++) {
        uint8_t at[3];
        if (!take(in, at, 3))
            break;
        frame[(at[0] | at[1] << 8) % n] ^= at[2];
    }
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    struct net_rig r;
    rig_start(&r, features_of(data[0]), 2048, data[2] & 1);
    uint8_t layout = data[1];
    struct input in = { data + 3, size - 3 };
    for (unsigned record = 0; record < 64; record++) {
        struct virtio_net_hdr hdr;
        if (!take(&in, &hdr, sizeof(hdr)))
            break;
        long len = next_frame(&in);
        if (len < 0)
            break;
        /* Header and frame in one buffer or two, direct or indirect. */
        uint64_t gpa = vdrv_alloc(&r.mem, sizeof(hdr) + (size_t)len + 1, 8);
        vdrv_write(&r.mem, gpa, &hdr, sizeof(hdr));
        vdrv_write(&r.mem, gpa + sizeof(hdr), frame, (uint64_t)len);
        struct vdrv_buf split[2] = { { gpa, sizeof(hdr) },
                                     { gpa + sizeof(hdr), (uint32_t)len } };
        struct vdrv_buf whole = { gpa, (uint32_t)(sizeof(hdr) + len) };
        bool two = layout & (1u << (record % 8));
        if (vdrv_add(&r.queues[1], two ? split : &whole, two && len ? 2 : 1,
                     NULL, 0, (layout & 0x80) && two) < 0)
            break;
        if (record % 3 == 2 || in.left == 0) {
            vdrv_notify(r.dev, 1);
            rig_run(&r);
            rig_drain_peer(&r);
            rig_reap(&r);
        }
    }
    vdrv_notify(r.dev, 1);
    rig_run(&r);
    rig_drain_peer(&r);
    rig_run(&r);
    rig_stop(&r);
    return 0;
}
