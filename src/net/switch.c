/* SPDX-License-Identifier: MIT */
/*
 * The learning switch (net_switch.h). Everything runs on the switch's
 * loop: a port's frames arrive through its backend's receive() and are
 * sent on the other ports' backends from there (net.h lets receive()
 * send on other backends, not its own).
 *
 * Each port has an egress queue, as a hardware switch has: a frame its
 * backend cannot take now (the peer's socket is full) waits there, in
 * order, until the backend says it is writable; past EGRESS_FRAMES frames
 * or EGRESS_BYTES bytes a frame for that port is dropped and counted. So
 * a burst does not cost TCP a loss, a stopped peer costs only its own
 * frames, and memory per port is bounded.
 *
 * The address table is open addressing with linear probing over a fixed
 * array: an entry names a port and that port's generation, so entries of
 * a port that left (or of a number reused since) are misses without being
 * searched out; an insert takes the first free, stale or aged slot of its
 * probe run, else the oldest in it. Memory stays fixed whatever addresses
 * the ports' peers make up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "vmdev/clock.h"
#include "vmdev/net_switch.h"

#define TABLE_SLOTS 4096u /* a power of two */
#define PROBE_RUN 16u
#define AGE_NS (300ull * 1000000000ull) /* as Linux bridges: 300 s */
#define ETH_HEADER 14
#define EGRESS_FRAMES 256u
#define EGRESS_BYTES (1u << 20)

struct queued_frame {
    size_t len;
    uint8_t data[]; /* len bytes */
};

struct port {
    struct vmdev_net_switch *sw;
    struct vmdev_net_backend *backend; /* NULL: free */
    bool leaving;        /* its host side went away: closed at the reap */
    uint32_t generation; /* moves when the port leaves */
    char name[VMDEV_NET_SWITCH_NAME_LEN];
    /* Egress queue: a ring of frames waiting for the backend. */
    struct queued_frame *egress[EGRESS_FRAMES];
    unsigned egress_head, egress_count;
    size_t egress_bytes;
};

struct table_entry {
    uint8_t mac[6];
    uint8_t port;
    bool used;
    uint32_t generation;
    uint64_t seen_ns;
};

struct vmdev_net_switch {
    struct vmdev_event_loop *loop;
    int reap_fd; /* ports that left are closed from here */
    struct vmdev_event_watch *reap_watch;
    struct port ports[VMDEV_NET_SWITCH_MAX_PORTS];
    struct table_entry table[TABLE_SLOTS];
    struct vmdev_net_switch_stats stats;
};

static uint64_t now_ns(void)
{
    return vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC);
}

static bool attached(const struct port *p)
{
    return p->backend && !p->leaving;
}

static unsigned slot_of(const uint8_t *mac)
{
    /* FNV-1a over the address. */
    uint32_t h = 2166136261u;
    for (unsigned i = 0; i < 6; i++)
        h = (h ^ mac[i]) * 16777619u;
    return h & (TABLE_SLOTS - 1);
}

static bool entry_live(const struct vmdev_net_switch *sw,
                       const struct table_entry *e, uint64_t now)
{
    const struct port *p = &sw->ports[e->port];
    return e->used && attached(p) && e->generation == p->generation &&
           now - e->seen_ns < AGE_NS;
}

/* The port mac was last seen on, or -1. */
static int lookup(const struct vmdev_net_switch *sw, const uint8_t *mac,
                  uint64_t now)
{
    unsigned s = slot_of(mac);
    for (unsigned i = 0; i < PROBE_RUN; i++) {
        const struct table_entry *e = &sw->table[(s + i) & (TABLE_SLOTS - 1)];
        if (!e->used)
            return -1;
        if (memcmp(e->mac, mac, 6) == 0)
            return entry_live(sw, e, now) ? e->port : -1;
    }
    return -1;
}

