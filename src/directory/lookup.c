/*
 * lookup.c — the directory questions smtpd asks for every RCPT (see
 * directory.h): is this domain ours, is this a user or an alias of one, and may
 * this client relay mail out. Read-only, on the caller's store connection.
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
    int allowed;
};

static int relay_check_domain(const struct store_domain *d, void *arg)
{
    struct relay_arg *r = arg;
    if (!r->allowed && d->outbound_from[0] && cidr_list_match(d->outbound_from, r->ip))
        r->allowed = 1;
    return 0;
}

int directory_client_may_relay(struct store *st, const char *client_ip)
{
    struct relay_arg r = {client_ip, 0};
    if (!client_ip || !*client_ip)
        return 0;
    if (store_domain_list(st, relay_check_domain, &r) != STORE_OK)
        return STORE_ERR;
    return r.allowed;
}
