/* SPDX-License-Identifier: MIT */
/*
 * PCI Express root ports: the bridge header, the buses behind the ports
 * through ECAM, and the hot-plug slot driven the way Linux's pciehp
 * drives it (PCIe Base 6.0, 6.7 and 7.5.3.9-11; pciehp_hpc.c): enable
 * notifications, hear of a card, power the slot, see the link, answer an
 * attention button by powering off, and survive a surprise removal.
 */
#include <errno.h>

#include "test.h"
#include "vmdev/pci.h"
#include "vmdev/pcie.h"
#include "vmdev/state.h"

/* Slot Control and Status bits, as pciehp names them. */
#define SLTCTL_ABPE 0x0001
#define SLTCTL_PDCE 0x0008
#define SLTCTL_CCIE 0x0010
#define SLTCTL_HPIE 0x0020
#define SLTCTL_PIC 0x0300
#define SLTCTL_PWR_IND_ON 0x0100
#define SLTCTL_PWR_IND_OFF 0x0300
#define SLTCTL_PWR_IND_BLINK 0x0200
#define SLTCTL_PCC 0x0400
#define SLTCTL_DLLSCE 0x1000
#define SLTSTA_ABP 0x0001
#define SLTSTA_PDC 0x0008
#define SLTSTA_CC 0x0010
#define SLTSTA_PDS 0x0040
#define SLTSTA_DLLSC 0x0100
#define LNKSTA_DLLLA 0x2000
#define EXP_SLTCAP 0x14
#define EXP_SLTCTL 0x18
#define EXP_SLTSTA 0x1a
#define EXP_LNKSTA 0x12
/* What pcie_enable_notification sets on a slot with a button: not PDCE. */
#define NOTIFICATIONS                                                         \
    (SLTCTL_ABPE | SLTCTL_CCIE | SLTCTL_HPIE | SLTCTL_DLLSCE)

struct owner_log {
    unsigned maps, unmaps;
    uint64_t last_map;
    bool intx[VMDEV_PCI_SLOTS][5];
    unsigned msis;
    struct vmdev_msi_msg last_msi;
    unsigned powered_off;
};

static struct owner_log owner;

static int fake_map(void *opaque, struct vmdev_pci_device *pdev,
                    unsigned index, uint64_t address)
{
    owner.maps++;
    owner.last_map = address;
    return 0;
}

static void fake_unmap(void *opaque, struct vmdev_pci_device *pdev,
                       unsigned index, uint64_t address)
{
    owner.unmaps++;
}

static void fake_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
    owner.intx[slot][pin] = level;
}

static void fake_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    owner.msis++;
    owner.last_msi = *msg;
}

static void slot_powered_off(void *opaque, struct vmdev_pcie_root_port *port)
{
    owner.powered_off++;
}

static const struct vmdev_pci_bus_owner owner_ops = {
    .map_bar = fake_map, .unmap_bar = fake_unmap, .set_intx = fake_intx,
};

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
}

static const struct vmdev_bus_ops bar_ops = { bar_read, bar_write };

#define MEM_WINDOW 0xc0100000u
#define PREF_WINDOW 0x1000000000ull

static struct vmdev_pci_bus *bus;
static struct vmdev_pcie_root_port *port;

/* A bus with a root port at 00:01.0 whose secondary bus is 1, its 1 MiB
 * memory window at MEM_WINDOW and 16 MiB prefetchable one at PREF_WINDOW. */
static void make_port(void)
{
    memset(&owner, 0, sizeof(owner));
    bus = vmdev_pci_bus_new(&owner_ops);
    port = vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
        .name = "port0", .port_number = 1, .physical_slot = 7,
        .secondary_bus = 1, .mem_base = MEM_WINDOW, .mem_size = 1u << 20,
        .pref_base = PREF_WINDOW, .pref_size = 16u << 20,
        .msi = { .send = fake_msi }, .slot_powered_off = slot_powered_off,
    });
    CHECK(bus && port);
    CHECK_EQ(vmdev_pci_bus_add_function(bus, vmdev_pcie_root_port_function(port),
                                        1, 0),
             1);
}

