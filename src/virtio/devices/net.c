/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1): the device.
 *
 * Each queue pair works on its backend's event loop. A driver
 * notification, on whatever thread it arrives, only signals the pair's
 * kick eventfd; the loop then resumes the backend's receiving and sends
 * what the transmit queue holds. So the backend is only ever called on
 * its own thread, and never with dev->lock held: it may call back into
 * the device (a frame, the link going down) from inside any call.
 *
 * Receive is net_rx.c, transmit net_tx.c, the control queue net_ctrl.c;
 * here the pairs' loop work, the backends' other callbacks, the device's
 * operations and its creation.
 *
 * Receive offloads (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN) are offered when
 * every backend carries them; the backends are told at DRIVER_OK which
 * the driver took, and a frame that still needs more (read before that)
 * is dropped and counted.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_internal.h"
#include "vmdev/log.h"
#include "vmdev/virtio_device.h"

static struct vmdev_virtio_net *net_of(struct vmdev_virtio_device *dev)
{
    return (struct vmdev_virtio_net *)dev;
}

void net_pair_kick(struct vmdev_virtio_net_pair *pair)
{
    vmdev_eventfd_signal(pair->kick_fd);
}

/* --- Notification coalescing (5.1.6.5.6) --- */

static const struct vmdev_virtio_net_coalesce *
coalesce_of(const struct net_coalesce_state *c)
{
    const struct vmdev_virtio_net *net = c->pair->net;
    return c->queue & 1 ? &net->tx_coalesce : &net->rx_coalesce;
}

/* frames were returned on c's queue: interrupt now, or once usecs have
 * passed since the first of them, or once enough of them wait. */
void net_coalesce_returned(struct net_coalesce_state *c, uint32_t frames)
{
    struct vmdev_virtio_device *dev = &c->pair->net->dev;
    const struct vmdev_virtio_net_coalesce *k = coalesce_of(c);
    c->pending += frames;
    if (k->usecs == 0 || (k->frames && c->pending >= k->frames)) {
        c->pending = 0;
        if (c->armed) {
            c->armed = false;
            c->timer.cancel(c->timer.opaque);
        }
        vmdev_virtio_interrupt_queue(dev, c->queue);
        return;
    }
    if (!c->armed) {
        c->armed = true;
        c->timer.arm(c->timer.opaque,
                     vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC) +
                         (uint64_t)k->usecs * 1000u);
    }
}

/* The parameters of c's direction changed: what waits is notified now
 * (5.1.6.5.6: the new conditions are checked at once; best-effort). Under
 * dev->lock. */
void net_coalesce_changed(struct net_coalesce_state *c)
{
    if (!c->pending)
        return;
    c->pending = 0;
    if (c->armed) {
        c->armed = false;
        c->timer.cancel(c->timer.opaque);
    }
    vmdev_virtio_interrupt_queue(&c->pair->net->dev, c->queue);
}

static void coalesce_expired(void *opaque)
{
    struct net_coalesce_state *c = opaque;
    struct vmdev_virtio_device *dev = &c->pair->net->dev;
    pthread_mutex_lock(&dev->lock);
    if (c->armed) {
        c->armed = false;
        c->pending = 0;
        if (vmdev_virtio_is_running(dev))
            vmdev_virtio_interrupt_queue(dev, c->queue);
    }
    pthread_mutex_unlock(&dev->lock);
}

/* The pair's kick: on the backend's loop, without dev->lock. */
static void pair_kicked(void *opaque, uint32_t events)
{
    struct vmdev_virtio_net_pair *p = opaque;
    (void)events;
    vmdev_eventfd_drain(p->kick_fd);
    struct vmdev_virtio_device *dev = &p->net->dev;
    pthread_mutex_lock(&dev->lock);
    bool resume = p->rx_waiting;
    p->rx_waiting = false;
    int offloads = p->rx_offloads_to_set;
    p->rx_offloads_to_set = -1;
    pthread_mutex_unlock(&dev->lock);
    /* A failure leaves the backend handing over offloads the driver may
     * not take: such frames are dropped and counted (rx_header). */
    if (offloads >= 0 &&
        vmdev_net_set_receive_offloads(p->backend, (unsigned)offloads))
        vmdev_log_limited(dev->log, &p->net->offload_log_limit, VMDEV_LOG_WARN,
                          "%s: the backend cannot change its receive "
                          "offloads", dev->name);
    if (resume)
        vmdev_net_resume_receive(p->backend);
    net_tx_run(p);
}

