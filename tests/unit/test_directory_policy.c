/*
 * test_directory_policy.c — password policies (directory/password_policy.c):
 * the pure check (length in UTF-8 code points, each class of characters, the
 * message that names every failing rule, what is always refused), and on a
 * real store the per-customer policy with its defaults, policy set, and the
 * check that user add / user set apply with the same message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_directory_fixture.h"

static char msg[PASSWORD_POLICY_MSG_MAX];

static int check(const struct password_policy *p, const char *pw)
{
    msg[0] = 0;
    return password_policy_check(p, pw, msg, sizeof msg);
}

/* ---------------------------------------------------------------- pure */

static void test_defaults(void **state)
{
    (void)state;
    const struct password_policy *d = &password_policy_default;
    assert_int_equal(d->min_length, 8);
    assert_false(d->upper || d->lower || d->digit || d->special);
    assert_int_equal(check(d, "abcdefgh"), 0);
    assert_int_equal(check(d, "abcdefg"), -1);
    assert_string_equal(msg, "password must be at least 8 characters");
    assert_int_equal(check(d, ""), -1);
    assert_string_equal(msg, "password must be at least 8 characters");
}

static void test_length_counts_code_points(void **state)
{
    (void)state;
    struct password_policy p = {.min_length = 8};
    /* 8 characters, 10 bytes. */
    assert_int_equal(check(&p, "p\xc3\xa4ssw\xc3\xb6rd"), 0);
    /* 7 characters in 11 bytes (two 2-byte, one 3-byte, one 4-byte). */
    assert_int_equal(check(&p, "\xc3\xa4\xc3\xb6\xe2\x82\xac\xf0\x9f\x94\x91xyz"), -1);
    assert_string_equal(msg, "password must be at least 8 characters");
    /* Four emoji are four characters, not 16. */
    p.min_length = 4;
    assert_int_equal(check(&p, "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91"), 0);
    p.min_length = 5;
    assert_int_equal(check(&p, "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91"), -1);
    p.min_length = 1;
    assert_int_equal(check(&p, "x"), 0);
    assert_int_equal(check(&p, ""), -1);
    assert_string_equal(msg, "password must be at least 1 character");
    /* A policy of 0 still never allows an empty password. */
    p.min_length = 0;
    assert_int_equal(check(&p, ""), -1);
}

static void test_each_class(void **state)
{
    (void)state;
    struct password_policy p = {.min_length = 1, .upper = 1};
    assert_int_equal(check(&p, "abc"), -1);
    assert_string_equal(msg, "password must contain an upper-case letter");
    assert_int_equal(check(&p, "abC"), 0);
    assert_int_equal(check(&p, "\xc3\x89t\xc3\xa9"), 0); /* "Été": É is upper case */

    p = (struct password_policy){.min_length = 1, .lower = 1};
    assert_int_equal(check(&p, "ABC1!"), -1);
    assert_string_equal(msg, "password must contain a lower-case letter");
    assert_int_equal(check(&p, "AB\xc3\x9f"), 0); /* ß */

    p = (struct password_policy){.min_length = 1, .digit = 1};
    assert_int_equal(check(&p, "abc!"), -1);
    assert_string_equal(msg, "password must contain a digit");
    assert_int_equal(check(&p, "abc7"), 0);

    p = (struct password_policy){.min_length = 1, .special = 1};
    assert_int_equal(check(&p, "abcDEF123"), -1);
    assert_string_equal(msg, "password must contain a special character");
    assert_int_equal(check(&p, "abc def"), 0);            /* a space is special */
    assert_int_equal(check(&p, "abc\xe2\x82\xac"), 0);    /* € */
    assert_int_equal(check(&p, "abc\xf0\x9f\x94\x91"), 0); /* an emoji */
    /* A letter with a combining accent is still only letters. */
    assert_int_equal(check(&p, "cafe\xcc\x81"), -1);
    /* A letter without case is no special character, nor upper or lower. */
    assert_int_equal(check(&p, "\xe6\x97\xa5\xe6\x9c\xac"), -1);
    p = (struct password_policy){.min_length = 1, .upper = 1, .lower = 1};
    assert_int_equal(check(&p, "\xe6\x97\xa5\xe6\x9c\xac"), -1);
    assert_string_equal(msg, "password must contain an upper-case letter and a lower-case letter");
}

