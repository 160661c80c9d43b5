/* SPDX-License-Identifier: MIT */
/*
 * A PCI Express root port with a native hot-plug slot (PCIe Base 6.0,
 * 6.7 and 7.5.3.9-11): its type 1 header, its slot's registers and
 * events, and the one device behind it.
 *
 * The slot: presence follows a device being plugged; the power
 * controller is the guest's (Slot Control.PCC); the link is up while a
 * device is present and powered. Every change of presence or link, a
 * button press and every Slot Control write (command completed) set an
 * event bit in Slot Status; an enabled event interrupts by MSI on the
 * rising edge of the hot-plug interrupt condition (6.7.3.4), or by INTx
 * while it holds.
 *
 * Locks: the bus's, then the port's (the function's lock, so the guest's
 * config accesses hold it). The child and the link change under both.
 */
#include <errno.h>
#include <stdlib.h>

#include "pci/express.h"
#include "pci/internal.h"
#include "pci/regs.h"
#include "vmdev/log.h"
#include "vmdev/pcie.h"

#define STATE_VERSION 1

/* A PCI Express root port (PCI id 1b36:000c), class PCI-to-PCI bridge. */
#define ROOT_PORT_VENDOR 0x1b36
#define ROOT_PORT_DEVICE 0x000c
#define CLASS_PCI_BRIDGE 0x060400

#define WINDOW_GRANULE (1u << 20) /* bridge windows: 1 MiB (PCI-PCI 3.2.5.8) */

/* MSI capability, 64-bit without per-vector masking (PCI 3.0, 6.8.1). */
#define MSI_CAP_SIZE 14
#define MSI_FLAGS 0x02
#define MSI_ADDRESS_LO 0x04
#define MSI_ADDRESS_HI 0x08
#define MSI_DATA 0x0c
#define MSI_FLAGS_ENABLE 0x0001
#define MSI_FLAGS_64BIT 0x0080

/* Bridge Control: parity and SERR responses, ISA and VGA enables, master
 * abort mode, secondary bus reset (PCI-PCI 1.2, 3.2.5.18). */
#define BRIDGE_CONTROL_WRITABLE 0x007f
/* Secondary Status' error bits, write 1 to clear (3.2.5.7). */
#define SEC_STATUS_ERRORS 0xf900

struct vmdev_pcie_root_port {
    struct vmdev_pci_device function;
    pthread_mutex_t lock; /* the function's lock */
    uint8_t exp; /* the Express capability's offset */
    uint8_t msi; /* the MSI capability's offset */
    struct vmdev_pcie_root_port_config config;
    struct vmdev_ratelimit log_limit;

    /* Under the port's lock (and, for child, also the bus's). */
    struct vmdev_pci_device *child;
    bool interrupt_condition; /* 6.7.3.4, as last evaluated */
    bool unplug_pending;      /* the button was pressed for a removal */
    uint16_t slot_control_seen; /* Slot Control as of the last write */
};

static uint16_t get16(const struct vmdev_pcie_root_port *port, uint32_t reg)
{
    return (uint16_t)vmdev_pci_get_config(&port->function, reg, 2);
}

static void set16(struct vmdev_pcie_root_port *port, uint32_t reg,
                  uint16_t value)
{
    vmdev_pci_set_config(&port->function, reg, value, 2);
}

static uint16_t slot_control(const struct vmdev_pcie_root_port *port)
{
    return get16(port, port->exp + PCI_EXP_SLTCTL);
}

static uint16_t slot_status(const struct vmdev_pcie_root_port *port)
{
    return get16(port, port->exp + PCI_EXP_SLTSTA);
}

static bool powered(const struct vmdev_pcie_root_port *port)
{
    return !(slot_control(port) & PCI_EXP_SLTCTL_PCC);
}

static bool link_active(const struct vmdev_pcie_root_port *port)
{
    return get16(port, port->exp + PCI_EXP_LNKSTA) & PCI_EXP_LNKSTA_DLLLA;
}

/* The hot-plug interrupt condition (6.7.3.4): an event whose enable is
 * set, with Hot-Plug Interrupt Enable. */
