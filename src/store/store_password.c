/*
 * store_password.c — store.h's password records on SQLite (migration 4): the
 * password policy of each customer, setting a user's password together with
 * the end of their other sessions, reset tokens and the reset requests per
 * client address that their rate limit counts.
 *
 * Record keeping only: what a policy demands, how long a token lives and how
 * many requests are too many are decided in src/directory and src/http. Reset
 * tokens are keyed by their hash (the token mailed to the user never reaches
 * the database).
 */
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

/* ---------------------------------------------------------------- policies */

static void read_policy(struct db_stmt *s, void *out)
{
    struct store_password_policy *p = out;
    memset(p, 0, sizeof *p);
    p->customer_id = db_col_int64(s, 0);
    p->min_length = (unsigned)db_col_int64(s, 1);
    p->upper = db_col_int(s, 2) != 0;
    p->lower = db_col_int(s, 3) != 0;
    p->digit = db_col_int(s, 4) != 0;
    p->special = db_col_int(s, 5) != 0;
}

int store_password_policy_get(struct store *st, int64_t customer_id, struct store_password_policy *out)
{
    static const char sql[] = "SELECT customer_id, min_length, require_upper, require_lower, require_digit,"
                              " require_special FROM password_policy WHERE customer_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    return stmt_fetch_one(st, sql, s, read_policy, out, "password policy get");
}

int store_password_policy_set(struct store *st, const struct store_password_policy *p)
{
    static const char sql[] =
        "INSERT INTO password_policy (customer_id, min_length, require_upper, require_lower, require_digit,"
        " require_special) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT (customer_id) DO UPDATE SET min_length = excluded.min_length,"
        " require_upper = excluded.require_upper, require_lower = excluded.require_lower,"
        " require_digit = excluded.require_digit, require_special = excluded.require_special";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, p->customer_id);
    db_bind_int64(s, 2, p->min_length);
    db_bind_int(s, 3, p->upper != 0);
    db_bind_int(s, 4, p->lower != 0);
    db_bind_int(s, 5, p->digit != 0);
    db_bind_int(s, 6, p->special != 0);
    return stmt_run(st, sql, s, "password policy set");
}

/* ---------------------------------------------------------------- passwords */

int store_user_set_password(struct store *st, int64_t user_id, const char *pw_hash, const char *keep_session)
{
    static const char sql_user[] = "UPDATE users SET pw_hash = ?2 WHERE id = ?1";
    /* token_hash <> '' keeps nothing when keep_session is "": no hash is empty. */
    static const char sql_sessions[] = "DELETE FROM http_sessions WHERE user_id = ?1 AND token_hash <> ?2";
    if (!pw_hash || strlen(pw_hash) >= sizeof((struct store_user *)0)->pw_hash) {
        log_err("store: set password of user %lld: hash missing or too long", (long long)user_id);
        return STORE_ERR;
    }
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    struct db_stmt *s = stmt_get(st, sql_user);
    if (!s)
        return op_end(st, &op, STORE_ERR);
    db_bind_int64(s, 1, user_id);
    db_bind_text(s, 2, pw_hash);
    rc = stmt_run(st, sql_user, s, "set password");
    if (rc == STORE_OK && db_changes(st) == 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK) {
        if (!(s = stmt_get(st, sql_sessions)))
            return op_end(st, &op, STORE_ERR);
        db_bind_int64(s, 1, user_id);
        db_bind_text(s, 2, keep_session ? keep_session : "");
        rc = stmt_run(st, sql_sessions, s, "end the sessions of a user");
    }
    return op_end(st, &op, rc);
}

/* ---------------------------------------------------------------- reset tokens */

static void read_reset(struct db_stmt *s, void *out)
{
    struct store_password_reset *r = out;
    memset(r, 0, sizeof *r);
    col_text(s, 0, r->token_hash, sizeof r->token_hash);
    r->user_id = db_col_int64(s, 1);
    r->created = db_col_int64(s, 2);
    r->expires = db_col_int64(s, 3);
    r->used = db_col_int64(s, 4);
}

int store_password_reset_add(struct store *st, const struct store_password_reset *r)
{
    static const char sql[] = "INSERT INTO password_resets (token_hash, user_id, created, expires, used)"
                              " VALUES (?1, ?2, ?3, ?4, ?5)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, r->token_hash);
    db_bind_int64(s, 2, r->user_id);
    db_bind_int64(s, 3, r->created);
    db_bind_int64(s, 4, r->expires);
    db_bind_int64(s, 5, r->used);
    return stmt_run(st, sql, s, "password reset add");
}

int store_password_reset_get(struct store *st, const char *token_hash, struct store_password_reset *out)
{
    static const char sql[] =
        "SELECT token_hash, user_id, created, expires, used FROM password_resets WHERE token_hash = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, token_hash);
    return stmt_fetch_one(st, sql, s, read_reset, out, "password reset get");
}

int store_password_reset_use(struct store *st, const char *token_hash, int64_t now)
{
    /* One statement: the check (unused, not expired) and the use cannot be
     * split by a second request with the same token. */
    static const char sql[] =
        "UPDATE password_resets SET used = ?2 WHERE token_hash = ?1 AND used = 0 AND expires > ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, token_hash);
    db_bind_int64(s, 2, now);
    int rc = stmt_run(st, sql, s, "password reset use");
    if (rc == STORE_OK && db_changes(st) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_password_reset_void_user(struct store *st, int64_t user_id, int64_t now)
{
    static const char sql[] = "UPDATE password_resets SET used = ?2 WHERE user_id = ?1 AND used = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    /* A token voided in the second it was made must still read as used. */
    db_bind_int64(s, 2, now > 0 ? now : 1);
    return stmt_run(st, sql, s, "password reset void");
}

int store_password_reset_count(struct store *st, int64_t user_id, int64_t since, unsigned *count)
{
    static const char sql[] = "SELECT count(*) FROM password_resets WHERE user_id = ?1 AND created >= ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_int64(s, 2, since);
    return stmt_fetch_count(st, sql, s, count, "password reset count");
}

int store_password_reset_purge(struct store *st, int64_t before)
{
    static const char sql[] = "DELETE FROM password_resets WHERE expires < ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, before);
    return stmt_run(st, sql, s, "password reset purge");
}

/* ---------------------------------------------------------------- requests per client */

int store_password_reset_request_add(struct store *st, const char *client_addr, int64_t at)
{
    static const char sql[] = "INSERT INTO password_reset_requests (client_addr, at) VALUES (?1, ?2)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, client_addr);
    db_bind_int64(s, 2, at);
    return stmt_run(st, sql, s, "password reset request add");
}

int store_password_reset_request_count(struct store *st, const char *client_addr, int64_t since,
                                       unsigned *count)
{
    static const char sql[] = "SELECT count(*) FROM password_reset_requests WHERE client_addr = ?1 AND at >= ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, client_addr);
    db_bind_int64(s, 2, since);
    return stmt_fetch_count(st, sql, s, count, "password reset request count");
}

int store_password_reset_request_purge(struct store *st, int64_t before)
{
    static const char sql[] = "DELETE FROM password_reset_requests WHERE at < ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, before);
    return stmt_run(st, sql, s, "password reset request purge");
}
