/* SPDX-License-Identifier: MIT */
/*
 * Address-space bus for MMIO and port I/O.
 *
 * A device registers a range with the access sizes it accepts; its handlers
 * see offsets into that range, never absolute addresses. The bus rejects
 * overlapping ranges, ranges past the bus limit, and accesses of a size the
 * device did not declare or that straddle the end of its range.
 *
 * Handlers run with the bus's read lock held, so a handler must not
 * register or unregister ranges on the bus that called it: a device whose
 * register write moves a range (a PCI BAR) returns the move to its owner,
 * who applies it after the access completes.
 */
#ifndef VMDEV_BUS_H
#define VMDEV_BUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Access-size bits for vmdev_bus_register(). */
#define VMDEV_ACCESS_1 (1u << 1)
#define VMDEV_ACCESS_2 (1u << 2)
#define VMDEV_ACCESS_4 (1u << 4)
#define VMDEV_ACCESS_8 (1u << 8)
#define VMDEV_ACCESS_UP_TO_4 (VMDEV_ACCESS_1 | VMDEV_ACCESS_2 | VMDEV_ACCESS_4)
#define VMDEV_ACCESS_ANY (VMDEV_ACCESS_UP_TO_4 | VMDEV_ACCESS_8)

/*
 * Values travel as little-endian-ordered integers of `size` bytes in the
 * low bits of a uint64_t. read() returns the value; bits above size are
 * ignored by the bus.
 */
struct vmdev_bus_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value,
                  unsigned size);
};

struct vmdev_bus;

/* A bus whose addresses are [0, limit]: 0xffff for port I/O. */
struct vmdev_bus *vmdev_bus_new(const char *name, uint64_t limit);
void vmdev_bus_free(struct vmdev_bus *bus);

/*
 * Register [base, base + len). Returns 0, -EINVAL (len 0, wraps, past the
 * limit, no access size, or an access size other than 1/2/4/8), -EEXIST
 * (overlap) or -ENOMEM.
 */
__attribute__((warn_unused_result))
int vmdev_bus_register(struct vmdev_bus *bus, uint64_t base, uint64_t len,
                       unsigned access_sizes, const struct vmdev_bus_ops *ops,
                       void *opaque);

/* Remove the range that starts at base. Returns 0 or -ENOENT. */
int vmdev_bus_unregister(struct vmdev_bus *bus, uint64_t base);

/*
 * Dispatch an access at an absolute address. Return 0 when a device took
 * it, -ENOENT when nothing is mapped there (reads then yield all ones, as
 * on real hardware), -EINVAL for a size the device does not accept or an
 * access that runs past the end of its range.
 */
int vmdev_bus_read(struct vmdev_bus *bus, uint64_t addr, unsigned size,
                   uint64_t *value);
int vmdev_bus_write(struct vmdev_bus *bus, uint64_t addr, unsigned size,
                    uint64_t value);

/* Accesses refused since creation (unmapped or bad size), for metrics. */
uint64_t vmdev_bus_refused_count(const struct vmdev_bus *bus);

#ifdef __cplusplus
}
#endif

#endif
