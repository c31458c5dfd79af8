/*
 * test_http_guard.c — the decisions of the HTTP guard (http_guard.c): the
 * budget of request bodies held at once (all clients and per address; nothing
 * taken when refused; given back exactly) and the deadlines of a connection's
 * phases (an absolute header deadline, a minimum body rate after a grace, a
 * stall timeout for streamed replies), with the clock passed in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/http_internal.h"

#define MB (1u << 20)

static void test_budget_per_address_and_in_all(void **state)
{
    (void)state;
    struct http_budget b = {.max_total = 100 * MB, .max_per_ip = 40 * MB};
    assert_int_equal(http_budget_take(&b, "10.0.0.1", 30 * MB), 0);
    assert_int_equal(http_budget_take(&b, "10.0.0.1", 10 * MB), 0);
    /* The address is at its share: one byte more is refused, others go on. */
    assert_int_equal(http_budget_take(&b, "10.0.0.1", 1), HTTP_BUDGET_IP_FULL);
    assert_int_equal(http_budget_take(&b, "10.0.0.2", 40 * MB), 0);
    assert_int_equal(http_budget_take(&b, "10.0.0.3", 20 * MB), 0);
    assert_int_equal(b.total, 100 * MB);
    /* Everything is taken: a new address is refused as a whole, not per address. */
    assert_int_equal(http_budget_take(&b, "10.0.0.4", 1), HTTP_BUDGET_FULL);
    assert_int_equal(b.total, 100 * MB);
    /* More than either limit at once, and sizes that would wrap around. */
    http_budget_give(&b, "10.0.0.3", 20 * MB);
    assert_int_equal(http_budget_take(&b, "10.0.0.4", 41 * MB), HTTP_BUDGET_FULL); /* only 20 MB left */
    assert_int_equal(http_budget_take(&b, "10.0.0.4", UINT64_MAX), HTTP_BUDGET_FULL);
    assert_int_equal(http_budget_take(&b, "10.0.0.4", 20 * MB), 0);
    /* Given back, the address may take its share again; an address that
     * holds nothing is not kept. */
    http_budget_give(&b, "10.0.0.1", 30 * MB);
    http_budget_give(&b, "10.0.0.4", 20 * MB);
    assert_int_equal(b.n, 2); /* .1 and .2 */
    assert_int_equal(b.total, 50 * MB);
    assert_int_equal(http_budget_take(&b, "10.0.0.1", 31 * MB), HTTP_BUDGET_IP_FULL); /* holds 10 MB still */
    assert_int_equal(http_budget_take(&b, "10.0.0.1", 30 * MB), 0);
    http_budget_give(&b, "10.0.0.1", 40 * MB);
    http_budget_give(&b, "10.0.0.2", 40 * MB);
    assert_int_equal(b.total, 0);
    assert_int_equal(b.n, 0);
    http_budget_clear(&b);
}

static void test_budget_many_addresses(void **state)
{
    (void)state;
    struct http_budget b = {.max_total = 1000, .max_per_ip = 10};
    char ip[64];
    for (int i = 0; i < 100; i++) {
        snprintf(ip, sizeof ip, "192.0.2.%d", i);
        assert_int_equal(http_budget_take(&b, ip, 10), 0);
    }
    assert_int_equal(b.n, 100);
    assert_int_equal(http_budget_take(&b, "192.0.2.200", 1), HTTP_BUDGET_FULL);
    for (int i = 99; i >= 0; i -= 2) {
        snprintf(ip, sizeof ip, "192.0.2.%d", i);
        http_budget_give(&b, ip, 10);
    }
    assert_int_equal(b.total, 500);
    assert_int_equal(b.n, 50);
    assert_int_equal(http_budget_take(&b, "192.0.2.0", 1), HTTP_BUDGET_IP_FULL); /* still holds 10 */
    assert_int_equal(http_budget_take(&b, "192.0.2.1", 10), 0);                 /* gave its 10 back */
    http_budget_clear(&b);
}

static void test_header_deadline_is_absolute(void **state)
{
    (void)state;
    struct http_conn c = {.phase = HTTP_CONN_HEADER, .since = 5000, .bytes = 1 << 20, .progress = 5000};
    assert_int_equal(http_conn_overdue(&c, 5000), 0);
    assert_int_equal(http_conn_overdue(&c, 5000 + HTTP_HEADER_TIMEOUT * 1000), 0);
    /* Bytes arriving do not matter: only the time since the phase began. */
    assert_int_equal(http_conn_overdue(&c, 5001 + HTTP_HEADER_TIMEOUT * 1000), HTTP_CONN_HEADER);
}

static void test_body_needs_a_minimum_rate_after_the_grace(void **state)
{
    (void)state;
    struct http_conn c = {.phase = HTTP_CONN_BODY, .since = 0, .bytes = 0};
    /* Nothing at all during the grace is fine. */
    assert_int_equal(http_conn_overdue(&c, HTTP_BODY_GRACE * 1000), 0);
    assert_int_equal(http_conn_overdue(&c, HTTP_BODY_GRACE * 1000 + 1000), HTTP_CONN_BODY);
    /* 10 s past the grace: 10 s worth of the minimum rate is enough, less is not. */
    int64_t t = (HTTP_BODY_GRACE + 10) * 1000;
    c.bytes = 10 * (uint64_t)HTTP_BODY_MIN_RATE;
    assert_int_equal(http_conn_overdue(&c, t), 0);
    c.bytes--;
    assert_int_equal(http_conn_overdue(&c, t), HTTP_CONN_BODY);
    /* A fast start buys time for a pause. */
    c.bytes = 60 * (uint64_t)HTTP_BODY_MIN_RATE;
    assert_int_equal(http_conn_overdue(&c, (HTTP_BODY_GRACE + 60) * 1000), 0);
    assert_int_equal(http_conn_overdue(&c, (HTTP_BODY_GRACE + 61) * 1000), HTTP_CONN_BODY);
}

static void test_stream_stall_and_busy(void **state)
{
    (void)state;
    struct http_conn c = {.phase = HTTP_CONN_STREAM, .since = 0, .progress = 100000};
    assert_int_equal(http_conn_overdue(&c, 100000 + HTTP_STREAM_STALL * 1000), 0);
    assert_int_equal(http_conn_overdue(&c, 100001 + HTTP_STREAM_STALL * 1000), HTTP_CONN_STREAM);
    /* A handler running (argon2id, a write) has no deadline of ours. */
    c.phase = HTTP_CONN_BUSY;
    assert_int_equal(http_conn_overdue(&c, 1000000000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_per_address_and_in_all),
        cmocka_unit_test(test_budget_many_addresses),
        cmocka_unit_test(test_header_deadline_is_absolute),
        cmocka_unit_test(test_body_needs_a_minimum_rate_after_the_grace),
        cmocka_unit_test(test_stream_stall_and_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
