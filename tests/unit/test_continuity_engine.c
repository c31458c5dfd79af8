/*
 * test_continuity_engine.c — the continuity engine in-process, on a real store
 * (SQLite and blobs in a temporary data_dir, the group-commit writer), with the
 * delivery engine and a fake customer server (fake_smtp.h) on one event loop,
 * a fake "internet" relay where the admins' alerts go, and a small HTTP server
 * (evhttp) for the webhook. Checked through the store, as lifeboatctl sees it:
 *
 *   - a refused connection: outage, the copy in the user's INBOX (an alias
 *     too, one entry), unknown and inactive users' copies deferred, the event,
 *     the admins' mail and the webhook's JSON;
 *   - a 421 greeting: outage; then new mail is diverted without a connection;
 *   - a 4xx for one recipient only: that copy diverted, the domain normal;
 *   - not retroactive: a message deferred before enabling stays queued;
 *   - a probe that fails, then passes: recovering, the drain re-delivers
 *     every waiting entry exactly once, oldest first (a deleted one never; a
 *     sent copy to its sender with X-Lifeboat-Sent), then normal;
 *   - a fault while draining: back to outage, then recovered;
 *   - a restart in the middle of the drain: it resumes, no duplicates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/http.h>
#include <event2/thread.h>
#include <gmime/gmime.h>
#include <jansson.h>

#include "continuity/continuity.h"
#include "directory/directory.h"
#include "fake_smtp.h"
#include "store/blob.h"
#include "util/log.h"

struct world {
    struct event_base *base;
    char dir[64];
    struct config cfg;
    struct store *st;  /* the loop's read connection */
    struct store *ctl; /* another connection, as lifeboatctl would use */
    struct store_writer *writer;
    struct delivery *d;
    struct continuity *c;
    struct fake customer; /* acme.test's own server */
    struct fake internet; /* the outbound relay: the admins' alerts */
    struct evhttp *http;
    char http_port[8];
    GPtrArray *hooks; /* webhook bodies received (char *) */
    int64_t acme;     /* domain id */
};

#include "test_mail_world.h"

