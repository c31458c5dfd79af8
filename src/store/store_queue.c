/*
 * store_queue.c — store.h's queue and blob references on SQLite.
 *
 * A message row holds the envelope and the prefix (the Received: header), a
 * recipient row per address holds that copy's delivery state, and the body is
 * a blob file named in the row. Every message holds one reference on its blob
 * (taken by store_message_insert, dropped when the message goes), so identical
 * bodies share one file and the writer's GC removes a file once nothing uses it.
 *
 * Each call that touches several rows runs as one unit (op_begin/op_end): a
 * savepoint inside the caller's transaction, or its own transaction when
 * lifeboatctl calls it outside one.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Recipient states that still wait for something (store.h: the others are final). */
#define RCPT_PENDING_STATES "(0, 3)" /* RCPT_QUEUED, RCPT_CONTINUITY */

_Static_assert(RCPT_QUEUED == 0 && RCPT_CONTINUITY == 3, "RCPT_PENDING_STATES out of date");

/* ------------------------------------------------------------------- blobs */

static int blob_refs_add(struct store *st, const char *blob_id, int delta)
{
    static const char sql_up[] = "UPDATE blobs SET refs = refs + 1 WHERE id = ?1";
    static const char sql_down[] = "UPDATE blobs SET refs = refs - 1 WHERE id = ?1 AND refs > 0";
    const char *sql = delta > 0 ? sql_up : sql_down;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    int rc = stmt_run(st, sql, s, "blob reference");
    if (rc == STORE_OK && db_changes(st) == 0) {
        log_err("store: blob %s: %s a reference, but the blob is %s", blob_id,
                delta > 0 ? "taking" : "dropping", delta > 0 ? "not recorded" : "unreferenced");
        return STORE_NOTFOUND;
    }
    return rc;
}

/* Runs one of the blob upserts below, which bind (id, size, stored_size). */
static int blob_upsert(struct store *st, const char *sql, const char *blob_id, uint64_t size,
                       uint64_t stored_size, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    db_bind_int64(s, 2, (int64_t)size);
    db_bind_int64(s, 3, (int64_t)stored_size);
    return stmt_run(st, sql, s, what);
}

int store_blob_add(struct store *st, const char *blob_id, uint64_t size, uint64_t stored_size)
{
    static const char sql[] = "INSERT INTO blobs (id, size, stored_size, refs) VALUES (?1, ?2, ?3, 0) "
                              "ON CONFLICT (id) DO NOTHING";
    return blob_upsert(st, sql, blob_id, size, stored_size, "blob add");
}

int store_blob_ref(struct store *st, const char *blob_id, uint64_t size, uint64_t stored_size)
{
    static const char sql[] = "INSERT INTO blobs (id, size, stored_size, refs) VALUES (?1, ?2, ?3, 1) "
                              "ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + 1";
    return blob_upsert(st, sql, blob_id, size, stored_size, "blob reference");
}

int store_blob_unref(struct store *st, const char *blob_id)
{
    return blob_refs_add(st, blob_id, -1);
}

struct blob_each {
    int (*cb)(const char *blob_id, void *);
    void *arg;
};

static int blob_each(struct db_stmt *s, void *ctx)
{
    struct blob_each *e = ctx;
    char id[BLOB_ID_SIZE];
    col_text(s, 0, id, sizeof id);
    return e->cb(id, e->arg);
}

int store_blob_unreferenced(struct store *st, size_t limit, int (*cb)(const char *blob_id, void *),
                            void *arg)
{
    static const char sql[] = "SELECT id FROM blobs WHERE refs = 0 LIMIT ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, limit ? (int64_t)limit : INT64_MAX);
    struct blob_each e = {cb, arg};
    return stmt_each(st, sql, s, blob_each, &e, "unreferenced blobs");
}

