/*
 * db_pg.c — the PostgreSQL engine of the statement layer (store_internal.h's
 * db_ops), over libpq: `store = postgresql://...` in the config.
 *
 * Statements are written in the dialect both engines accept; this side numbers
 * their ? placeholders $1..$n (a bare ? is one more than the highest number
 * so far, as SQLite counts). A cached statement is prepared on the server once
 * per connection (lazily, so a reconnect just prepares again); a statement
 * built at run time goes in one round trip with PQexecParams. Results come
 * back whole and in binary, so a caller may run other statements on the same
 * connection while it walks the rows (a listing's callback does), and
 * integers need no parsing. Parameters go as text (PostgreSQL infers each
 * one's type from where it stands), blobs in binary.
 *
 * A lost connection is reconnected at the next statement outside a
 * transaction; inside one the statement fails with DB_RETRY and the caller's
 * transaction is over (the writer answers 451 and the client retries).
 * synchronous_commit is forced on: a COMMIT is durable on the primary (and on
 * a synchronous standby where the cluster has one) when it returns, which is
 * what lets smtpd answer 250.
 */
#include "store/store_internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Type OIDs of the results we decode (catalog/pg_type.dat; stable). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

/* How long a connection attempt may take. */
#define PG_CONNECT_TIMEOUT "10"

struct pg_conn {
    PGconn *conn;
    char url[1024];    /* as configured (may hold a password: never logged) */
    unsigned gen;      /* bumped at each reconnect: server statements are gone */
    unsigned next_id;  /* names of prepared statements */
    int lost_in_tx;    /* the connection died inside a transaction: every
                          statement fails until the caller ends it */
};

struct pg_stmt {
    struct db_stmt base;
    char *sql;         /* with $n placeholders */
    char name[24];     /* server-side name ("" for a one-shot statement) */
    unsigned gen;      /* the connection generation it was prepared in */
    int prepared;
    int nparams;
    Oid *types;        /* 0: inferred; TEXT for a number the text never uses */
    char **vals;       /* owned copies (text format) or borrowed blobs */
    int *lens;
    int *fmts;
    unsigned char *owned; /* vals[i] is ours to free */
    PGresult *res;
    int row, nrows;
    char num[32];      /* a number read as text (db_col_text) */
};

static struct pg_conn *pgc(const struct store *st)
{
    return st->conn;
}

static struct pg_stmt *ps(struct db_stmt *s)
{
    return (struct pg_stmt *)s;
}

/* ---------------------------------------------------------------- dialect */

/*
 * Copies sql with ? and ?N turned into $N; *nparams gets the highest number
 * and used[] (sized by the caller to at least strlen(sql) + 1 entries) marks
 * the numbers the text uses. Quoted strings and identifiers are copied as
 * they are. NULL when out of memory.
 */
static char *number_params(const char *sql, int *nparams, unsigned char *used)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 4 + 16); /* "?" -> "$NNN" at worst */
    if (!out)
        return NULL;
    char *o = out;
    int high = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            *o++ = *p;
            if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
            continue;
        }
        if (*p != '?') {
            *o++ = *p;
            continue;
        }
        int num = 0;
        while (p[1] >= '0' && p[1] <= '9' && num < 100000)
            num = num * 10 + (*++p - '0');
        if (num == 0)
            num = high + 1;
        if (num > high)
            high = num;
        if ((size_t)num <= n)
            used[num] = 1;
        o += sprintf(o, "$%d", num);
    }
    *o = '\0';
    *nparams = high;
    return out;
}

/* ------------------------------------------------------------------ errors */

/* Keeps res's message and maps its SQLSTATE. */
static int fail(struct store *st, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(pgc(st)->conn);
    snprintf(st->errmsg, sizeof st->errmsg, "%s", msg && *msg ? msg : "no answer from PostgreSQL");
    size_t n = strlen(st->errmsg);
    while (n && (st->errmsg[n - 1] == '\n' || st->errmsg[n - 1] == ' '))
        st->errmsg[--n] = '\0';
    if (PQstatus(pgc(st)->conn) != CONNECTION_OK)
        return DB_RETRY;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return DB_ERR;
    if (strcmp(state, "23505") == 0)
        return DB_UNIQUE;
    if (strcmp(state, "23503") == 0)
        return DB_FOREIGN;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strncmp(state, "08", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "25006") == 0)
        return DB_RETRY; /* serialisation, deadlock, connection, shutdown, read-only standby */
    return DB_ERR;
}

