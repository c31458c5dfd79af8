/*
 * store_db.c — what both engines of store.h share: the per-connection
 * statement cache, the statement layer's calls (dispatched to the engine's
 * db_ops), the helpers the store_*.c files use, transactions, and opening a
 * store on the engine the config names (`store = sqlite` or a postgresql://
 * URL).
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

struct db_stmt *stmt_get(struct store *st, const char *sql)
{
    struct stmt_slot *slot = slot_find(st, sql);
    if (slot->sql) {
        if (!slot->stmt->busy)
            return slot->stmt;
        return st->ops->prepare(st, sql, 0); /* re-entered: a private copy */
    }
    if ((st->used + 1) * 2 > st->nslots) {
        if (slots_grow(st) != 0) {
            log_err("store: out of memory for the statement cache");
            return NULL;
        }
        slot = slot_find(st, sql);
    }
    struct db_stmt *stmt = st->ops->prepare(st, sql, 1);
    if (!stmt)
        return NULL;
    slot->sql = sql;
    slot->stmt = stmt;
    st->used++;
    return stmt;
}

void stmt_put(struct store *st, const char *sql, struct db_stmt *stmt)
{
    (void)st, (void)sql;
    if (!stmt)
        return;
    if (!stmt->persistent) {
        stmt->ops->finalize(stmt);
        return;
    }
    stmt->ops->reset(stmt);
    stmt->busy = 0;
}

struct db_stmt *db_prepare(struct store *st, const char *sql)
{
    return st->ops->prepare(st, sql, 0);
}

void db_finalize(struct db_stmt *stmt)
{
    if (stmt)
        stmt->ops->finalize(stmt);
}

/* ------------------------------------------------------------ statement layer */

void db_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
    s->ops->bind_int64(s, idx, v);
}

void db_bind_int(struct db_stmt *s, int idx, int v)
{
    s->ops->bind_int64(s, idx, v);
}

void db_bind_text(struct db_stmt *s, int idx, const char *t)
{
    t = t ? t : "";
    s->ops->bind_text(s, idx, t, strlen(t));
}

void db_bind_textn(struct db_stmt *s, int idx, const char *t, size_t len)
{
    s->ops->bind_text(s, idx, t ? t : "", t ? len : 0);
}

void db_bind_blob(struct db_stmt *s, int idx, const void *p, size_t len)
{
    s->ops->bind_blob(s, idx, p, len);
}

void db_bind_null(struct db_stmt *s, int idx)
{
    s->ops->bind_null(s, idx);
}

int db_bind_count(struct db_stmt *s)
{
    return s->ops->bind_count(s);
}

int db_step(struct db_stmt *s)
{
    s->busy = 1;
    return s->ops->step(s);
}

int64_t db_col_int64(struct db_stmt *s, int i)
{
    return s->ops->col_int64(s, i);
}

int db_col_int(struct db_stmt *s, int i)
{
    return (int)s->ops->col_int64(s, i);
}

const char *db_col_text(struct db_stmt *s, int i)
{
    return s->ops->col_text(s, i);
}

const void *db_col_blob(struct db_stmt *s, int i)
{
    return s->ops->col_blob(s, i);
}

size_t db_col_bytes(struct db_stmt *s, int i)
{
    return s->ops->col_bytes(s, i);
}

int db_col_type(struct db_stmt *s, int i)
{
    return s->ops->col_type(s, i);
}

void col_text(struct db_stmt *stmt, int i, char *out, size_t outlen)
{
    const char *s = db_col_text(stmt, i);
    size_t n = db_col_bytes(stmt, i);
    if (n >= outlen)
        n = outlen - 1;
    if (n)
        memcpy(out, s, n);
    out[n] = '\0';
}

int db_exec(struct store *st, const char *sql, const char *what)
{
    return db_rc(st, st->ops->exec(st, sql), what);
}

/* ------------------------------------------------------------------- helpers */

int db_rc(struct store *st, int rc, const char *what)
{
    switch (rc) {
    case DB_DONE:
    case DB_ROW:
        return STORE_OK;
    case DB_UNIQUE:
        return STORE_EXISTS;
    case DB_FOREIGN:
        return STORE_NOTFOUND;
    default:
        log_err("store: %s: %s", what, db_errmsg(st));
        return STORE_ERR;
    }
}

int stmt_run(struct store *st, const char *sql, struct db_stmt *stmt, const char *what)
{
    int out = db_rc(st, db_step(stmt), what);
    stmt_put(st, sql, stmt);
    return out;
}

int stmt_fetch_one(struct store *st, const char *sql, struct db_stmt *stmt,
                   void (*read)(struct db_stmt *stmt, void *out), void *out, const char *what)
{
    int rc = db_step(stmt);
    int ret = STORE_NOTFOUND;
    if (rc == DB_ROW) {
        read(stmt, out);
        ret = STORE_OK;
    } else if (rc != DB_DONE) {
        ret = db_rc(st, rc, what);
    }
    stmt_put(st, sql, stmt);
    return ret;
}

int stmt_insert(struct store *st, const char *sql, struct db_stmt *stmt, int64_t *id_out, const char *what)
{
    int step = db_step(stmt);
    int64_t id = step == DB_ROW ? db_col_int64(stmt, 0) : 0;
    int rc = step == DB_DONE ? STORE_EXISTS : db_rc(st, step, what);
    stmt_put(st, sql, stmt);
    if (id_out)
        *id_out = rc == STORE_OK ? id : 0;
    return rc;
}

