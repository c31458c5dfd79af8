/*
 * http_export.c — GET /api/v1/archive/export: an archive search as an mbox
 * download, for admins and operators (issue 5, item 5).
 *
 * The result is never held in memory: the response is libmicrohttpd's
 * content-reader (chunked), and each call of the reader hands out the next
 * piece of the current mboxrd record; when that is used up it takes the next
 * entry of a page of the search (at most EXPORT_PAGE entries in memory) and
 * reads its blob. The export owns its own store connection and blob store,
 * opened by the handler and closed in the response's free callback, so an
 * export that a slow client keeps open for long holds none of the request
 * pool's connections and nothing of the writer's.
 *
 * Paging is by entry ID (keyset): the search lists newest first (id DESC),
 * and each page asks for the entries below the last one written
 * (store_archive_query.before_id), so arrivals, the indexer making older
 * entries match the text, or retention never shift the export's place. An
 * entry is written at most once, and every entry that matched throughout the
 * export is written.
 *
 * mboxrd (the "From " line gives the envelope sender and the arrival time in
 * asctime form; lines that start with ">*From " get one more '>'; LF line
 * ends) is what mail clients and Python's mailbox module read. Exports are
 * audited ("archive.export", the filters as detail) before the first byte.
 *
 * Each running export holds a store connection and a slot: at most
 * HTTP_EXPORTS_MAX in all and HTTP_EXPORTS_PER_CUSTOMER per customer (an
 * operator's export of every customer counts as one more customer), so one
 * customer's admins cannot take every slot. An export whose client stops
 * reading is ended by the server's guard after HTTP_STREAM_STALL (the
 * connection is closed, http_export_free runs and the slot is free again).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#define EXPORT_PAGE 100        /* entries per search page */

/* The customers of the running exports (0: an operator's of all), one a slot. */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t slots[HTTP_EXPORTS_MAX];
static unsigned nslots;

/* 0 and a slot taken for customer, 1 when every slot or the customer's share
 * is taken (err says which). */
static int slot_take(int64_t customer, char *err, size_t errlen)
{
    pthread_mutex_lock(&slots_lock);
    unsigned mine = 0;
    for (unsigned i = 0; i < nslots; i++)
        mine += slots[i] == customer;
    int rc = 1;
    if (nslots >= HTTP_EXPORTS_MAX)
        snprintf(err, errlen, "too many exports running");
    else if (mine >= HTTP_EXPORTS_PER_CUSTOMER)
        snprintf(err, errlen, "too many exports running for this customer");
    else {
        slots[nslots++] = customer;
        rc = 0;
    }
    pthread_mutex_unlock(&slots_lock);
    return rc;
}

static void slot_give(int64_t customer)
{
    pthread_mutex_lock(&slots_lock);
    for (unsigned i = 0; i < nslots; i++)
        if (slots[i] == customer) {
            slots[i] = slots[--nslots];
            break;
        }
    pthread_mutex_unlock(&slots_lock);
}

/* ------------------------------------------------------------------ mboxrd */

struct mbox_enc {
    char *out; /* NULL: count only */
    size_t n;
    int bol;   /* at the beginning of a line */
    int cr;    /* a CR is pending: dropped if an LF follows */
    char last;
};

static void put(struct mbox_enc *e, char c)
{
    if (e->out)
        e->out[e->n] = c;
    e->n++;
    e->last = c;
}

/* 1 if s (len bytes) starts with ">*From ". */
static int from_line(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == '>')
        i++;
    return len - i >= 5 && memcmp(s + i, "From ", 5) == 0;
}

/* Feeds one piece of the message. A line never spans pieces here: the prefix
 * is our own CRLF-ended Received: lines. */
static void feed(struct mbox_enc *e, const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (e->cr) {
            e->cr = 0;
            if (c == '\n') {
                put(e, '\n');
                e->bol = 1;
                continue;
            }
            put(e, '\r'); /* a lone CR is data */
            e->bol = 0;
        }
        if (c == '\r') {
            e->cr = 1;
            continue;
        }
        if (e->bol && from_line(s + i, len - i))
            put(e, '>');
        put(e, (char)c);
        e->bol = c == '\n';
    }
}

static size_t encode(char *out, const char *from, const char *prefix, const unsigned char *body, size_t len)
{
    struct mbox_enc e = {.out = out, .bol = 1};
    for (const char *p = from; *p; p++)
        put(&e, *p);
    e.bol = 1;
    feed(&e, (const unsigned char *)prefix, strlen(prefix));
    feed(&e, body, len);
    if (e.cr)
        put(&e, '\r');
    if (e.last != '\n')
        put(&e, '\n');
    put(&e, '\n'); /* the empty line that ends a record */
    return e.n;
}

