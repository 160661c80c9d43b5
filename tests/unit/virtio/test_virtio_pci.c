/* SPDX-License-Identifier: MIT */
/*
 * virtio-pci modern transport, driven the way Linux's virtio_pci_modern
 * driver does it: find the vendor capabilities in config space, map the
 * BAR, negotiate through the common configuration, program MSI-X vectors,
 * run a request, and take interrupts by MSI-X and by INTx.
 */
#include <errno.h>

#include "test.h"
#include "virtio_driver.h"
#include "vmdev/event_loop.h"
#include "vmdev/virtio_pci.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (1u << 20)
#define BAR_ADDRESS 0xe0000000ull

/* A one-queue device that answers each request with "ok". */
struct echo {
    struct vmdev_virtio_device dev;
    uint32_t value; /* 4 bytes of device config */
};

static void echo_read_config(struct vmdev_virtio_device *dev, uint32_t off,
                             void *data, uint32_t len)
{
    memcpy(data, (uint8_t *)&((struct echo *)dev)->value + off, len);
}

static void echo_notify(struct vmdev_virtio_device *dev, uint16_t index)
{
    struct vmdev_virtqueue_chain *chain = malloc(sizeof(*chain));
    struct vmdev_virtqueue *vq = &dev->queues[index];
    const char *why;
    int ret;
    while ((ret = vmdev_virtqueue_pop(vq, chain, &why)) == 1) {
        struct vmdev_virtqueue_writer w;
        vmdev_virtqueue_writer_init(&w, chain);
        vmdev_virtqueue_write(&w, "ok", 2);
        vmdev_virtqueue_push(vq, chain->head, (uint32_t)w.written);
    }
    if (ret < 0)
        vmdev_virtio_guest_error(dev, "%s", why);
    else
        vmdev_virtio_interrupt_queue(dev, index);
    free(chain);
}

static const struct vmdev_virtio_device_ops echo_ops = {
    .read_config = echo_read_config,
    .queue_kick = echo_notify,
};

struct msi_log {
    unsigned count;
    struct vmdev_msi_msg last;
};

static void record_msi(void *opaque, const struct vmdev_msi_msg *msg)
{
    struct msi_log *log = opaque;
    log->count++;
    log->last = *msg;
}

static bool intx_level;
static void record_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
    intx_level = level;
}

/* What the function asked of the VMM, in order: BAR 0 mapped ('M') or
 * unmapped ('U'), an ioeventfd assigned ('A') or deassigned ('D'). */
struct wiring {
    char what;
    uint64_t address;
    int fd;
};
static struct wiring wired[32];
static unsigned num_wired;
static uint64_t refused_ioeventfd; /* an address set_ioeventfd refuses */

static void log_wiring(char what, uint64_t address, int fd)
{
    if (num_wired == sizeof(wired) / sizeof(wired[0]))
        abort();
    wired[num_wired++] = (struct wiring){ what, address, fd };
}

static int map_logged(void *o, struct vmdev_pci_device *p, unsigned i,
                      uint64_t a)
{
    log_wiring('M', a, -1);
    return 0;
}

static void unmap_logged(void *o, struct vmdev_pci_device *p, unsigned i,
                         uint64_t a)
{
    log_wiring('U', a, -1);
}

static int record_ioeventfd(void *opaque, uint64_t address, unsigned len,
                            int fd, bool assign)
{
    if (len != 2) /* a 16-bit notify write, as Linux's vp_notify */
        abort();
    if (assign && address == refused_ioeventfd)
        return -ENOSPC;
    log_wiring(assign ? 'A' : 'D', address, fd);
    return 0;
}


static struct vmdev_event_loop *the_loop(void *opaque, unsigned group)
{
    return opaque;
}

static const struct vmdev_pci_bus_owner owner = {
    .map_bar = map_logged, .unmap_bar = unmap_logged, .set_intx = record_intx,
};

static struct msi_log msis;
static const struct vmdev_virtio_pci_config msi_config = {
    .msi = { .send = record_msi, .opaque = &msis },
};

