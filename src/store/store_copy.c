/*
 * store_copy.c — the copy of store_copy.h: a SQLite installation into
 * PostgreSQL, planned from the two schemas, in batches, resumable.
 *
 * The plan is a list of items, each one source query and one target insert:
 * the tables (their columns from pragma_table_info, their order from
 * pragma_foreign_key_list, each value bound by the type of the target's
 * column), then the full-text index (FTS5's text in, a tsvector built by
 * archive_fts_vector out), then the bodies (the blobs table's ids in, the
 * files' bytes into blob_data). Every item is read in key order with one
 * query (a keyset: WHERE key > the last copied key, so a resumed copy starts
 * where the last one committed) and written as one multi-row INSERT per batch,
 * in one transaction with its migrate_progress row. The source is not written
 * to (store_open's migrations aside) and holds still: the caller has its
 * data_dir locked.
 *
 * Names come from the catalogs and are quoted; a name that is not plain
 * lower-case letters, digits and '_' is refused rather than escaped.
 */
#include "store/store_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/blob.h"
#include "store/store_internal.h"
#include "util/sbuf.h"

/* A batch also ends at this many bytes of values (bodies, long texts) or
 * bound parameters (PostgreSQL takes at most 65535 per statement). */
#define BATCH_BYTES (32u << 20)
#define BATCH_PARAMS 30000

/* pg_try_advisory_lock's key for "a copy is running into this database". */
#define COPY_LOCK_KEY 7311002

/* Tables that are not copied as rows (see store_copy.h). */
static const char *const skipped[] = {"schema_version", "nodes", "blob_data", "archive_fts"};

enum bind_kind { BIND_INT, BIND_TEXT, BIND_BLOB };
enum item_kind { ITEM_TABLE, ITEM_FTS, ITEM_BLOBS };

struct item {
    char name[64];
    int kind;          /* enum item_kind */
    char *select_sql;  /* "SELECT ... FROM t" (no WHERE, no ORDER BY) */
    char *key_names;   /* "rowid" or "a, b": the ORDER BY and the keyset's left side */
    int nkeys;
    int *key_pos;      /* the select column of each key column */
    int nsel;          /* select columns */
    char *insert_head; /* "INSERT INTO t (...) VALUES " */
    char *row_tpl;     /* "(?, ?, ?)" */
    int nvals;         /* values bound per row */
    int *val_src;      /* per value: its select column, or -1 for the blob file's bytes */
    int *bind;         /* per value: enum bind_kind */
    char **deps;       /* tables this one refers to (foreign keys) */
    int ndeps;
    int64_t total;     /* rows in the source */
};

struct store_copy {
    struct store *src, *dst;
    char source_id[1100];
    struct item *items;
    size_t nitems;
    char *summary; /* the source as it was: counts and highest rowids */
};

/* A value read from the source, owned until the batch is written. */
struct cell {
    int type; /* enum db_type */
    char *p;  /* text or blob bytes (NULL for NULL; for an integer, its decimal form) */
    size_t n;
    int64_t i;
};

/* ------------------------------------------------------------------ helpers */

static int failf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return STORE_ERR;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


