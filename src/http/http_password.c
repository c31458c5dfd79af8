/*
 * http_password.c — changing and resetting a webmail password (SPEC.md
 * "HTTP API": POST /api/v1/password, /api/v1/password-reset/request and
 * /api/v1/password-reset/confirm).
 *
 * Change: a logged-in user gives the current password and a new one. A wrong
 * current password counts as a failed login (directory lockout.c), so a
 * stolen session cannot be used to guess the password; the new one must pass
 * the customer's policy (directory password_policy.c). On success every other
 * session of the user ends; the one that asked stays.
 *
 * Reset: the request is http_reset.c's (a mail with a one-time link to the
 * alternate address). Confirming the token with a new password (policy
 * checked, the token stays usable if it is refused) sets it, uses the token,
 * ends every session of the user and clears the account's failed logins.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/log.h"


/* What the store keeps of a reset token: its SHA-256 in hex. */
void http_reset_token_hash(const char *token, char out[PASSWORD_RESET_HASH_SIZE])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, PASSWORD_RESET_HASH_SIZE, h, sizeof h);
}

/* ------------------------------------------------------------------ change */

struct change_job {
    int64_t user_id;
    const char *pw_hash;
    const char *keep_session;
    int64_t now;
};

static int change_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct change_job *j = arg;
    (void)bs;
    int rc = store_user_set_password(st, j->user_id, j->pw_hash, j->keep_session);
    /* A reset link asked for earlier must not undo this change. */
    if (rc == STORE_OK)
        rc = store_password_reset_void_user(st, j->user_id, j->now);
    if (rc == STORE_OK)
        rc = directory_lockout_clear_user(st, j->user_id);
    return rc;
}

