/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's exit dispatch under a hostile guest: the machine vmdev-run
 * assembles (PIC, PIT, IOAPIC, UART, RTC, ACPI PM, i8042, the PCI host
 * with a virtio-blk disk, a virtio-console and a virtio-rng) is built
 * from a real command line on a VM without KVM
 * (vmm_vm_create_without_kvm), and the input is the exits KVM_RUN would
 * leave in the vCPU's run structure: port reads and writes (string
 * instructions included: a count of items in the run structure's data
 * page), MMIO reads and writes of 1 to 8 bytes, EOIs, halts, shutdowns
 * and system events, with guest RAM writes between them (rings for the
 * virtio devices) and the main loop's timers run now and then. Each exit
 * goes through vmm_vcpu_handle_exit, as on a vCPU thread; a trapped
 * notify write serves its queue there, a config write that moves a BAR
 * remaps it there.
 *
 * Ports and addresses come mostly from the machine's own map (the legacy
 * ports of layout.h, the ECAM, the IOAPIC, the BARs the functions have,
 * read back through ECAM exits at the start), the rest anywhere.
 *
 * Asserted beyond the sanitizers: dispatch writes only the data an exit
 * returns (the run structure and its data page are otherwise as they
 * were); a read the bus refuses (nothing there, or a width the device
 * does not take) returns all ones, as on a PC; the machine is built and
 * torn down for every input, so whatever the input left in flight
 * (queued disk requests, timers, remapped BARs) must end cleanly.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "machine.h"
#include "options.h"
#include "vm.h"
#include "vmdev/event_loop.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EXITS 256
#define RAM_WINDOW (512u << 10) /* where the input writes guest RAM */
#define DISK_SIZE (1u << 20)
#define PCI_SLOTS 32

static const uint16_t machine_ports[] = {
    PORT_PIC_MASTER, PORT_PIC_SLAVE, PORT_ELCR, PORT_PIT,
    PORT_SYSTEM_CONTROL_B, PORT_I8042_DATA, PORT_I8042_COMMAND, PORT_RTC,
    PORT_COM1, PORT_ACPI_PM, PORT_ACPI_PM + 8, 0xcf8, 0xcfc,
};

static struct {
    struct vmm_options opts;
    char disk_arg[128];
    char image[64];
    struct vmdev_event_loop *loop;
    struct vmdev_log *log; /* guest errors are expected: warnings only */
} rig;

/* The state of one input's machine. */
struct run_state {
    struct vmm_vm *vm;
    struct vmm_vcpu *vcpu;
    uint64_t bars[PCI_SLOTS * 6]; /* memory BARs found, 0 for none */
    unsigned num_bars;
    bool stopped; /* the vCPU stopped (shutdown, system event) */
};

static void remove_image(void)
{
    unlink(rig.image);
}

static void set_up(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(rig.image, sizeof(rig.image), "%s/vmdev-fuzz-exits-XXXXXX", base);
    int fd = mkstemp(rig.image);
    if (fd < 0 || ftruncate(fd, DISK_SIZE) || close(fd))
        abort();
    atexit(remove_image);
    snprintf(rig.disk_arg, sizeof(rig.disk_arg), "path=%s,format=raw",
             rig.image);
    const char *words[] = {
        "vmdev-run", "--kernel", "/dev/null", "--memory", "64M",
        "--serial", "file=/dev/null", "--console", "file=/dev/null",
        "--rng", "--disk", rig.disk_arg, "--seccomp", "off",
    };
    /* getopt permutes the pointers, never the strings. */
    enum { WORDS = sizeof(words) / sizeof(words[0]) };
    static char *argv[WORDS + 1];
    for (unsigned i = 0; i < WORDS; i++)
        argv[i] = (char *)words[i];
    if (vmm_parse_options(WORDS, argv, &rig.opts))
        abort();
    rig.loop = vmdev_event_loop_new();
    rig.log = vmdev_log_new(NULL, NULL, VMDEV_LOG_WARN);
    if (!rig.loop || !rig.log)
        abort();
}

/*
 * Run the exit the run structure holds, then check that dispatch wrote
 * nothing but [returned, returned + returned_len): the rest of the run
 * structure and its data page are as before, but for immediate_exit,
 * which an exit request (a shutdown, a poweroff port) sets in every
 * vCPU's to kick it out of KVM_RUN.
 */
