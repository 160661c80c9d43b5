/* SPDX-License-Identifier: MIT */
/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdint.h>

#include "vmdev/guest_memory.h"

struct vmm_boot_params {
    const char *kernel_path;
    const char *initramfs_path; /* or NULL */
    const char *cmdline;
    uint64_t low_ram_end;  /* RAM is [0, low_ram_end) ... */
    uint64_t high_ram_end; /* ... and [4 GiB, high_ram_end), or 0 */
    uint64_t rsdp;         /* guest address of the ACPI RSDP */
};

/* Where the boot vCPU starts: rip and rsi (the zero page). */
struct vmm_boot_entry {
    uint64_t rip;
    uint64_t zero_page;
};

/*
 * Load the bzImage, the initramfs, the command line, the zero page (with
 * the e820 map) and the identity-mapped boot page tables and GDT into
 * guest memory. Returns 0, or -1 after printing why.
 */
int vmm_load_linux(const struct vmdev_guest_memory *mem,
                   const struct vmm_boot_params *params,
                   struct vmm_boot_entry *entry);

#endif
