/*
 * test_mail_world.h — the in-process mail path shared by the engine tests
 * (test_deliver_runner.c, test_continuity_engine.c): one event loop, a
 * temporary data_dir, two fake SMTP servers (the customer's own server and
 * the "internet" behind the outbound relay), a configuration pointing at
 * them, and the helpers that drive the loop: wait for a condition, queue a
 * message through the group-commit writer as smtpd does, read a message's
 * recipient states back from the store.
 *
 * Header-only (static functions). The including test defines struct world
 * first; it must have at least these members:
 *
 *     struct event_base *base;
 *     char dir[64];                 the data_dir (mkdtemp)
 *     struct config cfg;
 *     struct store *ctl;            a connection as lifeboatctl would use
 *     struct store_writer *writer;
 *     struct fake customer;         acme.test's own server
 *     struct fake internet;         the outbound relay
 */
#ifndef LB_TEST_MAIL_WORLD_H
#define LB_TEST_MAIL_WORLD_H

#include <ftw.h>

#include "directory/directory.h"
#include "fake_smtp.h"
#include "queue/queue.h"
#include "util/config.h"
#include "util/queueid.h"
#include "util/timeutil.h"

static inline int world_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The loop, the data_dir (from a mkdtemp template such as "/tmp/lb-x-XXXXXX"),
 * both fakes, and cfg: defaults, hostname lifeboat.test, the outbound relay
 * the internet fake, delivery_timeout 5 s. */
static inline void world_base_init(struct world *w, const char *dir_template)
{
    w->base = event_base_new();
    snprintf(w->dir, sizeof w->dir, "%s", dir_template);
    assert_non_null(mkdtemp(w->dir));
    fake_start(&w->customer, w->base);
    fake_start(&w->internet, w->base);

    config_defaults(&w->cfg);
    snprintf(w->cfg.data_dir, sizeof w->cfg.data_dir, "%s", w->dir);
    snprintf(w->cfg.hostname, sizeof w->cfg.hostname, "lifeboat.test");
    snprintf(w->cfg.outbound_relay.host, sizeof w->cfg.outbound_relay.host, "127.0.0.1");
    snprintf(w->cfg.outbound_relay.port, sizeof w->cfg.outbound_relay.port, "%s", w->internet.port);
    w->cfg.delivery_timeout = 5;
}

/* Customer "acme" with domain acme.test, routed to 127.0.0.1:route_port
 * (NULL or "": the customer fake). */
static inline void world_add_acme(struct world *w, const char *route_port)
{
    char err[512];
    char routes[64];
    snprintf(routes, sizeof routes, "127.0.0.1:%s", route_port && *route_port ? route_port : w->customer.port);
    assert_int_equal(directory_customer_add(w->ctl, "acme", err, sizeof err), 0);
    assert_int_equal(directory_domain_add(w->ctl, "acme.test", "acme", routes, err, sizeof err), 0);
}

/* Undoes world_base_init, once the engines and stores are closed. */
static inline void world_base_free(struct world *w)
{
    fake_stop(&w->customer);
    fake_stop(&w->internet);
    event_base_free(w->base);
    nftw(w->dir, world_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ the loop */

/* Runs the loop until cond(w) holds (checked every 20 ms) or the deadline. */
struct waiter {
    struct world *w;
    int (*cond)(struct world *);
    int64_t deadline;
    int met;
};

static inline void waiter_check(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *wt = arg;
    (void)fd;
    (void)what;
    if (wt->cond(wt->w)) {
        wt->met = 1;
        event_base_loopexit(wt->w->base, NULL);
    } else if (time_mono_ms() > wt->deadline) {
        event_base_loopexit(wt->w->base, NULL);
    }
}

static inline int wait_until_ms(struct world *w, int (*cond)(struct world *), int64_t ms)
{
    struct waiter wt = {w, cond, time_mono_ms() + ms, 0};
    struct event *ev = event_new(w->base, -1, EV_PERSIST, waiter_check, &wt);
    struct timeval tv = {0, 20000};
    event_add(ev, &tv);
    event_base_dispatch(w->base);
    event_free(ev);
    return wt.met;
}

/* 1 once cond(w) holds, 0 if it did not within seconds. */
static inline int wait_for(struct world *w, int (*cond)(struct world *), int seconds)
{
    return wait_until_ms(w, cond, (int64_t)seconds * 1000);
}

static inline int never(struct world *w)
{
    (void)w;
    return 0;
}

/* Lets the loop run for ms milliseconds. */
static inline void run_for(struct world *w, int ms)
{
    wait_until_ms(w, never, ms);
}

/* ------------------------------------------------------------ messages */

/* The Received: line smtpd would have prepended. */
#define WORLD_RECEIVED                                                                              \
    "Received: from client.example.org by lifeboat.test; Fri, 27 Nov 2026 21:53:37 +0000\r\n"

struct submitted {
    struct queue_message m;
    const char *rcpts[4];
    char body[256]; /* for callers that build the body */
    int done, rc;
};

static inline void submitted(int rc, void *arg)
{
    struct submitted *s = arg;
    s->done = 1;
    s->rc = rc;
}

/* Starts s (zeroed) with a fresh queue ID and the client smtpd would record;
 * the caller sets sender, prefix and body and fills s->rcpts. */
static inline void submitted_init(struct submitted *s)
{
    memset(s, 0, sizeof *s);
    queueid_new(s->m.id);
    s->m.rcpts = s->rcpts;
    s->m.client_addr = "192.0.2.7";
    s->m.helo = "client.example.org";
}

/* Queues s->m through the writer, as smtpd does, and waits for the commit
 * (no kick of the runner). */
static inline void submit_commit(struct world *w, struct submitted *s)
{
    assert_int_equal(queue_submit(w->writer, &s->m, submitted, s), 0);
    int64_t until = time_mono_ms() + 5000;
    while (!s->done && time_mono_ms() < until)
        event_base_loop(w->base, EVLOOP_ONCE);
    assert_true(s->done);
    assert_int_equal(s->rc, STORE_OK);
}

/* --------------------------------------------------------- recipients */

struct rcpt_states {
    int n;
    struct store_rcpt r[8];
};

static inline int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    struct rcpt_states *s = arg;
    if (s->n < 8)
        s->r[s->n++] = *r;
    return 0;
}

/* Reads msg_id's recipients into s (read through w->ctl); the one for addr,
 * or NULL when there is none (the message was released). */
static inline const struct store_rcpt *rcpt_find(struct world *w, struct rcpt_states *s,
                                                 const char *msg_id, const char *addr)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(store_rcpt_list(w->ctl, msg_id, collect_rcpt, s), STORE_OK);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->r[i].rcpt, addr))
            return &s->r[i];
    return NULL;
}

#endif
