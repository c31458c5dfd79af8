/*
 * outcome.c — what one delivery attempt means for each of its recipients.
 *
 *   accepted (2xx)              -> sent
 *   refused (5xx), or no such domain, null MX, too big, ...
 *                               -> bounced, and a DSN to the sender
 *   temporary (4xx, unreachable, lost connection, DNS trouble)
 *                               -> deferred: attempts+1, next try after
 *                                  queue_next_attempt(); bounced instead once
 *                                  the message is older than queue_lifetime
 *
 * Each recipient's line goes to the log; all transitions of one attempt go to
 * the store in one writer job, which also releases the message when nothing is
 * left to do. A DSN is queued (queue_submit) before the bounced recipients are
 * marked: a crash in between sends a second DSN rather than none. There is
 * never a DSN to the null sender or about a DSN (RFC 5321 6.1 and 4.5.5).
 */
#include "deliver/deliver_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"
#include "util/log.h"
#include "util/queueid.h"
#include "util/timeutil.h"
#include "util/metrics.h"

struct fates {
    struct job *job;
    int64_t now;
    struct dsn_failure *failures; /* bounced recipients, for the DSN */
    size_t nfail;
    char (*why)[SMTPC_TEXT_MAX];  /* per recipient: the reason as logged */
};

/* Seconds the way Postfix prints them: "0", "0.12", "1.5", "42". */
static void fmt_secs(int64_t ms, char *out, size_t n)
{
    double v = ms > 0 ? (double)ms / 1000.0 : 0.0;
    if (v < 0.01)
        snprintf(out, n, "0");
    else if (v < 10)
        snprintf(out, n, "%.2g", v);
    else
        snprintf(out, n, "%.0f", v);
}

/* Formats a reason into its fixed field; a very long server reply is cut. */
static void reason_printf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reason_printf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* The reason as the log, the store and the DSN's human part show it. */
static void describe(const struct job *job, const struct smtpc_outcome *o, char *out, size_t n)
{
    if (o->from_server && o->result != SMTPC_OK)
        reason_printf(out, n, "host %s[%s] said: %s (in reply to %s command)", job->peer.host, job->peer.addr,
                      o->text, smtpc_step_name(o->step));
    else
        reason_printf(out, n, "%s", o->text[0] ? o->text : "no reason given");
}

static void log_rcpt(const struct fates *f, size_t i, const char *status, const char *dsn, const char *text)
{
    const struct job *job = f->job;
    char relay[DOMAIN_MAX + 80] = "none";
    if (job->peer.addr[0])
        snprintf(relay, sizeof relay, "%s[%s]:%s", job->peer.host, job->peer.addr, job->peer.port);

    /* delays=a/b/c/d: in the queue before this attempt / waiting for a session /
     * connection set-up (DNS, greeting, EHLO, TLS) / the transaction itself. */
    int64_t done = job->t_done ? job->t_done : time_mono_ms();
    int64_t a = (job->t_created_wall - job->msg.received) * 1000, b, c, d;
    if (job->t_txn_start) {
        c = job->conn_ms;
        d = done - job->t_txn_start;
        b = job->t_txn_start - job->t_created - c;
    } else { /* it never got as far as a transaction: all of it was trying to connect */
        b = 0;
        c = done - job->t_created;
        d = 0;
    }
    if (b < 0)
        b = 0;
    char total[16], sa[16], sb[16], sc[16], sd[16];
    fmt_secs(a + b + c + d, total, sizeof total);
    fmt_secs(a, sa, sizeof sa);
    fmt_secs(b, sb, sizeof sb);
    fmt_secs(c, sc, sizeof sc);
    fmt_secs(d, sd, sizeof sd);
    log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)", job->msg.id,
             job->rcpts[i].addr, relay, total, sa, sb, sc, sd, dsn, status, text);
}

static void record(struct job *job, size_t i, int state, unsigned attempts, int64_t next, const char *reply)
{
    struct rcpt_update *u = &job->updates[job->nupdates++];
    u->id = job->rcpts[i].id;
    u->state = state;
    u->attempts = attempts;
    u->next_attempt = next;
    snprintf(u->reply, sizeof u->reply, "%s", reply);
    if (state != RCPT_QUEUED)
        job->any_final = 1;
}