/* Reconnects a lost connection when no transaction can be lost with it.
 * 0 when the connection is usable. */
static int ensure_connected(struct store *st)
{
    struct pg_conn *c = pgc(st);
    if (c->lost_in_tx || (PQstatus(c->conn) != CONNECTION_OK && st->in_tx)) {
        /* Reconnecting now would run the rest of the transaction on its own. */
        c->lost_in_tx = 1;
        snprintf(st->errmsg, sizeof st->errmsg, "the connection to PostgreSQL was lost in a transaction");
        return -1;
    }
    if (PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    PQreset(c->conn);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        fail(st, NULL);
        return -1;
    }
    c->gen++;
    log_info("store: reconnected to PostgreSQL");
    return 0;
}

/* Records how many rows an INSERT, UPDATE or DELETE changed. */
static void count_changes(struct store *st, PGresult *res)
{
    const char *cmd = PQcmdStatus(res);
    if (cmd && (strncmp(cmd, "INSERT", 6) == 0 || strncmp(cmd, "UPDATE", 6) == 0 ||
                strncmp(cmd, "DELETE", 6) == 0 || strncmp(cmd, "MERGE", 5) == 0))
        st->changes = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
}

/* -------------------------------------------------------------- statements */

static void clear_params(struct pg_stmt *p)
{
    for (int i = 0; i < p->nparams; i++) {
        if (p->owned[i])
            free(p->vals[i]);
        p->vals[i] = NULL;
        p->owned[i] = 0;
        p->lens[i] = 0;
        p->fmts[i] = 0;
    }
}

static void p_finalize(struct db_stmt *s)
{
    struct pg_stmt *p = ps(s);
    PQclear(p->res);
    clear_params(p);
    /* Only cached statements are prepared on the server, and they go when
     * the connection closes: nothing to DEALLOCATE. */
    free(p->sql);
    free(p->types);
    free(p->vals);
    free(p->lens);
    free(p->fmts);
    free(p->owned);
    free(p);
}

