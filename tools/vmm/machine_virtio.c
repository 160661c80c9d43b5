/* SPDX-License-Identifier: MIT */
/*
 * The machine's PCI host bridge and the virtio devices on it: the disks,
 * then the network cards, the console and the entropy source, each a
 * virtio-pci function in the next free root port.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "machine_internal.h"
#include "report.h"
#include "vmdev/virtio_rng.h"

/* libslirp's reading of /etc/resolv.conf, on the I/O thread its card's
 * backend runs on; and its warnings, which go through glib's default log
 * writer: that asks isatty(2) (TCGETS) on every message, whether stderr
 * is a terminal or not. */
static const int slirp_syscalls[] = { SCMP_SYS(openat), SCMP_SYS(newfstatat),
                                      SCMP_SYS(fstat) };
static const unsigned long slirp_ioctls[] = { TCGETS };
static const struct vmm_syscall_list slirp_io_syscalls =
    VMM_SYSCALL_LIST(slirp_syscalls, slirp_ioctls);

static int create_pci(struct vmm_machine *m, const struct vmm_options *opts)
{
    /* An I/O thread per vCPU: a disk's queues spread over them as Linux
     * spreads its queues over the vCPUs. A slirp card's backend runs on
     * one of them, and libslirp reads the host's /etc/resolv.conf there
     * when the guest first asks its DNS address (and again when it
     * changes): only then may I/O threads open files. */
    /* A slirp card may also come through the control API. */
    bool slirp = opts->api_socket != NULL;
    for (unsigned i = 0; i < opts->num_nets; i++)
        slirp |= opts->nets[i].backend.slirp;
    /* A root port for each device, and the free ones. */
    unsigned ports = opts->num_disks + opts->num_nets +
                     (opts->console.kind != VMM_OUTPUT_OFF) + opts->rng +
                     opts->pcie_ports;
    m->pci = vmm_pci_create(&(struct vmm_pci_config){
        .vm = m->vm,
        .devices = m->devices,
        .id = vmm_machine_ids[ID_PCI],
        .gsis = m->gsis,
        .set_gsi = vmm_machine_set_ioapic_pin,
        .gsi_opaque = m,
        .log = m->log,
        .io_threads = m->vm->cpus,
        .io_extra = slirp ? &slirp_io_syscalls : NULL,
        .ports = ports,
        .loop = m->loop,
    });
    return m->pci ? 0 : -1;
}

/* A disk or card freed: out of the lists --stats and the API read. */
static void disk_gone(void *opaque, struct vmdev_virtio_device *vdev)
{
    struct vmm_machine *m = opaque;
    for (unsigned i = 0; i < m->num_disks; i++) {
        if (m->disks[i].vdev == vdev) {
            m->num_disks--;
            memmove(&m->disks[i], &m->disks[i + 1],
                    (m->num_disks - i) * sizeof(m->disks[0]));
            return;
        }
    }
}

static void net_gone(void *opaque, struct vmdev_virtio_device *vdev)
{
    struct vmm_machine *m = opaque;
    for (unsigned i = 0; i < m->num_nets; i++) {
        if (m->nets[i].vdev == vdev) {
            if (m->nets[i].capture) {
                (void)vmdev_net_capture_flush(m->nets[i].capture);
                vmdev_net_capture_free(m->nets[i].capture);
            }
            m->num_nets--;
            memmove(&m->nets[i], &m->nets[i + 1],
                    (m->num_nets - i) * sizeof(m->nets[0]));
            return;
        }
    }
}

struct disk_make {
    struct vmm_machine *m;
    const struct vmm_disk *disk;
    struct vmdev_block **image; /* NULL once the device has it */
};