char *http_mbox_record(const char *sender, int64_t received, const char *prefix, const unsigned char *body,
                       size_t len, size_t *outlen)
{
    /* "From sender Thu Nov 27 21:53:37 2026": the sender without anything
     * that would split the line's fields. */
    char who[ADDR_MAX + 1];
    size_t w = 0;
    for (const char *p = sender && *sender ? sender : "MAILER-DAEMON"; *p && w + 1 < sizeof who; p++)
        who[w++] = (unsigned char)*p <= ' ' || *p == 0x7f ? '_' : *p;
    who[w] = '\0';
    struct tm tm;
    time_t t = (time_t)received;
    char date[40] = "Thu Jan  1 00:00:00 1970";
    if (gmtime_r(&t, &tm))
        strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
    char from[sizeof who + sizeof date + 8];
    snprintf(from, sizeof from, "From %s %s\n", who, date);

    size_t n = encode(NULL, from, prefix, body, len);
    char *out = malloc(n);
    if (!out)
        return NULL;
    *outlen = encode(out, from, prefix, body, len);
    return out;
}

/* ------------------------------------------------------------------ the stream */

struct http_export {
    struct store *st;
    struct blobstore *bs;
    struct store_archive_query q;
    char *text, *from, *to; /* q's strings, owned */
    char actor[ADDR_MAX + 1];

    struct store_archive_entry *page; /* EXPORT_PAGE */
    size_t npage, next;
    int64_t last_id;     /* the last entry written, 0: none yet */
    int started, done;
    int counted; /* holds a slot (of q.customer_id) */

    char *rec; /* the record being sent */
    size_t rec_len, rec_pos;
    uint64_t messages, bytes;
};

void http_export_free(void *arg)
{
    struct http_export *x = arg;
    if (!x->started)
        ; /* never read from: refused before it began (the handler said why), or a HEAD */
    else if (!x->done)
        log_warn("http: mbox export by %s ended early after %llu messages, %llu bytes", x->actor,
                 (unsigned long long)x->messages, (unsigned long long)x->bytes);
    else
        log_info("http: mbox export by %s: %llu messages, %llu bytes", x->actor, (unsigned long long)x->messages,
                 (unsigned long long)x->bytes);
    if (x->st)
        store_close(x->st);
    if (x->bs)
        blobstore_close(x->bs);
    free(x->text);
    free(x->from);
    free(x->to);
    free(x->page);
    free(x->rec);
    if (x->counted)
        slot_give(x->q.customer_id);
    free(x);
}

static int page_add(const struct store_archive_entry *e, void *arg)
{
    struct http_export *x = arg;
    if (x->npage >= EXPORT_PAGE)
        return 1; /* more than asked for: stop */
    x->page[x->npage++] = *e;
    return 0;
}

/* Loads the next page: the entries older than the last one written (keyset
 * paging on the id, newest first), so entries purged or added meanwhile never
 * shift the export's place; entries newer than its first page are not in it.
 * 1, 0 when there are no more, -1 on a store error. */
static int next_page(struct http_export *x)
{
    x->q.offset = 0;
    x->q.limit = EXPORT_PAGE;
    x->q.before_id = x->last_id;
    x->npage = x->next = 0;
    if (store_archive_search(x->st, &x->q, page_add, x, NULL) != STORE_OK)
        return -1;
    return x->npage > 0;
}

/* Makes the next entry's record: 1, 0 at the end, -1 on an error. */
static int next_record(struct http_export *x)
{
    for (;;) {
        if (x->next >= x->npage) {
            int rc = next_page(x);
            if (rc <= 0)
                return rc;
        }
        size_t k = x->next++;
        const struct store_archive_entry *e = &x->page[k];
        x->last_id = e->id;
        unsigned char *data = NULL;
        size_t len = 0;
        if (blob_get(x->bs, e->blob, &data, &len) != 0) {
            /* purged meanwhile, or a damaged blob (logged by blob_get) */
            log_warn("http: mbox export by %s: archive entry %lld skipped: cannot read blob %s", x->actor,
                     (long long)e->id, e->blob);
            continue;
        }
        x->rec = http_mbox_record(e->sender, e->received, e->prefix, data, len, &x->rec_len);
        free(data);
        if (!x->rec)
            return -1;
        x->rec_pos = 0;
        x->messages++;
        return 1;
    }
}

