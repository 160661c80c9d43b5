/* SPDX-License-Identifier: MIT */
/*
 * The split virtqueue and its chain walker against a driver that follows
 * the virtio 1.2 specification (tests/lib/virtio_driver.c), and against
 * every kind of chain the specification forbids.
 */
#include <errno.h>
#include <sys/mman.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/virtio_device.h"
#include "vmdev/virtqueue.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (4u << 20)
#define QSIZE 16

struct fixture {
    struct vdrv_mem m;
    struct vdrv_queue q;
    struct vmdev_virtqueue vq;
    struct vmdev_virtqueue_chain chain;
};

static struct fixture fx;

static uint64_t all_features(void)
{
    return VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1) |
           VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_INDIRECT_DESC) |
           VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX);
}

/* Fake RAM in `regions` pieces, a queue of `size`, enabled with features. */
static int setup(unsigned regions, uint16_t size, uint64_t features)
{
    vdrv_mem_release(&fx.m);
    if (vdrv_mem_init(&fx.m, RAM_BASE, RAM_SIZE, regions))
        return -1;
    vdrv_queue_init(&fx.q, &fx.m, size,
                    features & VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX));
    vmdev_virtqueue_init(&fx.vq, size);
    vdrv_queue_config(&fx.q, &fx.vq.config);
    const char *why = NULL;
    return vmdev_virtqueue_enable(&fx.vq, fx.m.mem, features, &why);
}

/* Pop, expecting a guest fault whose reason contains `reason`. */
static bool pop_refused(const char *reason)
{
    const char *why = NULL;
    int ret = vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why);
    if (ret != -EINVAL || !why || !strstr(why, reason)) {
        fprintf(stderr, "pop gave %d (%s), wanted refusal '%s'\n", ret,
                why ? why : "-", reason);
        return false;
    }
    return true;
}

static uint64_t fill(uint32_t len, uint8_t seed)
{
    uint64_t gpa = vdrv_alloc(&fx.m, len, 8);
    for (uint32_t i = 0; i < len; i++)
        *(uint8_t *)vdrv_host(&fx.m, gpa + i) = (uint8_t)(seed + i);
    return gpa;
}

static void round_trip(bool indirect)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    struct vdrv_buf out[2] = { { fill(100, 1), 100 }, { fill(28, 101), 28 } };
    struct vdrv_buf in[1] = { { vdrv_alloc(&fx.m, 64, 8), 64 } };
    int head = vdrv_add(&fx.q, out, 2, in, 1, indirect);
    CHECK(head >= 0);

    const char *why = NULL;
    CHECK(vmdev_virtqueue_has_available(&fx.vq));
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(fx.chain.head, head);
    CHECK_EQ(fx.chain.readable_len, 128);
    CHECK_EQ(fx.chain.writable_len, 64);
    CHECK_EQ(fx.chain.num_readable, 2);
    CHECK_EQ(fx.chain.num_writable, 1);

    struct vmdev_virtqueue_reader r;
    uint8_t data[128];
    vmdev_virtqueue_reader_init(&r, &fx.chain);
    CHECK_EQ(vmdev_virtqueue_read_exact(&r, data, sizeof(data)), 0);
    for (unsigned i = 0; i < sizeof(data); i++)
        CHECK_EQ(data[i], (uint8_t)(1 + i));
    CHECK_EQ(vmdev_virtqueue_read(&r, data, 1), 0);

    struct vmdev_virtqueue_writer w;
    vmdev_virtqueue_writer_init(&w, &fx.chain);
    CHECK_EQ(vmdev_virtqueue_write_exact(&w, "reply", 5), 0);
    vmdev_virtqueue_push(&fx.vq, fx.chain.head, (uint32_t)w.written);

    uint32_t id, len;
    CHECK(vdrv_get_used(&fx.q, &id, &len));
    CHECK_EQ(id, head);
    CHECK_EQ(len, 5);
    CHECK(memcmp(vdrv_host(&fx.m, in[0].gpa), "reply", 5) == 0);
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 0);
    CHECK(!vmdev_virtqueue_has_available(&fx.vq));
}

static void direct_chain_round_trip(void)
{
    round_trip(false);
}

static void indirect_chain_round_trip(void)
{
    round_trip(true);
}

/* A buffer across two guest RAM regions becomes two host segments, and
 * the cursors cross between them. */
