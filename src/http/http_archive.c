/*
 * http_archive.c — the archive over the API (issue 5, SPEC.md "HTTP API"):
 * search, one entry's parsed view, its raw message and attachments, and
 * release. The records and the search are store.h's "archive" section; the
 * release itself is archive.h's.
 *
 * Scope. Every handler starts from the session's role (http_archive_scope):
 * a user sees the entries of their customer where one of their addresses or
 * aliases is a participant, an admin their customer's entries, an operator
 * all. An entry outside the scope answers exactly like one that does not
 * exist (404), so IDs cannot be probed. A user is shown only the envelope
 * recipients they may know: all of them on mail they sent, otherwise only
 * their own (a Bcc stays blind).
 *
 * Audit. An admin or operator reading an entry that is not their own mail
 * (view, raw, attachment) writes an "archive.view" row first; when that row
 * cannot be written the content is not shown. A release's row is written by
 * archive_release_run, in the transaction of the release itself.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "archive/archive.h"
#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"

#define ARCHIVE_PAGE_DEFAULT 50

static const char *direction_name(int d)
{
    return d == DIR_OUTBOUND ? "outbound" : "inbound";
}

/* ------------------------------------------------------------------ scope */

static int add_addr(struct http_archive_scope *s, const char *addr)
{
    char **a = realloc(s->addrs, (s->naddrs + 1) * sizeof *a);
    if (!a)
        return -1;
    s->addrs = a;
    if (!(a[s->naddrs] = strdup(addr)))
        return -1;
    s->naddrs++;
    return 0;
}

struct alias_ctx {
    struct http_archive_scope *s;
    int oom;
};

static int add_alias(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    struct alias_ctx *c = arg;
    if (add_addr(c->s, alias) != 0) {
        c->oom = 1;
        return 1; /* stop */
    }
    return 0;
}

void http_archive_scope_clear(struct http_archive_scope *s)
{
    for (size_t i = 0; i < s->naddrs; i++)
        free(s->addrs[i]);
    free(s->addrs);
    memset(s, 0, sizeof *s);
}

int http_archive_scope_load(struct http_request *req, struct http_archive_scope *s, struct http_reply *rep)
{
    memset(s, 0, sizeof *s);
    s->role = req->user.role;
    struct store_domain d;
    struct store_customer c;
    struct alias_ctx ac = {.s = s};
    if (store_domain_get_by_id(req->st, req->user.domain_id, &d) != STORE_OK ||
        store_customer_get_by_id(req->st, d.customer_id, &c) != STORE_OK || add_addr(s, req->user.email) != 0 ||
        store_alias_list(req->st, req->user.id, add_alias, &ac) != STORE_OK || ac.oom) {
        http_archive_scope_clear(s);
        http_reply_error(rep, 500, "internal error");
        return -1;
    }
    const char *want = http_query(req, "customer");
    if (want && !*want)
        want = NULL;
    if (s->role == ROLE_OPERATOR) {
        if (want) {
            int rc = store_customer_get(req->st, want, &c);
            if (rc != STORE_OK) {
                http_archive_scope_clear(s);
                if (rc == STORE_NOTFOUND)
                    http_reply_error(rep, 400, "customer: no such customer");
                else
                    http_reply_error(rep, 500, "internal error");
                return -1;
            }
            s->customer_id = c.id;
            snprintf(s->customer, sizeof s->customer, "%s", c.name);
        }
        return 0;
    }
    if (want && strcmp(want, c.name) != 0) {
        http_archive_scope_clear(s);
        http_reply_error(rep, 403, "customer: only your own customer's archive");
        return -1;
    }
    s->customer_id = c.id;
    snprintf(s->customer, sizeof s->customer, "%s", c.name);
    return 0;
}

struct addr_match {
    const struct http_archive_scope *s;
    int found;
};

static int match_addr(const char *addr, void *arg)
{
    struct addr_match *m = arg;
    for (size_t i = 0; i < m->s->naddrs; i++)
        if (strcasecmp(addr, m->s->addrs[i]) == 0) {
            m->found = 1;
            return 1; /* stop */
        }
    return 0;
}

/* 1 if one of s's own addresses is a participant of kind kind (-1: either)
 * of entry id, 0 if not, -1 on a store error. */
static int own_participant(struct store *st, const struct http_archive_scope *s, int64_t id, int kind)
{
    for (int k = ARCHIVE_ADDR_FROM; k <= ARCHIVE_ADDR_TO; k++) {
        if (kind >= 0 && k != kind)
            continue;
        struct addr_match m = {.s = s};
        int rc = store_archive_addrs(st, id, k, match_addr, &m);
        if (rc != STORE_OK && !m.found)
            return -1;
        if (m.found)
            return 1;
    }
    return 0;
}

