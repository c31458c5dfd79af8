/*
 * test_util_addr.c — address checks (util/addr.h) that the webmail's
 * recipient fields, lifeboatctl and the lookups rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "util/addr.h"

static void valid_addresses(void **state)
{
    (void)state;
    assert_true(addr_is_valid("bob@acme.test"));
    assert_true(addr_is_valid("first.last+tag@sub.acme.test"));
    assert_true(addr_is_valid("\"a@b\"@acme.test"));
    assert_true(addr_is_valid("j\xc3\xb6rg@b\xc3\xbc" "cher.test")); /* SMTPUTF8 */
}

static void invalid_addresses(void **state)
{
    (void)state;
    assert_false(addr_is_valid("a@b@c.test"));
    assert_false(addr_is_valid("@acme.test"));
    assert_false(addr_is_valid("bob@"));
    assert_false(addr_is_valid("bob"));
    assert_false(addr_is_valid("bob smith@acme.test"));
    assert_false(addr_is_valid("<bob@acme.test>"));
    assert_false(addr_is_valid("bob,carol@acme.test"));
    assert_false(addr_is_valid("bo\"b@acme.test"));
    assert_false(addr_is_valid("\"@acme.test"));
    assert_false(addr_is_valid("bob@.acme.test"));
    assert_false(addr_is_valid("bob@acme..test"));
    assert_false(addr_is_valid("bob@-acme.test"));
    char longlocal[80];
    memset(longlocal, 'a', 65);
    strcpy(longlocal + 65, "@acme.test");
    assert_false(addr_is_valid(longlocal));
}

static void canonical_and_domain(void **state)
{
    (void)state;
    char out[ADDR_MAX + 1];
    assert_int_equal(addr_canonical("Bob@ACME.Test", out, sizeof out), 0);
    assert_string_equal(out, "bob@acme.test");
    assert_int_equal(addr_canonical("bob@acme.test", out, 5), -1);
    assert_string_equal(addr_domain("bob@acme.test"), "acme.test");
    assert_string_equal(addr_domain("nodomain"), "");
    assert_true(addr_in_domain("bob@ACME.test", "acme.TEST"));
    assert_false(addr_in_domain("bob@acme.test.evil", "acme.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_addresses),
        cmocka_unit_test(invalid_addresses),
        cmocka_unit_test(canonical_and_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
