/* SPDX-License-Identifier: MIT */
/*
 * Intel 8254 PIT (datasheet 231164, "8254 Programmable Interval Timer").
 * Section names below ("Mode 2", "Read-Back Command") are the datasheet's.
 *
 * A counter's progress is a count of input clocks since its counting
 * element was last loaded: `elapsed` clocks already counted plus, while it
 * runs, the clocks since `since_ns`. Value and OUT are functions of that
 * progress, the mode and the count, so reading the PIT never changes it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "device_entry.h"
#include "vmdev/pit.h"

#define NS_PER_S UINT64_C(1000000000)
#define NO_EDGE UINT64_MAX
/* Port 0x61 bit 4 toggles with each DRAM refresh request: 15.085 us. */
#define REFRESH_PERIOD_NS 15085u
#define PORT61_STORED                                                        \
    (VMDEV_PIT_PORT61_GATE2 | VMDEV_PIT_PORT61_SPEAKER |                      \
     VMDEV_PIT_PORT61_PARITY_OFF | VMDEV_PIT_PORT61_IOCHK_OFF)

/* Control word fields ("Control Word Format"). */
#define CW_SELECT(v) ((v) >> 6)
#define CW_ACCESS(v) (((v) >> 4) & 3)
#define CW_MODE(v) (((v) >> 1) & 7)
#define CW_BCD 0x01
#define SELECT_READ_BACK 3
#define ACCESS_LATCH 0
#define ACCESS_LSB 1
#define ACCESS_MSB 2
#define ACCESS_LSB_MSB 3
/* Read-back command bits ("Read-Back Command"); both latches are active
 * low. */
#define RB_NO_COUNT 0x20
#define RB_NO_STATUS 0x10
#define RB_COUNTER(i) (0x02 << (i))
/* Status byte ("Status Byte"). */
#define ST_OUT 0x80
#define ST_NULL_COUNT 0x40

struct pit_counter {
    /* Programmed by the control word. */
    uint8_t mode; /* 0-5 */
    uint8_t access;
    bool bcd;
    bool gate;
    /* Count register (CR) and the count the counting element (CE) runs,
     * both in clocks: 1-65536 in binary, 1-10000 in BCD (0 is the max). */
    uint32_t reload;
    uint32_t active;
    bool loaded;     /* a complete count was written since the control word */
    bool triggered;  /* CE loaded: at the count write, or modes 1/5 at GATE */
    bool running;    /* CE counting: triggered, and GATE high where it gates */
    bool null_count; /* CR written but not yet loaded into CE */
    uint64_t elapsed;  /* clocks counted up to since_ns */
    uint64_t since_ns; /* start of the running stretch */
    /* Byte sequencing and latches. */
    bool write_msb_next;
    uint8_t write_lsb;
    bool read_msb_next;
    bool count_latched;
    uint16_t latched_count;
    bool status_latched;
    uint8_t latched_status;
};

struct vmdev_pit {
    pthread_mutex_t lock;
    struct vmdev_pit_config cfg;
    struct pit_counter counters[3];
    uint8_t port61; /* PORT61_STORED bits */
    /* Counter 0: the progress at which OUT next rises (NO_EDGE if never)
     * and the edge last pulsed, for the coalescing rule. */
    uint64_t next_edge;
    uint64_t last_edge;
    uint64_t armed_deadline_ns; /* UINT64_MAX while disarmed */
};

static uint64_t now_ns(struct vmdev_pit *pit)
{
    return vmdev_clock_now(&pit->cfg.clock, VMDEV_CLOCK_MONOTONIC);
}

static uint64_t ns_to_clocks(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * VMDEV_PIT_FREQ_HZ / NS_PER_S);
}

