/*
 * test_deliver_session.c — the SMTP client session on a real event loop
 * against an in-process fake server on 127.0.0.1 (ephemeral ports): delivery
 * with pipelining and dot-stuffing, per-recipient 4xx/5xx, dropped
 * connections, silent servers (timeouts), route hosts tried in order,
 * connection reuse with RSET, opportunistic STARTTLS with a real handshake and
 * with a broken one (plain-text fallback), and the outcome callbacks for each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/relay_session.h"

#include "fake_smtp.h"

/* ------------------------------------------------------------ the client */

#define MAXTXN 4

struct run {
    struct event_base *base;
    struct relay_env env;
    struct relay_session *s;
    struct relay_txn *txns[MAXTXN];
    int ntxn, next;
    int txn_done;
    int ready_calls;
    int ended;
    struct relay_end end;
    int tls_seen;
};

static void cb_ready(struct relay_session *s, void *arg)
{
    struct run *r = arg;
    r->ready_calls++;
    r->tls_seen |= relay_session_tls_active(s);
    while (r->next < r->ntxn) {
        int rc = relay_session_send(s, r->txns[r->next++]);
        assert_true(rc == 0 || rc == 1);
        if (rc == 0)
            return;
        r->txn_done++; /* decided at once */
    }
    relay_session_quit(s);
}

static void cb_txn_done(struct relay_session *s, struct relay_txn *t, void *arg)
{
    struct run *r = arg;
    (void)s;
    (void)t;
    r->txn_done++;
}

static void cb_end(struct relay_session *s, const struct relay_end *e, void *arg)
{
    struct run *r = arg;
    (void)s;
    r->ended = 1;
    r->end = *e;
    event_base_loopexit(r->base, NULL);
}

static const struct relay_callbacks callbacks = {cb_ready, cb_txn_done, cb_end};

struct env {
    struct event_base *base;
    struct resolver *resolver;
    SSL_CTX *client_tls;
    SSL_CTX *server_tls;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    e->base = event_base_new();
    char err[256];
    e->resolver = resolver_new(e->base, NULL, err, sizeof err);
    assert_non_null(e->resolver);
    e->client_tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(e->client_tls, SSL_VERIFY_NONE, NULL);
    e->server_tls = server_tls();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    resolver_free(e->resolver);
    SSL_CTX_free(e->client_tls);
    SSL_CTX_free(e->server_tls);
    event_base_free(e->base);
    free(e);
    return 0;
}

static void run_init(struct run *r, struct env *e, unsigned timeout)
{
    memset(r, 0, sizeof *r);
    r->base = e->base;
    r->env.base = e->base;
    r->env.resolver = e->resolver;
    r->env.tls = e->client_tls;
    r->env.helo = "lifeboat.test";
    r->env.timeout = timeout;
    r->env.connect_timeout = timeout;
}

static void target_hosts(struct relay_target *t, int n, ...)
{
    memset(t, 0, sizeof *t);
    t->kind = RELAY_HOSTS;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        snprintf(t->hosts.hosts[i].host, sizeof t->hosts.hosts[i].host, "%s", va_arg(ap, const char *));
        snprintf(t->hosts.hosts[i].port, sizeof t->hosts.hosts[i].port, "%s", va_arg(ap, const char *));
    }
    va_end(ap);
    t->hosts.count = (size_t)n;
}

struct msg {
    struct relay_txn txn;
    const char *rcpts[4];
    struct smtpc_outcome out[4];
};

static void msg_init(struct msg *m, const char *prefix, const char *body, int n, ...)
{
    memset(m, 0, sizeof *m);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        m->rcpts[i] = va_arg(ap, const char *);
    va_end(ap);
    m->txn.prefix = (const unsigned char *)prefix;
    m->txn.prefix_len = strlen(prefix);
    m->txn.body = (const unsigned char *)body;
    m->txn.body_len = strlen(body);
    m->txn.smtp.sender = "sender@example.org";
    m->txn.smtp.rcpts = m->rcpts;
    m->txn.smtp.nrcpt = (size_t)n;
    m->txn.smtp.size = m->txn.prefix_len + m->txn.body_len;
    m->txn.smtp.out = m->out;
}

/* Runs the loop until the session ends (or 20 s, which fails the test). */
static void give_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static void run(struct run *r, const struct relay_target *t)
{
    r->s = relay_session_new(&r->env, t, &callbacks, r);
    assert_non_null(r->s);
    struct event *limit = evtimer_new(r->base, give_up, r->base);
    struct timeval tv = {20, 0};
    evtimer_add(limit, &tv);
    event_base_dispatch(r->base);
    event_free(limit);
    assert_true(r->ended);
}

/* ------------------------------------------------------------------ tests */

static const char PREFIX[] = "Received: from a by b; Fri, 27 Nov 2026 21:53:37 +0000\r\n";
static const char BODY[] =
    "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nmiddle\r\n\xc3\xa9t\xc3\xa9\r\n.";

