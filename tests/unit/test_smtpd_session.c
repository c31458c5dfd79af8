/*
 * test_smtpd_session.c — the SMTP server end to end over socketpairs, with a
 * fake directory and queue (test_smtpd_harness.h): the state machine,
 * PIPELINING, the relay rules, limits, timeouts, smuggling (refused, or
 * fixed with smtp_invalid_line_endings = fix), control characters in the
 * header, the memory budget for message bodies, BDAT, STARTTLS (and the
 * plaintext injection defence), queue failures, a client that leaves while its
 * message is being stored, shutdown, and real listeners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_smtpd_harness.h"

#include <event2/buffer.h>
#include <signal.h>

static struct harness *H;

static void no_tweak(struct config *cfg)
{
    (void)cfg;
}

static int setup(void **state)
{
    (void)state;
    H = harness_new(no_tweak);
    return H ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    harness_free(H);
    H = NULL;
    return 0;
}

/* Greeting and EHLO, ready for MAIL. */
static struct client *ready(struct harness *h, const char *ip)
{
    struct client *c = client_connect(h, ip);
    assert_non_null(c);
    expect_reply(c, "220 mx.lifeboat.test ESMTP lifeboat");
    client_send(c, "EHLO client.test\r\n");
    expect_reply(c, "250-mx.lifeboat.test");
    return c;
}

static void test_greeting_and_ehlo(void **state)
{
    (void)state;
    struct client *c = client_connect(H, "192.0.2.10");
    assert_non_null(c);
    char r[4096];
    assert_int_equal(client_reply(c, r, sizeof r), 0);
    assert_string_equal(r, "220 mx.lifeboat.test ESMTP lifeboat");
    client_send(c, "EHLO client.test\r\n");
    assert_int_equal(client_reply(c, r, sizeof r), 0);
    assert_string_equal(r, "250-mx.lifeboat.test\r\n"
                           "250-PIPELINING\r\n"
                           "250-SIZE 26214400\r\n"
                           "250-8BITMIME\r\n"
                           "250-SMTPUTF8\r\n"
                           "250-ENHANCEDSTATUSCODES\r\n"
                           "250 CHUNKING"); /* no STARTTLS without a certificate */
    client_send(c, "HELO client.test\r\n");
    expect_reply(c, "250 mx.lifeboat.test");
    client_send(c, "NOOP\r\nRSET\r\nVRFY bob\r\nHELP\r\nEXPN staff\r\n");
    expect_reply(c, "250 2.0.0");
    expect_reply(c, "250 2.0.0");
    expect_reply(c, "252 ");
    expect_reply(c, "214 ");
    expect_reply(c, "502 5.5.1");
    client_send(c, "QUIT\r\n");
    expect_reply(c, "221 2.0.0");
    assert_true(client_wait_eof(c, 2000));
    client_free(c);
    pump_for(H, 10);
    assert_int_equal(smtpd_session_count(H->srv), 0);
}

static void test_one_message(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    client_send(c, "MAIL FROM:<Alice@Sender.TEST> SIZE=100 BODY=8BITMIME\r\n");
    expect_reply(c, "250 2.1.0");
    client_send(c, "RCPT TO:<Bob@ACME.test>\r\n");
    expect_reply(c, "250 2.1.5");
    client_send(c, "DATA\r\n");
    expect_reply(c, "354 ");
    client_send(c, "Subject: hi\r\n\r\n..leading dot\r\nlast line\r\n.\r\n");
    char r[512];
    assert_int_equal(client_reply(c, r, sizeof r), 0);
    assert_memory_equal(r, "250 2.0.0 Ok: queued as ", 24);
    assert_int_equal(H->fake.nmsgs, 1);
    struct captured *m = &H->fake.msgs[0];
    assert_string_equal(r + 24, m->id);
    assert_true(queueid_is_valid(m->id));
    assert_string_equal(m->sender, "Alice@Sender.TEST");
    assert_string_equal(m->rcpts, "bob@acme.test"); /* canonical */
    assert_string_equal(m->body, "Subject: hi\r\n\r\n.leading dot\r\nlast line\r\n");
    assert_int_equal(m->direction, DIR_INBOUND);
    assert_string_equal(m->client_addr, "192.0.2.10");
    assert_string_equal(m->helo, "client.test");
    char want[256];
    snprintf(want, sizeof want,
             "Received: from client.test ([192.0.2.10])\r\n"
             "\tby mx.lifeboat.test (lifeboat) with ESMTP id %s\r\n"
             "\tfor <bob@acme.test>; ",
             m->id);
    assert_memory_equal(m->prefix, want, strlen(want));
    assert_int_equal(H->fake.queued_cb, 1);
    /* A second message in the same session. */
    client_send(c, "MAIL FROM:<>\r\nRCPT TO:<alice@acme.test>\r\nRCPT TO:<bob@acme.test>\r\n"
                   "RCPT TO:<BOB@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "250 2.1.5"); /* the duplicate is accepted, and kept once */
    expect_reply(c, "354");
    client_send(c, ".\r\n");
    expect_reply(c, "250 2.0.0 Ok: queued as");
    assert_int_equal(H->fake.nmsgs, 2);
    assert_string_equal(H->fake.msgs[1].rcpts, "alice@acme.test,bob@acme.test");
    assert_string_equal(H->fake.msgs[1].sender, "");
    assert_string_equal(H->fake.msgs[1].body, "");
    assert_null(strstr(H->fake.msgs[1].prefix, "\tfor <")); /* several recipients */
    assert_string_not_equal(H->fake.msgs[0].id, H->fake.msgs[1].id);
    client_free(c);
}

/* PIPELINING: a whole transaction in one write, the replies in order. */
static void test_pipelining(void **state)
{
    (void)state;
    struct client *c = client_connect(H, "192.0.2.10");
    expect_reply(c, "220");
    client_send(c, "EHLO a.test\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\n"
                   "RCPT TO:<nobody@acme.test>\r\nRCPT TO:<alice@acme.test>\r\nDATA\r\n"
                   "Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@b.test>\r\nRCPT TO:<bob@acme.test>\r\n"
                   "DATA\r\nsecond\r\n.\r\nQUIT\r\n");
    expect_reply(c, "250-mx.lifeboat.test");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "550 5.1.1 <nobody@acme.test>: user unknown");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0 Ok: queued as");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0 Ok: queued as");
    expect_reply(c, "221");
    assert_true(client_wait_eof(c, 2000));
    assert_int_equal(H->fake.nmsgs, 2);
    assert_string_equal(H->fake.msgs[0].rcpts, "bob@acme.test,alice@acme.test");
    assert_string_equal(H->fake.msgs[1].body, "second\r\n");
    client_free(c);
}

