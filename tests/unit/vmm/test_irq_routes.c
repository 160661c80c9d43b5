/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's interrupt routes (tools/vmm/irq_routes.c) without KVM: what
 * would reach KVM is counted. KVM rebuilds its whole routing table on
 * every KVM_SET_GSI_ROUTING, and Linux rewrites IOAPIC entries often
 * (each entry is two window writes, masks and unmasks), so a write that
 * leaves every route as it was must not cost a table.
 */
#include "irq_routes.h"
#include "test.h"

#define PINS 24

static uint64_t tables_set(struct vmm_irq_routes *r)
{
    uint64_t irqfd, signal_msi, tables;
    vmm_irq_routes_counts(r, &irqfd, &signal_msi, &tables);
    return tables;
}

static void ioapic_routes_are_set_only_when_they_change(void)
{
    struct vmm_irq_routes *r = vmm_irq_routes_new(-1, PINS);
    CHECK(r);
    struct vmdev_msi_msg msgs[PINS] = { 0 };
    msgs[2] = (struct vmdev_msi_msg){ 0xfee00000, 0x30 };
    msgs[4] = (struct vmdev_msi_msg){ 0xfee00000, 0x34 };
    uint32_t valid = 1u << 2 | 1u << 4;
    vmm_irq_routes_set_ioapic(r, msgs, valid);
    CHECK_EQ(tables_set(r), 1);

    /* The same routes again (an entry rewritten as it was, or the half
     * of an entry that does not change the message). */
    vmm_irq_routes_set_ioapic(r, msgs, valid);
    CHECK_EQ(tables_set(r), 1);

    /* A pin without a route (masked) may hold anything. */
    msgs[7] = (struct vmdev_msi_msg){ 0xfee01000, 0x99 };
    vmm_irq_routes_set_ioapic(r, msgs, valid);
    CHECK_EQ(tables_set(r), 1);

    /* A routed pin's vector, its destination, a pin masked, one added:
     * each a new table. */
    msgs[4].data = 0x35;
    vmm_irq_routes_set_ioapic(r, msgs, valid);
    CHECK_EQ(tables_set(r), 2);
    msgs[2].address = 0xfee01000;
    vmm_irq_routes_set_ioapic(r, msgs, valid);
    CHECK_EQ(tables_set(r), 3);
    vmm_irq_routes_set_ioapic(r, msgs, 1u << 2);
    CHECK_EQ(tables_set(r), 4);
    vmm_irq_routes_set_ioapic(r, msgs, 1u << 2 | 1u << 7);
    CHECK_EQ(tables_set(r), 5);
    vmm_irq_routes_set_ioapic(r, msgs, 1u << 2 | 1u << 7);
    CHECK_EQ(tables_set(r), 5);
    vmm_irq_routes_free(r);
}

/* An MSI gets its route (and a table) the first time it is sent; later
 * sends go through its irqfd with no table. */
static void msi_routes_are_learned_once(void)
{
    struct vmm_irq_routes *r = vmm_irq_routes_new(-1, PINS);
    CHECK(r);
    struct vmdev_msi_msg a = { 0xfee00000, 0x41 }, b = { 0xfee00000, 0x42 };
    vmm_irq_routes_send_msi(r, &a);
    vmm_irq_routes_send_msi(r, &a);
    CHECK_EQ(tables_set(r), 1);
    vmm_irq_routes_send_msi(r, &b);
    vmm_irq_routes_send_msi(r, &a);
    CHECK_EQ(tables_set(r), 2);
    uint64_t irqfd, signal_msi, tables;
    vmm_irq_routes_counts(r, &irqfd, &signal_msi, &tables);
    CHECK_EQ(irqfd, 4);
    CHECK_EQ(signal_msi, 0);
    vmm_irq_routes_free(r);
}

/* A device asks for a message's irqfd to write itself: without KVM there
 * is none to give, and asking makes no route. */
static void no_irqfd_without_kvm(void)
{
    struct vmm_irq_routes *r = vmm_irq_routes_new(-1, PINS);
    CHECK(r);
    struct vmdev_msi_msg a = { 0xfee00000, 0x41 };
    CHECK_EQ(vmm_irq_routes_route_msi(r, &a), -1);
    CHECK_EQ(tables_set(r), 0);
    vmm_irq_routes_free(r);
}

TEST_MAIN(TEST(ioapic_routes_are_set_only_when_they_change),
          TEST(msi_routes_are_learned_once), TEST(no_irqfd_without_kvm))
