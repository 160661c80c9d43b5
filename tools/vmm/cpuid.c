/* SPDX-License-Identifier: MIT */
#include "cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MAX_ENTRIES 256

/* Bits needed to number `count` cores. */
static unsigned order_of(unsigned count)
{
    unsigned bits = 0;
    while ((1u << bits) < count)
        bits++;
    return bits;
}

struct kvm_cpuid2 *vmm_cpuid_for_vcpu(int kvm_fd, unsigned index,
                                      unsigned count)
{
    struct kvm_cpuid2 *cpuid =
        calloc(1, sizeof(*cpuid) + MAX_ENTRIES * sizeof(cpuid->entries[0]));
    if (!cpuid)
        return NULL;
    cpuid->nent = MAX_ENTRIES;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        fprintf(stderr, "vmdev-run: KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
        free(cpuid);
        return NULL;
    }
    unsigned core_bits = order_of(count);
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 1:
            /* APIC id, logical processors per package, HTT when > 1. */
            e->ebx = (e->ebx & 0x0000ffff) | index << 24 | (count & 0xff) << 16;
            if (count > 1)
                e->edx |= 1u << 28;
            e->ecx |= 1u << 31; /* running under a hypervisor */
            break;
        case 4:
            /* Cores per package - 1 (Intel deterministic cache leaf). */
            e->eax = (e->eax & 0x03ffffff) | (count - 1) << 26;
            break;
        case 0xb:
        case 0x1f:
            /* Level 0: SMT (one thread per core); level 1: cores. */
            if (e->index == 0) {
                e->eax = 0;
                e->ebx = 1;
                e->ecx = 1u << 8;
            } else if (e->index == 1) {
                e->eax = core_bits;
                e->ebx = count;
                e->ecx = 1 | 2u << 8;
            } else {
                e->eax = e->ebx = 0;
                e->ecx = e->index;
            }
            e->edx = index;
            break;
        case 0x80000008:
            /* AMD: cores per package - 1 and the APIC-id bits for cores. */
            e->ecx = (e->ecx & ~0xf0ffu) | (count - 1) | core_bits << 12;
            break;
        case 0x8000001e:
            e->eax = index;      /* extended APIC id */
            e->ebx = index;      /* core id; one thread per core */
            e->ecx = 0;          /* node 0, one node per package */
            break;
        default:
            break;
        }
    }
    return cpuid;
}