static void on_hook(struct evhttp_request *req, void *arg)
{
    struct world *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *body = g_malloc0(n + 1);
    evbuffer_remove(in, body, n);
    g_ptr_array_add(w->hooks, body);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void engines_start(struct world *w)
{
    char err[512];
    assert_int_equal(store_open(&w->cfg, &w->st, err, sizeof err), 0);
    w->writer = store_writer_start(&w->cfg, w->base, err, sizeof err);
    assert_non_null(w->writer);
    w->d = delivery_start(w->base, &w->cfg, w->st, w->writer, err, sizeof err);
    assert_non_null(w->d);
    w->c = continuity_start(w->base, &w->cfg, w->st, w->writer, w->d, err, sizeof err);
    if (!w->c)
        fail_msg("continuity_start: %s", err);
}

/* As lifeboatd shuts down: stop, let what is under way finish, then free. */
static void engines_stop(struct world *w)
{
    continuity_stop(w->c);
    delivery_stop(w->d);
    int64_t until = time_mono_ms() + 5000;
    while ((!continuity_idle(w->c) || !delivery_idle(w->d)) && time_mono_ms() < until)
        event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    store_writer_stop(w->writer);
    continuity_free(w->c);
    delivery_free(w->d);
    store_close(w->st);
}

static void tune_default(struct config *cfg)
{
    cfg->dr_probe_interval = 1;
    cfg->drain_concurrency = 2;
    cfg->drain_rate = 0;
}

/* acme.test, continuity enabled since a minute ago, its route the customer
 * fake (or the given port); users alice (alias al@), carol, admin (alt
 * address admin@example.org), bob (not activated). */
static struct world *world_new(const char *route_port, void (*tune)(struct config *))
{
    struct world *w = calloc(1, sizeof *w);
    world_base_init(w, "/tmp/lb-cont-XXXXXX");
    w->hooks = g_ptr_array_new_with_free_func(g_free);
    w->http = evhttp_new(w->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(w->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
    snprintf(w->http_port, sizeof w->http_port, "%d", ntohs(sin.sin_port));
    evhttp_set_cb(w->http, "/hook", on_hook, w);

    tune_default(&w->cfg);
    if (tune)
        tune(&w->cfg);

    char err[512];
    assert_int_equal(store_open(&w->cfg, &w->ctl, err, sizeof err), 0);
    world_add_acme(w, route_port);
    assert_int_equal(directory_user_add(w->ctl, "alice@acme.test", "Alice", "user", NULL, 1, err, sizeof err), 0);
    assert_int_equal(directory_user_add(w->ctl, "carol@acme.test", "Carol", "user", NULL, 1, err, sizeof err), 0);
    assert_int_equal(directory_user_add(w->ctl, "tempo@acme.test", "Tempo", "user", NULL, 1, err, sizeof err), 0);
    assert_int_equal(directory_user_add(w->ctl, "bob@acme.test", "Bob", "user", NULL, 0, err, sizeof err), 0);
    assert_int_equal(directory_user_add(w->ctl, "admin@acme.test", "Admin", "admin", NULL, 1, err, sizeof err), 0);
    assert_int_equal(directory_alias_add(w->ctl, "alice@acme.test", "al@acme.test", err, sizeof err), 0);
    struct directory_user_changes uc = {.active = -1, .suspended = -1, .alt_email = "admin@example.org"};
    assert_int_equal(directory_user_set(w->ctl, "admin@acme.test", &uc, err, sizeof err), 0);
    char hook[128];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%s/hook?token=secret", w->http_port);
    struct directory_domain_changes dc = {.recipient_check = -1, .webhook = hook};
    assert_int_equal(directory_domain_set(w->ctl, "acme.test", &dc, err, sizeof err), 0);
    struct store_domain dom;
    assert_int_equal(store_domain_get(w->ctl, "acme.test", &dom), STORE_OK);
    w->acme = dom.id;
    assert_int_equal(store_domain_set_continuity(w->ctl, w->acme, 1, 0, time_now() - 60), STORE_OK);

    engines_start(w);
    return w;
}

static void world_free(struct world *w)
{
    engines_stop(w);
    store_close(w->ctl);
    evhttp_free(w->http);
    g_ptr_array_free(w->hooks, TRUE);
    world_base_free(w);
    free(w);
}

/* ------------------------------------------------------------ messages */

/* Queues a message as smtpd does (through the writer) and kicks the runner. */
static void submit(struct world *w, struct submitted *s, const char *subject, int n, ...)
{
    submitted_init(s);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        s->rcpts[i] = va_arg(ap, const char *);
    va_end(ap);
    snprintf(s->body, sizeof s->body, "From: <sender@example.org>\r\nSubject: %s\r\n\r\n.dot line\r\n%s\r\n",
             subject, subject);
    s->m.sender = "sender@example.org";
    s->m.nrcpt = (size_t)n;
    s->m.prefix = WORLD_RECEIVED;
    s->m.body = (const unsigned char *)s->body;
    s->m.body_len = strlen(s->body);
    submit_commit(w, s);
    delivery_kick(w->d);
}

/* The state of msg_id's copy for addr; state -1 when the message is gone. */
static struct store_rcpt rcpt_of(struct world *w, const char *msg_id, const char *addr)
{
    struct rcpt_states s;
    const struct store_rcpt *r = rcpt_find(w, &s, msg_id, addr);
    if (r)
        return *r;
    struct store_rcpt none;
    memset(&none, 0, sizeof none);
    none.state = -1; /* gone: the message was released */
    return none;
}

struct entries {
    int n;
    struct store_mailbox_entry e[16];
};

static int collect_entry(const struct store_mailbox_entry *e, void *arg)
{
    struct entries *l = arg;
    if (l->n < 16)
        l->e[l->n++] = *e;
    return 0;
}

static struct entries mailbox_of(struct world *w, const char *email)
{
    struct entries l = {0};
    struct store_user u;
    assert_int_equal(store_user_get(w->ctl, email, &u), STORE_OK);
    assert_int_equal(store_mailbox_list(w->ctl, u.id, -1, collect_entry, &l), STORE_OK);
    return l;
}

static int domain_state(struct world *w)
{
    struct store_domain dom;
    assert_int_equal(store_domain_get_by_id(w->ctl, w->acme, &dom), STORE_OK);
    return dom.state;
}

struct events {
    int n;
    struct store_event ev[16];
};

static int collect_event(const struct store_event *e, void *arg)
{
    struct events *l = arg;
    if (l->n < 16)
        l->ev[l->n++] = *e;
    return 0;
}

/* Oldest first. */
static struct events events_of(struct world *w)
{
    struct events l = {0}, r = {0};
    assert_int_equal(store_event_list(w->ctl, w->acme, 0, collect_event, &l), STORE_OK);
    for (int i = l.n - 1; i >= 0; i--)
        r.ev[r.n++] = l.ev[i];
    return r;
}

static struct store_continuity_counts counts_of(struct world *w)
{
    struct store_continuity_counts n;
    assert_int_equal(store_continuity_counts(w->ctl, w->acme, &n), STORE_OK);
    return n;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---------------------------------------------------- conditions */

static const char *g_msg; /* the message a condition looks at */

static int in_outage(struct world *w)
{
    return domain_state(w) == DOMAIN_OUTAGE;
}

static int in_normal(struct world *w)
{
    return domain_state(w) == DOMAIN_NORMAL;
}

static int in_recovering(struct world *w)
{
    return domain_state(w) == DOMAIN_RECOVERING;
}

static int outage_diverted_and_alerted(struct world *w)
{
    return domain_state(w) == DOMAIN_OUTAGE && rcpt_of(w, g_msg, "alice@acme.test").state == RCPT_CONTINUITY &&
           rcpt_of(w, g_msg, "bob@acme.test").attempts == 1 && rcpt_of(w, g_msg, "nobody@acme.test").attempts == 1 &&
           w->internet.messages == 1 && w->hooks->len == 1 && delivery_idle(w->d);
}

/* ------------------------------------------------------------------ tests */

/* Connection refused: outage, the copies of registered users diverted, the
 * others deferred, and the event mailed and POSTed. */
static void test_refused_outage_diverts(void **state)
{
    (void)state;
    char dead[8];
    closed_port(dead);
    struct world *w = world_new(dead, NULL);
    struct submitted s;
    int64_t t0 = time_mono_ms();
    submit(w, &s, "first", 4, "alice@acme.test", "al@acme.test", "bob@acme.test", "nobody@acme.test");
    g_msg = s.m.id;
    assert_true(wait_for(w, outage_diverted_and_alerted, 10));
    assert_true(time_mono_ms() - t0 < 3000);

    /* One entry for alice, standing for both of her addresses. */
    struct entries e = mailbox_of(w, "alice@acme.test");
    assert_int_equal(e.n, 1);
    assert_string_equal(e.e[0].msg_id, s.m.id);
    assert_int_equal(e.e[0].folder, FOLDER_INBOX);
    assert_int_equal(e.e[0].redeliver, REDELIVER_WAITING);
    assert_non_null(strstr(e.e[0].rcpts, "alice@acme.test"));
    assert_non_null(strstr(e.e[0].rcpts, "al@acme.test"));
    struct store_rcpt al = rcpt_of(w, s.m.id, "al@acme.test");
    assert_int_equal(al.state, RCPT_CONTINUITY);
    assert_int_equal(al.mailbox_entry_id, e.e[0].id);
    /* Not activated, unknown: deferred with the usual backoff. */
    struct store_rcpt bob = rcpt_of(w, s.m.id, "bob@acme.test");
    assert_int_equal(bob.state, RCPT_QUEUED);
    assert_true(bob.next_attempt > time_now() + 200);
    assert_int_equal(mailbox_of(w, "bob@acme.test").n, 0);

    /* One event, with the cause; the entry belongs to that outage. */
    struct events ev = events_of(w);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].from_state, DOMAIN_NORMAL);
    assert_int_equal(ev.ev[0].to_state, DOMAIN_OUTAGE);
    assert_non_null(strstr(ev.ev[0].cause, "Connection refused"));
    assert_int_equal(e.e[0].outage_id, ev.ev[0].id);
    struct store_continuity_counts n = counts_of(w);
    assert_int_equal(n.held, 1);
    assert_int_equal(n.waiting, 1);

    /* The admins' mail, from MAILER-DAEMON to the alternate address. */
    assert_non_null(strstr(w->internet.log->str, "MAIL FROM:<>"));
    assert_non_null(strstr(w->internet.log->str, "RCPT TO:<admin@example.org>"));
    const char *mail = w->internet.data->str;
    assert_non_null(strstr(mail, "From: Mail Delivery System <MAILER-DAEMON@lifeboat.test>"));
    assert_non_null(strstr(mail, "Subject: [lifeboat] acme.test: mail server outage"));
    assert_non_null(strstr(mail, "Auto-Submitted: auto-generated"));
    assert_non_null(strstr(mail, "normal -> outage"));
    assert_non_null(strstr(mail, "Connection refused"));

    /* The webhook's JSON. */
    json_error_t jerr;
    json_t *j = json_loads(g_ptr_array_index(w->hooks, 0), 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "domain")), "acme.test");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "outage");
    assert_string_equal(json_string_value(json_object_get(j, "previous")), "normal");
    assert_non_null(strstr(json_string_value(json_object_get(j, "cause")), "Connection refused"));
    assert_int_equal(json_integer_value(json_object_get(j, "event_id")), ev.ev[0].id);
    assert_non_null(json_string_value(json_object_get(j, "since")));
    json_decref(j);
    world_free(w);
}