/* Rounded up, so that a timer set this far ahead finds the clocks done. */
static uint64_t clocks_to_ns(uint64_t clocks)
{
    unsigned __int128 ns = ((unsigned __int128)clocks * NS_PER_S +
                            VMDEV_PIT_FREQ_HZ - 1) / VMDEV_PIT_FREQ_HZ;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static uint64_t progress(const struct pit_counter *c, uint64_t now)
{
    if (!c->running || now <= c->since_ns)
        return c->elapsed;
    return c->elapsed + ns_to_clocks(now - c->since_ns);
}

/* Start the counting element from a fresh load at now. */
static void counting_restart(struct pit_counter *c, uint64_t now)
{
    c->elapsed = 0;
    c->since_ns = now;
}

static void counting_pause(struct pit_counter *c, uint64_t now)
{
    c->elapsed = progress(c, now);
    c->running = false;
}

static void counting_resume(struct pit_counter *c, uint64_t now)
{
    c->since_ns = now;
    c->running = true;
}

/* Modes 0 and 4 count only while GATE is high; modes 2 and 3 also reload
 * on its rising edge; modes 1 and 5 use GATE only as a trigger. */
static bool gate_pauses(uint8_t mode)
{
    return mode != 1 && mode != 5;
}

static bool out_level(const struct pit_counter *c, uint64_t d)
{
    uint64_t n = c->active;
    if (!c->loaded)
        return c->mode != 0; /* mode 0: OUT low after the control word */
    switch (c->mode) {
    case 0: /* interrupt on terminal count: high from TC on */
        return d >= n;
    case 1: /* one-shot: low from trigger to TC */
        return !c->triggered || d >= n;
    case 2: /* rate generator: low for the clock in which the count is 1 */
        return !c->gate || d % n != n - 1;
    case 3: /* square wave: high for (N+1)/2 clocks, low for N/2 */
        return !c->gate || d % n < (n + 1) / 2;
    case 4: /* software strobe: low for one clock after TC */
    default: /* 5, hardware strobe */
        return !c->triggered || d != n;
    }
}

static uint32_t bin_to_bcd(uint32_t v)
{
    return (v % 10) | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 |
           (v / 1000 % 10) << 12;
}

/* A guest may write digits above 9; they weigh as written (no harm: the
 * count is still at most 15 * 1111). */
static uint32_t bcd_to_bin(uint32_t v)
{
    return (v & 0xf) + (v >> 4 & 0xf) * 10 + (v >> 8 & 0xf) * 100 +
           (v >> 12 & 0xf) * 1000;
}

static uint16_t counter_value(const struct pit_counter *c, uint64_t d)
{
    uint32_t modulus = c->bcd ? 10000 : 65536;
    uint64_t n = c->active;
    uint32_t v;
    if (!c->triggered)
        return 0; /* the CE holds nothing defined yet */
    switch (c->mode) {
    case 2:
        v = (uint32_t)(n - d % n);
        break;
    case 3:
        v = (uint32_t)(n - (2 * d) % n);
        break;
    default: /* 0, 1, 4, 5 wrap and keep counting after TC */
        v = (uint32_t)((n + modulus - d % modulus) % modulus);
        break;
    }
    v %= modulus;
    return (uint16_t)(c->bcd ? bin_to_bcd(v) : v);
}

static uint8_t status_byte(const struct pit_counter *c, uint64_t now)
{
    return (uint8_t)((out_level(c, progress(c, now)) ? ST_OUT : 0) |
                     (c->null_count ? ST_NULL_COUNT : 0) | c->access << 4 |
                     c->mode << 1 | (c->bcd ? CW_BCD : 0));
}

/* ---- counter 0: IRQ0 edges and the timer ---- */

static bool periodic(uint8_t mode)
{
    return mode == 2 || mode == 3;
}

/* Where counter 0's OUT rises next after a (re)load, in clocks. */
static void plan_first_edge(struct vmdev_pit *pit)
{
    struct pit_counter *c = &pit->counters[0];
    pit->last_edge = 0;
    if (!c->triggered)
        pit->next_edge = NO_EDGE;
    else if (c->mode == 4 || c->mode == 5)
        pit->next_edge = (uint64_t)c->active + 1; /* end of the strobe */
    else
        pit->next_edge = c->active; /* TC, or the first reload */
}

/* After an edge at progress d: the next reload, at least
 * VMDEV_PIT_MIN_PERIOD_NS after the last edge pulsed. */
static void plan_next_edge(struct vmdev_pit *pit, uint64_t d)
{
    struct pit_counter *c = &pit->counters[0];
    if (!periodic(c->mode)) {
        pit->next_edge = NO_EDGE;
        return;
    }
    uint64_t n = c->active;
    uint64_t min_clocks = ns_to_clocks(VMDEV_PIT_MIN_PERIOD_NS) + 1;
    uint64_t step = (min_clocks + n - 1) / n * n;
    uint64_t next = (d / n + 1) * n;
    if (next < pit->last_edge + step)
        next = pit->last_edge + step;
    pit->next_edge = next;
}

/* Pulse IRQ0 for an edge of counter 0 that is due by now. */
static void deliver_edges(struct vmdev_pit *pit, uint64_t now)
{
    struct pit_counter *c = &pit->counters[0];
    if (pit->next_edge == NO_EDGE || !c->running)
        return;
    uint64_t d = progress(c, now);
    if (d < pit->next_edge)
        return;
    vmdev_irq_pulse(&pit->cfg.irq);
    pit->last_edge = pit->next_edge;
    plan_next_edge(pit, d);
}

static void schedule(struct vmdev_pit *pit)
{
    struct pit_counter *c = &pit->counters[0];
    uint64_t deadline = UINT64_MAX;
    if (c->running && pit->next_edge != NO_EDGE) {
        uint64_t ahead = pit->next_edge > c->elapsed
                             ? clocks_to_ns(pit->next_edge - c->elapsed)
                             : 0;
        deadline = ahead > UINT64_MAX - c->since_ns ? UINT64_MAX - 1
                                                     : c->since_ns + ahead;
    }
    if (deadline == pit->armed_deadline_ns)
        return;
    pit->armed_deadline_ns = deadline;
    if (deadline == UINT64_MAX)
        pit->cfg.timer.cancel(pit->cfg.timer.opaque);
    else
        pit->cfg.timer.arm(pit->cfg.timer.opaque, deadline);
}

/*
 * Run op on counter i as of now, with counter 0's IRQ0 kept right: edges
 * due before the change are delivered first, OUT rising because of the
 * change is an edge too, and the timer follows the new plan.
 */
struct change {
    struct vmdev_pit *pit;
    unsigned index;
    uint64_t now;
    bool out_before;
};

static struct change change_begin(struct vmdev_pit *pit, unsigned index)
{
    struct change ch = { pit, index, now_ns(pit), false };
    if (index == 0) {
        deliver_edges(pit, ch.now);
        struct pit_counter *c = &pit->counters[0];
        ch.out_before = out_level(c, progress(c, ch.now));
    }
    return ch;
}

static void change_end(struct change *ch, bool reloaded)
{
    struct vmdev_pit *pit = ch->pit;
    if (ch->index != 0)
        return;
    struct pit_counter *c = &pit->counters[0];
    if (reloaded)
        plan_first_edge(pit);
    if (!ch->out_before && out_level(c, progress(c, ch->now)))
        vmdev_irq_pulse(&pit->cfg.irq);
    schedule(pit);
}

/* ---- the counters' programming interface ---- */

static void latch_count(struct pit_counter *c, uint64_t now)
{
    /* "Counter Latch Command": a second latch before the first is read
     * is ignored. */
    if (c->count_latched)
        return;
    c->count_latched = true;
    c->latched_count = counter_value(c, progress(c, now));
}

static void latch_status(struct pit_counter *c, uint64_t now)
{
    if (c->status_latched)
        return;
    c->status_latched = true;
    c->latched_status = status_byte(c, now);
}

static void program(struct pit_counter *c, uint8_t cw)
{
    uint8_t mode = CW_MODE(cw);
    c->mode = mode > 5 ? mode - 4 : mode; /* 6 and 7 alias 2 and 3 */
    c->access = CW_ACCESS(cw);
    c->bcd = cw & CW_BCD;
    /* A control word stops the counter until a count is written; OUT
     * takes the mode's initial level ("Modes": after the control word). */
    c->loaded = c->triggered = c->running = false;
    c->null_count = true;
    c->elapsed = 0;
    c->write_msb_next = c->read_msb_next = false;
    c->count_latched = false;
}

static void write_control(struct vmdev_pit *pit, uint8_t cw)
{
    if (CW_SELECT(cw) == SELECT_READ_BACK) {
        uint64_t now = now_ns(pit);
        for (unsigned i = 0; i < 3; i++) {
            if (!(cw & RB_COUNTER(i)))
                continue;
            struct pit_counter *c = &pit->counters[i];
            /* Status first: "if both are latched, the first read returns
             * status". Status reflects the time of the command. */
            if (!(cw & RB_NO_STATUS))
                latch_status(c, now);
            if (!(cw & RB_NO_COUNT))
                latch_count(c, now);
        }
        return;
    }
    unsigned i = CW_SELECT(cw);
    struct change ch = change_begin(pit, i);
    if (CW_ACCESS(cw) == ACCESS_LATCH)
        latch_count(&pit->counters[i], ch.now);
    else
        program(&pit->counters[i], cw);
    change_end(&ch, CW_ACCESS(cw) != ACCESS_LATCH);
}

/* The complete count is in the CR: load it as the mode says. Returns
 * whether the counting element (re)started. */
static bool load_count(struct pit_counter *c, uint16_t raw, uint64_t now)
{
    uint32_t n = c->bcd ? bcd_to_bin(raw) : raw;
    c->reload = n ? n : (c->bcd ? 10000 : 65536);
    c->loaded = true;
    c->null_count = true;
    if (c->mode == 1 || c->mode == 5)
        return false; /* the CE loads at the next GATE trigger; a count
                         already running goes on */
    c->active = c->reload;
    c->triggered = true;
    c->null_count = false;
    counting_restart(c, now);
    c->running = c->gate;
    return true;
}

static bool write_counter(struct pit_counter *c, uint8_t value, uint64_t now)
{
    switch (c->access) {
    case ACCESS_LSB:
        return load_count(c, value, now);
    case ACCESS_MSB:
        return load_count(c, (uint16_t)(value << 8), now);
    default:
        if (!c->write_msb_next) {
            c->write_lsb = value;
            c->write_msb_next = true;
            c->null_count = true;
            if (c->mode != 0)
                return false;
            /* Mode 0: "writing the first byte disables counting", and OUT
             * is low until the count is complete. */
            counting_pause(c, now);
            c->loaded = c->triggered = false;
            return true;
        }
        c->write_msb_next = false;
        return load_count(c, (uint16_t)(c->write_lsb | value << 8), now);
    }
}

static uint8_t read_counter(struct pit_counter *c, uint64_t now)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->latched_status;
    }
    uint16_t value = c->count_latched ? c->latched_count
                                      : counter_value(c, progress(c, now));
    bool msb;
    switch (c->access) {
    case ACCESS_LSB:
        msb = false;
        break;
    case ACCESS_MSB:
        msb = true;
        break;
    default:
        msb = c->read_msb_next;
        c->read_msb_next = !c->read_msb_next;
        if (!msb)
            return (uint8_t)value; /* a latch stays for the MSB */
        break;
    }
    c->count_latched = false;
    return (uint8_t)(msb ? value >> 8 : value);
}

