/*
 * store_sqlite.c — the embedded SQLite backend of store.h: opening the
 * database, the per-connection statement cache, transactions and the helpers
 * the other store_*.c files share (store_internal.h).
 *
 * data_dir/lifeboat.db runs in WAL mode, so readers (the daemon's loop thread,
 * lifeboatctl listings) never wait for the writer, with synchronous=FULL, so a
 * COMMIT is on disk when it returns: that is what lets smtpd answer 250. The
 * daemon's writer thread and lifeboatctl share the file; SQLite's locks
 * serialise them and the busy timeout makes the loser wait instead of failing.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/log.h"

/* How long a connection waits for another's write lock before reporting an error. */
#define STORE_BUSY_TIMEOUT_MS 10000
/* Keep the WAL file from growing without bound after a burst. */
#define STORE_WAL_SIZE_LIMIT (64 * 1024 * 1024)

/* ------------------------------------------------------------ statement cache */

static size_t slot_hash(const char *sql, size_t nslots)
{
    uintptr_t p = (uintptr_t)sql;
    p ^= p >> 17;
    p *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(p >> 7) & (nslots - 1);
}

static struct stmt_slot *slot_find(struct store *st, const char *sql)
{
    size_t i = slot_hash(sql, st->nslots);
    while (st->slots[i].sql && st->slots[i].sql != sql)
        i = (i + 1) & (st->nslots - 1);
    return &st->slots[i];
}

static int slots_grow(struct store *st)
{
    size_t n = st->nslots * 2;
    struct stmt_slot *old = st->slots;
    size_t oldn = st->nslots;
    st->slots = calloc(n, sizeof *st->slots);
    if (!st->slots) {
        st->slots = old;
        return -1;
    }
    st->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i].sql)
            *slot_find(st, old[i].sql) = old[i];
    free(old);
    return 0;
}

static sqlite3_stmt *stmt_compile(struct store *st, const char *sql, unsigned flags)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, flags, &stmt, NULL);
    if (rc != SQLITE_OK) {
        log_err("store: cannot prepare \"%.60s...\": %s", sql, sqlite3_errmsg(st->db));
        return NULL;
    }
    return stmt;
}

sqlite3_stmt *stmt_get(struct store *st, const char *sql)
{
    struct stmt_slot *slot = slot_find(st, sql);
    if (slot->sql) {
        if (!sqlite3_stmt_busy(slot->stmt))
            return slot->stmt;
        return stmt_compile(st, sql, 0); /* re-entered: a private copy */
    }
    if ((st->used + 1) * 2 > st->nslots) {
        if (slots_grow(st) != 0) {
            log_err("store: out of memory for the statement cache");
            return NULL;
        }
        slot = slot_find(st, sql);
    }
    sqlite3_stmt *stmt = stmt_compile(st, sql, SQLITE_PREPARE_PERSISTENT);
    if (!stmt)
        return NULL;
    slot->sql = sql;
    slot->stmt = stmt;
    st->used++;
    return stmt;
}

