/*
 * admin.h — the views of administration: the JSON shapes that lifeboatctl
 * (--json) and the control panel's API (/api/v1/admin/) both return, built
 * in one place so that a field means the same thing in both.
 *
 * Each view reads the store through the caller's connection and never shows
 * a secret: password hashes and bind passwords appear only as "is there one".
 * Views take the customer a caller may see (0: all, an operator's); the
 * rules that change things are directory.h's (and the queue's store.h's),
 * not here.
 */
#ifndef LB_ADMIN_ADMIN_H
#define LB_ADMIN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* A JSON string of text from outside (names, replies, headers): invalid
 * UTF-8 is replaced (U+FFFD). Never NULL but out of memory. */
json_t *admin_jstr(const char *s);
/* A time (unix seconds) or null for 0. */
json_t *admin_jtime(int64_t t);

/* ---------------------------------------------------------------- the directory (admin_directory.c) */

/* {"name","created","subscription":"none|active|cancelled","subscription_start",
 * "subscription_end","subscription_cancelled","domains"}. NULL on failure. */
json_t *admin_customer_json(struct store *st, const struct store_customer *c);
/* The customers visible to customer_id (0: all), in name order. NULL on failure. */
json_t *admin_customers(struct store *st, int64_t customer_id);

/* {"name","customer","routes":[...],"recipient_check","outbound_from":[...],
 * "webhook","dkim_selector","dkim_key","continuity","outgoing_to_own_server",
 * "created","state","state_since","state_cause","subscription"}. */
json_t *admin_domain_json(struct store *st, const struct store_domain *d);
json_t *admin_domains(struct store *st, int64_t customer_id);

/* {"email","name","role","domain","active","activated","suspended","password",
 * "alt_email","aliases":[...],"created","source":"local|ldap","last_login",
 * "ready","not_ready":[reason codes]}: "active" is whether the user can log
 * in and receive continuity mail (activated and not suspended); "ready"
 * whether they could log in during an outage (readiness.c's reasons). */
json_t *admin_user_json(struct store *st, const struct store_user *u);
/* {"total","offset","limit","users":[...]} for a page of q. */
json_t *admin_users(struct store *st, const struct store_user_query *q);

/* {"customer","min_length","upper","lower","digit","special","default","text"}. */
json_t *admin_policy_json(struct store *st, const struct store_customer *c);

/* ---------------------------------------------------------------- LDAP and readiness (admin_ldap.c) */

/* A sync report: {"at","ok","duration_ms","entries","added","updated",
 * "suspended","aliases","aliases_removed","error_count","errors":[...]}. */
json_t *admin_ldap_report_json(const struct store_ldap_report *r);
/* A domain's directory: {"domain","configured":true,"url","bind_dn",
 * "bind_password_set","base","filter","interval","starttls","updated",
 * "last_sync": report or null}; never the bind password. */
json_t *admin_ldap_json(struct store *st, const struct store_domain *d, const struct store_ldap_settings *s);
/* The same for d, or {"domain","configured":false,"filter","interval"} (the
 * defaults) when it has none. */
json_t *admin_ldap_domain(struct store *st, const struct store_domain *d);
/* Every domain's directory visible to customer_id (0: all). */
json_t *admin_ldap_list(struct store *st, int64_t customer_id);
/* {"email","ready","source":"local|ldap","last_login","reasons":[{"code","text","fix"}]}. */
json_t *admin_readiness_user_json(const struct store_user_readiness *u, unsigned reasons);
/* {"total","ready","users":[...]} of the domain, else the customer, else all. */
json_t *admin_readiness(struct store *st, int64_t domain_id, int64_t customer_id);

/* ---------------------------------------------------------------- continuity, statistics, queue (views_*.c) */

/*
 * The outage dashboard's and the queue page's views. Each builder returns
 * STORE_OK with *out (a new reference the caller releases), or STORE_ERR (a
 * store error or out of memory, logged) with *out NULL. Of the queue a
 * customer sees the messages with a recipient in its share (store.h: its
 * recipient domains, or everything it sent). Where lifeboatctl has always
 * shown ISO 8601 ("since", "at") the epoch seconds stand beside it
 * ("since_epoch", "at_epoch"); the statistics are in unix seconds.
 */

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