static void set_gate(struct pit_counter *c, bool gate, uint64_t now)
{
    if (gate == c->gate)
        return;
    c->gate = gate;
    if (!gate) {
        if (gate_pauses(c->mode) && c->running)
            counting_pause(c, now);
        return;
    }
    /* Rising edge. */
    if (!c->loaded)
        return;
    switch (c->mode) {
    case 1:
    case 5: /* trigger (or retrigger) with the CR's count */
    case 2:
    case 3: /* reload and start a new period */
        c->active = c->reload;
        c->triggered = true;
        c->null_count = false;
        counting_restart(c, now);
        c->running = true;
        break;
    default: /* 0, 4: resume counting */
        if (c->triggered)
            counting_resume(c, now);
        break;
    }
}

/* ---- entry points ---- */

struct vmdev_pit *vmdev_pit_new(const struct vmdev_pit_config *config)
{
    struct vmdev_pit *pit = calloc(1, sizeof(*pit));
    if (!pit)
        return NULL;
    pthread_mutex_init(&pit->lock, NULL);
    pit->cfg = *config;
    pit->next_edge = NO_EDGE;
    pit->armed_deadline_ns = UINT64_MAX;
    for (unsigned i = 0; i < 3; i++) {
        struct pit_counter *c = &pit->counters[i];
        program(c, ACCESS_LSB_MSB << 4);
        c->null_count = false;
        c->gate = i != 2; /* counter 2's GATE is port 0x61 bit 0, clear */
    }
    return pit;
}

