/* SPDX-License-Identifier: MIT */
/*
 * User-mode networking: libslirp's TCP/IP stack NATs the guest's
 * connections onto the host's own sockets, as QEMU's `-netdev user` does.
 *
 * libslirp is driven by poll(): before sleeping, slirp_pollfds_fill() says
 * which sockets to watch and how long to sleep at most (its TCP timers);
 * after, slirp_pollfds_poll() reads the results and runs the timers. Here
 * that cycle runs on the backend's event loop: the sockets slirp asks for
 * are mirrored into a private epoll set, which the loop watches as one fd,
 * and a timer wakes the loop for slirp's deadlines. Each wake-up is one
 * "run": deliver what waits, poll the sockets of the last fill, let slirp
 * handle them, deliver what it produced, fill again.
 *
 * Frames slirp makes for the guest go to the device at once when it has
 * room; otherwise (and while inside slirp_input, where the device is
 * sending) they wait in a bounded queue. While the device has no room,
 * slirp is not asked to read its host sockets, so the host peers slow
 * down in TCP's own flow control; a frame beyond the queue is dropped and
 * counted, which TCP recovers from.
 *
 * The guest link's MTU is slirp's interface MTU: its TCP cuts segments
 * for the guest to fit. libslirp never scales its TCP window (RFC 1323
 * is off in its tcp_subr.c), so at most 64 KiB are in flight to the guest
 * on a connection: a larger MTU means fewer, larger frames per window,
 * not more data per round trip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <slirp/libslirp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"
#include "vmdev/clock.h"

#define ETH_HEADER 14
/* slirp's interface MTU unless told (its default, as QEMU's). */
#define DEFAULT_MTU 1500
#define MIN_MTU 68 /* libslirp's smallest */
/* The queue of frames for the device: 512 slots of the MTU's largest
 * frame, whatever their size (a burst of small replies needs the count).
 * At the largest MTU that is 32 MiB of address space, memory only where
 * frames were written. */
#define QUEUE_SLOTS 512u
#define NO_DEADLINE UINT64_MAX

struct slirp_timer {
    struct slirp_backend *sb;
    SlirpTimerId id;
    void *cb_opaque;
    uint64_t deadline_ns; /* NO_DEADLINE when not armed */
    struct slirp_timer *next;
};

/* Frames for the device that could not go at once: num_slots of
 * slot_bytes, the largest frame of the MTU. */
struct frame_queue {
    uint8_t *slots;
    uint16_t *len;
    size_t slot_bytes;
    unsigned num_slots, head, count;
};

struct slirp_backend {
    struct vmdev_net_backend base;
    Slirp *slirp;

    /* The sockets of the last fill: what to poll after waking. */
    struct pollfd *polls;
    unsigned num_polls, polls_cap;
    /* epoll_fd holds the fds of listed[]; stamp[fd] == fill_stamp marks
     * those of the current fill, so those no longer asked for can go. */
    int epoll_fd;
    int *listed, *next_listed;
    unsigned num_listed, listed_cap, next_listed_cap;
    uint32_t *stamp;
    unsigned stamp_cap;
    uint32_t fill_stamp;
    struct vmdev_event_watch *sockets_watch;

    /* A run soon, from the loop: after a frame from the guest, or once
     * the device has room again. */
    int run_fd;
    struct vmdev_event_watch *run_watch;
    bool run_scheduled;

    struct vmdev_event_timer *timer;
    struct vmdev_timer timer_ops;
    uint64_t timer_deadline_ns;
    struct slirp_timer *timers;

    struct frame_queue queue;
    bool held;     /* the device refused a frame: wait for resume */
    bool in_input; /* inside slirp_input: frames wait for the next run */
    uint8_t *gather; /* a frame from several iovecs, for slirp_input */
};

static struct slirp_backend *slirp_of(struct vmdev_net_backend *b)
{
    return NET_BACKEND_KIND(b, struct slirp_backend);
}

static uint64_t now_ns(void)
{
    return vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC);
}

/* ---- the queue of frames for the device ---- */

static void queue_push(struct slirp_backend *sb, const void *frame, size_t len)
{
    struct frame_queue *q = &sb->queue;
    if (q->count == q->num_slots) { /* to_guest has checked len */
        net_backend_rx_error(&sb->base);
        return;
    }
    unsigned slot = (q->head + q->count) % q->num_slots;
    memcpy(q->slots + slot * q->slot_bytes, frame, len);
    q->len[slot] = (uint16_t)len;
    q->count++;
}

