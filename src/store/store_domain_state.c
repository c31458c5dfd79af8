/*
 * store_domain_state.c — store.h's per-domain continuity state on SQLite: the
 * persistent half of the continuity engine's state machine (normal -> outage ->
 * recovering -> normal) and the timeline of its changes.
 *
 * The state lives in the domain's row, so a restarted daemon resumes where it
 * was; every change also appends a row to domain_events (the control panel's
 * timeline, `lifeboatctl continuity events`), in the same unit of work. An
 * outage is identified by the id of the event that started it: mailbox entries
 * diverted during it carry that id, which is what the status counts group by.
 */
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int store_domain_set_state(struct store *st, int64_t domain_id, int state, const char *cause, int64_t now,
                           int64_t *event_id_out)
{
    static const char sql_get[] = "SELECT state FROM domains WHERE id = ?1 FOR UPDATE";
    static const char sql_event[] = "INSERT INTO domain_events (domain_id, at, from_state, to_state, cause) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
    static const char sql_set[] = "UPDATE domains SET state = ?2, state_since = ?3, state_cause = ?4, "
                                  "outage_id = CASE WHEN ?5 THEN ?6 ELSE outage_id END WHERE id = ?1";
    static const char sql_prune[] = "DELETE FROM mailbox WHERE domain_id = ?1 AND purged = 1";
    if (event_id_out)
        *event_id_out = 0;
    if (state < DOMAIN_NORMAL || state > DOMAIN_RECOVERING) {
        log_err("store: domain %lld: no such continuity state %d", (long long)domain_id, state);
        return STORE_ERR;
    }
    cause = cause ? cause : "";
    const struct store_event *none = NULL;
    int cause_len = (int)utf8_cut(cause, sizeof none->cause - 1);

    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    int64_t from = 0, event_id = 0;
    struct db_stmt *s = stmt_get(st, sql_get);
    if (!s) {
        rc = STORE_ERR;
        goto out;
    }
    db_bind_int64(s, 1, domain_id);
    if ((rc = stmt_fetch_one(st, sql_get, s, read_col0_int64, &from, "domain state")) != STORE_OK ||
        from == state)
        goto out; /* unknown domain, or nothing to change */

    if (!(s = stmt_get(st, sql_event))) {
        rc = STORE_ERR;
        goto out;
    }
    db_bind_int64(s, 1, domain_id);
    db_bind_int64(s, 2, now);
    db_bind_int(s, 3, (int)from);
    db_bind_int(s, 4, state);
    db_bind_textn(s, 5, cause, cause_len);
    if ((rc = stmt_insert(st, sql_event, s, &event_id, "domain event")) != STORE_OK)
        goto out;

    int new_outage = from == DOMAIN_NORMAL && state == DOMAIN_OUTAGE;
    if (!(s = stmt_get(st, sql_set))) {
        rc = STORE_ERR;
        goto out;
    }
    db_bind_int64(s, 1, domain_id);
    db_bind_int(s, 2, state);
    db_bind_int64(s, 3, now);
    db_bind_textn(s, 4, cause, cause_len);
    db_bind_int(s, 5, new_outage);
    db_bind_int64(s, 6, event_id);
    if ((rc = stmt_run(st, sql_set, s, "domain state")) != STORE_OK || !new_outage)
        goto out;

    /* The tombstones only kept the previous outage's counts. */
    if (!(s = stmt_get(st, sql_prune))) {
        rc = STORE_ERR;
        goto out;
    }
    db_bind_int64(s, 1, domain_id);
    rc = stmt_run(st, sql_prune, s, "prune mailbox tombstones");
out:
    if (rc == STORE_OK && event_id)
        rc = store_notify(st, "domain"); /* the other nodes see the new state now */
    rc = op_end(st, &op, rc);
    if (rc == STORE_OK && event_id_out)
        *event_id_out = event_id;
    return rc;
}

struct event_each {
    int (*cb)(const struct store_event *, void *);
    void *arg;
};

static int event_each(struct db_stmt *s, void *ctx)
{
    struct event_each *e = ctx;
    struct store_event ev;
    memset(&ev, 0, sizeof ev);
    ev.id = db_col_int64(s, 0);
    ev.domain_id = db_col_int64(s, 1);
    ev.at = db_col_int64(s, 2);
    ev.from_state = db_col_int(s, 3);
    ev.to_state = db_col_int(s, 4);
    col_text(s, 5, ev.cause, sizeof ev.cause);
    return e->cb(&ev, e->arg);
}

int store_event_list(struct store *st, int64_t domain_id, size_t limit,
                     int (*cb)(const struct store_event *, void *), void *arg)
{
    return store_event_list_scoped(st, 0, domain_id, limit, cb, arg);
}

int store_event_list_scoped(struct store *st, int64_t customer_id, int64_t domain_id, size_t limit,
                            int (*cb)(const struct store_event *, void *), void *arg)
{
#define EVENT_SELECT "SELECT id, domain_id, at, from_state, to_state, cause FROM domain_events "
    static const char sql_all[] = EVENT_SELECT "WHERE ?1 = 0 ORDER BY id DESC LIMIT ?2";
    static const char sql_dom[] = EVENT_SELECT "WHERE domain_id = ?1 ORDER BY id DESC LIMIT ?2";
    static const char sql_customer[] = EVENT_SELECT "WHERE domain_id IN (SELECT id FROM domains "
                                                    "WHERE customer_id = ?1) ORDER BY id DESC LIMIT ?2";
    /* A domain outside the customer is no domain of theirs: nothing. */
    static const char sql_both[] = EVENT_SELECT "WHERE domain_id = ?1 AND ?3 = (SELECT customer_id FROM "
                                                "domains WHERE id = ?1) ORDER BY id DESC LIMIT ?2";
#undef EVENT_SELECT
    const char *sql = domain_id && customer_id ? sql_both : domain_id ? sql_dom : customer_id ? sql_customer : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id ? domain_id : customer_id);
    db_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    if (domain_id && customer_id)
        db_bind_int64(s, 3, customer_id);
    struct event_each e = {cb, arg};
    return stmt_each(st, sql, s, event_each, &e, "event list");
}