static struct vmdev_virtio_device *make_disk(const char *id, void *opaque)
{
    struct disk_make *make = opaque;
    const struct vmm_disk *d = make->disk;
    struct vmdev_virtio_blk_config config = {
        .block = *make->image,
        .serial = d->serial,
        .num_queues = (uint16_t)d->num_queues,
        .queue_size = (uint16_t)d->queue_size,
        .discard = d->discard,
        .engine = VMDEV_IO_ENGINE_AUTO,
    };
    struct vmdev_virtio_blk *blk = vmdev_virtio_blk_new(id, make->m->vm->mem,
                                                        &config);
    if (!blk) {
        vmm_report("--disk path=%s: %s\n", d->path,
                strerror(errno));
        return NULL;
    }
    *make->image = NULL;
    struct vmm_machine *m = make->m;
    m->disks[m->num_disks++] = (struct machine_disk){
        blk, vmdev_virtio_blk_device(blk) };
    return vmdev_virtio_blk_device(blk);
}

static int add_disk(struct vmm_machine *m, const struct vmm_disk *disk,
                    struct vmdev_block **image, bool hotplug)
{
    struct disk_make make = { m, disk, image };
    return vmm_pci_add_virtio(m->pci, &(struct vmm_virtio_spec){
        .type = "virtio-blk", .id = disk->id,
        .make = make_disk, .make_opaque = &make,
        .gone = disk_gone, .gone_opaque = m, .hotplug = hotplug,
    });
}

/* Disks first: Linux names them vda, vdb, ... in PCI slot order. */
static int create_disks(struct vmm_machine *m, const struct vmm_options *opts,
                        struct vmdev_block **images)
{
    for (unsigned i = 0; i < opts->num_disks; i++)
        if (add_disk(m, &opts->disks[i], &images[i], false))
            return -1;
    return 0;
}

struct net_make {
    struct vmm_machine *m;
    const struct vmm_net *net;
    struct vmdev_net_capture *capture; /* its pcap=, or NULL */
    /* When the card is to own it (added while the guest runs): the
     * caller's pointer, which the card clears once it does. */
    struct vmdev_net_capture **owned_capture;
};

/* How --net named the card's backend, for messages. */
static void backend_name(const struct net_spec *b, char *out, size_t len)
{
    if (b->slirp)
        snprintf(out, len, "slirp");
    else if (b->tap)
        snprintf(out, len, "tap=%s", b->tap);
    else
        snprintf(out, len, "socket=%s", b->socket);
}

/* The card's backends: a tap queue per pair, pair i's on I/O thread i
 * (modulo their number); otherwise one backend carrying every pair's
 * frames, on the first I/O thread. Backend k's pairs are the device's
 * queue group k (vmdev_virtio_queue_group), whose kicks pci_host.c
 * serves on that same thread. The count, or 0 after a message. */
static unsigned make_backends(struct vmm_machine *m, const struct vmm_net *n,
                              const char *what,
                              struct vmdev_net_backend **backends)
{
    char why[512];
    struct vmdev_event_loop *loops[VMDEV_VIRTIO_NET_MAX_PAIRS];
    for (unsigned i = 0; i < n->queues; i++)
        loops[i] = vmm_pci_io_loop(m->pci, i);
    unsigned made = net_spec_open(&n->backend, loops, n->queues, backends,
                                  why, sizeof(why));
    if (!made)
        vmm_report("--net %s: %s\n", what, why);
    return made;
}

static struct vmdev_virtio_device *make_net(const char *id, void *opaque)
{
    struct net_make *make = opaque;
    const struct vmm_net *n = make->net;
    char what[64];
    backend_name(&n->backend, what, sizeof(what));
    struct vmdev_net_backend *backends[VMDEV_VIRTIO_NET_MAX_PAIRS];
    unsigned num_backends = make_backends(make->m, n, what, backends);
    if (!num_backends)
        return NULL;
    for (unsigned i = 0; make->capture && i < num_backends; i++)
        (void)vmdev_net_set_capture(backends[i], make->capture); /* unstarted */
    struct vmdev_virtio_net_config config = {
        .num_pairs = (uint16_t)n->queues,
        .queue_size = (uint16_t)n->queue_size,
        .mtu = (uint16_t)n->mtu,
        .backends = backends,
        .num_backends = (uint16_t)num_backends,
        .rx_coalesce = { n->coalesce_usecs, n->coalesce_frames },
        .tx_coalesce = { n->coalesce_usecs, n->coalesce_frames },
    };
    memcpy(config.mac, n->mac, 6);
    struct vmdev_virtio_net *net = vmdev_virtio_net_new(id, make->m->vm->mem,
                                                        &config);
    if (!net) {
        vmm_report("--net %s: %s\n", what, strerror(errno));
        return NULL;
    }
    struct vmm_machine *m = make->m;
    struct vmdev_net_capture *owned = NULL;
    if (make->owned_capture) {
        owned = *make->owned_capture;
        *make->owned_capture = NULL;
    }
    m->nets[m->num_nets++] = (struct machine_net){
        net, vmdev_virtio_net_device(net), owned };
    return vmdev_virtio_net_device(net);
}

/* owned: the card is added while the guest runs and takes *owned (its
 * capture, or NULL), clearing it once it holds it. */
static int add_net(struct vmm_machine *m, const struct vmm_net *net,
                   struct vmdev_net_capture *capture,
                   struct vmdev_net_capture **owned)
{
    struct net_make make = { m, net, owned ? *owned : capture, owned };
    return vmm_pci_add_virtio(m->pci, &(struct vmm_virtio_spec){
        .type = "virtio-net", .id = net->id,
        .make = make_net, .make_opaque = &make,
        .gone = net_gone, .gone_opaque = m, .hotplug = owned != NULL,
    });
}

/* After the disks: Linux names the cards eth0, eth1, ... in slot order. */
static int create_nets(struct vmm_machine *m, const struct vmm_options *opts,
                       struct vmdev_net_capture *const *captures)
{
    for (unsigned i = 0; i < opts->num_nets; i++)
        if (add_net(m, &opts->nets[i], captures[i], NULL))
            return -1;
    return 0;
}

static struct vmdev_virtio_device *make_console(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_console_output out = vmm_console_host_output(m->console_host);
    m->console = vmdev_virtio_console_new(id, m->vm->mem, &out);
    if (!m->console) {
        vmm_report("--console: cannot create virtio-console\n");
        return NULL;
    }
    return vmdev_virtio_console_device(m->console);
}

static int create_console(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (opts->console.kind == VMM_OUTPUT_OFF)
        return 0;
    m->console_host = vmm_console_host_open(m->loop, opts);
    if (!m->console_host ||
        vmm_pci_add_virtio(m->pci, &(struct vmm_virtio_spec){
            .type = "virtio-console", .make = make_console, .make_opaque = m,
            .fixed = true,
        }))
        return -1;
    vmm_console_host_start(m->console_host, m->console);
    return 0;
}

static struct vmdev_virtio_device *make_rng(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new(id, m->vm->mem, NULL);
    if (!rng) {
        vmm_report("--rng: cannot create virtio-rng\n");
        return NULL;
    }
    return vmdev_virtio_rng_device(rng);
}

static int add_rng(struct vmm_machine *m, const char *id, bool hotplug)
{
    return vmm_pci_add_virtio(m->pci, &(struct vmm_virtio_spec){
        .type = "virtio-rng", .id = id, .make = make_rng, .make_opaque = m,
        .hotplug = hotplug,
    });
}

static int create_rng(struct vmm_machine *m, const struct vmm_options *opts)
{
    return opts->rng ? add_rng(m, NULL, false) : 0;
}

int vmm_machine_add_virtio(struct vmm_machine *m, const struct vmm_options *opts,
                           struct vmdev_block **images,
                           struct vmdev_net_capture *const *captures)
{
    return create_pci(m, opts) || create_disks(m, opts, images) ||
                   create_nets(m, opts, captures) || create_console(m, opts) ||
                   create_rng(m, opts)
               ? -1
               : 0;
}

