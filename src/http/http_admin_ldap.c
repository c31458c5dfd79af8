/*
 * http_admin_ldap.c — the control panel's API for a domain's directory and
 * for readiness (SPEC.md "LDAP / Active Directory"; the same calls as
 * lifeboatctl ldap set|sync|status and user readiness):
 *
 *   GET  /api/v1/admin/domains/D/ldap        settings (never the bind password), last report
 *   PUT  /api/v1/admin/domains/D/ldap        {"url","bind_dn","bind_password","base","filter",
 *                                             "interval","starttls"}: absent fields keep their value
 *   POST /api/v1/admin/domains/D/ldap/sync   a sync now: its report (200 also when the directory
 *                                            failed: "ok": false, the reason in "errors")
 *   POST /api/v1/admin/domains/D/ldap/test   bind and count, with the stored settings or the
 *                                            body's (the same fields as PUT), nothing stored
 *   GET  /api/v1/admin/readiness[?domain=D]  every user of the domain (or the customer): ready or why not
 *
 * ROUTE_ADMIN in the table; the domain is looked up in the caller's scope
 * (another customer's answers 404). A sync or a test talks to the directory
 * on this HTTP thread (libmicrohttpd's pool, never the event loop), bounded
 * by the directory's timeouts; a sync's changes go through the writer.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "admin/admin.h"
#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/log.h"

/* The scope and the domain of the path: 0, or -1 with the reply set. */
static int load_domain(struct http_request *req, struct http_admin_scope *s, struct store_domain *d,
                       struct http_reply *rep)
{
    if (http_admin_scope_load(req, s, rep) != 0)
        return -1;
    return http_admin_domain(req, s, req->arg[0], d, rep);
}

void http_h_admin_ldap_get(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (load_domain(req, &s, &d, rep) != 0)
        return;
    json_t *o = admin_ldap_domain(req->st, &d);
    if (!o) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, o);
}

/* The body's fields into ch (strings point into j; interval may be a number
 * of seconds, written into ivbuf). 0, or -1 with 400 set. */
static int read_changes(json_t *j, struct directory_ldap_changes *ch, char *ivbuf, size_t ivlen,
                        struct http_reply *rep)
{
    static const char *const names[] = {"url", "bind_dn", "bind_password", "base", "filter"};
    const char **fields[] = {&ch->url, &ch->bind_dn, &ch->bind_password, &ch->base, &ch->filter};
    memset(ch, 0, sizeof *ch);
    ch->starttls = -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *v = json_object_get(j, names[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s must be a string", names[i]);
            http_reply_error_code(rep, 400, "invalid", msg);
            return -1;
        }
        *fields[i] = json_string_value(v);
    }
    json_t *iv = json_object_get(j, "interval");
    if (json_is_string(iv)) {
        ch->interval = json_string_value(iv);
    } else if (json_is_integer(iv)) {
        snprintf(ivbuf, ivlen, "%lld", (long long)json_integer_value(iv));
        ch->interval = ivbuf;
    } else if (iv && !json_is_null(iv)) {
        http_reply_error_code(rep, 400, "invalid", "interval must be a duration (\"3h\") or seconds");
        return -1;
    }
    json_t *tls = json_object_get(j, "starttls");
    if (json_is_boolean(tls)) {
        ch->starttls = json_is_true(tls);
    } else if (tls && !json_is_null(tls)) {
        http_reply_error_code(rep, 400, "invalid", "starttls must be true or false");
        return -1;
    }
    return 0;
}

struct set_job {
    const char *domain;
    const struct directory_ldap_changes *ch;
    int64_t now;
    int rc;
    char err[512];
};

static int set_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct set_job *j = arg;
    j->rc = directory_ldap_set(st, j->domain, j->ch, j->now, j->err, sizeof j->err);
    /* A refusal changed nothing (its savepoint is rolled back already). */
    return j->rc == DIR_STORE ? STORE_ERR : STORE_OK;
}