static bool interrupt_condition(const struct vmdev_pcie_root_port *port)
{
    uint16_t control = slot_control(port), status = slot_status(port);
    if (!(control & PCI_EXP_SLTCTL_HPIE))
        return false;
    return ((status & PCI_EXP_SLTSTA_ABP) && (control & PCI_EXP_SLTCTL_ABPE)) ||
           ((status & PCI_EXP_SLTSTA_PDC) && (control & PCI_EXP_SLTCTL_PDCE)) ||
           ((status & PCI_EXP_SLTSTA_CC) && (control & PCI_EXP_SLTCTL_CCIE)) ||
           ((status & PCI_EXP_SLTSTA_DLLSC) &&
            (control & PCI_EXP_SLTCTL_DLLSCE));
}

static bool msi_enabled(const struct vmdev_pcie_root_port *port)
{
    return get16(port, port->msi + MSI_FLAGS) & MSI_FLAGS_ENABLE;
}

/* Re-evaluate the condition after any change to the slot's registers or
 * the interrupt's configuration; port lock held. */
static void update_interrupt(struct vmdev_pcie_root_port *port)
{
    bool condition = interrupt_condition(port);
    bool rising = condition && !port->interrupt_condition;
    port->interrupt_condition = condition;
    if (!msi_enabled(port)) {
        vmdev_pci_set_intx(&port->function, condition);
        return;
    }
    vmdev_pci_set_intx(&port->function, false);
    if (rising) {
        struct vmdev_pci_device *f = &port->function;
        struct vmdev_msi_msg msg = {
            .address = vmdev_pci_get_config(f, port->msi + MSI_ADDRESS_LO, 4) |
                       (uint64_t)vmdev_pci_get_config(
                           f, port->msi + MSI_ADDRESS_HI, 4)
                           << 32,
            .data = get16(port, port->msi + MSI_DATA),
        };
        vmdev_msi_send(&port->config.msi, &msg);
    }
}

static void raise_events(struct vmdev_pcie_root_port *port, uint16_t events)
{
    set16(port, port->exp + PCI_EXP_SLTSTA, slot_status(port) | events);
    update_interrupt(port);
}

/* Bring the link up or down to match presence and power, reporting a
 * change (DLLSC); port lock held. */
static void update_link(struct vmdev_pcie_root_port *port)
{
    bool up = port->child && powered(port);
    if (up == link_active(port))
        return;
    uint16_t status = get16(port, port->exp + PCI_EXP_LNKSTA);
    set16(port, port->exp + PCI_EXP_LNKSTA,
          up ? status | PCI_EXP_LNKSTA_DLLLA
             : status & (uint16_t)~PCI_EXP_LNKSTA_DLLLA);
    raise_events(port, PCI_EXP_SLTSTA_DLLSC);
}

static void set_presence(struct vmdev_pcie_root_port *port, bool present)
{
    uint16_t status = slot_status(port);
    set16(port, port->exp + PCI_EXP_SLTSTA,
          present ? status | PCI_EXP_SLTSTA_PDS
                  : status & (uint16_t)~PCI_EXP_SLTSTA_PDS);
}

/* The guest is done with the slot: power off and its indicator off.
 * pciehp turns the indicator off a second after the power, and until then
 * throws away the presence and link events it sees; so, as QEMU does, a
 * slot counts as released only then, and a device plugged after that
 * is heard of. */
static bool released(uint16_t control)
{
    return (control & PCI_EXP_SLTCTL_PCC) &&
           (control & PCI_EXP_SLTCTL_PIC) == PCI_EXP_SLTCTL_PWR_IND_OFF;
}

/* Slot Control was written: the command completes at once; a power
 * change moves the link; releasing an occupied slot hands its device
 * back to the owner. Port lock held (and the bus's). */
static void slot_control_written(struct vmdev_pcie_root_port *port)
{
    uint16_t after = slot_control(port);
    bool powered_off = !released(port->slot_control_seen) && released(after);
    port->slot_control_seen = after;
    update_link(port);
    raise_events(port, PCI_EXP_SLTSTA_CC);
    if (powered_off && port->child) {
        port->unplug_pending = false;
        if (port->config.slot_powered_off)
            port->config.slot_powered_off(port->config.opaque, port);
    }
}

static bool overlaps(uint32_t offset, unsigned size, uint32_t start,
                     uint32_t len)
{
    return offset < start + len && start < offset + size;
}

