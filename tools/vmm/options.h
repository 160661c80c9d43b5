/* SPDX-License-Identifier: MIT */
/* vmdev-run's command line. */
#ifndef VMM_OPTIONS_H
#define VMM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox.h"

#include "net_spec.h"
#include "vmdev/net.h"

#include "vmdev/block.h"

#define VMM_MAX_DISKS 8
#define VMM_MAX_CPUS 64
#define VMM_MAX_NETS 8
/* Free root ports: with one for each device the command line can give,
 * all of the 248 a machine has. */
#define VMM_MAX_FREE_PCIE_PORTS 230
#define DEFAULT_PCIE_PORTS 8

enum vmm_output_kind { VMM_OUTPUT_OFF, VMM_OUTPUT_STDIO, VMM_OUTPUT_FILE };

struct vmm_output {
    enum vmm_output_kind kind;
    const char *path; /* VMM_OUTPUT_FILE */
};

struct vmm_disk {
    const char *path;
    enum vmdev_block_format format;
    enum vmdev_block_cache cache;
    bool readonly;
    /* backing=PATH|off, backing_format=, backing_outside= (vmdev/block.h:
     * the header's name under its rules by default). */
    enum vmdev_block_backing backing;
    const char *backing_file;               /* backing=PATH */
    enum vmdev_block_format backing_format; /* DEFAULT: the image's */
    bool backing_outside;
    bool discard;
    unsigned num_queues;
    unsigned queue_size;
    const char *serial; /* NULL: none */
    const char *id;     /* NULL: the device manager names it */
};

struct vmm_net {
    struct net_spec backend; /* socket, tap (with bridge), or slirp */
    uint8_t mac[6];
    unsigned queues;     /* queue pairs */
    unsigned queue_size;
    unsigned mtu;        /* 0: none advertised */
    unsigned coalesce_usecs, coalesce_frames;
    const char *pcap; /* a file for a capture of the card's frames, or NULL */
    const char *id; /* NULL: the device manager names it */
};

struct vmm_options {
    const char *kernel;
    const char *initramfs;
    const char *cmdline;
    unsigned cpus;
    uint64_t memory;
    struct vmm_disk disks[VMM_MAX_DISKS];
    unsigned num_disks;
    struct vmm_net nets[VMM_MAX_NETS];
    unsigned num_nets;
    struct vmm_output serial;
    struct vmm_output console; /* virtio-console (hvc0) */
    const char *console_input; /* a file for hvc0's input, or NULL */
    bool rng;
    unsigned pcie_ports; /* free root ports, for hot-plug */
    bool stats; /* print exit counts when the VM stops */
    const char *api_socket; /* the control API's socket, or NULL */
    enum vmm_seccomp seccomp;
    /* Testing the filters: the named thread kind ("main", "vcpu", "io")
     * makes a call outside its list once it is confined. */
    const char *seccomp_test_stray;
};

/* Exit statuses, documented in --help. */
enum vmm_exit {
    VMM_EXIT_POWEROFF = 0,
    VMM_EXIT_ERROR = 1,
    VMM_EXIT_USAGE = 2,
    VMM_EXIT_REBOOT = 3,
    VMM_EXIT_TRIPLE_FAULT = 4,
    VMM_EXIT_SIGNAL = 5,
};

/*
 * Parse argv. Returns -1 after printing --help (exit 0), 0 on success, or
 * VMM_EXIT_USAGE after printing a message that names the bad option and
 * value.
 */
int vmm_parse_options(int argc, char **argv, struct vmm_options *opts);

/* For the option parsers (options.c, options_net.c). */
int vmm_option_bad(const char *option, const char *value, const char *why);
/* A decimal number from min to max: 0, or -1. */
int vmm_parse_count(const char *val, unsigned min, unsigned max,
                    unsigned *out);
/* 0 when id may name the device given by --option original: well formed,
 * not one of the machine's, not another --disk's or --net's. */
int vmm_check_device_id(const char *option, const char *original,
                        const char *id, const struct vmm_options *opts);
/* --disk VALUE (modified in place) appended to opts->disks. */
int vmm_parse_disk(char *value, struct vmm_options *opts);
/* --net VALUE (modified in place) appended to opts->nets. */
int vmm_parse_net(char *value, struct vmm_options *opts);

/*
 * Open every --disk image into images[] (opts->num_disks entries).
 * Returns 0, or VMM_EXIT_USAGE after printing which image cannot be
 * opened and why (nothing is left open). The images log to log.
 */
int vmm_open_disks(const struct vmm_options *opts, struct vmdev_log *log,
                   struct vmdev_block **images);
/* Close what no device took (entries left non-NULL). */
void vmm_close_disks(const struct vmm_options *opts, struct vmdev_block **images);

/*
 * Open each card's pcap= file into captures[] (opts->num_nets entries,
 * NULL for a card without one), before the guest exists. Returns 0, or
 * VMM_EXIT_USAGE after printing which file cannot be written and why
 * (nothing is left open).
 */
int vmm_open_captures(const struct vmm_options *opts,
                      struct vmdev_net_capture **captures);
/* After the machine (whose backends wrote to them) is gone. */
void vmm_close_captures(const struct vmm_options *opts,
                        struct vmdev_net_capture **captures);

#endif