static void test_delivery_and_recipient_outcomes(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, BODY, 3, "ok@acme.test", "temp@acme.test", "perm@acme.test");
    m.txn.smtp.body_8bit = 1;
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);

    assert_int_equal(r.txn_done, 1);
    assert_int_equal(m.out[0].result, SMTPC_OK);
    assert_string_equal(m.out[0].text, "250 2.0.0 Ok: queued as FAKE");
    assert_int_equal(m.out[1].result, SMTPC_TEMP);
    assert_string_equal(m.out[1].dsn, "4.2.0");
    assert_int_equal(m.out[2].result, SMTPC_PERM);
    assert_string_equal(m.out[2].dsn, "5.1.1");
    assert_false(m.txn.smtp.server_level);

    /* The server got prefix + body exactly (it un-stuffed the dots), with the
     * missing final CRLF added before the terminating dot. */
    GString *want = g_string_new(PREFIX);
    g_string_append(want, BODY);
    g_string_append(want, "\r\n");
    assert_string_equal(f.data->str, want->str);
    g_string_free(want, TRUE);
    assert_non_null(strstr(f.log->str, "MAIL FROM:<sender@example.org> SIZE="));
    assert_non_null(strstr(f.log->str, "BODY=8BITMIME"));
    assert_non_null(strstr(f.log->str, "QUIT"));
    assert_int_equal(f.connections, 1);
    assert_int_equal(r.end.why.result, 0); /* a normal end */
    assert_string_equal(r.end.peer.port, f.port);
    fake_stop(&f);
}

/* A message much larger than the streaming chunks, with dots at every kind of
 * position, arrives intact. */
static void test_large_message(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    GString *body = g_string_new("Subject: big\r\n\r\n");
    for (int i = 0; body->len < 3 * 1024 * 1024; i++)
        g_string_append_printf(body, "%sline %d %s\r\n", i % 7 == 0 ? "." : "", i,
                               i % 5 ? "xxxxxxxxxxxxxxxx" : "");
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, "", body->str, 1, "ok@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_OK);
    assert_int_equal(f.data->len, body->len);
    assert_true(strcmp(f.data->str, body->str) == 0);
    g_string_free(body, TRUE);
    fake_stop(&f);
}

/* Connection reuse: two messages over one connection, RSET between them. */
static void test_connection_reuse(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    struct run r;
    run_init(&r, e, 5);
    struct msg m1, m2;
    msg_init(&m1, PREFIX, "Subject: one\r\n\r\n1\r\n", 1, "a@acme.test");
    msg_init(&m2, PREFIX, "Subject: two\r\n\r\n2\r\n", 2, "b@acme.test", "c@acme.test");
    r.txns[r.ntxn++] = &m1.txn;
    r.txns[r.ntxn++] = &m2.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(r.txn_done, 2);
    assert_int_equal(f.connections, 1);
    assert_int_equal(f.messages, 2);
    assert_int_equal(m1.out[0].result, SMTPC_OK);
    assert_int_equal(m2.out[0].result, SMTPC_OK);
    assert_int_equal(m2.out[1].result, SMTPC_OK);
    const char *rset = strstr(f.log->str, "RSET");
    assert_non_null(rset);
    assert_true(rset > strstr(f.log->str, "MAIL FROM"));
    assert_true(g_str_has_prefix(f.data->str, PREFIX));
    assert_string_equal(f.data->str + strlen(PREFIX), "Subject: two\r\n\r\n2\r\n");
    fake_stop(&f);
}

/* Route hosts in order: refused, then 421 at greeting, then the one that works. */
static void test_hosts_in_order(void **state)
{
    struct env *e = *state;
    struct fake busy, good;
    fake_start(&busy, e->base);
    busy.greeting = "421 4.3.2 too busy\r\n";
    fake_start(&good, e->base);
    char dead[8];
    closed_port(dead);
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, "Subject: x\r\n\r\nx\r\n", 1, "a@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 3, "127.0.0.1", dead, "127.0.0.1", busy.port, "127.0.0.1", good.port);
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_OK);
    assert_int_equal(busy.connections, 1);
    assert_int_equal(good.connections, 1);
    assert_int_equal(good.messages, 1);
    fake_stop(&busy);
    fake_stop(&good);
}

/* Nothing answers: the session ends before ready, with the last reason. */
static void test_all_hosts_fail(void **state)
{
    struct env *e = *state;
    struct fake busy;
    fake_start(&busy, e->base);
    busy.greeting = "421 4.3.2 too busy\r\n";
    char dead[8];
    closed_port(dead);
    struct run r;
    run_init(&r, e, 5);
    struct relay_target t;
    target_hosts(&t, 2, "127.0.0.1", busy.port, "127.0.0.1", dead);
    run(&r, &t);
    assert_int_equal(r.ready_calls, 0);
    assert_false(r.end.reached_ready);
    assert_int_equal(r.end.why.result, SMTPC_TEMP);
    assert_string_equal(r.end.why.dsn, "4.4.1");
    assert_non_null(strstr(r.end.why.text, "Connection refused"));
    assert_non_null(strstr(r.end.why.text, dead));

    /* Only the busy one: its greeting is the reason. */
    run_init(&r, e, 5);
    target_hosts(&t, 1, "127.0.0.1", busy.port);
    run(&r, &t);
    assert_false(r.end.reached_ready);
    assert_non_null(strstr(r.end.why.text, "refused to talk to me: 421 4.3.2 too busy"));
    assert_string_equal(r.end.why.dsn, "4.3.2");
    fake_stop(&busy);
}

