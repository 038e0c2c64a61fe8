/*
 * clock.h: time, as xero-sync handles it.
 *
 * A point in time is an xs_time: milliseconds since the Unix epoch, UTC, in an int64_t.
 * Xero writes dates in the .NET JSON form "/Date(1573755038314+0000)/": milliseconds since the
 * epoch in UTC, then an optional +hhmm/-hhmm that only names the zone the value was seen in
 * (it does not shift the instant). In "...String" twins and request headers Xero uses ISO
 * 8601 without a zone, meaning UTC. xero-sync writes ISO 8601 UTC with milliseconds and "Z".
 */
#ifndef XS_CLOCK_H
#define XS_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"

typedef int64_t xs_time;

/* Buffer sizes, including the terminating NUL. */
#define XS_TIME_ISO_MAX  32 /* "2019-11-14T18:10:38.314Z" */
#define XS_TIME_XERO_MAX 40 /* "/Date(1573755038314+0000)/" */

/* xs_clock_now returns the current wall-clock time. */
xs_time xs_clock_now(void);

/* xs_clock_mono_ms returns a monotonic clock in milliseconds, for durations and deadlines. */
int64_t xs_clock_mono_ms(void);

/* xs_clock_mono_us is the same clock in microseconds, for short durations. */
int64_t xs_clock_mono_us(void);

/* xs_clock_sleep_ms sleeps for ms milliseconds (restarting after signals). */
void xs_clock_sleep_ms(int64_t ms);

/* xs_time_parse_xero reads "/Date(1573755038314)/" or "/Date(1573755038314+0000)/". The
 * milliseconds are UTC already; the offset is checked for form (+/-, four digits, hours
 * 0-14, minutes 0-59) and otherwise ignored. Negative milliseconds are accepted. */
xs_err xs_time_parse_xero(const char *text, xs_time *out);

/* xs_time_format_xero writes "/Date(<ms>+0000)/" into buf (XS_TIME_XERO_MAX bytes). */
void xs_time_format_xero(xs_time t, char *buf);

/* xs_time_parse_iso reads ISO 8601 date-times: "2019-11-14T18:10:38Z",
 * "2019-11-14T18:10:38.3140000", "2019-11-14T18:10:38+13:00", "2019-11-14" (midnight).
 * No zone means UTC. Fractions beyond milliseconds are truncated. Fields are range checked
 * (month 1-12, day within the month, leap years, hour 0-23, ...). */
xs_err xs_time_parse_iso(const char *text, xs_time *out);

/* xs_time_parse_any reads either form above. */
xs_err xs_time_parse_any(const char *text, xs_time *out);

/* xs_time_format_iso writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (XS_TIME_ISO_MAX bytes). */
void xs_time_format_iso(xs_time t, char *buf);

/* xs_time_format_iso_seconds writes "YYYY-MM-DDTHH:MM:SS" (UTC, no zone, no fraction), the
 * form Xero expects in the If-Modified-Since header. */
void xs_time_format_iso_seconds(xs_time t, char *buf);

/* A time's calendar fields in UTC (proleptic Gregorian). */
typedef struct xs_time_fields {
    int64_t year;
    int month, day;         /* 1-12, 1-31 */
    int hour, min, sec, ms; /* 0-23, 0-59, 0-59, 0-999 */
} xs_time_fields;

/* xs_time_split breaks t into its UTC calendar fields (times before 1970 too). */
void xs_time_split(xs_time t, xs_time_fields *out);

/* xs_time_days_from_civil returns the days since 1970-01-01 of a date (month 1-12, day 1-31,
 * not checked against the month; negative before 1970). */
int64_t xs_time_days_from_civil(int64_t year, int month, int day);

/* xs_time_format_date writes "YYYY-MM-DD" (UTC). */
void xs_time_format_date(xs_time t, char *buf);

#endif
