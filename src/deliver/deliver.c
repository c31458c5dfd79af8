/*
 * deliver.c — the queue runner: finds due recipients, groups them into
 * transactions per message and destination, and hands those to SMTP client
 * sessions within the concurrency limits (see deliver.h). What an attempt's
 * result means is outcome.c's business; moving bytes is relay_session.c's.
 *
 * A recipient is "in flight" from the moment a scan takes it until its outcome
 * is committed by the writer: later scans skip it (its row still looks due
 * until then). A destination that cannot be reached at all — no session ever
 * got as far as being ready — fails all of its waiting transactions at once
 * with the same reason, as Postfix does for a dead destination, instead of
 * letting each of them wait for its own connect timeout.
 */
#include "deliver/deliver_internal.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"

#define SCAN_BATCH 1000           /* recipients taken per scan */
#define SCAN_MIN_INTERVAL_MS 50   /* kicks closer together than this share one scan */
#define POLL_SECONDS 5            /* look at the queue at least this often */
#define IDLE_REUSE_MS 2000        /* a ready session waits this long for more work */
#define DELIVERY_MAX_SESSIONS 1000 /* all destinations together */
#define CONNECT_TIMEOUT_MAX 30    /* seconds: a dead host must not hold a route's next host up */

static void dest_pump(struct delivery *d, struct dest *dest);

/* ------------------------------------------------------------------- jobs */

static struct job *job_new(struct delivery *d, struct dest *dest, const struct store_msg *msg)
{
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->d = d;
    job->dest = dest;
    job->msg = *msg;
    job->t_created_wall = time_now();
    job->t_created = time_mono_ms();
    d->njobs++;
    dest->njobs++;
    return job;
}

static int job_add_rcpt(struct job *job, const struct store_rcpt *r)
{
    if (job->nrcpt == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 4;
        struct job_rcpt *rc = realloc(job->rcpts, cap * sizeof *rc);
        if (!rc)
            return -1;
        job->rcpts = rc;
        job->cap = cap;
    }
    struct job_rcpt *jr = &job->rcpts[job->nrcpt];
    jr->id = r->id;
    snprintf(jr->addr, sizeof jr->addr, "%s", r->rcpt);
    jr->attempts = r->attempts;
    jr->pre_continuity = r->pre_continuity;
    job->nrcpt++;
    return 0;
}

/* Sizes the per-recipient arrays once the recipients are known, and marks them in flight. */
static int job_seal(struct job *job)
{
    job->addrs = calloc(job->nrcpt, sizeof *job->addrs);
    job->out = calloc(job->nrcpt, sizeof *job->out);
    if (!job->addrs || !job->out)
        return -1;
    for (size_t i = 0; i < job->nrcpt; i++) {
        job->addrs[i] = job->rcpts[i].addr;
        g_hash_table_insert(job->d->inflight, &job->rcpts[i].id, job);
    }
    return 0;
}

void delivery_job_free(struct job *job)
{
    struct delivery *d = job->d;
    for (size_t i = 0; i < job->nrcpt; i++)
        if (g_hash_table_lookup(d->inflight, &job->rcpts[i].id) == job)
            g_hash_table_remove(d->inflight, &job->rcpts[i].id);
    job->dest->njobs--;
    d->njobs--;
    free(job->rcpts);
    free(job->addrs);
    free(job->out);
    free(job->body);
    free(job->updates);
    free(job->dsn);
    free(job);
    /* The last scan left work behind for lack of room: there is room now. */
    if (d->scan_truncated && !d->stopping)
        delivery_kick(d);
}

int delivery_job_load_body(struct job *job)
{
    if (job->body)
        return 0;
    if (blob_get(job->d->blobs, job->msg.blob, &job->body, &job->body_len) != 0) {
        log_err("%s: cannot read the message data (blob %s)", job->msg.id, job->msg.blob);
        job->body = NULL;
        return -1;
    }
    return 0;
}

