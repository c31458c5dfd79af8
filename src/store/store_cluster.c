/*
 * store_cluster.c — store.h's calls for several nodes on one PostgreSQL
 * database: the lead (who probes and drives the domains' states), lease
 * renewal and release, node heartbeats, and NOTIFY wake-ups. On the embedded
 * SQLite store there is one node and these are (nearly) no-ops; the claims
 * themselves are taken in store_queue.c and store_mailbox.c.
 *
 * The lead is a session-level advisory lock on the caller's long-lived
 * connection (the daemon's loop connection). PostgreSQL drops it when that
 * session ends — the node died, or lost its connection — so another node's
 * next try (every second) takes it. A reconnect ends the session too: the
 * lead is remembered with the connection generation it was taken in.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* The advisory lock key of the lead (any constant of ours; the schema
 * migration takes 7311001). */
#define LEAD_KEY "7311002"

const char *store_node(const struct store *st)
{
    return st->node;
}

/* ---------------------------------------------------------------- the lead */

int store_lead_try(struct store *st)
{
    static const char sql_try[] = "SELECT pg_try_advisory_lock(" LEAD_KEY ")";
    if (st->kind != DB_PG)
        return 1;
    unsigned gen = st->ops->conn_gen(st);
    if (st->lead_gen == gen)
        return 1;
    st->lead_gen = 0; /* a reconnect ended the session that held it */
    struct db_stmt *s = stmt_get(st, sql_try);
    if (!s)
        return STORE_ERR;
    int got = 0;
    int rc = stmt_fetch_one(st, sql_try, s, read_col0_int, &got, "lead try");
    if (rc != STORE_OK)
        return STORE_ERR;
    /* The try itself may have reconnected: the generation after it counts. */
    if (got)
        st->lead_gen = st->ops->conn_gen(st);
    return got ? 1 : 0;
}

int store_lead_release(struct store *st)
{
    static const char sql[] = "SELECT pg_advisory_unlock(" LEAD_KEY ")";
    if (st->kind != DB_PG || st->lead_gen != st->ops->conn_gen(st)) {
        st->lead_gen = 0;
        return STORE_OK;
    }
    st->lead_gen = 0;
    struct db_stmt *s = stmt_get(st, sql);
    return s ? stmt_run(st, sql, s, "lead release") : STORE_ERR;
}

/* Work locks live in the advisory lock space of LEAD_KEY's neighbour: the
 * two-key form (kind's class, the id), so they never meet the lead's. */
#define WORK_CLASS 7311010

/* Runs one of the advisory lock functions with the keys (kind's class, id):
 * 1 or 0 as the function answers, STORE_ERR on a store error. */
static int advisory(struct store *st, const char *sql, enum store_work kind, int64_t id, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int(s, 1, WORK_CLASS + (int)kind);
    db_bind_int(s, 2, (int)id);
    int got = 0;
    return stmt_fetch_one(st, sql, s, read_col0_int, &got, what) == STORE_OK ? got != 0 : STORE_ERR;
}

int store_work_lock_try(struct store *st, enum store_work kind, int64_t id)
{
    static const char sql[] = "SELECT pg_try_advisory_lock(?1, ?2)";
    return st->kind != DB_PG ? 1 : advisory(st, sql, kind, id, "work lock");
}

int store_work_unlock(struct store *st, enum store_work kind, int64_t id)
{
    static const char sql[] = "SELECT pg_advisory_unlock(?1, ?2)";
    if (st->kind != DB_PG)
        return STORE_OK;
    return advisory(st, sql, kind, id, "work unlock") == STORE_ERR ? STORE_ERR : STORE_OK;
}

int store_work_xact_try(struct store *st, enum store_work kind)
{
    static const char sql[] = "SELECT pg_try_advisory_xact_lock(?1, ?2)";
    return st->kind != DB_PG ? 1 : advisory(st, sql, kind, 0, "work lock");
}

/* ------------------------------------------------------------------ leases */

/* Runs sql for this node (?1 the node, ?2 until when it uses one). */
static int node_update(struct store *st, const char *sql, int64_t until, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, st->node);
    if (db_bind_count(s) >= 2)
        db_bind_int64(s, 2, until);
    return stmt_run(st, sql, s, what);
}

