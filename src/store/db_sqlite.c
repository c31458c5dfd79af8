/*
 * db_sqlite.c — the embedded SQLite engine of the statement layer
 * (store_internal.h's db_ops): one sqlite3 connection on data_dir/lifeboat.db.
 *
 * The file runs in WAL mode, so readers (the daemon's loop thread, lifeboatctl
 * listings) never wait for the writer, with synchronous=FULL, so a COMMIT is on
 * disk when it returns: that is what lets smtpd answer 250. The daemon's writer
 * thread and lifeboatctl share the file; SQLite's locks serialise them and the
 * busy timeout makes the loser wait instead of failing. BEGIN IMMEDIATE takes
 * the write lock at once, so a transaction never fails half-way on a lock.
 */
#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* How long a connection waits for another's write lock before reporting an error. */
#define LITE_BUSY_TIMEOUT_MS 10000
/* Keep the WAL file from growing without bound after a burst. */
#define LITE_WAL_SIZE_LIMIT (64 * 1024 * 1024)

struct lite_stmt {
    struct db_stmt base;
    sqlite3_stmt *stmt;
};

static sqlite3 *lite_db(const struct store *st)
{
    return st->conn;
}

static sqlite3_stmt *raw(struct db_stmt *s)
{
    return ((struct lite_stmt *)s)->stmt;
}

/* Keeps the engine's message for db_errmsg. */
static void keep_errmsg(struct store *st)
{
    snprintf(st->errmsg, sizeof st->errmsg, "%s", sqlite3_errmsg(lite_db(st)));
}

static int map_rc(struct store *st, int rc)
{
    switch (rc) {
    case SQLITE_ROW:
        return DB_ROW;
    case SQLITE_DONE:
    case SQLITE_OK:
        return DB_DONE;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        keep_errmsg(st);
        return DB_UNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        keep_errmsg(st);
        return DB_FOREIGN;
    default:
        keep_errmsg(st);
        return DB_ERR;
    }
}

/*
 * The shared dialect's row locks (FOR UPDATE [SKIP LOCKED], FOR SHARE, which several
 * PostgreSQL nodes need) mean nothing here: a write transaction holds the
 * whole database from BEGIN IMMEDIATE on. Returns sql without them, in buf
 * when there were any.
 */
static const char *without_row_locks(const char *sql, char *buf, size_t buflen)
{
    static const char *const clauses[] = {" FOR UPDATE SKIP LOCKED", " FOR UPDATE", " FOR SHARE"};
    if ((!strstr(sql, " FOR UPDATE") && !strstr(sql, " FOR SHARE")) || strlen(sql) >= buflen)
        return sql;
    char *o = buf;
    for (const char *p = sql; *p;) {
        size_t skip = 0;
        for (size_t i = 0; i < sizeof clauses / sizeof clauses[0] && !skip; i++)
            if (strncmp(p, clauses[i], strlen(clauses[i])) == 0)
                skip = strlen(clauses[i]);
        if (skip)
            p += skip;
        else
            *o++ = *p++;
    }
    *o = '\0';
    return buf;
}

static struct db_stmt *l_prepare(struct store *st, const char *sql, int persistent)
{
    struct lite_stmt *ls = calloc(1, sizeof *ls);
    if (!ls) {
        log_err("store: out of memory preparing a statement");
        return NULL;
    }
    char plain[4096];
    int rc = sqlite3_prepare_v3(lite_db(st), without_row_locks(sql, plain, sizeof plain), -1,
                                persistent ? SQLITE_PREPARE_PERSISTENT : 0, &ls->stmt, NULL);
    if (rc != SQLITE_OK) {
        log_err("store: cannot prepare \"%.60s...\": %s", sql, sqlite3_errmsg(lite_db(st)));
        free(ls);
        return NULL;
    }
    ls->base.st = st;
    ls->base.ops = &db_sqlite_ops;
    ls->base.persistent = persistent;
    return &ls->base;
}

static void l_finalize(struct db_stmt *s)
{
    sqlite3_finalize(raw(s));
    free(s);
}

static void l_reset(struct db_stmt *s)
{
    sqlite3_reset(raw(s));
    sqlite3_clear_bindings(raw(s));
}

static int l_exec(struct store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(lite_db(st), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "%s", msg ? msg : sqlite3_errmsg(lite_db(st)));
        sqlite3_free(msg);
        return DB_ERR;
    }
    return DB_DONE;
}

static int l_in_transaction(struct store *st)
{
    return !sqlite3_get_autocommit(lite_db(st));
}

static unsigned l_conn_gen(const struct store *st)
{
    (void)st;
    return 1;
}