/* Every recipient of the job gets the same outcome (the destination failed as a whole). */
static void job_fail_all(struct job *job, const struct smtpc_outcome *why)
{
    for (size_t i = 0; i < job->nrcpt; i++)
        job->out[i] = *why;
    job->txn.smtp.server_level = why->result == SMTPC_TEMP;
    job->t_done = time_mono_ms();
    delivery_job_finish(job);
}

/* --------------------------------------------------------------- sessions */

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    struct dsession *ds = arg;
    (void)fd;
    (void)what;
    if (!ds->job)
        relay_session_quit(ds->s);
}

/* Starts job on the ready session ds. 0: under way; 1: it was decided at once
 * (and is finished). */
static int job_start(struct dsession *ds, struct job *job)
{
    struct smtpc_outcome why;
    job->peer = *relay_session_peer(ds->s);
    job->t_txn_start = time_mono_ms();
    job->conn_ms = relay_session_txn_count(ds->s) == 0
                       ? relay_session_ready_ms(ds->s) - relay_session_started_ms(ds->s)
                       : 0;
    if (delivery_job_load_body(job) != 0) {
        memset(&why, 0, sizeof why);
        why.result = SMTPC_TEMP;
        why.code = 451;
        snprintf(why.dsn, sizeof why.dsn, "4.3.0");
        snprintf(why.text, sizeof why.text, "cannot read the message from the blob store");
        job->peer.addr[0] = '\0';
        job_fail_all(job, &why);
        return 1;
    }
    struct relay_txn *t = &job->txn;
    relay_txn_init(t, job->msg.prefix, job->body, job->body_len, job->msg.sender, job->addrs, job->nrcpt, job->out);
    if (relay_session_send(ds->s, t) == 0) {
        ds->job = job;
        return 0;
    }
    job->t_done = time_mono_ms();
    delivery_job_finish(job);
    return 1;
}

/* A ready session without a transaction: give it the next waiting one. */
static void ds_take_work(struct dsession *ds)
{
    struct dest *dest = ds->dest;
    struct job *job;
    evtimer_del(ds->idle_ev);
    while ((job = TAILQ_FIRST(&dest->pending))) {
        TAILQ_REMOVE(&dest->pending, job, link);
        dest->npending--;
        if (job_start(ds, job) == 0)
            return;
    }
    struct timeval tv = {IDLE_REUSE_MS / 1000, (IDLE_REUSE_MS % 1000) * 1000};
    evtimer_add(ds->idle_ev, &tv);
}

static void ds_on_ready(struct relay_session *s, void *arg)
{
    struct dsession *ds = arg;
    if (!ds->ready) {
        ds->ready = 1;
        ds->dest->nready++;
    }
    if (ds->d->stopping) {
        relay_session_quit(s);
        return;
    }
    ds_take_work(ds);
}

static void ds_on_txn_done(struct relay_session *s, struct relay_txn *t, void *arg)
{
    struct dsession *ds = arg;
    struct job *job = ds->job;
    ds->job = NULL;
    if (!job)
        return;
    job->peer = *relay_session_peer(s);
    job->t_done = time_mono_ms();
    if (t->smtp.untried && !job->requeued && !ds->d->stopping) {
        /* The reused connection was dead before anything was tried: this is not
         * an attempt. Once more, on a fresh connection. */
        job->requeued = 1;
        TAILQ_INSERT_HEAD(&ds->dest->pending, job, link);
        ds->dest->npending++;
        return;
    }
    delivery_job_finish(job);
}

/* No session of the destination could be made ready: every waiting transaction
 * fails with the reason the last one gave (connection refused, 421 greeting, no
 * such domain, ...), unless another session of the destination is working. */
static void dest_unreachable(struct dest *dest, const struct relay_end *e)
{
    if (dest->nready > 0)
        return;
    struct job *job;
    while ((job = TAILQ_FIRST(&dest->pending))) {
        TAILQ_REMOVE(&dest->pending, job, link);
        dest->npending--;
        memset(&job->peer, 0, sizeof job->peer); /* relay=none: the reason names the host */
        job->conn_ms = time_mono_ms() - job->t_created;
        job_fail_all(job, &e->why);
    }
}

