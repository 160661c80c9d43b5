/* SPDX-License-Identifier: MIT */
/*
 * The KVM side of vmdev-run: a VM with a split irqchip (local APICs in KVM,
 * the PIC, IOAPIC and PIT in user space from libvmdev), guest RAM, and one
 * thread per vCPU dispatching port and MMIO exits through libvmdev buses.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot.h"
#include "irq_routes.h"
#include "vmdev/bus.h"
#include "vmdev/irq.h"
#include "vmdev/guest_memory.h"

struct vmm_vm;

/* Exits to user space by reason, counted per vCPU (for --stats). */
enum vmm_exit_kind {
    VMM_EXITS_PIO,
    VMM_EXITS_MMIO,
    VMM_EXITS_IOAPIC_EOI,
    VMM_EXITS_HLT,
    VMM_EXITS_IRQ_WINDOW,
    VMM_EXITS_SIGNAL, /* KVM_RUN interrupted: kicks and EINTR */
    VMM_EXITS_OTHER,
    VMM_EXIT_KINDS
};

struct vmm_vcpu {
    struct vmm_vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
    uint64_t exits[VMM_EXIT_KINDS]; /* written by the vCPU's thread only */
};

struct vmm_vm {
    int kvm_fd, vm_fd;
    unsigned cpus;
    struct vmm_vcpu *vcpus;
    size_t run_size;

    struct vmdev_guest_memory *mem;
    void *ram;             /* one mapping for all RAM */
    uint64_t ram_size;
    uint64_t low_ram_end;  /* RAM below the hole: [0, low_ram_end) */
    uint64_t high_ram_end; /* RAM above 4 GiB: [4 GiB, high_ram_end), or 0 */

    struct vmdev_bus *pio, *mmio;
    struct vmm_irq_routes *routes;

    /* Called on a vCPU thread after each guest port or MMIO write has
     * been dispatched, with no bus lock held (PCI BAR moves). */
    void (*after_write)(void *opaque);
    void *after_write_opaque;

    /* Called on a vCPU thread for KVM_EXIT_IOAPIC_EOI. */
    void (*eoi)(void *opaque, uint8_t vector);
    void *eoi_opaque;

    /* The PIC's INT (split irqchip: KVM has no PIC). While it is high,
     * vCPU 0 asks KVM for an interrupt window and, when the guest can
     * take an external interrupt, injects the vector extint_ack() gives
     * (the INTA cycle). KVM delivers it only if the local APIC's LINT0
     * accepts ExtINT. */
    atomic_bool extint;
    uint8_t (*extint_ack)(void *opaque);
    void *extint_opaque;

    /* The first exit request wins; exit_fd wakes the main thread. */
    atomic_int exit_status;
    atomic_bool exiting;
    int exit_fd;

    /* vmm_vm_pause: the vCPUs wait at the top of their loop, out of
     * KVM_RUN, until resumed or the VM exits. */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond; /* paused, parked or exiting changed */
    atomic_bool paused;
    unsigned parked; /* vCPUs waiting; under pause_lock */
};

/* Open KVM, create the VM (split irqchip, 24 IOAPIC routes) with `memory`
 * bytes of RAM and `cpus` vCPUs. Returns NULL after printing why. */
struct vmm_vm *vmm_vm_create(uint64_t memory, unsigned cpus);
/* The same VM without KVM, for the exit-dispatch fuzz target: RAM, the
 * buses and the interrupt routes as vmm_vm_create() makes them, vCPUs with
 * a run structure in plain memory and no fd. The machine's devices work
 * on it; nothing reaches a guest (MSIs are counted, notify writes trap as
 * without ioeventfds) and vmm_vm_start() must not be called. */
struct vmm_vm *vmm_vm_create_without_kvm(uint64_t memory, unsigned cpus);
void vmm_vm_destroy(struct vmm_vm *vm);

/* Serve the exit KVM_RUN left in vcpu->run (port and MMIO accesses
 * dispatched to the buses, EOIs, halts, shutdowns); false when the vCPU
 * must stop. Each vCPU thread calls it after KVM_RUN. */
bool vmm_vcpu_handle_exit(struct vmm_vcpu *vcpu);

/* Start every vCPU thread; vCPU 0 enters Linux at `entry`. */
int vmm_vm_start(struct vmm_vm *vm, const struct vmm_boot_entry *entry);

/* Ask the VM to stop with this exit status (the first request wins) and
 * kick every vCPU out of KVM_RUN. Safe from any thread. */
void vmm_vm_request_exit(struct vmm_vm *vm, int status);

/* Join the vCPU threads after an exit request. */
void vmm_vm_join(struct vmm_vm *vm);

/* Stop every vCPU (each leaves KVM_RUN and waits) and return once all
 * are stopped, or the VM is exiting; then let them go on. Device threads
 * keep running: a queue's requests in flight complete. From one thread
 * (the main loop's) at a time. */
void vmm_vm_pause(struct vmm_vm *vm);
void vmm_vm_resume(struct vmm_vm *vm);

/* Exits to user space so far over all vCPUs, by kind (their names). */
extern const char *const vmm_exit_kind_names[VMM_EXIT_KINDS];
void vmm_vm_exit_counts(const struct vmm_vm *vm, uint64_t sum[VMM_EXIT_KINDS]);
/* After vmm_vm_join(): one line of exit counts over all vCPUs on stderr. */
void vmm_vm_print_exit_stats(struct vmm_vm *vm);
/* After vmm_vm_join(): where each vCPU stood, one line each on stderr (a
 * guest stopped from outside, by a timeout say, may have hung). */
void vmm_vm_print_vcpus(struct vmm_vm *vm);

/* The PIC's INT output, as a vmdev_irq_line function (opaque: the VM). */
void vmm_vm_set_extint(void *vm, bool level);

/* Deliver an MSI (what the IOAPIC and MSI-X produce) to the local APICs,
 * through an irqfd route (irq_routes.h). */
void vmm_vm_send_msi(void *vm, const struct vmdev_msi_msg *msg);
/* A vmdev_msi_sink's route: msg's irqfd (its route made on first use),
 * or -1 past the routes' bound or without KVM. */
int vmm_vm_route_msi(void *vm, const struct vmdev_msi_msg *msg);

#endif
