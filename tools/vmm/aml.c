/* SPDX-License-Identifier: MIT */
#include "aml.h"

#include <string.h>

/* Opcodes, ACPI 6.5, 20.3. */
#define ZERO_OP 0x00
#define ONE_OP 0x01
#define NAME_OP 0x08
#define BYTE_PREFIX 0x0a
#define WORD_PREFIX 0x0b
#define DWORD_PREFIX 0x0c
#define STRING_PREFIX 0x0d
#define QWORD_PREFIX 0x0e
#define SCOPE_OP 0x10
#define BUFFER_OP 0x11
#define PACKAGE_OP 0x12
#define METHOD_OP 0x14
#define DUAL_NAME_PREFIX 0x2e
#define MULTI_NAME_PREFIX 0x2f
#define EXT_OP_PREFIX 0x5b
#define DEVICE_OP 0x82
#define ARG0_OP 0x68
#define RETURN_OP 0xa4
#define ROOT_CHAR '\\'

void aml_init(struct aml *a, uint8_t *buf, size_t capacity)
{
    memset(a, 0, sizeof(*a));
    a->buf = buf;
    a->capacity = capacity;
}

void aml_bytes(struct aml *a, const void *data, size_t len)
{
    if (a->error || len > a->capacity - a->len) {
        a->error = -1;
        return;
    }
    memcpy(a->buf + a->len, data, len);
    a->len += len;
}

static void byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void le(struct aml *a, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        byte(a, (uint8_t)(v >> (8 * i)));
}

/* 20.2.2: NameSeg is four characters; a path joins them with dots. */
void aml_namestring(struct aml *a, const char *path)
{
    if (*path == ROOT_CHAR) {
        byte(a, ROOT_CHAR);
        path++;
    }
    size_t len = strlen(path);
    size_t segments = (len + 1) / 5;
    if (len == 0 || (len + 1) % 5 || segments > 255) {
        a->error = -1;
        return;
    }
    if (segments == 2) {
        byte(a, DUAL_NAME_PREFIX);
    } else if (segments > 2) {
        byte(a, MULTI_NAME_PREFIX);
        byte(a, (uint8_t)segments);
    }
    for (size_t s = 0; s < segments; s++)
        aml_bytes(a, path + 5 * s, 4);
}

void aml_integer(struct aml *a, uint64_t value)
{
    if (value == 0) {
        byte(a, ZERO_OP);
    } else if (value == 1) {
        byte(a, ONE_OP);
    } else if (value <= UINT8_MAX) {
        byte(a, BYTE_PREFIX);
        le(a, value, 1);
    } else if (value <= UINT16_MAX) {
        byte(a, WORD_PREFIX);
        le(a, value, 2);
    } else if (value <= UINT32_MAX) {
        byte(a, DWORD_PREFIX);
        le(a, value, 4);
    } else {
        byte(a, QWORD_PREFIX);
        le(a, value, 8);
    }
}

void aml_dword(struct aml *a, uint32_t value)
{
    byte(a, DWORD_PREFIX);
    le(a, value, 4);
}

void aml_string(struct aml *a, const char *s)
{
    byte(a, STRING_PREFIX);
    aml_bytes(a, s, strlen(s) + 1);
}

/* 19.6.35: three letters of five bits each, then four hex digits. */
void aml_eisaid(struct aml *a, const char *id)
{
    if (strlen(id) != 7) {
        a->error = -1;
        return;
    }
    uint32_t letters = (uint32_t)(id[0] - '@') << 10 |
                       (uint32_t)(id[1] - '@') << 5 | (uint32_t)(id[2] - '@');
    uint32_t digits = 0;
    for (int i = 3; i < 7; i++) {
        char c = id[i];
        digits = digits << 4 |
                 (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    /* Stored big-endian: letters in the first two bytes. */
    uint32_t be = (letters >> 8 & 0xff) | (letters & 0xff) << 8 |
                  (digits >> 8 & 0xff) << 16 | (digits & 0xff) << 24;
    aml_dword(a, be);
}

void aml_name(struct aml *a, const char *path)
{
    byte(a, NAME_OP);
    aml_namestring(a, path);
}

/* Reserve a four-byte PkgLength (20.2.4), filled in by aml_close. */
static void open_pkglength(struct aml *a)
{
    if (a->depth == AML_MAX_DEPTH) {
        a->error = -1;
        return;
    }
    a->open[a->depth++] = a->len;
    le(a, 0, 4);
}

void aml_close(struct aml *a)
{
    if (a->error)
        return;
    if (a->depth == 0) {
        a->error = -1;
        return;
    }
    size_t at = a->open[--a->depth];
    size_t len = a->len - at; /* includes the PkgLength bytes */
    if (len >= 1u << 28) {
        a->error = -1;
        return;
    }
    a->buf[at] = (uint8_t)(0xc0 | (len & 0xf)); /* three more bytes */
    a->buf[at + 1] = (uint8_t)(len >> 4);
    a->buf[at + 2] = (uint8_t)(len >> 12);
    a->buf[at + 3] = (uint8_t)(len >> 20);
}

void aml_scope_open(struct aml *a, const char *path)
{
    byte(a, SCOPE_OP);
    open_pkglength(a);
    aml_namestring(a, path);
}

void aml_device_open(struct aml *a, const char *path)
{
    byte(a, EXT_OP_PREFIX);
    byte(a, DEVICE_OP);
    open_pkglength(a);
    aml_namestring(a, path);
}

void aml_method_open(struct aml *a, const char *path, unsigned args)
{
    byte(a, METHOD_OP);
    open_pkglength(a);
    aml_namestring(a, path);
    byte(a, (uint8_t)(args & 7)); /* not serialized, sync level 0 */
}

void aml_package_open(struct aml *a, unsigned elements)
{
    byte(a, PACKAGE_OP);
    open_pkglength(a);
    byte(a, (uint8_t)elements);
}

void aml_buffer_open(struct aml *a, size_t len)
{
    byte(a, BUFFER_OP);
    open_pkglength(a);
    aml_integer(a, len);
}

void aml_return_arg(struct aml *a, unsigned n)
{
    byte(a, RETURN_OP);
    byte(a, (uint8_t)(ARG0_OP + (n & 7)));
}
