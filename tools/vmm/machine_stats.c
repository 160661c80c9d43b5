/* SPDX-License-Identifier: MIT */
/*
 * --stats: the devices and what each owns, each disk's and card's
 * counters, and how queue notifications and interrupts travelled; and
 * the same numbers, live, for the control API's stats.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "machine_internal.h"
#include "vmdev/block.h"

/* "pio 0x3f8-0x3ff", "gsi 16-23", "pci-slot 1": addresses in hex. */
static void print_resource(const struct vmdev_resource *r, bool first)
{
    unsigned long long start = r->base, last = r->base + r->size - 1;
    fprintf(stderr, "%s%s ", first ? " " : ", ", vmdev_resource_kind_name(r->kind));
    if (r->kind == VMDEV_RESOURCE_PIO || r->kind == VMDEV_RESOURCE_MMIO)
        fprintf(stderr, "0x%llx-0x%llx", start, last);
    else if (r->size > 1)
        fprintf(stderr, "%llu-%llu", start, last);
    else
        fprintf(stderr, "%llu", start);
}

/* One line per device: its id, type and what it owns. */
static void print_devices(struct vmm_machine *m)
{
    for (struct vmdev_device *d = vmdev_device_next(m->devices, NULL); d;
         d = vmdev_device_next(m->devices, d)) {
        struct vmdev_resource res[16];
        size_t n = vmdev_device_resources(d, res, 16);
        char address[16];
        fprintf(stderr, "vmdev-run: device %s (%s)", vmdev_device_id(d),
                vmdev_device_type(d));
        if (m->pci && vmm_pci_address(m->pci, d, address, sizeof(address)))
            fprintf(stderr, " at %s", address);
        fputc(':', stderr);
        for (size_t i = 0; i < n && i < 16; i++)
            print_resource(&res[i], i == 0);
        fprintf(stderr, "%s\n", n > 16 ? ", ..." : n ? "" : " nothing");
    }
}

/* One line per disk: what the image saw, and what the guest was told. */
static void print_disks(struct vmm_machine *m)
{
    for (unsigned i = 0; i < m->num_disks; i++) {
        struct vmdev_virtio_blk *blk = m->disks[i].blk;
        const struct vmdev_virtio_device *dev = vmdev_virtio_blk_device(blk);
        const char *name = vmdev_virtio_name(dev);
        struct vmdev_block_stats b = vmdev_block_stats(vmdev_virtio_blk_block(blk));
        struct vmdev_virtio_blk_stats v = vmdev_virtio_blk_stats(blk);
        fprintf(stderr,
                "vmdev-run: disk %s: reads=%llu writes=%llu flushes=%llu "
                "discards=%llu write_zeroes=%llu bytes_read=%llu "
                "bytes_written=%llu errors=%llu; requests=%llu ioerr=%llu "
                "unsupp=%llu data_in_flight_peak=%llu budget_waits=%llu\n",
                name, (unsigned long long)b.reads, (unsigned long long)b.writes,
                (unsigned long long)b.flushes, (unsigned long long)b.discards,
                (unsigned long long)b.write_zeroes,
                (unsigned long long)b.bytes_read,
                (unsigned long long)b.bytes_written,
                (unsigned long long)b.errors, (unsigned long long)v.requests,
                (unsigned long long)v.io_errors,
                (unsigned long long)v.unsupported,
                (unsigned long long)v.data_in_flight_peak,
                (unsigned long long)v.budget_waits);
        fprintf(stderr, "vmdev-run: disk %s: requests by queue:", name);
        for (uint16_t q = 0; q < vmdev_virtio_num_queues(dev); q++)
            fprintf(stderr, " %llu", (unsigned long long)
                                         vmdev_virtio_blk_queue_requests(blk, q));
        fputc('\n', stderr);
    }
}