static void buffer_straddling_regions_splits(void)
{
    CHECK_EQ(setup(2, QSIZE, all_features()), 0);
    uint64_t boundary = RAM_BASE + RAM_SIZE / 2;
    struct vdrv_buf out = { boundary - 10, 20 };
    for (unsigned i = 0; i < 20; i++)
        *(uint8_t *)vdrv_host(&fx.m, out.gpa + i) = (uint8_t)i;
    CHECK(vdrv_add(&fx.q, &out, 1, NULL, 0, false) >= 0);
    const char *why;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(fx.chain.num_readable, 2);
    CHECK_EQ(fx.chain.segments[0].len, 10);
    CHECK_EQ(fx.chain.segments[1].len, 10);
    struct vmdev_virtqueue_reader r;
    uint8_t data[20];
    vmdev_virtqueue_reader_init(&r, &fx.chain);
    CHECK_EQ(vmdev_virtqueue_skip(&r, 5), 5);
    CHECK_EQ(vmdev_virtqueue_read(&r, data, sizeof(data)), 15);
    CHECK_EQ(data[0], 5);
    CHECK_EQ(data[14], 19);
}

/* Indices are free-running 16-bit counters (2.7.6, 2.7.8). */
static void indices_wrap_around(void)
{
    CHECK_EQ(setup(1, 4, all_features()), 0);
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 8, 8), 8 };
    for (unsigned n = 0; n < 70000; n++) {
        int head = vdrv_add(&fx.q, NULL, 0, &in, 1, n % 2);
        CHECK(head >= 0);
        const char *why;
        CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
        CHECK_EQ(fx.chain.head, head);
        vmdev_virtqueue_push(&fx.vq, fx.chain.head, 8);
        uint32_t id, len;
        CHECK(vdrv_get_used(&fx.q, &id, &len));
        CHECK_EQ(id, head);
    }
    CHECK_EQ(fx.vq.completed, 70000);
}

static void cursors_stop_at_chain_end(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    struct vdrv_buf out = { fill(8, 0), 8 };
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 4, 4), 4 };
    CHECK(vdrv_add(&fx.q, &out, 1, &in, 1, false) >= 0);
    const char *why;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    struct vmdev_virtqueue_reader r;
    uint8_t buf[16];
    vmdev_virtqueue_reader_init(&r, &fx.chain);
    CHECK_EQ(vmdev_virtqueue_read_exact(&r, buf, 9), -EINVAL);
    CHECK_EQ(r.remaining, 8); /* nothing consumed */
    CHECK_EQ(vmdev_virtqueue_read(&r, buf, 16), 8);
    struct vmdev_virtqueue_writer w;
    vmdev_virtqueue_writer_init(&w, &fx.chain);
    CHECK_EQ(vmdev_virtqueue_write_exact(&w, buf, 5), -EINVAL);
    CHECK_EQ(vmdev_virtqueue_write(&w, buf, 16), 4);
    CHECK_EQ(w.written, 4);
    /* The writer never touched the readable buffer. */
    CHECK_EQ(*(uint8_t *)vdrv_host(&fx.m, out.gpa + 7), 7);
}

/* --- Ring geometry, checked at enable (2.7). --- */

static int enable_with(uint16_t size, uint16_t max, uint64_t desc,
                       uint64_t driver, uint64_t device)
{
    struct vmdev_virtqueue vq;
    vmdev_virtqueue_init(&vq, max);
    vq.config.size = size;
    vq.config.desc_addr = desc;
    vq.config.driver_addr = driver;
    vq.config.device_addr = device;
    const char *why = NULL;
    int ret = vmdev_virtqueue_enable(&vq, fx.m.mem, all_features(), &why);
    if (ret && !why)
        return -1000; /* a refusal must say why */
    return ret;
}