/* --- Devices added and removed while the guest runs. --- */

/* device-add disk: --disk's keys, the image opened here. */
static int hotplug_disk(struct vmm_machine *m, char *spec)
{
    struct vmm_options one = { 0 };
    struct vmdev_block *image = NULL;
    if (vmm_parse_disk(spec, &one) || vmm_open_disks(&one, m->log, &image))
        return -1;
    int ret = add_disk(m, &one.disks[0], &image, true);
    vmm_close_disks(&one, &image); /* unless the device took it */
    return ret;
}

/* device-add net: --net's keys; the card owns its pcap= capture. Without
 * mac=, each card added gets an address of its own (52:54:00:12:35:xx,
 * beside --net's 52:54:00:12:34:xx). */
static int hotplug_net(struct vmm_machine *m, char *spec)
{
    struct vmm_options one = { 0 };
    struct vmdev_net_capture *capture = NULL;
    bool mac_given = strncmp(spec, "mac=", 4) == 0 || strstr(spec, ",mac=");
    if (!mac_given && m->nets_added > UINT8_MAX) {
        vmm_report("--net: every default address (52:54:00:12:35:xx) has "
                   "been given; give mac=\n");
        return -1;
    }
    if (vmm_parse_net(spec, &one) || vmm_open_captures(&one, &capture))
        return -1;
    if (!mac_given) {
        static const uint8_t base[5] = { 0x52, 0x54, 0x00, 0x12, 0x35 };
        memcpy(one.nets[0].mac, base, sizeof(base));
        one.nets[0].mac[5] = (uint8_t)m->nets_added;
    }
    int ret = add_net(m, &one.nets[0], NULL, &capture);
    if (ret == 0 && !mac_given)
        m->nets_added++;
    if (capture) /* the card never took it */
        vmdev_net_capture_free(capture);
    return ret;
}

/* device-add rng: an id at most. */
static int hotplug_rng(struct vmm_machine *m, char *spec)
{
    const char *id = NULL;
    if (*spec) {
        if (strncmp(spec, "id=", 3) != 0 || strchr(spec, ',')) {
            vmm_option_bad("rng", spec, "the only key is id=ID");
            return -1;
        }
        id = spec + 3;
        if (vmm_check_device_id("rng", spec, id, &(struct vmm_options){ 0 }))
            return -1;
    }
    return add_rng(m, id, true);
}

int vmm_machine_add_device(struct vmm_machine *m, const char *type, char *spec)
{
    if (strcmp(type, "disk") == 0)
        return hotplug_disk(m, spec);
    if (strcmp(type, "net") == 0)
        return hotplug_net(m, spec);
    if (strcmp(type, "rng") == 0)
        return hotplug_rng(m, spec);
    vmm_report("device-add: unknown type '%s' (disk, net or rng)\n", type);
    return -1;
}

int vmm_machine_remove_device(struct vmm_machine *m, const char *id,
                              bool force)
{
    struct vmdev_device *dev = vmdev_device_find(m->devices, id);
    if (!dev) {
        vmm_report("device-del: no device '%s'\n", id);
        return -1;
    }
    int ret = vmm_pci_remove(m->pci, dev, force);
    if (ret == -ENODEV)
        vmm_report("device-del: '%s' (%s) is one of the machine's own "
                   "devices and cannot be removed\n",
                   id, vmdev_device_type(dev));
    return ret < 0 ? -1 : ret;
}

void vmm_machine_on_removed(struct vmm_machine *m, vmm_pci_removed_fn *fn,
                            void *opaque)
{
    vmm_pci_on_removed(m->pci, fn, opaque);
}

bool vmm_machine_device_place(struct vmm_machine *m,
                              const struct vmdev_device *dev,
                              struct vmm_pci_place *out)
{
    return m->pci && vmm_pci_place(m->pci, dev, out);
}
