/* SPDX-License-Identifier: MIT */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpuid.h"
#include "layout.h"
#include "options.h"
#include "sandbox.h"
#include "vmdev/event_loop.h"

#define KICK_SIGNAL SIGUSR1
#define IOAPIC_PINS 24

/* LAPIC register offsets and delivery modes for LINT0/LINT1. */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int fail(const char *what)
{
    fprintf(stderr, "vmdev-run: %s: %s\n", what, strerror(errno));
    return -1;
}

static int add_ram_region(struct vmm_vm *vm, unsigned slot, uint64_t gpa,
                          uint64_t size, uint64_t offset, int fd)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)((uint8_t *)vm->ram + offset),
    };
    if (vm->vm_fd >= 0 &&
        ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");
    struct vmdev_guest_memory_region r = {
        .gpa = gpa, .size = size, .host = (uint8_t *)vm->ram + offset,
        .fd = fd, .fd_offset = offset,
    };
    if (vmdev_guest_memory_add_region(vm->mem, &r)) {
        fprintf(stderr, "vmdev-run: cannot add guest RAM at 0x%llx\n",
                (unsigned long long)gpa);
        return -1;
    }
    return 0;
}

/* RAM in a memfd (shareable with vhost-user back ends later): below the
 * 32-bit MMIO hole, and the remainder above 4 GiB. */
static int setup_memory(struct vmm_vm *vm, uint64_t size)
{
    int fd = memfd_create("vmdev-guest-ram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        return fail("guest RAM");
    vm->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                   fd, 0);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        return fail("mmap guest RAM");
    }
    vm->ram_size = size;
    madvise(vm->ram, size, MADV_MERGEABLE);
    vm->mem = vmdev_guest_memory_new();
    if (!vm->mem)
        return -1;
    uint64_t low = size < GUEST_LOW_RAM_MAX ? size : GUEST_LOW_RAM_MAX;
    vm->low_ram_end = low;
    if (add_ram_region(vm, 0, 0, low, 0, fd))
        return -1;
    if (size > low) {
        vm->high_ram_end = GUEST_HIGH_RAM + (size - low);
        if (add_ram_region(vm, 1, GUEST_HIGH_RAM, size - low, low, fd))
            return -1;
    }
    return 0;
}

static int enable_split_irqchip(struct vmm_vm *vm)
{
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) <= 0) {
        fprintf(stderr, "vmdev-run: this KVM lacks KVM_CAP_SPLIT_IRQCHIP\n");
        return -1;
    }
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_SPLIT_IRQCHIP,
        .args = { IOAPIC_PINS },
    };
    if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
        return fail("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)");
    return 0;
}

static int setup_lapic(struct vmm_vcpu *vcpu)
{
    struct kvm_lapic_state lapic;
    if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
        return fail("KVM_GET_LAPIC");
    /* Virtual wire: LINT0 takes the PIC's ExtINT, LINT1 is NMI. */
    uint32_t lvt0 = APIC_MODE_EXTINT << 8, lvt1 = APIC_MODE_NMI << 8;
    memcpy(&lapic.regs[APIC_LVT0], &lvt0, 4);
    memcpy(&lapic.regs[APIC_LVT1], &lvt1, 4);
    if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
        return fail("KVM_SET_LAPIC");
    return 0;
}

static int create_vcpu(struct vmm_vm *vm, unsigned index)
{
    struct vmm_vcpu *vcpu = &vm->vcpus[index];
    vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
    if (vcpu->fd < 0)
        return fail("KVM_CREATE_VCPU");
    vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        return fail("mmap kvm_run");
    }
    struct kvm_cpuid2 *cpuid = vmm_cpuid_for_vcpu(vm->kvm_fd, index, vm->cpus);
    if (!cpuid)
        return -1;
    int ret = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    if (ret < 0)
        return fail("KVM_SET_CPUID2");
    return setup_lapic(vcpu);
}

/* What a VM has with or without KVM: RAM, the buses, the exit fd, the
 * interrupt routes (vm_fd set first) and the vCPU slots. */
