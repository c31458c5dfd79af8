/*
 * continuity_internal.h — the continuity engine's records, shared by engine.c
 * (the domain table, state changes, the delivery hooks), probe.c, drain.c and
 * alert.c. Private to src/continuity.
 */
#ifndef LB_CONTINUITY_CONTINUITY_INTERNAL_H
#define LB_CONTINUITY_CONTINUITY_INTERNAL_H

#include <glib.h>
#include <stdint.h>
#include <sys/queue.h>

#include "continuity/continuity.h"
#include "continuity/fsm.h"
#include "continuity/ratelimit.h"
#include "deliver/relay_session.h"
#include "store/blob.h"

struct probe;
struct drain;
struct webhooks;

/* One hosted domain as the engine sees it. Records live until continuity_free
 * (a domain that disappears from the store is marked gone), so that writer
 * jobs can find theirs by id whenever they come back. */
struct cdomain {
    struct continuity *c;
    int64_t id;
    struct store_domain row; /* as last read; row.state is the committed state */
    int gone;                /* no longer in the store */
    unsigned transitions;    /* state-change jobs with the writer */
    int fault_pending;       /* one of them is a server-level fault: hold the route already */
    struct probe *probe;     /* running probe, NULL: none */
    int64_t next_probe_ms;   /* monotonic */
    struct drain *drain;     /* running drain pass, NULL: none */
    int64_t next_sweep_ms;   /* monotonic: when a normal domain's leftovers are tried again */
    char last_probe_error[SMTPC_TEXT_MAX]; /* logged once per change, not per probe */
};

struct continuity {
    struct event_base *base;
    char hostname[256];
    unsigned probe_interval;    /* seconds */
    unsigned drain_concurrency; /* sessions per domain */
    unsigned drain_rate;        /* per second, 0: no limit */
    unsigned claim_lease;       /* seconds a drain's claim on an entry lasts unless renewed */
    int leading;                /* this node probes and drives the domains (store_lead_try) */
    struct store *st;           /* the loop thread's read connection */
    struct store_writer *writer;
    struct blobstore *blobs;
    struct delivery *delivery;
    const struct relay_env *env; /* the delivery engine's, for the drain */
    struct relay_env probe_env;  /* the same with a shorter reply timeout */
    GHashTable *domains;  /* int64 id -> struct cdomain (owned) */
    GHashTable *by_name;  /* domain name -> struct cdomain */
    GHashTable *inflight; /* mailbox entry id (int64 *) -> taken by a drain until its outcome is settled */
    struct event *tick_ev;
    struct webhooks *webhooks;
    unsigned jobs; /* writer jobs of ours not finished (state changes, alerts) */
    int stopping;
};

/* engine.c */
struct cdomain *cont_domain_by_id(struct continuity *c, int64_t id);
/* Asks the writer to apply input to the domain's state (compare-and-set on
 * the stored state, so a stale view never makes a wrong transition). */
void cont_request(struct cdomain *cd, int input, const char *cause);
/* Looks at every domain again soon (from the loop, never inside a callback). */
void cont_kick(struct continuity *c);

/* probe.c */
void probe_start(struct cdomain *cd);
void probe_abort(struct probe *p); /* no callbacks; never from inside the probe's own */

/* drain.c */
enum drain_mode {
    DRAIN_RECOVERY, /* the domain is recovering: drained means normal */
    DRAIN_SWEEP,    /* a normal domain's leftovers: no state change when done */
};
/* Starts a pass over the domain's waiting entries; cd->drain is set, or stays
 * NULL when there is nothing to do or the route is unusable. */
void drain_start(struct cdomain *cd, int mode);
/* Starts no more re-deliveries; the pass ends (and cd->drain goes) once those
 * under way are settled. Safe inside callbacks. */
void drain_stop(struct drain *dr);
/* 1 while re-deliveries are under way or waiting for their commit. */
int drain_busy(const struct drain *dr);
/* At continuity_free (after the writer stopped): everything goes, no callbacks. */
void drain_destroy(struct drain *dr);

/* alert.c: the admins' mail and the webhook for a committed state change. */
void alert_state_change(struct continuity *c, const struct store_domain *dom, int from, int to,
                        const char *cause, int64_t at, int64_t event_id);

/* webhook.c: POSTs JSON bodies from a worker thread (libcurl), 10 s each. */
struct webhooks *webhooks_start(char *err, size_t errlen);
/* Queues one POST; url and body are copied. The URL is never logged whole (it
 * may carry a token): failures name its scheme and host. */
void webhooks_post(struct webhooks *w, const char *url, const char *body);
/* Finishes the POST under way, drops (and logs) the rest, joins the thread. */
void webhooks_stop(struct webhooks *w);

#endif
