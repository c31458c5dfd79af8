/*
 * store_archive.c — store.h's archive on SQLite (migration 5): entries, their
 * participants, the full-text index, search, retention, legal holds and the
 * audit trail.
 *
 * An entry is added inside the transaction that queues the message
 * (archive_ingest) and takes its own reference on the message's blob, so the
 * body is stored once whatever the number of queue, mailbox and archive rows
 * that use it. Its participants (envelope sender and recipients) are rows of
 * archive_addrs, keyed by address: a user's scope is a range of that key.
 * The indexer adds the full-text row later (store_archive_index); until then
 * an entry is found by its envelope and received date only.
 *
 * Searches are built as SQL text from fixed fragments, with every value the
 * user gave bound as a parameter. On SQLite the words of a text search become
 * one FTS5 query in which each word is a quoted string (a `"` in it doubled)
 * and the strings are ANDed: nothing a user types is ever read as FTS5
 * syntax. On PostgreSQL the index is a weighted tsvector (store_schema_pg.c)
 * and each word is bound on its own to archive_fts_phrase(), FTS5's phrase:
 * the same semantics, the same filters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/sbuf.h"
#include "util/log.h"

/* A search uses at most this many words and this many user addresses; the
 * rest are ignored (a user with more aliases than this is not a real case). */
#define SEARCH_WORDS_MAX 32
#define SEARCH_ADDRS_MAX 256
/* Date ranges up to this long (seconds) use the date index (see search_build). */
#define SEARCH_DATE_INDEX_RANGE (31 * 86400)

/* ------------------------------------------------------------------ helpers */

/* The length of s cut to at most max bytes at a UTF-8 character boundary. */
static size_t utf8_cut_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Binds s cut to what a char[fieldsize] field can give back whole. */
static int bind_cut(struct db_stmt *stmt, int idx, const char *s, size_t fieldsize)
{
    s = s ? s : "";
    db_bind_textn(stmt, idx, s, utf8_cut_len(s, fieldsize - 1));
    return 0;
}

/* Runs sql (binding ?1 = id) and returns its result like stmt_run. */
static int exec_id(struct store *st, const char *sql, int64_t id, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_run(st, sql, s, what);
}

/* ------------------------------------------------------------------ entries */

#define ENTRY_COLS                                                                                  \
    "a.id, a.customer_id, a.msg_id, a.blob, a.prefix, a.direction, a.sender, a.received, a.size, " \
    "a.indexed, a.date, a.subject, a.from_hdr, a.to_hdr, a.has_attachment"

static void read_entry(struct db_stmt *s, void *out)
{
    struct store_archive_entry *e = out;
    memset(e, 0, sizeof *e);
    e->id = db_col_int64(s, 0);
    e->customer_id = db_col_int64(s, 1);
    col_text(s, 2, e->msg_id, sizeof e->msg_id);
    col_text(s, 3, e->blob, sizeof e->blob);
    col_text(s, 4, e->prefix, sizeof e->prefix);
    e->direction = db_col_int(s, 5);
    col_text(s, 6, e->sender, sizeof e->sender);
    e->received = db_col_int64(s, 7);
    e->size = (uint64_t)db_col_int64(s, 8);
    e->indexed = db_col_int(s, 9);
    e->date = db_col_int64(s, 10);
    col_text(s, 11, e->subject, sizeof e->subject);
    col_text(s, 12, e->from_hdr, sizeof e->from_hdr);
    col_text(s, 13, e->to_hdr, sizeof e->to_hdr);
    e->has_attachment = db_col_int(s, 14);
}

/* Refuses what could not be read back whole. */
static int entry_new_valid(const struct store_archive_entry *e, const char *const *rcpts, size_t nrcpt)
{
    const char *why = NULL;
    if (!e->msg_id[0] || !e->blob[0] || e->customer_id <= 0)
        why = "no queue ID, blob or customer";
    else if (strnlen(e->prefix, sizeof e->prefix) >= sizeof e->prefix ||
             strnlen(e->sender, sizeof e->sender) >= sizeof e->sender)
        why = "prefix or sender too long";
    for (size_t i = 0; !why && i < nrcpt; i++)
        if (!rcpts[i] || !rcpts[i][0] || strlen(rcpts[i]) > ADDR_MAX)
            why = "recipient address missing or too long";
    if (why)
        log_err("%s: store: cannot archive the message: %s", e->msg_id, why);
    return !why;
}

