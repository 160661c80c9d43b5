/* SPDX-License-Identifier: MIT */
#include "vmdev/state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LEN 8

void vmdev_state_writer_init(struct vmdev_state_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->section_start = SIZE_MAX;
}

void vmdev_state_writer_release(struct vmdev_state_writer *w)
{
    free(w->data);
    vmdev_state_writer_init(w);
}

static bool reserve(struct vmdev_state_writer *w, size_t more)
{
    if (w->error)
        return false;
    if (more > SIZE_MAX / 2 - w->len) {
        w->error = -ENOMEM;
        return false;
    }
    if (w->len + more <= w->capacity)
        return true;
    size_t cap = w->capacity ? w->capacity : 256;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *grown = realloc(w->data, cap);
    if (!grown) {
        w->error = -ENOMEM;
        return false;
    }
    w->data = grown;
    w->capacity = cap;
    return true;
}

static void append(struct vmdev_state_writer *w, const void *p, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

static void store_le(uint8_t *b, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void append_le(struct vmdev_state_writer *w, uint64_t v, unsigned n)
{
    uint8_t b[8];
    store_le(b, v, n);
    append(w, b, n);
}

static uint64_t load_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void vmdev_state_begin_section(struct vmdev_state_writer *w, const char *name,
                               uint32_t version)
{
    size_t name_len = strlen(name);
    if (w->section_start != SIZE_MAX || name_len > UINT16_MAX) {
        w->error = w->error ? w->error : -EINVAL;
        return;
    }
    if (w->len == 0)
        append(w, VMDEV_STATE_MAGIC, MAGIC_LEN);
    append_le(w, name_len, 2);
    append(w, name, name_len);
    append_le(w, version, 4);
    w->section_start = w->len;
    append_le(w, 0, 4); /* payload length, patched by end_section */
}

void vmdev_state_end_section(struct vmdev_state_writer *w)
{
    if (w->section_start == SIZE_MAX) {
        w->error = w->error ? w->error : -EINVAL;
        return;
    }
    if (!w->error) {
        size_t payload = w->len - w->section_start - 4;
        if (payload > UINT32_MAX) {
            w->error = -EINVAL;
        } else {
            store_le(w->data + w->section_start, payload, 4);
        }
    }
    w->section_start = SIZE_MAX;
}

static void put_field(struct vmdev_state_writer *w, enum vmdev_state_type type,
                      const char *key, const void *value, size_t len)
{
    size_t key_len = strlen(key);
    if (w->section_start == SIZE_MAX || key_len > UINT8_MAX ||
        len > UINT32_MAX) {
        w->error = w->error ? w->error : -EINVAL;
        return;
    }
    append_le(w, type, 1);
    append_le(w, key_len, 1);
    append(w, key, key_len);
    append_le(w, len, 4);
    append(w, value, len);
}

static void put_int(struct vmdev_state_writer *w, enum vmdev_state_type type,
                    const char *key, uint64_t v, unsigned n)
{
    uint8_t b[8];
    store_le(b, v, n);
    put_field(w, type, key, b, n);
}

void vmdev_state_put_u8(struct vmdev_state_writer *w, const char *key,
                        uint8_t v)
{
    put_int(w, VMDEV_STATE_U8, key, v, 1);
}

void vmdev_state_put_u16(struct vmdev_state_writer *w, const char *key,
                         uint16_t v)
{
    put_int(w, VMDEV_STATE_U16, key, v, 2);
}

void vmdev_state_put_u32(struct vmdev_state_writer *w, const char *key,
                         uint32_t v)
{
    put_int(w, VMDEV_STATE_U32, key, v, 4);
}

void vmdev_state_put_u64(struct vmdev_state_writer *w, const char *key,
                         uint64_t v)
{
    put_int(w, VMDEV_STATE_U64, key, v, 8);
}

void vmdev_state_put_bytes(struct vmdev_state_writer *w, const char *key,
                           const void *data, size_t len)
{
    put_field(w, VMDEV_STATE_BYTES, key, data, len);
}

int vmdev_state_writer_finish(struct vmdev_state_writer *w)
{
    if (!w->error && w->section_start != SIZE_MAX)
        w->error = -EINVAL;
    return w->error;
}

/* A bounds-checked cursor over untrusted bytes. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take_le(struct cursor *c, unsigned n, uint64_t *v)
{
    const uint8_t *p;
    if (!take(c, n, &p))
        return false;
    *v = load_le(p, n);
    return true;
}

int vmdev_state_find_section(const void *data, size_t len, const char *name,
                             struct vmdev_state_section *section)
{
    struct cursor c = { data, len };
    const uint8_t *magic;
    if (!take(&c, MAGIC_LEN, &magic) ||
        memcmp(magic, VMDEV_STATE_MAGIC, MAGIC_LEN) != 0)
        return -EINVAL;
    size_t want = strlen(name);
    while (c.left) {
        uint64_t name_len, version, payload_len;
        const uint8_t *got, *payload;
        if (!take_le(&c, 2, &name_len) || !take(&c, name_len, &got) ||
            !take_le(&c, 4, &version) || !take_le(&c, 4, &payload_len) ||
            !take(&c, payload_len, &payload))
            return -EINVAL;
        if (name_len == want && memcmp(got, name, want) == 0) {
            section->payload = payload;
            section->len = payload_len;
            section->version = (uint32_t)version;
            return 0;
        }
    }
    return -ENOENT;
}

int vmdev_state_open_section(const void *data, size_t len, const char *name,
                             uint32_t version,
                             struct vmdev_state_section *section)
{
    int ret = vmdev_state_find_section(data, len, name, section);
    if (ret)
        return ret;
    return section->version == version ? 0 : -EINVAL;
}

static int find_field(const struct vmdev_state_section *s, const char *key,
                      enum vmdev_state_type type, const uint8_t **value,
                      size_t *value_len)
{
    struct cursor c = { s->payload, s->len };
    size_t want = strlen(key);
    while (c.left) {
        uint64_t field_type, key_len, len;
        const uint8_t *got, *v;
        if (!take_le(&c, 1, &field_type) || !take_le(&c, 1, &key_len) ||
            !take(&c, key_len, &got) || !take_le(&c, 4, &len) ||
            !take(&c, len, &v))
            return -EINVAL;
        if (key_len == want && memcmp(got, key, want) == 0) {
            if (field_type != type)
                return -EINVAL;
            *value = v;
            *value_len = len;
            return 0;
        }
    }
    return -ENOENT;
}

static int get_int(const struct vmdev_state_section *s, const char *key,
                   enum vmdev_state_type type, unsigned n, uint64_t *v)
{
    const uint8_t *value;
    size_t len;
    int ret = find_field(s, key, type, &value, &len);
    if (ret)
        return ret;
    if (len != n)
        return -EINVAL;
    *v = load_le(value, n);
    return 0;
}

int vmdev_state_get_u8(const struct vmdev_state_section *s, const char *key,
                       uint8_t *v)
{
    uint64_t x;
    int ret = get_int(s, key, VMDEV_STATE_U8, 1, &x);
    if (!ret)
        *v = (uint8_t)x;
    return ret;
}

int vmdev_state_get_u16(const struct vmdev_state_section *s, const char *key,
                        uint16_t *v)
{
    uint64_t x;
    int ret = get_int(s, key, VMDEV_STATE_U16, 2, &x);
    if (!ret)
        *v = (uint16_t)x;
    return ret;
}

int vmdev_state_get_u32(const struct vmdev_state_section *s, const char *key,
                        uint32_t *v)
{
    uint64_t x;
    int ret = get_int(s, key, VMDEV_STATE_U32, 4, &x);
    if (!ret)
        *v = (uint32_t)x;
    return ret;
}

int vmdev_state_get_u64(const struct vmdev_state_section *s, const char *key,
                        uint64_t *v)
{
    return get_int(s, key, VMDEV_STATE_U64, 8, v);
}

int vmdev_state_get_bytes(const struct vmdev_state_section *s, const char *key,
                          void *out, size_t len)
{
    const uint8_t *value;
    size_t got;
    int ret = find_field(s, key, VMDEV_STATE_BYTES, &value, &got);
    if (ret)
        return ret;
    if (got != len)
        return -EINVAL;
    memcpy(out, value, len);
    return 0;
}
