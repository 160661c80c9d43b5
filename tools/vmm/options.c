/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"
#include "report.h"
#include "vmdev/device_manager.h"
#include "vmdev/virtio_blk.h"

#define DEFAULT_CMDLINE "console=ttyS0 reboot=acpi panic=-1"
#define DEFAULT_MEMORY (512ull << 20)
#define MIN_MEMORY (64ull << 20)
#define MAX_MEMORY (1ull << 40)

static const char usage[] =
    "Usage: vmdev-run --kernel FILE [OPTION]...\n"
    "Boot a Linux kernel (bzImage) in a KVM virtual machine built from libvmdev devices.\n"
    "\n"
    "  --kernel FILE        the bzImage to boot (required)\n"
    "  --initramfs FILE     an initramfs loaded for the kernel\n"
    "  --cmdline STR        the kernel command line\n"
    "                       (default \"" DEFAULT_CMDLINE "\")\n"
    "  --cpus N             virtual CPUs, 1 to 64 (default 1)\n"
    "  --memory SIZE        guest RAM; a number with an optional K, M or G suffix,\n"
    "                       64M to 1024G (default 512M)\n"
    "  --disk path=FILE[,KEY=VALUE]...\n"
    "                       a virtio-blk disk; repeatable (up to 8), the first is\n"
    "                       /dev/vda. Keys:\n"
    "                         format=raw|qcow2  the image's format; without it raw,\n"
    "                                           but an image with the qcow2 magic\n"
    "                                           is refused. qcow2: version 3 read\n"
    "                                           and written (internal snapshots\n"
    "                                           kept), version 2 only read;\n"
    "                                           backing files are only read\n"
    "                         backing=PATH|off  a qcow2 image's backing file: PATH\n"
    "                                           (a file or block device, from the\n"
    "                                           current directory; ./off for a file\n"
    "                                           called off) instead of the one the\n"
    "                                           image names, or off: none, and an\n"
    "                                           image that names one is refused.\n"
    "                                           Default: the image's own, under the\n"
    "                                           rules below\n"
    "                         backing_format=raw|qcow2\n"
    "                                           backing=PATH's format (default the\n"
    "                                           format the image names for its own)\n"
    "                         backing_outside=on|off\n"
    "                                           follow backing file names that are\n"
    "                                           absolute or lead out of the naming\n"
    "                                           image's directory, at every level\n"
    "                                           (default off)\n"
    "                         readonly=on|off   a read-only disk (default off)\n"
    "                         cache=writeback|writethrough|none\n"
    "                                           the host page cache with flushes\n"
    "                                           from the guest (default), a flush\n"
    "                                           after every write, or O_DIRECT\n"
    "                         discard=on|off    pass the guest's discards to the\n"
    "                                           image, releasing space (default off)\n"
    "                         num_queues=N      request queues, 1 to 64 (default 1)\n"
    "                         queue_size=N      ring entries, a power of two from 4\n"
    "                                           to 1024 (default 256)\n"
    "                         serial=STR        the disk's serial, up to 20\n"
    "                                           characters (default none)\n"
    "                         id=ID             names the device: a letter, then\n"
    "                                           letters, digits, '-', '_' or '.', at\n"
    "                                           most 31 (default virtio-blk0, ...);\n"
    "                                           the machine's own devices have the\n"
    "                                           ids %s\n"
    "                       What is trusted: the command line, so every PATH given\n"
    "                       here. Image files are not, nor the backing file names\n"
    "                       their headers carry: at every level of a chain such a\n"
    "                       name is followed only when relative (found from the\n"
    "                       naming image's directory, as qemu-img finds it) with\n"
    "                       its real path, links and '..' resolved, inside that\n"
    "                       directory (backing_outside=on lifts this), and only to\n"
    "                       a regular file, never a device, FIFO or directory\n"
    "                       (always). Otherwise an image could show the guest any\n"
    "                       file vmdev-run can read.\n"
    "  --net slirp|socket=ADDRESS|tap=IFNAME[,KEY=VALUE]...\n"
    "                       a virtio-net card; repeatable (up to 8), the first is\n"
    "                       eth0. First its backend, one of:\n"
    "                       slirp  user-mode networking through libslirp (NAT,\n"
    "                         no privileges), as QEMU's -netdev user: DHCP gives\n"
    "                         the guest 10.0.2.15, the host (its loopback too) is\n"
    "                         10.0.2.2, DNS 10.0.2.3. Its keys:\n"
    "                         hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT\n"
    "                                           forward a host port into the guest\n"
    "                                           (HOSTADDR IPv4 or [IPv6], default\n"
    "                                           every IPv4 address; GUESTADDR\n"
    "                                           default 10.0.2.15); up to 16\n"
    "                         ipv6=on|off       IPv6 too: fec0::/64 by router\n"
    "                                           advertisement, the host fec0::2\n"
    "                                           (default off)\n"
    "                         restrict=on|off   the guest reaches nothing but its\n"
    "                                           forwarded ports (default off)\n"
    "                       socket=ADDRESS  a stream socket that carries Ethernet\n"
    "                         frames each after its 4-byte big-endian length\n"
    "                         (QEMU's -netdev stream, passt, a switch): a UNIX\n"
    "                         socket path, or tcp:HOST:PORT.\n"
    "                       tap=IFNAME  the host's tap interface IFNAME, created\n"
    "                         if absent (removed again at exit) and put up; one\n"
    "                         tap queue per queue pair (an existing tap must be\n"
    "                         multi-queue for queues=2 or more). Needs\n"
    "                         CAP_NET_ADMIN, or a persistent tap made for this\n"
    "                         user. Its key:\n"
    "                         bridge=BR         put the tap on Linux bridge BR\n"
    "                       Then the card's keys:\n"
    "                         mac=XX:XX:XX:XX:XX:XX  the card's address, unicast\n"
    "                                           (default 52:54:00:12:34:56, the\n"
    "                                           last byte counting up per card)\n"
    "                         queues=N          queue pairs, 1 to 16 (default 1)\n"
    "                         queue_size=N      ring entries, a power of two from\n"
    "                                           64 to 1024 (default 256)\n"
    "                         mtu=N             the MTU the card advertises, 68 to\n"
    "                                           65535 (default none: Linux uses 1500);\n"
    "                                           with slirp also slirp's own link MTU,\n"
    "                                           at most 65521 (65520 lets a guest\n"
    "                                           send 64 KiB frames to the NAT)\n"
    "                         coalesce_usecs=N  hold a used-buffer interrupt up to N\n"
    "                                           microseconds, 0 to 1000000, for a\n"
    "                                           driver that cannot set its own (one\n"
    "                                           with NOTF_COAL, Linux 6.0 on, starts\n"
    "                                           from none) (default 0: none)\n"
    "                         coalesce_frames=N or until N frames wait, 0 to 65536\n"
    "                                           (default 0: no frame limit)\n"
    "                         pcap=FILE         write every frame of the card, both\n"
    "                                           ways, to FILE (pcap, for tcpdump -r or\n"
    "                                           Wireshark), as it passes the backend\n"
    "                         id=ID             names the device, as for --disk\n"
    "                                           (default virtio-net0, ...)\n"
    "  --serial stdio|file=PATH|off\n"
    "                       where the 16550A UART on COM1 (ttyS0) goes (default stdio;\n"
    "                       with stdio, host input goes to the guest)\n"
    "  --console hvc|file=PATH|off[,input=FILE]\n"
    "                       a virtio-console (hvc0): hvc sends its output to stdout\n"
    "                       and, unless --serial stdio has it, takes stdin as input;\n"
    "                       file=PATH sends output to a file (default off).\n"
    "                       input=FILE feeds hvc0 from FILE (a FIFO or a file) as\n"
    "                       the guest takes it; Linux drops console input that\n"
    "                       comes before its driver is set up, so feed a FIFO once\n"
    "                       the guest is up\n"
    "  --rng                a virtio-rng device fed by the host's getrandom()\n"
    "  --pcie-ports N       free PCI Express root ports, beside one for each\n"
    "                       device above, for devices added while the guest runs\n"
    "                       (control API device-add), 0 to 230 (default 8)\n"
    "  --seccomp on|off|log\n"
    "                       confine each thread (vCPUs, I/O threads, the main\n"
    "                       thread) to the system calls it needs with a seccomp\n"
    "                       filter of its own (default on); a call outside them\n"
    "                       ends vmdev-run (exit status 1) with a message naming\n"
    "                       it; log lets it through and has the kernel log it\n"
    "  --api-socket PATH    serve the control API (JSON, one object a line, in\n"
    "                       QMP's shape; docs/api.md) on a UNIX socket at PATH,\n"
    "                       mode 0600; a socket left by a dead process is\n"
    "                       replaced, one a live process serves is refused.\n"
    "                       vmdev-ctl is its command-line client\n"
    "  --stats              when the VM stops, print its exits to user space by\n"
    "                       reason and each device's counters on stderr (for\n"
    "                       benchmarks and debugging); stopped by a signal, also\n"
    "                       each vCPU's registers (where a hung guest stood)\n"
    "  --help               show this help and exit\n"
    "\n"
    "Exit status: 0 when the guest powers off, 1 on a host error, 2 for a bad\n"
    "command line, 3 when the guest reboots, 4 on a guest triple fault, 5 when\n"
    "stopped by SIGTERM or SIGINT. A VM that has not stopped 10 s after the\n"
    "stop began (a device thread blocked on a host file, say) is left without\n"
    "waiting, as is one given a second signal; what the guest had not flushed\n"
    "may then be lost.\n";

