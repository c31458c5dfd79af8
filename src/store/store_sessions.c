/*
 * store_sessions.c — store.h's webmail sessions and login failures on SQLite
 * (migration 3), for src/http.
 *
 * Sessions are keyed by the hash of their token (the cookie value never
 * reaches the database). Login failures are one row per failed attempt, so the
 * lockout's question "how many for this key in the last N minutes" is one
 * indexed count, and old rows are purged by time.
 */
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

#define SESSION_COLS "token_hash, user_id, csrf, created, last_seen, client_addr"

static void read_session(struct db_stmt *s, void *out)
{
    struct store_session *x = out;
    memset(x, 0, sizeof *x);
    col_text(s, 0, x->token_hash, sizeof x->token_hash);
    x->user_id = db_col_int64(s, 1);
    col_text(s, 2, x->csrf, sizeof x->csrf);
    x->created = db_col_int64(s, 3);
    x->last_seen = db_col_int64(s, 4);
    col_text(s, 5, x->client_addr, sizeof x->client_addr);
}

/* An UPDATE/DELETE that must match a row: STORE_NOTFOUND when it matched none. */
static int run_one(struct store *st, const char *sql, struct db_stmt *s, const char *what)
{
    int rc = stmt_run(st, sql, s, what);
    if (rc == STORE_OK && db_changes(st) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_session_add(struct store *st, const struct store_session *x)
{
    static const char sql[] = "INSERT INTO http_sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, x->token_hash);
    db_bind_int64(s, 2, x->user_id);
    db_bind_text(s, 3, x->csrf);
    db_bind_int64(s, 4, x->created);
    db_bind_int64(s, 5, x->last_seen);
    db_bind_text(s, 6, x->client_addr);
    return stmt_run(st, sql, s, "session add");
}

int store_session_get(struct store *st, const char *token_hash, struct store_session *out)
{
    static const char sql[] = "SELECT " SESSION_COLS " FROM http_sessions WHERE token_hash = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, token_hash);
    return stmt_fetch_one(st, sql, s, read_session, out, "session get");
}

int store_session_touch(struct store *st, const char *token_hash, int64_t now)
{
    static const char sql[] = "UPDATE http_sessions SET last_seen = ?2 WHERE token_hash = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, token_hash);
    db_bind_int64(s, 2, now);
    return run_one(st, sql, s, "session touch");
}

int store_session_del(struct store *st, const char *token_hash)
{
    static const char sql[] = "DELETE FROM http_sessions WHERE token_hash = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, token_hash);
    return run_one(st, sql, s, "session delete");
}

int store_session_del_user(struct store *st, int64_t user_id)
{
    static const char sql[] = "DELETE FROM http_sessions WHERE user_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    return stmt_run(st, sql, s, "session delete of a user");
}

int store_session_purge(struct store *st, int64_t idle_before, int64_t created_before, unsigned *purged)
{
    static const char sql[] = "DELETE FROM http_sessions WHERE last_seen < ?1 OR created < ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, idle_before);
    db_bind_int64(s, 2, created_before);
    int rc = stmt_run(st, sql, s, "session purge");
    if (purged)
        *purged = rc == STORE_OK ? (unsigned)db_changes(st) : 0;
    return rc;
}

int store_login_failure_add(struct store *st, const char *key, int64_t at, int pending, int64_t *id_out)
{
    static const char sql[] = "INSERT INTO login_failures (key, at, pending) VALUES (?1, ?2, ?3) RETURNING id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, key);
    db_bind_int64(s, 2, at);
    db_bind_int(s, 3, pending ? 1 : 0);
    int rc = stmt_insert(st, sql, s, id_out, "login failure add");
    return rc;
}

int store_login_failure_settle(struct store *st, int64_t id)
{
    static const char sql[] = "UPDATE login_failures SET pending = 0 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_run(st, sql, s, "login failure settle");
}

int store_login_failure_del(struct store *st, int64_t id)
{
    static const char sql[] = "DELETE FROM login_failures WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_run(st, sql, s, "login failure del");
}

int store_login_failure_counts(struct store *st, const char *key, int64_t since, int64_t stale_before,
                               unsigned *settled, unsigned *pending)
{
    static const char sql[] = "SELECT count(*) FILTER (WHERE NOT (pending = 1 AND at >= ?3)) AS settled,"
                              " count(*) FILTER (WHERE pending = 1 AND at >= ?3)"
                              " FROM login_failures WHERE key = ?1 AND at >= ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, key);
    db_bind_int64(s, 2, since);
    db_bind_int64(s, 3, stale_before);
    int rc = db_step(s);
    int out = STORE_OK;
    if (rc == DB_ROW) {
        *settled = (unsigned)db_col_int64(s, 0);
        *pending = (unsigned)db_col_int64(s, 1);
    } else {
        out = db_rc(st, rc, "login failure counts");
    }
    stmt_put(st, sql, s);
    return out;
}

int store_login_failure_count(struct store *st, const char *key, int64_t since, unsigned *count)
{
    static const char sql[] = "SELECT count(*) FROM login_failures WHERE key = ?1 AND at >= ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, key);
    db_bind_int64(s, 2, since);
    return stmt_fetch_count(st, sql, s, count, "login failure count");
}

int store_login_failure_clear(struct store *st, const char *key)
{
    static const char sql[] = "DELETE FROM login_failures WHERE key = ?1 AND pending = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, key);
    return stmt_run(st, sql, s, "login failure clear");
}

int store_login_failure_purge(struct store *st, int64_t before)
{
    static const char sql[] = "DELETE FROM login_failures WHERE at < ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, before);
    return stmt_run(st, sql, s, "login failure purge");
}
