/*
 * http_admin_directory.c — the control panel's API for customers,
 * subscriptions, domains, their continuity settings and password policies
 * (SPEC.md "HTTP API", /api/v1/admin/).
 *
 * Each handler names its objects through the admin scope (another
 * customer's answer 404), reads with the views of admin.h, and changes with
 * the directory call lifeboatctl makes, in a writer job with its audit row.
 * The role a route needs is in the route table, not here.
 */
#include <stdio.h>
#include <string.h>
#include "util/timeutil.h"

#include "admin/admin.h"
#include "http/http_internal.h"
#include "util/addr.h"

/* A view or 500. */
static void reply_view(struct http_reply *rep, int status, json_t *view)
{
    if (!view)
        http_reply_error(rep, 500, "internal error");
    else
        http_reply_json(rep, status, view);
}

/* ------------------------------------------------------------------ customers */

void http_h_admin_customers(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) == 0)
        reply_view(rep, 200, admin_customers(req->st, s.customer_id));
}

struct customer_args {
    const char *name;
    long months;
};

static int customer_add(struct store *st, void *arg, char *err, size_t errlen)
{
    struct customer_args *a = arg;
    return directory_customer_add(st, a->name, err, errlen);
}

/* The customer just made or changed, as the listing shows it. */
static void reply_customer(struct http_request *req, struct http_reply *rep, int status, const char *name)
{
    struct store_customer c;
    if (store_customer_get(req->st, name, &c) != STORE_OK)
        http_reply_error(rep, 500, "internal error");
    else
        reply_view(rep, status, admin_customer_json(req->st, &c));
}

void http_h_admin_customer_add(struct http_request *req, struct http_reply *rep)
{
    struct customer_args a = {0};
    if (http_body_string(req, "name", &a.name, rep) != 0)
        return;
    if (!a.name) {
        http_reply_error_code(rep, 400, "invalid", "name is required");
        return;
    }
    struct http_admin_change c = {.apply = customer_add, .arg = &a};
    http_admin_audit_set(req, &c, 0, "customer.add", "customer:%s", a.name);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_customer(req, rep, 201, a.name);
}

/* The customer of the path, within the scope: 0, or -1 with 404 set. */
static int path_customer(struct http_request *req, struct store_customer *c, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return -1;
    int rc = store_customer_get(req->st, req->arg[0], c);
    if (rc == STORE_OK && !http_admin_customer_visible(&s, c->id))
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such customer");
        return -1;
    }
    return 0;
}

static int subscription_start(struct store *st, void *arg, char *err, size_t errlen)
{
    struct customer_args *a = arg;
    return directory_subscription_start(st, a->name, (int)a->months, time_now(), err, errlen);
}

static int subscription_cancel(struct store *st, void *arg, char *err, size_t errlen)
{
    struct customer_args *a = arg;
    return directory_subscription_cancel(st, a->name, time_now(), NULL, err, errlen);
}

void http_h_admin_subscription_start(struct http_request *req, struct http_reply *rep)
{
    struct store_customer cu;
    struct customer_args a = {0};
    if (path_customer(req, &cu, rep) != 0 ||
        http_body_int(req, "months", 1, SUBSCRIPTION_MAX_MONTHS, &a.months, rep) != 0)
        return;
    a.name = cu.name;
    if (a.months < 0)
        a.months = SUBSCRIPTION_MIN_MONTHS;
    struct http_admin_change c = {.apply = subscription_start, .arg = &a};
    http_admin_audit_set(req, &c, cu.id, "subscription.start", "customer:%s", cu.name);
    snprintf(c.audit.detail, sizeof c.audit.detail, "months=%ld", a.months);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_customer(req, rep, 200, cu.name);
}

void http_h_admin_subscription_cancel(struct http_request *req, struct http_reply *rep)
{
    struct store_customer cu;
    if (path_customer(req, &cu, rep) != 0)
        return;
    struct customer_args a = {.name = cu.name};
    struct http_admin_change c = {.apply = subscription_cancel, .arg = &a};
    http_admin_audit_set(req, &c, cu.id, "subscription.cancel", "customer:%s", cu.name);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_customer(req, rep, 200, cu.name);
}

/* ------------------------------------------------------------------ domains */

void http_h_admin_domains(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) == 0)
        reply_view(rep, 200, admin_domains(req->st, s.customer_id));
}

