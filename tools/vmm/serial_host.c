/* SPDX-License-Identifier: MIT */
/*
 * COM1's host side. Output is written unbuffered, byte by byte, as the
 * guest sends it. Input from stdin is read only while the guest's driver
 * takes it (vmdev_uart16550_rx_accepting): bytes read but not yet taken
 * wait in `pending` with stdin unwatched (back-pressure), and the UART's
 * rx_ready, on a vCPU thread, wakes the main loop through ready_fd to
 * offer them again.
 */
#include "serial_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vmm_serial_host {
    struct vmdev_event_loop *loop;
    const atomic_bool *stopping;
    struct vmdev_uart16550 *uart; /* NULL until started */
    int out_fd;
    bool reads_stdin; /* --serial stdio */
    /* stdin, watched while the guest's driver takes input. */
    struct vmdev_event_watch *in_watch;
    bool in_open; /* stdin not yet at its end */
    bool in_file; /* a regular file, which epoll cannot watch */
    /* Read from stdin, not yet taken by the UART. */
    uint8_t pending[16];
    size_t pending_at, pending_len;
    int ready_fd;
    struct vmdev_event_watch *ready_watch;
};

static void serial_write(void *opaque, uint8_t byte)
{
    struct vmm_serial_host *h = opaque;
    /* Unbuffered: the test harness timestamps console lines on arrival.
     * A signal interrupting a write blocked on a full pipe is the VM
     * stopping: the byte is dropped rather than holding the vCPU. */
    while (write(h->out_fd, &byte, 1) < 0 && errno == EINTR &&
           !atomic_load(h->stopping))
        ;
}

static void input_readable(void *opaque, uint32_t events);

static void watch_input(struct vmm_serial_host *h, bool on)
{
    if (on && !h->in_watch && h->in_open)
        h->in_watch = vmdev_event_loop_add(h->loop, STDIN_FILENO,
                                           VMDEV_EVENT_IN, input_readable, h);
    else if (!on && h->in_watch) {
        vmdev_event_loop_remove(h->loop, h->in_watch);
        h->in_watch = NULL;
    }
}

/*
 * Give the UART the bytes read from stdin that it has not taken: the
 * guest may shrink its FIFO (turn it off, or loopback on) between
 * rx_accepting() and receive(). True once none are left; false after
 * rx_accepting() said 0, whose rx_ready brings us back.
 */
static bool deliver_pending(struct vmm_serial_host *h)
{
    while (h->pending_len) {
        if (!vmdev_uart16550_rx_accepting(h->uart))
            return false;
        size_t n = vmdev_uart16550_receive(h->uart, h->pending + h->pending_at,
                                           h->pending_len);
        h->pending_at += n;
        h->pending_len -= n;
    }
    return true;
}

/* Read up to what the guest's driver takes now into pending and give it
 * to the UART: false when stdin ended (or failed). */
static bool read_input(struct vmm_serial_host *h, size_t space)
{
    ssize_t n = read(STDIN_FILENO, h->pending,
                     space < sizeof(h->pending) ? space : sizeof(h->pending));
    if (n > 0) {
        h->pending_at = 0;
        h->pending_len = (size_t)n;
        deliver_pending(h);
        return true;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN);
}

static void input_readable(void *opaque, uint32_t events)
{
    struct vmm_serial_host *h = opaque;
    (void)events;
    /* Bytes still waiting for the UART, a full FIFO, or no driver
     * listening yet: leave the rest in the host's buffer (back-pressure)
     * and stop watching until the UART says the guest takes more. */
    size_t space = deliver_pending(h) ? vmdev_uart16550_rx_accepting(h->uart)
                                      : 0;
    if (!space) {
        watch_input(h, false);
        return;
    }
    if (!read_input(h, space)) {
        h->in_open = false; /* end of input */
        watch_input(h, false);
    }
}

/* The UART's rx_ready, on a vCPU thread with the UART's lock held. */
static void rx_ready(void *opaque)
{
    struct vmm_serial_host *h = opaque;
    vmdev_eventfd_signal(h->ready_fd);
}

/* stdin a regular file: read as much as the guest takes now; when it
 * takes no more, rx_ready brings us back. */
static void feed_file(struct vmm_serial_host *h)
{
    size_t space;
    while (h->in_open && deliver_pending(h) &&
           (space = vmdev_uart16550_rx_accepting(h->uart)) > 0)
        if (!read_input(h, space))
            h->in_open = false; /* end of input */
}

static void ready(void *opaque, uint32_t events)
{
    struct vmm_serial_host *h = opaque;
    (void)events;
    vmdev_eventfd_drain(h->ready_fd);
    if (!deliver_pending(h))
        return; /* rx_ready comes again */
    if (h->in_file)
        feed_file(h);
    else
        watch_input(h, true);
}

struct vmm_serial_host *vmm_serial_host_open(struct vmdev_event_loop *loop,
                                             const struct vmm_output *serial,
                                             const atomic_bool *stopping)
{
    struct vmm_serial_host *h = calloc(1, sizeof(*h));
    if (!h) {
        fprintf(stderr, "vmdev-run: --serial: %s\n", strerror(errno));
        return NULL;
    }
    h->loop = loop;
    h->stopping = stopping;
    h->ready_fd = -1;
    h->out_fd = STDOUT_FILENO;
    h->reads_stdin = serial->kind == VMM_OUTPUT_STDIO;
    if (serial->kind == VMM_OUTPUT_FILE) {
        h->out_fd = open(serial->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                         0644);
        if (h->out_fd < 0) {
            fprintf(stderr, "vmdev-run: --serial file=%s: %s\n", serial->path,
                    strerror(errno));
            vmm_serial_host_close(h);
            return NULL;
        }
    }
    return h;
}

void vmm_serial_host_callbacks(struct vmm_serial_host *host,
                               struct vmdev_uart16550_config *config)
{
    config->sink = (struct vmdev_byte_sink){ serial_write, host };
    if (host->reads_stdin)
        config->rx_ready = (struct vmdev_uart16550_rx_ready){ rx_ready, host };
}

int vmm_serial_host_start(struct vmm_serial_host *h,
                          struct vmdev_uart16550 *uart)
{
    h->uart = uart;
    if (!h->reads_stdin)
        return 0;
    h->ready_fd = vmdev_eventfd_new();
    h->ready_watch = h->ready_fd < 0
                         ? NULL
                         : vmdev_event_loop_add(h->loop, h->ready_fd,
                                                VMDEV_EVENT_IN, ready, h);
    if (!h->ready_watch) {
        fprintf(stderr, "vmdev-run: --serial: %s\n", strerror(errno));
        return -1;
    }
    h->in_open = true;
    watch_input(h, true);
    if (!h->in_watch && errno == EPERM) {
        /* A regular file (or /dev/null): epoll refuses it, and it is
         * always readable, so it is read whenever the guest takes input,
         * starting once its driver listens. */
        h->in_file = true;
        feed_file(h);
    } else if (!h->in_watch) {
        fprintf(stderr, "vmdev-run: not reading stdin: %s\n", strerror(errno));
        h->in_open = false;
    }
    return 0;
}

void vmm_serial_host_close(struct vmm_serial_host *h)
{
    if (!h)
        return;
    h->in_open = false;
    watch_input(h, false);
    if (h->ready_watch)
        vmdev_event_loop_remove(h->loop, h->ready_watch);
    if (h->ready_fd >= 0)
        close(h->ready_fd);
    if (h->out_fd > STDERR_FILENO)
        close(h->out_fd);
    free(h);
}
