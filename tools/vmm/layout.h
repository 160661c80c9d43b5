/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's guest physical memory map (x86-64, PC-like).
 *
 *   0x00000500  GDT for the 64-bit boot entry
 *   0x00007000  zero page (struct boot_params)
 *   0x00009000  boot page tables: PML4, PDPT, 4 PDs (identity, 4 GiB, 2 MiB pages)
 *   0x00020000  kernel command line
 *   0x000e0000  ACPI tables (RSDP first, where the legacy scan looks)
 *   0x00100000  the protected-mode kernel
 *   RAM up to 3 GiB; the rest of RAM continues at 4 GiB
 *   0xc0000000  32-bit MMIO hole:
 *                 0xc0000000-0xdfffffff  PCI memory window (root ports'
 *                                        windows, 1 MiB each)
 *                 0xe0000000-0xefffffff  PCI ECAM, buses 0-255
 *                 0xfec00000             IOAPIC
 *                 0xfee00000             local APICs
 *   above RAM, from the next GiB boundary at or past 4 GiB: the 64-bit
 *   PCI window (the root ports' prefetchable windows), 8 GiB
 */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#define GUEST_GDT 0x500ull
#define GUEST_ZERO_PAGE 0x7000ull
#define GUEST_PML4 0x9000ull
#define GUEST_PDPT 0xa000ull
#define GUEST_PD 0xb000ull /* four pages */
#define GUEST_CMDLINE 0x20000ull
#define GUEST_CMDLINE_MAX 0x10000ull
#define GUEST_EBDA 0x9fc00ull
#define GUEST_ACPI 0xe0000ull
#define GUEST_ACPI_END 0x100000ull
#define GUEST_KERNEL 0x100000ull

#define GUEST_LOW_RAM_MAX 0xc0000000ull /* start of the MMIO hole */
#define GUEST_HIGH_RAM 0x100000000ull

#define GUEST_PCI_MMIO 0xc0000000ull
#define GUEST_PCI_MMIO_SIZE 0x20000000ull
#define GUEST_PCI_ECAM 0xe0000000ull
#define GUEST_PCI_ECAM_SIZE 0x10000000ull /* 256 buses */
#define GUEST_PCI_MMIO64_SIZE (8ull << 30)

/* The 64-bit window starts at the first GiB boundary past RAM, and at
 * 4 GiB at least. */
static inline unsigned long long guest_pci_mmio64_base(unsigned long long high_ram_end)
{
    unsigned long long top = high_ram_end > GUEST_HIGH_RAM ? high_ram_end
                                                           : GUEST_HIGH_RAM;
    return (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
}
#define GUEST_IOAPIC 0xfec00000ull
#define GUEST_LAPIC 0xfee00000ull

/* Legacy I/O ports. */
#define PORT_PIC_MASTER 0x20
#define PORT_PIT 0x40
#define PORT_SYSTEM_CONTROL_B 0x61 /* PIT counter 2 gate and OUT */
#define PORT_PIC_SLAVE 0xa0
#define PORT_ELCR 0x4d0
#define PORT_I8042_DATA 0x60
#define PORT_I8042_COMMAND 0x64
#define PORT_RTC 0x70
#define PORT_COM1 0x3f8
#define PORT_ACPI_PM 0x600 /* 16 bytes: PM1a event/control, timer, reset */

/* ISA interrupts (PIC inputs and IOAPIC pins, identity-mapped but for
 * the timer, which is IOAPIC pin 2). */
#define IRQ_PIT 0
#define IRQ_KEYBOARD 1
#define IRQ_COM1 4
#define IRQ_RTC 8
#define IRQ_SCI 9

/*
 * PCI INTx: IOAPIC pins 16-23, level-triggered and active low as _PRT
 * declares them; the pin of a slot's INTA..INTD rotates as on a real
 * board so that neighbouring slots do not share a line.
 */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_GSI_COUNT 8
static inline unsigned pci_intx_gsi(unsigned slot, unsigned pin /* 1-4 */)
{
    return PCI_INTX_GSI_BASE + (slot + pin - 1) % PCI_INTX_GSI_COUNT;
}

#endif