static void slow_probes(struct config *cfg)
{
    cfg->dr_probe_interval = 3600;
}

static int first_diverted(struct world *w)
{
    return rcpt_of(w, g_msg, "carol@acme.test").state == RCPT_CONTINUITY && in_outage(w) && delivery_idle(w->d);
}

/* A 421 greeting starts the outage; then new mail goes to the mailbox at once,
 * without a connection to the dead server. */
static void test_421_then_held(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, slow_probes);
    w->customer.greeting = "421 4.3.2 Service shutting down\r\n";
    struct submitted s1, s2;
    submit(w, &s1, "one", 1, "carol@acme.test");
    g_msg = s1.m.id;
    assert_true(wait_for(w, first_diverted, 10));
    struct events ev = events_of(w);
    assert_int_equal(ev.n, 1);
    assert_non_null(strstr(ev.ev[0].cause, "421 4.3.2"));
    int conns = w->customer.connections;

    int64_t t0 = time_mono_ms();
    submit(w, &s2, "two", 2, "carol@acme.test", "nobody@acme.test");
    g_msg = s2.m.id;
    assert_true(wait_for(w, first_diverted, 5));
    assert_true(time_mono_ms() - t0 < 1000); /* "within one second of acceptance" */
    assert_int_equal(w->customer.connections, conns);
    struct store_rcpt nobody = rcpt_of(w, s2.m.id, "nobody@acme.test");
    assert_int_equal(nobody.state, RCPT_QUEUED);
    assert_int_equal(nobody.attempts, 1);
    assert_non_null(strstr(nobody.last_reply, "continuity outage"));
    assert_int_equal(mailbox_of(w, "carol@acme.test").n, 2);
    assert_int_equal(events_of(w).n, 1); /* no second event */
    assert_int_equal(counts_of(w).held, 2);
    world_free(w);
}

