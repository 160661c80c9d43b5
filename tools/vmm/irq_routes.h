/* SPDX-License-Identifier: MIT */
/*
 * KVM's GSI routing table for a split irqchip, owned in one place:
 *  - GSIs 0-23, one per IOAPIC pin, as MSI routes that KVM scans to learn
 *    which vectors are level-triggered, so their EOIs exit to user space
 *    (KVM_EXIT_IOAPIC_EOI). The IOAPIC itself sends its messages as MSIs;
 *  - GSIs from 24 on, MSI routes learnt from the messages devices send
 *    (MSI-X vectors, IOAPIC pins), each with an irqfd: once a message has
 *    a route, sending it again is one eventfd write from any thread. A
 *    PCI function's MSI-X keeps each vector's irqfd (the sink's route
 *    callback, vmm_irq_routes_route_msi) and writes it without coming
 *    here at all.
 * The learnt routes are bounded (a guest can program any number of
 * distinct messages); past the bound, messages go through KVM_SIGNAL_MSI.
 */
#ifndef VMM_IRQ_ROUTES_H
#define VMM_IRQ_ROUTES_H

#include <stdint.h>

#include "vmdev/irq.h"

#define VMM_MSI_ROUTES 128

struct vmm_irq_routes;

/* NULL after printing why. A vm_fd of -1 (a VM without KVM) keeps the
 * routes and counts the interrupts but sends nothing. */
struct vmm_irq_routes *vmm_irq_routes_new(int vm_fd, unsigned ioapic_pins);
void vmm_irq_routes_free(struct vmm_irq_routes *routes);

/* Replace the IOAPIC pins' routes: msgs[pin] for every pin whose bit is
 * set in valid (a masked or unprogrammed pin has none). KVM is told only
 * when a route changed. */
void vmm_irq_routes_set_ioapic(struct vmm_irq_routes *routes,
                               const struct vmdev_msi_msg *msgs,
                               uint32_t valid);

/* msg's irqfd, creating the route on first use; -1 when it has none (past
 * the bound, or KVM refused the table). The fd stays open until
 * vmm_irq_routes_free, so a device may keep it and write it itself. */
int vmm_irq_routes_route_msi(struct vmm_irq_routes *routes,
                             const struct vmdev_msi_msg *msg);

/* Deliver msg: through its irqfd, creating the route on first use. */
void vmm_irq_routes_send_msi(struct vmm_irq_routes *routes,
                             const struct vmdev_msi_msg *msg);

/* Messages delivered through irqfds and through KVM_SIGNAL_MSI, and the
 * routing tables given to KVM. */
void vmm_irq_routes_counts(struct vmm_irq_routes *routes, uint64_t *irqfd,
                           uint64_t *signal_msi, uint64_t *tables_set);

#endif