static int addr_insert(struct store *st, int64_t entry_id, const char *addr, int kind, int pos)
{
    /* DO NOTHING: a recipient named twice is one participant. */
    static const char sql[] = "INSERT INTO archive_addrs (addr, entry_id, kind, pos) "
                              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, addr);
    db_bind_int64(s, 2, entry_id);
    db_bind_int(s, 3, kind);
    db_bind_int(s, 4, pos);
    return stmt_run(st, sql, s, "archive participant insert");
}

/* One more reference on a blob that must be recorded already. */
static int blob_ref_existing(struct store *st, const char *blob)
{
    static const char sql[] = "UPDATE blobs SET refs = refs + 1 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob);
    int rc = stmt_run(st, sql, s, "archive blob reference");
    if (rc == STORE_OK && db_changes(st) == 0) {
        log_err("store: archive: blob %s is not recorded", blob);
        return STORE_NOTFOUND;
    }
    return rc;
}

int store_archive_add(struct store *st, const struct store_archive_entry *e, const char *const *rcpts,
                      size_t nrcpt, int64_t *id_out)
{
    static const char sql[] = "INSERT INTO archive (customer_id, msg_id, blob, prefix, direction, sender, "
                              "received, size, date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7) RETURNING id";
    if (!entry_new_valid(e, rcpts, nrcpt))
        return STORE_ERR;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    int64_t id = 0;
    rc = blob_ref_existing(st, e->blob);
    struct db_stmt *s = rc == STORE_OK ? stmt_get(st, sql) : NULL;
    if (s) {
        db_bind_int64(s, 1, e->customer_id);
        db_bind_text(s, 2, e->msg_id);
        db_bind_text(s, 3, e->blob);
        db_bind_text(s, 4, e->prefix);
        db_bind_int(s, 5, e->direction);
        db_bind_text(s, 6, e->sender);
        db_bind_int64(s, 7, e->received);
        db_bind_int64(s, 8, (int64_t)e->size);
        rc = stmt_insert(st, sql, s, &id, "archive entry insert");
    } else if (rc == STORE_OK) {
        rc = STORE_ERR;
    }
    if (rc == STORE_OK && e->sender[0])
        rc = addr_insert(st, id, e->sender, ARCHIVE_ADDR_FROM, 0);
    for (size_t i = 0; rc == STORE_OK && i < nrcpt; i++)
        rc = addr_insert(st, id, rcpts[i], ARCHIVE_ADDR_TO, (int)i);
    rc = op_end(st, &op, rc);
    if (rc == STORE_OK && id_out)
        *id_out = id;
    return rc;
}

int store_archive_get(struct store *st, int64_t id, struct store_archive_entry *out)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM archive a WHERE a.id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_entry, out, "archive entry get");
}

int store_archive_get_locked(struct store *st, int64_t id, struct store_archive_entry *out)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM archive a WHERE a.id = ?1 FOR SHARE";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_entry, out, "archive entry get for share");
}

struct addr_each {
    int (*cb)(const char *, void *);
    void *arg;
};

static int addr_each(struct db_stmt *s, void *ctx)
{
    struct addr_each *e = ctx;
    char addr[ADDR_MAX + 1];
    col_text(s, 0, addr, sizeof addr);
    return e->cb(addr, e->arg);
}

int store_archive_addrs(struct store *st, int64_t id, int kind, int (*cb)(const char *addr, void *), void *arg)
{
    static const char sql[] = "SELECT addr FROM archive_addrs WHERE entry_id = ?1 AND kind = ?2 ORDER BY pos";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    db_bind_int(s, 2, kind);
    struct addr_each e = {cb, arg};
    return stmt_each(st, sql, s, addr_each, &e, "archive participants");
}

struct entry_each {
    int (*cb)(const struct store_archive_entry *, void *);
    void *arg;
};

static int entry_each(struct db_stmt *s, void *ctx)
{
    struct entry_each *e = ctx;
    struct store_archive_entry entry;
    read_entry(s, &entry);
    return e->cb(&entry, e->arg);
}

