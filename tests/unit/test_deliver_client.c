/*
 * test_deliver_client.c — the SMTP client's protocol state machine, driven by
 * strings: what it writes for each server reply, which extensions it uses, how
 * each reply decides each recipient, and the server-level / per-recipient
 * classification the continuity engine will rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "deliver/smtp_client.h"

struct wire {
    char buf[8192];
    size_t len;
};

static void wire_write(void *arg, const char *data, size_t len)
{
    struct wire *w = arg;
    assert_true(w->len + len < sizeof w->buf);
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    w->buf[w->len] = '\0';
}

/* What the client wrote since the last call, as a string (then forgotten). */
static const char *sent(struct wire *w)
{
    static char copy[8192];
    memcpy(copy, w->buf, w->len + 1);
    w->len = 0;
    w->buf[0] = '\0';
    return copy;
}

static enum smtpc_action feed(struct smtpc *c, const char *reply)
{
    struct smtp_reply r;
    size_t used;
    assert_int_equal(smtp_reply_parse(reply, strlen(reply), &r, &used), SMTP_REPLY_DONE);
    assert_int_equal(used, strlen(reply));
    return smtpc_reply(c, &r);
}

#define EHLO_FULL                                                                                  \
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"            \
    "250 ENHANCEDSTATUSCODES\r\n"