/* The server drops the connection after MAIL FROM: server-level temporary failure. */
static void test_dropped_connection(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    f.pipelining = 0;
    f.drop_on = "RCPT";
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, "Subject: x\r\n\r\nx\r\n", 2, "a@acme.test", "b@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(r.txn_done, 1);
    assert_true(m.txn.smtp.server_level);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(m.out[i].result, SMTPC_TEMP);
        assert_non_null(
            strstr(m.out[i].text, "lost connection with 127.0.0.1[127.0.0.1] while sending RCPT TO"));
    }
    assert_true(r.end.reached_ready);
    fake_stop(&f);
}

/* 4xx to DATA and 5xx at the end of data. */
static void test_message_level_failures(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    f.data_reply = "451 4.3.0 no DATA now\r\n";
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, "x\r\n", 1, "a@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_TEMP);
    assert_true(m.txn.smtp.server_level);
    assert_int_equal(m.out[0].step, SMTPC_STEP_DATA);

    f.data_reply = NULL;
    f.dot_reply = "554 5.7.1 spam\r\n";
    run_init(&r, e, 5);
    msg_init(&m, PREFIX, "x\r\n", 1, "a@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_PERM);
    assert_string_equal(m.out[0].text, "554 5.7.1 spam");
    assert_false(m.txn.smtp.server_level);
    fake_stop(&f);
}

/* A server that never greets: the reply timeout ends it. */
static void test_timeout(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    f.greeting = NULL;
    struct run r;
    run_init(&r, e, 1);
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_false(r.end.reached_ready);
    assert_non_null(strstr(r.end.why.text, "timed out while receiving the initial server greeting"));
    assert_string_equal(r.end.why.dsn, "4.4.2");
    fake_stop(&f);
}

/* STARTTLS offered: a real handshake (certificate not verified), EHLO again, delivery. */
static void test_starttls(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    f.tls = TLS_REAL;
    f.ssl_ctx = e->server_tls;
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, BODY, 1, "a@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_OK);
    assert_true(r.tls_seen);
    assert_int_equal(f.tls_sessions, 1);
    assert_int_equal(f.connections, 1);
    /* EHLO, STARTTLS, EHLO again inside TLS. */
    const char *first = strstr(f.log->str, "EHLO");
    assert_non_null(first);
    assert_non_null(strstr(strstr(f.log->str, "STARTTLS"), "EHLO"));
    GString *want = g_string_new(PREFIX);
    g_string_append(want, BODY);
    g_string_append(want, "\r\n");
    assert_string_equal(f.data->str, want->str);
    g_string_free(want, TRUE);
    fake_stop(&f);
}

/* A broken handshake, or data injected after the 220: connect again in plain
 * text and deliver. */
static void starttls_fallback(void **state, int mode)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    f.tls = mode;
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, "Subject: x\r\n\r\nx\r\n", 1, "a@acme.test");
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(m.out[0].result, SMTPC_OK);
    assert_false(r.tls_seen);
    assert_int_equal(f.connections, 2);
    assert_int_equal(f.messages, 1);
    /* One STARTTLS only: the second connection did not try again. */
    const char *st = strstr(f.log->str, "STARTTLS");
    assert_non_null(st);
    assert_null(strstr(st + 1, "STARTTLS"));
    fake_stop(&f);
}

static void test_starttls_broken(void **state)
{
    starttls_fallback(state, TLS_BROKEN);
}

static void test_starttls_injection(void **state)
{
    starttls_fallback(state, TLS_INJECT);
}

/* A message larger than the server's SIZE is bounced without sending it. */
static void test_size_limit(void **state)
{
    struct env *e = *state;
    struct fake f;
    fake_start(&f, e->base);
    struct run r;
    run_init(&r, e, 5);
    struct msg m;
    msg_init(&m, PREFIX, "x\r\n", 1, "a@acme.test");
    m.txn.smtp.size = 200000000; /* the fake announces SIZE 100000000 */
    r.txns[r.ntxn++] = &m.txn;
    struct relay_target t;
    target_hosts(&t, 1, "127.0.0.1", f.port);
    run(&r, &t);
    assert_int_equal(r.txn_done, 1);
    assert_int_equal(m.out[0].result, SMTPC_PERM);
    assert_string_equal(m.out[0].dsn, "5.3.4");
    assert_null(strstr(f.log->str, "MAIL FROM"));
    fake_stop(&f);
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery_and_recipient_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_hosts_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_level_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    libevent_global_shutdown();
    return rc;
}
