/*
 * queue.c — the queue's retry policy (the policy half of queue.h; putting
 * messages into the queue is queue_submit.c).
 *
 * A recipient that failed temporarily waits retry_min_backoff after its first
 * failed attempt, twice that after the second, and so on up to
 * retry_max_backoff. Each wait is spread by up to +-10% so that the thousands of
 * recipients deferred in the same second of an outage do not all come back in
 * the same second either; the spread never takes a wait outside
 * [retry_min_backoff, retry_max_backoff]. A message older than queue_lifetime is
 * given up on (bounced) at its next temporary failure.
 */
#include "queue/queue.h"

#include <stdlib.h>

/* The spread: a wait is moved by up to 1/QUEUE_JITTER_DIVISOR of itself. */
#define QUEUE_JITTER_DIVISOR 10

int64_t queue_next_attempt(const struct config *cfg, unsigned attempts, int64_t now)
{
    int64_t lo = cfg->retry_min_backoff > 0 ? cfg->retry_min_backoff : 1;
    int64_t hi = cfg->retry_max_backoff > (unsigned)lo ? cfg->retry_max_backoff : lo;

    /* Double once per failed attempt after the first; stop before overflowing. */
    int64_t wait = lo;
    for (unsigned i = 1; i < attempts && wait < hi; i++)
        wait *= 2;
    if (wait > hi)
        wait = hi;

    int64_t spread = wait / QUEUE_JITTER_DIVISOR;
    if (spread > 0)
        wait += (int64_t)(random() % (2 * spread + 1)) - spread;
    if (wait < lo)
        wait = lo;
    if (wait > hi)
        wait = hi;
    return now + wait;
}

int queue_expired(const struct config *cfg, int64_t received, int64_t now)
{
    return now - received >= (int64_t)cfg->queue_lifetime;
}