/* The domain just made or changed, as the listing shows it. */
static void reply_domain(struct http_request *req, struct http_reply *rep, int status, const char *name)
{
    struct store_domain d;
    char canon[DOMAIN_MAX + 1];
    if (addr_canonical(name, canon, sizeof canon) != 0 || store_domain_get(req->st, canon, &d) != STORE_OK)
        http_reply_error(rep, 500, "internal error");
    else
        reply_view(rep, status, admin_domain_json(req->st, &d));
}

struct domain_args {
    const char *domain, *customer;
    char routes[1024], outbound_from[1024], webhook[1024];
    struct directory_domain_changes ch;
    int enabled, outgoing;
};

static int domain_add(struct store *st, void *arg, char *err, size_t errlen)
{
    struct domain_args *a = arg;
    return directory_domain_add(st, a->domain, a->customer, a->routes, err, errlen);
}

void http_h_admin_domain_add(struct http_request *req, struct http_reply *rep)
{
    struct domain_args a = {0};
    int has_routes;
    if (http_body_string(req, "domain", &a.domain, rep) != 0 ||
        http_body_string(req, "customer", &a.customer, rep) != 0 ||
        http_body_list(req, "routes", a.routes, sizeof a.routes, &has_routes, rep) != 0)
        return;
    if (!a.domain || !a.customer || !has_routes) {
        http_reply_error_code(rep, 400, "invalid", "domain, customer and routes are required");
        return;
    }
    struct store_customer cu;
    int rc = store_customer_get(req->st, a.customer, &cu);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such customer");
        return;
    }
    struct http_admin_change c = {.apply = domain_add, .arg = &a};
    http_admin_audit_set(req, &c, cu.id, "domain.add", "domain:%s", a.domain);
    snprintf(c.audit.detail, sizeof c.audit.detail, "routes=%.400s", a.routes);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_domain(req, rep, 201, a.domain);
}

void http_h_admin_domain_get(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_load(req, &s, rep) == 0 && http_admin_domain(req, &s, req->arg[0], &d, rep) == 0)
        reply_view(rep, 200, admin_domain_json(req->st, &d));
}

static int domain_set(struct store *st, void *arg, char *err, size_t errlen)
{
    struct domain_args *a = arg;
    return directory_domain_set(st, a->domain, &a->ch, err, errlen);
}

/* PATCH domains/D: each field present is changed, the others are left. */
void http_h_admin_domain_patch(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_admin_domain(req, &s, req->arg[0], &d, rep) != 0)
        return;
    struct domain_args a = {.domain = d.name, .ch = {.recipient_check = -1}};
    int has_routes, has_outbound, has_webhooks;
    const char *webhook = NULL, *pem = NULL;
    if (http_body_list(req, "routes", a.routes, sizeof a.routes, &has_routes, rep) != 0 ||
        http_body_bool(req, "recipient_check", &a.ch.recipient_check, rep) != 0 ||
        http_body_list(req, "outbound_from", a.outbound_from, sizeof a.outbound_from, &has_outbound, rep) != 0 ||
        http_body_list(req, "webhooks", a.webhook, sizeof a.webhook, &has_webhooks, rep) != 0 ||
        http_body_string(req, "webhook", &webhook, rep) != 0 ||
        http_body_string(req, "dkim_selector", &a.ch.dkim_selector, rep) != 0 ||
        http_body_string(req, "dkim_key_pem", &pem, rep) != 0)
        return;
    /* One notification URL a domain (the store keeps one): "webhooks" is
     * SPEC's list, so more than one is refused rather than half-kept. */
    if (has_webhooks && strchr(a.webhook, ',')) {
        http_reply_error_code(rep, 400, "invalid", "webhooks: one URL per domain");
        return;
    }
    if (webhook && has_webhooks) {
        http_reply_error_code(rep, 400, "invalid", "webhook and webhooks exclude each other");
        return;
    }
    if (has_routes)
        a.ch.routes = a.routes;
    if (has_outbound)
        a.ch.outbound_from = a.outbound_from;
    a.ch.webhook = has_webhooks ? a.webhook : webhook;
    char key_path[1200], why[512] = "";
    if (pem) {
        int rc = directory_dkim_key_save(http_config(req->srv)->data_dir, d.name, a.ch.dkim_selector, pem,
                                         key_path, sizeof key_path, why, sizeof why);
        if (rc != 0) {
            http_reply_directory(rep, rc, why);
            return;
        }
        a.ch.dkim_key_file = key_path;
    } else if (a.ch.dkim_selector && *a.ch.dkim_selector) {
        http_reply_error_code(rep, 400, "invalid", "dkim_selector needs dkim_key_pem (or \"\" to remove the key)");
        return;
    } else if (a.ch.dkim_selector) {
        a.ch.dkim_key_file = ""; /* "" removes the pair */
    }
    if (!a.ch.routes && a.ch.recipient_check < 0 && !a.ch.outbound_from && !a.ch.webhook && !a.ch.dkim_selector) {
        http_reply_error_code(rep, 400, "invalid", "nothing to change");
        return;
    }
    struct http_admin_change c = {.apply = domain_set, .arg = &a};
    http_admin_audit_set(req, &c, d.customer_id, "domain.set", "domain:%s", d.name);
    snprintf(c.audit.detail, sizeof c.audit.detail, "%s%s%s%s%s", a.ch.routes ? "routes " : "",
             a.ch.recipient_check >= 0 ? "recipient_check " : "", a.ch.outbound_from ? "outbound_from " : "",
             a.ch.webhook ? "webhook " : "", a.ch.dkim_selector ? "dkim" : "");
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_domain(req, rep, 200, d.name);
}