static int add_vm_state(struct vmm_vm *vm, uint64_t memory)
{
    if (setup_memory(vm, memory))
        return -1;
    vm->pio = vmdev_bus_new("pio", 0xffff);
    vm->mmio = vmdev_bus_new("mmio", UINT64_MAX);
    vm->exit_fd = vmdev_eventfd_new();
    vm->vcpus = calloc(vm->cpus, sizeof(*vm->vcpus));
    vm->routes = vmm_irq_routes_new(vm->vm_fd, IOAPIC_PINS);
    if (!vm->pio || !vm->mmio || vm->exit_fd < 0 || !vm->vcpus || !vm->routes)
        return -1;
    for (unsigned i = 0; i < vm->cpus; i++)
        vm->vcpus[i] = (struct vmm_vcpu){ .vm = vm, .index = i, .fd = -1 };
    return 0;
}

static struct vmm_vm *new_vm(unsigned cpus)
{
    struct vmm_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return NULL;
    vm->kvm_fd = vm->vm_fd = vm->exit_fd = -1;
    vm->cpus = cpus;
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    return vm;
}

struct vmm_vm *vmm_vm_create(uint64_t memory, unsigned cpus)
{
    struct vmm_vm *vm = new_vm(cpus);
    if (!vm)
        return NULL;
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        fail("/dev/kvm");
        goto error;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        fail("KVM_CREATE_VM");
        goto error;
    }
    int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) {
        fail("KVM_GET_VCPU_MMAP_SIZE");
        goto error;
    }
    vm->run_size = (size_t)run_size;
    /* Below the 4 GiB boundary and out of the way of the MMIO devices,
     * as QEMU places them. */
    uint64_t identity_map = 0xfeffc000;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0 ||
        ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfeffd000ul) < 0) {
        fail("KVM_SET_TSS_ADDR");
        goto error;
    }
    if (enable_split_irqchip(vm) || add_vm_state(vm, memory))
        goto error;
    for (unsigned i = 0; i < cpus; i++)
        if (create_vcpu(vm, i))
            goto error;
    return vm;
error:
    vmm_vm_destroy(vm);
    return NULL;
}

struct vmm_vm *vmm_vm_create_without_kvm(uint64_t memory, unsigned cpus)
{
    struct vmm_vm *vm = new_vm(cpus);
    if (!vm)
        return NULL;
    /* The size KVM gives on x86 (KVM_GET_VCPU_MMAP_SIZE): the run
     * structure and its PIO data page. */
    vm->run_size = 2 * (size_t)sysconf(_SC_PAGESIZE);
    if (add_vm_state(vm, memory))
        goto error;
    for (unsigned i = 0; i < cpus; i++) {
        void *run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (run == MAP_FAILED)
            goto error;
        vm->vcpus[i].run = run;
    }
    return vm;
error:
    vmm_vm_destroy(vm);
    return NULL;
}

void vmm_vm_destroy(struct vmm_vm *vm)
{
    if (!vm)
        return;
    for (unsigned i = 0; vm->vcpus && i < vm->cpus; i++) {
        if (vm->vcpus[i].run)
            munmap(vm->vcpus[i].run, vm->run_size);
        if (vm->vcpus[i].fd >= 0)
            close(vm->vcpus[i].fd);
    }
    free(vm->vcpus);
    vmm_irq_routes_free(vm->routes);
    vmdev_bus_free(vm->pio);
    vmdev_bus_free(vm->mmio);
    vmdev_guest_memory_free(vm->mem);
    if (vm->ram)
        munmap(vm->ram, vm->ram_size);
    if (vm->exit_fd >= 0)
        close(vm->exit_fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    pthread_cond_destroy(&vm->pause_cond);
    pthread_mutex_destroy(&vm->pause_lock);
    free(vm);
}

/* Long mode with the identity map boot.c wrote; the 64-bit boot protocol
 * entry state (boot.rst, "64-bit BOOT PROTOCOL"). */
static int setup_boot_vcpu(struct vmm_vcpu *vcpu, const struct vmm_boot_entry *entry)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
        .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = code;
    data.selector = 0x18;
    data.type = 0x3;
    data.db = 1;
    data.l = 0;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = GUEST_GDT;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.cr3 = GUEST_PML4;
    sregs.cr4 = 1u << 5;                         /* PAE */
    sregs.cr0 = 1u << 0 | 1u << 4 | 1u << 31;    /* PE, ET, PG */
    sregs.efer = 1u << 8 | 1u << 10;             /* LME, LMA */
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");

    struct kvm_regs regs = {
        .rip = entry->rip, .rsi = entry->zero_page, .rflags = 0x2,
    };
    if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");
    struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
    if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
        return fail("KVM_SET_FPU");
    return 0;
}