void stmt_put(struct store *st, const char *sql, sqlite3_stmt *stmt)
{
    if (!stmt)
        return;
    struct stmt_slot *slot = slot_find(st, sql);
    if (slot->stmt != stmt) {
        sqlite3_finalize(stmt);
        return;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* ------------------------------------------------------------------- helpers */

int store_sqlite_rc(struct store *st, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return STORE_EXISTS;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return STORE_NOTFOUND;
    default:
        log_err("store: %s: %s", what, sqlite3_errmsg(st->db));
        return STORE_ERR;
    }
}

int stmt_run(struct store *st, const char *sql, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    int out = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_sqlite_rc(st, rc, what);
    stmt_put(st, sql, stmt);
    return out;
}

int stmt_fetch_one(struct store *st, const char *sql, sqlite3_stmt *stmt,
                   void (*read)(sqlite3_stmt *stmt, void *out), void *out, const char *what)
{
    int rc = sqlite3_step(stmt);
    int ret = STORE_NOTFOUND;
    if (rc == SQLITE_ROW) {
        read(stmt, out);
        ret = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        log_err("store: %s: %s", what, sqlite3_errmsg(st->db));
        ret = STORE_ERR;
    }
    stmt_put(st, sql, stmt);
    return ret;
}

static void read_count(sqlite3_stmt *stmt, void *out)
{
    *(unsigned *)out = (unsigned)sqlite3_column_int64(stmt, 0);
}

int stmt_fetch_count(struct store *st, const char *sql, sqlite3_stmt *stmt, unsigned *count, const char *what)
{
    unsigned n = 0;
    int rc = stmt_fetch_one(st, sql, stmt, read_count, &n, what);
    if (count)
        *count = rc == STORE_OK ? n : 0;
    return rc;
}

int stmt_each(struct store *st, const char *sql, sqlite3_stmt *stmt,
              int (*each)(sqlite3_stmt *stmt, void *ctx), void *ctx, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (each(stmt, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    int ret = STORE_OK;
    if (rc != SQLITE_DONE) {
        log_err("store: %s: %s", what, sqlite3_errmsg(st->db));
        ret = STORE_ERR;
    }
    stmt_put(st, sql, stmt);
    return ret;
}

int bind_text(sqlite3_stmt *stmt, int idx, const char *s)
{
    return sqlite3_bind_text(stmt, idx, s ? s : "", -1, SQLITE_STATIC);
}

void col_text(sqlite3_stmt *stmt, int i, char *out, size_t outlen)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    size_t n = s ? (size_t)sqlite3_column_bytes(stmt, i) : 0;
    if (n >= outlen)
        n = outlen - 1;
    if (n)
        memcpy(out, s, n);
    out[n] = '\0';
}

/* -------------------------------------------------------------- transactions */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT job";
static const char SQL_RELEASE[] = "RELEASE job";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO job";
static const char SQL_OP_SAVEPOINT[] = "SAVEPOINT op";
static const char SQL_OP_RELEASE[] = "RELEASE op";
static const char SQL_OP_ROLLBACK_TO[] = "ROLLBACK TO op";

/* Transaction control: any failure (even a constraint, as a deferred foreign
 * key at COMMIT) is an error, logged with its cause. */
static int tx_exec(struct store *st, const char *sql, const char *what)
{
    sqlite3_stmt *stmt = stmt_get(st, sql);
    if (!stmt)
        return STORE_ERR;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        log_err("store: %s: %s", what, sqlite3_errmsg(st->db));
    stmt_put(st, sql, stmt);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERR;
}

int store_in_transaction(struct store *st)
{
    return !sqlite3_get_autocommit(st->db);
}

int store_begin(struct store *st)
{
    if (store_in_transaction(st)) {
        log_err("store: BEGIN inside a transaction (nested transactions are a bug)");
        return STORE_ERR;
    }
    return tx_exec(st, SQL_BEGIN, "begin transaction");
}

int store_commit(struct store *st)
{
    st->savepoints = 0;
    return tx_exec(st, SQL_COMMIT, "commit");
}

int store_rollback(struct store *st)
{
    st->savepoints = 0;
    if (!store_in_transaction(st)) /* SQLite already rolled back after an I/O error */
        return STORE_OK;
    return tx_exec(st, SQL_ROLLBACK, "rollback");
}

int store_savepoint(struct store *st)
{
    int rc = tx_exec(st, SQL_SAVEPOINT, "savepoint");
    if (rc == STORE_OK)
        st->savepoints++;
    return rc;
}

int store_savepoint_release(struct store *st)
{
    if (st->savepoints)
        st->savepoints--;
    return tx_exec(st, SQL_RELEASE, "release savepoint");
}

int store_savepoint_rollback(struct store *st)
{
    if (st->savepoints)
        st->savepoints--;
    /* ROLLBACK TO keeps the savepoint open; release it so they stay balanced. */
    int rc = tx_exec(st, SQL_ROLLBACK_TO, "rollback to savepoint");
    int rc2 = tx_exec(st, SQL_RELEASE, "release savepoint");
    return rc != STORE_OK ? rc : rc2;
}

unsigned store_savepoint_depth(const struct store *st)
{
    return st->savepoints;
}

int op_begin(struct store *st, struct store_op *op)
{
    op->own_tx = !store_in_transaction(st);
    return tx_exec(st, op->own_tx ? SQL_BEGIN : SQL_OP_SAVEPOINT, "begin operation");
}

int op_end(struct store *st, struct store_op *op, int rc)
{
    if (op->own_tx) {
        if (rc == STORE_OK && store_commit(st) == STORE_OK)
            return STORE_OK;
        store_rollback(st);
        return rc == STORE_OK ? STORE_ERR : rc;
    }
    if (rc != STORE_OK)
        tx_exec(st, SQL_OP_ROLLBACK_TO, "rollback operation");
    int rel = tx_exec(st, SQL_OP_RELEASE, "release operation");
    return rc != STORE_OK ? rc : rel;
}

/* ---------------------------------------------------------- open and close */

/* mkdir -p with mode for every directory created; existing ones are kept as they are. */
static int make_dirs(const char *path, mode_t mode)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int store_prepare_data_dir(const char *data_dir, char *err, size_t errlen)
{
    static const char *const sub[] = {"", "/blobs", "/tmp"};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s%s", data_dir, sub[i]);
        if (make_dirs(path, 0700) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int pragma(struct store *st, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
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

int store_open(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strcmp(cfg->store, "sqlite") != 0) {
        snprintf(err, errlen, "store = %s: only the embedded sqlite store is available", cfg->store);
        return STORE_ERR;
    }
    if (store_prepare_data_dir(cfg->data_dir, err, errlen) != 0)
        return STORE_ERR;

    struct store *st = calloc(1, sizeof *st);
    if (st)
        st->slots = calloc(st->nslots = 64, sizeof *st->slots);
    if (!st || !st->slots) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/lifeboat.db", cfg->data_dir);
    /* NOMUTEX: a connection is used by one thread at a time (store.h), so
     * SQLite's per-connection mutex is pure overhead. */
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        store_close(st);
        return STORE_ERR;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);

    int wal = 0;
    char *msg = NULL;
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL", want_wal, &wal, &msg) != SQLITE_OK || !wal) {
        snprintf(err, errlen, "%s: cannot switch to WAL mode: %s", path,
                 msg ? msg : "the file system does not support it");
        sqlite3_free(msg);
        store_close(st);
        return STORE_ERR;
    }
    char limit[64];
    snprintf(limit, sizeof limit, "PRAGMA journal_size_limit=%d", STORE_WAL_SIZE_LIMIT);
    if (pragma(st, "PRAGMA synchronous=FULL", err, errlen) != 0 ||
        pragma(st, "PRAGMA foreign_keys=ON", err, errlen) != 0 ||
        pragma(st, "PRAGMA temp_store=MEMORY", err, errlen) != 0 ||
        pragma(st, limit, err, errlen) != 0 || store_migrate(st, err, errlen) != 0) {
        store_close(st);
        return STORE_ERR;
    }
    *out = st;
    return STORE_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nslots; i++)
        if (st->slots[i].stmt)
            sqlite3_finalize(st->slots[i].stmt);
    free(st->slots);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        log_err("store: close: %s", sqlite3_errmsg(st->db));
    free(st);
}
