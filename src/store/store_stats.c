/*
 * store_stats.c — store.h's per-minute statistics on SQLite (migration 8):
 * counters per hosted domain and minute for the outage dashboard's chart.
 *
 * A counter is moved by the store call that makes the state change it counts
 * (store_message_insert, store_rcpt_update, store_mailbox_divert,
 * store_mailbox_redelivered), with one UPSERT inside that call's transaction:
 * a rolled-back change never counts, a committed one always does, and a crash
 * loses neither. The UPSERT finds the domain itself (by the recipient's
 * domain name, the recipient row or the mailbox entry), so mail for a domain
 * we do not host costs one index lookup and writes nothing.
 *
 * Rows are sparse (only minutes in which something happened) and small; the
 * daemon's daily retention pass deletes those older than STATS_RETENTION.
 */
#include "store/store_internal.h"

#include "util/log.h"

/* The UPSERTs, one SQL text per counter (a column name cannot be bound). */
#define UPSERT_TAIL(col)                                                                            \
    " ON CONFLICT (domain_id, minute) DO UPDATE SET " col " = stats_minute." col " + excluded." col
#define BY_ID(col) "INSERT INTO stats_minute (domain_id, minute, " col ") VALUES (?1, ?2, ?3)" UPSERT_TAIL(col)
#define BY_NAME(col)                                                                                      \
    "INSERT INTO stats_minute (domain_id, minute, " col ") SELECT id, ?2, ?3 FROM domains WHERE name = ?1" \
    UPSERT_TAIL(col)
#define BY_RCPT(col)                                                                                      \
    "INSERT INTO stats_minute (domain_id, minute, " col ") SELECT d.id, ?2, ?3 FROM recipients r "        \
    "JOIN domains d ON d.name = r.domain WHERE r.id = ?1" UPSERT_TAIL(col)
#define BY_ENTRY(col)                                                                                     \
    "INSERT INTO stats_minute (domain_id, minute, " col ") SELECT domain_id, ?2, ?3 FROM mailbox "        \
    "WHERE id = ?1" UPSERT_TAIL(col)

#define PER_COUNTER(X) {X("accepted"), X("delivered"), X("diverted"), X("redelivered"), X("deferred"), X("bounced")}

static const char *const sql_by_id[STAT_NCOUNTERS] = PER_COUNTER(BY_ID);
static const char *const sql_by_name[STAT_NCOUNTERS] = PER_COUNTER(BY_NAME);
static const char *const sql_by_rcpt[STAT_NCOUNTERS] = PER_COUNTER(BY_RCPT);
static const char *const sql_by_entry[STAT_NCOUNTERS] = PER_COUNTER(BY_ENTRY);

_Static_assert(STAT_ACCEPTED == 0 && STAT_DELIVERED == 1 && STAT_DIVERTED == 2 && STAT_REDELIVERED == 3 &&
                   STAT_DEFERRED == 4 && STAT_BOUNCED == 5 && STAT_NCOUNTERS == 6,
               "PER_COUNTER is in the order of enum store_stat");

static int64_t minute_of(int64_t t)
{
    return t - ((t % 60) + 60) % 60; /* also right for the (unused) times before 1970 */
}

/* Runs one of the UPSERTs: ?1 is the key (an id, or a name when name != NULL). */
static int count(struct store *st, const char *const *table, int counter, int64_t key, const char *name,
                 int64_t at, uint64_t n)
{
    if (counter < 0 || counter >= STAT_NCOUNTERS) {
        log_err("store: statistics: no such counter %d", counter);
        return STORE_ERR;
    }
    if (n == 0)
        return STORE_OK;
    const char *sql = table[counter];
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    if (name)
        db_bind_text(s, 1, name);
    else
        db_bind_int64(s, 1, key);
    db_bind_int64(s, 2, minute_of(at));
    db_bind_int64(s, 3, (int64_t)n);
    return stmt_run(st, sql, s, "statistics");
}

int store_stats_add(struct store *st, int64_t domain_id, int counter, int64_t at, uint64_t n)
{
    return count(st, sql_by_id, counter, domain_id, NULL, at, n);
}

int stats_count_domain(struct store *st, const char *domain, int counter, int64_t at, uint64_t n)
{
    return count(st, sql_by_name, counter, 0, domain ? domain : "", at, n);
}

int stats_count_rcpt(struct store *st, int64_t rcpt_id, int counter, int64_t at)
{
    return count(st, sql_by_rcpt, counter, rcpt_id, NULL, at, 1);
}

int stats_count_entry(struct store *st, int64_t entry_id, int counter, int64_t at, uint64_t n)
{
    return count(st, sql_by_entry, counter, entry_id, NULL, at, n);
}

struct minute_each {
    int (*cb)(const struct store_stats_minute *, void *);
    void *arg;
};

static int minute_each(struct db_stmt *s, void *ctx)
{
    struct minute_each *e = ctx;
    struct store_stats_minute m = {.minute = db_col_int64(s, 0)};
    for (int i = 0; i < STAT_NCOUNTERS; i++)
        m.n[i] = (uint64_t)db_col_int64(s, 1 + i);
    return e->cb(&m, e->arg);
}

int store_stats_list(struct store *st, int64_t customer_id, int64_t domain_id, int64_t from,
                     int (*cb)(const struct store_stats_minute *, void *), void *arg)
{
    /* Three texts rather than one with "?N = 0 OR ...": each can then use its
     * index (a domain: the primary key's range; a customer: its domains' ranges;
     * all: the minute index). */
#define STATS_SUMS                                                                                        \
    "SELECT minute, sum(accepted), sum(delivered), sum(diverted), sum(redelivered), sum(deferred), "      \
    "sum(bounced) FROM stats_minute "
    static const char sql_domain[] = STATS_SUMS "WHERE domain_id = ?1 AND minute >= ?2 "
                                                "GROUP BY minute ORDER BY minute";
    static const char sql_customer[] = STATS_SUMS
        "WHERE domain_id IN (SELECT id FROM domains WHERE customer_id = ?1) AND minute >= ?2 "
        "GROUP BY minute ORDER BY minute";
    static const char sql_all[] = STATS_SUMS "WHERE minute >= ?2 AND ?1 = 0 GROUP BY minute ORDER BY minute";
#undef STATS_SUMS
    const char *sql = domain_id ? sql_domain : customer_id ? sql_customer : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id ? domain_id : customer_id);
    db_bind_int64(s, 2, minute_of(from));
    struct minute_each e = {cb, arg};
    return stmt_each(st, sql, s, minute_each, &e, "statistics list");
}

int store_stats_purge(struct store *st, int64_t before, unsigned *purged)
{
    static const char sql[] = "DELETE FROM stats_minute WHERE minute < ?1";
    if (purged)
        *purged = 0;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, before);
    int rc = stmt_run(st, sql, s, "statistics purge");
    if (rc == STORE_OK && purged)
        *purged = (unsigned)db_changes(st);
    return rc;
}
