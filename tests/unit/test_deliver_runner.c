/*
 * test_deliver_runner.c — the whole delivery engine on a real store: messages
 * enter with queue_submit (the group-commit writer, SQLite and blobs in a
 * temporary data_dir), the queue runner picks them up and delivers them to a
 * fake customer server (a hosted domain's route) and a fake "internet" (the
 * outbound relay, where DSNs go). Checked: the recipients' states in the
 * store (sent, bounced, deferred with backoff), the DSN that reaches the
 * sender, no DSN for the null sender, expiry, an unreachable route, connection
 * reuse, `queue flush` from another connection, and delivery_stop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/thread.h>
#include <gmime/gmime.h>

#include "deliver/deliver.h"
#include "directory/directory.h"
#include "fake_smtp.h"
#include "util/log.h"

struct world {
    struct event_base *base;
    char dir[64];
    struct config cfg;
    struct store *st;  /* the loop's read connection */
    struct store *ctl; /* another connection, as lifeboatctl would use */
    struct store_writer *writer;
    struct delivery *d;
    struct fake customer; /* acme.test's own server */
    struct fake internet; /* the outbound relay */
};

#include "test_mail_world.h"

/* Builds everything; route NULL means acme.test's route is the customer fake. */
static struct world *world_new(const char *route, void (*tune)(struct config *))
{
    struct world *w = calloc(1, sizeof *w);
    world_base_init(w, "/tmp/lb-runner-XXXXXX");
    if (tune)
        tune(&w->cfg);

    char err[512];
    assert_int_equal(store_open(&w->cfg, &w->st, err, sizeof err), 0);
    assert_int_equal(store_open(&w->cfg, &w->ctl, err, sizeof err), 0);
    w->writer = store_writer_start(&w->cfg, w->base, err, sizeof err);
    assert_non_null(w->writer);
    world_add_acme(w, route);

    w->d = delivery_start(w->base, &w->cfg, w->st, w->writer, err, sizeof err);
    assert_non_null(w->d);
    return w;
}

static void world_free(struct world *w)
{
    delivery_stop(w->d);
    store_writer_stop(w->writer);
    delivery_free(w->d);
    store_close(w->st);
    store_close(w->ctl);
    world_base_free(w);
    free(w);
}

/* Queues a message for n recipients, as smtpd does (with a Received: line),
 * and kicks the runner. */
static void submit(struct world *w, struct submitted *s, const char *sender, const char *body, int n, ...)
{
    submitted_init(s);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        s->rcpts[i] = va_arg(ap, const char *);
    va_end(ap);
    s->m.sender = sender;
    s->m.nrcpt = (size_t)n;
    s->m.prefix = WORLD_RECEIVED;
    s->m.body = (const unsigned char *)body;
    s->m.body_len = strlen(body);
    submit_commit(w, s);
    delivery_kick(w->d);
}

/* Queues one message for one recipient and waits for the commit; no kick. */
static void submit_only(struct world *w, struct submitted *s, const char *sender, const char *body,
                        const char *rcpt)
{
    submitted_init(s);
    s->rcpts[0] = rcpt;
    s->m.sender = sender;
    s->m.nrcpt = 1;
    s->m.prefix = "";
    s->m.body = (const unsigned char *)body;
    s->m.body_len = strlen(body);
    submit_commit(w, s);
}

static int count_msgs(const struct store_msg *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
    return 0;
}

static int queued_messages(struct world *w)
{
    int n = 0;
    assert_int_equal(store_queue_list(w->ctl, count_msgs, &n), STORE_OK);
    return n;
}

static const char BODY[] = "From: Sender <sender@example.org>\r\nTo: ok@acme.test\r\nSubject: hello\r\n\r\n"
                           ".dot line\r\nbody \xc3\xa9\r\n";

/* --------------------------------------------------------------- tests */

static int customer_got_one_and_dsn_sent(struct world *w)
{
    return w->customer.messages == 1 && w->internet.messages == 1 && delivery_idle(w->d);
}

