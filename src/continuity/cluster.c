/*
 * cluster.c — this node's membership of a cluster of lifeboatd nodes on one
 * PostgreSQL database (continuity.h's cluster_node_*).
 *
 * Every beat (a third of claim_lease, 5 s at most) a writer job records the
 * node's heartbeat and renews its leases: the recipients it claimed, and the
 * mailbox entries its drains claimed while it leads. A node that stops
 * beating — killed, frozen, cut off — lets its leases run out, and the other
 * nodes' queue scans and drains take its work over. The listener (a
 * connection of its own that LISTENs) turns the other nodes' NOTIFYs into a
 * queue scan or a fresh read of the domains, so a flush or a state change made
 * on one node acts on all within a second, without anyone polling for it.
 *
 * With the embedded SQLite store there is one node: the heartbeat is kept
 * (cluster status shows the node) and the rest does nothing.
 */
#include "continuity/continuity_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/deliver.h"
#include "util/log.h"
#include "util/timeutil.h"

#define BEAT_MAX_SECONDS 5
/* A lost listener is opened again after this long. */
#define LISTEN_RETRY_SECONDS 5

struct cluster_node {
    struct event_base *base;
    const struct config *cfg;
    struct store *st; /* the loop thread's connection */
    struct store_writer *writer;
    struct delivery *delivery;
    struct continuity *continuity;
    int64_t started;
    unsigned beat_seconds;
    struct event *beat_ev;
    struct store_listener *listener;
    struct event *listen_ev;
    int64_t listen_retry_at;
    int beat_pending; /* a heartbeat job is with the writer */
};

struct beat {
    struct cluster_node *n;
    int64_t started, now, until;
    int mailbox;
    char addr[128];
};

/* Writer thread. */
static int beat_write(struct store *st, struct blobstore *bs, void *arg)
{
    struct beat *b = arg;
    (void)bs;
    int rc = store_node_heartbeat(st, b->started, b->now, LIFEBOAT_VERSION, b->addr);
    if (rc == STORE_OK)
        rc = store_claims_renew(st, b->until, b->mailbox);
    return rc;
}

static void beat_done(int rc, void *arg)
{
    struct beat *b = arg;
    b->n->beat_pending = 0;
    if (rc != STORE_OK)
        log_warn("cluster: node %s: cannot record its heartbeat and renew its leases; trying again in %u s",
                 b->n->cfg->node_name, b->n->beat_seconds);
    free(b);
}

static void on_note(const char *what, void *arg)
{
    struct cluster_node *n = arg;
    if (strcmp(what, "queue") == 0)
        delivery_kick(n->delivery);
    else
        continuity_kick(n->continuity); /* "domain", "config" */
}

static void on_listen(evutil_socket_t fd, short what, void *arg);

static void listen_close(struct cluster_node *n)
{
    if (n->listen_ev)
        event_free(n->listen_ev);
    n->listen_ev = NULL;
    store_listen_close(n->listener);
    n->listener = NULL;
}

static void listen_open(struct cluster_node *n)
{
    char err[512];
    if (store_listen_open(n->cfg, &n->listener, err, sizeof err) != STORE_OK) {
        log_warn("cluster: %s; trying again in %d s", err, LISTEN_RETRY_SECONDS);
        n->listen_retry_at = time_now() + LISTEN_RETRY_SECONDS;
        return;
    }
    if (!n->listener)
        return; /* one node: nobody to hear from */
    n->listen_ev = event_new(n->base, store_listen_fd(n->listener), EV_READ | EV_PERSIST, on_listen, n);
    if (!n->listen_ev || event_add(n->listen_ev, NULL) != 0) {
        log_err("cluster: cannot watch the listener's connection");
        listen_close(n);
        n->listen_retry_at = time_now() + LISTEN_RETRY_SECONDS;
    }
}

static void on_listen(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_node *n = arg;
    (void)fd, (void)what;
    if (store_listen_read(n->listener, on_note, n) != STORE_OK) {
        listen_close(n);
        n->listen_retry_at = time_now() + LISTEN_RETRY_SECONDS;
    }
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_node *n = arg;
    (void)fd, (void)what;
    int64_t now = time_now();
    if (!n->listener && n->listen_retry_at && now >= n->listen_retry_at) {
        n->listen_retry_at = 0;
        listen_open(n);
        if (n->listener) {
            /* What was sent while we were deaf is lost: act as if it came. */
            delivery_kick(n->delivery);
            continuity_kick(n->continuity);
        }
    }
    if (!n->beat_pending) {
        struct beat *b = calloc(1, sizeof *b);
        if (b) {
            b->n = n;
            b->started = n->started;
            b->now = now;
            b->until = now + (int64_t)n->cfg->claim_lease;
            b->mailbox = continuity_leading(n->continuity);
            if (n->cfg->smtp_listen.count)
                snprintf(b->addr, sizeof b->addr, "%.80s:%.16s", n->cfg->smtp_listen.addr[0].host,
                         n->cfg->smtp_listen.addr[0].port);
            if (store_writer_submit(n->writer, beat_write, beat_done, b) == 0)
                n->beat_pending = 1;
            else
                free(b);
        }
    }
    struct timeval tv = {(time_t)n->beat_seconds, 0};
    evtimer_add(n->beat_ev, &tv);
}

struct cluster_node *cluster_node_start(struct event_base *base, const struct config *cfg, struct store *read_store,
                                        struct store_writer *writer, struct delivery *delivery,
                                        struct continuity *continuity, char *err, size_t errlen)
{
    struct cluster_node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->base = base;
    n->cfg = cfg;
    n->st = read_store;
    n->writer = writer;
    n->delivery = delivery;
    n->continuity = continuity;
    n->started = time_now();
    n->beat_seconds = cfg->claim_lease / 3;
    if (n->beat_seconds > BEAT_MAX_SECONDS)
        n->beat_seconds = BEAT_MAX_SECONDS;
    if (n->beat_seconds == 0)
        n->beat_seconds = 1;
    /* A previous run of this node may have died holding claims: ours again. */
    if (store_claims_release(read_store, 1, 1) != STORE_OK) {
        snprintf(err, errlen, "cannot free the claims of this node's previous run (see the log)");
        free(n);
        return NULL;
    }
    listen_open(n);
    n->beat_ev = evtimer_new(base, on_beat, n);
    if (!n->beat_ev) {
        snprintf(err, errlen, "out of memory");
        cluster_node_free(n);
        return NULL;
    }
    on_beat(-1, 0, n);
    log_info("cluster: node %s started (heartbeat every %u s, leases of %u s)", cfg->node_name, n->beat_seconds,
             cfg->claim_lease);
    return n;
}

void cluster_node_free(struct cluster_node *n)
{
    if (!n)
        return;
    if (n->beat_ev)
        event_free(n->beat_ev);
    listen_close(n);
    /* The writer has committed every outcome: what we still hold is free for
     * the others now rather than when our leases run out. */
    if (store_lead_release(n->st) != STORE_OK || store_claims_release(n->st, 1, 1) != STORE_OK ||
        store_notify(n->st, "queue") != STORE_OK || store_notify(n->st, "domain") != STORE_OK)
        log_warn("cluster: node %s could not hand its work over; the others take it when its leases end",
                 n->cfg->node_name);
    free(n);
}