static void l_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
    sqlite3_bind_int64(raw(s), idx, v);
}

static void l_bind_text(struct db_stmt *s, int idx, const char *t, size_t len)
{
    sqlite3_bind_text(raw(s), idx, t, (int)len, SQLITE_STATIC);
}

static void l_bind_blob(struct db_stmt *s, int idx, const void *p, size_t len)
{
    sqlite3_bind_blob(raw(s), idx, p, (int)len, SQLITE_STATIC);
}

static void l_bind_null(struct db_stmt *s, int idx)
{
    sqlite3_bind_null(raw(s), idx);
}

static int l_bind_count(struct db_stmt *s)
{
    return sqlite3_bind_parameter_count(raw(s));
}

static int l_step(struct db_stmt *s)
{
    int rc = map_rc(s->st, sqlite3_step(raw(s)));
    if (rc == DB_DONE)
        s->st->changes = (unsigned)sqlite3_changes(lite_db(s->st));
    return rc;
}

static int64_t l_col_int64(struct db_stmt *s, int i)
{
    return sqlite3_column_int64(raw(s), i);
}

static const char *l_col_text(struct db_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(raw(s), i);
    return t ? (const char *)t : "";
}

static const void *l_col_blob(struct db_stmt *s, int i)
{
    return sqlite3_column_blob(raw(s), i);
}

static size_t l_col_bytes(struct db_stmt *s, int i)
{
    return (size_t)sqlite3_column_bytes(raw(s), i);
}

static int l_col_type(struct db_stmt *s, int i)
{
    switch (sqlite3_column_type(raw(s), i)) {
    case SQLITE_INTEGER:
        return DB_TYPE_INT;
    case SQLITE_FLOAT:
        return DB_TYPE_FLOAT;
    case SQLITE_TEXT:
        return DB_TYPE_TEXT;
    case SQLITE_BLOB:
        return DB_TYPE_BLOB;
    default:
        return DB_TYPE_NULL;
    }
}

/* ---------------------------------------------------------- open and close */

static int pragma(struct store *st, const char *sql, char *err, size_t errlen)
{
    if (l_exec(st, sql) != DB_DONE) {
        snprintf(err, errlen, "%s: %s", sql, st->errmsg);
        return -1;
    }
    return 0;
}

static int want_wal(void *arg, int ncol, char **val, char **name)
{
    (void)name;
    *(int *)arg = ncol == 1 && val[0] && strcmp(val[0], "wal") == 0;
    return 0;
}

static int l_open(struct store *st, const struct config *cfg, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/lifeboat.db", cfg->data_dir);
    /* NOMUTEX: a connection is used by one thread at a time (store.h), so
     * SQLite's per-connection mutex is pure overhead. */
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    st->conn = db;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        return -1;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, LITE_BUSY_TIMEOUT_MS);

    int wal = 0;
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", want_wal, &wal, &msg) != SQLITE_OK || !wal) {
        snprintf(err, errlen, "%s: cannot switch to WAL mode: %s", path,
                 msg ? msg : "the file system does not support it");
        sqlite3_free(msg);
        return -1;
    }
    char limit[64];
    snprintf(limit, sizeof limit, "PRAGMA journal_size_limit=%d", LITE_WAL_SIZE_LIMIT);
    if (pragma(st, "PRAGMA synchronous=FULL", err, errlen) != 0 ||
        pragma(st, "PRAGMA foreign_keys=ON", err, errlen) != 0 ||
        pragma(st, "PRAGMA temp_store=MEMORY", err, errlen) != 0 || pragma(st, limit, err, errlen) != 0)
        return -1;
    return 0;
}

static void l_close(struct store *st)
{
    if (sqlite3_close(lite_db(st)) != SQLITE_OK)
        log_err("store: close: %s", sqlite3_errmsg(lite_db(st)));
    st->conn = NULL;
}

const struct db_ops db_sqlite_ops = {
    .open = l_open,
    .close = l_close,
    .prepare = l_prepare,
    .exec = l_exec,
    .in_transaction = l_in_transaction,
    .conn_gen = l_conn_gen,
    .begin_sql = "BEGIN IMMEDIATE",
    .bind_int64 = l_bind_int64,
    .bind_text = l_bind_text,
    .bind_blob = l_bind_blob,
    .bind_null = l_bind_null,
    .bind_count = l_bind_count,
    .step = l_step,
    .reset = l_reset,
    .finalize = l_finalize,
    .col_int64 = l_col_int64,
    .col_text = l_col_text,
    .col_blob = l_col_blob,
    .col_bytes = l_col_bytes,
    .col_type = l_col_type,
};