static int continuity_set(struct store *st, void *arg, char *err, size_t errlen)
{
    struct domain_args *a = arg;
    if (a->enabled)
        return directory_continuity_enable(st, a->domain, a->outgoing == 1, time_now(), NULL, err, errlen);
    return directory_continuity_disable(st, a->domain, NULL, err, errlen);
}

/* PUT domains/D/continuity {"enabled","outgoing_to_own_server"}: always for
 * all users of the domain (SPEC). */
void http_h_admin_continuity_put(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_admin_domain(req, &s, req->arg[0], &d, rep) != 0)
        return;
    struct domain_args a = {.domain = d.name};
    if (http_body_bool(req, "enabled", &a.enabled, rep) != 0 ||
        http_body_bool(req, "outgoing_to_own_server", &a.outgoing, rep) != 0)
        return;
    if (a.enabled < 0) {
        http_reply_error_code(rep, 400, "invalid", "enabled is required");
        return;
    }
    if (a.outgoing < 0) /* absent: keep the domain's setting */
        a.outgoing = d.outgoing_to_own;
    struct http_admin_change c = {.apply = continuity_set, .arg = &a};
    http_admin_audit_set(req, &c, d.customer_id, a.enabled ? "continuity.enable" : "continuity.disable",
                         "domain:%s", d.name);
    if (a.enabled)
        snprintf(c.audit.detail, sizeof c.audit.detail, "outgoing_to_own_server=%s", a.outgoing ? "yes" : "no");
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_domain(req, rep, 200, d.name);
}

/* ------------------------------------------------------------------ password policy */

/* The customer whose policy a request means: an admin's own; an operator's
 * ?customer=NAME (required: a policy is a customer's). */
static int policy_customer(struct http_request *req, struct store_customer *c, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return -1;
    if (!s.customer_id) {
        http_reply_error_code(rep, 400, "invalid", "customer= is required: a policy is one customer's");
        return -1;
    }
    if (store_customer_get_by_id(req->st, s.customer_id, c) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return -1;
    }
    return 0;
}

void http_h_admin_policy_get(struct http_request *req, struct http_reply *rep)
{
    struct store_customer c;
    if (policy_customer(req, &c, rep) == 0)
        reply_view(rep, 200, admin_policy_json(req->st, &c));
}

struct policy_args {
    const char *customer;
    struct directory_policy_changes ch;
};

static int policy_set(struct store *st, void *arg, char *err, size_t errlen)
{
    struct policy_args *a = arg;
    return directory_password_policy_set(st, a->customer, &a->ch, NULL, err, errlen);
}

void http_h_admin_policy_put(struct http_request *req, struct http_reply *rep)
{
    struct store_customer cu;
    if (policy_customer(req, &cu, rep) != 0)
        return;
    struct policy_args a = {.customer = cu.name};
    if (http_body_int(req, "min_length", 1, PASSWORD_POLICY_LENGTH_MAX, &a.ch.min_length, rep) != 0 ||
        http_body_bool(req, "upper", &a.ch.upper, rep) != 0 || http_body_bool(req, "lower", &a.ch.lower, rep) != 0 ||
        http_body_bool(req, "digit", &a.ch.digit, rep) != 0 ||
        http_body_bool(req, "special", &a.ch.special, rep) != 0)
        return;
    struct http_admin_change c = {.apply = policy_set, .arg = &a};
    http_admin_audit_set(req, &c, cu.id, "policy.set", "customer:%s", cu.name);
    if (http_admin_change_run(req, &c, rep) == 0)
        reply_view(rep, 200, admin_policy_json(req->st, &cu));
}
