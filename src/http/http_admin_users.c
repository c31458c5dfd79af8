/*
 * http_admin_users.c — the control panel's API for users and their aliases
 * (SPEC.md "HTTP API", /api/v1/admin/users).
 *
 * The rules are the directory's (the ones lifeboatctl applies); this file
 * adds what only the API needs: the scope (a user or alias of another
 * customer answers 404, a new address must be in one of the scope's
 * domains), and that an admin can neither make an operator nor change or
 * delete one — the operator role sees every customer, so granting it or
 * taking over an operator's account is the operators' own business.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "http/http_internal.h"
#include "util/addr.h"

#define USERS_PAGE_DEFAULT 50
#define USERS_PAGE_MAX 500

static void reply_user(struct http_request *req, struct http_reply *rep, int status, const char *email)
{
    struct store_user u;
    char canon[ADDR_MAX + 1];
    json_t *view = addr_canonical(email, canon, sizeof canon) == 0 && store_user_get(req->st, canon, &u) == STORE_OK
                       ? admin_user_json(req->st, &u)
                       : NULL;
    if (!view)
        http_reply_error(rep, 500, "internal error");
    else
        http_reply_json(rep, status, view);
}

void http_h_admin_users(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_domain(req, &s, &d, rep) != 0)
        return;
    struct store_user_query q = {.customer_id = s.customer_id, .domain_id = d.id, .text = http_query(req, "q")};
    long long offset, limit;
    if (http_query_number(req, "offset", 0, 0, INT32_MAX, &offset, rep) != 0 ||
        http_query_number(req, "limit", USERS_PAGE_DEFAULT, 1, USERS_PAGE_MAX, &limit, rep) != 0)
        return;
    if (q.text && strlen(q.text) > 200) {
        http_reply_error_code(rep, 400, "invalid", "q is too long");
        return;
    }
    q.offset = (size_t)offset;
    q.limit = (size_t)limit;
    json_t *page = admin_users(req->st, &q);
    if (!page)
        http_reply_error(rep, 500, "internal error");
    else
        http_reply_json(rep, 200, page);
}

/* The user of the path, within the scope; an admin may not touch an
 * operator. 0, or -1 with the reply set. */
static int path_user(struct http_request *req, int changing, struct store_user *u, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_admin_user(req, &s, req->arg[0], u, rep) != 0)
        return -1;
    if (changing && u->role == ROLE_OPERATOR && req->user.role != ROLE_OPERATOR) {
        http_reply_error_code(rep, 403, "operator_only", "only an operator changes an operator's account");
        return -1;
    }
    return 0;
}

void http_h_admin_user_get(struct http_request *req, struct http_reply *rep)
{
    struct store_user u;
    if (path_user(req, 0, &u, rep) != 0)
        return;
    json_t *view = admin_user_json(req->st, &u);
    if (!view)
        http_reply_error(rep, 500, "internal error");
    else
        http_reply_json(rep, 200, view);
}

/* The fields of a user's body that POST and PATCH share. */
struct user_args {
    char email[ADDR_MAX + 1];
    const char *name, *role, *alt_email, *password;
    int active;
    struct directory_user_changes ch;
};

static int user_body(struct http_request *req, struct user_args *a, struct http_reply *rep)
{
    if (http_body_string(req, "name", &a->name, rep) != 0 || http_body_string(req, "role", &a->role, rep) != 0 ||
        http_body_string(req, "alt_email", &a->alt_email, rep) != 0 ||
        http_body_string(req, "password", &a->password, rep) != 0 ||
        http_body_bool(req, "active", &a->active, rep) != 0)
        return -1;
    if (a->role && directory_role_parse(a->role) == ROLE_OPERATOR && req->user.role != ROLE_OPERATOR) {
        http_reply_error_code(rep, 403, "operator_only", "only an operator makes an operator");
        return -1;
    }
    return 0;
}

static int user_add(struct store *st, void *arg, char *err, size_t errlen)
{
    struct user_args *a = arg;
    int rc = directory_user_add(st, a->email, a->name, a->role, a->password, a->active == 1, err, errlen);
    if (rc == 0 && a->alt_email && *a->alt_email) {
        struct directory_user_changes ch = {.active = -1, .suspended = -1, .alt_email = a->alt_email};
        rc = directory_user_set(st, a->email, &ch, err, errlen);
    }
    return rc;
}

void http_h_admin_user_add(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct user_args a = {0};
    const char *email;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_body_string(req, "email", &email, rep) != 0 ||
        user_body(req, &a, rep) != 0)
        return;
    if (!email || addr_canonical(email, a.email, sizeof a.email) != 0 || !addr_is_valid(a.email)) {
        http_reply_error_code(rep, 400, "invalid", "email must be a valid address");
        return;
    }
    /* The new address must be in a domain of the scope (else: as unknown). */
    struct store_domain d;
    if (http_admin_domain(req, &s, strchr(a.email, '@') + 1, &d, rep) != 0)
        return;
    struct http_admin_change c = {.apply = user_add, .arg = &a};
    http_admin_audit_set(req, &c, d.customer_id, "user.add", "user:%s", a.email);
    snprintf(c.audit.detail, sizeof c.audit.detail, "role=%s active=%s password=%s", a.role ? a.role : "user",
             a.active == 1 ? "yes" : "no", a.password ? "set" : "none");
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_user(req, rep, 201, a.email);
}