static void dispatch_io(struct vmm_vm *vm, struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        uint64_t value = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&value, data, size);
            vmdev_bus_write(vm->pio, run->io.port, size, value);
            if (vm->after_write)
                vm->after_write(vm->after_write_opaque);
        } else {
            vmdev_bus_read(vm->pio, run->io.port, size, &value);
            memcpy(data, &value, size);
        }
    }
}

static void dispatch_mmio(struct vmm_vm *vm, struct kvm_run *run)
{
    unsigned size = run->mmio.len;
    uint64_t value = 0;
    if (size > sizeof(value))
        return;
    if (run->mmio.is_write) {
        memcpy(&value, run->mmio.data, size);
        vmdev_bus_write(vm->mmio, run->mmio.phys_addr, size, value);
        if (vm->after_write)
            vm->after_write(vm->after_write_opaque);
    } else {
        vmdev_bus_read(vm->mmio, run->mmio.phys_addr, size, &value);
        memcpy(run->mmio.data, &value, size);
    }
}

/* Where the vCPU stands: what a triple fault (shut_down) leaves behind
 * for the bug report, and where a guest stopped from outside was. */
static void dump_vcpu(struct vmm_vcpu *vcpu, bool shut_down)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
        ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return;
    fprintf(stderr,
            "vmdev-run: vCPU %u: rip=0x%llx rsp=0x%llx rflags=0x%llx cr0=0x%llx "
            "cr2=0x%llx cr3=0x%llx cr4=0x%llx idt=0x%llx/0x%x\n",
            vcpu->index, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
            (unsigned long long)regs.rflags, (unsigned long long)sregs.cr0,
            (unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3,
            (unsigned long long)sregs.cr4, (unsigned long long)sregs.idt.base,
            sregs.idt.limit);
    /* KVM on AMD (svm.c, shutdown_interception) INITs a vCPU that shut
     * down before it reports the exit: the faulting state is gone. */
    if (shut_down && regs.rip == 0xfff0 && sregs.cs.base == 0xffff0000)
        fprintf(stderr, "vmdev-run: vCPU %u: (that is the INIT state: KVM "
                        "resets a vCPU that shut down on AMD, so where it "
                        "faulted is lost)\n", vcpu->index);
}

/* One more exit of `kind`: the vCPU's thread alone writes, the API's
 * stats read as it runs. */
