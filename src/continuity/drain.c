/*
 * drain.c — the recovery drain: one pass over a domain's mailbox entries that
 * wait for re-delivery, oldest first, each sent back to the domain's route as
 * one SMTP transaction through the delivery engine's client:
 *
 *   MAIL FROM:<the entry's sender>  RCPT TO:<each of the entry's recipients>
 *   DATA  the entry's prefix (Received:) + the blob, byte for byte
 *
 * An entry the user sent from continuity (DIR_OUTBOUND, --outgoing-to-own-server)
 * goes to the user's own address instead, with "X-Lifeboat-Sent: yes" on top so
 * that server rules can file it as sent.
 *
 * At most drain_concurrency sessions carry the pass, each reused for entry
 * after entry, and a pacing limiter lets at most drain_rate transactions start
 * a second. What each answer means is cont_drain_verdict's call:
 *   delivered -> store_mailbox_redelivered in its own writer job, submitted the
 *                moment the 250 arrives (the only duplicate window: 250 ..
 *                commit; see continuity.h);
 *   refused   -> the entry stays in the mailbox, not tried again (REDELIVER_NONE);
 *   later     -> this entry's recipients were deferred: skipped for this pass;
 *   fault     -> the server failed as a whole: the pass stops, the domain
 *                goes back to outage.
 * An entry is "in flight" (continuity->inflight) from the moment a pass takes it
 * until its outcome is settled, so no pass takes it twice. When nothing is left
 * but what this pass skipped, a recovering domain is drained: normal.
 */
#include "continuity/continuity_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/metrics.h"

#define DRAIN_BATCH 64 /* entries read from the store at a time */
#define SENT_HEADER "X-Lifeboat-Sent: yes\r\n"

struct ditem;
struct dsess;
TAILQ_HEAD(ditem_list, ditem);
TAILQ_HEAD(dsess_list, dsess);

/* One entry on its way back. */
struct ditem {
    TAILQ_ENTRY(ditem) link; /* in drain->backlog while waiting for a session */
    struct drain *dr;
    struct store_mailbox_entry e;
    char user[ADDR_MAX + 1]; /* the mailbox's owner */
    char *rcptbuf;
    const char **rcpts;
    size_t nrcpt;
    char *prefix;
    unsigned char *body;
    size_t body_len;
    struct smtpc_outcome *out;
    struct relay_txn txn;
    struct relay_peer peer;
    int64_t t_start; /* monotonic ms */
    int verdict;     /* enum cont_drain, once answered */
    int store_rc;    /* of the writer job that settled it */
};

struct dsess {
    TAILQ_ENTRY(dsess) link;
    struct drain *dr;
    struct relay_session *s;
    struct ditem *item; /* the transaction under way */
    int ready;
};

struct drain {
    struct cdomain *cd;
    int mode; /* enum drain_mode */
    struct relay_target target;
    struct ditem_list backlog;
    size_t nbacklog;
    size_t nitems; /* alive: waiting, sending, or being recorded */
    struct dsess_list sessions;
    unsigned nsessions, nready;
    GHashTable *skipped; /* entry ids deferred during this pass */
    int stopping;        /* no more transactions: a fault, the state changed, or the pass is over */
    int finishing;       /* inside drain_check: do not recurse */
    unsigned later_streak;
    struct ratelimit rl;
    struct event *rate_ev;
    uint64_t n_delivered, n_refused, n_later;
};

static void drain_pump(struct drain *dr);
static void drain_check(struct drain *dr);

/* ------------------------------------------------------------------ items */

static void item_free(struct ditem *it)
{
    struct drain *dr = it->dr;
    g_hash_table_remove(dr->cd->c->inflight, &it->e.id);
    dr->nitems--;
    free(it->rcptbuf);
    free(it->rcpts);
    free(it->prefix);
    free(it->body);
    free(it->out);
    free(it);
}

/* Splits the entry's recipients, or takes the owner's address for mail the
 * user sent. 0 or -1. */
