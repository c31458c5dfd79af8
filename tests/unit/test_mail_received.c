/*
 * test_mail_received.c — the Received: header builder (src/mail/received.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/received.h"

static int setup_utc(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static struct received_info base_info(void)
{
    struct received_info ri = {
        .helo = "mx.sender.test",
        .client_ip = "192.0.2.1",
        .hostname = "mx.lifeboat.test",
        .queue_id = "0123456789ABCDEF",
        .rcpt = "bob@acme.test",
        .esmtp = 1,
        .when = 1800000000, /* Fri, 15 Jan 2027 08:00:00 +0000 */
    };
    return ri;
}

static void test_single_recipient(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    char out[RECEIVED_MAX];
    int n = received_build(&ri, out, sizeof out);
    const char *want = "Received: from mx.sender.test ([192.0.2.1])\r\n"
                       "\tby mx.lifeboat.test (lifeboat) with ESMTP id 0123456789ABCDEF\r\n"
                       "\tfor <bob@acme.test>; Fri, 15 Jan 2027 08:00:00 +0000\r\n";
    assert_string_equal(out, want);
    assert_int_equal(n, (int)strlen(want));
}

static void test_several_recipients_tls(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    ri.rcpt = NULL;
    ri.tls = 1;
    ri.tls_info = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384";
    char out[RECEIVED_MAX];
    assert_true(received_build(&ri, out, sizeof out) > 0);
    assert_string_equal(out, "Received: from mx.sender.test ([192.0.2.1])\r\n"
                             "\tby mx.lifeboat.test (lifeboat) with ESMTPS id 0123456789ABCDEF\r\n"
                             "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384);\r\n"
                             "\tFri, 15 Jan 2027 08:00:00 +0000\r\n");
}

static void test_ipv6_and_no_helo(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    ri.client_ip = "2001:db8::25";
    ri.helo = NULL;
    ri.esmtp = 0;
    char out[RECEIVED_MAX];
    assert_true(received_build(&ri, out, sizeof out) > 0);
    assert_non_null(strstr(out, "Received: from [IPv6:2001:db8::25] ([IPv6:2001:db8::25])\r\n"));
    assert_non_null(strstr(out, " with SMTP id "));
}

static void test_protocol_names(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    assert_string_equal(received_protocol(&ri), "ESMTP");
    ri.tls = 1;
    assert_string_equal(received_protocol(&ri), "ESMTPS");
    ri.auth = 1;
    assert_string_equal(received_protocol(&ri), "ESMTPSA");
    ri.tls = 0;
    assert_string_equal(received_protocol(&ri), "ESMTPA");
    ri.smtputf8 = 1;
    assert_string_equal(received_protocol(&ri), "UTF8SMTPA");
    ri.tls = 1;
    assert_string_equal(received_protocol(&ri), "UTF8SMTPSA");
    ri.auth = 0;
    assert_string_equal(received_protocol(&ri), "UTF8SMTPS");
    ri.esmtp = 0;
    assert_string_equal(received_protocol(&ri), "SMTP");
}

static void test_every_line_crlf_and_short(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    char helo[256], host[256], rcpt[321];
    memset(helo, 'h', 255);
    helo[255] = '\0';
    memset(host, 'n', 255);
    host[255] = '\0';
    memset(rcpt, 'r', 320);
    rcpt[300] = '@';
    rcpt[320] = '\0';
    ri.helo = helo;
    ri.hostname = host;
    ri.rcpt = rcpt;
    ri.tls = 1;
    ri.tls_info = "TLSv1.3 with cipher TLS_CHACHA20_POLY1305_SHA256";
    char out[RECEIVED_MAX];
    int n = received_build(&ri, out, sizeof out);
    assert_true(n > 0);
    /* Every line ends in CRLF, no bare CR or LF, continuation lines fold with a tab. */
    const char *line = out;
    int lines = 0;
    while (*line) {
        const char *crlf = strstr(line, "\r\n");
        assert_non_null(crlf);
        assert_true(crlf - line <= 998);
        assert_null(memchr(line, '\n', (size_t)(crlf - line)));
        assert_null(memchr(line, '\r', (size_t)(crlf - line)));
        if (lines++)
            assert_int_equal(line[0], '\t');
        line = crlf + 2;
    }
    assert_int_equal(lines, 4);
}

static void test_refuses_unsafe_or_too_long(void **state)
{
    (void)state;
    struct received_info ri = base_info();
    char out[RECEIVED_MAX];
    ri.helo = "evil\r\nX-Injected: 1";
    assert_int_equal(received_build(&ri, out, sizeof out), -1);
    assert_string_equal(out, "");
    ri = base_info();
    ri.rcpt = "a\n@b";
    assert_int_equal(received_build(&ri, out, sizeof out), -1);
    ri = base_info();
    char small[40];
    assert_int_equal(received_build(&ri, small, sizeof small), -1);
    assert_string_equal(small, "");
    ri.client_ip = NULL;
    assert_int_equal(received_build(&ri, out, sizeof out), -1);
}

static void test_count_hops(void **state)
{
    (void)state;
    const char *m = "Received: from a\r\n\tby b; x\r\nRECEIVED: from c\r\nSubject: hi\r\n"
                    "X-Received: no\r\n\r\nReceived: in the body does not count\r\n";
    assert_int_equal(received_count_hops((const unsigned char *)m, strlen(m)), 2);
    assert_int_equal(received_count_hops((const unsigned char *)"", 0), 0);
    /* No header end and no final newline: still counted, never read past len. */
    const char *cut = "Received: x\r\nReceived: y";
    assert_int_equal(received_count_hops((const unsigned char *)cut, strlen(cut)), 2);
    assert_int_equal(received_count_hops((const unsigned char *)cut, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_recipient),
        cmocka_unit_test(test_several_recipients_tls),
        cmocka_unit_test(test_ipv6_and_no_helo),
        cmocka_unit_test(test_protocol_names),
        cmocka_unit_test(test_every_line_crlf_and_short),
        cmocka_unit_test(test_refuses_unsafe_or_too_long),
        cmocka_unit_test(test_count_hops),
    };
    return cmocka_run_group_tests(tests, setup_utc, NULL);
}