static void learn(struct vmdev_net_switch *sw, const uint8_t *mac,
                  unsigned port, uint64_t now)
{
    unsigned s = slot_of(mac);
    struct table_entry *take = NULL;
    bool take_live = false; /* take holds another live address */
    for (unsigned i = 0; i < PROBE_RUN; i++) {
        struct table_entry *e = &sw->table[(s + i) & (TABLE_SLOTS - 1)];
        if (e->used && memcmp(e->mac, mac, 6) == 0) {
            take = e; /* its own entry, live or not */
            take_live = false;
            break;
        }
        bool live = entry_live(sw, e, now);
        /* Free or stale beats live; among live, the oldest. */
        if (!take || (take_live && (!live || e->seen_ns < take->seen_ns))) {
            take = e;
            take_live = live;
        }
        if (!e->used)
            break; /* inserts fill runs in order: the address is not further */
    }
    const struct port *p = &sw->ports[port];
    if (!(take->used && memcmp(take->mac, mac, 6) == 0 &&
          entry_live(sw, take, now) && take->port == port))
        sw->stats.learned++;
    memcpy(take->mac, mac, 6);
    take->port = (uint8_t)port;
    take->generation = p->generation;
    take->used = true;
    take->seen_ns = now;
}

/* Queue a copy of frame for p: false when the queue is full. */
static bool egress_push(struct port *p, const void *frame, size_t len)
{
    if (p->egress_count == EGRESS_FRAMES ||
        p->egress_bytes + len > EGRESS_BYTES)
        return false;
    struct queued_frame *q = malloc(sizeof(*q) + len);
    if (!q)
        return false;
    q->len = len;
    memcpy(q->data, frame, len);
    p->egress[(p->egress_head + p->egress_count++) % EGRESS_FRAMES] = q;
    p->egress_bytes += len;
    return true;
}

static void egress_pop(struct port *p)
{
    struct queued_frame *q = p->egress[p->egress_head];
    p->egress_bytes -= q->len;
    free(q);
    p->egress_head = (p->egress_head + 1) % EGRESS_FRAMES;
    p->egress_count--;
}

/* Send what waits for p, in order, until its backend refuses. */
static void egress_flush(struct vmdev_net_switch *sw, struct port *p)
{
    while (p->egress_count) {
        struct queued_frame *q = p->egress[p->egress_head];
        struct iovec iov = { q->data, q->len };
        int ret = vmdev_net_send(p->backend, &iov, 1);
        if (ret == -EAGAIN)
            return; /* writable() comes back here */
        if (ret)
            sw->stats.dropped++;
        egress_pop(p);
    }
}

static void send_to(struct vmdev_net_switch *sw, struct port *p,
                    const void *frame, size_t len)
{
    /* Behind frames already waiting, or refused now: wait in the queue;
     * the frame is this port's loss when it is full, not the others'
     * wait. */
    if (!p->egress_count) {
        struct iovec iov = { (void *)frame, len };
        int ret = vmdev_net_send(p->backend, &iov, 1);
        if (ret != -EAGAIN) {
            if (ret)
                sw->stats.dropped++;
            return;
        }
    }
    if (egress_push(p, frame, len))
        sw->stats.queued++;
    else
        sw->stats.dropped++;
}

static bool port_receive(void *opaque, const void *data, size_t len,
                         const struct vmdev_net_offload *offload)
{
    struct port *from = opaque;
    struct vmdev_net_switch *sw = from->sw;
    const uint8_t *frame = data;
    (void)offload; /* none: ports are told to hand over plain frames */
    if (len < ETH_HEADER || !attached(from))
        return true;
    uint64_t now = now_ns();
    unsigned from_index = (unsigned)(from - sw->ports);
    /* A group address is never a source (IEEE 802.1D 7.8). */
    if (!(frame[6] & 1))
        learn(sw, frame + 6, from_index, now);
    int to = frame[0] & 1 ? -1 : lookup(sw, frame, now);
    if (to == (int)from_index) {
        sw->stats.filtered++;
        return true;
    }
    if (to >= 0) {
        sw->stats.forwarded++;
        send_to(sw, &sw->ports[to], frame, len);
        return true;
    }
    sw->stats.flooded++;
    for (unsigned i = 0; i < VMDEV_NET_SWITCH_MAX_PORTS; i++)
        if (i != from_index && attached(&sw->ports[i]))
            send_to(sw, &sw->ports[i], frame, len);
    return true;
}

