/* SPDX-License-Identifier: MIT */
/*
 * MSI-X capability, table and pending bits (PCI 3.0, 6.8.2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pci/internal.h"
#include "pci/regs.h"
#include "vmdev/event_loop.h"
#include "vmdev/pci_msix.h"

#define STATE_VERSION 1

/* A vector's route_fd before the sink was asked for its message's (the
 * sink answers an eventfd or -1, none). */
#define ROUTE_UNKNOWN (-2)

/* Capability layout (6.8.2.1-6.8.2.5). */
#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_CAP_LEN 12
#define MSIX_CONTROL_ENABLE 0x8000u
#define MSIX_CONTROL_FUNCTION_MASK 0x4000u
#define MSIX_VECTOR_MASKED 1u

struct msix_entry {
    uint32_t address_lo, address_hi, data, control;
};

struct vmdev_pci_msix {
    struct vmdev_pci_device *pdev;
    uint8_t cap; /* capability offset in config space */
    uint16_t num_vectors;
    struct msix_entry *table;
    uint64_t *pending; /* one bit per vector */
    struct vmdev_msi_sink sink;
    uint64_t delivered; /* messages sent, for metrics and tests */
    /* Guards the table, the pending bits and the two control bits below:
     * a device may notify from a thread that does not hold the PCI
     * function's lock (virtio-pci from a queue's lock). Taken after that
     * lock; nothing is taken under it but the MSI sink's. */
    pthread_mutex_t lock;
    bool enabled;         /* Message Control: MSI-X Enable */
    bool function_masked; /* Message Control: Function Mask */
    /* Per vector, the sink's eventfd for the message it holds (-1: none,
     * ROUTE_UNKNOWN: not asked since it changed). */
    int *route_fd;
    uint64_t routed; /* messages sent by signalling a route_fd */
};

uint32_t vmdev_pci_msix_table_size(uint16_t num_vectors)
{
    return (uint32_t)num_vectors * VMDEV_PCI_MSIX_ENTRY_SIZE;
}

uint32_t vmdev_pci_msix_pba_size(uint16_t num_vectors)
{
    return ((uint32_t)num_vectors + 63) / 64 * 8;
}

struct vmdev_pci_msix *vmdev_pci_msix_new(struct vmdev_pci_device *pdev,
                                          uint16_t num_vectors, unsigned bar,
                                          uint32_t table_offset,
                                          uint32_t pba_offset,
                                          const struct vmdev_msi_sink *sink)
{
    if (num_vectors == 0 || num_vectors > VMDEV_PCI_MSIX_MAX_VECTORS ||
        bar >= VMDEV_PCI_NUM_BARS || table_offset % 8 || pba_offset % 8) {
        errno = EINVAL;
        return NULL;
    }
    /* PCI Local Bus 3.0, 6.8.2: the table and the PBA lie inside the BAR
     * that holds them and must not overlap; a guest write to one must not
     * land in the other, nor past the BAR's end. */
    uint64_t bar_size = pdev->bars[bar].size;
    uint64_t table_end = (uint64_t)table_offset +
                         vmdev_pci_msix_table_size(num_vectors);
    uint64_t pba_end = (uint64_t)pba_offset + vmdev_pci_msix_pba_size(num_vectors);
    if (table_end > bar_size || pba_end > bar_size ||
        (table_offset < pba_end && pba_offset < table_end)) {
        errno = EINVAL;
        return NULL;
    }
    struct vmdev_pci_msix *msix = calloc(1, sizeof(*msix));
    if (!msix)
        return NULL;
    msix->table = calloc(num_vectors, sizeof(*msix->table));
    msix->pending = calloc((num_vectors + 63) / 64, sizeof(uint64_t));
    msix->route_fd = calloc(num_vectors, sizeof(*msix->route_fd));
    uint8_t cap = msix->table && msix->pending && msix->route_fd
                      ? vmdev_pci_add_capability(pdev, PCI_CAP_ID_MSIX,
                                                 MSIX_CAP_LEN)
                      : 0;
    if (!cap) {
        int err = msix->table && msix->pending && msix->route_fd ? EINVAL
                                                                 : ENOMEM;
        vmdev_pci_msix_free(msix);
        errno = err;
        return NULL;
    }
    for (uint16_t i = 0; i < num_vectors; i++) {
        msix->table[i].control = MSIX_VECTOR_MASKED;
        msix->route_fd[i] = ROUTE_UNKNOWN;
    }
    pthread_mutex_init(&msix->lock, NULL);
    msix->pdev = pdev;
    msix->cap = cap;
    msix->num_vectors = num_vectors;
    msix->sink = *sink;
    /* Table Size is N - 1; only Enable and Function Mask are writable. */
    vmdev_pci_set_config(pdev, cap + MSIX_CONTROL, num_vectors - 1u, 2);
    vmdev_pci_set_wmask(pdev, cap + MSIX_CONTROL,
                        MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK, 2);
    vmdev_pci_set_config(pdev, cap + MSIX_TABLE, table_offset | bar, 4);
    vmdev_pci_set_config(pdev, cap + MSIX_PBA, pba_offset | bar, 4);
    return msix;
}

