/*
 * store_internal.h — shared by the files of src/store that implement store.h,
 * private to src/store.
 *
 * A struct store is one connection to one of two engines: embedded SQLite
 * (db_sqlite.c) or PostgreSQL (db_pg.c). The store_*.c files never call either
 * engine's API: they run SQL through the small statement layer below (struct
 * db_stmt, db_bind_*, db_step, db_col_*), in one dialect both engines accept
 * (? placeholders, which the PostgreSQL side numbers $1..$n; INSERT ... ON
 * CONFLICT; RETURNING instead of a last-insert id; coalesce; FILTER (WHERE)).
 * Where the engines truly differ (schema, full-text search) a file asks
 * st->kind.
 *
 * Each SQL text is a static string next to the code that runs it; the cache is
 * keyed by the string's address, so a statement is compiled once per
 * connection and reused (stmt_get ... stmt_put). stmt_put always resets the
 * statement: one left stepping would hold a read snapshot open.
 */
#ifndef LB_STORE_STORE_INTERNAL_H
#define LB_STORE_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum db_kind { DB_SQLITE, DB_PG };

struct db_stmt;
struct db_ops;

struct stmt_slot {
    const char *sql; /* key: the address of a static SQL text */
    struct db_stmt *stmt;
};

struct store {
    enum db_kind kind;
    const struct db_ops *ops; /* the engine's side of the statement layer */
    void *conn;               /* the engine's connection state */
    struct stmt_slot *slots; /* open addressing, nslots a power of two */
    size_t nslots;
    size_t used;
    unsigned savepoints; /* open store_savepoint levels (store_savepoint_depth) */
    int in_tx;           /* an explicit transaction is open (store_begin) */
    unsigned changes;    /* rows the last INSERT/UPDATE/DELETE changed */
    char node[64];       /* config node_name: whose claims these are */
    unsigned lead_gen;   /* conn_gen when the lead was taken, + 1 (0: not leading) */
    char errmsg[256];    /* the engine's message for the last failure */
};

/* ---------------------------------------------------------- statement layer */

/* What db_step gives: a row, the end, or why it failed (engine-neutral; the
 * message is in st->errmsg). DB_RETRY: the engine asks to run the whole
 * transaction again (a deadlock, a serialisation failure, a lost connection). */
enum { DB_DONE = 0, DB_ROW = 1, DB_ERR = -1, DB_UNIQUE = -2, DB_FOREIGN = -3, DB_RETRY = -4 };

/* Returns the prepared statement for sql (compiled on first use), or NULL after
 * logging. When the cached one is busy (a caller's callback re-entered the same
 * query) a private copy is compiled; stmt_put finalizes it. */
struct db_stmt *stmt_get(struct store *st, const char *sql);
/* Resets the statement and clears its bindings (or finalizes a private copy). */
void stmt_put(struct store *st, const char *sql, struct db_stmt *stmt);
/* An uncached statement for a text built at run time; free it with db_finalize. */
struct db_stmt *db_prepare(struct store *st, const char *sql);
void db_finalize(struct db_stmt *stmt);

/* Binding: idx counts from 1. Text and blobs are not copied: they must outlive
 * the step. db_bind_text binds NULL as "". */
void db_bind_int64(struct db_stmt *s, int idx, int64_t v);
void db_bind_int(struct db_stmt *s, int idx, int v);
void db_bind_text(struct db_stmt *s, int idx, const char *t);
void db_bind_textn(struct db_stmt *s, int idx, const char *t, size_t len);
void db_bind_blob(struct db_stmt *s, int idx, const void *p, size_t len);
/* SQL NULL (the db_bind_* above never bind one). */
void db_bind_null(struct db_stmt *s, int idx);
/* How many parameters the statement has. */
int db_bind_count(struct db_stmt *s);

/* DB_ROW, DB_DONE or a failure (see above). */
int db_step(struct db_stmt *s);

/* Column i (from 0) of the current row. NULL reads as 0 or "". Text and blob
 * pointers are valid until the next step or stmt_put. */
int64_t db_col_int64(struct db_stmt *s, int i);
int db_col_int(struct db_stmt *s, int i);
const char *db_col_text(struct db_stmt *s, int i);
const void *db_col_blob(struct db_stmt *s, int i);
size_t db_col_bytes(struct db_stmt *s, int i);
/* The type of column i's value in the current row, for code that copies
 * columns it does not know (store_copy.c): SQLite's type of the value itself,
 * PostgreSQL's from the column's type (a NULL is DB_TYPE_NULL on both). */
enum db_type { DB_TYPE_NULL, DB_TYPE_INT, DB_TYPE_FLOAT, DB_TYPE_TEXT, DB_TYPE_BLOB };
int db_col_type(struct db_stmt *s, int i);
/* Copies column i into out, truncating to outlen - 1 bytes; NULL gives "". */
void col_text(struct db_stmt *stmt, int i, char *out, size_t outlen);

