/*
 * engine.c — the continuity engine's core: the table of hosted domains and
 * their continuity state, the state changes (through the writer, each one a
 * compare-and-set on the stored state), the hooks the delivery engine calls,
 * and the tick that keeps every domain doing what its state says: probing in
 * outage, draining when recovering, sweeping leftovers when normal.
 *
 * With several nodes (PostgreSQL) one of them leads (store_lead_try, asked
 * every tick): only the leader probes, drains and sweeps; every node still
 * reports its own deliveries' faults (a state change is a compare-and-set on
 * the locked domain row, so two nodes seeing the same fault make one event)
 * and diverts by the state it reads. A leader that dies loses the lead with
 * its database session, and the next node's tick takes it over.
 *
 * The store is the truth. The table is a cache of it, read again every tick
 * (so `lifeboatctl continuity enable|disable` and `domain set --route` are
 * seen within a second) and updated at once when one of our own state changes
 * commits. Decisions that must not race — is the domain still recovering when
 * the drain says it is done? — are taken again on the writer thread, inside
 * the transaction that records them (cont_fsm_step on the stored state).
 */
#include "continuity/continuity_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/metrics.h"

#define TICK_MS 1000          /* the table is read again, and every domain looked at, this often */
#define PROBE_TIMEOUT_MAX 30  /* seconds a probe waits for one reply: a silent server fails the probe */

/* ------------------------------------------------------------ the table */

struct cdomain *cont_domain_by_id(struct continuity *c, int64_t id)
{
    return g_hash_table_lookup(c->domains, &id);
}

static void cdomain_free(gpointer p)
{
    free(p);
}

struct refresh {
    struct continuity *c;
    GHashTable *seen; /* ids */
    int64_t now_ms;
};

static int refresh_one(const struct store_domain *row, void *arg)
{
    struct refresh *r = arg;
    struct continuity *c = r->c;
    struct cdomain *cd = cont_domain_by_id(c, row->id);
    if (!cd) {
        cd = calloc(1, sizeof *cd);
        if (!cd) {
            log_err("continuity: out of memory tracking domain %s", row->name);
            return 0;
        }
        cd->c = c;
        cd->id = row->id;
        /* Found in outage (a restart): probe now. Leftovers of a normal
         * domain: try them now too. */
        cd->next_probe_ms = r->now_ms;
        cd->next_sweep_ms = r->now_ms;
        g_hash_table_insert(c->domains, &cd->id, cd);
    } else if (strcmp(cd->row.name, row->name) != 0) {
        g_hash_table_remove(c->by_name, cd->row.name);
    }
    cd->row = *row;
    cd->gone = 0;
    g_hash_table_insert(c->by_name, cd->row.name, cd);
    g_hash_table_add(r->seen, &cd->id);
    return 0;
}

/* Reads every domain again. 0, or -1 when the store could not be read (the
 * table stays as it was). */
static int refresh(struct continuity *c)
{
    struct refresh r = {c, g_hash_table_new(g_int64_hash, g_int64_equal), time_mono_ms()};
    int rc = store_domain_list(c->st, refresh_one, &r);
    if (rc == STORE_OK) {
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, c->domains);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            struct cdomain *cd = value;
            if (!cd->gone && !g_hash_table_contains(r.seen, &cd->id)) {
                cd->gone = 1;
                g_hash_table_remove(c->by_name, cd->row.name);
            }
        }
    } else {
        log_err("continuity: cannot read the domains; keeping the last known states");
    }
    g_hash_table_destroy(r.seen);
    return rc == STORE_OK ? 0 : -1;
}

/* Makes a domain do what its state says. Never called from inside a probe's
 * or a drain's session callbacks (it may abandon a probe). */
static void reconcile(struct cdomain *cd, int64_t now_ms)
{
    struct continuity *c = cd->c;
    if (c->stopping)
        return;
    if (cd->gone || !c->leading) {
        if (cd->probe)
            probe_abort(cd->probe);
        if (cd->drain)
            drain_stop(cd->drain);
        return;
    }
    int64_t interval_ms = (int64_t)c->probe_interval * 1000;
    switch (cd->row.state) {
    case DOMAIN_OUTAGE:
        if (cd->drain)
            drain_stop(cd->drain);
        if (!cd->probe && !cd->transitions && now_ms >= cd->next_probe_ms) {
            cd->next_probe_ms = now_ms + interval_ms;
            probe_start(cd);
        }
        break;
    case DOMAIN_RECOVERING:
        if (cd->probe)
            probe_abort(cd->probe);
        if (!cd->drain && !cd->transitions && now_ms >= cd->next_sweep_ms) {
            /* A drain that cannot start (a bad route) is tried again one
             * interval later, not every tick. */
            cd->next_sweep_ms = now_ms + interval_ms;
            drain_start(cd, DRAIN_RECOVERY);
            if (cd->drain)
                cd->next_sweep_ms = now_ms;
        }
        break;
    default:
        if (cd->probe)
            probe_abort(cd->probe);
        if (!cd->drain && !cd->transitions && now_ms >= cd->next_sweep_ms) {
            cd->next_sweep_ms = now_ms + interval_ms;
            struct store_continuity_counts n;
            if (store_continuity_counts(c->st, cd->id, &n) == STORE_OK && n.waiting > 0)
                drain_start(cd, DRAIN_SWEEP);
        }
        break;
    }
}