/* Never an open relay: the matrix of hosted/not hosted and relay permission. */
static void test_relay_rules(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\n");
    expect_reply(c, "250");
    client_send(c, "RCPT TO:<someone@elsewhere.test>\r\n");
    expect_reply(c, "554 5.7.1 <someone@elsewhere.test>: relay access denied");
    client_send(c, "RCPT TO:<someone@[192.0.2.1]>\r\n");
    expect_reply(c, "554 5.7.1");
    client_send(c, "RCPT TO:<ghost@acme.test>\r\n"); /* recipient check on */
    expect_reply(c, "550 5.1.1 <ghost@acme.test>: user unknown");
    client_send(c, "RCPT TO:<anyone@open.test>\r\n"); /* recipient check off */
    expect_reply(c, "250 2.1.5");
    client_send(c, "RCPT TO:<x@fail.test>\r\n"); /* directory down: try later */
    expect_reply(c, "451 4.3.0");
    client_send(c, "DATA\r\n.\r\n");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.msgs[0].direction, DIR_INBOUND);
    assert_int_equal(H->fake.relay_asks, 1); /* the networks: asked once per session */
    client_free(c);

    /* A client in an --outbound-from network relays out. */
    c = ready(H, "192.0.2.99");
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<someone@elsewhere.test>\r\nDATA\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.msgs[1].direction, DIR_OUTBOUND);
    /* Mixed: inbound. */
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<someone@elsewhere.test>\r\n"
                   "RCPT TO:<bob@acme.test>\r\nDATA\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.msgs[2].direction, DIR_INBOUND);
    client_free(c);

    /* The relay check itself failing is a temporary error, not a yes. */
    c = ready(H, "192.0.2.66");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<someone@elsewhere.test>\r\n");
    expect_reply(c, "250");
    expect_reply(c, "451 4.3.0");
    client_free(c);

    /* IPv4-mapped IPv6 peers are their IPv4 address. */
    c = ready(H, "::ffff:192.0.2.99");
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<someone@elsewhere.test>\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250 2.1.5");
    client_free(c);
}

/* A customer's server relays only as that customer (issue 10, finding 1):
 * another customer's domain in MAIL FROM, or in the From header, is refused;
 * what it relays is filed as its customer's outbound mail. */
