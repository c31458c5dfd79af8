/*
 * test_mail_dsn.c — the RFC 3464 DSN builder: the result is parsed back with
 * GMime and its parts and fields are checked; the original header (and only
 * the header) comes back byte for byte; 8-bit and UTF-8 input, hostile reply
 * text and odd originals do not break it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"

static const char ORIGINAL[] = "From: Sender <sender@example.org>\r\n"
                               "To: bob@acme.test\r\n"
                               "Subject: quarterly report\r\n"
                               "Message-ID: <abc@example.org>\r\n"
                               "\r\n"
                               "The secret body must not be returned.\r\n";

static const char PREFIX[] = "Received: from mta.example.org ([192.0.2.7])\r\n"
                             "\tby mx.lifeboat.test with ESMTP id 18A2F3C4D5E6F001\r\n";

struct built {
    unsigned char *bytes;
    size_t len;
    GMimeMessage *msg;
};

static void build(struct built *b, const char *original, size_t len, const char *sender,
                  const struct dsn_failure *f, size_t n)
{
    struct dsn_envelope env = {
        .reporting_mta = "mx.lifeboat.test",
        .queue_id = "18A2F3C4D5E6F001",
        .dsn_id = "18A2F3C4D5E6F0FF",
        .sender = sender,
        .arrival = 1700000000,
        .prefix = PREFIX,
    };
    assert_int_equal(dsn_build((const unsigned char *)original, len, &env, f, n, &b->bytes, &b->len), 0);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)b->bytes, b->len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    b->msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    assert_non_null(b->msg);
}

static void built_free(struct built *b)
{
    g_object_unref(b->msg);
    free(b->bytes);
}

/* The decoded content of a leaf part, NUL-terminated, g_free'd by the caller. */
static char *content_of(GMimeObject *obj, size_t *len)
{
    assert_true(GMIME_IS_PART(obj));
    GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
    assert_non_null(w);
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, mem);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    char *s = g_malloc(ba->len + 1);
    memcpy(s, ba->data, ba->len);
    s[ba->len] = '\0';
    if (len)
        *len = ba->len;
    g_object_unref(mem);
    return s;
}

static int is_type(GMimeObject *obj, const char *type, const char *subtype)
{
    return g_mime_content_type_is_type(g_mime_object_get_content_type(obj), type, subtype);
}