static int partial_done(struct world *w)
{
    return rcpt_of(w, g_msg, "tempo@acme.test").state == RCPT_CONTINUITY &&
           rcpt_of(w, g_msg, "alice@acme.test").state == RCPT_SENT && delivery_idle(w->d);
}

/* 450 for one recipient, 250 for the other: only that copy is diverted and
 * the domain stays normal. */
static void test_partial_4xx(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, slow_probes);
    struct submitted s;
    submit(w, &s, "partial", 2, "tempo@acme.test", "alice@acme.test");
    g_msg = s.m.id;
    assert_true(wait_for(w, partial_done, 10));
    run_for(w, 300);
    assert_int_equal(domain_state(w), DOMAIN_NORMAL);
    assert_int_equal(events_of(w).n, 0);
    assert_int_equal(w->customer.messages, 1);
    struct entries e = mailbox_of(w, "tempo@acme.test");
    assert_int_equal(e.n, 1);
    assert_int_equal(e.e[0].outage_id, 0); /* no outage */
    assert_string_equal(e.e[0].rcpts, "tempo@acme.test");
    assert_int_equal(mailbox_of(w, "alice@acme.test").n, 0);
    struct store_continuity_counts n = counts_of(w);
    assert_int_equal(n.waiting, 1);
    assert_int_equal(n.held, 0);
    assert_int_equal(w->hooks->len, 0);
    world_free(w);
}