static void test_message_names_every_failing_rule(void **state)
{
    (void)state;
    struct password_policy p = {.min_length = 12, .upper = 1, .lower = 1, .digit = 1, .special = 1};
    assert_int_equal(check(&p, "abc"), -1);
    assert_string_equal(msg, "password must be at least 12 characters and contain an upper-case letter, a digit "
                             "and a special character");
    assert_int_equal(check(&p, "abcdefghijkl"), -1);
    assert_string_equal(msg, "password must contain an upper-case letter, a digit and a special character");
    assert_int_equal(check(&p, "Abc1!"), -1);
    assert_string_equal(msg, "password must be at least 12 characters");
    p.upper = p.lower = p.special = 0;
    assert_int_equal(check(&p, "abc"), -1);
    assert_string_equal(msg, "password must be at least 12 characters and contain a digit");
    assert_int_equal(check(&p, "abcdefghijk1"), 0);
    /* A NULL message buffer is allowed. */
    assert_int_equal(password_policy_check(&p, "abc", NULL, 0), -1);
}

static void test_always_refused(void **state)
{
    (void)state;
    struct password_policy p = {.min_length = 1};
    char big[PASSWORD_BYTES_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0; /* 1025 bytes */
    assert_int_equal(check(&p, big), -1);
    assert_string_equal(msg, "password must be at most 1024 bytes");
    big[PASSWORD_BYTES_MAX] = 0; /* 1024 bytes: fine */
    assert_int_equal(check(&p, big), 0);

    assert_int_equal(check(&p, "abc\xff"), -1);
    assert_string_equal(msg, "password must be valid UTF-8");
    assert_int_equal(check(&p, "\xc0\xafoverlong"), -1);           /* overlong '/' */
    assert_int_equal(check(&p, "\xed\xa0\x80surrogate"), -1);       /* U+D800 */
    assert_int_equal(check(&p, "cut\xe2\x82"), -1);                 /* truncated sequence */
    assert_int_equal(check(&p, "tab\there"), -1);
    assert_string_equal(msg, "password must not contain control characters");
    assert_int_equal(check(&p, "line\nend"), -1);
    assert_int_equal(check(&p, "c1\xc2\x85"), -1); /* U+0085, a C1 control */
}

static void test_describe(void **state)
{
    (void)state;
    char d[256];
    password_policy_describe(&password_policy_default, d, sizeof d);
    assert_string_equal(d, "at least 8 characters");
    struct password_policy p = {.min_length = 12, .upper = 1, .digit = 1};
    password_policy_describe(&p, d, sizeof d);
    assert_string_equal(d, "at least 12 characters, with an upper-case letter and a digit");
}

/* ---------------------------------------------------------------- on a store */

static int setup(void **state)
{
    if (directory_fixture_setup(state, "lb_directory_policy") != 0)
        return -1;
    struct fixture *f = *state;
    char err[512];
    if (directory_customer_add(f->st, "acme", err, sizeof err) != 0 ||
        directory_customer_add(f->st, "globex", err, sizeof err) != 0 ||
        directory_domain_add(f->st, "acme.test", "acme", "mx.acme.test", err, sizeof err) != 0 ||
        directory_domain_add(f->st, "globex.test", "globex", "mx.globex.test", err, sizeof err) != 0)
        return -1;
    return 0;
}

static struct password_policy policy_of(struct fixture *f, const char *customer, int *is_default)
{
    struct store_customer c;
    struct password_policy p;
    assert_int_equal(store_customer_get(f->st, customer, &c), STORE_OK);
    assert_int_equal(directory_password_policy_get(f->st, c.id, &p, is_default), STORE_OK);
    return p;
}

static void test_policy_set_and_defaults(void **state)
{
    struct fixture *f = *state;
    int is_default = 0;
    struct password_policy p = policy_of(f, "acme", &is_default);
    assert_true(is_default);
    assert_int_equal(p.min_length, 8);

    struct directory_policy_changes ch = {.min_length = 12, .upper = 1, .lower = -1, .digit = 1, .special = -1};
    struct password_policy got;
    assert_ok(directory_password_policy_set(f->st, "acme", &ch, &got, ERR));
    assert_int_equal(got.min_length, 12);
    p = policy_of(f, "acme", &is_default);
    assert_false(is_default);
    assert_int_equal(p.min_length, 12);
    assert_true(p.upper && p.digit);
    assert_false(p.lower || p.special);

    /* Only what is named changes. */
    ch = (struct directory_policy_changes){.min_length = -1, .upper = 0, .lower = -1, .digit = -1, .special = 1};
    assert_ok(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR));
    p = policy_of(f, "acme", NULL);
    assert_int_equal(p.min_length, 12);
    assert_true(p.digit && p.special);
    assert_false(p.upper || p.lower);

    /* Another customer keeps the defaults. */
    p = policy_of(f, "globex", &is_default);
    assert_true(is_default);

    ch.min_length = 0;
    assert_refused(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR),
                   "policy of customer acme: the minimum length must be from 1 to 256");
    ch.min_length = 257;
    assert_int_equal(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR), -1);
    ch.min_length = -1;
    assert_refused(directory_password_policy_set(f->st, "initech", &ch, NULL, ERR), "customer initech does not exist");
}

