/*
 * store_ldap.c — store.h's LDAP records on SQLite (migration 7): a domain's
 * directory settings and last sync report, the directory users (DN, cached
 * password hash, suspended by the sync), the aliases the sync made, every
 * user's last login, and the rows readiness reads.
 *
 * Record keeping only: what a sync changes, and when a cached hash may be
 * used, is decided in src/directory. The bind password is stored as given
 * (it must be usable to bind) and nothing here logs a value.
 */
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

/* ---------------------------------------------------------------- settings */

#define SETTINGS_COLS "domain_id, url, bind_dn, bind_password, base, filter, interval, starttls, updated"

static void read_settings(struct db_stmt *s, void *out)
{
    struct store_ldap_settings *l = out;
    memset(l, 0, sizeof *l);
    l->domain_id = db_col_int64(s, 0);
    col_text(s, 1, l->url, sizeof l->url);
    col_text(s, 2, l->bind_dn, sizeof l->bind_dn);
    col_text(s, 3, l->bind_password, sizeof l->bind_password);
    col_text(s, 4, l->base, sizeof l->base);
    col_text(s, 5, l->filter, sizeof l->filter);
    l->interval = db_col_int64(s, 6);
    l->starttls = db_col_int(s, 7) != 0;
    l->updated = db_col_int64(s, 8);
}

int store_ldap_settings_get(struct store *st, int64_t domain_id, struct store_ldap_settings *out)
{
    static const char sql[] = "SELECT " SETTINGS_COLS " FROM ldap_settings WHERE domain_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    return stmt_fetch_one(st, sql, s, read_settings, out, "ldap settings get");
}

int store_ldap_settings_set(struct store *st, const struct store_ldap_settings *l)
{
    static const char sql[] =
        "INSERT INTO ldap_settings (" SETTINGS_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (domain_id) DO UPDATE SET url = excluded.url, bind_dn = excluded.bind_dn,"
        " bind_password = excluded.bind_password, base = excluded.base, filter = excluded.filter,"
        " interval = excluded.interval, starttls = excluded.starttls, updated = excluded.updated";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, l->domain_id);
    db_bind_text(s, 2, l->url);
    db_bind_text(s, 3, l->bind_dn);
    db_bind_text(s, 4, l->bind_password);
    db_bind_text(s, 5, l->base);
    db_bind_text(s, 6, l->filter);
    db_bind_int64(s, 7, l->interval);
    db_bind_int(s, 8, l->starttls != 0);
    db_bind_int64(s, 9, l->updated);
    return stmt_run(st, sql, s, "ldap settings set");
}

struct settings_each {
    int (*cb)(const struct store_ldap_settings *, void *);
    void *arg;
};

static int settings_each(struct db_stmt *s, void *ctx)
{
    struct settings_each *e = ctx;
    struct store_ldap_settings l;
    read_settings(s, &l);
    int stop = e->cb(&l, e->arg);
    memset(l.bind_password, 0, sizeof l.bind_password);
    return stop;
}

int store_ldap_settings_list(struct store *st, int (*cb)(const struct store_ldap_settings *, void *), void *arg)
{
    static const char sql[] = "SELECT " SETTINGS_COLS " FROM ldap_settings ORDER BY domain_id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    struct settings_each e = {cb, arg};
    return stmt_each(st, sql, s, settings_each, &e, "ldap settings list");
}

/* ---------------------------------------------------------------- reports */

#define REPORT_COLS                                                                                        \
    "domain_id, at, ok, duration_ms, entries, added, updated, suspended, aliases, aliases_removed, nerrors, " \
    "errors"

static void read_report(struct db_stmt *s, void *out)
{
    struct store_ldap_report *r = out;
    memset(r, 0, sizeof *r);
    r->domain_id = db_col_int64(s, 0);
    r->at = db_col_int64(s, 1);
    r->ok = db_col_int(s, 2) != 0;
    r->duration_ms = db_col_int64(s, 3);
    r->entries = (unsigned)db_col_int64(s, 4);
    r->added = (unsigned)db_col_int64(s, 5);
    r->updated = (unsigned)db_col_int64(s, 6);
    r->suspended = (unsigned)db_col_int64(s, 7);
    r->aliases = (unsigned)db_col_int64(s, 8);
    r->aliases_removed = (unsigned)db_col_int64(s, 9);
    r->nerrors = (unsigned)db_col_int64(s, 10);
    col_text(s, 11, r->errors, sizeof r->errors);
}

int store_ldap_report_get(struct store *st, int64_t domain_id, struct store_ldap_report *out)
{
    static const char sql[] = "SELECT " REPORT_COLS " FROM ldap_reports WHERE domain_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    return stmt_fetch_one(st, sql, s, read_report, out, "ldap report get");
}

