/*
 * http_mailbox.c — the webmail's continuity mailbox: folders with counts, a
 * folder's messages (paged, newest first, searchable), one message's stored
 * fields, flags and moves, delete, and the raw message.
 *
 * Tenancy: every handler works on req->user's own entries only. An ID that is
 * not the user's answers exactly like an ID that does not exist (404), so IDs
 * cannot be probed. Changes re-check the owner inside the writer's job, on the
 * writer's connection: the check and the change are one transaction.
 *
 * Trash and re-delivery (issue 4): deleting moves a message to Trash and marks
 * it never to be re-delivered to the customer's server (REDELIVER_DELETED);
 * moving it out of Trash restores it (REDELIVER_WAITING again); deleting it in
 * Trash deletes it for good. A move into Trash with PATCH counts as a delete,
 * so whatever sits in Trash is never re-delivered. Only entries that were
 * waiting are marked: one already re-delivered (or never meant to be) stays as
 * it is.
 *
 * What a reader sees of a stored message (the parsed view, the raw download,
 * one attachment) is shared with the archive (http_archive.c): http_view_add,
 * http_reply_message_raw, http_reply_attachment work on a blob, whoever's it is.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "http/http_internal.h"
#include "mail/message_view.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SEARCH_MAX 256 /* bytes of q */

static const char *redeliver_name(int r)
{
    switch (r) {
    case REDELIVER_NONE: return "none";
    case REDELIVER_WAITING: return "waiting";
    case REDELIVER_DONE: return "redelivered";
    case REDELIVER_DELETED: return "deleted";
    default: return "unknown";
    }
}

/* The entry if it is the user's: STORE_OK, STORE_NOTFOUND (absent or someone
 * else's: the same answer), STORE_ERR. */
static int own_entry(struct store *st, int64_t user_id, int64_t id, struct store_mailbox_entry *e)
{
    int rc = store_mailbox_get(st, id, e);
    if (rc == STORE_OK && e->user_id != user_id)
        return STORE_NOTFOUND;
    return rc;
}

static void iso(int64_t t, char *out, size_t outlen)
{
    time_iso8601((time_t)t, out, outlen);
}

/* The list row of an entry (SPEC: id, from, to, subject, date, size, seen). */
static json_t *entry_json(const struct store_mailbox_entry *e, const struct http_summary *s)
{
    char date[64], received[64];
    iso(s->date ? s->date : e->received, date, sizeof date);
    iso(e->received, received, sizeof received);
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:I, s:b, s:b}", "id", (json_int_t)e->id, "folder",
                     http_folder_name(e->folder), "from", http_json_text(s->from[0] ? s->from : e->sender), "to",
                     http_json_text(s->to[0] ? s->to : e->rcpts), "subject", http_json_text(s->subject), "date",
                     date, "received", received, "size", (json_int_t)e->size, "seen", e->seen, "flagged",
                     e->flagged);
}

static void summary_of(struct http_request *req, const struct store_mailbox_entry *e, struct http_summary *s)
{
    if (http_summary_get(http_summaries(req->srv), req->blobs, e->blob, s) != 0)
        memset(s, 0, sizeof *s); /* listed with its envelope, logged */
}

/* ------------------------------------------------------------------ folders */

void http_h_folders(struct http_request *req, struct http_reply *rep)
{
    struct store_folder_counts c;
    if (store_mailbox_folder_counts(req->st, req->user.id, &c) != STORE_OK) {
        http_reply_error(rep, 500, "internal error");
        return;
    }
    json_t *out = json_array();
    for (int f = FOLDER_INBOX; f <= FOLDER_TRASH; f++)
        json_array_append_new(out, json_pack("{s:s, s:I, s:I}", "name", http_folder_name(f), "total",
                                             (json_int_t)c.total[f], "unread", (json_int_t)c.unread[f]));
    http_reply_json(rep, 200, out);
}

/* ------------------------------------------------------------------ listing */