static void dispatch(struct run_state *s, size_t returned, size_t returned_len)
{
    struct kvm_run *run = s->vcpu->run;
    size_t run_size = s->vm->run_size;
    static uint8_t before[2 * 4096];
    if (run_size > sizeof(before))
        abort();
    memcpy(before, run, run_size);
    if (!vmm_vcpu_handle_exit(s->vcpu))
        s->stopped = true;
    /* What it may write is taken as written; the rest must match. */
    const uint8_t *after = (const uint8_t *)run;
    size_t kick = offsetof(struct kvm_run, immediate_exit);
    memcpy(before + returned, after + returned, returned_len);
    before[kick] = after[kick];
    if (!memcmp(before, after, run_size))
        return;
    size_t i = 0;
    while (before[i] == after[i])
        i++;
    fprintf(stderr, "fuzz_vmm_exits: exit %u changed byte %zu of the run "
            "structure, outside what it returns\n", run->exit_reason, i);
    abort();
}

/* A port access of count items of size bytes each (a string instruction
 * when count > 1), as KVM leaves it: the data at one page into the run
 * structure (KVM_PIO_PAGE_OFFSET). */
static void port_exit(struct run_state *s, bool write, uint16_t port,
                      unsigned size, unsigned count, struct input *in)
{
    struct kvm_run *run = s->vcpu->run;
    uint32_t data_offset = 4096;
    memset((uint8_t *)run + data_offset, 0x5c, size * count);
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = write ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
    run->io.size = (uint8_t)size;
    run->io.port = port;
    run->io.count = count;
    run->io.data_offset = data_offset;
    uint8_t *items = (uint8_t *)run + data_offset;
    if (write) {
        for (unsigned i = 0; i < size * count; i++)
            items[i] = take8(in);
        dispatch(s, 0, 0);
        return;
    }
    uint64_t refused = vmdev_bus_refused_count(s->vm->pio);
    dispatch(s, data_offset, size * count);
    /* Every item the bus refused reads as all ones. */
    if (count == 1 && vmdev_bus_refused_count(s->vm->pio) != refused)
        for (unsigned i = 0; i < size; i++)
            if (items[i] != 0xff) {
                fprintf(stderr, "fuzz_vmm_exits: a refused read of port "
                        "0x%x gave 0x%02x, not all ones\n", port, items[i]);
                abort();
            }
}

/* An MMIO access of len bytes (1 to 8, as KVM splits them). */
static uint64_t mmio_exit(struct run_state *s, bool write, uint64_t address,
                          unsigned len, uint64_t value)
{
    struct kvm_run *run = s->vcpu->run;
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = address;
    run->mmio.len = len;
    run->mmio.is_write = write;
    memset(run->mmio.data, 0x5c, sizeof(run->mmio.data));
    if (write) {
        memcpy(run->mmio.data, &value, len);
        dispatch(s, 0, 0);
        return 0;
    }
    uint64_t refused = vmdev_bus_refused_count(s->vm->mmio);
    dispatch(s, offsetof(struct kvm_run, mmio.data), len);
    uint64_t got = 0;
    memcpy(&got, run->mmio.data, len);
    uint64_t ones = len == 8 ? UINT64_MAX : (1ull << (len * 8)) - 1;
    if (vmdev_bus_refused_count(s->vm->mmio) != refused && got != ones) {
        fprintf(stderr, "fuzz_vmm_exits: a refused read of 0x%llx gave "
                "0x%llx, not all ones\n", (unsigned long long)address,
                (unsigned long long)got);
        abort();
    }
    return got;
}

/* The memory BARs the PCI functions have, read through ECAM exits as a
 * guest's enumeration would (a 64-bit BAR's upper half included). */
static void find_bars(struct run_state *s)
{
    for (unsigned slot = 0; slot < PCI_SLOTS && !s->stopped; slot++) {
        uint64_t config = GUEST_PCI_ECAM + ((uint64_t)slot << 15);
        if (mmio_exit(s, false, config, 4, 0) == 0xffffffff)
            continue;
        for (unsigned bar = 0; bar < 6; bar++) {
            uint64_t low = mmio_exit(s, false, config + 0x10 + bar * 4, 4, 0);
            if (low & 1 || !(low & ~0xfull))
                continue;
            uint64_t address = low & ~0xfull;
            if ((low & 6) == 4 && bar < 5)
                address |= mmio_exit(s, false, config + 0x14 + bar * 4, 4, 0)
                           << 32;
            s->bars[s->num_bars++] = address;
            bar += (low & 6) == 4;
        }
    }
}