int http_archive_in_scope(struct store *st, const struct http_archive_scope *s, const struct store_archive_entry *e)
{
    if (s->role == ROLE_OPERATOR)
        return 1;
    if (e->customer_id != s->customer_id)
        return 0;
    if (s->role == ROLE_ADMIN)
        return 1;
    return own_participant(st, s, e->id, -1);
}

/* The entry if it is in the scope: STORE_OK, STORE_NOTFOUND (absent or
 * outside: the same answer), STORE_ERR. */
static int scoped_entry(struct http_request *req, const struct http_archive_scope *s, struct store_archive_entry *e)
{
    int rc = store_archive_get(req->st, req->id, e);
    if (rc != STORE_OK)
        return rc;
    int in = http_archive_in_scope(req->st, s, e);
    return in < 0 ? STORE_ERR : in ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ query parameters */


/* A non-negative decimal no larger than max; def when absent; -1 if bad. */
static int bad_param(struct http_reply *rep, const char *key, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", key, what);
    http_reply_error(rep, 400, msg);
    return -1;
}

static const char *text_param(struct http_request *req, const char *key, int *bad)
{
    const char *v = http_query(req, key);
    if (v && strlen(v) > HTTP_ARCHIVE_TEXT_MAX)
        *bad = 1;
    return v && *v ? v : NULL;
}

/* http_archive_search_load's query string: 0, or -1 with a 400 in rep. */
static int query_parse(struct http_request *req, const struct http_archive_scope *s, struct store_archive_query *q,
                       struct http_reply *rep)
{
    memset(q, 0, sizeof *q);
    q->direction = -1;
    q->has_attachment = -1;
    /* A user: their addresses within their customer's archive. */
    q->customer_id = s->customer_id;
    if (s->role == ROLE_USER) {
        q->user_addrs = (const char *const *)s->addrs;
        q->nuser_addrs = s->naddrs;
    }
    static const char *const texts[] = {"q", "from", "to"};
    const char **fields[] = {&q->text, &q->from, &q->to};
    for (size_t i = 0; i < 3; i++) {
        int bad = 0;
        *fields[i] = text_param(req, texts[i], &bad);
        if (bad)
            return bad_param(rep, texts[i], "too long");
    }
    static const char *const dates[] = {"after", "before"};
    int64_t *dvals[] = {&q->after, &q->before};
    for (size_t i = 0; i < 2; i++) {
        const char *v = http_query(req, dates[i]);
        if (v && *v && time_parse_date(v, dvals[i]) != 0)
            return bad_param(rep, dates[i], "not a date (YYYY-MM-DD, ISO 8601 or seconds since the epoch)");
    }
    const char *dir = http_query(req, "direction");
    if (dir && *dir) {
        if (strcmp(dir, "inbound") == 0)
            q->direction = DIR_INBOUND;
        else if (strcmp(dir, "outbound") == 0)
            q->direction = DIR_OUTBOUND;
        else
            return bad_param(rep, "direction", "inbound or outbound");
    }
    const char *att = http_query(req, "has_attachment");
    if (att && *att) {
        if (strcmp(att, "1") == 0 || strcmp(att, "true") == 0)
            q->has_attachment = 1;
        else if (strcmp(att, "0") == 0 || strcmp(att, "false") == 0)
            q->has_attachment = 0;
        else
            return bad_param(rep, "has_attachment", "true or false (1 or 0)");
    }
    long long offset, limit;
    if (http_query_number(req, "offset", 0, 0, INT32_MAX, &offset, rep) != 0 ||
        http_query_number(req, "limit", ARCHIVE_PAGE_DEFAULT, 1, HTTP_LIST_LIMIT_MAX, &limit, rep) != 0)
        return -1;
    q->offset = (uint64_t)offset;
    q->limit = (unsigned)limit;
    return 0;
}

int http_archive_search_load(struct http_request *req, struct http_archive_scope *s, struct store_archive_query *q,
                             struct http_reply *rep)
{
    if (http_archive_scope_load(req, s, rep) != 0)
        return -1;
    if (query_parse(req, s, q, rep) != 0) {
        http_archive_scope_clear(s);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ listing */

struct collect_addrs {
    json_t *list;
    const struct http_archive_scope *only; /* NULL: every address; else only these */
};

static int collect_addr(const char *addr, void *arg)
{
    struct collect_addrs *c = arg;
    if (c->only) {
        size_t i = 0;
        while (i < c->only->naddrs && strcasecmp(addr, c->only->addrs[i]) != 0)
            i++;
        if (i == c->only->naddrs)
            return 0;
    }
    json_array_append_new(c->list, http_json_text(addr));
    return 0;
}

/* The envelope recipients the scope may see: all of them for an admin or
 * operator and for a user who sent the message, else the user's own. NULL on a
 * store error. */
static json_t *visible_rcpts(struct store *st, const struct http_archive_scope *s, int64_t id)
{
    struct collect_addrs c = {.list = json_array()};
    if (s->role == ROLE_USER) {
        int sent = own_participant(st, s, id, ARCHIVE_ADDR_FROM);
        if (sent < 0) {
            json_decref(c.list);
            return NULL;
        }
        if (!sent)
            c.only = s;
    }
    if (store_archive_addrs(st, id, ARCHIVE_ADDR_TO, collect_addr, &c) != STORE_OK) {
        json_decref(c.list);
        return NULL;
    }
    return c.list;
}

/* A list row (SPEC: id, date, direction, from, to, subject). Until the indexer
 * has been at an entry its header fields come from the message's header. */
static json_t *entry_json(struct http_request *req, const struct http_archive_scope *s,
                          const struct store_archive_entry *e)
{
    json_t *to = visible_rcpts(req->st, s, e->id);
    if (!to)
        return NULL;
    const char *from = e->from_hdr, *subject = e->subject;
    int64_t date = e->date;
    struct http_summary sum;
    if (!e->indexed && http_summary_get(http_summaries(req->srv), req->blobs, e->blob, &sum) == 0) {
        from = sum.from;
        subject = sum.subject;
        date = sum.date;
    }
    char when[64], received[64];
    time_iso8601((time_t)(date ? date : e->received), when, sizeof when);
    time_iso8601((time_t)e->received, received, sizeof received);
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:b}", "id", (json_int_t)e->id, "date", when,
                     "received", received, "direction", direction_name(e->direction), "from",
                     http_json_text(from[0] ? from : e->sender), "envelope_from", http_json_text(e->sender), "to",
                     to, "subject", http_json_text(subject), "size", (json_int_t)e->size, "has_attachment",
                     e->has_attachment);
}

struct page {
    struct store_archive_entry *e;
    size_t n, cap;
};

static int page_add(const struct store_archive_entry *e, void *arg)
{
    struct page *p = arg;
    if (p->n == p->cap)
        return 1; /* more than asked for: stop */
    p->e[p->n++] = *e;
    return 0;
}

void http_h_archive_list(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    struct store_archive_query q;
    if (http_archive_search_load(req, &s, &q, rep) != 0)
        return;
    struct page p = {.cap = q.limit};
    p.e = calloc(p.cap, sizeof *p.e);
    uint64_t total = 0;
    json_t *msgs = json_array();
    int rc = p.e ? store_archive_search(req->st, &q, page_add, &p, &total) : STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < p.n; i++) {
        json_t *row = entry_json(req, &s, &p.e[i]);
        if (!row)
            rc = STORE_ERR;
        json_array_append_new(msgs, row);
    }
    free(p.e);
    http_archive_scope_clear(&s);
    if (rc != STORE_OK) {
        json_decref(msgs);
        http_reply_error(rep, 500, "internal error");
        return;
    }
    /* Past ARCHIVE_COUNT_MAX the count stops: "total" is then a floor. */
    int exact = total <= ARCHIVE_COUNT_MAX;
    http_reply_json(rep, 200,
                    json_pack("{s:I, s:b, s:I, s:I, s:o}", "total", (json_int_t)(exact ? total : ARCHIVE_COUNT_MAX),
                              "total_exact", exact, "offset", (json_int_t)q.offset, "limit", (json_int_t)q.limit,
                              "messages", msgs));
}