int store_blob_forget(struct store *st, const char *blob_id)
{
    /* refs = 0: a blob that was referenced again meanwhile stays. */
    static const char sql[] = "DELETE FROM blobs WHERE id = ?1 AND refs = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    int rc = stmt_run(st, sql, s, "blob forget");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

static void read_nothing(struct db_stmt *s, void *out)
{
    (void)s;
    (void)out;
}

int store_blob_known(struct store *st, const char *blob_id)
{
    static const char sql[] = "SELECT 1 FROM blobs WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    int rc = stmt_fetch_one(st, sql, s, read_nothing, NULL, "blob known");
    return rc == STORE_OK ? 1 : rc == STORE_NOTFOUND ? 0 : STORE_ERR;
}

/* ---------------------------------------------------------------- messages */

#define MSG_COLS                                                                                    \
    "m.id, m.blob, m.size, m.sender, m.prefix, m.received, m.client_addr, m.helo, m.direction, "   \
    "m.is_bounce, m.sender_customer_id"

static void read_msg(struct db_stmt *s, void *out)
{
    struct store_msg *m = out;
    memset(m, 0, sizeof *m);
    col_text(s, 0, m->id, sizeof m->id);
    col_text(s, 1, m->blob, sizeof m->blob);
    m->size = (uint64_t)db_col_int64(s, 2);
    col_text(s, 3, m->sender, sizeof m->sender);
    col_text(s, 4, m->prefix, sizeof m->prefix);
    m->received = db_col_int64(s, 5);
    col_text(s, 6, m->client_addr, sizeof m->client_addr);
    col_text(s, 7, m->helo, sizeof m->helo);
    m->direction = db_col_int(s, 8);
    m->is_bounce = db_col_int(s, 9);
    m->sender_customer_id = db_col_int64(s, 10);
}

/* Binds s truncated to what a struct store_msg field of fieldsize can give back. */
static void bind_text_max(struct db_stmt *stmt, int idx, const char *s, size_t fieldsize)
{
    s = s ? s : "";
    size_t n = strnlen(s, fieldsize - 1);
    db_bind_textn(stmt, idx, s, n);
}

/* Refuses what could not be read back whole (sender, prefix, recipients). */
static int msg_new_valid(const struct store_msg_new *m)
{
    const struct store_msg *none = NULL;
    const char *why = NULL;
    if (!m->id[0] || !m->blob[0])
        why = "no queue ID or blob";
    else if (m->nrcpt == 0 || !m->rcpts)
        why = "no recipients";
    else if (m->sender && strlen(m->sender) >= sizeof none->sender)
        why = "sender address too long";
    else if (m->prefix && strlen(m->prefix) >= sizeof none->prefix)
        why = "header prefix too long";
    for (size_t i = 0; !why && i < m->nrcpt; i++)
        if (!m->rcpts[i] || strlen(m->rcpts[i]) > ADDR_MAX)
            why = "recipient address missing or too long";
    if (why)
        log_err("%s: store: cannot queue the message: %s", m->id, why);
    return !why;
}

static int insert_rcpt(struct store *st, const struct store_msg_new *m, const char *canon)
{
    static const char sql[] = "INSERT INTO recipients (msg_id, rcpt, domain, state, attempts, "
                              "next_attempt, last_reply) VALUES (?1, ?2, ?3, 0, 0, ?4, '')";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, m->id);
    db_bind_text(s, 2, canon);
    db_bind_text(s, 3, addr_domain(canon));
    db_bind_int64(s, 4, m->received);
    return stmt_run(st, sql, s, "recipient insert");
}

/* Inserts the recipients and counts them as accepted, one UPSERT per run of
 * recipients in the same domain (usually one for the whole message). */
static int insert_rcpts(struct store *st, const struct store_msg_new *m)
{
    char canon[ADDR_MAX + 1], run[DOMAIN_MAX + 1] = "";
    uint64_t nrun = 0;
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < m->nrcpt; i++) {
        addr_canonical(m->rcpts[i], canon, sizeof canon); /* fits: checked by msg_new_valid */
        if ((rc = insert_rcpt(st, m, canon)) != STORE_OK)
            break;
        const char *domain = addr_domain(canon);
        if (strcmp(domain, run) == 0) {
            nrun++;
            continue;
        }
        if (nrun)
            rc = stats_count_domain(st, run, STAT_ACCEPTED, m->received, nrun);
        snprintf(run, sizeof run, "%s", domain);
        nrun = 1;
    }
    if (rc == STORE_OK && nrun)
        rc = stats_count_domain(st, run, STAT_ACCEPTED, m->received, nrun);
    return rc;
}

static int insert_msg(struct store *st, const struct store_msg_new *m)
{
    static const char sql[] = "INSERT INTO messages (id, blob, size, sender, prefix, received, "
                              "client_addr, helo, direction, is_bounce, sender_customer_id) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    const struct store_msg *none = NULL;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, m->id);
    db_bind_text(s, 2, m->blob);
    db_bind_int64(s, 3, (int64_t)m->size);
    db_bind_text(s, 4, m->sender);
    db_bind_text(s, 5, m->prefix);
    db_bind_int64(s, 6, m->received);
    bind_text_max(s, 7, m->client_addr, sizeof none->client_addr);
    bind_text_max(s, 8, m->helo, sizeof none->helo);
    db_bind_int(s, 9, m->direction);
    db_bind_int(s, 10, m->is_bounce ? 1 : 0);
    db_bind_int64(s, 11, m->sender_customer_id);
    return stmt_run(st, sql, s, "message insert");
}

