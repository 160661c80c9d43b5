// SPDX-License-Identifier: MIT
// The umbrella header from C++: it compiles, and the library's C symbols
// link (extern "C").
#include <cstdio>
#include <cstring>
#include <vmdev/vmdev.h>

int main()
{
    if (std::strcmp(vmdev_version(), VMDEV_VERSION) != 0) {
        std::fprintf(stderr, "vmdev_version() %s, VMDEV_VERSION %s\n",
                     vmdev_version(), VMDEV_VERSION);
        return 1;
    }
    return 0;
}
