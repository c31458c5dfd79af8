/*
 * admin_directory.c — the views of customers, domains, users and password
 * policies (see admin.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "directory/directory.h"

json_t *admin_jtime(int64_t t)
{
    return t ? json_integer(t) : json_null();
}

/* "a,b" as ["a","b"] ("" -> []). */
static json_t *split_list(const char *s)
{
    json_t *a = json_array();
    while (a && s && *s) {
        size_t n = strcspn(s, ",");
        char item[1024];
        snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), s);
        if (*item && json_array_append_new(a, admin_jstr(item)) != 0) {
            json_decref(a);
            return NULL;
        }
        s += n;
        s += *s == ',';
    }
    return a;
}

static const char *subscription_state(const struct store_customer *c)
{
    return directory_subscription_active(c) ? "active" : c->sub_start ? "cancelled" : "none";
}

/* ------------------------------------------------------------------ customers */

struct names {
    json_t *a;
    int64_t customer_id;
    int failed;
};

static int domain_name_of_customer(const struct store_domain *d, void *arg)
{
    struct names *n = arg;
    if (d->customer_id == n->customer_id && json_array_append_new(n->a, admin_jstr(d->name)) != 0) {
        n->failed = 1;
        return 1;
    }
    return 0;
}

json_t *admin_customer_json(struct store *st, const struct store_customer *c)
{
    struct names n = {json_array(), c->id, 0};
    if (!n.a || store_domain_list(st, domain_name_of_customer, &n) != STORE_OK || n.failed) {
        json_decref(n.a);
        return NULL;
    }
    return json_pack("{s:o, s:I, s:s, s:o, s:o, s:o, s:o}", "name", admin_jstr(c->name), "created",
                     (json_int_t)c->created, "subscription", subscription_state(c), "subscription_start",
                     admin_jtime(c->sub_start), "subscription_end", admin_jtime(c->sub_end),
                     "subscription_cancelled", admin_jtime(c->sub_cancelled), "domains", n.a);
}

struct list {
    struct store *st;
    json_t *a;
    int64_t customer_id;
    int failed;
};

static int list_add(struct list *l, json_t *o)
{
    if (!o || json_array_append_new(l->a, o) != 0) {
        l->failed = 1;
        return 1;
    }
    return 0;
}

/* Ends a listing: the array, or NULL when the store or building it failed. */
static json_t *list_end(struct list *l, int rc)
{
    if (rc != STORE_OK || l->failed || !l->a) {
        json_decref(l->a);
        return NULL;
    }
    return l->a;
}

/* The customer list's callback must not read the store while the listing
 * statement runs on the same connection (it may, SQLite allows it, but the
 * rows are few: collect them first and describe them after). */
struct customer_rows {
    struct store_customer *v;
    size_t n;
    int64_t only;
    int failed;
};

static int customer_collect(const struct store_customer *c, void *arg)
{
    struct customer_rows *r = arg;
    if (r->only && c->id != r->only)
        return 0;
    struct store_customer *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v) {
        r->failed = 1;
        return 1;
    }
    r->v = v;
    v[r->n++] = *c;
    return 0;
}

json_t *admin_customers(struct store *st, int64_t customer_id)
{
    struct customer_rows r = {.only = customer_id};
    struct list l = {st, json_array(), customer_id, 0};
    int rc = store_customer_list(st, customer_collect, &r);
    if (r.failed)
        l.failed = 1;
    for (size_t i = 0; rc == STORE_OK && !l.failed && i < r.n; i++)
        list_add(&l, admin_customer_json(st, &r.v[i]));
    free(r.v);
    return list_end(&l, rc);
}

/* ------------------------------------------------------------------ domains */

json_t *admin_domain_json(struct store *st, const struct store_domain *d)
{
    struct store_customer c;
    if (store_customer_get_by_id(st, d->customer_id, &c) != STORE_OK)
        return NULL;
    return json_pack("{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:b, s:b, s:I, s:s, s:o, s:o, s:s}", "name",
                     admin_jstr(d->name), "customer", admin_jstr(c.name), "routes", split_list(d->routes),
                     "recipient_check", d->recipient_check, "outbound_from", split_list(d->outbound_from),
                     "webhook", d->webhook[0] ? admin_jstr(d->webhook) : json_null(), "dkim_selector",
                     d->dkim_selector[0] ? admin_jstr(d->dkim_selector) : json_null(), "dkim_key",
                     d->dkim_key_file[0] ? admin_jstr(d->dkim_key_file) : json_null(), "continuity", d->continuity,
                     "outgoing_to_own_server", d->outgoing_to_own, "created", (json_int_t)d->created, "state",
                     directory_state_name(d->state), "state_since", admin_jtime(d->state_since), "state_cause",
                     d->state_cause[0] ? admin_jstr(d->state_cause) : json_null(), "subscription",
                     subscription_state(&c));
}

