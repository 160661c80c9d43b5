/* SPDX-License-Identifier: MIT */
/* The SIOCETHTOOL call of the test guest's ethtool stand-ins (channels.c,
 * coalesce.c): cmd is the struct ethtool_* whose first field names the
 * command. */
#ifndef VMDEV_GUEST_ETHTOOL_IOCTL_H
#define VMDEV_GUEST_ETHTOOL_IOCTL_H

#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static int ethtool_ioctl(int fd, const char *iface, void *cmd)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
    ifr.ifr_data = cmd;
    return ioctl(fd, SIOCETHTOOL, &ifr);
}

#endif
