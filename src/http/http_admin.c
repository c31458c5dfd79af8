/*
 * http_admin.c — the control panel's archive API (issue 5, items 4 and 6):
 * legal holds (list, place, release) and the audit trail, scoped by role.
 *
 * An admin works on their own customer (its users, or the whole customer), an
 * operator on any; users get 403. A user of another customer answers like an
 * unknown one (404), so admins cannot probe other customers' addresses. Each
 * change of a hold and its "archive.hold" audit row are one writer job: both
 * are committed or neither.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#define AUDIT_LIMIT_DEFAULT 100

static void failed(struct http_reply *rep, int rc, const char *notfound)
{
    if (rc == STORE_EXISTS)
        http_reply_error(rep, 409, "that hold is in place already");
    else
        http_reply_store_error(rep, rc, notfound);
}

/* ------------------------------------------------------------------ holds */

/* {"id","customer","user","created","created_by"}; NULL on a store error. */
static json_t *hold_json(struct store *st, const struct store_archive_hold *h)
{
    struct store_customer c;
    struct store_user u;
    if (store_customer_get_by_id(st, h->customer_id, &c) != STORE_OK)
        return NULL;
    int urc = h->user_id ? store_user_get_by_id(st, h->user_id, &u) : STORE_NOTFOUND;
    if (urc == STORE_ERR)
        return NULL;
    char created[64];
    time_iso8601((time_t)h->created, created, sizeof created);
    return json_pack("{s:I, s:o, s:o, s:s, s:o, s:b}", "id", (json_int_t)h->id, "customer", http_json_text(c.name),
                     "user", urc == STORE_OK ? http_json_text(u.email) : json_null(), "created", created,
                     "created_by", http_json_text(h->created_by), "by_operator", h->by_operator);
}

struct holds {
    struct store_archive_hold *v;
    size_t n;
    int oom;
};

static int hold_add(const struct store_archive_hold *h, void *arg)
{
    struct holds *l = arg;
    struct store_archive_hold *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        l->oom = 1;
        return 1;
    }
    l->v = v;
    v[l->n++] = *h;
    return 0;
}

/* The holds the scope sees (an admin: their customer's). */
static int holds_load(struct store *st, const struct http_archive_scope *s, struct holds *out)
{
    int rc = store_archive_hold_list(st, s->customer_id, hold_add, out);
    return rc == STORE_OK && out->oom ? STORE_ERR : rc;
}

void http_h_admin_holds(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    if (http_archive_scope_load(req, &s, rep) != 0)
        return;
    struct holds l = {0};
    int rc = holds_load(req->st, &s, &l);
    json_t *out = json_array();
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
        json_t *h = hold_json(req->st, &l.v[i]);
        if (!h)
            rc = STORE_ERR;
        json_array_append_new(out, h);
    }
    free(l.v);
    http_archive_scope_clear(&s);
    if (rc != STORE_OK) {
        json_decref(out);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, json_pack("{s:o}", "holds", out));
}

struct hold_job {
    int release;
    int operator; /* the session's role: an admin cannot lift an operator's hold */
    struct store_archive_hold h;
    struct store_audit a;
};

static int hold_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct hold_job *j = arg;
    int rc = j->release ? store_archive_hold_del(st, j->h.customer_id, j->h.user_id, j->operator)
                        : store_archive_hold_add(st, &j->h, &j->h.id);
    if (rc == STORE_OK)
        rc = store_audit_add(st, &j->a);
    return rc;
}

/* Which hold a request means: a user ("user": address or alias) or a whole
 * customer ("customer": name), within the scope. Fills j->h.customer_id,
 * user_id and the audit target. 0, or -1 with the reply set. */
