/*
 * http_admin_ops.c — the control panel's operational API (issue 11): the
 * outage dashboard (continuity status, the events timeline, mail per minute)
 * and the queue page (list, flush, hold, release, delete), under
 * /api/v1/admin/, ROUTE_ADMIN in the route table.
 *
 * The JSON is admin.h's views, the same lifeboatctl prints with --json; the
 * changes are the store's queue calls lifeboatctl makes, with the scope's
 * customer instead of lifeboatctl's "everyone". An admin sees their customer's
 * domains and the queued mail in their share (store.h); another customer's
 * domain or message answers 404, exactly like a missing one. Each change and
 * its audit row are one writer job, so neither is committed without the other.
 * A flush or a release kicks the queue runner when it commits (the
 * on_queued hook), so the mail goes at once rather than at the next poll.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "http/http_internal.h"
#include "util/log.h"
#include "util/queueid.h"

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000

/* Call with the builder's result already in hand: reply_view(rep, f(..., &v), v)
 * would read v before f sets it (the arguments are unsequenced). */
static void reply_view(struct http_reply *rep, int rc, json_t *view)
{
    if (rc == STORE_OK)
        http_reply_json(rep, 200, view);
    else
        http_reply_error(rep, 500, "internal error");
}

/* ------------------------------------------------------------------ the dashboard */

/* GET /api/v1/admin/continuity[?domain=D]: admin_continuity_view. */
void http_h_admin_continuity(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_domain(req, &s, &d, rep) != 0)
        return;
    json_t *view;
    int rc = admin_continuity_view(req->st, s.customer_id, d.id ? &d : NULL, &view);
    reply_view(rep, rc, view);
}

/* GET /api/v1/admin/events[?domain=D][&limit=N]: admin_events_view, newest first. */
void http_h_admin_events(struct http_request *req, struct http_reply *rep)
{
    long long limit;
    if (http_query_number(req, "limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_LIMIT_MAX, &limit, rep) != 0)
        return;
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_domain(req, &s, &d, rep) != 0)
        return;
    json_t *view;
    int rc = admin_events_view(req->st, s.customer_id, d.id, (size_t)limit, &view);
    reply_view(rep, rc, view);
}

/* GET /api/v1/admin/stats[?domain=D][&hours=H]: admin_stats_view. */
void http_h_admin_stats(struct http_request *req, struct http_reply *rep)
{
    long long hours;
    if (http_query_number(req, "hours", ADMIN_STATS_HOURS_DEFAULT, 1, ADMIN_STATS_HOURS_MAX, &hours, rep) != 0)
        return;
    struct http_admin_scope s;
    struct store_domain d;
    if (http_admin_scope_domain(req, &s, &d, rep) != 0)
        return;
    json_t *view;
    int rc = admin_stats_view(req->st, s.customer_id, d.id ? &d : NULL, (unsigned)hours, req->now, &view);
    reply_view(rep, rc, view);
}

/* ------------------------------------------------------------------ the queue */

/* GET /api/v1/admin/queue: admin_queue_view of the scope. */
void http_h_admin_queue(struct http_request *req, struct http_reply *rep)
{
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return;
    json_t *view;
    int rc = admin_queue_view(req->st, s.customer_id, &view);
    reply_view(rep, rc, view);
}

enum queue_op { OP_FLUSH, OP_HOLD, OP_RELEASE, OP_DELETE };

struct queue_job {
    int op;
    int64_t customer_id;       /* the scope's: 0 for an operator's "everyone" */
    char id[QUEUEID_SIZE];     /* hold, release, delete */
    char domain[DOMAIN_MAX + 1]; /* flush: "" for all of the scope */
    unsigned changed;          /* out */
    struct store_audit a;
};

static int queue_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct queue_job *j = arg;
    int rc;
    switch (j->op) {
    case OP_FLUSH:
        rc = store_queue_flush_scoped(st, j->customer_id, j->domain[0] ? j->domain : NULL, &j->changed);
        snprintf(j->a.detail, sizeof j->a.detail, "%u recipient(s) made due now", j->changed);
        break;
    case OP_HOLD:
    case OP_RELEASE:
        rc = store_queue_hold(st, j->id, j->customer_id, j->op == OP_HOLD, &j->changed);
        snprintf(j->a.detail, sizeof j->a.detail, "%u recipient(s) %s", j->changed,
                 j->op == OP_HOLD ? "put on hold" : "released");
        break;
    default:
        rc = store_queue_delete(st, j->id, j->customer_id);
        snprintf(j->a.detail, sizeof j->a.detail, "deleted from the queue");
        break;
    }
    return rc == STORE_OK ? store_audit_add(st, &j->a) : rc;
}

static void audit_init(struct http_request *req, struct queue_job *j, int64_t customer_id, const char *action,
                       const char *target)
{
    j->a.at = req->now;
    j->a.customer_id = customer_id;
    snprintf(j->a.actor, sizeof j->a.actor, "%s", req->user.email);
    snprintf(j->a.action, sizeof j->a.action, "%s", action);
    snprintf(j->a.target, sizeof j->a.target, "%.*s", (int)sizeof j->a.target - 1, target);
}

