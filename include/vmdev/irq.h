/* SPDX-License-Identifier: MIT */
/*
 * Interrupts as devices see them.
 *
 * A device raises an interrupt through a line or an MSI sink handed to it
 * as a {function, opaque} pair; it never knows whether a PIC, an IOAPIC,
 * KVM or a test sits on the other side. Level-triggered devices recompute
 * their line in one place and call set() with the new level (repeating
 * the current level is allowed and cheap for the receiver to ignore).
 * An edge-triggered device pulses: set(1) then set(0).
 */
#ifndef VMDEV_IRQ_H
#define VMDEV_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmdev_irq_line {
    void (*set)(void *opaque, bool level);
    void *opaque;
};

static inline void vmdev_irq_set(const struct vmdev_irq_line *line, bool level)
{
    if (line->set)
        line->set(line->opaque, level);
}

static inline void vmdev_irq_pulse(const struct vmdev_irq_line *line)
{
    vmdev_irq_set(line, true);
    vmdev_irq_set(line, false);
}

/* A message-signalled interrupt: a 32-bit write of data to address. */
struct vmdev_msi_msg {
    uint64_t address;
    uint32_t data;
};

struct vmdev_msi_sink {
    void (*send)(void *opaque, const struct vmdev_msi_msg *msg);
    void *opaque;
    /*
     * Optional: an eventfd whose every write delivers msg (a KVM irqfd on
     * an MSI route), or -1 for none. A device with per-vector state
     * (MSI-X) asks once for each message a vector holds and then signals
     * the eventfd itself, so an interrupt costs one write and no lock of
     * the VMM's. The eventfd stays open as long as the sink does; the
     * library never closes it. Called with the device's MSI-X lock held.
     */
    int (*route)(void *opaque, const struct vmdev_msi_msg *msg);
};

static inline void vmdev_msi_send(const struct vmdev_msi_sink *sink,
                                  const struct vmdev_msi_msg *msg)
{
    if (sink->send)
        sink->send(sink->opaque, msg);
}

/*
 * The interrupt sink a VMM provides to the library as a whole: global
 * system interrupt lines (routed to its interrupt controllers) and MSI
 * delivery. The device manager hands each device the lines and vectors
 * it was allocated.
 */
struct vmdev_irq_sink {
    void (*set_gsi)(void *opaque, unsigned gsi, bool level);
    void (*send_msi)(void *opaque, const struct vmdev_msi_msg *msg);
    void *opaque;
};

#ifdef __cplusplus
}
#endif

#endif
