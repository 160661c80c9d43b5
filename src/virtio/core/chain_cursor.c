/* SPDX-License-Identifier: MIT */
/*
 * Reader and writer cursors over a popped chain. The segments were
 * translated and bounded by the chain walker; a cursor only moves within
 * them, so a device can never read or write past what the driver gave.
 */
#include <errno.h>
#include <string.h>

#include "vmdev/virtqueue.h"

void vmdev_virtqueue_reader_init(struct vmdev_virtqueue_reader *r,
                          const struct vmdev_virtqueue_chain *chain)
{
    r->chain = chain;
    r->seg = 0;
    r->offset = 0;
    r->remaining = chain->readable_len;
}

/* Copy (buf != NULL) or skip up to len readable bytes. */
static size_t reader_advance(struct vmdev_virtqueue_reader *r, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len && r->seg < r->chain->num_readable) {
        const struct vmdev_virtqueue_segment *s = &r->chain->segments[r->seg];
        size_t n = s->len - r->offset;
        if (n > len - done)
            n = len - done;
        if (buf)
            memcpy((uint8_t *)buf + done, (const uint8_t *)s->host + r->offset,
                   n);
        done += n;
        r->offset += (uint32_t)n;
        if (r->offset == s->len) {
            r->seg++;
            r->offset = 0;
        }
    }
    r->remaining -= done;
    return done;
}

size_t vmdev_virtqueue_read(struct vmdev_virtqueue_reader *r, void *buf, size_t len)
{
    return reader_advance(r, buf, len);
}

int vmdev_virtqueue_read_exact(struct vmdev_virtqueue_reader *r, void *buf, size_t len)
{
    if (len > r->remaining)
        return -EINVAL;
    reader_advance(r, buf, len);
    return 0;
}

size_t vmdev_virtqueue_skip(struct vmdev_virtqueue_reader *r, size_t len)
{
    return reader_advance(r, NULL, len);
}

void vmdev_virtqueue_writer_init(struct vmdev_virtqueue_writer *w,
                          const struct vmdev_virtqueue_chain *chain)
{
    w->chain = chain;
    w->seg = chain->num_readable;
    w->offset = 0;
    w->remaining = chain->writable_len;
    w->written = 0;
}

/* Copy (buf != NULL) or skip up to len writable bytes. */
static size_t writer_advance(struct vmdev_virtqueue_writer *w, const void *buf,
                             size_t len)
{
    unsigned end = w->chain->num_readable + w->chain->num_writable;
    size_t done = 0;
    while (done < len && w->seg < end) {
        const struct vmdev_virtqueue_segment *s = &w->chain->segments[w->seg];
        size_t n = s->len - w->offset;
        if (n > len - done)
            n = len - done;
        if (buf)
            memcpy((uint8_t *)s->host + w->offset,
                   (const uint8_t *)buf + done, n);
        done += n;
        w->offset += (uint32_t)n;
        if (w->offset == s->len) {
            w->seg++;
            w->offset = 0;
        }
    }
    w->remaining -= done;
    w->written += done;
    return done;
}

size_t vmdev_virtqueue_write(struct vmdev_virtqueue_writer *w, const void *buf, size_t len)
{
    return writer_advance(w, buf, len);
}

size_t vmdev_virtqueue_writer_skip(struct vmdev_virtqueue_writer *w, size_t len)
{
    return writer_advance(w, NULL, len);
}

int vmdev_virtqueue_write_exact(struct vmdev_virtqueue_writer *w, const void *buf,
                         size_t len)
{
    if (len > w->remaining)
        return -EINVAL;
    vmdev_virtqueue_write(w, buf, len);
    return 0;
}
