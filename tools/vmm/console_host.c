/* SPDX-License-Identifier: MIT */
/*
 * hvc0's host side. Input bytes read but not yet taken by the guest wait
 * in buf; while they wait, the input fd is not watched (back-pressure),
 * and the device's input_ready, on the queue's I/O thread, wakes the main
 * loop through ready_fd to offer them again.
 */
#include "console_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vmm_console_host {
    struct vmdev_event_loop *loop;
    struct vmdev_virtio_console *console; /* NULL until started */
    int out_fd;

    int in_fd;       /* -1: no input */
    bool own_in_fd;  /* opened here (input=FILE), not stdin */
    bool pollable;   /* epoll can watch in_fd (not a regular file) */
    bool eof;
    struct vmdev_event_watch *in_watch;
    int ready_fd;
    struct vmdev_event_watch *ready_watch;
    uint8_t buf[4096];
    size_t start, end;
};

static void write_output(void *opaque, const void *buf, size_t len)
{
    struct vmm_console_host *h = opaque;
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(h->out_fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the reader went away; the guest carries on */
        p += n;
        len -= (size_t)n;
    }
}

static void input_readable(void *opaque, uint32_t events);

/* Watch the input fd only while nothing waits for the guest. */
static void watch_input(struct vmm_console_host *h, bool on)
{
    if (!h->pollable || on == (h->in_watch != NULL))
        return;
    if (on) {
        h->in_watch = vmdev_event_loop_add(h->loop, h->in_fd, VMDEV_EVENT_IN,
                                           input_readable, h);
    } else {
        vmdev_event_loop_remove(h->loop, h->in_watch);
        h->in_watch = NULL;
    }
}

/* One read into the empty buffer: true when it brought bytes. */
static bool read_input(struct vmm_console_host *h)
{
    ssize_t n;
    while ((n = read(h->in_fd, h->buf, sizeof(h->buf))) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EAGAIN)
        return false;
    if (n <= 0) {
        h->eof = true; /* end of input, or an error that ends it */
        watch_input(h, false);
        return false;
    }
    h->start = 0;
    h->end = (size_t)n;
    return true;
}

/*
 * Move input to the guest until it has no buffer left or the input no
 * bytes, then wait for whichever is missing. A watched fd (a terminal,
 * pipe or socket, possibly blocking) is read only when epoll says so; a
 * regular file, which epoll cannot watch, is read whenever there is room.
 */
static void pump(struct vmm_console_host *h)
{
    for (;;) {
        if (h->start == h->end) {
            if (h->eof)
                return;
            if (h->pollable) {
                watch_input(h, true);
                return;
            }
            if (!read_input(h))
                return;
        }
        h->start += vmdev_virtio_console_receive(
            h->console, h->buf + h->start, h->end - h->start);
        if (h->start < h->end) {
            watch_input(h, false);
            return;
        }
    }
}

static void input_readable(void *opaque, uint32_t events)
{
    (void)events;
    struct vmm_console_host *h = opaque;
    if (h->start == h->end)
        read_input(h);
    pump(h);
}

static void input_ready(void *opaque, uint32_t events)
{
    (void)events;
    struct vmm_console_host *h = opaque;
    vmdev_eventfd_drain(h->ready_fd);
    pump(h);
}

/* On the queue's I/O thread, with the device locked: only a wake-up. */
static void buffers_posted(void *opaque)
{
    struct vmm_console_host *h = opaque;
    vmdev_eventfd_signal(h->ready_fd);
}

static int open_output(struct vmm_console_host *h,
                       const struct vmm_options *opts)
{
    if (opts->console.kind != VMM_OUTPUT_FILE) {
        h->out_fd = STDOUT_FILENO;
        return 0;
    }
    h->out_fd = open(opts->console.path,
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (h->out_fd < 0) {
        fprintf(stderr, "vmdev-run: --console file=%s: %s\n",
                opts->console.path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_input(struct vmm_console_host *h,
                      const struct vmm_options *opts)
{
    if (opts->console_input) {
        /* A FIFO opened for writing too never reads as ended while its
         * writers come and go, nor before the first one. */
        struct stat st;
        bool fifo = stat(opts->console_input, &st) == 0 && S_ISFIFO(st.st_mode);
        h->in_fd = open(opts->console_input,
                        (fifo ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
        if (h->in_fd < 0) {
            fprintf(stderr, "vmdev-run: --console input=%s: %s\n",
                    opts->console_input, strerror(errno));
            return -1;
        }
        h->own_in_fd = true;
    } else if (opts->console.kind == VMM_OUTPUT_STDIO &&
               opts->serial.kind != VMM_OUTPUT_STDIO) {
        h->in_fd = STDIN_FILENO;
    } else {
        return 0;
    }
    h->ready_fd = vmdev_eventfd_new();
    h->ready_watch = h->ready_fd < 0 ? NULL :
        vmdev_event_loop_add(h->loop, h->ready_fd, VMDEV_EVENT_IN,
                             input_ready, h);
    if (!h->ready_watch) {
        fprintf(stderr, "vmdev-run: --console: cannot watch input: %s\n",
                strerror(errno));
        return -1;
    }
    /* Try the watch once: a regular file is always readable and epoll
     * refuses it; such input is read whenever the guest has room. */
    h->pollable = true;
    watch_input(h, true);
    if (!h->in_watch) {
        if (errno != EPERM) {
            fprintf(stderr, "vmdev-run: --console: cannot watch input: %s\n",
                    strerror(errno));
            return -1;
        }
        h->pollable = false;
    }
    return 0;
}

struct vmm_console_host *vmm_console_host_open(struct vmdev_event_loop *loop,
                                               const struct vmm_options *opts)
{
    struct vmm_console_host *h = calloc(1, sizeof(*h));
    if (!h) {
        fprintf(stderr, "vmdev-run: --console: %s\n", strerror(errno));
        return NULL;
    }
    *h = (struct vmm_console_host){ .loop = loop, .out_fd = -1, .in_fd = -1,
                                    .ready_fd = -1 };
    if (open_output(h, opts) || open_input(h, opts)) {
        vmm_console_host_close(h);
        return NULL;
    }
    return h;
}

struct vmdev_console_output
vmm_console_host_output(struct vmm_console_host *h)
{
    return (struct vmdev_console_output){
        .write = write_output,
        .input_ready = h->in_fd >= 0 ? buffers_posted : NULL,
        .opaque = h,
    };
}

void vmm_console_host_start(struct vmm_console_host *h,
                            struct vmdev_virtio_console *console)
{
    h->console = console;
    if (h->in_fd >= 0)
        pump(h); /* the guest's buffers come later */
}

void vmm_console_host_close(struct vmm_console_host *h)
{
    if (!h)
        return;
    if (h->in_watch)
        vmdev_event_loop_remove(h->loop, h->in_watch);
    if (h->ready_watch)
        vmdev_event_loop_remove(h->loop, h->ready_watch);
    if (h->ready_fd >= 0)
        close(h->ready_fd);
    if (h->own_in_fd)
        close(h->in_fd);
    if (h->out_fd > STDERR_FILENO)
        close(h->out_fd);
    free(h);
}