static void sent(struct fates *f, size_t i)
{
    struct job *job = f->job;
    const struct smtpc_outcome *o = &job->out[i];
    record(job, i, RCPT_SENT, job->rcpts[i].attempts + 1, f->now, o->text);
    metrics_inc(METRIC_DELIVERY_SENT);
    log_rcpt(f, i, "sent", o->dsn, o->text);
}

static void bounce(struct fates *f, size_t i, const char *text)
{
    struct job *job = f->job;
    const struct smtpc_outcome *o = &job->out[i];
    record(job, i, RCPT_BOUNCED, job->rcpts[i].attempts + 1, f->now, text);
    metrics_inc(METRIC_DELIVERY_BOUNCED);
    log_rcpt(f, i, "bounced", o->dsn, text);
    struct dsn_failure *df = &f->failures[f->nfail++];
    df->rcpt = job->rcpts[i].addr;
    df->status = o->dsn;
    df->remote_mta = o->from_server ? job->peer.host : NULL;
    df->smtp_reply = o->from_server ? o->text : NULL;
    df->text = text;
    df->last_attempt = f->now;
}

/* A temporary failure: try again later, unless the message has been with us
 * for queue_lifetime already. */
static void defer_or_expire(struct fates *f, size_t i)
{
    struct job *job = f->job;
    const struct config *cfg = job->d->cfg;
    if (queue_expired(cfg, job->msg.received, f->now)) {
        char *why = f->why[i];
        size_t len = strlen(why);
        snprintf(why + len, SMTPC_TEXT_MAX - len, "%s",
                 len + 40 < SMTPC_TEXT_MAX ? " (delivery period expired)" : "");
        bounce(f, i, why);
        return;
    }
    unsigned attempts = job->rcpts[i].attempts + 1;
    record(job, i, RCPT_QUEUED, attempts, queue_next_attempt(cfg, attempts, f->now), f->why[i]);
    metrics_inc(METRIC_DELIVERY_DEFERRED);
    log_rcpt(f, i, "deferred", job->out[i].dsn, f->why[i]);
}

/* Diverted into a continuity mailbox. The deferral is recorded alongside in
 * case the divert fails on the writer (the user was deleted meanwhile, ...). */
static void divert(struct fates *f, size_t i, const struct delivery_route_rcpt *r)
{
    struct job *job = f->job;
    const struct config *cfg = job->d->cfg;
    unsigned attempts = job->rcpts[i].attempts + 1;
    record(job, i, RCPT_QUEUED, attempts, queue_next_attempt(cfg, attempts, f->now), f->why[i]);
    struct rcpt_update *u = &job->updates[job->nupdates - 1];
    u->divert = job->d->hooks.divert;
    u->user_id = r->user_id;

    char status[ADDR_MAX + 64];
    snprintf(status, sizeof status, "diverted to mailbox of %s", r->user);
    int64_t wall_ms = (f->now - job->msg.received) * 1000;
    char total[16];
    fmt_secs(wall_ms > 0 ? wall_ms : 0, total, sizeof total);
    metrics_inc(METRIC_CONTINUITY_DIVERTED);
    log_info("%s: to=<%s>, relay=continuity, delay=%s, status=continuity (%s)", job->msg.id, job->rcpts[i].addr,
             total, status);
}

/*
 * A temporary failure delivering to a hosted domain's own server (its route):
 * the recipients in temp[] could not be delivered now. server_level says that
 * the server as a whole refused or could not be reached (connect refused or
 * timed out, 421, 4xx at greeting/EHLO/MAIL/DATA, a 4xx for every RCPT, lost
 * connection), or that the route is held by a continuity outage; otherwise
 * only these recipients were refused.
 *
 * This is the one place where the continuity engine takes over (SPEC.md
 * "Continuity behaviour"), through its route_failure hook: it may put the
 * domain in outage and pick the copies that go into continuity mailboxes.
 * Every other copy is deferred like any other temporary failure.
 */