int store_ldap_report_set(struct store *st, const struct store_ldap_report *r)
{
    static const char sql[] =
        "INSERT INTO ldap_reports (" REPORT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
        "ON CONFLICT (domain_id) DO UPDATE SET at = excluded.at, ok = excluded.ok, "
        "duration_ms = excluded.duration_ms, entries = excluded.entries, added = excluded.added, "
        "updated = excluded.updated, suspended = excluded.suspended, aliases = excluded.aliases, "
        "aliases_removed = excluded.aliases_removed, nerrors = excluded.nerrors, errors = excluded.errors";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, r->domain_id);
    db_bind_int64(s, 2, r->at);
    db_bind_int(s, 3, r->ok != 0);
    db_bind_int64(s, 4, r->duration_ms);
    db_bind_int64(s, 5, r->entries);
    db_bind_int64(s, 6, r->added);
    db_bind_int64(s, 7, r->updated);
    db_bind_int64(s, 8, r->suspended);
    db_bind_int64(s, 9, r->aliases);
    db_bind_int64(s, 10, r->aliases_removed);
    db_bind_int64(s, 11, r->nerrors);
    db_bind_text(s, 12, r->errors);
    return stmt_run(st, sql, s, "ldap report set");
}

/* ---------------------------------------------------------------- directory users */

static void read_ldap_user(struct db_stmt *s, void *out)
{
    struct store_ldap_user *u = out;
    memset(u, 0, sizeof *u);
    u->user_id = db_col_int64(s, 0);
    col_text(s, 1, u->dn, sizeof u->dn);
    col_text(s, 2, u->pw_cache, sizeof u->pw_cache);
    u->sync_suspended = db_col_int(s, 3) != 0;
}

int store_ldap_user_get(struct store *st, int64_t user_id, struct store_ldap_user *out)
{
    static const char sql[] = "SELECT user_id, dn, pw_cache, sync_suspended FROM ldap_users WHERE user_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    return stmt_fetch_one(st, sql, s, read_ldap_user, out, "ldap user get");
}

int store_ldap_user_set(struct store *st, int64_t user_id, const char *dn, int sync_suspended)
{
    static const char sql[] = "INSERT INTO ldap_users (user_id, dn, sync_suspended) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (user_id) DO UPDATE SET dn = excluded.dn,"
                              " sync_suspended = excluded.sync_suspended";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_text(s, 2, dn);
    db_bind_int(s, 3, sync_suspended != 0);
    return stmt_run(st, sql, s, "ldap user set");
}