static void ds_on_end(struct relay_session *s, const struct relay_end *e, void *arg)
{
    struct dsession *ds = arg;
    struct delivery *d = ds->d;
    struct dest *dest = ds->dest;
    (void)s;
    TAILQ_REMOVE(&dest->sessions, ds, link);
    dest->nsessions--;
    d->nsessions--;
    if (ds->ready)
        dest->nready--;
    event_free(ds->idle_ev);
    if (ds->job) {
        /* Cannot happen (the session reports its transaction first); be safe. */
        struct job *job = ds->job;
        job->peer = e->peer;
        job_fail_all(job, &e->why);
    }
    free(ds);
    if (!e->reached_ready)
        dest_unreachable(dest, e);
    if (!d->stopping)
        dest_pump(d, dest);
}

static int ds_start(struct delivery *d, struct dest *dest)
{
    static const struct relay_callbacks callbacks = {ds_on_ready, ds_on_txn_done, ds_on_end};
    struct dsession *ds = calloc(1, sizeof *ds);
    if (!ds)
        return -1;
    ds->d = d;
    ds->dest = dest;
    ds->idle_ev = evtimer_new(d->base, on_idle, ds);
    ds->s = ds->idle_ev ? relay_session_new(&d->env, &dest->target, &callbacks, ds) : NULL;
    if (!ds->s) {
        if (ds->idle_ev)
            event_free(ds->idle_ev);
        free(ds);
        log_err("%s: cannot start a delivery session (out of memory)", dest->name);
        return -1;
    }
    TAILQ_INSERT_TAIL(&dest->sessions, ds, link);
    dest->nsessions++;
    d->nsessions++;
    return 0;
}

/* Closes a session at once, without callbacks; its transaction (if any) is
 * dropped and stays queued. */
static void ds_drop(struct dsession *ds)
{
    struct dest *dest = ds->dest;
    TAILQ_REMOVE(&dest->sessions, ds, link);
    dest->nsessions--;
    ds->d->nsessions--;
    if (ds->ready)
        dest->nready--;
    relay_session_free(ds->s);
    event_free(ds->idle_ev);
    if (ds->job)
        delivery_job_free(ds->job);
    free(ds);
}

/* Puts a destination's waiting transactions to work: idle sessions first, then
 * new sessions up to the limits. */
static void dest_pump(struct delivery *d, struct dest *dest)
{
    if (d->stopping || dest->npending == 0)
        return;
    char why_held[SMTPC_TEXT_MAX];
    if (dest->kind == DEST_ROUTE && d->hooks.route_held &&
        d->hooks.route_held(d->hooks.arg, dest->name, why_held, sizeof why_held)) {
        /* A continuity outage: the route is being probed, not tried per message. */
        struct smtpc_outcome why;
        memset(&why, 0, sizeof why);
        why.result = SMTPC_TEMP;
        why.code = 451;
        snprintf(why.dsn, sizeof why.dsn, "4.4.1");
        snprintf(why.text, sizeof why.text, "%s", why_held);
        struct job *job;
        while ((job = TAILQ_FIRST(&dest->pending))) {
            TAILQ_REMOVE(&dest->pending, job, link);
            dest->npending--;
            memset(&job->peer, 0, sizeof job->peer);
            job->held = 1;
            job_fail_all(job, &why);
        }
        return;
    }
    if (dest->kind == DEST_ROUTE && !dest->route_ok) {
        struct smtpc_outcome why;
        memset(&why, 0, sizeof why);
        why.result = SMTPC_TEMP;
        why.code = 451;
        snprintf(why.dsn, sizeof why.dsn, "4.3.5");
        snprintf(why.text, sizeof why.text, "the route of domain %s is not valid (lifeboatctl domain set)",
                 dest->name);
        struct relay_end e = {.why = why};
        dest_unreachable(dest, &e);
        return;
    }
    struct dsession *ds, *next;
    for (ds = TAILQ_FIRST(&dest->sessions); ds && dest->npending > 0; ds = next) {
        next = TAILQ_NEXT(ds, link);
        if (ds->ready && !ds->job && relay_session_is_ready(ds->s))
            ds_take_work(ds);
    }
    unsigned limit = d->cfg->delivery_concurrency ? d->cfg->delivery_concurrency : 1;
    unsigned connecting = dest->nsessions - dest->nready;
    while (dest->npending > connecting && dest->nsessions < limit && d->nsessions < DELIVERY_MAX_SESSIONS) {
        if (ds_start(d, dest) != 0)
            break;
        connecting++;
    }
}

