/* SPDX-License-Identifier: MIT */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <linux/kvm.h>

/*
 * KVM's supported CPUID, adjusted for vCPU `index` of `count`: APIC ids,
 * a topology of `count` single-threaded cores in one package (leaves 1,
 * 4, 0xB, 0x1F, 0x80000008, 0x8000001E), and the hypervisor bit.
 * Returns a malloc'd table or NULL after printing why.
 */
struct kvm_cpuid2 *vmm_cpuid_for_vcpu(int kvm_fd, unsigned index,
                                      unsigned count);

#endif