int store_archive_unindexed(struct store *st, size_t limit,
                            int (*cb)(const struct store_archive_entry *, void *), void *arg)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM archive a WHERE a.indexed = 0 ORDER BY a.id LIMIT ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, limit ? (int64_t)limit : INT64_MAX);
    struct entry_each e = {cb, arg};
    return stmt_each(st, sql, s, entry_each, &e, "archive unindexed");
}

/* Ends store_archive_index: its own transaction when it opened one. */
static int index_end(struct store *st, int own, struct store_op *op, int rc)
{
    return own ? op_end(st, op, rc) : rc;
}

int store_archive_index(struct store *st, const struct store_archive_text *t)
{
    static const char sql_up[] = "UPDATE archive SET indexed = 1, date = ?2, subject = ?3, from_hdr = ?4, "
                                 "to_hdr = ?5, has_attachment = ?6 WHERE id = ?1 AND indexed = 0";
    static const char sql_exists[] = "SELECT 1 FROM archive WHERE id = ?1";
    static const char sql_fts_lite[] = "INSERT INTO archive_fts (rowid, subject, from_hdr, to_hdr, body, attachments) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    static const char sql_fts_pg[] = "INSERT INTO archive_fts (id, tsv) VALUES (?1, archive_fts_vector(?2, ?3, ?4, ?5, ?6))";
    const char *sql_fts = st->kind == DB_PG ? sql_fts_pg : sql_fts_lite;
    const struct store_archive_entry *none = NULL;
    /* Inside a transaction (the indexer's writer job, many entries) no
     * savepoint of its own: FTS5 flushes a segment at every savepoint, which
     * was a quarter of the writer's time. An error then fails the caller's
     * job, which the writer rolls back whole. Alone, it is one transaction. */
    int own = !store_in_transaction(st);
    struct store_op op;
    int rc = own ? op_begin(st, &op) : STORE_OK;
    if (rc != STORE_OK)
        return rc;
    struct db_stmt *s = stmt_get(st, sql_up);
    if (!s)
        return index_end(st, own, &op, STORE_ERR);
    db_bind_int64(s, 1, t->id);
    db_bind_int64(s, 2, t->date);
    bind_cut(s, 3, t->subject, sizeof none->subject);
    bind_cut(s, 4, t->from_hdr, sizeof none->from_hdr);
    bind_cut(s, 5, t->to_hdr, sizeof none->to_hdr);
    db_bind_int(s, 6, t->has_attachment ? 1 : 0);
    rc = stmt_run(st, sql_up, s, "archive entry index");
    if (rc == STORE_OK && db_changes(st) == 0) {
        /* purged meanwhile (not found), or indexed already (nothing to do) */
        int one = 0;
        if (!(s = stmt_get(st, sql_exists)))
            return index_end(st, own, &op, STORE_ERR);
        db_bind_int64(s, 1, t->id);
        rc = stmt_fetch_one(st, sql_exists, s, read_col0_int, &one, "archive entry get");
        return index_end(st, own, &op, rc);
    }
    if (rc == STORE_OK) {
        if (!(s = stmt_get(st, sql_fts)))
            return index_end(st, own, &op, STORE_ERR);
        db_bind_int64(s, 1, t->id);
        db_bind_text(s, 2, t->subject);
        db_bind_text(s, 3, t->from_hdr);
        db_bind_text(s, 4, t->to_hdr);
        db_bind_text(s, 5, t->body);
        db_bind_text(s, 6, t->attachments);
        rc = stmt_run(st, sql_fts, s, "archive full-text insert");
    }
    return index_end(st, own, &op, rc);
}

/* ------------------------------------------------------------------- search */

/* The SQL text (util/sbuf.h) and the list of values to bind to it. */
#define SEARCH_BINDS_MAX (SEARCH_ADDRS_MAX + 16)

struct bindv {
    int is_text;
    int64_t i;
    const char *t; /* owned by the query or by a struct sbuf of the search */
};

struct search {
    struct sbuf where; /* " AND ..." fragments */
    struct bindv binds[SEARCH_BINDS_MAX];
    size_t nbinds;
    struct sbuf match, from_match, to_match, domain_like; /* values that must outlive the statement */
    char *words[SEARCH_WORDS_MAX]; /* PostgreSQL: each word of the text, bound on its own */
    int is_pg;
};

