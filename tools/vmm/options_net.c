/* SPDX-License-Identifier: MIT */
/* vmdev-run's --net option: a backend (socket=ADDRESS, tap=IFNAME with
 * bridge=, or slirp with its keys), then the card's keys. */
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "vmdev/virtio_net.h"

#define MAX_COALESCE_USECS 1000000u
#define MAX_COALESCE_FRAMES 65536u

/* XX:XX:XX:XX:XX:XX, unicast. */
static int parse_mac(const char *val, uint8_t mac[6])
{
    unsigned b[6];
    char tail;
    if (strlen(val) != 17 ||
        sscanf(val, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
               &b[4], &b[5], &tail) != 6)
        return -1;
    for (unsigned i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    return mac[0] & 1 ? -1 : 0;
}

/* on|off, as QEMU spells a switch. */
static int parse_switch(const char *val, bool *out)
{
    if (strcmp(val, "on") == 0)
        *out = true;
    else if (strcmp(val, "off") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

static int parse_slirp_key(const char *original, const char *key,
                           const char *val, struct vmm_net *net)
{
    char why[512];
    if (strcmp(key, "hostfwd") == 0) {
        if (net->num_hostfwds == VMM_MAX_HOSTFWDS)
            return vmm_option_bad("net", original,
                                  "too many hostfwd= (at most 16)");
        if (vmdev_net_hostfwd_parse(val, &net->hostfwds[net->num_hostfwds],
                                    why, sizeof(why))) {
            char full[600];
            snprintf(full, sizeof(full), "hostfwd=%s (expected [tcp|udp]:"
                     "[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)", why);
            return vmm_option_bad("net", original, full);
        }
        net->num_hostfwds++;
    } else if (strcmp(key, "ipv6") == 0) {
        if (parse_switch(val, &net->ipv6))
            return vmm_option_bad("net", original, "ipv6 must be on or off");
    } else {
        if (parse_switch(val, &net->restricted))
            return vmm_option_bad("net", original,
                                  "restrict must be on or off");
    }
    return 0;
}

static bool is_slirp_key(const char *key)
{
    return strcmp(key, "hostfwd") == 0 || strcmp(key, "ipv6") == 0 ||
           strcmp(key, "restrict") == 0;
}

static int parse_net_key(const char *original, const char *key,
                         const char *val, struct vmm_net *net,
                         const struct vmm_options *opts)
{
    const char *why = NULL;
    unsigned n;
    if (is_slirp_key(key)) {
        if (!net->slirp)
            why = "hostfwd=, ipv6= and restrict= are for slirp (--net "
                  "slirp,KEY=VALUE...)";
        else
            return parse_slirp_key(original, key, val, net);
    } else if (strcmp(key, "socket") == 0) {
        if (!*val)
            why = "socket= needs a UNIX socket path or tcp:HOST:PORT";
        net->socket = val;
    } else if (strcmp(key, "tap") == 0) {
        if (!*val || strlen(val) >= IFNAMSIZ || strpbrk(val, "/%: \t\n"))
            why = "tap= needs an interface name of 1 to 15 characters, none "
                  "of '/', '%', ':' or blanks";
        net->tap = val;
    } else if (strcmp(key, "bridge") == 0) {
        if (!*val || strlen(val) >= IFNAMSIZ)
            why = "bridge= needs an interface name of 1 to 15 characters";
        net->bridge = val;
    } else if (strcmp(key, "mac") == 0) {
        if (parse_mac(val, net->mac))
            why = "mac must be six hexadecimal bytes XX:XX:XX:XX:XX:XX, "
                  "the first even (unicast)";
    } else if (strcmp(key, "queues") == 0) {
        if (vmm_parse_count(val, 1, VMDEV_VIRTIO_NET_MAX_PAIRS, &net->queues))
            why = "queues must be a number from 1 to 16";
    } else if (strcmp(key, "queue_size") == 0) {
        if (vmm_parse_count(val, VMDEV_VIRTIO_NET_MIN_QUEUE_SIZE,
                            VMDEV_VIRTIO_NET_MAX_QUEUE_SIZE, &n) ||
            (n & (n - 1)))
            why = "queue_size must be a power of two from 64 to 1024";
        net->queue_size = n;
    } else if (strcmp(key, "mtu") == 0) {
        if (vmm_parse_count(val, VMDEV_VIRTIO_NET_MIN_MTU,
                            VMDEV_VIRTIO_NET_MAX_MTU, &net->mtu))
            why = "mtu must be a number from 68 to 65535";
    } else if (strcmp(key, "coalesce_usecs") == 0) {
        if (vmm_parse_count(val, 0, MAX_COALESCE_USECS, &net->coalesce_usecs))
            why = "coalesce_usecs must be a number from 0 to 1000000";
    } else if (strcmp(key, "coalesce_frames") == 0) {
        if (vmm_parse_count(val, 0, MAX_COALESCE_FRAMES,
                            &net->coalesce_frames))
            why = "coalesce_frames must be a number from 0 to 65536";
    } else if (strcmp(key, "id") == 0) {
        int ret = vmm_check_device_id("net", original, val, opts);
        if (ret)
            return ret;
        net->id = val;
    } else {
        why = "unknown key (expected socket, tap, mac, queues, queue_size, "
              "mtu, coalesce_usecs, coalesce_frames, id; with tap also "
              "bridge; with slirp also hostfwd, ipv6, restrict)";
    }
    return why ? vmm_option_bad("net", original, why) : 0;
}

int vmm_parse_net(char *value, struct vmm_options *opts)
{
    char original[4352];
    snprintf(original, sizeof(original), "%s", value);
    if (opts->num_nets == VMM_MAX_NETS)
        return vmm_option_bad("net", original, "too many cards (at most 8)");
    /* QEMU's default address, the last byte counting up per card. */
    struct vmm_net net = { .mac = { 0x52, 0x54, 0x00, 0x12, 0x34,
                                    (uint8_t)(0x56 + opts->num_nets) },
                           .queues = 1 };
    for (char *save, *kv = strtok_r(value, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq && strcmp(kv, "slirp") == 0 && kv == value) {
            net.slirp = true;
            continue;
        }
        if (!eq)
            return vmm_option_bad("net", original,
                                  "expected slirp, socket=ADDRESS or "
                                  "tap=IFNAME, then key=value pairs");
        *eq = '\0';
        int ret = parse_net_key(original, kv, eq + 1, &net, opts);
        if (ret)
            return ret;
    }
    unsigned backends = net.slirp + !!net.socket + !!net.tap;
    if (backends > 1)
        return vmm_option_bad("net", original,
                              "slirp, socket= and tap= are each a backend; "
                              "give one");
    if (!backends)
        return vmm_option_bad("net", original,
                              "a backend is required: slirp, socket=ADDRESS "
                              "or tap=IFNAME");
    if (net.bridge && !net.tap)
        return vmm_option_bad("net", original,
                              "bridge= is for tap (--net tap=IFNAME,bridge=BR)");
    for (unsigned i = 0; i < opts->num_nets; i++) {
        if (memcmp(opts->nets[i].mac, net.mac, 6) == 0)
            return vmm_option_bad("net", original,
                                  "another --net has that mac");
        /* A tap's queues and offloads are the tap's: one card each. */
        if (net.tap && opts->nets[i].tap && strcmp(opts->nets[i].tap, net.tap) == 0)
            return vmm_option_bad("net", original,
                                  "another --net has that tap");
    }
    opts->nets[opts->num_nets++] = net;
    return 0;
}
