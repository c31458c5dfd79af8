/*
 * test_util_time.c — time_parse_date (util/timeutil.h): the dates of an
 * archive search, from the API's query string and lifeboatctl's --after and
 * --before alike.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/timeutil.h"

static int64_t date(const char *s)
{
    int64_t t = -12345;
    assert_int_equal(time_parse_date(s, &t), 0);
    return t;
}

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(date("2026-11-27"), 1795737600);
    assert_int_equal(date("2026-11-27T21:53:37Z"), 1795737600 + 21 * 3600 + 53 * 60 + 37);
    assert_int_equal(date("2026-11-27T21:53:37"), 1795737600 + 21 * 3600 + 53 * 60 + 37); /* no zone: UTC */
    assert_int_equal(date("2026-11-27 21:53"), 1795737600 + 21 * 3600 + 53 * 60);
    assert_int_equal(date("2026-11-27T21:53:37.250+01:00"), 1795737600 + 20 * 3600 + 53 * 60 + 37);
    assert_int_equal(date("2026-11-27T21:53:37-0130"), 1795737600 + 23 * 3600 + 23 * 60 + 37);
    assert_int_equal(date("2024-02-29"), 1709164800); /* a leap day */
    assert_int_equal(date("1795737600"), 1795737600);
    assert_int_equal(date("0"), 0);
}

static void test_bad_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "yesterday", "2026-13-01", "2026-02-30", "2023-02-29", "2026-11-27T25:00", "2026-11-27T21:60",
        "2026-11-27T21:53:37+2", "2026-11-27T21:53:37Zjunk", "2026-11-27x", "26-11-27", "2026/11/27", "-5",
        "+5", " 5", "1e9", "1234567890123", "2026-11-27T", "2026-11-27T21:53:37.", "1969-12-31",
        /* 1970 east of Greenwich is still 1969 in UTC (found by fuzz_http_request) */
        "1970-01-01T00:00+01:00", "1970-01-01T00:59:59+0100",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 7;
        if (time_parse_date(bad[i], &t) == 0)
            fail_msg("\"%s\" was taken as %lld", bad[i], (long long)t);
    }
    int64_t t;
    assert_int_equal(time_parse_date(NULL, &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_bad_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
