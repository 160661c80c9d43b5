/* SPDX-License-Identifier: MIT */
/*
 * The learning switch with stream-socket ports whose peers are this test
 * (each a VM's end of its socket, speaking the 4-byte length framing):
 * flooding of group and unknown addresses, learning, forwarding to one
 * port, filtering back to the sender, a port that leaves (its entries
 * forgotten), a burst bigger than a peer's socket waiting in the port's
 * egress queue and arriving whole and in order, a stopped peer that never
 * reads costing only its own frames, and the port limit.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"
#include "vmdev/net_switch.h"

#define PORTS 4

static struct vmdev_event_loop *loop;
static struct vmdev_net_switch *sw;
static int peer[PORTS];

static void run_ready(void)
{
    while (vmdev_event_loop_run_once(loop, 0) > 0)
        ;
}

/* A port whose peer end is peer[i]. The switch's end sends into a small
 * buffer (a UNIX stream socket's sender's buffer is what limits it), so
 * a peer that does not read makes sends fail at once, whatever the
 * host's defaults. */
static int add_port(unsigned i)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -errno;
    int size = 16384;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    peer[i] = sv[1];
    char name[16];
    snprintf(name, sizeof(name), "vm%u", i);
    return vmdev_net_switch_add(sw, vmdev_net_stream_new_from_fd(sv[0], loop),
                                name);
}

static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void mac_of(unsigned vm, uint8_t mac[6])
{
    static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x00 };
    memcpy(mac, base, 6);
    mac[5] = (uint8_t)(vm + 1);
}

/* VM vm sends a 64-byte frame to dst, tagged. */
static bool send_from(unsigned vm, const uint8_t *dst, uint8_t tag)
{
    uint8_t buf[4 + 64] = { 0, 0, 0, 64 };
    memcpy(buf + 4, dst, 6);
    mac_of(vm, buf + 10);
    buf[16] = 0x88;
    buf[17] = 0xb5;
    memset(buf + 18, tag, 64 - 14);
    return write(peer[vm], buf, sizeof(buf)) == (ssize_t)sizeof(buf);
}

/* The tag of the next frame VM vm got, or -1 when none waits. */
static int received(unsigned vm)
{
    uint8_t buf[4 + 64];
    ssize_t n = recv(peer[vm], buf, sizeof(buf), MSG_DONTWAIT);
    if (n != (ssize_t)sizeof(buf))
        return -1;
    return buf[4 + 63];
}

static void setup(void)
{
    loop = vmdev_event_loop_new();
    CHECK(loop != NULL);
    sw = vmdev_net_switch_new(loop);
    CHECK(sw != NULL);
    for (unsigned i = 0; i < PORTS; i++)
        CHECK_EQ(add_port(i), (int)i);
    CHECK_EQ(vmdev_net_switch_stats(sw).ports, PORTS);
    char name[VMDEV_NET_SWITCH_NAME_LEN];
    CHECK(vmdev_net_switch_port(sw, 2, name));
    CHECK(strcmp(name, "vm2") == 0);
    CHECK(!vmdev_net_switch_port(sw, PORTS, name));
}

static void floods_then_learns_and_forwards(void)
{
    /* A broadcast reaches everyone else, and teaches where vm0 is. */
    CHECK(send_from(0, broadcast, 1));
    run_ready();
    CHECK_EQ(received(0), -1);
    for (unsigned i = 1; i < PORTS; i++)
        CHECK_EQ(received(i), 1);
    /* vm1 answers vm0: only vm0 gets it; vm1 is learned too. */
    uint8_t to[6];
    mac_of(0, to);
    CHECK(send_from(1, to, 2));
    run_ready();
    CHECK_EQ(received(0), 2);
    for (unsigned i = 1; i < PORTS; i++)
        CHECK_EQ(received(i), -1);
    /* An address never seen: every port but the sender's. */
    mac_of(9, to);
    CHECK(send_from(2, to, 3));
    run_ready();
    CHECK_EQ(received(0), 3);
    CHECK_EQ(received(1), 3);
    CHECK_EQ(received(2), -1);
    CHECK_EQ(received(3), 3);
    /* To an address on the sender's own port: nowhere. */
    mac_of(1, to);
    CHECK(send_from(1, to, 4));
    run_ready();
    for (unsigned i = 0; i < PORTS; i++)
        CHECK_EQ(received(i), -1);
    struct vmdev_net_switch_stats st = vmdev_net_switch_stats(sw);
    CHECK_EQ(st.flooded, 2);
    CHECK_EQ(st.forwarded, 1);
    CHECK_EQ(st.filtered, 1);
    CHECK_EQ(st.learned, 3);
    CHECK_EQ(st.dropped, 0);
}