void vmdev_pit_free(struct vmdev_pit *pit)
{
    if (!pit)
        return;
    pit->cfg.timer.cancel(pit->cfg.timer.opaque);
    pthread_mutex_destroy(&pit->lock);
    free(pit);
}

uint8_t vmdev_pit_read(struct vmdev_pit *pit, unsigned offset)
{
    if (offset >= VMDEV_PIT_PORT_CONTROL)
        return 0xff;
    pthread_mutex_lock(&pit->lock);
    struct change ch = change_begin(pit, offset);
    uint8_t value = read_counter(&pit->counters[offset], ch.now);
    change_end(&ch, false);
    pthread_mutex_unlock(&pit->lock);
    return value;
}

void vmdev_pit_write(struct vmdev_pit *pit, unsigned offset, uint8_t value)
{
    if (offset >= VMDEV_PIT_PORTS)
        return;
    pthread_mutex_lock(&pit->lock);
    if (offset == VMDEV_PIT_PORT_CONTROL) {
        write_control(pit, value);
    } else {
        struct change ch = change_begin(pit, offset);
        bool reloaded = write_counter(&pit->counters[offset], value, ch.now);
        change_end(&ch, reloaded);
    }
    pthread_mutex_unlock(&pit->lock);
}

uint8_t vmdev_pit_port61_read(struct vmdev_pit *pit)
{
    pthread_mutex_lock(&pit->lock);
    uint64_t now = now_ns(pit);
    struct pit_counter *c = &pit->counters[2];
    uint8_t value = pit->port61;
    if (now / REFRESH_PERIOD_NS & 1)
        value |= VMDEV_PIT_PORT61_REFRESH;
    if (out_level(c, progress(c, now)))
        value |= VMDEV_PIT_PORT61_OUT2;
    pthread_mutex_unlock(&pit->lock);
    return value;
}