static void enable_checks_geometry(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t d = RAM_BASE, a = RAM_BASE + 0x1000, u = RAM_BASE + 0x2000;
    CHECK_EQ(enable_with(16, 16, d, a, u), 0);
    CHECK_EQ(enable_with(12, 16, d, a, u), -EINVAL);  /* not a power of 2 */
    CHECK_EQ(enable_with(0, 16, d, a, u), -EINVAL);   /* zero */
    CHECK_EQ(enable_with(32, 16, d, a, u), -EINVAL);  /* above the max */
    CHECK_EQ(enable_with(16, 16, d + 8, a, u), -EINVAL); /* desc align 16 */
    CHECK_EQ(enable_with(16, 16, d, a + 1, u), -EINVAL); /* avail align 2 */
    CHECK_EQ(enable_with(16, 16, d, a, u + 2), -EINVAL); /* used align 4 */
    /* Each area wholly inside guest RAM. */
    uint64_t end = RAM_BASE + RAM_SIZE;
    CHECK_EQ(enable_with(16, 16, end - 128, a, u), -EINVAL);
    CHECK_EQ(enable_with(16, 16, d, end - 16, u), -EINVAL);
    CHECK_EQ(enable_with(16, 16, d, a, end - 64), -EINVAL);
    CHECK_EQ(enable_with(16, 16, 0, a, u), -EINVAL);
    CHECK_EQ(enable_with(16, 16, UINT64_MAX - 15, a, u), -EINVAL);
}

static void ring_across_regions_refused(void)
{
    CHECK_EQ(setup(2, QSIZE, all_features()), 0);
    uint64_t boundary = RAM_BASE + RAM_SIZE / 2;
    CHECK_EQ(enable_with(16, 16, boundary - 128, RAM_BASE, RAM_BASE + 0x100),
             -EINVAL);
}

/* --- The chain walker refuses each forbidden chain. --- */

static void refuses_head_out_of_range(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    vdrv_publish(&fx.q, QSIZE);
    CHECK(pop_refused("index out of range"));
}

static void refuses_next_out_of_range(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 64, 8);
    vdrv_set_desc(&fx.q, 0, buf, 8, VDRV_DESC_F_NEXT, QSIZE + 3);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("index out of range"));
}

static void refuses_loop(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 64, 8);
    vdrv_set_desc(&fx.q, 0, buf, 8, VDRV_DESC_F_NEXT, 1);
    vdrv_set_desc(&fx.q, 1, buf, 8, VDRV_DESC_F_NEXT, 2);
    vdrv_set_desc(&fx.q, 2, buf, 8, VDRV_DESC_F_NEXT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("loops"));
}

static void refuses_self_loop_in_indirect_table(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 64, 8);
    uint64_t table = vdrv_alloc(&fx.m, 32, 16);
    struct vdrv_queue t = fx.q; /* write descriptors into the table */
    t.desc = table;
    vdrv_set_desc(&t, 0, buf, 8, VDRV_DESC_F_NEXT, 1);
    vdrv_set_desc(&t, 1, buf, 8, VDRV_DESC_F_NEXT, 1);
    vdrv_set_desc(&fx.q, 0, table, 32, VDRV_DESC_F_INDIRECT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("loops"));
}

static void refuses_next_out_of_indirect_table(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 64, 8);
    uint64_t table = vdrv_alloc(&fx.m, 32, 16);
    struct vdrv_queue t = fx.q;
    t.desc = table;
    vdrv_set_desc(&t, 0, buf, 8, VDRV_DESC_F_NEXT, 2); /* table has 2 */
    vdrv_set_desc(&fx.q, 0, table, 32, VDRV_DESC_F_INDIRECT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("index out of range"));
}

static void refuses_nested_indirect(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t inner = vdrv_alloc(&fx.m, 16, 16);
    uint64_t outer = vdrv_alloc(&fx.m, 16, 16);
    struct vdrv_queue t = fx.q;
    t.desc = outer;
    vdrv_set_desc(&t, 0, inner, 16, VDRV_DESC_F_INDIRECT, 0);
    vdrv_set_desc(&fx.q, 0, outer, 16, VDRV_DESC_F_INDIRECT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("nested indirect"));
}

static void refuses_indirect_length(uint32_t len)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t table = vdrv_alloc(&fx.m, 64 * 1024, 16);
    vdrv_set_desc(&fx.q, 0, table, len, VDRV_DESC_F_INDIRECT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("indirect table length"));
}

static void refuses_indirect_length_not_multiple_of_16(void)
{
    refuses_indirect_length(24);
}

static void refuses_indirect_length_zero(void)
{
    refuses_indirect_length(0);
}

static void refuses_indirect_table_beyond_segment_limit(void)
{
    refuses_indirect_length(16 * (VMDEV_VQ_MAX_SEGMENTS + 1));
}

