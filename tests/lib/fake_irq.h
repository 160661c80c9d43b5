/* SPDX-License-Identifier: MIT */
/* An interrupt line as a controller sees it: its level and rising edges. */
#ifndef VMDEV_TEST_FAKE_IRQ_H
#define VMDEV_TEST_FAKE_IRQ_H

#include <stdbool.h>

#include "vmdev/irq.h"

struct fake_irq {
    bool level;
    unsigned rises;
};

static inline void fake_irq_set(void *opaque, bool level)
{
    struct fake_irq *irq = opaque;
    if (level && !irq->level)
        irq->rises++;
    irq->level = level;
}

static inline struct vmdev_irq_line fake_irq_line(struct fake_irq *irq)
{
    return (struct vmdev_irq_line){ fake_irq_set, irq };
}

#endif
