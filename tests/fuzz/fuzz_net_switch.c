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
 * Nothing may crash or leak.
 *
 * Records of two bytes, and a frame of 14 + b1 bytes (b1 < 0xff):
 *   b0 bits 0-1  the sending port
 *      bits 2-4  destination address (0 broadcast, 1 multicast, 2-7 unicast)
 *      bits 5-7  source address (0 and 1 multicast, 2-7 unicast)
 *   b1 0xff      the sending port's VM leaves and another joins instead
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

struct rig {
    struct vmdev_event_loop *loop;
    struct vmdev_net_switch *sw;
    int peer[PORTS];
    int learned[ADDRESSES]; /* the peer each address was last seen from */
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
    if (vmdev_net_switch_add(r->sw, vmdev_net_stream_from_fd(sv[0], r->loop),
                             "fuzz") < 0)
        abort();
}

static void leave(struct rig *r, unsigned i)
{
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rig r;
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
        size_t len = 14 + (size_t)data[at + 1];
        uint8_t frame[4 + 14 + 255] = { 0, 0, (uint8_t)(len >> 8),
                                        (uint8_t)len };
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
            if (got(&r, i, frame, 4 + len) != want)
                abort(); /* delivered where it must not, or not where it must */
        }
    }
    vmdev_net_switch_free(r.sw);
    for (unsigned i = 0; i < PORTS; i++)
        close(r.peer[i]);
    vmdev_event_loop_free(r.loop);
    return 0;
}