/* Brings a session to READY with the given EHLO reply. */
static void to_ready(struct smtpc *c, struct wire *w, int tls, const char *ehlo)
{
    w->len = 0;
    smtpc_init(c, "lifeboat.test", tls, wire_write, w);
    assert_int_equal(feed(c, "220 mx.test ESMTP\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(w), "EHLO lifeboat.test\r\n");
    assert_int_equal(feed(c, ehlo), SMTPC_READY);
    assert_string_equal(sent(w), "");
}

static void test_ehlo_parse(void **state)
{
    (void)state;
    struct smtp_reply r;
    size_t used;
    const char *s = "250-mx.test hi\r\n250-pipelining\r\n250-SIZE 52428800\r\n250-STARTTLS\r\n"
                    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n";
    assert_int_equal(smtp_reply_parse(s, strlen(s), &r, &used), SMTP_REPLY_DONE);
    struct smtpc_ext e;
    smtpc_parse_ehlo(&r, &e);
    assert_true(e.pipelining && e.starttls && e.eightbitmime && e.smtputf8 && e.chunking &&
                e.enhancedstatuscodes && e.size);
    assert_int_equal(e.size_max, 52428800);

    /* The greeting line is not an extension; SIZE without a number means no limit. */
    s = "250-PIPELINING\r\n250 SIZE\r\n";
    assert_int_equal(smtp_reply_parse(s, strlen(s), &r, &used), SMTP_REPLY_DONE);
    smtpc_parse_ehlo(&r, &e);
    assert_false(e.pipelining);
    assert_true(e.size);
    assert_int_equal(e.size_max, 0);
}

/* Pipelined: MAIL and every RCPT in one write; DATA after the RCPT replies. */
static void test_pipelined_success(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);

    const char *rcpts[] = {"a@acme.test", "b@acme.test", "c@acme.test"};
    struct smtpc_outcome out[3];
    struct smtpc_txn t = {
        .sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 3, .size = 500, .body_8bit = 1, .out = out};
    assert_int_equal(smtpc_begin(&c, &t), SMTPC_WAIT);
    assert_string_equal(sent(&w),
                        "MAIL FROM:<s@ex.org> SIZE=500 BODY=8BITMIME\r\n"
                        "RCPT TO:<a@acme.test>\r\nRCPT TO:<b@acme.test>\r\nRCPT TO:<c@acme.test>\r\n");
    assert_int_equal(feed(&c, "250 2.1.0 Ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "250 2.1.5 Ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "550 5.1.1 <b@acme.test>: unknown\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "");
    assert_int_equal(feed(&c, "450 4.2.0 <c@acme.test>: greylisted\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "DATA\r\n");
    assert_int_equal(feed(&c, "354 go ahead\r\n"), SMTPC_SEND_BODY);
    assert_int_equal(feed(&c, "250 2.0.0 Ok: queued as 123\r\n"), SMTPC_TXN_DONE);

    assert_int_equal(out[0].result, SMTPC_OK);
    assert_string_equal(out[0].text, "250 2.0.0 Ok: queued as 123");
    assert_string_equal(out[0].dsn, "2.0.0");
    assert_int_equal(out[0].step, SMTPC_STEP_DOT);
    assert_int_equal(out[1].result, SMTPC_PERM);
    assert_string_equal(out[1].dsn, "5.1.1");
    assert_int_equal(out[1].step, SMTPC_STEP_RCPT);
    assert_true(out[1].from_server);
    assert_int_equal(out[2].result, SMTPC_TEMP);
    assert_string_equal(out[2].dsn, "4.2.0");
    assert_false(t.server_level); /* one 4xx among accepted recipients is per-recipient */

    /* Connection reuse: the next transaction starts with RSET, still pipelined. */
    const char *r2[] = {"d@acme.test"};
    struct smtpc_outcome o2[1];
    struct smtpc_txn t2 = {.sender = "", .rcpts = r2, .nrcpt = 1, .size = 10, .out = o2};
    assert_int_equal(smtpc_begin(&c, &t2), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RSET\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<d@acme.test>\r\n");
    assert_int_equal(feed(&c, "250 Ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "250 Ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "250 Ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "DATA\r\n");
    assert_int_equal(feed(&c, "354 go\r\n"), SMTPC_SEND_BODY);
    assert_int_equal(feed(&c, "250 Ok\r\n"), SMTPC_TXN_DONE);
    assert_int_equal(o2[0].result, SMTPC_OK);
    assert_string_equal(o2[0].dsn, "2.0.0");

    smtpc_quit(&c);
    assert_string_equal(sent(&w), "QUIT\r\n");
    assert_int_equal(feed(&c, "221 bye\r\n"), SMTPC_CLOSED);
}

/* Without PIPELINING every command waits for the previous reply. */
static void test_lockstep(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, "250-mx.test\r\n250 8BITMIME\r\n");

    const char *rcpts[] = {"a@x.test", "b@x.test"};
    struct smtpc_outcome out[2];
    struct smtpc_txn t = {.sender = "s@y.test", .rcpts = rcpts, .nrcpt = 2, .size = 1, .out = out};
    assert_int_equal(smtpc_begin(&c, &t), SMTPC_WAIT);
    assert_string_equal(sent(&w), "MAIL FROM:<s@y.test>\r\n"); /* no SIZE: not offered; 7-bit */
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RCPT TO:<a@x.test>\r\n");
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RCPT TO:<b@x.test>\r\n");
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "DATA\r\n");
    assert_int_equal(feed(&c, "354 go\r\n"), SMTPC_SEND_BODY);
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_TXN_DONE);
    assert_int_equal(out[0].result, SMTPC_OK);
    assert_int_equal(out[1].result, SMTPC_OK);

    /* Second transaction: RSET alone first. */
    struct smtpc_txn t2 = {.sender = "s@y.test", .rcpts = rcpts, .nrcpt = 1, .size = 1, .out = out};
    assert_int_equal(smtpc_begin(&c, &t2), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RSET\r\n");
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "MAIL FROM:<s@y.test>\r\n");
}

/* A 4xx for every RCPT is a server-level failure; no DATA is sent. */
static void test_all_rcpts_temp_is_server_level(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"a@acme.test", "b@acme.test"};
    struct smtpc_outcome out[2];
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    sent(&w);
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "450 4.3.2 defer\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "450 4.3.2 defer\r\n"), SMTPC_TXN_DONE);
    assert_string_equal(sent(&w), "");
    assert_true(t.server_level);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_int_equal(out[1].result, SMTPC_TEMP);

    /* 4xx and 5xx mixed, nothing accepted: per-recipient. */
    struct smtpc_txn t2 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t2);
    sent(&w);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    feed(&c, "450 4.3.2 defer\r\n");
    assert_int_equal(feed(&c, "550 5.1.1 unknown\r\n"), SMTPC_TXN_DONE);
    assert_false(t2.server_level);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_int_equal(out[1].result, SMTPC_PERM);
}

/* A continuity probe: MAIL FROM:<>, RCPT, then RSET instead of DATA; the
 * accepted recipient stays accepted. Then a probe that is deferred, and one on
 * a server without PIPELINING. */
static void test_probe(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"alice@acme.test"};
    struct smtpc_outcome out[1];
    struct smtpc_txn t = {.sender = "", .rcpts = rcpts, .nrcpt = 1, .probe = 1, .out = out};
    assert_int_equal(smtpc_begin(&c, &t), SMTPC_WAIT);
    assert_string_equal(sent(&w), "MAIL FROM:<> SIZE=0\r\nRCPT TO:<alice@acme.test>\r\n");
    assert_int_equal(feed(&c, "250 2.1.0 Ok\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "250 2.1.5 Ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RSET\r\n");
    assert_int_equal(feed(&c, "250 2.0.0 Ok\r\n"), SMTPC_TXN_DONE);
    assert_int_equal(out[0].result, SMTPC_ACCEPTED);
    assert_string_equal(out[0].text, "250 2.1.5 Ok");
    assert_false(t.server_level);
    smtpc_quit(&c);
    assert_string_equal(sent(&w), "QUIT\r\n");

    /* Deferred at RCPT: server-level, and still RSET before the end. */
    to_ready(&c, &w, 0, EHLO_FULL);
    struct smtpc_txn t2 = {.sender = "", .rcpts = rcpts, .nrcpt = 1, .probe = 1, .out = out};
    smtpc_begin(&c, &t2);
    sent(&w);
    feed(&c, "250 2.1.0 Ok\r\n");
    assert_int_equal(feed(&c, "451 4.3.0 database down\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "RSET\r\n");
    assert_int_equal(feed(&c, "250 2.0.0 Ok\r\n"), SMTPC_TXN_DONE);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_true(t2.server_level);

    /* Lock-step server: one command at a time, same conversation. */
    to_ready(&c, &w, 0, "250 mx.test\r\n");
    struct smtpc_txn t3 = {.sender = "", .rcpts = rcpts, .nrcpt = 1, .probe = 1, .out = out};
    smtpc_begin(&c, &t3);
    assert_string_equal(sent(&w), "MAIL FROM:<>\r\n");
    feed(&c, "250 ok\r\n");
    assert_string_equal(sent(&w), "RCPT TO:<alice@acme.test>\r\n");
    feed(&c, "250 ok\r\n");
    assert_string_equal(sent(&w), "RSET\r\n");
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_TXN_DONE);
    assert_int_equal(out[0].result, SMTPC_ACCEPTED);
    /* A real transaction after it starts with RSET, as on any reused connection. */
    struct smtpc_outcome out2[1];
    struct smtpc_txn t4 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 1, .size = 3, .out = out2};
    smtpc_begin(&c, &t4);
    assert_string_equal(sent(&w), "RSET\r\n");
}

/* MAIL refused: every recipient gets that reply; pipelined RCPT replies are swallowed. */
static void test_mail_refused(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"a@acme.test", "b@acme.test"};
    struct smtpc_outcome out[2];
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    sent(&w);
    assert_int_equal(feed(&c, "451 4.3.0 busy\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "503 5.5.1 need MAIL\r\n"), SMTPC_WAIT);
    assert_int_equal(feed(&c, "503 5.5.1 need MAIL\r\n"), SMTPC_TXN_DONE);
    assert_true(t.server_level);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(out[i].result, SMTPC_TEMP);
        assert_int_equal(out[i].step, SMTPC_STEP_MAIL);
        assert_string_equal(out[i].text, "451 4.3.0 busy");
    }

    /* 5xx to MAIL, lock-step: a permanent, message-level failure. */
    to_ready(&c, &w, 0, "250 mx.test\r\n");
    struct smtpc_txn t2 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t2);
    assert_string_equal(sent(&w), "MAIL FROM:<s@ex.org>\r\n");
    assert_int_equal(feed(&c, "553 5.7.1 sender rejected\r\n"), SMTPC_TXN_DONE);
    assert_false(t2.server_level);
    assert_int_equal(out[0].result, SMTPC_PERM);
    assert_int_equal(out[1].result, SMTPC_PERM);
    assert_string_equal(out[1].dsn, "5.7.1");
}

/* DATA and end-of-data failures apply to the accepted recipients only. */
static void test_data_failures(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    const char *rcpts[] = {"a@acme.test", "b@acme.test"};
    struct smtpc_outcome out[2];

    to_ready(&c, &w, 0, EHLO_FULL);
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    feed(&c, "550 5.1.1 no\r\n");
    assert_int_equal(feed(&c, "451 4.3.0 no DATA now\r\n"), SMTPC_TXN_DONE);
    assert_true(t.server_level);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_int_equal(out[0].step, SMTPC_STEP_DATA);
    assert_int_equal(out[1].result, SMTPC_PERM);

    struct smtpc_txn t2 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t2);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    assert_int_equal(feed(&c, "354 go\r\n"), SMTPC_SEND_BODY);
    assert_int_equal(feed(&c, "554 5.6.0 content rejected\r\n"), SMTPC_TXN_DONE);
    assert_false(t2.server_level);
    assert_int_equal(out[0].result, SMTPC_PERM);
    assert_int_equal(out[0].step, SMTPC_STEP_DOT);
    assert_int_equal(out[1].result, SMTPC_PERM);
}

/* 421 anywhere ends the session: server-level, no QUIT. */
static void test_421_mid_transaction(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"a@acme.test", "b@acme.test"};
    struct smtpc_outcome out[2];
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    sent(&w);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    assert_int_equal(feed(&c, "421 4.4.2 shutting down\r\n"), SMTPC_FAILED);
    assert_string_equal(sent(&w), "");
    assert_true(t.server_level);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_int_equal(out[1].result, SMTPC_TEMP);
    assert_string_equal(out[0].text, "421 4.4.2 shutting down");
    assert_int_equal(smtpc_failure(&c)->code, 421);
}

/* Greeting and EHLO failures happen before READY: the driver tries the next host. */
static void test_greeting_and_ehlo(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};

    smtpc_init(&c, "lb.test", 0, wire_write, &w);
    assert_int_equal(feed(&c, "421 4.3.2 too busy\r\n"), SMTPC_FAILED);
    assert_string_equal(sent(&w), "");
    assert_false(c.ready_once);
    assert_int_equal(smtpc_failure(&c)->step, SMTPC_STEP_GREETING);
    assert_string_equal(smtpc_failure(&c)->dsn, "4.3.2");

    smtpc_init(&c, "lb.test", 0, wire_write, &w);
    assert_int_equal(feed(&c, "554 no service\r\n"), SMTPC_FAILED);
    assert_string_equal(sent(&w), "QUIT\r\n");

    /* EHLO unknown: HELO, and no extensions at all. */
    smtpc_init(&c, "lb.test", 1, wire_write, &w);
    feed(&c, "220 old\r\n");
    sent(&w);
    assert_int_equal(feed(&c, "502 what?\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "HELO lb.test\r\n");
    assert_int_equal(feed(&c, "250 old\r\n"), SMTPC_READY);
    assert_true(c.ready_once);
    assert_false(c.ext.pipelining);

    smtpc_init(&c, "lb.test", 0, wire_write, &w);
    feed(&c, "220 x\r\n");
    assert_int_equal(feed(&c, "451 4.3.0 later\r\n"), SMTPC_FAILED);
}

/* STARTTLS when offered and allowed; EHLO again afterwards; refusal means plain text. */
static void test_starttls(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    smtpc_init(&c, "lb.test", 1, wire_write, &w);
    feed(&c, "220 x\r\n");
    sent(&w);
    assert_int_equal(feed(&c, "250-x\r\n250-STARTTLS\r\n250 PIPELINING\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "STARTTLS\r\n");
    assert_int_equal(feed(&c, "220 2.0.0 go ahead\r\n"), SMTPC_STARTTLS);
    assert_int_equal(smtpc_tls_done(&c), SMTPC_WAIT);
    assert_true(c.tls_active);
    assert_false(c.ext.pipelining); /* forgotten until the new EHLO */
    assert_string_equal(sent(&w), "EHLO lb.test\r\n");
    /* After TLS the server still offers STARTTLS (some do): not again. */
    assert_int_equal(feed(&c, "250-x\r\n250-STARTTLS\r\n250 PIPELINING\r\n"), SMTPC_READY);
    assert_true(c.ext.pipelining);

    /* Not allowed (fallback after a failed handshake): no STARTTLS. */
    smtpc_init(&c, "lb.test", 0, wire_write, &w);
    feed(&c, "220 x\r\n");
    sent(&w);
    assert_int_equal(feed(&c, "250-x\r\n250 STARTTLS\r\n"), SMTPC_READY);
    assert_string_equal(sent(&w), "");

    /* Refused: continue without. */
    smtpc_init(&c, "lb.test", 1, wire_write, &w);
    feed(&c, "220 x\r\n");
    feed(&c, "250-x\r\n250 STARTTLS\r\n");
    sent(&w);
    assert_int_equal(feed(&c, "454 4.7.0 TLS not available\r\n"), SMTPC_READY);
    assert_false(c.tls_active);
}

/* Decisions made without the server. */
static void test_local_decisions(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    const char *rcpts[] = {"a@acme.test", "bad\r\nRCPT TO:<x@evil>"};
    struct smtpc_outcome out[2];

    /* Over the server's SIZE: bounce without trying. */
    to_ready(&c, &w, 0, EHLO_FULL); /* SIZE 1000 */
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 1, .size = 1001, .out = out};
    assert_int_equal(smtpc_begin(&c, &t), SMTPC_TXN_DONE);
    assert_string_equal(sent(&w), "");
    assert_int_equal(out[0].result, SMTPC_PERM);
    assert_string_equal(out[0].dsn, "5.3.4");
    assert_false(out[0].from_server);

    /* A recipient that would inject a command never reaches the wire. */
    struct smtpc_txn t2 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 2, .size = 10, .out = out};
    assert_int_equal(smtpc_begin(&c, &t2), SMTPC_WAIT);
    assert_string_equal(sent(&w), "MAIL FROM:<s@ex.org> SIZE=10\r\nRCPT TO:<a@acme.test>\r\n");
    assert_int_equal(out[1].result, SMTPC_PERM);
    assert_string_equal(out[1].dsn, "5.1.3");
    feed(&c, "250 ok\r\n");
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_WAIT);
    assert_string_equal(sent(&w), "DATA\r\n");

    /* UTF-8 addresses need SMTPUTF8: used when offered, bounce when not. */
    const char *utf8[] = {"j\xc3\xbcrgen@acme.test"};
    to_ready(&c, &w, 0, EHLO_FULL);
    struct smtpc_txn t3 = {.sender = "s@ex.org", .rcpts = utf8, .nrcpt = 1, .size = 10, .out = out};
    assert_int_equal(smtpc_begin(&c, &t3), SMTPC_WAIT);
    assert_string_equal(sent(&w),
                        "MAIL FROM:<s@ex.org> SIZE=10 SMTPUTF8\r\nRCPT TO:<j\xc3\xbcrgen@acme.test>\r\n");
    to_ready(&c, &w, 0, "250-x\r\n250 PIPELINING\r\n");
    struct smtpc_txn t4 = {.sender = "s@ex.org", .rcpts = utf8, .nrcpt = 1, .size = 10, .out = out};
    assert_int_equal(smtpc_begin(&c, &t4), SMTPC_TXN_DONE);
    assert_int_equal(out[0].result, SMTPC_PERM);
    assert_string_equal(out[0].dsn, "5.6.7");
}

/* The connection dies in the middle: everything open fails temporarily. */
static void test_lost_connection(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"a@acme.test", "b@acme.test", "c@acme.test"};
    struct smtpc_outcome out[3];
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 3, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    feed(&c, "550 5.1.1 no\r\n");
    feed(&c, "250 ok\r\n");
    assert_int_equal(feed(&c, "354 go\r\n"), SMTPC_SEND_BODY);
    smtpc_lost(&c, "4.4.2", "lost connection with mx.test[192.0.2.1] while sending end of data");
    assert_true(t.server_level);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_string_equal(out[0].dsn, "4.4.2");
    assert_int_equal(out[1].result, SMTPC_PERM); /* decided before: stays */
    assert_int_equal(out[2].result, SMTPC_TEMP);
    assert_int_equal(smtpc_failure(&c)->step, SMTPC_STEP_DOT);
}

