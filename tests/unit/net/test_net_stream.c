/* SPDX-License-Identifier: MIT */
/*
 * The stream-socket network backend against a peer on the other end of a
 * socket, speaking the framing itself (4-byte big-endian length, frame):
 * frames both ways however the stream is cut, hostile lengths, back-
 * pressure in both directions (bounded memory), the peer going away, and
 * connecting over UNIX and TCP sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"

#define MAX_FRAMES 1024

/* What the device side saw. */
struct device {
    unsigned frames, room, writable_calls, link_downs;
    size_t len[MAX_FRAMES];
    uint8_t *data[MAX_FRAMES];
};

static bool on_receive(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct device *d = opaque;
    if (!d->room || d->frames == MAX_FRAMES)
        return false;
    d->room--;
    d->len[d->frames] = len;
    d->data[d->frames] = malloc(len);
    memcpy(d->data[d->frames++], frame, len);
    return true;
}

static void on_writable(void *opaque)
{
    ((struct device *)opaque)->writable_calls++;
}

static void on_link(void *opaque, bool up)
{
    if (!up)
        ((struct device *)opaque)->link_downs++;
}

static void device_free(struct device *d)
{
    for (unsigned i = 0; i < d->frames; i++)
        free(d->data[i]);
    memset(d, 0, sizeof(*d));
}

static struct vmdev_event_loop *loop;
static struct device dev;
static int peer;

static const struct vmdev_net_callbacks callbacks = { on_receive, on_writable,
                                                      on_link, &dev };

/* The backend started with the test device's callbacks, or NULL. */
static struct vmdev_net_backend *started(struct vmdev_net_backend *nb)
{
    if (nb && vmdev_net_start(nb, &callbacks)) {
        vmdev_net_free(nb);
        return NULL;
    }
    return nb;
}

static struct vmdev_net_backend *pair(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return NULL;
    peer = sv[1];
    return started(vmdev_net_stream_new_from_fd(sv[0], loop));
}

/* Frame i of a test: `len` bytes saying i and their position. */
static void fill(uint8_t *p, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)(i * 7 + k);
}

static bool frame_is(const uint8_t *p, size_t len, size_t want_len, unsigned i)
{
    if (len != want_len)
        return false;
    for (size_t k = 0; k < len; k++)
        if (p[k] != (uint8_t)(i * 7 + k))
            return false;
    return true;
}

/* The stream the peer would write for frames of these sizes. */
static uint8_t *stream_of(const size_t *sizes, unsigned n, size_t *total)
{
    *total = 0;
    for (unsigned i = 0; i < n; i++)
        *total += 4 + sizes[i];
    uint8_t *s = malloc(*total), *p = s;
    for (unsigned i = 0; i < n; i++) {
        uint32_t be = htonl((uint32_t)sizes[i]);
        memcpy(p, &be, 4);
        fill(p + 4, sizes[i], i);
        p += 4 + sizes[i];
    }
    return s;
}

static void run_ready(void)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

static void frames_both_ways_however_cut(void)
{
    dev.room = 1000;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    static const size_t sizes[] = { 60, 1514, 14, VMDEV_NET_MAX_FRAME, 9000,
                                    64 };
    unsigned n = sizeof(sizes) / sizeof(sizes[0]);
    size_t total;
    uint8_t *s = stream_of(sizes, n, &total);
    /* Cut anywhere: single bytes, length prefixes split, many at once. */
    uint64_t seed = 42;
    for (size_t at = 0; at < total;) {
        size_t chunk = 1 + test_random(&seed) % (test_random(&seed) % 3
                                                     ? 7 : 30000);
        if (chunk > total - at)
            chunk = total - at;
        CHECK(write(peer, s + at, chunk) == (ssize_t)chunk);
        at += chunk;
        run_ready();
    }
    CHECK_EQ(dev.frames, n);
    for (unsigned i = 0; i < n; i++)
        CHECK(frame_is(dev.data[i], dev.len[i], sizes[i], i));
    struct vmdev_net_stats st = vmdev_net_stats(nb);
    CHECK_EQ(st.rx_frames, n);
    CHECK_EQ(st.rx_errors, 0);

    /* The other way, from several buffers each. */
    static uint8_t frame[9000];
    fill(frame, sizeof(frame), 3);
    struct iovec iov[3] = { { frame, 14 }, { frame + 14, 1000 },
                            { frame + 1014, 7986 } };
    CHECK_EQ(vmdev_net_send(nb, iov, 3), 0);
    CHECK_EQ(vmdev_net_send(nb, iov, 1), 0);
    uint8_t got[4 + 9000 + 4 + 14];
    size_t have = 0;
    while (have < sizeof(got)) {
        ssize_t r = read(peer, got + have, sizeof(got) - have);
        CHECK(r > 0);
        have += (size_t)r;
    }
    CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0x23 && got[3] == 0x28);
    CHECK(frame_is(got + 4, 9000, 9000, 3));
    CHECK(got[9004 + 3] == 14 && frame_is(got + 9008, 14, 14, 3));
    CHECK_EQ(vmdev_net_stats(nb).tx_frames, 2);
    /* Too big to be a frame. */
    static uint8_t big[VMDEV_NET_MAX_FRAME + 1];
    struct iovec too_big = { big, sizeof(big) };
    CHECK_EQ(vmdev_net_send(nb, &too_big, 1), -EMSGSIZE);
    /* More pieces than any backend takes: refused, whatever their size. */
    struct iovec pieces[VMDEV_NET_MAX_IOV + 1];
    for (unsigned i = 0; i <= VMDEV_NET_MAX_IOV; i++)
        pieces[i] = (struct iovec){ big, 1 };
    CHECK_EQ(vmdev_net_send(nb, pieces, VMDEV_NET_MAX_IOV + 1), -EINVAL);
    CHECK_EQ(vmdev_net_send(nb, pieces, VMDEV_NET_MAX_IOV), 0);
    CHECK_EQ(vmdev_net_stats(nb).tx_frames, 3);
    vmdev_net_free(nb);
    close(peer);
    free(s);
    device_free(&dev);
}