static int sweep_deferred(struct world *w)
{
    return count_of(w->customer.log->str, "RCPT TO:<tempo@acme.test>") >= 2 && continuity_idle(w->c) &&
           delivery_idle(w->d);
}

static int sweep_refused(struct world *w)
{
    return counts_of(w).waiting == 0 && continuity_idle(w->c);
}

/* What a 4xx for single recipients left in a normal domain's mailboxes is
 * tried again every dr_probe_interval: deferred again (no state change), then
 * refused for good (it stays readable, never tried again). */
static void test_sweep_leftovers(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    struct submitted s;
    submit(w, &s, "leftover", 2, "tempo@acme.test", "alice@acme.test");
    g_msg = s.m.id;
    assert_true(wait_for(w, partial_done, 10));
    assert_true(wait_for(w, sweep_deferred, 10)); /* the sweep met the 450 again */
    assert_int_equal(domain_state(w), DOMAIN_NORMAL);
    assert_int_equal(counts_of(w).waiting, 1);

    w->customer.rcpt_all = "550 5.1.1 <tempo@acme.test>: no such user here\r\n";
    assert_true(wait_for(w, sweep_refused, 10));
    struct entries e = mailbox_of(w, "tempo@acme.test");
    assert_int_equal(e.n, 1);
    assert_int_equal(e.e[0].redeliver, REDELIVER_NONE);
    int tries = count_of(w->customer.log->str, "RCPT TO:<tempo@acme.test>");
    run_for(w, 2500);
    assert_int_equal(count_of(w->customer.log->str, "RCPT TO:<tempo@acme.test>"), tries);
    assert_int_equal(domain_state(w), DOMAIN_NORMAL);
    assert_int_equal(events_of(w).n, 0);
    assert_int_equal(w->customer.messages, 1); /* alice's, the first time */
    world_free(w);
}

static int attempted(struct world *w)
{
    return rcpt_of(w, g_msg, "alice@acme.test").attempts >= 1 && delivery_idle(w->d);
}

static const char *g_msg2;

static int second_diverted(struct world *w)
{
    return rcpt_of(w, g_msg2, "alice@acme.test").state == RCPT_CONTINUITY && delivery_idle(w->d);
}

/* Mail deferred before continuity was enabled stays in the queue. */
static void test_not_retroactive(void **state)
{
    (void)state;
    char dead[8];
    closed_port(dead);
    struct world *w = world_new(dead, slow_probes);
    assert_int_equal(store_domain_set_continuity(w->ctl, w->acme, 0, 0, 0), STORE_OK);
    run_for(w, 1200); /* the engine sees it disabled */
    struct submitted s1, s2;
    submit(w, &s1, "old", 1, "alice@acme.test");
    g_msg = s1.m.id;
    assert_true(wait_for(w, attempted, 10));
    assert_int_equal(domain_state(w), DOMAIN_NORMAL); /* not enabled: no outage */

    /* Enabled now, as `lifeboatctl continuity enable` does (in the same second,
     * likely: the mark, not the clock, keeps the old one out); it is retried. */
    char err[256];
    assert_int_equal(directory_subscription_start(w->ctl, "acme", 12, time_now(), err, sizeof err), 0);
    assert_int_equal(directory_continuity_enable(w->ctl, "acme.test", 0, time_now(), NULL, err, sizeof err), 0);
    assert_int_equal(store_queue_flush(w->ctl), STORE_OK);
    delivery_kick(w->d);
    submit(w, &s2, "new", 1, "alice@acme.test");
    g_msg2 = s2.m.id;
    assert_true(wait_for(w, second_diverted, 10));
    assert_true(wait_for(w, in_outage, 5));
    struct store_rcpt old = rcpt_of(w, s1.m.id, "alice@acme.test");
    assert_int_equal(old.state, RCPT_QUEUED);
    assert_true(old.attempts >= 2);
    struct entries e = mailbox_of(w, "alice@acme.test");
    assert_int_equal(e.n, 1);
    assert_string_equal(e.e[0].msg_id, s2.m.id);
    world_free(w);
}

