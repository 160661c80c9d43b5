/* SPDX-License-Identifier: MIT */
/*
 * The host side of vmdev-run's virtio console (hvc0): its output to a
 * file or stdout, its input from --console input=FILE (a file or a FIFO)
 * or stdin.
 */
#ifndef VMM_CONSOLE_HOST_H
#define VMM_CONSOLE_HOST_H

#include "options.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_console.h"

struct vmm_console_host;

/* Open --console's output and input; input is served on loop (the main
 * loop). NULL after printing why. */
struct vmm_console_host *vmm_console_host_open(struct vmdev_event_loop *loop,
                                               const struct vmm_options *opts);

/* The device's callbacks: output written to the host, and, with input,
 * the wake-up when the guest has buffers for more. */
struct vmdev_console_output
vmm_console_host_output(struct vmm_console_host *host);

/* The device exists: start moving input to it. */
void vmm_console_host_start(struct vmm_console_host *host,
                            struct vmdev_virtio_console *console);

/* Once the device (and its I/O thread) is gone, on the idle main loop. */
void vmm_console_host_close(struct vmm_console_host *host);

#endif
