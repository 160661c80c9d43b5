/* SPDX-License-Identifier: MIT */
/*
 * The learning switch (net_switch.h) against VMs that send whatever they
 * like: four ports on stream sockets whose peers are this target, sending
 * frames with sources and destinations the input picks among eight
 * addresses (broadcast, multicast, and unicast ones, a group address as a
 * source among them), leaving and joining again. A model of a learning
 * switch says where each frame must go; each peer reads all it was sent
 * after every frame, and what every port got must be the model's answer:
 * never the sender, every other port for a group, unknown or stale
 * destination, only the port the destination was last seen on otherwise.
 * A peer may also stop reading (its socket holds little, so the switch's
 * egress queue for it fills and then drops): the others must still get
 * every frame at once, and when it reads again it must find, in order,
 * the frames meant for it since it stopped, all of them or at least the
 * egress queue's 256 (net_switch.h), the rest dropped.
 * Nothing may crash or leak.
 *
 * Records of two bytes, and a frame of 14 + b1 bytes (b1 < 0xfe):
 *   b0 bits 0-1  the sending port
 *      bits 2-4  destination address (0 broadcast, 1 multicast, 2-7 unicast)
 *      bits 5-7  source address (0 and 1 multicast, 2-7 unicast)
 *   b1 0xff      the sending port's VM leaves and another joins instead
 *      0xfe      the sending port's VM stops reading, or reads again
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmdev/event_loop.h"
#include "vmdev/net.h"
#include "vmdev/net_switch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PORTS 4
#define ADDRESSES 8
#define NOWHERE (-1)
#define FRAME_MAX (4 + 14 + 253)
#define EGRESS_FRAMES 256 /* a port's egress queue (net_switch.h) */

