/* SPDX-License-Identifier: MIT */
/*
 * CMOS RTC: guest port accesses interleaved with time passing (forwards,
 * and the host wall clock stepping), timer expiries, and the input itself
 * as a saved-state buffer. A device's own snapshot must always restore.
 */
#include "vmdev/rtc.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct world {
    uint64_t mono_ns, real_ns, deadline_ns;
    int armed;
};

static uint64_t now_ns(void *opaque, enum vmdev_clock_id id)
{
    struct world *w = opaque;
    return id == VMDEV_CLOCK_REALTIME ? w->real_ns : w->mono_ns;
}

static void arm(void *opaque, uint64_t deadline_ns)
{
    struct world *w = opaque;
    w->armed = 1;
    w->deadline_ns = deadline_ns;
}

static void cancel(void *opaque)
{
    ((struct world *)opaque)->armed = 0;
}

static void ignore_level(void *opaque, bool level)
{
    (void)opaque;
    (void)level;
}

static struct vmdev_rtc *make(struct world *w)
{
    struct vmdev_rtc_config cfg = {
        .clock = { now_ns, w },
        .timer = { arm, cancel, w },
        .irq = { ignore_level, NULL },
        .utc_offset_seconds = 3600,
    };
    return vmdev_rtc_new(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct world world = { 1000000000ull, 1700000000000000000ull, 0, 0 };
    struct vmdev_rtc *rtc = make(&world);
    if (!rtc)
        return 0;
    (void)!vmdev_rtc_restore(rtc, data, size, "rtc");

    for (size_t i = 0; i + 2 <= size; i += 2) {
        uint8_t op = data[i], arg = data[i + 1];
        switch (op & 7) {
        case 0:
            vmdev_rtc_write(rtc, VMDEV_RTC_PORT_INDEX, arg);
            break;
        case 1:
            vmdev_rtc_read(rtc, VMDEV_RTC_PORT_DATA);
            break;
        case 2:
        case 3:
            vmdev_rtc_write(rtc, VMDEV_RTC_PORT_DATA, arg);
            break;
        case 4: { /* time passes: from 1 ns to about 9 minutes */
            uint64_t ns = (uint64_t)arg << (op >> 3 & 31);
            world.mono_ns += ns;
            world.real_ns += ns;
            break;
        }
        case 5: /* the host's wall clock steps */
            world.real_ns += (op & 8 ? 1 : -1) * ((int64_t)arg << 30);
            break;
        case 6:
            if (world.armed && world.deadline_ns <= world.mono_ns) {
                world.armed = 0;
                vmdev_rtc_timer_expired(rtc);
            }
            break;
        default:
            (void)!vmdev_rtc_nvram_write(rtc, arg, op);
            break;
        }
    }

    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_rtc_save(rtc, &w, "rtc");
    if (!vmdev_state_writer_finish(&w)) {
        struct world other = world;
        struct vmdev_rtc *copy = make(&other);
        if (copy && vmdev_rtc_restore(copy, w.data, w.len, "rtc"))
            __builtin_trap();
        vmdev_rtc_free(copy);
    }
    vmdev_state_writer_release(&w);
    vmdev_rtc_free(rtc);
    return 0;
}