static void test_relay_as_own_customer_only(void **state)
{
    (void)state;
    size_t before = H->fake.nmsgs;
    unsigned asks = H->fake.relay_asks;
    struct client *c = ready(H, "192.0.2.99");
    /* beta's domain in the envelope: refused at RCPT, for every outside recipient */
    client_send(c, "MAIL FROM:<carol@beta.test>\r\nRCPT TO:<x@elsewhere.test>\r\n"
                   "RCPT TO:<bob@acme.test>\r\nDATA\r\nFrom: carol@beta.test\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "550 5.7.1 <carol@beta.test>: Sender address rejected: not owned by the relaying customer");
    expect_reply(c, "250 2.1.5"); /* inbound to a hosted user: anyone may send that */
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.nmsgs, before + 1);
    assert_string_equal(H->fake.msgs[before].rcpts, "bob@acme.test");
    assert_int_equal(H->fake.msgs[before].sender_customer_id, 0);

    /* the envelope is acme's, but the From header is beta's */
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n"
                   "From: Carol <carol@beta.test>\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "550 5.7.1 Error: From header not owned by the relaying customer");
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n"
                   "From: a@acme.test\r\nFrom: carol@beta.test\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "550 5.6.0 Error: message has more than one From header");
    assert_int_equal(H->fake.nmsgs, before + 1);

    /* its own: the domain, a subdomain (the server's bounces), the null sender, no From at all */
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n"
                   "From: A <a@acme.test>, B <b@acme.test>\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    client_send(c, "MAIL FROM:<>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n"
                   "From: MAILER-DAEMON@mx1.acme.test\r\n\r\nbounce\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\nSubject: none\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.nmsgs, before + 4);
    for (size_t i = before + 1; i < before + 4; i++) {
        assert_int_equal(H->fake.msgs[i].direction, DIR_OUTBOUND);
        assert_int_equal(H->fake.msgs[i].sender_customer_id, 1);
    }
    /* six transactions, one scan of the networks: not one per message */
    assert_int_equal(H->fake.relay_asks, asks + 1);
    client_free(c);

    /* inbound mail from anywhere is not the sender's customer's */
    c = ready(H, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@acme.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n"
                   "From: carol@beta.test\r\n\r\nhi\r\n.\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_int_equal(H->fake.msgs[before + 4].sender_customer_id, 0);
    client_free(c);
}

static void test_sequence_errors(void **state)
{
    (void)state;
    struct client *c = client_connect(H, "192.0.2.10");
    expect_reply(c, "220");
    client_send(c, "MAIL FROM:<a@a.test>\r\n");
    expect_reply(c, "503 5.5.1");
    client_send(c, "RCPT TO:<bob@acme.test>\r\n");
    expect_reply(c, "503 5.5.1");
    client_send(c, "DATA\r\n");
    expect_reply(c, "503 5.5.1");
    client_send(c, "EHLO x\r\nDATA\r\nMAIL FROM:<a@a.test>\r\nDATA\r\nMAIL FROM:<a@a.test>\r\n");
    expect_reply(c, "250-");
    expect_reply(c, "503 5.5.1");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "554 5.5.1"); /* no valid recipients */
    expect_reply(c, "503 5.5.1"); /* nested MAIL */
    client_send(c, "RSET\r\nRCPT TO:<bob@acme.test>\r\n");
    expect_reply(c, "250 2.0.0");
    expect_reply(c, "503 5.5.1");
    client_send(c, "FOO\r\nMAIL FROM:<a>\r\nMAIL FROM:<a@a.test> BOGUS=1\r\nAUTH PLAIN\r\nSTARTTLS\r\n");
    expect_reply(c, "500 5.5.1");
    expect_reply(c, "553 5.1.7");
    expect_reply(c, "555 5.5.4");
    expect_reply(c, "503 5.5.1"); /* no AUTH on port 25 */
    expect_reply(c, "502 5.5.1"); /* no STARTTLS without a certificate */
    client_send(c, "MAIL FROM:<a@a.test> SIZE=999999999\r\n");
    expect_reply(c, "552 5.3.4");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<b\xc3\xa9@acme.test>\r\n");
    expect_reply(c, "250");
    expect_reply(c, "553 5.6.7");
    client_free(c);
}

static void max3(struct config *cfg)
{
    cfg->max_recipients = 3;
}

static void test_too_many_recipients(void **state)
{
    (void)state;
    struct harness *h = harness_new(max3);
    assert_non_null(h);
    struct client *c = ready(h, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\n");
    expect_reply(c, "250");
    /* A duplicate is accepted and counts against the limit, but is kept once. */
    client_send(c, "RCPT TO:<one@open.test>\r\nRCPT TO:<two@open.test>\r\nRCPT TO:<ONE@open.test>\r\n");
    for (int i = 0; i < 3; i++)
        expect_reply(c, "250 2.1.5");
    /* Pipelined overshoot is answered, not punished... */
    for (int i = 0; i < 3; i++) {
        client_send(c, "RCPT TO:<more@open.test>\r\n");
        expect_reply(c, "452 4.5.3");
    }
    /* ...up to a point: then each counts as an error, and 20 errors close. */
    client_send(c, "DATA\r\n.\r\n");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0");
    assert_string_equal(h->fake.msgs[0].rcpts, "one@open.test,two@open.test");
    client_free(c);
    harness_free(h);
}

/* 2,000 recipients pipelined against the default limit of 1,000. */
static void test_two_thousand_recipients(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    size_t cap = 2000 * 40 + 64, len = 0;
    char *cmds = malloc(cap);
    len += (size_t)snprintf(cmds + len, cap - len, "MAIL FROM:<a@a.test>\r\n");
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(cmds + len, cap - len, "RCPT TO:<user%d@open.test>\r\n", i);
    client_send_n(c, cmds, len);
    expect_reply(c, "250 2.1.0");
    for (int i = 0; i < 1000; i++)
        expect_reply(c, "250 2.1.5");
    for (int i = 0; i < 1000; i++)
        expect_reply(c, "452 4.5.3");
    client_send(c, "DATA\r\nSubject: many\r\n\r\n.\r\n");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0 Ok: queued");
    assert_int_equal(H->fake.nmsgs, 1);
    assert_int_equal(H->fake.msgs[0].nrcpt, 1000);
    free(cmds);
    client_free(c);
}

static void test_error_limit(void **state)
{
    (void)state;
    struct client *c = client_connect(H, "192.0.2.10");
    expect_reply(c, "220");
    for (int i = 0; i < 19; i++) {
        client_send(c, "FOO\r\n");
        expect_reply(c, "500 5.5.1");
    }
    client_send(c, "FOO\r\nNOOP\r\n");
    expect_reply(c, "500 5.5.1");
    expect_reply(c, "421 4.7.0 mx.lifeboat.test Error: too many errors");
    assert_true(client_wait_eof(c, 2000)); /* and NOOP was never answered */
    client_free(c);
}

/* Smuggling end to end: nothing after a fake end of data is a command. */
static void test_smuggling_refused(void **state)
{
    (void)state;
    static const char *const ends[] = {"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        struct client *c = ready(H, "192.0.2.10");
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n"
                 "Subject: outer\r\n\r\nhello%sMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<alice@acme.test>\r\n"
                 "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nNOOP\r\n",
                 ends[i]);
        client_send(c, msg);
        expect_reply(c, "250 2.1.0");
        expect_reply(c, "250 2.1.5");
        expect_reply(c, "354");
        expect_reply(c, "550 5.6.11 bare LF/CR not allowed");
        expect_reply(c, "250 2.0.0 Ok"); /* the NOOP: the smuggled commands got no replies */
        client_free(c);
    }
    assert_int_equal(H->fake.nmsgs, 0);
}

