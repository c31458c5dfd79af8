/*
 * store_directory_del.c — store.h's records for deleting a domain or a
 * customer (lifeboatctl domain del / customer del, DELETE domains/D and
 * customers/NAME): what stands in the way (mail queued for the domain,
 * archived mail of the customer) and the deletions themselves.
 *
 * The rules (what is refused, what --force takes with it) are directory's
 * (admin_del.c); here only their records.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/log.h"

int store_rcpt_pending_domain(struct store *st, const char *domain, unsigned *count)
{
    /* state 0 is queued, held or not (the hold is a flag of a queued row) */
    static const char sql[] = "SELECT count(*) FROM recipients WHERE domain = ?1 AND state = 0";
    _Static_assert(RCPT_QUEUED == 0, "RCPT_QUEUED is not 0");
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, domain);
    return stmt_fetch_count(st, sql, s, count, "pending recipients of a domain");
}

struct msg_ids {
    char (*v)[QUEUEID_SIZE];
    size_t n, cap;
    int failed;
};

static int collect_msg_id(struct db_stmt *s, void *ctx)
{
    struct msg_ids *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char (*v)[QUEUEID_SIZE] = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    col_text(s, 0, l->v[l->n++], QUEUEID_SIZE);
    return 0;
}

int store_rcpt_drop_domain(struct store *st, const char *domain, const char *reason, unsigned *dropped)
{
    static const char sql_msgs[] = "SELECT DISTINCT msg_id FROM recipients WHERE domain = ?1 AND state = 0";
    static const char sql_drop[] = "UPDATE recipients SET state = ?2, last_reply = ?3 WHERE domain = ?1 AND state = 0";
    if (dropped)
        *dropped = 0;
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    /* The messages first: their rows are looked at again once the recipients
     * are final (a message goes when none of its recipients is pending). */
    struct msg_ids l = {0};
    struct db_stmt *s = stmt_get(st, sql_msgs);
    if (!s) {
        rc = STORE_ERR;
    } else {
        db_bind_text(s, 1, domain);
        rc = stmt_each(st, sql_msgs, s, collect_msg_id, &l, "messages of a domain");
        if (rc == STORE_OK && l.failed) {
            log_err("store: domain %s: out of memory listing its queued messages", domain);
            rc = STORE_ERR;
        }
    }
    if (rc == STORE_OK && !(s = stmt_get(st, sql_drop)))
        rc = STORE_ERR;
    if (rc == STORE_OK) {
        db_bind_text(s, 1, domain);
        db_bind_int(s, 2, RCPT_DELETED);
        db_bind_text(s, 3, reason);
        rc = stmt_run(st, sql_drop, s, "drop recipients of a domain");
        if (rc == STORE_OK && dropped)
            *dropped = (unsigned)db_changes(st);
    }
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
        int released;
        rc = store_message_release_if_done(st, l.v[i], &released);
    }
    free(l.v);
    return op_end(st, &op, rc);
}

int store_domain_del(struct store *st, int64_t id)
{
    /* Its events go with it, and what references it ON DELETE CASCADE (its
     * LDAP settings, its counters). Its users and mailbox entries must be
     * gone already (directory deletes them first): a row that still refers
     * to the domain makes this fail, STORE_ERR. */
    static const char sql_events[] = "DELETE FROM domain_events WHERE domain_id = ?1";
    static const char sql_domain[] = "DELETE FROM domains WHERE id = ?1";
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    struct db_stmt *s = stmt_get(st, sql_events);
    if (!s) {
        rc = STORE_ERR;
    } else {
        db_bind_int64(s, 1, id);
        rc = stmt_run(st, sql_events, s, "domain events delete");
    }
    if (rc == STORE_OK && !(s = stmt_get(st, sql_domain)))
        rc = STORE_ERR;
    if (rc == STORE_OK) {
        db_bind_int64(s, 1, id);
        rc = stmt_run(st, sql_domain, s, "domain delete");
        if (rc == STORE_OK && db_changes(st) == 0)
            rc = STORE_NOTFOUND;
        else if (rc == STORE_NOTFOUND) /* a row still refers to it */
            rc = STORE_ERR;
    }
    return op_end(st, &op, rc);
}

int store_customer_del(struct store *st, int64_t id)
{
    /* The password policy goes with it (ON DELETE CASCADE); domains, archive
     * entries and holds refer to it and are checked by directory first. */
    static const char sql[] = "DELETE FROM customers WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    int rc = stmt_run(st, sql, s, "customer delete");
    if (rc == STORE_OK && db_changes(st) == 0)
        return STORE_NOTFOUND;
    return rc == STORE_NOTFOUND ? STORE_ERR : rc;
}

static void read_count_oldest(struct db_stmt *s, void *out)
{
    int64_t *v = out;
    v[0] = db_col_int64(s, 0);
    v[1] = db_col_int64(s, 1);
}

int store_archive_count_customer(struct store *st, int64_t customer_id, uint64_t *count, int64_t *oldest)
{
    static const char sql[] = "SELECT count(*), coalesce(min(received), 0) FROM archive WHERE customer_id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, customer_id);
    int64_t v[2] = {0, 0};
    int rc = stmt_fetch_one(st, sql, s, read_count_oldest, v, "archive count of a customer");
    *count = rc == STORE_OK ? (uint64_t)v[0] : 0;
    if (oldest)
        *oldest = rc == STORE_OK ? v[1] : 0;
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}