int store_message_insert(struct store *st, const struct store_msg_new *m)
{
    if (!msg_new_valid(m))
        return STORE_ERR;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    rc = blob_refs_add(st, m->blob, +1);
    if (rc == STORE_OK && (rc = insert_msg(st, m)) == STORE_EXISTS)
        log_err("%s: store: queue ID already in use", m->id);
    if (rc == STORE_OK)
        rc = insert_rcpts(st, m);
    return op_end(st, &op, rc);
}

int store_message_get(struct store *st, const char *id, struct store_msg *out)
{
    static const char sql[] = "SELECT " MSG_COLS " FROM messages m WHERE m.id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_msg, out, "message get");
}

struct msg_each {
    int (*cb)(const struct store_msg *, void *);
    void *arg;
};

static int msg_each(struct db_stmt *s, void *ctx)
{
    struct msg_each *e = ctx;
    struct store_msg m;
    read_msg(s, &m);
    return e->cb(&m, e->arg);
}

int store_queue_list(struct store *st, int (*cb)(const struct store_msg *, void *), void *arg)
{
    return store_queue_list_scoped(st, 0, cb, arg);
}

static void read_queue_stats(struct db_stmt *s, void *out)
{
    struct store_queue_stats *q = out;
    q->messages = (uint64_t)db_col_int64(s, 0);
    q->queued = (uint64_t)db_col_int64(s, 1);
    q->deferred = (uint64_t)db_col_int64(s, 2);
    q->continuity = (uint64_t)db_col_int64(s, 3);
}

