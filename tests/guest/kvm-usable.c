/* kvm-usable: exit 0 when this machine's /dev/kvm can run a guest, so the
 * guest tests may run vmdev-run directly; otherwise print why and exit 1 (the
 * harness then runs them inside a QEMU guest with nested KVM).
 *
 * Opening /dev/kvm and KVM_CREATE_VM are not enough: some nested setups (for
 * example PVM, a paging-based KVM for guests without hardware virtualization)
 * accept both but cannot run an ordinary guest. So this runs a real-mode
 * guest of three instructions and checks the port write arrives.
 *
 * PVM passes that probe yet is no use here: it runs unmodified guests by
 * emulation, and QEMU -accel kvm on it got a stock Debian kernel no further
 * than its decompressor in five minutes. A loaded kvm_pvm module counts as
 * no usable KVM. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE_PORT 0x10
#define PROBE_VALUE 0x42

static int fail(const char *what)
{
    printf("%s: %s\n", what, strerror(errno));
    return 1;
}

int main(void)
{
    /* mov al, 0x42; out 0x10, al; hlt */
    static const uint8_t code[] = { 0xb0, PROBE_VALUE, 0xe6, PROBE_PORT, 0xf4 };

    if (access("/sys/module/kvm_pvm", F_OK) == 0) {
        printf("/dev/kvm is PVM (kvm_pvm), too slow for stock kernels\n");
        return 1;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail("open /dev/kvm");
    int version = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        printf("KVM_GET_API_VERSION: %d, want %d\n", version, KVM_API_VERSION);
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return fail("KVM_CREATE_VM");

    size_t mem_size = 0x1000;
    uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap");
    memcpy(mem, code, sizeof(code));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
        .userspace_addr = (uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return fail("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    struct kvm_regs regs = { .rip = 0, .rflags = 0x2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");

    alarm(5); /* a hung KVM_RUN ends the probe (SIGALRM), which counts as no */
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        return fail("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != PROBE_PORT ||
        run->io.direction != KVM_EXIT_IO_OUT ||
        ((uint8_t *)run)[run->io.data_offset] != PROBE_VALUE) {
        printf("KVM_RUN: exit reason %u, not the probe's port write\n",
               run->exit_reason);
        return 1;
    }
    return 0;
}
