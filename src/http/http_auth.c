/*
 * http_auth.c — login, logout, who am I, my domain's continuity state, and
 * /healthz.
 *
 * Login answers the same 401 {"error":"invalid credentials"} for an unknown
 * address, a user without a password and a wrong password, and takes as long
 * for each: an unknown user's password is checked against a dummy argon2id
 * hash. Only a right password learns more (a suspended or not yet activated
 * account gets 403). Failures are counted per account and per client address
 * (directory lockout.c) and the lockout is checked before the password, so a locked
 * account cannot be guessed at. A successful login clears the account's count,
 * purges expired sessions and creates the session, all in one write.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/metrics.h"

#define PASSWORD_INPUT_MAX 1024 /* longer "passwords" are refused before any hashing */

/* ------------------------------------------------------------------ /healthz */

void http_h_healthz(struct http_request *req, struct http_reply *rep)
{
    /* Any read answers the question "does the store answer": a missing row is an answer. */
    struct store_domain d;
    if (store_domain_get_by_id(req->st, 0, &d) == STORE_ERR) {
        http_reply_error(rep, 503, "store unavailable");
        return;
    }
    char *ok = strdup("ok\n");
    http_reply_raw(rep, ok ? 200 : 500, "text/plain; charset=utf-8", ok, ok ? 3 : 0);
}

/* ------------------------------------------------------------------ login */

struct failure_job {
    const char *email, *ip;
    int64_t now;
};

static int failure_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct failure_job *j = arg;
    (void)bs;
    return directory_lockout_record_failure(st, &directory_lockout_default, j->email, j->ip, j->now);
}

int http_login_failure_record(struct http_request *req, const char *email)
{
    struct failure_job j = {.email = email, .ip = req->client_ip, .now = req->now};
    return http_write(req->srv, failure_job, &j);
}

struct login_job {
    struct store_session session;
    const char *email;
};

static int login_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct login_job *j = arg;
    (void)bs;
    int64_t now = j->session.created;
    int rc = store_session_purge(st, now - HTTP_SESSION_IDLE, now - HTTP_SESSION_ABSOLUTE, NULL);
    if (rc == STORE_OK)
        rc = directory_lockout_clear(st, j->email);
    if (rc == STORE_OK)
        rc = store_session_add(st, &j->session);
    return rc;
}

void http_h_login(struct http_request *req, struct http_reply *rep)
{
    const char *email = json_string_value(json_object_get(req->json, "email"));
    const char *password = json_string_value(json_object_get(req->json, "password"));
    if (!email || !password) {
        http_reply_error(rep, 400, "email and password are required");
        return;
    }
    if (strlen(email) > ADDR_MAX || strlen(password) > PASSWORD_INPUT_MAX) {
        http_reply_error(rep, 400, "email or password too long");
        return;
    }
    const struct directory_lockout_policy *policy = &directory_lockout_default;
    int locked = directory_lockout_check(req->st, policy, email, req->client_ip, req->now);
    if (locked < 0) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    if (locked) {
        metrics_inc(METRIC_HTTP_LOGIN_FAILURES);
        log_warn("http: login locked out, client=%s", req->client_ip);
        http_reply_error(rep, 429, "too many failed logins, try again later");
        rep->retry_after = (unsigned)policy->window;
        return;
    }

    struct store_user u;
    int found = directory_login_user(req->st, email, &u);
    if (found == STORE_ERR) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    int has_password = found == STORE_OK && u.pw_hash[0];
    /* Always one argon2id check, against the dummy hash when there is nothing real. */
    int ok = password_verify(has_password ? u.pw_hash : directory_dummy_hash(), password);
    if (!ok || !has_password) {
        if (http_login_failure_record(req, email) != STORE_OK)
            log_err("http: cannot record a failed login, client=%s", req->client_ip);
        metrics_inc(METRIC_HTTP_LOGIN_FAILURES);
        log_info("http: login failed, client=%s", req->client_ip); /* the address typed is no one's business */
        http_reply_error(rep, 401, "invalid credentials");
        return;
    }
    if (u.suspended || !u.active) {
        log_info("http: login refused for %s (%s), client=%s", u.email, u.suspended ? "suspended" : "not activated",
                 req->client_ip);
        http_reply_error(rep, 403, u.suspended ? "account suspended" : "account not activated");
        return;
    }

    char token[HTTP_TOKEN_HEX + 1];
    struct login_job lj = {.session = {.user_id = u.id, .created = req->now, .last_seen = req->now}};
    http_token_new(token);
    http_token_hash(token, lj.session.token_hash);
    http_token_new(lj.session.csrf);
    snprintf(lj.session.client_addr, sizeof lj.session.client_addr, "%s", req->client_ip);
    lj.email = email;
    int rc = http_write(req->srv, login_job, &lj);
    if (rc != STORE_OK) {
        sodium_memzero(token, sizeof token);
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    http_cookie_format(rep->set_cookie, sizeof rep->set_cookie, http_cookie_name(req->tls), token,
                       HTTP_SESSION_ABSOLUTE, req->tls);
    sodium_memzero(token, sizeof token);
    metrics_inc(METRIC_HTTP_LOGINS);
    log_info("http: login %s, client=%s", u.email, req->client_ip);
    http_reply_json(rep, 200,
                    json_pack("{s:s, s:o, s:i, s:i}", "csrf", lj.session.csrf, "email", http_json_text(u.email),
                              "idle_timeout", HTTP_SESSION_IDLE, "max_age", HTTP_SESSION_ABSOLUTE));
}

/* ------------------------------------------------------------------ logout */

static int logout_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    int rc = store_session_del(st, arg);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

void http_h_logout(struct http_request *req, struct http_reply *rep)
{
    int rc = http_write(req->srv, logout_job, req->session.token_hash);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    http_cookie_format(rep->set_cookie, sizeof rep->set_cookie, http_cookie_name(req->tls), "", 0, req->tls);
    log_info("http: logout %s, client=%s", req->user.email, req->client_ip);
    http_reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
}

/* ------------------------------------------------------------------ me, status */

static int add_alias(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    json_array_append_new(arg, http_json_text(alias));
    return 0;
}

void http_h_me(struct http_request *req, struct http_reply *rep)
{
    struct store_domain d;
    if (store_domain_get_by_id(req->st, req->user.domain_id, &d) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct store_customer cu;
    if (store_customer_get_by_id(req->st, d.customer_id, &cu) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    json_t *aliases = json_array();
    if (store_alias_list(req->st, req->user.id, add_alias, aliases) != STORE_OK) {
        json_decref(aliases);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200,
                    json_pack("{s:o, s:o, s:s, s:o, s:o, s:o}", "email", http_json_text(req->user.email), "name",
                              http_json_text(req->user.name), "role", directory_role_name(req->user.role), "domain",
                              http_json_text(d.name), "customer", http_json_text(cu.name), "aliases", aliases));
}

void http_h_status(struct http_request *req, struct http_reply *rep)
{
    struct store_domain d;
    if (store_domain_get_by_id(req->st, req->user.domain_id, &d) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    char since[64];
    time_iso8601((time_t)d.state_since, since, sizeof since);
    http_reply_json(rep, 200,
                    json_pack("{s:o, s:s, s:s, s:I, s:o, s:b}", "domain", http_json_text(d.name), "state",
                              directory_state_name(d.state), "since", since, "since_epoch",
                              (json_int_t)d.state_since, "cause", http_json_text(d.state_cause), "continuity",
                              d.continuity));
}