/* One line per card, then its frames by queue (receive, transmit). */
static void print_nets(struct vmm_machine *m)
{
    for (unsigned i = 0; i < m->num_nets; i++) {
        struct vmdev_virtio_net *net = m->nets[i].net;
        const struct vmdev_virtio_device *dev = vmdev_virtio_net_device(net);
        const char *name = vmdev_virtio_name(dev);
        struct vmdev_virtio_net_stats s = vmdev_virtio_net_stats(net);
        fprintf(stderr,
                "vmdev-run: net %s: rx_frames=%llu rx_bytes=%llu "
                "tx_frames=%llu tx_bytes=%llu rx_filtered=%llu "
                "rx_dropped=%llu tx_dropped=%llu tx_segments=%llu "
                "tx_checksums=%llu ctrl=%llu ctrl_errors=%llu "
                "rx_coalesce_set=%u/%u tx_coalesce_set=%u/%u\n",
                name, (unsigned long long)s.rx_frames,
                (unsigned long long)s.rx_bytes,
                (unsigned long long)s.tx_frames,
                (unsigned long long)s.tx_bytes,
                (unsigned long long)s.rx_filtered,
                (unsigned long long)s.rx_dropped,
                (unsigned long long)s.tx_dropped,
                (unsigned long long)s.tx_segments,
                (unsigned long long)s.tx_checksums,
                (unsigned long long)s.ctrl_commands,
                (unsigned long long)s.ctrl_errors, s.rx_coalesce_set.usecs,
                s.rx_coalesce_set.frames, s.tx_coalesce_set.usecs,
                s.tx_coalesce_set.frames);
        uint16_t queues = (uint16_t)(vmdev_virtio_num_queues(dev) - 1);
        for (unsigned tx = 0; tx < 2; tx++) {
            fprintf(stderr, "vmdev-run: net %s: %s frames by queue:", name,
                    tx ? "tx" : "rx");
            for (uint16_t q = (uint16_t)tx; q < queues; q += 2)
                fprintf(stderr, " %llu", (unsigned long long)
                        vmdev_virtio_net_queue_stats(net, q).frames);
            fputc('\n', stderr);
        }
    }
}

void vmm_machine_print_stats(struct vmm_machine *m)
{
    print_devices(m);
    print_disks(m);
    print_nets(m);
    uint64_t irqfd, signal_msi, tables_set;
    vmm_irq_routes_counts(m->vm->routes, &irqfd, &signal_msi, &tables_set);
    /* The routes' own irqfd writes, and those the PCI functions make. */
    irqfd += vmm_pci_msix_routed(m->pci);
    fprintf(stderr,
            "vmdev-run: queue notifications: ioeventfd=%llu; "
            "interrupts: irqfd=%llu signal_msi=%llu gsi_routing_sets=%llu\n",
            (unsigned long long)vmm_pci_ioeventfd_kicks(m->pci),
            (unsigned long long)irqfd, (unsigned long long)signal_msi,
            (unsigned long long)tables_set);
}

/* --- The same, as JSON, while the VM runs. --- */

static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static struct json_object *disk_json(struct vmdev_virtio_blk *blk)
{
    const struct vmdev_virtio_device *dev = vmdev_virtio_blk_device(blk);
    struct vmdev_block_stats b = vmdev_block_stats(vmdev_virtio_blk_block(blk));
    struct vmdev_virtio_blk_stats v = vmdev_virtio_blk_stats(blk);
    struct json_object *o = json_object_new_object();
    put_u64(o, "reads", b.reads);
    put_u64(o, "writes", b.writes);
    put_u64(o, "flushes", b.flushes);
    put_u64(o, "discards", b.discards);
    put_u64(o, "write_zeroes", b.write_zeroes);
    put_u64(o, "bytes_read", b.bytes_read);
    put_u64(o, "bytes_written", b.bytes_written);
    put_u64(o, "errors", b.errors);
    put_u64(o, "requests", v.requests);
    put_u64(o, "io_errors", v.io_errors);
    put_u64(o, "unsupported", v.unsupported);
    struct json_object *by_queue = json_object_new_array();
    for (uint16_t q = 0; q < vmdev_virtio_num_queues(dev); q++)
        json_object_array_add(by_queue, json_object_new_int64((int64_t)
            vmdev_virtio_blk_queue_requests(blk, q)));
    json_object_object_add(o, "requests_by_queue", by_queue);
    return o;
}