static void free_port(void)
{
    struct vmdev_pci_device *child = vmdev_pcie_root_port_device(port);
    if (child) {
        vmdev_pci_bus_remove(bus, child);
        vmdev_pci_device_free(child);
    }
    vmdev_pci_bus_remove(bus, vmdev_pcie_root_port_function(port));
    vmdev_pcie_root_port_free(port);
    vmdev_pci_bus_free(bus);
}

/* An endpoint with a 16 KiB 64-bit BAR 0 and the Express capability. */
static struct vmdev_pci_device *make_endpoint(void)
{
    struct vmdev_pci_device *d = vmdev_pci_device_new(
        &(struct vmdev_pci_device_config){ .name = "ep", .vendor_id = 0x1af4,
                                           .device_id = 0x1042,
                                           .class_code = 0x010000,
                                           .interrupt_pin = 1 });
    if (!d ||
        vmdev_pci_set_bar(d, 0, VMDEV_PCI_BAR_MEM64, 0x4000, false, &bar_ops,
                          NULL, VMDEV_ACCESS_ANY) ||
        !vmdev_pcie_add_endpoint_capability(d))
        abort();
    return d;
}

static uint64_t ecam(unsigned b, unsigned d, unsigned f, unsigned reg)
{
    return (uint64_t)b << 20 | d << 15 | f << 12 | reg;
}

static uint32_t cfg_read(unsigned b, unsigned d, unsigned f, unsigned reg,
                         unsigned size)
{
    return (uint32_t)vmdev_pci_ecam_ops.read(bus, ecam(b, d, f, reg), size);
}

static void cfg_write(unsigned b, unsigned d, unsigned f, unsigned reg,
                      uint32_t value, unsigned size)
{
    vmdev_pci_ecam_ops.write(bus, ecam(b, d, f, reg), value, size);
}

/* Walk the capability list as pci_find_capability does. */
static unsigned find_cap(unsigned b, unsigned d, unsigned f, unsigned id)
{
    unsigned at = cfg_read(b, d, f, 0x34, 1);
    for (unsigned hops = 0; at && hops < 48; hops++) {
        if (cfg_read(b, d, f, at, 1) == id)
            return at;
        at = cfg_read(b, d, f, at + 1, 1);
    }
    return 0;
}

static unsigned exp_cap; /* the port's Express capability */

static uint16_t slot_status(void)
{
    return (uint16_t)cfg_read(0, 1, 0, exp_cap + EXP_SLTSTA, 2);
}

static uint16_t slot_control(void)
{
    return (uint16_t)cfg_read(0, 1, 0, exp_cap + EXP_SLTCTL, 2);
}

/* What pcie_write_cmd does: change the bits in mask of Slot Control. */
static void write_slot_control(uint16_t value, uint16_t mask)
{
    uint16_t control = (uint16_t)((slot_control() & ~mask) | (value & mask));
    cfg_write(0, 1, 0, exp_cap + EXP_SLTCTL, control, 2);
}

/* pciehp_isr: read the events and write them back to clear them. */
static uint16_t ack_events(void)
{
    uint16_t events = slot_status() & (SLTSTA_ABP | SLTSTA_PDC | SLTSTA_CC |
                                       SLTSTA_DLLSC);
    cfg_write(0, 1, 0, exp_cap + EXP_SLTSTA, events, 2);
    return events;
}

/* pcie_enable_notification with MSI enabled, as portdrv sets it up. */
static void guest_enables_hotplug(void)
{
    exp_cap = find_cap(0, 1, 0, 0x10);
    unsigned msi = find_cap(0, 1, 0, 0x05);
    CHECK(exp_cap && msi);
    cfg_write(0, 1, 0, msi + 4, 0xfee01000, 4);
    cfg_write(0, 1, 0, msi + 8, 0, 4);
    cfg_write(0, 1, 0, msi + 12, 0x4041, 2);
    cfg_write(0, 1, 0, msi + 2, 1, 2);
    ack_events();
    write_slot_control(NOTIFICATIONS, NOTIFICATIONS);
    ack_events(); /* the command completed */
    owner.msis = 0;
}

