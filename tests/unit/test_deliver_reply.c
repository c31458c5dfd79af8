/*
 * test_deliver_reply.c — the SMTP reply parser of the delivery client:
 * single and multi-line replies, enhanced status codes, partial input,
 * pipelined replies back to back, and garbage a hostile server may send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_reply.h"

static enum smtp_reply_status parse(const char *s, struct smtp_reply *r, size_t *used)
{
    return smtp_reply_parse(s, strlen(s), r, used);
}

static void test_single_line(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used = 0;
    const char *s = "250 2.1.0 Ok\r\n";
    assert_int_equal(parse(s, &r, &used), SMTP_REPLY_DONE);
    assert_int_equal(used, strlen(s));
    assert_int_equal(r.code, 250);
    assert_string_equal(r.dsn, "2.1.0");
    assert_string_equal(r.text, "2.1.0 Ok");
    assert_int_equal(r.nlines, 1);

    char line[128];
    smtp_reply_format(&r, line, sizeof line);
    assert_string_equal(line, "250 2.1.0 Ok");

    /* Bare code, no text; bare LF tolerated. */
    assert_int_equal(parse("354\n", &r, &used), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 354);
    assert_string_equal(r.text, "");
    assert_int_equal(used, 4);
    smtp_reply_format(&r, line, sizeof line);
    assert_string_equal(line, "354");
}

static void test_multiline(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used = 0;
    const char *s = "250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                    "250 8BITMIME\r\n221 bye\r\n";
    assert_int_equal(parse(s, &r, &used), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.nlines, 4);
    assert_string_equal(r.text, "mx.example.org Hello\nPIPELINING\nSIZE 10240000\n8BITMIME");
    assert_string_equal(r.dsn, "");
    /* The next reply (pipelined) is left for the next call. */
    assert_string_equal(s + used, "221 bye\r\n");
    size_t used2 = 0;
    assert_int_equal(parse(s + used, &r, &used2), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 221);

    char line[256];
    assert_int_equal(parse("550-5.1.1 no such\r\n550-5.1.1 user here\r\n550 5.1.1 sorry\r\n", &r, &used),
                     SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "5.1.1");
    smtp_reply_format(&r, line, sizeof line);
    assert_string_equal(line, "550 5.1.1 no such 5.1.1 user here 5.1.1 sorry");
}

static void test_incomplete(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used = 0;
    const char *full = "250-first\r\n250-second\r\n250 last\r\n";
    /* Every proper prefix is incomplete, never an error. */
    for (size_t n = 0; n < strlen(full); n++)
        assert_int_equal(smtp_reply_parse(full, n, &r, &used), SMTP_REPLY_INCOMPLETE);
    assert_int_equal(smtp_reply_parse(full, strlen(full), &r, &used), SMTP_REPLY_DONE);
}

static void test_enhanced_codes(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used;
    char dsn[16];

    assert_int_equal(parse("451 4.3.0 try later\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(smtp_reply_dsn(&r, dsn), "4.3.0");
    /* Class must match the code: a 5.x.x in a 4xx reply is not taken. */
    assert_int_equal(parse("451 5.3.0 confused\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "");
    assert_string_equal(smtp_reply_dsn(&r, dsn), "4.0.0");
    /* No code at all: generic one. */
    assert_int_equal(parse("554 go away\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(smtp_reply_dsn(&r, dsn), "5.0.0");
    /* Three-digit parts are fine, four are not, and it must end at a space. */
    assert_int_equal(parse("550 5.123.456 x\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "5.123.456");
    assert_int_equal(parse("550 5.1234.1 x\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "");
    assert_int_equal(parse("550 5.1.1x\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "");
    assert_int_equal(parse("250 2.0.0\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.dsn, "2.0.0");

    size_t len;
    assert_true(smtp_enhanced_code("4.7.1 x", 7, '4', &len));
    assert_int_equal(len, 5);
    assert_false(smtp_enhanced_code("4.7.", 4, '4', &len));
    assert_false(smtp_enhanced_code("4..1 x", 6, '4', &len));
}

static void test_garbage(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used;
    const char *bad[] = {
        "hello there\r\n",   /* no code */
        "25 short\r\n",      /* two digits */
        "250x no separator\r\n",
        "150 not an SMTP class\r\n",
        "650 not an SMTP class\r\n",
        "250-first\r\n251 code changed\r\n",
        "\r\n",
        "-250 x\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &r, &used), SMTP_REPLY_ERROR);
}

/* A server that never ends its line or its multi-line reply cannot make us buffer forever. */
static void test_endless(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used;
    size_t n = SMTP_REPLY_MAX + 10;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'x', n);
    memcpy(buf, "250 ", 4);
    assert_int_equal(smtp_reply_parse(buf, n, &r, &used), SMTP_REPLY_ERROR);
    assert_int_equal(smtp_reply_parse(buf, 1000, &r, &used), SMTP_REPLY_INCOMPLETE);

    /* Endless continuation lines. */
    size_t pos = 0;
    while (pos + 12 < n) {
        memcpy(buf + pos, "250-abcdef\r\n", 12);
        pos += 12;
    }
    assert_int_equal(smtp_reply_parse(buf, pos, &r, &used), SMTP_REPLY_ERROR);
    free(buf);
}

/* Long text is cut, control characters are neutralised, the code survives. */
static void test_text_cut_and_cleaned(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used;
    size_t n = SMTP_REPLY_TEXT_MAX * 2;
    char *buf = malloc(n + 8);
    assert_non_null(buf);
    memcpy(buf, "550 5.7.1 ", 10);
    memset(buf + 10, 'y', n - 10);
    memcpy(buf + n, "\r\n", 3);
    assert_int_equal(smtp_reply_parse(buf, n + 2, &r, &used), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.dsn, "5.7.1");
    assert_int_equal(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
    free(buf);

    assert_int_equal(parse("451 bad\x01\x1b[31m\x7f\tx\r\n", &r, &used), SMTP_REPLY_DONE);
    assert_string_equal(r.text, "bad??[31m? x");

    char small[8];
    assert_int_equal(parse("250 a long line of text\r\n", &r, &used), SMTP_REPLY_DONE);
    smtp_reply_format(&r, small, sizeof small);
    assert_string_equal(small, "250 a l");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),   cmocka_unit_test(test_multiline),
        cmocka_unit_test(test_incomplete),    cmocka_unit_test(test_enhanced_codes),
        cmocka_unit_test(test_garbage),       cmocka_unit_test(test_endless),
        cmocka_unit_test(test_text_cut_and_cleaned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
