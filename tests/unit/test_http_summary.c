/*
 * test_http_summary.c — the message list's header summary (http_summary.c):
 * folded fields, RFC 2047 words, the first of repeated fields, the end of the
 * header, bare LF, 8-bit and invalid bytes, long fields cut on a character
 * boundary, dates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "http/http_internal.h"

static void parse(const char *msg, struct http_summary *s)
{
    http_summary_parse(msg, strlen(msg), s);
}

static void test_basic_fields(void **state)
{
    (void)state;
    struct http_summary s;
    parse("Received: from x\r\n\tby y\r\n"
          "From: Alice Example <alice@example.org>\r\n"
          "To: Bob <bob@acme.test>,\r\n Carol <carol@acme.test>\r\n"
          "Subject: a folded\r\n\tsubject\r\n"
          "Date: Fri, 27 Nov 2026 22:00:00 +0000\r\n"
          "Message-ID: <m1@example.org>\r\n"
          "\r\n"
          "Subject: not a header, the body\r\n",
          &s);
    assert_string_equal(s.from, "Alice Example <alice@example.org>");
    assert_string_equal(s.to, "Bob <bob@acme.test>, Carol <carol@acme.test>");
    assert_string_equal(s.subject, "a folded subject"); /* tabs and controls read as spaces */
    assert_string_equal(s.message_id, "<m1@example.org>");
    assert_true(s.date == 1795816800);
}

static void test_encoded_words_and_repeats(void **state)
{
    (void)state;
    struct http_summary s;
    parse("subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?ISO-8859-1?Q?Z=FCrich?=\n"
          "SUBJECT: second one\n"
          "from: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n"
          "\n",
          &s);
    assert_string_equal(s.subject, "Grüße aus Zürich");
    assert_string_equal(s.from, "Jörg <j@example.org>");
    assert_string_equal(s.to, "");
    assert_true(s.date == 0);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct http_summary s;
    /* raw 8-bit junk and control characters come out as valid UTF-8 without controls */
    parse("Subject: bad \xff\xfe bytes\x01 here\r\nDate: not a date\r\n\r\n", &s);
    assert_non_null(strstr(s.subject, "bytes"));
    for (const unsigned char *p = (const unsigned char *)s.subject; *p; p++)
        assert_true(*p >= 0x20);
    assert_true(g_utf8_validate(s.subject, -1, NULL));
    assert_true(s.date == 0);
    /* no header at all, a continuation line first, a line without a colon */
    parse("", &s);
    assert_string_equal(s.subject, "");
    parse(" continuation\r\nnot a field\r\nSubject: ok\r\n", &s);
    assert_string_equal(s.subject, "ok");
    /* a header with no end (no empty line, no final newline) */
    parse("Subject: cut", &s);
    assert_string_equal(s.subject, "cut");
    /* a NUL inside: the rest of the field is ignored */
    static const char nul[] = "Subject: a\0b\r\n\r\n";
    http_summary_parse(nul, sizeof nul - 1, &s);
    assert_string_equal(s.subject, "a");
}

static void test_long_field_cut_on_character(void **state)
{
    (void)state;
    size_t n = 20000;
    char *msg = malloc(n + 64);
    strcpy(msg, "Subject: ");
    size_t len = strlen(msg);
    while (len + 2 < n) { /* "é" is two bytes: the cut must not split one */
        msg[len++] = '\xc3';
        msg[len++] = '\xa9';
    }
    strcpy(msg + len, "\r\n\r\n");
    struct http_summary s;
    parse(msg, &s);
    assert_true(strlen(s.subject) > 400 && strlen(s.subject) < sizeof s.subject);
    assert_true(g_utf8_validate(s.subject, -1, NULL));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_fields),
        cmocka_unit_test(test_encoded_words_and_repeats),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_long_field_cut_on_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
