/*
 * http_admin_import.c — the control panel's user import, unlock and the
 * operator's deletions (SPEC.md "HTTP API", /api/v1/admin/):
 *
 *   POST   users/import?domain=D   (text/csv)  -> {"imported","updated","errors":[{"line","error"}]}
 *   POST   users/EMAIL/unlock                  -> {"email","unlocked":true}
 *   DELETE domains/D[?force=1]   (operator)    -> {"domain","users","aliases","mailbox","dropped_queued","dropped_waiting"}
 *   DELETE customers/NAME        (operator)    -> {"customer","deleted":true}
 *
 * Each runs the directory call lifeboatctl runs (user_import.c, admin_del.c)
 * in a writer job, with its audit row in the same job: the change and its
 * record commit together or not at all. The import's checks and its
 * password hashing (argon2id, tens of ms a password) happen first, on this
 * HTTP thread, so the writer — and with it every SMTP session waiting for a
 * commit — is held only for the rows. A domain or user of another customer
 * answers 404, as a missing one (http_admin_scope.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "util/errbuf.h"
#include "util/log.h"

/* A directory call's result inside a writer job: the job itself fails (its
 * savepoint is rolled back) on any refusal, and the refusal's kind and reason
 * travel in the job's argument. */
struct job_result {
    int rc; /* enum directory_result */
    char err[512];
};

/* The result of http_write for a job that filled r: the directory's code, or
 * the writer's (a failed commit is the store's failure, a stopping server
 * HTTP_WRITE_STOPPING). */
static int job_outcome(int wrc, const struct job_result *r)
{
    if (wrc == HTTP_WRITE_STOPPING)
        return wrc;
    if (r->rc != 0)
        return r->rc;
    return wrc == STORE_OK ? 0 : DIR_STORE;
}

static void audit_fill(const struct http_request *req, struct store_audit *a, int64_t customer_id, const char *action)
{
    memset(a, 0, sizeof *a);
    a->at = req->now;
    a->customer_id = customer_id;
    snprintf(a->actor, sizeof a->actor, "%s", req->user.email);
    snprintf(a->action, sizeof a->action, "%s", action);
}

/* ------------------------------------------------------------------ import */

/* Is the body CSV? text/csv (what the panel sends), or text/plain (a file a
 * browser does not know), with any parameters. */
static int is_csv_type(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strcspn(ct, "; \t");
    return (n == 8 && !strncasecmp(ct, "text/csv", 8)) || (n == 10 && !strncasecmp(ct, "text/plain", 10));
}

struct import_job {
    struct directory_import *imp;
    struct store_audit a;
    struct job_result r;
};

static int import_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct import_job *j = arg;
    j->r.rc = directory_import_apply(st, j->imp, j->r.err, sizeof j->r.err);
    if (j->r.rc != 0)
        return STORE_ERR;
    const struct directory_import_report *rep = directory_import_report(j->imp);
    snprintf(j->a.detail, sizeof j->a.detail, "imported %u, updated %u, refused %zu", rep->imported, rep->updated,
             rep->nerrors);
    if (store_audit_add(st, &j->a) != STORE_OK) {
        j->r.rc = errbuf_failc(DIR_STORE, j->r.err, sizeof j->r.err, "cannot record the import in the audit trail");
        return STORE_ERR;
    }
    return STORE_OK;
}

void http_h_admin_users_import(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    const char *domain = http_query(req, "domain");
    if (http_admin_scope_load(req, &s, rep) != 0)
        return;
    if (!domain || !*domain) {
        http_reply_error_code(rep, 400, "invalid", "name the domain to import into: ?domain=D");
        return;
    }
    /* The domain first: another customer's answers 404 whatever the body. */
    if (http_admin_domain(req, &s, domain, &d, rep) != 0)
        return;
    if (!is_csv_type(http_header(req, "Content-Type"))) {
        http_reply_error_code(rep, 415, "not_csv", "the body must be text/csv");
        return;
    }
    struct import_job j;
    memset(&j, 0, sizeof j);
    /* An admin may make admins but not operators, nor change one. */
    int max_role = req->user.role == ROLE_OPERATOR ? ROLE_OPERATOR : ROLE_ADMIN;
    int rc = directory_import_prepare(req->st, d.name, req->body, req->body_len, max_role, &j.imp, j.r.err,
                                      sizeof j.r.err);
    if (rc != 0) {
        http_reply_directory(rep, rc, j.r.err);
        return;
    }
    audit_fill(req, &j.a, d.customer_id, "user.import");
    snprintf(j.a.target, sizeof j.a.target, "domain:%.240s", d.name);
    rc = job_outcome(http_write(req->srv, import_job, &j), &j.r);
    if (rc != 0) {
        log_err("http: user import into %s by %s failed: %s", d.name, req->user.email, j.r.err);
        http_reply_directory(rep, rc, j.r.err);
    } else {
        http_reply_json(rep, 200, directory_import_report_json(directory_import_report(j.imp)));
    }
    directory_import_free(j.imp);
}

/* ------------------------------------------------------------------ unlock */

