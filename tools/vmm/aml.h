/* SPDX-License-Identifier: MIT */
/*
 * A small writer of ACPI Machine Language (ACPI 6.5, chapter 20), enough
 * for vmdev-run's DSDT: names, integers, strings, packages, buffers,
 * scopes, devices and trivial methods. Constructs with a PkgLength are
 * opened and closed; the length is filled in when they close.
 */
#ifndef VMM_AML_H
#define VMM_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8

struct aml {
    uint8_t *buf;
    size_t len, capacity;
    size_t open[AML_MAX_DEPTH]; /* PkgLength positions of open constructs */
    unsigned depth;
    int error; /* sticky: overflow or unbalanced nesting */
};

void aml_init(struct aml *a, uint8_t *buf, size_t capacity);
void aml_bytes(struct aml *a, const void *data, size_t len);
/* A NameString: "\\_SB_.PCI0", "_HID", segments of four characters. */
void aml_namestring(struct aml *a, const char *path);
/* The smallest encoding of an integer (ZeroOp, OneOp, Byte..QWordPrefix). */
void aml_integer(struct aml *a, uint64_t value);
void aml_dword(struct aml *a, uint32_t value); /* always DWordPrefix */
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0A08") as a compressed 32-bit id. */
void aml_eisaid(struct aml *a, const char *id);

/* Name (path, <one object written next>). */
void aml_name(struct aml *a, const char *path);

void aml_scope_open(struct aml *a, const char *path);
void aml_device_open(struct aml *a, const char *path);
void aml_method_open(struct aml *a, const char *path, unsigned args);
void aml_package_open(struct aml *a, unsigned elements);
/* Buffer of `len` bytes written next (the size is an integer). */
void aml_buffer_open(struct aml *a, size_t len);
void aml_close(struct aml *a);

/* Return (ArgN). */
void aml_return_arg(struct aml *a, unsigned n);

#endif