/* Rows the last INSERT, UPDATE or DELETE changed. */
static inline unsigned db_changes(const struct store *st)
{
    return st->changes;
}
/* The engine's message for the last failure on this connection. */
static inline const char *db_errmsg(const struct store *st)
{
    return st->errmsg[0] ? st->errmsg : "unknown error";
}

/* Maps a db_step result: a row or the end is STORE_OK, a unique violation
 * STORE_EXISTS, a foreign key violation (the referenced row is missing)
 * STORE_NOTFOUND; anything else is logged with what and is STORE_ERR. */
int db_rc(struct store *st, int rc, const char *what);

/* Runs a prepared write statement to completion and resets it; the result as
 * db_rc maps it. */
int stmt_run(struct store *st, const char *sql, struct db_stmt *stmt, const char *what);

/* Readers for stmt_fetch_one of a single-value query: column 0 into an
 * int64_t or an int at out. */
static inline void read_col0_int64(struct db_stmt *stmt, void *out)
{
    *(int64_t *)out = db_col_int64(stmt, 0);
}
static inline void read_col0_int(struct db_stmt *stmt, void *out)
{
    *(int *)out = db_col_int(stmt, 0);
}

/* Steps a query expected to give at most one row: STORE_OK after read(stmt,
 * out) for a row, STORE_NOTFOUND for none, STORE_ERR (logged). Resets stmt.
 * A write with RETURNING is such a query (a conflict gives db_rc's codes). */
int stmt_fetch_one(struct store *st, const char *sql, struct db_stmt *stmt,
                   void (*read)(struct db_stmt *stmt, void *out), void *out, const char *what);
/* Runs an INSERT ... RETURNING id: STORE_OK with the new row's id in *id_out
 * (id_out may be NULL), or db_rc's codes for a conflict. An insert that wrote
 * nothing (ON CONFLICT DO NOTHING) is STORE_EXISTS. */
int stmt_insert(struct store *st, const char *sql, struct db_stmt *stmt, int64_t *id_out, const char *what);
/* stmt_fetch_one for a "SELECT count(*) ..." query: the count into *count
 * (count may be NULL; 0 unless STORE_OK). */
int stmt_fetch_count(struct store *st, const char *sql, struct db_stmt *stmt, unsigned *count, const char *what);
/* Steps through every row calling each(stmt, ctx) until it returns non-zero
 * (stop early, still STORE_OK). Resets stmt. */
int stmt_each(struct store *st, const char *sql, struct db_stmt *stmt,
              int (*each)(struct db_stmt *stmt, void *ctx), void *ctx, const char *what);
/* Runs one statement of transaction control or DDL with no parameters and no
 * rows (BEGIN, SAVEPOINT, a migration's script on SQLite: several statements). */
int db_exec(struct store *st, const char *sql, const char *what);

/* -------------------------------------------------------------- the engines */

/* A statement as the engines see it: each engine's own statement struct
 * begins with this one. */
struct db_stmt {
    struct store *st;
    const struct db_ops *ops;
    int busy;       /* stepped since the last reset */
    int persistent; /* in the cache (else stmt_put finalizes it) */
};

/* What an engine implements (db_sqlite.c, db_pg.c); store_db.c calls it. */
struct db_ops {
    int (*open)(struct store *st, const struct config *cfg, char *err, size_t errlen);
    void (*close)(struct store *st);
    struct db_stmt *(*prepare)(struct store *st, const char *sql, int persistent);
    int (*exec)(struct store *st, const char *sql); /* DB_DONE or a failure */
    int (*in_transaction)(struct store *st);
    /* Counts the connection's (re)connections: session state (prepared
     * statements, advisory locks) belongs to one value. */
    unsigned (*conn_gen)(const struct store *st);
    const char *begin_sql; /* the engine's BEGIN of a write transaction */