/* ------------------------------------------------------------------ audit */

struct audit_job {
    struct store_audit a;
};

static int audit_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    return store_audit_add(st, &((struct audit_job *)arg)->a);
}

int http_audit(struct http_request *req, int64_t customer_id, const char *action, const char *target,
               const char *detail)
{
    struct audit_job j = {.a = {.at = req->now, .customer_id = customer_id}};
    snprintf(j.a.actor, sizeof j.a.actor, "%s", req->user.email);
    snprintf(j.a.action, sizeof j.a.action, "%s", action);
    snprintf(j.a.target, sizeof j.a.target, "%s", target);
    snprintf(j.a.detail, sizeof j.a.detail, "%s", detail ? detail : "");
    int rc = http_write(req->srv, audit_job, &j);
    if (rc != STORE_OK)
        log_err("http: cannot record audit %s of %s by %s (%d)", action, target, req->user.email, rc);
    return rc;
}

/* An admin or operator reading someone else's mail: recorded before it is
 * shown. 0 to go on, -1 with the reply set. */
static int audit_view(struct http_request *req, const struct http_archive_scope *s,
                      const struct store_archive_entry *e, const char *what, struct http_reply *rep)
{
    if (s->role == ROLE_USER)
        return 0;
    int own = own_participant(req->st, s, e->id, -1);
    if (own == 1)
        return 0;
    char target[64];
    snprintf(target, sizeof target, "archive:%lld", (long long)e->id);
    int rc = own < 0 ? STORE_ERR : http_audit(req, e->customer_id, "archive.view", target, what);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message");
        return -1;
    }
    log_info("http: %s (%s) read archive entry %lld (%s)", req->user.email, directory_role_name(s->role),
             (long long)e->id, what);
    return 0;
}