/* --- Backend callbacks other than receive --- */

/* Every pair sending through the backend may go on. */
static void backend_writable(void *opaque)
{
    struct vmdev_virtio_net_pair *home = opaque;
    struct vmdev_virtio_net *net = home->net;
    for (uint16_t i = home->index; i < net->num_pairs; i += net->num_backends)
        net_tx_run(&net->pairs[i]);
}

/* Up while every backend is; each one's state kept here, as its own
 * callback said, since the others run on other threads. */
static bool links_up(const struct vmdev_virtio_net *net)
{
    for (uint16_t i = 0; i < net->num_backends; i++)
        if (!net->pairs[i].link_up)
            return false;
    return true;
}

/* 5.1.4: link status changes come with a configuration interrupt. */
static void backend_link_changed(void *opaque, bool up)
{
    struct vmdev_virtio_net_pair *home = opaque;
    struct vmdev_virtio_net *net = home->net;
    pthread_mutex_lock(&net->dev.lock);
    home->link_up = up;
    /* A pair waiting to be told the backend is writable would wait
     * forever on a backend that went away: its sends now fail fast. */
    for (uint16_t i = home->index; i < net->num_pairs; i += net->num_backends)
        net_pair_kick(&net->pairs[i]);
    uint16_t status = le16toh(net->config.status);
    uint16_t now = links_up(net) ? (uint16_t)(status | VIRTIO_NET_S_LINK_UP)
                                 : (uint16_t)(status & ~VIRTIO_NET_S_LINK_UP);
    if (now != status) {
        net->config.status = htole16(now);
        if (vmdev_virtio_get_status(&net->dev) & VMDEV_VIRTIO_STATUS_DRIVER_OK)
            vmdev_virtio_interrupt_config(&net->dev);
    }
    pthread_mutex_unlock(&net->dev.lock);
}

/* --- Device ops --- */

static void net_read_config(struct vmdev_virtio_device *dev, uint32_t offset,
                            void *data, uint32_t len)
{
    memcpy(data, (const uint8_t *)&net_of(dev)->config + offset, len);
}

static void net_queue_kick(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtio_net *net = net_of(dev);
    if (index == net_ctrl_queue(net)) {
        net_ctrl_process(net);
        return;
    }
    if (index & 1) {
        net_pair_kick(&net->pairs[index / 2]);
        return;
    }
    /* Receive buffers: for the backends whose frames wait for them. */
    for (uint16_t k = 0; k < net->num_backends; k++)
        if (net->pairs[k].rx_waiting && k % net->active_pairs == index / 2)
            net_pair_kick(&net->pairs[k]);
}

/* A pair's queues go with its backend, whose loop is the pair's: group
 * k is the pairs on backend k (pair i on backend i % num_backends), so a
 * transmit kick reaches the backend on the thread it arrived on. The last
 * queue, the control queue with MQ, is one of its own. Asked before the
 * features are known, so it does not follow them: without MQ the control
 * queue is queue 2, in pair 1's group, which is as good (it is served on
 * any thread, under dev->lock). */
static uint16_t net_queue_group(const struct vmdev_virtio_device *dev,
                                uint16_t index)
{
    const struct vmdev_virtio_net *net = (const struct vmdev_virtio_net *)dev;
    if (index == 2 * net->num_pairs)
        return index;
    return (uint16_t)(index / 2 % net->num_backends);
}

/* VMDEV_NET_CAN_* for the receive offloads the driver took. */
static unsigned accepted_rx_offloads(const struct vmdev_virtio_net *net)
{
    if (!net_has(net, VIRTIO_NET_F_GUEST_CSUM))
        return 0;
    unsigned can = VMDEV_NET_CAN_CSUM;
    if (net_has(net, VIRTIO_NET_F_GUEST_TSO4))
        can |= VMDEV_NET_CAN_TSO4;
    if (net_has(net, VIRTIO_NET_F_GUEST_TSO6))
        can |= VMDEV_NET_CAN_TSO6;
    if (net_has(net, VIRTIO_NET_F_GUEST_ECN))
        can |= VMDEV_NET_CAN_ECN;
    return can;
}

