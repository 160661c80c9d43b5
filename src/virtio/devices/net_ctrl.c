/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's control queue (virtio 1.2, 5.1.6.5): receive modes, MAC
 * filter tables and address, announce acknowledgements, the number of
 * queue pairs in use, and interrupt coalescing. Runs under dev->lock on
 * the thread that delivered the notification; nothing here calls a
 * backend.
 *
 * Each command is class, command, its data, and an ack byte the device
 * writes. A command the device does not know, or whose data is malformed,
 * is answered VIRTIO_NET_ERR; only a chain with no room for the ack, or
 * without even class and command, is a guest error.
 */
#include <endian.h>
#include <string.h>

#include "net_internal.h"

#define CTRL_OK 0
#define CTRL_ERR 1

#define CLASS_RX 0
#define CMD_RX_PROMISC 0
#define CMD_RX_ALLMULTI 1
#define CLASS_MAC 1
#define CMD_MAC_TABLE_SET 0
#define CMD_MAC_ADDR_SET 1
#define CLASS_ANNOUNCE 3
#define CMD_ANNOUNCE_ACK 0
#define CLASS_MQ 4
#define CMD_MQ_VQ_PAIRS_SET 0
#define CLASS_NOTF_COAL 6
#define CMD_NOTF_COAL_TX_SET 0
#define CMD_NOTF_COAL_RX_SET 1

/* Everything the command carries must be read, and nothing more be left:
 * a command with trailing bytes is malformed. */
static bool read_all(struct vmdev_virtqueue_reader *r, void *buf, size_t len)
{
    return vmdev_virtqueue_read_exact(r, buf, len) == 0 && r->remaining == 0;
}

static uint8_t set_rx_mode(struct vmdev_virtio_net *net, uint8_t cmd,
                           struct vmdev_virtqueue_reader *r)
{
    uint8_t on;
    if (!net_has(net, VIRTIO_NET_F_CTRL_RX) || !read_all(r, &on, 1) || on > 1)
        return CTRL_ERR;
    if (cmd == CMD_RX_PROMISC)
        net->filter.promisc = on;
    else if (cmd == CMD_RX_ALLMULTI)
        net->filter.allmulti = on;
    else
        return CTRL_ERR; /* the CTRL_RX_EXTRA commands are not offered */
    return CTRL_OK;
}

/* One table of VIRTIO_NET_CTRL_MAC_TABLE_SET: a 32-bit count, then the
 * addresses. Past NET_MAC_TABLE_ENTRIES the table only says "all". */
static bool read_mac_table(struct vmdev_virtqueue_reader *r, uint8_t (*table)[6],
                           unsigned *count, bool *overflow)
{
    uint32_t entries;
    if (vmdev_virtqueue_read_exact(r, &entries, sizeof(entries)))
        return false;
    entries = le32toh(entries);
    if ((uint64_t)entries * 6 > r->remaining)
        return false;
    *overflow = entries > NET_MAC_TABLE_ENTRIES;
    *count = *overflow ? 0 : entries;
    if (*overflow)
        return vmdev_virtqueue_skip(r, (size_t)entries * 6) == (size_t)entries * 6;
    return vmdev_virtqueue_read_exact(r, table, (size_t)entries * 6) == 0;
}

static uint8_t set_mac(struct vmdev_virtio_net *net, uint8_t cmd,
                       struct vmdev_virtqueue_reader *r)
{
    if (cmd == CMD_MAC_ADDR_SET) {
        uint8_t mac[6];
        if (!net_has(net, VIRTIO_NET_F_CTRL_MAC_ADDR) || !read_all(r, mac, 6) ||
            mac[0] & 1)
            return CTRL_ERR;
        memcpy(net->mac, mac, 6);
        return CTRL_OK;
    }
    if (cmd != CMD_MAC_TABLE_SET || !net_has(net, VIRTIO_NET_F_CTRL_RX))
        return CTRL_ERR;
    /* Parsed into a copy: a malformed command changes nothing. */
    struct net_rx_filter f = net->filter;
    if (!read_mac_table(r, f.uni, &f.uni_count, &f.uni_overflow) ||
        !read_mac_table(r, f.multi, &f.multi_count, &f.multi_overflow) ||
        r->remaining)
        return CTRL_ERR;
    net->filter = f;
    return CTRL_OK;
}

