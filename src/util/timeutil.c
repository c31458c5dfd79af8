/* timeutil.c — see timeutil.h. */
#include "util/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t time_now(void)
{
    return (int64_t)time(NULL);
}

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_rfc5322(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    localtime_r(&t, &tm);
    /* strftime's %a/%b follow the locale; mail dates must be English. */
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
             off % 60);
}

void time_iso8601(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- parsing dates -------------------------------------------------------- */

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int time_parse_date(const char *s, int64_t *out)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 40)
        return -1;
    if (digits(s, len)) { /* seconds since the epoch */
        if (len > 12)
            return -1;
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    /* YYYY-MM-DD */
    if (len < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
        return -1;
    int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2), h = 0, mi = 0, sec = 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return -1;
    const char *p = s + 10;
    int64_t offset = 0; /* seconds east of UTC */
    if (*p) {
        /* THH:MM[:SS[.fraction]] then Z, +HH:MM, +HHMM, +HH or nothing (UTC) */
        if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2) || p[3] != ':' || !digits(p + 4, 2))
            return -1;
        h = num(p + 1, 2);
        mi = num(p + 4, 2);
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2))
                return -1;
            sec = num(p + 1, 2);
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            if (!digits(p + 1, 2))
                return -1;
            oh = num(p + 1, 2);
            p += 3;
            if (*p == ':')
                p++;
            if (digits(p, 2)) {
                om = num(p, 2);
                p += 2;
            }
            if (oh > 23 || om > 59)
                return -1;
            offset = sign * (oh * 3600 + om * 60);
        }
        if (*p)
            return -1;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    int64_t t = (int64_t)timegm(&tm) - offset;
    if (t < 0) /* 1970-01-01 east of UTC is still 1969 */
        return -1;
    *out = t;
    return 0;
}