static int hold_target(struct http_request *req, const struct http_archive_scope *s, const char *user,
                       const char *customer, struct hold_job *j, struct http_reply *rep)
{
    if ((user && *user) == (customer && *customer)) {
        http_reply_error(rep, 400, "name either a user or a customer");
        return -1;
    }
    if (user && *user) {
        struct store_user u;
        struct store_domain d;
        int rc = directory_login_user(req->st, user, &u);
        if (rc == STORE_OK)
            rc = store_domain_get_by_id(req->st, u.domain_id, &d);
        if (rc == STORE_OK && s->role != ROLE_OPERATOR && d.customer_id != s->customer_id)
            rc = STORE_NOTFOUND; /* another customer's user: as if unknown */
        if (rc != STORE_OK) {
            failed(rep, rc, "user: no such user");
            return -1;
        }
        j->h.customer_id = d.customer_id;
        j->h.user_id = u.id;
        snprintf(j->a.target, sizeof j->a.target, "user:%.250s", u.email);
    } else {
        struct store_customer c;
        if (s->role != ROLE_OPERATOR && strcmp(customer, s->customer) != 0) {
            http_reply_error(rep, 403, "customer: only your own customer");
            return -1;
        }
        int rc = store_customer_get(req->st, customer, &c);
        if (rc != STORE_OK) {
            failed(rep, rc, "customer: no such customer");
            return -1;
        }
        j->h.customer_id = c.id;
        snprintf(j->a.target, sizeof j->a.target, "customer:%s", c.name);
    }
    j->a.customer_id = j->h.customer_id;
    j->a.at = req->now;
    snprintf(j->a.actor, sizeof j->a.actor, "%s", req->user.email);
    snprintf(j->a.action, sizeof j->a.action, "archive.hold");
    return 0;
}

static void hold_change(struct http_request *req, struct http_reply *rep, struct hold_job *j)
{
    snprintf(j->a.detail, sizeof j->a.detail, "%s", j->release ? "released" : "placed");
    j->operator = req->user.role == ROLE_OPERATOR;
    j->h.by_operator = j->operator;
    int rc = http_write(req->srv, hold_job, j);
    if (rc == STORE_EXISTS && j->release) {
        log_warn("http: %s may not lift the operator's legal hold on %s", req->user.email, j->a.target);
        http_reply_error(rep, 403, "this legal hold was placed by the operator; only the operator can lift it");
        return;
    }
    if (rc != STORE_OK) {
        failed(rep, rc, "no such hold");
        return;
    }
    log_info("http: %s %s the legal hold on %s", req->user.email, j->release ? "released" : "placed",
             j->a.target);
    if (j->release) {
        http_reply_json(rep, 200, json_pack("{s:b}", "released", 1));
        return;
    }
    json_t *h = hold_json(req->st, &j->h);
    if (h)
        http_reply_json(rep, 201, h);
    else
        http_reply_error(rep, 500, "internal error");
}

void http_h_admin_hold_add(struct http_request *req, struct http_reply *rep)
{
    const char *key;
    json_t *v;
    json_object_foreach(req->json, key, v)
    {
        if ((strcmp(key, "user") != 0 && strcmp(key, "customer") != 0) || !json_is_string(v)) {
            http_reply_error(rep, 400, "give \"user\" (an address) or \"customer\" (a name)");
            return;
        }
    }
    struct http_archive_scope s;
    if (http_archive_scope_load(req, &s, rep) != 0)
        return;
    struct hold_job j = {.h = {.created = req->now}};
    snprintf(j.h.created_by, sizeof j.h.created_by, "%s", req->user.email);
    if (hold_target(req, &s, json_string_value(json_object_get(req->json, "user")),
                    json_string_value(json_object_get(req->json, "customer")), &j, rep) == 0)
        hold_change(req, rep, &j);
    http_archive_scope_clear(&s);
}

/* DELETE /api/v1/admin/archive/holds?user=EMAIL|customer=NAME, and
 * DELETE /api/v1/admin/archive/holds/:id. */
