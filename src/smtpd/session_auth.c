/*
 * session_auth.c — AUTH on the submission port (RFC 4954; SPEC.md: "AUTH
 * PLAIN/LOGIN on submission only, after STARTTLS"), and the sender rule that
 * follows from it.
 *
 * The rules are the webmail login's (directory.h, "logins"), so a failure on
 * either counts for both: a writer job checks the lockout and counts the
 * attempt as a failure before any password is looked at (454 while locked),
 * so parallel AUTHs are serialised by the writer and at most the limit of
 * them reach the check; then the password is checked with argon2id — against
 * a dummy hash for unknown users, so they take as long as known ones. A right
 * password takes the count back (a second writer job) before the 235.
 * Suspended and not activated users are refused like a wrong password (535).
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
#include <event2/event.h>
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
    int found;              /* the name is a user's */
    int verified;           /* the worker's answer: found and the password matches */
    struct directory_auth auth; /* the worker's check; a directory password to cache */
    struct smtpd_login rec;
    const char *fail_reply; /* after the FAILED step: 535, or 454 when we failed, not the client */
    struct event *retry;    /* BEGIN again while attempts in flight fill the limit */
    int retry_armed;
    int64_t waited_ms;
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
        if (s->auth->retry)
            event_free(s->auth->retry);
        sasl_clear(&s->auth->sasl);
        sodium_memzero(s->auth->user.pw_hash, sizeof s->auth->user.pw_hash);
        directory_auth_clear(&s->auth->auth);
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

/* The right password's count is taken back: the client is in. */
static void succeeded_done(int rc, void *arg)
{
    struct session *s = arg;
    struct session_auth *a = s->auth;
    if (!s->srv) { /* smtpd_free let go of the session */
        session_destroy(s);
        return;
    }
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
    auth_end(s);
    auth_resume(s);
}

/* ------------------------------------------------------------------ the check */

/* On a worker thread: argon2id, and for a directory user the bind to the
 * directory (bounded by its timeouts; the loop never waits for it). Only a's
 * own fields are touched; st is the worker's own connection. */
static void check_run(struct smtpd_work_item *it, struct store *st)
{
    struct session_auth *a = (struct session_auth *)((char *)it - offsetof(struct session_auth, work));
    /* Always about one argon2id check, against the dummy hash when there is
     * nothing real, so an unknown name takes as long as a wrong password. */
    a->verified = directory_password_check_login(st, a->found ? &a->user : NULL, a->sasl.password, &a->auth);
    sodium_memzero(a->sasl.password, sizeof a->sasl.password);
}

/* A wrong password's count is settled: the client has its 535. */
static void failed_done(int rc, void *arg)
{
    struct session *s = arg;
    if (!s->srv) { /* smtpd_free let go of the session */
        session_destroy(s);
        return;
    }
    if (rc != STORE_OK) /* the pending rows count as failures once stale */
        log_err("cannot record a failed login from [%s] (%d)", s->ip, rc);
    auth_fail(s, s->auth->fail_reply ? s->auth->fail_reply : sasl_reply_invalid);
    auth_resume(s);
}

static void record_step(struct session *s, enum smtpd_login_step step, store_done_fn done)
{
    struct session_auth *a = s->auth;
    a->rec.step = step;
    a->rec.user_id = a->user.id;
    a->rec.auth = &a->auth;
    if (s->srv->backend.login_record(s->srv->backend.arg, &a->rec, done, s) != 0) {
        log_warn("cannot record the login from [%s]: shutting down", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        auth_resume(s);
    }
}

/* Back on the loop with the password's verdict. */
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
    if (!a->verified) {
        log_warn("unknown[%s]: SASL %s authentication failed: authentication failure", s->ip, mech_name(a));
        record_step(s, SMTPD_LOGIN_FAILED, failed_done);
        return;
    }
    if (a->user.suspended || !a->user.active) {
        /* The password was right, so the name is the user's own: say who. */
        log_warn("unknown[%s]: SASL %s authentication refused for %s: account %s", s->ip, mech_name(a),
                 a->user.email, a->user.suspended ? "suspended" : "not activated");
        record_step(s, SMTPD_LOGIN_FAILED, failed_done);
        return;
    }
    record_step(s, SMTPD_LOGIN_SUCCEEDED, succeeded_done);
}