/* A frame shorter than an Ethernet header is dropped and counted; a
 * length no frame can have ends the connection. */
static void hostile_lengths(void)
{
    dev.room = 1000;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    static const size_t sizes[] = { 10, 0, 60 };
    size_t total;
    uint8_t *s = stream_of(sizes, 3, &total);
    CHECK(write(peer, s, total) == (ssize_t)total);
    run_ready();
    CHECK_EQ(dev.frames, 1);
    CHECK(frame_is(dev.data[0], dev.len[0], 60, 2));
    CHECK_EQ(vmdev_net_stats(nb).rx_errors, 2);
    CHECK(vmdev_net_link_up(nb));

    uint32_t huge = htonl(VMDEV_NET_MAX_FRAME + 1);
    CHECK(write(peer, &huge, 4) == 4);
    run_ready();
    CHECK(!vmdev_net_link_up(nb));
    CHECK_EQ(dev.link_downs, 1);
    CHECK_EQ(vmdev_net_stats(nb).rx_errors, 3);
    static uint8_t frame[60];
    struct iovec iov = { frame, sizeof(frame) };
    CHECK_EQ(vmdev_net_send(nb, &iov, 1), -ENOTCONN);
    vmdev_net_free(nb);
    close(peer);
    free(s);
    device_free(&dev);
}

/* While the device has no room the backend stops reading: the peer's
 * socket fills and its writes would block. With room again, every frame
 * arrives, in order. */
static void no_room_stops_reading(void)
{
    dev.room = 0;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    /* Far more than the socket and the backend's buffer hold. */
    static size_t sizes[MAX_FRAMES];
    for (unsigned i = 0; i < MAX_FRAMES; i++)
        sizes[i] = 1500;
    size_t total;
    uint8_t *s = stream_of(sizes, MAX_FRAMES, &total);
    CHECK(fcntl(peer, F_SETFL, O_NONBLOCK) == 0);
    size_t written = 0;
    for (int round = 0; round < 100 && written < total; round++) {
        ssize_t r = write(peer, s + written, total - written);
        if (r > 0)
            written += (size_t)r;
        run_ready();
    }
    CHECK(written < total); /* the peer is held back */
    CHECK_EQ(dev.frames, 0);

    dev.room = MAX_FRAMES;
    vmdev_net_resume_receive(nb);
    for (int spins = 0; spins < 100000 && dev.frames < MAX_FRAMES; spins++) {
        ssize_t r = write(peer, s + written, total - written);
        if (r > 0)
            written += (size_t)r;
        run_ready();
    }
    CHECK_EQ(dev.frames, MAX_FRAMES);
    for (unsigned i = 0; i < MAX_FRAMES; i++)
        CHECK(frame_is(dev.data[i], dev.len[i], 1500, i));
    vmdev_net_free(nb);
    close(peer);
    free(s);
    device_free(&dev);
}

/* When the peer does not read, sends get -EAGAIN once one frame is held
 * partly sent; writable() says when the peer has taken it, and every
 * frame taken arrives whole, in order. */
