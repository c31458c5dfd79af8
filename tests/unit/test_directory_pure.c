/*
 * test_directory_pure.c — the parts of the directory module that need no store:
 * argon2id password hashes, route parsing and formatting, CIDR lists (the
 * --outbound-from check that keeps lifeboat from being an open relay).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "directory/directory.h"

/* ---------------------------------------------------------------- passwords */

static void test_password_hash_verify(void **state)
{
    (void)state;
    char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse", h1), 0);
    assert_int_equal(strncmp(h1, "$argon2id$", 10), 0);
    assert_true(password_verify(h1, "correct horse"));
    assert_false(password_verify(h1, "correct horsE"));
    assert_false(password_verify(h1, ""));
    assert_false(password_verify(h1, "correct horse "));
    /* A fresh salt each time: same password, different string, both verify. */
    assert_int_equal(password_hash("correct horse", h2), 0);
    assert_string_not_equal(h1, h2);
    assert_true(password_verify(h2, "correct horse"));
}

static void test_password_verify_bad_hashes(void **state)
{
    (void)state;
    assert_false(password_verify("", "x"));
    assert_false(password_verify(NULL, "x"));
    assert_false(password_verify("$argon2id$garbage", "x"));
    assert_false(password_verify("plaintext", "plaintext"));
    char h[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("pw", h), 0);
    assert_false(password_verify(h, NULL));
    /* Truncated hash: refused, not crashed. */
    h[strlen(h) - 5] = 0;
    assert_false(password_verify(h, "pw"));
}

static void test_password_utf8_and_long(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("pässwörd ☃", h), 0);
    assert_true(password_verify(h, "pässwörd ☃"));
    assert_false(password_verify(h, "passwort ☃"));
    char longpw[2001];
    memset(longpw, 'x', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = 0;
    assert_int_equal(password_hash(longpw, h), 0);
    assert_true(password_verify(h, longpw));
    longpw[1999] = 'y';
    assert_false(password_verify(h, longpw));
}

/* ---------------------------------------------------------------- routes */

static void test_route_parse_good(void **state)
{
    (void)state;
    struct route r;
    assert_int_equal(route_parse("mx.acme.test", &r), 0);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.hosts[0].host, "mx.acme.test");
    assert_string_equal(r.hosts[0].port, "25");

    assert_int_equal(route_parse("MX1.Acme.TEST:2525, mx2.acme.test ,192.0.2.9:26,[2001:db8::1]:587", &r), 0);
    assert_int_equal(r.count, 4);
    assert_string_equal(r.hosts[0].host, "mx1.acme.test");
    assert_string_equal(r.hosts[0].port, "2525");
    assert_string_equal(r.hosts[1].host, "mx2.acme.test");
    assert_string_equal(r.hosts[1].port, "25");
    assert_string_equal(r.hosts[2].host, "192.0.2.9");
    assert_string_equal(r.hosts[2].port, "26");
    assert_string_equal(r.hosts[3].host, "2001:db8::1");
    assert_string_equal(r.hosts[3].port, "587");

    char text[1024];
    assert_int_equal(route_format(&r, text, sizeof text), 0);
    assert_string_equal(text, "mx1.acme.test:2525,mx2.acme.test:25,192.0.2.9:26,[2001:db8::1]:587");
    /* The canonical text parses back to the same route. */
    struct route again;
    assert_int_equal(route_parse(text, &again), 0);
    assert_memory_equal(&r, &again, sizeof r);

    assert_int_equal(route_parse("[::1]", &r), 0);
    assert_string_equal(r.hosts[0].host, "::1");
    assert_string_equal(r.hosts[0].port, "25");
    assert_int_equal(route_parse("127.0.0.1:65535", &r), 0);
    /* Postfix habit: a bracketed name means "this host, no MX lookup", which is
     * what a route host is anyway. */
    assert_int_equal(route_parse("[mx.acme.test]:2525", &r), 0);
    assert_string_equal(r.hosts[0].host, "mx.acme.test");
    assert_string_equal(r.hosts[0].port, "2525");
}