static struct db_stmt *p_prepare(struct store *st, const char *sql, int persistent)
{
    struct pg_stmt *p = calloc(1, sizeof *p);
    unsigned char *used = calloc(strlen(sql) + 2, 1);
    if (p && used)
        p->sql = number_params(sql, &p->nparams, used);
    int n = p && p->sql ? p->nparams : 0;
    if (p && p->sql) {
        p->types = calloc((size_t)n + 1, sizeof *p->types);
        p->vals = calloc((size_t)n + 1, sizeof *p->vals);
        p->lens = calloc((size_t)n + 1, sizeof *p->lens);
        p->fmts = calloc((size_t)n + 1, sizeof *p->fmts);
        p->owned = calloc((size_t)n + 1, 1);
    }
    if (!p || !used || !p->sql || !p->types || !p->vals || !p->lens || !p->fmts || !p->owned) {
        free(used);
        if (p) {
            p->nparams = 0;
            p->base.st = st;
            p_finalize(&p->base);
        }
        log_err("store: out of memory preparing a statement");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        p->types[i] = used[i + 1] ? 0 : OID_TEXT;
    free(used);
    p->base.st = st;
    p->base.ops = &db_pg_ops;
    p->base.persistent = persistent;
    if (persistent)
        snprintf(p->name, sizeof p->name, "lb%u", ++pgc(st)->next_id);
    return &p->base;
}

static void p_reset(struct db_stmt *s)
{
    struct pg_stmt *p = ps(s);
    PQclear(p->res);
    p->res = NULL;
    p->row = p->nrows = 0;
    clear_params(p);
}

static int param_slot(struct pg_stmt *p, int idx)
{
    if (idx < 1 || idx > p->nparams)
        return -1;
    int i = idx - 1;
    if (p->owned[i])
        free(p->vals[i]);
    p->owned[i] = 0;
    return i;
}

static void p_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
    struct pg_stmt *p = ps(s);
    int i = param_slot(p, idx);
    if (i < 0)
        return;
    char buf[24];
    int len = snprintf(buf, sizeof buf, "%lld", (long long)v);
    p->vals[i] = strdup(buf);
    p->owned[i] = p->vals[i] != NULL;
    p->lens[i] = len;
    p->fmts[i] = 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if it is not one
 * (overlong forms and surrogates included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

static void p_bind_text(struct db_stmt *s, int idx, const char *t, size_t len)
{
    struct pg_stmt *p = ps(s);
    int i = param_slot(p, idx);
    if (i < 0)
        return;
    /* Text-format values end in NUL: a copy cut at len (or at a NUL, which
     * PostgreSQL text cannot hold). PostgreSQL also refuses bytes that are
     * not UTF-8, which SQLite keeps (a remote server's reply, a search for
     * garbage): each such byte becomes '?', so the statement still runs. */
    char *copy = malloc(len + 1);
    if (copy) {
        const unsigned char *u = (const unsigned char *)t;
        size_t n = 0;
        while (n < len && u[n]) {
            size_t k = utf8_seq(u + n, len - n);
            if (k) {
                memcpy(copy + n, u + n, k);
                n += k;
            } else {
                copy[n++] = '?';
            }
        }
        copy[n] = '\0';
        len = n;
    }
    p->vals[i] = copy;
    p->owned[i] = copy != NULL;
    p->lens[i] = (int)len;
    p->fmts[i] = 0;
}

static void p_bind_blob(struct db_stmt *s, int idx, const void *data, size_t len)
{
    struct pg_stmt *p = ps(s);
    int i = param_slot(p, idx);
    if (i < 0)
        return;
    p->vals[i] = (char *)(len ? data : "");
    p->lens[i] = (int)len;
    p->fmts[i] = 1;
}

static void p_bind_null(struct db_stmt *s, int idx)
{
    struct pg_stmt *p = ps(s);
    int i = param_slot(p, idx);
    if (i < 0)
        return;
    p->vals[i] = NULL; /* libpq sends a NULL value as SQL NULL */
    p->lens[i] = 0;
    p->fmts[i] = 0;
}

static int p_bind_count(struct db_stmt *s)
{
    return ps(s)->nparams;
}

/* Runs the statement on the server; its rows (if any) are kept in p->res. */
static int execute(struct pg_stmt *p)
{
    struct store *st = p->base.st;
    struct pg_conn *c = pgc(st);
    if (ensure_connected(st) != 0)
        return DB_RETRY;
    if (p->base.persistent && (!p->prepared || p->gen != c->gen)) {
        PGresult *r = PQprepare(c->conn, p->name, p->sql, p->nparams, p->types);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int rc = fail(st, r);
            PQclear(r);
            log_err("store: cannot prepare \"%.80s...\": %s", p->sql, st->errmsg);
            return rc;
        }
        PQclear(r);
        p->prepared = 1;
        p->gen = c->gen;
    }
    const char *const *vals = (const char *const *)p->vals;
    PGresult *res = p->base.persistent
                        ? PQexecPrepared(c->conn, p->name, p->nparams, vals, p->lens, p->fmts, 1)
                        : PQexecParams(c->conn, p->sql, p->nparams, p->types, vals, p->lens, p->fmts, 1);
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        count_changes(st, res);
        p->res = res;
        p->nrows = status == PGRES_TUPLES_OK ? PQntuples(res) : 0;
        p->row = -1;
        return DB_DONE;
    }
    int rc = fail(st, res);
    PQclear(res);
    return rc;
}

static int p_step(struct db_stmt *s)
{
    struct pg_stmt *p = ps(s);
    if (!p->res) {
        int rc = execute(p);
        /* Outside a transaction a statement that met a dead connection (the
         * server restarted, a failover) runs again once on a new one. */
        if (rc == DB_RETRY && !s->st->in_tx && PQstatus(pgc(s->st)->conn) != CONNECTION_OK)
            rc = execute(p);
        if (rc != DB_DONE)
            return rc;
    }
    if (p->row + 1 < p->nrows) {
        p->row++;
        return DB_ROW;
    }
    p->row = p->nrows;
    return DB_DONE;
}