struct unlock_job {
    char email[ADDR_MAX + 1];
    struct store_audit a;
    struct job_result r;
};

static int unlock_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct unlock_job *j = arg;
    j->r.rc = directory_user_unlock(st, j->email, j->r.err, sizeof j->r.err);
    if (j->r.rc == 0 && store_audit_add(st, &j->a) != STORE_OK)
        j->r.rc = errbuf_failc(DIR_STORE, j->r.err, sizeof j->r.err, "cannot record the unlock in the audit trail");
    return j->r.rc == 0 ? STORE_OK : STORE_ERR;
}

void http_h_admin_user_unlock(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_user u;
    struct store_domain d;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_admin_user(req, &s, req->arg[0], &u, rep) != 0)
        return;
    if (store_domain_get_by_id(req->st, u.domain_id, &d) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct unlock_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.email, sizeof j.email, "%s", u.email);
    audit_fill(req, &j.a, d.customer_id, "user.unlock");
    snprintf(j.a.target, sizeof j.a.target, "user:%.240s", u.email);
    int rc = job_outcome(http_write(req->srv, unlock_job, &j), &j.r);
    if (rc != 0)
        http_reply_directory(rep, rc, j.r.err);
    else
        http_reply_json(rep, 200, json_pack("{s:o, s:b}", "email", http_json_text(u.email), "unlocked", 1));
}

/* ------------------------------------------------------------------ domain del */

struct domain_del_job {
    char name[DOMAIN_MAX + 1];
    int force;
    struct directory_domain_del_counts counts;
    struct store_audit a;
    struct job_result r;
};

static int domain_del_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct domain_del_job *j = arg;
    j->r.rc = directory_domain_del(st, j->name, j->force, &j->counts, j->r.err, sizeof j->r.err);
    if (j->r.rc != 0)
        return STORE_ERR;
    const struct directory_domain_del_counts *k = &j->counts;
    snprintf(j->a.detail, sizeof j->a.detail,
             "%susers %u, aliases %u, mailbox messages %u, dropped queued %u, dropped waiting %u",
             j->force ? "force; " : "", k->users, k->aliases, k->mailbox, k->queued, k->waiting);
    if (store_audit_add(st, &j->a) != STORE_OK) {
        j->r.rc = errbuf_failc(DIR_STORE, j->r.err, sizeof j->r.err, "cannot record the deletion in the audit trail");
        return STORE_ERR;
    }
    return STORE_OK;
}

void http_h_admin_domain_del(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_load(req, &s, rep) != 0 || http_admin_domain(req, &s, req->arg[0], &d, rep) != 0)
        return;
    const char *force = http_query(req, "force");
    struct domain_del_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.name, sizeof j.name, "%s", d.name);
    j.force = force && (!strcmp(force, "1") || !strcmp(force, "true"));
    if (force && !j.force && strcmp(force, "0") != 0 && strcmp(force, "false") != 0) {
        http_reply_error_code(rep, 400, "invalid", "force must be 1 or 0");
        return;
    }
    audit_fill(req, &j.a, d.customer_id, "domain.delete");
    snprintf(j.a.target, sizeof j.a.target, "domain:%.240s", d.name);
    int rc = job_outcome(http_write(req->srv, domain_del_job, &j), &j.r);
    if (rc != 0) {
        http_reply_directory(rep, rc, j.r.err);
        return;
    }
    log_info("http: domain %s deleted by %s (%s)", d.name, req->user.email, j.a.detail);
    http_reply_json(rep, 200, directory_domain_del_json(d.name, &j.counts));
}

/* ------------------------------------------------------------------ customer del */

struct customer_del_job {
    char name[128];
    struct store_audit a;
    struct job_result r;
};

static int customer_del_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct customer_del_job *j = arg;
    j->r.rc = directory_customer_del(st, j->name, j->r.err, sizeof j->r.err);
    if (j->r.rc == 0 && store_audit_add(st, &j->a) != STORE_OK)
        j->r.rc = errbuf_failc(DIR_STORE, j->r.err, sizeof j->r.err, "cannot record the deletion in the audit trail");
    return j->r.rc == 0 ? STORE_OK : STORE_ERR;
}

void http_h_admin_customer_del(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_customer c;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return;
    int rc = store_customer_get(req->st, req->arg[0], &c);
    if (rc == STORE_OK && !http_admin_customer_visible(&s, c.id))
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such customer");
        return;
    }
    struct customer_del_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.name, sizeof j.name, "%s", c.name);
    audit_fill(req, &j.a, c.id, "customer.delete");
    snprintf(j.a.target, sizeof j.a.target, "customer:%.240s", c.name);
    rc = job_outcome(http_write(req->srv, customer_del_job, &j), &j.r);
    if (rc != 0) {
        http_reply_directory(rep, rc, j.r.err);
        return;
    }
    log_info("http: customer %s deleted by %s", c.name, req->user.email);
    http_reply_json(rep, 200, json_pack("{s:o, s:b}", "customer", http_json_text(c.name), "deleted", 1));
}