static void print_usage(void)
{
    char ids[128] = "";
    size_t used = 0;
    for (unsigned i = 0; vmm_machine_ids[i]; i++) {
        const char *sep = !vmm_machine_ids[i + 1] ? " and " : i ? ", " : "";
        used += (size_t)snprintf(ids + used, sizeof(ids) - used, "%s%s", sep,
                                 vmm_machine_ids[i]);
        if (used >= sizeof(ids))
            break;
    }
    printf(usage, ids);
}

int vmm_option_bad(const char *option, const char *value, const char *why)
{
    vmm_report("--%s '%s': %s\n", option, value, why);
    return VMM_EXIT_USAGE;
}

static int bad(const char *option, const char *value, const char *why)
{
    return vmm_option_bad(option, value, why);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'G': case 'g': shift = 30; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'K': case 'k': shift = 10; end++; break;
    case '\0': break;
    default: return -1;
    }
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_output(const char *option, const char *value,
                        const char *stdio_word, struct vmm_output *out)
{
    if (strcmp(value, stdio_word) == 0) {
        out->kind = VMM_OUTPUT_STDIO;
    } else if (strcmp(value, "off") == 0) {
        out->kind = VMM_OUTPUT_OFF;
    } else if (strncmp(value, "file=", 5) == 0 && value[5]) {
        out->kind = VMM_OUTPUT_FILE;
        out->path = value + 5;
    } else {
        char why[64];
        snprintf(why, sizeof(why), "expected %s, file=PATH or off", stdio_word);
        return bad(option, value, why);
    }
    return 0;
}

