/*
 * http_send.c — POST /api/v1/send: a webmail user sends a message (issue 4,
 * item 5; SPEC.md "HTTP API").
 *
 * The handler checks what the user may do (From is the user's own address or
 * one of their aliases; at least one recipient, every one a valid address, no
 * more than the limit; attachments that decode), builds the message with
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

#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "mail/compose.h"
#include "mail/dkim.h"
#include "queue/queue.h"
#include "util/log.h"

#define SEND_ATTACHMENTS_MAX 100

/* ------------------------------------------------------------------ the request */

static int send_queue_job(struct store *st, struct blobstore *bs, void *arg)
{
    return queue_submit_run(st, bs, arg);
}

/* Everything the handler allocates, freed in one place. */
struct send_req {
    const char **to, **cc, **bcc;
    size_t nto, ncc, nbcc;
    struct compose_attachment *atts;
    size_t natts;
};

static void send_req_free(struct send_req *r)
{
    free(r->to);
    free(r->cc);
    free(r->bcc);
    for (size_t i = 0; i < r->natts; i++)
        free((void *)r->atts[i].data);
    free(r->atts);
}

/* An optional string field: 0 and *out (NULL when absent or null), -1 if it
 * is something else. */
static int opt_string(json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/* An optional array of addresses (bare local@domain, as the client sends
 * them). NULL with the reason on a bad field; *list is malloc'd. */
static const char *address_list(json_t *obj, const char *key, const char ***list, size_t *n)
{
    json_t *a = json_object_get(obj, key);
    *list = NULL;
    *n = 0;
    if (!a || json_is_null(a))
        return NULL;
    if (!json_is_array(a))
        return "to, cc and bcc must be arrays of addresses";
    if (json_array_size(a) > COMPOSE_RCPTS_MAX)
        return "too many recipients";
    if (json_array_size(a) == 0)
        return NULL;
    *list = calloc(json_array_size(a), sizeof **list);
    if (!*list)
        return "out of memory";
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strlen(s) > ADDR_MAX || !addr_is_valid(s))
            return "invalid recipient address";
        (*list)[(*n)++] = s;
    }
    return NULL;
}

/* Decodes the attachments. NULL, or the reason for a 400. */
static const char *attachments(json_t *obj, struct send_req *r)
{
    json_t *a = json_object_get(obj, "attachments");
    if (!a || json_is_null(a))
        return NULL;
    if (!json_is_array(a))
        return "attachments must be an array";
    if (json_array_size(a) > SEND_ATTACHMENTS_MAX)
        return "too many attachments";
    if (json_array_size(a) == 0)
        return NULL;
    r->atts = calloc(json_array_size(a), sizeof *r->atts);
    if (!r->atts)
        return "out of memory";
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *filename, *ctype;
        json_t *data = json_is_object(v) ? json_object_get(v, "data_base64") : NULL;
        if (!data || !json_is_string(data) || opt_string(v, "filename", &filename) != 0 ||
            opt_string(v, "content_type", &ctype) != 0)
            return "each attachment needs data_base64 (and may have filename, content_type as strings)";
        const char *b64 = json_string_value(data);
        size_t b64len = json_string_length(data);
        size_t cap = b64len / 4 * 3 + 3;
        unsigned char *bin = malloc(cap ? cap : 1);
        if (!bin)
            return "out of memory";
        size_t binlen = 0;
        const char *end = NULL;
        /* Line breaks are tolerated (clients wrap base64 at 76); nothing else. */
        if (sodium_base642bin(bin, cap, b64, b64len, "\r\n", &binlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != b64 + b64len) {
            free(bin);
            return "attachment data is not valid base64";
        }
        r->atts[r->natts++] = (struct compose_attachment){
            .filename = filename, .content_type = ctype, .data = bin, .len = binlen};
    }
    return NULL;
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
    json_t *j = req->json;
    struct send_req r = {0};
    const char *from_in, *subject, *text, *html, *in_reply_to, *references;
    const char *why = NULL;
    char from[ADDR_MAX + 1];

    if (opt_string(j, "from", &from_in) != 0 || !from_in || !addr_is_valid(from_in) ||
        addr_canonical(from_in, from, sizeof from) != 0) {
        http_reply_error(rep, 400, "from must be one of your addresses");
        return;
    }
    if (opt_string(j, "subject", &subject) != 0 || opt_string(j, "text", &text) != 0 ||
        opt_string(j, "html", &html) != 0 || opt_string(j, "in_reply_to", &in_reply_to) != 0 ||
        opt_string(j, "references", &references) != 0) {
        http_reply_error(rep, 400, "subject, text, html, in_reply_to and references must be strings");
        return;
    }
    if (!directory_user_owns_address(req->st, &req->user, from)) {
        log_warn("http: %s [%s] tried to send as %s", req->user.email, req->client_ip, from);
        http_reply_error(rep, 403, "not your address");
        return;
    }
    if (!why)
        why = address_list(j, "to", &r.to, &r.nto);
    if (!why)
        why = address_list(j, "cc", &r.cc, &r.ncc);
    if (!why)
        why = address_list(j, "bcc", &r.bcc, &r.nbcc);
    const struct config *cfg = http_config(req->srv);
    if (!why && r.nto + r.ncc + r.nbcc == 0)
        why = "at least one recipient is needed";
    if (!why && (r.nto + r.ncc + r.nbcc > COMPOSE_RCPTS_MAX || r.nto + r.ncc + r.nbcc > cfg->max_recipients))
        why = "too many recipients";
    if (!why)
        why = attachments(j, &r);
    if (why) {
        send_req_free(&r);
        http_reply_error(rep, strcmp(why, "out of memory") == 0 ? 500 : 400, why);
        return;
    }

    struct compose_msg m = {
        .from_addr = from,
        .from_name = req->user.name[0] && strcmp(from, req->user.email) == 0 ? req->user.name : NULL,
        .to = r.to, .nto = r.nto,
        .cc = r.cc, .ncc = r.ncc,
        .bcc = r.bcc, .nbcc = r.nbcc,
        .subject = subject,
        .text = text,
        .html = html,
        .attachments = r.atts, .nattachments = r.natts,
        .in_reply_to = in_reply_to && *in_reply_to ? in_reply_to : NULL,
    };
    /* A reply keeps its thread: the parent's References (the client passes
     * them on, an extension of SPEC's fields) followed by the parent's ID. */
    char *thread = NULL;
    if (m.in_reply_to && references && *references) {
        if (!(thread = compose_references(references, NULL, m.in_reply_to))) {
            send_req_free(&r);
            http_reply_error(rep, 500, "out of memory");
            return;
        }
        m.references = thread;
    }
    struct compose_result msg = {0};
    const char *error = NULL;
    int rc = compose_build(&m, &msg, &error);
    free(thread);
    send_req_free(&r);
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
