/* SPDX-License-Identifier: MIT */
/*
 * Calendar arithmetic for the CMOS RTC: broken-down time from seconds
 * since 1970-01-01 and back (proleptic Gregorian, no leap seconds), BCD
 * encoding and the search for the next alarm match. Internal to libvmdev.
 */
#ifndef VMDEV_RTC_CALENDAR_H
#define VMDEV_RTC_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

/* The years this model represents; guest-written times are clamped to
 * them so that nanosecond arithmetic stays within int64_t. */
#define RTC_YEAR_MIN 1970
#define RTC_YEAR_MAX 2199

#define RTC_SECONDS_PER_DAY 86400

struct rtc_tm {
    int year;   /* RTC_YEAR_MIN..RTC_YEAR_MAX */
    int month;  /* 1..12 */
    int mday;   /* 1..31 */
    int wday;   /* 1..7, Sunday = 1 (MC146818A register 6) */
    int hour;   /* 0..23 */
    int minute; /* 0..59 */
    int second; /* 0..59 */
};

/* secs >= 0. */
void rtc_tm_from_seconds(int64_t secs, struct rtc_tm *tm);
/* Fields out of range are clamped into it first (wday is ignored);
 * returns true if nothing needed clamping. */
bool rtc_tm_normalise(struct rtc_tm *tm);
int64_t rtc_tm_to_seconds(const struct rtc_tm *tm);

/* Binary or BCD representation of 0..99. */
uint8_t rtc_encode(unsigned value, bool bcd);
/* False when the byte is not a valid number in that representation. */
bool rtc_decode(uint8_t byte, bool bcd, unsigned *value);

/*
 * The first second strictly after `after` (seconds since 1970) whose
 * hour, minute and second match; a negative field is "don't care". A
 * fixed field out of range never matches: returns INT64_MAX.
 */
int64_t rtc_next_alarm(int64_t after, int hour, int minute, int second);

#endif
