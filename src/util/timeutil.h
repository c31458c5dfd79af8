/* timeutil.h — clocks and mail date formats. */
#ifndef LB_UTIL_TIMEUTIL_H
#define LB_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t time_now(void);    /* wall clock, seconds since the epoch */
int64_t time_now_ms(void); /* wall clock, milliseconds */
int64_t time_mono_ms(void); /* monotonic, milliseconds: for delays and timeouts */

/* "Fri, 27 Nov 2026 21:53:37 +0000" (RFC 5322 date-time, local zone). */
void time_rfc5322(time_t t, char *out, size_t outlen);

/* "2026-11-27T21:53:37Z" */
void time_iso8601(time_t t, char *out, size_t outlen);

/* A date as a person gives one (the archive's search, API and lifeboatctl):
 * YYYY-MM-DD (midnight UTC), ISO 8601 date and time ("2026-11-27T21:53:37Z",
 * "...+01:00", fractions of a second ignored, no zone: UTC) or seconds since
 * the epoch, into *out as seconds since the epoch. Nothing before 1970, no
 * 31 February. 0 or -1. Pure. */
int time_parse_date(const char *s, int64_t *out);

#endif
