/*
 * http_admin_scope.c — which customer's objects an admin API request may
 * see, and the reply for a refusal of the directory.
 *
 * An operator sees every customer (or one, with ?customer=NAME); an admin
 * their own customer only. An object of another customer answers exactly as
 * a missing one (404), so an admin cannot learn which domains or addresses
 * other customers have. Handlers load the scope, then name objects through
 * http_admin_domain and http_admin_user, never with a bare store lookup.
 */
#include <stdio.h>
#include <string.h>

#include "http/http_internal.h"
#include "util/addr.h"

static int customer_of_user(struct store *st, const struct store_user *u, int64_t *customer_id)
{
    struct store_domain d;
    int rc = store_domain_get_by_id(st, u->domain_id, &d);
    if (rc == STORE_OK)
        *customer_id = d.customer_id;
    return rc;
}

int http_admin_scope_load(struct http_request *req, struct http_admin_scope *s, struct http_reply *rep)
{
    memset(s, 0, sizeof *s);
    s->role = req->user.role;
    const char *want = http_query(req, "customer");
    if (want && !*want)
        want = NULL;
    struct store_customer c;
    int rc;
    if (s->role == ROLE_OPERATOR) {
        if (!want)
            return 0;
        rc = store_customer_get(req->st, want, &c);
    } else {
        int64_t own = 0;
        rc = customer_of_user(req->st, &req->user, &own);
        if (rc == STORE_OK)
            rc = store_customer_get_by_id(req->st, own, &c);
        /* Another customer's name is as unknown to an admin as a missing one. */
        if (rc == STORE_OK && want && strcmp(want, c.name) != 0)
            rc = STORE_NOTFOUND;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such customer");
        return -1;
    }
    s->customer_id = c.id;
    snprintf(s->customer, sizeof s->customer, "%s", c.name);
    return 0;
}

int http_admin_customer_visible(const struct http_admin_scope *s, int64_t customer_id)
{
    return s->customer_id == 0 || s->customer_id == customer_id;
}

int http_admin_domain(struct http_request *req, const struct http_admin_scope *s, const char *name,
                      struct store_domain *d, struct http_reply *rep)
{
    char canon[DOMAIN_MAX + 1];
    int rc = name && addr_canonical(name, canon, sizeof canon) == 0 ? store_domain_get(req->st, canon, d)
                                                                    : STORE_NOTFOUND;
    if (rc == STORE_OK && !http_admin_customer_visible(s, d->customer_id))
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such domain");
        return -1;
    }
    return 0;
}

int http_admin_scope_domain(struct http_request *req, struct http_admin_scope *s, struct store_domain *d,
                            struct http_reply *rep)
{
    if (http_admin_scope_load(req, s, rep) != 0)
        return -1;
    const char *name = http_query(req, "domain");
    if (!name || !*name) {
        memset(d, 0, sizeof *d); /* id 0: every domain of the scope */
        return 0;
    }
    return http_admin_domain(req, s, name, d, rep);
}

int http_admin_user(struct http_request *req, const struct http_admin_scope *s, const char *email,
                    struct store_user *u, struct http_reply *rep)
{
    char canon[ADDR_MAX + 1];
    int rc = email && addr_canonical(email, canon, sizeof canon) == 0 ? store_user_get(req->st, canon, u)
                                                                      : STORE_NOTFOUND;
    int64_t customer_id = 0;
    if (rc == STORE_OK)
        rc = customer_of_user(req->st, u, &customer_id);
    if (rc == STORE_OK && !http_admin_customer_visible(s, customer_id))
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such user");
        return -1;
    }
    return 0;
}

void http_reply_directory(struct http_reply *rep, int rc, const char *err)
{
    static const struct {
        int rc, status;
        const char *code;
    } kinds[] = {
        {DIR_INVALID, 400, "invalid"},     {DIR_NOTFOUND, 404, "not_found"},
        {DIR_EXISTS, 409, "exists"},       {DIR_REFUSED, 409, "refused"},
        {DIR_POLICY, 400, "password_policy"}, {DIR_STORE, 503, "unavailable"},
        {HTTP_WRITE_STOPPING, 503, "unavailable"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].rc == rc) {
            http_reply_error_code(rep, kinds[i].status, kinds[i].code,
                                  err && *err ? err : "the store is not available; try again");
            return;
        }
    http_reply_error(rep, 500, "internal error");
}
