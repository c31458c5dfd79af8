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
#define REPLY_NO_FROM "550 5.6.0 Error: message has no From header"
#define REPLY_TWO_FROM "550 5.6.0 Error: message has more than one From header"
#define REPLY_MALFORMED "550 5.6.0 Error: malformed message header"
#define REPLY_DIRECTORY "451 4.3.0 Error: temporary directory failure, try again later"
#define REPLY_RESOURCES "451 4.3.0 Error: insufficient system resources"

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

static const char *check_from(struct submission_job *j, struct store *st, const struct submission_headers *h)
{
    if (h->nfrom == 0)
        return REPLY_NO_FROM;
    if (h->nfrom > 1)
        return REPLY_TWO_FROM;
    char addrs[SUBMISSION_FROM_ADDRS_MAX][ADDR_MAX + 1];
    int n = h->from ? submission_from_addresses(h->from, addrs, SUBMISSION_FROM_ADDRS_MAX) : -1;
    if (n < 0) {
        snprintf(j->refused_from, sizeof j->refused_from, "(not a list of addresses)");
        return REPLY_NOT_OWNED;
    }
    for (int i = 0; i < n; i++) {
        int own = j->backend.owns_address(j->backend.arg, st, j->user, addrs[i]);
        if (own == STORE_ERR)
            return REPLY_DIRECTORY;
        if (own != 1) {
            snprintf(j->refused_from, sizeof j->refused_from, "%.*s", (int)sizeof j->refused_from - 1, addrs[i]);
            return REPLY_NOT_OWNED;
        }
    }
    snprintf(j->from_domain, sizeof j->from_domain, "%s", addr_domain(addrs[0]));
    return NULL;
}

static const char *complete(struct submission_job *j, struct store *st)
{
    struct smtp_data *d = j->data;
    struct submission_headers h;
    switch (submission_scan_headers(d->buf ? d->buf : (const unsigned char *)"", d->len, &h)) {
    case SUBMISSION_SCAN_OK:
        break;
    case SUBMISSION_SCAN_MALFORMED:
        return REPLY_MALFORMED;
    default:
        return REPLY_RESOURCES;
    }
    const char *no = check_from(j, st, &h);
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
