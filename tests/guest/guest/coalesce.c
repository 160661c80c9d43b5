/* SPDX-License-Identifier: MIT */
/*
 * coalesce IFACE [RX_USECS RX_FRAMES TX_USECS TX_FRAMES]: ethtool -c / -C
 * for the test guest, whose busybox has no ethtool. With the four values
 * it first asks the driver to coalesce interrupts so (virtio_net sends the
 * device VIRTIO_NET_CTRL_NOTF_COAL_TX_SET and _RX_SET); then prints what
 * the driver holds, "rx USECS FRAMES tx USECS FRAMES". Built static by
 * mkinitramfs.sh.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ethtool_ioctl.h"

static int number(const char *text, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (!*text || *end || v > 0xffffffffu)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 6) {
        fprintf(stderr,
                "usage: %s IFACE [RX_USECS RX_FRAMES TX_USECS TX_FRAMES]\n",
                argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct ethtool_coalesce ec = { .cmd = ETHTOOL_GCOALESCE };
    if (ethtool_ioctl(fd, argv[1], &ec) < 0) {
        fprintf(stderr, "%s: get coalescing: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (argc == 6) {
        if (number(argv[2], &ec.rx_coalesce_usecs) ||
            number(argv[3], &ec.rx_max_coalesced_frames) ||
            number(argv[4], &ec.tx_coalesce_usecs) ||
            number(argv[5], &ec.tx_max_coalesced_frames)) {
            fprintf(stderr, "%s: the four values are numbers\n", argv[1]);
            return 2;
        }
        ec.cmd = ETHTOOL_SCOALESCE;
        if (ethtool_ioctl(fd, argv[1], &ec) < 0) {
            fprintf(stderr, "%s: set coalescing: %s\n", argv[1],
                    strerror(errno));
            return 1;
        }
        ec = (struct ethtool_coalesce){ .cmd = ETHTOOL_GCOALESCE };
        if (ethtool_ioctl(fd, argv[1], &ec) < 0) {
            fprintf(stderr, "%s: get coalescing: %s\n", argv[1],
                    strerror(errno));
            return 1;
        }
    }
    printf("rx %u %u tx %u %u\n", ec.rx_coalesce_usecs,
           ec.rx_max_coalesced_frames, ec.tx_coalesce_usecs,
           ec.tx_max_coalesced_frames);
    close(fd);
    return 0;
}