static void bind_int_v(struct search *q, int64_t v)
{
    if (q->nbinds < SEARCH_BINDS_MAX)
        q->binds[q->nbinds++] = (struct bindv){0, v, NULL};
    else
        q->where.oom = 1; /* cannot happen with the limits above */
}

static void bind_text_v(struct search *q, const char *v)
{
    if (q->nbinds < SEARCH_BINDS_MAX)
        q->binds[q->nbinds++] = (struct bindv){1, 0, v};
    else
        q->where.oom = 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Appends v[0..len) as one FTS5 string: in double quotes, with a quote in it
 * doubled. FTS5 reads a string as a phrase of its tokens, never as syntax. */
static void fts_string(const char *v, size_t len, struct sbuf *out)
{
    sb_add(out, "\"");
    for (const char *c = v, *end = v + len; c < end;) {
        const char *quote = memchr(c, '"', (size_t)(end - c));
        size_t n = quote ? (size_t)(quote - c) : (size_t)(end - c);
        sb_addn(out, c, n);
        if (!quote)
            break;
        sb_add(out, "\"\"");
        c = quote + 1;
    }
    sb_add(out, "\"");
}

/* The next word of a search text at *p (runs of anything but white space):
 * its start in *w and its length, *p moved past it; 0 at the end. */
static size_t next_word(const char **p, const char **w)
{
    while (is_space(**p))
        (*p)++;
    *w = *p;
    while (**p && !is_space(**p))
        (*p)++;
    return (size_t)(*p - *w);
}

/* The FTS5 query for the user's words: "w1" "w2" ... (implicitly ANDed).
 * Returns the number of words. */
static int fts_query(const char *text, struct sbuf *out)
{
    int words = 0;
    const char *p = text, *w;
    size_t n;
    while (words < SEARCH_WORDS_MAX && (n = next_word(&p, &w)) > 0) {
        if (words)
            sb_add(out, " ");
        fts_string(w, n, out);
        words++;
    }
    return words;
}

/* Appends v for a LIKE pattern, with '\\' escaping %, _ and \\ themselves. */
static void like_escaped(const char *v, struct sbuf *out)
{
    for (const char *c = v; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\')
            sb_add(out, "\\");
        sb_addn(out, c, 1);
    }
}

/* A participant filter: the address as a participant of that kind (the
 * envelope), or the words of the value as a phrase in the header's column of
 * the full-text index (From:, To:/Cc:). Both are index lookups. */
static void participant_filter(struct search *q, const char *addr, int kind, const char *column,
                               struct sbuf *match)
{
    if (q->is_pg) {
        /* The header's weight in archive_fts.tsv: B From:, C To:. */
        sb_add(&q->where,
               " AND a.id IN (SELECT entry_id FROM archive_addrs WHERE addr = ? AND kind = %d"
               " UNION SELECT id FROM archive_fts WHERE tsv @@ archive_fts_phrase(?, '%s'))",
               kind, strcmp(column, "from_hdr") == 0 ? "B" : "C");
        bind_text_v(q, addr);
        bind_text_v(q, addr);
        return;
    }
    sb_add(match, "{%s} : ", column);
    fts_string(addr, strlen(addr), match);
    sb_add(&q->where,
           " AND a.id IN (SELECT entry_id FROM archive_addrs WHERE addr = ? AND kind = %d"
           " UNION SELECT rowid FROM archive_fts WHERE archive_fts MATCH ?)",
           kind);
    bind_text_v(q, addr);
    bind_text_v(q, match->s ? match->s : "");
}

/* PostgreSQL: every word of text as its own phrase, ANDed. */
static void pg_text_filter(struct search *q, const char *text)
{
    int words = 0;
    const char *p = text, *w;
    size_t n;
    while (words < SEARCH_WORDS_MAX && (n = next_word(&p, &w)) > 0) {
        if (!(q->words[words] = strndup(w, n))) {
            q->where.oom = 1;
            return;
        }
        sb_add(&q->where, "%sarchive_fts_phrase(?, '')",
               words ? " && " : " AND a.id IN (SELECT id FROM archive_fts WHERE tsv @@ (");
        bind_text_v(q, q->words[words]);
        words++;
    }
    if (words)
        sb_add(&q->where, "))");
}

static void search_build(struct search *q, const struct store_archive_query *a)
{
    if (a->customer_id) {
        sb_add(&q->where, " AND a.customer_id = ?");
        bind_int_v(q, a->customer_id);
    }
    if (a->user_addrs) {
        size_t n = a->nuser_addrs < SEARCH_ADDRS_MAX ? a->nuser_addrs : SEARCH_ADDRS_MAX;
        if (n == 0) {
            sb_add(&q->where, " AND FALSE"); /* a user without addresses sees nothing */
        } else {
            sb_add(&q->where, " AND a.id IN (SELECT entry_id FROM archive_addrs WHERE addr IN (");
            for (size_t i = 0; i < n; i++) {
                sb_add(&q->where, "%s?", i ? ", " : "");
                bind_text_v(q, a->user_addrs[i]);
            }
            sb_add(&q->where, "))");
        }
    }
    if (a->text && q->is_pg) {
        pg_text_filter(q, a->text);
    } else if (a->text && fts_query(a->text, &q->match) > 0 && q->match.s) {
        sb_add(&q->where, " AND a.id IN (SELECT rowid FROM archive_fts WHERE archive_fts MATCH ?)");
        bind_text_v(q, q->match.s);
    }
    if (a->from && a->from[0])
        participant_filter(q, a->from, ARCHIVE_ADDR_FROM, "from_hdr", &q->from_match);
    if (a->to && a->to[0])
        participant_filter(q, a->to, ARCHIVE_ADDR_TO, "to_hdr", &q->to_match);
    if (a->domain && a->domain[0]) {
        sb_add(&q->domain_like, "%%@");
        like_escaped(a->domain, &q->domain_like);
        sb_add(&q->where, " AND EXISTS (SELECT 1 FROM archive_addrs p WHERE p.entry_id = a.id AND p.addr LIKE ? "
                          "ESCAPE '\\')");
        bind_text_v(q, q->domain_like.s ? q->domain_like.s : "");
    }
    /* A short range is looked up in the date index; a wide or open one is
     * better read newest first (the page stops early) than sorted whole: the
     * unary + keeps the planner off the index. */
    const char *col = a->after && a->before && a->before - a->after <= SEARCH_DATE_INDEX_RANGE ? "a.date" : "+a.date";
    if (a->after) {
        sb_add(&q->where, " AND %s >= ?", col);
        bind_int_v(q, a->after);
    }
    if (a->before) {
        sb_add(&q->where, " AND %s < ?", col);
        bind_int_v(q, a->before);
    }
    if (a->direction >= 0) {
        sb_add(&q->where, " AND a.direction = ?");
        bind_int_v(q, a->direction);
    }
    if (a->has_attachment >= 0) {
        sb_add(&q->where, " AND a.has_attachment = ?");
        bind_int_v(q, a->has_attachment ? 1 : 0);
    }
    if (a->before_id > 0) {
        sb_add(&q->where, " AND a.id < ?");
        bind_int_v(q, a->before_id);
    }
}

static void search_free(struct search *q)
{
    free(q->where.s);
    free(q->match.s);
    free(q->from_match.s);
    free(q->to_match.s);
    free(q->domain_like.s);
    for (size_t i = 0; i < SEARCH_WORDS_MAX; i++)
        free(q->words[i]);
}

/* Compiles "head WHERE TRUE <filters> tail" and binds the filters' values. The
 * statement is not cached (the text varies); the caller finalizes it. */
static struct db_stmt *search_prepare(struct store *st, const struct search *q, const char *head, const char *tail)
{
    struct sbuf sql = {0};
    sb_add(&sql, "%s WHERE TRUE%s%s", head, q->where.s ? q->where.s : "", tail);
    if (sql.oom) {
        free(sql.s);
        log_err("store: archive search: out of memory");
        return NULL;
    }
    struct db_stmt *s = db_prepare(st, sql.s);
    free(sql.s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < q->nbinds; i++) {
        if (q->binds[i].is_text)
            db_bind_text(s, (int)i + 1, q->binds[i].t);
        else
            db_bind_int64(s, (int)i + 1, q->binds[i].i);
    }
    return s;
}

int store_archive_search(struct store *st, const struct store_archive_query *a,
                         int (*cb)(const struct store_archive_entry *, void *), void *arg, uint64_t *total)
{
    struct search q = {.is_pg = st->kind == DB_PG};
    search_build(&q, a);
    if (q.where.oom || q.match.oom || q.from_match.oom || q.to_match.oom || q.domain_like.oom) {
        search_free(&q);
        log_err("store: archive search: out of memory");
        return STORE_ERR;
    }
    int rc = STORE_OK;
    if (total) {
        /* Counting stops past ARCHIVE_COUNT_MAX: a common word over a big
         * archive has hundreds of thousands of matches, and nobody pages
         * that far (the bench's worst case halved). */
        char count_tail[48];
        snprintf(count_tail, sizeof count_tail, " LIMIT %d) AS hits", ARCHIVE_COUNT_MAX + 1);
        struct db_stmt *s = search_prepare(st, &q, "SELECT count(*) FROM (SELECT 1 FROM archive a", count_tail);
        int step = s ? db_step(s) : DB_ERR;
        if (step == DB_ROW) {
            *total = (uint64_t)db_col_int64(s, 0);
        } else {
            if (s)
                log_err("store: archive search count: %s", db_errmsg(st));
            rc = STORE_ERR;
        }
        db_finalize(s);
    }
    if (rc == STORE_OK && cb) {
        char tail[96];
        snprintf(tail, sizeof tail, " ORDER BY a.id DESC LIMIT %lld OFFSET %llu",
                 a->limit ? (long long)a->limit : (long long)INT64_MAX, (unsigned long long)a->offset);
        struct db_stmt *s = search_prepare(st, &q, "SELECT " ENTRY_COLS " FROM archive a", tail);
        int step = DB_ERR;
        if (s) {
            while ((step = db_step(s)) == DB_ROW) {
                struct store_archive_entry e;
                read_entry(s, &e);
                if (cb(&e, arg) != 0) {
                    step = DB_DONE;
                    break;
                }
            }
            if (step != DB_DONE)
                log_err("store: archive search: %s", db_errmsg(st));
        }
        if (step != DB_DONE)
            rc = STORE_ERR;
        db_finalize(s);
    }
    search_free(&q);
    return rc;
}

/* ---------------------------------------------------------------- retention */

struct purge_victim {
    int64_t id;
    char blob[BLOB_ID_SIZE];
};

struct purge_list {
    struct purge_victim *v;
    size_t n, max;
};

static int purge_collect(struct db_stmt *s, void *ctx)
{
    struct purge_list *l = ctx;
    if (l->n == l->max)
        return 1;
    l->v[l->n].id = db_col_int64(s, 0);
    col_text(s, 1, l->v[l->n].blob, sizeof l->v[l->n].blob);
    l->n++;
    return 0;
}

static int blob_unref_one(struct store *st, const char *blob)
{
    static const char sql[] = "UPDATE blobs SET refs = refs - 1 WHERE id = ?1 AND refs > 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, blob);
    int rc = stmt_run(st, sql, s, "archive blob unreference");
    if (rc == STORE_OK && db_changes(st) == 0)
        log_warn("store: archive: blob %s had no reference to drop", blob);
    return rc;
}

int store_archive_purge(struct store *st, int64_t before, size_t limit, uint64_t *purged)
{
    /* Held: by a hold of the whole customer, or by a user hold on one of the
     * entry's participants (the user's address as kept in the hold, the
     * user's current address and aliases). */
    static const char sql_old[] =
        "SELECT a.id, a.blob FROM archive a WHERE a.received < ?1"
        " AND NOT EXISTS (SELECT 1 FROM archive_holds h WHERE h.customer_id = a.customer_id AND h.user_id = 0)"
        " AND NOT EXISTS (SELECT 1 FROM archive_addrs p WHERE p.entry_id = a.id AND p.addr IN ("
        "   SELECT h.email FROM archive_holds h WHERE h.customer_id = a.customer_id AND h.user_id <> 0"
        "   UNION ALL SELECT u.email FROM archive_holds h JOIN users u ON u.id = h.user_id"
        "     WHERE h.customer_id = a.customer_id"
        "   UNION ALL SELECT al.alias FROM archive_holds h JOIN aliases al ON al.user_id = h.user_id"
        "     WHERE h.customer_id = a.customer_id))"
        " ORDER BY a.received, a.id LIMIT ?2";
    static const char sql_fts_lite[] = "DELETE FROM archive_fts WHERE rowid = ?1";
    static const char sql_fts_pg[] = "DELETE FROM archive_fts WHERE id = ?1";
    const char *sql_fts = st->kind == DB_PG ? sql_fts_pg : sql_fts_lite;
    static const char sql_del[] = "DELETE FROM archive WHERE id = ?1"; /* participants cascade */
    *purged = 0;
    if (limit == 0)
        return STORE_OK;
    struct purge_list l = {calloc(limit, sizeof *l.v), 0, limit};
    if (!l.v) {
        log_err("store: archive purge: out of memory");
        return STORE_ERR;
    }
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK) {
        free(l.v);
        return rc;
    }
    /* Every node runs the daily purge: one of them does a batch at a time
     * (the others find nothing to do and come back tomorrow). */
    int mine = store_work_xact_try(st, STORE_WORK_ARCHIVE_PURGE);
    struct db_stmt *s = mine == 1 ? stmt_get(st, sql_old) : NULL;
    if (mine == 0) {
        free(l.v);
        return op_end(st, &op, STORE_OK);
    }
    if (s) {
        db_bind_int64(s, 1, before);
        db_bind_int64(s, 2, (int64_t)limit);
        rc = stmt_each(st, sql_old, s, purge_collect, &l, "archive purge candidates");
    } else {
        rc = STORE_ERR;
    }
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
        rc = exec_id(st, sql_fts, l.v[i].id, "archive full-text delete");
        if (rc == STORE_OK)
            rc = exec_id(st, sql_del, l.v[i].id, "archive entry delete");
        if (rc == STORE_OK)
            rc = blob_unref_one(st, l.v[i].blob);
    }
    rc = op_end(st, &op, rc);
    if (rc == STORE_OK)
        *purged = l.n;
    free(l.v);
    return rc;
}

