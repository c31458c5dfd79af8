/*
 * Unit tests of the archive API's pure parts: the mboxrd records of an export
 * (http_mbox_record). The date parameters of a search are
 * test_util_time.c's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

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
        cmocka_unit_test(test_mbox_record),
        cmocka_unit_test(test_mbox_record_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
