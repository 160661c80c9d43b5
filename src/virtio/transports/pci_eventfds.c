/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci function's queue eventfds: each queue's kicks arrive on
 * an eventfd watched by the event loop of the queue's group, where the
 * device serves the queue; the VMM has the guest's notify writes signal
 * it directly (an ioeventfd) for as long as BAR 0 is mapped.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "pci_function.h"
#include "vmdev/event_loop.h"

/* Linux's virtio_pci_modern writes the queue index as 16 bits
 * (vp_notify); writes of other widths do not match the ioeventfd and
 * still arrive through the BAR. */
#define NOTIFY_WIDTH 2

static void queue_kicked(void *opaque, uint32_t events)
{
    struct virtio_pci_kick *kick = opaque;
    (void)events;
    if (vmdev_eventfd_drain(kick->fd)) {
        atomic_fetch_add(&kick->vp->eventfd_kicks, 1);
        vmdev_virtio_pci_queue_kick(kick->vp, kick->queue);
    }
}

/* The attachment and watch of one queue; its eventfd is open. */
static int start_kick(struct vmdev_virtio_pci *vp, struct virtio_pci_kick *k)
{
    int ret = vmdev_virtio_attach_queue(vp->vdev, k->queue, k->loop);
    if (ret)
        return ret;
    k->attached = true;
    k->watch = vmdev_event_loop_add(k->loop, k->fd, VMDEV_EVENT_IN,
                                    queue_kicked, k);
    return k->watch ? 0 : -errno;
}

int virtio_pci_kicks_start(struct vmdev_virtio_pci *vp)
{
    if (!vp->config.queue_loop)
        return 0;
    uint16_t queues = vp->vdev->num_queues;
    vp->kicks = calloc(queues, sizeof(*vp->kicks));
    if (!vp->kicks)
        return -ENOMEM;
    for (; vp->num_kicks < queues; vp->num_kicks++) {
        uint16_t q = vp->num_kicks;
        struct virtio_pci_kick *k = &vp->kicks[q];
        unsigned group = vmdev_virtio_queue_group(vp->vdev, q);
        *k = (struct virtio_pci_kick){ .vp = vp, .queue = q };
        k->fd = vmdev_eventfd_new();
        int ret = k->fd < 0 ? -errno : 0;
        if (!ret) {
            k->loop = vp->config.queue_loop(vp->config.opaque, group);
            ret = k->loop ? start_kick(vp, k) : -EINVAL;
        }
        if (ret) {
            vp->num_kicks++; /* stopped with the others */
            virtio_pci_kicks_stop(vp);
            return ret;
        }
    }
    return 0;
}

void virtio_pci_kicks_stop(struct vmdev_virtio_pci *vp)
{
    for (uint16_t q = 0; q < vp->num_kicks; q++) {
        struct virtio_pci_kick *k = &vp->kicks[q];
        if (k->watch)
            vmdev_event_loop_remove(k->loop, k->watch);
        /* No kick comes any more: the device lets go of the loop
         * (requests still in flight finish when it is destroyed). */
        if (k->attached)
            vmdev_virtio_detach_queue(vp->vdev, q);
        if (k->fd >= 0)
            close(k->fd);
    }
    free(vp->kicks);
    vp->kicks = NULL;
    vp->num_kicks = 0;
}

static int set_ioeventfd(struct vmdev_virtio_pci *vp, uint64_t bar,
                         uint16_t queue, bool assign)
{
    return vp->config.set_ioeventfd(
        vp->config.opaque, bar + vmdev_virtio_pci_notify_offset(queue),
        NOTIFY_WIDTH, vp->kicks[queue].fd, assign);
}

void virtio_pci_ioeventfds_follow_bar(struct vmdev_virtio_pci *vp,
                                      uint64_t bar, bool mapped)
{
    if (!vp->config.set_ioeventfd || !vp->num_kicks)
        return;
    if (!mapped) {
        if (vp->ioeventfds_assigned && vp->ioeventfd_bar == bar)
            for (uint16_t q = 0; q < vp->num_kicks; q++)
                set_ioeventfd(vp, bar, q, false);
        vp->ioeventfds_assigned = false;
        return;
    }
    /* All or none: a queue without its ioeventfd still works through the
     * BAR, but one set keeps the bookkeeping to a flag. */
    for (uint16_t q = 0; q < vp->num_kicks; q++) {
        if (set_ioeventfd(vp, bar, q, true)) {
            while (q--)
                set_ioeventfd(vp, bar, q, false);
            return;
        }
    }
    vp->ioeventfds_assigned = true;
    vp->ioeventfd_bar = bar;
}
