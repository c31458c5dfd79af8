/*
 * client_table.h — how many SMTP sessions each client address has open, for
 * smtp_client_limit: one busy or hostile client must not take every slot.
 *
 * A small chained hash table keyed by the numeric address text. Used on the
 * event loop thread only.
 */
#ifndef LB_SMTPD_CLIENT_TABLE_H
#define LB_SMTPD_CLIENT_TABLE_H

#include <stddef.h>

struct client_entry;

struct client_table {
    struct client_entry **buckets;
    size_t nbuckets;
    size_t nentries;
};

/* 0, or -1 when out of memory. */
int client_table_init(struct client_table *t, size_t nbuckets);
void client_table_free(struct client_table *t);

/* The number of sessions ip has open now. */
unsigned client_table_count(const struct client_table *t, const char *ip);
/* One more session for ip; returns the new count, or 0 when out of memory. */
unsigned client_table_add(struct client_table *t, const char *ip);
/* One session of ip fewer (the entry goes at zero). */
void client_table_remove(struct client_table *t, const char *ip);

#endif
