/* SPDX-License-Identifier: MIT */
#include "irq_routes.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmdev/event_loop.h"

#define MAX_PINS 32

struct msi_route {
    struct vmdev_msi_msg msg;
    int fd; /* the irqfd of GSI first_msi_gsi + index */
};

struct vmm_irq_routes {
    int vm_fd;
    unsigned pins;
    pthread_mutex_t lock;
    struct vmdev_msi_msg pin_msgs[MAX_PINS];
    uint32_t pin_valid;
    struct msi_route msi[VMM_MSI_ROUTES];
    unsigned num_msi;
    bool table_failed; /* stop learning after KVM refused a table */
    uint64_t sent_irqfd, sent_signal_msi;
    uint64_t tables_set; /* KVM_SET_GSI_ROUTING calls */
    /* The table handed to KVM, rebuilt from the above on each change. */
    union {
        struct kvm_irq_routing table;
        unsigned char bytes[sizeof(struct kvm_irq_routing) +
                            (MAX_PINS + VMM_MSI_ROUTES) *
                                sizeof(struct kvm_irq_routing_entry)];
    } kvm;
};

static void put_msi(struct kvm_irq_routing_entry *e, unsigned gsi,
                    const struct vmdev_msi_msg *msg)
{
    memset(e, 0, sizeof(*e));
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_MSI;
    e->u.msi.address_lo = (uint32_t)msg->address;
    e->u.msi.address_hi = (uint32_t)(msg->address >> 32);
    e->u.msi.data = msg->data;
}

/* Called with the lock held. */
static int commit(struct vmm_irq_routes *r)
{
    struct kvm_irq_routing *t = &r->kvm.table;
    t->nr = 0;
    t->flags = 0;
    for (unsigned pin = 0; pin < r->pins; pin++)
        if (r->pin_valid & (1u << pin))
            put_msi(&t->entries[t->nr++], pin, &r->pin_msgs[pin]);
    for (unsigned i = 0; i < r->num_msi; i++)
        put_msi(&t->entries[t->nr++], r->pins + i, &r->msi[i].msg);
    r->tables_set++;
    if (r->vm_fd < 0) /* a VM without KVM (vmm_vm_create_without_kvm) */
        return 0;
    if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0) {
        fprintf(stderr, "vmdev-run: KVM_SET_GSI_ROUTING: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

struct vmm_irq_routes *vmm_irq_routes_new(int vm_fd, unsigned ioapic_pins)
{
    if (ioapic_pins > MAX_PINS)
        return NULL;
    struct vmm_irq_routes *r = calloc(1, sizeof(*r));
    if (!r) {
        fprintf(stderr, "vmdev-run: out of memory\n");
        return NULL;
    }
    r->vm_fd = vm_fd;
    r->pins = ioapic_pins;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void vmm_irq_routes_free(struct vmm_irq_routes *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->num_msi; i++)
        close(r->msi[i].fd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void vmm_irq_routes_set_ioapic(struct vmm_irq_routes *r,
                               const struct vmdev_msi_msg *msgs,
                               uint32_t valid)
{
    pthread_mutex_lock(&r->lock);
    /* Each IOAPIC window write lands here (two per redirection entry),
     * and KVM rebuilds its whole table for every KVM_SET_GSI_ROUTING: a
     * write that leaves every route as it was (the same entry written
     * again, the half of an entry that does not change the message) must
     * not cost one. */
    bool changed = valid != r->pin_valid;
    for (unsigned pin = 0; pin < r->pins && !changed; pin++)
        changed = (valid & (1u << pin)) &&
                  (msgs[pin].address != r->pin_msgs[pin].address ||
                   msgs[pin].data != r->pin_msgs[pin].data);
    if (changed) {
        memcpy(r->pin_msgs, msgs, r->pins * sizeof(*msgs));
        r->pin_valid = valid;
        commit(r);
    }
    pthread_mutex_unlock(&r->lock);
}

/* A new MSI route with its irqfd, or -1. Called with the lock held. */
static int learn(struct vmm_irq_routes *r, const struct vmdev_msi_msg *msg)
{
    if (r->table_failed || r->num_msi == VMM_MSI_ROUTES)
        return -1;
    int fd = vmdev_eventfd_new();
    if (fd < 0)
        return -1;
    unsigned index = r->num_msi++;
    r->msi[index] = (struct msi_route){ *msg, fd };
    struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = r->pins + index };
    if (commit(r) ||
        (r->vm_fd >= 0 && ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0)) {
        fprintf(stderr, "vmdev-run: no irqfd route for MSI 0x%llx/0x%x (%s); "
                        "KVM_SIGNAL_MSI from now on\n",
                (unsigned long long)msg->address, msg->data, strerror(errno));
        r->num_msi--;
        close(fd);
        r->table_failed = true;
        commit(r);
        return -1;
    }
    return fd;
}

/* msg's route's irqfd, learnt if new, or -1. Called with the lock held. */
static int find_or_learn(struct vmm_irq_routes *r,
                         const struct vmdev_msi_msg *msg)
{
    for (unsigned i = 0; i < r->num_msi; i++)
        if (r->msi[i].msg.address == msg->address &&
            r->msi[i].msg.data == msg->data)
            return r->msi[i].fd;
    return learn(r, msg);
}

int vmm_irq_routes_route_msi(struct vmm_irq_routes *r,
                             const struct vmdev_msi_msg *msg)
{
    /* Without KVM there is nothing an eventfd could deliver to. */
    if (r->vm_fd < 0)
        return -1;
    pthread_mutex_lock(&r->lock);
    int fd = find_or_learn(r, msg);
    pthread_mutex_unlock(&r->lock);
    return fd;
}

void vmm_irq_routes_send_msi(struct vmm_irq_routes *r,
                             const struct vmdev_msi_msg *msg)
{
    pthread_mutex_lock(&r->lock);
    int fd = find_or_learn(r, msg);
    /* Signalled under the lock: the fd cannot be closed meanwhile. */
    if (fd >= 0) {
        vmdev_eventfd_signal(fd);
        r->sent_irqfd++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->sent_signal_msi++;
    pthread_mutex_unlock(&r->lock);
    struct kvm_msi direct = {
        .address_lo = (uint32_t)msg->address,
        .address_hi = (uint32_t)(msg->address >> 32),
        .data = msg->data,
    };
    if (r->vm_fd >= 0 && ioctl(r->vm_fd, KVM_SIGNAL_MSI, &direct) < 0)
        fprintf(stderr, "vmdev-run: KVM_SIGNAL_MSI: %s\n", strerror(errno));
}

void vmm_irq_routes_counts(struct vmm_irq_routes *r, uint64_t *irqfd,
                           uint64_t *signal_msi, uint64_t *tables_set)
{
    pthread_mutex_lock(&r->lock);
    *irqfd = r->sent_irqfd;
    *signal_msi = r->sent_signal_msi;
    *tables_set = r->tables_set;
    pthread_mutex_unlock(&r->lock);
}