/* Every line of the DSN ends in CRLF. */
static void assert_crlf_only(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n')
            assert_true(i > 0 && p[i - 1] == '\r');
    assert_true(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n');
}

static void test_structure_and_fields(void **state)
{
    (void)state;
    struct dsn_failure f[] = {
        {.rcpt = "bob@acme.test",
         .status = "5.1.1",
         .remote_mta = "mail.acme.test",
         .smtp_reply = "550 5.1.1 <bob@acme.test>: Recipient address rejected",
         .text = "host mail.acme.test[192.0.2.9] said: 550 5.1.1 <bob@acme.test>: Recipient address "
                 "rejected (in reply to RCPT TO command)",
         .last_attempt = 1700000100},
        {.rcpt = "carol@acme.test",
         .status = "4.4.1",
         .text = "connect to mail.acme.test[192.0.2.9]:25: "
                 "Connection refused (delivery period expired)"},
    };
    struct built b;
    build(&b, ORIGINAL, strlen(ORIGINAL), "sender@example.org", f, 2);
    assert_crlf_only(b.bytes, b.len);

    GMimeObject *top = GMIME_OBJECT(b.msg);
    assert_string_equal(g_mime_object_get_header(top, "Auto-Submitted"), "auto-replied");
    char *from = internet_address_list_to_string(g_mime_message_get_from(b.msg), NULL, FALSE);
    assert_non_null(strstr(from, "MAILER-DAEMON@mx.lifeboat.test"));
    g_free(from);
    char *to = internet_address_list_to_string(g_mime_message_get_to(b.msg), NULL, FALSE);
    assert_string_equal(to, "sender@example.org");
    g_free(to);
    assert_non_null(g_mime_message_get_subject(b.msg));
    assert_string_equal(g_mime_message_get_message_id(b.msg), "18A2F3C4D5E6F0FF.dsn@mx.lifeboat.test");
    assert_non_null(g_mime_message_get_date(b.msg));

    GMimeObject *body = g_mime_message_get_mime_part(b.msg);
    assert_true(GMIME_IS_MULTIPART(body));
    assert_true(is_type(body, "multipart", "report"));
    assert_string_equal(g_mime_object_get_content_type_parameter(body, "report-type"), "delivery-status");
    GMimeMultipart *mp = GMIME_MULTIPART(body);
    assert_int_equal(g_mime_multipart_get_count(mp), 3);

    /* 1: for humans */
    GMimeObject *human = g_mime_multipart_get_part(mp, 0);
    assert_true(is_type(human, "text", "plain"));
    char *text = content_of(human, NULL);
    assert_non_null(strstr(text, "<bob@acme.test>: host mail.acme.test[192.0.2.9] said: 550 5.1.1"));
    assert_non_null(strstr(text, "<carol@acme.test>: connect to"));
    g_free(text);

    /* 2: for machines */
    GMimeObject *status = g_mime_multipart_get_part(mp, 1);
    assert_true(is_type(status, "message", "delivery-status"));
    char *fields = content_of(status, NULL);
    assert_non_null(strstr(fields, "Reporting-MTA: dns; mx.lifeboat.test\r\n"));
    assert_non_null(strstr(fields, "X-Lifeboat-Queue-ID: 18A2F3C4D5E6F001\r\n"));
    assert_non_null(strstr(fields, "Arrival-Date: "));
    assert_non_null(strstr(fields,
                           "\r\n\r\nFinal-Recipient: rfc822; bob@acme.test\r\n"
                           "Action: failed\r\n"
                           "Status: 5.1.1\r\n"
                           "Remote-MTA: dns; mail.acme.test\r\n"
                           "Diagnostic-Code: smtp; 550 5.1.1 <bob@acme.test>: Recipient address rejected\r\n"
                           "Last-Attempt-Date: "));
    assert_non_null(strstr(fields, "\r\n\r\nFinal-Recipient: rfc822; carol@acme.test\r\n"
                                   "Action: failed\r\n"
                                   "Status: 4.4.1\r\n"
                                   "Diagnostic-Code: X-Lifeboat; connect to"));
    g_free(fields);

    /* 3: the original header, byte for byte, after our Received line; never the body */
    GMimeObject *headers = g_mime_multipart_get_part(mp, 2);
    assert_true(is_type(headers, "text", "rfc822-headers"));
    char *h = content_of(headers, NULL);
    size_t hdr_len = strstr(ORIGINAL, "\r\n\r\n") + 2 - ORIGINAL;
    assert_memory_equal(h, PREFIX, strlen(PREFIX));
    assert_memory_equal(h + strlen(PREFIX), ORIGINAL, hdr_len);
    assert_int_equal(strlen(h), strlen(PREFIX) + hdr_len);
    g_free(h);
    assert_null(memmem(b.bytes, b.len, "secret body", 11));

    built_free(&b);
}

/* 8-bit headers (raw UTF-8 and stray Latin-1 bytes) and LF-only line ends:
 * the DSN stays 7-bit on the wire and the header comes back exactly. */
static void test_8bit_original(void **state)
{
    (void)state;
    const char original[] = "From: J\xc3\xbcrgen <j@example.org>\n"
                            "Subject: Gr\xfc\xdf\x65 \xe2\x82\xac\n"
                            "X-Empty:\n"
                            "\n"
                            "body \xff\xfe\n";
    struct dsn_failure f = {.rcpt = "bob@acme.test", .status = "5.7.1", .remote_mta = "mail.acme.test",
                            .smtp_reply = "554 5.7.1 r\xc3\xa9jet\xe9", .text = "host said no"};
    struct built b;
    build(&b, original, sizeof original - 1, "j@example.org", &f, 1);
    assert_crlf_only(b.bytes, b.len);
    /* Plain ASCII envelope: the report itself is ASCII, the headers part is encoded. */
    for (size_t i = 0; i < b.len; i++)
        assert_true(b.bytes[i] < 0x80);

    GMimeMultipart *mp = GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg));
    char *fields = content_of(g_mime_multipart_get_part(mp, 1), NULL);
    assert_non_null(strstr(fields, "Diagnostic-Code: smtp; 554 5.7.1 r??jet?\r\n"));
    g_free(fields);

    size_t len;
    char *h = content_of(g_mime_multipart_get_part(mp, 2), &len);
    size_t hdr_len = strstr(original, "\n\n") + 1 - original;
    /* GMime decodes to the canonical (LF) form: compare without CRs. */
    GString *want = g_string_new(NULL);
    for (const char *p = PREFIX; *p; p++)
        if (*p != '\r')
            g_string_append_c(want, *p);
    g_string_append_len(want, original, (gssize)hdr_len);
    GString *got = g_string_new(NULL);
    for (size_t i = 0; i < len; i++)
        if (h[i] != '\r')
            g_string_append_c(got, h[i]);
    assert_int_equal(got->len, want->len);
    assert_memory_equal(got->str, want->str, want->len);
    g_string_free(want, TRUE);
    g_string_free(got, TRUE);
    g_free(h);
    built_free(&b);
}