/* Every line of body ends in CRLF and there is no other CR or LF. */
static int crlf_clean(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r' && (i + 1 >= len || body[i + 1] != '\n'))
            return 0;
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            return 0;
    }
    return 1;
}

static void fix_line_endings(struct config *cfg)
{
    cfg->smtp_invalid_line_endings = CONFIG_LINE_ENDINGS_FIX;
}

/* smtp_invalid_line_endings = fix: the same smuggling attempts are one
 * message each, stored with CRLF, holding the would-be commands as text. */
static void test_smuggling_fixed(void **state)
{
    (void)state;
    struct harness *h = harness_new(fix_line_endings);
    assert_non_null(h);
    static const char *const ends[] = {"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r.\r\n"};
    size_t nends = sizeof ends / sizeof ends[0];
    for (size_t i = 0; i < nends; i++) {
        struct client *c = ready(h, "192.0.2.10");
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n"
                 "Subject: outer\r\n\r\nhello%sMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<alice@acme.test>\r\n"
                 "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nNOOP\r\n",
                 ends[i]);
        client_send(c, msg);
        expect_reply(c, "250 2.1.0");
        expect_reply(c, "250 2.1.5");
        expect_reply(c, "354");
        expect_reply(c, "250 2.0.0 Ok: queued as");
        expect_reply(c, "250 2.0.0 Ok"); /* the NOOP: the smuggled commands got no replies */
        client_free(c);
    }
    assert_int_equal(h->fake.nmsgs, nends);
    for (size_t i = 0; i < nends; i++) {
        const struct captured *m = &h->fake.msgs[i];
        assert_string_equal(m->sender, "a@a.test");
        assert_string_equal(m->rcpts, "bob@acme.test");
        assert_true(crlf_clean(m->body, m->body_len));
        assert_non_null(strstr(m->body, "\r\nMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<alice@acme.test>\r\nDATA\r\n"));
        assert_memory_equal(m->body + m->body_len - 3, "x\r\n", 3);
    }
    harness_free(h);
}

/* A NUL (or another control character) in the header section: 550 5.6.0
 * after the real end of the data; in the body it is the body's own. */
static void test_header_control_refused(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    static const char bad[] = "From: bob@acme.test\0<alice@acme.test>\r\nSubject: x\r\n\r\nbody\r\n.\r\nNOOP\r\n";
    client_send_n(c, bad, sizeof bad - 1);
    expect_reply(c, "550 5.6.0 Error: control character in message header");
    expect_reply(c, "250 2.0.0"); /* in step */
    assert_int_equal(H->fake.nmsgs, 0);
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 20 LAST\r\n");
    client_send_n(c, "Subject: \x1b$B\r\n\r\nbody\r\n", 20);
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "550 5.6.0");
    assert_int_equal(H->fake.nmsgs, 0);
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    static const char good[] = "Subject: x\r\n\r\nb\0dy\x01\r\n.\r\n";
    client_send_n(c, good, sizeof good - 1);
    expect_reply(c, "250 2.0.0 Ok: queued as");
    assert_int_equal(H->fake.nmsgs, 1);
    assert_int_equal(H->fake.msgs[0].body_len, sizeof good - 4);
    assert_memory_equal(H->fake.msgs[0].body, good, sizeof good - 4);
    client_free(c);
}

/* 80-octet lines, n octets in all. */
static char *lines_of(size_t n)
{
    char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'a';
    return buf;
}

/* The memory budget for message bodies (data_budget.c), with limits small
 * enough for a few sessions to reach: past one client address's share a
 * message is read to its end and answered 452 4.3.1, the session stays in
 * step, another address is served meanwhile, and every path (the 250, RSET,
 * a disconnect mid-DATA, the refusal itself) gives the octets back. */