void http_h_admin_ldap_put(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (load_domain(req, &s, &d, rep) != 0)
        return;
    struct directory_ldap_changes ch;
    char ivbuf[32];
    if (read_changes(req->json, &ch, ivbuf, sizeof ivbuf, rep) != 0)
        return;
    struct set_job j = {.domain = d.name, .ch = &ch, .now = req->now};
    int rc = http_write(req->srv, set_job, &j);
    if (j.rc != 0) {
        http_reply_directory(rep, j.rc, j.err);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_directory(rep, rc == HTTP_WRITE_STOPPING ? rc : DIR_STORE, NULL);
        return;
    }
    char detail[1200];
    snprintf(detail, sizeof detail, "url=%.300s base=%.300s%s", ch.url ? ch.url : "(kept)",
             ch.base ? ch.base : "(kept)", ch.bind_password ? " bind_password=(changed)" : "");
    if (http_audit(req, d.customer_id, "ldap.set", d.name, detail) != STORE_OK)
        log_err("http: cannot audit ldap set of %s", d.name);
    log_info("http: ldap settings of %s changed by %s", d.name, req->user.email);
    json_t *o = admin_ldap_domain(req->st, &d);
    if (!o) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, o);
}

static int writer_run(void *ctx, store_job_fn job, void *arg)
{
    return http_write(ctx, job, arg);
}

void http_h_admin_ldap_sync(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (load_domain(req, &s, &d, rep) != 0)
        return;
    struct directory_writer w = {writer_run, req->srv};
    struct store_ldap_report r;
    char err[1024];
    int rc = directory_ldap_sync(req->st, &w, d.name, &r, err, sizeof err);
    if (http_audit(req, d.customer_id, "ldap.sync", d.name, rc == 0 ? "ok" : "failed") != STORE_OK)
        log_err("http: cannot audit ldap sync of %s", d.name);
    if (rc != 0 && !r.at) {
        http_reply_directory(rep, rc, err);
        return;
    }
    /* A sync that ran answers its report, also when the directory failed
     * ("ok": false, the reason in "errors"): the request was carried out,
     * and the report is what the panel shows either way. */
    json_t *report = admin_ldap_report_json(&r);
    if (!report) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, report);
}

void http_h_admin_ldap_test(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (load_domain(req, &s, &d, rep) != 0)
        return;
    /* The body (optional): settings to try before storing them. */
    json_t *body = NULL;
    if (req->body_len > 0) {
        json_error_t jerr;
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            json_decref(body);
            http_reply_error_code(rep, 400, "invalid", "the body must be a JSON object (or nothing)");
            return;
        }
    }
    struct store_ldap_settings ls;
    int rc = store_ldap_settings_get(req->st, d.id, &ls);
    if (rc == STORE_ERR) {
        json_decref(body);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    int is_new = rc == STORE_NOTFOUND;
    if (is_new)
        directory_ldap_settings_default(&ls, d.id);
    struct directory_ldap_changes ch = {.starttls = -1};
    char ivbuf[32], err[1024];
    if (body && read_changes(body, &ch, ivbuf, sizeof ivbuf, rep) != 0) {
        json_decref(body);
        sodium_memzero(&ls, sizeof ls);
        return;
    }
    if ((is_new || body) && directory_ldap_settings_apply(&ls, &ch, is_new, d.name, err, sizeof err) != 0) {
        json_decref(body);
        sodium_memzero(&ls, sizeof ls);
        http_reply_error_code(rep, is_new && !body ? 404 : 400, is_new && !body ? "not_found" : "invalid", err);
        return;
    }
    json_decref(body);
    unsigned entries = 0, users = 0;
    int status = directory_ldap_test(&ls, d.name, &entries, &users, err, sizeof err);
    sodium_memzero(&ls, sizeof ls);
    static const char *const reasons[] = {"ok", "invalid_credentials", "unreachable", "failed"};
    if (status == DIRECTORY_LDAP_OK)
        http_reply_json(rep, 200, json_pack("{s:b, s:I, s:I}", "ok", 1, "entries", (json_int_t)entries, "users",
                                            (json_int_t)users));
    else
        http_reply_json(rep, 200, json_pack("{s:b, s:s, s:o}", "ok", 0, "reason", reasons[status & 3], "error",
                                            http_json_text(err)));
}

void http_h_admin_readiness(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_domain(req, &s, &d, rep) != 0)
        return;
    int64_t domain_id = d.id;
    json_t *o = admin_readiness(req->st, domain_id, domain_id ? 0 : s.customer_id);
    if (!o) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, o);
}