/* The MSI-X capability's offset, found as pci_find_capability() does. */
static uint8_t msix_cap(const struct vmdev_pci_device *f)
{
    for (uint8_t pos = (uint8_t)vmdev_pci_get_config(f, 0x34, 1); pos;
         pos = (uint8_t)vmdev_pci_get_config(f, pos + 1u, 1))
        if (vmdev_pci_get_config(f, pos, 1) == 0x11)
            return pos;
    abort();
}

static struct vdrv_mem mem;
static struct echo echo;
static struct vmdev_virtio_pci *vp;
static struct vmdev_pci_device *pdev; /* vp's function */
static struct vmdev_pci_bus *bus;
/* BAR offsets of the structures, found through the capabilities. */
static uint64_t common, notify, isr, device;
static uint32_t notify_multiplier;

static uint32_t cfg_read(uint32_t reg, unsigned size)
{
    return (uint32_t)vmdev_pci_ecam_ops.read(bus, (1u << 15) | reg, size);
}

static void cfg_write(uint32_t reg, uint32_t value, unsigned size)
{
    vmdev_pci_ecam_ops.write(bus, (1u << 15) | reg, value, size);
}

static uint64_t bar_rd(uint64_t off, unsigned size)
{
    const struct vmdev_pci_bar *bar = vmdev_pci_device_bar(pdev, 0);
    return bar->ops->read(bar->opaque, off, size);
}

static void bar_wr(uint64_t off, uint64_t value, unsigned size)
{
    const struct vmdev_pci_bar *bar = vmdev_pci_device_bar(pdev, 0);
    bar->ops->write(bar->opaque, off, value, size);
}

/* Walk the capability list as virtio_pci_find_capability() does. */
static int find_caps(void)
{
    int found = 0;
    for (uint8_t pos = (uint8_t)cfg_read(0x34, 1); pos;
         pos = (uint8_t)cfg_read(pos + 1, 1)) {
        if (cfg_read(pos, 1) != 0x09)
            continue;
        uint8_t type = (uint8_t)cfg_read(pos + 3, 1);
        uint32_t offset = cfg_read(pos + 8, 4);
        if (cfg_read(pos + 4, 1) != 0)
            return -1;
        switch (type) {
        case 1:
            common = offset;
            break;
        case 2:
            notify = offset;
            notify_multiplier = cfg_read(pos + 16, 4);
            break;
        case 3:
            isr = offset;
            break;
        case 4:
            device = offset;
            break;
        default:
            continue;
        }
        found |= 1 << type;
    }
    return found;
}

static void setup_with(const struct vmdev_virtio_pci_config *config,
                       uint16_t queues)
{
    vdrv_mem_release(&mem);
    if (vdrv_mem_init(&mem, RAM_BASE, RAM_SIZE, 1))
        abort();
    memset(&echo, 0, sizeof(echo));
    memset(&msis, 0, sizeof(msis));
    echo.value = 0x11223344;
    if (vmdev_virtio_init(&echo.dev, "echo0", 4, &echo_ops,
                          VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX), 4, queues,
                          16, mem.mem))
        abort();
    vp = vmdev_virtio_pci_new(&echo.dev, config);
    if (!vp)
        abort();
    pdev = vmdev_virtio_pci_function(vp);
    vmdev_pci_bus_free(bus);
    bus = vmdev_pci_bus_new(&owner);
    if (vmdev_pci_bus_add(bus, pdev, 1) != 1)
        abort();
    /* Firmware's part: place the BAR and enable decoding. */
    cfg_write(0x10, (uint32_t)BAR_ADDRESS | 4, 4);
    cfg_write(0x14, 0, 4);
    cfg_write(0x04, 0x6, 2);
}

static void setup(void)
{
    setup_with(&msi_config, 1);
}

static void teardown(void)
{
    vmdev_pci_bus_remove(bus, pdev);
    vmdev_virtio_pci_free(vp);
    vmdev_virtio_free(&echo.dev);
}

static struct vdrv_queue q;