    void (*bind_int64)(struct db_stmt *s, int idx, int64_t v);
    void (*bind_text)(struct db_stmt *s, int idx, const char *t, size_t len);
    void (*bind_blob)(struct db_stmt *s, int idx, const void *p, size_t len);
    void (*bind_null)(struct db_stmt *s, int idx);
    int (*bind_count)(struct db_stmt *s);
    int (*step)(struct db_stmt *s);
    void (*reset)(struct db_stmt *s); /* also clears the bindings */
    void (*finalize)(struct db_stmt *s);
    int64_t (*col_int64)(struct db_stmt *s, int i);
    const char *(*col_text)(struct db_stmt *s, int i); /* never NULL */
    const void *(*col_blob)(struct db_stmt *s, int i);
    size_t (*col_bytes)(struct db_stmt *s, int i);
    int (*col_type)(struct db_stmt *s, int i); /* enum db_type */
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

/*
 * Makes a multi-statement operation atomic wherever it is called: inside the
 * caller's transaction it is a savepoint, outside it is its own BEGIN IMMEDIATE
 * ... COMMIT (so lifeboatctl never leaves half an operation behind). op_end
 * releases/commits when rc is STORE_OK and rolls back otherwise; it returns rc,
 * or STORE_ERR if the commit failed.
 */
struct store_op {
    int own_tx;
};
int op_begin(struct store *st, struct store_op *op);
int op_end(struct store *st, struct store_op *op, int rc);

/* store_mailbox.c: deletes every mailbox entry of a user for good (as
 * store_mailbox_delete does) and then their tombstones, for store_user_del.
 * Call inside an operation. */
int store_mailbox_drop_user(struct store *st, int64_t user_id);

/* store_stats.c: the UPSERTs that move a per-minute counter (enum
 * store_stat) by n at time at, inside the caller's unit of work. The domain is
 * found by name (a domain we do not host: nothing is written), by a recipient
 * row's domain, or by a mailbox entry's domain. */
int stats_count_domain(struct store *st, const char *domain, int counter, int64_t at, uint64_t n);
int stats_count_rcpt(struct store *st, int64_t rcpt_id, int counter, int64_t at);
int stats_count_entry(struct store *st, int64_t entry_id, int counter, int64_t at, uint64_t n);

/* Creates data_dir (mode 0700) with its blobs/ and tmp/ folders as needed. 0 or -1 with err. */
int store_prepare_data_dir(const char *data_dir, char *err, size_t errlen);
/* mkdir -p path (mode 0700 for what it creates). 0 or -1 with err. */
int store_make_dir(const char *path, char *err, size_t errlen);
/* 1 when cfg's store is a PostgreSQL URL. */
int store_config_is_pg(const struct config *cfg);

/*
 * store_blob_data.c: for blob.c (the only caller, which explains the ordering
 * rules between nodes). Bodies in the database, table blob_data (PostgreSQL
 * without blob_dir), each the same zstd frame a blob file holds.
 *
 * For files in a shared blob_dir, a PostgreSQL advisory lock on the blob id,
 * held to the end of the caller's transaction: store_blob_use_lock takes it
 * shared (a put, from before it looks at the file until its rows commit;
 * waits for a remover), store_blob_remove_lock tries to take it exclusive (a
 * removal: STORE_EXISTS when a put holds it, nothing is waited for). STORE_OK
 * when taken, STORE_ERR.
 * store_blob_data_put writes a body: if_recorded = 0 upserts it (outside the
 * writer, before the caller records the blob); if_recorded = 1 writes it only
 * when a blobs row names it and keeps a body already there (inside the
 * writer, after the job recorded the blob). STORE_OK or STORE_ERR.
 * store_blob_data_get calls use(data, len, arg) with the stored frame (valid
 * during the call): STORE_OK, STORE_NOTFOUND, STORE_ERR.
 * store_blob_data_delete: STORE_OK, STORE_NOTFOUND (no such body), STORE_ERR.
 * store_blob_data_each lists the bodies' ids (cb returns non-zero to stop).
 * store_blob_data_orphans_delete removes bodies no blobs row names (start-up
 * recovery); *removed gets how many.
 */
int store_blob_use_lock(struct store *st, const char *blob_id);
int store_blob_remove_lock(struct store *st, const char *blob_id);
int store_blob_data_put(struct store *st, const char *blob_id, const void *data, size_t len, int if_recorded);
int store_blob_data_get(struct store *st, const char *blob_id,
                        int (*use)(const void *data, size_t len, void *arg), void *arg);
int store_blob_data_delete(struct store *st, const char *blob_id);
int store_blob_data_each(struct store *st, int (*cb)(const char *blob_id, void *), void *arg);
int store_blob_data_orphans_delete(struct store *st, unsigned *removed);

/* store_open without its schema migrations, for a look at a database before
 * its schema is made (store_copy.c: is the target empty?); store_migrate
 * then makes it. */
int store_open_unmigrated(const struct config *cfg, struct store **out, char *err, size_t errlen);

/* store_schema.c: brings the schema to the newest version. 0 or -1 with err. */
int store_migrate(struct store *st, char *err, size_t errlen);
/* The newest schema version this build knows. */
int store_schema_version(void);
/* store_schema_pg.c: the script that creates the whole schema, at version
 * STORE_PG_BASELINE_VERSION, in an empty PostgreSQL database. */
#define STORE_PG_BASELINE_VERSION 9
const char *store_pg_schema_sql(void);

#endif