void http_h_password(struct http_request *req, struct http_reply *rep)
{
    const char *old = json_string_value(json_object_get(req->json, "old"));
    const char *new = json_string_value(json_object_get(req->json, "new"));
    if (!old || !new) {
        http_reply_error(rep, 400, "old and new are required");
        return;
    }
    if (strlen(old) > PASSWORD_BYTES_MAX) {
        http_reply_error(rep, 400, "the current password is too long");
        return;
    }
    const struct store_user *u = &req->user;
    /* A directory user's password is the directory's: a hash set here would
     * never be asked for (login binds to the directory). */
    int is_ldap = directory_user_is_ldap(req->st, u->id);
    if (is_ldap != 0) {
        if (is_ldap < 0)
            http_reply_error(rep, 500, "internal error");
        else
            http_reply_error_code(rep, 409, "directory_password",
                                  "your password is kept in your organisation's directory: change it there");
        return;
    }
    struct directory_login_attempt attempt;
    if (http_login_attempt_begin(req, u->email, &attempt, rep) != 0)
        return;
    /* One argon2id check whatever the account holds, as at login. */
    int has_password = u->pw_hash[0] != 0;
    int ok = password_verify(has_password ? u->pw_hash : directory_dummy_hash(), old) && has_password;
    if (!ok) {
        http_login_attempt_failed(req, &attempt);
        log_info("http: password change for %s refused: wrong current password, client=%s", u->email,
                 req->client_ip);
        http_reply_error_code(rep, 403, "wrong_password", "current password is wrong");
        return;
    }
    /* The right password: its count goes back now, whatever becomes of the new one. */
    if (http_login_attempt_succeeded(req, u->id, &attempt) != STORE_OK)
        log_err("http: cannot clear the failed logins of %s, client=%s", u->email, req->client_ip);
    char why[PASSWORD_POLICY_MSG_MAX];
    int pol = directory_password_check(req->st, u->domain_id, new, why, sizeof why);
    if (pol != 0) {
        if (pol < 0)
            http_reply_error(rep, 500, "internal error");
        else
            http_reply_error_code(rep, 400, "password_policy", why);
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    if (password_hash(new, hash) != 0) {
        log_err("http: cannot hash the new password of %s (out of memory?)", u->email);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct change_job cj = {.user_id = u->id,
                            .pw_hash = hash,
                            .keep_session = req->session.token_hash,
                            .now = req->now};
    int rc = http_write(req->srv, change_job, &cj);
    sodium_memzero(hash, sizeof hash);
    if (rc != STORE_OK) {
        log_err("http: cannot store the new password of %s (%d), client=%s", u->email, rc, req->client_ip);
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    log_info("http: password changed for %s, client=%s", u->email, req->client_ip);
    http_reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
}

/* ------------------------------------------------------------------ reset confirm */

struct confirm_job {
    const char *token_hash;
    int64_t user_id;
    const char *pw_hash;
    int64_t now;
};

static int confirm_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct confirm_job *j = arg;
    (void)bs;
    /* Used here, on the writer: two confirmations of one token cannot both pass. */
    int rc = store_password_reset_use(st, j->token_hash, j->now);
    if (rc == STORE_OK)
        rc = store_user_set_password(st, j->user_id, j->pw_hash, NULL);
    if (rc == STORE_OK)
        rc = store_password_reset_void_user(st, j->user_id, j->now);
    if (rc == STORE_OK)
        rc = directory_lockout_clear_user(st, j->user_id);
    return rc;
}

void http_h_password_reset_confirm(struct http_request *req, struct http_reply *rep)
{
    static const char invalid[] = "invalid or expired reset token";
    const char *token = json_string_value(json_object_get(req->json, "token"));
    const char *new = json_string_value(json_object_get(req->json, "new"));
    if (!token || !new) {
        http_reply_error(rep, 400, "token and new are required");
        return;
    }
    if (!http_token_valid(token)) {
        http_reply_error_code(rep, 400, "invalid_token", invalid);
        return;
    }
    char token_hash[PASSWORD_RESET_HASH_SIZE];
    http_reset_token_hash(token, token_hash);
    struct store_password_reset r;
    struct store_user u;
    int rc = store_password_reset_get(req->st, token_hash, &r);
    if (rc == STORE_OK)
        rc = store_user_get_by_id(req->st, r.user_id, &u);
    if (rc == STORE_ERR) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    if (rc != STORE_OK || r.used || r.expires <= req->now) {
        log_info("http: password reset refused: %s token, client=%s",
                 rc != STORE_OK ? "unknown" : r.used ? "used" : "expired", req->client_ip);
        http_reply_error_code(rep, 400, "invalid_token", invalid);
        return;
    }
    if (!u.active || u.suspended) {
        log_info("http: password reset for %s refused: account %s, client=%s", u.email,
                 u.suspended ? "suspended" : "not activated", req->client_ip);
        http_reply_error_code(rep, 400, "invalid_token", invalid);
        return;
    }
    char why[PASSWORD_POLICY_MSG_MAX];
    int pol = directory_password_check(req->st, u.domain_id, new, why, sizeof why);
    if (pol != 0) {
        if (pol < 0)
            http_reply_error(rep, 500, "internal error");
        else
            http_reply_error_code(rep, 400, "password_policy", why);
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    if (password_hash(new, hash) != 0) {
        log_err("http: cannot hash the new password of %s (out of memory?)", u.email);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct confirm_job cj = {
        .token_hash = token_hash, .user_id = u.id, .pw_hash = hash, .now = req->now};
    rc = http_write(req->srv, confirm_job, &cj);
    sodium_memzero(hash, sizeof hash);
    if (rc == STORE_NOTFOUND) { /* used or expired meanwhile */
        http_reply_error_code(rep, 400, "invalid_token", invalid);
        return;
    }
    if (rc != STORE_OK) {
        log_err("http: cannot store the reset password of %s (%d), client=%s", u.email, rc, req->client_ip);
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    log_info("http: password reset for %s, client=%s", u.email, req->client_ip);
    http_reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
}
