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
 */
#ifndef LB_DELIVER_DELIVER_H
#define LB_DELIVER_DELIVER_H

#include <event2/event.h>
#include <stddef.h>

#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"

struct delivery;

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

#endif