static struct json_object *net_json(struct vmdev_virtio_net *net)
{
    const struct vmdev_virtio_device *dev = vmdev_virtio_net_device(net);
    struct vmdev_virtio_net_stats s = vmdev_virtio_net_stats(net);
    struct json_object *o = json_object_new_object();
    put_u64(o, "rx_frames", s.rx_frames);
    put_u64(o, "rx_bytes", s.rx_bytes);
    put_u64(o, "tx_frames", s.tx_frames);
    put_u64(o, "tx_bytes", s.tx_bytes);
    put_u64(o, "rx_filtered", s.rx_filtered);
    put_u64(o, "rx_dropped", s.rx_dropped);
    put_u64(o, "tx_dropped", s.tx_dropped);
    put_u64(o, "tx_segments", s.tx_segments);
    put_u64(o, "tx_checksums", s.tx_checksums);
    put_u64(o, "ctrl_commands", s.ctrl_commands);
    put_u64(o, "ctrl_errors", s.ctrl_errors);
    uint16_t queues = (uint16_t)(vmdev_virtio_num_queues(dev) - 1);
    for (unsigned tx = 0; tx < 2; tx++) {
        struct json_object *by_queue = json_object_new_array();
        for (uint16_t q = (uint16_t)tx; q < queues; q += 2)
            json_object_array_add(by_queue, json_object_new_int64((int64_t)
                vmdev_virtio_net_queue_stats(net, q).frames));
        json_object_object_add(o, tx ? "tx_frames_by_queue"
                                     : "rx_frames_by_queue", by_queue);
    }
    return o;
}

/* One device's counters: its virtio transport's, and a disk's or card's. */
static struct json_object *device_json(struct vmm_machine *m,
                                       struct vmdev_device *d)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(vmdev_device_id(d)));
    json_object_object_add(o, "type",
                           json_object_new_string(vmdev_device_type(d)));
    struct vmm_pci_counters pci;
    if (vmm_pci_counters(m->pci, d, &pci)) {
        put_u64(o, "guest_errors", pci.guest_errors);
        put_u64(o, "eventfd_kicks", pci.eventfd_kicks);
        put_u64(o, "interrupts", pci.interrupts);
        for (unsigned i = 0; i < m->num_disks; i++)
            if (m->disks[i].vdev == pci.vdev)
                json_object_object_add(o, "disk", disk_json(m->disks[i].blk));
        for (unsigned i = 0; i < m->num_nets; i++)
            if (m->nets[i].vdev == pci.vdev)
                json_object_object_add(o, "net", net_json(m->nets[i].net));
    }
    return o;
}

struct json_object *vmm_machine_stats_json(struct vmm_machine *m,
                                           const char *id)
{
    struct json_object *devices = json_object_new_array();
    for (struct vmdev_device *d = vmdev_device_next(m->devices, NULL); d;
         d = vmdev_device_next(m->devices, d))
        if (!id || strcmp(id, vmdev_device_id(d)) == 0)
            json_object_array_add(devices, device_json(m, d));
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "devices", devices);

    uint64_t exits[VMM_EXIT_KINDS], total = 0;
    vmm_vm_exit_counts(m->vm, exits);
    struct json_object *by_kind = json_object_new_object();
    for (unsigned k = 0; k < VMM_EXIT_KINDS; k++) {
        put_u64(by_kind, vmm_exit_kind_names[k], exits[k]);
        total += exits[k];
    }
    put_u64(by_kind, "total", total);
    json_object_object_add(r, "exits", by_kind);

    uint64_t irqfd, signal_msi, tables_set;
    vmm_irq_routes_counts(m->vm->routes, &irqfd, &signal_msi, &tables_set);
    struct json_object *irq = json_object_new_object();
    put_u64(irq, "ioeventfd_kicks", vmm_pci_ioeventfd_kicks(m->pci));
    put_u64(irq, "irqfd", irqfd + vmm_pci_msix_routed(m->pci));
    put_u64(irq, "signal_msi", signal_msi);
    put_u64(irq, "gsi_routing_sets", tables_set);
    json_object_object_add(r, "notifications", irq);
    return r;
}