/* Adds a Sent copy of a message alice wrote from continuity, as the webmail
 * will: a blob and a DIR_OUTBOUND entry waiting for re-delivery. */
static int64_t add_sent_copy(struct world *w, const char *body, int64_t outage_id)
{
    struct blobstore *bs;
    char err[256];
    assert_int_equal(blobstore_open(&w->cfg, &bs, err, sizeof err), 0);
    struct store_user u;
    assert_int_equal(store_user_get(w->ctl, "alice@acme.test", &u), STORE_OK);
    struct store_mailbox_entry e;
    memset(&e, 0, sizeof e);
    e.user_id = u.id;
    queueid_new(e.msg_id);
    uint64_t stored = 0;
    assert_int_equal(store_begin(w->ctl), STORE_OK);
    assert_int_equal(blob_put(bs, w->ctl, body, strlen(body), e.blob, &stored), 0);
    snprintf(e.sender, sizeof e.sender, "alice@acme.test");
    snprintf(e.rcpts, sizeof e.rcpts, "friend@example.org");
    e.size = strlen(body);
    e.received = time_now();
    e.folder = FOLDER_SENT;
    e.seen = 1;
    e.redeliver = REDELIVER_WAITING;
    e.outage_id = outage_id;
    e.direction = DIR_OUTBOUND;
    int64_t id = 0;
    assert_int_equal(store_mailbox_add(w->ctl, &e, stored, &id), STORE_OK);
    assert_int_equal(store_commit(w->ctl), STORE_OK);
    blobstore_close(bs);
    return id;
}

static int three_in_outage(struct world *w)
{
    return in_outage(w) && mailbox_of(w, "alice@acme.test").n == 2 && mailbox_of(w, "carol@acme.test").n == 2 &&
           delivery_idle(w->d);
}

static int g_conns;

static int probed_again(struct world *w)
{
    return w->customer.connections > g_conns && delivery_idle(w->d);
}

static const char SENT_BODY[] = "From: Alice <alice@acme.test>\r\nTo: friend@example.org\r\nSubject: sent\r\n\r\n"
                                "written in the webmail\r\n";

static int drained(struct world *w)
{
    return in_normal(w) && counts_of(w).waiting == 0 && continuity_idle(w->c);
}

static void one_at_a_time(struct config *cfg)
{
    cfg->dr_probe_interval = 1;
    cfg->drain_concurrency = 1;
    cfg->drain_rate = 0;
}

/* The whole way: outage, mail held, a failed probe, a passed one, the drain
 * (each entry once, oldest first, not the deleted one, the sent copy to its
 * sender), normal. */