int store_ldap_user_set_cache(struct store *st, int64_t user_id, const char *pw_hash)
{
    static const char sql[] = "UPDATE ldap_users SET pw_cache = ?2 WHERE user_id = ?1";
    if (!pw_hash || strlen(pw_hash) >= sizeof((struct store_ldap_user *)0)->pw_cache) {
        log_err("store: cache the password of user %lld: hash missing or too long", (long long)user_id);
        return STORE_ERR;
    }
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_text(s, 2, pw_hash);
    int rc = stmt_run(st, sql, s, "ldap user cache");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

int store_ldap_user_set_suspended(struct store *st, int64_t user_id, int sync_suspended)
{
    static const char sql[] = "UPDATE ldap_users SET sync_suspended = ?2 WHERE user_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_int(s, 2, sync_suspended != 0);
    int rc = stmt_run(st, sql, s, "ldap user suspended");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

struct ldap_user_each {
    struct store *st;
    int (*cb)(const struct store_user *, const struct store_ldap_user *, void *);
    void *arg;
    int rc;
};

static int ldap_user_each(struct db_stmt *s, void *ctx)
{
    struct ldap_user_each *e = ctx;
    struct store_ldap_user l;
    struct store_user u;
    read_ldap_user(s, &l);
    if ((e->rc = store_user_get_by_id(e->st, l.user_id, &u)) != STORE_OK)
        return 1;
    int stop = e->cb(&u, &l, e->arg);
    memset(l.pw_cache, 0, sizeof l.pw_cache);
    memset(u.pw_hash, 0, sizeof u.pw_hash);
    return stop;
}

int store_ldap_user_list(struct store *st, int64_t domain_id,
                         int (*cb)(const struct store_user *, const struct store_ldap_user *, void *), void *arg)
{
    static const char sql[] = "SELECT l.user_id, l.dn, l.pw_cache, l.sync_suspended FROM ldap_users l"
                              " JOIN users u ON u.id = l.user_id WHERE u.domain_id = ?1 ORDER BY u.email";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    struct ldap_user_each e = {st, cb, arg, STORE_OK};
    int rc = stmt_each(st, sql, s, ldap_user_each, &e, "ldap user list");
    return rc == STORE_OK && e.rc != STORE_OK ? STORE_ERR : rc;
}

/* ---------------------------------------------------------------- aliases */

int store_ldap_alias_add(struct store *st, int64_t user_id, const char *alias)
{
    static const char sql[] = "INSERT INTO aliases (alias, user_id, from_ldap) VALUES (lower(?1), ?2, 1)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, alias);
    db_bind_int64(s, 2, user_id);
    return stmt_run(st, sql, s, "ldap alias add");
}

struct alias_each {
    int (*cb)(const char *, void *);
    void *arg;
};

static int alias_each(struct db_stmt *s, void *ctx)
{
    struct alias_each *e = ctx;
    char alias[ADDR_MAX + 1];
    col_text(s, 0, alias, sizeof alias);
    return e->cb(alias, e->arg);
}

int store_ldap_alias_list(struct store *st, int64_t user_id, int (*cb)(const char *alias, void *), void *arg)
{
    static const char sql[] = "SELECT alias FROM aliases WHERE user_id = ?1 AND from_ldap = 1 ORDER BY alias";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    struct alias_each e = {cb, arg};
    return stmt_each(st, sql, s, alias_each, &e, "ldap alias list");
}

/* ---------------------------------------------------------------- logins, readiness */

int store_user_set_last_login(struct store *st, int64_t user_id, int64_t at)
{
    static const char sql[] = "UPDATE users SET last_login = ?2 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_int64(s, 2, at);
    int rc = stmt_run(st, sql, s, "user last login");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

struct readiness_each {
    int (*cb)(const struct store_user_readiness *, void *);
    void *arg;
};

static int readiness_each(struct db_stmt *s, void *ctx)
{
    struct readiness_each *e = ctx;
    struct store_user_readiness r;
    memset(&r, 0, sizeof r);
    r.user_id = db_col_int64(s, 0);
    r.domain_id = db_col_int64(s, 1);
    col_text(s, 2, r.email, sizeof r.email);
    r.has_password = db_col_int(s, 3) != 0;
    r.active = db_col_int(s, 4) != 0;
    r.suspended = db_col_int(s, 5) != 0;
    r.last_login = db_col_int64(s, 6);
    r.ldap = db_col_int(s, 7) != 0;
    r.ldap_cached = db_col_int(s, 8) != 0;
    r.sync_suspended = db_col_int(s, 9) != 0;
    return e->cb(&r, e->arg);
}

/* Only whether a hash is there leaves the database, never the hash. */
#define READINESS_SELECT                                                                                     \
    "SELECT u.id, u.domain_id, u.email, u.pw_hash <> '', u.active, u.suspended, u.last_login,"               \
    " l.user_id IS NOT NULL, coalesce(l.pw_cache, '') <> '', coalesce(l.sync_suspended, 0)"                   \
    " FROM users u LEFT JOIN ldap_users l ON l.user_id = u.id"

static int readiness_copy(const struct store_user_readiness *r, void *arg)
{
    *(struct store_user_readiness *)arg = *r;
    return 0;
}

int store_user_readiness_get(struct store *st, int64_t user_id, struct store_user_readiness *out)
{
    static const char sql[] = READINESS_SELECT " WHERE u.id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    memset(out, 0, sizeof *out);
    out->user_id = -1;
    struct readiness_each e = {readiness_copy, out};
    int rc = stmt_each(st, sql, s, readiness_each, &e, "user readiness");
    return rc == STORE_OK && out->user_id != user_id ? STORE_NOTFOUND : rc;
}

int store_user_readiness_list(struct store *st, int64_t domain_id, int64_t customer_id,
                              int (*cb)(const struct store_user_readiness *, void *), void *arg)
{
    static const char sql_domain[] = READINESS_SELECT " WHERE u.domain_id = ?1 ORDER BY u.email";
    static const char sql_customer[] = READINESS_SELECT
        " JOIN domains d ON d.id = u.domain_id WHERE d.customer_id = ?1 ORDER BY u.email";
    static const char sql_all[] = READINESS_SELECT " ORDER BY u.email";
#undef READINESS_SELECT
    const char *sql = domain_id ? sql_domain : customer_id ? sql_customer : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    if (domain_id)
        db_bind_int64(s, 1, domain_id);
    else if (customer_id)
        db_bind_int64(s, 1, customer_id);
    struct readiness_each e = {cb, arg};
    return stmt_each(st, sql, s, readiness_each, &e, "user readiness list");
}