static int net_activate(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    /* Offered only when every backend carries them; told by each home
     * pair on its backend's loop (the kicks below), never under this
     * lock. */
    unsigned rx_offloads = accepted_rx_offloads(net);
    for (uint16_t i = 0; i < net->num_backends; i++)
        net->pairs[i].rx_offloads_to_set = (int)rx_offloads;
    /* 5.1.6.5.6: a driver that sets coalescing starts from none; the
     * host's defaults are for one that cannot. */
    if (net_has(net, VIRTIO_NET_F_NOTF_COAL))
        net->rx_coalesce = net->tx_coalesce =
            (struct vmdev_virtio_net_coalesce){ 0 };
    /* Frames held back before the driver was ready, and transmit
     * buffers queued before DRIVER_OK. */
    for (uint16_t i = 0; i < net->num_pairs; i++)
        net_pair_kick(&net->pairs[i]);
    return 0;
}

static void net_reset(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    memcpy(net->mac, net->config.mac, 6);
    net->active_pairs = 1;
    net->generation++;
    net->config.status &= htole16((uint16_t)~VIRTIO_NET_S_ANNOUNCE);
    /* No receive offloads until the next driver says which it takes
     * (kicked here, so frames the kernel queues meanwhile are plain). */
    for (uint16_t i = 0; i < net->num_backends && net->pairs; i++) {
        if (net->pairs[i].backend) {
            net->pairs[i].rx_offloads_to_set = 0;
            net_pair_kick(&net->pairs[i]);
        }
    }
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct net_coalesce_state *c[2] = { &net->pairs[i].rx_coal,
                                            &net->pairs[i].tx_coal };
        for (unsigned k = 0; k < 2; k++) {
            if (c[k]->armed)
                c[k]->timer.cancel(c[k]->timer.opaque);
            c[k]->armed = false;
            c[k]->pending = 0;
        }
    }
    net_ctrl_reset(net);
}

/* --- Creation --- */

static void net_stop(struct vmdev_virtio_device *dev);
static void net_destroy(struct vmdev_virtio_device *dev);

static const struct vmdev_virtio_device_ops net_ops = {
    .read_config = net_read_config,
    .activate = net_activate,
    .reset = net_reset,
    .queue_kick = net_queue_kick,
    .queue_group = net_queue_group,
    .stop = net_stop,
    .destroy = net_destroy,
};

static int check_config(const struct vmdev_virtio_net_config *c)
{
    uint16_t pairs = c->num_pairs ? c->num_pairs : 1;
    uint16_t size = c->queue_size ? c->queue_size
                                  : VMDEV_VIRTIO_NET_DEFAULT_QUEUE_SIZE;
    if (pairs > VMDEV_VIRTIO_NET_MAX_PAIRS || size & (size - 1) ||
        size < VMDEV_VIRTIO_NET_MIN_QUEUE_SIZE ||
        size > VMDEV_VIRTIO_NET_MAX_QUEUE_SIZE ||
        (c->mtu && c->mtu < VMDEV_VIRTIO_NET_MIN_MTU) || !c->backends ||
        c->num_backends == 0 || c->num_backends > pairs || c->mac[0] & 1)
        return -EINVAL;
    for (uint16_t i = 0; i < c->num_backends; i++) {
        if (!c->backends[i])
            return -EINVAL;
        for (uint16_t k = 0; k < i; k++)
            if (c->backends[k] == c->backends[i])
                return -EINVAL; /* one backend, one consumer */
    }
    return 0;
}

/* The guest's receive offloads that every backend carries. */
static uint64_t offered_rx_offloads(const struct vmdev_virtio_net_config *c)
{
    unsigned common = ~0u;
    for (uint16_t i = 0; i < c->num_backends; i++)
        common &= vmdev_net_offloads(c->backends[i]);
    if (!(common & VMDEV_NET_CAN_CSUM))
        return 0;
    uint64_t f = VMDEV_VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    if (common & VMDEV_NET_CAN_TSO4)
        f |= VMDEV_VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
    if (common & VMDEV_NET_CAN_TSO6)
        f |= VMDEV_VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
    if (common & VMDEV_NET_CAN_ECN &&
        common & (VMDEV_NET_CAN_TSO4 | VMDEV_NET_CAN_TSO6))
        f |= VMDEV_VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
    return f;
}