int store_queue_stats(struct store *st, struct store_queue_stats *out)
{
    static const char sql[] = "SELECT (SELECT count(*) FROM messages), "
                              "count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 0 AND attempts > 0), "
                              "count(*) FILTER (WHERE state = 3) FROM recipients";
    struct db_stmt *s = stmt_get(st, sql);
    *out = (struct store_queue_stats){0};
    if (!s)
        return STORE_ERR;
    int rc = stmt_fetch_one(st, sql, s, read_queue_stats, out, "queue stats");
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static void read_blob_name(struct db_stmt *s, void *out)
{
    col_text(s, 0, out, BLOB_ID_SIZE);
}

/* Deletes the message (its recipients cascade) and drops its blob reference. */
static int msg_remove(struct store *st, const char *id, const char *blob)
{
    static const char sql[] = "DELETE FROM messages WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, id);
    int rc = stmt_run(st, sql, s, "message delete");
    return rc == STORE_OK ? store_blob_unref(st, blob) : rc;
}

static int msg_blob(struct store *st, const char *id, char blob[BLOB_ID_SIZE])
{
    static const char sql[] = "SELECT blob FROM messages WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_blob_name, blob, "message get");
}

int store_message_release_if_done(struct store *st, const char *id, int *released)
{
    static const char sql_pending[] = "SELECT EXISTS (SELECT 1 FROM recipients WHERE msg_id = ?1 "
                                      "AND state IN " RCPT_PENDING_STATES ")";
    *released = 0;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    char blob[BLOB_ID_SIZE];
    int pending = 1;
    rc = msg_blob(st, id, blob);
    if (rc == STORE_OK) {
        struct db_stmt *s = stmt_get(st, sql_pending);
        if (s) {
            db_bind_text(s, 1, id);
            rc = stmt_fetch_one(st, sql_pending, s, read_col0_int, &pending, "message pending");
        } else {
            rc = STORE_ERR;
        }
    }
    if (rc == STORE_OK && !pending && (rc = msg_remove(st, id, blob)) == STORE_OK)
        *released = 1;
    rc = op_end(st, &op, rc);
    if (rc != STORE_OK)
        *released = 0;
    return rc;
}

int store_message_delete(struct store *st, const char *id)
{
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    char blob[BLOB_ID_SIZE];
    rc = msg_blob(st, id, blob);
    if (rc == STORE_OK)
        rc = msg_remove(st, id, blob);
    return op_end(st, &op, rc);
}

/* -------------------------------------------------------------- recipients */

#define RCPT_COLS                                                                                   \
    "r.id, r.msg_id, r.rcpt, r.domain, r.state, r.attempts, r.next_attempt, m.received, "          \
    "r.last_reply, r.mailbox_entry_id, r.pre_continuity, r.held FROM recipients r JOIN messages m ON m.id = r.msg_id"

static void read_rcpt(struct db_stmt *s, void *out)
{
    struct store_rcpt *r = out;
    memset(r, 0, sizeof *r);
    r->id = db_col_int64(s, 0);
    col_text(s, 1, r->msg_id, sizeof r->msg_id);
    col_text(s, 2, r->rcpt, sizeof r->rcpt);
    col_text(s, 3, r->domain, sizeof r->domain);
    r->state = db_col_int(s, 4);
    r->attempts = (unsigned)db_col_int64(s, 5);
    r->next_attempt = db_col_int64(s, 6);
    r->received = db_col_int64(s, 7);
    col_text(s, 8, r->last_reply, sizeof r->last_reply);
    r->mailbox_entry_id = db_col_int64(s, 9); /* NULL reads as 0 */
    r->pre_continuity = db_col_int(s, 10);
    r->held = db_col_int(s, 11);
}

struct rcpt_each {
    int (*cb)(const struct store_rcpt *, void *);
    void *arg;
};

static int rcpt_each(struct db_stmt *s, void *ctx)
{
    struct rcpt_each *e = ctx;
    struct store_rcpt r;
    read_rcpt(s, &r);
    return e->cb(&r, e->arg);
}

int store_rcpt_due(struct store *st, int64_t now, size_t limit,
                   int (*cb)(const struct store_rcpt *, void *), void *arg)
{
    /* Walks recipients_due in order: no sort, stops after limit rows. */
    /* A held recipient is passed over here (a residual test on the row the
     * index gave), so held mail costs the runner a little but is never tried. */
    static const char sql[] = "SELECT " RCPT_COLS " WHERE r.state = 0 AND r.next_attempt <= ?1 "
                              "AND r.held = 0 ORDER BY r.next_attempt, r.id LIMIT ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, now);
    db_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    struct rcpt_each e = {cb, arg};
    return stmt_each(st, sql, s, rcpt_each, &e, "due recipients");
}

int store_rcpt_claim_due(struct store *st, int64_t now, int64_t until, size_t limit,
                         int (*cb)(const struct store_rcpt *, void *), void *arg)
{
    /* New claims: rows another node is working on are locked (skipped at
     * once) or carry its live lease. Our own claims are read back as they are,
     * not written again (the runner's in-flight set keeps it from running one
     * twice; cluster.c renews them), so a busy runner's scans do not rewrite
     * the rows it is sending. */
    static const char sql[] =
        "WITH c AS (UPDATE recipients SET claim_node = ?3, claim_until = ?4 WHERE id IN ("
        "  SELECT id FROM recipients WHERE state = 0 AND next_attempt <= ?1 AND held = 0"
        "  AND claim_until < ?1 AND claim_node <> ?3 ORDER BY next_attempt, id LIMIT ?2 FOR UPDATE SKIP LOCKED)"
        "  RETURNING id) "
        "SELECT " RCPT_COLS " WHERE r.id IN (SELECT id FROM c) OR (r.claim_node = ?3 AND r.state = 0"
        "  AND r.next_attempt <= ?1 AND r.held = 0) ORDER BY r.next_attempt, r.id LIMIT ?2";
    if (st->kind != DB_PG)
        return store_rcpt_due(st, now, limit, cb, arg); /* one node: the runner's in-flight set */
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, now);
    db_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    db_bind_text(s, 3, store_node(st));
    db_bind_int64(s, 4, until);
    struct rcpt_each e = {cb, arg};
    return stmt_each(st, sql, s, rcpt_each, &e, "claim due recipients");
}

int store_rcpt_next_due(struct store *st, int64_t *when_out)
{
    static const char sql[] = "SELECT next_attempt FROM recipients WHERE state = 0 AND held = 0 "
                              "ORDER BY next_attempt LIMIT 1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    return stmt_fetch_one(st, sql, s, read_col0_int64, when_out, "next due recipient");
}

int store_rcpt_get(struct store *st, int64_t id, struct store_rcpt *out)
{
    static const char sql[] = "SELECT " RCPT_COLS " WHERE r.id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_rcpt, out, "recipient get");
}

