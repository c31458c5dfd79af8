/* ratelimit.c — see ratelimit.h. */
#include "continuity/ratelimit.h"

void ratelimit_init(struct ratelimit *rl, unsigned rate, unsigned burst)
{
    rl->interval_us = rate ? 1000000 / (int64_t)rate : 0;
    if (rate && rl->interval_us == 0)
        rl->interval_us = 1;
    rl->tolerance_us = rl->interval_us * (int64_t)(burst > 0 ? burst - 1 : 0);
    rl->tat_us = 0;
}

int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
    if (rl->interval_us == 0)
        return 0;
    int64_t now = now_ms * 1000;
    int64_t tat = rl->tat_us > now ? rl->tat_us : now;
    if (tat - now > rl->tolerance_us) {
        int64_t wait_us = tat - rl->tolerance_us - now;
        return (wait_us + 999) / 1000; /* round up: asking again then succeeds */
    }
    rl->tat_us = tat + rl->interval_us;
    return 0;
}