static void bridge_header_as_probed(void)
{
    make_port();
    CHECK_EQ(cfg_read(0, 1, 0, 0x00, 4), 0x000c1b36);
    CHECK_EQ(cfg_read(0, 1, 0, 0x08, 4) >> 8, 0x060400);
    CHECK_EQ(cfg_read(0, 1, 0, 0x0e, 1), 0x01); /* type 1, single fn */
    CHECK_EQ(cfg_read(0, 1, 0, 0x18, 4) & 0xffffff, 0x010100);
    /* What firmware programmed: windows and bus numbers. */
    CHECK_EQ(cfg_read(0, 1, 0, 0x20, 2), 0xc010);
    CHECK_EQ(cfg_read(0, 1, 0, 0x22, 2), 0xc010);
    CHECK_EQ(cfg_read(0, 1, 0, 0x24, 2), 0x0001); /* 64-bit */
    CHECK_EQ(cfg_read(0, 1, 0, 0x26, 2), 0x00f1);
    CHECK_EQ(cfg_read(0, 1, 0, 0x28, 4), 0x10);
    CHECK_EQ(cfg_read(0, 1, 0, 0x2c, 4), 0x10);
    /* pci_bridge_check_ranges: no I/O window, so 0xe0f0 reads back 0. */
    cfg_write(0, 1, 0, 0x1c, 0xe0f0, 2);
    CHECK_EQ(cfg_read(0, 1, 0, 0x1c, 2), 0);
    /* Express: version 2, root port, slot implemented. */
    exp_cap = find_cap(0, 1, 0, 0x10);
    CHECK(exp_cap != 0);
    CHECK_EQ(cfg_read(0, 1, 0, exp_cap + 2, 2), 0x0142);
    uint32_t sltcap = cfg_read(0, 1, 0, exp_cap + EXP_SLTCAP, 4);
    CHECK_EQ(sltcap & 0x5b, 0x5b); /* ABP PCP AIP PIP HPC */
    CHECK_EQ(sltcap >> 19, 7);     /* physical slot number */
    CHECK(cfg_read(0, 1, 0, exp_cap + 0x0c, 4) & (1u << 20)); /* DLLLARC */
    CHECK(find_cap(0, 1, 0, 0x05) != 0);                  /* MSI */
    /* An empty slot: absent, unpowered, no link; bus 1 is empty. */
    CHECK(!(slot_status() & SLTSTA_PDS));
    CHECK(slot_control() & SLTCTL_PCC);
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0xffffffff);
    free_port();
}

static void multifunction_slots(void)
{
    make_port();
    struct vmdev_pcie_root_port *second =
        vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
            .name = "port1", .secondary_bus = 2 });
    struct vmdev_pcie_root_port *orphan =
        vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
            .name = "port2", .secondary_bus = 3 });
    CHECK(second && orphan);
    /* Function 1 needs a function 0 beside it. */
    CHECK_EQ(vmdev_pci_bus_add_function(
                 bus, vmdev_pcie_root_port_function(orphan), 2, 1),
             -EINVAL);
    CHECK_EQ(vmdev_pci_bus_add_function(
                 bus, vmdev_pcie_root_port_function(second), 1, 1),
             1);
    CHECK_EQ(cfg_read(0, 1, 0, 0x0e, 1), 0x81); /* multi-function now */
    CHECK_EQ(cfg_read(0, 1, 1, 0x19, 1), 2);
    unsigned b, d, f;
    CHECK(vmdev_pci_device_address(vmdev_pcie_root_port_function(second), &b,
                                   &d, &f));
    CHECK(b == 0 && d == 1 && f == 1);
    /* A bad window is refused. */
    errno = 0;
    CHECK(!vmdev_pcie_root_port_new(&(struct vmdev_pcie_root_port_config){
        .name = "bad", .mem_base = 0x1000, .mem_size = 1u << 20 }));
    CHECK_EQ(errno, EINVAL);
    vmdev_pci_bus_remove(bus, vmdev_pcie_root_port_function(second));
    vmdev_pcie_root_port_free(second);
    vmdev_pcie_root_port_free(orphan);
    free_port();
}

