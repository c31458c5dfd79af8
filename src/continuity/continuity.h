/*
 * continuity.h — the continuity engine: automatic failover of a hosted
 * domain's mail into continuity mailboxes while its own server is down, and
 * exactly-once re-delivery when it is back (SPEC.md "Continuity behaviour").
 *
 * It lives on the daemon's event loop, next to the delivery engine, and plugs
 * into it through deliver.h's hooks (continuity_start installs them):
 *
 *   - Each domain with continuity enabled has a state in the store: normal,
 *     outage or recovering (store_domain_set_state; a restart resumes it).
 *     A server-level temporary fault on the domain's route puts it in outage.
 *   - A copy of a message that meets a temporary fault on the route goes into
 *     the INBOX of the registered, activated, not suspended user its address
 *     or alias belongs to, if the message came after continuity was enabled;
 *     every other copy is deferred as usual. In outage the route is held: due
 *     mail is diverted (or deferred) at once, without a connection.
 *   - In outage the route is probed every dr_probe_interval with real SMTP
 *     (EHLO, MAIL FROM:<>, RCPT TO:<a registered user>, RSET, QUIT). A pass
 *     means recovering: every mailbox entry waiting for re-delivery goes back
 *     to the server, oldest first, at most drain_concurrency at a time and
 *     drain_rate a second; each is marked re-delivered in its own writer job
 *     right after the server's 250. Drained: normal. A server-level fault
 *     while draining: outage again. Entries a normal domain still holds (a
 *     4xx for single recipients, or deferred during a drain) are re-tried
 *     every dr_probe_interval.
 *   - Every state change is an event: a log line ("continuity: domain
 *     acme.test normal -> outage: CAUSE"), a row in the store, a mail to the
 *     alternate addresses of the customer's admins, and a JSON POST to the
 *     domain's webhook.
 *
 * Exactly once: an entry is re-delivered until the store has it marked. The
 * one window for a duplicate is between the server's 250 and the commit of
 * that mark (one group commit, milliseconds): a crash inside it re-delivers
 * that entry after the restart. Every other crash point leaves the entry
 * either waiting (not accepted yet: sent again) or marked (never again).
 *
 * All store writes go through the group-commit writer; reads use the loop
 * thread's read connection. Everything here runs on the loop thread.
 */
#ifndef LB_CONTINUITY_CONTINUITY_H
#define LB_CONTINUITY_CONTINUITY_H

#include <event2/event.h>
#include <stddef.h>

#include "deliver/deliver.h"
#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"

struct continuity;

/* Starts the engine on base and installs its hooks into the delivery engine.
 * cfg, read_store, writer and delivery are borrowed and must outlive it. It
 * reads every domain's state at once: domains in outage are probed, domains
 * recovering resume their drain. NULL with err filled on failure. */
struct continuity *continuity_start(struct event_base *base, const struct config *cfg,
                                    struct store *read_store, struct store_writer *writer,
                                    struct delivery *delivery, char *err, size_t errlen);

/* SIGHUP: takes dr_probe_interval, drain_concurrency and drain_rate from cfg
 * (copied; cfg need not outlive the call). */
void continuity_reload(struct continuity *c, const struct config *cfg);

/* Starts nothing new: probes are abandoned, drains start no more
 * re-deliveries (those under way finish and are recorded while the writer
 * runs). Call before store_writer_stop. */
void continuity_stop(struct continuity *c);

/* 1 when no re-delivery is under way or waiting for its commit, and no state
 * change or alert is with the writer (for the shutdown grace period). */
int continuity_idle(const struct continuity *c);

/* Removes the hooks from the delivery engine and frees everything. Call after
 * store_writer_stop (its last done callbacks still reach the engine) and
 * before delivery_free (the engine's sessions use the delivery's resolver). */
void continuity_free(struct continuity *c);

/* 1 while this node leads (probes and drives the domains; always on one node). */
int continuity_leading(const struct continuity *c);
/* Reads the domains again now (another node changed one). */
void continuity_kick(struct continuity *c);

/*
 * The node's membership of a cluster (cluster.c): a heartbeat in the store,
 * its leases renewed while it lives, and a listener that turns the other
 * nodes' wake-ups into a queue scan or a fresh look at the domains. At start
 * it frees the claims a previous run of the same node left; at the end it
 * gives up the lead and its claims so that the others take over at once.
 * With the embedded store (one node) it keeps the heartbeat only.
 */
struct cluster_node;
struct cluster_node *cluster_node_start(struct event_base *base, const struct config *cfg, struct store *read_store,
                                        struct store_writer *writer, struct delivery *delivery,
                                        struct continuity *continuity, char *err, size_t errlen);
/* After store_writer_stop (outcomes are committed): frees the lead and the
 * claims, tells the other nodes, and frees the node. */
void cluster_node_free(struct cluster_node *n);

#endif