static void test_route_parse_bad(void **state)
{
    (void)state;
    struct route r;
    static const char *bad[] = {
        "",
        " ",
        ",",
        "mx.acme.test,",
        ",mx.acme.test",
        "a.test,,b.test",
        "mx.acme.test:",
        "mx.acme.test:0",
        "mx.acme.test:65536",
        "mx.acme.test:25x",
        "mx.acme.test:-1",
        "2001:db8::1",          /* bare IPv6 is ambiguous with a port */
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[not v6]:25",
        "[-bad-]:25",
        "[]:25",
        "mx acme.test",
        "-mx.acme.test",
        "mx..acme.test",
        "mx.acme.test.",
        "mx_1.acme.test",
        "mx.acme.test/25",
        "a,b,c,d,e,f,g,h,i",    /* more than ROUTE_MAX_HOSTS */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (route_parse(bad[i], &r) != -1)
            fail_msg("route \"%s\" was accepted", bad[i]);
    }
    assert_int_equal(route_parse(NULL, &r), -1);
    assert_int_equal(route_parse("a,b,c,d,e,f,g,h", &r), 0);
    assert_int_equal(r.count, ROUTE_MAX_HOSTS);

    char longhost[300];
    memset(longhost, 'a', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = 0;
    assert_int_equal(route_parse(longhost, &r), -1);
}

static void test_route_format_too_small(void **state)
{
    (void)state;
    struct route r;
    char small[10];
    assert_int_equal(route_parse("mx.acme.test", &r), 0);
    assert_int_equal(route_format(&r, small, sizeof small), -1);
    char exact[sizeof "mx.acme.test:25"];
    assert_int_equal(route_format(&r, exact, sizeof exact), 0);
    assert_string_equal(exact, "mx.acme.test:25");
}

/* ---------------------------------------------------------------- CIDR */

static void test_cidr_parse(void **state)
{
    (void)state;
    struct cidr c;
    char text[64];
    assert_int_equal(cidr_parse("192.0.2.0/24", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 24);
    assert_int_equal(cidr_parse("192.0.2.77/24", &c), 0); /* host bits cleared */
    assert_int_equal(cidr_format(&c, text, sizeof text), 0);
    assert_string_equal(text, "192.0.2.0/24");
    assert_int_equal(cidr_parse("198.51.100.7", &c), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(cidr_format(&c, text, sizeof text), 0);
    assert_string_equal(text, "198.51.100.7");
    assert_int_equal(cidr_parse("2001:DB8:ffff::1/32", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(cidr_format(&c, text, sizeof text), 0);
    assert_string_equal(text, "2001:db8::/32");
    assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(cidr_parse("::/0", &c), 0);
    assert_int_equal(cidr_parse("10.1.2.3/31", &c), 0);
    assert_int_equal(cidr_format(&c, text, sizeof text), 0);
    assert_string_equal(text, "10.1.2.2/31");
    assert_int_equal(cidr_parse("2001:db8::1/127", &c), 0);
    assert_int_equal(cidr_format(&c, text, sizeof text), 0);
    assert_string_equal(text, "2001:db8::/127");

    static const char *bad[] = {
        "", "/24", "192.0.2.0/", "192.0.2.0/33", "192.0.2.0/-1", "192.0.2.0/+8", "192.0.2.0/ 8",
        "192.0.2.0/8/8", "192.0.2.0/1000", "192.0.2.0/24x", "192.0.2", "192.0.2.256", "192.0.2.0 ",
        " 192.0.2.0", "::1/129", "2001:db8::/", "2001:db8:::/32", "host.example", "fe80::1%eth0",
        "010.0.0.1", "0x7f.0.0.1", "::1/0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cidr_parse(bad[i], &c) != -1)
            fail_msg("cidr \"%s\" was accepted", bad[i]);
}

static void test_cidr_match_v4(void **state)
{
    (void)state;
    const char *list = "192.0.2.0/24, 198.51.100.7 ,10.0.0.0/8";
    assert_true(cidr_list_match(list, "192.0.2.0"));
    assert_true(cidr_list_match(list, "192.0.2.255"));
    assert_false(cidr_list_match(list, "192.0.3.0"));
    assert_false(cidr_list_match(list, "192.0.1.255"));
    assert_true(cidr_list_match(list, "198.51.100.7"));
    assert_false(cidr_list_match(list, "198.51.100.8"));
    assert_false(cidr_list_match(list, "198.51.100.6"));
    assert_true(cidr_list_match(list, "10.255.255.255"));
    assert_false(cidr_list_match(list, "11.0.0.0"));
    /* /32 and /0 */
    assert_true(cidr_list_match("203.0.113.5/32", "203.0.113.5"));
    assert_false(cidr_list_match("203.0.113.5/32", "203.0.113.4"));
    assert_true(cidr_list_match("0.0.0.0/0", "203.0.113.4"));
    assert_false(cidr_list_match("0.0.0.0/0", "2001:db8::1")); /* /0 of one family only */
    /* Non-byte-aligned prefixes. */
    assert_true(cidr_list_match("172.16.0.0/12", "172.31.255.255"));
    assert_false(cidr_list_match("172.16.0.0/12", "172.32.0.0"));
    assert_false(cidr_list_match("172.16.0.0/12", "172.15.255.255"));
    assert_true(cidr_list_match("192.0.2.128/25", "192.0.2.200"));
    assert_false(cidr_list_match("192.0.2.128/25", "192.0.2.127"));
    /* Dual-stack sockets report IPv4 clients as mapped IPv6. */
    assert_true(cidr_list_match(list, "::ffff:192.0.2.9"));
    assert_false(cidr_list_match(list, "::ffff:192.0.3.9"));
}

static void test_cidr_match_v6(void **state)
{
    (void)state;
    const char *list = "2001:db8::/32,::1";
    assert_true(cidr_list_match(list, "2001:db8::1"));
    assert_true(cidr_list_match(list, "2001:DB8:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(cidr_list_match(list, "2001:db9::"));
    assert_false(cidr_list_match(list, "2001:db7:ffff::"));
    assert_true(cidr_list_match(list, "::1"));
    assert_false(cidr_list_match(list, "::2"));
    assert_false(cidr_list_match(list, "127.0.0.1"));
    assert_true(cidr_list_match("::/0", "2001:db8::1"));
    assert_false(cidr_list_match("::/0", "192.0.2.1"));
    assert_true(cidr_list_match("2001:db8::5/128", "2001:db8::5"));
    assert_false(cidr_list_match("2001:db8::5/128", "2001:db8::4"));
    assert_true(cidr_list_match("fe80::/10", "fe80::1%eth0")); /* the zone is ignored */
    assert_true(cidr_list_match("2001:db8:8000::/33", "2001:db8:ffff::1"));
    assert_false(cidr_list_match("2001:db8:8000::/33", "2001:db8:7fff::1"));
}

static void test_cidr_list_bad_input(void **state)
{
    (void)state;
    /* Garbage client addresses and garbage entries never match. */
    assert_false(cidr_list_match("192.0.2.0/24", ""));
    assert_false(cidr_list_match("192.0.2.0/24", "unknown"));
    assert_false(cidr_list_match("192.0.2.0/24", "192.0.2"));
    assert_false(cidr_list_match("192.0.2.0/24", NULL));
    assert_false(cidr_list_match(NULL, "192.0.2.1"));
    assert_false(cidr_list_match("", "192.0.2.1"));
    assert_false(cidr_list_match("192.0.2.0/33", "192.0.2.1"));
    assert_false(cidr_list_match("bogus,,", "192.0.2.1"));
    /* A bad entry does not hide a good one after it. */
    assert_true(cidr_list_match("bogus,192.0.2.0/24", "192.0.2.1"));

    assert_int_equal(cidr_list_validate(""), 0);
    assert_int_equal(cidr_list_validate("192.0.2.0/24"), 0);
    assert_int_equal(cidr_list_validate("192.0.2.0/24, 2001:db8::/32 ,198.51.100.7"), 0);
    assert_int_equal(cidr_list_validate("192.0.2.0/24,"), -1);
    assert_int_equal(cidr_list_validate(",192.0.2.0/24"), -1);
    assert_int_equal(cidr_list_validate("192.0.2.0/24,,::1"), -1);
    assert_int_equal(cidr_list_validate("192.0.2.0/24,bogus"), -1);
    assert_int_equal(cidr_list_validate("::1/129"), -1);
    assert_int_equal(cidr_list_validate(" "), -1);
    assert_int_equal(cidr_list_validate(NULL), -1);
    char longentry[200];
    memset(longentry, '1', sizeof longentry - 1);
    longentry[sizeof longentry - 1] = 0;
    assert_int_equal(cidr_list_validate(longentry), -1);
    assert_false(cidr_list_match(longentry, "192.0.2.1"));
}

static void test_role_names(void **state)
{
    (void)state;
    assert_int_equal(directory_role_parse("user"), ROLE_USER);
    assert_int_equal(directory_role_parse("admin"), ROLE_ADMIN);
    assert_int_equal(directory_role_parse("operator"), ROLE_OPERATOR);
    assert_int_equal(directory_role_parse("Admin"), -1);
    assert_int_equal(directory_role_parse(""), -1);
    assert_int_equal(directory_role_parse(NULL), -1);
    assert_string_equal(directory_role_name(ROLE_OPERATOR), "operator");
    assert_string_equal(directory_role_name(42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_verify_bad_hashes),
        cmocka_unit_test(test_password_utf8_and_long),
        cmocka_unit_test(test_route_parse_good),
        cmocka_unit_test(test_route_parse_bad),
        cmocka_unit_test(test_route_format_too_small),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_match_v4),
        cmocka_unit_test(test_cidr_match_v6),
        cmocka_unit_test(test_cidr_list_bad_input),
        cmocka_unit_test(test_role_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