/* A device present from power-on: powered, lit and linked, reached at
 * 01:00.0 and nowhere else on bus 1, with no event raised. */
static void cold_plugged_device_is_enumerable(void)
{
    make_port();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    exp_cap = find_cap(0, 1, 0, 0x10);
    CHECK_EQ(slot_status(), SLTSTA_PDS);
    CHECK_EQ(slot_control() & (SLTCTL_PCC | SLTCTL_PIC), SLTCTL_PWR_IND_ON);
    CHECK(cfg_read(0, 1, 0, exp_cap + EXP_LNKSTA, 2) & LNKSTA_DLLLA);
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0x10421af4);
    CHECK_EQ(cfg_read(1, 1, 0, 0, 4), 0xffffffff);
    CHECK_EQ(cfg_read(1, 0, 1, 0, 4), 0xffffffff);
    CHECK_EQ(cfg_read(2, 0, 0, 0, 4), 0xffffffff);
    /* The endpoint's own Express capability says so. */
    unsigned ep_exp = find_cap(1, 0, 0, 0x10);
    CHECK(ep_exp != 0);
    CHECK_EQ(cfg_read(1, 0, 0, ep_exp + 2, 2) & 0xf0, 0); /* endpoint */
    unsigned b, d, f;
    CHECK(vmdev_pci_device_address(ep, &b, &d, &f));
    CHECK(b == 1 && d == 0 && f == 0);
    /* Renumbered by the guest, the device follows its port. */
    cfg_write(0, 1, 0, 0x19, 5, 1);
    cfg_write(0, 1, 0, 0x1a, 5, 1);
    CHECK_EQ(cfg_read(5, 0, 0, 0, 4), 0x10421af4);
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0xffffffff);
    /* A second device does not fit. */
    struct vmdev_pci_device *other = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, other, true), -EBUSY);
    vmdev_pci_device_free(other);
    CHECK_EQ(owner.msis, 0);
    free_port();
}

/* A child's BAR is mapped only while the port forwards it: Command.Memory
 * on the port and the BAR inside a window. */
static void bar_mapped_through_the_window(void)
{
    make_port();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    cfg_write(1, 0, 0, 0x10, MEM_WINDOW + 0x8000, 4);
    cfg_write(1, 0, 0, 0x14, 0, 4);
    cfg_write(1, 0, 0, 0x04, 0x2, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 0); /* the port does not decode memory yet */
    cfg_write(0, 1, 0, 0x04, 0x6, 2);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 1);
    CHECK_EQ(owner.last_map, MEM_WINDOW + 0x8000);
    /* The guest moves the window away: the BAR goes dark. */
    cfg_write(0, 1, 0, 0x20, 0xc0200000u | 0xc020, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.unmaps, 1);
    /* Back in place, and a BAR outside it stays dark. */
    cfg_write(0, 1, 0, 0x20, 0xc0100000u | 0xc010, 4);
    cfg_write(1, 0, 0, 0x10, 0xd0000000u, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 1);
    cfg_write(1, 0, 0, 0x10, MEM_WINDOW, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(owner.maps, 2);
    /* Taken out, its BAR is unmapped. */
    vmdev_pci_bus_remove(bus, ep);
    CHECK_EQ(owner.unmaps, 2);
    vmdev_pci_device_free(ep);
    free_port();
}

