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
 * Reset: whoever knows an address asks for a reset; the answer is always the
 * same 202, so it tells nobody whether the address exists. If it belongs to an
 * active, not suspended user with an alternate address, a mail with a one-time
 * link goes there: a random 256-bit token, valid for an hour, of which the
 * store keeps only the SHA-256; asking again voids the older token. The link
 * is built from the configuration (web_url, or hostname and http_listen),
 * never from the request's Host header, which the requester controls. Requests
 * are limited per client address and reset mails per account, in the store
 * (so a restart resets nothing); past a limit the answer is still 202 and
 * nothing is sent. Every request costs one writer job whatever the address;
 * only a real reset also composes and queues its mail, a few milliseconds more.
 * Confirming the token with a new password (policy checked, the token stays
 * usable if it is refused) sets it, uses the token, ends every session of the
 * user and clears the account's failed logins.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "mail/compose.h"
#include "queue/queue.h"
#include "util/addr.h"
#include "util/log.h"

#define RESET_TOKEN_LIFETIME 3600 /* seconds a reset link works */
#define RESET_WINDOW 3600         /* the rate limits count within this */
#define RESET_MAILS_PER_ACCOUNT 3
#define RESET_REQUESTS_PER_ADDR 20

/* What the store keeps of a reset token: its SHA-256 in hex. */
static void reset_token_hash(const char *token, char out[PASSWORD_RESET_HASH_SIZE])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, PASSWORD_RESET_HASH_SIZE, h, sizeof h);
}

/* Forgets the failed logins of the user's address and of each alias (the
 * lockout counts the address as it was typed). */
struct alias_clear {
    struct store *st;
    int rc;
};

static int clear_alias_failures(const char *alias, const char *user_email, void *arg)
{
    struct alias_clear *c = arg;
    (void)user_email;
    c->rc = directory_lockout_clear(c->st, alias);
    return c->rc != STORE_OK; /* stop at the first error */
}

/* ------------------------------------------------------------------ change */