static void refuses_indirect_without_feature(void)
{
    CHECK_EQ(setup(1, QSIZE, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1)), 0);
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 8, 8), 8 };
    CHECK(vdrv_add(&fx.q, NULL, 0, &in, 1, true) >= 0);
    CHECK(pop_refused("without VMDEV_VIRTIO_F_INDIRECT_DESC"));
}

static void refuses_indirect_with_next(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t table = vdrv_alloc(&fx.m, 16, 16);
    vdrv_set_desc(&fx.q, 0, table, 16,
                  VDRV_DESC_F_INDIRECT | VDRV_DESC_F_NEXT, 1);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("VIRTQ_DESC_F_NEXT"));
}

static void refuses_indirect_table_outside_ram(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    vdrv_set_desc(&fx.q, 0, RAM_BASE + RAM_SIZE - 16, 32,
                  VDRV_DESC_F_INDIRECT, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("indirect table outside guest RAM"));
}

/* 2.7.5.3.2: WRITE on the descriptor naming a table is ignored. */
static void ignores_write_flag_on_indirect_descriptor(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = fill(8, 0);
    uint64_t table = vdrv_alloc(&fx.m, 16, 16);
    struct vdrv_queue t = fx.q;
    t.desc = table;
    vdrv_set_desc(&t, 0, buf, 8, 0, 0);
    vdrv_set_desc(&fx.q, 0, table, 16,
                  VDRV_DESC_F_INDIRECT | VDRV_DESC_F_WRITE, 0);
    vdrv_publish(&fx.q, 0);
    const char *why;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(fx.chain.readable_len, 8);
    CHECK_EQ(fx.chain.writable_len, 0);
}

static void refuses_readable_after_writable(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 64, 8);
    vdrv_set_desc(&fx.q, 0, buf, 8, VDRV_DESC_F_WRITE | VDRV_DESC_F_NEXT, 1);
    vdrv_set_desc(&fx.q, 1, buf, 8, 0, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("readable descriptor after a writable"));
}

static void refuses_buffer_outside_ram(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    vdrv_set_desc(&fx.q, 0, RAM_BASE + RAM_SIZE - 4, 8, 0, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("outside guest RAM"));
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    vdrv_set_desc(&fx.q, 0, UINT64_MAX - 3, 8, 0, 0);
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("outside guest RAM"));
}

static void refuses_avail_index_jump(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    vdrv_set_avail_idx(&fx.q, QSIZE + 1);
    CHECK(pop_refused("available index"));
}

/* A driver that offers chains while the device holds a ring's worth has
 * reused buffers it was not given back; the device would otherwise hold
 * (and keep requests for) as many chains as the driver kept offering. */
static void refuses_more_in_flight_than_the_ring_holds(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    uint64_t gpa = fill(64, 1);
    struct vdrv_buf buf = { gpa, 64 };
    for (unsigned i = 0; i < QSIZE; i++)
        CHECK(vdrv_add(&fx.q, &buf, 1, NULL, 0, false) >= 0);
    const char *why = NULL;
    for (unsigned i = 0; i < QSIZE; i++)
        CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(fx.vq.in_flight, QSIZE);
    vdrv_publish(&fx.q, 0); /* head 0 again, never returned */
    CHECK(pop_refused("ring's worth"));

    /* Returning one makes room for exactly one more. */
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    for (unsigned i = 0; i < QSIZE; i++)
        CHECK(vdrv_add(&fx.q, &buf, 1, NULL, 0, false) >= 0);
    for (unsigned i = 0; i < QSIZE; i++)
        CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    vmdev_virtqueue_push(&fx.vq, 3, 0);
    vmdev_virtqueue_unpop(&fx.vq, 1); /* the last popped, given back */
    CHECK_EQ(fx.vq.in_flight, QSIZE - 2);
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1); /* given back */
    vdrv_publish(&fx.q, 3);
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    vdrv_publish(&fx.q, 3);
    CHECK(pop_refused("ring's worth"));
}

/* A direct chain mapping to more host segments than a chain may hold. */
static void refuses_too_many_segments(void)
{
    uint16_t size = 2048;
    CHECK_EQ(setup(1, size, all_features()), 0);
    uint64_t buf = vdrv_alloc(&fx.m, 8, 8);
    for (uint16_t i = 0; i <= VMDEV_VQ_MAX_SEGMENTS; i++)
        vdrv_set_desc(&fx.q, i, buf, 8,
                      i == VMDEV_VQ_MAX_SEGMENTS ? 0 : VDRV_DESC_F_NEXT,
                      (uint16_t)(i + 1));
    vdrv_publish(&fx.q, 0);
    CHECK(pop_refused("too many host segments"));
}

