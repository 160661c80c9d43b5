/* SPDX-License-Identifier: MIT */
/*
 * A learning Ethernet switch over network backends (net.h), so that VMs
 * on one host reach each other without privileges: its ports are
 * backends, stream sockets to vmdev-run or QEMU `-netdev stream` VMs and
 * an optional uplink (slirp, a tap), all on one event loop.
 *
 * A frame from a port goes to the port its destination address was last
 * seen on, or to every other port when the destination is a group
 * address, unknown, or last seen over five minutes ago. A frame a port
 * cannot take now (a peer reading slowly) waits in that port's egress
 * queue, bounded (256 frames, 1 MiB); beyond it the frame is that port's
 * loss, counted. Nothing waits for a port, so a slow or stopped port never
 * stalls the others. A port whose host side goes away (a VM exiting)
 * leaves the switch, and what was learned about it is forgotten.
 */
#ifndef VMDEV_NET_SWITCH_H
#define VMDEV_NET_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdev/event_loop.h"
#include "vmdev/net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_NET_SWITCH_MAX_PORTS 64u
#define VMDEV_NET_SWITCH_NAME_LEN 48u

struct vmdev_net_switch;

struct vmdev_net_switch_stats {
    unsigned ports;     /* attached now */
    uint64_t forwarded; /* frames for the one port that has the address */
    uint64_t flooded;   /* frames for every other port (each copy may
                           still be dropped, below) */
    uint64_t queued;    /* copies that waited in a port's egress queue */
    uint64_t dropped;   /* copies lost: a port's queue full, or it down */
    uint64_t filtered;  /* frames whose destination is where they came from */
    uint64_t learned;   /* addresses learned (or moved to another port) */
};

/*
 * Runs on loop. Every function below is for that loop's thread, or for
 * when the loop does not run (before it starts, after it stops): the
 * switch has no lock. NULL with errno.
 */
struct vmdev_net_switch *vmdev_net_switch_new(struct vmdev_event_loop *loop);
/*
 * Attach backend, not yet started and on the switch's loop, as a port
 * named name (for messages). The switch owns it from the call on, even
 * when this fails. On the loop's thread, or before the loop runs. The
 * port's number (0 up), or -ENOSPC when all ports are taken, or what
 * starting the backend failed with.
 */
int vmdev_net_switch_add(struct vmdev_net_switch *sw,
                         struct vmdev_net_backend *backend, const char *name);
struct vmdev_net_switch_stats vmdev_net_switch_stats(
    const struct vmdev_net_switch *sw);
/* Whether port number port is attached, and its name. */
bool vmdev_net_switch_port(const struct vmdev_net_switch *sw, unsigned port,
                           char name[VMDEV_NET_SWITCH_NAME_LEN]);
/* Closes every port. Not from inside one of its callbacks, and not while
 * the loop runs on another thread. */
void vmdev_net_switch_free(struct vmdev_net_switch *sw);

#ifdef __cplusplus
}
#endif

#endif
