/*
 * store_blob_data.c — the SQL behind blob.c when message bodies live in the
 * database (PostgreSQL without blob_dir: table blob_data, one row per body,
 * the zstd frame a blob file would hold), and the advisory locks on a blob id
 * that order puts and removals of files in a blob_dir that several nodes share.
 *
 * Private to src/store (store_internal.h): the rest of lifeboat reads and
 * writes bodies through blob.h and never learns where they are. The ordering
 * rules that make several nodes safe (a body commits with the row that names
 * it; the GC deletes the row first and the body only if the row went) are
 * explained in blob.c, which is the only caller.
 */
#include "store/store_internal.h"

#include <stdint.h>

#include "util/log.h"

/* The two keys of a blob's advisory lock: a class of lifeboat's own ("blob")
 * and 31 bits of the id. Two ids that share them only wait for each other. */
#define BLOB_LOCK_CLASS 0x626c6f62

static int64_t lock_key(const char *blob_id)
{
    uint32_t v = 0;
    for (int i = 0; i < 8 && blob_id[i]; i++) {
        char c = blob_id[i];
        v = v << 4 | (uint32_t)(c >= 'a' ? c - 'a' + 10 : c >= '0' && c <= '9' ? c - '0' : 0);
    }
    return (int64_t)(v & 0x7fffffff);
}

int store_blob_use_lock(struct store *st, const char *blob_id)
{
    static const char sql[] = "SELECT pg_advisory_xact_lock_shared(?1, ?2)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, BLOB_LOCK_CLASS);
    db_bind_int64(s, 2, lock_key(blob_id));
    int rc = db_step(s);
    int out = rc == DB_ROW ? STORE_OK : db_rc(st, rc == DB_DONE ? DB_ERR : rc, "blob use lock");
    stmt_put(st, sql, s);
    return out;
}

int store_blob_remove_lock(struct store *st, const char *blob_id)
{
    static const char sql[] = "SELECT pg_try_advisory_xact_lock(?1, ?2)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, BLOB_LOCK_CLASS);
    db_bind_int64(s, 2, lock_key(blob_id));
    int rc = db_step(s);
    int out = rc == DB_ROW ? (db_col_int(s, 0) ? STORE_OK : STORE_EXISTS)
                           : db_rc(st, rc == DB_DONE ? DB_ERR : rc, "blob remove lock");
    stmt_put(st, sql, s);
    return out;
}

int store_blob_data_put(struct store *st, const char *blob_id, const void *data, size_t len, int if_recorded)
{
    /* Outside the writer the caller records the blob after this, so no row
     * lock protects the body yet: the upsert takes the body's own row lock
     * (a GC that deleted the blobs row then waits for us, or we for it: at
     * worst a deadlock that PostgreSQL breaks). In the writer the job has
     * recorded and referenced the blob already (its row is locked by this
     * transaction), so a body that is there can stay as it is. */
    static const char sql_upsert[] = "INSERT INTO blob_data (id, data) VALUES (?1, ?2) "
                                     "ON CONFLICT (id) DO UPDATE SET data = excluded.data";
    static const char sql_recorded[] = "INSERT INTO blob_data (id, data) SELECT ?1, ?2 "
                                       "WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1) "
                                       "ON CONFLICT (id) DO NOTHING";
    const char *sql = if_recorded ? sql_recorded : sql_upsert;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    db_bind_blob(s, 2, data, len);
    return stmt_run(st, sql, s, "blob body write");
}

int store_blob_data_get(struct store *st, const char *blob_id,
                        int (*use)(const void *data, size_t len, void *arg), void *arg)
{
    static const char sql[] = "SELECT data FROM blob_data WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    int rc = db_step(s);
    int out;
    if (rc == DB_ROW) {
        /* Used in place: the bytes stay valid until stmt_put. */
        const void *p = db_col_blob(s, 0);
        use(p ? p : "", db_col_bytes(s, 0), arg);
        out = STORE_OK;
    } else {
        out = rc == DB_DONE ? STORE_NOTFOUND : db_rc(st, rc, "blob body read");
    }
    stmt_put(st, sql, s);
    return out;
}

int store_blob_data_delete(struct store *st, const char *blob_id)
{
    static const char sql[] = "DELETE FROM blob_data WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob_id);
    int rc = stmt_run(st, sql, s, "blob body delete");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

struct data_each {
    int (*cb)(const char *blob_id, void *);
    void *arg;
};

static int data_each(struct db_stmt *s, void *ctx)
{
    struct data_each *e = ctx;
    char id[BLOB_ID_SIZE];
    col_text(s, 0, id, sizeof id);
    return e->cb(id, e->arg);
}

int store_blob_data_each(struct store *st, int (*cb)(const char *blob_id, void *), void *arg)
{
    static const char sql[] = "SELECT id FROM blob_data";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    struct data_each e = {cb, arg};
    return stmt_each(st, sql, s, data_each, &e, "blob bodies");
}

int store_blob_data_orphans_delete(struct store *st, unsigned *removed)
{
    /* Safe while other nodes run only because a body commits in the same
     * transaction as the blobs row that names it (blob.c): a body whose row is
     * still on its way is not visible here either, so it cannot be taken for
     * an orphan. (A body committed without its row, which only a caller
     * outside the writer that breaks blob.h's contract makes, is fair game.) */
    static const char sql[] = "DELETE FROM blob_data WHERE NOT EXISTS "
                              "(SELECT 1 FROM blobs b WHERE b.id = blob_data.id)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    int rc = stmt_run(st, sql, s, "orphaned blob bodies");
    if (removed)
        *removed = rc == STORE_OK ? db_changes(st) : 0;
    return rc;
}