/* Deliver queued frames until the device refuses one. */
static void queue_deliver(struct slirp_backend *sb)
{
    struct frame_queue *q = &sb->queue;
    while (q->count && !sb->held) {
        if (!net_backend_deliver(&sb->base, q->slots + q->head * q->slot_bytes,
                                 q->len[q->head], NULL)) {
            sb->held = true;
            return;
        }
        q->head = (q->head + 1) % q->num_slots;
        q->count--;
    }
}

static void schedule_run(struct slirp_backend *sb)
{
    if (sb->run_scheduled)
        return;
    sb->run_scheduled = true;
    vmdev_eventfd_signal(sb->run_fd);
}

/* ---- slirp's callbacks ---- */

static ssize_t to_guest(const void *frame, size_t len, void *opaque)
{
    struct slirp_backend *sb = opaque;
    if (len < ETH_HEADER || len > sb->queue.slot_bytes) {
        /* Over the MTU (an unfragmented IPv6 reply): dropped whichever
         * way it would have gone, so it does not depend on timing. */
        net_backend_rx_error(&sb->base);
        return (ssize_t)len;
    }
    /* In order: straight to the device only when nothing waits. */
    if (!sb->in_input && !sb->held && !sb->queue.count) {
        if (net_backend_deliver(&sb->base, frame, len, NULL))
            return (ssize_t)len;
        sb->held = true;
    }
    queue_push(sb, frame, len);
    if (sb->in_input)
        schedule_run(sb);
    return (ssize_t)len;
}

static void guest_error(const char *msg, void *opaque)
{
    (void)msg;
    struct slirp_backend *sb = opaque;
    net_backend_rx_error(&sb->base);
}

static int64_t clock_get_ns(void *opaque)
{
    (void)opaque;
    return (int64_t)now_ns();
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct slirp_backend *sb = opaque;
    struct slirp_timer *t = calloc(1, sizeof(*t));
    if (!t)
        abort(); /* slirp has no way to hear of a failure here */
    *t = (struct slirp_timer){ .sb = sb, .id = id, .cb_opaque = cb_opaque,
                               .deadline_ns = NO_DEADLINE,
                               .next = sb->timers };
    sb->timers = t;
    return t;
}

static void timer_free(void *timer, void *opaque)
{
    struct slirp_backend *sb = opaque;
    for (struct slirp_timer **p = &sb->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = ((struct slirp_timer *)timer)->next;
            free(timer);
            return;
        }
    }
}

static void arm_timer(struct slirp_backend *sb, uint64_t deadline_ns);

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct slirp_timer *t = timer;
    t->deadline_ns = expire_ms < 0 ? 0 : (uint64_t)expire_ms * 1000000u;
    arm_timer(opaque, t->deadline_ns);
}

/* Sockets are watched as each fill lists them (sync_epoll), not as slirp
 * opens and closes them: it does not report every one. */
static void register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

/* Where slirp does say, the fd leaves the epoll set while it is still
 * the same file (a copy of it elsewhere would keep it watched). */