static uint16_t pick_port(struct input *in)
{
    uint8_t choice = take8(in);
    if (choice >= 240)
        return take16(in);
    size_t n = sizeof(machine_ports) / sizeof(machine_ports[0]);
    return (uint16_t)(machine_ports[choice % n] + take8(in) % 8);
}

static uint64_t pick_address(const struct run_state *s, struct input *in)
{
    uint8_t choice = take8(in);
    uint16_t offset = take16(in);
    switch (choice % 5) {
    case 0: /* config space of any function and register */
        return GUEST_PCI_ECAM + ((uint64_t)(choice >> 3) << 15) + offset % 4096;
    case 1:
        return GUEST_IOAPIC + offset % 0x100;
    case 2:
    case 3:
        if (s->num_bars)
            return s->bars[(choice >> 3) % s->num_bars] + offset;
        return GUEST_PCI_MMIO + offset;
    default: /* anywhere: RAM, the hole, past the buses' ends */
        return (uint64_t)take16(in) << 32 | (uint64_t)take16(in) << 16 | offset;
    }
}

static void one_exit(struct run_state *s, struct input *in)
{
    struct kvm_run *run = s->vcpu->run;
    uint8_t op = take8(in);
    switch (op & 7) {
    case 0:
    case 1: { /* OUT and IN; a count above 1 is a string instruction */
        static const unsigned sizes[] = { 1, 2, 4, 4 };
        unsigned size = sizes[op >> 3 & 3];
        unsigned count = op >> 5 == 7 ? 1 + take8(in) : 1 + (op >> 5 & 1);
        port_exit(s, !(op & 1), pick_port(in), size, count, in);
        break;
    }
    case 2:
    case 3: { /* MMIO write and read, 1 to 8 bytes */
        unsigned len = 1 + (op >> 3 & 7);
        uint64_t address = pick_address(s, in);
        uint64_t value = 0;
        for (unsigned i = 0; i < len; i++)
            value |= (uint64_t)take8(in) << (i * 8);
        mmio_exit(s, !(op & 1), address, len, value);
        break;
    }
    case 4: { /* guest RAM written: rings, descriptors, buffers */
        uint64_t at = (uint64_t)take16(in) * 8 % RAM_WINDOW;
        unsigned n = take8(in);
        uint8_t *ram = s->vm->ram;
        for (unsigned i = 0; i < n && at + i < RAM_WINDOW; i++)
            ram[at + i] = take8(in);
        break;
    }
    case 5:
        run->exit_reason = KVM_EXIT_IOAPIC_EOI;
        run->eoi.vector = take8(in);
        dispatch(s, 0, 0);
        break;
    case 6: /* the main loop's turn: timers, host output */
        vmdev_event_loop_run_once(rig.loop, 0);
        break;
    default: {
        static const uint32_t others[] = {
            KVM_EXIT_HLT, KVM_EXIT_IRQ_WINDOW_OPEN, KVM_EXIT_INTR,
            KVM_EXIT_SYSTEM_EVENT, KVM_EXIT_SHUTDOWN, KVM_EXIT_UNKNOWN,
        };
        run->exit_reason = others[(op >> 3) % 6];
        run->system_event.type = op >> 7 ? KVM_SYSTEM_EVENT_RESET
                                         : KVM_SYSTEM_EVENT_SHUTDOWN;
        dispatch(s, 0, 0);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rig.loop)
        set_up();
    struct run_state s = { 0 };
    s.vm = vmm_vm_create_without_kvm(rig.opts.memory, 1);
    struct vmdev_block *images[VMM_MAX_DISKS];
    if (!s.vm || vmm_open_disks(&rig.opts, rig.log, images))
        abort();
    s.vcpu = &s.vm->vcpus[0];
    struct vmm_machine *m = vmm_machine_create(s.vm, rig.loop, rig.log,
                                               &rig.opts, images, NULL);
    if (!m)
        abort();
    find_bars(&s);
    struct input in = { data, size };
    for (unsigned i = 0; i < MAX_EXITS && in.left && !s.stopped; i++)
        one_exit(&s, &in);
    vmm_machine_destroy(m);
    vmm_close_disks(&rig.opts, images);
    vmm_vm_destroy(s.vm);
    return 0;
}