/* pciehp's hot-add: presence (with the button, whose event is the one
 * pciehp enables on such a slot), power on, link up, enumerate. */
static void hot_add_as_pciehp_does(void)
{
    make_port();
    guest_enables_hotplug();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, true), 0);
    CHECK_EQ(owner.msis, 1);
    CHECK_EQ(owner.last_msi.address, 0xfee01000);
    CHECK_EQ(owner.last_msi.data, 0x4041);
    CHECK_EQ(slot_status(), SLTSTA_PDS | SLTSTA_PDC | SLTSTA_ABP);
    /* Not powered yet: the card does not answer. */
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0xffffffff);
    CHECK_EQ(ack_events(), SLTSTA_PDC | SLTSTA_ABP);
    /* pciehp_power_on_slot, then the indicator. */
    write_slot_control(0, SLTCTL_PCC);
    CHECK_EQ(owner.msis, 2);
    CHECK_EQ(ack_events(), SLTSTA_CC | SLTSTA_DLLSC);
    CHECK(cfg_read(0, 1, 0, exp_cap + EXP_LNKSTA, 2) & LNKSTA_DLLLA);
    write_slot_control(SLTCTL_PWR_IND_ON, SLTCTL_PIC);
    CHECK_EQ(owner.msis, 3);
    CHECK_EQ(ack_events(), SLTSTA_CC);
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0x10421af4);
    /* While an event is unacknowledged no second message goes out
     * (6.7.3.4: MSI on the condition's rising edge). */
    write_slot_control(0, 0);
    write_slot_control(0, 0);
    CHECK_EQ(owner.msis, 4);
    ack_events();
    CHECK_EQ(owner.powered_off, 0);
    free_port();
}

/* Safe removal: the button, pciehp's power-off, then the owner. */
static void attention_button_then_power_off(void)
{
    make_port();
    guest_enables_hotplug();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    CHECK_EQ(vmdev_pcie_root_port_request_unplug(port), 0);
    CHECK(vmdev_pcie_root_port_unplug_pending(port));
    CHECK_EQ(owner.msis, 1);
    CHECK_EQ(ack_events(), SLTSTA_ABP);
    /* pciehp blinks the power indicator through its countdown: a second
     * request then is refused, as a press would cancel it. */
    write_slot_control(SLTCTL_PWR_IND_BLINK, SLTCTL_PIC);
    ack_events();
    CHECK_EQ(vmdev_pcie_root_port_request_unplug(port), -EBUSY);
    CHECK_EQ(slot_status() & SLTSTA_ABP, 0);
    CHECK_EQ(owner.msis, 2); /* the command completed */
    /* Five seconds later pciehp powers the slot off, and a second after
     * that turns its indicator off: only then is the slot released. */
    write_slot_control(SLTCTL_PCC, SLTCTL_PCC);
    CHECK_EQ(owner.powered_off, 0);
    write_slot_control(SLTCTL_PWR_IND_OFF, SLTCTL_PIC);
    CHECK_EQ(owner.powered_off, 1);
    CHECK(!vmdev_pcie_root_port_unplug_pending(port));
    CHECK(!vmdev_pcie_root_port_powered(port));
    CHECK(!(cfg_read(0, 1, 0, exp_cap + EXP_LNKSTA, 2) & LNKSTA_DLLLA));
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0xffffffff);
    ack_events();
    /* Writing it off again is no new power-off. */
    write_slot_control(SLTCTL_PCC, SLTCTL_PCC);
    CHECK_EQ(owner.powered_off, 1);
    ack_events();
    /* The owner takes the device out: presence drops. */
    vmdev_pci_bus_remove(bus, ep);
    vmdev_pci_device_free(ep);
    CHECK_EQ(slot_status() & (SLTSTA_PDS | SLTSTA_PDC), SLTSTA_PDC);
    CHECK(!vmdev_pcie_root_port_device(port));
    CHECK_EQ(vmdev_pcie_root_port_request_unplug(port), -ENODEV);
    free_port();
}