void vmdev_pci_msix_free(struct vmdev_pci_msix *msix)
{
    if (!msix)
        return;
    if (msix->pdev)
        pthread_mutex_destroy(&msix->lock);
    free(msix->table);
    free(msix->pending);
    free(msix->route_fd);
    free(msix);
}

uint8_t vmdev_pci_msix_capability(const struct vmdev_pci_msix *msix)
{
    return msix->cap;
}

uint16_t vmdev_pci_msix_num_vectors(const struct vmdev_pci_msix *msix)
{
    return msix->num_vectors;
}

/* Take Message Control's two bits from config space (the function's
 * lock held, so the bytes are stable); msix->lock held. */
static void refresh_control(struct vmdev_pci_msix *msix)
{
    uint16_t control = (uint16_t)vmdev_pci_get_config(
        msix->pdev, msix->cap + MSIX_CONTROL, 2);
    msix->enabled = control & MSIX_CONTROL_ENABLE;
    msix->function_masked = control & MSIX_CONTROL_FUNCTION_MASK;
}

/* msix->lock held. */
static bool enabled(const struct vmdev_pci_msix *msix)
{
    return msix->table && msix->enabled;
}

struct vmdev_pci_msix_stats
vmdev_pci_msix_stats(const struct vmdev_pci_msix *msix)
{
    struct vmdev_pci_msix_stats stats = { 0, 0 };
    if (!msix->table)
        return stats;
    struct vmdev_pci_msix *locked = (struct vmdev_pci_msix *)msix;
    pthread_mutex_lock(&locked->lock);
    stats = (struct vmdev_pci_msix_stats){ msix->delivered, msix->routed };
    pthread_mutex_unlock(&locked->lock);
    return stats;
}

bool vmdev_pci_msix_enabled(const struct vmdev_pci_msix *msix)
{
    if (!msix->table)
        return false;
    struct vmdev_pci_msix *locked = (struct vmdev_pci_msix *)msix;
    pthread_mutex_lock(&locked->lock);
    bool on = enabled(msix);
    pthread_mutex_unlock(&locked->lock);
    return on;
}

static bool vector_masked(const struct vmdev_pci_msix *msix, uint16_t vector)
{
    return msix->function_masked ||
           (msix->table[vector].control & MSIX_VECTOR_MASKED);
}

static void send(struct vmdev_pci_msix *msix, uint16_t vector)
{
    const struct msix_entry *e = &msix->table[vector];
    struct vmdev_msi_msg msg = {
        .address = (uint64_t)e->address_hi << 32 | e->address_lo,
        .data = e->data,
    };
    msix->delivered++;
    int *fd = &msix->route_fd[vector];
    if (msix->sink.route && *fd == ROUTE_UNKNOWN)
        *fd = msix->sink.route(msix->sink.opaque, &msg);
    if (msix->sink.route && *fd >= 0) {
        /* The vector's own eventfd: no search, no lock of the VMM's. */
        vmdev_eventfd_signal(*fd);
        msix->routed++;
        return;
    }
    vmdev_msi_send(&msix->sink, &msg);
}

static bool pending(const struct vmdev_pci_msix *msix, uint16_t vector)
{
    return msix->pending[vector / 64] >> (vector % 64) & 1;
}

static void set_pending(struct vmdev_pci_msix *msix, uint16_t vector, bool on)
{
    uint64_t bit = UINT64_C(1) << (vector % 64);
    if (on)
        msix->pending[vector / 64] |= bit;
    else
        msix->pending[vector / 64] &= ~bit;
}

bool vmdev_pci_msix_notify(struct vmdev_pci_msix *msix, uint16_t vector)
{
    if (!msix->table || vector >= msix->num_vectors)
        return false;
    pthread_mutex_lock(&msix->lock);
    bool on = enabled(msix);
    /* 6.8.2.9: a masked vector's message is held as a pending bit. */
    if (on && vector_masked(msix, vector))
        set_pending(msix, vector, true);
    else if (on)
        send(msix, vector);
    pthread_mutex_unlock(&msix->lock);
    return on;
}

/* Deliver what became unmasked; msix->lock held. */
static void release_pending(struct vmdev_pci_msix *msix, uint16_t vector)
{
    if (enabled(msix) && pending(msix, vector) &&
        !vector_masked(msix, vector)) {
        set_pending(msix, vector, false);
        send(msix, vector);
    }
}

void vmdev_pci_msix_config_written(struct vmdev_pci_msix *msix, uint32_t offset,
                                   unsigned size)
{
    uint32_t reg = msix->cap + MSIX_CONTROL;
    if (!msix->table || offset >= reg + 2 || offset + size <= reg)
        return;
    pthread_mutex_lock(&msix->lock);
    refresh_control(msix);
    for (uint16_t v = 0; v < msix->num_vectors; v++)
        release_pending(msix, v);
    pthread_mutex_unlock(&msix->lock);
}

