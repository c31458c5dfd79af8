/*
 * session_submission.c — the end of a message on the submission port: the
 * checks and additions RFC 6409 section 8 allows a submission agent, before
 * the message is queued like one sent from the webmail.
 *
 *   - The From rule: every mailbox of the message's one From field is the
 *     authenticated user's own address or alias (the envelope sender was
 *     checked at MAIL); otherwise 550 5.7.1.
 *   - Date and Message-ID are added when missing (8.2, 8.3).
 *   - DKIM: signed with the From domain's key when it has one
 *     (directory_dkim_sign); a key that does not work is logged and the
 *     message goes out unsigned rather than not at all.
 *   - Queued as outbound mail with a copy in the user's Sent folder, in one
 *     writer transaction (queue.h, struct queue_sent_copy). Recipients in
 *     hosted domains take the ordinary path: the continuity engine diverts
 *     them when their domain is in outage.
 *
 * Reading the header and signing are linear in the message's size (up to
 * max_message_size), so they run on a worker thread (workers.c) with the
 * worker's own store connection, while the session waits in SS_SUBMIT; the
 * worker touches only the job and the message buffer, which nothing else uses
 * meanwhile.
 */
#include "smtpd/smtpd_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "mail/dkim.h"
#include "smtpd/submission_msg.h"
#include "util/log.h"

#define REPLY_NOT_OWNED "550 5.7.1 From header not owned by user"
#define REPLY_RESOURCES smtpd_reply_resources

struct submission_job {
    struct smtpd_work_item work;
    struct session *s;
    /* What the worker may use: copies, or things nothing else touches while
     * the session is in SS_SUBMIT. */
    struct smtpd_backend backend;
    const struct store_user *user;
    struct smtp_data *data;

    /* The worker's findings, for the loop. */
    const char *reply; /* a refusal, NULL to queue the message */
    char from_domain[DOMAIN_MAX + 1];
    char refused_from[ADDR_MAX + 1];
    char message_id[DOMAIN_MAX + 64]; /* added by us, or "" */
    int dkim;                         /* 1 signed, 0 no key, -1 signing failed */
    char dkim_selector[64];
    char dkim_err[512];
};

void submission_job_free(struct submission_job *j)
{
    free(j);
}

/* ------------------------------------------------------------------ on a worker */

struct owns_ctx {
    struct submission_job *j;
    struct store *st;
};

static int user_owns(void *arg, const char *addr)
{
    struct owns_ctx *c = arg;
    return c->j->backend.owns_address(c->j->backend.arg, c->st, c->j->user, addr);
}

static const char *complete(struct submission_job *j, struct store *st)
{
    struct smtp_data *d = j->data;
    struct submission_headers h;
    const char *no = smtpd_scan_headers(d, &h);
    if (no)
        return no;
    struct owns_ctx oc = {j, st};
    no = smtpd_from_rule(&h, 1, REPLY_NOT_OWNED, user_owns, &oc, j->from_domain, sizeof j->from_domain,
                         j->refused_from, sizeof j->refused_from);
    if (!no) {
        char added[SUBMISSION_ADDED_MAX];
        int n = submission_missing_headers(&h, j->from_domain, time(NULL), added, sizeof added, j->message_id,
                                           sizeof j->message_id);
        if (n < 0 || smtp_data_prepend(d, added, (size_t)n) != 0)
            no = REPLY_RESOURCES;
    }
    submission_headers_free(&h);
    if (no)
        return no;

    /* The signature covers the fields just added; it goes in front of them. */
    char *sig = NULL;
    if (j->backend.dkim_sign(j->backend.arg, st, j->from_domain, d->buf, d->len, &sig, j->dkim_err,
                             sizeof j->dkim_err) != 0) {
        j->dkim = -1;
        return NULL;
    }
    if (sig) {
        j->dkim = 1;
        if (mail_dkim_header_tag(sig, "s", j->dkim_selector, sizeof j->dkim_selector) != 0)
            snprintf(j->dkim_selector, sizeof j->dkim_selector, "?");
        int rc = smtp_data_prepend(d, sig, strlen(sig));
        free(sig);
        if (rc != 0)
            return REPLY_RESOURCES;
    }
    return NULL;
}

static void job_run(struct smtpd_work_item *it, struct store *st)
{
    struct submission_job *j = (struct submission_job *)((char *)it - offsetof(struct submission_job, work));
    j->reply = complete(j, st);
}

/* ------------------------------------------------------------------ back on the loop */

static void job_done(struct smtpd_work_item *it)
{
    struct submission_job *j = (struct submission_job *)((char *)it - offsetof(struct submission_job, work));
    struct session *s = j->s;
    struct txn *t = &s->txn;
    if (!s->srv) { /* smtpd_free let go of the session */
        session_destroy(s);
        return;
    }
    if (s->connection_closed) {
        /* The client never saw a 250 and will send it again: not queued. */
        log_info("%s: lost connection after END-OF-MESSAGE from [%s]; message not queued", t->queue_id, s->ip);
        session_destroy(s);
        return;
    }
    const char *reply = it->ran ? j->reply : "451 4.3.2 Error: service shutting down";
    if (reply) {
        if (j->refused_from[0])
            log_info("%s: reject: END-OF-MESSAGE from [%s]: %s; from=<%s> header_from=<%s> sasl_username=%s",
                     t->queue_id, s->ip, reply, t->sender, j->refused_from, s->user->email);
        else
            log_info("%s: reject: END-OF-MESSAGE from [%s]: %s; from=<%s> sasl_username=%s", t->queue_id, s->ip,
                     reply, t->sender, s->user->email);
        s->state = SS_CMD;
        txn_reset(t);
        if (reply[0] == '5')
            session_error(s, reply);
        else
            session_reply(s, reply);
        session_resume(s);
        return;
    }
    /* As the webmail logs them (docs/OPERATIONS.md, "DKIM"). */
    if (j->dkim < 0)
        log_warn("%s: DKIM signing for %s failed: %s; sending unsigned", t->queue_id, j->from_domain, j->dkim_err);
    else if (j->dkim > 0)
        log_info("%s: dkim=signed d=%s s=%s", t->queue_id, j->from_domain, j->dkim_selector);
    if (j->message_id[0])
        log_info("%s: message-id=<%s> (added)", t->queue_id, j->message_id);
    txn_submit(s);
    if (s->state != SS_SUBMIT) /* refused at once: the client has its 451 */
        session_resume(s);
}

void session_submission_finish(struct session *s)
{
    struct txn *t = &s->txn;
    struct submission_job *j = calloc(1, sizeof *j);
    if (!j) {
        log_err("%s: out of memory finishing the message from [%s]", t->queue_id, s->ip);
        session_reply(s, REPLY_RESOURCES);
        txn_reset(t);
        return;
    }
    j->s = s;
    j->backend = s->srv->backend;
    j->user = s->user;
    j->data = &t->data;
    j->work.run = job_run;
    j->work.done = job_done;
    t->sub = j;
    if (!s->srv->work || smtpd_work_submit(s->srv->work, &j->work) != 0) {
        log_err("%s: cannot hand the message from [%s] to a worker (shutting down?)", t->queue_id, s->ip);
        session_reply(s, "451 4.3.2 Error: service shutting down");
        txn_reset(t);
        return;
    }
    s->state = SS_SUBMIT;
    bufferevent_disable(s->bev, EV_READ);
}