static int item_envelope(struct ditem *it)
{
    if (it->e.direction == DIR_OUTBOUND) {
        it->rcptbuf = strdup(it->user);
        it->rcpts = calloc(1, sizeof *it->rcpts);
        if (!it->rcptbuf || !it->rcpts)
            return -1;
        it->rcpts[0] = it->rcptbuf;
        it->nrcpt = 1;
        return 0;
    }
    it->rcptbuf = strdup(it->e.rcpts);
    if (!it->rcptbuf)
        return -1;
    size_t n = 1;
    for (const char *p = it->rcptbuf; *p; p++)
        n += *p == ',';
    it->rcpts = calloc(n, sizeof *it->rcpts);
    if (!it->rcpts)
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(it->rcptbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            it->rcpts[it->nrcpt++] = tok;
    return it->nrcpt > 0 ? 0 : -1;
}

struct scan {
    struct drain *dr;
    size_t added;
};

static int scan_one(const struct store_mailbox_entry *e, void *arg)
{
    struct scan *sc = arg;
    struct drain *dr = sc->dr;
    struct continuity *c = dr->cd->c;
    if (g_hash_table_contains(c->inflight, &e->id) || g_hash_table_contains(dr->skipped, &e->id))
        return 0;
    struct ditem *it = calloc(1, sizeof *it);
    if (!it)
        return 1;
    it->dr = dr;
    it->e = *e;
    dr->nitems++;
    g_hash_table_insert(c->inflight, &it->e.id, it);
    struct store_user u;
    if (store_user_get_by_id(c->st, e->user_id, &u) == STORE_OK)
        snprintf(it->user, sizeof it->user, "%s", u.email);
    if (!it->user[0] || item_envelope(it) != 0) {
        log_err("%s: mailbox entry %lld has no usable recipient (user %lld); it stays in the mailbox",
                e->msg_id, (long long)e->id, (long long)e->user_id);
        g_hash_table_add(dr->skipped, g_memdup2(&e->id, sizeof e->id));
        item_free(it);
        return 0;
    }
    TAILQ_INSERT_TAIL(&dr->backlog, it, link);
    dr->nbacklog++;
    return ++sc->added >= DRAIN_BATCH;
}

/* Takes the next waiting entries that no pass holds and this one did not
 * skip. Returns how many. */
static size_t drain_scan(struct drain *dr)
{
    struct continuity *c = dr->cd->c;
    struct scan sc = {dr, 0};
    size_t limit = g_hash_table_size(c->inflight) + g_hash_table_size(dr->skipped) + DRAIN_BATCH;
    int64_t now = time_now();
    if (store_mailbox_claim_redelivery(c->st, dr->cd->id, now, now + (int64_t)c->claim_lease, limit, scan_one, &sc) <
        0)
        log_err("continuity: domain %s: cannot read the mailbox entries waiting for re-delivery",
                dr->cd->row.name);
    return sc.added;
}

/* ---------------------------------------------------------------- outcomes */

static void fmt_delay(int64_t seconds, char *out, size_t n)
{
    snprintf(out, n, "%lld", (long long)(seconds > 0 ? seconds : 0));
}

/* One line per recipient, Postfix style, queue ID first. */
static void log_item(const struct ditem *it, const char *status, const char *text)
{
    char relay[DOMAIN_MAX + 80] = "none", delay[24];
    if (it->peer.addr[0])
        snprintf(relay, sizeof relay, "%s[%s]:%s", it->peer.host, it->peer.addr, it->peer.port);
    fmt_delay(time_now() - it->e.received, delay, sizeof delay);
    for (size_t i = 0; i < it->nrcpt; i++)
        log_info("%s: to=<%s>, relay=%s, delay=%s, mailbox=%s, status=%s (%s)", it->e.msg_id, it->rcpts[i], relay,
                 delay, it->user, status, text);
}

/* Server replies can be long: texts are cut to their field. */
static void text_printf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void text_printf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* The reply that decided the entry, as one line. */
static void item_reason(const struct ditem *it, char *out, size_t n)
{
    const struct smtpc_outcome *pick = NULL;
    for (size_t i = 0; i < it->nrcpt; i++)
        if (!pick || it->out[i].result == SMTPC_OK ||
            (pick->result != SMTPC_OK && it->out[i].result == SMTPC_TEMP))
            pick = &it->out[i];
    if (!pick || !pick->text[0])
        snprintf(out, n, "no reason given");
    else if (pick->from_server && pick->result != SMTPC_OK)
        text_printf(out, n, "host %s[%s] said: %s (in reply to %s command)", it->peer.host, it->peer.addr,
                    pick->text, smtpc_step_name(pick->step));
    else
        snprintf(out, n, "%s", pick->text);
}

/* Writer thread: the one transition of this entry. */
static int settle_write(struct store *st, struct blobstore *bs, void *arg)
{
    struct ditem *it = arg;
    (void)bs;
    int rc;
    if (it->verdict == CONT_DRAIN_DELIVERED) {
        rc = store_mailbox_redelivered(st, it->e.id);
    } else {
        /* Refused: no more tries, unless its user changed it meanwhile (deleted
         * it: that must stay counted as deleted). */
        struct store_mailbox_entry now;
        rc = store_mailbox_get(st, it->e.id, &now);
        if (rc == STORE_OK && now.redeliver != REDELIVER_WAITING)
            rc = STORE_NOTFOUND;
        if (rc == STORE_OK)
            rc = store_mailbox_set_redeliver(st, it->e.id, REDELIVER_NONE);
    }
    it->store_rc = rc;
    return rc == STORE_NOTFOUND ? STORE_OK : rc; /* deleted meanwhile: nothing to roll back */
}

static void settle_done(int rc, void *arg)
{
    struct ditem *it = arg;
    struct drain *dr = it->dr;
    if (rc != STORE_OK) {
        log_err("%s: cannot record the re-delivery of mailbox entry %lld (store error); it stays waiting and "
                "may be re-delivered once more",
                it->e.msg_id, (long long)it->e.id);
        g_hash_table_add(dr->skipped, g_memdup2(&it->e.id, sizeof it->e.id));
    } else if (it->store_rc == STORE_NOTFOUND) {
        log_warn("%s: mailbox entry %lld was deleted or changed by its user while it was being re-delivered",
                 it->e.msg_id, (long long)it->e.id);
    }
    item_free(it);
    drain_check(dr);
}

static void settle(struct ditem *it)
{
    struct drain *dr = it->dr;
    if (store_writer_submit(dr->cd->c->writer, settle_write, settle_done, it) != 0) {
        log_warn("%s: the store writer is stopping; mailbox entry %lld stays waiting and will be re-delivered "
                 "once more",
                 it->e.msg_id, (long long)it->e.id);
        item_free(it);
    }
}

static void drain_fault(struct drain *dr, const char *cause)
{
    if (dr->stopping)
        return;
    drain_stop(dr);
    cont_request(dr->cd, CONT_SERVER_FAULT, cause);
}

/* A transaction is over (outcomes filled, peer known). */
static void item_answered(struct ditem *it)
{
    struct drain *dr = it->dr;
    char why[SMTPC_TEXT_MAX + 128];
    item_reason(it, why, sizeof why);
    it->verdict = cont_drain_verdict(it->out, it->nrcpt, it->txn.smtp.server_level);
    if (it->verdict == CONT_DRAIN_LATER && ++dr->later_streak >= CONT_DRAIN_LATER_LIMIT)
        it->verdict = CONT_DRAIN_FAULT; /* every user deferred in a row: the server's trouble */
    switch (it->verdict) {
    case CONT_DRAIN_DELIVERED:
        dr->later_streak = 0;
        dr->n_delivered++;
        metrics_inc(METRIC_CONTINUITY_REDELIVERED);
        log_item(it, "redelivered", why);
        settle(it);
        return;
    case CONT_DRAIN_REFUSED:
        dr->n_refused++;
        log_item(it, "failed", why);
        log_warn("%s: the server of %s refused mailbox entry %lld for good; it stays in the mailbox of %s and is "
                 "not re-delivered",
                 it->e.msg_id, dr->cd->row.name, (long long)it->e.id, it->user);
        settle(it);
        return;
    case CONT_DRAIN_LATER:
        dr->n_later++;
        log_item(it, "deferred", why);
        g_hash_table_add(dr->skipped, g_memdup2(&it->e.id, sizeof it->e.id));
        item_free(it);
        return;
    default:
        log_item(it, "deferred", why);
        item_free(it);
        drain_fault(dr, why);
        return;
    }
}

/* ---------------------------------------------------------------- sessions */

/* Puts an entry on a ready session. */
static void item_start(struct dsess *ds, struct ditem *it)
{
    struct continuity *c = ds->dr->cd->c;
    it->t_start = time_mono_ms();
    it->peer = *relay_session_peer(ds->s);
    /* The user may have deleted it since the scan: look once more, right
     * before it goes (what is left is the time of one transaction). */
    struct store_mailbox_entry now;
    int rc = store_mailbox_get(c->st, it->e.id, &now);
    if (rc != STORE_OK || now.redeliver != REDELIVER_WAITING) {
        if (rc == STORE_ERR)
            g_hash_table_add(ds->dr->skipped, g_memdup2(&it->e.id, sizeof it->e.id));
        item_free(it);
        return;
    }
    int outbound = it->e.direction == DIR_OUTBOUND;
    size_t plen = strlen(it->e.prefix);
    it->prefix = malloc(sizeof SENT_HEADER + plen);
    it->out = calloc(it->nrcpt, sizeof *it->out);
    if (!it->prefix || !it->out || blob_get(c->blobs, it->e.blob, &it->body, &it->body_len) != 0) {
        log_err("%s: cannot read mailbox entry %lld (blob %s); it stays waiting", it->e.msg_id, (long long)it->e.id,
                it->e.blob);
        g_hash_table_add(ds->dr->skipped, g_memdup2(&it->e.id, sizeof it->e.id));
        item_free(it);
        return;
    }
    snprintf(it->prefix, sizeof SENT_HEADER + plen, "%s%s", outbound ? SENT_HEADER : "", it->e.prefix);
    struct relay_txn *t = &it->txn;
    relay_txn_init(t, it->prefix, it->body, it->body_len, it->e.sender, it->rcpts, it->nrcpt, it->out);
    rc = relay_session_send(ds->s, t);
    if (rc == 0) {
        ds->item = it;
        return;
    }
    if (rc < 0) { /* cannot happen: the session was ready */
        TAILQ_INSERT_HEAD(&ds->dr->backlog, it, link);
        ds->dr->nbacklog++;
        return;
    }
    item_answered(it); /* decided without the server (too big for it, ...) */
}

static void on_rate(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drain_pump(arg);
}

/* Gives the waiting entries to ready sessions, as fast as the rate allows;
 * sessions with nothing to do say goodbye. */
static void dispatch(struct drain *dr)
{
    struct dsess *ds, *next;
    for (ds = TAILQ_FIRST(&dr->sessions); ds; ds = next) {
        next = TAILQ_NEXT(ds, link);
        /* An entry can be settled without the server (deleted meanwhile, too
         * big for it): the session then takes the next one. */
        while (ds->ready && !ds->item && relay_session_is_ready(ds->s)) {
            if (dr->stopping || dr->nbacklog == 0) {
                relay_session_quit(ds->s);
                break;
            }
            int64_t wait = ratelimit_take(&dr->rl, time_mono_ms());
            if (wait > 0) {
                if (!evtimer_pending(dr->rate_ev, NULL)) {
                    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
                    evtimer_add(dr->rate_ev, &tv);
                }
                return;
            }
            struct ditem *it = TAILQ_FIRST(&dr->backlog);
            TAILQ_REMOVE(&dr->backlog, it, link);
            dr->nbacklog--;
            item_start(ds, it);
        }
    }
}

static void ds_on_ready(struct relay_session *s, void *arg)
{
    struct dsess *ds = arg;
    (void)s;
    if (!ds->ready) {
        ds->ready = 1;
        ds->dr->nready++;
    }
    drain_pump(ds->dr);
}

static void ds_on_txn_done(struct relay_session *s, struct relay_txn *t, void *arg)
{
    struct dsess *ds = arg;
    struct ditem *it = ds->item;
    (void)t;
    ds->item = NULL;
    if (!it)
        return;
    it->peer = *relay_session_peer(s);
    item_answered(it);
    /* The ready callback follows if the session goes on. */
}

static void ds_on_end(struct relay_session *s, const struct relay_end *e, void *arg)
{
    struct dsess *ds = arg;
    struct drain *dr = ds->dr;
    (void)s;
    TAILQ_REMOVE(&dr->sessions, ds, link);
    dr->nsessions--;
    if (ds->ready)
        dr->nready--;
    struct ditem *it = ds->item;
    free(ds);
    if (it) { /* cannot happen: the transaction is reported first */
        TAILQ_INSERT_HEAD(&dr->backlog, it, link);
        dr->nbacklog++;
    }
    /* Could not get as far as EHLO with any host of the route, and no other
     * session is talking to it: the server is down. */
    if (!e->reached_ready && dr->nready == 0)
        drain_fault(dr, e->why.text[0] ? e->why.text : "cannot connect to the route");
    drain_pump(dr);
}

static int ds_start(struct drain *dr)
{
    static const struct relay_callbacks callbacks = {ds_on_ready, ds_on_txn_done, ds_on_end};
    struct dsess *ds = calloc(1, sizeof *ds);
    if (!ds)
        return -1;
    ds->dr = dr;
    ds->s = relay_session_new(dr->cd->c->env, &dr->target, &callbacks, ds);
    if (!ds->s) {
        free(ds);
        return -1;
    }
    TAILQ_INSERT_TAIL(&dr->sessions, ds, link);
    dr->nsessions++;
    return 0;
}

/* ------------------------------------------------------------------- pass */

static void drain_free(struct drain *dr)
{
    struct ditem *it;
    while ((it = TAILQ_FIRST(&dr->backlog))) {
        TAILQ_REMOVE(&dr->backlog, it, link);
        dr->nbacklog--;
        item_free(it);
    }
    struct dsess *ds;
    while ((ds = TAILQ_FIRST(&dr->sessions))) {
        TAILQ_REMOVE(&dr->sessions, ds, link);
        relay_session_free(ds->s);
        if (ds->item)
            item_free(ds->item);
        free(ds);
    }
    if (dr->rate_ev)
        event_free(dr->rate_ev);
    if (dr->skipped)
        g_hash_table_destroy(dr->skipped);
    if (dr->cd->drain == dr)
        dr->cd->drain = NULL;
    free(dr);
}

/* Is the pass over? Called whenever an entry was settled or a session ended. */
static void drain_check(struct drain *dr)
{
    if (dr->finishing)
        return;
    if (dr->nitems > 0) {
        drain_pump(dr);
        return;
    }
    struct cdomain *cd = dr->cd;
    if (cd->c->stopping && !dr->stopping)
        drain_stop(dr); /* shutting down: the pass is cut short, not done */
    if (!dr->stopping) {
        /* Everything taken is settled: anything new (or beyond the batch)? */
        if (drain_scan(dr) > 0) {
            drain_pump(dr);
            return;
        }
        dr->stopping = 1;
        log_info("continuity: domain %s: re-delivery pass done: %llu re-delivered, %llu refused, %llu deferred",
                 cd->row.name, (unsigned long long)dr->n_delivered, (unsigned long long)dr->n_refused,
                 (unsigned long long)dr->n_later);
        if (dr->mode == DRAIN_RECOVERY) {
            char cause[256];
            snprintf(cause, sizeof cause, "drained: %llu message(s) re-delivered%s",
                     (unsigned long long)dr->n_delivered,
                     dr->n_refused || dr->n_later ? ", some kept in the mailboxes (see the log)" : "");
            cont_request(cd, CONT_DRAINED, cause);
        }
    }
    if (dr->nsessions > 0) {
        dispatch(dr); /* idle sessions quit; the last end brings us back here */
        return;
    }
    dr->finishing = 1;
    drain_free(dr);
    cont_kick(cd->c);
}

static void drain_pump(struct drain *dr)
{
    if (dr->stopping || dr->cd->c->stopping) {
        if (!dr->stopping)
            drain_stop(dr);
        dispatch(dr);
        if (dr->nitems == 0)
            drain_check(dr);
        return;
    }
    if (dr->nbacklog < dr->cd->c->drain_concurrency)
        drain_scan(dr);
    dispatch(dr);
    unsigned limit = dr->cd->c->drain_concurrency;
    unsigned connecting = dr->nsessions - dr->nready;
    while (dr->nbacklog > connecting && dr->nsessions < limit) {
        if (ds_start(dr) != 0)
            break;
        connecting++;
    }
    if (dr->nitems == 0)
        drain_check(dr);
}

void drain_start(struct cdomain *cd, int mode)
{
    struct continuity *c = cd->c;
    struct drain *dr = calloc(1, sizeof *dr);
    if (!dr) {
        log_err("continuity: domain %s: out of memory starting the re-delivery", cd->row.name);
        return;
    }
    dr->cd = cd;
    dr->mode = mode;
    TAILQ_INIT(&dr->backlog);
    TAILQ_INIT(&dr->sessions);
    dr->skipped = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    dr->rate_ev = evtimer_new(c->base, on_rate, dr);
    ratelimit_init(&dr->rl, c->drain_rate, 1);
    dr->target.kind = RELAY_HOSTS;
    if (!dr->rate_ev || route_parse(cd->row.routes, &dr->target.hosts) != 0 || dr->target.hosts.count == 0) {
        log_err("continuity: domain %s: cannot re-deliver to its route \"%s\" (lifeboatctl domain set --route)",
                cd->row.name, cd->row.routes);
        drain_free(dr);
        return;
    }
    cd->drain = dr;
    log_info("continuity: domain %s: re-delivering what the continuity mailboxes hold (%s)", cd->row.name,
             mode == DRAIN_RECOVERY ? "recovery" : "leftovers");
    drain_pump(dr); /* an empty pass ends here at once (and a recovering domain is drained) */
}

void drain_stop(struct drain *dr)
{
    if (dr->stopping)
        return;
    dr->stopping = 1;
    struct ditem *it;
    while ((it = TAILQ_FIRST(&dr->backlog))) {
        TAILQ_REMOVE(&dr->backlog, it, link);
        dr->nbacklog--;
        item_free(it);
    }
    evtimer_del(dr->rate_ev);
    dispatch(dr); /* idle sessions quit; connecting ones quit when ready */
}

int drain_busy(const struct drain *dr)
{
    return dr->nitems > 0;
}

void drain_destroy(struct drain *dr)
{
    dr->finishing = 1;
    drain_free(dr);
}