void vmdev_pit_port61_write(struct vmdev_pit *pit, uint8_t value)
{
    pthread_mutex_lock(&pit->lock);
    pit->port61 = value & PORT61_STORED;
    set_gate(&pit->counters[2], value & VMDEV_PIT_PORT61_GATE2, now_ns(pit));
    pthread_mutex_unlock(&pit->lock);
}

void vmdev_pit_timer_expired(struct vmdev_pit *pit)
{
    pthread_mutex_lock(&pit->lock);
    pit->armed_deadline_ns = UINT64_MAX; /* the one-shot is spent */
    deliver_edges(pit, now_ns(pit));
    schedule(pit);
    pthread_mutex_unlock(&pit->lock);
}

static uint64_t bus_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vmdev_pit_read(opaque, offset < VMDEV_PIT_PORTS
                                      ? (unsigned)offset
                                      : VMDEV_PIT_PORT_CONTROL);
}

static void bus_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    (void)size;
    vmdev_pit_write(opaque, offset < VMDEV_PIT_PORTS ? (unsigned)offset
                                                     : VMDEV_PIT_PORTS,
                    (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_pit_bus_ops = { bus_read, bus_write };

static uint64_t port61_bus_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)offset;
    (void)size;
    return vmdev_pit_port61_read(opaque);
}

static void port61_bus_write(void *opaque, uint64_t offset, uint64_t value,
                             unsigned size)
{
    (void)offset;
    (void)size;
    vmdev_pit_port61_write(opaque, (uint8_t)value);
}

