/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's device manager adding and removing devices, on a VM
 * without KVM (so no guest answers: a removal that would wait on the
 * guest's power-off is forced, or happens at once for a slot the guest
 * never powered): 40 devices on 40 root ports, the 41st refused for want
 * of a port with nothing changed; refusals naming their cause (the
 * console, which the machine holds, is not removable); each
 * removal reported by id; and, over 200 add/remove cycles of a disk and
 * a card, no file descriptor left open. Runs under ASan in CI.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "machine.h"
#include "report.h"
#include "test.h"
#include "vmdev/device_manager.h"

#define PORTS 40

static char image[64];
static struct vmdev_event_loop *loop;
static struct vmdev_log *log_;
static struct vmm_vm *vm;
static struct vmm_machine *machine;
static char removed[8][32];
static unsigned num_removed;

static void note_removed(void *opaque, const char *id)
{
    (void)opaque;
    if (num_removed < 8)
        snprintf(removed[num_removed], sizeof(removed[0]), "%s", id);
    num_removed++;
}

/* A machine with no boot device but the platform's and a console, and
 * PORTS free root ports. */
static void make_machine(void)
{
    signal(SIGPIPE, SIG_IGN); /* as vmdev-run does: libslirp needs it */
    snprintf(image, sizeof(image), "/tmp/vmdev-hotplug-XXXXXX");
    int fd = mkstemp(image);
    if (fd < 0 || ftruncate(fd, 1 << 20) || close(fd))
        abort();
    static char ports[8];
    snprintf(ports, sizeof(ports), "%u", PORTS);
    const char *words[] = {
        "vmdev-run", "--kernel", "/dev/null", "--memory", "64M",
        "--serial", "file=/dev/null", "--console", "file=/dev/null",
        "--seccomp", "off", "--pcie-ports", ports,
    };
    enum { WORDS = sizeof(words) / sizeof(words[0]) };
    static char *argv[WORDS + 1];
    static struct vmm_options opts;
    static bool parsed; /* getopt's state is the process's: parse once */
    for (unsigned i = 0; !parsed && i < WORDS; i++)
        argv[i] = (char *)words[i];
    if (!parsed && vmm_parse_options(WORDS, argv, &opts))
        abort();
    parsed = true;
    loop = vmdev_event_loop_new();
    log_ = vmdev_log_new(NULL, NULL, VMDEV_LOG_WARN);
    vm = vmm_vm_create_without_kvm(opts.memory, 1);
    if (!loop || !log_ || !vm)
        abort();
    machine = vmm_machine_create(vm, loop, log_, &opts, NULL, NULL);
    if (!machine)
        abort();
    num_removed = 0;
    vmm_machine_on_removed(machine, note_removed, NULL);
}

static void free_machine(void)
{
    vmm_machine_destroy(machine);
    vmm_vm_destroy(vm);
    vmdev_event_loop_free(loop);
    vmdev_log_free(log_);
    unlink(image);
}

/* Add TYPE with SPEC; 0 or -1, the message in why. */
static int add(const char *type, const char *spec, char *why, size_t len)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", spec);
    vmm_report_capture(why, len);
    int ret = vmm_machine_add_device(machine, type, copy);
    vmm_report_capture(NULL, 0);
    return ret;
}

static int del(const char *id, bool force, char *why, size_t len)
{
    vmm_report_capture(why, len);
    int ret = vmm_machine_remove_device(machine, id, force);
    vmm_report_capture(NULL, 0);
    return ret;
}

