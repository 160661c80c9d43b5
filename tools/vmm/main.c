/* SPDX-License-Identifier: MIT */
/* vmdev-run: a reference KVM VMM for x86-64 built on libvmdev. */
#include <errno.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "acpi.h"
#include "api.h"
#include "boot.h"
#include "machine.h"
#include "options.h"
#include "sandbox.h"
#include "stop_guard.h"
#include "vm.h"
#include "vmdev/event_loop.h"

/*
 * The main thread's calls once the VM runs: its event loop serves the
 * platform devices' timers, the serial and console input and output and
 * whatever device work lands there (vmm_device_syscalls); then teardown:
 * stopping the vCPUs (tgkill), joining them, unplugging the functions
 * (KVM_IOEVENTFD), --stats' register dumps, closing what it opened and
 * removing the API's socket file (unlink).
 */
static const int main_syscalls[] = { SCMP_SYS(ioctl), SCMP_SYS(tgkill),
                                     SCMP_SYS(unlink) };
static const unsigned long main_ioctls[] = {
    KVM_IOEVENTFD, KVM_IRQFD,     KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI,
    KVM_GET_REGS,  KVM_GET_SREGS, KVM_GET_LAPIC,
};

/* How long a stop may take before the process ends without waiting. */
#define STOP_GRACE_MS 10000

struct main_state {
    struct vmm_vm *vm;
};

static void on_exit_request(void *opaque, uint32_t events)
{
    struct main_state *s = opaque;
    vmdev_eventfd_drain(s->vm->exit_fd);
}

static void stop_on_signal(void *opaque, int signo)
{
    struct vmm_vm *vm = opaque;
    (void)signo;
    vmm_vm_request_exit(vm, VMM_EXIT_SIGNAL);
}

static int vm_exit_status(void *opaque)
{
    struct vmm_vm *vm = opaque;
    return atomic_load(&vm->exit_status);
}

int main(int argc, char **argv)
{
    struct vmm_options opts;
    int ret = vmm_parse_options(argc, argv, &opts);
    if (ret)
        return ret < 0 ? 0 : ret;
    /* The VM's log: every device's lines, on stderr. */
    struct vmdev_log *log = vmdev_log_new(NULL, NULL, VMDEV_LOG_GUEST);
    if (!log) {
        fprintf(stderr, "vmdev-run: %s\n", strerror(errno));
        return VMM_EXIT_ERROR;
    }
    /* An image that cannot be used is the command line's fault, found
     * before a guest exists. */
    struct vmdev_block *images[VMM_MAX_DISKS];
    ret = vmm_open_disks(&opts, log, images);
    if (ret) {
        vmdev_log_free(log);
        return ret;
    }
    struct vmdev_net_capture *captures[VMM_MAX_NETS];
    ret = vmm_open_captures(&opts, captures);
    if (ret) {
        vmm_close_disks(&opts, images);
        vmdev_log_free(log);
        return ret;
    }

    /* A write to a socket whose peer has gone (libslirp's to a host
     * connection a guest still sends on) is that write's error, not the
     * end of the VMM: QEMU ignores SIGPIPE too. */
    signal(SIGPIPE, SIG_IGN);

    /* Before any thread exists: each confines itself as it starts. */
    if (vmm_sandbox_prepare(opts.seccomp, opts.seccomp_test_stray)) {
        vmm_close_disks(&opts, images);
        vmm_close_captures(&opts, captures);
        vmdev_log_free(log);
        return VMM_EXIT_ERROR;
    }
    struct main_state state = { 0 };
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct vmm_vm *vm = vmm_vm_create(opts.memory, opts.cpus);
    struct vmm_machine *machine = NULL;
    struct vmm_api *api = NULL;
    struct vmm_stop_guard *guard = NULL;
    int status = VMM_EXIT_ERROR;
    if (!loop || !vm)
        goto out;
    state.vm = vm;
    /* Before any other thread starts: they inherit the blocked signals. */
    struct vmm_stop_guard_ops guard_ops = { stop_on_signal, vm_exit_status,
                                            vm };
    guard = vmm_stop_guard_start(&guard_ops, STOP_GRACE_MS);
    if (!guard) {
        fprintf(stderr, "vmdev-run: cannot set up signal handling: %s\n",
                strerror(errno));
        goto out;
    }
    machine = vmm_machine_create(vm, loop, log, &opts, images, captures);
    if (!machine)
        goto out;
    /* Served on the main loop, so commands run between the devices'
     * events there, never beside them. */
    if (opts.api_socket &&
        !(api = vmm_api_start(opts.api_socket, loop, vm, machine)))
        goto out;

    struct vmm_boot_params boot = {
        .kernel_path = opts.kernel,
        .initramfs_path = opts.initramfs,
        .cmdline = opts.cmdline,
        .low_ram_end = vm->low_ram_end,
        .high_ram_end = vm->high_ram_end,
    };
    struct vmm_boot_entry entry;
    if (vmm_build_acpi(vm->mem, opts.cpus, vm->high_ram_end, &boot.rsdp) ||
        vmm_load_linux(vm->mem, &boot, &entry))
        goto out;
    if (!vmdev_event_loop_add(loop, vm->exit_fd, VMDEV_EVENT_IN, on_exit_request, &state))
        goto out;
    if (vmm_vm_start(vm, &entry))
        goto out;
    /* With the control API the main thread builds devices too. */
    const struct vmm_syscall_list main_lists[] = {
        VMM_SYSCALL_LIST(main_syscalls, main_ioctls), vmm_device_syscalls,
        vmm_hotplug_syscalls,
    };
    if (vmm_sandbox_enter("main", main_lists, opts.api_socket ? 3 : 2)) {
        vmm_vm_request_exit(vm, VMM_EXIT_ERROR);
        goto out;
    }

    while (!atomic_load(&vm->exiting)) {
        int n = vmdev_event_loop_run_once(loop, -1);
        if (n < 0) {
            fprintf(stderr, "vmdev-run: event loop: %s\n", strerror(-n));
            vmm_vm_request_exit(vm, VMM_EXIT_ERROR);
        }
    }
    /* From here the VM stops, within the guard's grace period. */
    vmm_stop_guard_arm(guard);
    vmm_vm_join(vm);
    status = atomic_load(&vm->exit_status);
    if (opts.stats) {
        vmm_vm_print_exit_stats(vm);
        if (status == VMM_EXIT_SIGNAL)
            vmm_vm_print_vcpus(vm);
        vmm_machine_print_stats(machine);
    }
out:
    if (guard)
        vmm_stop_guard_arm(guard);
    vmm_api_stop(api);
    vmm_machine_destroy(machine);
    vmm_close_disks(&opts, images);
    vmm_close_captures(&opts, captures);
    vmdev_event_loop_free(loop);
    vmm_stop_guard_free(guard);
    vmm_vm_destroy(vm);
    vmdev_log_free(log);
    return status;
}
