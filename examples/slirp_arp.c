/* SPDX-License-Identifier: MIT */
/*
 * User-mode networking (libslirp) without a guest: bring up the NAT, send
 * it the ARP request a guest at 10.0.2.15 makes for its gateway 10.0.2.2,
 * and wait for the answer: the gateway's MAC address.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <vmdev/vmdev.h>

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t guest_ip[4] = { 10, 0, 2, 15 };
static const uint8_t gateway_ip[4] = { 10, 0, 2, 2 };

struct answer {
    bool got;
    uint8_t mac[6];
};

/* An ARP reply (Ethernet type 0x0806, operation 2) from the gateway's
 * address, to ours. */
static bool take_frame(void *opaque, const void *frame, size_t len,
                       const struct vmdev_net_offload *offload)
{
    struct answer *a = opaque;
    const uint8_t *f = frame;
    (void)offload;
    if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 &&
        f[21] == 2 && !memcmp(f + 28, gateway_ip, 4) &&
        !memcmp(f + 32, guest_mac, 6)) {
        memcpy(a->mac, f + 22, 6);
        a->got = true;
    }
    return true;
}

int main(void)
{
    /* libslirp writes to host sockets without MSG_NOSIGNAL. */
    signal(SIGPIPE, SIG_IGN);
    char why[256] = "";
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct vmdev_net_slirp_config config = { .mtu = 0 };
    struct vmdev_net_backend *nat =
        loop ? vmdev_net_slirp_new(&config, loop, why, sizeof(why)) : NULL;
    if (!nat) {
        fprintf(stderr, "slirp_arp: %s\n", why);
        return 1;
    }
    struct answer answer = { 0 };
    struct vmdev_net_callbacks callbacks = { .receive = take_frame,
                                             .opaque = &answer };
    if (vmdev_net_start(nat, &callbacks))
        return 1;

    /* Who has 10.0.2.2? Tell 10.0.2.15. */
    uint8_t request[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    memcpy(request + 6, guest_mac, 6);
    request[12] = 0x08, request[13] = 0x06;          /* ARP */
    request[14] = 0, request[15] = 1;                /* Ethernet */
    request[16] = 0x08, request[17] = 0x00;          /* IPv4 */
    request[18] = 6, request[19] = 4, request[21] = 1; /* a request */
    memcpy(request + 22, guest_mac, 6);
    memcpy(request + 28, guest_ip, 4);
    memcpy(request + 38, gateway_ip, 4);
    struct iovec iov = { request, sizeof(request) };
    if (vmdev_net_send(nat, &iov, 1)) {
        fprintf(stderr, "slirp_arp: the NAT did not take the request\n");
        return 1;
    }
    /* Its answer comes on the loop, at once or within a few turns. */
    for (int i = 0; i < 50 && !answer.got; i++)
        vmdev_event_loop_run_once(loop, 100);
    vmdev_net_free(nat);
    vmdev_event_loop_free(loop);
    if (!answer.got) {
        fprintf(stderr, "slirp_arp: no answer from the gateway\n");
        return 1;
    }
    printf("slirp_arp: 10.0.2.2 is at %02x:%02x:%02x:%02x:%02x:%02x\n",
           answer.mac[0], answer.mac[1], answer.mac[2], answer.mac[3],
           answer.mac[4], answer.mac[5]);
    return 0;
}