/* Takes the lead when it is free; notices when it was lost. */
static void update_lead(struct continuity *c)
{
    int was = c->leading;
    c->leading = store_lead_try(c->st) == 1;
    if (c->leading == was)
        return;
    if (c->leading) {
        log_info("continuity: node %s leads: it probes and drives the domains' states", store_node(c->st));
        /* What the last leader left: probe and sweep now. */
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, c->domains);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            struct cdomain *cd = value;
            cd->next_probe_ms = cd->next_sweep_ms = 0;
        }
    } else {
        log_warn("continuity: node %s no longer leads (another node does, or the database cannot tell)",
                 store_node(c->st));
        /* Our drains stop (reconcile); what they held is free for the leader now. */
        store_claims_release(c->st, 0, 1);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct continuity *c = arg;
    (void)fd;
    (void)what;
    if (c->stopping)
        return;
    update_lead(c);
    if (refresh(c) == 0) {
        int64_t now = time_mono_ms();
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, c->domains);
        while (g_hash_table_iter_next(&it, &key, &value))
            reconcile(value, now);
    }
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    evtimer_add(c->tick_ev, &tv);
}

int continuity_leading(const struct continuity *c)
{
    return c->leading;
}

void continuity_kick(struct continuity *c)
{
    cont_kick(c);
}

void cont_kick(struct continuity *c)
{
    if (c->stopping)
        return;
    struct timeval now = {0, 0};
    evtimer_add(c->tick_ev, &now);
}

/* ------------------------------------------------------------ state changes */

struct transition {
    struct continuity *c;
    int64_t domain_id;
    int input; /* enum cont_input */
    char cause[256];
    int64_t now;
    /* Filled on the writer thread: */
    struct cont_step step;
    int64_t event_id;
};

/* Writer thread: the step is taken on the stored state, inside the transaction
 * that records it. */
static int transition_write(struct store *st, struct blobstore *bs, void *arg)
{
    struct transition *t = arg;
    (void)bs;
    struct store_domain dom;
    int rc = store_domain_get_locked(st, t->domain_id, &dom);
    if (rc != STORE_OK)
        return rc;
    cont_fsm_step(dom.state, dom.continuity, t->input, &t->step);
    if (!t->step.changed)
        return STORE_OK;
    return store_domain_set_state(st, t->domain_id, t->step.to, t->cause, t->now, &t->event_id);
}

static void transition_done(int rc, void *arg)
{
    struct transition *t = arg;
    struct continuity *c = t->c;
    c->jobs--;
    struct cdomain *cd = cont_domain_by_id(c, t->domain_id);
    if (!cd) {
        free(t);
        return;
    }
    cd->transitions--;
    if (t->input == CONT_SERVER_FAULT)
        cd->fault_pending = 0;
    if (rc != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            log_warn("continuity: domain %s is gone; state change dropped", cd->row.name);
        else
            log_err("continuity: domain %s: cannot record the state change (store error); trying again",
                    cd->row.name);
        free(t);
        cont_kick(c);
        return;
    }
    int64_t now_ms = time_mono_ms();
    if (t->event_id) {
        cd->row.state = t->step.to;
        cd->row.state_since = t->now;
        snprintf(cd->row.state_cause, sizeof cd->row.state_cause, "%s", t->cause);
        if (t->step.from == DOMAIN_NORMAL && t->step.to == DOMAIN_OUTAGE)
            cd->row.outage_id = t->event_id;
        metrics_inc(METRIC_CONTINUITY_TRANSITIONS);
        log_info("continuity: domain %s %s -> %s: %s", cd->row.name, cont_state_name(t->step.from),
                 cont_state_name(t->step.to), t->cause);
    }
    if (t->step.actions & CONT_ACT_PROBE_LATER)
        cd->next_probe_ms = now_ms + (int64_t)c->probe_interval * 1000;
    if ((t->step.actions & CONT_ACT_STOP_DRAIN) && cd->drain)
        drain_stop(cd->drain);
    if (t->step.actions & CONT_ACT_START_DRAIN)
        cd->next_sweep_ms = now_ms;
    if (t->step.to == DOMAIN_NORMAL && t->step.changed)
        cd->next_sweep_ms = now_ms + (int64_t)c->probe_interval * 1000; /* what the pass left: later */
    if (t->event_id && (t->step.actions & CONT_ACT_ALERT)) {
        /* The cached row is refreshed once a second; a webhook or admin set just
         * before the fault must not be missed, so alert from the stored row. */
        struct store_domain fresh;
        const struct store_domain *dom = &cd->row;
        if (store_domain_get_by_id(c->st, cd->row.id, &fresh) == STORE_OK)
            dom = &fresh;
        alert_state_change(c, dom, t->step.from, t->step.to, t->cause, t->now, t->event_id);
    }
    reconcile(cd, now_ms);
    free(t);
}