static void count_exit(struct vmm_vcpu *vcpu, enum vmm_exit_kind kind)
{
    __atomic_store_n(&vcpu->exits[kind],
                     __atomic_load_n(&vcpu->exits[kind], __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
}

bool vmm_vcpu_handle_exit(struct vmm_vcpu *vcpu)
{
    struct vmm_vm *vm = vcpu->vm;
    struct kvm_run *run = vcpu->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        count_exit(vcpu, VMM_EXITS_PIO);
        dispatch_io(vm, run);
        return true;
    case KVM_EXIT_MMIO:
        count_exit(vcpu, VMM_EXITS_MMIO);
        dispatch_mmio(vm, run);
        return true;
    case KVM_EXIT_IOAPIC_EOI:
        count_exit(vcpu, VMM_EXITS_IOAPIC_EOI);
        if (vm->eoi)
            vm->eoi(vm->eoi_opaque, run->eoi.vector);
        return true;
    case KVM_EXIT_SHUTDOWN:
        count_exit(vcpu, VMM_EXITS_OTHER);
        fprintf(stderr, "vmdev-run: vCPU %u: triple fault\n", vcpu->index);
        dump_vcpu(vcpu, true);
        vmm_vm_request_exit(vm, VMM_EXIT_TRIPLE_FAULT);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        count_exit(vcpu, VMM_EXITS_OTHER);
        vmm_vm_request_exit(vm, run->system_event.type == KVM_SYSTEM_EVENT_RESET
                                    ? VMM_EXIT_REBOOT : VMM_EXIT_POWEROFF);
        return false;
    case KVM_EXIT_HLT:
        count_exit(vcpu, VMM_EXITS_HLT);
        return true;
    case KVM_EXIT_INTR:
        count_exit(vcpu, VMM_EXITS_SIGNAL);
        return true;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        count_exit(vcpu, VMM_EXITS_IRQ_WINDOW);
        return true;
    default:
        count_exit(vcpu, VMM_EXITS_OTHER);
        fprintf(stderr, "vmdev-run: vCPU %u: unexpected exit %u (hardware reason 0x%llx)\n",
                vcpu->index, run->exit_reason,
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vmm_vm_request_exit(vm, VMM_EXIT_ERROR);
        return false;
    }
}

/*
 * The PIC's interrupt, on vCPU 0 before each KVM_RUN: inject it when KVM
 * says the guest can take one now, otherwise ask for an exit as soon as
 * it can (KVM_EXIT_IRQ_WINDOW_OPEN).
 */
static void inject_extint(struct vmm_vcpu *vcpu)
{
    struct vmm_vm *vm = vcpu->vm;
    struct kvm_run *run = vcpu->run;
    bool pending = vm->extint_ack && atomic_load(&vm->extint);
    if (pending && run->ready_for_interrupt_injection) {
        struct kvm_interrupt irq = { .irq = vm->extint_ack(vm->extint_opaque) };
        if (ioctl(vcpu->fd, KVM_INTERRUPT, &irq) < 0)
            fprintf(stderr, "vmdev-run: KVM_INTERRUPT: %s\n", strerror(errno));
        pending = atomic_load(&vm->extint);
    }
    run->request_interrupt_window = pending;
}

/*
 * A vCPU thread's calls: KVM_RUN and what serves its exits. Port and MMIO
 * exits run device code (vmm_device_syscalls): a notify register written
 * without an ioeventfd serves the queue here, a BAR moved by a config
 * write re-registers its ioeventfds, an interrupt may learn a new route.
 * A poweroff or fault stops the others (tgkill); a dump reads registers.
 */
static const int vcpu_syscalls[] = { SCMP_SYS(ioctl), SCMP_SYS(tgkill) };
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN,           KVM_INTERRUPT,    KVM_GET_REGS,   KVM_GET_SREGS,
    KVM_GET_LAPIC,     KVM_IOEVENTFD,    KVM_IRQFD,      KVM_SET_GSI_ROUTING,
    KVM_SIGNAL_MSI,
};

/* Wait out a pause, counted among the parked. */
static void park(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->parked++;
    pthread_cond_broadcast(&vm->pause_cond);
    while (atomic_load(&vm->paused) && !atomic_load(&vm->exiting))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    vm->parked--;
    pthread_mutex_unlock(&vm->pause_lock);
}

/* Out of KVM_RUN now, or at its next entry (immediate_exit). */
static void kick_vcpus(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < vm->cpus; i++) {
        struct vmm_vcpu *vcpu = &vm->vcpus[i];
        __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (vcpu->started && !pthread_equal(vcpu->thread, pthread_self()))
            pthread_kill(vcpu->thread, KICK_SIGNAL);
    }
}

void vmm_vm_pause(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    atomic_store(&vm->paused, true);
    kick_vcpus(vm);
    unsigned started = 0;
    for (unsigned i = 0; i < vm->cpus; i++)
        started += vm->vcpus[i].started;
    while (vm->parked < started && !atomic_load(&vm->exiting))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    pthread_mutex_unlock(&vm->pause_lock);
}

void vmm_vm_resume(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    atomic_store(&vm->paused, false);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *opaque)
{
    struct vmm_vcpu *vcpu = opaque;
    struct vmm_vm *vm = vcpu->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    const struct vmm_syscall_list lists[] = {
        VMM_SYSCALL_LIST(vcpu_syscalls, vcpu_ioctls), vmm_device_syscalls,
    };
    if (vmm_sandbox_enter(name, lists, 2)) {
        vmm_vm_request_exit(vm, VMM_EXIT_ERROR);
        return NULL;
    }
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

    while (!atomic_load(&vm->exiting)) {
        if (atomic_load(&vm->paused))
            park(vm);
        if (vcpu->index == 0)
            inject_extint(vcpu);
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                count_exit(vcpu, VMM_EXITS_SIGNAL);
                /* A kick: an exit request (seen at the loop's top) or
                 * an ExtINT to inject. */
                __atomic_store_n(&vcpu->run->immediate_exit, 0,
                                 __ATOMIC_SEQ_CST);
                continue;
            }
            fprintf(stderr, "vmdev-run: vCPU %u: KVM_RUN: %s\n", vcpu->index,
                    strerror(errno));
            vmm_vm_request_exit(vm, VMM_EXIT_ERROR);
            break;
        }
        if (!vmm_vcpu_handle_exit(vcpu))
            break;
    }
    return NULL;
}

