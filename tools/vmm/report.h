/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's messages to its user about what it was asked to build: on
 * stderr, after "vmdev-run: ", or, while the control API carries out a
 * request on this thread, into that request's error instead, so that a
 * device-add refused for a bad key or an image that does not open says
 * why to the client that asked, and nothing reaches stderr.
 */
#ifndef VMM_REPORT_H
#define VMM_REPORT_H

#include <stddef.h>

/* A message, one line ("\n" at its end optional). */
void vmm_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* From now on this thread's messages go into buf (the first one is kept:
 * it names the cause); NULL sends them to stderr again. */
void vmm_report_capture(char *buf, size_t len);

#endif
