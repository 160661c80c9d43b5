/* SPDX-License-Identifier: MIT */
/*
 * channels IFACE [COMBINED]: ethtool -l / -L for the test guest, whose
 * busybox has no ethtool. Prints "combined CURRENT MAX"; with COMBINED,
 * first asks the driver for that many queue pairs (virtio_net sends the
 * device VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET). Built static by mkinitramfs.sh.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ethtool_ioctl.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s IFACE [COMBINED]\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
    if (ethtool_ioctl(fd, argv[1], &ch) < 0) {
        fprintf(stderr, "%s: get channels: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (argc == 3) {
        char *end;
        unsigned long want = strtoul(argv[2], &end, 10);
        if (*end || want == 0 || want > ch.max_combined) {
            fprintf(stderr, "%s: combined '%s' is not 1..%u\n", argv[1],
                    argv[2], ch.max_combined);
            return 2;
        }
        ch.cmd = ETHTOOL_SCHANNELS;
        ch.combined_count = (unsigned)want;
        if (ethtool_ioctl(fd, argv[1], &ch) < 0) {
            fprintf(stderr, "%s: set %lu channels: %s\n", argv[1], want,
                    strerror(errno));
            return 1;
        }
        ch.cmd = ETHTOOL_GCHANNELS;
        if (ethtool_ioctl(fd, argv[1], &ch) < 0) {
            fprintf(stderr, "%s: get channels: %s\n", argv[1],
                    strerror(errno));
            return 1;
        }
    }
    printf("combined %u %u\n", ch.combined_count, ch.max_combined);
    close(fd);
    return 0;
}