void cont_request(struct cdomain *cd, int input, const char *cause)
{
    struct continuity *c = cd->c;
    struct transition *t = calloc(1, sizeof *t);
    if (!t) {
        log_err("continuity: domain %s: out of memory recording a state change", cd->row.name);
        return;
    }
    t->c = c;
    t->domain_id = cd->id;
    t->input = input;
    snprintf(t->cause, sizeof t->cause, "%s", cause && *cause ? cause : "no reason given");
    t->now = time_now();
    if (store_writer_submit(c->writer, transition_write, transition_done, t) != 0) {
        log_warn("continuity: domain %s: the store writer is stopping; state change not recorded",
                 cd->row.name);
        free(t);
        return;
    }
    c->jobs++;
    cd->transitions++;
    if (input == CONT_SERVER_FAULT)
        cd->fault_pending = 1;
}

/* ------------------------------------------------------------ delivery hooks */

static int hook_route_held(void *arg, const char *domain, char *why, size_t whylen)
{
    struct continuity *c = arg;
    struct cdomain *cd = g_hash_table_lookup(c->by_name, domain);
    if (!cd || cd->gone || !cd->row.continuity)
        return 0;
    if (cd->row.state == DOMAIN_OUTAGE)
        snprintf(why, whylen, "delivery to %s is suspended: continuity outage (%s)", cd->row.name,
                 cd->row.state_cause);
    else if (cd->fault_pending)
        snprintf(why, whylen, "delivery to %s is suspended: its server just failed", cd->row.name);
    else
        return 0;
    return 1;
}

static void hook_route_failure(void *arg, struct delivery_route_failure *f)
{
    struct continuity *c = arg;
    struct store_domain dom;
    if (store_domain_get(c->st, f->domain, &dom) != STORE_OK)
        return; /* not hosted any more, or the store failed: deferred as usual */
    struct cdomain *cd = cont_domain_by_id(c, dom.id);
    if (!cd && refresh(c) == 0) /* added since the last tick */
        cd = cont_domain_by_id(c, dom.id);
    if (cd && f->server_level && !f->held && !cd->fault_pending &&
        ((dom.continuity && dom.state == DOMAIN_NORMAL) || dom.state == DOMAIN_RECOVERING))
        cont_request(cd, CONT_SERVER_FAULT, f->cause);
    if (!dom.continuity)
        return; /* nothing is diverted: everything deferred as today */

    for (size_t i = 0; i < f->nrcpt; i++) {
        struct delivery_route_rcpt *r = &f->rcpts[i];
        struct rcpt_lookup lk;
        if (directory_lookup_rcpt(c->st, r->addr, &lk) != STORE_OK)
            continue;
        int v = cont_divert_verdict(&dom, &lk, f->msg->received, r->pre_continuity);
        if (v == CONT_DIVERT) {
            r->divert = 1;
            r->user_id = lk.user.id;
            snprintf(r->user, sizeof r->user, "%s", lk.user.email);
        } else {
            log_info("%s: to=<%s>: not diverted into a continuity mailbox: %s", f->msg->id, r->addr,
                     cont_divert_reason(v));
        }
    }
}

/* Writer thread. The entry belongs to the outage of the user's domain while it
 * is in one (or recovering from it); a copy diverted by a 4xx for single
 * recipients of a normal domain belongs to none. */
