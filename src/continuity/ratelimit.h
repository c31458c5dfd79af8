/*
 * ratelimit.h — a pacing rate limiter (GCRA, the "virtual scheduling" form of
 * a token bucket) for the recovery drain: at most `rate` starts per second,
 * at most `burst` of them back to back. Pure: the caller passes the clock.
 */
#ifndef LB_CONTINUITY_RATELIMIT_H
#define LB_CONTINUITY_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
    int64_t interval_us; /* between two starts at the steady rate; 0: no limit */
    int64_t tolerance_us; /* how far ahead of schedule a burst may run */
    int64_t tat_us;       /* theoretical arrival time of the next start */
};

/* rate: starts per second (0: no limit); burst: at least 1. */
void ratelimit_init(struct ratelimit *rl, unsigned rate, unsigned burst);

/* At now_ms (a monotonic clock): 0 if a start may happen now (and it is
 * counted), or the milliseconds to wait before asking again (nothing counted). */
int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms);

#endif