static void root_port_config_written(struct vmdev_pci_device *pdev,
                                     uint32_t offset, unsigned size)
{
    struct vmdev_pcie_root_port *port = pdev->port;
    if (overlaps(offset, size, port->exp + PCI_EXP_SLTCTL, 2))
        slot_control_written(port);
    else if (overlaps(offset, size, port->exp + PCI_EXP_SLTSTA, 2) ||
             overlaps(offset, size, port->msi, MSI_CAP_SIZE) ||
             overlaps(offset, size, PCI_COMMAND, 2))
        update_interrupt(port);
    /* Bus numbers and windows decide what reaches the child. */
    if (overlaps(offset, size, PCI_COMMAND, 2) ||
        overlaps(offset, size, PCI_PRIMARY_BUS,
                 PCI_PREF_LIMIT_UPPER32 + 4 - PCI_PRIMARY_BUS))
        pci_bus_mark_dirty(pdev->bus);
}

static const struct vmdev_pci_device_ops root_port_ops = {
    .config_written = root_port_config_written,
};

/* The type 1 header's registers and what the guest may write of them,
 * with the windows firmware programs. */
static void init_bridge_header(struct vmdev_pcie_root_port *port)
{
    struct vmdev_pci_device *f = &port->function;
    const struct vmdev_pcie_root_port_config *c = &port->config;
    vmdev_pci_set_config(f, PCI_HEADER_TYPE, PCI_HEADER_TYPE_BRIDGE, 1);
    vmdev_pci_set_wmask(f, PCI_COMMAND,
                        PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
                            PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
                            PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE,
                        2);
    /* Bus numbers: primary, secondary, subordinate. */
    vmdev_pci_set_wmask(f, PCI_PRIMARY_BUS, 0xffffff, 3);
    vmdev_pci_set_config(f, PCI_SECONDARY_BUS, c->secondary_bus, 1);
    vmdev_pci_set_config(f, PCI_SUBORDINATE_BUS, c->secondary_bus, 1);
    /* No I/O window: base and limit read as zero and stay so, which is
     * how software learns it is absent (PCI-PCI 1.2, 3.2.5.6). */
    for (unsigned i = 0; i < 2; i++)
        f->w1cmask[PCI_SEC_STATUS + i] = (uint8_t)(SEC_STATUS_ERRORS >> (8 * i));
    /* Memory window: address bits 31:20 in bits 15:4 of base and limit. */
    vmdev_pci_set_wmask(f, PCI_MEMORY_BASE, 0xfff0fff0, 4);
    /* Prefetchable window, 64-bit (the low nibble says so). */
    vmdev_pci_set_wmask(f, PCI_PREF_MEMORY_BASE, 0xfff0fff0, 4);
    vmdev_pci_set_wmask(f, PCI_PREF_BASE_UPPER32, 0xffffffff, 4);
    vmdev_pci_set_wmask(f, PCI_PREF_LIMIT_UPPER32, 0xffffffff, 4);
    vmdev_pci_set_wmask(f, PCI_BRIDGE_CONTROL, BRIDGE_CONTROL_WRITABLE, 2);

    /* Closed windows have base above limit. */
    uint32_t mem_base = c->mem_size ? c->mem_base : WINDOW_GRANULE;
    uint32_t mem_limit = c->mem_size ? c->mem_base + c->mem_size - 1 : 0;
    vmdev_pci_set_config(f, PCI_MEMORY_BASE, (mem_base >> 16) & 0xfff0, 2);
    vmdev_pci_set_config(f, PCI_MEMORY_LIMIT, (mem_limit >> 16) & 0xfff0, 2);
    uint64_t pref_base = c->pref_size ? c->pref_base : WINDOW_GRANULE;
    uint64_t pref_limit = c->pref_size ? c->pref_base + c->pref_size - 1 : 0;
    vmdev_pci_set_config(f, PCI_PREF_MEMORY_BASE,
                         ((pref_base >> 16) & 0xfff0) | PCI_PREF_RANGE_TYPE_64,
                         2);
    vmdev_pci_set_config(f, PCI_PREF_MEMORY_LIMIT,
                         ((pref_limit >> 16) & 0xfff0) | PCI_PREF_RANGE_TYPE_64,
                         2);
    vmdev_pci_set_config(f, PCI_PREF_BASE_UPPER32, (uint32_t)(pref_base >> 32),
                         4);
    vmdev_pci_set_config(f, PCI_PREF_LIMIT_UPPER32,
                         (uint32_t)(pref_limit >> 32), 4);
}