/* A catalog name we are willing to put in SQL (quoted). */
static int plain_name(const char *s)
{
    if (!*s || strlen(s) >= 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* Runs a one-value query (an integer), built at run time. STORE_OK or STORE_ERR with err. */
static int query_int(struct store *st, const char *sql, int64_t *out, char *err, size_t errlen)
{
    struct db_stmt *s = db_prepare(st, sql);
    if (!s)
        return failf(err, errlen, "cannot prepare \"%.80s\": %s", sql, db_errmsg(st));
    int rc = db_step(s);
    *out = rc == DB_ROW ? db_col_int64(s, 0) : 0;
    if (rc != DB_ROW && rc != DB_DONE)
        failf(err, errlen, "%.80s: %s", sql, db_errmsg(st));
    db_finalize(s);
    return rc == DB_ROW || rc == DB_DONE ? STORE_OK : STORE_ERR;
}

/* ------------------------------------------------------------------- the plan */

static void item_free(struct item *it)
{
    free(it->select_sql);
    free(it->key_names);
    free(it->key_pos);
    free(it->insert_head);
    free(it->row_tpl);
    free(it->val_src);
    free(it->bind);
    for (int i = 0; i < it->ndeps; i++)
        free(it->deps[i]);
    free(it->deps);
}

void store_copy_close(struct store_copy *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nitems; i++)
        item_free(&c->items[i]);
    free(c->items);
    free(c->summary);
    store_close(c->dst); /* the advisory lock goes with the connection */
    free(c);
}

static struct item *item_new(struct store_copy *c, const char *name, int kind)
{
    struct item *items = realloc(c->items, (c->nitems + 1) * sizeof *items);
    if (!items)
        return NULL;
    c->items = items;
    struct item *it = &items[c->nitems++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->kind = kind;
    return it;
}

/* Allocates the per-value and key arrays of it. */
static int item_arrays(struct item *it, int nvals, int nkeys)
{
    it->nvals = nvals;
    it->nkeys = nkeys;
    it->val_src = calloc((size_t)nvals, sizeof *it->val_src);
    it->bind = calloc((size_t)nvals, sizeof *it->bind);
    it->key_pos = calloc((size_t)nkeys, sizeof *it->key_pos);
    return it->val_src && it->bind && it->key_pos ? 0 : -1;
}

/* A column of the target: its name and how a value is bound to it. */
struct tcol {
    char name[64];
    int bind;
};

/* The target's columns of table; *n 0 when it has no such table. */
static int target_columns(struct store *dst, const char *table, struct tcol **out, int *n, char *err,
                          size_t errlen)
{
    static const char sql[] = "SELECT column_name::text, data_type::text FROM information_schema.columns "
                              "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position";
    *out = NULL;
    *n = 0;
    struct db_stmt *s = stmt_get(dst, sql);
    if (!s)
        return failf(err, errlen, "cannot read PostgreSQL's catalog: %s", db_errmsg(dst));
    db_bind_text(s, 1, table);
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        struct tcol *cols = realloc(*out, (size_t)(*n + 1) * sizeof *cols);
        if (!cols) {
            stmt_put(dst, sql, s);
            return failf(err, errlen, "out of memory");
        }
        *out = cols;
        struct tcol *t = &cols[(*n)++];
        col_text(s, 0, t->name, sizeof t->name);
        const char *type = db_col_text(s, 1);
        t->bind = !strcmp(type, "bytea") ? BIND_BLOB
                  : !strcmp(type, "bigint") || !strcmp(type, "integer") || !strcmp(type, "smallint") ? BIND_INT
                                                                                                        : BIND_TEXT;
    }
    stmt_put(dst, sql, s);
    if (rc != DB_DONE)
        return failf(err, errlen, "cannot read PostgreSQL's catalog: %s", db_errmsg(dst));
    return STORE_OK;
}

/* One table of the source: its columns, key and foreign keys, matched with
 * the target's table of the same name. */
static int plan_table(struct store_copy *c, const char *name, int without_rowid, char *err, size_t errlen)
{
    static const char sql_cols[] = "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid";
    static const char sql_fks[] = "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)";
    struct tcol *tcols = NULL;
    int ntcols = 0;
    if (target_columns(c->dst, name, &tcols, &ntcols, err, errlen) != STORE_OK)
        return STORE_ERR;
    if (ntcols == 0)
        return failf(err, errlen, "table %s has no counterpart in PostgreSQL: are both at the same schema version?",
                     name);
    struct item *it = item_new(c, name, ITEM_TABLE);
    if (!it) {
        free(tcols);
        return failf(err, errlen, "out of memory");
    }

    /* The source's columns, and which of them make the primary key (pk is
     * the column's position in it, 0: not in it). */
    char (*cols)[64] = NULL;
    int *pk = NULL, ncols = 0, rc;
    struct db_stmt *s = stmt_get(c->src, sql_cols);
    if (!s) {
        free(tcols);
        return failf(err, errlen, "cannot read SQLite's catalog: %s", db_errmsg(c->src));
    }
    db_bind_text(s, 1, name);
    while ((rc = db_step(s)) == DB_ROW) {
        void *nc = realloc(cols, (size_t)(ncols + 1) * sizeof *cols);
        int *np = nc ? realloc(pk, (size_t)(ncols + 1) * sizeof *pk) : NULL;
        if (nc)
            cols = nc;
        if (np)
            pk = np;
        if (!nc || !np) {
            rc = DB_ERR;
            break;
        }
        col_text(s, 0, cols[ncols], sizeof cols[ncols]);
        pk[ncols++] = db_col_int(s, 1);
    }
    stmt_put(c->src, sql_cols, s);
    int out = STORE_OK;
    if (rc != DB_DONE)
        out = failf(err, errlen, "cannot read the columns of %s: %s", name, db_errmsg(c->src));

    /* Rows go in key order: the rowid, or a WITHOUT ROWID table's key. */
    int nkeys = 0;
    for (int i = 0; i < ncols; i++)
        nkeys += pk[i] > 0;
    if (out == STORE_OK && without_rowid && nkeys == 0)
        out = failf(err, errlen, "table %s has neither a rowid nor a primary key", name);
    int off = without_rowid ? 0 : 1; /* select column 0 is the rowid */
    if (out == STORE_OK && item_arrays(it, ncols, without_rowid ? nkeys : 1) != 0)
        out = failf(err, errlen, "out of memory");
    struct sbuf sel = {0}, keys = {0}, head = {0}, tpl = {0};
    if (out == STORE_OK) {
        sb_add(&sel, "SELECT %s", without_rowid ? "" : "rowid");
        sb_add(&head, "INSERT INTO \"%s\" (", name);
        sb_add(&tpl, "(");
        for (int i = 0; i < ncols && out == STORE_OK; i++) {
            int t = 0;
            while (t < ntcols && strcmp(tcols[t].name, cols[i]) != 0)
                t++;
            if (!plain_name(cols[i]))
                out = failf(err, errlen, "table %s: column name \"%s\" is not plain", name, cols[i]);
            else if (t == ntcols)
                out = failf(err, errlen, "column %s.%s has no counterpart in PostgreSQL: are both at the same "
                            "schema version?", name, cols[i]);
            else {
                sb_add(&sel, "%s\"%s\"", i + off ? ", " : "", cols[i]);
                sb_add(&head, "%s\"%s\"", i ? ", " : "", cols[i]);
                sb_add(&tpl, "%s?", i ? ", " : "");
                it->val_src[i] = i + off;
                it->bind[i] = tcols[t].bind;
            }
        }
        sb_add(&sel, " FROM \"%s\"", name);
        sb_add(&head, ") VALUES ");
        sb_add(&tpl, ")");
        if (!without_rowid) {
            sb_add(&keys, "rowid");
            it->key_pos[0] = 0;
        } else {
            for (int k = 1; k <= nkeys; k++)
                for (int i = 0; i < ncols; i++)
                    if (pk[i] == k) {
                        sb_add(&keys, "%s\"%s\"", k > 1 ? ", " : "", cols[i]);
                        it->key_pos[k - 1] = i;
                    }
        }
    }
    it->nsel = ncols + off;
    it->select_sql = sb_take(&sel);
    it->key_names = sb_take(&keys);
    it->insert_head = sb_take(&head);
    it->row_tpl = sb_take(&tpl);
    free(cols);
    free(pk);
    free(tcols);
    if (out != STORE_OK)
        return out;
    if (!it->select_sql || !it->key_names || !it->insert_head || !it->row_tpl)
        return failf(err, errlen, "out of memory");

    /* The tables it refers to, for the order. */
    if (!(s = stmt_get(c->src, sql_fks)))
        return failf(err, errlen, "cannot read SQLite's catalog: %s", db_errmsg(c->src));
    db_bind_text(s, 1, name);
    while ((rc = db_step(s)) == DB_ROW) {
        char **deps = realloc(it->deps, (size_t)(it->ndeps + 1) * sizeof *deps);
        char *dep = deps ? strdup(db_col_text(s, 0)) : NULL;
        if (deps)
            it->deps = deps;
        if (!dep) {
            rc = DB_ERR;
            break;
        }
        it->deps[it->ndeps++] = dep;
    }
    stmt_put(c->src, sql_fks, s);
    if (rc != DB_DONE)
        return failf(err, errlen, "cannot read the foreign keys of %s: %s", name, db_errmsg(c->src));
    return STORE_OK;
}

/* Puts the table items in an order where each comes after the tables it
 * refers to (ties by name, as listed); the other items stay at the end. */
static int order_tables(struct store_copy *c, size_t ntables, char *err, size_t errlen)
{
    struct item *sorted = malloc((ntables ? ntables : 1) * sizeof *sorted);
    unsigned char *placed = calloc(ntables ? ntables : 1, 1);
    if (!sorted || !placed) {
        free(sorted);
        free(placed);
        return failf(err, errlen, "out of memory");
    }
    size_t n = 0;
    while (n < ntables) {
        size_t before = n;
        for (size_t i = 0; i < ntables; i++) {
            if (placed[i])
                continue;
            int ready = 1;
            for (int d = 0; d < c->items[i].ndeps && ready; d++)
                for (size_t j = 0; j < ntables; j++)
                    if (j != i && !placed[j] && !strcmp(c->items[j].name, c->items[i].deps[d]))
                        ready = 0;
            if (ready) {
                sorted[n++] = c->items[i];
                placed[i] = 1;
            }
        }
        if (n == before) {
            free(sorted);
            free(placed);
            return failf(err, errlen, "the tables' foreign keys form a cycle: no order to copy them in");
        }
    }
    memcpy(c->items, sorted, ntables * sizeof *sorted);
    free(sorted);
    free(placed);
    return STORE_OK;
}

static int plan_fts(struct store_copy *c, char *err, size_t errlen)
{
    struct item *it = item_new(c, "archive_fts", ITEM_FTS);
    if (!it || item_arrays(it, 6, 1) != 0)
        return failf(err, errlen, "out of memory");
    it->select_sql = strdup("SELECT rowid, subject, from_hdr, to_hdr, body, attachments FROM archive_fts");
    it->key_names = strdup("rowid");
    it->insert_head = strdup("INSERT INTO archive_fts (id, tsv) VALUES ");
    it->row_tpl = strdup("(?, archive_fts_vector(?, ?, ?, ?, ?))");
    it->nsel = 6;
    for (int i = 0; i < 6; i++) {
        it->val_src[i] = i;
        it->bind[i] = i ? BIND_TEXT : BIND_INT;
    }
    if (!it->select_sql || !it->key_names || !it->insert_head || !it->row_tpl)
        return failf(err, errlen, "out of memory");
    return STORE_OK;
}

static int plan_blobs(struct store_copy *c, char *err, size_t errlen)
{
    struct item *it = item_new(c, "blob_data", ITEM_BLOBS);
    if (!it || item_arrays(it, 2, 1) != 0)
        return failf(err, errlen, "out of memory");
    it->select_sql = strdup("SELECT id FROM blobs");
    it->key_names = strdup("id");
    it->insert_head = strdup("INSERT INTO blob_data (id, data) VALUES ");
    it->row_tpl = strdup("(?, ?)");
    it->nsel = 1;
    it->val_src[0] = 0;
    it->bind[0] = BIND_TEXT;
    it->val_src[1] = -1;
    it->bind[1] = BIND_BLOB;
    if (!it->select_sql || !it->key_names || !it->insert_head || !it->row_tpl)
        return failf(err, errlen, "out of memory");
    return STORE_OK;
}

static int skipped_table(const char *name)
{
    if (!strncmp(name, "sqlite_", 7))
        return 1;
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (!strcmp(name, skipped[i]))
            return 1;
    return 0;
}

/* Every item of the copy, in order, with the source's row counts, and the
 * summary of the source that a resumed copy compares. */
static int plan(struct store_copy *c, char *err, size_t errlen)
{
    /* type 'table' leaves out views, FTS5's virtual table and its shadow tables. */
    static const char sql_tables[] = "SELECT name, wr FROM pragma_table_list "
                                     "WHERE schema = 'main' AND type = 'table' ORDER BY name";
    static const char sql_fts[] = "SELECT count(*) FROM pragma_table_list "
                                  "WHERE schema = 'main' AND name = 'archive_fts' AND type = 'virtual'";
    struct db_stmt *s = stmt_get(c->src, sql_tables);
    if (!s)
        return failf(err, errlen, "cannot list the tables of SQLite: %s", db_errmsg(c->src));
    char (*names)[64] = NULL;
    int *wr = NULL, rc;
    size_t n = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        char name[64];
        col_text(s, 0, name, sizeof name);
        if (skipped_table(name))
            continue;
        void *nn = realloc(names, (n + 1) * sizeof *names);
        int *nw = nn ? realloc(wr, (n + 1) * sizeof *wr) : NULL;
        if (nn)
            names = nn;
        if (nw)
            wr = nw;
        if (!nn || !nw) {
            rc = DB_ERR;
            break;
        }
        snprintf(names[n], sizeof names[n], "%s", name);
        wr[n++] = db_col_int(s, 1);
    }
    stmt_put(c->src, sql_tables, s);
    int out = rc == DB_DONE ? STORE_OK : failf(err, errlen, "cannot list the tables of SQLite: %s", db_errmsg(c->src));
    for (size_t i = 0; i < n && out == STORE_OK; i++)
        out = plain_name(names[i]) ? plan_table(c, names[i], wr[i], err, errlen)
                                   : failf(err, errlen, "table name \"%s\" is not plain", names[i]);
    free(names);
    free(wr);
    if (out != STORE_OK)
        return out;
    size_t ntables = c->nitems;
    if (order_tables(c, ntables, err, errlen) != STORE_OK)
        return STORE_ERR;
    int64_t has_fts = 0;
    if (query_int(c->src, sql_fts, &has_fts, err, errlen) != STORE_OK)
        return STORE_ERR;
    if (has_fts && plan_fts(c, err, errlen) != STORE_OK)
        return STORE_ERR;
    if (plan_blobs(c, err, errlen) != STORE_OK)
        return STORE_ERR;

    /* Row counts (the progress's totals) and the summary. */
    struct sbuf sum = {0};
    for (size_t i = 0; i < c->nitems; i++) {
        struct item *it = &c->items[i];
        char sql[256];
        int64_t high = 0;
        const char *from = it->kind == ITEM_BLOBS ? "blobs" : it->name;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", from);
        if (query_int(c->src, sql, &it->total, err, errlen) != STORE_OK)
            return STORE_ERR;
        if (!strcmp(it->key_names, "rowid")) {
            snprintf(sql, sizeof sql, "SELECT coalesce(max(rowid), 0) FROM \"%s\"", from);
            if (query_int(c->src, sql, &high, err, errlen) != STORE_OK)
                return STORE_ERR;
        }
        sb_add(&sum, "%s%s %lld %lld", i ? "; " : "", it->name, (long long)it->total, (long long)high);
    }
    if (!(c->summary = sb_take(&sum)))
        return failf(err, errlen, "out of memory");
    return STORE_OK;
}

/* -------------------------------------------------------- the target's state */

static const char SQL_PROGRESS_TABLE[] =
    "CREATE TABLE migrate_progress ("
    "  item TEXT PRIMARY KEY,"             /* a table, archive_fts, blob_data; '' the whole copy */
    "  source TEXT NOT NULL DEFAULT '',"   /* '': the source's database file */
    "  summary TEXT NOT NULL DEFAULT '',"  /* '': the source's counts when the copy began */
    "  copied BIGINT NOT NULL DEFAULT 0,"  /* rows copied */
    "  last_key TEXT NOT NULL DEFAULT '',"  /* the source key of the last row copied (key_encode) */
    "  done BIGINT NOT NULL DEFAULT 0,"
    "  updated BIGINT NOT NULL DEFAULT 0)";
static const char SQL_PROGRESS_EXISTS[] = "SELECT count(*) FROM pg_tables "
                                          "WHERE schemaname = current_schema() AND tablename = 'migrate_progress'";
static const char SQL_PROGRESS_RUN[] = "SELECT source, summary, done FROM migrate_progress WHERE item = ''";
static const char SQL_PROGRESS_NEW[] = "INSERT INTO migrate_progress (item, source, summary, updated) "
                                       "VALUES (?, ?, ?, ?) ON CONFLICT (item) DO NOTHING";
static const char SQL_PROGRESS_GET[] = "SELECT copied, last_key, done FROM migrate_progress WHERE item = ?";
static const char SQL_PROGRESS_BATCH[] = "UPDATE migrate_progress SET copied = copied + ?, last_key = ?, "
                                         "updated = ? WHERE item = ?";
static const char SQL_PROGRESS_DONE[] = "UPDATE migrate_progress SET done = 1, updated = ? WHERE item = ?";

/* The first table of the target that holds a row (other than
 * schema_version), into table; "" when there is none. */
static int first_nonempty(struct store *dst, char *table, size_t tablelen, char *err, size_t errlen)
{
    static const char sql[] = "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() "
                              "ORDER BY tablename";
    table[0] = '\0';
    struct db_stmt *s = stmt_get(dst, sql);
    if (!s)
        return failf(err, errlen, "cannot list the tables of PostgreSQL: %s", db_errmsg(dst));
    char (*names)[64] = NULL;
    size_t n = 0;
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        void *nn = realloc(names, (n + 1) * sizeof *names);
        if (!nn) {
            rc = DB_ERR;
            break;
        }
        names = nn;
        col_text(s, 0, names[n++], sizeof names[0]);
    }
    stmt_put(dst, sql, s);
    int out = rc == DB_DONE ? STORE_OK : failf(err, errlen, "cannot list the tables of PostgreSQL: %s", db_errmsg(dst));
    for (size_t i = 0; i < n && out == STORE_OK && !table[0]; i++) {
        if (!strcmp(names[i], "schema_version"))
            continue;
        /* Any table in the schema counts, ours or not: its name quoted with
         * its quotes doubled. */
        struct sbuf b = {0};
        sb_add(&b, "SELECT count(*) FROM (SELECT 1 FROM \"");
        for (const char *p = names[i]; *p; p++)
            sb_add(&b, "%s%c", *p == '"' ? "\"" : "", *p);
        sb_add(&b, "\" LIMIT 1) t");
        char *sql_any = sb_take(&b);
        int64_t any = 0;
        out = sql_any ? query_int(dst, sql_any, &any, err, errlen) : failf(err, errlen, "out of memory");
        free(sql_any);
        if (out == STORE_OK && any)
            snprintf(table, tablelen, "%s", names[i]);
    }
    free(names);
    return out;
}

struct run_row {
    char source[1100];
    char *summary;
    int done;
};

static void read_run_row(struct db_stmt *s, void *out)
{
    struct run_row *r = out;
    col_text(s, 0, r->source, sizeof r->source);
    r->summary = strdup(db_col_text(s, 1));
    r->done = db_col_int(s, 2);
}

int store_copy_open(struct store *src, const struct config *target, const char *source_id, struct store_copy **out,
                    enum store_copy_state *state, char *err, size_t errlen)
{
    *out = NULL;
    if (src->kind != DB_SQLITE)
        return failf(err, errlen, "a copy goes from SQLite to PostgreSQL");
    struct store_copy *c = calloc(1, sizeof *c);
    if (!c)
        return failf(err, errlen, "out of memory");
    c->src = src;
    snprintf(c->source_id, sizeof c->source_id, "%s", source_id);
    /* Looked at before its schema is made: a database with other data must
     * not get lifeboat's tables added to it. */
    if (store_open_unmigrated(target, &c->dst, err, errlen) != STORE_OK)
        goto fail;
    struct store *dst = c->dst;
    if (dst->kind != DB_PG) {
        failf(err, errlen, "a copy goes from SQLite to PostgreSQL");
        goto fail;
    }

    char sql[128];
    int64_t locked = 0;
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d)::int", COPY_LOCK_KEY);
    if (query_int(dst, sql, &locked, err, errlen) != STORE_OK)
        goto fail;
    if (!locked) {
        failf(err, errlen, "another lifeboatctl migrate is copying into this database");
        goto fail;
    }
    int64_t has_progress = 0;
    if (query_int(dst, SQL_PROGRESS_EXISTS, &has_progress, err, errlen) != STORE_OK)
        goto fail;
    if (!has_progress) {
        char table[64];
        if (first_nonempty(dst, table, sizeof table, err, errlen) != STORE_OK)
            goto fail;
        if (table[0]) {
            failf(err, errlen, "the database is not empty (table %s has rows) and holds no interrupted copy of "
                  "this installation: migrate copies into an empty database only", table);
            goto fail;
        }
    }
    if (store_migrate(dst, err, errlen) != 0)
        goto fail;

    if (has_progress) {
        struct run_row r = {0};
        struct db_stmt *s = stmt_get(dst, SQL_PROGRESS_RUN);
        int rc = s ? stmt_fetch_one(dst, SQL_PROGRESS_RUN, s, read_run_row, &r, "read the copy's progress") : STORE_ERR;
        if (rc == STORE_ERR) {
            failf(err, errlen, "cannot read the copy's progress: %s", db_errmsg(dst));
            goto fail;
        }
        if (rc == STORE_NOTFOUND || !r.summary) {
            free(r.summary);
            failf(err, errlen, "the database has a migrate_progress table but no record of a copy: "
                  "give an empty database");
            goto fail;
        }
        if (strcmp(r.source, c->source_id) != 0) {
            free(r.summary);
            failf(err, errlen, "the database holds a copy of another installation (%s), not of %s", r.source,
                  c->source_id);
            goto fail;
        }
        /* Finished: nothing to plan (the source may have moved on since). */
        int same = r.done || (plan(c, err, errlen) == STORE_OK && !strcmp(r.summary, c->summary));
        free(r.summary);
        if (!r.done && !c->summary)
            goto fail; /* plan() said why */
        if (r.done) {
            *state = STORE_COPY_DONE;
        } else if (!same) {
            failf(err, errlen, "the installation changed since the interrupted copy began (did lifeboatd run in "
                  "between?): drop the PostgreSQL database, create it empty and migrate again");
            goto fail;
        } else {
            *state = STORE_COPY_RESUME;
        }
        *out = c;
        return STORE_OK;
    }

    if (plan(c, err, errlen) != STORE_OK)
        goto fail;
    if (store_begin(dst) != STORE_OK || db_exec(dst, SQL_PROGRESS_TABLE, "create migrate_progress") != STORE_OK) {
        failf(err, errlen, "cannot create migrate_progress: %s", db_errmsg(dst));
        store_rollback(dst);
        goto fail;
    }
    struct db_stmt *s = stmt_get(dst, SQL_PROGRESS_NEW);
    int rc = STORE_ERR;
    if (s) {
        db_bind_text(s, 1, "");
        db_bind_text(s, 2, c->source_id);
        db_bind_text(s, 3, c->summary);
        db_bind_int64(s, 4, (int64_t)time(NULL));
        rc = stmt_run(dst, SQL_PROGRESS_NEW, s, "record the copy");
    }
    if (rc != STORE_OK || store_commit(dst) != STORE_OK) {
        failf(err, errlen, "cannot record the copy: %s", db_errmsg(dst));
        store_rollback(dst);
        goto fail;
    }
    *state = STORE_COPY_NEW;
    *out = c;
    return STORE_OK;
fail:
    store_copy_close(c);
    return STORE_ERR;
}

/* ---------------------------------------------------------------- the copy */

/* The key of a row as text for last_key: per key column 'i' and the number,
 * 't' (text) or 'b' (blob) and the bytes in hex; ',' between columns. */
static char *key_encode(const struct item *it, const struct cell *row)
{
    struct sbuf b = {0};
    for (int k = 0; k < it->nkeys; k++) {
        const struct cell *v = &row[it->key_pos[k]];
        if (k)
            sb_add(&b, ",");
        if (v->type == DB_TYPE_INT) {
            sb_add(&b, "i%lld", (long long)v->i);
            continue;
        }
        sb_add(&b, "%c", v->type == DB_TYPE_BLOB ? 'b' : 't');
        for (size_t i = 0; i < v->n; i++)
            sb_add(&b, "%02x", (unsigned char)v->p[i]);
    }
    return sb_take(&b);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Binds an encoded key to the keyset's parameters 1..nkeys. The decoded
 * bytes go in bufs (freed by the caller after the statement). -1 when the
 * text is not a key of this item. */
static int key_bind(const struct item *it, struct db_stmt *s, const char *key, char **bufs)
{
    const char *p = key;
    for (int k = 0; k < it->nkeys; k++) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            return -1;
        if (p[0] == 'i') {
            char *end;
            long long v = strtoll(p + 1, &end, 10);
            if (end != p + len)
                return -1;
            db_bind_int64(s, k + 1, v);
        } else if (p[0] == 't' || p[0] == 'b') {
            size_t n = (len - 1) / 2;
            if ((len - 1) % 2 || !(bufs[k] = malloc(n + 1)))
                return -1;
            for (size_t i = 0; i < n; i++) {
                int hi = hexval(p[1 + 2 * i]), lo = hexval(p[2 + 2 * i]);
                if (hi < 0 || lo < 0)
                    return -1;
                bufs[k][i] = (char)(hi << 4 | lo);
            }
            if (p[0] == 't')
                db_bind_textn(s, k + 1, bufs[k], n);
            else
                db_bind_blob(s, k + 1, bufs[k], n);
        } else {
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
        else if (k + 1 < it->nkeys)
            return -1;
    }
    return *p ? -1 : 0;
}

static void cells_free(struct cell *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cells[i].p);
        cells[i] = (struct cell){0};
    }
}

/* Copies column i of the current source row into v. -1 when out of memory. */
static int cell_read(struct db_stmt *s, int i, struct cell *v)
{
    v->type = db_col_type(s, i);
    v->p = NULL;
    v->n = 0;
    v->i = 0;
    if (v->type == DB_TYPE_NULL)
        return 0;
    if (v->type == DB_TYPE_INT) {
        char num[24];
        v->i = db_col_int64(s, i);
        v->n = (size_t)snprintf(num, sizeof num, "%lld", (long long)v->i);
        v->p = strdup(num);
        return v->p ? 0 : -1;
    }
    const void *src = v->type == DB_TYPE_BLOB ? db_col_blob(s, i) : (const void *)db_col_text(s, i);
    v->n = db_col_bytes(s, i);
    v->p = malloc(v->n + 1);
    if (!v->p)
        return -1;
    if (v->n)
        memcpy(v->p, src, v->n);
    v->p[v->n] = '\0';
    return 0;
}

/* The bytes of blob id: its file in blobs_dir as it is (zstd), or else a
 * row of the source's blob_data. STORE_OK, or STORE_ERR with err. */
static int blob_read(struct store_copy *c, const char *blobs_dir, const struct cell *id, struct cell *v, char *err,
                     size_t errlen)
{
    static const char sql[] = "SELECT data FROM blob_data WHERE id = ?";
    v->type = DB_TYPE_BLOB;
    if (id->type != DB_TYPE_TEXT || !blob_id_valid(id->p))
        return failf(err, errlen, "the blobs table holds an id that is not one: \"%.80s\"", id->p ? id->p : "");
    char path[1200];
    snprintf(path, sizeof path, "%s/%.2s/%s", blobs_dir, id->p, id->p);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat sb;
        int rc = -1;
        if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size <= BLOB_MAX_SIZE) {
            v->n = (size_t)sb.st_size;
            v->p = malloc(v->n + 1);
            size_t got = 0;
            while (v->p && got < v->n) {
                ssize_t r = read(fd, v->p + got, v->n - got);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
            rc = v->p && got == v->n ? 0 : -1;
        } else if (fstat(fd, &sb) == 0) {
            errno = EFBIG;
        }
        int e = errno;
        close(fd);
        if (rc == 0)
            return STORE_OK;
        return failf(err, errlen, "cannot read %s: %s", path, v->p ? strerror(e) : "out of memory");
    }
    if (errno != ENOENT)
        return failf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct db_stmt *s = stmt_get(c->src, sql);
    if (!s)
        return failf(err, errlen, "cannot read blob_data: %s", db_errmsg(c->src));
    db_bind_text(s, 1, id->p);
    int rc = db_step(s);
    int out = STORE_OK;
    if (rc == DB_ROW) {
        struct cell tmp;
        if (cell_read(s, 0, &tmp) != 0)
            out = failf(err, errlen, "out of memory");
        v->p = tmp.p;
        v->n = tmp.n;
    } else if (rc == DB_DONE) {
        out = failf(err, errlen, "the body of blob %s is missing (no file %s): the installation is damaged", id->p,
                    path);
    } else {
        out = failf(err, errlen, "cannot read blob_data: %s", db_errmsg(c->src));
    }
    stmt_put(c->src, sql, s);
    return out;
}

static void bind_cell(struct db_stmt *s, int idx, int kind, const struct cell *v)
{
    if (v->type == DB_TYPE_NULL)
        db_bind_null(s, idx);
    else if (kind == BIND_INT && v->type == DB_TYPE_INT)
        db_bind_int64(s, idx, v->i);
    else if (kind == BIND_BLOB)
        db_bind_blob(s, idx, v->p, v->n);
    else /* text, or a value PostgreSQL is to parse (it says so if it cannot) */
        db_bind_textn(s, idx, v->p, v->n);
}

/* Writes n rows (cells of row r at rows + r * stride) and the item's progress
 * in one transaction. STORE_OK or STORE_ERR with err. */
static int write_batch(struct store_copy *c, const struct item *it, struct cell *rows, size_t stride, size_t n,
                       char *err, size_t errlen)
{
    struct sbuf b = {0};
    sb_add(&b, "%s", it->insert_head);
    for (size_t r = 0; r < n; r++)
        sb_add(&b, "%s%s", r ? ", " : "", it->row_tpl);
    char *sql = sb_take(&b);
    char *key = key_encode(it, rows + (n - 1) * stride);
    if (!sql || !key) {
        free(sql);
        free(key);
        return failf(err, errlen, "out of memory");
    }
    struct store *dst = c->dst;
    int out = STORE_ERR;
    if (store_begin(dst) != STORE_OK) {
        failf(err, errlen, "%s: cannot begin a transaction: %s", it->name, db_errmsg(dst));
        goto done;
    }
    struct db_stmt *s = db_prepare(dst, sql);
    if (!s) {
        failf(err, errlen, "%s: cannot prepare the insert: %s", it->name, db_errmsg(dst));
        store_rollback(dst);
        goto done;
    }
    int idx = 1;
    for (size_t r = 0; r < n; r++) {
        const struct cell *row = rows + r * stride;
        for (int j = 0; j < it->nvals; j++)
            bind_cell(s, idx++, it->bind[j], it->val_src[j] >= 0 ? &row[it->val_src[j]] : &row[it->nsel]);
    }
    int rc = db_step(s);
    db_finalize(s);
    if (rc != DB_DONE) {
        char first[80];
        char *k = key_encode(it, rows);
        snprintf(first, sizeof first, "%s", k ? k : "?");
        free(k);
        failf(err, errlen, "%s: the batch of %zu rows from key %s: %s", it->name, n, first, db_errmsg(dst));
        store_rollback(dst);
        goto done;
    }
    if (!(s = stmt_get(dst, SQL_PROGRESS_BATCH))) {
        failf(err, errlen, "%s: %s", it->name, db_errmsg(dst));
        store_rollback(dst);
        goto done;
    }
    db_bind_int64(s, 1, (int64_t)n);
    db_bind_text(s, 2, key);
    db_bind_int64(s, 3, (int64_t)time(NULL));
    db_bind_text(s, 4, it->name);
    if (stmt_run(dst, SQL_PROGRESS_BATCH, s, "record the copy's progress") != STORE_OK ||
        store_commit(dst) != STORE_OK) {
        failf(err, errlen, "%s: cannot commit the batch: %s", it->name, db_errmsg(dst));
        store_rollback(dst);
        goto done;
    }
    out = STORE_OK;
done:
    free(sql);
    free(key);
    return out;
}

struct item_progress {
    int64_t copied;
    char *last_key;
    int done;
};

static void read_item_progress(struct db_stmt *s, void *out)
{
    struct item_progress *p = out;
    p->copied = db_col_int64(s, 0);
    p->last_key = strdup(db_col_text(s, 1));
    p->done = db_col_int(s, 2);
}

static int mark_done(struct store *dst, const char *item, char *err, size_t errlen)
{
    struct db_stmt *s = stmt_get(dst, SQL_PROGRESS_DONE);
    if (!s)
        return failf(err, errlen, "%s: %s", item, db_errmsg(dst));
    db_bind_int64(s, 1, (int64_t)time(NULL));
    db_bind_text(s, 2, item);
    if (stmt_run(dst, SQL_PROGRESS_DONE, s, "record the copy's progress") != STORE_OK)
        return failf(err, errlen, "%s: cannot record its end: %s", item, db_errmsg(dst));
    return STORE_OK;
}

static void report(const struct store_copy_opts *o, const struct item *it, int64_t copied, uint64_t run_rows,
                   uint64_t run_bytes, double t0, int finished)
{
    if (!o->progress)
        return;
    struct store_copy_progress p = {
        .item = it->name,
        .copied = (uint64_t)copied,
        .total = (uint64_t)it->total,
        .run_rows = run_rows,
        .run_bytes = run_bytes,
        .seconds = now_mono() - t0,
        .finished = finished,
    };
    o->progress(&p, o->arg);
}

/* Copies what is left of one item. */
static int copy_item(struct store_copy *c, const struct item *it, const struct store_copy_opts *o,
                     unsigned *batches, char *err, size_t errlen)
{
    double t0 = now_mono();
    struct db_stmt *s = stmt_get(c->dst, SQL_PROGRESS_NEW);
    if (!s)
        return failf(err, errlen, "%s: %s", it->name, db_errmsg(c->dst));
    db_bind_text(s, 1, it->name);
    db_bind_text(s, 2, "");
    db_bind_text(s, 3, "");
    db_bind_int64(s, 4, (int64_t)time(NULL));
    if (stmt_run(c->dst, SQL_PROGRESS_NEW, s, "record the copy's progress") != STORE_OK)
        return failf(err, errlen, "%s: cannot record its progress: %s", it->name, db_errmsg(c->dst));
    struct item_progress pr = {0};
    if (!(s = stmt_get(c->dst, SQL_PROGRESS_GET)))
        return failf(err, errlen, "%s: %s", it->name, db_errmsg(c->dst));
    db_bind_text(s, 1, it->name);
    if (stmt_fetch_one(c->dst, SQL_PROGRESS_GET, s, read_item_progress, &pr, "read the copy's progress") != STORE_OK ||
        !pr.last_key) {
        free(pr.last_key);
        return failf(err, errlen, "%s: cannot read its progress: %s", it->name, db_errmsg(c->dst));
    }
    if (pr.done) {
        free(pr.last_key);
        report(o, it, pr.copied, 0, 0, t0, 1);
        return STORE_OK;
    }

    /* The rest of the source, in key order. */
    struct sbuf b = {0};
    sb_add(&b, "%s", it->select_sql);
    if (pr.last_key[0]) {
        sb_add(&b, " WHERE (%s) > (", it->key_names);
        for (int k = 0; k < it->nkeys; k++)
            sb_add(&b, "%s?", k ? ", " : "");
        sb_add(&b, ")");
    }
    sb_add(&b, " ORDER BY %s", it->key_names);
    char *sql = sb_take(&b);
    char **keybufs = calloc((size_t)it->nkeys, sizeof *keybufs);
    size_t batch = o->batch_rows ? o->batch_rows : STORE_COPY_BATCH;
    if (batch * (size_t)it->nvals > BATCH_PARAMS)
        batch = BATCH_PARAMS / (size_t)it->nvals;
    if (batch == 0)
        batch = 1;
    size_t stride = (size_t)it->nsel + 1; /* + the blob file's bytes */
    struct cell *rows = calloc(batch * stride, sizeof *rows);
    int out = STORE_OK;
    struct db_stmt *sel = NULL;
    if (!sql || !keybufs || !rows)
        out = failf(err, errlen, "out of memory");
    else if (!(sel = db_prepare(c->src, sql)))
        out = failf(err, errlen, "%s: cannot read the source: %s", it->name, db_errmsg(c->src));
    else if (pr.last_key[0] && key_bind(it, sel, pr.last_key, keybufs) != 0)
        out = failf(err, errlen, "%s: the recorded progress (\"%.60s\") is not a key of it", it->name, pr.last_key);

    uint64_t run_rows = 0, run_bytes = 0;
    double last_report = t0;
    int eof = 0;
    while (out == STORE_OK && !eof) {
        size_t n = 0, bytes = 0;
        while (n < batch && bytes < BATCH_BYTES) {
            int rc = db_step(sel);
            if (rc == DB_DONE) {
                eof = 1;
                break;
            }
            if (rc != DB_ROW) {
                out = failf(err, errlen, "%s: cannot read the source: %s", it->name, db_errmsg(c->src));
                break;
            }
            struct cell *row = rows + n * stride;
            for (int i = 0; i < it->nsel && out == STORE_OK; i++) {
                if (cell_read(sel, i, &row[i]) != 0)
                    out = failf(err, errlen, "out of memory");
                bytes += row[i].n;
            }
            if (out == STORE_OK && it->kind == ITEM_BLOBS) {
                out = blob_read(c, o->blobs_dir, &row[0], &row[it->nsel], err, errlen);
                bytes += row[it->nsel].n;
            }
            n++;
            if (out != STORE_OK)
                break;
        }
        if (out == STORE_OK && n > 0)
            out = write_batch(c, it, rows, stride, n, err, errlen);
        cells_free(rows, n * stride);
        if (out != STORE_OK)
            break;
        if (n > 0) {
            pr.copied += (int64_t)n;
            run_rows += n;
            run_bytes += bytes;
            ++*batches;
            double t = now_mono();
            if (t - last_report >= 1.0 && !eof) {
                report(o, it, pr.copied, run_rows, run_bytes, t0, 0);
                last_report = t;
            }
            if (o->stop_after && *batches >= o->stop_after) {
                out = STORE_COPY_STOPPED;
                break;
            }
        }
    }
    if (out == STORE_OK) {
        out = mark_done(c->dst, it->name, err, errlen);
        if (out == STORE_OK)
            report(o, it, pr.copied, run_rows, run_bytes, t0, 1);
    }
    db_finalize(sel);
    for (int k = 0; keybufs && k < it->nkeys; k++)
        free(keybufs[k]);
    free(keybufs);
    free(rows);
    free(sql);
    free(pr.last_key);
    return out;
}

/* Moves every identity sequence of the target past the largest id it holds,
 * so the nodes' next inserts do not collide with the copied ids. */
static int move_sequences(struct store_copy *c, char *err, size_t errlen)
{
    static const char sql[] = "SELECT table_name::text, column_name::text FROM information_schema.columns "
                              "WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY 1, 2";
    struct db_stmt *s = stmt_get(c->dst, sql);
    if (!s)
        return failf(err, errlen, "cannot list the identity columns: %s", db_errmsg(c->dst));
    struct sbuf b = {0};
    int rc, bad = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        char table[64], col[64];
        col_text(s, 0, table, sizeof table);
        col_text(s, 1, col, sizeof col);
        if (!plain_name(table) || !plain_name(col)) {
            bad = 1;
            continue;
        }
        sb_add(&b, "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'), "
                   "coalesce((SELECT max(\"%s\") FROM \"%s\"), 0) + 1, false);",
               table, col, col, table);
    }
    stmt_put(c->dst, sql, s);
    char *script = sb_take(&b);
    if (rc != DB_DONE) {
        free(script);
        return failf(err, errlen, "cannot list the identity columns: %s", db_errmsg(c->dst));
    }
    if (!script)
        return failf(err, errlen, "out of memory");
    int out = bad ? failf(err, errlen, "an identity column's name is not plain") : STORE_OK;
    if (out == STORE_OK && script[0] && db_exec(c->dst, script, "move the identity sequences") != STORE_OK)
        out = failf(err, errlen, "cannot move the identity sequences: %s", db_errmsg(c->dst));
    free(script);
    return out;
}

int store_copy_run(struct store_copy *c, const struct store_copy_opts *o, char *err, size_t errlen)
{
    unsigned batches = 0;
    for (size_t i = 0; i < c->nitems; i++) {
        if (c->items[i].kind == ITEM_BLOBS && !o->blobs_to_db)
            continue;
        int rc = copy_item(c, &c->items[i], o, &batches, err, errlen);
        if (rc != STORE_OK)
            return rc;
    }
    return move_sequences(c, err, errlen);
}

/* How many of the source's blob ids have a file in dir. */
static int count_files(struct store_copy *c, const char *dir, int64_t *n, char *err, size_t errlen)
{
    static const char sql[] = "SELECT id FROM blobs ORDER BY id";
    *n = 0;
    struct db_stmt *s = db_prepare(c->src, sql);
    if (!s)
        return failf(err, errlen, "cannot read the blobs table: %s", db_errmsg(c->src));
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        const char *id = db_col_text(s, 0);
        char path[1200];
        snprintf(path, sizeof path, "%s/%.2s/%s", dir, id, id);
        struct stat sb;
        if (blob_id_valid(id) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            ++*n;
    }
    db_finalize(s);
    if (rc != DB_DONE)
        return failf(err, errlen, "cannot read the blobs table: %s", db_errmsg(c->src));
    return STORE_OK;
}

int store_copy_counts(struct store_copy *c, const struct store_copy_opts *o, struct store_copy_count **out,
                      size_t *n, char *err, size_t errlen)
{
    *out = calloc(c->nitems ? c->nitems : 1, sizeof **out);
    *n = 0;
    if (!*out)
        return failf(err, errlen, "out of memory");
    for (size_t i = 0; i < c->nitems; i++) {
        const struct item *it = &c->items[i];
        struct store_copy_count *k = &(*out)[(*n)++];
        snprintf(k->item, sizeof k->item, "%s", it->kind == ITEM_BLOBS && !o->blobs_to_db ? "blob files" : it->name);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", it->kind == ITEM_BLOBS ? "blobs" : it->name);
        if (query_int(c->src, sql, &k->source, err, errlen) != STORE_OK)
            return STORE_ERR;
        if (it->kind == ITEM_BLOBS && !o->blobs_to_db) {
            if (count_files(c, o->blobs_dir, &k->target, err, errlen) != STORE_OK)
                return STORE_ERR;
            continue;
        }
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", it->name);
        if (query_int(c->dst, sql, &k->target, err, errlen) != STORE_OK)
            return STORE_ERR;
    }
    return STORE_OK;
}

int store_copy_finish(struct store_copy *c, char *err, size_t errlen)
{
    return mark_done(c->dst, "", err, errlen);
}
