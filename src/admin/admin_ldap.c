/*
 * admin_ldap.c — the views of a domain's directory (settings without the
 * bind password, the last sync's report) and of readiness (see admin.h):
 * what lifeboatctl ldap status|sync --json, user readiness --json and the
 * control panel's API show.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "directory/directory.h"

json_t *admin_ldap_report_json(const struct store_ldap_report *r)
{
    json_t *errors = json_array();
    for (const char *p = r->errors; errors && *p;) {
        size_t n = strcspn(p, "\n");
        char line[STORE_LDAP_ERRORS_MAX];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        if (json_array_append_new(errors, admin_jstr(line)) != 0) {
            json_decref(errors);
            return NULL;
        }
        p += n;
        p += *p == '\n';
    }
    if (!errors)
        return NULL;
    return json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "at", admin_jtime(r->at), "ok", r->ok,
                     "duration_ms", (json_int_t)r->duration_ms, "entries", (json_int_t)r->entries, "added",
                     (json_int_t)r->added, "updated", (json_int_t)r->updated, "suspended", (json_int_t)r->suspended,
                     "aliases", (json_int_t)r->aliases, "aliases_removed", (json_int_t)r->aliases_removed,
                     "error_count", (json_int_t)r->nerrors, "errors", errors);
}

json_t *admin_ldap_json(struct store *st, const struct store_domain *d, const struct store_ldap_settings *s)
{
    struct store_ldap_report r;
    int have = store_ldap_report_get(st, d->id, &r);
    if (have == STORE_ERR)
        return NULL;
    json_t *last = have == STORE_OK ? admin_ldap_report_json(&r) : json_null();
    if (!last)
        return NULL;
    /* Never the bind password: only whether there is one. */
    return json_pack("{s:o, s:b, s:o, s:o, s:b, s:o, s:o, s:I, s:b, s:o, s:o}", "domain", admin_jstr(d->name),
                     "configured", 1, "url", admin_jstr(s->url), "bind_dn", admin_jstr(s->bind_dn),
                     "bind_password_set", s->bind_password[0] != 0, "base", admin_jstr(s->base), "filter",
                     admin_jstr(s->filter), "interval", (json_int_t)s->interval, "starttls", s->starttls, "updated",
                     admin_jtime(s->updated), "last_sync", last);
}

json_t *admin_ldap_domain(struct store *st, const struct store_domain *d)
{
    struct store_ldap_settings s;
    int rc = store_ldap_settings_get(st, d->id, &s);
    if (rc == STORE_ERR)
        return NULL;
    if (rc == STORE_NOTFOUND)
        return json_pack("{s:o, s:b, s:s, s:I}", "domain", admin_jstr(d->name), "configured", 0, "filter",
                         LDAP_FILTER_DEFAULT, "interval", (json_int_t)LDAP_INTERVAL_DEFAULT);
    json_t *o = admin_ldap_json(st, d, &s);
    memset(s.bind_password, 0, sizeof s.bind_password);
    return o;
}

struct ldap_rows {
    struct store *st;
    int64_t customer_id;
    json_t *rows;
    int failed;
};

static int ldap_row(const struct store_ldap_settings *s, void *arg)
{
    struct ldap_rows *x = arg;
    struct store_domain d;
    if (store_domain_get_by_id(x->st, s->domain_id, &d) != STORE_OK) {
        x->failed = 1;
        return 1;
    }
    if (x->customer_id && d.customer_id != x->customer_id)
        return 0;
    json_t *o = admin_ldap_json(x->st, &d, s);
    if (!o || json_array_append_new(x->rows, o) != 0) {
        x->failed = 1;
        return 1;
    }
    return 0;
}

json_t *admin_ldap_list(struct store *st, int64_t customer_id)
{
    struct ldap_rows x = {st, customer_id, json_array(), 0};
    if (!x.rows)
        return NULL;
    if (store_ldap_settings_list(st, ldap_row, &x) != STORE_OK || x.failed) {
        json_decref(x.rows);
        return NULL;
    }
    return x.rows;
}

/* ------------------------------------------------------------------ readiness */

json_t *admin_readiness_user_json(const struct store_user_readiness *u, unsigned reasons)
{
    json_t *rs = json_array();
    for (unsigned bit = 1; rs && bit < (1u << READINESS_REASONS); bit <<= 1) {
        if (!(reasons & bit))
            continue;
        struct directory_readiness_text t;
        directory_readiness_describe(bit, u, &t);
        if (json_array_append_new(rs, json_pack("{s:s, s:s, s:s}", "code", t.code, "text", t.text, "fix", t.fix)) !=
            0) {
            json_decref(rs);
            return NULL;
        }
    }
    if (!rs)
        return NULL;
    return json_pack("{s:o, s:b, s:s, s:o, s:o}", "email", admin_jstr(u->email), "ready", reasons == 0, "source",
                     u->ldap ? "ldap" : "local", "last_login", admin_jtime(u->last_login), "reasons", rs);
}

struct readiness_rows {
    json_t *users;
    unsigned total, ready;
    int failed;
};

static int readiness_row(const struct store_user_readiness *u, unsigned reasons, void *arg)
{
    struct readiness_rows *x = arg;
    json_t *o = admin_readiness_user_json(u, reasons);
    if (!o || json_array_append_new(x->users, o) != 0) {
        x->failed = 1;
        return 1;
    }
    x->total++;
    x->ready += reasons == 0;
    return 0;
}

json_t *admin_readiness(struct store *st, int64_t domain_id, int64_t customer_id)
{
    struct readiness_rows x = {json_array(), 0, 0, 0};
    if (!x.users)
        return NULL;
    if (directory_readiness(st, domain_id, customer_id, readiness_row, &x) != STORE_OK || x.failed) {
        json_decref(x.users);
        return NULL;
    }
    return json_pack("{s:I, s:I, s:o}", "total", (json_int_t)x.total, "ready", (json_int_t)x.ready, "users", x.users);
}