int store_claims_renew(struct store *st, int64_t until, int mailbox)
{
    static const char sql_rcpt[] = "UPDATE recipients SET claim_until = ?2 WHERE claim_node = ?1 AND state = 0";
    static const char sql_mbox[] = "UPDATE mailbox SET claim_until = ?2 WHERE claim_node = ?1 AND redeliver = 1";
    if (st->kind != DB_PG)
        return STORE_OK;
    int rc = node_update(st, sql_rcpt, until, "lease renewal");
    if (rc == STORE_OK && mailbox)
        rc = node_update(st, sql_mbox, until, "lease renewal");
    return rc;
}

int store_claims_release(struct store *st, int recipients, int mailbox)
{
    static const char sql_rcpt[] = "UPDATE recipients SET claim_node = '', claim_until = 0 WHERE claim_node = ?1";
    static const char sql_mbox[] = "UPDATE mailbox SET claim_node = '', claim_until = 0 WHERE claim_node = ?1";
    if (st->kind != DB_PG)
        return STORE_OK;
    int rc = STORE_OK;
    if (recipients)
        rc = node_update(st, sql_rcpt, 0, "lease release");
    if (rc == STORE_OK && mailbox)
        rc = node_update(st, sql_mbox, 0, "lease release");
    return rc;
}

/* ------------------------------------------------------------------- nodes */

int store_node_heartbeat(struct store *st, int64_t started, int64_t now, const char *version, const char *addr)
{
    static const char sql[] =
        "INSERT INTO nodes (name, started, heartbeat, version, addr) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (name) DO UPDATE SET started = excluded.started, heartbeat = excluded.heartbeat, "
        "version = excluded.version, addr = excluded.addr";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, st->node);
    db_bind_int64(s, 2, started);
    db_bind_int64(s, 3, now);
    db_bind_text(s, 4, version);
    db_bind_text(s, 5, addr);
    return stmt_run(st, sql, s, "node heartbeat");
}

struct node_each {
    int (*cb)(const struct store_node_info *, void *);
    void *arg;
};

static int node_each(struct db_stmt *s, void *ctx)
{
    struct node_each *e = ctx;
    struct store_node_info n;
    memset(&n, 0, sizeof n);
    col_text(s, 0, n.name, sizeof n.name);
    n.started = db_col_int64(s, 1);
    n.heartbeat = db_col_int64(s, 2);
    col_text(s, 3, n.version, sizeof n.version);
    col_text(s, 4, n.addr, sizeof n.addr);
    n.lead = db_col_int(s, 5);
    n.claims = (unsigned)db_col_int64(s, 6);
    return e->cb(&n, e->arg);
}

int store_node_list(struct store *st, int64_t now, int (*cb)(const struct store_node_info *, void *), void *arg)
{
    /* The lead's holder is the session whose application_name is
     * lifeboat@NODE (db_pg.c sets it) and that holds the advisory lock. */
#define NODE_CLAIMS                                                                                 \
    "(SELECT count(*) FROM recipients r WHERE r.claim_node = n.name AND r.claim_until >= ?1) + "     \
    "(SELECT count(*) FROM mailbox m WHERE m.claim_node = n.name AND m.claim_until >= ?1)"
    static const char sql_pg[] =
        "SELECT n.name, n.started, n.heartbeat, n.version, n.addr, "
        "EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "  WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = " LEAD_KEY
        "  AND l.objsubid = 1 AND a.datname = current_database() AND a.application_name = 'lifeboat@' || n.name), "
        NODE_CLAIMS " FROM nodes n ORDER BY n.name";
    /* One node: it leads while its heartbeat is fresh. */
    static const char sql_lite[] = "SELECT n.name, n.started, n.heartbeat, n.version, n.addr, 1, " NODE_CLAIMS
                                   " FROM nodes n ORDER BY n.name";
#undef NODE_CLAIMS
    const char *sql = st->kind == DB_PG ? sql_pg : sql_lite;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, now);
    struct node_each e = {cb, arg};
    return stmt_each(st, sql, s, node_each, &e, "node list");
}

int store_node_del(struct store *st, const char *name)
{
    static const char sql[] = "DELETE FROM nodes WHERE name = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, name);
    int rc = stmt_run(st, sql, s, "node delete");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

/* ---------------------------------------------------------------- wake-ups */

int store_notify(struct store *st, const char *what)
{
    static const char sql[] = "SELECT pg_notify('lifeboat', ?1)";
    if (st->kind != DB_PG)
        return STORE_OK;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, what);
    return stmt_run(st, sql, s, "notify");
}