static uint8_t add_msi_capability(struct vmdev_pci_device *f)
{
    uint8_t msi = vmdev_pci_add_capability(f, PCI_CAP_ID_MSI, MSI_CAP_SIZE);
    if (!msi)
        return 0;
    vmdev_pci_set_config(f, msi + MSI_FLAGS, MSI_FLAGS_64BIT, 2);
    vmdev_pci_set_wmask(f, msi + MSI_FLAGS, MSI_FLAGS_ENABLE, 2);
    vmdev_pci_set_wmask(f, msi + MSI_ADDRESS_LO, 0xfffffffc, 4);
    vmdev_pci_set_wmask(f, msi + MSI_ADDRESS_HI, 0xffffffff, 4);
    vmdev_pci_set_wmask(f, msi + MSI_DATA, 0xffff, 2);
    return msi;
}

static bool window_ok(uint64_t base, uint64_t size, uint64_t max)
{
    return size == 0 || (base % WINDOW_GRANULE == 0 &&
                         size % WINDOW_GRANULE == 0 && base <= max &&
                         size - 1 <= max - base);
}

struct vmdev_pcie_root_port *
vmdev_pcie_root_port_new(const struct vmdev_pcie_root_port_config *config)
{
    if (!window_ok(config->mem_base, config->mem_size, UINT32_MAX) ||
        !window_ok(config->pref_base, config->pref_size, UINT64_MAX)) {
        errno = EINVAL;
        return NULL;
    }
    struct vmdev_pcie_root_port *port = calloc(1, sizeof(*port));
    if (!port)
        return NULL;
    port->config = *config;
    pthread_mutex_init(&port->lock, NULL);
    struct vmdev_pci_device *f = &port->function;
    pci_device_init(f, &(struct vmdev_pci_device_config){
                           .name = config->name,
                           .vendor_id = ROOT_PORT_VENDOR,
                           .device_id = ROOT_PORT_DEVICE,
                           .class_code = CLASS_PCI_BRIDGE,
                           .interrupt_pin = 1,
                           .ops = &root_port_ops,
                           .lock = &port->lock,
                       });
    f->port = port;
    init_bridge_header(port);
    port->exp = pcie_add_express_capability(f, PCI_EXP_TYPE_ROOT_PORT,
                                            config->port_number,
                                            config->physical_slot);
    port->msi = add_msi_capability(f);
    /* An empty slot starts powered off, its indicators off. */
    port->slot_control_seen = PCI_EXP_SLTCTL_PCC | PCI_EXP_SLTCTL_PWR_IND_OFF |
                              PCI_EXP_SLTCTL_ATTN_IND_OFF;
    set16(port, port->exp + PCI_EXP_SLTCTL, port->slot_control_seen);
    return port;
}

void vmdev_pcie_root_port_free(struct vmdev_pcie_root_port *port)
{
    if (!port)
        return;
    pci_device_release(&port->function);
    pthread_mutex_destroy(&port->lock);
    free(port);
}

struct vmdev_pci_device *
vmdev_pcie_root_port_function(struct vmdev_pcie_root_port *port)
{
    return &port->function;
}

