/*
 * session_auth.c — AUTH on the submission port (RFC 4954; SPEC.md: "AUTH
 * PLAIN/LOGIN on submission only, after STARTTLS"), and the sender rule that
 * follows from it.
 *
 * The rules are the webmail login's (directory.h, "logins"), so a failure on
 * either counts for both: the lockout is checked first (454 while locked,
 * before any password is looked at), then the user the name stands for
 * (address or alias), then the password with argon2id — against a dummy hash
 * for unknown users, so they take as long as known ones. Suspended and not
 * activated users are refused like a wrong password (535). The outcome is a
 * writer job: a failure recorded, or the account's failures cleared; the
 * client has its answer only once that is written, so the next attempt is
 * counted against the right number.
 *
 * argon2id takes tens of milliseconds on purpose: it runs on a worker thread
 * (workers.c), never on the loop. While the check is out the session is in
 * SS_AUTH: commands the client pipelined after AUTH wait in the input buffer,
 * and if the client goes away the memory stays until the check comes back
 * (SESSION_WAITING), which then frees it.
 *
 * Logs follow Postfix, so tools that watch for password guessing (fail2ban's
 * postfix-sasl filter) work unchanged: "warning: unknown[192.0.2.1]: SASL
 * PLAIN authentication failed: authentication failure". Neither the password
 * nor the base64 it came in, nor the name typed for a failed login, is logged.
 */
#include "smtpd/smtpd_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <sodium.h>

#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"

#define REPLY_TEMPFAIL "454 4.7.0 Temporary authentication failure"
#define REPLY_LOCKED "454 4.7.0 Too many failed logins, try again later"
#define REPLY_SUCCESS "235 2.7.0 Authentication successful"

struct session_auth {
    struct smtpd_work_item work; /* the password check */
    struct session *s;
    struct sasl sasl;
    int64_t now;
    struct store_user user; /* the candidate, when found */
    int found;              /* a user with a password */
    int verified;           /* the worker's answer: found and the password matches */
    struct smtpd_login rec;
};

static const char *mech_name(const struct session_auth *a)
{
    return sasl_mech_name(a->sasl.mech);
}

/* The exchange is over: wipe it and go on with the client's next command
 * (or free the session, if the client has left meanwhile). */
static void auth_end(struct session *s)
{
    if (s->auth) {
        sasl_clear(&s->auth->sasl);
        sodium_memzero(s->auth->user.pw_hash, sizeof s->auth->user.pw_hash);
        free(s->auth);
        s->auth = NULL;
    }
}

static void auth_resume(struct session *s)
{
    int waited = s->state == SS_AUTH;
    s->state = SS_CMD;
    if (!waited) {
        session_set_timeouts(s); /* still inside session_process: it goes on by itself */
        return;
    }
    if (s->connection_closed) {
        session_destroy(s);
        return;
    }
    session_resume(s);
}

/* The AUTH did not succeed: counted for the disconnect line and the error limit. */
static void auth_fail(struct session *s, const char *reply)
{
    s->failed[SMTP_AUTH]++;
    session_error(s, reply);
    auth_end(s);
}

/* ------------------------------------------------------------------ the outcome */

static void record_done(int rc, void *arg)
{
    struct session *s = arg;
    struct session_auth *a = s->auth;
    if (!s->srv) { /* smtpd_free let go of the session */
        session_destroy(s);
        return;
    }
    if (a->rec.ok) {
        if (rc != STORE_OK)
            log_err("cannot clear the failed logins of %s (%d); the login goes on", a->user.email, rc);
        struct store_user *u = malloc(sizeof *u);
        if (!u) {
            log_err("out of memory for the login of [%s]", s->ip);
            s->failed[SMTP_AUTH]++;
            session_reply(s, REPLY_TEMPFAIL);
        } else {
            *u = a->user;
            sodium_memzero(u->pw_hash, sizeof u->pw_hash); /* not needed from here on */
            s->user = u;
            s->authenticated = 1;
            s->auth_mech = a->sasl.mech;
            session_reply(s, REPLY_SUCCESS);
        }
    } else {
        if (rc != STORE_OK)
            log_err("cannot record a failed login from [%s] (%d)", s->ip, rc);
        log_warn("unknown[%s]: SASL %s authentication failed: authentication failure", s->ip, mech_name(a));
        auth_fail(s, sasl_reply_invalid);
    }
    auth_end(s);
    auth_resume(s);
}