/* ------------------------------------------------------------ destinations */

static struct dest *dest_get(struct delivery *d, int kind, const char *name)
{
    char key[sizeof ((struct dest *)0)->key];
    snprintf(key, sizeof key, "%s:%s",
             kind == DEST_ROUTE   ? "route"
             : kind == DEST_RELAY ? "relay"
                                  : "mx",
             name);
    struct dest *dest = g_hash_table_lookup(d->dests, key);
    if (dest)
        return dest;
    dest = calloc(1, sizeof *dest);
    if (!dest)
        return NULL;
    memcpy(dest->key, key, sizeof key);
    dest->kind = kind;
    snprintf(dest->name, sizeof dest->name, "%s", name);
    TAILQ_INIT(&dest->pending);
    TAILQ_INIT(&dest->sessions);
    g_hash_table_insert(d->dests, dest->key, dest);
    return dest;
}

/* Where mail for domain goes now (routes may have changed since the last scan). */
static struct dest *dest_for_domain(struct delivery *d, const char *domain)
{
    struct store_domain dom;
    int rc = store_domain_get(d->st, domain, &dom);
    if (rc == STORE_OK) {
        struct dest *dest = dest_get(d, DEST_ROUTE, dom.name);
        if (dest) {
            dest->target.kind = RELAY_HOSTS;
            dest->route_ok =
                route_parse(dom.routes, &dest->target.hosts) == 0 && dest->target.hosts.count > 0;
            if (!dest->route_ok)
                log_err("domain %s: cannot use its route \"%s\"", dom.name, dom.routes);
        }
        return dest;
    }
    if (rc != STORE_NOTFOUND)
        return NULL;
    if (d->cfg->outbound_relay.host[0]) {
        struct dest *dest = dest_get(d, DEST_RELAY, "relay");
        if (dest) {
            dest->target.kind = RELAY_HOSTS;
            dest->target.hosts.count = 1;
            snprintf(dest->target.hosts.hosts[0].host, sizeof dest->target.hosts.hosts[0].host, "%s",
                     d->cfg->outbound_relay.host);
            snprintf(dest->target.hosts.hosts[0].port, sizeof dest->target.hosts.hosts[0].port, "%s",
                     d->cfg->outbound_relay.port);
        }
        return dest;
    }
    struct dest *dest = dest_get(d, DEST_MX, domain);
    if (dest) {
        dest->target.kind = RELAY_MX;
        snprintf(dest->target.domain, sizeof dest->target.domain, "%s", domain);
    }
    return dest;
}

static gboolean dest_unused(gpointer key, gpointer value, gpointer arg)
{
    struct dest *dest = value;
    (void)key;
    (void)arg;
    return dest->njobs == 0 && dest->nsessions == 0;
}

/* ------------------------------------------------------------------- scan */

struct scan {
    struct delivery *d;
    GArray *rows; /* struct store_rcpt */
    int truncated;
};

static int collect_due(const struct store_rcpt *r, void *arg)
{
    struct scan *sc = arg;
    if (g_hash_table_contains(sc->d->inflight, &r->id))
        return 0;
    g_array_append_val(sc->rows, *r);
    if (sc->rows->len >= SCAN_BATCH) {
        sc->truncated = 1;
        return 1;
    }
    return 0;
}

static void schedule_poll(struct delivery *d, int64_t now)
{
    int64_t when, delay = POLL_SECONDS;
    if (store_rcpt_next_due(d->st, &when) == STORE_OK && when > now && when - now < delay)
        delay = when - now;
    struct timeval tv = {(time_t)delay, 0};
    evtimer_add(d->timer_ev, &tv);
}

void delivery_reschedule(struct delivery *d)
{
    if (!d->stopping)
        schedule_poll(d, time_now());
}

