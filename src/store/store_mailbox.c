/*
 * store_mailbox.c — store.h's continuity mailboxes on SQLite (the domain state
 * and its events are store_domain_state.c's).
 *
 * A mailbox entry is one user's copy of one message. It holds its own
 * reference on the message's blob, so the body is never copied, and the
 * diverted recipient rows point at it (recipients.mailbox_entry_id). The queued
 * message stays while any of its recipients is RCPT_CONTINUITY (a pending
 * state): each copy is settled by exactly one transition of its recipient row,
 * to RCPT_REDELIVERED when the drain handed it back or RCPT_DELETED when the
 * user deleted it, and the message goes with the last one. Every call below
 * that changes several rows is one unit (op_begin/op_end), so a crash leaves an
 * entry and its recipients either before or after a transition, never between.
 *
 * Counting what the user deleted: an entry of an outage (outage_id != 0) that is
 * deleted for good drops its blob reference, its prefix and its place in every
 * listing, but its row stays behind as a tombstone (purged = 1) so that the
 * outage's held / redelivered / deleted counts do not change afterwards. The
 * tombstones of a domain are pruned when its next outage starts, since counts
 * are only ever asked for the current or last outage. Entries outside any
 * outage are deleted outright.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

_Static_assert(REDELIVER_WAITING == 1 && REDELIVER_DONE == 2 && REDELIVER_DELETED == 3,
               "the SQL below spells redeliver states as numbers");
_Static_assert(RCPT_CONTINUITY == 3 && RCPT_REDELIVERED == 4 && RCPT_DELETED == 5,
               "the SQL below spells recipient states as numbers");

/* ------------------------------------------------------------ entry records */

#define ENTRY_COLS                                                                                  \
    "id, user_id, domain_id, msg_id, blob, prefix, sender, rcpts, size, received, folder, seen, "  \
    "flagged, redeliver, outage_id, direction"

static void read_entry(struct db_stmt *s, void *out)
{
    struct store_mailbox_entry *e = out;
    memset(e, 0, sizeof *e);
    e->id = db_col_int64(s, 0);
    e->user_id = db_col_int64(s, 1);
    e->domain_id = db_col_int64(s, 2);
    col_text(s, 3, e->msg_id, sizeof e->msg_id);
    col_text(s, 4, e->blob, sizeof e->blob);
    col_text(s, 5, e->prefix, sizeof e->prefix);
    col_text(s, 6, e->sender, sizeof e->sender);
    col_text(s, 7, e->rcpts, sizeof e->rcpts);
    e->size = (uint64_t)db_col_int64(s, 8);
    e->received = db_col_int64(s, 9);
    e->folder = db_col_int(s, 10);
    e->seen = db_col_int(s, 11);
    e->flagged = db_col_int(s, 12);
    e->redeliver = db_col_int(s, 13);
    e->outage_id = db_col_int64(s, 14);
    e->direction = db_col_int(s, 15);
}

/* What the state-changing calls need to know about an entry. */
struct entry_state {
    int64_t id;
    char msg_id[QUEUEID_SIZE];
    char blob[BLOB_ID_SIZE];
    char rcpts[sizeof((struct store_mailbox_entry *)0)->rcpts];
    int redeliver;
    int64_t outage_id;
    int purged;
};

#define ENTRY_STATE_COLS "id, msg_id, blob, rcpts, redeliver, outage_id, purged"

static void read_entry_state(struct db_stmt *s, void *out)
{
    struct entry_state *e = out;
    memset(e, 0, sizeof *e);
    e->id = db_col_int64(s, 0);
    col_text(s, 1, e->msg_id, sizeof e->msg_id);
    col_text(s, 2, e->blob, sizeof e->blob);
    col_text(s, 3, e->rcpts, sizeof e->rcpts);
    e->redeliver = db_col_int(s, 4);
    e->outage_id = db_col_int64(s, 5);
    e->purged = db_col_int(s, 6);
}

/* The entry, tombstone or not. */
static int entry_state_get(struct store *st, int64_t id, struct entry_state *out)
{
    /* Every caller changes the entry next: the row stays locked until the
     * transaction ends, so a user's delete and another node's drain take turns. */
    static const char sql[] = "SELECT " ENTRY_STATE_COLS " FROM mailbox WHERE id = ?1 FOR UPDATE";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_entry_state, out, "mailbox entry");
}

