/*
 * test_util_strlist.c — strlist_next (util/strlist.h), the splitter behind
 * the listen lists of the configuration, --route, --outbound-from and the
 * CIDR lists: trimmed entries, empty entries kept, overlong ones reported.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "util/strlist.h"

static void entries_trimmed(void **state)
{
    (void)state;
    const char *pos = " mx1.acme.test:25 ,\t[2001:db8::1]:2525,x";
    char e[32];
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1);
    assert_string_equal(e, "mx1.acme.test:25");
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1);
    assert_string_equal(e, "[2001:db8::1]:2525");
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1);
    assert_string_equal(e, "x");
    assert_null(pos);
    assert_int_equal(strlist_next(&pos, e, sizeof e), 0);
}

static void empty_entries_kept(void **state)
{
    (void)state;
    char e[8];
    const char *pos = "";
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1); /* "" is one empty entry */
    assert_string_equal(e, "");
    assert_int_equal(strlist_next(&pos, e, sizeof e), 0);

    static const char *const expect[] = {"a", "", "", "b", ""};
    pos = "a,, ,b,";
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(strlist_next(&pos, e, sizeof e), 1);
        assert_string_equal(e, expect[i]);
    }
    assert_int_equal(strlist_next(&pos, e, sizeof e), 0);
}

static void overlong_entry(void **state)
{
    (void)state;
    char e[4];
    const char *pos = "abc, abcd ,ab";
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1);
    assert_string_equal(e, "abc");
    assert_int_equal(strlist_next(&pos, e, sizeof e), -1); /* 4 bytes and the NUL do not fit */
    assert_string_equal(e, "");
    assert_int_equal(strlist_next(&pos, e, sizeof e), 1); /* the list goes on */
    assert_string_equal(e, "ab");
    assert_int_equal(strlist_next(&pos, e, sizeof e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_trimmed),
        cmocka_unit_test(empty_entries_kept),
        cmocka_unit_test(overlong_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