static uint8_t set_pairs(struct vmdev_virtio_net *net, uint8_t cmd,
                         struct vmdev_virtqueue_reader *r)
{
    uint16_t pairs;
    /* 5.1.6.5.5: 1 to max_virtqueue_pairs. */
    if (cmd != CMD_MQ_VQ_PAIRS_SET || !net_has(net, VIRTIO_NET_F_MQ) ||
        !read_all(r, &pairs, sizeof(pairs)))
        return CTRL_ERR;
    pairs = le16toh(pairs);
    if (pairs < 1 || pairs > net->num_pairs)
        return CTRL_ERR;
    net->active_pairs = pairs;
    /* Backends' frames go to other pairs now: the waiting ones look. */
    for (uint16_t k = 0; k < net->num_backends; k++)
        if (net->pairs[k].rx_waiting)
            net_pair_kick(&net->pairs[k]);
    return CTRL_OK;
}

static uint8_t set_coalesce(struct vmdev_virtio_net *net, uint8_t cmd,
                            struct vmdev_virtqueue_reader *r)
{
    /* struct virtio_net_ctrl_coal_tx and _rx: max_packets, then usecs. */
    uint32_t v[2];
    if (!net_has(net, VIRTIO_NET_F_NOTF_COAL) || !read_all(r, v, sizeof(v)))
        return CTRL_ERR;
    struct vmdev_virtio_net_coalesce c = { .frames = le32toh(v[0]),
                                           .usecs = le32toh(v[1]) };
    /* 5.1.6.5.6: max_packets 0 (like max_usecs 0) means a notification
     * after every packet, not "no packet limit". */
    if (!c.frames)
        c.usecs = 0;
    bool tx = cmd == CMD_NOTF_COAL_TX_SET;
    if (tx)
        net->tx_coalesce = net->stats.tx_coalesce_set = c;
    else if (cmd == CMD_NOTF_COAL_RX_SET)
        net->rx_coalesce = net->stats.rx_coalesce_set = c;
    else
        return CTRL_ERR;
    for (uint16_t i = 0; i < net->num_pairs; i++)
        net_coalesce_changed(tx ? &net->pairs[i].tx_coal
                                : &net->pairs[i].rx_coal);
    return CTRL_OK;
}

static uint8_t run_command(struct vmdev_virtio_net *net, uint8_t class,
                           uint8_t cmd, struct vmdev_virtqueue_reader *r)
{
    switch (class) {
    case CLASS_RX:
        return set_rx_mode(net, cmd, r);
    case CLASS_MAC:
        return set_mac(net, cmd, r);
    case CLASS_ANNOUNCE:
        if (cmd != CMD_ANNOUNCE_ACK || !net_has(net, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
            r->remaining)
            return CTRL_ERR;
        net->config.status &= htole16((uint16_t)~VIRTIO_NET_S_ANNOUNCE);
        return CTRL_OK;
    case CLASS_MQ:
        return set_pairs(net, cmd, r);
    case CLASS_NOTF_COAL:
        return set_coalesce(net, cmd, r);
    default:
        return CTRL_ERR;
    }
}

static int64_t serve_command(struct vmdev_virtio_device *dev,
                             struct vmdev_virtqueue_chain *chain, const char **why)
{
    struct vmdev_virtio_net *net = (struct vmdev_virtio_net *)dev;
    struct vmdev_virtqueue_reader r;
    uint8_t head[2];
    vmdev_virtqueue_reader_init(&r, chain);
    if (chain->writable_len < 1 || vmdev_virtqueue_read_exact(&r, head, 2)) {
        *why = "control command without class, command or ack byte";
        return -1;
    }
    uint8_t ack = run_command(net, head[0], head[1], &r);
    net->stats.ctrl_commands++;
    if (ack != CTRL_OK)
        net->stats.ctrl_errors++;
    struct vmdev_virtqueue_writer w;
    vmdev_virtqueue_writer_init(&w, chain);
    vmdev_virtqueue_write(&w, &ack, 1);
    return 1;
}

void net_ctrl_process(struct vmdev_virtio_net *net)
{
    vmdev_virtio_process_queue(&net->dev, net_ctrl_queue(net),
                               &net->ctrl_chain, serve_command);
}

void net_ctrl_reset(struct vmdev_virtio_net *net)
{
    /* As QEMU: promiscuous until the driver says otherwise, so a driver
     * without CTRL_RX receives everything. */
    memset(&net->filter, 0, sizeof(net->filter));
    net->filter.promisc = true;
    net->rx_coalesce = net->default_rx_coalesce;
    net->tx_coalesce = net->default_tx_coalesce;
}