/* virtio_pci_modern probe and vp_find_vqs, with or without MSI-X. */
static void linux_style_bring_up(bool use_msix)
{
    bar_wr(common + 0x14, 0, 1); /* reset */
    bar_wr(common + 0x14, 1, 1); /* ACKNOWLEDGE */
    bar_wr(common + 0x14, 3, 1); /* DRIVER */
    uint64_t features = 0;
    for (uint32_t sel = 0; sel < 2; sel++) {
        bar_wr(common + 0x00, sel, 4);
        features |= bar_rd(common + 0x04, 4) << (32 * sel);
    }
    for (uint32_t sel = 0; sel < 2; sel++) {
        bar_wr(common + 0x08, sel, 4);
        bar_wr(common + 0x0c, (uint32_t)(features >> (32 * sel)), 4);
    }
    bar_wr(common + 0x14, 0xb, 1); /* FEATURES_OK */
    if (use_msix) {
        cfg_write(msix_cap(pdev) + 2, 0x8000, 2);
        for (unsigned v = 0; v < 2; v++) {
            uint64_t e = 0x4000 + 16 * v;
            bar_wr(e, 0xfee00000, 4);
            bar_wr(e + 4, 0, 4);
            bar_wr(e + 8, 0x40 + v, 4);
            bar_wr(e + 12, 0, 4);
        }
        bar_wr(common + 0x10, 0, 2); /* config vector 0 */
    }
    bar_wr(common + 0x16, 0, 2); /* queue_select */
    uint16_t size = (uint16_t)bar_rd(common + 0x18, 2);
    vdrv_queue_init(&q, &mem, size, true);
    bar_wr(common + 0x18, size, 2);
    bar_wr(common + 0x20, q.desc, 4);
    bar_wr(common + 0x24, q.desc >> 32, 4);
    bar_wr(common + 0x28, q.avail, 4);
    bar_wr(common + 0x2c, q.avail >> 32, 4);
    bar_wr(common + 0x30, q.used, 8);
    if (use_msix)
        bar_wr(common + 0x1a, 1, 2); /* queue vector 1 */
    bar_wr(common + 0x1c, 1, 2); /* queue_enable */
    bar_wr(common + 0x14, 0xf, 1); /* DRIVER_OK */
}

static void capabilities_as_linux_finds_them(void)
{
    setup();
    CHECK_EQ(cfg_read(0x00, 4), 0x10441af4); /* 0x1040 + 4 */
    CHECK_EQ(cfg_read(0x08, 1), 1);          /* revision 1: modern */
    CHECK_EQ(find_caps(), 0x1e);             /* types 1 to 4 */
    CHECK_EQ(notify_multiplier, 4);
    CHECK_EQ(cfg_read(0x10, 4) & 0xf, 4); /* 64-bit memory BAR */
    cfg_write(0x10, 0xffffffff, 4);
    cfg_write(0x14, 0xffffffff, 4);
    CHECK_EQ(cfg_read(0x10, 4), 0xffff8004);
    CHECK_EQ(cfg_read(0x14, 4), 0xffffffff);
    CHECK_EQ(bar_rd(common + 0x12, 2), 1); /* num_queues */
    CHECK_EQ(bar_rd(device, 4), 0x11223344);
    CHECK_EQ(bar_rd(device + 2, 1), 0x22);
    CHECK_EQ(bar_rd(device + 4, 4), 0); /* past the config: zeros */
    teardown();
}

static void request_with_msix_interrupt(void)
{
    setup();
    CHECK(find_caps() >= 0);
    linux_style_bring_up(true);
    CHECK_EQ(bar_rd(common + 0x14, 1), 0xf);
    CHECK_EQ(bar_rd(common + 0x1a, 2), 1);
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 8), 16 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    bar_wr(notify + 0 * notify_multiplier, 0, 2);
    uint32_t id, len;
    CHECK(vdrv_get_used(&q, &id, &len));
    CHECK_EQ(len, 2);
    CHECK(memcmp(vdrv_host(&mem, in.gpa), "ok", 2) == 0);
    CHECK_EQ(msis.count, 1);
    CHECK_EQ(msis.last.data, 0x41);
    CHECK(!intx_level);
    /* A config change goes to the config vector. */
    pthread_mutex_lock(&echo.dev.lock);
    vmdev_virtio_interrupt_config(&echo.dev);
    pthread_mutex_unlock(&echo.dev.lock);
    CHECK_EQ(msis.count, 2);
    CHECK_EQ(msis.last.data, 0x40);
    teardown();
}