/* ------------------------------------------------------------------ one entry */

static void entry_close(struct http_archive_scope *s, struct store_archive_entry *e)
{
    http_archive_scope_clear(s);
    free(e);
}

/* The scope and the entry of a handler on /api/v1/archive/:id... (malloc'd:
 * the entry is large; free both with entry_close). An admin or operator
 * reading someone else's mail ("view", "raw", ... in what) is audited first;
 * what NULL: nothing is shown, no audit. NULL with the reply set when there is
 * nothing to go on with. */
static struct store_archive_entry *entry_open(struct http_request *req, struct http_archive_scope *s,
                                              const char *what, struct http_reply *rep)
{
    struct store_archive_entry *e = malloc(sizeof *e);
    if (!e) {
        http_reply_error(rep, 500, "internal error");
        return NULL;
    }
    if (http_archive_scope_load(req, s, rep) != 0) {
        free(e);
        return NULL;
    }
    int rc = scoped_entry(req, s, e);
    if (rc != STORE_OK)
        http_reply_store_error(rep, rc, "no such message");
    if (rc != STORE_OK || (what && audit_view(req, s, e, what, rep) != 0)) {
        entry_close(s, e);
        return NULL;
    }
    return e;
}

/* The list row, the envelope and the parsed message; NULL on failure (logged). */
static json_t *entry_detail_json(struct http_request *req, const struct http_archive_scope *s,
                                 const struct store_archive_entry *e)
{
    json_t *j = entry_json(req, s, e);
    json_t *from = json_array();
    if (!j || !from) {
        json_decref(j);
        json_decref(from);
        return NULL;
    }
    if (e->sender[0])
        json_array_append_new(from, http_json_text(e->sender));
    json_object_set_new(j, "participants", json_pack("{s:o, s:O}", "from", from, "to", json_object_get(j, "to")));
    json_object_set_new(j, "queue_id", json_string(e->msg_id));
    json_object_set_new(j, "indexed", json_boolean(e->indexed));
    char cid_prefix[96];
    snprintf(cid_prefix, sizeof cid_prefix, "/api/v1/archive/%lld/attachments/", (long long)e->id);
    if (http_view_add(req, e->blob, cid_prefix, j) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void http_h_archive_get(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    struct store_archive_entry *e = entry_open(req, &s, "view", rep);
    if (!e)
        return;
    json_t *j = entry_detail_json(req, &s, e);
    if (j)
        http_reply_json(rep, 200, j);
    else
        http_reply_error(rep, 500, "internal error");
    entry_close(&s, e);
}

void http_h_archive_raw(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    struct store_archive_entry *e = entry_open(req, &s, "raw", rep);
    if (!e)
        return;
    char filename[64];
    snprintf(filename, sizeof filename, "archive-%lld.eml", (long long)e->id);
    http_reply_message_raw(req, rep, e->prefix, e->blob, filename);
    entry_close(&s, e);
}

void http_h_archive_attachment(struct http_request *req, struct http_reply *rep)
{
    struct http_archive_scope s;
    char what[48];
    snprintf(what, sizeof what, "attachment %lld", (long long)req->n);
    struct store_archive_entry *e = entry_open(req, &s, what, rep);
    if (!e)
        return;
    http_reply_attachment(req, rep, e->blob, e->id, req->n);
    entry_close(&s, e);
}

/* ------------------------------------------------------------------ release */

static int release_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct archive_release *r = arg;
    return archive_release_run(st, r, time_now());
}

struct addr_list {
    char **v;
    size_t n;
    int oom;
};

static void addr_list_free(struct addr_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int addr_list_add(struct addr_list *l, const char *addr)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], addr) == 0)
            return 0; /* once each */
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(v[l->n] = strdup(addr)))
        return -1;
    l->n++;
    return 0;
}