int vmm_check_device_id(const char *option, const char *original,
                        const char *id, const struct vmm_options *opts)
{
    if (!vmdev_device_id_valid(id))
        return bad(option, original,
                   "id must be a letter followed by letters, digits, '-', '_' "
                   "or '.', at most 31 characters");
    if (vmm_machine_id_reserved(id))
        return bad(option, original,
                   "the id names one of the machine's own devices");
    for (unsigned i = 0; i < opts->num_disks; i++)
        if (opts->disks[i].id && strcmp(opts->disks[i].id, id) == 0)
            return bad(option, original, "another --disk has that id");
    for (unsigned i = 0; i < opts->num_nets; i++)
        if (opts->nets[i].id && strcmp(opts->nets[i].id, id) == 0)
            return bad(option, original, "another --net has that id");
    return 0;
}

/* hvc|file=PATH|off, then input=FILE. */
static int parse_console(char *value, struct vmm_options *opts)
{
    char original[4352];
    snprintf(original, sizeof(original), "%s", value);
    char *input = strstr(value, ",input=");
    if (input) {
        *input = '\0';
        input += strlen(",input=");
        if (!*input)
            return bad("console", original, "input=FILE needs a file");
        if (access(input, R_OK) != 0)
            return bad("console", original, strerror(errno));
    }
    int ret = parse_output("console", value, "hvc", &opts->console);
    if (ret)
        return ret;
    if (input && opts->console.kind == VMM_OUTPUT_OFF)
        return bad("console", original, "input= needs a console (hvc or file=PATH)");
    opts->console_input = input;
    return 0;
}

