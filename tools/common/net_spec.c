/* SPDX-License-Identifier: MIT */
/* The backend part of a network option (net_spec.h). */
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "net_spec.h"

__attribute__((format(printf, 3, 4))) static int
refuse(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* What may come first, for messages. */
static const char *kinds_expected(unsigned allowed)
{
    return allowed & NET_SPEC_SOCKET ? "slirp, socket=ADDRESS or tap=IFNAME"
                                     : "slirp or tap=IFNAME";
}

/* on|off, as QEMU spells a switch. */
static int parse_on_off(const char *value, bool *out)
{
    if (strcmp(value, "on") == 0)
        *out = true;
    else if (strcmp(value, "off") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* A name Linux takes for an interface, and that is no template ('%'). */
static bool is_interface_name(const char *name)
{
    return *name && strlen(name) < IFNAMSIZ && !strpbrk(name, "/%: \t\n");
}

static int slirp_key(struct net_spec *spec, const char *key,
                     const char *value, char *why, size_t why_len)
{
    if (!spec->slirp)
        return refuse(why, why_len, "hostfwd=, ipv6= and restrict= are for "
                      "slirp (slirp,KEY=VALUE...)");
    if (strcmp(key, "ipv6") == 0) {
        if (parse_on_off(value, &spec->ipv6))
            return refuse(why, why_len, "ipv6 must be on or off");
    } else if (strcmp(key, "restrict") == 0) {
        if (parse_on_off(value, &spec->restricted))
            return refuse(why, why_len, "restrict must be on or off");
    } else {
        char rule[400];
        if (spec->num_hostfwds == NET_SPEC_MAX_HOSTFWDS)
            return refuse(why, why_len, "too many hostfwd= (at most %u)",
                          NET_SPEC_MAX_HOSTFWDS);
        if (vmdev_net_hostfwd_parse(value,
                                    &spec->hostfwds[spec->num_hostfwds],
                                    rule, sizeof(rule)))
            return refuse(why, why_len, "hostfwd=%s (expected [tcp|udp]:"
                          "[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)", rule);
        spec->num_hostfwds++;
    }
    return 0;
}

int net_spec_element(struct net_spec *spec, const char *key,
                     const char *value, bool first, char *why,
                     size_t why_len)
{
    if (!value) {
        if (!first || strcmp(key, "slirp") != 0 ||
            !(spec->allowed & NET_SPEC_SLIRP))
            return refuse(why, why_len, "expected %s, then key=value pairs",
                          kinds_expected(spec->allowed));
        spec->slirp = true;
        return 0;
    }
    if (strcmp(key, "hostfwd") == 0 || strcmp(key, "ipv6") == 0 ||
        strcmp(key, "restrict") == 0)
        return slirp_key(spec, key, value, why, why_len);
    if (strcmp(key, "tap") == 0 && spec->allowed & NET_SPEC_TAP) {
        if (!is_interface_name(value))
            return refuse(why, why_len, "tap= needs an interface name of 1 "
                          "to 15 characters, none of '/', '%%', ':' or blanks");
        spec->tap = value;
    } else if (strcmp(key, "bridge") == 0 && spec->allowed & NET_SPEC_TAP) {
        if (!is_interface_name(value))
            return refuse(why, why_len, "bridge= needs an interface name of "
                          "1 to 15 characters, none of '/', '%%', ':' or "
                          "blanks");
        spec->bridge = value;
    } else if (strcmp(key, "socket") == 0 &&
               spec->allowed & NET_SPEC_SOCKET) {
        if (!*value)
            return refuse(why, why_len, "socket= needs a UNIX socket path or "
                          "tcp:HOST:PORT");
        spec->socket = value;
    } else {
        return NET_SPEC_NOT_MINE;
    }
    return 0;
}

int net_spec_finish(const struct net_spec *spec, char *why, size_t why_len)
{
    unsigned backends = spec->slirp + !!spec->tap + !!spec->socket;
    if (backends > 1)
        return refuse(why, why_len, "%s are each a backend; give one",
                      spec->allowed & NET_SPEC_SOCKET
                          ? "slirp, socket= and tap="
                          : "slirp and tap=");
    if (!backends)
        return refuse(why, why_len, "a backend is required: %s",
                      kinds_expected(spec->allowed));
    if (spec->bridge && !spec->tap)
        return refuse(why, why_len, "bridge= is for tap (tap=IFNAME,bridge=BR)");
    return 0;
}

unsigned net_spec_open(const struct net_spec *spec,
                       struct vmdev_event_loop *const *loops, unsigned queues,
                       struct vmdev_net_backend **backends, char *why,
                       size_t why_len)
{
    if (spec->tap) {
        struct vmdev_net_tap_config tap = { spec->tap, spec->bridge, queues };
        return vmdev_net_tap_new(&tap, loops, backends, why, why_len) == 0
                   ? queues
                   : 0;
    }
    if (spec->slirp) {
        struct vmdev_net_slirp_config slirp = {
            .mtu = spec->mtu,
            .ipv6 = spec->ipv6,
            .restricted = spec->restricted,
            .hostfwds = spec->hostfwds,
            .num_hostfwds = spec->num_hostfwds,
        };
        backends[0] = vmdev_net_slirp_new(&slirp, loops[0], why, why_len);
    } else {
        backends[0] = vmdev_net_stream_new(spec->socket, loops[0], why,
                                               why_len);
    }
    return backends[0] ? 1 : 0;
}
