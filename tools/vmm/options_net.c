/* SPDX-License-Identifier: MIT */
/* vmdev-run's --net option: a backend (socket=ADDRESS, tap=IFNAME with
 * bridge=, or slirp with its keys: net_spec.h), and the card's keys. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"
#include "report.h"
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

static int parse_net_key(const char *original, const char *key,
                         const char *val, struct vmm_net *net,
                         const struct vmm_options *opts)
{
    const char *why = NULL;
    unsigned n;
    if (strcmp(key, "mac") == 0) {
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
    } else if (strcmp(key, "pcap") == 0) {
        if (!*val)
            why = "pcap needs a file name";
        net->pcap = val;
    } else if (strcmp(key, "id") == 0) {
        int ret = vmm_check_device_id("net", original, val, opts);
        if (ret)
            return ret;
        net->id = val;
    } else {
        why = "unknown key (expected socket, tap, mac, queues, queue_size, "
              "mtu, coalesce_usecs, coalesce_frames, pcap, id; with tap also "
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
    struct vmm_net net = {
        .backend.allowed = NET_SPEC_SLIRP | NET_SPEC_TAP | NET_SPEC_SOCKET,
        .mac = { 0x52, 0x54, 0x00, 0x12, 0x34,
                 (uint8_t)(0x56 + opts->num_nets) },
        .queues = 1,
    };
    char why[512];
    for (char *save, *kv = strtok_r(value, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        int ret = net_spec_element(&net.backend, kv, eq ? eq + 1 : NULL,
                                   kv == value, why, sizeof(why));
        if (ret < 0)
            return vmm_option_bad("net", original, why);
        if (ret == NET_SPEC_NOT_MINE) {
            ret = parse_net_key(original, kv, eq + 1, &net, opts);
            if (ret)
                return ret;
        }
    }
    if (net_spec_finish(&net.backend, why, sizeof(why)))
        return vmm_option_bad("net", original, why);
    /* slirp's own link carries the card's MTU (its TCP segments fit it). */
    if (net.backend.slirp && net.mtu > VMDEV_NET_SLIRP_MAX_MTU)
        return vmm_option_bad("net", original,
                              "mtu with slirp must be at most 65521 "
                              "(libslirp's largest)");
    if (net.backend.slirp)
        net.backend.mtu = net.mtu;
    for (unsigned i = 0; i < opts->num_nets; i++) {
        if (memcmp(opts->nets[i].mac, net.mac, 6) == 0)
            return vmm_option_bad("net", original,
                                  "another --net has that mac");
        if (net.pcap && opts->nets[i].pcap &&
            strcmp(net.pcap, opts->nets[i].pcap) == 0)
            return vmm_option_bad("net", original,
                                  "another --net has that pcap file");
        /* A tap's queues and offloads are the tap's: one card each. */
        const char *tap = opts->nets[i].backend.tap;
        if (net.backend.tap && tap && strcmp(tap, net.backend.tap) == 0)
            return vmm_option_bad("net", original,
                                  "another --net has that tap");
    }
    opts->nets[opts->num_nets++] = net;
    return 0;
}

/* Whether path is the file of --kernel, --initramfs or a --disk: a
 * capture there would overwrite it. Their names, or NULL. */
static const char *same_file_as(const struct vmm_options *opts,
                                const struct stat *st)
{
    struct stat other;
    const char *named[2] = { opts->kernel, opts->initramfs };
    const char *what[2] = { "--kernel", "--initramfs" };
    for (unsigned i = 0; i < 2; i++)
        if (named[i] && stat(named[i], &other) == 0 &&
            other.st_dev == st->st_dev && other.st_ino == st->st_ino)
            return what[i];
    for (unsigned i = 0; i < opts->num_disks; i++)
        if (stat(opts->disks[i].path, &other) == 0 &&
            other.st_dev == st->st_dev && other.st_ino == st->st_ino)
            return "--disk";
    return NULL;
}

/* Whether a capture may be written at path, before any is opened: 0, or
 * -1 with why. *exists says whether it was there (so not to be removed). */
static int check_capture_path(const struct vmm_options *opts, const char *path,
                              bool *exists, const char **why)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    if (*exists) {
        const char *other = same_file_as(opts, &st);
        if (other) {
            *why = other;
            errno = EEXIST;
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            return -1;
        }
        return access(path, W_OK);
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    return access(dirname(dir), W_OK | X_OK);
}

int vmm_open_captures(const struct vmm_options *opts,
                      struct vmdev_net_capture **captures)
{
    bool existed[VMM_MAX_NETS] = { false };
    for (unsigned i = 0; i < opts->num_nets; i++)
        captures[i] = NULL;
    for (unsigned i = 0; i < opts->num_nets; i++) {
        const char *path = opts->nets[i].pcap, *other = NULL;
        if (path && check_capture_path(opts, path, &existed[i], &other)) {
            if (other)
                vmm_report("--net pcap=%s: that is %s's "
                        "file\n", path, other);
            else
                vmm_report("--net pcap=%s: %s\n", path,
                        strerror(errno));
            return VMM_EXIT_USAGE;
        }
    }
    for (unsigned i = 0; i < opts->num_nets; i++) {
        const char *path = opts->nets[i].pcap;
        char why[512];
        if (path && !(captures[i] = vmdev_net_capture_new(path, why,
                                                           sizeof(why)))) {
            vmm_report("--net pcap=%s: %s\n", path, why);
            /* Files this run made for the cards before go again. */
            for (unsigned k = 0; k < i; k++)
                if (captures[k] && !existed[k])
                    unlink(opts->nets[k].pcap);
            vmm_close_captures(opts, captures);
            return VMM_EXIT_USAGE;
        }
    }
    return 0;
}

void vmm_close_captures(const struct vmm_options *opts,
                        struct vmdev_net_capture **captures)
{
    for (unsigned i = 0; i < opts->num_nets; i++) {
        int err = captures[i] ? vmdev_net_capture_flush(captures[i]) : 0;
        vmdev_net_capture_free(captures[i]);
        if (err)
            vmm_report("--net pcap=%s: the capture is "
                    "incomplete: %s\n", opts->nets[i].pcap, strerror(-err));
        captures[i] = NULL;
    }
}