static void read_count(struct db_stmt *stmt, void *out)
{
    *(unsigned *)out = (unsigned)db_col_int64(stmt, 0);
}

int stmt_fetch_count(struct store *st, const char *sql, struct db_stmt *stmt, unsigned *count, const char *what)
{
    unsigned n = 0;
    int rc = stmt_fetch_one(st, sql, stmt, read_count, &n, what);
    if (count)
        *count = rc == STORE_OK ? n : 0;
    return rc;
}

int stmt_each(struct store *st, const char *sql, struct db_stmt *stmt,
              int (*each)(struct db_stmt *stmt, void *ctx), void *ctx, const char *what)
{
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW)
        if (each(stmt, ctx) != 0) {
            rc = DB_DONE;
            break;
        }
    int ret = STORE_OK;
    if (rc != DB_DONE) {
        log_err("store: %s: %s", what, db_errmsg(st));
        ret = STORE_ERR;
    }
    stmt_put(st, sql, stmt);
    return ret;
}

/* -------------------------------------------------------------- transactions */

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
    int rc = st->ops->exec(st, sql);
    if (rc != DB_DONE) {
        log_err("store: %s: %s", what, db_errmsg(st));
        return STORE_ERR;
    }
    return STORE_OK;
}

int store_in_transaction(struct store *st)
{
    return st->ops->in_transaction(st);
}

int store_begin(struct store *st)
{
    if (store_in_transaction(st)) {
        log_err("store: BEGIN inside a transaction (nested transactions are a bug)");
        return STORE_ERR;
    }
    return tx_exec(st, st->ops->begin_sql, "begin transaction");
}

int store_commit(struct store *st)
{
    st->savepoints = 0;
    return tx_exec(st, SQL_COMMIT, "commit");
}

int store_rollback(struct store *st)
{
    st->savepoints = 0;
    if (!store_in_transaction(st)) /* the engine already rolled back (SQLite after an I/O error) */
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
    return tx_exec(st, op->own_tx ? st->ops->begin_sql : SQL_OP_SAVEPOINT, "begin operation");
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

int store_make_dir(const char *path, char *err, size_t errlen)
{
    if (make_dirs(path, 0700) == 0)
        return 0;
    snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    return -1;
}

int store_config_is_pg(const struct config *cfg)
{
    return strncmp(cfg->store, "postgresql://", 13) == 0 || strncmp(cfg->store, "postgres://", 11) == 0;
}

/* A database that lifeboatctl migrate began to fill and did not finish
 * holds half an installation: no node may start on it. 1 when so. */
static int copy_unfinished(struct store *st)
{
    static const char sql[] = "SELECT 1 WHERE to_regclass('migrate_progress') IS NOT NULL";
    static const char sql_run[] = "SELECT count(*) FROM migrate_progress WHERE item = '' AND done = 0";
    if (st->kind != DB_PG)
        return 0;
    int has = 0;
    unsigned open = 0;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s || stmt_fetch_one(st, sql, s, read_col0_int, &has, "migrate progress") == STORE_ERR)
        return 0; /* the store's own errors show soon enough */
    if (!has || !(s = stmt_get(st, sql_run)))
        return 0;
    return stmt_fetch_count(st, sql_run, s, &open, "migrate progress") == STORE_OK && open > 0;
}

static int open_store(const struct config *cfg, struct store **out, int migrate, char *err, size_t errlen)
{
    *out = NULL;
    const struct db_ops *ops;
    if (strcmp(cfg->store, "sqlite") == 0)
        ops = &db_sqlite_ops;
    else if (store_config_is_pg(cfg))
        ops = &db_pg_ops;
    else {
        snprintf(err, errlen, "store = %s: neither sqlite nor a postgresql:// URL", cfg->store);
        return STORE_ERR;
    }
    struct store *st = calloc(1, sizeof *st);
    if (st)
        st->slots = calloc(st->nslots = 64, sizeof *st->slots);
    if (!st || !st->slots) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    st->ops = ops;
    st->kind = ops == &db_pg_ops ? DB_PG : DB_SQLITE;
    snprintf(st->node, sizeof st->node, "%s", cfg->node_name);
    /* data_dir holds the node's own files whatever the engine (blobs unless
     * they live elsewhere, tmp/, DKIM keys). */
    if (store_prepare_data_dir(cfg->data_dir, err, errlen) != 0 || ops->open(st, cfg, err, errlen) != 0 ||
        (migrate && store_migrate(st, err, errlen) != 0)) {
        store_close(st);
        return STORE_ERR;
    }
    if (migrate && copy_unfinished(st)) {
        snprintf(err, errlen, "lifeboatctl migrate has not finished copying into this database: run it again "
                              "until its count check passes, then start the nodes");
        store_close(st);
        return STORE_ERR;
    }
    *out = st;
    return STORE_OK;
}

int store_open(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
    return open_store(cfg, out, 1, err, errlen);
}

int store_open_unmigrated(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
    return open_store(cfg, out, 0, err, errlen);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nslots; i++)
        if (st->slots[i].stmt)
            st->slots[i].stmt->ops->finalize(st->slots[i].stmt);
    free(st->slots);
    if (st->conn)
        st->ops->close(st);
    free(st);
}
