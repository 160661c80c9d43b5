/* SPDX-License-Identifier: MIT */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stdint.h>

#include "vmdev/guest_memory.h"

/* Write the ACPI tables for `cpus` processors at GUEST_ACPI, the 64-bit
 * PCI window placed past high_ram_end (layout.h); returns 0 and the
 * RSDP's guest address, or -1. */
int vmm_build_acpi(const struct vmdev_guest_memory *mem, unsigned cpus,
                   uint64_t high_ram_end, uint64_t *rsdp_gpa);

#endif