static void ignore_kick(int sig)
{
    (void)sig;
}

int vmm_vm_start(struct vmm_vm *vm, const struct vmm_boot_entry *entry)
{
    if (setup_boot_vcpu(&vm->vcpus[0], entry))
        return -1;
    /* The kick signal interrupts KVM_RUN; vCPU threads unblock it, all
     * other threads keep it blocked. */
    struct sigaction sa = { .sa_handler = ignore_kick };
    sigaction(KICK_SIGNAL, &sa, NULL);
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &kick, NULL);
    for (unsigned i = 0; i < vm->cpus; i++) {
        int err = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread,
                                 &vm->vcpus[i]);
        if (err) {
            errno = err;
            return fail("vCPU thread");
        }
        vm->vcpus[i].started = true;
    }
    return 0;
}

void vmm_vm_request_exit(struct vmm_vm *vm, int status)
{
    if (atomic_exchange(&vm->exiting, true))
        return;
    atomic_store(&vm->exit_status, status);
    kick_vcpus(vm);
    /* Parked vCPUs and a waiting pause see the exit. */
    pthread_mutex_lock(&vm->pause_lock);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    vmdev_eventfd_signal(vm->exit_fd);
}

void vmm_vm_join(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < vm->cpus; i++)
        if (vm->vcpus[i].started)
            pthread_join(vm->vcpus[i].thread, NULL);
}

void vmm_vm_print_vcpus(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < vm->cpus; i++)
        dump_vcpu(&vm->vcpus[i], false);
}

const char *const vmm_exit_kind_names[VMM_EXIT_KINDS] = {
    "pio", "mmio", "ioapic_eoi", "hlt", "irq_window", "signal", "other",
};

void vmm_vm_exit_counts(const struct vmm_vm *vm, uint64_t sum[VMM_EXIT_KINDS])
{
    for (unsigned k = 0; k < VMM_EXIT_KINDS; k++)
        sum[k] = 0;
    for (unsigned i = 0; i < vm->cpus; i++)
        for (unsigned k = 0; k < VMM_EXIT_KINDS; k++)
            sum[k] += __atomic_load_n(&vm->vcpus[i].exits[k], __ATOMIC_RELAXED);
}

void vmm_vm_print_exit_stats(struct vmm_vm *vm)
{
    uint64_t sum[VMM_EXIT_KINDS], total = 0;
    vmm_vm_exit_counts(vm, sum);
    fprintf(stderr, "vmdev-run: exits:");
    for (unsigned k = 0; k < VMM_EXIT_KINDS; k++) {
        fprintf(stderr, " %s=%llu", vmm_exit_kind_names[k],
                (unsigned long long)sum[k]);
        total += sum[k];
    }
    fprintf(stderr, " total=%llu\n", (unsigned long long)total);
}

void vmm_vm_set_extint(void *opaque, bool level)
{
    struct vmm_vm *vm = opaque;
    struct vmm_vcpu *bsp = &vm->vcpus[0];
    atomic_store(&vm->extint, level);
    /* vCPU 0 looks at the level before it enters the guest; one inside
     * KVM_RUN (perhaps halted) is kicked out to look. */
    if (!level || !bsp->started || pthread_equal(bsp->thread, pthread_self()))
        return;
    __atomic_store_n(&bsp->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(bsp->thread, KICK_SIGNAL);
}

void vmm_vm_send_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    struct vmm_vm *vm = opaque;
    vmm_irq_routes_send_msi(vm->routes, msg);
}

int vmm_vm_route_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    struct vmm_vm *vm = opaque;
    return vmm_irq_routes_route_msi(vm->routes, msg);
}