/* -------------------------------------------------------------------- holds */

static void read_hold(struct db_stmt *s, void *out)
{
    struct store_archive_hold *h = out;
    memset(h, 0, sizeof *h);
    h->id = db_col_int64(s, 0);
    h->customer_id = db_col_int64(s, 1);
    h->user_id = db_col_int64(s, 2);
    col_text(s, 3, h->email, sizeof h->email);
    h->created = db_col_int64(s, 4);
    col_text(s, 5, h->created_by, sizeof h->created_by);
    h->by_operator = db_col_int(s, 6);
}

int store_archive_hold_add(struct store *st, const struct store_archive_hold *h, int64_t *id_out)
{
    static const char sql_user[] = "SELECT u.email FROM users u JOIN domains d ON d.id = u.domain_id "
                                   "WHERE u.id = ?1 AND d.customer_id = ?2";
    static const char sql[] = "INSERT INTO archive_holds (customer_id, user_id, email, created, created_by, by_operator) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
    const struct store_archive_hold *none = NULL;
    char email[ADDR_MAX + 1] = "";
    struct db_stmt *s;
    if (h->user_id) {
        /* the user must be one of the customer's */
        if (!(s = stmt_get(st, sql_user)))
            return STORE_ERR;
        db_bind_int64(s, 1, h->user_id);
        db_bind_int64(s, 2, h->customer_id);
        int rc = db_step(s);
        if (rc == DB_ROW)
            col_text(s, 0, email, sizeof email);
        stmt_put(st, sql_user, s);
        if (rc == DB_DONE)
            return STORE_NOTFOUND;
        if (rc != DB_ROW)
            return db_rc(st, rc, "archive hold user");
    }
    if (!(s = stmt_get(st, sql)))
        return STORE_ERR;
    db_bind_int64(s, 1, h->customer_id);
    db_bind_int64(s, 2, h->user_id);
    db_bind_text(s, 3, email);
    db_bind_int64(s, 4, h->created);
    bind_cut(s, 5, h->created_by, sizeof none->created_by);
    db_bind_int(s, 6, h->by_operator ? 1 : 0);
    int rc = stmt_insert(st, sql, s, id_out, "archive hold insert");
    return rc;
}