static void test_probe_drain_normal(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, one_at_a_time);
    w->customer.greeting = "421 4.3.2 down for maintenance\r\n";
    struct submitted s1, s2, s3, s4;
    submit(w, &s1, "m1", 1, "alice@acme.test");
    g_msg = s1.m.id;
    assert_true(wait_for(w, in_outage, 10));
    submit(w, &s2, "m2", 2, "carol@acme.test", "nobody@acme.test");
    submit(w, &s3, "m3", 1, "carol@acme.test");
    submit(w, &s4, "m4", 1, "alice@acme.test");
    assert_true(wait_for(w, three_in_outage, 10));

    /* carol deletes m3 for good: never re-delivered. */
    struct entries ce = mailbox_of(w, "carol@acme.test"); /* newest first */
    assert_string_equal(ce.e[0].msg_id, s3.m.id);
    assert_int_equal(store_mailbox_delete(w->ctl, ce.e[0].id), STORE_OK);
    struct store_domain dom;
    assert_int_equal(store_domain_get_by_id(w->ctl, w->acme, &dom), STORE_OK);
    int64_t sent_id = add_sent_copy(w, SENT_BODY, dom.outage_id);

    /* A probe fails against the 421 greeting: still in outage, no event. */
    g_conns = w->customer.connections;
    assert_true(wait_for(w, probed_again, 5));
    run_for(w, 100);
    assert_int_equal(domain_state(w), DOMAIN_OUTAGE);
    assert_int_equal(w->customer.messages, 0);

    /* The server is back: probe passes, the drain runs, normal. */
    w->customer.greeting = "220 fake.test ESMTP\r\n";
    assert_true(wait_for(w, drained, 15));
    assert_int_equal(w->customer.messages, 4); /* m1, m2 (carol), m4, the sent copy */
    /* The last one out (the newest) is the sent copy, marked and to its sender. */
    assert_true(g_str_has_prefix(w->customer.data->str, "X-Lifeboat-Sent: yes\r\n"));
    assert_non_null(strstr(w->customer.data->str, "written in the webmail"));
    const char *log = w->customer.log->str;
    /* The probe: MAIL FROM:<>, RCPT to a registered user, RSET. */
    assert_non_null(strstr(log, "MAIL FROM:<> SIZE=0\nRCPT TO:<admin@acme.test>\nRSET\n"));
    /* Oldest first: m1 (alice), m2 (carol, not nobody@: his copy is queued), m4 (alice), sent copy. */
    const char *p1 = strstr(log, "MAIL FROM:<sender@example.org>");
    assert_non_null(p1);
    const char *a1 = strstr(p1, "RCPT TO:<alice@acme.test>");
    const char *c2 = strstr(p1, "RCPT TO:<carol@acme.test>");
    assert_non_null(a1);
    assert_non_null(c2);
    assert_true(a1 < c2);
    assert_null(strstr(log, "RCPT TO:<nobody@acme.test>"));
    assert_non_null(strstr(log, "MAIL FROM:<alice@acme.test>"));
    assert_int_equal(count_of(log, "RCPT TO:<carol@acme.test>"), 1);

    /* The store agrees: states, counts, three events. */
    assert_int_equal(rcpt_of(w, s1.m.id, "alice@acme.test").state, -1); /* released */
    assert_int_equal(rcpt_of(w, s2.m.id, "carol@acme.test").state, RCPT_REDELIVERED);
    assert_int_equal(rcpt_of(w, s2.m.id, "nobody@acme.test").state, RCPT_QUEUED);
    assert_int_equal(rcpt_of(w, s3.m.id, "carol@acme.test").state, -1);
    struct store_mailbox_entry se;
    assert_int_equal(store_mailbox_get(w->ctl, sent_id, &se), STORE_OK);
    assert_int_equal(se.redeliver, REDELIVER_DONE);
    struct entries ae = mailbox_of(w, "alice@acme.test"); /* still readable in the webmail */
    assert_int_equal(ae.n, 3);
    struct store_continuity_counts n = counts_of(w);
    assert_int_equal(n.held, 5);
    assert_int_equal(n.redelivered, 4);
    assert_int_equal(n.deleted, 1);
    assert_int_equal(n.waiting, 0);
    struct events ev = events_of(w);
    assert_int_equal(ev.n, 3);
    assert_int_equal(ev.ev[1].to_state, DOMAIN_RECOVERING);
    assert_non_null(strstr(ev.ev[1].cause, "probe passed"));
    assert_int_equal(ev.ev[2].to_state, DOMAIN_NORMAL);
    assert_non_null(strstr(ev.ev[2].cause, "4 message(s) re-delivered"));

    /* Nothing more goes out later (no second delivery). */
    run_for(w, 2500);
    assert_int_equal(w->customer.messages, 4);
    assert_int_equal(w->hooks->len, 3);
    world_free(w);
}