static void record(struct session *s, int ok)
{
    struct session_auth *a = s->auth;
    a->rec = (struct smtpd_login){.login = a->sasl.authcid, .ip = s->ip, .now = a->now, .ok = ok};
    if (s->srv->backend.login_record(s->srv->backend.arg, &a->rec, record_done, s) != 0) {
        log_warn("cannot record the login from [%s]: shutting down", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        auth_resume(s);
    }
}

/* ------------------------------------------------------------------ the check */

/* On a worker thread: argon2id. Only a's own fields are touched. */
static void check_run(struct smtpd_work_item *it, struct store *st)
{
    (void)st;
    struct session_auth *a = (struct session_auth *)((char *)it - offsetof(struct session_auth, work));
    /* Always one argon2id check, against the dummy hash when there is nothing
     * real, so an unknown name takes as long as a wrong password. */
    const char *hash = a->found ? a->user.pw_hash : directory_dummy_hash();
    int match = hash && password_verify(hash, a->sasl.password) == 1;
    a->verified = a->found && match;
    sodium_memzero(a->sasl.password, sizeof a->sasl.password);
}

/* Back on the loop. */
static void check_done(struct smtpd_work_item *it)
{
    struct session_auth *a = (struct session_auth *)((char *)it - offsetof(struct session_auth, work));
    struct session *s = a->s;
    if (!s->srv) {
        session_destroy(s);
        return;
    }
    if (!it->ran) {
        auth_fail(s, REPLY_TEMPFAIL);
        auth_resume(s);
        return;
    }
    if (a->verified && (a->user.suspended || !a->user.active)) {
        /* The password was right, so the name is the user's own: say who. */
        log_warn("unknown[%s]: SASL %s authentication refused for %s: account %s", s->ip, mech_name(a),
                 a->user.email, a->user.suspended ? "suspended" : "not activated");
        auth_fail(s, sasl_reply_invalid);
        auth_resume(s);
        return;
    }
    record(s, a->verified);
}

/* The exchange gave a name and a password: check them. */
static void check_begin(struct session *s)
{
    struct smtpd *srv = s->srv;
    struct session_auth *a = s->auth;
    a->now = time_now();
    int locked = srv->backend.login_locked(srv->backend.arg, a->sasl.authcid, s->ip, a->now);
    if (locked < 0) {
        log_err("cannot read the login lockout for [%s]: answering 454", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        return;
    }
    if (locked) {
        log_warn("unknown[%s]: SASL %s authentication refused: too many failed logins", s->ip, mech_name(a));
        auth_fail(s, REPLY_LOCKED);
        return;
    }
    int rc = srv->backend.login_user(srv->backend.arg, a->sasl.authcid, &a->user);
    if (rc == STORE_ERR) {
        log_err("cannot look up a login from [%s]: answering 454", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        return;
    }
    a->found = rc == STORE_OK && a->user.pw_hash[0];
    a->s = s;
    a->work.run = check_run;
    a->work.done = check_done;
    if (!srv->work || smtpd_work_submit(srv->work, &a->work) != 0) {
        auth_fail(s, REPLY_TEMPFAIL);
        return;
    }
    /* Commands pipelined after AUTH wait for its answer (session_process
     * does nothing in SS_AUTH). */
    s->state = SS_AUTH;
}

/* ------------------------------------------------------------------ the exchange */

static void exchange(struct session *s, enum sasl_status st, const char *reply)
{
    switch (st) {
    case SASL_CONTINUE:
        session_reply(s, reply);
        s->state = SS_AUTH_LINE;
        session_set_timeouts(s);
        return;
    case SASL_DONE:
        s->state = SS_CMD;
        check_begin(s);
        return;
    case SASL_FAILED:
        if (reply == sasl_reply_invalid) /* someone else's authorization identity */
            log_warn("unknown[%s]: SASL %s authentication failed: authorization identity refused", s->ip,
                     mech_name(s->auth));
        s->state = SS_CMD;
        session_set_timeouts(s);
        auth_fail(s, reply);
        return;
    }
}

int session_cmd_auth(struct session *s, const struct smtp_cmd *cmd)
{
    const char *no = NULL;
    if (!s->submission)
        no = "503 5.5.1 Error: authentication not enabled";
    else if (!s->tls)
        no = "530 5.7.0 Must issue a STARTTLS command first";
    else if (!s->helo)
        no = "503 5.5.1 Error: send HELO/EHLO first";
    else if (s->user)
        no = "503 5.5.1 Error: already authenticated";
    else if (s->txn.active)
        no = "503 5.5.1 Error: MAIL transaction in progress";
    if (no) {
        session_error(s, no);
        return -1;
    }
    s->auth = calloc(1, sizeof *s->auth);
    if (!s->auth) {
        log_err("out of memory for AUTH from [%s]", s->ip);
        session_reply(s, REPLY_TEMPFAIL);
        return -1;
    }
    /* From here on a failure is counted where it happens (auth_fail), also
     * when it comes back from the check later. */
    const char *reply = NULL;
    const char *initial = cmd->auth_initial;
    enum sasl_status st = sasl_start(&s->auth->sasl, cmd->auth_mech, initial, initial ? strlen(initial) : 0, &reply);
    if (st == SASL_FAILED) /* sasl_start wiped it; the log line wants it */
        s->auth->sasl.mech = sasl_mech_parse(cmd->auth_mech);
    exchange(s, st, reply);
    return 0;
}

void session_auth_line(struct session *s, const char *line, size_t len)
{
    const char *reply = NULL;
    enum sasl_mech mech = s->auth->sasl.mech;
    enum sasl_status st = sasl_step(&s->auth->sasl, line, len, &reply);
    if (st == SASL_FAILED)
        s->auth->sasl.mech = mech; /* for the log line */
    exchange(s, st, reply);
}

void session_auth_abandon(struct session *s)
{
    if (s->state == SS_AUTH_LINE)
        s->state = SS_CMD;
    auth_end(s);
}

/* ------------------------------------------------------------------ MAIL FROM */

int session_auth_check_sender(struct session *s, const char *path)
{
    char canon[ADDR_MAX + 1];
    int own = 0;
    /* The null sender is nobody's address: a user's mail always has one. */
    if (path[0] && addr_canonical(path, canon, sizeof canon) == 0)
        own = s->srv->backend.owns_address(s->srv->backend.arg, s->srv->deps.store, s->user, canon);
    if (own == STORE_ERR) {
        log_err("cannot check the sender <%s> of %s from [%s]: answering 451", path, s->user->email, s->ip);
        session_reply(s, "451 4.3.0 Error: temporary directory failure, try again later");
        return -1;
    }
    if (own != 1) {
        char reply[512];
        snprintf(reply, sizeof reply, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s", path,
                 s->user->email);
        log_info("NOQUEUE: reject: MAIL from [%s]: %s; from=<%s> proto=ESMTPSA helo=<%s> sasl_username=%s", s->ip,
                 reply, path, s->helo_name, s->user->email);
        session_error(s, reply);
        return -1;
    }
    return 0;
}
