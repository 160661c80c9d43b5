/* SPDX-License-Identifier: MIT */
#include "test.h"

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