static void route_temp_failure(struct fates *f, const size_t *temp, size_t ntemp, int server_level)
{
    struct job *job = f->job;
    struct delivery *d = job->d;
    struct delivery_route_rcpt *rr = NULL;
    if (d->hooks.route_failure && d->hooks.divert)
        rr = calloc(ntemp, sizeof *rr);
    if (rr) {
        for (size_t k = 0; k < ntemp; k++) {
            rr[k].rcpt_id = job->rcpts[temp[k]].id;
            rr[k].addr = job->rcpts[temp[k]].addr;
            rr[k].pre_continuity = job->rcpts[temp[k]].pre_continuity;
        }
        struct delivery_route_failure rf = {
            .domain = job->dest->name,
            .msg = &job->msg,
            .server_level = server_level || job->held,
            .held = job->held,
            .cause = f->why[temp[0]],
            .nrcpt = ntemp,
            .rcpts = rr,
        };
        d->hooks.route_failure(d->hooks.arg, &rf);
    } else if (d->hooks.route_failure) {
        log_err("%s: out of memory asking the continuity engine; the recipients are deferred", job->msg.id);
    }
    for (size_t k = 0; k < ntemp; k++) {
        if (rr && rr[k].divert)
            divert(f, temp[k], &rr[k]);
        else
            defer_or_expire(f, temp[k]);
    }
    free(rr);
}

/* ------------------------------------------------------------ the store */

/* Writer thread: every transition of the attempt, then release the message if
 * nothing is left to deliver. */
