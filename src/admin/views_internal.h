/*
 * views_internal.h — what the view builders of continuity, statistics and
 * the queue (views_*.c) share: ISO times for JSON, the domains of a scope,
 * ending a builder. Private to src/admin.
 */
#ifndef LB_ADMIN_VIEWS_INTERNAL_H
#define LB_ADMIN_VIEWS_INTERNAL_H

#include "admin/admin.h"

/* "2026-11-27T21:53:37Z", or JSON null for 0. */
json_t *admin_iso(int64_t t);

/* The domains of a scope, copied out of the store's listing. */
struct admin_domains {
    struct store_domain *d;
    size_t n, cap;
};
/* Every domain of customer_id (0: all), by name. STORE_OK or STORE_ERR (logged). */
int admin_domains_load(struct store *st, int64_t customer_id, struct admin_domains *out);
/* The name of domain id among them, or NULL. */
const char *admin_domains_name(const struct admin_domains *l, int64_t id);
void admin_domains_free(struct admin_domains *l);

/* Ends a builder: STORE_OK with *out = j when rc is STORE_OK and j was
 * built, else STORE_ERR with j released and *out NULL (what says what for the
 * log when only memory ran out). */
int admin_done(int rc, json_t *j, json_t **out, const char *what);

#endif
