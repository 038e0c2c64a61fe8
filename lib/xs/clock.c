/* clock.c: wall and monotonic clocks, and Xero's and ISO 8601 date forms. */
#include "xs/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY INT64_C(86400000)
/* Bounds that keep every computation below far from overflow: years 0001 to 9999. */
#define MIN_MS (INT64_C(-62135596800000))
#define MAX_MS (INT64_C(253402300799999))

xs_time xs_clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (xs_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t xs_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t xs_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void xs_clock_sleep_ms(int64_t ms)
{
    if (ms <= 0) {
        return;
    }
    struct timespec req = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
}

/* H. Hinnant's algorithms, proleptic Gregorian. */
int64_t xs_time_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* civil_from_days: the inverse of xs_time_days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* digits reads exactly n decimal digits at *p into *out and advances *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

xs_err xs_time_parse_xero(const char *text, xs_time *out)
{
    if (text == NULL || out == NULL) {
        return XS_EINVAL;
    }
    const char *p = text;
    if (strncmp(p, "/Date(", 6) != 0) {
        return XS_EPARSE;
    }
    p += 6;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (*p < '0' || *p > '9') {
        return XS_EPARSE;
    }
    int64_t ms = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > 16) {
            return XS_ERANGE;
        }
        ms = ms * 10 + (*p - '0');
        p++;
    }
    if (neg) {
        ms = -ms;
    }
    if (*p == '+' || *p == '-') {
        p++;
        int hh, mm;
        if (!digits(&p, 2, &hh) || !digits(&p, 2, &mm) || hh > 14 || mm > 59) {
            return XS_EPARSE;
        }
    }
    if (strcmp(p, ")/") != 0) {
        return XS_EPARSE;
    }
    if (ms < MIN_MS || ms > MAX_MS) {
        return XS_ERANGE;
    }
    *out = ms;
    return XS_OK;
}

void xs_time_format_xero(xs_time t, char *buf)
{
    /* By hand, not snprintf: replies carry several of these per record. */
    char rev[20];
    int nrev = 0;
    uint64_t u = t < 0 ? UINT64_C(0) - (uint64_t)t : (uint64_t)t;
    do {
        rev[nrev++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    memcpy(buf, "/Date(", 6);
    int n = 6;
    if (t < 0) {
        buf[n++] = '-';
    }
    while (nrev > 0) {
        buf[n++] = rev[--nrev];
    }
    memcpy(buf + n, "+0000)/", 8);
}

xs_err xs_time_parse_iso(const char *text, xs_time *out)
{
    if (text == NULL || out == NULL) {
        return XS_EINVAL;
    }
    const char *p = text;
    int year, mon, day, hh = 0, mi = 0, ss = 0, msec = 0;
    if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) || *p++ != '-' ||
        !digits(&p, 2, &day)) {
        return XS_EPARSE;
    }
    if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)) {
        return XS_ERANGE;
    }
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi)) {
            return XS_EPARSE;
        }
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &ss)) {
                return XS_EPARSE;
            }
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                if (*p < '0' || *p > '9') {
                    return XS_EPARSE;
                }
                /* Digits past the third are skipped uncounted, so any length is safe. */
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3) {
                        msec = msec * 10 + (*p - '0');
                        nd++;
                    }
                    p++;
                }
                for (; nd < 3; nd++) {
                    msec *= 10;
                }
            }
        }
        if (hh > 23 || mi > 59 || ss > 59) {
            return XS_ERANGE;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om;
            p++;
            if (!digits(&p, 2, &oh)) {
                return XS_EPARSE;
            }
            if (*p == ':') {
                p++;
            }
            if (!digits(&p, 2, &om) || oh > 14 || om > 59) {
                return XS_EPARSE;
            }
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0') {
        return XS_EPARSE;
    }
    int64_t days = xs_time_days_from_civil(year, mon, day);
    int64_t ms =
        days * MS_PER_DAY + ((int64_t)hh * 3600 + mi * 60 + ss) * 1000 + msec - offset_min * 60000;
    if (ms < MIN_MS || ms > MAX_MS) {
        return XS_ERANGE;
    }
    *out = ms;
    return XS_OK;
}

xs_err xs_time_parse_any(const char *text, xs_time *out)
{
    if (text != NULL && text[0] == '/') {
        return xs_time_parse_xero(text, out);
    }
    return xs_time_parse_iso(text, out);
}

void xs_time_split(xs_time t, xs_time_fields *out)
{
    int64_t days = t / MS_PER_DAY;
    int64_t rem = t % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days -= 1;
    }
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(rem / 3600000);
    out->min = (int)(rem / 60000 % 60);
    out->sec = (int)(rem / 1000 % 60);
    out->ms = (int)(rem % 1000);
}

void xs_time_format_iso(xs_time t, char *buf)
{
    xs_time_fields f;
    xs_time_split(t, &f);
    snprintf(buf, XS_TIME_ISO_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)f.year,
             f.month, f.day, f.hour, f.min, f.sec, f.ms);
}

void xs_time_format_iso_seconds(xs_time t, char *buf)
{
    xs_time_fields f;
    xs_time_split(t, &f);
    snprintf(buf, XS_TIME_ISO_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)f.year, f.month,
             f.day, f.hour, f.min, f.sec);
}

void xs_time_format_date(xs_time t, char *buf)
{
    xs_time_fields f;
    xs_time_split(t, &f);
    snprintf(buf, XS_TIME_ISO_MAX, "%04lld-%02d-%02d", (long long)f.year, f.month, f.day);
}
