/* SPDX-License-Identifier: MIT */
/* Snapshot parsing: any bytes as a saved-state buffer. */
#include "vmdev/state.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "a", "uart0", "" };
    for (unsigned i = 0; i < 3; i++) {
        struct vmdev_state_section s;
        if (vmdev_state_find_section(data, size, names[i], &s))
            continue;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        uint8_t bytes[16];
        (void)!vmdev_state_get_u8(&s, "k", &u8);
        (void)!vmdev_state_get_u16(&s, "k", &u16);
        (void)!vmdev_state_get_u32(&s, "k", &u32);
        (void)!vmdev_state_get_u64(&s, "k", &u64);
        (void)!vmdev_state_get_bytes(&s, "k", bytes, sizeof(bytes));
    }
    return 0;
}