/* A live entry: one that is not a tombstone. */
static int entry_live_get(struct store *st, int64_t id, struct entry_state *out)
{
    int rc = entry_state_get(st, id, out);
    return rc == STORE_OK && out->purged ? STORE_NOTFOUND : rc;
}

/* Runs an UPDATE/DELETE of one entry by id (?1) with an optional int ?2. */
static int entry_exec(struct store *st, const char *sql, int64_t id, const int *arg2, const char *what)
{
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    if (arg2)
        db_bind_int(s, 2, *arg2);
    return stmt_run(st, sql, s, what);
}

/* Moves the entry's recipients that are in state from to state to; *changed
 * gets how many did. */
static int entry_rcpts_move(struct store *st, int64_t entry_id, int from, int to, int *changed)
{
    static const char sql[] = "UPDATE recipients SET state = ?3 WHERE mailbox_entry_id = ?1 AND state = ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, entry_id);
    db_bind_int(s, 2, from);
    db_bind_int(s, 3, to);
    int rc = stmt_run(st, sql, s, "mailbox entry recipients");
    *changed = rc == STORE_OK ? db_changes(st) : 0;
    return rc;
}

/* Releases the queued message when its last pending recipient was settled; a
 * message that is gone already is fine. */
static int msg_release(struct store *st, const char *msg_id)
{
    int released = 0;
    int rc = store_message_release_if_done(st, msg_id, &released);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* 1 if addr is one of the comma-separated addresses of list. */
/* The number of addresses in a comma-separated list. */
static uint64_t list_count(const char *list)
{
    uint64_t n = *list ? 1 : 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

static int list_has(const char *list, const char *addr)
{
    size_t n = strlen(addr);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !memcmp(p, addr, n))
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---------------------------------------------------------------- diverting */

/* The recipient row as divert needs it. */
struct rcpt_row {
    char msg_id[QUEUEID_SIZE];
    char rcpt[ADDR_MAX + 1];
    int state;
    int64_t entry_id;
};

static void read_rcpt_row(struct db_stmt *s, void *out)
{
    struct rcpt_row *r = out;
    memset(r, 0, sizeof *r);
    col_text(s, 0, r->msg_id, sizeof r->msg_id);
    col_text(s, 1, r->rcpt, sizeof r->rcpt);
    r->state = db_col_int(s, 2);
    r->entry_id = db_col_int64(s, 3);
}

static int rcpt_row_get(struct store *st, int64_t rcpt_id, struct rcpt_row *out)
{
    static const char sql[] = "SELECT msg_id, rcpt, state, mailbox_entry_id FROM recipients WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, rcpt_id);
    return stmt_fetch_one(st, sql, s, read_rcpt_row, out, "recipient get");
}

static int user_domain(struct store *st, int64_t user_id, int64_t *domain_id)
{
    static const char sql[] = "SELECT domain_id FROM users WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    return stmt_fetch_one(st, sql, s, read_col0_int64, domain_id, "user get");
}

/* The user's inbound entry for a message, tombstone or not. */
static int entry_find(struct store *st, const char *msg_id, int64_t user_id, struct entry_state *out)
{
    static const char sql[] = "SELECT " ENTRY_STATE_COLS " FROM mailbox "
                              "WHERE msg_id = ?1 AND user_id = ?2 AND direction = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, msg_id);
    db_bind_int64(s, 2, user_id);
    return stmt_fetch_one(st, sql, s, read_entry_state, out, "mailbox entry find");
}

/* A new INBOX entry for the queued message m, with its own blob reference. */
static int entry_create(struct store *st, const struct store_msg *m, int64_t user_id, int64_t domain_id,
                        const char *rcpt, int64_t outage_id, int64_t now, int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO mailbox (user_id, domain_id, msg_id, direction, blob, prefix, sender, rcpts, size, "
        "received, folder, seen, flagged, redeliver, outage_id, purged) "
        "VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, 0, 1, ?10, 0) RETURNING id";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    db_bind_int64(s, 2, domain_id);
    db_bind_text(s, 3, m->id);
    db_bind_text(s, 4, m->blob);
    db_bind_text(s, 5, m->prefix);
    db_bind_text(s, 6, m->sender);
    db_bind_text(s, 7, rcpt);
    db_bind_int64(s, 8, (int64_t)m->size);
    db_bind_int64(s, 9, now);
    db_bind_int64(s, 10, outage_id);
    int rc = stmt_insert(st, sql, s, id_out, "mailbox entry insert");
    if (rc != STORE_OK)
        return rc;
    /* The message holds a reference, so the blob's row exists and its sizes stay. */
    return store_blob_ref(st, m->blob, m->size, 0);
}

/* Sets the entry's rcpts (and, reopen, makes it wait again for that list only). */
static int entry_set_rcpts(struct store *st, int64_t id, const char *rcpts, int reopen, int64_t outage_id)
{
    static const char sql_add[] = "UPDATE mailbox SET rcpts = ?2 WHERE id = ?1";
    static const char sql_reopen[] = "UPDATE mailbox SET rcpts = ?2, redeliver = 1, "
                                     "outage_id = CASE WHEN ?3 != 0 THEN ?3 ELSE outage_id END WHERE id = ?1";
    const char *sql = reopen ? sql_reopen : sql_add;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    db_bind_text(s, 2, rcpts);
    if (reopen)
        db_bind_int64(s, 3, outage_id);
    return stmt_run(st, sql, s, "mailbox entry recipients");
}

/* Adds another address of the same user to a live entry. An entry that was
 * re-delivered already waits again, for the new address alone: the addresses
 * it went to must not get it twice. */
static int entry_join(struct store *st, struct entry_state *e, const struct rcpt_row *r, int64_t outage_id)
{
    if (e->redeliver == REDELIVER_DONE)
        return entry_set_rcpts(st, e->id, r->rcpt, 1, outage_id);
    if (list_has(e->rcpts, r->rcpt))
        return STORE_OK;
    size_t used = strlen(e->rcpts), n = strlen(r->rcpt);
    if (used + 1 + n >= sizeof e->rcpts) {
        log_err("%s: store: cannot divert <%s> into mailbox entry %lld: too many addresses of one user",
                r->msg_id, r->rcpt, (long long)e->id);
        return STORE_ERR;
    }
    e->rcpts[used] = ',';
    memcpy(e->rcpts + used + 1, r->rcpt, n + 1);
    return entry_set_rcpts(st, e->id, e->rcpts, 0, 0);
}

static int rcpt_link(struct store *st, int64_t rcpt_id, int state, int64_t entry_id)
{
    static const char sql[] = "UPDATE recipients SET state = ?2, mailbox_entry_id = ?3 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, rcpt_id);
    db_bind_int(s, 2, state);
    db_bind_int64(s, 3, entry_id);
    return stmt_run(st, sql, s, "recipient divert");
}

static int divert(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t outage_id, int64_t now,
                  int64_t *entry_id)
{
    struct rcpt_row r;
    int rc = rcpt_row_get(st, rcpt_id, &r);
    if (rc != STORE_OK)
        return rc;
    if (r.state == RCPT_CONTINUITY && r.entry_id) {
        *entry_id = r.entry_id; /* diverted already */
        return STORE_OK;
    }
    if (r.state != RCPT_QUEUED) {
        log_err("%s: store: cannot divert <%s> into a mailbox: its delivery state is final (%d)", r.msg_id,
                r.rcpt, r.state);
        return STORE_ERR;
    }
    int64_t domain_id = 0;
    if ((rc = user_domain(st, user_id, &domain_id)) != STORE_OK)
        return rc;

    int state = RCPT_CONTINUITY;
    struct entry_state e;
    rc = entry_find(st, r.msg_id, user_id, &e);
    if (rc == STORE_NOTFOUND) {
        struct store_msg m;
        rc = store_message_get(st, r.msg_id, &m);
        if (rc == STORE_OK)
            rc = entry_create(st, &m, user_id, domain_id, r.rcpt, outage_id, now, entry_id);
        else if (rc == STORE_NOTFOUND)
            rc = STORE_ERR; /* a recipient without its message: the foreign key forbids it */
    } else if (rc == STORE_OK) {
        *entry_id = e.id;
        if (e.purged)
            state = RCPT_DELETED; /* the user deleted this message for good already */
        else
            rc = entry_join(st, &e, &r, outage_id);
    }
    if (rc == STORE_OK)
        rc = rcpt_link(st, rcpt_id, state, *entry_id);
    if (rc == STORE_OK && state == RCPT_CONTINUITY)
        rc = stats_count_rcpt(st, rcpt_id, STAT_DIVERTED, now);
    if (rc == STORE_OK && state == RCPT_DELETED)
        rc = msg_release(st, r.msg_id);
    return rc;
}

int store_mailbox_divert(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t outage_id,
                         int64_t now, int64_t *entry_id_out)
{
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    int64_t entry_id = 0;
    rc = op_end(st, &op, divert(st, rcpt_id, user_id, outage_id, now, &entry_id));
    if (rc == STORE_OK && entry_id_out)
        *entry_id_out = entry_id;
    return rc;
}

/* Refuses what could not be read back whole. */
static int entry_new_valid(const struct store_mailbox_entry *e)
{
    const char *why = NULL;
    if (!e->msg_id[0] || !e->blob[0])
        why = "no queue ID or blob";
    else if (e->folder < FOLDER_INBOX || e->folder > FOLDER_TRASH)
        why = "no such folder";
    else if (e->redeliver < REDELIVER_NONE || e->redeliver > REDELIVER_DELETED)
        why = "no such re-delivery state";
    else if (e->direction != DIR_INBOUND && e->direction != DIR_OUTBOUND)
        why = "no such direction";
    else if (strnlen(e->msg_id, sizeof e->msg_id) == sizeof e->msg_id ||
             strnlen(e->blob, sizeof e->blob) == sizeof e->blob ||
             strnlen(e->prefix, sizeof e->prefix) == sizeof e->prefix ||
             strnlen(e->sender, sizeof e->sender) == sizeof e->sender ||
             strnlen(e->rcpts, sizeof e->rcpts) == sizeof e->rcpts)
        why = "a text field is not terminated";
    if (why)
        log_err("%.*s: store: cannot add a mailbox entry: %s", (int)strnlen(e->msg_id, sizeof e->msg_id),
                e->msg_id, why);
    return !why;
}

int store_mailbox_add(struct store *st, const struct store_mailbox_entry *e, uint64_t stored_size,
                      int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO mailbox (user_id, domain_id, msg_id, direction, blob, prefix, sender, rcpts, size, "
        "received, folder, seen, flagged, redeliver, outage_id, purged) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0) RETURNING id";
    if (!entry_new_valid(e))
        return STORE_ERR;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    int64_t domain_id = 0, id = 0;
    rc = user_domain(st, e->user_id, &domain_id);
    /* The reference first: it records the blob the row's foreign key names. */
    if (rc == STORE_OK)
        rc = store_blob_ref(st, e->blob, e->size, stored_size);
    struct db_stmt *s = rc == STORE_OK ? stmt_get(st, sql) : NULL;
    if (s) {
        db_bind_int64(s, 1, e->user_id);
        db_bind_int64(s, 2, domain_id);
        db_bind_text(s, 3, e->msg_id);
        db_bind_int(s, 4, e->direction);
        db_bind_text(s, 5, e->blob);
        db_bind_text(s, 6, e->prefix);
        db_bind_text(s, 7, e->sender);
        db_bind_text(s, 8, e->rcpts);
        db_bind_int64(s, 9, (int64_t)e->size);
        db_bind_int64(s, 10, e->received);
        db_bind_int(s, 11, e->folder);
        db_bind_int(s, 12, e->seen ? 1 : 0);
        db_bind_int(s, 13, e->flagged ? 1 : 0);
        db_bind_int(s, 14, e->redeliver);
        db_bind_int64(s, 15, e->outage_id);
        rc = stmt_insert(st, sql, s, &id, "mailbox entry insert");
    } else if (rc == STORE_OK) {
        rc = STORE_ERR;
    }
    rc = op_end(st, &op, rc);
    if (rc == STORE_OK && id_out)
        *id_out = id;
    return rc;
}

/* ----------------------------------------------------------------- reading */

int store_mailbox_get(struct store *st, int64_t entry_id, struct store_mailbox_entry *out)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM mailbox WHERE id = ?1 AND purged = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, entry_id);
    return stmt_fetch_one(st, sql, s, read_entry, out, "mailbox entry get");
}

struct entry_each {
    int (*cb)(const struct store_mailbox_entry *, void *);
    void *arg;
};

static int entry_each(struct db_stmt *s, void *ctx)
{
    struct entry_each *e = ctx;
    struct store_mailbox_entry entry;
    read_entry(s, &entry);
    return e->cb(&entry, e->arg);
}

int store_mailbox_list(struct store *st, int64_t user_id, int folder,
                       int (*cb)(const struct store_mailbox_entry *, void *), void *arg)
{
    static const char sql_folder[] = "SELECT " ENTRY_COLS " FROM mailbox WHERE user_id = ?1 AND folder = ?2 "
                                     "AND purged = 0 ORDER BY received DESC, id DESC";
    static const char sql_all[] = "SELECT " ENTRY_COLS " FROM mailbox WHERE user_id = ?1 AND purged = 0 "
                                  "ORDER BY received DESC, id DESC";
    if (folder < -1 || folder > FOLDER_TRASH) {
        log_err("store: mailbox list: no such folder %d", folder);
        return STORE_ERR;
    }
    const char *sql = folder >= 0 ? sql_folder : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    if (folder >= 0)
        db_bind_int(s, 2, folder);
    struct entry_each e = {cb, arg};
    return stmt_each(st, sql, s, entry_each, &e, "mailbox list");
}

int store_mailbox_redelivery_due(struct store *st, int64_t domain_id, size_t limit,
                                 int (*cb)(const struct store_mailbox_entry *, void *), void *arg)
{
    /* Walks mailbox_waiting in order: no sort, stops after limit rows. */
    static const char sql[] = "SELECT " ENTRY_COLS " FROM mailbox WHERE domain_id = ?1 AND redeliver = 1 "
                              "ORDER BY received, id LIMIT ?2";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    db_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    struct entry_each e = {cb, arg};
    return stmt_each(st, sql, s, entry_each, &e, "mailbox redelivery due");
}

static int folder_count_each(struct db_stmt *s, void *ctx)
{
    struct store_folder_counts *c = ctx;
    int folder = db_col_int(s, 0);
    if (folder >= FOLDER_INBOX && folder <= FOLDER_TRASH) {
        c->total[folder] = (uint64_t)db_col_int64(s, 1);
        c->unread[folder] = (uint64_t)db_col_int64(s, 2);
    }
    return 0;
}

int store_mailbox_folder_counts(struct store *st, int64_t user_id, struct store_folder_counts *out)
{
    static const char sql[] = "SELECT folder, count(*), count(*) FILTER (WHERE seen = 0) FROM mailbox "
                              "WHERE user_id = ?1 AND purged = 0 GROUP BY folder";
    memset(out, 0, sizeof *out);
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    return stmt_each(st, sql, s, folder_count_each, out, "mailbox folder counts");
}

/* ---------------------------------------------------------------- changing */

static int redelivered(struct store *st, int64_t entry_id)
{
    /* Only while the claim is ours or free: after another node took our
     * expired lease over, its drain records the entry, not ours. */
    static const char sql_done[] = "UPDATE mailbox SET redeliver = 2, claim_node = '', claim_until = 0 "
                                   "WHERE id = ?1 AND claim_node IN ('', ?2)";
    struct entry_state e;
    int rc = entry_live_get(st, entry_id, &e);
    if (rc != STORE_OK || e.redeliver == REDELIVER_DONE)
        return rc;
    if (e.redeliver != REDELIVER_WAITING) {
        log_warn("%s: store: mailbox entry %lld was re-delivered, but it no longer waited for it (%d)",
                 e.msg_id, (long long)entry_id, e.redeliver);
        return STORE_NOTFOUND;
    }
    int changed = 0;
    struct db_stmt *s = stmt_get(st, sql_done);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, entry_id);
    db_bind_text(s, 2, store_node(st));
    if ((rc = stmt_run(st, sql_done, s, "mailbox entry redelivered")) == STORE_OK && db_changes(st) == 0) {
        log_warn("%s: store: mailbox entry %lld: another node holds its re-delivery now", e.msg_id,
                 (long long)entry_id);
        return STORE_NOTFOUND;
    }
    if (rc == STORE_OK)
        rc = entry_rcpts_move(st, entry_id, RCPT_CONTINUITY, RCPT_REDELIVERED, &changed);
    if (rc == STORE_OK) /* the drain sent it to each address of its list */
        rc = stats_count_entry(st, entry_id, STAT_REDELIVERED, time_now(), list_count(e.rcpts));
    if (rc == STORE_OK && changed)
        rc = msg_release(st, e.msg_id);
    return rc;
}

/* Runs change(st, entry_id) as one operation. */
static int entry_op(struct store *st, int (*change)(struct store *, int64_t), int64_t entry_id)
{
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    return op_end(st, &op, change(st, entry_id));
}

int store_mailbox_claim_redelivery(struct store *st, int64_t domain_id, int64_t now, int64_t until, size_t limit,
                                   int (*cb)(const struct store_mailbox_entry *, void *), void *arg)
{
    /* As store_rcpt_claim_due: new claims written, our own read back. */
    static const char sql[] =
        "WITH c AS (UPDATE mailbox SET claim_node = ?3, claim_until = ?4 WHERE id IN ("
        "  SELECT id FROM mailbox WHERE domain_id = ?1 AND redeliver = 1"
        "  AND claim_until < ?5 AND claim_node <> ?3 ORDER BY received, id LIMIT ?2 FOR UPDATE SKIP LOCKED)"
        "  RETURNING id) "
        "SELECT " ENTRY_COLS " FROM mailbox WHERE id IN (SELECT id FROM c) OR (domain_id = ?1 AND redeliver = 1"
        "  AND claim_node = ?3) ORDER BY received, id LIMIT ?2";
    if (st->kind != DB_PG)
        return store_mailbox_redelivery_due(st, domain_id, limit, cb, arg); /* one node */
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    db_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    db_bind_text(s, 3, store_node(st));
    db_bind_int64(s, 4, until);
    db_bind_int64(s, 5, now);
    struct entry_each e = {cb, arg};
    return stmt_each(st, sql, s, entry_each, &e, "claim mailbox redelivery");
}

int store_mailbox_redelivered(struct store *st, int64_t entry_id)
{
    return entry_op(st, redelivered, entry_id);
}

int store_mailbox_move(struct store *st, int64_t entry_id, int folder)
{
    static const char sql[] = "UPDATE mailbox SET folder = ?2 WHERE id = ?1 AND purged = 0";
    if (folder < FOLDER_INBOX || folder > FOLDER_TRASH) {
        log_err("store: mailbox entry %lld: no such folder %d", (long long)entry_id, folder);
        return STORE_ERR;
    }
    int rc = entry_exec(st, sql, entry_id, &folder, "mailbox entry move");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

int store_mailbox_set_flags(struct store *st, int64_t entry_id, int seen, int flagged)
{
    static const char sql[] = "UPDATE mailbox SET seen = CASE WHEN ?2 < 0 THEN seen ELSE ?2 END, "
                              "flagged = CASE WHEN ?3 < 0 THEN flagged ELSE ?3 END "
                              "WHERE id = ?1 AND purged = 0";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, entry_id);
    db_bind_int(s, 2, seen < 0 ? -1 : !!seen);
    db_bind_int(s, 3, flagged < 0 ? -1 : !!flagged);
    int rc = stmt_run(st, sql, s, "mailbox entry flags");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

static int delete_entry(struct store *st, int64_t entry_id)
{
    static const char sql_tombstone[] =
        "UPDATE mailbox SET purged = 1, blob = NULL, prefix = '', "
        "redeliver = CASE WHEN redeliver = 1 THEN 3 ELSE redeliver END WHERE id = ?1";
    static const char sql_delete[] = "DELETE FROM mailbox WHERE id = ?1";
    struct entry_state e;
    int rc = entry_live_get(st, entry_id, &e);
    if (rc != STORE_OK)
        return rc;
    int changed = 0;
    if ((rc = store_blob_unref(st, e.blob)) == STORE_OK &&
        (rc = entry_rcpts_move(st, entry_id, RCPT_CONTINUITY, RCPT_DELETED, &changed)) == STORE_OK)
        rc = e.outage_id ? entry_exec(st, sql_tombstone, entry_id, NULL, "mailbox entry delete")
                         : entry_exec(st, sql_delete, entry_id, NULL, "mailbox entry delete");
    if (rc == STORE_OK && changed)
        rc = msg_release(st, e.msg_id);
    return rc;
}

int store_mailbox_delete(struct store *st, int64_t entry_id)
{
    return entry_op(st, delete_entry, entry_id);
}

int store_mailbox_set_redeliver(struct store *st, int64_t entry_id, int redeliver)
{
    static const char sql[] = "UPDATE mailbox SET redeliver = ?2 WHERE id = ?1 AND purged = 0 AND redeliver != 2";
    if (redeliver != REDELIVER_NONE && redeliver != REDELIVER_WAITING && redeliver != REDELIVER_DELETED) {
        log_err("store: mailbox entry %lld: cannot set re-delivery state %d (the drain's "
                "store_mailbox_redelivered sets done)",
                (long long)entry_id, redeliver);
        return STORE_ERR;
    }
    int rc = entry_exec(st, sql, entry_id, &redeliver, "mailbox entry re-delivery");
    if (rc != STORE_OK || db_changes(st) > 0)
        return rc;
    /* Nothing changed: a done entry stays done; a missing one is NOTFOUND. */
    struct entry_state e;
    return entry_live_get(st, entry_id, &e);
}

/* ------------------------------------------------------------------ counts */

static void read_counts(struct db_stmt *s, void *out)
{
    struct store_continuity_counts *c = out;
    c->held = (uint64_t)db_col_int64(s, 0);
    c->redelivered = (uint64_t)db_col_int64(s, 1);
    c->deleted = (uint64_t)db_col_int64(s, 2);
}

int store_continuity_counts(struct store *st, int64_t domain_id, struct store_continuity_counts *out)
{
    static const char sql_outage[] = "SELECT outage_id FROM domains WHERE id = ?1";
    static const char sql_waiting[] = "SELECT count(*) FROM mailbox WHERE domain_id = ?1 AND redeliver = 1";
    /* Tombstones included: they are this outage's deleted (or re-delivered) entries. */
    static const char sql_outage_counts[] =
        "SELECT count(*), count(*) FILTER (WHERE redeliver = 2), count(*) FILTER (WHERE redeliver = 3) "
        "FROM mailbox WHERE domain_id = ?1 AND outage_id = ?2";
    memset(out, 0, sizeof *out);
    int64_t outage_id = 0, waiting = 0;
    struct db_stmt *s = stmt_get(st, sql_outage);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    int rc = stmt_fetch_one(st, sql_outage, s, read_col0_int64, &outage_id, "continuity counts");
    if (rc != STORE_OK)
        return rc;
    if (!(s = stmt_get(st, sql_waiting)))
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    if ((rc = stmt_fetch_one(st, sql_waiting, s, read_col0_int64, &waiting, "continuity counts")) != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    if (outage_id) {
        if (!(s = stmt_get(st, sql_outage_counts)))
            return STORE_ERR;
        db_bind_int64(s, 1, domain_id);
        db_bind_int64(s, 2, outage_id);
        if ((rc = stmt_fetch_one(st, sql_outage_counts, s, read_counts, out, "continuity counts")) != STORE_OK)
            return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    }
    out->waiting = (uint64_t)waiting;
    return STORE_OK;
}

/* ------------------------------------------------------------- user delete */

struct id_list {
    int64_t *ids;
    size_t n, cap;
    int failed;
};

static int collect_id(struct db_stmt *s, void *ctx)
{
    struct id_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids) {
            l->failed = 1;
            return 1;
        }
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = db_col_int64(s, 0);
    return 0;
}

int store_mailbox_drop_user(struct store *st, int64_t user_id)
{
    static const char sql_live[] = "SELECT id FROM mailbox WHERE user_id = ?1 AND purged = 0";
    static const char sql_rest[] = "DELETE FROM mailbox WHERE user_id = ?1";
    /* Collected first: deleting rows under a running SELECT of the same table is
     * not something to rely on. */
    struct id_list l = {0};
    struct db_stmt *s = stmt_get(st, sql_live);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, user_id);
    int rc = stmt_each(st, sql_live, s, collect_id, &l, "mailbox of a user");
    if (rc == STORE_OK && l.failed) {
        log_err("store: user %lld: out of memory listing the mailbox", (long long)user_id);
        rc = STORE_ERR;
    }
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++)
        rc = delete_entry(st, l.ids[i]);
    free(l.ids);
    if (rc == STORE_OK)
        rc = entry_exec(st, sql_rest, user_id, NULL, "mailbox of a user");
    return rc;
}
