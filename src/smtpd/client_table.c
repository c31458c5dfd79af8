/* client_table.c — see client_table.h. FNV-1a over the address text. */
#include "smtpd/client_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct client_entry {
    struct client_entry *next;
    unsigned count;
    uint64_t bytes;
    char ip[64]; /* INET6_ADDRSTRLEN is 46 */
};

static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)(h % n);
}

int client_table_init(struct client_table *t, size_t nbuckets)
{
    t->nbuckets = nbuckets ? nbuckets : 1;
    t->nentries = 0;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    return t->buckets ? 0 : -1;
}

void client_table_free(struct client_table *t)
{
    if (!t->buckets)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct client_entry *e = t->buckets[i];
        while (e) {
            struct client_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->nentries = 0;
}

static struct client_entry **find(const struct client_table *t, const char *ip)
{
    struct client_entry **pp = &t->buckets[hash(ip, t->nbuckets)];
    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

unsigned client_table_count(const struct client_table *t, const char *ip)
{
    struct client_entry **pp = find(t, ip);
    return *pp ? (*pp)->count : 0;
}

/* The entry of ip, made if there is none; NULL when out of memory. */
static struct client_entry *get(struct client_table *t, const char *ip)
{
    struct client_entry **pp = find(t, ip);
    if (*pp)
        return *pp;
    if (strlen(ip) >= sizeof((struct client_entry *)0)->ip)
        return NULL;
    struct client_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    strcpy(e->ip, ip);
    *pp = e;
    t->nentries++;
    return e;
}

/* Drops the entry at *pp once it counts nothing. */
static void settle(struct client_table *t, struct client_entry **pp)
{
    struct client_entry *e = *pp;
    if (e->count == 0 && e->bytes == 0) {
        *pp = e->next;
        free(e);
        t->nentries--;
    }
}

unsigned client_table_add(struct client_table *t, const char *ip)
{
    struct client_entry *e = get(t, ip);
    return e ? ++e->count : 0;
}

void client_table_remove(struct client_table *t, const char *ip)
{
    struct client_entry **pp = find(t, ip);
    if (!*pp || (*pp)->count == 0)
        return;
    (*pp)->count--;
    settle(t, pp);
}

uint64_t client_table_bytes(const struct client_table *t, const char *ip)
{
    struct client_entry **pp = find(t, ip);
    return *pp ? (*pp)->bytes : 0;
}

int client_table_charge(struct client_table *t, const char *ip, uint64_t n)
{
    struct client_entry *e = get(t, ip);
    if (!e)
        return -1;
    e->bytes += n;
    return 0;
}

void client_table_uncharge(struct client_table *t, const char *ip, uint64_t n)
{
    struct client_entry **pp = find(t, ip);
    if (!*pp)
        return;
    (*pp)->bytes -= n < (*pp)->bytes ? n : (*pp)->bytes;
    settle(t, pp);
}