static const uint8_t address[ADDRESSES][6] = {
    { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
    { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 },
    { 0x52, 0x54, 0x00, 0x00, 0x00, 0x01 },
    { 0x52, 0x54, 0x00, 0x00, 0x00, 0x02 },
    { 0x52, 0x54, 0x00, 0x00, 0x00, 0x03 },
    { 0x02, 0x00, 0x00, 0x00, 0x00, 0x04 },
    { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
    { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef },
};

/* The frames (length prefix and bytes) meant for a peer that does not
 * read, in the order sent. */
struct pending {
    uint8_t *frames;
    size_t len[4096];
    unsigned count;
};

struct rig {
    struct vmdev_event_loop *loop;
    struct vmdev_net_switch *sw;
    int peer[PORTS];
    int learned[ADDRESSES]; /* the peer each address was last seen from */
    bool stalled[PORTS];
    struct pending pending[PORTS];
};

static void run_ready(struct rig *r)
{
    while (vmdev_event_loop_run_once(r->loop, 0) > 0)
        ;
}

static void join(struct rig *r, unsigned i)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        abort();
    r->peer[i] = sv[1];
    /* Little room in the socket, so a peer that stops reading fills it
     * and the switch's egress queue soon. */
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    if (vmdev_net_switch_add(r->sw, vmdev_net_stream_new_from_fd(sv[0], r->loop),
                             "fuzz") < 0)
        abort();
}

static void leave(struct rig *r, unsigned i)
{
    r->stalled[i] = false; /* what it was sent goes with it */
    r->pending[i].count = 0;
    close(r->peer[i]);
    run_ready(r); /* the switch sees the end and lets the port go */
    for (unsigned a = 0; a < ADDRESSES; a++)
        if (r->learned[a] == (int)i)
            r->learned[a] = NOWHERE;
    join(r, i);
}

/* Whether peer i has the frame sent (its length prefix and bytes)
 * waiting, and nothing else. */
static bool got(struct rig *r, unsigned i, const uint8_t *sent, size_t len)
{
    uint8_t buf[4 + 14 + 256];
    ssize_t n = recv(r->peer[i], buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN)
        return false;
    if (n != (ssize_t)len || memcmp(buf, sent, len) != 0)
        abort(); /* not the frame sent: changed, cut or two at once */
    return true;
}

static void hold(struct pending *p, const uint8_t *frame, size_t len)
{
    if (p->count == sizeof(p->len) / sizeof(p->len[0]))
        abort(); /* records are two bytes: inputs over 8 KiB only */
    memcpy(p->frames + (size_t)p->count * FRAME_MAX, frame, len);
    p->len[p->count++] = len;
}

/* Peer i reads again: all it can get, the switch sending on as room
 * appears, must be the frames held for it, in order, all or at least a
 * full egress queue's worth. */
static void read_again(struct rig *r, unsigned i)
{
    struct pending *p = &r->pending[i];
    size_t cap = (size_t)p->count * FRAME_MAX + 1, have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        run_ready(r);
        ssize_t n = recv(r->peer[i], buf + have, cap - have, MSG_DONTWAIT);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    size_t at = 0;
    unsigned k = 0;
    while (at < have) {
        if (k == p->count || have - at < p->len[k] ||
            memcmp(buf + at, p->frames + (size_t)k * FRAME_MAX, p->len[k]))
            abort(); /* not the next frame held: reordered, changed, extra */
        at += p->len[k++];
    }
    if (k < p->count && k < EGRESS_FRAMES)
        abort(); /* dropped while the egress queue had room */
    free(buf);
    p->count = 0;
    r->stalled[i] = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rig r = { 0 };
    for (unsigned i = 0; i < PORTS; i++)
        if (!(r.pending[i].frames = malloc(4096u * FRAME_MAX)))
            abort();
    r.loop = vmdev_event_loop_new();
    r.sw = r.loop ? vmdev_net_switch_new(r.loop) : NULL;
    if (!r.sw)
        abort();
    for (unsigned i = 0; i < PORTS; i++)
        join(&r, i);
    for (unsigned a = 0; a < ADDRESSES; a++)
        r.learned[a] = NOWHERE;
    run_ready(&r);

    uint8_t tag = 0;
    for (size_t at = 0; at + 2 <= size; at += 2) {
        unsigned from = data[at] & 3, dst = (data[at] >> 2) & 7,
                 src = data[at] >> 5;
        if (data[at + 1] == 0xff) {
            leave(&r, from);
            continue;
        }
        if (data[at + 1] == 0xfe) {
            if (r.stalled[from])
                read_again(&r, from);
            else
                r.stalled[from] = true;
            continue;
        }
        size_t len = 14 + (size_t)data[at + 1];
        uint8_t frame[FRAME_MAX] = { 0, 0, (uint8_t)(len >> 8), (uint8_t)len };
        memcpy(frame + 4, address[dst], 6);
        memcpy(frame + 10, address[src == 0 ? 1 : src], 6);
        memset(frame + 16, 0x88, len - 12);
        frame[4 + len - 1] = ++tag;
        if (write(r.peer[from], frame, 4 + len) != (ssize_t)(4 + len))
            abort();
        run_ready(&r);

        /* The model: learn the source unless it is a group address, then
         * where the destination was last seen, if anywhere. */
        unsigned src_address = src == 0 ? 1 : src;
        if (!(address[src_address][0] & 1))
            r.learned[src_address] = (int)from;
        int to = address[dst][0] & 1 ? NOWHERE : r.learned[dst];
        for (unsigned i = 0; i < PORTS; i++) {
            bool want = i != from && (to == NOWHERE || to == (int)i);
            if (r.stalled[i]) {
                if (want)
                    hold(&r.pending[i], frame, 4 + len);
            } else if (got(&r, i, frame, 4 + len) != want) {
                abort(); /* delivered where it must not, or not where it must */
            }
        }
    }
    for (unsigned i = 0; i < PORTS; i++)
        if (r.stalled[i])
            read_again(&r, i);
    vmdev_net_switch_free(r.sw);
    for (unsigned i = 0; i < PORTS; i++) {
        close(r.peer[i]);
        free(r.pending[i].frames);
    }
    vmdev_event_loop_free(r.loop);
    return 0;
}