/* A non-negative decimal no larger than max; def when absent. -1 if bad. */
/* Case-insensitive (ASCII) substring search. */
static int contains(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

struct list_ctx {
    struct http_request *req;
    const char *q; /* NULL: no search */
    int64_t offset, limit;
    int64_t total;
    /* the page: entries and, when searching, their summaries */
    struct store_mailbox_entry *page;
    struct http_summary *summaries;
    size_t n;
};

static int list_each(const struct store_mailbox_entry *e, void *arg)
{
    struct list_ctx *x = arg;
    struct http_summary s;
    if (x->q) {
        summary_of(x->req, e, &s);
        if (!contains(e->sender, x->q) && !contains(s.from, x->q) && !contains(s.to, x->q) &&
            !contains(s.subject, x->q))
            return 0;
    }
    int64_t pos = x->total++;
    if (pos >= x->offset && pos < x->offset + x->limit) {
        x->page[x->n] = *e;
        if (x->q)
            x->summaries[x->n] = s;
        x->n++;
    }
    return 0;
}

void http_h_messages(struct http_request *req, struct http_reply *rep)
{
    const char *fname = http_query(req, "folder");
    int folder = fname ? http_folder_parse(fname) : FOLDER_INBOX;
    if (folder < 0) {
        http_reply_error(rep, 400, "unknown folder");
        return;
    }
    long long offset, limit;
    if (http_query_number(req, "offset", 0, 0, INT32_MAX, &offset, rep) != 0 ||
        http_query_number(req, "limit", 50, 1, HTTP_LIST_LIMIT_MAX, &limit, rep) != 0)
        return;
    const char *q = http_query(req, "q");
    if (q && strlen(q) > SEARCH_MAX) {
        http_reply_error(rep, 400, "search text too long");
        return;
    }
    struct list_ctx x = {.req = req, .q = q && *q ? q : NULL, .offset = offset, .limit = limit};
    x.page = calloc((size_t)limit, sizeof *x.page);
    x.summaries = calloc((size_t)limit, sizeof *x.summaries);
    if (!x.page || !x.summaries) {
        free(x.page);
        free(x.summaries);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    int rc = store_mailbox_list(req->st, req->user.id, folder, list_each, &x);
    if (rc != STORE_OK) {
        free(x.page);
        free(x.summaries);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    json_t *msgs = json_array();
    for (size_t i = 0; i < x.n; i++) {
        if (!x.q) /* without a search only the page's headers are read */
            summary_of(req, &x.page[i], &x.summaries[i]);
        json_array_append_new(msgs, entry_json(&x.page[i], &x.summaries[i]));
    }
    free(x.page);
    free(x.summaries);
    http_reply_json(rep, 200,
                    json_pack("{s:I, s:I, s:I, s:o}", "total", (json_int_t)x.total, "offset", (json_int_t)offset,
                              "limit", (json_int_t)limit, "messages", msgs));
}

/* ------------------------------------------------------------------ one message */

/* The stored fields of one entry. */
static json_t *entry_detail_json(struct http_request *req, const struct store_mailbox_entry *e)
{
    struct http_summary s;
    summary_of(req, e, &s);
    json_t *j = entry_json(e, &s);
    if (!j)
        return NULL;
    json_object_set_new(j, "message_id", http_json_text(s.message_id));
    json_object_set_new(j, "envelope_from", http_json_text(e->sender));
    json_object_set_new(j, "envelope_to", http_json_text(e->rcpts));
    json_object_set_new(j, "redelivery", json_string(redeliver_name(e->redeliver)));
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Adds what a reader sees, parsed from the message itself: decoded headers, the
 * text, the sanitised HTML (cid: images pointing at cid_url_prefix + N, remote
 * images blocked unless ?images=1) and the attachment list. The message_view
 * strings are clean UTF-8, so json_string cannot refuse them. Shared with the
 * archive's view (http_archive.c). */
int http_view_add(struct http_request *req, const char *blob_id, const char *cid_url_prefix, json_t *j)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    if (blob_get(req->blobs, blob_id, &raw, &len) != 0) {
        log_err("http: %s: cannot read blob %s", req->user.email, blob_id);
        return -1;
    }
    const char *images = http_query(req, "images");
    struct message_view_opts o = {.load_remote_images = images && strcmp(images, "1") == 0,
                                  .cid_url_prefix = cid_url_prefix};
    struct message_view *v = NULL;
    int rc = message_view_parse(raw, len, &o, &v);
    free(raw);
    if (rc != 0)
        return -1;
    json_object_set_new(j, "headers",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "from", v->from, "to", v->to,
                                  "cc", v->cc, "reply_to", v->reply_to, "subject", v->subject, "date", v->date,
                                  "message_id", v->message_id, "in_reply_to", v->in_reply_to, "references",
                                  v->references));
    json_object_set_new(j, "text", json_string(v->text));
    json_object_set_new(j, "html", str_or_null(v->html));
    json_object_set_new(j, "blocked_remote_images", json_integer(v->blocked_remote_images));
    json_t *atts = json_array();
    for (size_t i = 0; i < v->nattachments; i++) {
        const struct mail_attachment *a = &v->attachments[i];
        json_array_append_new(atts, json_pack("{s:I, s:o, s:s, s:I, s:o, s:b}", "n", (json_int_t)a->n,
                                              "filename", str_or_null(a->filename), "content_type",
                                              a->content_type, "size", (json_int_t)a->size, "content_id",
                                              str_or_null(a->content_id), "inline", a->is_inline));
    }
    json_object_set_new(j, "attachments", atts);
    json_object_set_new(j, "truncated", json_boolean(v->truncated));
    message_view_free(v);
    return 0;
}

void http_h_message_get(struct http_request *req, struct http_reply *rep)
{
    struct store_mailbox_entry e;
    int rc = own_entry(req->st, req->user.id, req->id, &e);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return;
    }
    char cid_prefix[96];
    snprintf(cid_prefix, sizeof cid_prefix, "/api/v1/messages/%lld/attachments/", (long long)e.id);
    json_t *j = entry_detail_json(req, &e);
    if (!j || http_view_add(req, e.blob, cid_prefix, j) != 0) {
        json_decref(j);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    http_reply_json(rep, 200, j);
}

void http_h_message_raw(struct http_request *req, struct http_reply *rep)
{
    struct store_mailbox_entry e;
    int rc = own_entry(req->st, req->user.id, req->id, &e);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return;
    }
    char filename[64];
    snprintf(filename, sizeof filename, "message-%lld.eml", (long long)e.id);
    http_reply_message_raw(req, rep, e.prefix, e.blob, filename);
}

/* The message as delivered: the Received: lines we added, then the message as
 * it came, as a download named filename (plain ASCII, chosen by the caller).
 * Shared with the archive's /raw. */
void http_reply_message_raw(struct http_request *req, struct http_reply *rep, const char *prefix,
                            const char *blob_id, const char *filename)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (blob_get(req->blobs, blob_id, &data, &len) != 0) {
        log_err("http: %s: cannot read blob %s", req->user.email, blob_id);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    size_t plen = strlen(prefix);
    char *out = malloc(plen + len + 1);
    if (!out) {
        free(data);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    memcpy(out, prefix, plen);
    memcpy(out + plen, data, len);
    free(data);
    http_reply_raw(rep, 200, "message/rfc822", out, plen + len);
    snprintf(rep->disposition, sizeof rep->disposition, "attachment; filename=\"%s\"", filename);
}

/* Types a browser may show as they are; anything else (text/html, SVG, scripts)
 * is served as opaque bytes so that it can never run on our origin. */
static const char *safe_content_type(const char *ct)
{
    static const char *inline_ok[] = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"};
    for (size_t i = 0; ct && i < sizeof inline_ok / sizeof inline_ok[0]; i++)
        if (strcmp(ct, inline_ok[i]) == 0)
            return inline_ok[i];
    return "application/octet-stream";
}

/* Content-Disposition per RFC 6266: an ASCII fallback name and the UTF-8 name
 * percent-encoded (cut at a character boundary to fit). */
static void attachment_disposition(const char *filename, int64_t id, int64_t n, char *out, size_t outlen)
{
    char fallback[80], encoded[160];
    size_t f = 0, e = 0;
    const unsigned char *p = (const unsigned char *)(filename ? filename : "");
    for (; *p && f + 1 < sizeof fallback; p++)
        fallback[f++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '%') ? (char)*p : '_';
    fallback[f] = 0;
    p = (const unsigned char *)(filename ? filename : "");
    while (*p) {
        size_t clen = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
        if (e + clen * 3 + 1 > sizeof encoded)
            break;
        for (size_t i = 0; i < clen && p[i]; i++) {
            unsigned char c = p[i];
            if (c < 0x80 && (isalnum(c) || strchr("!#$&+-.^_`|~", c)))
                encoded[e++] = (char)c;
            else
                e += (size_t)snprintf(encoded + e, sizeof encoded - e, "%%%02X", c);
        }
        p += clen;
    }
    encoded[e] = 0;
    if (!f)
        snprintf(out, outlen, "attachment; filename=\"message-%lld-part-%lld\"", (long long)id, (long long)n);
    else
        snprintf(out, outlen, "attachment; filename=\"%s\"; filename*=UTF-8''%s", fallback, encoded);
}

void http_h_message_attachment(struct http_request *req, struct http_reply *rep)
{
    struct store_mailbox_entry e;
    int rc = own_entry(req->st, req->user.id, req->id, &e);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return;
    }
    http_reply_attachment(req, rep, e.blob, e.id, req->n);
}

/* Attachment n of the message in blob_id (id names it in the fallback file
 * name), with a Content-Type a browser cannot run. Shared with the archive. */
void http_reply_attachment(struct http_request *req, struct http_reply *rep, const char *blob_id, int64_t id,
                           int64_t n)
{
    unsigned char *raw = NULL, *data = NULL;
    size_t len = 0, dlen = 0;
    if (blob_get(req->blobs, blob_id, &raw, &len) != 0) {
        log_err("http: %s: cannot read blob %s", req->user.email, blob_id);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    struct mail_attachment info;
    memset(&info, 0, sizeof info);
    int rc = message_attachment_extract(raw, len, (size_t)n, &data, &dlen, &info);
    free(raw);
    if (rc != 0) {
        http_reply_error(rep, 404, "no such attachment");
        return;
    }
    http_reply_raw(rep, 200, safe_content_type(info.content_type), (char *)data, dlen);
    attachment_disposition(info.filename, id, n, rep->disposition, sizeof rep->disposition);
    mail_attachment_clear(&info);
}

/* ------------------------------------------------------------------ changes */

struct change_job {
    int64_t user_id, entry_id;
    int seen, flagged; /* -1: leave alone */
    int folder;        /* -1: leave alone */
    int remove;        /* DELETE: to Trash, or for good from Trash */
    int purged;        /* out: deleted for good */
    struct store_mailbox_entry entry; /* out: the entry after the change */
};

/* Moves e to folder with the Trash rule of the file comment. Inside the job. */
static int move_entry(struct store *st, const struct store_mailbox_entry *e, int folder)
{
    int rc = STORE_OK;
    if (folder == e->folder)
        return STORE_OK;
    if (folder == FOLDER_TRASH && e->redeliver == REDELIVER_WAITING)
        rc = store_mailbox_set_redeliver(st, e->id, REDELIVER_DELETED);
    else if (e->folder == FOLDER_TRASH && e->redeliver == REDELIVER_DELETED)
        rc = store_mailbox_set_redeliver(st, e->id, REDELIVER_WAITING);
    if (rc == STORE_OK)
        rc = store_mailbox_move(st, e->id, folder);
    return rc;
}

static int change_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct change_job *j = arg;
    (void)bs;
    struct store_mailbox_entry e;
    int rc = own_entry(st, j->user_id, j->entry_id, &e);
    if (rc != STORE_OK)
        return rc;
    if (j->remove) {
        if (e.folder == FOLDER_TRASH) {
            j->purged = 1;
            return store_mailbox_delete(st, e.id);
        }
        rc = move_entry(st, &e, FOLDER_TRASH);
    } else {
        if (j->folder >= 0)
            rc = move_entry(st, &e, j->folder);
        if (rc == STORE_OK && (j->seen >= 0 || j->flagged >= 0))
            rc = store_mailbox_set_flags(st, e.id, j->seen, j->flagged);
    }
    if (rc == STORE_OK)
        rc = store_mailbox_get(st, e.id, &j->entry);
    return rc;
}

void http_h_message_patch(struct http_request *req, struct http_reply *rep)
{
    struct change_job j = {.user_id = req->user.id, .entry_id = req->id, .seen = -1, .flagged = -1, .folder = -1};
    const char *key;
    json_t *v;
    json_object_foreach(req->json, key, v)
    {
        if (strcmp(key, "seen") == 0 && json_is_boolean(v)) {
            j.seen = json_is_true(v);
        } else if (strcmp(key, "flagged") == 0 && json_is_boolean(v)) {
            j.flagged = json_is_true(v);
        } else if (strcmp(key, "folder") == 0 && json_is_string(v)) {
            j.folder = http_folder_parse(json_string_value(v));
            if (j.folder < 0) {
                http_reply_error(rep, 400, "unknown folder");
                return;
            }
        } else {
            http_reply_error(rep, 400, "only seen (true/false), flagged (true/false) and folder (a name) can change");
            return;
        }
    }
    int rc = http_write(req->srv, change_job, &j);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return;
    }
    http_reply_json(rep, 200, entry_detail_json(req, &j.entry));
}

void http_h_message_delete(struct http_request *req, struct http_reply *rep)
{
    struct change_job j = {.user_id = req->user.id, .entry_id = req->id, .remove = 1};
    int rc = http_write(req->srv, change_job, &j);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return;
    }
    log_info("http: %s deleted message %lld%s", req->user.email, (long long)req->id,
             j.purged ? " for good" : " to Trash");
    if (j.purged)
        http_reply_json(rep, 200, json_pack("{s:I, s:b}", "id", (json_int_t)req->id, "deleted", 1));
    else
        http_reply_json(rep, 200, entry_detail_json(req, &j.entry));
}