static bool access_ok(uint64_t offset, unsigned size, uint64_t limit)
{
    return (size == 4 || size == 8) && offset % size == 0 && offset < limit &&
           size <= limit - offset;
}

static uint32_t *entry_word(struct vmdev_pci_msix *msix, uint64_t offset)
{
    struct msix_entry *e = &msix->table[offset / VMDEV_PCI_MSIX_ENTRY_SIZE];
    switch (offset % VMDEV_PCI_MSIX_ENTRY_SIZE) {
    case 0:
        return &e->address_lo;
    case 4:
        return &e->address_hi;
    case 8:
        return &e->data;
    default:
        return &e->control;
    }
}

uint64_t vmdev_pci_msix_table_read(struct vmdev_pci_msix *msix, uint64_t offset,
                                   unsigned size)
{
    if (!access_ok(offset, size, vmdev_pci_msix_table_size(msix->num_vectors)))
        return 0;
    pthread_mutex_lock(&msix->lock);
    uint64_t value = *entry_word(msix, offset);
    if (size == 8)
        value |= (uint64_t)*entry_word(msix, offset + 4) << 32;
    pthread_mutex_unlock(&msix->lock);
    return value;
}

static void write_word(struct vmdev_pci_msix *msix, uint64_t offset,
                       uint32_t value)
{
    uint16_t vector = (uint16_t)(offset / VMDEV_PCI_MSIX_ENTRY_SIZE);
    if (offset % VMDEV_PCI_MSIX_ENTRY_SIZE == 12) {
        /* 6.8.2.9: only the Mask bit of Vector Control is defined. */
        msix->table[vector].control = value & MSIX_VECTOR_MASKED;
        release_pending(msix, vector);
        return;
    }
    *entry_word(msix, offset) = value;
    /* A new address or data: ask the sink for its eventfd again. */
    msix->route_fd[vector] = ROUTE_UNKNOWN;
}

void vmdev_pci_msix_table_write(struct vmdev_pci_msix *msix, uint64_t offset,
                                uint64_t value, unsigned size)
{
    if (!access_ok(offset, size, vmdev_pci_msix_table_size(msix->num_vectors)))
        return;
    pthread_mutex_lock(&msix->lock);
    write_word(msix, offset, (uint32_t)value);
    if (size == 8)
        write_word(msix, offset + 4, (uint32_t)(value >> 32));
    pthread_mutex_unlock(&msix->lock);
}

uint64_t vmdev_pci_msix_pba_read(struct vmdev_pci_msix *msix, uint64_t offset,
                                 unsigned size)
{
    if (!access_ok(offset, size, vmdev_pci_msix_pba_size(msix->num_vectors)))
        return 0;
    pthread_mutex_lock(&msix->lock);
    uint64_t qword = msix->pending[offset / 8];
    pthread_mutex_unlock(&msix->lock);
    return size == 8 ? qword : (uint32_t)(qword >> (8 * (offset % 8)));
}

void vmdev_pci_msix_save(const struct vmdev_pci_msix *msix,
                         struct vmdev_state_writer *w, const char *name)
{
    struct vmdev_pci_msix *locked = (struct vmdev_pci_msix *)msix;
    pthread_mutex_lock(&locked->lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u16(w, "vectors", msix->num_vectors);
    vmdev_state_put_bytes(w, "table", msix->table,
                          (size_t)msix->num_vectors * sizeof(*msix->table));
    vmdev_state_put_bytes(w, "pending", msix->pending,
                          vmdev_pci_msix_pba_size(msix->num_vectors));
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&locked->lock);
}

int vmdev_pci_msix_restore(struct vmdev_pci_msix *msix, const void *data, size_t len,
                           const char *name)
{
    struct vmdev_state_section s;
    uint16_t vectors;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    if (vmdev_state_get_u16(&s, "vectors", &vectors) ||
        vectors != msix->num_vectors)
        return -EINVAL;
    size_t table_len = (size_t)vectors * sizeof(*msix->table);
    size_t pba_len = vmdev_pci_msix_pba_size(vectors);
    struct msix_entry *table = malloc(table_len);
    uint64_t *pend = malloc(pba_len);
    if (!table || !pend ||
        vmdev_state_get_bytes(&s, "table", table, table_len) ||
        vmdev_state_get_bytes(&s, "pending", pend, pba_len)) {
        free(table);
        free(pend);
        return -EINVAL;
    }
    for (uint16_t v = 0; v < vectors; v++)
        table[v].control &= MSIX_VECTOR_MASKED;
    /* Bits past the last vector stay clear. */
    if (vectors % 64)
        pend[vectors / 64] &= (UINT64_C(1) << (vectors % 64)) - 1;
    pthread_mutex_lock(&msix->lock);
    memcpy(msix->table, table, table_len);
    memcpy(msix->pending, pend, pba_len);
    for (uint16_t v = 0; v < vectors; v++)
        msix->route_fd[v] = ROUTE_UNKNOWN;
    /* The function's config space was restored first. */
    refresh_control(msix);
    pthread_mutex_unlock(&msix->lock);
    free(table);
    free(pend);
    return 0;
}