int vmdev_pcie_root_port_plug(struct vmdev_pcie_root_port *port,
                              struct vmdev_pci_device *pdev, bool hotplug)
{
    struct vmdev_pci_bus *bus = port->function.bus;
    if (!bus)
        return -ENODEV;
    if (pdev->bus)
        return -EINVAL;
    pci_bus_lock(bus);
    pthread_mutex_lock(&port->lock);
    int ret = -EBUSY;
    /* A hot-plug waits until the guest has released the slot: before
     * that pciehp would throw the presence event away. */
    if (!port->child && (!hotplug || released(slot_control(port)))) {
        pdev->bus = bus;
        pdev->slot = 0;
        pdev->fn = 0;
        pdev->upstream = port;
        port->child = pdev;
        port->unplug_pending = false;
        set_presence(port, true);
        if (hotplug) {
            /* The guest powers the slot when it hears of the card; if it
             * left the slot powered, the link comes up now. The button
             * is pressed too, as QEMU does: a slot with a button has
             * pciehp enable the button's event and not presence's, and
             * the presence change it then finds beside the press cancels
             * the press's 5 s countdown (pciehp_hpc.c, pciehp_ctrl.c). */
            raise_events(port, PCI_EXP_SLTSTA_PDC | PCI_EXP_SLTSTA_ABP);
            update_link(port);
        } else {
            /* Present at power-on: powered, lit and linked, no event. */
            uint16_t control = (uint16_t)((slot_control(port) &
                                           ~(PCI_EXP_SLTCTL_PCC |
                                             PCI_EXP_SLTCTL_PIC)) |
                                          PCI_EXP_SLTCTL_PWR_IND_ON);
            set16(port, port->exp + PCI_EXP_SLTCTL, control);
            port->slot_control_seen = control;
            set16(port, port->exp + PCI_EXP_LNKSTA,
                  get16(port, port->exp + PCI_EXP_LNKSTA) |
                      PCI_EXP_LNKSTA_DLLLA);
        }
        ret = 0;
    }
    pthread_mutex_unlock(&port->lock);
    pci_bus_unlock(bus);
    if (ret == 0)
        pci_bus_mark_dirty(bus);
    return ret;
}

struct vmdev_pci_device *
vmdev_pcie_root_port_device(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    struct vmdev_pci_device *child = port->child;
    pthread_mutex_unlock(&port->lock);
    return child;
}

int vmdev_pcie_root_port_request_unplug(struct vmdev_pcie_root_port *port)
{
    int ret = 0;
    pthread_mutex_lock(&port->lock);
    if (!port->child)
        ret = -ENODEV;
    else if ((slot_control(port) & PCI_EXP_SLTCTL_PIC) ==
             PCI_EXP_SLTCTL_PWR_IND_BLINK)
        ret = -EBUSY; /* counting down, or bringing the slot up */
    else {
        port->unplug_pending = true;
        raise_events(port, PCI_EXP_SLTSTA_ABP);
    }
    pthread_mutex_unlock(&port->lock);
    return ret;
}

bool vmdev_pcie_root_port_vacant(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    bool vacant = !port->child && released(slot_control(port));
    pthread_mutex_unlock(&port->lock);
    return vacant;
}

bool vmdev_pcie_root_port_unplug_pending(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    bool pending = port->unplug_pending;
    pthread_mutex_unlock(&port->lock);
    return pending;
}

bool vmdev_pcie_root_port_powered(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    bool on = powered(port);
    pthread_mutex_unlock(&port->lock);
    return on;
}

/* --- The bus's side (internal.h). --- */

struct vmdev_pci_device *pcie_port_route(struct vmdev_pcie_root_port *port,
                                         unsigned busno, unsigned slot,
                                         unsigned fn)
{
    /* Behind a root port sits device 0 alone (PCIe 7.3.1: a downstream
     * port's link carries one device number). An unpowered card does not
     * answer. */
    if (busno != port->function.config[PCI_SECONDARY_BUS] || slot || fn ||
        !link_active(port))
        return NULL;
    return port->child;
}

struct vmdev_pci_device *pcie_port_child(struct vmdev_pcie_root_port *port)
{
    return port->child;
}

unsigned pcie_port_secondary_bus(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    unsigned busno = port->function.config[PCI_SECONDARY_BUS];
    pthread_mutex_unlock(&port->lock);
    return busno;
}

/* [base, limit] of the memory window, or of the prefetchable one. */
static bool window(const struct vmdev_pcie_root_port *port, bool prefetchable,
                   uint64_t *base, uint64_t *limit)
{
    const struct vmdev_pci_device *f = &port->function;
    if (prefetchable) {
        *base = (uint64_t)(get16(port, PCI_PREF_MEMORY_BASE) & 0xfff0) << 16 |
                (uint64_t)vmdev_pci_get_config(f, PCI_PREF_BASE_UPPER32, 4)
                    << 32;
        *limit = ((uint64_t)(get16(port, PCI_PREF_MEMORY_LIMIT) & 0xfff0)
                      << 16 |
                  (uint64_t)vmdev_pci_get_config(f, PCI_PREF_LIMIT_UPPER32, 4)
                      << 32) |
                 (WINDOW_GRANULE - 1);
    } else {
        *base = (uint64_t)(get16(port, PCI_MEMORY_BASE) & 0xfff0) << 16;
        *limit = ((uint64_t)(get16(port, PCI_MEMORY_LIMIT) & 0xfff0) << 16) |
                 (WINDOW_GRANULE - 1);
    }
    return *base <= *limit;
}