static int rcpt_add(const char *addr, void *arg)
{
    struct addr_list *l = arg;
    if (addr_list_add(l, addr) != 0) {
        l->oom = 1;
        return 1; /* stop */
    }
    return 0;
}

/* The addresses a release without "to" goes to: the original recipients; for
 * a user, only their own among them (their own address when they were not
 * one: mail they sent comes back to them). 0 or -1. */
static int default_rcpts(struct store *st, const struct http_archive_scope *s, const struct store_archive_entry *e,
                         struct addr_list *out)
{
    struct addr_list all = {0};
    if (store_archive_addrs(st, e->id, ARCHIVE_ADDR_TO, rcpt_add, &all) != STORE_OK || all.oom) {
        addr_list_free(&all);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        int mine = 0;
        for (size_t k = 0; k < s->naddrs; k++)
            mine |= strcasecmp(all.v[i], s->addrs[k]) == 0;
        if (s->role != ROLE_USER || mine)
            rc = addr_list_add(out, all.v[i]);
    }
    addr_list_free(&all);
    if (rc == 0 && out->n == 0 && s->role == ROLE_USER)
        rc = addr_list_add(out, s->addrs[0]);
    return rc;
}

/* "to": a non-empty array of addresses, canonicalised. 0, or -1 with a 400. */
static int parse_to(struct http_request *req, json_t *to, struct addr_list *out, struct http_reply *rep)
{
    size_t max = http_config(req->srv)->max_recipients ? http_config(req->srv)->max_recipients : 100;
    if (!json_is_array(to) || json_array_size(to) == 0)
        return bad_param(rep, "to", "a list of one or more addresses");
    if (json_array_size(to) > max)
        return bad_param(rep, "to", "too many recipients");
    size_t i;
    json_t *v;
    json_array_foreach(to, i, v)
    {
        const char *a = json_string_value(v);
        char canon[ADDR_MAX + 1];
        if (!a || !addr_is_valid(a) || addr_canonical(a, canon, sizeof canon) != 0)
            return bad_param(rep, "to", "not an address");
        if (addr_list_add(out, canon) != 0) {
            http_reply_error(rep, 500, "internal error");
            return -1;
        }
    }
    return 0;
}

void http_h_archive_release(struct http_request *req, struct http_reply *rep)
{
    const char *key;
    json_t *v;
    json_object_foreach(req->json, key, v)
    {
        if (strcmp(key, "to") != 0) {
            http_reply_error(rep, 400, "only \"to\" (a list of addresses) may be given");
            return;
        }
    }
    struct http_archive_scope s;
    struct store_archive_entry *e = entry_open(req, &s, NULL, rep);
    if (!e)
        return;
    struct addr_list to = {0};
    json_t *jto = json_object_get(req->json, "to");
    if (jto && !json_is_null(jto) ? parse_to(req, jto, &to, rep) != 0 : default_rcpts(req->st, &s, e, &to) != 0) {
        if (!rep->status)
            http_reply_error(rep, 500, "internal error");
        goto out;
    }
    if (to.n == 0) {
        http_reply_error(rep, 400, "to: the message has no recipients to release it to");
        goto out;
    }
    for (size_t i = 0; i < to.n; i++) {
        if (!archive_release_allowed(req->st, &req->user, e, to.v[i])) {
            char msg[ADDR_MAX + 64];
            snprintf(msg, sizeof msg, "not allowed to release to %s", to.v[i]);
            http_reply_error(rep, 403, msg);
            goto out;
        }
    }
    struct archive_release r = {
        .entry_id = e->id, .to = (const char *const *)to.v, .nto = to.n, .actor = req->user.email};
    /* The queue ID is the job's output: http_write_queued reads it once the
     * write has committed and wakes the delivery engine for it. */
    int rc = http_write_queued(req->srv, release_job, &r, r.queue_id);
    if (rc != STORE_OK) {
        log_err("http: cannot release archive entry %lld for %s (%d)", (long long)e->id, req->user.email, rc);
        http_reply_store_error(rep, rc, "no such message");
        goto out;
    }
    /* archive_release_run logged it, with its queue ID, and wrote the audit row. */
    http_reply_json(rep, 202,
                    json_pack("{s:o, s:I, s:I}", "queue_id", r.queue_id[0] ? json_string(r.queue_id) : json_null(),
                              "queued", (json_int_t)r.queued, "to_mailbox", (json_int_t)r.to_mailbox));
out:
    addr_list_free(&to);
    entry_close(&s, e);
}