static void unregister_poll_fd(int fd, void *opaque)
{
    struct slirp_backend *sb = opaque;
    epoll_ctl(sb->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

static void notify(void *opaque)
{
    schedule_run(opaque);
}

static const SlirpCb slirp_callbacks = {
    .send_packet = to_guest,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = register_poll_fd,
    .unregister_poll_fd = unregister_poll_fd,
    .notify = notify,
    .timer_new_opaque = timer_new_opaque,
};

/* ---- the poll cycle ---- */

static short to_poll_events(int slirp_events)
{
    short e = 0;
    if (slirp_events & SLIRP_POLL_IN)
        e |= POLLIN;
    if (slirp_events & SLIRP_POLL_OUT)
        e |= POLLOUT;
    if (slirp_events & SLIRP_POLL_PRI)
        e |= POLLPRI;
    return e;
}

static int from_poll_events(short revents)
{
    int e = 0;
    if (revents & POLLIN)
        e |= SLIRP_POLL_IN;
    if (revents & POLLOUT)
        e |= SLIRP_POLL_OUT;
    if (revents & POLLPRI)
        e |= SLIRP_POLL_PRI;
    if (revents & (POLLERR | POLLNVAL))
        e |= SLIRP_POLL_ERR;
    if (revents & POLLHUP)
        e |= SLIRP_POLL_HUP;
    return e;
}

static bool grow(void **array, unsigned *cap, unsigned need, size_t size)
{
    if (need <= *cap)
        return true;
    unsigned n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*array, (size_t)n * size);
    if (!p)
        return false;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
    *array = p;
    *cap = n;
    return true;
}

/* slirp_pollfds_fill's add_poll: the index it will ask revents for. */
static int add_poll(int fd, int events, void *opaque)
{
    struct slirp_backend *sb = opaque;
    /* While the device has no room, slirp is not to read what it would
     * have to send on (HUP and ERR still come, unasked). */
    if (sb->held)
        events &= ~(SLIRP_POLL_IN | SLIRP_POLL_PRI);
    if (fd < 0 || !grow((void **)&sb->polls, &sb->polls_cap,
                        sb->num_polls + 1, sizeof(*sb->polls)))
        return -1;
    sb->polls[sb->num_polls] = (struct pollfd){ fd, to_poll_events(events), 0 };
    return (int)sb->num_polls++;
}

static int get_revents(int idx, void *opaque)
{
    struct slirp_backend *sb = opaque;
    if (idx < 0 || (unsigned)idx >= sb->num_polls)
        return 0;
    return from_poll_events(sb->polls[idx].revents);
}

static uint32_t to_epoll_events(short events)
{
    return (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0) |
           (events & POLLPRI ? EPOLLPRI : 0);
}

/*
 * Make the epoll set what the last fill asked for. Every fd is set again
 * (MOD, or ADD when it is not there): slirp may have closed a socket and
 * opened another under the same number since, which epoll dropped.
 */
static void sync_epoll(struct slirp_backend *sb)
{
    if (++sb->fill_stamp == 0) { /* wrapped: no fd may look current */
        memset(sb->stamp, 0, sb->stamp_cap * sizeof(*sb->stamp));
        sb->fill_stamp = 1;
    }
    uint32_t stamp = sb->fill_stamp;
    if (!grow((void **)&sb->next_listed, &sb->next_listed_cap, sb->num_polls,
              sizeof(*sb->next_listed)))
        return;
    unsigned n = 0;
    for (unsigned i = 0; i < sb->num_polls; i++) {
        int fd = sb->polls[i].fd;
        if (!grow((void **)&sb->stamp, &sb->stamp_cap, (unsigned)fd + 1,
                  sizeof(*sb->stamp)) ||
            sb->stamp[fd] == stamp)
            continue; /* listed twice: the first stands */
        sb->stamp[fd] = stamp;
        sb->next_listed[n++] = fd;
        struct epoll_event ev = {
            .events = to_epoll_events(sb->polls[i].events),
            .data.fd = fd,
        };
        if (epoll_ctl(sb->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
            errno == ENOENT)
            epoll_ctl(sb->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    }
    /* What slirp no longer asks for (a closed fd is gone already). */
    for (unsigned i = 0; i < sb->num_listed; i++) {
        int fd = sb->listed[i];
        if (sb->stamp[fd] != stamp)
            epoll_ctl(sb->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    }
    int *swap = sb->listed;
    unsigned swap_cap = sb->listed_cap;
    sb->listed = sb->next_listed;
    sb->listed_cap = sb->next_listed_cap;
    sb->num_listed = n;
    sb->next_listed = swap;
    sb->next_listed_cap = swap_cap;
}

static void arm_timer(struct slirp_backend *sb, uint64_t deadline_ns)
{
    /* Waking early only costs an idle run; so the timer is moved only
     * when a deadline comes before the one it holds. */
    /* Before start, slirp's own timers keep their deadlines; the first
     * run arms the loop's timer from them. */
    if (!sb->timer || !sb->base.started ||
        deadline_ns >= sb->timer_deadline_ns)
        return;
    sb->timer_deadline_ns = deadline_ns;
    sb->timer_ops.arm(sb->timer_ops.opaque, deadline_ns);
}

static void run_expired_timers(struct slirp_backend *sb, uint64_t now)
{
    /* slirp_handle_timer may re-arm or free timers: one at a time, from
     * the start of the list each time. */
    for (;;) {
        struct slirp_timer *due = NULL;
        for (struct slirp_timer *t = sb->timers; t; t = t->next)
            if (t->deadline_ns <= now)
                due = t;
        if (!due)
            return;
        due->deadline_ns = NO_DEADLINE;
        slirp_handle_timer(sb->slirp, due->id, due->cb_opaque);
    }
}

static void run(struct slirp_backend *sb)
{
    sb->run_scheduled = false;
    /* What slirp made inside slirp_input (the data an ACK from the guest
     * let go) goes first: the guest works on it while slirp reads on. */
    queue_deliver(sb);
    int ready = poll(sb->polls, sb->num_polls, 0);
    uint64_t now = now_ns();
    if (sb->timer_deadline_ns <= now)
        sb->timer_deadline_ns = NO_DEADLINE; /* it has fired */
    run_expired_timers(sb, now);
    slirp_pollfds_poll(sb->slirp, ready < 0, get_revents, sb);
    queue_deliver(sb);

    uint32_t timeout_ms = UINT32_MAX;
    sb->num_polls = 0;
    slirp_pollfds_fill(sb->slirp, &timeout_ms, add_poll, sb);
    sync_epoll(sb);
    uint64_t deadline = NO_DEADLINE;
    if (timeout_ms != UINT32_MAX)
        deadline = now + (uint64_t)timeout_ms * 1000000u;
    for (struct slirp_timer *t = sb->timers; t; t = t->next)
        if (t->deadline_ns < deadline)
            deadline = t->deadline_ns;
    if (deadline != NO_DEADLINE)
        arm_timer(sb, deadline);
}

static void on_sockets(void *opaque, uint32_t events)
{
    (void)events;
    run(opaque);
}

static void on_run(void *opaque, uint32_t events)
{
    (void)events;
    struct slirp_backend *sb = opaque;
    vmdev_eventfd_drain(sb->run_fd);
    run(sb);
}

static void on_timer(void *opaque)
{
    run(opaque);
}

/* ---- the backend's operations ---- */

static int slirp_start(struct vmdev_net_backend *b)
{
    struct slirp_backend *sb = slirp_of(b);
    if (!vmdev_event_loop_add_into(b->loop, sb->epoll_fd, VMDEV_EVENT_IN,
                                   on_sockets, sb, &sb->sockets_watch) ||
        !vmdev_event_loop_add_into(b->loop, sb->run_fd, VMDEV_EVENT_IN,
                                   on_run, sb, &sb->run_watch))
        return -errno;
    /* The first fill (the forwarded ports' listening sockets) comes from
     * the loop's thread, like every other. */
    schedule_run(sb);
    return 0;
}

static int slirp_send(struct vmdev_net_backend *b, const struct iovec *iov,
                      unsigned iovcnt, size_t len,
                      const struct vmdev_net_offload *offload)
{
    (void)offload; /* none: slirp carries plain frames */
    struct slirp_backend *sb = slirp_of(b);
    if (len < ETH_HEADER)
        return 0; /* not a frame: nothing for slirp */
    const uint8_t *frame = iov[0].iov_base;
    if (iovcnt != 1) {
        size_t at = 0;
        for (unsigned i = 0; i < iovcnt; i++) {
            memcpy(sb->gather + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        frame = sb->gather;
    }
    sb->in_input = true;
    slirp_input(sb->slirp, frame, (int)len);
    sb->in_input = false;
    /* A new connection has a socket to watch; a reply waits to go. */
    schedule_run(sb);
    return 0;
}

static void slirp_resume_receive(struct vmdev_net_backend *b)
{
    struct slirp_backend *sb = slirp_of(b);
    if (!sb->held)
        return;
    sb->held = false;
    queue_deliver(sb);
    if (!sb->held)
        schedule_run(sb); /* read the host sockets again */
}

static void slirp_close(struct vmdev_net_backend *b)
{
    struct slirp_backend *sb = slirp_of(b);
    if (sb->sockets_watch)
        vmdev_event_loop_remove(b->loop, sb->sockets_watch);
    if (sb->run_watch)
        vmdev_event_loop_remove(b->loop, sb->run_watch);
    if (sb->timer)
        vmdev_event_loop_timer_free(b->loop, sb->timer);
    sb->timer = NULL;
    if (sb->slirp)
        slirp_cleanup(sb->slirp); /* frees its timers through timer_free */
    while (sb->timers)
        timer_free(sb->timers, sb);
    if (sb->epoll_fd >= 0)
        close(sb->epoll_fd);
    if (sb->run_fd >= 0)
        close(sb->run_fd);
    free(sb->polls);
    free(sb->listed);
    free(sb->next_listed);
    free(sb->stamp);
    free(sb->queue.slots);
    free(sb->queue.len);
    free(sb->gather);
    free(sb);
}

static const struct net_backend_ops slirp_ops = {
    .start = slirp_start,
    .send = slirp_send,
    .resume_receive = slirp_resume_receive,
    .close = slirp_close,
};

/* ---- configuration ---- */

static struct in_addr ipv4(const char *text)
{
    struct in_addr a;
    inet_pton(AF_INET, text, &a);
    return a;
}

static struct in6_addr ipv6(const char *text)
{
    struct in6_addr a;
    inet_pton(AF_INET6, text, &a);
    return a;
}

static int add_forwards(struct slirp_backend *sb,
                        const struct vmdev_net_slirp_config *c, char *why,
                        size_t why_len)
{
    for (unsigned i = 0; i < c->num_hostfwds; i++) {
        const struct vmdev_net_hostfwd *f = &c->hostfwds[i];
        struct sockaddr_in guest = { .sin_family = AF_INET,
                                     .sin_addr = f->guest,
                                     .sin_port = htons(f->guest_port) };
        if (guest.sin_addr.s_addr == INADDR_ANY)
            guest.sin_addr = ipv4("10.0.2.15");
        int flags = f->udp ? SLIRP_HOSTFWD_UDP : 0;
        if (slirp_add_hostxfwd(sb->slirp, (const struct sockaddr *)&f->host,
                               f->host_len, (const struct sockaddr *)&guest,
                               sizeof(guest), flags) < 0) {
            int err = errno ? errno : EADDRINUSE;
            char host[INET6_ADDRSTRLEN] = "?";
            unsigned port = 0;
            if (f->host.ss_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const void *)&f->host;
                inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
                port = ntohs(a->sin6_port);
            } else {
                const struct sockaddr_in *a = (const void *)&f->host;
                inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
                port = ntohs(a->sin_port);
            }
            snprintf(why, why_len, "cannot forward %s port %s:%u: %s",
                     f->udp ? "udp" : "tcp", host, port, strerror(err));
            errno = err;
            return -1;
        }
    }
    return 0;
}

struct vmdev_net_backend *
vmdev_net_slirp_new(const struct vmdev_net_slirp_config *c,
                    struct vmdev_event_loop *loop, char *why, size_t why_len)
{
    char scratch[1];
    if (!why_len) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    /* libslirp writes to host sockets with plain send(): a host peer
     * that resets a connection the guest still sends on (which a guest
     * can bring about) raises SIGPIPE, and by default that ends the
     * process. As QEMU does, the process must ignore or handle it. */
    struct sigaction pipe_action;
    if (sigaction(SIGPIPE, NULL, &pipe_action) == 0 &&
        pipe_action.sa_handler == SIG_DFL) {
        snprintf(why, why_len, "user-mode networking needs SIGPIPE ignored "
                 "or handled (libslirp's socket writes raise it)");
        errno = EINVAL;
        return NULL;
    }
    unsigned mtu = c->mtu ? c->mtu : DEFAULT_MTU;
    if (mtu < MIN_MTU || mtu > VMDEV_NET_SLIRP_MAX_MTU) {
        snprintf(why, why_len, "MTU %u is outside libslirp's %u to %u",
                 c->mtu, MIN_MTU, VMDEV_NET_SLIRP_MAX_MTU);
        errno = EINVAL;
        return NULL;
    }
    struct slirp_backend *sb = calloc(1, sizeof(*sb));
    if (!sb) {
        snprintf(why, why_len, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    net_backend_init(&sb->base, &slirp_ops, loop);
    sb->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    sb->run_fd = vmdev_eventfd_new();
    sb->timer_deadline_ns = NO_DEADLINE;
    struct frame_queue *q = &sb->queue;
    q->slot_bytes = mtu + ETH_HEADER;
    q->num_slots = QUEUE_SLOTS;
    q->slots = malloc(q->num_slots * q->slot_bytes);
    q->len = calloc(q->num_slots, sizeof(*q->len));
    sb->gather = malloc(VMDEV_NET_MAX_FRAME);
    sb->timer = vmdev_event_loop_timer_new(loop, on_timer, sb, &sb->timer_ops);
    if (sb->epoll_fd < 0 || sb->run_fd < 0 || !q->slots || !q->len ||
        !sb->gather || !sb->timer) {
        int err = errno ? errno : ENOMEM;
        snprintf(why, why_len, "cannot set up user-mode networking: %s",
                 strerror(err));
        slirp_close(&sb->base);
        errno = err;
        return NULL;
    }
    SlirpConfig config = {
        .version = 4,
        .restricted = c->restricted,
        .in_enabled = true,
        .vnetwork = ipv4("10.0.2.0"),
        .vnetmask = ipv4("255.255.255.0"),
        .vhost = ipv4("10.0.2.2"),
        .in6_enabled = c->ipv6,
        .vprefix_addr6 = ipv6("fec0::"),
        .vprefix_len = 64,
        .vhost6 = ipv6("fec0::2"),
        .vdhcp_start = ipv4("10.0.2.15"),
        .vnameserver = ipv4("10.0.2.3"),
        .vnameserver6 = ipv6("fec0::3"),
        .if_mtu = mtu,
        .if_mru = mtu,
    };
    sb->slirp = slirp_new(&config, &slirp_callbacks, sb);
    if (!sb->slirp) {
        snprintf(why, why_len, "libslirp refused its configuration");
        slirp_close(&sb->base);
        errno = EINVAL;
        return NULL;
    }
    errno = 0;
    if (add_forwards(sb, c, why, why_len)) {
        int err = errno;
        slirp_close(&sb->base);
        errno = err;
        return NULL;
    }
    return &sb->base;
}

/* ---- hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT ---- */

static int parse_port(const char *text, size_t len, uint16_t *port)
{
    unsigned v = 0;
    if (!len || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int vmdev_net_hostfwd_parse(const char *spec, struct vmdev_net_hostfwd *out,
                            char *why, size_t why_len)
{
    *out = (struct vmdev_net_hostfwd){ 0 };
    const char *p = spec;
    if (strncmp(p, "tcp:", 4) == 0) {
        p += 4;
    } else if (strncmp(p, "udp:", 4) == 0) {
        out->udp = true;
        p += 4;
    } else if (*p == ':') {
        p++;
    } else {
        snprintf(why, why_len, "'%s' does not start with tcp:, udp: or :",
                 spec);
        return -EINVAL;
    }
    const char *dash = strchr(p, '-');
    const char *colon;
    if (!dash) {
        snprintf(why, why_len, "'%s' has no '-' between the host and the "
                 "guest side", spec);
        return -EINVAL;
    }
    /* The host address: empty, IPv4, or [IPv6]. */
    char addr[INET6_ADDRSTRLEN + 2];
    bool v6 = *p == '[';
    if (v6) {
        const char *close = memchr(p, ']', (size_t)(dash - p));
        if (!close || close[1] != ':' || (size_t)(close - p - 1) >= sizeof(addr))
            goto bad_host;
        memcpy(addr, p + 1, (size_t)(close - p - 1));
        addr[close - p - 1] = '\0';
        colon = close + 1;
    } else {
        colon = memchr(p, ':', (size_t)(dash - p));
        if (!colon || (size_t)(colon - p) >= sizeof(addr))
            goto bad_host;
        memcpy(addr, p, (size_t)(colon - p));
        addr[colon - p] = '\0';
    }
    uint16_t host_port;
    if (parse_port(colon + 1, (size_t)(dash - colon - 1), &host_port)) {
        snprintf(why, why_len, "'%s': the host port is not a number from 1 "
                 "to 65535", spec);
        return -EINVAL;
    }
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->host;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(host_port);
        if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1)
            goto bad_host;
        out->host_len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&out->host;
        a->sin_family = AF_INET;
        a->sin_port = htons(host_port);
        if (*addr && inet_pton(AF_INET, addr, &a->sin_addr) != 1)
            goto bad_host;
        out->host_len = sizeof(*a);
    }
    /* The guest side: [GUESTADDR]:GUESTPORT. */
    const char *g = dash + 1;
    colon = strrchr(g, ':');
    if (!colon || (size_t)(colon - g) >= sizeof(addr)) {
        snprintf(why, why_len, "'%s': the guest side is not "
                 "[GUESTADDR]:GUESTPORT", spec);
        return -EINVAL;
    }
    memcpy(addr, g, (size_t)(colon - g));
    addr[colon - g] = '\0';
    if (*addr && inet_pton(AF_INET, addr, &out->guest) != 1) {
        snprintf(why, why_len, "'%s': the guest address '%s' is not IPv4",
                 spec, addr);
        return -EINVAL;
    }
    if (parse_port(colon + 1, strlen(colon + 1), &out->guest_port)) {
        snprintf(why, why_len, "'%s': the guest port is not a number from 1 "
                 "to 65535", spec);
        return -EINVAL;
    }
    return 0;
bad_host:
    snprintf(why, why_len, "'%s': the host address is not empty, IPv4 or "
             "[IPv6]", spec);
    return -EINVAL;
}