/* A UTF-8 envelope (SMTPUTF8 mail) gets the RFC 6533 global types. */
static void test_utf8_envelope(void **state)
{
    (void)state;
    struct dsn_failure f = {.rcpt = "j\xc3\xbcrgen@acme.test", .status = "5.1.1", .text = "unknown"};
    struct built b;
    build(&b, ORIGINAL, strlen(ORIGINAL), "s\xc3\xa9nder@example.org", &f, 1);
    GMimeMultipart *mp = GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg));
    GMimeObject *status = g_mime_multipart_get_part(mp, 1);
    assert_true(is_type(status, "message", "global-delivery-status"));
    char *fields = content_of(status, NULL);
    assert_non_null(strstr(fields, "Final-Recipient: utf-8; j\xc3\xbcrgen@acme.test\r\n"));
    g_free(fields);
    assert_true(is_type(g_mime_multipart_get_part(mp, 2), "message", "global-headers"));
    built_free(&b);
}

/* Whatever a remote server said cannot add fields or headers. */
static void test_hostile_text(void **state)
{
    (void)state;
    struct dsn_failure f = {.rcpt = "bob@acme.test", .status = "5.0.0", .remote_mta = "evil\r\nX-Injected: 1",
                            .smtp_reply = "550 no\r\nAction: delivered\nStatus: 2.0.0",
                            .text = "no\r\n\r\nfake"};
    struct built b;
    build(&b, ORIGINAL, strlen(ORIGINAL), "sender@example.org", &f, 1);
    GMimeMultipart *mp = GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg));
    char *fields = content_of(g_mime_multipart_get_part(mp, 1), NULL);
    assert_null(strstr(fields, "\r\nAction: delivered"));
    assert_null(strstr(fields, "\r\nStatus: 2.0.0"));
    assert_null(strstr(fields, "\r\nX-Injected"));
    assert_non_null(strstr(fields, "Action: failed\r\n"));
    g_free(fields);
    built_free(&b);
}

/* Odd originals: header only, empty, starting with a blank line. */
static void test_odd_originals(void **state)
{
    (void)state;
    struct dsn_failure f = {.rcpt = "bob@acme.test", .status = "5.1.1", .text = "no"};
    struct built b;
    const char *headers_only = "Subject: no body\r\nFrom: a@b.c\r\n";
    build(&b, headers_only, strlen(headers_only), "a@b.c", &f, 1);
    GMimeMultipart *mp = GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg));
    char *h = content_of(g_mime_multipart_get_part(mp, 2), NULL);
    assert_non_null(strstr(h, "Subject: no body"));
    g_free(h);
    built_free(&b);

    build(&b, "", 0, "a@b.c", &f, 1);
    built_free(&b);
    build(&b, "\r\nbody only\r\n", 13, "a@b.c", &f, 1);
    assert_null(memmem(b.bytes, b.len, "body only", 9));
    built_free(&b);
}

/* Never a DSN to the null sender; a DSN needs at least one failure. */
static void test_refusals(void **state)
{
    (void)state;
    struct dsn_failure f = {.rcpt = "bob@acme.test", .status = "5.1.1", .text = "no"};
    struct dsn_envelope env = {.reporting_mta = "mx", .queue_id = "1", .sender = ""};
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(dsn_build((const unsigned char *)ORIGINAL, strlen(ORIGINAL), &env, &f, 1, &out, &len),
                     -1);
    env.sender = "a@b.c";
    assert_int_equal(dsn_build((const unsigned char *)ORIGINAL, strlen(ORIGINAL), &env, &f, 0, &out, &len),
                     -1);
    assert_null(out);
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure_and_fields), cmocka_unit_test(test_8bit_original),
        cmocka_unit_test(test_utf8_envelope),        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_odd_originals),        cmocka_unit_test(test_refusals),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    return rc;
}
