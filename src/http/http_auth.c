/*
 * http_auth.c — login, logout, who am I, my domain's continuity state, and
 * /healthz.
 *
 * Login answers the same 401 {"error":"invalid credentials"} for an unknown
 * address, a user without a password and a wrong password, and takes as long
 * for each: an unknown user's password is checked against a dummy argon2id
 * hash. Only a right password learns more (a suspended or not yet activated
 * account gets 403). Failures are counted per account and per client address
 * (directory lockout.c): the lockout is checked, and the attempt counted, in
 * one write before the password is, so a locked account cannot be guessed at
 * and parallel attempts cannot all be checked. A successful login takes the
 * count back, purges expired sessions and creates the session, in one write.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

struct attempt_job {
    const char *login, *ip;
    int64_t now;
    int gate;
    struct directory_login_attempt *attempt;
};

static int attempt_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct attempt_job *j = arg;
    (void)bs;
    int r = directory_login_attempt_begin(st, &directory_lockout_default, j->login, j->ip, j->now, j->attempt);
    if (r < 0)
        return STORE_ERR;
    j->gate = r;
    return STORE_OK;
}

int http_login_attempt_begin(struct http_request *req, const char *login, struct directory_login_attempt *attempt,
                             struct http_reply *rep)
{
    struct attempt_job j = {.login = login, .ip = req->client_ip, .now = req->now, .attempt = attempt};
    /* While attempts in flight fill the limit, wait for them (the user's own
     * parallel logins go through one after the other; an attacker's stop at
     * the limit). This thread would be busy with argon2id otherwise. */
    for (int waited = 0;; waited += DIRECTORY_LOGIN_BUSY_RETRY_MS) {
        int rc = http_write(req->srv, attempt_job, &j);
        if (rc != STORE_OK) {
            log_err("http: cannot count a login attempt (%d), client=%s", rc, req->client_ip);
            http_reply_store_error(rep, rc, NULL);
            return -1;
        }
        if (j.gate != DIRECTORY_LOGIN_BUSY || waited >= DIRECTORY_LOGIN_BUSY_WAIT_MS)
            break;
        usleep(DIRECTORY_LOGIN_BUSY_RETRY_MS * 1000);
    }
    if (j.gate != DIRECTORY_LOGIN_GO) {
        metrics_inc(METRIC_HTTP_LOGIN_FAILURES);
        log_warn("http: login %s, client=%s",
                 j.gate == DIRECTORY_LOGIN_LOCKED ? "locked out" : "refused: too many attempts in flight",
                 req->client_ip);
        http_reply_error_code(rep, 429, "locked_out", "too many failed logins, try again later");
        rep->retry_after = j.gate == DIRECTORY_LOGIN_LOCKED ? (unsigned)directory_lockout_default.window : 5;
        return 1;
    }
    return 0;
}

static int failed_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    return directory_login_attempt_failed(st, arg);
}

struct succeeded_job {
    int64_t user_id;
    const struct directory_login_attempt *attempt;
};

static int succeeded_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct succeeded_job *j = arg;
    (void)bs;
    return directory_login_attempt_succeeded(st, j->user_id, j->attempt);
}

int http_login_attempt_succeeded(struct http_request *req, int64_t user_id,
                                 const struct directory_login_attempt *attempt)
{
    struct succeeded_job j = {user_id, attempt};
    return http_write(req->srv, succeeded_job, &j);
}

void http_login_attempt_failed(struct http_request *req, const struct directory_login_attempt *attempt)
{
    int rc = http_write(req->srv, failed_job, (void *)attempt);
    if (rc != STORE_OK) /* the pending rows count as failures once stale */
        log_err("http: cannot record a failed login (%d), client=%s", rc, req->client_ip);
}

struct login_job {
    struct store_session session;
    const struct directory_login_attempt *attempt;
    const struct directory_auth *auth; /* a directory password to cache */
};

static int login_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct login_job *j = arg;
    (void)bs;
    int64_t now = j->session.created;
    int rc = store_session_purge(st, now - HTTP_SESSION_IDLE, now - HTTP_SESSION_ABSOLUTE, NULL);
    if (rc == STORE_OK)
        rc = directory_login_succeeded(st, j->session.user_id, j->attempt, j->auth, now);
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
    /* Counted as a failure before the password is looked at; a right one takes it back. */
    struct directory_login_attempt attempt;
    if (http_login_attempt_begin(req, email, &attempt, rep) != 0)
        return;

    struct store_user u;
    int found = directory_login_user(req->st, email, &u);
    if (found == STORE_ERR) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    /* Always about one argon2id check (against the dummy hash when there is
     * nothing real); a directory user binds to the directory first, and its
     * cached hash decides only while the directory cannot be reached. This
     * HTTP thread may wait for the directory (its timeouts bound it). */
    struct directory_auth auth;
    int ok = directory_password_check_login(req->st, found == STORE_OK ? &u : NULL, password, &auth);
    if (!ok) {
        directory_auth_clear(&auth);
        http_login_attempt_failed(req, &attempt);
        metrics_inc(METRIC_HTTP_LOGIN_FAILURES);
        log_info("http: login failed, client=%s", req->client_ip); /* the address typed is no one's business */
        http_reply_error_code(rep, 401, "invalid_credentials", "invalid credentials");
        return;
    }
    if (u.suspended || !u.active) {
        directory_auth_clear(&auth);
        http_login_attempt_failed(req, &attempt); /* a refused login, counted like one */
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
    lj.attempt = &attempt;
    lj.auth = &auth;
    int rc = http_write(req->srv, login_job, &lj);
    directory_auth_clear(&auth);
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
