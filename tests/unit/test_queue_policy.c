/*
 * test_queue_policy.c — the retry policy of queue.h: exponential backoff
 * between retry_min_backoff and retry_max_backoff (with its +-10% spread) and
 * expiry at queue_lifetime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "queue/queue.h"

static struct config policy_config(unsigned min, unsigned max, unsigned lifetime)
{
    struct config cfg;
    config_defaults(&cfg);
    cfg.retry_min_backoff = min;
    cfg.retry_max_backoff = max;
    cfg.queue_lifetime = lifetime;
    return cfg;
}

/* Every wait stays within 10% of the nominal doubling and inside [min, max]. */
static void test_backoff_doubles_within_bounds(void **state)
{
    (void)state;
    struct config cfg = policy_config(300, 3600, 5 * 86400);
    const int64_t now = 1700000000;
    const int64_t nominal[] = {300, 300, 600, 1200, 2400, 3600, 3600, 3600};
    for (int round = 0; round < 200; round++) {
        for (unsigned attempts = 0; attempts < 8; attempts++) {
            int64_t wait = queue_next_attempt(&cfg, attempts, now) - now;
            int64_t n = nominal[attempts];
            assert_true(wait >= 300 && wait <= 3600);
            assert_true(wait >= n - n / 10 && wait <= n + n / 10);
        }
    }
}

/* The spread really spreads: many calls do not all land on one second. */
static void test_backoff_is_spread(void **state)
{
    (void)state;
    struct config cfg = policy_config(300, 3600, 86400);
    srandom(42);
    int64_t first = queue_next_attempt(&cfg, 3, 0);
    int differ = 0;
    for (int i = 0; i < 50; i++)
        differ |= queue_next_attempt(&cfg, 3, 0) != first;
    assert_true(differ);
}

/* A huge attempt count neither overflows nor passes the cap. */
static void test_backoff_cap_and_overflow(void **state)
{
    (void)state;
    struct config cfg = policy_config(60, 7200, 86400);
    const int64_t now = 1000;
    const unsigned counts[] = {10, 63, 64, 65, 1000, 65535, 4000000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t wait = queue_next_attempt(&cfg, counts[i], now) - now;
        assert_true(wait >= 7200 - 720 && wait <= 7200);
    }
}

/* Odd settings: min above max, zero min. The wait stays positive and sane. */
static void test_backoff_odd_settings(void **state)
{
    (void)state;
    struct config cfg = policy_config(600, 60, 86400);
    assert_int_equal(queue_next_attempt(&cfg, 1, 0), 600);
    assert_int_equal(queue_next_attempt(&cfg, 9, 0), 600);
    cfg = policy_config(0, 0, 86400);
    assert_int_equal(queue_next_attempt(&cfg, 1, 10), 11);
    /* Tiny waits have no room for a spread: exact. */
    cfg = policy_config(2, 8, 86400);
    assert_int_equal(queue_next_attempt(&cfg, 1, 0), 2);
    assert_int_equal(queue_next_attempt(&cfg, 2, 0), 4);
}

static void test_expiry(void **state)
{
    (void)state;
    struct config cfg = policy_config(300, 3600, 5 * 86400);
    const int64_t received = 1700000000;
    assert_false(queue_expired(&cfg, received, received));
    assert_false(queue_expired(&cfg, received, received + 5 * 86400 - 1));
    assert_true(queue_expired(&cfg, received, received + 5 * 86400));
    assert_true(queue_expired(&cfg, received, received + 6 * 86400));
    /* A clock that went backwards does not expire anything. */
    assert_false(queue_expired(&cfg, received, received - 100));
    cfg.queue_lifetime = 0;
    assert_true(queue_expired(&cfg, received, received));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_within_bounds),
        cmocka_unit_test(test_backoff_is_spread),
        cmocka_unit_test(test_backoff_cap_and_overflow),
        cmocka_unit_test(test_backoff_odd_settings),
        cmocka_unit_test(test_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