/* Taken out while powered: presence and link drop, the guest is told. */
static void surprise_removal(void)
{
    make_port();
    guest_enables_hotplug();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    vmdev_pci_bus_remove(bus, ep);
    vmdev_pci_device_free(ep);
    CHECK_EQ(owner.msis, 1);
    CHECK_EQ(slot_status(), SLTSTA_PDC | SLTSTA_DLLSC);
    CHECK(!(cfg_read(0, 1, 0, exp_cap + EXP_LNKSTA, 2) & LNKSTA_DLLLA));
    CHECK_EQ(cfg_read(1, 0, 0, 0, 4), 0xffffffff);
    CHECK_EQ(owner.powered_off, 0);
    /* A new card waits until pciehp has released the slot. */
    ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, true), -EBUSY);
    CHECK(!vmdev_pcie_root_port_vacant(port));
    write_slot_control(SLTCTL_PCC | SLTCTL_PWR_IND_OFF, SLTCTL_PCC | SLTCTL_PIC);
    CHECK(vmdev_pcie_root_port_vacant(port));
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, true), 0);
    CHECK(slot_status() & SLTSTA_PDS);
    free_port();
}

/* Without MSI the port's INTx holds while an enabled event is pending; a
 * child's INTx arrives as the port's slot's. */
static void intx_without_msi(void)
{
    make_port();
    exp_cap = find_cap(0, 1, 0, 0x10);
    write_slot_control(NOTIFICATIONS, NOTIFICATIONS);
    CHECK(owner.intx[1][1]);
    ack_events();
    CHECK(!owner.intx[1][1]);
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    vmdev_pcie_root_port_request_unplug(port);
    CHECK(owner.intx[1][1]);
    ack_events();
    CHECK(!owner.intx[1][1]);
    vmdev_pci_set_intx(ep, true);
    CHECK(owner.intx[1][1]);
    vmdev_pci_set_intx(ep, false);
    CHECK(!owner.intx[1][1]);
    CHECK_EQ(owner.msis, 0);
    free_port();
}

/* The slot's state survives a snapshot into a fresh port. */
static void save_and_restore(void)
{
    make_port();
    guest_enables_hotplug();
    struct vmdev_pci_device *ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    CHECK_EQ(vmdev_pcie_root_port_request_unplug(port), 0);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_pci_device_save(vmdev_pcie_root_port_function(port), &w, "fn");
    vmdev_pcie_root_port_save(port, &w, "slot");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);
    const void *data = w.data;
    size_t len = w.len;
    free_port();

    make_port();
    ep = make_endpoint();
    CHECK_EQ(vmdev_pcie_root_port_plug(port, ep, false), 0);
    CHECK_EQ(vmdev_pci_device_restore(vmdev_pcie_root_port_function(port),
                                      data, len, "fn"),
             0);
    CHECK_EQ(vmdev_pcie_root_port_restore(port, data, len, "slot"), 0);
    exp_cap = find_cap(0, 1, 0, 0x10);
    CHECK_EQ(slot_status(), SLTSTA_PDS | SLTSTA_ABP);
    CHECK_EQ(slot_control() & NOTIFICATIONS, NOTIFICATIONS);
    CHECK(vmdev_pcie_root_port_unplug_pending(port));
    /* Presence must match what is plugged. */
    vmdev_pci_bus_remove(bus, ep);
    vmdev_pci_device_free(ep);
    CHECK_EQ(vmdev_pcie_root_port_restore(port, data, len, "slot"), -EINVAL);
    vmdev_state_writer_release(&w);
    free_port();
}

TEST_MAIN(TEST(bridge_header_as_probed), TEST(multifunction_slots),
          TEST(cold_plugged_device_is_enumerable),
          TEST(bar_mapped_through_the_window), TEST(hot_add_as_pciehp_does),
          TEST(attention_button_then_power_off), TEST(surprise_removal),
          TEST(intx_without_msi), TEST(save_and_restore))