static void request_with_intx_and_isr(void)
{
    setup();
    CHECK(find_caps() >= 0);
    linux_style_bring_up(false);
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 8), 16 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    bar_wr(notify, 0, 2);
    CHECK(intx_level);
    CHECK_EQ(msis.count, 0);
    CHECK_EQ(bar_rd(isr, 1), 1); /* queue interrupt */
    CHECK(!intx_level);          /* read clears and deasserts */
    CHECK_EQ(bar_rd(isr, 1), 0);
    pthread_mutex_lock(&echo.dev.lock);
    vmdev_virtio_interrupt_config(&echo.dev);
    pthread_mutex_unlock(&echo.dev.lock);
    CHECK(intx_level);
    CHECK_EQ(bar_rd(isr, 1), 2);
    teardown();
}

static void vector_out_of_range_reads_no_vector(void)
{
    setup();
    CHECK(find_caps() >= 0);
    bar_wr(common + 0x10, 2, 2); /* only vectors 0 and 1 exist */
    CHECK_EQ(bar_rd(common + 0x10, 2), VMDEV_VIRTIO_MSI_NO_VECTOR);
    bar_wr(common + 0x16, 0, 2);
    bar_wr(common + 0x1a, 7, 2);
    CHECK_EQ(bar_rd(common + 0x1a, 2), VMDEV_VIRTIO_MSI_NO_VECTOR);
    /* A queue that does not exist reads size 0 and takes no writes. */
    bar_wr(common + 0x16, 5, 2);
    CHECK_EQ(bar_rd(common + 0x18, 2), 0);
    bar_wr(common + 0x18, 8, 2);
    bar_wr(common + 0x1c, 1, 2);
    bar_wr(common + 0x16, 0, 2);
    CHECK_EQ(bar_rd(common + 0x18, 2), 16);
    teardown();
}

static void queue_fields_locked_once_enabled(void)
{
    setup();
    CHECK(find_caps() >= 0);
    linux_style_bring_up(true);
    bar_wr(common + 0x18, 4, 2);
    bar_wr(common + 0x20, 0x1234, 4);
    CHECK_EQ(bar_rd(common + 0x18, 2), q.size);
    CHECK_EQ(bar_rd(common + 0x20, 8), q.desc);
    /* Reset clears it all, the transport's registers included. */
    bar_wr(common + 0x14, 0, 1);
    CHECK_EQ(bar_rd(common + 0x14, 1), 0);
    CHECK_EQ(bar_rd(common + 0x1c, 2), 0);
    CHECK_EQ(bar_rd(common + 0x10, 2), VMDEV_VIRTIO_MSI_NO_VECTOR);
    teardown();
}

static void bad_ring_sets_needs_reset(void)
{
    setup();
    CHECK(find_caps() >= 0);
    bar_wr(common + 0x14, 1, 1);
    bar_wr(common + 0x14, 3, 1);
    bar_wr(common + 0x08, 1, 4);
    bar_wr(common + 0x0c, 1, 4); /* VERSION_1 */
    bar_wr(common + 0x14, 0xb, 1);
    bar_wr(common + 0x16, 0, 2);
    bar_wr(common + 0x20, RAM_BASE + 8, 8); /* misaligned table */
    bar_wr(common + 0x28, RAM_BASE + 0x1000, 8);
    bar_wr(common + 0x30, RAM_BASE + 0x2000, 8);
    bar_wr(common + 0x1c, 1, 2);
    bar_wr(common + 0x14, 0xf, 1);
    CHECK(bar_rd(common + 0x14, 1) & 0x40);
    CHECK_EQ(echo.dev.guest_errors, 1);
    CHECK(intx_level); /* config interrupt by INTx */
    CHECK_EQ(bar_rd(isr, 1), 2);
    teardown();
}

