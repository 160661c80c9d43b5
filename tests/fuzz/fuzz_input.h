/* SPDX-License-Identifier: MIT */
/*
 * Reading a fuzz input as a stream of little-endian fields: past its end
 * every field reads 0, so a target never checks lengths and a short
 * input is simply one that asks for zeroes.
 */
#ifndef VMDEV_FUZZ_INPUT_H
#define VMDEV_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
    const uint8_t *p;
    size_t left;
};

/* The next byte, 0 once the input is used up. */
static inline uint8_t take8(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static inline uint16_t take16(struct input *in)
{
    uint16_t lo = take8(in);
    return (uint16_t)(lo | take8(in) << 8);
}

#endif