static int outcome_write(struct store *st, struct blobstore *bs, void *arg)
{
    struct job *job = arg;
    (void)bs;
    for (size_t i = 0; i < job->nupdates; i++) {
        const struct rcpt_update *u = &job->updates[i];
        if (u->divert) {
            int rc = u->divert(st, u->id, u->user_id, time_now());
            if (rc == STORE_OK)
                continue;
            if (rc == STORE_NOTFOUND)
                log_info("%s: recipient %lld was queued before continuity was enabled; deferred, not diverted",
                         job->msg.id, (long long)u->id);
            else
                log_warn("%s: cannot divert recipient %lld into a continuity mailbox (store error); deferred instead",
                         job->msg.id, (long long)u->id);
        }
        int rc = store_rcpt_update(st, u->id, u->state, u->attempts, u->next_attempt, u->reply);
        if (rc != STORE_OK && rc != STORE_NOTFOUND) /* NOTFOUND: deleted meanwhile (queue delete) */
            return rc;
    }
    if (job->any_final) {
        int rc = store_message_release_if_done(st, job->msg.id, &job->released);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    return STORE_OK;
}

/* Loop thread: the transitions are on disk (or not). */
static void outcome_written(int rc, void *arg)
{
    struct job *job = arg;
    if (rc != STORE_OK)
        log_err("%s: cannot record the delivery outcome (store error); its recipients will be tried again",
                job->msg.id);
    else if (job->released)
        log_info("%s: removed", job->msg.id);
    struct delivery *d = job->d;
    delivery_job_free(job);
    /* A deferral may be due before the next poll: look again when it is. */
    delivery_reschedule(d);
}

static void write_outcome(struct job *job)
{
    /* The data is not needed any more; do not hold it while the writer works. */
    free(job->body);
    job->body = NULL;
    if (store_writer_submit(job->d->writer, outcome_write, outcome_written, job) != 0) {
        log_warn(
            "%s: the store writer is stopping; the outcome is not recorded and the recipients stay queued",
            job->msg.id);
        delivery_job_free(job);
    }
}

/* ----------------------------------------------------------------- DSN */

static void dsn_queued(int rc, void *arg)
{
    struct job *job = arg;
    struct delivery *d = job->d;
    if (rc != STORE_OK) {
        /* Without its DSN a bounce would be silent: keep the recipients queued. */
        log_err("%s: cannot queue the DSN to <%s>; the failed recipients stay queued", job->msg.id,
                job->msg.sender);
        for (size_t i = 0; i < job->nupdates; i++) {
            struct rcpt_update *u = &job->updates[i];
            if (u->state == RCPT_BOUNCED) {
                u->state = RCPT_QUEUED;
                u->next_attempt = queue_next_attempt(d->cfg, u->attempts, time_now());
            }
        }
    } else {
        log_info("%s: sender non-delivery notification: %s", job->msg.id, job->dsn_msg.id);
        log_info("%s: from=<>, size=%zu, nrcpt=1 (queued)", job->dsn_msg.id, job->dsn_len);
        delivery_kick(d);
    }
    free(job->dsn);
    job->dsn = NULL;
    write_outcome(job);
}

/* Builds the DSN for the bounced recipients and queues it; the outcome is
 * written once it is queued. */
static void send_dsn(struct fates *f)
{
    struct job *job = f->job;
    struct delivery *d = job->d;
    const unsigned char *orig = (const unsigned char *)"";
    size_t orig_len = 0;
    if (delivery_job_load_body(job) == 0) {
        orig = job->body;
        orig_len = job->body_len;
    }
    queueid_new(job->dsn_msg.id);
    struct dsn_envelope env = {
        .reporting_mta = d->cfg->hostname,
        .queue_id = job->msg.id,
        .dsn_id = job->dsn_msg.id,
        .sender = job->msg.sender,
        .arrival = job->msg.received,
        .prefix = job->msg.prefix,
    };
    if (dsn_build(orig, orig_len, &env, f->failures, f->nfail, &job->dsn, &job->dsn_len) != 0) {
        log_err("%s: cannot build the DSN to <%s>", job->msg.id, job->msg.sender);
        dsn_queued(STORE_ERR, job);
        return;
    }
    /* The DSN travels back the way the sender is: to a hosted domain it is inbound mail. */
    struct store_domain dom;
    int hosted = store_domain_get(d->st, addr_domain(job->msg.sender), &dom) == STORE_OK;
    job->dsn_rcpt[0] = job->msg.sender;
    struct queue_message *m = &job->dsn_msg;
    m->sender = "";
    m->rcpts = job->dsn_rcpt;
    m->nrcpt = 1;
    m->prefix = "";
    m->body = job->dsn;
    m->body_len = job->dsn_len;
    m->client_addr = "";
    m->helo = d->cfg->hostname;
    m->direction = hosted ? DIR_INBOUND : DIR_OUTBOUND;
    m->is_bounce = 1;
    if (queue_submit(d->writer, m, dsn_queued, job) != 0) {
        log_warn(
            "%s: the store writer is stopping; the outcome is not recorded and the recipients stay queued",
            job->msg.id);
        delivery_job_free(job);
    }
}

/* --------------------------------------------------------------- entry */

void delivery_job_finish(struct job *job)
{
    struct fates f = {.job = job, .now = time_now()};
    size_t n = job->nrcpt;
    size_t *temp = calloc(n, sizeof *temp);
    f.failures = calloc(n, sizeof *f.failures);
    f.why = calloc(n, sizeof *f.why);
    job->updates = calloc(n, sizeof *job->updates);
    if (!temp || !f.failures || !f.why || !job->updates) {
        log_err("%s: out of memory recording the delivery outcome; the recipients stay queued", job->msg.id);
        free(temp);
        free(f.failures);
        free(f.why);
        delivery_job_free(job);
        return;
    }

    size_t ntemp = 0;
    for (size_t i = 0; i < n; i++) {
        struct smtpc_outcome *o = &job->out[i];
        if (o->result != SMTPC_OK && o->result != SMTPC_PERM && o->result != SMTPC_TEMP) {
            /* Undecided when the attempt ended: cannot happen, but never lose it. */
            o->result = SMTPC_TEMP;
            o->from_server = 0;
            snprintf(o->dsn, sizeof o->dsn, "4.3.0");
            snprintf(o->text, sizeof o->text, "delivery attempt ended without an answer");
        }
        describe(job, o, f.why[i], sizeof f.why[i]);
        if (o->result == SMTPC_OK)
            sent(&f, i);
        else if (o->result == SMTPC_PERM)
            bounce(&f, i, f.why[i]);
        else
            temp[ntemp++] = i;
    }
    if (ntemp > 0) {
        if (job->dest->kind == DEST_ROUTE)
            route_temp_failure(&f, temp, ntemp, job->txn.smtp.server_level);
        else
            for (size_t k = 0; k < ntemp; k++)
                defer_or_expire(&f, temp[k]);
    }

    if (f.nfail > 0 && job->msg.sender[0] && !job->msg.is_bounce)
        send_dsn(&f); /* dsn_build copies what it needs from f */
    else
        write_outcome(job);
    free(temp);
    free(f.failures);
    free(f.why);
}