static int hook_divert(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t now)
{
    /* The loop thread decided on a copy of the recipient read before the
     * attempt; `continuity enable` may have committed since and marked it as
     * queued before continuity. Only this transaction sees the truth. */
    struct store_rcpt row;
    int rc = store_rcpt_get(st, rcpt_id, &row);
    if (rc != STORE_OK)
        return rc;
    if (row.pre_continuity)
        return STORE_NOTFOUND; /* not divertable: the caller defers it */
    struct store_user u;
    struct store_domain dom;
    rc = store_user_get_by_id(st, user_id, &u);
    if (rc == STORE_OK)
        rc = store_domain_get_by_id(st, u.domain_id, &dom);
    if (rc != STORE_OK)
        return rc;
    int64_t outage_id = dom.state != DOMAIN_NORMAL ? dom.outage_id : 0;
    return store_mailbox_divert(st, rcpt_id, user_id, outage_id, now, NULL);
}

/* -------------------------------------------------------------------- API */

static void take_config(struct continuity *c, const struct config *cfg)
{
    c->probe_interval = cfg->dr_probe_interval ? cfg->dr_probe_interval : 30;
    c->drain_concurrency = cfg->drain_concurrency ? cfg->drain_concurrency : 1;
    c->drain_rate = cfg->drain_rate;
    c->claim_lease = cfg->claim_lease ? cfg->claim_lease : 60;
}

struct continuity *continuity_start(struct event_base *base, const struct config *cfg,
                                    struct store *read_store, struct store_writer *writer,
                                    struct delivery *delivery, char *err, size_t errlen)
{
    struct continuity *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    snprintf(c->hostname, sizeof c->hostname, "%s", cfg->hostname);
    take_config(c, cfg);
    c->st = read_store;
    c->writer = writer;
    c->blobs = store_writer_blobs(writer);
    c->delivery = delivery;
    c->env = delivery_relay_env(delivery);
    c->probe_env = *c->env;
    if (c->probe_env.timeout > PROBE_TIMEOUT_MAX)
        c->probe_env.timeout = PROBE_TIMEOUT_MAX;
    if (c->probe_env.connect_timeout > c->probe_env.timeout)
        c->probe_env.connect_timeout = c->probe_env.timeout;
    c->domains = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, cdomain_free);
    c->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    c->inflight = g_hash_table_new(g_int64_hash, g_int64_equal);
    c->tick_ev = evtimer_new(base, on_tick, c);
    if (!c->tick_ev) {
        snprintf(err, errlen, "cannot create the continuity engine's timer");
        goto fail;
    }
    c->webhooks = webhooks_start(err, errlen);
    if (!c->webhooks)
        goto fail;
    /* The table must be ready before the delivery engine's first scan asks
     * whether a route is held. */
    if (refresh(c) != 0) {
        snprintf(err, errlen, "cannot read the domains' continuity states from the store");
        goto fail;
    }
    struct delivery_hooks hooks = {
        .arg = c,
        .route_held = hook_route_held,
        .route_failure = hook_route_failure,
        .divert = hook_divert,
    };
    delivery_set_hooks(delivery, &hooks);
    cont_kick(c);
    return c;
fail:
    continuity_free(c);
    return NULL;
}

void continuity_reload(struct continuity *c, const struct config *cfg)
{
    take_config(c, cfg);
}

void continuity_stop(struct continuity *c)
{
    if (!c || c->stopping)
        return;
    c->stopping = 1;
    evtimer_del(c->tick_ev);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, c->domains);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct cdomain *cd = value;
        if (cd->probe)
            probe_abort(cd->probe);
        if (cd->drain)
            drain_stop(cd->drain);
    }
}

int continuity_idle(const struct continuity *c)
{
    if (!c)
        return 1;
    if (c->jobs > 0)
        return 0;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, c->domains);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const struct cdomain *cd = value;
        if (cd->drain && drain_busy(cd->drain))
            return 0;
    }
    return 1;
}

void continuity_free(struct continuity *c)
{
    if (!c)
        return;
    c->stopping = 1;
    if (c->delivery)
        delivery_set_hooks(c->delivery, NULL);
    if (c->domains) {
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, c->domains);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            struct cdomain *cd = value;
            if (cd->probe)
                probe_abort(cd->probe);
            if (cd->drain)
                drain_destroy(cd->drain);
        }
    }
    if (c->jobs)
        log_warn("continuity: %u state change(s) or alert(s) were still with the store writer at shutdown",
                 c->jobs);
    if (c->webhooks)
        webhooks_stop(c->webhooks);
    if (c->tick_ev)
        event_free(c->tick_ev);
    if (c->by_name)
        g_hash_table_destroy(c->by_name);
    if (c->domains)
        g_hash_table_destroy(c->domains);
    if (c->inflight)
        g_hash_table_destroy(c->inflight);
    free(c);
}