/* Replies that make no sense where they come are a protocol error, never a success. */
static void test_out_of_step(void **state)
{
    (void)state;
    struct smtpc c;
    struct wire w = {0};
    to_ready(&c, &w, 0, EHLO_FULL);
    /* Unsolicited reply while idle. */
    assert_int_equal(feed(&c, "250 surprise\r\n"), SMTPC_FAILED);

    to_ready(&c, &w, 0, EHLO_FULL);
    const char *rcpts[] = {"a@acme.test"};
    struct smtpc_outcome out[1];
    struct smtpc_txn t = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 1, .size = 5, .out = out};
    smtpc_begin(&c, &t);
    feed(&c, "250 ok\r\n");
    feed(&c, "250 ok\r\n");
    /* 250 to DATA instead of 354: we must not believe the message was taken. */
    assert_int_equal(feed(&c, "250 ok\r\n"), SMTPC_FAILED);
    assert_int_equal(out[0].result, SMTPC_TEMP);
    assert_true(t.server_level);

    /* A reused session whose RSET fails: nothing was tried. */
    to_ready(&c, &w, 0, EHLO_FULL);
    struct smtpc_txn t1 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 1, .size = 5, .out = out};
    smtpc_begin(&c, &t1);
    feed(&c, "250 ok\r\n");
    feed(&c, "550 no\r\n");
    struct smtpc_txn t2 = {.sender = "s@ex.org", .rcpts = rcpts, .nrcpt = 1, .size = 5, .out = out};
    smtpc_begin(&c, &t2);
    assert_int_equal(feed(&c, "421 4.4.2 timeout\r\n"), SMTPC_FAILED);
    assert_true(t2.untried);
    assert_int_equal(out[0].result, SMTPC_TEMP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ehlo_parse),
        cmocka_unit_test(test_pipelined_success),
        cmocka_unit_test(test_lockstep),
        cmocka_unit_test(test_all_rcpts_temp_is_server_level),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_data_failures),
        cmocka_unit_test(test_421_mid_transaction),
        cmocka_unit_test(test_greeting_and_ehlo),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_local_decisions),
        cmocka_unit_test(test_lost_connection),
        cmocka_unit_test(test_out_of_step),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
