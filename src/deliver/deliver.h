/*
 * deliver.h — the delivery engine: the queue runner and the SMTP client.
 *
 * It lives on the daemon's event loop. It reads due recipients from the store
 * (store_rcpt_due on the loop thread's read connection), groups them into
 * transactions — one message to one destination with all of its due
 * recipients there — and runs them over SMTP client sessions:
 *   - a hosted domain's mail goes to the domain's route, hosts tried in order;
 *   - other mail goes to outbound_relay when it is set, else to the recipient
 *     domain's MX hosts (c-ares; the domain's address when it has no MX; a null
 *     MX bounces);
 *   - at most delivery_concurrency sessions per destination; sessions are
 *     reused for the destination's next messages (RSET between them).
 * Every outcome is written through the group-commit writer: sent, bounced (and
 * an RFC 3464 DSN queued to the sender, never to the null sender nor about a
 * bounce), or deferred with queue_next_attempt() — bounced instead once the
 * message has outlived queue_lifetime. Each one is logged Postfix style:
 *   QUEUEID: to=<a@b>, relay=host[ip]:port, delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=sent (...)
 *
 * The engine looks for due work when delivery_kick() is called (new mail was
 * queued) and on a timer: at the earliest next attempt, and at least every few
 * seconds, so that `lifeboatctl queue flush` from another process is noticed.
 *
 * The continuity engine (src/continuity) comes after this module and plugs in
 * through struct delivery_hooks, so that nothing here knows its headers: it can
 * hold a hosted domain's route (an outage: no connection per message), and it
 * decides what happens to recipients that met a temporary failure on a route
 * (diverted into a continuity mailbox, or deferred as usual).
 */
#ifndef LB_DELIVER_DELIVER_H
#define LB_DELIVER_DELIVER_H

#include <event2/event.h>
#include <stddef.h>

#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"

struct delivery;
struct relay_env;

/* Starts the engine on base. cfg, read_store and writer are borrowed and must
 * outlive it. Returns NULL with err filled on failure. */
struct delivery *delivery_start(struct event_base *base, const struct config *cfg, struct store *read_store,
                                struct store_writer *writer, char *err, size_t errlen);

/* New mail was queued: look for due work now. */
void delivery_kick(struct delivery *d);

/* Stops starting work: no new transactions, idle and connecting sessions are
 * closed, transactions under way finish (or are abandoned by delivery_free).
 * Whatever was not delivered stays queued and is delivered again later. */
void delivery_stop(struct delivery *d);

/* 1 when no transaction is in flight and no outcome is waiting to be written. */
int delivery_idle(const struct delivery *d);

/* Frees everything. Call after store_writer_stop(): the writer's last done
 * callbacks still reach the engine. */
void delivery_free(struct delivery *d);

/* The engine's SMTP client environment (loop, resolver, TLS client context,
 * EHLO name, timeouts), for other clients of the same loop: the continuity
 * engine's probes and recovery drain use relay_session.h with it. Valid until
 * delivery_free. */
const struct relay_env *delivery_relay_env(const struct delivery *d);

/* ------------------------------------------------------------------ hooks */

/* One recipient that met a temporary failure on its hosted domain's route. */
struct delivery_route_rcpt {
    int64_t rcpt_id;
    const char *addr;
    int pre_continuity;        /* queued before continuity was enabled (store_rcpt.pre_continuity) */
    /* Set by the route_failure hook to divert this copy instead of deferring it: */
    int divert;
    int64_t user_id;           /* whose continuity mailbox gets it */
    char user[ADDR_MAX + 1];   /* that user's address, for the log line */
};

/* A temporary failure on a hosted domain's route (one transaction). */
struct delivery_route_failure {
    const char *domain;          /* the hosted domain, lower case */
    const struct store_msg *msg;
    int server_level;            /* the server as a whole failed (smtp_client.h), or the route is held */
    int held;                    /* nothing was tried: route_held() kept the runner away */
    const char *cause;           /* the failure as logged, e.g. "connect to ...: Connection refused" */
    size_t nrcpt;
    struct delivery_route_rcpt *rcpts;
};

struct delivery_hooks {
    void *arg; /* for route_held and route_failure */
    /* Loop thread, before the runner connects to a hosted domain's route: non-zero
     * holds the route (the domain is in a continuity outage, its server is being
     * probed); the waiting transactions then fail at once as a server-level
     * temporary failure explained by why, without a connection. May be NULL. */
    int (*route_held)(void *arg, const char *domain, char *why, size_t whylen);
    /* Loop thread: a temporary failure on a hosted domain's route. Marks the
     * recipients to divert (divert, user_id, user) and may change the domain's
     * continuity state; every recipient left alone is deferred (or bounced at
     * queue_lifetime) as usual. May be NULL. */
    void (*route_failure)(void *arg, struct delivery_route_failure *f);
    /* Writer thread, inside the job that records the attempt's outcome: puts
     * recipient rcpt_id into the continuity mailbox of user_id (a STORE_* code;
     * on failure that recipient is deferred instead). It gets no arg: it must use
     * nothing but the writer's store connection. Required with route_failure. */
    int (*divert)(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t now);
};

/* Installs hooks (copied), or removes them (NULL). */
void delivery_set_hooks(struct delivery *d, const struct delivery_hooks *hooks);

#endif