/* POST /api/v1/admin/queue/flush {"domain"?}: the scope's queued mail (or one
 * domain's) that is not held, due now. */
void http_h_admin_queue_flush(struct http_request *req, struct http_reply *rep)
{
    const char *key, *name;
    json_t *v;
    json_object_foreach(req->json, key, v)
    {
        if (strcmp(key, "domain") != 0) {
            http_reply_error_code(rep, 400, "invalid", "the body is {\"domain\"?: a domain name}");
            return;
        }
    }
    if (http_body_string(req, "domain", &name, rep) != 0)
        return;
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return;
    struct queue_job j = {.op = OP_FLUSH, .customer_id = s.customer_id};
    if (name && *name) {
        struct store_domain d;
        if (http_admin_domain(req, &s, name, &d, rep) != 0)
            return;
        snprintf(j.domain, sizeof j.domain, "%s", d.name);
        char target[DOMAIN_MAX + 16];
        snprintf(target, sizeof target, "domain:%s", d.name);
        audit_init(req, &j, d.customer_id, "queue.flush", target);
    } else {
        char target[160] = "queue";
        if (s.customer_id)
            snprintf(target, sizeof target, "customer:%s", s.customer);
        audit_init(req, &j, s.customer_id, "queue.flush", target);
    }
    int rc = http_write_queued(req->srv, queue_job, &j, "flush");
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, NULL);
        return;
    }
    log_info("http: %s flushed the queue%s%s: %u recipient(s) due now", req->user.email, j.domain[0] ? " of " : "",
             j.domain, j.changed);
    http_reply_json(rep, 200, json_pack("{s:o, s:I}", "domain", j.domain[0] ? admin_jstr(j.domain) : json_null(),
                                        "flushed", (json_int_t)j.changed));
}

/* The customer a message's audit row belongs to: the scope's, or for an
 * operator the sender's, else the first hosted recipient domain's (0: none). */
struct owner {
    struct store *st;
    int64_t customer_id;
};

static int rcpt_owner(const struct store_rcpt *r, void *arg)
{
    struct owner *o = arg;
    struct store_domain d;
    if (store_domain_get(o->st, r->domain, &d) != STORE_OK)
        return 0;
    o->customer_id = d.customer_id;
    return 1;
}

static int64_t message_customer(struct http_request *req, const struct http_admin_scope *s, const char *id)
{
    if (s->customer_id)
        return s->customer_id;
    struct store_msg m;
    if (store_message_get(req->st, id, &m) == STORE_OK && m.sender_customer_id)
        return m.sender_customer_id;
    struct owner o = {req->st, 0};
    store_queue_rcpts(req->st, id, 0, rcpt_owner, &o);
    return o.customer_id;
}

/* POST queue/:s/hold, POST queue/:s/release, DELETE queue/:s: a message of
 * the scope's share. A queue ID that is malformed, missing or another
 * customer's answers the same 404. */
static void message_op(struct http_request *req, struct http_reply *rep, int op)
{
    static const char *const actions[] = {[OP_HOLD] = "queue.hold", [OP_RELEASE] = "queue.release",
                                          [OP_DELETE] = "queue.delete"};
    struct http_admin_scope s;
    if (http_admin_scope_load(req, &s, rep) != 0)
        return;
    struct queue_job j = {.op = op, .customer_id = s.customer_id};
    const char *arg = req->arg[0];
    size_t n = strlen(arg);
    for (size_t i = 0; n == QUEUEID_LEN && i <= n; i++)
        j.id[i] = (char)toupper((unsigned char)arg[i]);
    if (n != QUEUEID_LEN || !queueid_is_valid(j.id)) {
        http_reply_store_error(rep, STORE_NOTFOUND, "no such message in the queue");
        return;
    }
    char target[QUEUEID_SIZE + 8];
    snprintf(target, sizeof target, "queue:%s", j.id);
    audit_init(req, &j, message_customer(req, &s, j.id), actions[op], target);
    int rc = op == OP_RELEASE ? http_write_queued(req->srv, queue_job, &j, j.id) : http_write(req->srv, queue_job, &j);
    if (rc != STORE_OK) {
        http_reply_store_error(rep, rc, "no such message in the queue");
        return;
    }
    log_info("http: %s: %s by %s (%s)", j.id, actions[op], req->user.email, j.a.detail);
    if (op == OP_DELETE)
        http_reply_json(rep, 200, json_pack("{s:s, s:b}", "id", j.id, "deleted", 1));
    else
        http_reply_json(rep, 200, json_pack("{s:s, s:b, s:I}", "id", j.id, "held", op == OP_HOLD, "changed",
                                            (json_int_t)j.changed));
}

void http_h_admin_queue_hold(struct http_request *req, struct http_reply *rep)
{
    message_op(req, rep, OP_HOLD);
}

void http_h_admin_queue_release(struct http_request *req, struct http_reply *rep)
{
    message_op(req, rep, OP_RELEASE);
}

void http_h_admin_queue_delete(struct http_request *req, struct http_reply *rep)
{
    message_op(req, rep, OP_DELETE);
}
