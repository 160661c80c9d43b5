/* SPDX-License-Identifier: MIT */
/*
 * The backend part of a network option, shared by vmdev-run's --net and
 * vmdev-switch's --uplink: `slirp[,hostfwd=RULE]...[,ipv6=on|off]
 * [,restrict=on|off]`, `tap=IFNAME[,bridge=BR]` or `socket=ADDRESS`. The
 * comma-separated elements come one at a time, so that each tool keeps
 * its own keys among them (a card's mac=, queues=...); then the backend
 * is opened from what was given.
 */
#ifndef TOOLS_NET_SPEC_H
#define TOOLS_NET_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "vmdev/event_loop.h"
#include "vmdev/net.h"

#define NET_SPEC_MAX_HOSTFWDS 16

/* Backend kinds, for net_spec.allowed. */
#define NET_SPEC_SLIRP 1u
#define NET_SPEC_TAP 2u
#define NET_SPEC_SOCKET 4u

struct net_spec {
    unsigned allowed;   /* the kinds the tool takes: NET_SPEC_* */
    bool slirp;
    const char *tap;    /* an interface name, or NULL */
    const char *bridge; /* with tap: the bridge to put it on, or NULL */
    const char *socket; /* a UNIX socket path or tcp:HOST:PORT, or NULL */
    bool ipv6, restricted;
    /* slirp's link MTU (0: libslirp's default), from the tool's own key
     * (vmdev-run's card mtu=), not from the backend's elements. */
    unsigned mtu;
    struct vmdev_net_hostfwd hostfwds[NET_SPEC_MAX_HOSTFWDS];
    unsigned num_hostfwds;
};

/* net_spec_element: the element is none of a backend's. */
#define NET_SPEC_NOT_MINE 1

/*
 * One element: a bare word (value NULL; only "slirp", and only first) or
 * KEY=VALUE. 0 when taken; NET_SPEC_NOT_MINE when KEY is not a backend's
 * (the caller's own key, or unknown); -1 with why for a bad element.
 * The strings stay the caller's and must outlive spec.
 */
int net_spec_element(struct net_spec *spec, const char *key,
                     const char *value, bool first, char *why,
                     size_t why_len);

/* After the last element: exactly one backend, each key with its own
 * kind. 0, or -1 with why. */
int net_spec_finish(const struct net_spec *spec, char *why, size_t why_len);

/*
 * Opens the backend: for a tap, one per queue (queue i on loops[i]); for
 * the others one, on loops[0]. How many backends were made, or 0 with why.
 */
unsigned net_spec_open(const struct net_spec *spec,
                       struct vmdev_event_loop *const *loops, unsigned queues,
                       struct vmdev_net_backend **backends, char *why,
                       size_t why_len);

#endif
