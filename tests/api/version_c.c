/* SPDX-License-Identifier: MIT */
/* The umbrella header from C: the version macros agree with the library
 * that runs and with the project's version (meson.build). */
#include <stdio.h>
#include <string.h>
#include <vmdev/vmdev.h>

int main(void)
{
    char numbers[32];
    snprintf(numbers, sizeof(numbers), "%d.%d.%d", VMDEV_VERSION_MAJOR,
             VMDEV_VERSION_MINOR, VMDEV_VERSION_PATCH);
    if (strcmp(vmdev_version(), VMDEV_VERSION) ||
        strcmp(VMDEV_VERSION, PROJECT_VERSION) ||
        strcmp(numbers, VMDEV_VERSION)) {
        fprintf(stderr, "versions disagree: vmdev_version() %s, "
                "VMDEV_VERSION %s, the numbers %s, meson.build %s\n",
                vmdev_version(), VMDEV_VERSION, numbers, PROJECT_VERSION);
        return 1;
    }
    return 0;
}