/* Takes what is due and not in flight, groups it into jobs, starts them. */
static void scan(struct delivery *d)
{
    if (d->stopping)
        return;
    g_hash_table_foreach_remove(d->dests, dest_unused, NULL);
    int64_t now = time_now();
    struct scan sc = {d, g_array_new(FALSE, FALSE, sizeof(struct store_rcpt)), 0};
    size_t limit = g_hash_table_size(d->inflight) + SCAN_BATCH;
    /* Claimed for this node: with several nodes, the others leave these
     * alone while our lease lives (cluster.c renews it). */
    if (store_rcpt_claim_due(d->st, now, now + (int64_t)d->cfg->claim_lease, limit, collect_due, &sc) < 0)
        log_err("queue runner: cannot read due recipients; trying again in %d s", POLL_SECONDS);
    d->scan_truncated = sc.truncated;

    /* Group: one job per message and destination, DELIVERY_RCPT_LIMIT recipients at most. */
    GHashTable *groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL); /* -> dest */
    GPtrArray *jobs = g_ptr_array_new();
    for (guint i = 0; i < sc.rows->len; i++) {
        const struct store_rcpt *r = &g_array_index(sc.rows, struct store_rcpt, i);
        struct dest *dest;
        if (!g_hash_table_lookup_extended(domains, r->domain, NULL, (gpointer *)&dest)) {
            dest = dest_for_domain(d, r->domain);
            g_hash_table_insert(domains, g_strdup(r->domain), dest);
        }
        if (!dest)
            continue;
        char *key = g_strdup_printf("%s %s", r->msg_id, dest->key);
        struct job *job = g_hash_table_lookup(groups, key);
        if (!job || job->nrcpt >= DELIVERY_RCPT_LIMIT) {
            struct store_msg msg;
            int rc = store_message_get(d->st, r->msg_id, &msg);
            if (rc != STORE_OK) {
                if (rc == STORE_NOTFOUND)
                    log_warn("%s: recipient %s has no message; skipped", r->msg_id, r->rcpt);
                g_free(key);
                continue;
            }
            job = job_new(d, dest, &msg);
            if (!job) {
                g_free(key);
                continue;
            }
            g_ptr_array_add(jobs, job);
            g_hash_table_replace(groups, key, job);
        } else {
            g_free(key);
        }
        if (job_add_rcpt(job, r) != 0)
            log_err("%s: out of memory taking recipient %s", r->msg_id, r->rcpt);
    }
    g_hash_table_destroy(groups);
    g_hash_table_destroy(domains);
    g_array_free(sc.rows, TRUE);

    /* Queue every job first, then start the destinations, so that a
     * destination's sessions see all of its work. */
    GPtrArray *touched = g_ptr_array_new();
    for (guint i = 0; i < jobs->len; i++) {
        struct job *job = g_ptr_array_index(jobs, i);
        if (job->nrcpt == 0 || job_seal(job) != 0) {
            delivery_job_free(job);
            continue;
        }
        TAILQ_INSERT_TAIL(&job->dest->pending, job, link);
        job->dest->npending++;
        if (!g_ptr_array_find(touched, job->dest, NULL))
            g_ptr_array_add(touched, job->dest);
    }
    g_ptr_array_free(jobs, TRUE);
    for (guint i = 0; i < touched->len; i++)
        dest_pump(d, g_ptr_array_index(touched, i));
    g_ptr_array_free(touched, TRUE);
    schedule_poll(d, now);
}

/* The kick and the poll timer both end here. */
static void on_scan_timer(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *d = arg;
    (void)fd;
    (void)what;
    d->last_scan_ms = time_mono_ms();
    scan(d);
}

/* -------------------------------------------------------------------- API */

void delivery_kick(struct delivery *d)
{
    if (!d || d->stopping || evtimer_pending(d->kick_ev, NULL))
        return;
    int64_t wait = d->last_scan_ms + SCAN_MIN_INTERVAL_MS - time_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(d->kick_ev, &tv);
}