static void test_data_budget(void **state)
{
    (void)state;
    struct data_budget *b = &H->srv->budget;
    uint64_t limit, client_limit;
    data_budget_limits(25u * 1024 * 1024, &limit, &client_limit);
    assert_true(b->limit == limit && limit == 200u * 1024 * 1024 && client_limit == limit / 4);
    data_budget_limits(1024 * 1024, &limit, &client_limit);
    assert_true(limit == 64u * 1024 * 1024 && client_limit == 16u * 1024 * 1024);
    /* A reload may lower the limits below what is in use: nothing more is granted. */
    assert_int_equal(data_budget_reserve(b, "192.0.2.30", 1000), 0);
    b->limit = 500;
    assert_int_equal(data_budget_reserve(b, "192.0.2.31", 1), -1);
    b->limit = limit;
    b->client_limit = 999;
    assert_int_equal(data_budget_reserve(b, "192.0.2.30", 1), -1);
    assert_int_equal(data_budget_reserve(b, "192.0.2.31", 999), 0);
    data_budget_release(b, "192.0.2.30", 1000);
    data_budget_release(b, "192.0.2.31", 999);
    assert_true(b->used == 0);
    assert_int_equal(H->srv->clients.nentries, 0);

    b->limit = 256 * 1024;
    b->client_limit = 128 * 1024;

    size_t body = 80 * 750; /* 60,000 octets: a 64 KB buffer each */
    char *lines = lines_of(200 * 1000);
    struct client *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = ready(H, "192.0.2.10");
        client_send(c[i], "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
        expect_reply(c[i], "250 2.1.0");
        expect_reply(c[i], "250 2.1.5");
        expect_reply(c[i], "354");
        client_send(c[i], "Subject: big\r\n\r\n");
        client_send_n(c[i], lines, body);
    }
    pump_for(H, 20);
    /* Two hold 64 KB each, the whole share of 192.0.2.10; the third could not grow. */
    assert_true(client_table_bytes(&H->srv->clients, "192.0.2.10") == 128 * 1024);
    assert_true(b->used == 128 * 1024);

    /* Another address is served meanwhile. */
    struct client *o = ready(H, "192.0.2.20");
    client_send(o, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nSubject: other\r\n\r\n");
    expect_reply(o, "250 2.1.0");
    expect_reply(o, "250 2.1.5");
    expect_reply(o, "354");
    client_send_n(o, lines, body);
    client_send(o, ".\r\n");
    expect_reply(o, "250 2.0.0 Ok: queued as");
    assert_true(client_table_bytes(&H->srv->clients, "192.0.2.20") == 0);

    /* The third is read to its end, then refused for now; the session goes on. */
    client_send(c[2], ".\r\nNOOP\r\n");
    expect_reply(c[2], "452 4.3.1 Error: insufficient system storage");
    expect_reply(c[2], "250 2.0.0");
    /* The first completes and is queued; the second leaves mid-DATA. */
    client_send(c[0], ".\r\n");
    expect_reply(c[0], "250 2.0.0 Ok: queued as");
    client_free(c[1]);
    pump_for(H, 20);
    assert_true(b->used == 0);

    /* BDAT announcing more than the share: read whole, then 452. */
    client_send(c[2], "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 200000 LAST\r\n");
    client_send_n(c[2], lines, 200 * 1000);
    client_send(c[2], "NOOP\r\n");
    expect_reply(c[2], "250 2.1.0");
    expect_reply(c[2], "250 2.1.5");
    expect_reply(c[2], "452 4.3.1");
    expect_reply(c[2], "250 2.0.0");
    assert_true(b->used == 0);
    /* A chunk held between BDATs goes back on RSET. */
    client_send(c[2], "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 8000\r\n");
    client_send_n(c[2], lines, 8000);
    expect_reply(c[2], "250 2.1.0");
    expect_reply(c[2], "250 2.1.5");
    expect_reply(c[2], "250 2.0.0 Ok: 8000 octets");
    assert_true(b->used >= 8000);
    client_send(c[2], "RSET\r\n");
    expect_reply(c[2], "250 2.0.0");
    assert_true(b->used == 0);

    client_free(c[0]);
    client_free(c[2]);
    client_free(o);
    pump_for(H, 20);
    assert_true(b->used == 0);
    assert_int_equal(H->srv->clients.nentries, 0);
    assert_int_equal(H->fake.nmsgs, 2);
    free(lines);
}

static void small(struct config *cfg)
{
    cfg->max_message_size = 100;
}

static void test_size_and_long_lines(void **state)
{
    (void)state;
    struct harness *h = harness_new(small);
    struct client *c = ready(h, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test> SIZE=101\r\n");
    expect_reply(c, "552 5.3.4");
    client_send(c, "MAIL FROM:<a@a.test> SIZE=100\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    char body[400];
    memset(body, 'x', 300);
    memcpy(body + 300, "\r\n.\r\n", 6);
    client_send(c, body);
    expect_reply(c, "552 5.3.4");
    client_send(c, "RSET\r\n");
    expect_reply(c, "250 2.0.0");
    client_free(c);
    harness_free(h);

    /* Lines: a 10,000-character command, a 999-octet body line. */
    c = ready(H, "192.0.2.10");
    char *line = malloc(10010);
    memset(line, 'A', 10000);
    memcpy(line + 10000, "\r\n", 3);
    client_send(c, line);
    expect_reply(c, "500 5.5.2 Error: line too long");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    memset(line, 'b', 999);
    memcpy(line + 999, "\r\n.\r\n", 6);
    client_send(c, line);
    expect_reply(c, "550 5.5.2");
    client_send(c, "NOOP\r\n");
    expect_reply(c, "250 2.0.0");
    free(line);
    client_free(c);
    assert_int_equal(H->fake.nmsgs, 0);
}

static void test_bdat(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    /* BDAT with no transaction: the chunk is read and thrown away. */
    client_send(c, "BDAT 12\r\nRSET\r\nNOOP\r\nNOOP\r\n");
    expect_reply(c, "503 5.5.1");
    expect_reply(c, "250 2.0.0");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 14\r\nSubject: b\r\n\r\n"
                   "BDAT 6 LAST\r\n.\r\nx\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "250 2.0.0 Ok: 14 octets");
    expect_reply(c, "250 2.0.0 Ok: queued as");
    assert_int_equal(H->fake.nmsgs, 1);
    assert_string_equal(H->fake.msgs[0].body, "Subject: b\r\n\r\n.\r\nx\r\n");
    /* DATA after BDAT, BDAT 0 LAST, bare LF in a chunk. */
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 3\r\nab\nDATA\r\nBDAT 0 LAST\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "550 5.6.11");
    expect_reply(c, "503 5.5.1"); /* the transaction is gone */
    expect_reply(c, "503 5.5.1");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nBDAT 0 LAST\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "250 2.0.0 Ok: queued as");
    client_send(c, "BDAT x\r\n"); /* cannot know where the chunk ends: close */
    expect_reply(c, "501 5.5.4");
    assert_true(client_wait_eof(c, 2000));
    client_free(c);
}

static void short_timeouts(struct config *cfg)
{
    cfg->smtp_timeout = 1;
    cfg->smtp_data_timeout = 2;
}

static void test_timeouts(void **state)
{
    (void)state;
    struct harness *h = harness_new(short_timeouts);
    struct client *c = ready(h, "192.0.2.10");
    char r[256];
    assert_int_equal(client_reply_wait(c, r, sizeof r, 3000), 0);
    assert_string_equal(r, "421 4.4.2 mx.lifeboat.test Error: timeout exceeded");
    assert_true(client_wait_eof(c, 2000));
    client_free(c);
    /* Inside DATA the data timeout applies; others carry on meanwhile. */
    c = ready(h, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\npartial");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    struct client *other = ready(h, "192.0.2.11");
    client_send(other, "NOOP\r\n");
    expect_reply(other, "250");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(client_reply_wait(c, r, sizeof r, 4000), 0);
    assert_string_equal(r, "421 4.4.2 mx.lifeboat.test Error: timeout exceeded");
    assert_true(elapsed_ms(&t0) >= 1500);
    client_free(c);
    client_free(other);
    pump_for(h, 50);
    assert_int_equal(h->fake.nmsgs, 0);
    harness_free(h);
}

static void test_queue_failures(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    H->fake.mode = FAKE_SUBMIT_FAIL;
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nx\r\n.\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    expect_reply(c, "451 4.3.0 Error: queue file write error");
    H->fake.mode = FAKE_SUBMIT_REFUSE;
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nx\r\n.\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    expect_reply(c, "451 4.3.0");
    H->fake.mode = FAKE_SUBMIT_OK;
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nx\r\n.\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0 Ok: queued");
    assert_int_equal(H->fake.queued_cb, 1);
    client_free(c);
}

/* The client leaves while the writer has its message: nothing is freed under
 * the writer's feet, and the session goes when done() arrives. */
static void test_disconnect_while_storing(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    H->fake.mode = FAKE_SUBMIT_HOLD;
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    pump_for(H, 20);
    assert_non_null(H->fake.done);
    /* No reply before the writer answers, and QUIT waits its turn. */
    char r[64];
    assert_int_equal(client_reply_wait(c, r, sizeof r, 100), -1);
    client_close(c);
    pump_for(H, 50);
    assert_int_equal(smtpd_session_count(H->srv), 1); /* alive until done() */
    fake_complete(&H->fake, STORE_OK); /* its reply finds the connection gone */
    pump_for(H, 50);
    assert_int_equal(smtpd_session_count(H->srv), 0);
    assert_int_equal(H->srv->nconnections, 0);
    client_free(c);

    /* The normal case with the reply held: QUIT is answered after the 250. */
    c = ready(H, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    pump_for(H, 20);
    fake_complete(&H->fake, STORE_OK);
    expect_reply(c, "250 2.0.0 Ok: queued");
    expect_reply(c, "221");
    client_free(c);

    /* smtpd_free while a message is with the writer: done() still finds its memory. */
    struct harness *h = harness_new(no_tweak);
    h->fake.mode = FAKE_SUBMIT_HOLD;
    c = ready(h, "192.0.2.10");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nbody\r\n.\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    pump_for(h, 20);
    assert_non_null(h->fake.done);
    smtpd_free(h->srv);
    h->srv = NULL;
    fake_complete(&h->fake, STORE_OK);
    client_free(c);
    event_base_free(h->base);
    for (size_t i = 0; i < h->fake.nmsgs; i++)
        free(h->fake.msgs[i].body);
    free(h);
}

static void limits(struct config *cfg)
{
    cfg->smtp_max_connections = 3;
    cfg->smtp_client_limit = 2;
}

static void test_connection_limits(void **state)
{
    (void)state;
    struct harness *h = harness_new(limits);
    struct client *a = client_connect(h, "192.0.2.1");
    struct client *b = client_connect(h, "192.0.2.1");
    assert_non_null(a);
    assert_non_null(b);
    char r[256];
    assert_null(client_connect_ex(h, "192.0.2.1", r, sizeof r));
    assert_string_equal(r, "421 4.7.0 mx.lifeboat.test Error: too many connections from [192.0.2.1]\r\n");
    struct client *c = client_connect(h, "192.0.2.2");
    assert_non_null(c);
    assert_null(client_connect_ex(h, "192.0.2.3", r, sizeof r));
    assert_string_equal(r, "421 4.7.0 mx.lifeboat.test Error: too many connections\r\n");
    expect_reply(a, "220");
    client_send(a, "QUIT\r\n");
    expect_reply(a, "221");
    assert_true(client_wait_eof(a, 2000));
    pump_for(h, 20);
    struct client *d = client_connect(h, "192.0.2.1");
    assert_non_null(d);
    expect_reply(d, "220");
    client_free(a);
    client_free(b);
    client_free(c);
    client_free(d);
    harness_free(h);
}

/* A client that never reads its replies cannot make the server buffer them
 * without bound. */
static void test_output_bounded(void **state)
{
    (void)state;
    struct client *c = ready(H, "192.0.2.10");
    /* EHLO is not a junk command and has a long reply. */
    static char burst[8 * 1024];
    size_t n = 0;
    while (n + 12 < sizeof burst) {
        memcpy(burst + n, "EHLO x.test\r\n", 13);
        n += 13;
    }
    size_t sent = 0, max_out = 0, max_in = 0;
    unsigned commands = 0;
    struct session *s = H->srv->sessions;
    for (int round = 0; round < 400; round++) {
        ssize_t w = send(c->fd, burst, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            sent += (size_t)w;
        }
        pump(H);
        size_t out = evbuffer_get_length(bufferevent_get_output(s->bev));
        size_t in = evbuffer_get_length(bufferevent_get_input(s->bev));
        if (out > max_out)
            max_out = out;
        if (in > max_in)
            max_in = in;
        if (w <= 0 && round > 50)
            break; /* the server stopped reading: the sockets are full */
    }
    assert_true(sent > 200 * 1024);
    assert_true(max_out < SMTPD_OUTPUT_MAX + 4096);
    assert_true(max_in <= SMTPD_INPUT_MAX + 64 * 1024);
    /* Everything is answered once the client reads. */
    commands = (unsigned)(sent / 13);
    char r[1024];
    for (unsigned i = 0; i < commands; i++) {
        assert_int_equal(client_reply(c, r, sizeof r), 0);
        assert_memory_equal(r, "250-mx.lifeboat.test", 20);
    }
    client_free(c);
}

static void test_shutdown(void **state)
{
    (void)state;
    struct harness *h = harness_new(no_tweak);
    struct client *idle = ready(h, "192.0.2.10");
    struct client *busy = ready(h, "192.0.2.11");
    client_send(busy, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\n");
    expect_reply(busy, "250");
    expect_reply(busy, "250");
    smtpd_stop_accepting(h->srv);
    expect_reply(idle, "421 4.3.2");
    assert_true(client_wait_eof(idle, 2000));
    /* The transaction in progress is finished, then the session is closed. */
    client_send(busy, "DATA\r\nx\r\n.\r\n");
    expect_reply(busy, "354");
    expect_reply(busy, "250 2.0.0 Ok: queued");
    expect_reply(busy, "421 4.3.2");
    assert_true(client_wait_eof(busy, 2000));
    pump_for(h, 20);
    assert_int_equal(smtpd_session_count(h->srv), 0);
    assert_null(client_connect(h, "192.0.2.12"));
    client_free(idle);
    client_free(busy);
    harness_free(h);
}

/* ------------------------------------------------------------------ TLS */

static void test_starttls(void **state)
{
    (void)state;
    char dir[] = "/tmp/lb-smtpd-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(harness_cert_path, sizeof harness_cert_path, "%s/cert.pem", dir);
    assert_int_equal(make_cert(harness_cert_path), 0);
    struct harness *h = harness_new(harness_with_cert);
    assert_non_null(h);

    struct client *c = client_connect(h, "192.0.2.10");
    expect_reply(c, "220");
    client_send(c, "EHLO client.test\r\n");
    char r[4096];
    client_reply(c, r, sizeof r);
    assert_non_null(strstr(r, "250-STARTTLS\r\n"));
    /* A man in the middle appends a command after STARTTLS in the clear. */
    client_send(c, "STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n");
    expect_reply(c, "220 2.0.0");
    assert_int_equal(c->inlen, 0);
    assert_int_equal(client_start_tls(c), 0);
    /* The injected MAIL was dropped: EHLO is answered, and MAIL is not nested. */
    client_send(c, "EHLO client.test\r\n");
    client_reply(c, r, sizeof r);
    assert_memory_equal(r, "250-mx.lifeboat.test", 20);
    assert_null(strstr(r, "STARTTLS")); /* not offered twice */
    client_send(c, "STARTTLS\r\n");
    expect_reply(c, "503 5.5.1");
    client_send(c, "MAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\nsecret\r\n.\r\nQUIT\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    expect_reply(c, "250 2.0.0 Ok: queued");
    expect_reply(c, "221");
    assert_int_equal(h->fake.nmsgs, 1);
    assert_non_null(strstr(h->fake.msgs[0].prefix, " with ESMTPS id "));
    client_free(c);

    /* A 4 MB message through TLS, sent faster than it is read. */
    c = client_connect(h, "192.0.2.10");
    expect_reply(c, "220");
    client_send(c, "STARTTLS\r\n");
    expect_reply(c, "220");
    assert_int_equal(client_start_tls(c), 0);
    client_send(c, "EHLO big.test\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n");
    expect_reply(c, "250-");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    size_t big_len = 41943 * 100; /* 4 MB of 100-octet lines */
    char *big = malloc(big_len + 8);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
    big[big_len - 100] = big[big_len - 99] = '.'; /* a stuffed dot, to be removed */
    memcpy(big + big_len, ".\r\n", 4);
    client_send_n(c, big, big_len + 3);
    expect_reply(c, "250 2.0.0 Ok: queued");
    assert_int_equal(h->fake.nmsgs, 2);
    assert_int_equal(h->fake.msgs[1].body_len, big_len - 1);
    free(big);
    client_send(c, "QUIT\r\n");
    expect_reply(c, "221");
    client_free(c);
    c = NULL;
    pump_for(h, 50);
    assert_int_equal(h->fake.nmsgs, 2);
    assert_non_null(strstr(h->fake.msgs[0].prefix, "(using TLSv1.3 with cipher "));
    assert_string_equal(h->fake.msgs[0].sender, "a@a.test");
    pump_for(h, 100);
    assert_int_equal(smtpd_session_count(h->srv), 0);

    /* Garbage instead of a handshake: the session just ends. */
    c = client_connect(h, "192.0.2.10");
    expect_reply(c, "220");
    client_send(c, "STARTTLS\r\n");
    expect_reply(c, "220");
    client_send(c, "EHLO this is not TLS\r\n");
    assert_true(client_wait_eof(c, 3000));
    client_free(c);
    pump_for(h, 20);
    assert_int_equal(smtpd_session_count(h->srv), 0);

    /* Reload: a bad certificate is refused and the old one kept. */
    struct config cfg = h->cfg;
    snprintf(cfg.tls_cert_file, sizeof cfg.tls_cert_file, "%s/missing.pem", dir);
    assert_int_equal(smtpd_reload(h->srv, &cfg), -1);
    assert_non_null(h->srv->tls);
    cfg.tls_cert_file[0] = '\0';
    assert_int_equal(smtpd_reload(h->srv, &cfg), 0);
    assert_null(h->srv->tls);
    harness_free(h);
    unlink(harness_cert_path);
    rmdir(dir);
}

/* ------------------------------------------------------------------ listeners */

static void test_real_listener(void **state)
{
    (void)state;
    /* Find a free port, then let smtpd_start bind it (IPv4 and, if present, IPv6 loopback). */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(probe, (struct sockaddr *)&sa, &sl);
    close(probe);
    struct event_base *base = event_base_new();
    struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof cfg.hostname, "mx.lifeboat.test");
    cfg.smtp_listen.count = 1;
    snprintf(cfg.smtp_listen.addr[0].host, sizeof cfg.smtp_listen.addr[0].host, "127.0.0.1");
    snprintf(cfg.smtp_listen.addr[0].port, sizeof cfg.smtp_listen.addr[0].port, "%d", ntohs(sa.sin_port));
    struct smtpd_deps deps = {0};
    char err[512];
    struct smtpd *s = smtpd_start(base, &cfg, &deps, err, sizeof err);
    assert_non_null(s);
    /* The same port again: refused with a clear error. */
    struct smtpd *again = smtpd_start(base, &cfg, &deps, err, sizeof err);
    assert_null(again);
    assert_non_null(strstr(err, "cannot listen on [127.0.0.1]"));

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char buf[256] = "";
    size_t got = 0;
    for (int i = 0; i < 2000 && !memchr(buf, '\n', got); i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n > 0)
            got += (size_t)n;
        usleep(1000);
    }
    buf[got] = '\0';
    assert_string_equal(buf, "220 mx.lifeboat.test ESMTP lifeboat\r\n");
    assert_int_equal(smtpd_session_count(s), 1);
    smtpd_stop_accepting(s);
    close(fd);
    for (int i = 0; i < 50; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(smtpd_session_count(s), 0);
    smtpd_free(s);
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init("test_smtpd_session", "mx.lifeboat.test", 1);
    if (!getenv("LB_TEST_VERBOSE"))
        log_set_level(LOG_LEVEL_ERR + 1);
    if (getenv("LB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("LB_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_as_own_customer_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_errors, setup, teardown),
        cmocka_unit_test(test_too_many_recipients),
        cmocka_unit_test_setup_teardown(test_two_thousand_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smuggling_refused, setup, teardown),
        cmocka_unit_test(test_smuggling_fixed),
        cmocka_unit_test_setup_teardown(test_header_control_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_and_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test_setup_teardown(test_queue_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_while_storing, setup, teardown),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test_setup_teardown(test_output_bounded, setup, teardown),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_real_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