/* ------------------------------------------------------------------ columns */

static uint64_t be(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

/* A NUMERIC in binary (ndigits, weight, sign, dscale, base-10000 digits) as
 * an integer: sum() and avg() of BIGINT columns give one. */
static int64_t numeric_int64(const unsigned char *b, int len)
{
    if (len < 8)
        return 0;
    int ndigits = (int16_t)be(b, 2), weight = (int16_t)be(b + 2, 2);
    unsigned sign = (unsigned)be(b + 4, 2);
    if (sign == 0xC000 || len < 8 + 2 * ndigits)
        return 0; /* NaN */
    int64_t v = 0;
    for (int i = 0; i <= weight; i++)
        v = v * 10000 + (i < ndigits ? (int64_t)be(b + 8 + 2 * i, 2) : 0);
    return sign == 0x4000 ? -v : v;
}

static int p_null(struct pg_stmt *p, int i)
{
    return !p->res || p->row < 0 || p->row >= p->nrows || i >= PQnfields(p->res) ||
           PQgetisnull(p->res, p->row, i);
}

static int64_t p_col_int64(struct db_stmt *s, int i)
{
    struct pg_stmt *p = ps(s);
    if (p_null(p, i))
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(p->res, p->row, i);
    int len = PQgetlength(p->res, p->row, i);
    switch (PQftype(p->res, i)) {
    case OID_INT8:
        return len == 8 ? (int64_t)be(v, 8) : 0;
    case OID_INT4:
        return len == 4 ? (int32_t)be(v, 4) : 0;
    case OID_INT2:
        return len == 2 ? (int16_t)be(v, 2) : 0;
    case OID_BOOL:
        return len == 1 && v[0];
    case OID_NUMERIC:
        return numeric_int64(v, len);
    case OID_FLOAT8: {
        uint64_t bits = be(v, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        return len == 8 ? (int64_t)d : 0;
    }
    default:
        return strtoll((const char *)v, NULL, 10); /* text: as SQLite reads it */
    }
}

static const char *p_col_text(struct db_stmt *s, int i)
{
    struct pg_stmt *p = ps(s);
    if (p_null(p, i))
        return "";
    switch (PQftype(p->res, i)) {
    case OID_INT8:
    case OID_INT4:
    case OID_INT2:
    case OID_BOOL:
    case OID_NUMERIC:
    case OID_FLOAT8:
        snprintf(p->num, sizeof p->num, "%lld", (long long)p_col_int64(s, i));
        return p->num;
    default:
        return PQgetvalue(p->res, p->row, i); /* binary text is its bytes, NUL-ended by libpq */
    }
}

static const void *p_col_blob(struct db_stmt *s, int i)
{
    struct pg_stmt *p = ps(s);
    return p_null(p, i) ? NULL : PQgetvalue(p->res, p->row, i);
}

static size_t p_col_bytes(struct db_stmt *s, int i)
{
    struct pg_stmt *p = ps(s);
    if (p_null(p, i))
        return 0;
    switch (PQftype(p->res, i)) {
    case OID_INT8:
    case OID_INT4:
    case OID_INT2:
    case OID_BOOL:
    case OID_NUMERIC:
    case OID_FLOAT8:
        return strlen(p_col_text(s, i));
    default:
        return (size_t)PQgetlength(p->res, p->row, i);
    }
}

static int p_col_type(struct db_stmt *s, int i)
{
    struct pg_stmt *p = ps(s);
    if (p_null(p, i))
        return DB_TYPE_NULL;
    switch (PQftype(p->res, i)) {
    case OID_INT8:
    case OID_INT4:
    case OID_INT2:
    case OID_BOOL:
        return DB_TYPE_INT;
    case OID_FLOAT8:
    case OID_NUMERIC:
        return DB_TYPE_FLOAT;
    case OID_BYTEA:
        return DB_TYPE_BLOB;
    default:
        return DB_TYPE_TEXT;
    }
}

/* ------------------------------------------------------------- connections */

static int p_exec(struct store *st, const char *sql)
{
    struct pg_conn *c = pgc(st);
    if (c->lost_in_tx && (strcmp(sql, "ROLLBACK") == 0 || strcmp(sql, "COMMIT") == 0)) {
        /* The server rolled the transaction back when the connection died. */
        c->lost_in_tx = 0;
        st->in_tx = 0;
        return sql[0] == 'R' ? DB_DONE : DB_RETRY;
    }
    if (ensure_connected(st) != 0)
        return DB_RETRY;
    PGresult *res = PQexec(pgc(st)->conn, sql);
    ExecStatusType status = PQresultStatus(res);
    int rc = DB_DONE;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        count_changes(st, res);
    else
        rc = fail(st, res);
    PQclear(res);
    /* Tracks BEGIN/COMMIT/ROLLBACK for ensure_connected: a reconnect inside
     * a transaction would silently drop its first half. */
    st->in_tx = PQtransactionStatus(pgc(st)->conn) != PQTRANS_IDLE &&
                PQtransactionStatus(pgc(st)->conn) != PQTRANS_UNKNOWN;
    return rc;
}

static unsigned p_conn_gen(const struct store *st)
{
    return pgc(st)->gen + 1;
}

static int p_in_transaction(struct store *st)
{
    if (pgc(st)->lost_in_tx)
        return 1; /* until the caller ends it */
    PGTransactionStatusType t = PQtransactionStatus(pgc(st)->conn);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* Server notices (a skipped IF NOT EXISTS...) are not worth a log line. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* The URL without its password, for messages. */
static void url_redact(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (!colon) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}

static int p_open(struct store *st, const struct config *cfg, char *err, size_t errlen)
{
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->conn = c;
    snprintf(c->url, sizeof c->url, "%s", cfg->store);
    char app[96];
    snprintf(app, sizeof app, "lifeboat@%s", cfg->node_name);
    /* Defaults first: what the URL says wins. */
    /* Keepalives: a node cut off from the database (not just dead) is
     * noticed within about half a minute, so its lead goes to another. */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "dbname", NULL};
    const char *vals[] = {PG_CONNECT_TIMEOUT, app, "10", "5", "3", c->url, NULL};
    c->conn = PQconnectdbParams(keys, vals, 1);
    char shown[1100];
    url_redact(cfg->store, shown, sizeof shown);
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        const char *why = c->conn ? PQerrorMessage(c->conn) : "out of memory";
        snprintf(err, errlen, "cannot connect to PostgreSQL at %s: %.*s", shown, (int)strcspn(why, "\n"), why);
        return -1;
    }
    PQsetNoticeProcessor(c->conn, quiet_notice, NULL);
    if (PQserverVersion(c->conn) < 130000) {
        snprintf(err, errlen, "PostgreSQL at %s is version %d: lifeboat needs 13 or newer", shown,
                 PQserverVersion(c->conn) / 10000);
        return -1;
    }
    if (p_exec(st, "SET synchronous_commit = on; SET client_min_messages = warning; "
                   "SET TIME ZONE 'UTC'") != DB_DONE) {
        snprintf(err, errlen, "PostgreSQL at %s: %s", shown, st->errmsg);
        return -1;
    }
    return 0;
}

static void p_close(struct store *st)
{
    struct pg_conn *c = pgc(st);
    PQfinish(c->conn);
    free(c);
    st->conn = NULL;
}

const struct db_ops db_pg_ops = {
    .open = p_open,
    .close = p_close,
    .prepare = p_prepare,
    .exec = p_exec,
    .in_transaction = p_in_transaction,
    .conn_gen = p_conn_gen,
    .begin_sql = "BEGIN",
    .bind_int64 = p_bind_int64,
    .bind_text = p_bind_text,
    .bind_blob = p_bind_blob,
    .bind_null = p_bind_null,
    .bind_count = p_bind_count,
    .step = p_step,
    .reset = p_reset,
    .finalize = p_finalize,
    .col_int64 = p_col_int64,
    .col_text = p_col_text,
    .col_blob = p_col_blob,
    .col_bytes = p_col_bytes,
    .col_type = p_col_type,
};
