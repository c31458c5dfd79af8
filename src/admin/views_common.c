/*
 * views_common.c — the helpers of the view builders (views_internal.h): ISO
 * times, the domains of a scope, and ending a builder.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/views_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

json_t *admin_iso(int64_t t)
{
    if (!t)
        return json_null();
    char buf[32];
    time_iso8601((time_t)t, buf, sizeof buf);
    return json_string(buf);
}

struct collect {
    struct admin_domains *l;
    int64_t customer_id;
    int oom;
};

static int domain_collect(const struct store_domain *d, void *arg)
{
    struct collect *c = arg;
    struct admin_domains *l = c->l;
    if (c->customer_id && d->customer_id != c->customer_id)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct store_domain *p = realloc(l->d, cap * sizeof *p);
        if (!p) {
            c->oom = 1;
            return 1;
        }
        l->d = p;
        l->cap = cap;
    }
    l->d[l->n++] = *d;
    return 0;
}

int admin_domains_load(struct store *st, int64_t customer_id, struct admin_domains *out)
{
    memset(out, 0, sizeof *out);
    struct collect c = {out, customer_id, 0};
    int rc = store_domain_list(st, domain_collect, &c);
    if (rc == STORE_OK && c.oom) {
        log_err("admin: out of memory listing domains");
        rc = STORE_ERR;
    }
    if (rc != STORE_OK) {
        admin_domains_free(out);
        return STORE_ERR;
    }
    return STORE_OK;
}

const char *admin_domains_name(const struct admin_domains *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->d[i].id == id)
            return l->d[i].name;
    return NULL;
}

void admin_domains_free(struct admin_domains *l)
{
    free(l->d);
    memset(l, 0, sizeof *l);
}

int admin_done(int rc, json_t *j, json_t **out, const char *what)
{
    *out = NULL;
    if (rc == STORE_OK && j) {
        *out = j;
        return STORE_OK;
    }
    if (rc == STORE_OK)
        log_err("admin: out of memory building %s", what);
    json_decref(j);
    return STORE_ERR;
}