static void port_writable(void *opaque)
{
    struct port *p = opaque;
    if (attached(p))
        egress_flush(p->sw, p);
}

static void port_link_changed(void *opaque, bool up)
{
    struct port *p = opaque;
    if (up || p->leaving)
        return;
    /* Inside the backend's own callback: it is closed from the loop
     * afterwards. */
    p->leaving = true;
    p->generation++;
    p->sw->stats.ports--;
    vmdev_eventfd_signal(p->sw->reap_fd);
}

static void close_port(struct port *p)
{
    vmdev_net_free(p->backend);
    p->backend = NULL;
    p->leaving = false;
    while (p->egress_count) {
        p->sw->stats.dropped++;
        egress_pop(p);
    }
}

static void reap(void *opaque, uint32_t events)
{
    struct vmdev_net_switch *sw = opaque;
    (void)events;
    vmdev_eventfd_drain(sw->reap_fd);
    for (unsigned i = 0; i < VMDEV_NET_SWITCH_MAX_PORTS; i++)
        if (sw->ports[i].backend && sw->ports[i].leaving)
            close_port(&sw->ports[i]);
}

struct vmdev_net_switch *vmdev_net_switch_new(struct vmdev_event_loop *loop)
{
    struct vmdev_net_switch *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        errno = ENOMEM;
        return NULL;
    }
    sw->loop = loop;
    sw->reap_fd = vmdev_eventfd_new();
    if (sw->reap_fd >= 0)
        sw->reap_watch = vmdev_event_loop_add(loop, sw->reap_fd,
                                              VMDEV_EVENT_IN, reap, sw);
    if (!sw->reap_watch) {
        int err = errno;
        if (sw->reap_fd >= 0)
            close(sw->reap_fd);
        free(sw);
        errno = err;
        return NULL;
    }
    for (unsigned i = 0; i < VMDEV_NET_SWITCH_MAX_PORTS; i++)
        sw->ports[i].sw = sw;
    return sw;
}

int vmdev_net_switch_add(struct vmdev_net_switch *sw,
                         struct vmdev_net_backend *backend, const char *name)
{
    if (!backend || vmdev_net_loop(backend) != sw->loop) {
        vmdev_net_free(backend);
        return -EINVAL;
    }
    struct port *p = NULL;
    for (unsigned i = 0; i < VMDEV_NET_SWITCH_MAX_PORTS && !p; i++)
        if (!sw->ports[i].backend)
            p = &sw->ports[i];
    if (!p) {
        vmdev_net_free(backend);
        return -ENOSPC;
    }
    p->backend = backend;
    p->leaving = false;
    p->generation++;
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
    struct vmdev_net_callbacks cb = { port_receive, port_writable,
                                      port_link_changed, p };
    int ret = vmdev_net_start(backend, &cb);
    if (ret == 0)
        ret = vmdev_net_set_receive_offloads(backend, 0);
    if (ret) {
        close_port(p);
        return ret;
    }
    sw->stats.ports++;
    if (!vmdev_net_link_up(backend))
        port_link_changed(p, false);
    return (int)(p - sw->ports);
}

struct vmdev_net_switch_stats vmdev_net_switch_stats(
    const struct vmdev_net_switch *sw)
{
    return sw->stats;
}

bool vmdev_net_switch_port(const struct vmdev_net_switch *sw, unsigned port,
                           char name[VMDEV_NET_SWITCH_NAME_LEN])
{
    if (port >= VMDEV_NET_SWITCH_MAX_PORTS || !attached(&sw->ports[port]))
        return false;
    memcpy(name, sw->ports[port].name, VMDEV_NET_SWITCH_NAME_LEN);
    return true;
}

void vmdev_net_switch_free(struct vmdev_net_switch *sw)
{
    if (!sw)
        return;
    vmdev_event_loop_remove(sw->loop, sw->reap_watch);
    close(sw->reap_fd);
    for (unsigned i = 0; i < VMDEV_NET_SWITCH_MAX_PORTS; i++)
        if (sw->ports[i].backend)
            close_port(&sw->ports[i]);
    free(sw);
}