int store_rcpt_update(struct store *st, int64_t id, int state, unsigned attempts, int64_t next_attempt,
                      const char *last_reply)
{
    /* Only while the claim is ours (or free): a node whose lease another
     * took over must not overwrite what that node records. */
    static const char sql[] = "UPDATE recipients SET state = ?2, attempts = ?3, next_attempt = ?4, "
                              "last_reply = ?5, claim_node = '', claim_until = 0 "
                              "WHERE id = ?1 AND claim_node IN ('', ?6)";
    const struct store_rcpt *none = NULL;
    int counter = state == RCPT_SENT ? STAT_DELIVERED : state == RCPT_QUEUED ? STAT_DEFERRED
                : state == RCPT_BOUNCED ? STAT_BOUNCED : -1;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return op_end(st, &op, STORE_ERR);
    db_bind_int64(s, 1, id);
    db_bind_int(s, 2, state);
    db_bind_int64(s, 3, attempts);
    db_bind_int64(s, 4, next_attempt);
    bind_text_max(s, 5, last_reply, sizeof none->last_reply);
    db_bind_text(s, 6, store_node(st));
    rc = stmt_run(st, sql, s, "recipient update");
    if (rc == STORE_OK && db_changes(st) == 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK && counter >= 0)
        rc = stats_count_rcpt(st, id, counter, time_now());
    return op_end(st, &op, rc);
}

int store_rcpt_list(struct store *st, const char *msg_id, int (*cb)(const struct store_rcpt *, void *),
                    void *arg)
{
    static const char sql[] = "SELECT " RCPT_COLS " WHERE r.msg_id = ?1 ORDER BY r.id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, msg_id);
    struct rcpt_each e = {cb, arg};
    return stmt_each(st, sql, s, rcpt_each, &e, "recipient list");
}

int store_rcpt_mark_pre_continuity(struct store *st, const char *domain, unsigned *marked)
{
    static const char sql[] = "UPDATE recipients SET pre_continuity = 1 WHERE domain = ?1 AND state = 0";
    char canon[DOMAIN_MAX + 1];
    if (marked)
        *marked = 0;
    if (!domain || addr_canonical(domain, canon, sizeof canon) != 0) {
        log_err("store: mark pre-continuity: bad domain");
        return STORE_ERR;
    }
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, canon);
    int rc = stmt_run(st, sql, s, "mark pre-continuity recipients");
    if (rc == STORE_OK && marked)
        *marked = (unsigned)db_changes(st);
    return rc;
}

int store_queue_flush(struct store *st)
{
    return store_queue_flush_scoped(st, 0, NULL, NULL);
}

/* ------------------------------------------------------- the queue, scoped */

/* Whether a recipient row of message ?2 is in customer ?1's share (store.h):
 * ?1 = 0 (an operator), a domain of the customer, or the customer sent it.
 * Unqualified columns are the recipient's. */
#define IN_SHARE                                                                                         \
    "(?1 = 0 OR domain IN (SELECT name FROM domains WHERE customer_id = ?1) "                             \
    "OR (SELECT sender_customer_id FROM messages WHERE id = recipients.msg_id) = ?1)"

int store_queue_list_scoped(struct store *st, int64_t customer_id, int (*cb)(const struct store_msg *, void *),
                            void *arg)
{
    static const char sql[] = "SELECT " MSG_COLS " FROM messages m WHERE EXISTS "
                              "(SELECT 1 FROM recipients WHERE msg_id = m.id AND state = 0 AND " IN_SHARE ") "
                              "ORDER BY m.received, m.id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    struct msg_each e = {cb, arg};
    return stmt_each(st, sql, s, msg_each, &e, "queue list");
}

struct rcpt_counted {
    struct rcpt_each each;
    unsigned n;
};

static int rcpt_count_each(struct db_stmt *s, void *ctx)
{
    struct rcpt_counted *c = ctx;
    c->n++;
    return rcpt_each(s, &c->each);
}

int store_queue_rcpts(struct store *st, const char *msg_id, int64_t customer_id,
                      int (*cb)(const struct store_rcpt *, void *), void *arg)
{
    static const char sql[] = "SELECT " RCPT_COLS " WHERE r.msg_id = ?2 AND (?1 = 0 "
                              "OR r.domain IN (SELECT name FROM domains WHERE customer_id = ?1) "
                              "OR m.sender_customer_id = ?1) ORDER BY r.id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_text(s, 2, msg_id);
    struct rcpt_counted c = {{cb, arg}, 0};
    int rc = stmt_each(st, sql, s, rcpt_count_each, &c, "queue recipients");
    return rc == STORE_OK && c.n == 0 ? STORE_NOTFOUND : rc;
}