static void a_slow_peer_gets_eagain_then_writable(void)
{
    dev.room = 1000;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    static uint8_t frame[65000];
    unsigned sent = 0;
    int ret = 0;
    while (sent < 1000) {
        fill(frame, sizeof(frame), sent);
        struct iovec iov = { frame, sizeof(frame) };
        if ((ret = vmdev_net_send(nb, &iov, 1)) != 0)
            break;
        sent++;
    }
    CHECK_EQ(ret, -EAGAIN);
    CHECK(sent > 0 && sent < 1000);
    CHECK_EQ(dev.writable_calls, 0);

    /* The peer reads everything; the loop pushes out the rest. */
    static uint8_t got[4 + sizeof(frame)];
    CHECK(fcntl(peer, F_SETFL, O_NONBLOCK) == 0);
    unsigned arrived = 0;
    size_t have = 0;
    for (int spins = 0; arrived < sent && spins < 100000; spins++) {
        ssize_t r = read(peer, got + have, sizeof(got) - have);
        if (r > 0)
            have += (size_t)r;
        if (have == sizeof(got)) {
            CHECK(frame_is(got + 4, sizeof(frame), sizeof(frame), arrived));
            arrived++;
            have = 0;
        }
        run_ready();
    }
    CHECK_EQ(arrived, sent);
    CHECK_EQ(dev.writable_calls, 1);
    struct iovec iov = { frame, 60 };
    CHECK_EQ(vmdev_net_send(nb, &iov, 1), 0);
    vmdev_net_free(nb);
    close(peer);
    device_free(&dev);
}

static void the_peer_going_away_is_link_down(void)
{
    dev.room = 1000;
    struct vmdev_net_backend *nb = pair();
    CHECK(nb != NULL);
    close(peer);
    run_ready();
    CHECK(!vmdev_net_link_up(nb));
    CHECK_EQ(dev.link_downs, 1);
    static uint8_t frame[60];
    struct iovec iov = { frame, sizeof(frame) };
    CHECK_EQ(vmdev_net_send(nb, &iov, 1), -ENOTCONN);
    vmdev_net_free(nb);
    device_free(&dev);
}

/* One frame each way over a connection made by address. */
static bool exchange(struct vmdev_net_backend *nb, int server)
{
    dev.room = 1000;
    int conn = accept(server, NULL, NULL);
    static const size_t sizes[] = { 100 };
    size_t total;
    uint8_t *s = stream_of(sizes, 1, &total);
    bool ok = conn >= 0 && write(conn, s, total) == (ssize_t)total;
    for (int i = 0; ok && i < 100 && dev.frames == 0; i++)
        vmdev_event_loop_run_once(loop, 100);
    ok = ok && dev.frames == 1 && frame_is(dev.data[0], dev.len[0], 100, 0);
    struct iovec iov = { dev.data[0], 100 };
    uint8_t back[104];
    size_t have = 0;
    ok = ok && vmdev_net_send(nb, &iov, 1) == 0;
    while (ok && have < sizeof(back)) {
        ssize_t r = read(conn, back + have, sizeof(back) - have);
        ok = r > 0;
        have += ok ? (size_t)r : 0;
    }
    ok = ok && memcmp(back, s, sizeof(back)) == 0;
    free(s);
    if (conn >= 0)
        close(conn);
    device_free(&dev);
    return ok;
}

/* Nothing is read before the consumer starts the backend, and it starts
 * once, with a receive callback. */
static void nothing_moves_before_start(void)
{
    dev.room = 10;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    peer = sv[1];
    struct vmdev_net_backend *nb = vmdev_net_stream_new_from_fd(sv[0], loop);
    CHECK(nb != NULL);
    CHECK(vmdev_net_loop(nb) == loop);
    static const size_t sizes[] = { 60 };
    size_t total;
    uint8_t *s = stream_of(sizes, 1, &total);
    CHECK(write(peer, s, total) == (ssize_t)total);
    run_ready();
    CHECK_EQ(dev.frames, 0);
    struct vmdev_net_callbacks no_receive = { NULL, on_writable, on_link,
                                              &dev };
    CHECK_EQ(vmdev_net_start(nb, &no_receive), -EINVAL);
    CHECK_EQ(vmdev_net_start(nb, &callbacks), 0);
    CHECK_EQ(vmdev_net_start(nb, &callbacks), -EBUSY);
    run_ready();
    CHECK_EQ(dev.frames, 1);
    CHECK(frame_is(dev.data[0], dev.len[0], 60, 0));
    vmdev_net_free(nb);
    close(peer);
    free(s);
    device_free(&dev);
}