static int parse_on_off(const char *original, const char *key,
                        const char *val, bool *out)
{
    if (strcmp(val, "on") == 0 || strcmp(val, "off") == 0) {
        *out = val[1] == 'n';
        return 0;
    }
    char why[64];
    snprintf(why, sizeof(why), "%s must be on or off", key);
    return bad("disk", original, why);
}

int vmm_parse_count(const char *val, unsigned min, unsigned max,
                    unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(val, &end, 10);
    if (errno || end == val || *end || *val == '-' || n < min || n > max)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int parse_disk_key(const char *original, const char *key,
                          const char *val, struct vmm_disk *disk,
                          const struct vmm_options *opts)
{
    if (strcmp(key, "path") == 0 && *val) {
        disk->path = val;
    } else if (strcmp(key, "format") == 0) {
        if (strcmp(val, "raw") == 0)
            disk->format = VMDEV_BLOCK_FORMAT_RAW;
        else if (strcmp(val, "qcow2") == 0)
            disk->format = VMDEV_BLOCK_FORMAT_QCOW2;
        else
            return bad("disk", original, "format must be raw or qcow2");
    } else if (strcmp(key, "backing") == 0) {
        if (!*val)
            return bad("disk", original, "backing must be a file or off");
        bool off = strcmp(val, "off") == 0;
        disk->backing = off ? VMDEV_BLOCK_BACKING_OFF
                            : VMDEV_BLOCK_BACKING_EXPLICIT;
        disk->backing_file = off ? NULL : val;
    } else if (strcmp(key, "backing_format") == 0) {
        if (strcmp(val, "raw") == 0)
            disk->backing_format = VMDEV_BLOCK_FORMAT_RAW;
        else if (strcmp(val, "qcow2") == 0)
            disk->backing_format = VMDEV_BLOCK_FORMAT_QCOW2;
        else
            return bad("disk", original,
                       "backing_format must be raw or qcow2");
    } else if (strcmp(key, "backing_outside") == 0) {
        return parse_on_off(original, key, val, &disk->backing_outside);
    } else if (strcmp(key, "readonly") == 0) {
        return parse_on_off(original, key, val, &disk->readonly);
    } else if (strcmp(key, "discard") == 0) {
        return parse_on_off(original, key, val, &disk->discard);
    } else if (strcmp(key, "cache") == 0) {
        if (strcmp(val, "writeback") == 0)
            disk->cache = VMDEV_BLOCK_CACHE_WRITEBACK;
        else if (strcmp(val, "writethrough") == 0)
            disk->cache = VMDEV_BLOCK_CACHE_WRITETHROUGH;
        else if (strcmp(val, "none") == 0)
            disk->cache = VMDEV_BLOCK_CACHE_NONE;
        else
            return bad("disk", original,
                       "cache must be writeback, writethrough or none");
    } else if (strcmp(key, "num_queues") == 0) {
        if (vmm_parse_count(val, 1, VMDEV_VIRTIO_BLK_MAX_QUEUES, &disk->num_queues))
            return bad("disk", original,
                       "num_queues must be a number from 1 to 64");
    } else if (strcmp(key, "queue_size") == 0) {
        unsigned n;
        if (vmm_parse_count(val, VMDEV_VIRTIO_BLK_MIN_QUEUE_SIZE,
                        VMDEV_VIRTIO_BLK_MAX_QUEUE_SIZE, &n) || (n & (n - 1)))
            return bad("disk", original,
                       "queue_size must be a power of two from 4 to 1024");
        disk->queue_size = n;
    } else if (strcmp(key, "serial") == 0) {
        if (!*val || strlen(val) > VMDEV_VIRTIO_BLK_ID_LEN)
            return bad("disk", original, "serial must be 1 to 20 characters");
        for (const char *c = val; *c; c++)
            if (*c < 0x20 || *c > 0x7e)
                return bad("disk", original,
                           "serial must be printable ASCII characters");
        disk->serial = val;
    } else if (strcmp(key, "id") == 0) {
        int ret = vmm_check_device_id("disk", original, val, opts);
        if (ret)
            return ret;
        disk->id = val;
    } else {
        return bad("disk", original,
                   "unknown key (expected path, format, backing, "
                   "backing_format, backing_outside, readonly, cache, "
                   "discard, num_queues, queue_size, serial, id)");
    }
    return 0;
}

/* The backing keys make sense together, and backing=PATH can be read. */
static int check_disk_backing(const struct vmm_disk *disk, const char *original)
{
    bool explicit = disk->backing == VMDEV_BLOCK_BACKING_EXPLICIT;
    if (disk->backing_format != VMDEV_BLOCK_FORMAT_DEFAULT && !explicit)
        return bad("disk", original, "backing_format= needs backing=PATH");
    /* A raw image has no backing file to replace. */
    if (explicit && disk->format != VMDEV_BLOCK_FORMAT_QCOW2)
        return bad("disk", original, "backing=PATH needs format=qcow2");
    if (explicit && access(disk->backing_file, R_OK) != 0) {
        char why[128];
        snprintf(why, sizeof(why), "backing=PATH: %s", strerror(errno));
        return bad("disk", original, why);
    }
    return 0;
}

/* path=FILE[,KEY=VALUE]...; keys may come in any order. */
int vmm_parse_disk(char *value, struct vmm_options *opts)
{
    char original[4352];
    snprintf(original, sizeof(original), "%s", value);
    if (opts->num_disks == VMM_MAX_DISKS)
        return bad("disk", original, "too many disks (at most 8)");
    struct vmm_disk disk = { .format = VMDEV_BLOCK_FORMAT_DEFAULT,
                             .cache = VMDEV_BLOCK_CACHE_WRITEBACK };
    for (char *save, *kv = strtok_r(value, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return bad("disk", original, "expected key=value pairs");
        *eq = '\0';
        int ret = parse_disk_key(original, kv, eq + 1, &disk, opts);
        if (ret)
            return ret;
    }
    if (!disk.path)
        return bad("disk", original, "path=FILE is required");
    if (access(disk.path, disk.readonly ? R_OK : R_OK | W_OK) != 0)
        return bad("disk", original, strerror(errno));
    if (disk.discard && disk.readonly)
        return bad("disk", original, "discard=on needs a writable disk");
    int ret = check_disk_backing(&disk, original);
    if (ret)
        return ret;
    opts->disks[opts->num_disks++] = disk;
    return 0;
}

int vmm_parse_options(int argc, char **argv, struct vmm_options *opts)
{
    enum { OPT_KERNEL = 1, OPT_INITRAMFS, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY,
           OPT_DISK, OPT_NET, OPT_SERIAL, OPT_CONSOLE, OPT_RNG, OPT_STATS,
           OPT_SECCOMP, OPT_SECCOMP_TEST_STRAY, OPT_API_SOCKET, OPT_PCIE_PORTS,
           OPT_HELP };
    static const struct option longopts[] = {
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initramfs", required_argument, NULL, OPT_INITRAMFS },
        { "cmdline", required_argument, NULL, OPT_CMDLINE },
        { "cpus", required_argument, NULL, OPT_CPUS },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "disk", required_argument, NULL, OPT_DISK },
        { "net", required_argument, NULL, OPT_NET },
        { "serial", required_argument, NULL, OPT_SERIAL },
        { "console", required_argument, NULL, OPT_CONSOLE },
        { "rng", no_argument, NULL, OPT_RNG },
        { "pcie-ports", required_argument, NULL, OPT_PCIE_PORTS },
        { "stats", no_argument, NULL, OPT_STATS },
        { "api-socket", required_argument, NULL, OPT_API_SOCKET },
        { "seccomp", required_argument, NULL, OPT_SECCOMP },
        /* Undocumented: for the test that a stray call is caught. */
        { "seccomp-test-stray", required_argument, NULL,
          OPT_SECCOMP_TEST_STRAY },
        { "help", no_argument, NULL, OPT_HELP },
        { 0 },
    };
    *opts = (struct vmm_options){
        .cmdline = DEFAULT_CMDLINE,
        .cpus = 1,
        .memory = DEFAULT_MEMORY,
        .serial = { VMM_OUTPUT_STDIO, NULL },
        .console = { VMM_OUTPUT_OFF, NULL },
        .pcie_ports = DEFAULT_PCIE_PORTS,
    };
    opterr = 0;
    int c, ret;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL: opts->kernel = optarg; break;
        case OPT_INITRAMFS: opts->initramfs = optarg; break;
        case OPT_CMDLINE: opts->cmdline = optarg; break;
        case OPT_CPUS:
            if (vmm_parse_count(optarg, 1, VMM_MAX_CPUS, &opts->cpus))
                return bad("cpus", optarg, "expected a number from 1 to 64");
            break;
        case OPT_MEMORY:
            if (parse_size(optarg, &opts->memory) || opts->memory < MIN_MEMORY ||
                opts->memory > MAX_MEMORY)
                return bad("memory", optarg, "expected a size from 64M to 1024G");
            break;
        case OPT_DISK:
            if ((ret = vmm_parse_disk(optarg, opts)))
                return ret;
            break;
        case OPT_NET:
            if ((ret = vmm_parse_net(optarg, opts)))
                return ret;
            break;
        case OPT_SERIAL:
            if ((ret = parse_output("serial", optarg, "stdio", &opts->serial)))
                return ret;
            break;
        case OPT_CONSOLE:
            if ((ret = parse_console(optarg, opts)))
                return ret;
            break;
        case OPT_RNG: opts->rng = true; break;
        case OPT_PCIE_PORTS:
            if (vmm_parse_count(optarg, 0, VMM_MAX_FREE_PCIE_PORTS,
                                &opts->pcie_ports))
                return bad("pcie-ports", optarg,
                           "expected a number from 0 to 230");
            break;
        case OPT_STATS: opts->stats = true; break;
        case OPT_API_SOCKET:
            if (!*optarg)
                return bad("api-socket", optarg, "expected a path");
            opts->api_socket = optarg;
            break;
        case OPT_SECCOMP:
            if (strcmp(optarg, "on") == 0)
                opts->seccomp = VMM_SECCOMP_ON;
            else if (strcmp(optarg, "off") == 0)
                opts->seccomp = VMM_SECCOMP_OFF;
            else if (strcmp(optarg, "log") == 0)
                opts->seccomp = VMM_SECCOMP_LOG;
            else
                return bad("seccomp", optarg, "expected on, off or log");
            break;
        case OPT_SECCOMP_TEST_STRAY:
            if (strcmp(optarg, "main") && strcmp(optarg, "vcpu") &&
                strcmp(optarg, "io"))
                return bad("seccomp-test-stray", optarg,
                           "expected main, vcpu or io");
            opts->seccomp_test_stray = optarg;
            break;
        case OPT_HELP:
            print_usage();
            return -1;
        default:
            vmm_report("unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return VMM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        vmm_report("unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return VMM_EXIT_USAGE;
    }
    if (!opts->kernel) {
        vmm_report("--kernel FILE is required (see --help)\n");
        return VMM_EXIT_USAGE;
    }
    if (access(opts->kernel, R_OK) != 0)
        return bad("kernel", opts->kernel, strerror(errno));
    if (opts->initramfs && access(opts->initramfs, R_OK) != 0)
        return bad("initramfs", opts->initramfs, strerror(errno));
    return 0;
}

int vmm_open_disks(const struct vmm_options *opts, struct vmdev_log *log,
                   struct vmdev_block **images)
{
    for (unsigned i = 0; i < opts->num_disks; i++)
        images[i] = NULL;
    for (unsigned i = 0; i < opts->num_disks; i++) {
        const struct vmm_disk *d = &opts->disks[i];
        struct vmdev_block_options o = {
            .path = d->path, .format = d->format, .cache = d->cache,
            .readonly = d->readonly, .backing = d->backing,
            .backing_file = d->backing_file,
            .backing_format = d->backing_format,
            .backing_outside = d->backing_outside,
            .log = log,
        };
        /* Room for a refusal naming two paths and its rule. */
        char why[1024];
        images[i] = vmdev_block_new(&o, why, sizeof(why));
        if (!images[i]) {
            vmm_report("--disk path=%s: %s\n", d->path, why);
            vmm_close_disks(opts, images);
            return VMM_EXIT_USAGE;
        }
    }
    return 0;
}

void vmm_close_disks(const struct vmm_options *opts, struct vmdev_block **images)
{
    for (unsigned i = 0; i < opts->num_disks; i++) {
        vmdev_block_free(images[i]);
        images[i] = NULL;
    }
}