static bool inside(const struct vmdev_pcie_root_port *port, bool prefetchable,
                   uint64_t address, uint64_t size)
{
    uint64_t base, limit;
    return window(port, prefetchable, &base, &limit) && address >= base &&
           address <= limit && size - 1 <= limit - address;
}

bool pcie_port_forwards(struct vmdev_pcie_root_port *port,
                        const struct vmdev_pci_bar *bar, uint64_t address)
{
    pthread_mutex_lock(&port->lock);
    bool forwards = false;
    uint16_t command = get16(port, PCI_COMMAND);
    /* There is no I/O window; memory goes through either window, a
     * prefetchable BAR's too (PCI-PCI 1.2, 4.3). */
    if (bar->type != VMDEV_PCI_BAR_IO && (command & PCI_COMMAND_MEMORY))
        forwards = inside(port, false, address, bar->size) ||
                   (bar->prefetchable && inside(port, true, address, bar->size));
    pthread_mutex_unlock(&port->lock);
    return forwards;
}

void pcie_port_detach(struct vmdev_pcie_root_port *port)
{
    pthread_mutex_lock(&port->lock);
    if (port->child) {
        port->child = NULL;
        port->unplug_pending = false;
        set_presence(port, false);
        raise_events(port, PCI_EXP_SLTSTA_PDC);
        update_link(port);
    }
    pthread_mutex_unlock(&port->lock);
}

void vmdev_pcie_root_port_save(struct vmdev_pcie_root_port *port,
                               struct vmdev_state_writer *w, const char *name)
{
    pthread_mutex_lock(&port->lock);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    vmdev_state_put_u16(w, "slot_status", slot_status(port));
    vmdev_state_put_u16(w, "link_status",
                        get16(port, port->exp + PCI_EXP_LNKSTA));
    vmdev_state_put_u8(w, "interrupt_condition", port->interrupt_condition);
    vmdev_state_put_u8(w, "unplug_pending", port->unplug_pending);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&port->lock);
}

int vmdev_pcie_root_port_restore(struct vmdev_pcie_root_port *port,
                                 const void *data, size_t len,
                                 const char *name)
{
    struct vmdev_state_section s;
    uint16_t status, link;
    uint8_t condition, pending;
    (void)link; /* saved for a reader of the snapshot; derived here */
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    if (vmdev_state_get_u16(&s, "slot_status", &status) ||
        vmdev_state_get_u16(&s, "link_status", &link) ||
        vmdev_state_get_u8(&s, "interrupt_condition", &condition) ||
        vmdev_state_get_u8(&s, "unplug_pending", &pending) || condition > 1 ||
        pending > 1)
        return -EINVAL;
    /* The bus's lock too: the link changes under both. */
    struct vmdev_pci_bus *bus = port->function.bus;
    if (bus)
        pci_bus_lock(bus);
    pthread_mutex_lock(&port->lock);
    /* Presence is the slot's own, from what is plugged now; the events are
     * the snapshot's. The function's config (restored apart) already
     * holds Slot Control. */
    ret = 0;
    if (!!(status & PCI_EXP_SLTSTA_PDS) != !!port->child)
        ret = -EINVAL;
    if (!ret) {
        set16(port, port->exp + PCI_EXP_SLTSTA, status);
        /* The link follows presence and power, whatever was saved. */
        uint16_t linked = get16(port, port->exp + PCI_EXP_LNKSTA);
        linked = (uint16_t)(port->child && powered(port)
                                ? linked | PCI_EXP_LNKSTA_DLLLA
                                : linked & ~PCI_EXP_LNKSTA_DLLLA);
        set16(port, port->exp + PCI_EXP_LNKSTA, linked);
        port->slot_control_seen = slot_control(port);
        port->interrupt_condition = condition;
        port->unplug_pending = pending;
    }
    pthread_mutex_unlock(&port->lock);
    if (bus)
        pci_bus_unlock(bus);
    return ret;
}
