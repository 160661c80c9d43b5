/* SPDX-License-Identifier: MIT */
#include "platform/rtc_calendar.h"

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const uint8_t days[12] = { 31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31 };
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to year-month-day (Howard Hinnant's civil
 * calendar algorithm, valid for every year >= 0). */
static int64_t days_from_civil(int year, int month, int day)
{
    int64_t y = month <= 2 ? year - 1 : year;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rtc_tm_from_seconds(int64_t secs, struct rtc_tm *tm)
{
    int64_t days = secs / RTC_SECONDS_PER_DAY;
    int64_t sod = secs % RTC_SECONDS_PER_DAY;
    tm->hour = (int)(sod / 3600);
    tm->minute = (int)(sod / 60 % 60);
    tm->second = (int)(sod % 60);
    tm->wday = (int)((days + 4) % 7) + 1; /* 1970-01-01 was a Thursday */

    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    tm->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    tm->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    tm->year = (int)(yoe + era * 400 + (tm->month <= 2));
}

static bool clamp(int *v, int lo, int hi)
{
    if (*v < lo) {
        *v = lo;
        return false;
    }
    if (*v > hi) {
        *v = hi;
        return false;
    }
    return true;
}

bool rtc_tm_normalise(struct rtc_tm *tm)
{
    bool ok = clamp(&tm->year, RTC_YEAR_MIN, RTC_YEAR_MAX);
    ok &= clamp(&tm->month, 1, 12);
    ok &= clamp(&tm->mday, 1, days_in_month(tm->year, tm->month));
    ok &= clamp(&tm->hour, 0, 23);
    ok &= clamp(&tm->minute, 0, 59);
    ok &= clamp(&tm->second, 0, 59);
    return ok;
}

int64_t rtc_tm_to_seconds(const struct rtc_tm *tm)
{
    return days_from_civil(tm->year, tm->month, tm->mday) *
               RTC_SECONDS_PER_DAY +
           tm->hour * 3600 + tm->minute * 60 + tm->second;
}

uint8_t rtc_encode(unsigned value, bool bcd)
{
    value %= 100;
    return (uint8_t)(bcd ? (value / 10) << 4 | value % 10 : value);
}

bool rtc_decode(uint8_t byte, bool bcd, unsigned *value)
{
    if (!bcd) {
        *value = byte;
        return true;
    }
    if ((byte >> 4) > 9 || (byte & 0xf) > 9)
        return false;
    *value = (byte >> 4) * 10u + (byte & 0xfu);
    return true;
}

int64_t rtc_next_alarm(int64_t after, int hour, int minute, int second)
{
    if (hour > 23 || minute > 59 || second > 59)
        return INT64_MAX;
    int64_t t = after + 1;
    /* Each step either returns or moves t to the start of the next
     * window where the mismatching field can match; two days of hours,
     * minutes and seconds bound the steps well below this limit. */
    for (int steps = 0; steps < 1000; steps++) {
        int64_t day = t - t % RTC_SECONDS_PER_DAY;
        int64_t sod = t % RTC_SECONDS_PER_DAY;
        int h = (int)(sod / 3600), m = (int)(sod / 60 % 60), s = (int)(sod % 60);
        if (hour >= 0 && h != hour) {
            t = day + (int64_t)hour * 3600;
            if (h > hour)
                t += RTC_SECONDS_PER_DAY;
            continue;
        }
        int64_t hour_start = day + (int64_t)h * 3600;
        if (minute >= 0 && m != minute) {
            t = m < minute ? hour_start + minute * 60 : hour_start + 3600;
            continue;
        }
        int64_t minute_start = hour_start + (int64_t)m * 60;
        if (second >= 0 && s != second) {
            t = s < second ? minute_start + second : minute_start + 60;
            continue;
        }
        return t;
    }
    return INT64_MAX;
}