struct delivery *delivery_start(struct event_base *base, const struct config *cfg, struct store *read_store,
                                struct store_writer *writer, char *err, size_t errlen)
{
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->base = base;
    d->cfg = cfg;
    d->st = read_store;
    d->writer = writer;
    d->blobs = store_writer_blobs(writer);
    g_mime_init(); /* the SMTP data filter; counted, so other users are not disturbed */

    d->tls = SSL_CTX_new(TLS_client_method());
    if (!d->tls) {
        snprintf(err, errlen, "cannot create the TLS client context");
        goto fail;
    }
    /* Opportunistic TLS (RFC 7435): encrypt when we can, never refuse to deliver
     * because of a certificate. */
    SSL_CTX_set_verify(d->tls, SSL_VERIFY_NONE, NULL);
    d->resolver = resolver_new(base, NULL, err, errlen);
    if (!d->resolver)
        goto fail;
    d->env.base = base;
    d->env.resolver = d->resolver;
    d->env.tls = d->tls;
    d->env.helo = cfg->hostname;
    d->env.timeout = cfg->delivery_timeout ? cfg->delivery_timeout : 300;
    d->env.connect_timeout = d->env.timeout < CONNECT_TIMEOUT_MAX ? d->env.timeout : CONNECT_TIMEOUT_MAX;

    d->dests = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, free);
    d->inflight = g_hash_table_new(g_int64_hash, g_int64_equal);
    d->kick_ev = evtimer_new(base, on_scan_timer, d);
    d->timer_ev = evtimer_new(base, on_scan_timer, d);
    if (!d->kick_ev || !d->timer_ev) {
        snprintf(err, errlen, "cannot create the queue runner's timers");
        goto fail;
    }
    /* Whatever is due from before a restart goes out now. */
    delivery_kick(d);
    return d;
fail:
    delivery_free(d);
    return NULL;
}

/* Frees the jobs still waiting for a session of dest (they stay queued in the store). */
static void dest_drop_pending(struct dest *dest)
{
    struct job *job;
    while ((job = TAILQ_FIRST(&dest->pending))) {
        TAILQ_REMOVE(&dest->pending, job, link);
        dest->npending--;
        delivery_job_free(job);
    }
}

void delivery_stop(struct delivery *d)
{
    if (!d || d->stopping)
        return;
    d->stopping = 1;
    if (d->kick_ev)
        evtimer_del(d->kick_ev);
    if (d->timer_ev)
        evtimer_del(d->timer_ev);
    if (!d->dests)
        return;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, d->dests);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct dest *dest = value;
        dest_drop_pending(dest);
        /* A transaction under way finishes; every other session closes now. */
        struct dsession *ds, *next;
        for (ds = TAILQ_FIRST(&dest->sessions); ds; ds = next) {
            next = TAILQ_NEXT(ds, link);
            if (!ds->job)
                ds_drop(ds);
        }
    }
}

const struct relay_env *delivery_relay_env(const struct delivery *d)
{
    return &d->env;
}

void delivery_set_hooks(struct delivery *d, const struct delivery_hooks *hooks)
{
    if (hooks)
        d->hooks = *hooks;
    else
        memset(&d->hooks, 0, sizeof d->hooks);
}

int delivery_idle(const struct delivery *d)
{
    return !d || d->njobs == 0;
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    d->stopping = 1;
    if (d->dests) {
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, d->dests);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            struct dest *dest = value;
            dest_drop_pending(dest);
            while (TAILQ_FIRST(&dest->sessions))
                ds_drop(TAILQ_FIRST(&dest->sessions));
        }
        g_hash_table_destroy(d->dests);
    }
    if (d->inflight) {
        if (g_hash_table_size(d->inflight) > 0)
            log_warn("delivery: %u recipient(s) still had an outcome being recorded at shutdown",
                     g_hash_table_size(d->inflight));
        g_hash_table_destroy(d->inflight);
    }
    if (d->resolver)
        resolver_free(d->resolver);
    if (d->tls)
        SSL_CTX_free(d->tls);
    if (d->kick_ev)
        event_free(d->kick_ev);
    if (d->timer_ev)
        event_free(d->timer_ev);
    free(d);
}
