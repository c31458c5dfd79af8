/*
 * client_table.h — how many SMTP sessions each client address has open, for
 * smtp_client_limit: one busy or hostile client must not take every slot; and
 * how many octets of message buffers its sessions hold, for its share of the
 * DATA memory budget (data_budget.c). An entry lives while either is above 0:
 * a session whose connection closed may still hold its message.
 *
 * A small chained hash table keyed by the numeric address text. Used on the
 * event loop thread only.
 */
#ifndef LB_SMTPD_CLIENT_TABLE_H
#define LB_SMTPD_CLIENT_TABLE_H

#include <stddef.h>
#include <stdint.h>

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
/* One session of ip fewer (the entry goes when nothing is left). */
void client_table_remove(struct client_table *t, const char *ip);

/* Octets of message buffers ip's sessions hold. */
uint64_t client_table_bytes(const struct client_table *t, const char *ip);
/* n octets more for ip: 0, or -1 when out of memory. */
int client_table_charge(struct client_table *t, const char *ip, uint64_t n);
/* n octets fewer for ip (at most what it holds). */
void client_table_uncharge(struct client_table *t, const char *ip, uint64_t n);

#endif