static void connects_over_unix_and_tcp(void)
{
    char dir[] = "/tmp/vmdev-net-XXXXXX", path[64], why[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/switch.sock", dir);
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, path);
    CHECK(bind(server, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
          listen(server, 1) == 0);
    struct vmdev_net_backend *nb = started(
        vmdev_net_stream_new(path, loop, why, sizeof(why)));
    CHECK(nb != NULL);
    CHECK(exchange(nb, server));
    vmdev_net_free(nb);
    close(server);
    unlink(path);

    server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sin);
    CHECK(bind(server, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          listen(server, 1) == 0 &&
          getsockname(server, (struct sockaddr *)&sin, &sl) == 0);
    char address[64];
    snprintf(address, sizeof(address), "tcp:127.0.0.1:%u", ntohs(sin.sin_port));
    nb = started(vmdev_net_stream_new(address, loop, why, sizeof(why)));
    CHECK(nb != NULL);
    CHECK(exchange(nb, server));
    vmdev_net_free(nb);
    close(server);

    /* Nobody listening there now; nothing there at all; not an address. */
    CHECK(vmdev_net_stream_new(address, loop, why, sizeof(why)) ==
          NULL);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK(strstr(why, address) != NULL);
    CHECK(vmdev_net_stream_new(path, loop, why, sizeof(why)) == NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK(strstr(why, path) != NULL);
    CHECK(vmdev_net_stream_new("tcp:localhost", loop, why, sizeof(why)) ==
          NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strstr(why, "not tcp:HOST:PORT") != NULL);
    rmdir(dir);
}

/* A device that refuses a frame only once the test lets it, so the
 * refusal (which makes the backend swap its watch) happens while another
 * thread is closing the backend. */
struct held_device {
    int entered, release; /* eventfds: in the callback; may return */
};

static bool refuse_when_released(void *opaque, const void *frame, size_t len,
                                 const struct vmdev_net_offload *offload)
{
    struct held_device *d = opaque;
    uint64_t v;
    vmdev_eventfd_signal(d->entered);
    if (read(d->release, &v, sizeof(v)) != sizeof(v)) /* blocks */
        abort();
    return false;
}

struct closing {
    struct vmdev_net_backend *nb;
    int closed; /* eventfd: vmdev_net_free returned */
};

static void *close_backend(void *opaque)
{
    struct closing *c = opaque;
    vmdev_net_free(c->nb);
    vmdev_eventfd_signal(c->closed);
    return NULL;
}

/* vmdev_net_free from another thread while the loop's callback is about
 * to refuse a frame and drop its watch: close waits for the callback, and
 * the callback, finding the backend closing, leaves the watch alone (no
 * watch removed twice, no backend freed under it: AddressSanitizer would
 * see either). */
static void close_while_the_callback_swaps_its_watch(void)
{
    struct vmdev_event_loop *own = vmdev_event_loop_new();
    CHECK(own != NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct held_device d = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
    struct vmdev_net_backend *nb = vmdev_net_stream_new_from_fd(sv[0], own);
    CHECK(nb != NULL);
    struct vmdev_net_callbacks cb = { refuse_when_released, NULL, NULL, &d };
    CHECK_EQ(vmdev_net_start(nb, &cb), 0);
    CHECK_EQ(vmdev_event_loop_start(own), 0);
    uint8_t frame[4 + 60] = { 0, 0, 0, 60 };
    CHECK(write(sv[1], frame, sizeof(frame)) == (ssize_t)sizeof(frame));
    uint64_t v;
    CHECK(read(d.entered, &v, sizeof(v)) == sizeof(v)); /* in the callback */
    struct closing c = { nb, vmdev_eventfd_new() };
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, close_backend, &c), 0);
    /* Close cannot return while the callback runs. */
    struct pollfd back = { c.closed, POLLIN, 0 };
    CHECK_EQ(poll(&back, 1, 100), 0);
    vmdev_eventfd_signal(d.release);
    pthread_join(th, NULL);
    CHECK(vmdev_eventfd_drain(c.closed) == 1);
    vmdev_event_loop_stop(own);
    vmdev_event_loop_free(own);
    close(sv[1]);
    close(d.entered);
    close(d.release);
    close(c.closed);
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
}

TEST_MAIN(TEST(setup),
          TEST(frames_both_ways_however_cut),
          TEST(hostile_lengths),
          TEST(no_room_stops_reading),
          TEST(a_slow_peer_gets_eagain_then_writable),
          TEST(the_peer_going_away_is_link_down),
          TEST(nothing_moves_before_start),
          TEST(close_while_the_callback_swaps_its_watch),
          TEST(connects_over_unix_and_tcp))