static uint64_t offered_features(const struct vmdev_virtio_net_config *c,
                                 uint16_t pairs)
{
    uint64_t f = VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
                 VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
                 VMDEV_VIRTIO_BIT(VIRTIO_NET_F_NOTF_COAL);
    f |= offered_rx_offloads(c);
    if (pairs > 1)
        f |= VMDEV_VIRTIO_BIT(VIRTIO_NET_F_MQ);
    if (c->mtu)
        f |= VMDEV_VIRTIO_BIT(VIRTIO_NET_F_MTU);
    return f;
}

/* ops->stop: the pairs' kicks first, then the backends (each waiting for
 * a callback in progress), then the timers those callbacks arm, so
 * nothing runs in the device after. */
static void net_stop(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (p->kick_watch)
            vmdev_event_loop_remove(p->loop, p->kick_watch);
        p->kick_watch = NULL;
    }
    for (uint16_t i = 0; i < net->num_backends; i++) {
        vmdev_net_free(net->backends[i]);
        net->backends[i] = NULL;
    }
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (!p->loop)
            continue; /* creation failed before this pair */
        vmdev_event_loop_timer_free(p->loop, p->rx_coal.timer_owner);
        vmdev_event_loop_timer_free(p->loop, p->tx_coal.timer_owner);
        p->rx_coal.timer_owner = p->tx_coal.timer_owner = NULL;
    }
}

static void net_destroy(struct vmdev_virtio_device *dev)
{
    struct vmdev_virtio_net *net = net_of(dev);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        struct vmdev_virtio_net_pair *p = &net->pairs[i];
        if (p->kick_fd >= 0)
            close(p->kick_fd);
        free(p->rx_used);
        free(p->tx_frame);
        free(p->tx_segment);
    }
    free(net->pairs);
    free(net->backends);
    free(net);
}

static int init_pair(struct vmdev_virtio_net *net, uint16_t i, uint16_t size)
{
    struct vmdev_virtio_net_pair *p = &net->pairs[i];
    p->net = net;
    p->index = i;
    p->rx_offloads_to_set = -1;
    p->backend = net->backends[i % net->num_backends];
    p->loop = vmdev_net_loop(p->backend);
    p->link_up = vmdev_net_link_up(p->backend);
    struct vmdev_event_loop *loop = p->loop;
    p->rx_coal = (struct net_coalesce_state){ .pair = p,
                                              .queue = net_rx_queue(i) };
    p->tx_coal = (struct net_coalesce_state){ .pair = p,
                                              .queue = net_tx_queue(i) };
    p->kick_fd = vmdev_eventfd_new();
    p->rx_used = calloc(size, sizeof(*p->rx_used));
    p->tx_frame = malloc(VMDEV_NET_MAX_FRAME);
    p->tx_segment = malloc(VMDEV_NET_MAX_FRAME);
    if (p->kick_fd < 0)
        return -errno;
    if (!p->rx_used || !p->tx_frame || !p->tx_segment)
        return -ENOMEM;
    p->rx_coal.timer_owner = vmdev_event_loop_timer_new(
        loop, coalesce_expired, &p->rx_coal, &p->rx_coal.timer);
    p->tx_coal.timer_owner = vmdev_event_loop_timer_new(
        loop, coalesce_expired, &p->tx_coal, &p->tx_coal.timer);
    p->kick_watch = vmdev_event_loop_add(loop, p->kick_fd, VMDEV_EVENT_IN,
                                         pair_kicked, p);
    if (!p->rx_coal.timer_owner || !p->tx_coal.timer_owner || !p->kick_watch)
        return errno ? -errno : -ENOMEM;
    return 0;
}

static void close_backends(const struct vmdev_virtio_net_config *c)
{
    for (uint16_t i = 0; c->backends && i < c->num_backends; i++)
        vmdev_net_free(c->backends[i]);
}

