/* SPDX-License-Identifier: MIT */
/*
 * The stream backend's receive side against a hostile peer (a switch port
 * or passt gone bad): the input is what the peer writes, cut into chunks
 * the input sizes, with the device running out of room and getting it
 * back as the input says. A model parses the same bytes by the framing's
 * rule (4-byte big-endian length, frame; shorter than an Ethernet header:
 * dropped; longer than VMDEV_NET_MAX_FRAME: the connection ends) and
 * every frame the device receives must be the model's next, byte for
 * byte, none after a bad length, and all of them by the end; the link
 * goes down exactly when a bad length came. Nothing may crash or leak.
 *
 * Records: a byte h, then (h & 0x3f) + 1 bytes of stream; h & 0x40 flips
 * whether the device has room (getting room back resumes the backend);
 * h & 0x80 writes the bytes REPEAT times over, so that a short input
 * makes a stream longer than the backend's receive buffer (whose
 * compaction a 4 KiB input would otherwise never reach).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmdev/event_loop.h"
#include "vmdev/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ETH_HEADER 14
#define REPEAT 1024

struct model {
    uint8_t *stream; /* all the peer wrote */
    size_t written, parsed;
    bool broken; /* a length over the maximum was parsed */
    bool room;
    bool link_down;
    unsigned received;
};

/* The next frame the framing allows at the model's cursor, if complete:
 * its offset and length; short frames are skipped. */
static bool model_next(struct model *m, size_t *at, size_t *len)
{
    while (!m->broken && m->written - m->parsed >= 4) {
        const uint8_t *p = m->stream + m->parsed;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | p[3];
        if (n > VMDEV_NET_MAX_FRAME) {
            m->broken = true;
            return false;
        }
        if (m->written - m->parsed - 4 < n)
            return false;
        if (n >= ETH_HEADER) {
            *at = m->parsed + 4;
            *len = n;
            return true;
        }
        m->parsed += 4 + n;
    }
    return false;
}

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct model *m = opaque;
    size_t at, want;
    if (offload || !model_next(m, &at, &want) || len != want ||
        memcmp(frame, m->stream + at, len) != 0)
        abort(); /* not the frame the framing gives */
    if (!m->room)
        return false;
    m->parsed = at + len;
    m->received++;
    return true;
}

static void on_writable(void *opaque)
{
    (void)opaque;
}

static void on_link(void *opaque, bool up)
{
    struct model *m = opaque;
    if (!up)
        m->link_down = true;
}

static void run_ready(struct vmdev_event_loop *loop)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

/* The peer's side: what its socket has not taken yet (the backend stops
 * reading while the device has no room) waits here, in order. */
struct peer {
    int fd;
    const uint8_t *pending;
    size_t pending_len;
    bool cut; /* the backend ended the connection */
};

static void peer_flush(struct peer *p)
{
    while (p->pending_len && !p->cut) {
        ssize_t n = send(p->fd, p->pending, p->pending_len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0 && errno == EPIPE) {
            p->cut = true;
            return;
        }
        if (n <= 0)
            abort();
        p->pending += n;
        p->pending_len -= (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    int sv[2];
    if (!loop || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
        abort();
    /* The stream's whole length, so it is made once and stays put. */
    size_t total = 0;
    for (size_t i = 0; i < size;) {
        uint8_t h = data[i++];
        size_t n = (size_t)(h & 0x3f) + 1;
        if (n > size - i)
            n = size - i;
        total += h & 0x80 ? n * REPEAT : n;
        i += n;
    }
    struct model m = { .stream = malloc(total + 1), .room = true };
    struct vmdev_net_callbacks cb = { on_receive, on_writable, on_link, &m };
    struct vmdev_net_backend *nb = vmdev_net_stream_new_from_fd(sv[0], loop);
    if (!m.stream || !nb || vmdev_net_start(nb, &cb))
        abort();
    struct peer peer = { .fd = sv[1] };
    for (size_t i = 0; i < size;) {
        uint8_t h = data[i++];
        size_t n = (size_t)(h & 0x3f) + 1;
        if (n > size - i)
            n = size - i;
        if (h & 0x40) {
            m.room = !m.room;
            if (m.room)
                vmdev_net_resume_receive(nb);
        }
        /* What waits to go is always the stream's tail. */
        size_t copies = h & 0x80 ? REPEAT : 1;
        for (size_t c = 0; c < copies; c++) {
            memcpy(m.stream + m.written, data + i, n);
            m.written += n;
        }
        i += n;
        peer.pending_len += n * copies;
        peer.pending = m.stream + m.written - peer.pending_len;
        peer_flush(&peer);
        run_ready(loop);
    }
    /* With room, every byte goes and every complete frame arrives. */
    if (!m.room) {
        m.room = true;
        vmdev_net_resume_receive(nb);
    }
    run_ready(loop);
    while (peer.pending_len && !peer.cut) {
        peer_flush(&peer);
        run_ready(loop);
    }
    size_t at, len;
    if (model_next(&m, &at, &len))
        abort(); /* a complete frame the backend kept */
    if (m.link_down != m.broken || (peer.cut && !m.broken))
        abort(); /* cut with no bad length, or a bad length not cut */
    vmdev_net_free(nb);
    close(sv[1]);
    vmdev_event_loop_free(loop);
    free(m.stream);
    return 0;
}