int store_archive_hold_del(struct store *st, int64_t customer_id, int64_t user_id, int operator)
{
    static const char sql[] = "DELETE FROM archive_holds WHERE customer_id = ?1 AND user_id = ?2 "
                              "AND (?3 OR by_operator = 0)";
    static const char sql_left[] = "SELECT count(*) FROM archive_holds WHERE customer_id = ?1 AND user_id = ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_int64(s, 2, user_id);
    db_bind_int(s, 3, operator ? 1 : 0);
    int rc = stmt_run(st, sql, s, "archive hold delete");
    if (rc != STORE_OK || db_changes(st) > 0)
        return rc;
    /* Nothing lifted: none there, or one the caller may not lift. */
    if (!(s = stmt_get(st, sql_left)))
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    db_bind_int64(s, 2, user_id);
    unsigned left = 0;
    rc = stmt_fetch_count(st, sql_left, s, &left, "archive hold lookup");
    if (rc != STORE_OK)
        return rc;
    return left ? STORE_EXISTS : STORE_NOTFOUND;
}

struct hold_each {
    int (*cb)(const struct store_archive_hold *, void *);
    void *arg;
};

static int hold_each(struct db_stmt *s, void *ctx)
{
    struct hold_each *e = ctx;
    struct store_archive_hold h;
    read_hold(s, &h);
    return e->cb(&h, e->arg);
}

