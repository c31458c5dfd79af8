/*
 * fsm.h — the continuity engine's decisions as pure functions: no store, no
 * sockets, no clock. The engine (engine.c, probe.c, drain.c) gathers the facts
 * and does what these say, so the unit tests can walk every rule from a table.
 *
 *   - the per-domain state machine (DESIGN.md):
 *       normal --(server-level fault)--> outage --(probe passes)--> recovering
 *       recovering --(drained)--> normal;  recovering --(server-level fault)--> outage
 *   - which copy of a message that met a temporary fault may be diverted into
 *     a continuity mailbox (and why not, for the log);
 *   - what one re-delivery transaction of the recovery drain means.
 */
#ifndef LB_CONTINUITY_FSM_H
#define LB_CONTINUITY_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/smtp_client.h"
#include "directory/directory.h"
#include "store/store.h"

/* ------------------------------------------------------------ state machine */

enum cont_input {
    CONT_SERVER_FAULT, /* a server-level temporary fault on the route (delivery, or the drain) */
    CONT_PROBE_PASSED, /* the server accepted the probe's RCPT */
    CONT_PROBE_FAILED,
    CONT_DRAINED,      /* the recovery drain found nothing left to re-deliver */
};

/* What the engine does after a step (bits). */
enum cont_action {
    CONT_ACT_ALERT = 1u << 0,       /* an event: log line, admins' mail, webhook */
    CONT_ACT_HOLD_ROUTE = 1u << 1,  /* new mail goes straight to the mailboxes, no connection */
    CONT_ACT_RELEASE_ROUTE = 1u << 2, /* new mail goes to the server again */
    CONT_ACT_PROBE_LATER = 1u << 3, /* the next probe one dr_probe_interval from now */
    CONT_ACT_START_DRAIN = 1u << 4, /* re-deliver what the mailboxes hold */
    CONT_ACT_STOP_DRAIN = 1u << 5,  /* start no more re-deliveries (those under way finish) */
};

struct cont_step {
    int from, to;     /* enum domain_state */
    int changed;      /* to != from: an event */
    unsigned actions; /* enum cont_action bits */
};

/* One step: the domain is in state (enum domain_state), continuity is enabled
 * or not, input happens. A disabled domain never enters an outage from normal,
 * but one that is in an outage or recovering already finishes its way back to
 * normal (what the mailboxes hold must still go back to the server). */
void cont_fsm_step(int state, int enabled, int input, struct cont_step *out);

/* "normal", "outage", "recovering" ("unknown" otherwise). */
const char *cont_state_name(int state);

/* ------------------------------------------------------------- diversion */

enum cont_divert {
    CONT_DIVERT = 0,        /* into the mailbox of the user the address belongs to */
    CONT_KEEP_DISABLED,     /* continuity is not enabled for the domain */
    CONT_KEEP_TOO_OLD,      /* queued before continuity was enabled: not retroactive */
    CONT_KEEP_UNKNOWN,      /* no registered user has this address or alias */
    CONT_KEEP_INACTIVE,     /* the user is not activated */
    CONT_KEEP_SUSPENDED,    /* the user is suspended */
};

/* May the copy for one recipient (looked up with directory_lookup_rcpt) of a
 * message received at msg_received go into a continuity mailbox, now that its
 * route (of domain route_dom) failed temporarily? pre_continuity: the
 * recipient was queued already when continuity was enabled (marked by
 * `continuity enable` in its transaction, which orders what seconds cannot). */
int cont_divert_verdict(const struct store_domain *route_dom, const struct rcpt_lookup *lk,
                        int64_t msg_received, int pre_continuity);
/* Why a copy is kept in the queue, for the log ("continuity not enabled", ...). */
const char *cont_divert_reason(int verdict);

/* ------------------------------------------------------------------ drain */

enum cont_drain {
    CONT_DRAIN_DELIVERED = 0, /* the server took it: mark it re-delivered */
    CONT_DRAIN_REFUSED,       /* refused for good (5xx): it stays in the mailbox, not tried again */
    CONT_DRAIN_LATER,         /* this entry's recipients were deferred (4xx at RCPT): next pass */
    CONT_DRAIN_FAULT,         /* the server as a whole failed: back to outage */
};

/* Consecutive entries deferred at RCPT, none accepted between them, after which
 * the drain takes it for the server's trouble rather than some users' (a full
 * mailbox defers one user; a server that defers everybody is down). */
#define CONT_DRAIN_LATER_LIMIT 5

/* What one re-delivery transaction (one mailbox entry: its recipients out[0..n),
 * server_level as smtp_client.h computed it) means. The entry is for one user,
 * so any recipient accepted means the user has the message. */
int cont_drain_verdict(const struct smtpc_outcome *out, size_t n, int server_level);

#endif