static void a_port_that_leaves_is_forgotten(void)
{
    uint8_t to[6];
    mac_of(3, to);
    CHECK(send_from(3, broadcast, 5)); /* vm3 learned */
    run_ready();
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(received(i), 5);
    close(peer[3]);
    run_ready();
    CHECK_EQ(vmdev_net_switch_stats(sw).ports, PORTS - 1);
    char name[VMDEV_NET_SWITCH_NAME_LEN];
    CHECK(!vmdev_net_switch_port(sw, 3, name));
    /* vm3's address is unknown again: flooded to those left. */
    uint64_t flooded = vmdev_net_switch_stats(sw).flooded;
    CHECK(send_from(0, to, 6));
    run_ready();
    CHECK_EQ(vmdev_net_switch_stats(sw).flooded, flooded + 1);
    CHECK_EQ(received(1), 6);
    CHECK_EQ(received(2), 6);
    /* A new VM takes the free port. */
    CHECK_EQ(add_port(3), 3);
    CHECK(send_from(3, broadcast, 7));
    run_ready();
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(received(i), 7);
}

/* vm0 sends vm1 more than its socket holds before vm1 reads anything:
 * the rest waits in vm1's egress queue, nothing is lost. */
static void a_burst_waits_in_the_egress_queue(void)
{
    uint8_t to1[6];
    mac_of(1, to1);
    CHECK(send_from(1, broadcast, 20)); /* vm1 learned */
    run_ready();
    for (unsigned i = 0; i < PORTS; i++)
        while (received(i) >= 0)
            ;
    uint64_t dropped = vmdev_net_switch_stats(sw).dropped;
    /* More than the port's socket holds (it counts each frame's
     * overhead), less than that and the queue. */
    for (unsigned i = 0; i < 250; i++) {
        CHECK(send_from(0, to1, (uint8_t)i));
        run_ready();
    }
    CHECK(vmdev_net_switch_stats(sw).queued > 0);
    unsigned got = 0;
    for (int idle = 0; idle < 3 && got < 250;) {
        run_ready();
        int tag = received(1);
        if (tag < 0) {
            idle++;
            continue;
        }
        idle = 0;
        CHECK_EQ(tag, (int)(got & 0xff));
        got++;
    }
    CHECK_EQ(got, 250);
    CHECK_EQ(vmdev_net_switch_stats(sw).dropped, dropped);
}

/* vm2 stops reading: its socket fills and frames for it are dropped,
 * while vm0 and vm1 go on exchanging everything. */
static void a_stopped_peer_costs_only_its_own_frames(void)
{
    uint8_t to0[6], to1[6];
    mac_of(0, to0);
    mac_of(1, to1);
    unsigned got0 = 0, got1 = 0;
    for (unsigned i = 0; i < 2000; i++) {
        /* Broadcasts load vm2 (and vm3, which reads). */
        CHECK(send_from(0, broadcast, 8));
        CHECK(send_from(1, to0, 9));
        run_ready();
        while (received(1) >= 0)
            got1++;
        while (received(0) >= 0)
            got0++;
        while (received(3) >= 0)
            ;
    }
    CHECK_EQ(got0, 2000);
    CHECK_EQ(got1, 2000);
    CHECK(vmdev_net_switch_stats(sw).dropped > 0);
    /* It catches up: its stream holds whole frames only (a frame the
     * socket took in part was finished, none was cut), then new ones. */
    uint8_t rec[4 + 64];
    size_t have = 0;
    unsigned drained = 0;
    for (int idle = 0; idle < 3;) {
        run_ready();
        ssize_t n = recv(peer[2], rec + have, sizeof(rec) - have, MSG_DONTWAIT);
        if (n <= 0) {
            idle++;
            continue;
        }
        idle = 0;
        have += (size_t)n;
        if (have == sizeof(rec)) {
            CHECK(rec[0] == 0 && rec[1] == 0 && rec[2] == 0 && rec[3] == 64);
            drained++;
            have = 0;
        }
    }
    CHECK_EQ(have, 0);
    CHECK(drained > 0);
    CHECK(send_from(0, broadcast, 11));
    run_ready();
    CHECK_EQ(received(2), 11);
    CHECK_EQ(received(1), 11);
}

static void ports_are_limited(void)
{
    unsigned added = 0;
    int sv[2] = { -1, -1 };
    int ret = 0;
    int extra[VMDEV_NET_SWITCH_MAX_PORTS + 1];
    while (ret >= 0 && added < VMDEV_NET_SWITCH_MAX_PORTS) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        extra[added] = sv[1];
        ret = vmdev_net_switch_add(sw, vmdev_net_stream_new_from_fd(sv[0], loop),
                                   "extra");
        if (ret >= 0)
            added++;
    }
    CHECK_EQ(ret, -ENOSPC);
    CHECK_EQ(added, VMDEV_NET_SWITCH_MAX_PORTS - PORTS);
    for (unsigned i = 0; i <= added; i++)
        close(extra[i]);
    run_ready();
    CHECK_EQ(vmdev_net_switch_stats(sw).ports, PORTS);
}

static void cleanup(void)
{
    vmdev_net_switch_free(sw);
    for (unsigned i = 0; i < PORTS; i++)
        close(peer[i]);
    vmdev_event_loop_free(loop);
}

TEST_MAIN(TEST(setup),
          TEST(floods_then_learns_and_forwards),
          TEST(a_port_that_leaves_is_forgotten),
          TEST(a_burst_waits_in_the_egress_queue),
          TEST(a_stopped_peer_costs_only_its_own_frames),
          TEST(ports_are_limited),
          TEST(cleanup))
