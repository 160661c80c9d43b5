/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <dirent.h>

bool test_failed;

/* Runs every case, or only those named on the command line. */
int test_run_all(const struct test_case *cases, unsigned count, int argc,
                 char **argv)
{
    unsigned failures = 0, ran = 0;
    for (unsigned i = 0; i < count; i++) {
        bool selected = argc < 2;
        for (int a = 1; a < argc; a++)
            selected |= strcmp(argv[a], cases[i].name) == 0;
        if (!selected)
            continue;
        test_failed = false;
        cases[i].fn();
        ran++;
        printf("%s %s\n", test_failed ? "FAIL" : "ok  ", cases[i].name);
        failures += test_failed;
    }
    printf("%u of %u tests failed\n", failures, ran);
    return failures ? 1 : 0;
}

int test_state_patch(void *snapshot, size_t len, const char *key,
                     unsigned width, uint64_t value)
{
    uint8_t *data = snapshot;
    size_t key_len = strlen(key);
    size_t header = 1 + key_len + 4;
    for (size_t i = 0; i + header + width <= len; i++) {
        uint8_t *p = data + i;
        if (p[0] != key_len || memcmp(p + 1, key, key_len) != 0)
            continue;
        const uint8_t *l = p + 1 + key_len;
        if ((l[0] | l[1] << 8 | l[2] << 16 | (uint32_t)l[3] << 24) != width)
            continue;
        for (unsigned b = 0; b < width; b++)
            p[header + b] = (uint8_t)(value >> (8 * b));
        return 0;
    }
    return -1;
}

unsigned test_open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        abort();
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}
