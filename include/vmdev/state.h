/* SPDX-License-Identifier: MIT */
/*
 * Device state save/restore: a versioned, self-describing format.
 *
 * A snapshot is the magic "VMDEVST1" followed by sections, one per device:
 *   u16 name length, name bytes, u32 section version, u32 payload length,
 *   payload.
 * A payload is a sequence of fields:
 *   u8 type, u8 key length, key bytes, u32 value length, value bytes.
 * All integers are little-endian. Fields are found by key, so a reader can
 * skip fields it does not know and detect fields it needs but are absent.
 *
 * A snapshot is input like an image file: every length is checked against
 * the buffer, and each device validates the values it restores (indices
 * below sizes, registers within their ranges) before applying any.
 */
#ifndef VMDEV_STATE_H
#define VMDEV_STATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_STATE_MAGIC "VMDEVST1"

enum vmdev_state_type {
    VMDEV_STATE_U8 = 1,
    VMDEV_STATE_U16 = 2,
    VMDEV_STATE_U32 = 3,
    VMDEV_STATE_U64 = 4,
    VMDEV_STATE_BYTES = 5,
};

/* Writer: a growable buffer. Errors are sticky and reported at the end. */
struct vmdev_state_writer {
    uint8_t *data;
    size_t len, capacity;
    size_t section_start; /* offset of the open section's payload length */
    int error;
};

void vmdev_state_writer_init(struct vmdev_state_writer *w);
void vmdev_state_writer_release(struct vmdev_state_writer *w);
void vmdev_state_begin_section(struct vmdev_state_writer *w, const char *name,
                               uint32_t version);
void vmdev_state_end_section(struct vmdev_state_writer *w);
void vmdev_state_put_u8(struct vmdev_state_writer *w, const char *key,
                        uint8_t v);
void vmdev_state_put_u16(struct vmdev_state_writer *w, const char *key,
                         uint16_t v);
void vmdev_state_put_u32(struct vmdev_state_writer *w, const char *key,
                         uint32_t v);
void vmdev_state_put_u64(struct vmdev_state_writer *w, const char *key,
                         uint64_t v);
void vmdev_state_put_bytes(struct vmdev_state_writer *w, const char *key,
                           const void *data, size_t len);
/* 0, or the first error (-ENOMEM, -EINVAL for a misuse such as a field
 * outside a section or an over-long key). */
__attribute__((warn_unused_result))
int vmdev_state_writer_finish(struct vmdev_state_writer *w);

/* A section found in a snapshot; fields are looked up inside it. */
struct vmdev_state_section {
    const uint8_t *payload;
    size_t len;
    uint32_t version;
};

/*
 * Find the section called name in snapshot [data, data + len). Returns 0,
 * -EINVAL when the snapshot is malformed anywhere before the section, or
 * -ENOENT.
 */
__attribute__((warn_unused_result))
int vmdev_state_find_section(const void *data, size_t len, const char *name,
                             struct vmdev_state_section *section);

/* The same for a device's restore: also -EINVAL when the section has
 * another version than the one this reader knows. */
__attribute__((warn_unused_result))
int vmdev_state_open_section(const void *data, size_t len, const char *name,
                             uint32_t version,
                             struct vmdev_state_section *section);

/* Return 0, -ENOENT (no such key), or -EINVAL (malformed, wrong type). */
__attribute__((warn_unused_result))
int vmdev_state_get_u8(const struct vmdev_state_section *s, const char *key,
                       uint8_t *v);
__attribute__((warn_unused_result))
int vmdev_state_get_u16(const struct vmdev_state_section *s, const char *key,
                        uint16_t *v);
__attribute__((warn_unused_result))
int vmdev_state_get_u32(const struct vmdev_state_section *s, const char *key,
                        uint32_t *v);
__attribute__((warn_unused_result))
int vmdev_state_get_u64(const struct vmdev_state_section *s, const char *key,
                        uint64_t *v);
/* Copies exactly len bytes; -EINVAL when the stored length differs. */
__attribute__((warn_unused_result))
int vmdev_state_get_bytes(const struct vmdev_state_section *s, const char *key,
                          void *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif
