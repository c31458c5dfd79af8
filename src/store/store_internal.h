/*
 * store_internal.h — shared by the files of the SQLite backend of store.h
 * (store_sqlite.c, store_schema.c, store_directory.c, store_queue.c,
 * store_mailbox.c, store_domain_state.c, store_stats.c), private to
 * src/store.
 *
 * A struct store wraps one sqlite3 connection and its cache of prepared
 * statements. Each SQL text is a static string next to the code that runs it;
 * the cache is keyed by the string's address, so a statement is compiled once
 * per connection and reused (stmt_get ... stmt_put). stmt_put always resets the
 * statement: a statement left stepping would hold a WAL read snapshot open and
 * stop checkpoints.
 */
#ifndef LB_STORE_STORE_INTERNAL_H
#define LB_STORE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

struct stmt_slot {
    const char *sql; /* key: the address of a static SQL text */
    sqlite3_stmt *stmt;
};

struct store {
    sqlite3 *db;
    struct stmt_slot *slots; /* open addressing, nslots a power of two */
    size_t nslots;
    size_t used;
    unsigned savepoints; /* open store_savepoint levels (store_savepoint_depth) */
};

/* Returns the prepared statement for sql (compiled on first use), or NULL after
 * logging. When the cached one is busy (a caller's callback re-entered the same
 * query) a private copy is compiled; stmt_put finalizes it. */
sqlite3_stmt *stmt_get(struct store *st, const char *sql);
/* Resets the statement and clears its bindings (or finalizes a private copy). */
void stmt_put(struct store *st, const char *sql, sqlite3_stmt *stmt);

/* Runs a prepared write statement to completion and resets it. Maps unique
 * violations to STORE_EXISTS and foreign key violations (the referenced row is
 * missing) to STORE_NOTFOUND; other errors are logged with what. */
int stmt_run(struct store *st, const char *sql, sqlite3_stmt *stmt, const char *what);

/* Maps an SQLite result code as stmt_run does (logging errors). */
int store_sqlite_rc(struct store *st, int rc, const char *what);

/* Binds a string; NULL binds "". The text must outlive the step (it is not copied). */
int bind_text(sqlite3_stmt *stmt, int idx, const char *s);
/* Copies column i into out, truncating to outlen - 1 bytes; NULL gives "". */
void col_text(sqlite3_stmt *stmt, int i, char *out, size_t outlen);

/* Readers for stmt_fetch_one of a single-value query: column 0 into an
 * int64_t or an int at out. */
static inline void read_col0_int64(sqlite3_stmt *stmt, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(stmt, 0);
}
static inline void read_col0_int(sqlite3_stmt *stmt, void *out)
{
    *(int *)out = sqlite3_column_int(stmt, 0);
}

/* Steps a query expected to give at most one row: STORE_OK after read(stmt,
 * out) for a row, STORE_NOTFOUND for none, STORE_ERR (logged). Resets stmt. */
int stmt_fetch_one(struct store *st, const char *sql, sqlite3_stmt *stmt,
                   void (*read)(sqlite3_stmt *stmt, void *out), void *out, const char *what);
/* stmt_fetch_one for a "SELECT count(*) ..." query: the count into *count
 * (count may be NULL; 0 unless STORE_OK). */
int stmt_fetch_count(struct store *st, const char *sql, sqlite3_stmt *stmt, unsigned *count, const char *what);
/* Steps through every row calling each(stmt, ctx) until it returns non-zero
 * (stop early, still STORE_OK). Resets stmt. */
int stmt_each(struct store *st, const char *sql, sqlite3_stmt *stmt,
              int (*each)(sqlite3_stmt *stmt, void *ctx), void *ctx, const char *what);

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

/* store_schema.c: brings the schema to the newest version. 0 or -1 with err. */
int store_migrate(struct store *st, char *err, size_t errlen);
/* The newest schema version this build knows. */
int store_schema_version(void);

#endif
