/* SPDX-License-Identifier: MIT */
/*
 * A minimal unit-test harness. A test file defines test functions and
 * lists them with TEST_MAIN(); a failed CHECK prints the expression and
 * location, marks the test failed and returns from it.
 */
#ifndef VMDEV_TEST_H
#define VMDEV_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern bool test_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            test_failed = true;                                                \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
        if (check_a_ != check_b_) {                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);           \
            test_failed = true;                                                \
            return;                                                            \
        }                                                                      \
    } while (0)

/* xorshift64: reproducible pseudo-random numbers from a seed a failing
 * test can print. */
static inline uint64_t test_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

struct test_case {
    const char *name;
    void (*fn)(void);
};

/*
 * Overwrite the integer field called key (width bytes, as the snapshot
 * format stores it: type, key length, key, 32-bit length, value) in a
 * snapshot, to test that restore refuses bad values. Returns 0 or -1 when
 * no such field is there.
 */
int test_state_patch(void *snapshot, size_t len, const char *key,
                     unsigned width, uint64_t value);

int test_run_all(const struct test_case *cases, unsigned count, int argc,
                 char **argv);

/* The process's open file descriptors (/proc/self/fd), to see that what
 * a test opened was closed. */
unsigned test_open_fds(void);

#define TEST(name) { #name, name }
#define TEST_MAIN(...)                                                         \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        static const struct test_case cases[] = { __VA_ARGS__ };               \
        return test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc,     \
                            argv);                                             \
    }

#endif