/* 4.1.4.9: the PCI configuration access window reaches the BAR. */
static void pci_cfg_access_window(void)
{
    setup();
    uint8_t cap = 0;
    for (uint8_t pos = (uint8_t)cfg_read(0x34, 1); pos;
         pos = (uint8_t)cfg_read(pos + 1, 1))
        if (cfg_read(pos, 1) == 0x09 && cfg_read(pos + 3, 1) == 5)
            cap = pos;
    CHECK(cap != 0);
    CHECK(find_caps() >= 0);
    cfg_write(cap + 4, 0, 1);
    cfg_write(cap + 8, (uint32_t)(common + 0x12), 4);
    cfg_write(cap + 12, 2, 4);
    CHECK_EQ(cfg_read(cap + 16, 2), 1); /* num_queues */
    cfg_write(cap + 8, (uint32_t)(common + 0x16), 4);
    cfg_write(cap + 16, 0, 2); /* queue_select through the window */
    cfg_write(cap + 8, (uint32_t)(common + 0x18), 4);
    CHECK_EQ(cfg_read(cap + 16, 2), 16);
    /* A bad length or BAR reads zero and writes nothing. */
    cfg_write(cap + 12, 3, 4);
    CHECK_EQ(cfg_read(cap + 16, 4), 0);
    teardown();
}

static void odd_accesses_are_harmless(void)
{
    setup();
    CHECK(find_caps() >= 0);
    bar_wr(common + 0x14, 1, 4);  /* status is a byte */
    CHECK_EQ(bar_rd(common + 0x14, 1), 0);
    bar_wr(common + 0x04, 1, 4);  /* device_feature is read-only */
    bar_wr(0x7ffc, 1, 4);         /* nothing there */
    bar_wr(notify + 400, 0, 2);   /* no such queue */
    CHECK_EQ(bar_rd(0x5000, 4), 0);
    CHECK_EQ(bar_rd(common + 0x3e, 4), 0);
    teardown();
}

static void save_restore_round_trip(void)
{
    setup();
    CHECK(find_caps() >= 0);
    linux_style_bring_up(true);
    struct vmdev_state_writer w;
    vmdev_state_writer_init(&w);
    vmdev_virtio_pci_save(vp, &w, "vp0");
    CHECK_EQ(vmdev_state_writer_finish(&w), 0);

    struct echo e2 = { .value = 1 };
    CHECK_EQ(vmdev_virtio_init(&e2.dev, "echo0", 4, &echo_ops,
                               VMDEV_VIRTIO_BIT(VMDEV_VIRTIO_F_EVENT_IDX), 4, 1,
                               16, mem.mem),
             0);
    struct vmdev_virtio_pci *vp2 = vmdev_virtio_pci_new(&e2.dev, &msi_config);
    CHECK(vp2 != NULL);
    struct vmdev_pci_device *pdev2 = vmdev_virtio_pci_function(vp2);
    CHECK_EQ(vmdev_virtio_pci_restore(vp2, w.data, w.len, "vp0"), 0);
    CHECK_EQ(e2.dev.status, 0xf);
    CHECK(e2.dev.queues[0].enabled);
    CHECK_EQ(e2.dev.queues[0].config.msix_vector, 1);
    CHECK(vmdev_pci_get_config(pdev2, msix_cap(pdev2) + 2, 2) & 0x8000);
    CHECK_EQ(vmdev_pci_bar_address(pdev2, 0), BAR_ADDRESS);
    /* The restored device serves the next request. */
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 8), 16 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    unsigned before = msis.count;
    vmdev_virtio_pci_queue_kick(vp2, 0);
    uint32_t id, len;
    CHECK(vdrv_get_used(&q, &id, &len));
    CHECK_EQ(msis.count, before + 1);
    CHECK_EQ(vmdev_virtio_pci_restore(vp2, w.data, w.len - 40, "vp0") < 0,
             1);
    vmdev_virtio_pci_free(vp2);
    vmdev_virtio_free(&e2.dev);
    vmdev_state_writer_release(&w);
    teardown();
}