/* One message, three fates: sent, bounced (DSN to the sender), deferred. */
static void test_sent_bounced_deferred(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    struct submitted s;
    int64_t t0 = time_now();
    submit(w, &s, "sender@example.org", BODY, 3, "ok@acme.test", "perm@acme.test", "temp@acme.test");
    assert_true(wait_for(w, customer_got_one_and_dsn_sent, 15));

    /* The customer got prefix + body, unchanged. */
    GString *want = g_string_new(s.m.prefix);
    g_string_append(want, BODY);
    assert_string_equal(w->customer.data->str, want->str);
    g_string_free(want, TRUE);

    struct rcpt_states st;
    const struct store_rcpt *r = rcpt_find(w, &st, s.m.id, "ok@acme.test");
    assert_non_null(r);
    assert_int_equal(r->state, RCPT_SENT);
    r = rcpt_find(w, &st, s.m.id, "perm@acme.test");
    assert_int_equal(r->state, RCPT_BOUNCED);
    assert_non_null(strstr(r->last_reply, "550 5.1.1"));
    r = rcpt_find(w, &st, s.m.id, "temp@acme.test");
    assert_int_equal(r->state, RCPT_QUEUED);
    assert_int_equal(r->attempts, 1);
    assert_true(r->next_attempt >= t0 + 270 && r->next_attempt <= time_now() + 330);
    assert_non_null(strstr(r->last_reply, "450 4.2.0"));
    assert_non_null(strstr(r->last_reply, "(in reply to RCPT TO command)"));

    /* The DSN went out from the null sender to the original sender, and it is done. */
    assert_non_null(strstr(w->internet.log->str, "MAIL FROM:<>"));
    assert_non_null(strstr(w->internet.log->str, "RCPT TO:<sender@example.org>"));
    const char *dsn = w->internet.data->str;
    assert_non_null(strstr(dsn, "multipart/report"));
    assert_non_null(strstr(dsn, "Final-Recipient: rfc822; perm@acme.test"));
    assert_non_null(strstr(dsn, "Status: 5.1.1"));
    assert_non_null(strstr(dsn, "Subject: hello"));
    assert_null(strstr(dsn, "ok@acme.test\r\nAction"));
    assert_int_equal(queued_messages(w), 1); /* the original, for temp@ */
    world_free(w);
}

static int one_delivered_idle(struct world *w)
{
    return w->customer.messages == 1 && delivery_idle(w->d);
}

/* All recipients final: the message leaves the queue. */
static void test_all_sent_releases(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    struct submitted s;
    submit(w, &s, "sender@example.org", BODY, 2, "a@acme.test", "b@acme.test");
    assert_true(wait_for(w, one_delivered_idle, 15));
    struct store_msg m;
    assert_int_equal(store_message_get(w->ctl, s.m.id, &m), STORE_NOTFOUND);
    assert_int_equal(queued_messages(w), 0);
    assert_int_equal(w->internet.messages, 0);
    world_free(w);
}

static int idle_after_customer_answer(struct world *w)
{
    return w->customer.connections > 0 && delivery_idle(w->d) && queued_messages(w) == 0;
}

/* Never a DSN to the null sender. */
static void test_null_sender_no_dsn(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    struct submitted s;
    submit(w, &s, "", BODY, 1, "perm@acme.test");
    assert_true(wait_for(w, idle_after_customer_answer, 15));
    /* Give a DSN every chance to show up: none may. */
    int64_t until = time_mono_ms() + 300;
    while (time_mono_ms() < until)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    assert_int_equal(w->internet.connections, 0);
    assert_int_equal(queued_messages(w), 0);
    world_free(w);
}

static int idle(struct world *w)
{
    return delivery_idle(w->d);
}

/* The route's server is down: both recipients deferred, with the reason. */
static void test_route_down_defers(void **state)
{
    (void)state;
    char dead[8];
    closed_port(dead);
    struct world *w = world_new(dead, NULL);
    struct submitted s;
    submit(w, &s, "sender@example.org", BODY, 2, "a@acme.test", "b@acme.test");
    /* Wait until both carry an attempt. */
    struct rcpt_states st;
    int64_t until = time_mono_ms() + 10000;
    const struct store_rcpt *a = NULL, *b = NULL;
    while (time_mono_ms() < until) {
        wait_for(w, idle, 1);
        a = rcpt_find(w, &st, s.m.id, "a@acme.test");
        if (a && a->attempts == 1)
            break;
    }
    a = rcpt_find(w, &st, s.m.id, "a@acme.test");
    b = rcpt_find(w, &st, s.m.id, "b@acme.test");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->state, RCPT_QUEUED);
    assert_int_equal(a->attempts, 1);
    assert_int_equal(b->attempts, 1);
    assert_true(a->next_attempt > time_now() + 200);
    assert_non_null(strstr(a->last_reply, "Connection refused"));
    assert_int_equal(w->internet.connections, 0); /* deferred, not bounced */
    world_free(w);
}

static void lifetime_zero(struct config *cfg)
{
    cfg->queue_lifetime = 0;
}

static int dsn_arrived(struct world *w)
{
    return w->internet.messages == 1 && delivery_idle(w->d) && queued_messages(w) == 0;
}

/* Past queue_lifetime a temporary failure bounces, with the last reason in the DSN. */
static void test_expired_bounces(void **state)
{
    (void)state;
    char dead[8];
    closed_port(dead);
    struct world *w = world_new(dead, lifetime_zero);
    struct submitted s;
    submit(w, &s, "sender@example.org", BODY, 1, "a@acme.test");
    assert_true(wait_for(w, dsn_arrived, 15));
    const char *dsn = w->internet.data->str;
    assert_non_null(strstr(dsn, "Final-Recipient: rfc822; a@acme.test"));
    assert_non_null(strstr(dsn, "Status: 4.4.1"));
    assert_non_null(strstr(dsn, "delivery period expired"));
    world_free(w);
}

