/* SPDX-License-Identifier: MIT */
/*
 * The host side of vmdev-run's serial port (COM1): its output to a file
 * or stdout, and, with --serial stdio, its input from stdin.
 */
#ifndef VMM_SERIAL_HOST_H
#define VMM_SERIAL_HOST_H

#include <stdatomic.h>

#include "options.h"
#include "vmdev/event_loop.h"
#include "vmdev/uart16550.h"

struct vmm_serial_host;

/* Open --serial's output (`serial` not OFF); stdin is read on loop (the
 * main loop) once started. A write blocked on a full pipe gives up when
 * *stopping is set. NULL after printing why. */
struct vmm_serial_host *vmm_serial_host_open(struct vmdev_event_loop *loop,
                                             const struct vmm_output *serial,
                                             const atomic_bool *stopping);

/* The UART's output sink and its rx_ready (the guest takes more input),
 * for its vmdev_uart16550_config. */
void vmm_serial_host_callbacks(struct vmm_serial_host *host,
                               struct vmdev_uart16550_config *config);

/* The UART exists: start moving stdin to it. 0, or -1 after printing
 * why. */
int vmm_serial_host_start(struct vmm_serial_host *host,
                          struct vmdev_uart16550 *uart);

/* Once the UART is gone, on the idle main loop. Accepts NULL. */
void vmm_serial_host_close(struct vmm_serial_host *host);

#endif