/* The most queues the BAR's layout holds are accepted, with the MSI-X
 * table ending before the PBA; one more is refused rather than laid over
 * it (the table once ran into the PBA and past the BAR at 1024). */
static void queue_count_fits_the_msix_layout(void)
{
    for (unsigned queues = VMDEV_VIRTIO_PCI_MAX_QUEUES;
         queues <= VMDEV_VIRTIO_PCI_MAX_QUEUES + 1; queues++) {
        struct echo e = { 0 };
        CHECK_EQ(vmdev_virtio_init(&e.dev, "echo1", 4, &echo_ops, 0, 4,
                                   (uint16_t)queues, 16, mem.mem),
                 0);
        struct vmdev_virtio_pci *p = vmdev_virtio_pci_new(&e.dev, &msi_config);
        if (queues <= VMDEV_VIRTIO_PCI_MAX_QUEUES) {
            CHECK(p != NULL);
            struct vmdev_pci_device *f = vmdev_virtio_pci_function(p);
            uint8_t cap = msix_cap(f);
            uint32_t table = vmdev_pci_get_config(f, cap + 4, 4) & ~7u;
            uint32_t pba = vmdev_pci_get_config(f, cap + 8, 4) & ~7u;
            CHECK_EQ(vmdev_pci_get_config(f, cap + 2, 2) & 0x7ff,
                     queues); /* N - 1 = queues */
            CHECK(table + vmdev_pci_msix_table_size((uint16_t)(queues + 1)) <= pba);
            CHECK(pba + vmdev_pci_msix_pba_size((uint16_t)(queues + 1)) <=
                  VMDEV_VIRTIO_PCI_BAR_SIZE);
            vmdev_virtio_pci_free(p);
        } else {
            CHECK(p == NULL);
            CHECK_EQ(errno, EINVAL);
        }
        vmdev_virtio_free(&e.dev);
    }
}

/* A two-queue function whose kicks come through eventfds on the loop it
 * returns, its ioeventfds recorded (and the one at `refused` refused). */
static struct vmdev_event_loop *setup_wired(uint64_t refused)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    if (!loop)
        abort();
    struct vmdev_virtio_pci_config config = msi_config;
    config.queue_loop = the_loop;
    config.set_ioeventfd = record_ioeventfd;
    config.opaque = loop;
    num_wired = 0;
    refused_ioeventfd = refused;
    setup_with(&config, 2);
    return loop;
}

static void expect_wired(unsigned at, char what, uint64_t address)
{
    CHECK(at < num_wired);
    CHECK_EQ(wired[at].what, what);
    CHECK_EQ(wired[at].address, address);
}

/*
 * With an event loop and an ioeventfd callback, each queue's notify
 * register signals an eventfd the loop serves; the assignments follow BAR
 * 0 when the guest moves it and go before the BAR is unmapped, both when
 * it moves and when the function is freed on the bus.
 */
static void kicks_arrive_through_eventfds_that_follow_the_bar(void)
{
    struct vmdev_event_loop *loop = setup_wired(0);
    CHECK_EQ(num_wired, 0); /* nothing before the bus maps the BAR */
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(num_wired, 3);
    expect_wired(0, 'M', BAR_ADDRESS);
    expect_wired(1, 'A', BAR_ADDRESS + 0x3000);
    expect_wired(2, 'A', BAR_ADDRESS + 0x3004);
    CHECK(wired[1].fd >= 0 && wired[2].fd >= 0 && wired[1].fd != wired[2].fd);

    /* KVM signals queue 0's eventfd: the loop kicks the queue. */
    CHECK(find_caps() >= 0);
    linux_style_bring_up(true);
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 8), 16 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    vmdev_eventfd_signal(wired[1].fd);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 1);
    uint32_t id, len;
    CHECK(vdrv_get_used(&q, &id, &len));
    CHECK_EQ(msis.count, 1);
    CHECK_EQ(vmdev_virtio_pci_get_stats(vp).eventfd_kicks, 1);

    /* The guest moves the BAR: off the old address first. */
    uint64_t moved = BAR_ADDRESS + 0x100000;
    num_wired = 0;
    cfg_write(0x10, (uint32_t)moved | 4, 4);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(num_wired, 6);
    expect_wired(0, 'D', BAR_ADDRESS + 0x3000);
    expect_wired(1, 'D', BAR_ADDRESS + 0x3004);
    expect_wired(2, 'U', BAR_ADDRESS);
    expect_wired(3, 'M', moved);
    expect_wired(4, 'A', moved + 0x3000);
    expect_wired(5, 'A', moved + 0x3004);

    /* Freed on the bus: the ioeventfds, then the BAR, then the watches
     * and the queues' eventfds. */
    num_wired = 0;
    unsigned fds = test_open_fds();
    vmdev_virtio_pci_free(vp);
    vp = NULL;
    CHECK_EQ(num_wired, 3);
    expect_wired(0, 'D', moved + 0x3000);
    expect_wired(1, 'D', moved + 0x3004);
    expect_wired(2, 'U', moved);
    CHECK(test_open_fds() <= fds - 2);
    vmdev_virtio_free(&echo.dev);
    vmdev_event_loop_free(loop);
}