struct domain_rows {
    struct store_domain *v;
    size_t n;
    int64_t only;
    int failed;
};

static int domain_collect(const struct store_domain *d, void *arg)
{
    struct domain_rows *r = arg;
    if (r->only && d->customer_id != r->only)
        return 0;
    struct store_domain *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v) {
        r->failed = 1;
        return 1;
    }
    r->v = v;
    v[r->n++] = *d;
    return 0;
}

json_t *admin_domains(struct store *st, int64_t customer_id)
{
    struct domain_rows r = {.only = customer_id};
    struct list l = {st, json_array(), customer_id, 0};
    int rc = store_domain_list(st, domain_collect, &r);
    if (r.failed)
        l.failed = 1;
    for (size_t i = 0; rc == STORE_OK && !l.failed && i < r.n; i++)
        list_add(&l, admin_domain_json(st, &r.v[i]));
    free(r.v);
    return list_end(&l, rc);
}

/* ------------------------------------------------------------------ users */

static int alias_add(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    return json_array_append_new(arg, admin_jstr(alias)) != 0;
}

/* The codes of the reasons a user is not ready for continuity ([] when ready). */
static json_t *readiness_codes(const struct store_user_readiness *r)
{
    json_t *codes = json_array();
    unsigned reasons = directory_readiness_reasons(r);
    for (unsigned bit = 0; codes && bit < READINESS_REASONS; bit++) {
        if (!(reasons & (1u << bit)))
            continue;
        struct directory_readiness_text t;
        directory_readiness_describe(1u << bit, r, &t);
        json_array_append_new(codes, json_string(t.code));
    }
    return codes;
}

json_t *admin_user_json(struct store *st, const struct store_user *u)
{
    struct store_domain d;
    struct store_user_readiness r;
    json_t *aliases = json_array();
    if (!aliases || store_domain_get_by_id(st, u->domain_id, &d) != STORE_OK ||
        store_alias_list(st, u->id, alias_add, aliases) != STORE_OK ||
        store_user_readiness_get(st, u->id, &r) != STORE_OK) {
        json_decref(aliases);
        return NULL;
    }
    json_t *reasons = readiness_codes(&r);
    /* The hash itself never leaves the store: only whether there is one. */
    return json_pack("{s:o, s:o, s:s, s:o, s:b, s:b, s:b, s:b, s:o, s:o, s:I, s:s, s:o, s:b, s:o}", "email",
                     admin_jstr(u->email), "name", admin_jstr(u->name), "role", directory_role_name(u->role),
                     "domain", admin_jstr(d.name), "active", u->active && !u->suspended, "activated", u->active,
                     "suspended", u->suspended, "password", u->pw_hash[0] != 0, "alt_email",
                     u->alt_email[0] ? admin_jstr(u->alt_email) : json_null(), "aliases", aliases, "created",
                     (json_int_t)u->created, "source", r.ldap ? "ldap" : "local", "last_login",
                     admin_jtime(r.last_login), "ready", reasons && json_array_size(reasons) == 0, "not_ready",
                     reasons);
}

struct user_rows {
    struct store_user *v;
    size_t n;
    int failed;
};

static int user_collect(const struct store_user *u, void *arg)
{
    struct user_rows *r = arg;
    struct store_user *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v) {
        r->failed = 1;
        return 1;
    }
    r->v = v;
    v[r->n++] = *u;
    return 0;
}

json_t *admin_users(struct store *st, const struct store_user_query *q)
{
    struct user_rows r = {0};
    uint64_t total = 0;
    struct list l = {st, json_array(), q->customer_id, 0};
    int rc = store_user_search(st, q, user_collect, &r, &total);
    if (r.failed)
        l.failed = 1;
    for (size_t i = 0; rc == STORE_OK && !l.failed && i < r.n; i++)
        list_add(&l, admin_user_json(st, &r.v[i]));
    if (r.v)
        memset(r.v, 0, r.n * sizeof *r.v); /* the rows carried password hashes */
    free(r.v);
    json_t *users = list_end(&l, rc);
    if (!users)
        return NULL;
    return json_pack("{s:I, s:I, s:I, s:o}", "total", (json_int_t)total, "offset", (json_int_t)q->offset, "limit",
                     (json_int_t)q->limit, "users", users);
}

/* ------------------------------------------------------------------ password policy */

json_t *admin_policy_json(struct store *st, const struct store_customer *c)
{
    struct password_policy p;
    int is_default = 0;
    if (directory_password_policy_get(st, c->id, &p, &is_default) != STORE_OK)
        return NULL;
    char text[256];
    password_policy_describe(&p, text, sizeof text);
    return json_pack("{s:o, s:I, s:b, s:b, s:b, s:b, s:b, s:s}", "customer", admin_jstr(c->name), "min_length",
                     (json_int_t)p.min_length, "upper", p.upper, "lower", p.lower, "digit", p.digit, "special",
                     p.special, "default", is_default, "text", text);
}
