/* SPDX-License-Identifier: MIT */
/*
 * Packet capture: the frames a backend moves, written to a pcap file with
 * libpcap's dumper (Ethernet link type, nanosecond timestamps). Several
 * backends (a tap's queues, each on its own I/O thread) may share one
 * capture, so each record is written under its lock; each is flushed as
 * it is written, so a VMM that dies leaves every frame before it. A write
 * that fails (a full disk) is remembered and reported by
 * vmdev_net_capture_flush.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

struct vmdev_net_capture {
    pthread_mutex_t lock;
    pcap_t *dead; /* the link type and precision the dumper writes */
    pcap_dumper_t *dumper;
    uint8_t *gather; /* a frame from several iovecs */
    uint64_t frames;
    int error; /* the first write's failure (errno), reported by flush */
};

struct vmdev_net_capture *vmdev_net_capture_new(const char *path, char *why,
                                                size_t why_len)
{
    char scratch[1];
    if (!why_len) {
        why = scratch;
        why_len = sizeof(scratch);
    }
    struct vmdev_net_capture *c = calloc(1, sizeof(*c));
    if (!c || !(c->gather = malloc(VMDEV_NET_MAX_FRAME))) {
        free(c);
        snprintf(why, why_len, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->dead = pcap_open_dead_with_tstamp_precision(
        DLT_EN10MB, VMDEV_NET_MAX_FRAME, PCAP_TSTAMP_PRECISION_NANO);
    if (!c->dead) {
        snprintf(why, why_len, "libpcap cannot make a capture");
        vmdev_net_capture_free(c);
        errno = ENOMEM;
        return NULL;
    }
    errno = 0;
    c->dumper = pcap_dump_open(c->dead, path);
    if (!c->dumper) {
        /* pcap_geterr says why, with the path; errno may be lost. */
        int err = errno ? errno : EIO;
        snprintf(why, why_len, "%s", pcap_geterr(c->dead));
        vmdev_net_capture_free(c);
        errno = err;
        return NULL;
    }
    return c;
}

static void note_write(struct vmdev_net_capture *c, int ret)
{
    if ((ret < 0 || ferror(pcap_dump_file(c->dumper))) && !c->error)
        c->error = errno ? errno : EIO;
}

int vmdev_net_capture_flush(struct vmdev_net_capture *c)
{
    pthread_mutex_lock(&c->lock);
    errno = 0;
    note_write(c, pcap_dump_flush(c->dumper));
    int err = c->error;
    pthread_mutex_unlock(&c->lock);
    return -err;
}

void vmdev_net_capture_free(struct vmdev_net_capture *c)
{
    if (!c)
        return;
    if (c->dumper)
        pcap_dump_close(c->dumper);
    if (c->dead)
        pcap_close(c->dead);
    pthread_mutex_destroy(&c->lock);
    free(c->gather);
    free(c);
}

uint64_t vmdev_net_capture_frames(struct vmdev_net_capture *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t n = c->frames;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void net_capture_now(struct timespec *when)
{
    clock_gettime(CLOCK_REALTIME, when);
}

void net_capture_record(struct vmdev_net_capture *c,
                        const struct timespec *when, const struct iovec *iov,
                        unsigned iovcnt, size_t len)
{
    /* With nanosecond precision the "microseconds" field holds
     * nanoseconds (pcap_open_dead_with_tstamp_precision). */
    struct pcap_pkthdr hdr = {
        .ts = { .tv_sec = when->tv_sec, .tv_usec = when->tv_nsec },
        .caplen = (bpf_u_int32)len,
        .len = (bpf_u_int32)len,
    };
    pthread_mutex_lock(&c->lock);
    const uint8_t *frame = c->gather;
    if (iovcnt == 1) {
        frame = iov[0].iov_base;
    } else { /* len is at most VMDEV_NET_MAX_FRAME (the caller's) */
        size_t at = 0;
        for (unsigned i = 0; i < iovcnt; i++) {
            memcpy(c->gather + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    errno = 0;
    pcap_dump((u_char *)c->dumper, &hdr, frame);
    note_write(c, pcap_dump_flush(c->dumper));
    c->frames++;
    pthread_mutex_unlock(&c->lock);
}