static void begin(struct session *s);

static void retry_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    s->auth->retry_armed = 0;
    if (!s->srv) { /* cannot happen: session_abort frees a session on its timer */
        s->state = SS_CMD;
        session_destroy(s);
        return;
    }
    begin(s);
}

/* The lock is checked and the attempt counted: on to argon2id, unless locked. */
static void begin_done(int rc, void *arg)
{
    struct session *s = arg;
    struct session_auth *a = s->auth;
    if (!s->srv) {
        session_destroy(s);
        return;
    }
    if (rc != STORE_OK) {
        log_err("cannot read the login lockout for [%s] (%d): answering 454", s->ip, rc);
        auth_fail(s, REPLY_TEMPFAIL);
    } else if (a->rec.gate == DIRECTORY_LOGIN_BUSY && a->waited_ms < DIRECTORY_LOGIN_BUSY_WAIT_MS) {
        /* Attempts in flight fill the limit: wait for them (a user's own
         * parallel logins pass one after the other; an attacker's stop). A
         * client that left meanwhile is treated as if it were still there, so
         * leaving changes nothing in what is counted. */
        if (!a->retry)
            a->retry = evtimer_new(s->srv->base, retry_fire, s);
        struct timeval tv = {0, DIRECTORY_LOGIN_BUSY_RETRY_MS * 1000};
        if (a->retry && evtimer_add(a->retry, &tv) == 0) {
            a->retry_armed = 1;
            a->waited_ms += DIRECTORY_LOGIN_BUSY_RETRY_MS;
            return; /* still SS_AUTH */
        }
        auth_fail(s, REPLY_TEMPFAIL);
    } else if (a->rec.gate != DIRECTORY_LOGIN_GO) {
        log_warn("unknown[%s]: SASL %s authentication refused: too many failed logins", s->ip, mech_name(a));
        auth_fail(s, REPLY_LOCKED);
    } else if ((rc = s->srv->backend.login_user(s->srv->backend.arg, a->sasl.authcid, &a->user)) == STORE_ERR) {
        log_err("cannot look up a login from [%s]: answering 454", s->ip);
        a->fail_reply = REPLY_TEMPFAIL;
        record_step(s, SMTPD_LOGIN_FAILED, failed_done);
        return;
    } else {
        a->found = rc == STORE_OK;
        a->work.run = check_run;
        a->work.done = check_done;
        if (s->srv->work && smtpd_work_submit(s->srv->work, &a->work) == 0)
            return; /* still SS_AUTH: check_done goes on */
        auth_fail(s, REPLY_TEMPFAIL);
    }
    auth_resume(s);
}

/* BEGIN once more, after a wait. */
static void begin(struct session *s)
{
    struct session_auth *a = s->auth;
    if (s->srv->backend.login_record(s->srv->backend.arg, &a->rec, begin_done, s) != 0) {
        log_warn("cannot count the login from [%s]: shutting down", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        auth_resume(s);
    }
}

/* The exchange gave a name and a password: count the attempt, then check it. */
static void check_begin(struct session *s)
{
    struct session_auth *a = s->auth;
    a->now = time_now();
    a->s = s;
    a->rec = (struct smtpd_login){
        .step = SMTPD_LOGIN_BEGIN, .login = a->sasl.authcid, .ip = s->ip, .now = a->now};
    if (s->srv->backend.login_record(s->srv->backend.arg, &a->rec, begin_done, s) != 0) {
        log_warn("cannot count the login from [%s]: shutting down", s->ip);
        auth_fail(s, REPLY_TEMPFAIL);
        return;
    }
    /* Commands pipelined after AUTH wait for its answer (session_process
     * does nothing in SS_AUTH). */
    s->state = SS_AUTH;
}

int session_auth_on_timer(const struct session *s)
{
    return s->auth && s->auth->retry_armed;
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
