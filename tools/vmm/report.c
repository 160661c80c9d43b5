/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Per thread: only the requests' own thread captures its messages. */
static __thread char *capture_buf;
static __thread size_t capture_len;

void vmm_report_capture(char *buf, size_t len)
{
    capture_buf = len ? buf : NULL;
    capture_len = len;
    if (capture_buf)
        capture_buf[0] = '\0';
}

void vmm_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!capture_buf) {
        fputs("vmdev-run: ", stderr);
        vfprintf(stderr, fmt, ap);
    } else if (!capture_buf[0]) {
        vsnprintf(capture_buf, capture_len, fmt, ap);
        size_t n = strlen(capture_buf);
        if (n && capture_buf[n - 1] == '\n')
            capture_buf[n - 1] = '\0';
    }
    va_end(ap);
}
