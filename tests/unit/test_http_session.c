/*
 * test_http_session.c — the pure parts of sessions (http_session.c, http_reply.c):
 * Cookie header parsing (including duplicates and quoting), Set-Cookie flags,
 * tokens and their hashes, the constant-time CSRF compare, idle and absolute
 * expiry, folder names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "http/http_internal.h"

static void test_cookie_find(void **state)
{
    (void)state;
    char v[80];
    assert_int_equal(http_cookie_find("lb_session=abc", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "abc");
    assert_int_equal(http_cookie_find("a=1; lb_session=xyz; b=2", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "xyz");
    assert_int_equal(http_cookie_find("a=1;lb_session=xyz;b=2", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "xyz");
    assert_int_equal(http_cookie_find("  lb_session = spaced ;", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "spaced");
    assert_int_equal(http_cookie_find("lb_session=\"quoted\"", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "quoted");
    assert_int_equal(http_cookie_find("lb_session=", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "");
    /* absent: other names, prefixes and suffixes of the name, no '=' */
    assert_int_equal(http_cookie_find("x_lb_session=1; lb_session_x=2; lb_session", "lb_session", v, sizeof v), 0);
    assert_int_equal(http_cookie_find("", "lb_session", v, sizeof v), 0);
    assert_int_equal(http_cookie_find(NULL, "lb_session", v, sizeof v), 0);
    assert_int_equal(http_cookie_find(";;; ;", "lb_session", v, sizeof v), 0);
    /* twice: refused (cookie tossing), too long: refused */
    assert_int_equal(http_cookie_find("lb_session=a; lb_session=b", "lb_session", v, sizeof v), -1);
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "lb_session=", 11);
    big[sizeof big - 1] = '\0';
    assert_int_equal(http_cookie_find(big, "lb_session", v, sizeof v), -1);
    /* the value is exactly the bytes up to ';' */
    assert_int_equal(http_cookie_find("lb_session=a=b=c; x=y", "lb_session", v, sizeof v), 1);
    assert_string_equal(v, "a=b=c");
}

static void test_cookie_format(void **state)
{
    (void)state;
    char c[256];
    http_cookie_format(c, sizeof c, http_cookie_name(0), "tok", 43200, 0);
    assert_string_equal(c, "lb_session=tok; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict");
    http_cookie_format(c, sizeof c, http_cookie_name(1), "", 0, 1);
    assert_string_equal(c, "__Host-lb_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
}

static void test_tokens(void **state)
{
    (void)state;
    char a[HTTP_TOKEN_HEX + 1], b[HTTP_TOKEN_HEX + 1];
    http_token_new(a);
    http_token_new(b);
    assert_int_equal(strlen(a), 64);
    assert_true(http_token_valid(a));
    assert_string_not_equal(a, b);
    assert_false(http_token_valid(""));
    assert_false(http_token_valid(NULL));
    char bad[HTTP_TOKEN_HEX + 2];
    memcpy(bad, a, sizeof a);
    bad[3] = 'A'; /* upper case is not what we issue */
    assert_false(http_token_valid(bad));
    memcpy(bad, a, HTTP_TOKEN_HEX);
    bad[HTTP_TOKEN_HEX] = '0';
    bad[HTTP_TOKEN_HEX + 1] = '\0';
    assert_false(http_token_valid(bad));
    char h1[SESSION_HASH_SIZE], h2[SESSION_HASH_SIZE];
    http_token_hash(a, h1);
    http_token_hash(a, h2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    assert_string_not_equal(h1, a);
    http_token_hash(b, h2);
    assert_string_not_equal(h1, h2);
}

static void test_csrf_equal(void **state)
{
    (void)state;
    const char *t = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_true(http_csrf_equal(t, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(http_csrf_equal(t, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee"));
    assert_false(http_csrf_equal(t, "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(http_csrf_equal(t, "0123456789abcdef"));
    assert_false(http_csrf_equal(t, ""));
    assert_false(http_csrf_equal(t, NULL));
    assert_false(http_csrf_equal("", ""));
    assert_false(http_csrf_equal(NULL, t));
}

static void test_expiry(void **state)
{
    (void)state;
    struct store_session s = {.created = 1000000, .last_seen = 1000000};
    assert_int_equal(http_session_expired(&s, 1000000), 0);
    assert_int_equal(http_session_expired(&s, 1000000 + HTTP_SESSION_IDLE - 1), 0);
    assert_int_equal(http_session_expired(&s, 1000000 + HTTP_SESSION_IDLE), 1);
    /* active all along, but past the absolute lifetime */
    s.last_seen = 1000000 + HTTP_SESSION_ABSOLUTE - 10;
    assert_int_equal(http_session_expired(&s, 1000000 + HTTP_SESSION_ABSOLUTE - 1), 0);
    assert_int_equal(http_session_expired(&s, 1000000 + HTTP_SESSION_ABSOLUTE), 2);
    /* a session from the future (clock went back a lot) is not trusted */
    s.last_seen = s.created;
    assert_int_equal(http_session_expired(&s, 1000000 - 3600), 2);
}

static void test_folders(void **state)
{
    (void)state;
    assert_int_equal(http_folder_parse("INBOX"), FOLDER_INBOX);
    assert_int_equal(http_folder_parse("Sent"), FOLDER_SENT);
    assert_int_equal(http_folder_parse("Trash"), FOLDER_TRASH);
    assert_int_equal(http_folder_parse("trash "), -1);
    assert_int_equal(http_folder_parse(""), -1);
    assert_int_equal(http_folder_parse(NULL), -1);
    assert_string_equal(http_folder_name(FOLDER_SENT), "Sent");
}

static void test_json_text(void **state)
{
    (void)state;
    json_t *j = http_json_text("caf\xc3\xa9");
    assert_string_equal(json_string_value(j), "caf\xc3\xa9");
    json_decref(j);
    j = http_json_text("bad \xff byte");
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "bad \xef\xbf\xbd byte");
    json_decref(j);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_find), cmocka_unit_test(test_cookie_format), cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_csrf_equal),  cmocka_unit_test(test_expiry),        cmocka_unit_test(test_folders),
        cmocka_unit_test(test_json_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