static int user_set(struct store *st, void *arg, char *err, size_t errlen)
{
    struct user_args *a = arg;
    return directory_user_set(st, a->email, &a->ch, err, errlen);
}

/* PATCH users/EMAIL: each field present is changed. "active": true
 * activates (and lifts a suspension), false suspends. */
void http_h_admin_user_patch(struct http_request *req, struct http_reply *rep)
{
    struct store_user u;
    struct user_args a = {0};
    if (path_user(req, 1, &u, rep) != 0 || user_body(req, &a, rep) != 0)
        return;
    snprintf(a.email, sizeof a.email, "%s", u.email);
    a.ch = (struct directory_user_changes){.password = a.password,
                                           .active = a.active == 1 ? 1 : -1,
                                           .suspended = a.active == 0 ? 1 : -1,
                                           .alt_email = a.alt_email,
                                           .role = a.role,
                                           .name = a.name};
    if (!a.password && a.active < 0 && !a.alt_email && !a.role && !a.name) {
        http_reply_error_code(rep, 400, "invalid", "nothing to change");
        return;
    }
    int64_t customer_id = 0;
    struct store_domain d;
    if (store_domain_get_by_id(req->st, u.domain_id, &d) == STORE_OK)
        customer_id = d.customer_id;
    struct http_admin_change c = {.apply = user_set, .arg = &a};
    http_admin_audit_set(req, &c, customer_id, "user.set", "user:%s", u.email);
    snprintf(c.audit.detail, sizeof c.audit.detail, "%s%s%s%s%s%s", a.name ? "name " : "", a.role ? "role " : "",
             a.alt_email ? "alt_email " : "", a.active == 1 ? "activate " : "", a.active == 0 ? "suspend " : "",
             a.password ? "password" : "");
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_user(req, rep, 200, u.email);
}

struct del_args {
    const char *email, *alias;
};

static int user_del(struct store *st, void *arg, char *err, size_t errlen)
{
    struct del_args *a = arg;
    return directory_user_del(st, a->email, err, errlen);
}

static int64_t customer_of(struct http_request *req, const struct store_user *u)
{
    struct store_domain d;
    return store_domain_get_by_id(req->st, u->domain_id, &d) == STORE_OK ? d.customer_id : 0;
}

void http_h_admin_user_del(struct http_request *req, struct http_reply *rep)
{
    struct store_user u;
    if (path_user(req, 1, &u, rep) != 0)
        return;
    struct del_args a = {.email = u.email};
    struct http_admin_change c = {.apply = user_del, .arg = &a};
    http_admin_audit_set(req, &c, customer_of(req, &u), "user.del", "user:%s", u.email);
    if (http_admin_change_run(req, &c, rep) == 0)
        http_reply_json(rep, 200, json_pack("{s:b}", "deleted", 1));
}

/* ------------------------------------------------------------------ aliases */

static int alias_add(struct store *st, void *arg, char *err, size_t errlen)
{
    struct del_args *a = arg;
    return directory_alias_add(st, a->email, a->alias, err, errlen);
}

/* POST users/EMAIL/aliases {"alias"}: the directory keeps aliases within the
 * user's customer's domains, so an admin cannot claim another customer's. */
void http_h_admin_alias_add(struct http_request *req, struct http_reply *rep)
{
    struct store_user u;
    struct del_args a = {0};
    if (path_user(req, 1, &u, rep) != 0 || http_body_string(req, "alias", &a.alias, rep) != 0)
        return;
    if (!a.alias) {
        http_reply_error_code(rep, 400, "invalid", "alias is required");
        return;
    }
    a.email = u.email;
    struct http_admin_change c = {.apply = alias_add, .arg = &a};
    http_admin_audit_set(req, &c, customer_of(req, &u), "alias.add", "user:%s", u.email);
    snprintf(c.audit.detail, sizeof c.audit.detail, "alias=%.300s", a.alias);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_user(req, rep, 201, u.email);
}

static int alias_del(struct store *st, void *arg, char *err, size_t errlen)
{
    struct del_args *a = arg;
    return directory_alias_del(st, a->alias, err, errlen);
}

void http_h_admin_alias_del(struct http_request *req, struct http_reply *rep)
{
    struct store_user u;
    if (path_user(req, 1, &u, rep) != 0)
        return;
    /* Only an alias of this user: anything else is unknown here. */
    char alias[ADDR_MAX + 1];
    int64_t owner = 0;
    int rc = addr_canonical(req->arg[1], alias, sizeof alias) == 0 ? store_alias_get(req->st, alias, &owner)
                                                                   : STORE_NOTFOUND;
    if (rc == STORE_OK && owner != u.id)
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such alias");
        return;
    }
    struct del_args a = {.email = u.email, .alias = alias};
    struct http_admin_change c = {.apply = alias_del, .arg = &a};
    http_admin_audit_set(req, &c, customer_of(req, &u), "alias.del", "user:%s", u.email);
    snprintf(c.audit.detail, sizeof c.audit.detail, "alias=%s", alias);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_user(req, rep, 200, u.email);
}