void http_h_admin_hold_del(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    /* ?customer= names the hold (and narrows an operator's scope to it). */
    const char *customer = http_query(req, "customer");
    const char *user = http_query(req, "user");
    struct hold_job j = {.release = 1};
    if (http_archive_scope_load(req, &s, rep) != 0) /* an admin's ?customer= must be theirs */
        return;
    if (req->id) {
        struct holds l = {0};
        int rc = holds_load(req->st, &s, &l);
        size_t i = 0;
        while (rc == STORE_OK && i < l.n && l.v[i].id != req->id)
            i++;
        if (rc == STORE_OK && i == l.n)
            rc = STORE_NOTFOUND;
        if (rc == STORE_OK) {
            j.h = l.v[i];
            customer = NULL;
            user = NULL;
        }
        free(l.v);
        if (rc != STORE_OK) {
            failed(rep, rc, "no such hold");
            http_archive_scope_clear(&s);
            return;
        }
        struct store_customer c;
        struct store_user u;
        if (store_customer_get_by_id(req->st, j.h.customer_id, &c) != STORE_OK) {
            http_reply_error(rep, 500, "internal error");
            http_archive_scope_clear(&s);
            return;
        }
        if (j.h.user_id && store_user_get_by_id(req->st, j.h.user_id, &u) == STORE_OK)
            snprintf(j.a.target, sizeof j.a.target, "user:%.250s", u.email);
        else if (j.h.user_id)
            snprintf(j.a.target, sizeof j.a.target, "user:%lld", (long long)j.h.user_id);
        else
            snprintf(j.a.target, sizeof j.a.target, "customer:%s", c.name);
        j.a.customer_id = j.h.customer_id;
        j.a.at = req->now;
        snprintf(j.a.actor, sizeof j.a.actor, "%s", req->user.email);
        snprintf(j.a.action, sizeof j.a.action, "archive.hold");
        hold_change(req, rep, &j);
    } else if (hold_target(req, &s, user, customer, &j, rep) == 0) {
        hold_change(req, rep, &j);
    }
    http_archive_scope_clear(&s);
}

/* ------------------------------------------------------------------ audit */

struct audit_rows {
    struct store *st;
    json_t *list;
    int64_t cached_id; /* the customer of the last row, looked up once per run of rows */
    char cached_name[128];
    int err;
};

static int audit_row(const struct store_audit *a, void *arg)
{
    struct audit_rows *r = arg;
    json_t *customer = json_null();
    if (a->customer_id) {
        if (a->customer_id != r->cached_id) {
            struct store_customer c;
            int rc = store_customer_get_by_id(r->st, a->customer_id, &c);
            if (rc == STORE_ERR) {
                r->err = 1;
                return 1;
            }
            snprintf(r->cached_name, sizeof r->cached_name, "%s", rc == STORE_OK ? c.name : "");
            r->cached_id = a->customer_id;
        }
        customer = http_json_text(r->cached_name);
    }
    char at[64];
    time_iso8601((time_t)a->at, at, sizeof at);
    json_array_append_new(r->list, json_pack("{s:I, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id,
                                             "at", at, "at_epoch", (json_int_t)a->at, "customer", customer, "actor",
                                             http_json_text(a->actor), "action", http_json_text(a->action),
                                             "target", http_json_text(a->target), "detail",
                                             http_json_text(a->detail)));
    return 0;
}

void http_h_admin_audit(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    const char *ls = http_query(req, "limit");
    long limit = AUDIT_LIMIT_DEFAULT;
    if (ls && *ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (*end || ls[0] == '-' || ls[0] == '+' || ls[0] == ' ' || limit < 1 || limit > HTTP_AUDIT_LIMIT_MAX) {
            http_reply_error(rep, 400, "limit: a number from 1 to 1000");
            return;
        }
    }
    if (http_archive_scope_load(req, &s, rep) != 0)
        return;
    struct audit_rows r = {.st = req->st, .list = json_array()};
    int rc = store_audit_list(req->st, s.customer_id, (size_t)limit, audit_row, &r);
    http_archive_scope_clear(&s);
    if (rc != STORE_OK || r.err) {
        json_decref(r.list);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, json_pack("{s:o}", "entries", r.list));
}
