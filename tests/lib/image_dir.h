/* SPDX-License-Identifier: MIT */
/*
 * Shared by the image tests: a scratch directory for a test's images,
 * shell commands run in it (qemu-img, qemu-io), and reading and patching
 * its files.
 */
#ifndef VMDEV_TEST_IMAGE_DIR_H
#define VMDEV_TEST_IMAGE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under the current one; aborts if it cannot. */
void img_dir_create(void);
void img_dir_remove(void);
/* name inside the directory (one of four rotating buffers). */
const char *img_path(const char *name);
/* Run a shell command in the directory, quietly; whether it exited 0
 * (if not, the command is printed). */
__attribute__((format(printf, 1, 2))) bool img_sh(const char *fmt, ...);
/* The same, giving the exit status (-1 if it did not exit), silently. */
__attribute__((format(printf, 1, 2))) int img_sh_status(const char *fmt, ...);
/* A file's bytes (malloc'd), or NULL. */
uint8_t *img_load(const char *name, size_t *size);
/* The width-byte big-endian value at offset of a file (0 if unreadable),
 * and overwriting one. */
uint64_t img_read_be(const char *name, uint64_t offset, unsigned width);
bool img_patch(const char *name, uint64_t offset, uint64_t value,
               unsigned width);
/* A raw file of size bytes: 4 KiB blocks of a pattern depending on seed,
 * every fifth block zero (so converting leaves holes and zero clusters). */
bool img_make_source(const char *name, uint64_t size, unsigned seed);

#endif
