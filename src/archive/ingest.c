/*
 * ingest.c — archive_ingest (archive.h): which customers keep a copy of a
 * message that is being queued, and with what direction.
 *
 * Runs on the writer thread inside the transaction that queues the message,
 * right after its queue rows, so archiving adds rows to that transaction and
 * nothing else: no fsync of its own, no blob copy (each entry takes a
 * reference on the queue's blob), no parsing (the indexer does that later).
 *
 * A customer keeps a copy when its subscription was running at the time the
 * message arrived. The recipients' customers see the message inbound, each
 * with its own recipients; for outbound mail (relayed from a customer's
 * servers, sent from the webmail or the submission port) the sending customer
 * sees it outbound, with every recipient, which also covers its own users
 * among them. Who sends is what the queue says (the customer whose
 * --outbound-from matched, or the user's), never the sender address: a
 * customer's server may not file its mail in another customer's archive by
 * writing their domain in MAIL FROM. The sender of inbound mail is not
 * trusted to belong to anyone either: a message from outside claiming a
 * customer's address is that customer's only if it is addressed to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "directory/directory.h"
#include "util/addr.h"
#include "util/log.h"

/* What the lookups found for one customer of the message. */
struct party {
    int64_t customer_id;
    int archived;           /* subscription running when the message came */
    int direction;
    const char **rcpts;     /* the customer's recipients (all of them for the sender's customer) */
    size_t nrcpt;
};

struct ingest {
    const struct archive_message *m;
    struct party *parties;  /* at most nrcpt + 1 */
    size_t nparties;
    /* domain -> customer, for messages to many addresses of one domain */
    char last_domain[DOMAIN_MAX + 1];
    int64_t last_customer;  /* 0: not hosted */
};

/* The customer hosting domain (0: nobody), with a one-entry cache. */
static int domain_customer(struct store *st, struct ingest *in, const char *domain, int64_t *customer_id)
{
    if (in->last_domain[0] && !strcmp(in->last_domain, domain)) {
        *customer_id = in->last_customer;
        return STORE_OK;
    }
    struct store_domain d;
    int rc = domain[0] ? store_domain_get(st, domain, &d) : STORE_NOTFOUND;
    if (rc == STORE_ERR)
        return rc;
    *customer_id = rc == STORE_OK ? d.customer_id : 0;
    if (strlen(domain) < sizeof in->last_domain) {
        memcpy(in->last_domain, domain, strlen(domain) + 1);
        in->last_customer = *customer_id;
    }
    return STORE_OK;
}

/* The party of customer_id, created (with its subscription looked up) if new. */
static struct party *party_get(struct store *st, struct ingest *in, int64_t customer_id, int direction, int *rc)
{
    for (size_t i = 0; i < in->nparties; i++)
        if (in->parties[i].customer_id == customer_id)
            return &in->parties[i];
    struct store_customer c;
    *rc = store_customer_get_by_id(st, customer_id, &c);
    if (*rc != STORE_OK)
        return NULL;
    struct party *p = &in->parties[in->nparties++];
    *p = (struct party){.customer_id = customer_id, .direction = direction};
    p->archived = directory_subscription_active(&c) && c.sub_start <= in->m->received;
    p->rcpts = calloc(in->m->nrcpt ? in->m->nrcpt : 1, sizeof *p->rcpts);
    if (!p->rcpts) {
        *rc = STORE_ERR;
        return NULL;
    }
    return p;
}

static int add_entry(struct store *st, const struct archive_message *m, const struct party *p)
{
    struct store_archive_entry e = {
        .customer_id = p->customer_id,
        .direction = p->direction,
        .received = m->received,
        .size = m->size,
    };
    snprintf(e.msg_id, sizeof e.msg_id, "%s", m->queue_id);
    snprintf(e.blob, sizeof e.blob, "%s", m->blob);
    snprintf(e.prefix, sizeof e.prefix, "%s", m->prefix ? m->prefix : "");
    snprintf(e.sender, sizeof e.sender, "%s", m->sender ? m->sender : "");
    int rc = store_archive_add(st, &e, p->rcpts, p->nrcpt, NULL);
    if (rc != STORE_OK)
        log_err("%s: archive: cannot add the entry of customer %lld", m->queue_id, (long long)p->customer_id);
    return rc;
}

int archive_ingest(struct store *st, const struct archive_message *m, unsigned *entries)
{
    if (entries)
        *entries = 0;
    struct ingest in = {.m = m, .parties = calloc(m->nrcpt + 1, sizeof *in.parties)};
    if (!in.parties)
        return STORE_ERR;
    int rc = STORE_OK;
    struct party *sender_party = NULL;
    if (m->sender_customer_id) {
        sender_party = party_get(st, &in, m->sender_customer_id, DIR_OUTBOUND, &rc);
        if (rc == STORE_NOTFOUND) /* the customer went meanwhile */
            rc = STORE_OK;
    }
    for (size_t i = 0; rc == STORE_OK && i < m->nrcpt; i++) {
        if (sender_party)
            sender_party->rcpts[sender_party->nrcpt++] = m->rcpts[i];
        int64_t cid = 0;
        rc = domain_customer(st, &in, addr_domain(m->rcpts[i]), &cid);
        if (rc != STORE_OK || !cid || (sender_party && cid == sender_party->customer_id))
            continue;
        struct party *p = party_get(st, &in, cid, DIR_INBOUND, &rc);
        if (p)
            p->rcpts[p->nrcpt++] = m->rcpts[i];
    }
    unsigned added = 0;
    for (size_t i = 0; rc == STORE_OK && i < in.nparties; i++) {
        if (!in.parties[i].archived)
            continue;
        rc = add_entry(st, m, &in.parties[i]);
        added += rc == STORE_OK;
    }
    for (size_t i = 0; i < in.nparties; i++)
        free(in.parties[i].rcpts);
    free(in.parties);
    if (rc != STORE_OK)
        return STORE_ERR;
    if (entries)
        *entries = added;
    return STORE_OK;
}
