/* SPDX-License-Identifier: MIT */
/*
 * virtio-console through its own device code, driven by a hostile driver
 * (virtio_chain_rig.h): chains on the receive and transmit queues, well
 * formed or not, kicks, host input through vmdev_virtio_console_receive,
 * device resets and status writes no driver should make. After every
 * step the target checks that
 *  - the device wrote only its used rings and the writable buffers of
 *    the chains it used;
 *  - chains complete in order, transmit ones with length 0, receive ones
 *    with no more than their writable length;
 *  - a kick of the transmit queue either serves every chain on it or
 *    leaves the device in DEVICE_NEEDS_RESET, and so does host input that
 *    does not all fit;
 *  - while only well-formed chains were posted since the last reset, the
 *    console's output is the readable bytes of the transmit chains used,
 *    in order, receive() returns what the used lengths add up to, and
 *    the receive buffers hold the host's bytes in order.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_chain_rig.h"
#include "vmdev/virtio_console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECEIVEQ 0
#define TRANSMITQ 1
/* What one step can send: a ring of chains of 4 buffers of 255 bytes. */
#define OUTPUT_MAX (RIG_QUEUE_SIZE * 4 * 255)

/* The console's output not yet matched against transmit chains. */
struct output {
    uint8_t bytes[OUTPUT_MAX];
    size_t len;
    size_t checked;
};

static void take_output(void *opaque, const void *buf, size_t len)
{
    struct output *o = opaque;
    rig_check(len <= OUTPUT_MAX - o->len);
    memcpy(o->bytes + o->len, buf, len);
    o->len += len;
}

/* Match a used transmit chain's readable bytes against the output. */
static void check_transmitted(struct rig *r, struct output *o,
                              const struct rig_chain *c, bool predictable)
{
    for (unsigned i = 0; i < c->num_bufs; i++) {
        const struct rig_buffer *b = &c->bufs[i];
        if (b->writable)
            continue;
        if (predictable) {
            rig_check(b->len <= o->len - o->checked);
            rig_check(!memcmp(o->bytes + o->checked, rig_host(r, b->gpa),
                              b->len));
        }
        o->checked += b->len;
    }
}

/* Take the transmit queue's used chains, each with length 0 and, while
 * predictable, its bytes the next of the output. */
static void take_transmitted(struct rig *r, struct output *o,
                             const struct rig_chain **used,
                             unsigned *num_used, bool predictable)
{
    const struct rig_chain *c;
    uint32_t len;
    while ((c = rig_take_used(r, TRANSMITQ, &len))) {
        used[(*num_used)++] = c;
        rig_check(len == 0);
        check_transmitted(r, o, c, predictable && !c->hostile);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct rig r;
    struct output o = { .len = 0 };
    if (!rig_mem_new(&r, data[0]))
        return 0;
    struct vmdev_console_output sink = { take_output, NULL, &o };
    struct vmdev_virtio_console *con =
        vmdev_virtio_console_new("fuzz-console", r.mem, &sink);
    if (!con)
        abort();
    rig_start(&r, vmdev_virtio_console_device(con), 2, data[0]);
    bool predictable = true; /* only well-formed chains since the reset */
    uint8_t host_byte = 0;   /* host input counts 0, 1, 2, ... */

    const uint8_t *in = data + 1, *end = data + size;
    while (in < end) {
        uint8_t op = *in++;
        const struct rig_chain *used[RIG_QUEUE_SIZE];
        unsigned num_used = 0;
        uint32_t len;
        /* The driver's own writes need no checking, the device's do. */
        bool driver_only = (op & 7) < 2;
        if (!driver_only)
            rig_snapshot(&r);
        switch (op & 7) {
        case 0:
        case 1: { /* post a chain */
            unsigned q = op & 1;
            const uint8_t *start = in;
            if (!rig_add_chain(&r, q, &in, end) && in == start)
                in = end;
            const struct rig_queue *rq = &r.queues[q];
            if (rq->num_out &&
                rq->out[(rq->first_out + rq->num_out - 1) % RIG_QUEUE_SIZE]
                    .hostile)
                predictable = false;
            break;
        }
        case 2:
        case 3: { /* kick a queue */
            unsigned q = op & 1;
            bool running = rig_running(&r);
            vdrv_notify(r.dev, (uint16_t)q);
            if (q == TRANSMITQ)
                take_transmitted(&r, &o, used, &num_used, predictable);
            /* Receive buffers wait for host input: nothing is used. */
            rig_check(!rig_take_used(&r, RECEIVEQ, &len));
            if (q == TRANSMITQ && running)
                rig_check(
                    rig_all_used(&r, q) ||
                    (rig_status(&r) & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET));
            break;
        }
        case 4:
        case 5: { /* host input of up to 2 KiB */
            size_t want = (size_t)(op >> 3) << 6 | (op >> 3);
            uint8_t bytes[2048];
            for (size_t k = 0; k < want; k++)
                bytes[k] = (uint8_t)(host_byte + k);
            size_t taken = vmdev_virtio_console_receive(con, bytes, want);
            rig_check(taken <= want);
            uint64_t sum = 0;
            size_t at = 0;
            const struct rig_chain *c;
            while ((c = rig_take_used(&r, RECEIVEQ, &len))) {
                used[num_used++] = c;
                if (c->hostile)
                    predictable = false;
                rig_check(len <= rig_writable_len(c));
                sum += len;
                /* The buffers hold the bytes in order, up to len. */
                for (unsigned i = 0; predictable && i < c->num_bufs; i++) {
                    const struct rig_buffer *b = &c->bufs[i];
                    if (!b->writable || !len)
                        continue;
                    uint32_t n = b->len < len ? b->len : len;
                    rig_check(!memcmp(rig_host(&r, b->gpa), bytes + at, n));
                    at += n;
                    len -= n;
                }
            }
            if (predictable)
                rig_check(sum == taken);
            if (taken < want && rig_running(&r))
                rig_check(rig_all_used(&r, RECEIVEQ));
            host_byte = (uint8_t)(host_byte + taken);
            break;
        }
        default: /* a reset, or a status write no driver should make;
                    after a reset (0 included) the driver starts again */
            if (op & 1) {
                /* DRIVER_OK again serves the transmit queue. */
                rig_set_status(&r, (uint8_t)(op >> 3));
                take_transmitted(&r, &o, used, &num_used, predictable);
            }
            if (!(op & 1) || !rig_status(&r)) {
                rig_reset(&r);
                predictable = true;
                o.len = o.checked = 0;
                rig_snapshot(&r);
            }
            break;
        }
        if (!driver_only)
            rig_check_writes(&r, used, num_used);
        if (predictable)
            rig_check(o.checked == o.len);
        o.len = o.checked = 0; /* matched, or not to be */
    }
    vmdev_virtio_console_free(con);
    rig_mem_free(&r);
    return 0;
}