const struct vmdev_bus_ops vmdev_pit_port61_bus_ops = { port61_bus_read,
                                                        port61_bus_write };

/* ---- save/restore ---- */

#define STATE_VERSION 1

/* Booleans of a counter, one bit each in the saved "flags". */
enum {
    F_BCD = 1 << 0,
    F_GATE = 1 << 1,
    F_LOADED = 1 << 2,
    F_TRIGGERED = 1 << 3,
    F_RUNNING = 1 << 4,
    F_NULL_COUNT = 1 << 5,
    F_WRITE_MSB_NEXT = 1 << 6,
    F_READ_MSB_NEXT = 1 << 7,
    F_COUNT_LATCHED = 1 << 8,
    F_STATUS_LATCHED = 1 << 9,
    F_ALL = (1 << 10) - 1,
};

static uint16_t counter_flags(const struct pit_counter *c)
{
    return (uint16_t)((c->bcd ? F_BCD : 0) | (c->gate ? F_GATE : 0) |
                      (c->loaded ? F_LOADED : 0) |
                      (c->triggered ? F_TRIGGERED : 0) |
                      (c->running ? F_RUNNING : 0) |
                      (c->null_count ? F_NULL_COUNT : 0) |
                      (c->write_msb_next ? F_WRITE_MSB_NEXT : 0) |
                      (c->read_msb_next ? F_READ_MSB_NEXT : 0) |
                      (c->count_latched ? F_COUNT_LATCHED : 0) |
                      (c->status_latched ? F_STATUS_LATCHED : 0));
}

static void key(char *buf, size_t len, unsigned i, const char *field)
{
    snprintf(buf, len, "c%u.%s", i, field);
}

void vmdev_pit_save(struct vmdev_pit *pit, struct vmdev_state_writer *w,
                    const char *name)
{
    char k[32];
    pthread_mutex_lock(&pit->lock);
    uint64_t now = now_ns(pit);
    deliver_edges(pit, now);
    vmdev_state_begin_section(w, name, STATE_VERSION);
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_counter *c = &pit->counters[i];
        key(k, sizeof(k), i, "mode");
        vmdev_state_put_u8(w, k, c->mode);
        key(k, sizeof(k), i, "access");
        vmdev_state_put_u8(w, k, c->access);
        key(k, sizeof(k), i, "flags");
        vmdev_state_put_u16(w, k, counter_flags(c));
        key(k, sizeof(k), i, "reload");
        vmdev_state_put_u32(w, k, c->reload);
        key(k, sizeof(k), i, "active");
        vmdev_state_put_u32(w, k, c->active);
        key(k, sizeof(k), i, "progress");
        vmdev_state_put_u64(w, k, progress(c, now));
        key(k, sizeof(k), i, "write_lsb");
        vmdev_state_put_u8(w, k, c->write_lsb);
        key(k, sizeof(k), i, "latched_count");
        vmdev_state_put_u16(w, k, c->latched_count);
        key(k, sizeof(k), i, "latched_status");
        vmdev_state_put_u8(w, k, c->latched_status);
    }
    vmdev_state_put_u8(w, "port61", pit->port61);
    vmdev_state_put_u64(w, "next_edge", pit->next_edge);
    vmdev_state_put_u64(w, "last_edge", pit->last_edge);
    vmdev_state_end_section(w);
    pthread_mutex_unlock(&pit->lock);
}

/* What load_count can produce: BCD digits above 9 weigh as written, so
 * a BCD count goes up to bcd_to_bin(0xffff). */
static bool count_valid(uint32_t n, bool bcd)
{
    return n <= (bcd ? 16665u : 65536u);
}

