/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci function's state, shared by the transport's registers
 * (pci.c) and its queue eventfds (pci_eventfds.c).
 */
#ifndef VMDEV_VIRTIO_PCI_FUNCTION_H
#define VMDEV_VIRTIO_PCI_FUNCTION_H

#include <pthread.h>
#include <stdatomic.h>

#include "vmdev/virtio_device.h"
#include "vmdev/virtio_pci.h"

/* A queue's kick eventfd, watched on the loop of the queue's group. */
struct virtio_pci_kick {
    struct vmdev_virtio_pci *vp;
    uint16_t queue;
    int fd;
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *watch;
    bool attached; /* the device was told its queue runs on loop */
};

struct vmdev_virtio_pci {
    struct vmdev_pci_device *pci;
    struct vmdev_pci_msix *msix;
    struct vmdev_virtio_device *vdev;
    struct vmdev_virtio_pci_config config;
    /* Transport registers (virtio 1.2, 4.1.4.3), under vdev->lock; the
     * vectors (config_vector, each queue's msix_vector) are also read
     * atomically by interrupts raised from a queue's lock. */
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select;
    uint16_t config_vector;
    /* The ISR status and the INTx level it drives, under isr_lock: an
     * interrupt may come from a queue's lock (taken after vdev->lock). */
    pthread_mutex_t isr_lock;
    uint8_t isr;
    uint8_t cfg_cap; /* offset of the PCI config access capability */
    struct vmdev_ratelimit log_limit; /* its guest errors, to vdev->log */

    /* One per queue when config.queue_loop is set, else NULL. */
    struct virtio_pci_kick *kicks;
    uint16_t num_kicks;
    /* The notify registers signal the kicks' eventfds (set_ioeventfd) at
     * this BAR address. Changed only where the bus maps and unmaps BAR
     * 0, which it serialises. */
    bool ioeventfds_assigned;
    uint64_t ioeventfd_bar;
    atomic_uint_fast64_t eventfd_kicks;
};

/* Make, watch and attach an eventfd per queue (config.queue_loop set);
 * 0 or a negative errno, with what was made undone. */
int virtio_pci_kicks_start(struct vmdev_virtio_pci *vp);
/* Stop watching, detach every queue and close the eventfds. */
void virtio_pci_kicks_stop(struct vmdev_virtio_pci *vp);
/* BAR 0 mapped at `bar` (or about to be unmapped from it): the notify
 * registers' ioeventfds follow it. */
void virtio_pci_ioeventfds_follow_bar(struct vmdev_virtio_pci *vp,
                                      uint64_t bar, bool mapped);

#endif
