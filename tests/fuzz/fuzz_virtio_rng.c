/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng through its own device code, driven by a hostile driver
 * (virtio_chain_rig.h): chains well formed or not, kicks, resets and
 * status writes no driver should make, with an entropy source that counts
 * 0, 1, 2, ... and sometimes fails. After every step the target checks
 * that
 *  - the device wrote only its used ring and the writable buffers of the
 *    chains it used;
 *  - chains complete in order, none with a used length above its
 *    writable length (nor VMDEV_VIRTIO_RNG_MAX_REQUEST);
 *  - a kick either serves every chain or leaves the device in
 *    DEVICE_NEEDS_RESET;
 *  - a well-formed chain gets all it asked for (up to the cap) while the
 *    source works, and, with only well-formed chains since the reset,
 *    its buffers hold the source's bytes in order.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "virtio_chain_rig.h"
#include "vmdev/virtio_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct source {
    uint8_t next;   /* the next byte it gives */
    bool broken;    /* fails every request */
    unsigned calls;
};

static ssize_t counting_source(void *opaque, void *buf, size_t len)
{
    struct source *s = opaque;
    s->calls++;
    if (s->broken)
        return -EIO;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = s->next++;
    return (ssize_t)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct rig r;
    if (!rig_mem_new(&r, data[0]))
        return 0;
    struct source source = { 0, false, 0 };
    struct vmdev_rng_source src = { counting_source, &source };
    struct vmdev_virtio_rng *rng = vmdev_virtio_rng_new("fuzz-rng", r.mem, &src);
    if (!rng)
        abort();
    rig_start(&r, vmdev_virtio_rng_device(rng), 1, data[0]);

    /* Only well-formed chains since the reset: a hostile chain's next may
     * lead into another chain's descriptors (2.7.5: the driver gave them
     * to the device twice), whose buffer it then writes after that chain
     * was used, so their contents are checked only while this holds. */
    bool predictable = true;
    const uint8_t *in = data + 1, *end = data + size;
    while (in < end) {
        uint8_t op = *in++;
        const struct rig_chain *used[RIG_QUEUE_SIZE];
        unsigned num_used = 0;
        /* The driver's own writes need no checking, the device's do. */
        bool driver_only = (op & 3) == 0;
        if (!driver_only)
            rig_snapshot(&r);
        switch (op & 3) {
        case 0: { /* post a chain */
            const uint8_t *start = in;
            if (!rig_add_chain(&r, 0, &in, end) && in == start)
                in = end;
            const struct rig_queue *rq = &r.queues[0];
            if (rq->num_out &&
                rq->out[(rq->first_out + rq->num_out - 1) % RIG_QUEUE_SIZE]
                    .hostile)
                predictable = false;
            break;
        }
        case 1: { /* kick, the source working or not */
            source.broken = op & 0x80;
            bool running = rig_running(&r);
            uint8_t first = source.next;
            vdrv_notify(r.dev, 0);
            const struct rig_chain *c;
            uint32_t len;
            while ((c = rig_take_used(&r, 0, &len))) {
                used[num_used++] = c;
                uint64_t room = rig_writable_len(c);
                rig_check(len <= room && len <= VMDEV_VIRTIO_RNG_MAX_REQUEST);
                if (c->hostile) {
                    first = (uint8_t)(first + len); /* went who knows where */
                    continue;
                }
                rig_check(len == (source.broken ? 0
                                  : room < VMDEV_VIRTIO_RNG_MAX_REQUEST
                                      ? room
                                      : VMDEV_VIRTIO_RNG_MAX_REQUEST));
                uint32_t left = len;
                for (unsigned i = 0; i < c->num_bufs && left; i++) {
                    const struct rig_buffer *b = &c->bufs[i];
                    if (!b->writable)
                        continue;
                    uint32_t n = b->len < left ? b->len : left;
                    for (uint32_t k = 0; k < n; k++, first++)
                        rig_check(!predictable ||
                                  *rig_host(&r, b->gpa + k) == first);
                    left -= n;
                }
            }
            if (running)
                rig_check(
                    rig_all_used(&r, 0) ||
                    (rig_status(&r) & VMDEV_VIRTIO_STATUS_DEVICE_NEEDS_RESET));
            rig_check(first == source.next); /* every byte given is used */
            break;
        }
        default: /* a reset, or a status write no driver should make;
                    after a reset (0 included) the driver starts again */
            if (op & 1)
                rig_set_status(&r, (uint8_t)(op >> 3));
            if (!(op & 1) || !rig_status(&r)) {
                rig_reset(&r);
                rig_snapshot(&r);
                predictable = true;
            }
            break;
        }
        if (!driver_only)
            rig_check_writes(&r, used, num_used);
    }
    vmdev_virtio_rng_free(rng);
    rig_mem_free(&r);
    return 0;
}