static int restore_counter(const struct vmdev_state_section *s, unsigned i,
                           struct pit_counter *c)
{
    char k[32];
    uint16_t flags;
    int ret;
    key(k, sizeof(k), i, "mode");
    if ((ret = vmdev_state_get_u8(s, k, &c->mode)))
        return ret;
    key(k, sizeof(k), i, "access");
    if ((ret = vmdev_state_get_u8(s, k, &c->access)))
        return ret;
    key(k, sizeof(k), i, "flags");
    if ((ret = vmdev_state_get_u16(s, k, &flags)))
        return ret;
    key(k, sizeof(k), i, "reload");
    if ((ret = vmdev_state_get_u32(s, k, &c->reload)))
        return ret;
    key(k, sizeof(k), i, "active");
    if ((ret = vmdev_state_get_u32(s, k, &c->active)))
        return ret;
    key(k, sizeof(k), i, "progress");
    if ((ret = vmdev_state_get_u64(s, k, &c->elapsed)))
        return ret;
    key(k, sizeof(k), i, "write_lsb");
    if ((ret = vmdev_state_get_u8(s, k, &c->write_lsb)))
        return ret;
    key(k, sizeof(k), i, "latched_count");
    if ((ret = vmdev_state_get_u16(s, k, &c->latched_count)))
        return ret;
    key(k, sizeof(k), i, "latched_status");
    if ((ret = vmdev_state_get_u8(s, k, &c->latched_status)))
        return ret;
    c->bcd = flags & F_BCD;
    c->gate = flags & F_GATE;
    c->loaded = flags & F_LOADED;
    c->triggered = flags & F_TRIGGERED;
    c->running = flags & F_RUNNING;
    c->null_count = flags & F_NULL_COUNT;
    c->write_msb_next = flags & F_WRITE_MSB_NEXT;
    c->read_msb_next = flags & F_READ_MSB_NEXT;
    c->count_latched = flags & F_COUNT_LATCHED;
    c->status_latched = flags & F_STATUS_LATCHED;
    /* Counters 0 and 1 have GATE tied high; a loaded count is never 0
     * (out_level and counter_value divide by it). */
    if ((flags & ~F_ALL) || c->mode > 5 || c->access == ACCESS_LATCH ||
        c->access > ACCESS_LSB_MSB || (i != 2 && !c->gate) ||
        (c->loaded && (c->reload == 0 || !count_valid(c->reload, c->bcd))) ||
        (c->triggered &&
         (!c->loaded || c->active == 0 || !count_valid(c->active, c->bcd))) ||
        (c->running && !c->triggered))
        return -EINVAL;
    return 0;
}

int vmdev_pit_restore(struct vmdev_pit *pit, const void *data, size_t len,
                      const char *name)
{
    struct vmdev_state_section s;
    struct pit_counter counters[3] = { 0 };
    uint8_t port61;
    uint64_t next_edge, last_edge;
    int ret = vmdev_state_open_section(data, len, name, STATE_VERSION, &s);
    if (ret)
        return ret;
    for (unsigned i = 0; i < 3; i++)
        if ((ret = restore_counter(&s, i, &counters[i])))
            return ret;
    if ((ret = vmdev_state_get_u8(&s, "port61", &port61)) ||
        (ret = vmdev_state_get_u64(&s, "next_edge", &next_edge)) ||
        (ret = vmdev_state_get_u64(&s, "last_edge", &last_edge)))
        return ret;
    if ((port61 & ~PORT61_STORED) ||
        counters[2].gate != !!(port61 & VMDEV_PIT_PORT61_GATE2) ||
        (next_edge != NO_EDGE && next_edge < last_edge))
        return -EINVAL;

    pthread_mutex_lock(&pit->lock);
    uint64_t now = now_ns(pit);
    for (unsigned i = 0; i < 3; i++) {
        pit->counters[i] = counters[i];
        pit->counters[i].since_ns = now;
    }
    pit->port61 = port61;
    pit->next_edge = next_edge;
    pit->last_edge = last_edge;
    pit->cfg.timer.cancel(pit->cfg.timer.opaque);
    pit->armed_deadline_ns = UINT64_MAX;
    schedule(pit);
    pthread_mutex_unlock(&pit->lock);
    return 0;
}

VMDEV_PLATFORM_DEVICE_OPS(vmdev_pit, struct vmdev_pit);