ssize_t http_export_read(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct http_export *x = arg;
    (void)pos;
    x->started = 1;
    while (x->rec_pos == x->rec_len) {
        free(x->rec);
        x->rec = NULL;
        x->rec_len = x->rec_pos = 0;
        if (x->done)
            return HTTP_STREAM_END;
        int rc = next_record(x);
        if (rc < 0)
            return HTTP_STREAM_ERROR; /* the client sees a cut download, never a short "complete" one */
        if (rc == 0) {
            x->done = 1;
            return HTTP_STREAM_END;
        }
    }
    size_t n = x->rec_len - x->rec_pos < max ? x->rec_len - x->rec_pos : max;
    memcpy(buf, x->rec + x->rec_pos, n);
    x->rec_pos += n;
    x->bytes += n;
    return (ssize_t)n;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int http_export_open(const struct config *cfg, const struct store_archive_query *q, const char *actor,
                     struct http_export **out, char *err, size_t errlen)
{
    *out = NULL;
    if (slot_take(q->customer_id, err, errlen) != 0)
        return 1;
    struct http_export *x = calloc(1, sizeof *x);
    if (!x) {
        slot_give(q->customer_id);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* From here on http_export_free undoes everything, the slot included. */
    x->counted = 1;
    snprintf(x->actor, sizeof x->actor, "%s", actor);
    x->q = *q; /* the scope of an admin or operator: the customer, never a user's addresses */
    x->q.user_addrs = NULL;
    x->q.nuser_addrs = 0;
    x->q.text = x->text = dup_or_null(q->text);
    x->q.from = x->from = dup_or_null(q->from);
    x->q.to = x->to = dup_or_null(q->to);
    x->page = calloc(EXPORT_PAGE, sizeof *x->page);
    snprintf(err, errlen, "out of memory");
    int ok = x->page && (!q->text || x->text) && (!q->from || x->from) && (!q->to || x->to) &&
             store_open(cfg, &x->st, err, errlen) == STORE_OK &&
             blobstore_open(cfg, &x->bs, err, errlen) == 0;
    if (!ok) {
        http_export_free(x);
        return -1;
    }
    *out = x;
    return 0;
}

/* ------------------------------------------------------------------ the handler */

/* The filters of an export, for its audit row: "q=... from=... after=...". */
static void describe(struct http_request *req, char *out, size_t outlen)
{
    static const char *const keys[] = {"customer", "q", "from", "to", "after", "before", "direction", "has_attachment"};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && n < outlen; i++) {
        const char *v = http_query(req, keys[i]);
        if (v && *v)
            n += (size_t)snprintf(out + n, outlen - n, "%s%s=%s", n ? " " : "", keys[i], v);
    }
    if (!out[0])
        snprintf(out, outlen, "everything");
    for (char *p = out; *p; p++) /* it goes into the log too */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void http_h_archive_export(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    struct store_archive_query q;
    if (http_archive_search_load(req, &s, &q, rep) != 0)
        return;
    struct http_export *x = NULL;
    char err[256];
    int rc = http_export_open(http_config(req->srv), &q, req->user.email, &x, err, sizeof err);
    if (rc != 0) {
        http_archive_scope_clear(&s);
        if (rc == 1) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s, try again later", err);
            http_reply_error_code(rep, 429, "too_many_exports", msg);
            rep->retry_after = 30;
        } else {
            log_err("http: mbox export by %s: %s", req->user.email, err);
            http_reply_error(rep, 500, "internal error");
        }
        return;
    }

    char detail[512], target[160];
    describe(req, detail, sizeof detail);
    if (s.customer_id)
        snprintf(target, sizeof target, "customer:%s", s.customer);
    else
        snprintf(target, sizeof target, "archive:all");
    rc = http_audit(req, s.customer_id, "archive.export", target, detail);
    http_archive_scope_clear(&s);
    if (rc != STORE_OK) {
        http_export_free(x);
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    log_info("http: %s (%s) exports %s as mbox (%s)", req->user.email, directory_role_name(req->user.role), target,
             detail);

    rep->status = 200;
    rep->content_type = "application/mbox";
    rep->stream_read = http_export_read;
    rep->stream_free = http_export_free;
    rep->stream_arg = x;
    char day[16];
    time_t now = (time_t)req->now;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, sizeof day, "%Y%m%d", &tm);
    snprintf(rep->disposition, sizeof rep->disposition, "attachment; filename=\"archive-%s.mbox\"", day);
}