/*
 * 2.7.5.2: a chain's total length stays below 2^32. Two 3 GiB buffers in
 * a sparse (never touched) 8 GiB RAM region make the walker add them up.
 */
static void refuses_total_length_of_4_gib(void)
{
    const uint64_t big = 8ull << 30, big_gpa = 1ull << 40;
    void *host = mmap(NULL, big, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(host != MAP_FAILED);
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    struct vmdev_guest_memory_region r = { big_gpa, big, host, -1, 0 };
    CHECK_EQ(vmdev_guest_memory_add_region(fx.m.mem, &r), 0);
    vdrv_set_desc(&fx.q, 0, big_gpa, 3u << 30, VDRV_DESC_F_NEXT, 1);
    vdrv_set_desc(&fx.q, 1, big_gpa, 3u << 30, 0, 0);
    vdrv_publish(&fx.q, 0);
    bool refused = pop_refused("longer than 4 GiB");
    munmap(host, big);
    CHECK(refused);
}

/* --- Notification suppression (2.7.7, 2.7.10). --- */

static void no_interrupt_flag_suppresses(void)
{
    CHECK_EQ(setup(1, QSIZE, VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_VERSION_1)), 0);
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    CHECK(vmdev_virtqueue_should_interrupt(&fx.vq));
    vdrv_set_avail_flags(&fx.q, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    CHECK(!vmdev_virtqueue_should_interrupt(&fx.vq));

    vmdev_virtqueue_set_notification(&fx.vq, false);
    CHECK_EQ(vdrv_used_flags(&fx.q), 1); /* VIRTQ_USED_F_NO_NOTIFY */
    vmdev_virtqueue_set_notification(&fx.vq, true);
    CHECK_EQ(vdrv_used_flags(&fx.q), 0);
}

static void event_idx_interrupts_when_used_event_passed(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    /* The first interrupt is always sent; it sets the reference point. */
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    CHECK(vmdev_virtqueue_should_interrupt(&fx.vq)); /* used_idx 1 */
    /* The driver wants an interrupt once entry 3 is used (idx > 3). */
    vdrv_set_used_event(&fx.q, 3);
    vmdev_virtqueue_push(&fx.vq, 0, 0); /* 2 */
    CHECK(!vmdev_virtqueue_should_interrupt(&fx.vq));
    vmdev_virtqueue_push(&fx.vq, 0, 0); /* 3 */
    CHECK(!vmdev_virtqueue_should_interrupt(&fx.vq));
    vmdev_virtqueue_push(&fx.vq, 0, 0); /* 4: passes used_event */
    CHECK(vmdev_virtqueue_should_interrupt(&fx.vq));
    vmdev_virtqueue_push(&fx.vq, 0, 0); /* 5: already signalled past 3 */
    CHECK(!vmdev_virtqueue_should_interrupt(&fx.vq));
    /* Several pushes at once crossing used_event still signal once. */
    vdrv_set_used_event(&fx.q, 6);
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    vmdev_virtqueue_push(&fx.vq, 0, 0); /* 8 */
    CHECK(vmdev_virtqueue_should_interrupt(&fx.vq));
    /* avail_event tells the driver where to kick us. */
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 8, 8), 8 };
    CHECK(vdrv_add(&fx.q, NULL, 0, &in, 1, false) >= 0);
    const char *why;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    vmdev_virtqueue_set_notification(&fx.vq, true);
    CHECK_EQ(vdrv_avail_event(&fx.q), 1);
}

/* Chains popped and given back come again in order; several returned
 * chains are published by one move of the used index. */