int store_archive_hold_list(struct store *st, int64_t customer_id,
                            int (*cb)(const struct store_archive_hold *, void *), void *arg)
{
    static const char sql[] = "SELECT id, customer_id, user_id, email, created, created_by, by_operator FROM archive_holds "
                              "WHERE ?1 = 0 OR customer_id = ?1 ORDER BY customer_id, id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    struct hold_each e = {cb, arg};
    return stmt_each(st, sql, s, hold_each, &e, "archive holds");
}

/* -------------------------------------------------------------------- audit */

int store_audit_add(struct store *st, const struct store_audit *a)
{
    static const char sql[] = "INSERT INTO audit (at, customer_id, actor, action, target, detail) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, a->at);
    db_bind_int64(s, 2, a->customer_id);
    bind_cut(s, 3, a->actor, sizeof a->actor);
    bind_cut(s, 4, a->action, sizeof a->action);
    bind_cut(s, 5, a->target, sizeof a->target);
    bind_cut(s, 6, a->detail, sizeof a->detail);
    return stmt_run(st, sql, s, "audit insert");
}

static void read_audit(struct db_stmt *s, struct store_audit *a)
{
    memset(a, 0, sizeof *a);
    a->id = db_col_int64(s, 0);
    a->at = db_col_int64(s, 1);
    a->customer_id = db_col_int64(s, 2);
    col_text(s, 3, a->actor, sizeof a->actor);
    col_text(s, 4, a->action, sizeof a->action);
    col_text(s, 5, a->target, sizeof a->target);
    col_text(s, 6, a->detail, sizeof a->detail);
}

struct audit_each {
    int (*cb)(const struct store_audit *, void *);
    void *arg;
};

static int audit_each(struct db_stmt *s, void *ctx)
{
    struct audit_each *e = ctx;
    struct store_audit a;
    read_audit(s, &a);
    return e->cb(&a, e->arg);
}

int store_audit_list(struct store *st, int64_t customer_id, size_t limit,
                     int (*cb)(const struct store_audit *, void *), void *arg)
{
    static const char sql_all[] = "SELECT id, at, customer_id, actor, action, target, detail FROM audit "
                                  "ORDER BY id DESC LIMIT ?1";
    static const char sql_one[] = "SELECT id, at, customer_id, actor, action, target, detail FROM audit "
                                  "WHERE customer_id = ?2 ORDER BY id DESC LIMIT ?1";
    const char *sql = customer_id ? sql_one : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, limit ? (int64_t)limit : INT64_MAX);
    if (customer_id)
        db_bind_int64(s, 2, customer_id);
    struct audit_each e = {cb, arg};
    return stmt_each(st, sql, s, audit_each, &e, "audit list");
}