static struct vmdev_event_loop *loop_for_group_0(void *opaque, unsigned group)
{
    return group == 0 ? opaque : NULL;
}

/* A function whose second queue gets no loop is not made, and leaves no
 * eventfd open and no queue attached behind it. */
static void a_failed_new_leaves_nothing_open(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    struct echo e = { 0 };
    CHECK_EQ(vmdev_virtio_init(&e.dev, "echo2", 4, &echo_ops, 0, 4, 2, 16,
                               mem.mem),
             0);
    struct vmdev_virtio_pci_config config = msi_config;
    config.queue_loop = loop_for_group_0;
    config.opaque = loop;
    unsigned fds = test_open_fds();
    errno = 0;
    CHECK(vmdev_virtio_pci_new(&e.dev, &config) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(test_open_fds(), fds);
    vmdev_virtio_free(&e.dev);
    vmdev_event_loop_free(loop);
}

/* When the VMM refuses one queue's ioeventfd the others are undone, and
 * the notify writes still arrive through the BAR. */
static void a_refused_ioeventfd_leaves_the_notify_writes_trapping(void)
{
    struct vmdev_event_loop *loop = setup_wired(BAR_ADDRESS + 0x3004);
    vmdev_pci_bus_apply_bar_changes(bus);
    CHECK_EQ(num_wired, 3);
    expect_wired(0, 'M', BAR_ADDRESS);
    expect_wired(1, 'A', BAR_ADDRESS + 0x3000);
    expect_wired(2, 'D', BAR_ADDRESS + 0x3000);
    CHECK(find_caps() >= 0);
    linux_style_bring_up(true);
    struct vdrv_buf in = { vdrv_alloc(&mem, 16, 8), 16 };
    CHECK(vdrv_add(&q, NULL, 0, &in, 1, false) >= 0);
    bar_wr(notify, 0, 2);
    uint32_t id, len;
    CHECK(vdrv_get_used(&q, &id, &len));
    CHECK_EQ(vmdev_virtio_pci_get_stats(vp).eventfd_kicks, 0);
    /* Nothing assigned: nothing to undo at the unplug. */
    num_wired = 0;
    teardown();
    CHECK_EQ(num_wired, 1);
    expect_wired(0, 'U', BAR_ADDRESS);
    vmdev_event_loop_free(loop);
    refused_ioeventfd = 0;
}

TEST_MAIN(TEST(capabilities_as_linux_finds_them),
          TEST(request_with_msix_interrupt), TEST(request_with_intx_and_isr),
          TEST(vector_out_of_range_reads_no_vector),
          TEST(queue_fields_locked_once_enabled),
          TEST(bad_ring_sets_needs_reset), TEST(pci_cfg_access_window),
          TEST(odd_accesses_are_harmless), TEST(save_restore_round_trip),
          TEST(queue_count_fits_the_msix_layout),
          TEST(kicks_arrive_through_eventfds_that_follow_the_bar),
          TEST(a_refused_ioeventfd_leaves_the_notify_writes_trapping),
          TEST(a_failed_new_leaves_nothing_open))
