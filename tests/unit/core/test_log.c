/* SPDX-License-Identifier: MIT */
/*
 * Logs are per context: two logs, two sinks, nothing shared; a level
 * keeps what is at most as verbose; a rate limit lets a burst through,
 * counts the rest and says so once its window has passed, and one
 * device's limit does not hold back another's lines.
 */
#include <string.h>

#include "test.h"
#include "vmdev/log.h"

struct sink {
    unsigned lines;
    enum vmdev_log_level last_level;
    char last[128];
};

static void record(void *opaque, enum vmdev_log_level level,
                   const char *message)
{
    struct sink *s = opaque;
    s->lines++;
    s->last_level = level;
    snprintf(s->last, sizeof(s->last), "%s", message);
}

static void each_log_has_its_own_sink_and_level(void)
{
    struct sink a = { 0 }, b = { 0 };
    struct vmdev_log *la = vmdev_log_new(record, &a, VMDEV_LOG_GUEST);
    struct vmdev_log *lb = vmdev_log_new(record, &b, VMDEV_LOG_DEBUG);
    CHECK(la && lb);
    vmdev_log(la, VMDEV_LOG_WARN, "disk %d", 1);
    CHECK_EQ(a.lines, 1);
    CHECK_EQ(b.lines, 0);
    CHECK(strcmp(a.last, "disk 1") == 0);
    CHECK_EQ(a.last_level, VMDEV_LOG_WARN);
    vmdev_log(la, VMDEV_LOG_DEBUG, "dropped");
    vmdev_log(lb, VMDEV_LOG_DEBUG, "kept");
    CHECK_EQ(a.lines, 1);
    CHECK_EQ(b.lines, 1);
    CHECK(strcmp(b.last, "kept") == 0);
    vmdev_log_free(la);
    vmdev_log_free(lb);
    CHECK(vmdev_log_new(record, &a, (enum vmdev_log_level)99) == NULL);
}

static void a_limit_holds_back_a_flood_and_reports_it(void)
{
    struct sink s = { 0 };
    struct vmdev_log *log = vmdev_log_new(record, &s, VMDEV_LOG_GUEST);
    CHECK(log != NULL);
    struct vmdev_ratelimit flooding = { 0 }, quiet = { 0 };
    for (unsigned i = 0; i < 1000; i++)
        vmdev_log_guest(log, &flooding, "bad descriptor %u", i);
    unsigned burst = s.lines;
    CHECK_EQ(burst, 10); /* log.c's BURST */
    /* Another device's limit is its own. */
    vmdev_log_guest(log, &quiet, "other device");
    CHECK_EQ(s.lines, burst + 1);
    CHECK(strcmp(s.last, "other device") == 0);
    /* The window has passed (moved back by hand: no sleeping): the
     * next line first says how many were held back. */
    flooding.window_start_ns -= 2000000000ull;
    vmdev_log_guest(log, &flooding, "again");
    CHECK_EQ(s.lines, burst + 3);
    CHECK(strcmp(s.last, "again") == 0);
    CHECK_EQ(flooding.suppressed, 0);
    vmdev_log_free(log);
}

/* The report of what was held back, checked on its own. */
static struct sink first_after_window;
static void record_first(void *opaque, enum vmdev_log_level level,
                         const char *message)
{
    struct sink *s = opaque;
    if (s->lines++ == 0)
        snprintf(first_after_window.last, sizeof(first_after_window.last),
                 "%s", message);
}

static void the_report_counts_the_lines_held_back(void)
{
    struct sink s = { 0 };
    struct vmdev_log *log = vmdev_log_new(record_first, &s, VMDEV_LOG_WARN);
    CHECK(log != NULL);
    struct vmdev_ratelimit limit = { 0 };
    for (unsigned i = 0; i < 25; i++)
        vmdev_log_limited(log, &limit, VMDEV_LOG_WARN, "read failed");
    unsigned passed = s.lines;
    limit.window_start_ns -= 2000000000ull;
    s.lines = 0;
    vmdev_log_limited(log, &limit, VMDEV_LOG_WARN, "read failed");
    char expected[64];
    snprintf(expected, sizeof(expected), "%u similar messages suppressed",
             25 - passed);
    CHECK(strcmp(first_after_window.last, expected) == 0);
    vmdev_log_free(log);
}

/* A NULL log is stderr, for a device given none: it must not crash. */
static void no_log_is_stderr(void)
{
    struct vmdev_ratelimit limit = { 0 };
    vmdev_log(NULL, VMDEV_LOG_DEBUG, "not shown");
    vmdev_log_guest(NULL, &limit, "a guest error on stderr (expected)");
    CHECK_EQ(limit.emitted, 1);
}

TEST_MAIN(TEST(each_log_has_its_own_sink_and_level),
          TEST(a_limit_holds_back_a_flood_and_reports_it),
          TEST(the_report_counts_the_lines_held_back), TEST(no_log_is_stderr))
