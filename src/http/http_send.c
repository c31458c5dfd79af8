/*
 * http_send.c — POST /api/v1/send: a webmail user sends a message (issue 4,
 * item 5; SPEC.md "HTTP API").
 *
 * The handler checks what the user may do (From is the user's own address or
 * one of their aliases; at least one recipient, every one a valid address, no
 * more than the limit; attachments that decode: the body's fields are read by
 * the pure http_send_parse, http_parse.c), builds the message with
 * compose_build (mail/compose.h: Date, Message-ID, In-Reply-To/References,
 * Bcc only in the envelope), signs it with the From domain's DKIM key when
 * the domain has one (directory_dkim_sign), and queues it with
 * queue_submit_run's writer job
 * (blob, message row with its recipients, DIR_OUTBOUND, and the Sent copy in
 * the same transaction: either both exist after the commit or neither).
 *
 * queue_submit itself is not used: its done() runs on the daemon's loop,
 * while this thread is one of libmicrohttpd's and waits in http_write. The
 * queued recipients are delivered by the ordinary queue runner like any
 * other outbound mail (MX or outbound_relay).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "mail/compose.h"
#include "mail/dkim.h"
#include "queue/queue.h"
#include "util/log.h"

/* ------------------------------------------------------------------ the request */

/* The writer job: queue_submit_run (blob, message, recipients, Sent copy). */
static int send_queue_job(struct store *st, struct blobstore *bs, void *arg)
{
    return queue_submit_run(st, bs, arg);
}

/* DKIM: the signature goes in front of the message when the From domain has
 * a key (directory_dkim_sign). A key that cannot be used is the operator's
 * to fix, not the user's: the message then goes unsigned, with a warning, as
 * it would through Postfix with opendkim. Returns the signed copy
 * (malloc'd, *len its size, selector[] the s= for the log) or NULL: queue
 * msg as it is. */
static unsigned char *dkim_signed_copy(struct store *st, const char *qid, const char *from,
                                       const struct compose_result *msg, size_t *len, char *selector,
                                       size_t sellen)
{
    const char *domain = strrchr(from, '@') + 1; /* from is a valid address */
    char *header = NULL;
    char err[512];
    if (directory_dkim_sign(st, domain, msg->data, msg->len, &header, err, sizeof err) != 0) {
        log_warn("%s: DKIM signing for %s failed: %s; sending unsigned", qid, domain, err);
        return NULL;
    }
    if (!header)
        return NULL;
    size_t hlen = strlen(header);
    unsigned char *out = malloc(hlen + msg->len);
    if (!out) {
        log_warn("%s: DKIM signing for %s failed: out of memory; sending unsigned", qid, domain);
        free(header);
        return NULL;
    }
    memcpy(out, header, hlen);
    memcpy(out + hlen, msg->data, msg->len);
    *len = hlen + msg->len;
    if (mail_dkim_header_tag(header, "s", selector, sellen) != 0)
        snprintf(selector, sellen, "?");
    free(header);
    return out;
}

void http_h_send(struct http_request *req, struct http_reply *rep)
{
    struct http_send_req r;
    const char *why;
    int prc = http_send_parse(req->json, &r, &why);
    if (prc == HTTP_SEND_BAD_HEAD) {
        http_send_req_free(&r);
        http_reply_error(rep, 400, why);
        return;
    }
    char from[ADDR_MAX + 1]; /* outlives r, freed once the message is built */
    memcpy(from, r.from, sizeof from);
    if (!directory_user_owns_address(req->st, &req->user, from)) {
        log_warn("http: %s [%s] tried to send as %s", req->user.email, req->client_ip, from);
        http_send_req_free(&r);
        http_reply_error_code(rep, 403, "not_your_address", "not your address");
        return;
    }
    const struct config *cfg = http_config(req->srv);
    if (prc == HTTP_SEND_OK && r.nto + r.ncc + r.nbcc > cfg->max_recipients) {
        prc = HTTP_SEND_BAD;
        why = "too many recipients";
    }
    if (prc != HTTP_SEND_OK) {
        http_send_req_free(&r);
        http_reply_error(rep, prc == HTTP_SEND_NOMEM ? 500 : 400, why);
        return;
    }

    struct compose_msg m = {
        .from_addr = from,
        .from_name = req->user.name[0] && strcmp(from, req->user.email) == 0 ? req->user.name : NULL,
        .to = r.to, .nto = r.nto,
        .cc = r.cc, .ncc = r.ncc,
        .bcc = r.bcc, .nbcc = r.nbcc,
        .subject = r.subject,
        .text = r.text,
        .html = r.html,
        .attachments = r.atts, .nattachments = r.natts,
        .in_reply_to = r.in_reply_to && *r.in_reply_to ? r.in_reply_to : NULL,
    };
    /* A reply keeps its thread: the parent's References (the client passes
     * them on, an extension of SPEC's fields) followed by the parent's ID. */
    char *thread = NULL;
    if (m.in_reply_to && r.references && *r.references) {
        if (!(thread = compose_references(r.references, NULL, m.in_reply_to))) {
            http_send_req_free(&r);
            http_reply_error(rep, 500, "out of memory");
            return;
        }
        m.references = thread;
    }
    struct compose_result msg = {0};
    const char *error = NULL;
    int rc = compose_build(&m, &msg, &error);
    free(thread);
    http_send_req_free(&r);
    if (rc != 0) {
        http_reply_error(rep, 400, error ? error : "cannot build the message");
        return;
    }
    if (msg.len > cfg->max_message_size) {
        compose_result_free(&msg);
        http_reply_error(rep, 413, "message larger than max_message_size");
        return;
    }

    struct queue_sent_copy sent = {.user_id = req->user.id, .domain_id = req->user.domain_id};
    struct queue_message job = {
        .sender = from,
        .rcpts = (const char *const *)msg.rcpts,
        .nrcpt = msg.nrcpts,
        .prefix = "",
        .body = msg.data,
        .body_len = msg.len,
        .client_addr = req->client_ip,
        .helo = "",
        .direction = DIR_OUTBOUND,
        .sent_copy = &sent,
    };
    queueid_new(job.id);
    char dkim_selector[64];
    unsigned char *signed_body =
        dkim_signed_copy(req->st, job.id, from, &msg, &job.body_len, dkim_selector, sizeof dkim_selector);
    if (signed_body)
        job.body = signed_body;
    rc = http_write_queued(req->srv, send_queue_job, &job, job.id);
    if (rc != STORE_OK) {
        log_err("%s: cannot queue the message of webmail user %s (%d)", job.id, req->user.email, rc);
        free(signed_body);
        compose_result_free(&msg);
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queued from webmail user %s)", job.id, from, job.body_len,
             msg.nrcpts, req->user.email);
    log_info("%s: message-id=<%s>", job.id, msg.message_id);
    if (signed_body)
        log_info("%s: dkim=signed d=%s s=%s", job.id, strrchr(from, '@') + 1, dkim_selector);
    free(signed_body);
    /* The delivery engine was told on the loop when the write committed
     * (http_write_queued), so the message goes out at once. */
    http_reply_json(rep, 202, json_pack("{s:s, s:o, s:I}", "id", job.id, "message_id",
                                        http_json_text(msg.message_id), "sent_id", (json_int_t)sent.entry_id));
    compose_result_free(&msg);
}