struct share_counts {
    unsigned total, share;
};

static void read_share_counts(struct db_stmt *s, void *out)
{
    struct share_counts *c = out;
    c->total = (unsigned)db_col_int64(s, 0);
    c->share = (unsigned)db_col_int64(s, 1);
}

/* The message's recipients, and how many of them are in the share:
 * STORE_NOTFOUND when none are (or there is no such message). */
static int share_get(struct store *st, const char *msg_id, int64_t customer_id, struct share_counts *out)
{
    static const char sql[] = "SELECT count(*), count(*) FILTER (WHERE " IN_SHARE ") FROM recipients WHERE msg_id = ?2";
    struct db_stmt *s = stmt_get(st, sql);
    *out = (struct share_counts){0};
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_text(s, 2, msg_id);
    int rc = stmt_fetch_one(st, sql, s, read_share_counts, out, "queue share");
    return rc == STORE_OK && out->share == 0 ? STORE_NOTFOUND : rc;
}

/* Runs one of the share's UPDATE/DELETEs of message msg_id; ?3 is arg3, ?4 now. */
static int share_exec(struct store *st, const char *sql, const char *msg_id, int64_t customer_id, int arg3,
                      unsigned *changed, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_text(s, 2, msg_id);
    if (db_bind_count(s) >= 3)
        db_bind_int(s, 3, arg3);
    if (db_bind_count(s) >= 4)
        db_bind_int64(s, 4, time_now());
    int rc = stmt_run(st, sql, s, what);
    if (rc == STORE_OK && changed)
        *changed = (unsigned)db_changes(st);
    return rc;
}

int store_queue_hold(struct store *st, const char *msg_id, int64_t customer_id, int hold, unsigned *changed)
{
    /* A release makes the recipients due now: "release" on the queue page means "send it". */
    static const char sql[] = "UPDATE recipients SET held = ?3, next_attempt = CASE WHEN ?3 = 0 AND "
                              "next_attempt > ?4 THEN ?4 ELSE next_attempt END "
                              "WHERE msg_id = ?2 AND state = 0 AND held != ?3 AND " IN_SHARE;
    if (changed)
        *changed = 0;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    struct share_counts c;
    rc = share_get(st, msg_id, customer_id, &c);
    if (rc == STORE_OK)
        rc = share_exec(st, sql, msg_id, customer_id, hold ? 1 : 0, changed, hold ? "queue hold" : "queue release");
    if (rc == STORE_OK && !hold)
        rc = store_notify(st, "queue"); /* the nodes' runners look now */
    rc = op_end(st, &op, rc);
    if (rc != STORE_OK && changed)
        *changed = 0;
    return rc;
}

int store_queue_delete(struct store *st, const char *msg_id, int64_t customer_id)
{
    static const char sql[] = "DELETE FROM recipients WHERE msg_id = ?2 AND state = 0 AND " IN_SHARE;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    struct share_counts c;
    rc = share_get(st, msg_id, customer_id, &c);
    if (rc == STORE_OK && c.share == c.total) {
        rc = store_message_delete(st, msg_id);
    } else if (rc == STORE_OK) {
        int released;
        rc = share_exec(st, sql, msg_id, customer_id, 0, NULL, "queue delete");
        if (rc == STORE_OK)
            rc = store_message_release_if_done(st, msg_id, &released);
    }
    return op_end(st, &op, rc);
}

int store_queue_flush_scoped(struct store *st, int64_t customer_id, const char *domain, unsigned *flushed)
{
    static const char sql[] = "UPDATE recipients SET next_attempt = ?3 "
                              "WHERE state = 0 AND held = 0 AND next_attempt > ?3 AND (?2 = '' OR domain = ?2) "
                              "AND " IN_SHARE;
    char canon[DOMAIN_MAX + 1] = "";
    if (flushed)
        *flushed = 0;
    if (domain && addr_canonical(domain, canon, sizeof canon) != 0) {
        log_err("store: queue flush: bad domain");
        return STORE_ERR;
    }
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_text(s, 2, canon);
    db_bind_int64(s, 3, time_now());
    int rc = stmt_run(st, sql, s, "queue flush");
    if (rc == STORE_OK) {
        unsigned n = (unsigned)db_changes(st);
        log_info("queue flush%s%s: %u recipient(s) made due now", canon[0] ? " of " : "", canon, n);
        if (flushed)
            *flushed = n;
        rc = store_notify(st, "queue"); /* every node's runner looks now */
    }
    return rc;
}
