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

#endif
