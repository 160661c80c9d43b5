/* SPDX-License-Identifier: MIT */
/*
 * The PC that vmdev-run assembles from libvmdev devices: which device sits
 * at which port or address, and how interrupt lines are routed.
 */
#ifndef VMM_MACHINE_H
#define VMM_MACHINE_H

#include "options.h"
#include "pci_host.h"
#include "vm.h"
#include "vmdev/event_loop.h"
#include "vmdev/log.h"

struct vmm_machine;

/* The ids of the machine's own devices, NULL-terminated. */
extern const char *const vmm_machine_ids[];

/* Whether id is one of those, which a user's device cannot take. */
bool vmm_machine_id_reserved(const char *id);

/* Create the devices, map them on the VM's buses and wire their
 * interrupts, timers, input and output. images[] are the opened --disk
 * images (vmm_open_disks); each disk device takes its own and sets the
 * entry to NULL. captures[] are the cards' pcap= captures
 * (vmm_open_captures), which stay the caller's, closed after the machine.
 * Every device logs to log, which outlives the machine. NULL after
 * printing why. */
struct vmm_machine *vmm_machine_create(struct vmm_vm *vm,
                                       struct vmdev_event_loop *loop,
                                       struct vmdev_log *log,
                                       const struct vmm_options *opts,
                                       struct vmdev_block **images,
                                       struct vmdev_net_capture *const *captures);
void vmm_machine_destroy(struct vmm_machine *machine);

/* Every device, with what it owns (the control API lists them). */
struct vmdev_device_manager *vmm_machine_devices(struct vmm_machine *machine);

/*
 * While the guest runs, on the device manager's (main) thread:
 *
 * add a device of type "disk", "net" or "rng", spec holding the keys
 * --disk or --net take (modified in place; for rng, id=ID at most). It
 * goes into a free root port and the guest hears of it. 0, or -1 after
 * reporting why (report.h) with nothing changed.
 */
int vmm_machine_add_device(struct vmm_machine *machine, const char *type,
                           char *spec);
/* Remove device id (vmm_pci_remove): VMM_PCI_REMOVED, or
 * VMM_PCI_REMOVAL_PENDING while the guest lets go of it, or -1 after
 * reporting why (no such device, one of the machine's own). */
int vmm_machine_remove_device(struct vmm_machine *machine, const char *id,
                              bool force);
/* Who hears of each device removed (DEVICE_DELETED). */
void vmm_machine_on_removed(struct vmm_machine *machine,
                            vmm_pci_removed_fn *fn, void *opaque);
/* Where a device on PCI sits; false for the others. */
bool vmm_machine_device_place(struct vmm_machine *machine,
                              const struct vmdev_device *dev,
                              struct vmm_pci_place *out);

/* The counters --stats prints, live: {"devices": [{"id", "type",
 * "guest_errors", "eventfd_kicks", "interrupts", and "disk" or "net"}],
 * "exits": {...}, "notifications": {...}}; with id, that device alone.
 * On the main thread. */
struct json_object *vmm_machine_stats_json(struct vmm_machine *machine,
                                           const char *id);

/* One line on stderr: how notifications and interrupts travelled. */
void vmm_machine_print_stats(struct vmm_machine *machine);

#endif
