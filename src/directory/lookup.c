/*
 * lookup.c — the directory questions smtpd asks for every RCPT (see
 * directory.h): is this domain ours, is this a user or an alias of one, and may
 * this client relay mail out, for which customer, with this sender. Read-only,
 * on the caller's store connection.
 */
#include "directory/directory.h"

#include <string.h>

int directory_lookup_rcpt(struct store *st, const char *addr, struct rcpt_lookup *out)
{
    memset(out, 0, sizeof *out);
    out->kind = RCPT_KIND_NOT_HOSTED;

    char domain[DOMAIN_MAX + 1];
    const char *d = addr_domain(addr);
    if (!*d || addr_canonical(d, domain, sizeof domain) != 0)
        return STORE_OK;
    int rc = store_domain_get(st, domain, &out->domain);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return STORE_ERR;

    out->kind = RCPT_KIND_UNKNOWN;
    char canon[ADDR_MAX + 1];
    if (addr_canonical(addr, canon, sizeof canon) != 0)
        return STORE_OK; /* too long to be anyone's address */

    rc = store_user_get(st, canon, &out->user);
    if (rc == STORE_OK) {
        out->kind = RCPT_KIND_USER;
        return STORE_OK;
    }
    if (rc != STORE_NOTFOUND)
        return STORE_ERR;

    int64_t owner;
    rc = store_alias_get(st, canon, &owner);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return STORE_ERR;
    rc = store_user_get_by_id(st, owner, &out->user);
    if (rc == STORE_NOTFOUND) {
        memset(&out->user, 0, sizeof out->user); /* an alias left behind by its user */
        return STORE_OK;
    }
    if (rc != STORE_OK)
        return STORE_ERR;
    out->kind = RCPT_KIND_USER;
    out->via_alias = 1;
    return STORE_OK;
}

struct relay_arg {
    const char *ip;
    int64_t *customers; /* in the order of store_domain_list (by name) */
    size_t n, max;
};

static int relay_check_domain(const struct store_domain *d, void *arg)
{
    struct relay_arg *r = arg;
    if (!d->outbound_from[0] || !cidr_list_match(d->outbound_from, r->ip))
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->customers[i] == d->customer_id)
            return 0;
    if (r->n < r->max)
        r->customers[r->n++] = d->customer_id;
    return 0;
}

int directory_customer_owns_domain(struct store *st, int64_t customer_id, const char *domain)
{
    char canon[DOMAIN_MAX + 1];
    if (!domain || !*domain || addr_canonical(domain, canon, sizeof canon) != 0)
        return 0;
    /* The domain itself, then each parent: mx.acme.test is acme.test's. */
    for (const char *d = canon; d && *d; d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL) {
        struct store_domain dom;
        int rc = store_domain_get(st, d, &dom);
        if (rc == STORE_ERR)
            return STORE_ERR;
        if (rc == STORE_OK)
            return dom.customer_id == customer_id;
    }
    return 0;
}

int directory_relay_networks(struct store *st, const char *client_ip, int64_t *customers, size_t max)
{
    struct relay_arg r = {.ip = client_ip, .customers = customers, .max = max};
    if (!client_ip || !*client_ip)
        return 0;
    if (store_domain_list(st, relay_check_domain, &r) != STORE_OK)
        return STORE_ERR;
    return (int)r.n;
}

int directory_relay_sender(struct store *st, const int64_t *customers, size_t n, const char *sender,
                           int64_t *customer_id)
{
    *customer_id = 0;
    if (!sender || !*sender) {
        *customer_id = customers[0];
        return DIRECTORY_RELAY_OK;
    }
    for (size_t i = 0; i < n; i++) {
        int own = directory_customer_owns_domain(st, customers[i], addr_domain(sender));
        if (own == STORE_ERR)
            return STORE_ERR;
        if (own == 1) {
            *customer_id = customers[i];
            return DIRECTORY_RELAY_OK;
        }
    }
    return DIRECTORY_RELAY_NOT_OWNED;
}

int directory_relay_check(struct store *st, const char *client_ip, const char *sender, int64_t *customer_id)
{
    int64_t customers[DIRECTORY_RELAY_CUSTOMERS_MAX];
    *customer_id = 0;
    int n = directory_relay_networks(st, client_ip, customers, DIRECTORY_RELAY_CUSTOMERS_MAX);
    if (n <= 0)
        return n == 0 ? DIRECTORY_RELAY_DENIED : STORE_ERR;
    return directory_relay_sender(st, customers, (size_t)n, sender, customer_id);
}