static void one_session(struct config *cfg)
{
    cfg->delivery_concurrency = 1;
}

static int three_delivered(struct world *w)
{
    return w->customer.messages == 3 && delivery_idle(w->d);
}

/* Three messages, one connection: reuse with RSET between them. */
static void test_connection_reuse(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, one_session);
    struct submitted s1, s2, s3;
    submit(w, &s1, "a@example.org", "Subject: 1\r\n\r\n1\r\n", 1, "x@acme.test");
    submit(w, &s2, "b@example.org", "Subject: 2\r\n\r\n2\r\n", 1, "y@acme.test");
    submit(w, &s3, "c@example.org", "Subject: 3\r\n\r\n3\r\n", 1, "z@acme.test");
    assert_true(wait_for(w, three_delivered, 15));
    assert_true(w->customer.connections <= 2);
    if (w->customer.connections == 1) {
        const char *p = w->customer.log->str;
        int rsets = 0;
        while ((p = strstr(p, "RSET"))) {
            rsets++;
            p++;
        }
        assert_int_equal(rsets, 2);
    }
    assert_int_equal(queued_messages(w), 0);
    world_free(w);
}

static void two_sessions(struct config *cfg)
{
    cfg->delivery_concurrency = 2;
}

static int six_delivered(struct world *w)
{
    return w->customer.messages == 6 && delivery_idle(w->d);
}

/* Six messages for one destination at once: never more than delivery_concurrency connections. */
static void test_concurrency_limit(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, two_sessions);
    /* Queue all six before the runner looks, so that it sees them together. */
    delivery_stop(w->d);
    store_writer_stop(w->writer);
    delivery_free(w->d);
    char err[256];
    w->writer = store_writer_start(&w->cfg, w->base, err, sizeof err);
    assert_non_null(w->writer);
    struct submitted s[6];
    for (int i = 0; i < 6; i++) {
        char rcpt[32];
        snprintf(rcpt, sizeof rcpt, "user%d@acme.test", i);
        submit_only(w, &s[i], "a@example.org", "Subject: c\r\n\r\nc\r\n", rcpt);
    }
    w->d = delivery_start(w->base, &w->cfg, w->st, w->writer, err, sizeof err);
    assert_non_null(w->d);
    assert_true(wait_for(w, six_delivered, 15));
    assert_true(w->customer.max_open <= 2);
    assert_true(w->customer.connections <= 2);
    assert_int_equal(queued_messages(w), 0);
    world_free(w);
}

static int attempted_once(struct world *w)
{
    return w->customer.connections >= 1 && delivery_idle(w->d);
}

static int flushed_and_sent(struct world *w)
{
    return w->customer.messages == 1 && delivery_idle(w->d) && queued_messages(w) == 0;
}

/* `lifeboatctl queue flush` from another connection is picked up by the poll. */
static void test_flush_from_elsewhere(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    w->customer.rcpt_all = "451 4.3.0 not now\r\n";
    struct submitted s;
    submit(w, &s, "sender@example.org", BODY, 1, "a@acme.test");
    assert_true(wait_for(w, attempted_once, 10));
    struct rcpt_states st;
    const struct store_rcpt *r = rcpt_find(w, &st, s.m.id, "a@acme.test");
    assert_int_equal(r->attempts, 1);
    assert_true(r->next_attempt > time_now() + 100);

    w->customer.rcpt_all = NULL;
    assert_int_equal(store_queue_flush(w->ctl), STORE_OK);
    assert_true(wait_for(w, flushed_and_sent, 15));
    world_free(w);
}

static int stalled(struct world *w)
{
    return w->customer.connections == 1;
}

/* delivery_stop with a session stuck on a silent server: idle at once, nothing lost. */
static void test_stop_keeps_queue(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    w->customer.greeting = NULL;
    struct submitted s;
    submit(w, &s, "sender@example.org", BODY, 1, "a@acme.test");
    assert_true(wait_for(w, stalled, 10));
    assert_false(delivery_idle(w->d));
    delivery_stop(w->d);
    assert_true(delivery_idle(w->d));
    struct rcpt_states st;
    const struct store_rcpt *r = rcpt_find(w, &st, s.m.id, "a@acme.test");
    assert_int_equal(r->state, RCPT_QUEUED);
    assert_int_equal(r->attempts, 0);
    world_free(w);
}

int main(void)
{
    evthread_use_pthreads();
    log_set_level(getenv("LB_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sent_bounced_deferred), cmocka_unit_test(test_all_sent_releases),
        cmocka_unit_test(test_null_sender_no_dsn),    cmocka_unit_test(test_route_down_defers),
        cmocka_unit_test(test_expired_bounces),       cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_concurrency_limit),     cmocka_unit_test(test_flush_from_elsewhere),
        cmocka_unit_test(test_stop_keeps_queue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    libevent_global_shutdown();
    return rc;
}