static void test_user_add_and_set_follow_the_policy(void **state)
{
    struct fixture *f = *state;
    struct directory_policy_changes ch = {.min_length = 12, .upper = -1, .lower = -1, .digit = 1, .special = -1};
    assert_ok(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR));

    assert_refused(directory_user_add(f->st, "bob@acme.test", NULL, NULL, "short", 1, ERR),
                   "user bob@acme.test: password must be at least 12 characters and contain a digit");
    struct store_user u;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_NOTFOUND);
    /* The empty password keeps its own message. */
    assert_refused(directory_user_add(f->st, "bob@acme.test", NULL, NULL, "", 1, ERR),
                   "user bob@acme.test: the password is empty");
    assert_ok(directory_user_add(f->st, "bob@acme.test", NULL, NULL, "long enough pw 1", 1, ERR));
    /* No password at all is no password to check. */
    assert_ok(directory_user_add(f->st, "carol@acme.test", NULL, NULL, NULL, 1, ERR));

    struct directory_user_changes uc = {.active = -1, .suspended = -1, .password = "no digits here at all"};
    assert_refused(directory_user_set(f->st, "bob@acme.test", &uc, ERR),
                   "user bob@acme.test: password must contain a digit");
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_OK);
    assert_true(password_verify(u.pw_hash, "long enough pw 1"));
    uc.password = "now with a digit 2";
    assert_ok(directory_user_set(f->st, "bob@acme.test", &uc, ERR));
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_OK);
    assert_true(password_verify(u.pw_hash, "now with a digit 2"));

    /* globex has the defaults: 8 characters, nothing else. */
    assert_refused(directory_user_add(f->st, "eve@globex.test", NULL, NULL, "seven77", 1, ERR),
                   "user eve@globex.test: password must be at least 8 characters");
    assert_ok(directory_user_add(f->st, "eve@globex.test", NULL, NULL, "eightchr", 1, ERR));
    /* An unknown domain or user is still refused for that, not for the password. */
    assert_refused(directory_user_add(f->st, "x@nowhere.test", NULL, NULL, "a", 1, ERR),
                   "user x@nowhere.test: domain nowhere.test is not hosted");
    assert_refused(directory_user_set(f->st, "nobody@acme.test", &uc, ERR), "user nobody@acme.test does not exist");

    /* directory_password_check: by the user's domain. */
    char why[PASSWORD_POLICY_MSG_MAX];
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_int_equal(directory_password_check(f->st, d.id, "abc", why, sizeof why), 1);
    assert_string_equal(why, "password must be at least 12 characters and contain a digit");
    assert_int_equal(directory_password_check(f->st, d.id, "abcdefghijk1", why, sizeof why), 0);
    assert_int_equal(directory_password_check(f->st, 9999, "abcdefghijk1", why, sizeof why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_length_counts_code_points),
        cmocka_unit_test(test_each_class),
        cmocka_unit_test(test_message_names_every_failing_rule),
        cmocka_unit_test(test_always_refused),
        cmocka_unit_test(test_describe),
        cmocka_unit_test_setup_teardown(test_policy_set_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_add_and_set_follow_the_policy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
