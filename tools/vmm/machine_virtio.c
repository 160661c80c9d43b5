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
    bool slirp = false;
    for (unsigned i = 0; i < opts->num_nets; i++)
        slirp |= opts->nets[i].backend.slirp;
    /* A root port for each device, and the free ones. */
    unsigned ports = opts->num_disks + opts->num_nets +
                     (opts->console.kind != VMM_OUTPUT_OFF) + opts->rng +
                     opts->pcie_ports;
    m->pci = vmm_pci_create(m->vm, m->devices, vmm_machine_ids[ID_PCI], m->gsis,
                            vmm_machine_set_ioapic_pin, m, m->log, m->vm->cpus,
                            slirp ? &slirp_io_syscalls : NULL, ports);
    return m->pci ? 0 : -1;
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
        fprintf(stderr, "vmdev-run: --disk path=%s: %s\n", d->path,
                strerror(errno));
        return NULL;
    }
    *make->image = NULL;
    make->m->disks[make->m->num_disks++] = blk;
    return vmdev_virtio_blk_device(blk);
}

/* Disks first: Linux names them vda, vdb, ... in PCI slot order. */
static int create_disks(struct vmm_machine *m, const struct vmm_options *opts,
                        struct vmdev_block **images)
{
    for (unsigned i = 0; i < opts->num_disks; i++) {
        struct disk_make make = { m, &opts->disks[i], &images[i] };
        if (vmm_pci_add_virtio(m->pci, m->devices, "virtio-blk",
                               opts->disks[i].id, make_disk, &make))
            return -1;
    }
    return 0;
}

struct net_make {
    struct vmm_machine *m;
    const struct vmm_net *net;
    struct vmdev_net_capture *capture; /* its pcap=, or NULL */
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
        fprintf(stderr, "vmdev-run: --net %s: %s\n", what, why);
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
        fprintf(stderr, "vmdev-run: --net %s: %s\n", what, strerror(errno));
        return NULL;
    }
    make->m->nets[make->m->num_nets++] = net;
    return vmdev_virtio_net_device(net);
}

/* After the disks: Linux names the cards eth0, eth1, ... in slot order. */
static int create_nets(struct vmm_machine *m, const struct vmm_options *opts,
                       struct vmdev_net_capture *const *captures)
{
    for (unsigned i = 0; i < opts->num_nets; i++) {
        struct net_make make = { m, &opts->nets[i], captures[i] };
        if (vmm_pci_add_virtio(m->pci, m->devices, "virtio-net",
                               opts->nets[i].id, make_net, &make))
            return -1;
    }
    return 0;
}

static struct vmdev_virtio_device *make_console(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_console_output out = vmm_console_host_output(m->console_host);
    m->console = vmdev_virtio_console_new(id, m->vm->mem, &out);
    if (!m->console) {
        fprintf(stderr, "vmdev-run: --console: cannot create virtio-console\n");
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
        vmm_pci_add_virtio(m->pci, m->devices, "virtio-console", NULL,
                           make_console, m))
        return -1;
    vmm_console_host_start(m->console_host, m->console);
    return 0;
}

static struct vmdev_virtio_device *make_rng(const char *id, void *opaque)
{
    struct vmm_machine *m = opaque;
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new(id, m->vm->mem, NULL);
    if (!rng) {
        fprintf(stderr, "vmdev-run: --rng: cannot create virtio-rng\n");
        return NULL;
    }
    return vmdev_virtio_rng_device(rng);
}

static int create_rng(struct vmm_machine *m, const struct vmm_options *opts)
{
    if (!opts->rng)
        return 0;
    return vmm_pci_add_virtio(m->pci, m->devices, "virtio-rng", NULL, make_rng,
                              m);
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
