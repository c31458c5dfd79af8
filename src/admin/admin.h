/*
 * admin.h — the views of administration: the JSON shapes that lifeboatctl
 * (--json) and the control panel's API (/api/v1/admin/) both return, built
 * here once, so a script and the panel read the same fields from the same code.
 *
 * Every view is scoped by a customer: customer_id 0 sees everything (an
 * operator, lifeboatctl); otherwise only that customer's domains, and of the
 * queue only the messages with a recipient in the customer's share (store.h:
 * its recipient domains, or everything it sent). A view reads; the changes
 * (queue hold, flush, ...) are the store's calls, which take the same scope.
 *
 * Each builder returns STORE_OK with *out (a new reference the caller
 * releases), or STORE_ERR (a store error or out of memory, logged) with *out
 * NULL. Times are unix seconds; where lifeboatctl has always shown ISO 8601
 * ("since", "at") the epoch seconds stand beside it ("since_epoch", "at_epoch").
 * Strings are valid UTF-8 whatever the store holds (server replies are
 * arbitrary bytes).
 */
#ifndef LB_ADMIN_ADMIN_H
#define LB_ADMIN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* Hours a statistics view may cover (the store keeps STATS_RETENTION). */
#define ADMIN_STATS_HOURS_DEFAULT 24
#define ADMIN_STATS_HOURS_MAX (STATS_RETENTION / 3600)

/* Continuity status, one row per domain (SPEC.md `continuity status --json`):
 *   [{"domain","state","since","since_epoch","cause","held","waiting",
 *     "redelivered","deleted","continuity","continuity_since",
 *     "outgoing_to_own_server"}]
 * state: normal|outage|recovering; since, continuity_since: ISO 8601 UTC or
 * null. Of `only` (the caller checked it is in the scope) or of every domain
 * in the scope, by name. */
int admin_continuity_view(struct store *st, int64_t customer_id, const struct store_domain *only, json_t **out);

/* The timeline, newest first, at most limit (0: all):
 *   [{"id","domain","at","at_epoch","state","from","to","cause"}]
 * state is the state entered (= to). Of one domain (domain_id, checked by the
 * caller) or of every domain in the scope. */
int admin_events_view(struct store *st, int64_t customer_id, int64_t domain_id, size_t limit, json_t **out);

/* Mail per minute over the last `hours` before now (1..ADMIN_STATS_HOURS_MAX):
 *   {"domain":NAME|null,"hours":H,"from":UNIX,
 *    "minutes":[{"t":UNIX_MINUTE_START,"accepted","delivered","diverted",
 *                "redelivered","deferred","bounced"}]}
 * Sparse: only minutes in which something happened, oldest first; from is the
 * first minute covered. Of `only`, or the scope's domains summed. What each
 * counter counts: store.h, "statistics". */
int admin_stats_view(struct store *st, int64_t customer_id, const struct store_domain *only, unsigned hours,
                     int64_t now, json_t **out);

/* The queue, oldest first (SPEC.md `queue list --json`):
 *   [{"id","sender","recipients":[...],"attempts","next_attempt","last_reply",
 *     "held","size","received","direction"}]
 * recipients: the queued ones in the scope's share; attempts, next_attempt and
 * last_reply summarise them (the most tried one's reply, the soonest next
 * attempt); held: true when one of them is on hold; direction:
 * inbound|outbound. */
int admin_queue_view(struct store *st, int64_t customer_id, json_t **out);

/* The names of the counters in the statistics (enum store_stat order). */
const char *admin_stat_name(int counter);

#endif
