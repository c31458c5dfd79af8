/*
 * Unit tests of the archive API's pure parts: the date parameters of a search
 * (http_date_parse) and the mboxrd records of an export (http_mbox_record).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

static int64_t date(const char *s)
{
    int64_t t = -12345;
    assert_int_equal(http_date_parse(s, &t), 0);
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
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 7;
        if (http_date_parse(bad[i], &t) == 0)
            fail_msg("\"%s\" was taken as %lld", bad[i], (long long)t);
    }
    int64_t t;
    assert_int_equal(http_date_parse(NULL, &t), -1);
}

static char *record(const char *sender, int64_t received, const char *prefix, const char *body)
{
    size_t len = 0;
    char *r = http_mbox_record(sender, received, prefix, (const unsigned char *)body, strlen(body), &len);
    assert_non_null(r);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, r, len);
    s[len] = '\0';
    assert_int_equal(strlen(s), len); /* no NUL inside */
    free(r);
    return s;
}

static void test_mbox_record(void **state)
{
    (void)state;
    char *r = record("alice@example.org", 1795737600 + 5 * 86400 + 3600, "Received: by us\r\n",
                     "Subject: hi\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nnot From here\r\n"
                     "From\r\nFromage\r\nlone\rcr\r\n");
    assert_string_equal(r, "From alice@example.org Wed Dec  2 01:00:00 2026\n"
                           "Received: by us\n"
                           "Subject: hi\n\n"
                           ">From the start\n>>From quoted\n>>>From twice\nnot From here\n"
                           "From\nFromage\nlone\rcr\n\n");
    free(r);
}

static void test_mbox_record_edges(void **state)
{
    (void)state;
    /* The null sender, a body without a final line end, LF-only input, a
     * From_ line as the very first body line after an empty prefix. */
    char *r = record("", 0, "", "From me\nlast line");
    assert_string_equal(r, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n>From me\nlast line\n\n");
    free(r);
    /* A sender with a space (a quoted local part) cannot split the From line. */
    r = record("\"a b\"@x.test", 0, "", "x\r\n");
    assert_string_equal(r, "From \"a_b\"@x.test Thu Jan  1 00:00:00 1970\nx\n\n");
    free(r);
    /* A trailing CR stays data; an empty body still makes a record. */
    r = record("a@x.test", 0, "", "end\r");
    assert_string_equal(r, "From a@x.test Thu Jan  1 00:00:00 1970\nend\r\n\n");
    free(r);
    r = record("a@x.test", 0, "", "");
    assert_string_equal(r, "From a@x.test Thu Jan  1 00:00:00 1970\n\n");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_bad_dates),
        cmocka_unit_test(test_mbox_record),
        cmocka_unit_test(test_mbox_record_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