static void unpop_and_push_many(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    int heads[3];
    for (unsigned i = 0; i < 3; i++) {
        struct vdrv_buf in = { vdrv_alloc(&fx.m, 64, 8), 64 };
        heads[i] = vdrv_add(&fx.q, NULL, 0, &in, 1, false);
        CHECK(heads[i] >= 0);
    }
    const char *why = NULL;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    vmdev_virtqueue_unpop(&fx.vq, 2);
    struct vmdev_virtqueue_used used[3];
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
        CHECK_EQ(fx.chain.head, heads[i]);
        used[i] = (struct vmdev_virtqueue_used){ fx.chain.head, 10 + i };
    }
    CHECK(!vmdev_virtqueue_has_available(&fx.vq));
    CHECK_EQ(vdrv_used_idx(&fx.q), 0);
    vmdev_virtqueue_push_many(&fx.vq, used, 3);
    CHECK_EQ(vdrv_used_idx(&fx.q), 3);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t id, len;
        CHECK(vdrv_get_used(&fx.q, &id, &len));
        CHECK_EQ(id, (uint32_t)heads[i]);
        CHECK_EQ(len, 10 + i);
    }
}

/* A device short of buffers (a merged receive) gives back what it found
 * and waits for more: buffers the driver adds after it counted are seen at
 * once, even those added before avail_event asked past them (their kick
 * never comes); otherwise avail_event asks for a kick at the next one. */
static void waiting_for_more_buffers(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    const char *why = NULL;
    for (unsigned i = 0; i < 3; i++) {
        struct vdrv_buf in = { vdrv_alloc(&fx.m, 64, 8), 64 };
        CHECK(vdrv_add(&fx.q, NULL, 0, &in, 1, false) >= 0);
    }
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 1);
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 0);
    vmdev_virtqueue_unpop(&fx.vq, 3);
    /* Nothing new: wait, with the kick asked for past the three. */
    CHECK(!vmdev_virtqueue_wait_for_more(&fx.vq, 3));
    CHECK_EQ(vdrv_avail_event(&fx.q), 3);
    /* One added between the count and the wait: seen. */
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 64, 8), 64 };
    CHECK(vdrv_add(&fx.q, NULL, 0, &in, 1, false) >= 0);
    CHECK(vmdev_virtqueue_wait_for_more(&fx.vq, 3));
    CHECK_EQ(vdrv_avail_event(&fx.q), 4);
    /* All four were there: nothing more. */
    CHECK(!vmdev_virtqueue_wait_for_more(&fx.vq, 4));
}

static void disabled_queue_does_nothing(void)
{
    CHECK_EQ(setup(1, QSIZE, all_features()), 0);
    struct vdrv_buf in = { vdrv_alloc(&fx.m, 8, 8), 8 };
    CHECK(vdrv_add(&fx.q, NULL, 0, &in, 1, false) >= 0);
    vmdev_virtqueue_reset(&fx.vq);
    const char *why;
    CHECK_EQ(vmdev_virtqueue_pop(&fx.vq, &fx.chain, &why), 0);
    CHECK(!vmdev_virtqueue_has_available(&fx.vq));
    vmdev_virtqueue_push(&fx.vq, 0, 0);
    CHECK_EQ(vdrv_used_idx(&fx.q), 0);
}

TEST_MAIN(TEST(direct_chain_round_trip), TEST(unpop_and_push_many),
          TEST(waiting_for_more_buffers), TEST(indirect_chain_round_trip),
          TEST(buffer_straddling_regions_splits), TEST(indices_wrap_around),
          TEST(cursors_stop_at_chain_end), TEST(enable_checks_geometry),
          TEST(ring_across_regions_refused), TEST(refuses_head_out_of_range),
          TEST(refuses_next_out_of_range), TEST(refuses_loop),
          TEST(refuses_self_loop_in_indirect_table),
          TEST(refuses_next_out_of_indirect_table),
          TEST(refuses_nested_indirect),
          TEST(refuses_indirect_length_not_multiple_of_16),
          TEST(refuses_indirect_length_zero),
          TEST(refuses_indirect_table_beyond_segment_limit),
          TEST(refuses_indirect_without_feature),
          TEST(refuses_indirect_with_next),
          TEST(refuses_indirect_table_outside_ram),
          TEST(ignores_write_flag_on_indirect_descriptor),
          TEST(refuses_readable_after_writable),
          TEST(refuses_buffer_outside_ram), TEST(refuses_avail_index_jump),
          TEST(refuses_more_in_flight_than_the_ring_holds),
          TEST(refuses_too_many_segments), TEST(refuses_total_length_of_4_gib),
          TEST(no_interrupt_flag_suppresses),
          TEST(event_idx_interrupts_when_used_event_passed),
          TEST(disabled_queue_does_nothing))