struct change_job {
    int64_t user_id;
    const char *email;
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
        rc = directory_lockout_clear(st, j->email);
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
    const struct directory_lockout_policy *lock = &directory_lockout_default;
    int locked = directory_lockout_check(req->st, lock, u->email, req->client_ip, req->now);
    if (locked < 0) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    if (locked) {
        log_warn("http: password change for %s locked out, client=%s", u->email, req->client_ip);
        http_reply_error(rep, 429, "too many failed logins, try again later");
        rep->retry_after = (unsigned)lock->window;
        return;
    }
    /* One argon2id check whatever the account holds, as at login. */
    int has_password = u->pw_hash[0] != 0;
    int ok = password_verify(has_password ? u->pw_hash : directory_dummy_hash(), old) && has_password;
    if (!ok) {
        if (http_login_failure_record(req, u->email) != STORE_OK)
            log_err("http: cannot record a failed password check for %s, client=%s", u->email, req->client_ip);
        log_info("http: password change for %s refused: wrong current password, client=%s", u->email,
                 req->client_ip);
        http_reply_error(rep, 403, "current password is wrong");
        return;
    }
    char why[PASSWORD_POLICY_MSG_MAX];
    int pol = directory_password_check(req->st, u->domain_id, new, why, sizeof why);
    if (pol != 0) {
        http_reply_error(rep, pol < 0 ? 500 : 400, pol < 0 ? "internal error" : why);
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    if (password_hash(new, hash) != 0) {
        log_err("http: cannot hash the new password of %s (out of memory?)", u->email);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct change_job cj = {.user_id = u->id,
                            .email = u->email,
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

/* ------------------------------------------------------------------ reset request */

/* The webmail's address for links in mail: web_url, or one made from the
 * hostname and the first http_listen port ("https" when a certificate is
 * set). Never anything from the request. */
static void reset_base_url(const struct config *cfg, char *out, size_t outlen)
{
    if (cfg->web_url[0]) {
        snprintf(out, outlen, "%s", cfg->web_url);
        return;
    }
    int tls = cfg->tls_cert_file[0] != 0;
    const char *port = cfg->http_listen.count ? cfg->http_listen.addr[0].port : "";
    int default_port = !*port || strcmp(port, tls ? "443" : "80") == 0;
    snprintf(out, outlen, "%s://%s%s%s/", tls ? "https" : "http", cfg->hostname, default_port ? "" : ":",
             default_port ? "" : port);
}

/* Builds the reset mail for u (to u->alt_email) carrying token. 0 or -1. */
static int reset_mail(const struct config *cfg, const struct store_user *u, const char *token,
                      struct compose_result *out)
{
    char base[600], from[ADDR_MAX + 1], subject[ADDR_MAX + 64];
    reset_base_url(cfg, base, sizeof base);
    snprintf(from, sizeof from, "postmaster@%s", cfg->hostname);
    snprintf(subject, sizeof subject, "Password reset for %s", u->email);
    char text[2048]; /* the longest address, URL and host name fit */
    snprintf(text, sizeof text,
             "Someone, hopefully you, asked to reset the password of the webmail account\n"
             "%s.\n"
             "\n"
             "To choose a new password, open this link within an hour:\n"
             "\n"
             "%s#reset=%s\n"
             "\n"
             "The link works once. If you did not ask for this, ignore this message:\n"
             "your password stays as it is.\n"
             "\n"
             "-- \n"
             "lifeboat on %s\n",
             u->email, base, token, cfg->hostname);
    const char *to[1] = {u->alt_email};
    struct compose_msg m = {
        .from_addr = from,
        .from_name = "lifeboat",
        .to = to,
        .nto = 1,
        .subject = subject,
        .text = text,
        .message_id_domain = cfg->hostname,
    };
    const char *error = NULL;
    int rc = compose_build(&m, out, &error);
    sodium_memzero(text, sizeof text); /* it carries the token */
    if (rc != 0)
        log_err("http: cannot build the password reset mail for %s: %s", u->email, error ? error : "?");
    return rc;
}

enum reset_outcome { RESET_NO_MAIL = 0, RESET_QUEUED, RESET_LIMIT_ADDR, RESET_LIMIT_ACCOUNT };

struct reset_request_job {
    const char *client_ip;
    int64_t now;
    /* A mail to send, or msg NULL: only the request is counted. */
    struct store_password_reset token;
    struct queue_message *msg;
    int outcome; /* out: enum reset_outcome */
};

static int reset_request_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct reset_request_job *j = arg;
    unsigned n = 0;
    int64_t since = j->now - RESET_WINDOW;
    int rc = store_password_reset_request_purge(st, since);
    if (rc == STORE_OK)
        rc = store_password_reset_purge(st, j->now);
    if (rc == STORE_OK)
        rc = store_password_reset_request_count(st, j->client_ip, since, &n);
    if (rc != STORE_OK)
        return rc;
    /* Past the limit nothing more is recorded: a flood cannot grow the table. */
    if (n >= RESET_REQUESTS_PER_ADDR) {
        j->outcome = RESET_LIMIT_ADDR;
        return STORE_OK;
    }
    rc = store_password_reset_request_add(st, j->client_ip, j->now);
    if (rc != STORE_OK || !j->msg)
        return rc;
    if ((rc = store_password_reset_count(st, j->token.user_id, since, &n)) != STORE_OK)
        return rc;
    if (n >= RESET_MAILS_PER_ACCOUNT) {
        j->outcome = RESET_LIMIT_ACCOUNT;
        return STORE_OK;
    }
    rc = store_password_reset_void_user(st, j->token.user_id, j->now);
    if (rc == STORE_OK)
        rc = store_password_reset_add(st, &j->token);
    if (rc == STORE_OK)
        rc = queue_submit_run(st, bs, j->msg);
    if (rc == STORE_OK)
        j->outcome = RESET_QUEUED;
    return rc;
}

void http_h_password_reset_request(struct http_request *req, struct http_reply *rep)
{
    const char *email = json_string_value(json_object_get(req->json, "email"));
    if (!email) {
        http_reply_error(rep, 400, "email is required");
        return;
    }
    const struct config *cfg = http_config(req->srv);
    struct store_user u = {0};
    int found = strlen(email) <= ADDR_MAX ? directory_login_user(req->st, email, &u) : STORE_NOTFOUND;
    if (found == STORE_ERR)
        log_err("http: password reset request: cannot look the address up, client=%s", req->client_ip);
    int eligible = found == STORE_OK && u.active && !u.suspended && u.alt_email[0];

    struct reset_request_job j = {.client_ip = req->client_ip, .now = req->now};
    struct queue_message msg = {0};
    struct compose_result mail = {0};
    char token[HTTP_TOKEN_HEX + 1];
    if (eligible) {
        http_token_new(token);
        reset_token_hash(token, j.token.token_hash);
        j.token.user_id = u.id;
        j.token.created = req->now;
        j.token.expires = req->now + RESET_TOKEN_LIFETIME;
        int built = reset_mail(cfg, &u, token, &mail);
        sodium_memzero(token, sizeof token);
        if (built == 0) {
            queueid_new(msg.id);
            msg.sender = ""; /* like other mail of the system: a bounce of it would only loop */
            msg.rcpts = (const char *const *)mail.rcpts;
            msg.nrcpt = mail.nrcpts;
            msg.prefix = "Auto-Submitted: auto-generated\r\n";
            msg.body = mail.data;
            msg.body_len = mail.len;
            msg.client_addr = req->client_ip;
            msg.helo = "";
            msg.direction = DIR_OUTBOUND;
            j.msg = &msg;
        }
    }
    int rc = j.msg ? http_write_queued(req->srv, reset_request_job, &j, msg.id)
                   : http_write(req->srv, reset_request_job, &j);
    if (mail.data)
        sodium_memzero(mail.data, mail.len); /* it carries the token */
    compose_result_free(&mail);
    if (rc == HTTP_WRITE_STOPPING) {
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    /* Whatever happened below, the requester learns nothing from the answer. */
    if (rc != STORE_OK)
        log_err("http: password reset request: store error %d, client=%s", rc, req->client_ip);
    else if (j.outcome == RESET_LIMIT_ADDR)
        log_warn("http: password reset request refused: more than %d from this client in an hour, client=%s",
                 RESET_REQUESTS_PER_ADDR, req->client_ip);
    else if (j.outcome == RESET_LIMIT_ACCOUNT)
        log_warn("http: password reset for %s not sent: %d reset mails in the last hour already, client=%s",
                 u.email, RESET_MAILS_PER_ACCOUNT, req->client_ip);
    else if (j.outcome == RESET_QUEUED) {
        log_info("%s: from=<>, size=%zu, nrcpt=1 (password reset mail for %s)", msg.id, msg.body_len, u.email);
        log_info("http: password reset requested for %s, mail %s queued to its alternate address, client=%s",
                 u.email, msg.id, req->client_ip);
    } else
        log_info("http: password reset request for no active user with an alternate address, client=%s",
                 req->client_ip);
    http_reply_json(rep, 202, json_pack("{s:b}", "ok", 1));
}

/* ------------------------------------------------------------------ reset confirm */

struct confirm_job {
    const char *token_hash;
    int64_t user_id;
    const char *email;
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
        rc = directory_lockout_clear(st, j->email);
    if (rc == STORE_OK) {
        struct alias_clear c = {st, STORE_OK};
        rc = store_alias_list(st, j->user_id, clear_alias_failures, &c);
        if (rc == STORE_OK)
            rc = c.rc;
    }
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
        http_reply_error(rep, 400, invalid);
        return;
    }
    char token_hash[PASSWORD_RESET_HASH_SIZE];
    reset_token_hash(token, token_hash);
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
        http_reply_error(rep, 400, invalid);
        return;
    }
    if (!u.active || u.suspended) {
        log_info("http: password reset for %s refused: account %s, client=%s", u.email,
                 u.suspended ? "suspended" : "not activated", req->client_ip);
        http_reply_error(rep, 400, invalid);
        return;
    }
    char why[PASSWORD_POLICY_MSG_MAX];
    int pol = directory_password_check(req->st, u.domain_id, new, why, sizeof why);
    if (pol != 0) {
        http_reply_error(rep, pol < 0 ? 500 : 400, pol < 0 ? "internal error" : why);
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    if (password_hash(new, hash) != 0) {
        log_err("http: cannot hash the new password of %s (out of memory?)", u.email);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct confirm_job cj = {
        .token_hash = token_hash, .user_id = u.id, .email = u.email, .pw_hash = hash, .now = req->now};
    rc = http_write(req->srv, confirm_job, &cj);
    sodium_memzero(hash, sizeof hash);
    if (rc == STORE_NOTFOUND) { /* used or expired meanwhile */
        http_reply_error(rep, 400, invalid);
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