static int recovering_seen;

static int back_in_outage_after_recovering(struct world *w)
{
    if (domain_state(w) == DOMAIN_RECOVERING)
        recovering_seen = 1;
    return events_of(w).n >= 3 && in_outage(w);
}

/* The probe passes but the server fails the data: back to outage; then it
 * really recovers. */
static void test_fault_while_draining(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, NULL);
    w->customer.greeting = "421 4.3.2 down\r\n";
    struct submitted s1, s2;
    submit(w, &s1, "a", 1, "alice@acme.test");
    submit(w, &s2, "b", 1, "carol@acme.test");
    g_msg = s2.m.id;
    assert_true(wait_for(w, first_diverted, 10));

    w->customer.greeting = "220 fake.test ESMTP\r\n";
    w->customer.data_reply = "451 4.3.0 disk full\r\n";
    recovering_seen = 0;
    assert_true(wait_for(w, back_in_outage_after_recovering, 15));
    struct events ev = events_of(w);
    assert_int_equal(ev.ev[1].to_state, DOMAIN_RECOVERING);
    assert_int_equal(ev.ev[2].from_state, DOMAIN_RECOVERING);
    assert_int_equal(ev.ev[2].to_state, DOMAIN_OUTAGE);
    assert_non_null(strstr(ev.ev[2].cause, "451 4.3.0 disk full"));
    assert_int_equal(counts_of(w).waiting, 2);

    w->customer.data_reply = NULL;
    assert_true(wait_for(w, drained, 15));
    assert_int_equal(w->customer.messages, 2);
    ev = events_of(w);
    assert_int_equal(ev.n, 5);
    assert_int_equal(counts_of(w).redelivered, 2);
    world_free(w);
}

static void slow_drain(struct config *cfg)
{
    cfg->dr_probe_interval = 1;
    cfg->drain_concurrency = 1;
    cfg->drain_rate = 4;
}

static int six_held(struct world *w)
{
    return in_outage(w) && counts_of(w).waiting == 6 && delivery_idle(w->d);
}

static int two_redelivered(struct world *w)
{
    return w->customer.messages >= 2;
}

/* Stopped in the middle of the drain and started again over the same
 * data_dir: the drain resumes where the store says, every entry exactly once. */
static void test_restart_mid_drain(void **state)
{
    (void)state;
    struct world *w = world_new(NULL, slow_drain);
    w->customer.greeting = "421 4.3.2 down\r\n";
    struct submitted s[6];
    for (int i = 0; i < 6; i++) {
        char subj[16];
        snprintf(subj, sizeof subj, "r%d", i);
        submit(w, &s[i], subj, 1, i % 2 ? "alice@acme.test" : "carol@acme.test");
    }
    assert_true(wait_for(w, six_held, 10));
    w->customer.greeting = "220 fake.test ESMTP\r\n";
    assert_true(wait_for(w, two_redelivered, 10));

    engines_stop(w);
    assert_true(in_recovering(w)); /* persisted */
    int before = w->customer.messages;
    struct store_continuity_counts n = counts_of(w);
    assert_int_equal((int)n.redelivered, before); /* every 250 is marked */
    assert_true(n.waiting > 0);

    engines_start(w);
    assert_true(wait_for(w, drained, 15));
    assert_int_equal(w->customer.messages, 6);
    n = counts_of(w);
    assert_int_equal(n.redelivered, 6);
    assert_int_equal(n.held, 6);
    run_for(w, 1500);
    assert_int_equal(w->customer.messages, 6);
    world_free(w);
}

int main(void)
{
    evthread_use_pthreads();
    log_set_level(getenv("LB_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_outage_diverts), cmocka_unit_test(test_421_then_held),
        cmocka_unit_test(test_partial_4xx),            cmocka_unit_test(test_sweep_leftovers),
        cmocka_unit_test(test_not_retroactive),
        cmocka_unit_test(test_probe_drain_normal),     cmocka_unit_test(test_fault_while_draining),
        cmocka_unit_test(test_restart_mid_drain),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    libevent_global_shutdown();
    return rc;
}