static void forty_devices_and_no_forty_first(void)
{
    make_machine();
    struct vmdev_device_manager *devices = vmm_machine_devices(machine);
    char why[256], spec[64];
    for (unsigned i = 0; i < PORTS; i++) {
        snprintf(spec, sizeof(spec), "id=rng%u", i);
        CHECK_EQ(add("rng", spec, why, sizeof(why)), 0);
    }
    size_t count = vmdev_device_count(devices);
    CHECK_EQ(add("rng", "id=extra", why, sizeof(why)), -1);
    CHECK(strstr(why, "no free PCI Express port") != NULL);
    CHECK_EQ(vmdev_device_count(devices), count);
    /* Each sits behind its own port, on its own bus. */
    struct vmm_pci_place first, last;
    CHECK(vmm_machine_device_place(machine, vmdev_device_find(devices, "rng0"),
                                   &first));
    CHECK(vmm_machine_device_place(
        machine, vmdev_device_find(devices, "rng39"), &last));
    CHECK_EQ(strcmp(first.address, "02:00.0"), 0); /* the console: 01 */
    CHECK_EQ(strcmp(last.address, "29:00.0"), 0);
    /* The guest never powered their slots: they go at once. */
    CHECK_EQ(del("rng7", false, why, sizeof(why)), VMM_PCI_REMOVED);
    CHECK_EQ(num_removed, 1);
    CHECK_EQ(strcmp(removed[0], "rng7"), 0);
    CHECK_EQ(add("rng", "id=extra", why, sizeof(why)), 0);
    free_machine();
}

static void refusals_name_their_cause(void)
{
    make_machine();
    struct vmdev_device_manager *devices = vmm_machine_devices(machine);
    size_t count = vmdev_device_count(devices);
    char why[256], spec[128];
    CHECK_EQ(add("gpu", "id=g", why, sizeof(why)), -1);
    CHECK(strstr(why, "unknown type 'gpu'") != NULL);
    snprintf(spec, sizeof(spec), "path=%s,colour=red", image);
    CHECK_EQ(add("disk", spec, why, sizeof(why)), -1);
    CHECK(strstr(why, "colour") != NULL);
    CHECK_EQ(add("disk", "path=/nonexistent/d.img", why, sizeof(why)), -1);
    CHECK(strstr(why, "/nonexistent/d.img") != NULL);
    CHECK_EQ(add("net", "slirp,mtu=1", why, sizeof(why)), -1);
    CHECK(strstr(why, "mtu") != NULL);
    CHECK_EQ(add("rng", "id=com1", why, sizeof(why)), -1);
    CHECK(strstr(why, "machine's own") != NULL);
    CHECK_EQ(add("rng", "id=r1", why, sizeof(why)), 0);
    CHECK_EQ(add("rng", "id=r1", why, sizeof(why)), -1);
    CHECK(strstr(why, "the id is taken") != NULL);
    CHECK_EQ(del("com1", false, why, sizeof(why)), -1);
    CHECK(strstr(why, "machine's own devices") != NULL);
    /* hvc0's host side holds the console: it stays. */
    CHECK_EQ(del("virtio-console0", true, why, sizeof(why)), -1);
    CHECK(strstr(why, "machine's own devices") != NULL);
    CHECK_EQ(del("nothing", false, why, sizeof(why)), -1);
    CHECK(strstr(why, "no device 'nothing'") != NULL);
    CHECK_EQ(vmdev_device_count(devices), count + 1);
    CHECK_EQ(num_removed, 0);
    free_machine();
}

/* Adds and forced removals of a disk and a slirp card: every fd they
 * opened (image, io_uring, eventfds, libslirp's) closed again. */
static void churn_leaves_no_fd_open(void)
{
    make_machine();
    char why[256], spec[128];
    snprintf(spec, sizeof(spec), "path=%s,format=raw,id=d", image);
    unsigned fds = 0;
    num_removed = 0;
    for (unsigned n = 0; n < 200; n++) {
        if (n == 10)
            fds = test_open_fds();
        if (add("disk", spec, why, sizeof(why)) ||
            add("net", "slirp,id=n", why, sizeof(why)) ||
            del("d", true, why, sizeof(why)) != VMM_PCI_REMOVED ||
            del("n", true, why, sizeof(why)) != VMM_PCI_REMOVED) {
            fprintf(stderr, "cycle %u: %s\n", n, why);
            CHECK(false);
        }
    }
    CHECK_EQ(test_open_fds(), fds);
    CHECK_EQ(num_removed, 400);
    free_machine();
}

TEST_MAIN(TEST(forty_devices_and_no_forty_first),
          TEST(refusals_name_their_cause), TEST(churn_leaves_no_fd_open))