struct vmdev_virtio_net *vmdev_virtio_net_new(
    const char *name, const struct vmdev_guest_memory *mem,
    const struct vmdev_virtio_net_config *config)
{
    int err = check_config(config);
    if (err) {
        close_backends(config);
        errno = -err;
        return NULL;
    }
    struct vmdev_virtio_net *net = calloc(1, sizeof(*net));
    if (!net) {
        close_backends(config);
        errno = ENOMEM;
        return NULL;
    }
    uint16_t pairs = config->num_pairs ? config->num_pairs : 1;
    uint16_t size = config->queue_size ? config->queue_size
                                       : VMDEV_VIRTIO_NET_DEFAULT_QUEUE_SIZE;
    net->num_pairs = pairs;
    net->num_backends = config->num_backends;
    net->default_rx_coalesce = config->rx_coalesce;
    net->default_tx_coalesce = config->tx_coalesce;
    memcpy(net->config.mac, config->mac, 6);
    net->config.max_virtqueue_pairs = htole16(pairs);
    net->config.mtu = htole16(config->mtu);
    net->backends = calloc(config->num_backends, sizeof(*net->backends));
    net->pairs = calloc(pairs, sizeof(*net->pairs));
    if (!net->backends || !net->pairs) {
        free(net->backends);
        free(net->pairs);
        free(net);
        close_backends(config);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(net->backends, config->backends,
           config->num_backends * sizeof(*net->backends));
    for (uint16_t i = 0; i < pairs; i++)
        net->pairs[i].kick_fd = -1;
    err =
        vmdev_virtio_init(&net->dev, name, VMDEV_VIRTIO_ID_NET, &net_ops,
                          offered_features(config, pairs), sizeof(net->config),
                          (uint16_t)(2 * pairs + 1), size, mem);
    if (err) {
        close_backends(config);
        net_destroy(&net->dev);
        errno = -err;
        return NULL;
    }
    for (uint16_t i = 0; !err && i < pairs; i++)
        err = init_pair(net, i, size);
    if (!err) {
        net_reset(&net->dev);
        if (links_up(net))
            net->config.status = htole16(VIRTIO_NET_S_LINK_UP);
    }
    /* Last: from here the backends call in, on their loops. */
    for (uint16_t i = 0; !err && i < net->num_backends; i++) {
        struct vmdev_net_callbacks cb = { net_receive, backend_writable,
                                          backend_link_changed,
                                          &net->pairs[i] };
        err = vmdev_net_start(net->backends[i], &cb);
    }
    if (err) {
        vmdev_virtio_free(&net->dev); /* closes the backends */
        errno = -err;
        return NULL;
    }
    return net;
}

struct vmdev_virtio_device *vmdev_virtio_net_device(struct vmdev_virtio_net *net)
{
    return &net->dev;
}

struct vmdev_virtio_net_stats vmdev_virtio_net_stats(
    struct vmdev_virtio_net *net)
{
    pthread_mutex_lock(&net->dev.lock);
    struct vmdev_virtio_net_stats s = net->stats;
    pthread_mutex_unlock(&net->dev.lock);
    for (uint16_t i = 0; i < net->num_pairs; i++) {
        s.tx_dropped += atomic_load(&net->pairs[i].tx_dropped);
        s.tx_segments += atomic_load(&net->pairs[i].tx_segments);
        s.tx_checksums += atomic_load(&net->pairs[i].tx_checksums);
    }
    return s;
}

struct vmdev_virtio_net_queue_stats vmdev_virtio_net_queue_stats(
    struct vmdev_virtio_net *net, uint16_t index)
{
    struct vmdev_virtio_net_queue_stats s = { 0 };
    if (index >= 2 * net->num_pairs)
        return s;
    pthread_mutex_lock(&net->dev.lock);
    struct vmdev_virtio_net_pair *p = &net->pairs[index / 2];
    s = index & 1 ? p->tx_stats : p->rx_stats;
    pthread_mutex_unlock(&net->dev.lock);
    return s;
}

void vmdev_virtio_net_mac(struct vmdev_virtio_net *net, uint8_t mac[6])
{
    pthread_mutex_lock(&net->dev.lock);
    memcpy(mac, net->mac, 6);
    pthread_mutex_unlock(&net->dev.lock);
}

bool vmdev_virtio_net_announce(struct vmdev_virtio_net *net)
{
    pthread_mutex_lock(&net->dev.lock);
    bool told = vmdev_virtio_is_running(&net->dev) &&
                net_has(net, VIRTIO_NET_F_GUEST_ANNOUNCE) &&
                net_has(net, VIRTIO_NET_F_CTRL_VQ);
    if (told) {
        /* 5.1.6.5.4: the driver answers with VIRTIO_NET_CTRL_ANNOUNCE_ACK. */
        net->config.status |= htole16(VIRTIO_NET_S_ANNOUNCE);
        vmdev_virtio_interrupt_config(&net->dev);
    }
    pthread_mutex_unlock(&net->dev.lock);
    return told;
}

void vmdev_virtio_net_free(struct vmdev_virtio_net *net)
{
    if (net)
        vmdev_virtio_free(&net->dev);
}
