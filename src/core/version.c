/* SPDX-License-Identifier: MIT */
#include "vmdev/version.h"

const char *vmdev_version(void)
{
    return VMDEV_VERSION;
}
